"""GGUF metadata and tensor infos -> catalog-schema specs, with the exact weights of the file's tensors.

``gguf_llm`` turns a language model's header into an ``LlmSpec`` (hyper-parameters from the
metadata and tensor shapes) and the bytes of every tensor by GGML type; ``gguf_mmproj`` turns a
llama.cpp vision projector (clip) header into a vision encoder and a VLM.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from vramcalc.errors import InputError
from vramcalc.quant import GGUF_FILE_TYPES, WeightBytes
from vramcalc.readers.common import (
    MAX_EXPERTS,
    MAX_LAYERS,
    MAX_TOKENS,
    MAX_WIDTH,
    anyres_tokens,
    checked_int,
    layer_count,
    show_value,
    slug,
)
from vramcalc.readers.gguf import GgufHeader, GgufTensorInfo, gguf_constants
from vramcalc.schema import (
    DynamicResolutionTokens,
    FixedTokens,
    LlmSpec,
    Mla,
    Moe,
    Projector,
    SlidingWindow,
    VisionEncoderSpec,
    VlmDefaults,
    VlmSpec,
    WindowAttention,
)

#: llama.cpp architectures (general.architecture) whose tensors the catalog schema models, with
#: the family name the catalog uses and the FFN activation (llama.cpp src/llama-model.cpp).
GGUF_ARCHITECTURES: dict[str, tuple[str, str]] = {
    "llama": ("llama", "silu"),
    "mistral3": ("mistral", "silu"),
    "qwen2": ("qwen2", "silu"),
    # the language model of Qwen2-VL and Qwen2.5-VL (convert_hf_to_gguf.py Qwen2VLModel writes
    # LLM_ARCH_QWEN2VL): Qwen2's tensors, with M-RoPE, which changes no memory
    "qwen2vl": ("qwen2", "silu"),
    "qwen3": ("qwen3", "silu"),
    "qwen2moe": ("qwen2_moe", "silu"),
    "qwen3moe": ("qwen3_moe", "silu"),
    # the language model of Qwen3-VL (conversion/qwen3vl.py Qwen3VLTextModel / Qwen3VLMoeTextModel): Qwen3 /
    # Qwen3-MoE tensors with interleaved M-RoPE; its DeepStack input width comes with the mmproj (deepstack_layers)
    "qwen3vl": ("qwen3", "silu"),
    "qwen3vlmoe": ("qwen3_moe", "silu"),
    "gemma": ("gemma", "gelu_tanh"),
    "gemma2": ("gemma2", "gelu_tanh"),
    "gemma3": ("gemma3", "gelu_tanh"),
    "phi3": ("phi3", "silu"),
    "deepseek2": ("deepseek_v2", "silu"),
    "gpt-oss": ("gpt-oss", "swiglu_oai"),
    "granite": ("granite", "silu"),
    "olmo2": ("olmo2", "silu"),
}

#: Sliding-window layer patterns per architecture (llama.cpp llama-model.cpp: gemma2 every other
#: layer, gemma3 5 of 6, gpt-oss every other); others use sliding_window only if the key says.
_SWA_PATTERNS = {"gemma2": [True, False], "gemma3": [True] * 5 + [False], "gpt-oss": [True, False]}


def _one(v: Any, where: str = "a per-layer value", lo: int = 1, hi: int = MAX_WIDTH) -> int:
    """Per-layer arrays (some models vary heads or FFN width by layer): the largest value; every
    item (or the value) an integer in lo..hi."""
    if isinstance(v, list):
        if not v:
            raise InputError(f"{where} is an empty list; expected an integer or one per layer.")
        return max(checked_int(x, f"{where} item #{i}", lo, hi) for i, x in enumerate(v))
    return checked_int(v, where, lo, hi)


_MISSING: Any = object()


def _key(h: GgufHeader, key: str) -> str:
    return key if key.startswith(("general.", "clip.", "split.")) else f"{h.architecture}.{key}"


def _int(h: GgufHeader, key: str, lo: int = 1, hi: int = MAX_WIDTH, default: Any = _MISSING, per_layer: bool = False) -> Any:
    """The integer metadata ``key`` (architecture-prefixed unless general./clip.), checked for its
    type and range; ``default`` when the key is absent (absent and no default: an error). Per-layer
    arrays give their largest item."""
    full = _key(h, key)
    v = h.metadata.get(full)
    if v is None:
        if default is _MISSING:
            raise InputError(f"{h.path}: GGUF metadata has no '{full}' (needed for the estimate).")
        return default
    where = f"{h.path}: GGUF metadata '{full}'"
    return _one(v, where, lo, hi) if per_layer else checked_int(v, where, lo, hi)


def _str(h: GgufHeader, key: str, default: str) -> str:
    v = h.metadata.get(key)
    if v is None:
        return default
    if not isinstance(v, str):
        raise InputError(f"{h.path}: GGUF metadata '{key}' is {show_value(v)}; expected a string.")
    return v


def check_tensor_layout(h: GgufHeader) -> None:
    """The tensor infos must agree with themselves: unique names, offsets aligned to general.alignment
    and not overlapping (llama.cpp's gguf.cpp refuses the same files), so no tensor is counted twice."""
    seen: set[str] = set()
    for x in h.tensors:
        if x.name in seen:
            raise InputError(f"{h.path}: corrupt GGUF file: tensor '{x.name}' appears twice.")
        seen.add(x.name)
    if h.metadata.get("split.count", 1) not in (None, 1):
        return  # a split GGUF's tensors come from several files: load.py checks each file's offsets
    check_offsets(h)


def check_offsets(h: GgufHeader) -> None:
    """One file's tensor offsets: aligned to general.alignment and not overlapping."""
    align = h.metadata.get("general.alignment", 32)
    end, prev = 0, None
    for x in sorted(h.tensors, key=lambda t: t.offset):
        if isinstance(align, int) and align > 0 and x.offset % align:
            raise InputError(f"{h.path}: corrupt GGUF file: tensor '{x.name}' starts at offset {x.offset}, not a multiple of {align}.")
        if x.offset < end and x.nbytes and prev is not None:
            raise InputError(f"{h.path}: corrupt GGUF file: tensors '{prev}' and '{x.name}' overlap (offset {x.offset} < {end}).")
        if x.nbytes:
            end, prev = x.offset + x.nbytes, x.name


def _file_type_label(h: GgufHeader, by_type: dict[str, int]) -> str:
    """The llama.cpp file type (Q4_K_M ...) from general.file_type, else the dominant tensor type."""
    _, _, ftypes = gguf_constants()
    ft = h.metadata.get("general.file_type")
    if ft is not None and (isinstance(ft, bool) or not isinstance(ft, int)):
        raise InputError(f"{h.path}: GGUF metadata 'general.file_type' is {show_value(ft)}; expected an integer.")
    if isinstance(ft, int):
        try:
            name = ftypes(ft).name
        except ValueError:
            name = ""
        name = name.removeprefix("MOSTLY_").removeprefix("ALL_")
        if name in GGUF_FILE_TYPES:
            return name
    # no (known) file type: the file type whose base type is the file's dominant tensor type, else
    # the one nearest in bits per weight (the speed model reads a file type's mixture)
    from vramcalc.quant import GGML_TYPES

    main = max(by_type, key=by_type.get) if by_type else "F16"  # type: ignore[arg-type]
    for ftype, base in GGUF_FILE_TYPES.items():
        if base == main and (ftype.endswith("_M") or ftype == base or base == "MXFP4"):
            return ftype
    for ftype, base in GGUF_FILE_TYPES.items():
        if base == main:
            return ftype
    bits = 8 * by_type.get(main, 0) / max(1, sum(x.numel for x in h.tensors if x.ggml_type == main))
    return min(GGUF_FILE_TYPES, key=lambda f: abs(8 * GGML_TYPES[GGUF_FILE_TYPES[f]][0] / GGML_TYPES[GGUF_FILE_TYPES[f]][1] - bits))


def gguf_llm(h: GgufHeader) -> tuple[LlmSpec, WeightBytes, list[str]]:
    """An LlmSpec from a GGUF header (hyper-parameters from metadata and tensor shapes), and the
    exact weights of the file's tensors."""
    arch = h.architecture
    if arch not in GGUF_ARCHITECTURES:
        if arch == "clip":
            raise InputError(
                f"{h.path}: this is a vision projector (mmproj) file; pass the language model GGUF and this one with --mmproj."
            )
        raise InputError(
            f"{h.path}: GGUF architecture '{arch or '(none)'}' is not supported; supported: {', '.join(sorted(GGUF_ARCHITECTURES))}."
        )
    family, activation = GGUF_ARCHITECTURES[arch]
    check_tensor_layout(h)
    t = {x.name: x for x in h.tensors}
    notes: list[str] = []
    emb = t.get("token_embd.weight")
    if emb is None or len(emb.shape) != 2:
        raise InputError(f"{h.path}: GGUF file has no 2-D token_embd.weight tensor.")
    # the header's tensors are the truth: metadata that contradicts them is an error
    hidden = _int(h, "embedding_length", default=emb.shape[0])
    if hidden != emb.shape[0]:
        raise InputError(
            f"{h.path}: GGUF metadata '{arch}.embedding_length' is {hidden:,} but token_embd.weight has rows of {emb.shape[0]:,}."
        )
    vocab = checked_int(emb.shape[1], f"{h.path}: token_embd.weight's vocabulary", 1, MAX_TOKENS)
    n_layers = layer_count(_int(h, "block_count", 1, MAX_LAYERS), h.path)
    blocks = {int(m.group(1)) for x in h.tensors if (m := re.match(r"blk\.(\d+)\.", x.name))}
    if blocks != set(range(n_layers)):
        have = f"blk.0 .. blk.{max(blocks)}" if blocks else "no blk.* tensors"
        raise InputError(f"{h.path}: GGUF metadata '{arch}.block_count' is {n_layers} but the file's layer tensors are {have}.")
    n_heads = _int(h, "attention.head_count", per_layer=True)
    n_kv = _int(h, "attention.head_count_kv", default=n_heads, per_layer=True)
    key_len = _int(h, "attention.key_length", default=None)
    if n_kv > n_heads or n_heads % n_kv:
        raise InputError(f"{h.path}: GGUF metadata '{arch}.attention.head_count_kv' {n_kv} does not divide head_count {n_heads}.")
    q_t = t.get("blk.0.attn_q.weight")
    if q_t is not None and len(q_t.shape) == 2 and (q_t.shape[1] % n_heads or (key_len and q_t.shape[1] != n_heads * key_len)):
        raise InputError(
            f"{h.path}: GGUF metadata '{arch}.attention.head_count' {n_heads:,}"
            + (f" x key_length {key_len}" if key_len else "")
            + f" does not fit blk.0.attn_q.weight's {q_t.shape[1]:,} outputs."
        )

    def has(role: str, layer: int = 0) -> bool:
        return f"blk.{layer}.{role}" in t

    def shape(role: str, layer: int = 0) -> tuple[int, ...] | None:
        x = t.get(f"blk.{layer}.{role}")
        return x.shape if x else None

    # MoE: experts stacked as ffn_*_exps; dense layers (DeepSeek leading layers) have ffn_up
    moe = None
    moe_layers = [i for i in range(n_layers) if has("ffn_up_exps.weight", i)]
    if moe_layers:
        i0 = moe_layers[0]
        up = shape("ffn_up_exps.weight", i0)
        assert up is not None
        n_exp = _int(h, "expert_count", 1, MAX_EXPERTS, default=up[2])
        shexp = shape("ffn_up_shexp.weight", i0)
        n_shared = _int(h, "expert_shared_count", 0, MAX_EXPERTS, default=1 if shexp else 0)
        moe = Moe(
            num_experts=n_exp,
            experts_per_token=_int(h, "expert_used_count", 1, n_exp),
            expert_intermediate_size=up[1],
            shared_experts=n_shared,
            shared_expert_intermediate_size=(shexp[1] // n_shared) if shexp and n_shared else None,
            shared_expert_gate=has("ffn_gate_inp_shexp.weight", i0),
            dense_layers=[i for i in range(n_layers) if i not in moe_layers],
            expert_bias=has("ffn_up_exps.bias", i0),
            router_bias=has("ffn_gate_inp.bias", i0),
            expert_dtype="mxfp4" if t[f"blk.{i0}.ffn_up_exps.weight"].ggml_type == "MXFP4" else "native",
        )
    dense_layer = next((i for i in range(n_layers) if has("ffn_up.weight", i)), None)
    fused_gate_up = False
    if dense_layer is not None:
        up = shape("ffn_up.weight", dense_layer)
        assert up is not None
        gated = has("ffn_gate.weight", dense_layer)
        ff = up[1]
        if not gated and arch == "phi3":  # Phi-3 stores gate and up as one ffn_up of width 2*ff
            gated, fused_gate_up, ff = True, True, up[1] // 2
        intermediate = ff
    else:
        gated = has("ffn_gate_exps.weight", moe_layers[0]) if moe_layers else True
        # no dense layer: the schema's intermediate_size is unused by the tensors; keep the file's value
        intermediate = _int(h, "feed_forward_length", 0, MAX_WIDTH, default=0, per_layer=True) or (
            moe.expert_intermediate_size if moe else 1
        )

    mla = None
    if arch == "deepseek2":
        kv_a = shape("attn_kv_a_mqa.weight")
        rope = _int(h, "rope.dimension_count")
        kv_rank = _int(h, "attention.kv_lora_rank", default=(kv_a[1] - rope if kv_a else 0))
        q_rank = _int(h, "attention.q_lora_rank", 0, MAX_WIDTH, default=None)
        # GGUFs converted after llama.cpp's MLA rework (2025) store the absorbed sizes in key_length /
        # value_length (kv_lora_rank + rope, kv_lora_rank) and the per-head ones in *_mla
        k_len = _int(h, "attention.key_length_mla", default=None) or _int(h, "attention.key_length")
        v_len = _int(h, "attention.value_length_mla", default=None) or _int(h, "attention.value_length")
        mla = Mla(
            kv_lora_rank=kv_rank,
            q_lora_rank=int(q_rank) if q_rank else None,
            qk_nope_head_dim=k_len - rope,
            qk_rope_head_dim=rope,
            v_head_dim=v_len,
        )

    fused_qkv = has("attn_qkv.weight")
    head_dim = None
    if key_len and mla is None and key_len != hidden // n_heads:
        head_dim = key_len
    elif mla is None and not key_len:
        q = shape("attn_q.weight")
        if q and q[1] // n_heads != hidden // n_heads:
            head_dim = q[1] // n_heads

    sliding = None
    swa = _int(h, "attention.sliding_window", 0, MAX_TOKENS, default=0)
    if swa and arch in _SWA_PATTERNS:
        pattern = _SWA_PATTERNS[arch]
        layer_pattern = h.arch_key("attention.sliding_window_pattern")
        if isinstance(layer_pattern, list) and layer_pattern:
            if len(layer_pattern) > MAX_LAYERS or not all(isinstance(x, bool | int) for x in layer_pattern):
                raise InputError(f"{h.path}: GGUF metadata '{arch}.attention.sliding_window_pattern' is not a list of per-layer flags.")
            pattern = [bool(x) for x in layer_pattern]
        elif isinstance(layer_pattern, int) and 0 < layer_pattern <= MAX_LAYERS:
            pattern = [True] * (layer_pattern - 1) + [False]
        sliding = SlidingWindow(size=swa, pattern=pattern)

    extra_norms = sum(has(f"{n}.weight") for n in ("post_attention_norm", "post_ffw_norm"))
    # a GGUF without context_length: 4096, llama.cpp's default n_ctx (common/common.h; recalled, not re-checked)
    ctx_len = _int(h, "context_length", 1, MAX_TOKENS, default=4096)
    name = _str(h, "general.name", "") or h.path.stem
    exact = _weight_bytes(h.tensors, "")
    label = _file_type_label(h, exact.by_type)
    exact.precision = label
    dtypes = {x.ggml_type for x in h.tensors if len(x.shape) >= 2}
    spec = LlmSpec(
        id=slug(name),
        name=name,
        source=f"GGUF header of {h.path.name} (general.architecture {arch}; read by vramcalc, tensor data not read)",
        family=family,
        num_layers=n_layers,
        hidden_size=hidden,
        num_heads=n_heads,
        num_kv_heads=n_kv,
        head_dim=head_dim,
        intermediate_size=intermediate,
        gated_mlp=gated,
        activation=activation,  # type: ignore[arg-type]
        vocab_size=vocab,
        tied_embeddings="output.weight" not in t,
        qkv_bias=has("attn_q.bias") or has("attn_qkv.bias"),
        attn_out_bias=has("attn_output.bias"),
        mlp_bias=has("ffn_down.bias", dense_layer) if dense_layer is not None else False,
        fused_qkv=fused_qkv,
        fused_gate_up=fused_gate_up,
        norm="layernorm" if has("attn_norm.bias") else "rmsnorm",
        norm_bias=has("attn_norm.bias"),
        qk_norm=has("attn_q_norm.weight"),
        extra_norms_per_layer=extra_norms,
        attention_sinks=has("attn_sinks.weight"),
        max_context=ctx_len,
        sliding_window=sliding,
        moe=moe,
        mla=mla,
        dtype="fp16" if dtypes == {"F16"} else "fp32" if dtypes == {"F32"} else "bf16",
        published_params=exact.params,
    )
    _compare_layout(spec, h, notes)
    return spec, exact, notes


def _weight_bytes(tensors: list[GgufTensorInfo], label: str) -> WeightBytes:
    """The exact bytes of these tensors, by GGML type."""
    wb = WeightBytes(label)
    tied = not any(x.name == "output.weight" for x in tensors)
    for x in tensors:
        wb.add(x.ggml_type, x.numel, x.nbytes)
        if x.name == "token_embd.weight" and not tied:
            # llama.cpp keeps the input embedding in host memory; a tied one is loaded again on the GPU
            # as the output matrix, so nothing leaves the GPU total (see runtimes.llamacpp)
            wb.host_bytes += x.nbytes
    return wb


def _compare_layout(spec: LlmSpec, h: GgufHeader, notes: list[str]) -> None:
    """Say so when the file's tensors differ from the architecture model (the weights stay exact)."""
    from vramcalc.params import llm_tensors

    derived = {x.name: x.numel for x in llm_tensors(spec)}
    actual = {x.name: x.numel for x in h.tensors}
    # RoPE frequency tables (Llama 3.1 rope_freqs, Phi-3 128k rope_factors_*) are small F32 constants, not weights of the layout
    extra = sorted(n for n in set(actual) - set(derived) if not n.startswith(("rope_freqs", "rope_factors")))
    missing = sorted(set(derived) - set(actual))
    differ = sorted(n for n in set(actual) & set(derived) if actual[n] != derived[n])
    if extra:
        notes.append(
            f"{len(extra)} tensor(s) in the file beyond the architecture model (counted exactly): {', '.join(extra[:3])}"
            + (" ..." if len(extra) > 3 else "")
        )
    if missing or differ:
        notes.append(
            f"The file's layout differs from the architecture model in {len(missing) + len(differ)} tensor(s); "
            f"weights are the file's, KV cache and buffers follow the model."
        )


#: llama.cpp clip projector types (clip.projector_type) this reader turns into a VLM.
MMPROJ_TYPES = ("mlp", "mlp_norm", "gemma3", "qwen2vl_merger", "qwen25vl_merger", "qwen3vl_merger")


def gguf_mmproj(h: GgufHeader, llm: LlmSpec) -> tuple[VisionEncoderSpec, VlmSpec, WeightBytes, WeightBytes]:
    """Vision encoder + projector from a llama.cpp mmproj (clip) GGUF, with exact weights."""
    m = h.metadata
    if h.architecture != "clip":
        raise InputError(f"{h.path}: not a vision projector (mmproj) GGUF: general.architecture is '{h.architecture}', expected 'clip'.")
    ptype = _str(h, "clip.projector_type", "") or ("mlp" if m.get("clip.has_llava_projector") is True else "")
    if ptype not in MMPROJ_TYPES:
        raise InputError(f"{h.path}: mmproj projector type '{ptype or '(none)'}' is not supported; supported: {', '.join(MMPROJ_TYPES)}.")
    check_tensor_layout(h)
    t = {x.name: x for x in h.tensors}

    def key(k: str, lo: int = 1, hi: int = MAX_WIDTH) -> int:
        return int(_int(h, f"clip.vision.{k}", lo, hi))

    hidden = key("embedding_length")
    blocks = {int(mb.group(1)) for x in h.tensors if (mb := re.match(r"v\.blk\.(\d+)\.", x.name))}
    n_layers = len(blocks)
    # the header's tensors are the truth: an mmproj without a vision tower, or whose metadata
    # contradicts its tensors, is an error (it would otherwise be estimated from the metadata alone)
    if not blocks or not any(x.name.startswith("mm.") for x in h.tensors):
        raise InputError(f"{h.path}: this mmproj has no vision tower or projector tensors (v.blk.*, mm.*).")
    if blocks != set(range(n_layers)) or _int(h, "clip.vision.block_count", 1, MAX_LAYERS, default=n_layers) != n_layers:
        raise InputError(
            f"{h.path}: GGUF metadata 'clip.vision.block_count' does not match the v.blk.* tensors (v.blk.0 .. v.blk.{max(blocks)})."
        )
    patch_t = t.get("v.patch_embd.weight")
    if patch_t is not None and len(patch_t.shape) == 4 and patch_t.shape[3] != hidden:
        raise InputError(
            f"{h.path}: GGUF metadata 'clip.vision.embedding_length' is {hidden:,} "
            f"but v.patch_embd.weight makes {patch_t.shape[3]:,} channels."
        )
    proj = sorted((int(mp.group(1)), x) for x in h.tensors if (mp := re.fullmatch(r"mm\.(\d+)\.weight", x.name)) and len(x.shape) == 2)
    if ptype != "gemma3" and proj and proj[-1][1].shape[1] != llm.hidden_size:
        last = proj[-1][1]
        raise InputError(
            f"{h.path}: the projector's last layer ({last.name}) outputs {last.shape[1]:,} features but the language model's "
            f"hidden size is {llm.hidden_size:,}: this mmproj belongs to another model."
        )
    gated = "v.blk.0.ffn_gate.weight" in t
    act = "swiglu" if gated else ("silu" if m.get("clip.use_silu") else "gelu" if m.get("clip.use_gelu") else "quick_gelu")
    family = {
        "mlp": "clip",
        "mlp_norm": "clip",
        "gemma3": "siglip",
        "qwen2vl_merger": "qwen2_vit",
        "qwen25vl_merger": "qwen25_vit",
        "qwen3vl_merger": "qwen3_vit",
    }[ptype]
    name = _str(h, "general.name", "") or h.path.stem
    merge = _int(h, "clip.vision.spatial_merge_size", 1, 64, default=2 if "merger" in ptype else 1)
    image_size = key("image_size", 1, 2**16)
    patch = key("patch_size", 1, image_size)
    enc = VisionEncoderSpec(
        id=slug(name) + "-vision",
        name=f"{name} (vision tower)",
        source=f"GGUF header of {h.path.name} (clip.projector_type {ptype}; read by vramcalc, tensor data not read)",
        family=family,  # type: ignore[arg-type]
        image_size=image_size,
        patch_size=patch,
        temporal_patch_size=2 if "merger" in ptype else 1,
        hidden_size=hidden,
        num_layers=max(n_layers, 1),
        num_heads=key("attention.head_count", 1, hidden),
        intermediate_size=key("feed_forward_length"),
        mlp_activation=act,  # type: ignore[arg-type]
        norm="layernorm" if "v.blk.0.ln1.bias" in t else "rmsnorm",
        class_token="v.class_embd" in t,
        patch_bias="v.patch_embd.bias" in t,
        qkv_bias="v.blk.0.attn_q.bias" in t or "v.blk.0.attn_qkv.bias" in t,
        position_embedding="learned" if "v.position_embd.weight" in t else "rope2d",
        pre_norm="v.pre_ln.weight" in t,
        post_norm="v.post_ln.weight" in t,
        dtype="fp16",
    )
    grid = image_size // patch
    pinpoints = m.get("clip.vision.image_grid_pinpoints")
    defaults = VlmDefaults()
    if ptype in ("mlp", "mlp_norm"):
        layers = len([x for x in h.tensors if re.fullmatch(r"mm\.\d+\.weight", x.name)])
        projector = Projector(kind="mlp", layers=max(layers, 1))
        if isinstance(pinpoints, list) and len(pinpoints) >= 2:
            if len(pinpoints) % 2 or len(pinpoints) > 2 * 256:
                raise InputError(f"{h.path}: GGUF metadata 'clip.vision.image_grid_pinpoints' is not a list of (width, height) pairs.")
            where = f"{h.path}: GGUF metadata 'clip.vision.image_grid_pinpoints'"
            sides = [checked_int(x, where, 1, 2**16) for x in pinpoints]
            pairs = [(sides[i], sides[i + 1]) for i in range(0, len(sides), 2)]
            # LLaVA-1.6 adds one image_newline token per feature row (llama.cpp clip.cpp does the same for anyres)
            tokens, defaults = anyres_tokens(pairs, newline=True)
        else:
            tokens = FixedTokens(tokens=grid * grid)
    elif ptype == "gemma3":
        # Gemma 3 pools the 64x64 patch grid of a 896 px image 4x4 to 256 tokens (mm_tokens_per_image 256)
        scale = _int(h, "clip.vision.projector.scale_factor", 1, grid, default=4)
        projector = Projector(kind="pooled_linear", merge=scale)
        tokens = FixedTokens(tokens=(grid // scale) ** 2)
    elif ptype == "qwen3vl_merger":
        # Qwen3-VL (conversion/qwen3vl.py): clip.vision.is_deepstack_layers marks the layers with a DeepStack
        # merger (v.deepstack.N.*); limits as the HF reader's (data/vlms/qwen3-vl-*.yaml; llama.cpp applies its own)
        flags = m.get("clip.vision.is_deepstack_layers") or []
        if not isinstance(flags, list) or len(flags) > n_layers or not all(isinstance(f, bool) for f in flags):
            raise InputError(f"{h.path}: GGUF metadata 'clip.vision.is_deepstack_layers' is not one flag per vision layer.")
        ds = [i for i, f in enumerate(flags) if f]
        projector = Projector(kind="merger", merge=merge, norm=True, deepstack_layers=ds)
        tokens = DynamicResolutionTokens(min_pixels=65536, max_pixels=16777216, factor=patch * merge)
    else:
        projector = Projector(kind="merger", merge=merge, norm=True)
        # Qwen2-VL image processor defaults (preprocessor_config.json: min_pixels 3136, max_pixels 12845056)
        tokens = DynamicResolutionTokens(min_pixels=3136, max_pixels=12845056, factor=patch * merge)
        if ptype == "qwen25vl_merger":
            full = m.get("clip.vision.fullatt_block_indexes") or []
            where = f"{h.path}: GGUF metadata 'clip.vision.fullatt_block_indexes'"
            if not isinstance(full, list):
                raise InputError(f"{where} is {show_value(full)}; expected a list of layer indexes.")
            full = [checked_int(i, where, 0, n_layers - 1) for i in full]
            if full:  # window 112 px: Qwen2.5-VL vision_config window_size (the mmproj does not store it)
                enc = dataclasses.replace(enc, window_attention=WindowAttention(window_size_px=112, full_attention_layers=list(full)))
    wb_vis = _weight_bytes([x for x in h.tensors if not x.name.startswith("mm.")], "")
    wb_proj = _weight_bytes([x for x in h.tensors if x.name.startswith("mm.")], "")
    main = max(wb_vis.by_type, key=wb_vis.by_type.get) if wb_vis.by_type else "F16"  # type: ignore[arg-type]
    label = main.lower()  # the mmproj type names of --vision-quant: f32, f16, bf16, q8_0
    wb_vis.precision = wb_proj.precision = label
    vlm = VlmSpec(
        id=llm.id + "-vlm",
        name=f"{llm.name} + {name}",
        source=f"GGUF headers of {h.path.name} (mmproj) and the language model file (read by vramcalc)",
        encoder=enc.id,
        llm=llm.id,
        projector=projector,
        image_tokens=tokens,
        defaults=VlmDefaults(image_size=defaults.image_size, mmproj_dtype=label if label in ("f32", "f16", "bf16", "q8_0") else "f16"),  # type: ignore[arg-type]
    )
    return enc, vlm, wb_vis, wb_proj
