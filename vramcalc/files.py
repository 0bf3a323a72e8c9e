"""Models from the user's own files: GGUF headers, Hugging Face config.json, safetensors headers.

Only headers are read, never tensor data:
- GGUF: the key/value metadata and the tensor infos (name, shape, GGML type, offset), parsed here
  with the ``gguf`` package's constants (type ids, block sizes, file types). ``gguf.GGUFReader`` is
  not used: it builds a numpy view per tokenizer string (measured here with gguf 0.19: 6.9 s for a
  header holding a 151,936-token vocabulary and 151,387 merges, as Qwen2 GGUFs do; this parser
  0.1 s) and raises assorted exceptions on a short file. This parser walks the header through
  ``mmap`` (only the pages it touches are read), skips long arrays, and checks every length
  against the file size, so a truncated or corrupt file is a clean one-line error.
- safetensors: the 8-byte little-endian header length and the JSON header (dtype, shape, offsets
  of every tensor), the format's whole header (https://github.com/huggingface/safetensors#format).
- config.json: the Hugging Face ``PretrainedConfig`` fields, with the defaults of the transformers
  config classes for fields a config leaves out.

The result is a ``FileModel``: catalog-schema specs (so ``estimate()`` runs unchanged) plus the
exact weights of the file where it fixes them (GGUF: every tensor's type and size).
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vramcalc.errors import InputError
from vramcalc.estimate import FixedWeights
from vramcalc.quant import GGUF_FILE_TYPES, WeightBytes
from vramcalc.schema import (
    AnyresTokens,
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
    to_dict,
)

GGUF_MAGIC = b"GGUF"
#: GGUF metadata value types (gguf constants GGUFValueType): id -> struct format (None: string/array).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
#: Arrays longer than this (tokenizer vocabularies, merges) are skipped; only their length is kept.
#: A choice, not a format limit: per-layer arrays (head counts, SWA patterns) have one item per layer
#: (at most a few hundred), tokenizer arrays tens of thousands (32,000 for Llama 2).
_MAX_KEPT_ARRAY = 4096


@dataclass(frozen=True)
class GgufTensorInfo:
    """One tensor of a GGUF file, from its header."""

    name: str
    shape: tuple[int, ...]  # ne0 (row length) first, as GGUF stores it
    ggml_type: str  # GGML type name: F32, F16, Q4_K, ...
    offset: int  # from the start of the data section
    nbytes: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class SkippedArray:
    """A long metadata array (tokenizer) whose items were skipped: only its length is kept."""

    length: int


@dataclass
class GgufHeader:
    """What a GGUF file's header says: metadata, tensor infos, where the data starts."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: list[GgufTensorInfo]
    data_offset: int
    file_size: int

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_key(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{key}", default)


def _gguf_constants():  # noqa: ANN202
    try:
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType
    except ImportError as e:
        raise InputError("Reading GGUF files needs the 'gguf' package: pip install 'vramcalc[files]'.") from e
    return GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType


class _Cursor:
    """Bounds-checked reads over a memory map (a short read means the file is truncated)."""

    def __init__(self, buf: mmap.mmap, path: Path, order: str):
        self.buf, self.path, self.order, self.pos, self.size = buf, path, order, 0, len(buf)

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise InputError(f"{self.path}: truncated or corrupt GGUF file: {what} runs past the end of the file ({self.size} bytes).")

    def scalar(self, fmt: str, what: str) -> Any:
        n = struct.calcsize(fmt)
        self.need(n, what)
        (v,) = struct.unpack_from(self.order + fmt, self.buf, self.pos)
        self.pos += n
        return v

    def string(self, what: str) -> str:
        n = self.scalar("Q", what)
        self.need(n, what)
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{self.path}: corrupt GGUF file: {what} is not valid UTF-8.") from None

    def skip_strings(self, count: int, what: str) -> None:
        buf, order, pos, size = self.buf, self.order + "Q", self.pos, self.size
        unpack = struct.unpack_from
        for _ in range(count):
            if pos + 8 > size:
                self.pos = pos
                self.need(8, what)
            pos += 8 + unpack(order, buf, pos)[0]
        self.pos = pos
        self.need(0, what)

    def value(self, vtype: int, what: str) -> Any:
        fmt = _SCALARS.get(vtype)
        if fmt is not None:
            return self.scalar(fmt, what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            itype = self.scalar("I", what)
            count = self.scalar("Q", what)
            ifmt = _SCALARS.get(itype)
            if ifmt is not None:
                nbytes = count * struct.calcsize(ifmt)
                self.need(nbytes, what)
                if count > _MAX_KEPT_ARRAY:
                    self.pos += nbytes
                    return SkippedArray(count)
                out = list(struct.unpack_from(f"{self.order}{count}{ifmt}", self.buf, self.pos))
                self.pos += nbytes
                return out
            if itype == _STRING:
                if count > _MAX_KEPT_ARRAY:
                    self.need(8 * count, what)  # every string has at least its 8-byte length
                    self.skip_strings(count, what)
                    return SkippedArray(count)
                return [self.string(what) for _ in range(count)]
            if itype == _ARRAY:
                return [self.value(_ARRAY, what) for _ in range(count)]
            raise InputError(f"{self.path}: corrupt GGUF file: {what} has unknown array item type {itype}.")
        raise InputError(f"{self.path}: corrupt GGUF file: {what} has unknown value type {vtype}.")


def read_gguf_header(path: Path) -> GgufHeader:
    """Parse a GGUF file's header (metadata + tensor infos); the tensor data is never read.

    The file is memory-mapped, so only the pages the header walk touches are read from disk.
    Raises InputError for a file that is not GGUF, truncated, or corrupt, naming the file.
    """
    path = Path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise InputError(f"{path}: cannot open: {e.strerror or e}.") from None
    with f:
        size = path.stat().st_size
        if size < 24:
            raise InputError(f"{path}: not a GGUF file (only {size} bytes; a GGUF header is at least 24).")
        if f.read(4) != GGUF_MAGIC:
            raise InputError(f"{path}: not a GGUF file (the first bytes are not 'GGUF').")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return parse_gguf_header(buf, path, size)


def parse_gguf_header(buf: Any, path: Path, file_size: int) -> GgufHeader:
    """Parse a GGUF header from ``buf`` (any buffer holding at least the header's bytes).

    ``file_size`` is the size of the whole file, checked against what the header declares. The
    parser needs no byte past the header: a buffer holding only the header parses the same.
    """
    quant_sizes, qtype, _ = _gguf_constants()
    if bytes(buf[:4]) != GGUF_MAGIC or len(buf) < 24:
        raise InputError(f"{path}: not a GGUF file (the first bytes are not 'GGUF').")
    version = struct.unpack_from("<I", buf, 4)[0]
    order = "<"
    if version & 0xFFFF == 0:  # written on a big-endian host (gguf GGUFReader does the same test)
        order, version = ">", struct.unpack_from(">I", buf, 4)[0]
    if version not in (2, 3):
        raise InputError(f"{path}: unsupported GGUF version {version} (vramcalc reads versions 2 and 3).")
    size = file_size
    cur = _Cursor(buf, path, order)
    cur.pos = 8
    n_tensors = cur.scalar("Q", "the tensor count")
    n_kv = cur.scalar("Q", "the metadata count")
    # each metadata entry takes at least 12 bytes (key length 8 + value type 4), each tensor info at least 28
    # (name length 8 + n_dims 4 + type 4 + offset 8 = 24, and 8 per dimension: 32 for a 1-D tensor)
    if n_kv * 12 > size or n_tensors * 28 > size:
        raise InputError(f"{path}: truncated or corrupt GGUF file: it declares {n_kv} metadata entries and {n_tensors} tensors in {size} bytes.")
    meta: dict[str, Any] = {}
    for i in range(n_kv):
        key = cur.string(f"metadata key #{i}")
        vtype = cur.scalar("I", f"metadata '{key}'")
        meta[key] = cur.value(vtype, f"metadata '{key}'")
    tensors: list[GgufTensorInfo] = []
    for i in range(n_tensors):
        name = cur.string(f"tensor info #{i}")
        n_dims = cur.scalar("I", f"tensor '{name}'")
        if n_dims > 8:
            raise InputError(f"{path}: corrupt GGUF file: tensor '{name}' has {n_dims} dimensions.")
        shape = tuple(cur.scalar("Q", f"tensor '{name}'") for _ in range(n_dims))
        type_id = cur.scalar("I", f"tensor '{name}'")
        offset = cur.scalar("Q", f"tensor '{name}'")
        try:
            gtype = qtype(type_id)
        except ValueError:
            raise InputError(
                f"{path}: tensor '{name}' has GGML type {type_id}, unknown to the installed gguf package "
                "(a newer quantization? pip install -U gguf)."
            ) from None
        block, type_size = quant_sizes[gtype]
        numel = 1
        for d in shape:
            numel *= d
        if shape and shape[0] % block:
            raise InputError(f"{path}: corrupt GGUF file: tensor '{name}' rows of {shape[0]} are not whole {gtype.name} blocks of {block}.")
        tensors.append(GgufTensorInfo(name, shape, gtype.name, offset, numel // block * type_size))
    alignment = meta.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise InputError(f"{path}: corrupt GGUF file: general.alignment {alignment!r} is not a power of two.")
    data_offset = -(-cur.pos // alignment) * alignment
    end = max((t.offset + t.nbytes for t in tensors), default=0)
    if data_offset + end > size:
        raise InputError(
            f"{path}: truncated GGUF file: its header declares {data_offset + end:,} bytes but the file has {size:,} "
            "(an incomplete download?)."
        )
    return GgufHeader(path, version, meta, tensors, data_offset, size)


# ---------------------------------------------------------------------------------------------
# GGUF -> specs


#: llama.cpp architectures (general.architecture) whose tensors the catalog schema models, with
#: the family name the catalog uses and the FFN activation (llama.cpp src/llama-model.cpp).
GGUF_ARCHITECTURES: dict[str, tuple[str, str]] = {
    "llama": ("llama", "silu"),
    "mistral3": ("mistral", "silu"),
    "qwen2": ("qwen2", "silu"),
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


def slug(text: str) -> str:
    """A catalog id from a name: lowercase, [a-z0-9._-]."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-._")
    return s or "model"


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
    _, _, ftypes = _gguf_constants()
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
            raise InputError(f"{h.path}: this is a vision projector (mmproj) file; pass the language model GGUF and this one with --mmproj.")
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
    n_layers = int(_req(h, "block_count"))
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
        mla = Mla(kv_lora_rank=kv_rank, q_lora_rank=int(q_rank) if q_rank else None, qk_nope_head_dim=k_len - rope,
                  qk_rope_head_dim=rope, v_head_dim=v_len)

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
    for x in tensors:
        wb.add(x.ggml_type, x.numel, x.nbytes)
        if x.name == "token_embd.weight":
            wb.host_bytes += x.nbytes  # llama.cpp keeps the input embedding in host memory (see quant.gguf_weight_bytes)
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
        notes.append(f"{len(extra)} tensor(s) in the file beyond the architecture model (counted exactly): {', '.join(extra[:3])}" + (" ..." if len(extra) > 3 else ""))
    if missing or differ:
        notes.append(f"The file's layout differs from the architecture model in {len(missing) + len(differ)} tensor(s); weights are the file's, KV cache and buffers follow the model.")


def _anyres(pairs: list[Any], newline: bool) -> tuple[Any, VlmDefaults]:
    """LLaVA-1.6 anyres tokens for these grid pinpoints, and the default image size: the largest
    square one pinpoint holds (the largest short side)."""
    side = max(min(p) for p in pairs)
    return AnyresTokens(grid_pinpoints=pairs, newline_tokens=newline), VlmDefaults(image_size=(side, side))


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
            tokens, defaults = _anyres(pairs, newline=True)
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


# ---------------------------------------------------------------------------------------------
# safetensors headers


@dataclass
class SafetensorsSummary:
    """Parameter count and bytes by dtype over the tensors of one or more safetensors files."""

    files: list[Path] = field(default_factory=list)
    params: int = 0
    bytes: int = 0
    params_by_dtype: dict[str, int] = field(default_factory=dict)
    bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    vision_params: int = 0  # tensors under a vision tower / projector prefix

    @property
    def main_dtype(self) -> str:
        return max(self.params_by_dtype, key=self.params_by_dtype.get) if self.params_by_dtype else ""  # type: ignore[arg-type]


_VISION_PREFIXES = ("vision_tower", "model.vision_tower", "visual", "model.visual", "vision_model", "model.vision_model",
                    "multi_modal_projector", "model.multi_modal_projector", "mm_projector", "model.mm_projector", "vision_embed")


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON); data is not read."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise InputError(f"{path}: not a safetensors file (shorter than its 8-byte header length).")
        (n,) = struct.unpack("<Q", raw)
        # the safetensors library refuses headers over 100,000,000 bytes (MAX_HEADER_SIZE, safetensors
        # src/tensor.rs; recalled, not re-checked here); 100 MiB is the same sanity bound, slightly looser
        if n > size - 8 or n > 100 * 2**20:
            raise InputError(f"{path}: truncated or corrupt safetensors file (header length {n} in a file of {size} bytes).")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InputError(f"{path}: corrupt safetensors file: the header is not valid JSON.") from None
    if not isinstance(header, dict):
        raise InputError(f"{path}: corrupt safetensors file: the header is not a JSON object.")
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v), default=0)
    if 8 + n + end > size:
        raise InputError(f"{path}: truncated safetensors file: its header declares {8 + n + end:,} bytes but the file has {size:,}.")
    return header


def summarize_safetensors(paths: list[Path]) -> SafetensorsSummary:
    out = SafetensorsSummary(files=list(paths))
    for p in paths:
        for name, info in read_safetensors_header(p).items():
            if name == "__metadata__":
                continue
            try:
                dtype = str(info["dtype"])
                numel = 1
                for d in info["shape"]:
                    numel *= int(d)
                nbytes = int(info["data_offsets"][1]) - int(info["data_offsets"][0])
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{p}: corrupt safetensors header: tensor '{name}' lacks dtype, shape or data_offsets.") from None
            out.params += numel
            out.bytes += nbytes
            out.params_by_dtype[dtype] = out.params_by_dtype.get(dtype, 0) + numel
            out.bytes_by_dtype[dtype] = out.bytes_by_dtype.get(dtype, 0) + nbytes
            if name.startswith(_VISION_PREFIXES):
                out.vision_params += numel
    return out


# ---------------------------------------------------------------------------------------------
# Hugging Face config.json -> specs


#: Defaults of the transformers config classes for fields that published configs often omit
#: (transformers models/<type>/configuration_<type>.py __init__ defaults).
_HF_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                  max_position_embeddings=2048, hidden_act="silu", tie_word_embeddings=False),
    "mistral": dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                    num_key_value_heads=8, max_position_embeddings=4096 * 32, hidden_act="silu", sliding_window=4096, tie_word_embeddings=False),
    "qwen2": dict(vocab_size=151936, hidden_size=4096, intermediate_size=22016, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, max_position_embeddings=32768, hidden_act="silu", tie_word_embeddings=False),
    "gemma3_text": dict(vocab_size=262208, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26, num_attention_heads=8,
                        num_key_value_heads=4, head_dim=256, max_position_embeddings=131072, hidden_activation="gelu_pytorch_tanh",
                        sliding_window=4096, sliding_window_pattern=6, tie_word_embeddings=True),
    "clip_vision_model": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, image_size=224,
                              patch_size=32, hidden_act="quick_gelu"),
    "siglip_vision_model": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, image_size=224,
                                patch_size=16, hidden_act="gelu_pytorch_tanh"),
}
_HF_DEFAULTS["qwen3"] = _HF_DEFAULTS["qwen2"]

#: HF model_type -> catalog family, for the text models this reader knows.
HF_TEXT_TYPES = {
    "llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "qwen3": "qwen3", "gemma": "gemma", "gemma2": "gemma2",
    "gemma3_text": "gemma3", "phi3": "phi3", "mixtral": "mixtral", "qwen2_moe": "qwen2_moe", "qwen3_moe": "qwen3_moe",
    "deepseek_v2": "deepseek_v2", "deepseek_v3": "deepseek_v3", "gpt_oss": "gpt-oss", "granite": "granite", "olmo2": "olmo2",
}
HF_VLM_TYPES = ("llava", "llava_next", "qwen2_vl", "qwen2_5_vl", "gemma3")

_ACTS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu",
         "quick_gelu": "quick_gelu"}
_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def _get(cfg: dict[str, Any], mt: str, key: str, where: Path, default: Any = ...) -> Any:
    if cfg.get(key) is not None:
        return cfg[key]
    d = _HF_DEFAULTS.get(mt, {}).get(key)
    if d is not None:
        return d
    if default is not ...:
        return default
    raise InputError(f"{where}: the config has no '{key}' (model_type '{mt}'), needed for the estimate.")


def _pattern(layer_types: list[str]) -> list[bool]:
    """Shortest repeating unit of a per-layer list of attention types."""
    flags = [str(x).startswith("sliding") for x in layer_types]
    for n in range(1, len(flags) + 1):
        if all(flags[i] == flags[i % n] for i in range(len(flags))):
            return flags[:n]
    return flags


def llm_from_hf(cfg: dict[str, Any], where: Path, ident: str, name: str, torch_dtype: str | None = None) -> LlmSpec:
    """An LlmSpec from a Hugging Face text config (the top level or a VLM's text_config)."""
    mt = str(cfg.get("model_type") or "")
    if mt == "gemma3":
        mt = "gemma3_text"
    if mt not in HF_TEXT_TYPES:
        raise InputError(f"{where}: model_type '{mt or '(none)'}' is not supported; supported: {', '.join(sorted(HF_TEXT_TYPES))}.")

    def g(key: str, default: Any = ...) -> Any:
        return _get(cfg, mt, key, where, default)

    hidden = int(g("hidden_size"))
    heads = int(g("num_attention_heads"))
    n_layers = int(g("num_hidden_layers"))
    defaults = _HF_DEFAULTS.get(mt, {})
    head_dim = cfg.get("head_dim") or defaults.get("head_dim")
    if head_dim and int(head_dim) == hidden // heads:
        head_dim = None
    act_name = str(cfg.get("hidden_activation") or cfg.get("hidden_act") or defaults.get("hidden_activation")
                   or defaults.get("hidden_act") or ("gelu_pytorch_tanh" if mt.startswith("gemma") else "silu"))
    activation = "swiglu_oai" if mt == "gpt_oss" else _ACTS.get(act_name, "silu")
    if activation == "quick_gelu":
        activation = "gelu"
    gemma = mt in ("gemma", "gemma2", "gemma3_text")
    bias = bool(cfg.get("attention_bias", False))
    moe = None
    ff = int(g("intermediate_size", 0) or 0)
    if mt in ("mixtral", "gpt_oss"):
        moe = Moe(num_experts=int(g("num_local_experts")), experts_per_token=int(cfg.get("num_experts_per_tok") or g("experts_per_token")),
                  expert_intermediate_size=ff, expert_bias=mt == "gpt_oss", router_bias=mt == "gpt_oss",
                  expert_dtype="mxfp4" if (cfg.get("quantization_config") or {}).get("quant_method") == "mxfp4" else "native")
    elif mt in ("qwen2_moe", "qwen3_moe"):
        step = int(cfg.get("decoder_sparse_step") or 1)
        only = set(cfg.get("mlp_only_layers") or [])
        dense = [i for i in range(n_layers) if i in only or (i + 1) % step != 0]
        shared = int(cfg.get("shared_expert_intermediate_size") or 0)
        moe = Moe(num_experts=int(g("num_experts")), experts_per_token=int(g("num_experts_per_tok")),
                  expert_intermediate_size=int(g("moe_intermediate_size")), shared_experts=1 if shared else 0,
                  shared_expert_intermediate_size=shared or None, shared_expert_gate=bool(shared), dense_layers=dense)
    elif mt in ("deepseek_v2", "deepseek_v3"):
        n_routed = cfg.get("n_routed_experts")
        if n_routed:
            k_dense = int(cfg.get("first_k_dense_replace") or 0)
            freq = int(cfg.get("moe_layer_freq") or 1)
            dense = [i for i in range(n_layers) if i < k_dense or i % freq != 0]
            moe = Moe(num_experts=int(n_routed), experts_per_token=int(g("num_experts_per_tok")),
                      expert_intermediate_size=int(g("moe_intermediate_size")), shared_experts=int(cfg.get("n_shared_experts") or 0),
                      dense_layers=dense, router_bias=mt == "deepseek_v3")
    mla = None
    if mt in ("deepseek_v2", "deepseek_v3"):
        q_rank = cfg.get("q_lora_rank")
        mla = Mla(kv_lora_rank=int(g("kv_lora_rank")), q_lora_rank=int(q_rank) if q_rank else None,
                  qk_nope_head_dim=int(g("qk_nope_head_dim")), qk_rope_head_dim=int(g("qk_rope_head_dim")), v_head_dim=int(g("v_head_dim")))
        head_dim = None
    sliding = None
    window = cfg.get("sliding_window") if "sliding_window" in cfg else defaults.get("sliding_window")
    layer_types = cfg.get("layer_types")
    if window and isinstance(layer_types, list) and layer_types:
        pat = _pattern(layer_types)
        if any(pat):
            sliding = SlidingWindow(size=int(window), pattern=pat)
    elif window and mt == "gemma2":
        sliding = SlidingWindow(size=int(window), pattern=[True, False])
    elif window and mt == "gemma3_text":
        n = int(cfg.get("sliding_window_pattern") or 6)
        sliding = SlidingWindow(size=int(window), pattern=[True] * (n - 1) + [False])
    elif window and (mt == "mistral" or (mt in ("qwen2", "qwen3") and cfg.get("use_sliding_window"))):
        sliding = SlidingWindow(size=int(window), pattern=[True])
    dtype = _DTYPES.get(str(cfg.get("torch_dtype") or cfg.get("dtype") or torch_dtype or "bfloat16"), "bf16")
    return LlmSpec(
        id=ident,
        name=name,
        source=f"Hugging Face config {where} (model_type {mt}; read by vramcalc)",
        family=HF_TEXT_TYPES[mt],
        num_layers=n_layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=int(cfg.get("num_key_value_heads") or defaults.get("num_key_value_heads") or heads),
        head_dim=int(head_dim) if head_dim else None,
        intermediate_size=ff or (moe.expert_intermediate_size if moe else 1),
        gated_mlp=True,
        activation=activation,  # type: ignore[arg-type]
        vocab_size=int(g("vocab_size")),
        tied_embeddings=bool(cfg.get("tie_word_embeddings", defaults.get("tie_word_embeddings", gemma))),
        qkv_bias=mt in ("qwen2", "qwen2_moe") or bias,
        attn_out_bias=bias and mt not in ("qwen2", "qwen2_moe"),
        mlp_bias=bool(cfg.get("mlp_bias", False)),
        fused_qkv=mt == "phi3",
        fused_gate_up=mt == "phi3",
        qk_norm=mt in ("qwen3", "qwen3_moe", "gemma3_text", "olmo2"),
        extra_norms_per_layer=2 if mt in ("gemma2", "gemma3_text") else 0,
        attention_sinks=mt == "gpt_oss",
        max_context=int(g("max_position_embeddings")),
        sliding_window=sliding,
        moe=moe,
        mla=mla,
        dtype=dtype,  # type: ignore[arg-type]
    )


def _vision_from_hf(vlm_type: str, vc: dict[str, Any], where: Path, ident: str, name: str) -> VisionEncoderSpec:
    """The vision tower of a HF VLM config (transformers modeling_clip / siglip / qwen2_vl / qwen2_5_vl layouts)."""
    common = dict(id=ident, name=name, source=f"vision_config of the Hugging Face config {where} (read by vramcalc)")
    if vlm_type in ("llava", "llava_next", "gemma3"):
        mt = str(vc.get("model_type") or ("siglip_vision_model" if vlm_type == "gemma3" else "clip_vision_model"))
        if mt not in ("clip_vision_model", "siglip_vision_model"):
            raise InputError(f"{where}: vision_config model_type '{mt}' is not supported (clip_vision_model, siglip_vision_model).")
        clip = mt == "clip_vision_model"

        def g(key: str) -> Any:
            return _get(vc, mt, key, where)

        act = _ACTS.get(str(g("hidden_act")), "gelu")
        return VisionEncoderSpec(
            **common, family="clip" if clip else "siglip", image_size=int(g("image_size")), patch_size=int(g("patch_size")),
            hidden_size=int(g("hidden_size")), num_layers=int(g("num_hidden_layers")), num_heads=int(g("num_attention_heads")),
            intermediate_size=int(g("intermediate_size")), mlp_activation=act, class_token=clip, patch_bias=not clip,
            pre_norm=clip, post_norm=True, dtype="fp16",  # type: ignore[arg-type]
        )
    # Qwen2-VL / Qwen2.5-VL vision transformers. Fallbacks for fields a vision_config leaves out: the
    # published 7B vision_configs (shared/reference/hf_configs/vlm/Qwen2-VL-7B-Instruct.json: depth 32,
    # embed_dim 1280, mlp_ratio 4, num_heads 16, patch_size 14; Qwen2.5-VL-7B-Instruct.json: hidden_size
    # 1280, intermediate_size 3420, window_size 112). The towers have no native size (dynamic
    # resolution): image_size 32 patches (448 px) is only a nominal side, as the catalog entries use.
    depth = int(vc.get("depth") or 32)
    patch = int(vc.get("patch_size") or 14)
    if vlm_type == "qwen2_vl":
        embed = int(vc.get("embed_dim") or 1280)
        return VisionEncoderSpec(
            **common, family="qwen2_vit", image_size=patch * 32, patch_size=patch, temporal_patch_size=int(vc.get("temporal_patch_size") or 2),
            hidden_size=embed, num_layers=depth, num_heads=int(vc.get("num_heads") or 16), intermediate_size=int(embed * float(vc.get("mlp_ratio") or 4)),
            mlp_activation="quick_gelu", class_token=False, patch_bias=False, position_embedding="rope2d", post_norm=False, dtype="bf16",
        )
    hid = int(vc.get("hidden_size") or 1280)
    full = vc.get("fullatt_block_indexes") or []
    return VisionEncoderSpec(
        **common, family="qwen25_vit", image_size=patch * 32, patch_size=patch, temporal_patch_size=int(vc.get("temporal_patch_size") or 2),
        hidden_size=hid, num_layers=depth, num_heads=int(vc.get("num_heads") or 16), intermediate_size=int(vc.get("intermediate_size") or 3420),
        mlp_activation="swiglu", norm="rmsnorm", class_token=False, patch_bias=False, mlp_bias=True, position_embedding="rope2d", post_norm=False,
        window_attention=WindowAttention(window_size_px=int(vc.get("window_size") or 112), full_attention_layers=list(full)) if full else None,
        dtype="bf16",
    )


@dataclass
class ConfigModel:
    """Specs read from a Hugging Face config.json."""

    model: LlmSpec | VlmSpec
    llm: LlmSpec
    encoder: VisionEncoderSpec | None


def model_from_hf_config(cfg: dict[str, Any], where: Path, ident: str, name: str) -> ConfigModel:
    """An LLM or a VLM (encoder + projector + LLM) from a config.json's contents."""
    if not isinstance(cfg, dict) or not ("model_type" in cfg or "architectures" in cfg):
        raise InputError(f"{where}: not a model config (no 'model_type' or 'architectures' field).")
    mt = str(cfg.get("model_type") or "")
    if mt not in HF_VLM_TYPES:
        llm = llm_from_hf(cfg, where, ident, name)
        return ConfigModel(llm, llm, None)
    text = cfg.get("text_config")
    if mt == "llava" and text is None and cfg.get("mm_vision_tower"):
        return _original_llava(cfg, where, ident, name)
    if text is None:  # Qwen2-VL configs keep the text fields at the top level
        text = {k: v for k, v in cfg.items() if k != "vision_config"}
        text["model_type"] = "qwen2"
    else:
        text = dict(text)
        text.setdefault("model_type", {"llava": "llama", "llava_next": "llama", "gemma3": "gemma3_text"}.get(mt, "qwen2"))
    llm = llm_from_hf(text, where, ident + "-text", name + " (language model)", cfg.get("torch_dtype"))
    vc = cfg.get("vision_config") or {}
    enc = _vision_from_hf(mt, vc, where, ident + "-vision", name + " (vision tower)")
    defaults = VlmDefaults()
    if mt in ("llava", "llava_next"):
        projector = Projector(kind="mlp", layers=2)
        grid = enc.image_size // enc.patch_size
        if mt == "llava_next":
            # default: LlavaNextConfig.image_grid_pinpoints (transformers models/llava_next/configuration_llava_next.py)
            pins = [tuple(int(x) for x in p) for p in cfg.get("image_grid_pinpoints") or [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]]
            tokens, defaults = _anyres(pins, newline=bool(cfg.get("use_image_newline_parameter", True)))
        else:
            tokens = FixedTokens(tokens=grid * grid)
    elif mt == "gemma3":
        per = int(cfg.get("mm_tokens_per_image") or 256)  # Gemma3Config default (transformers configuration_gemma3.py)
        grid = enc.image_size // enc.patch_size
        projector = Projector(kind="pooled_linear", merge=max(1, round(grid / per**0.5)))
        tokens = FixedTokens(tokens=per)
    else:
        merge = int(vc.get("spatial_merge_size") or 2)
        projector = Projector(kind="merger", merge=merge, norm=True, hidden_size=enc.hidden_size * merge**2)
        # Qwen2-VL image processor defaults, as in gguf_mmproj above
        tokens = DynamicResolutionTokens(min_pixels=3136, max_pixels=12845056, factor=enc.patch_size * merge)
        defaults = VlmDefaults(image_size=(1024, 768))  # a choice: the 4:3 photo the catalog VLMs assume (data/vlms notes)
    vlm = VlmSpec(
        id=ident, name=name, source=f"Hugging Face config {where} (model_type {mt}; read by vramcalc)", encoder=enc.id, llm=llm.id,
        projector=projector, image_tokens=tokens, defaults=defaults,
    )
    return ConfigModel(vlm, llm, enc)


def _original_llava(cfg: dict[str, Any], where: Path, ident: str, name: str) -> ConfigModel:
    """A config in the original LLaVA repo's format (liuhaotian/llava-v1.5-7b): the LLM's fields at
    the top level, the vision tower named by its HF repo id (mm_vision_tower), looked up in the catalog."""
    from vramcalc.catalog import load_catalog

    text = {k: v for k, v in cfg.items() if not k.startswith("mm_")}
    arch = " ".join(cfg.get("architectures") or [])
    text["model_type"] = "mistral" if "Mistral" in arch else "llama"
    llm = llm_from_hf(text, where, ident + "-text", name + " (language model)")
    tower = str(cfg["mm_vision_tower"])
    hit = load_catalog().lookup(["encoders"], tower)
    if hit is None:
        raise InputError(f"{where}: vision tower '{tower}' (mm_vision_tower) is not in the catalog; add it under encoders/ first.")
    enc = load_catalog().encoder(hit[1])
    ptype = str(cfg.get("mm_projector_type") or "linear")
    m = re.fullmatch(r"mlp(\d+)x_gelu", ptype)
    projector = Projector(kind="mlp", layers=int(m.group(1))) if m else Projector(kind="linear", layers=1)
    grid = enc.image_size // enc.patch_size
    defaults = VlmDefaults()
    pins = cfg.get("image_grid_pinpoints")
    if str(cfg.get("image_aspect_ratio")) == "anyres" and pins:
        tokens, defaults = _anyres([tuple(int(x) for x in p) for p in pins], newline=True)
    else:
        tokens = FixedTokens(tokens=grid * grid)
    vlm = VlmSpec(id=ident, name=name, source=f"LLaVA config {where} (mm_vision_tower {tower}; read by vramcalc)", encoder=enc.id,
                  llm=llm.id, projector=projector, image_tokens=tokens, defaults=defaults)
    return ConfigModel(vlm, llm, enc)


# ---------------------------------------------------------------------------------------------
# Entry point: a path -> a FileModel


@dataclass
class FileModel:
    """A model read from the user's files, ready for ``estimate()``."""

    path: Path
    kind: str  # 'gguf' or 'hf'
    model: LlmSpec | VlmSpec
    llm: LlmSpec
    encoder: VisionEncoderSpec | None
    weights: FixedWeights | None  # exact weights where the files fix them
    quant: str | None  # GGUF file type (Q4_K_M ...) or the checkpoint dtype
    safetensors: SafetensorsSummary | None = None
    notes: list[str] = field(default_factory=list)

    def catalog(self):  # noqa: ANN201
        """An in-memory catalog holding this model's parts, for ``vlm_parts``/``estimate``."""
        from vramcalc.catalog import Catalog, RawEntry

        cat = Catalog.load([])  # empty: no roots
        for kind, spec in (("llms", self.llm), ("encoders", self.encoder), ("vlms", self.model if isinstance(self.model, VlmSpec) else None)):
            if spec is not None:
                cat.raw[kind][spec.id] = RawEntry(kind, self.path, entry_data(spec))
                cat._validated[(kind, spec.id)] = spec
        return cat

    def entries(self) -> list[tuple[str, Any]]:
        """(catalog folder, spec) for every entry ``import`` writes."""
        out: list[tuple[str, Any]] = [("llms", self.llm)]
        if self.encoder is not None:
            out.append(("encoders", self.encoder))
        if isinstance(self.model, VlmSpec):
            out.append(("vlms", self.model))
        return out


def looks_like_path(text: str) -> bool:
    """True when a MODEL argument names a file or folder rather than a catalog id."""
    if text.startswith(("./", "../", "/", "~", ".\\")) or text.endswith((".gguf", ".json", ".safetensors")):
        return True
    return Path(text).exists()


def load_model_files(path: str | Path, mmproj: str | Path | None = None, runtime: str = "llama.cpp") -> FileModel:
    """Read a model from a GGUF file (+ mmproj), a config.json, or a model folder.

    Args:
        path: a ``.gguf`` file, a ``config.json``, or a folder holding ``config.json`` (and
            ``*.safetensors``, whose headers give exact parameter counts and dtypes).
        mmproj: a llama.cpp vision projector GGUF for a VLM (with a GGUF ``path``).
        runtime: the runtime the estimate is for; safetensors weights are exact for transformers.

    Raises:
        InputError: a missing, truncated or corrupt file, or a model this reader does not know.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p}: no such file or folder.")
    if p.is_dir():
        ggufs = sorted(p.glob("*.gguf"))
        if (p / "config.json").is_file() and mmproj is None:
            return _from_config(p / "config.json", runtime)
        if len(ggufs) >= 1:
            # later parts of a split GGUF are read through the first one
            main = [g for g in ggufs if "mmproj" not in g.name.lower() and not re.search(r"-(?!00001)\d{5}-of-\d{5}\.gguf$", g.name)]
            proj = [g for g in ggufs if "mmproj" in g.name.lower()]
            if len(main) == 1:
                return _from_gguf(main[0], mmproj or (proj[0] if len(proj) == 1 else None))
            raise InputError(f"{p}: folder has no config.json and {len(main)} GGUF files; name the file to check.")
        raise InputError(f"{p}: folder has no config.json (nor a .gguf file).")
    if p.suffix.lower() == ".gguf" or _has_gguf_magic(p):
        return _from_gguf(p, mmproj)
    if mmproj is not None:
        raise InputError(f"{p}: --mmproj goes with a .gguf language model; a Hugging Face config describes its vision tower itself.")
    if p.suffix.lower() == ".safetensors":
        cfg = p.parent / "config.json"
        if cfg.is_file():
            return _from_config(cfg, runtime)
        raise InputError(f"{p}: a safetensors file needs the model's config.json beside it.")
    return _from_config(p, runtime)


def _has_gguf_magic(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _split_shards(h: GgufHeader) -> list[Path]:
    """Other shards of a split GGUF (model-00001-of-00003.gguf), by llama.cpp's naming."""
    count = h.metadata.get("split.count")
    if not isinstance(count, int) or count <= 1:
        return []
    m = re.search(r"-(\d{5})-of-(\d{5})\.gguf$", h.path.name)
    if not m:
        raise InputError(f"{h.path}: split GGUF ({count} parts) whose name does not follow -NNNNN-of-NNNNN.gguf.")
    out = []
    for i in range(1, count + 1):
        q = h.path.with_name(h.path.name[: m.start()] + f"-{i:05d}-of-{count:05d}.gguf")
        if q != h.path:
            if not q.is_file():
                raise InputError(f"{h.path}: part {i} of this split GGUF is missing: {q.name}.")
            out.append(q)
    return out


def _from_gguf(path: Path, mmproj: str | Path | None) -> FileModel:
    h = read_gguf_header(path)
    if h.architecture == "clip":
        raise InputError(f"{path}: this is a vision projector (mmproj) file; pass the language model GGUF and this one with --mmproj.")
    for shard in _split_shards(h):
        sh = read_gguf_header(shard)
        h.tensors.extend(sh.tensors)
    spec, exact, notes = gguf_llm(h)
    if h.metadata.get("split.count", 1) not in (None, 1):
        notes.append(f"Split GGUF: {h.metadata['split.count']} parts read.")
    if mmproj is None:
        return FileModel(path, "gguf", spec, spec, None, FixedWeights(llm=exact), exact.precision, notes=notes)
    mh = read_gguf_header(Path(mmproj).expanduser())
    enc, vlm, wb_vis, wb_proj = gguf_mmproj(mh, spec)
    return FileModel(path, "gguf", vlm, spec, enc, FixedWeights(llm=exact, vision=wb_vis, projector=wb_proj), exact.precision, notes=notes)


def _from_config(cfg_path: Path, runtime: str) -> FileModel:
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{cfg_path}: cannot read as text: {e}.") from None
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{cfg_path}: not valid JSON ({e.msg} at line {e.lineno}).") from None
    folder = cfg_path.parent
    # the folder's name (as downloaded: 'Llama-2-7b-hf'), else the file's stem
    name = folder.resolve().name if cfg_path.name == "config.json" else cfg_path.stem
    cm = model_from_hf_config(cfg, cfg_path, slug(name), name)
    shards = sorted(folder.glob("*.safetensors")) if cfg_path.name == "config.json" else []
    notes: list[str] = []
    summary = None
    weights = None
    quant = None
    llm, model = cm.llm, cm.model
    if shards:
        summary = summarize_safetensors(shards)
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            try:
                wanted = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
            except (json.JSONDecodeError, AttributeError, OSError):
                wanted = set()
            missing = sorted(w for w in wanted if not (folder / w).is_file())
            if missing:
                raise InputError(f"{index}: lists shards that are not in the folder: {', '.join(missing[:3])}.")
        dtype = summary.main_dtype
        quant = {"BF16": "bf16", "F16": "fp16", "F32": "fp32"}.get(dtype)
        text_params = summary.params - summary.vision_params
        llm = dataclasses.replace(llm, published_params=text_params, **({"dtype": quant} if quant else {}))
        if isinstance(model, VlmSpec):
            model = dataclasses.replace(model, published_params=summary.params)
        else:
            model = llm
        notes.append(f"{len(shards)} safetensors file(s): {summary.params:,} parameters, mostly {dtype}.")
        if runtime == "transformers" and quant:
            # exact bytes of the checkpoint's tensors, as transformers loads them at their dtype
            wb = WeightBytes(quant, bytes=summary.bytes, params=summary.params, by_type=dict(summary.bytes_by_dtype))
            if summary.vision_params == 0:
                weights = FixedWeights(llm=wb)
    return FileModel(cfg_path, "hf", model, llm, cm.encoder, weights, quant, summary, notes)


def renamed(fm: FileModel, new_id: str) -> FileModel:
    """The same model under another catalog id (a VLM's parts get '-text' / '-vision' suffixes)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", new_id):
        raise InputError(f"--id '{new_id}': ids are lowercase letters, digits, '.', '_' and '-', starting with a letter or digit.")
    if not isinstance(fm.model, VlmSpec):
        llm = dataclasses.replace(fm.llm, id=new_id)
        return FileModel(fm.path, fm.kind, llm, llm, None, fm.weights, fm.quant, fm.safetensors, fm.notes)
    llm = dataclasses.replace(fm.llm, id=new_id + "-text")
    enc = dataclasses.replace(fm.encoder, id=new_id + "-vision") if fm.encoder else None
    vlm = dataclasses.replace(fm.model, id=new_id, llm=llm.id, encoder=enc.id if enc else fm.model.encoder)
    return FileModel(fm.path, fm.kind, vlm, llm, enc, fm.weights, fm.quant, fm.safetensors, fm.notes)


def entry_data(spec: Any) -> dict[str, Any]:
    """A spec as a catalog YAML mapping: non-default fields only, but with the discriminator
    ``kind`` of nested unions (image_tokens) kept, so the entry validates when read back."""
    data = to_dict(spec, exclude_defaults=True, exclude={"kind"})
    if isinstance(spec, VlmSpec):
        tokens = to_dict(spec.image_tokens, exclude_defaults=True)
        data["image_tokens"] = {"kind": spec.image_tokens.kind, **tokens}
    return data
