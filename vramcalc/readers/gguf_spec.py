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
from vramcalc.readers.common import anyres_tokens, layer_count, slug
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


def _req(h: GgufHeader, key: str) -> Any:
    v = h.arch_key(key)
    if v is None:
        raise InputError(f"{h.path}: GGUF metadata has no '{h.architecture}.{key}' (needed for the estimate).")
    return v


def _one(v: Any) -> int:
    """Per-layer arrays (some models vary heads or FFN width by layer): the largest value."""
    if isinstance(v, list):
        return int(max(v)) if v else 0
    return int(v)


def _file_type_label(h: GgufHeader, by_type: dict[str, int]) -> str:
    """The llama.cpp file type (Q4_K_M ...) from general.file_type, else the dominant tensor type."""
    _, _, ftypes = gguf_constants()
    ft = h.metadata.get("general.file_type")
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
    t = {x.name: x for x in h.tensors}
    notes: list[str] = []
    emb = t.get("token_embd.weight")
    if emb is None or len(emb.shape) != 2:
        raise InputError(f"{h.path}: GGUF file has no 2-D token_embd.weight tensor.")
    hidden = int(h.arch_key("embedding_length") or emb.shape[0])
    vocab = emb.shape[1]
    n_layers = layer_count(_req(h, "block_count"), h.path)
    n_heads = _one(_req(h, "attention.head_count"))
    n_kv = _one(h.arch_key("attention.head_count_kv") or n_heads)
    key_len = h.arch_key("attention.key_length")

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
        n_exp = int(h.arch_key("expert_count") or up[2])
        shexp = shape("ffn_up_shexp.weight", i0)
        n_shared = int(h.arch_key("expert_shared_count") or (1 if shexp else 0))
        moe = Moe(
            num_experts=n_exp,
            experts_per_token=int(_req(h, "expert_used_count")),
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
        ffl = h.arch_key("feed_forward_length")
        intermediate = _one(ffl) if ffl else (moe.expert_intermediate_size if moe else 1)

    mla = None
    if arch == "deepseek2":
        kv_a = shape("attn_kv_a_mqa.weight")
        rope = int(_req(h, "rope.dimension_count"))
        kv_rank = int(h.arch_key("attention.kv_lora_rank") or (kv_a[1] - rope if kv_a else 0))
        q_rank = h.arch_key("attention.q_lora_rank")
        # GGUFs converted after llama.cpp's MLA rework (2025) store the absorbed sizes in key_length /
        # value_length (kv_lora_rank + rope, kv_lora_rank) and the per-head ones in *_mla
        k_len = int(h.arch_key("attention.key_length_mla") or _req(h, "attention.key_length"))
        v_len = int(h.arch_key("attention.value_length_mla") or _req(h, "attention.value_length"))
        mla = Mla(
            kv_lora_rank=kv_rank,
            q_lora_rank=int(q_rank) if q_rank else None,
            qk_nope_head_dim=k_len - rope,
            qk_rope_head_dim=rope,
            v_head_dim=v_len,
        )

    fused_qkv = has("attn_qkv.weight")
    head_dim = None
    if key_len and mla is None and int(key_len) != hidden // n_heads:
        head_dim = int(key_len)
    elif mla is None and not key_len:
        q = shape("attn_q.weight")
        if q and q[1] // n_heads != hidden // n_heads:
            head_dim = q[1] // n_heads

    sliding = None
    swa = h.arch_key("attention.sliding_window")
    if swa and arch in _SWA_PATTERNS:
        pattern = _SWA_PATTERNS[arch]
        layer_pattern = h.arch_key("attention.sliding_window_pattern")
        if isinstance(layer_pattern, list) and layer_pattern:
            pattern = [bool(x) for x in layer_pattern]
        elif isinstance(layer_pattern, int) and layer_pattern > 0:
            pattern = [True] * (layer_pattern - 1) + [False]
        sliding = SlidingWindow(size=int(swa), pattern=pattern)

    extra_norms = sum(has(f"{n}.weight") for n in ("post_attention_norm", "post_ffw_norm"))
    # a GGUF without context_length: 4096, llama.cpp's default n_ctx (common/common.h; recalled, not re-checked)
    ctx_len = int(h.arch_key("context_length") or 4096)
    name = str(h.metadata.get("general.name") or h.path.stem)
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
MMPROJ_TYPES = ("mlp", "mlp_norm", "gemma3", "qwen2vl_merger", "qwen25vl_merger")


def gguf_mmproj(h: GgufHeader, llm: LlmSpec) -> tuple[VisionEncoderSpec, VlmSpec, WeightBytes, WeightBytes]:
    """Vision encoder + projector from a llama.cpp mmproj (clip) GGUF, with exact weights."""
    m = h.metadata
    if h.architecture != "clip":
        raise InputError(f"{h.path}: not a vision projector (mmproj) GGUF: general.architecture is '{h.architecture}', expected 'clip'.")
    ptype = str(m.get("clip.projector_type") or ("mlp" if m.get("clip.has_llava_projector") else ""))
    if ptype not in MMPROJ_TYPES:
        raise InputError(f"{h.path}: mmproj projector type '{ptype or '(none)'}' is not supported; supported: {', '.join(MMPROJ_TYPES)}.")
    t = {x.name: x for x in h.tensors}

    def key(k: str) -> Any:
        v = m.get(f"clip.vision.{k}")
        if v is None:
            raise InputError(f"{h.path}: mmproj metadata has no 'clip.vision.{k}'.")
        return v

    hidden = int(key("embedding_length"))
    n_layers = len({x.name.split(".")[2] for x in h.tensors if x.name.startswith("v.blk.")})
    gated = "v.blk.0.ffn_gate.weight" in t
    act = "swiglu" if gated else ("silu" if m.get("clip.use_silu") else "gelu" if m.get("clip.use_gelu") else "quick_gelu")
    family = {"mlp": "clip", "mlp_norm": "clip", "gemma3": "siglip", "qwen2vl_merger": "qwen2_vit", "qwen25vl_merger": "qwen25_vit"}[ptype]
    name = str(m.get("general.name") or h.path.stem)
    merge = int(m.get("clip.vision.spatial_merge_size") or (2 if "merger" in ptype else 1))
    image_size = int(key("image_size"))
    patch = int(key("patch_size"))
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
        num_heads=int(key("attention.head_count")),
        intermediate_size=int(key("feed_forward_length")),
        mlp_activation=act,  # type: ignore[arg-type]
        norm="layernorm" if "v.blk.0.ln1.bias" in t else "rmsnorm",
        class_token="v.class_embd" in t,
        patch_bias="v.patch_embd.bias" in t,
        qkv_bias="v.blk.0.attn_q.bias" in t,
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
            pairs = [(int(pinpoints[i]), int(pinpoints[i + 1])) for i in range(0, len(pinpoints) - 1, 2)]
            # LLaVA-1.6 adds one image_newline token per feature row (llama.cpp clip.cpp does the same for anyres)
            tokens, defaults = anyres_tokens(pairs, newline=True)
        else:
            tokens = FixedTokens(tokens=grid * grid)
    elif ptype == "gemma3":
        # Gemma 3 pools the 64x64 patch grid of a 896 px image 4x4 to 256 tokens (mm_tokens_per_image 256)
        scale = int(m.get("clip.vision.projector.scale_factor") or 4)
        projector = Projector(kind="pooled_linear", merge=scale)
        tokens = FixedTokens(tokens=(grid // scale) ** 2)
    else:
        projector = Projector(kind="merger", merge=merge, norm=True)
        # Qwen2-VL image processor defaults (preprocessor_config.json: min_pixels 3136, max_pixels 12845056)
        tokens = DynamicResolutionTokens(min_pixels=3136, max_pixels=12845056, factor=patch * merge)
        if ptype == "qwen25vl_merger":
            full = m.get("clip.vision.fullatt_block_indexes") or []
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
