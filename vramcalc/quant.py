"""Weight precisions: GGML block types, llama.cpp file types (per-tensor mixtures), and the
PyTorch-side formats (fp16/bf16/fp8/int8, bitsandbytes NF4/LLM.int8, GPTQ/AWQ 4-bit).

GGUF file types such as Q4_K_M are not one bit-width: llama.cpp's ``llama_tensor_get_type``
(src/llama-quant.cpp) picks a type per tensor. ``gguf_tensor_type`` follows that function for the
tensors our catalog models have (llama.cpp at b4000-b6000, 2024-11 .. 2025-10; the rules for these
tensors were unchanged over that range; checked tensor by tensor against ``llama-quantize --dry-run`` at
0c1e57098, tests/test_quant_round2.py). ``gguf_typed_tensors`` adds what a single tensor does not show:
the converter's splits (MLA attn_kv_b, Gated DeltaNet ssm_in) and the quantizer's running counters.
Block layouts: ggml/src/ggml.c ``type_traits`` (bytes per block / weights per block), as listed in
shared/reference/field.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vramcalc.errors import InputError
from vramcalc.params import Tensor

#: GGML tensor types: (bytes per block, weights per block). ggml/src/ggml.c type_traits.
GGML_TYPES: dict[str, tuple[int, int]] = {
    "F32": (4, 1),
    "F16": (2, 1),
    "BF16": (2, 1),
    "Q8_0": (34, 32),
    "Q4_0": (18, 32),
    "Q4_1": (20, 32),
    "Q5_0": (22, 32),
    "Q5_1": (24, 32),
    "Q2_K": (84, 256),
    "Q3_K": (110, 256),
    "Q4_K": (144, 256),
    "Q5_K": (176, 256),
    "Q6_K": (210, 256),
    "Q8_K": (292, 256),
    "IQ4_XS": (136, 256),
    "IQ4_NL": (18, 32),
    "IQ3_XXS": (98, 256),
    "IQ3_S": (110, 256),
    "IQ2_XXS": (66, 256),
    "IQ2_XS": (74, 256),
    "IQ2_S": (82, 256),
    "IQ1_S": (50, 256),
    "IQ1_M": (56, 256),
    "MXFP4": (17, 32),
}

#: llama.cpp file types (``llama-quantize`` names) -> default tensor type (llama-quant.cpp, switch on ftype).
GGUF_FILE_TYPES: dict[str, str] = {
    "F32": "F32",
    "F16": "F16",
    "BF16": "BF16",
    "Q8_0": "Q8_0",
    "Q6_K": "Q6_K",
    "Q5_K_M": "Q5_K",
    "Q5_K_S": "Q5_K",
    "Q5_1": "Q5_1",
    "Q5_0": "Q5_0",
    "Q4_K_M": "Q4_K",
    "Q4_K_S": "Q4_K",
    "Q4_1": "Q4_1",
    "Q4_0": "Q4_0",
    "IQ4_XS": "IQ4_XS",
    "IQ4_NL": "IQ4_NL",
    "Q3_K_L": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_S": "Q3_K",
    "IQ3_M": "IQ3_S",
    "IQ3_S": "IQ3_S",
    "IQ3_XXS": "IQ3_XXS",
    "Q2_K": "Q2_K",
    "IQ2_M": "IQ2_S",
    "IQ2_S": "IQ2_XS",  # sic: llama_ftype_get_default_type (llama-quant.cpp) gives IQ2_S files IQ2_XS tensors
    "IQ3_XS": "IQ3_S",
    "Q2_K_S": "Q2_K",
    "IQ2_XS": "IQ2_XS",
    "IQ2_XXS": "IQ2_XXS",
    "IQ1_M": "IQ1_M",
    "IQ1_S": "IQ1_S",
    "MXFP4_MOE": "MXFP4",
}

#: Quality order used by `fit` (best first), see issue 5; the K-quant mixtures in between.
GGUF_QUALITY_ORDER = ["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K"]

# When a row length is not a multiple of the block size, llama.cpp falls back (llama-quant.cpp,
# "tensor cols ... are not divisible by ..., required for ..."): K-quants -> legacy quants.
_FALLBACK = {
    "IQ2_XXS": "IQ4_NL",
    "IQ2_XS": "IQ4_NL",
    "IQ2_S": "IQ4_NL",
    "IQ3_XXS": "IQ4_NL",
    "IQ3_S": "IQ4_NL",
    "IQ1_S": "IQ4_NL",
    "IQ1_M": "IQ4_NL",
    "Q2_K": "Q4_0",
    "Q3_K": "Q4_0",
    "IQ4_XS": "IQ4_NL",
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}

#: PyTorch-side formats: (bits per quantized weight incl. its scales, what stays in 16-bit).
#: Linear weights of attention and FFN are quantized; embeddings, lm_head and norms stay 16-bit.
#: - bnb NF4 (bitsandbytes Linear4bit, blocksize 64, fp32 absmax; double quant off, the transformers
#:   default BitsAndBytesConfig.bnb_4bit_use_double_quant=False): 4 + 32/64 = 4.5 bits.
#: - bnb int8 (LLM.int8, Linear8bitLt): 8 bits + one fp32 scale per output row (counted per tensor below).
#: - GPTQ / AWQ 4-bit, group size 128: 4 bits + fp16 scale + 4-bit zero per group = 4 + 20/128 bits.
#: - fp8 (e4m3, per-tensor scale): 8 bits.
TORCH_FORMATS: dict[str, float] = {
    "fp32": 32.0,
    "fp16": 16.0,
    "bf16": 16.0,
    "fp8": 8.0,
    "int8": 8.0,
    "nf4": 4.5,
    "gptq-int4": 4.0 + 20 / 128,
    "awq-int4": 4.0 + 20 / 128,
    "gptq-int8": 8.0 + 24 / 128,
}

_GGUF_ALIASES = {
    "q8": "Q8_0",
    "q4": "Q4_0",
    "fp16": "F16",
    "float16": "F16",
    "fp32": "F32",
    "float32": "F32",
    "bfloat16": "BF16",
    "mxfp4": "MXFP4_MOE",
}
_TORCH_ALIASES = {
    "awq": "awq-int4",
    "gptq": "gptq-int4",
    "bnb-nf4": "nf4",
    "bnb4": "nf4",
    "4bit": "nf4",
    "bnb-int8": "int8",
    "8bit": "int8",
    "float16": "fp16",
    "bfloat16": "bf16",
    "float32": "fp32",
}


def normalize_gguf_type(name: str) -> str:
    """Canonical GGUF file type: 'q4_k_m' -> 'Q4_K_M', 'fp16' -> 'F16'."""
    low = name.strip().lower()
    up = _GGUF_ALIASES.get(low, low.upper().replace("-", "_"))
    if up in GGUF_FILE_TYPES:
        return up
    raise InputError(f"Unknown llama.cpp quantization '{name}'. Known: {', '.join(GGUF_FILE_TYPES)}.")


def normalize_torch_format(name: str, runtime: str = "transformers") -> str:
    """Canonical PyTorch weight format: 'bnb-nf4' -> 'nf4', 'bfloat16' -> 'bf16'."""
    low = name.strip().lower()
    canon = _TORCH_ALIASES.get(low, low)
    if canon in TORCH_FORMATS:
        return canon
    raise InputError(f"Unknown {runtime} precision '{name}'. Known: {', '.join(TORCH_FORMATS)}.")


def ggml_type_bytes(ggml_type: str, numel: int) -> int:
    block_bytes, block = GGML_TYPES[ggml_type]
    return -(-numel // block) * block_bytes


@dataclass(frozen=True)
class QuantContext:
    """What llama_tensor_get_type needs to know about the model."""

    ftype: str
    n_layers: int
    n_gqa: int = 1  # heads per KV head
    n_expert: int = 0
    is_70b: bool = False  # llama.cpp LLM_TYPE_70B (Llama 2/3 70B: 80 layers)
    has_output: bool = True  # False when embeddings are tied: token_embd then gets the output rules
    #: MLA (qk_nope_head_dim, v_head_dim): the converter splits attn_kv_b into 3-D attn_k_b / attn_v_b
    mla_kv_b: tuple[int, int] = (0, 0)
    #: Gated DeltaNet value width (num_value_heads x value_head_dim): the converter splits ssm_in
    #: (in_proj_qkvz) into attn_qkv (q, k, v) and attn_gate (z)
    gdn_value_dim: int = 0


def _use_more_bits(i_layer: int, n_layers: int) -> bool:
    # llama-quant.cpp use_more_bits(): first and last eighth, and every third layer in between
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


#: File types that llama.cpp's quantizer handles in its IQ1/IQ2 branch (llama-quant.cpp).
_IQ12 = ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M")


def _category(role: str) -> str:
    """llama-quant.cpp ``tensor_get_category``: substring tests on the tensor name, in its order."""
    if role == "output":
        return "output"
    if role == "token_embd":
        return "token_embd"
    # name.find("attn_qkv.weight") etc.: a suffix match on the role (mllama's cross_attn_v is an attn_v, while
    # attn_kv_a_mqa, attn_q_a / attn_q_b and MLA's attn_k_b / attn_v_b match none)
    if role.endswith(("attn_qkv", "attn_kv_b", "attn_v")):
        return "attn_v"  # category_is_attn_v(): ATTENTION_V, ATTENTION_QKV and ATTENTION_KV_B share the rules
    for part in ("attn_k", "attn_q", "attn_output"):
        if role.endswith(part):
            return part
    for part in ("ffn_up", "ffn_gate", "ffn_down"):
        if part in role:
            return part
    return "other"


def _quantizable(t: Tensor) -> bool:
    """Norms, biases, scalars are never quantized (tensor_allows_quantization: ggml_n_dims(tensor) >= 2 and
    the name ends with "weight"); the converter writes them in F32 (conversion/base.py prepare_tensors:
    n_dims <= 1, or a name not ending in ".weight" -> F32), e.g. gpt-oss's 2-D ffn_*_exps.bias."""
    return t.ndim >= 2 and t.name.endswith(".weight")


def gguf_tensor_type(t: Tensor, q: QuantContext, *, i_wv: int | None = None, n_wv: int | None = None, i_ffn_down: int | None = None) -> str:
    """The GGML type llama.cpp's quantizer gives tensor ``t`` for file type ``q.ftype``.

    Follows ``llama_tensor_get_type_impl`` (src/llama-quant.cpp at llama.cpp 0c1e57098, the commit the
    oracle in benchmarks/llamacpp_oracle runs) for the tensor roles the catalog models have, without an
    importance matrix. Notable: attn_qkv and attn_kv_b get the attn_v rules (``category_is_attn_v``);
    Q3_K_M's ffn_down is Q4_K beyond the first 1/16 of the layers for every architecture but Falcon;
    the IQ1/IQ2 file types have their own branch.

    ``i_wv`` / ``n_wv`` (llama-quant.cpp ``qs.i_attention_wv`` / ``qs.n_attention_wv``: the index of
    this tensor among the file's attn_v / attn_qkv / attn_kv_b tensors, and their number) and
    ``i_ffn_down`` (``qs.i_ffn_down``: its index among the ffn_down* tensors) are the quantizer's
    running counters; :func:`gguf_typed_tensors` works them out for a whole model. Alone, a tensor
    takes its layer index and the layer count (right for a model with one of each per layer).
    """
    ft = q.ftype
    default = GGUF_FILE_TYPES[ft]
    if not _quantizable(t):
        return "F32"
    role = t.role
    if role.startswith("ffn_gate_inp") or role == "ssm_conv1d":
        # the converter writes expert routers and the SSM conv kernel in F32 (conversion/base.py
        # prepare_tensors: FFN_GATE_INP, FFN_GATE_INP_SHEXP, SSM_CONV1D "are always in float32") and the
        # quantizer leaves them as they are (llama-quant.cpp tensor_allows_quantization: "ffn_gate_inp.weight",
        # "ssm_conv1d"; llama_tensor_get_type returns tensor->type)
        return "F32"
    if ft in ("F32", "F16", "BF16"):
        return default
    cat = _category(role)
    i = t.layer if t.layer is not None else 0
    n = q.n_layers
    # attn_v rules count the attn_v-like tensors (qs.i_attention_wv, llama_tensor_get_type_impl); the
    # IQ1/IQ2 ffn_down rule counts ffn_down* tensors (qs.i_ffn_down < qs.n_ffn_down/8, no layer_info),
    # the other ffn_down rules take the layer from the name when n_expert > 1 (layer_info) and the
    # counter otherwise; n_ffn_down = hparams.n_layer_all (init_quantize_state_counters)
    iv = i if i_wv is None else i_wv
    nv = n if n_wv is None else n_wv
    i_fd = i if i_ffn_down is None else i_ffn_down
    i_ffl = i if q.n_expert > 1 else i_fd
    new = default
    if cat == "output" or (not q.has_output and cat == "token_embd"):
        if ft == "MXFP4_MOE" or t.shape[0] % GGML_TYPES[default][1]:
            new = "Q8_0"
        elif ft in ("IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"):
            new = "Q5_K"
        elif new != "Q8_0":
            new = "Q6_K"
    elif ft == "MXFP4_MOE":
        # llama_tensor_get_type_impl: "tensor->ne[2] > 1" -> MXFP4, else Q8_0: the 3-D expert tensors, and
        # also MLA's 3-D attn_k_b / attn_v_b (only BailingMoE3 matches expert roles explicitly)
        new = "MXFP4" if t.ndim >= 3 and t.shape[2] > 1 else "Q8_0"
    elif cat == "token_embd":
        if ft in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            new = "Q2_K"
        elif ft in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
            new = "IQ3_S"
    elif ft in _IQ12:
        if cat == "attn_v":
            new = "Q4_K" if q.n_gqa >= 4 or q.n_expert >= 4 else "IQ3_S" if ft in ("IQ2_S", "IQ2_M") else "Q2_K"
        elif q.n_expert == 8 and cat == "attn_k":
            new = "Q4_K"
        elif cat == "ffn_down":
            if i_fd < n // 8:  # the counter over ffn_down* tensors, not the layer (llama_tensor_get_type_impl)
                new = "IQ3_S" if ft in ("IQ2_S", "IQ2_M") else "Q2_K"
        elif cat == "attn_output":
            if q.n_expert == 8:
                new = "Q5_K"
            elif ft in ("IQ1_S", "IQ1_M"):
                new = "IQ2_XXS"
            elif ft in ("IQ2_S", "IQ2_M"):
                new = "IQ3_S"
    elif cat == "attn_v":
        if ft == "Q2_K":
            new = "Q4_K" if q.n_gqa >= 4 else "Q3_K"
        elif ft == "Q2_K_S" and q.n_gqa >= 4:
            new = "Q4_K"
        elif ft == "IQ3_XXS":
            new = "Q4_K" if q.n_gqa >= 4 else "IQ3_S"
        elif (ft in ("IQ3_XS", "IQ3_S") and q.n_gqa >= 4) or ft == "IQ3_M":
            new = "Q4_K"
        elif ft == "Q3_K_M":
            new = "Q5_K" if iv < 2 else "Q4_K"
        elif ft == "Q3_K_L" or (ft in ("IQ4_NL", "IQ4_XS") and q.n_gqa >= 4):
            new = "Q5_K"
        elif ft in ("Q4_K_M", "Q5_K_M") and _use_more_bits(iv, nv):
            new = "Q6_K"
        elif ft == "Q4_K_S" and iv < 4:
            new = "Q5_K"
        if q.is_70b and new in ("Q3_K", "Q4_K"):
            new = "Q5_K"
        if q.n_expert == 8:
            new = "Q8_0"
    elif cat == "attn_k":
        if q.n_expert == 8:
            new = "Q8_0"
        elif ft == "IQ3_XS":
            new = "IQ3_XXS"
        elif ft == "IQ3_XXS":
            new = "IQ2_S"
    elif cat == "attn_q":
        if ft == "IQ3_XS":
            new = "IQ3_XXS"
        elif ft == "IQ3_XXS":
            new = "IQ2_S"
    elif cat == "ffn_down":
        if ft == "Q2_K":
            new = "Q3_K"
        elif ft == "Q2_K_S":
            if i_ffl < n // 8:
                new = "Q4_K"
        elif ft == "IQ3_XXS":
            new = "Q4_K" if i_ffl < n // 8 else "Q3_K"
        elif ft == "Q3_K_M":
            new = "Q5_K" if i_ffl < n // 16 else "Q4_K"  # Q3_K only for Falcon (arch != LLM_ARCH_FALCON || use_more_bits)
        elif ft == "IQ3_M" and (i_ffl < n // 8 or (q.n_expert == 8 and _use_more_bits(i_ffl, n))):
            new = "Q4_K"
        elif ft == "Q3_K_L":
            new = "Q5_K"
        elif ft == "Q4_K_M":
            if _use_more_bits(i_ffl, n):
                new = "Q6_K"
        elif i_ffl < n // 8 and ft in ("IQ4_NL", "IQ4_XS"):
            new = "Q5_K"
        elif ft == "Q5_K_M" and _use_more_bits(i_ffl, n):
            new = "Q6_K"
        elif ft == "Q4_K_S" and i_ffl < n // 8:
            new = "Q5_K"
    elif cat == "attn_output":
        if q.n_expert == 8:
            if ft in ("Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S", "IQ3_M", "IQ4_XS"):
                new = "Q5_K"
        elif ft == "Q2_K":
            new = "Q3_K"
        elif ft == "IQ3_XXS":
            new = "IQ3_S"
        elif ft in ("Q3_K_M", "IQ3_M"):
            new = "Q4_K"
        elif ft == "Q3_K_L":
            new = "Q5_K"
    elif cat in ("ffn_gate", "ffn_up") and ft == "IQ3_XS" and n // 8 <= i_ffl < 7 * n // 8:
        new = "IQ3_XXS"
    # row length not divisible by the block size: fall back (llama-quant.cpp tensor_type_fallback)
    block = GGML_TYPES[new][1]
    if t.shape[0] % block:
        new = _FALLBACK.get(new, new)
        if t.shape[0] % GGML_TYPES[new][1]:
            new = "F16"
    return new


def gguf_file_tensors(t: Tensor, q: QuantContext) -> tuple[Tensor, ...]:
    """The tensors llama.cpp's converter writes for ``t`` (at 0c1e57098).

    - MLA ``attn_kv_b`` (DeepSeek-V2/V3, Kimi K2: ``kv_b_proj``) becomes ``attn_k_b`` [qk_nope, kv_lora,
      n_head] and ``attn_v_b`` [kv_lora, v_head, n_head] (conversion/deepseek.py modify_tensors: "MLA with
      the absorption optimization, needs these two split and k_b_proj transposed"). Neither name
      matches a quantizer category (llama-quant.cpp tensor_get_category looks for "attn_kv_b.weight",
      "attn_k.weight", "attn_v.weight"): both take the file type's default type, and the 128-wide rows
      of attn_k_b fall back from 256-block types (tensor_type_fallback).
    - Gated DeltaNet ``ssm_in`` (Qwen3-Next in_proj_qkvz) becomes ``attn_qkv`` [n_embd, 2 key_dim +
      value_dim] and ``attn_gate`` [n_embd, value_dim] (conversion/qwen.py Qwen3NextModel.modify_tensors;
      Qwen3.5 stores in_proj_qkv / in_proj_z, mapped to the same names: gguf-py tensor_mapping.py). The
      quantizer gives attn_qkv the attn_v rules (category_is_attn_v) and attn_gate the default type.
    """
    role = t.role
    if role == "attn_kv_b" and q.mla_kv_b[0] and t.ndim == 2:
        nope, v_head = q.mla_kv_b
        rank, width = t.shape
        if width % (nope + v_head) == 0:
            nh = width // (nope + v_head)
            return (
                Tensor(t.name.replace("attn_kv_b", "attn_k_b"), (nope, rank, nh), t.layer),
                Tensor(t.name.replace("attn_kv_b", "attn_v_b"), (rank, v_head, nh), t.layer),
            )
    if role == "ssm_in" and q.gdn_value_dim and t.ndim == 2 and t.shape[1] > q.gdn_value_dim:
        h, width = t.shape
        return (
            Tensor(t.name.replace("ssm_in", "attn_qkv"), (h, width - q.gdn_value_dim), t.layer),
            Tensor(t.name.replace("ssm_in", "attn_gate"), (h, q.gdn_value_dim), t.layer),
        )
    return (t,)


def _file_order(name: str) -> tuple[int, str]:
    """llama_model_loader's weights_map order (llama-model-loader.h weight_name_comparer): by the
    block number of "blk.%d." (-1 outside the blocks), then by name."""
    parts = name.split(".")
    layer = int(parts[1]) if len(parts) > 2 and parts[0] == "blk" and parts[1].isdigit() else -1
    return layer, name


def gguf_typed_tensors(tensors: Iterable[Tensor], q: QuantContext) -> list[tuple[tuple[str, int, int], ...]]:
    """Per tensor of ``tensors``: the (ggml type, weights, bytes) of each tensor the GGUF file holds for
    it (one, or two where the converter splits it: :func:`gguf_file_tensors`).

    Runs the quantizer's counters as llama-quant.cpp does: the tensors in the loader's order
    (:func:`_file_order`), ``qs.n_attention_wv`` = the attn_v-like tensors of the file
    (init_quantize_state_counters), ``qs.i_attention_wv`` / ``qs.i_ffn_down`` incremented per
    attn_v-like / ffn_down* weight (llama_tensor_get_type_impl).
    """
    files = [gguf_file_tensors(t, q) for t in tensors]
    flat = [(k, j, ft) for k, parts in enumerate(files) for j, ft in enumerate(parts)]
    flat.sort(key=lambda x: _file_order(x[2].name))

    n_wv = sum(1 for _, _, ft in flat if _quantizable(ft) and _category(ft.role) == "attn_v")
    i_wv = i_fd = 0
    types: dict[tuple[int, int], str] = {}
    for k, j, ft in flat:
        cat = _category(ft.role) if _quantizable(ft) else ""
        if cat == "attn_v":
            types[k, j] = gguf_tensor_type(ft, q, i_wv=i_wv, n_wv=n_wv)
            i_wv += 1
        elif cat == "ffn_down":
            types[k, j] = gguf_tensor_type(ft, q, i_ffn_down=i_fd)
            i_fd += 1
        else:
            types[k, j] = gguf_tensor_type(ft, q)
    out = []
    for k, parts in enumerate(files):
        out.append(tuple((types[k, j], ft.numel, ggml_type_bytes(types[k, j], ft.numel)) for j, ft in enumerate(parts)))
    return out


@dataclass
class WeightBytes:
    """Weight bytes of one component at one precision."""

    precision: str
    bytes: int = 0
    params: int = 0
    by_type: dict[str, int] = field(default_factory=dict)  # tensor type -> bytes
    host_bytes: int = 0  # part that the runtime keeps in system RAM (llama.cpp: token_embd)

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.bytes / self.params if self.params else 0.0

    def add(self, ttype: str, numel: int, nbytes: int) -> None:
        self.bytes += nbytes
        self.params += numel
        self.by_type[ttype] = self.by_type.get(ttype, 0) + nbytes


def mmproj_weight_bytes(tensors: Iterable[Tensor], dtype: str) -> WeightBytes:
    """A llama.cpp mmproj (clip) file: 2-D weights at ``dtype``, 1-D and embeddings in F32.

    convert_hf_to_gguf.py MmprojModel keeps position/class embeddings and norms in F32.
    """
    gtype = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0"}[dtype.lower()]
    out = WeightBytes(gtype)
    for t in tensors:
        ttype = "F32" if t.ndim < 2 or "position_embd" in t.name or "class_embd" in t.name else gtype
        if ttype == "Q8_0" and t.shape[0] % 32:
            ttype = "F16"
        out.add(ttype, t.numel, ggml_type_bytes(ttype, t.numel))
    return out


_QUANTIZED_ROLES_EXCLUDED = {"token_embd", "output", "class_embd", "position_embd", "patch_embd", "probe", "query"}


def torch_weight_bytes(tensors: Iterable[Tensor], fmt: str) -> WeightBytes:
    """Bytes in GPU memory under PyTorch/transformers for a format in TORCH_FORMATS.

    Quantized formats quantize the 2-D linear weights of attention/FFN (and experts); embeddings,
    lm_head, norms and biases stay 16-bit (transformers skips lm_head: get_keys_to_not_convert).
    """
    bits = TORCH_FORMATS[fmt]
    out = WeightBytes(fmt)
    base = 4 if fmt == "fp32" else 2
    for t in tensors:
        quantized = bits < 16 and t.ndim >= 2 and t.role not in _QUANTIZED_ROLES_EXCLUDED
        if quantized:
            nb = int(t.numel * bits / 8)
            if fmt == "int8":  # LLM.int8: one fp32 scale per output row (SCB)
                nb += 4 * (t.numel // t.shape[0])
            out.add(fmt, t.numel, nb)
        else:
            out.add("fp32" if base == 4 else "bf16/fp16", t.numel, base * t.numel)
    return out
