"""llama.cpp (and ollama, LM Studio on top of it): how it accounts memory.

Per device ``self = model + context + compute`` (common_memory_breakdown_print), with the token
embedding kept in host memory, the KV cache in cells padded to 256, the compute buffer reserved for
a full micro-batch (n_ubatch 512), and the mmproj (vision encoder + projector) with its own compute
buffer at the image size. Layers that do not fit run from system RAM (-ngl).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from vramcalc.errors import InputError
from vramcalc.memo import spec_memo
from vramcalc.params import llm_tensors
from vramcalc.quant import (
    GGML_TYPES,
    GGUF_FILE_TYPES,
    GGUF_QUALITY_ORDER,
    QuantContext,
    WeightBytes,
    ggml_type_bytes,
    gguf_tensor_type,
    mmproj_weight_bytes,
    normalize_gguf_type,
)
from vramcalc.schema import VlmSpec
from vramcalc.units import MiB

if TYPE_CHECKING:
    from vramcalc.params import Tensor
    from vramcalc.results import Inputs, Offload, Workload
    from vramcalc.schema import GpuSpec, LlmSpec, VisionEncoderSpec

#: ollama keeps this much per GPU for the CUDA/ROCm runtime (context, cuBLAS handles) on top of the
#: model: ``cudaMinimumMemory = 457 * format.MebiByte`` (ollama discover/gpu.go; field.md).
GUESS_CUDA_RUNTIME_BYTES = 457 * MiB
#: ollama's Metal minimum (field.md: 512 MiB Metal minimum).
GUESS_METAL_RUNTIME_BYTES = 512 * MiB
#: llama.cpp ``--fit`` leaves this much free by default (field.md: fit target 1024 MiB); below
#: it we call the result ``tight``.
FIT_MARGIN_BYTES = 1024 * MiB
#: llama.cpp pads the KV cache to 256 cells (llama-context: n_ctx = GGML_PAD(n_ctx, 256)).
KV_PAD = 256
#: The mmproj (clip) weight types llama.cpp's converter writes, and the PyTorch spellings of them.
MMPROJ_TYPES = ("f32", "f16", "bf16", "q8_0")
MMPROJ_ALIASES = {"fp16": "f16", "float16": "f16", "fp32": "f32", "float32": "f32", "bfloat16": "bf16"}


def quant_context(llm: LlmSpec, ftype: str) -> QuantContext:
    """What llama.cpp's quantizer (llama_tensor_get_type) looks at besides the tensor itself."""
    return QuantContext(
        ftype=ftype,
        n_layers=llm.num_layers,
        n_gqa=llm.num_heads // llm.num_kv_heads,
        n_expert=llm.moe.num_experts if llm.moe else 0,
        is_70b=llm.num_layers == 80 and llm.family.startswith("llama"),
        has_output=not llm.tied_embeddings,
    )


def compute_buffer_bytes(llm: LlmSpec, n_ctx: int, n_ubatch: int, flash_attention: bool) -> int:
    """llama.cpp's LLM compute buffer (``CUDA0 compute buffer size``).

    ggml-alloc reserves the worst case graph (a full micro-batch against the full context) and
    reuses memory between ops, so the buffer is the largest of three live sets (f32 activations):
    - output: logits for every token of the micro-batch (n_ubatch x n_vocab) + the hidden state;
    - attention without flash attention: the KQ scores (n_ctx x n_ubatch x n_head) + 4 hidden-size
      tensors; with flash attention no KQ matrix is materialized;
    - FFN: gate and up activations (n_ubatch x n_ff, for MoE the active experts) + the hidden state.
    Fitted to shared/calibration/llamacpp_buffers.csv (V100 rows, LLaMA-7B F16/Q8_0/Q4_0 at n_ctx
    512 and 2048: 70.5 and 164 MiB; Llama-2-13B 81 MiB at 512) and to the widely quoted Llama-3-8B
    buffer of 258.5 MiB (= 512 x 128256 x 4 + 512 x 4096 x 4) with flash attention.
    """
    u = min(n_ubatch, n_ctx)
    act = u * llm.hidden_size * 4
    output = u * llm.vocab_size * 4 + act
    if flash_attention:
        attn = 4 * act + n_ctx * u * 2  # + the f16 KQ mask
    else:
        attn = n_ctx * u * llm.num_heads * 4 + 4 * act
    if llm.moe:
        ff = llm.moe.expert_intermediate_size * llm.moe.experts_per_token
    else:
        ff = llm.intermediate_size
    ffn = u * ff * 4 * (2 if llm.gated_mlp else 1) + act
    return max(output, attn, ffn)


def clip_compute_bytes(enc: VisionEncoderSpec, patches: int, images: int, flash_attention: bool) -> int:
    """llama.cpp mtmd/clip compute buffer for encoding ``images`` crops of ``patches`` tokens each.

    Without flash attention the f32 KQ scores (heads x N^2) dominate; with it, the MLP activations.
    Coefficients fitted to the published clip buffers (field.md, gguf-parser-go#44, FA off/on):
    Gemma 3 (896 px, 4096 patches) 1132/121 MiB and Qwen2-VL (warm-up at 46x46 merged tokens =
    8464 patches, clip.cpp set_warmup_n_tokens) 4598/267 MiB: remainder ~6 (off) / ~2.75 (on) hidden-size
    f32 tensors (on: Gemma 3 -3.5%, Qwen2-VL +4.5%). Qwen2.5-VL's windowed attention adds masks this does not model (4872/705 MiB
    published vs 4620/345 predicted), see tests/test_estimate.py.
    """
    n = patches
    act = n * enc.hidden_size * 4
    if flash_attention:
        per = n * enc.intermediate_size * 4 * (2 if enc.gated_mlp else 1) + 11 * act // 4
    else:
        per = enc.num_heads * n * n * 4 + 6 * act
    return per * images


def file_type_bits(ftype: str) -> float:
    """Bits per weight of a file type's default tensor type (Q4_K_M -> Q4_K: 4.5)."""
    block_bytes, block = GGML_TYPES[GGUF_FILE_TYPES[ftype]]
    return 8 * block_bytes / block


class LlamaCpp:
    """The llama.cpp runtime plugin."""

    name: str = "llama.cpp"
    kv_pad: int = KV_PAD
    embeddings_on_host: bool = True
    offloads_layers: bool = True
    pytorch_kernels: bool = False
    decode_fallback: str | None = None
    weights_format: str = "gguf"
    compute_label: str = "compute buffer"
    flash_attention_switch: bool = True
    margin_note: str = "llama.cpp --fit keeps free by default"
    margin_bytes: int = FIT_MARGIN_BYTES
    guesses: Mapping[str, int] = MappingProxyType(
        {"GUESS_CUDA_RUNTIME_BYTES": GUESS_CUDA_RUNTIME_BYTES, "GUESS_METAL_RUNTIME_BYTES": GUESS_METAL_RUNTIME_BYTES}
    )

    def check(self, w: Workload) -> None:
        if (w.cache_type_v or w.kv_cache) != "f16" and not w.flash_attention:
            raise InputError("llama.cpp needs flash attention for a quantized V cache: drop --no-flash-attn or use --kv-cache f16.")

    def default_precision(self, model: object, llm: LlmSpec | None) -> str:
        """Q4_K_M (the most downloaded GGUF); F16 for an encoder alone; the LLM's default_gguf_type where it names one."""
        if llm is not None and llm.default_gguf_type:
            return llm.default_gguf_type
        return "F16" if llm is None else "Q4_K_M"

    def normalize_precision(self, name: str) -> str:
        return normalize_gguf_type(name)

    def precisions(self, llm: LlmSpec) -> list[str]:
        return list(GGUF_QUALITY_ORDER)

    def precision_label(self) -> list[str]:
        return list(GGUF_QUALITY_ORDER)

    def smaller_precisions(self, current: str) -> list[str]:
        order = GGUF_QUALITY_ORDER
        start = (
            order.index(current) + 1
            if current in order
            else next((i for i, q in enumerate(order) if file_type_bits(q) < file_type_bits(current)), len(order))
        )
        return list(order[start:])

    def vision_precision(self, model: VlmSpec | VisionEncoderSpec, w: Workload) -> str:
        """--vision-quant, else the VLM's published mmproj type (f16 for most), or for an encoder on its own --quant."""
        default = model.defaults.mmproj_dtype if isinstance(model, VlmSpec) else (w.quant or "f16")
        vq = (w.vision_quant or default).lower()
        vq = MMPROJ_ALIASES.get(vq, vq)
        if vq not in MMPROJ_TYPES:
            raise InputError(f"--vision-quant for llama.cpp must be f32, f16, bf16 or q8_0 (mmproj types), got '{vq}'.")
        return vq

    def llm_weights(self, llm: LlmSpec, precision: str) -> WeightBytes:
        return _llm_weights(llm, precision)

    def vision_weights(self, tensors: tuple[Tensor, ...], precision: str) -> WeightBytes:
        return mmproj_weight_bytes(tensors, precision)

    def tensor_bytes(self, llm: LlmSpec, precision: str) -> tuple[int, ...]:
        return _tensor_bytes(llm, precision)

    def swa_extra_cells(self, w: Workload) -> int:
        """llama_kv_cache_iswa: min(n_ctx, pad(n_swa x n_seq + n_ubatch, 256))."""
        return w.n_ubatch

    def llm_compute_bytes(self, llm: LlmSpec, context: int, cells: int, w: Workload) -> int:
        return compute_buffer_bytes(llm, cells, w.n_ubatch, w.flash_attention)

    def vision_compute_bytes(self, enc: VisionEncoderSpec, patches: int, crops: int, w: Workload) -> int:
        # llama.cpp encodes one image at a time (all its crops in one batch)
        return clip_compute_bytes(enc, patches, crops, w.flash_attention)

    def overhead_bytes(self, gpu: GpuSpec) -> int:
        return GUESS_METAL_RUNTIME_BYTES if gpu.backend == "metal" else GUESS_CUDA_RUNTIME_BYTES

    def weight_floor(self, llm: LlmSpec) -> Callable[[str], int] | None:
        return _weight_floor(llm)

    def places_layers(self, n_gpus: int) -> bool:
        return True

    def suggestions(self, w: Workload) -> list[tuple[str, list[str], dict[str, object]]]:
        out: list[tuple[str, list[str], dict[str, object]]] = []
        if not w.flash_attention:
            out.append(("turn flash attention on", ["--flash-attn"], {"flash_attention": True}))
        if w.kv_cache == "f16":
            out.append(("quantize the KV cache to q8_0", ["--kv-cache", "q8_0"], {"kv_cache": "q8_0", "flash_attention": True}))
        return out

    def smaller_precision_change(self, precision: str) -> tuple[str, list[str]]:
        return f"use a smaller quantization ({precision})", ["--quant", precision]

    def speed_key(self, precision: str) -> str:
        """f16 / quant: prefill runs dequantising matmuls vs cuBLAS/Metal F16 GEMMs."""
        return "f16" if precision.lower() in ("f16", "bf16", "f32") else "quant"

    def speed_notes(self, gpu: GpuSpec) -> list[str]:
        return []

    def server_command(self, model: object, i: Inputs, w: Workload, off: Offload | None, n_gpus: int) -> list[str]:
        """The llama-server command line reproducing an answer (vramcalc.cmdline)."""
        from vramcalc.cmdline import server_command

        return server_command(model, i, w, off, n_gpus)


# Memoized on the spec's content (vramcalc.memo): fit and the pipeline ask for the same model and
# file type several times per run; what they return is read-only.


@spec_memo
def _typed(llm: LlmSpec, precision: str) -> tuple[tuple[str, int], ...]:
    """(ggml type, bytes) of each tensor of ``llm_tensors(llm)`` in the file type ``precision``."""
    q = quant_context(llm, precision)
    out = []
    for t in llm_tensors(llm):
        ttype = gguf_tensor_type(t, q)
        out.append((ttype, ggml_type_bytes(ttype, t.numel)))
    return tuple(out)


@spec_memo
def _llm_weights(llm: LlmSpec, precision: str) -> WeightBytes:
    """Bytes of every tensor at the type llama.cpp's quantizer assigns (the file's tensor data), by type."""
    out = WeightBytes(precision)
    for t, (ttype, nb) in zip(llm_tensors(llm), _typed(llm, precision), strict=True):
        out.add(ttype, t.numel, nb)
        if t.role == "token_embd":
            # llama.cpp keeps the input embedding on the CPU (llama-model.cpp: tok_embd is assigned
            # to the input layer's buffer type, the host), whatever -ngl is
            out.host_bytes += nb
    return out


@spec_memo
def _tensor_bytes(llm: LlmSpec, precision: str) -> tuple[int, ...]:
    return tuple(nb for _, nb in _typed(llm, precision))


@spec_memo
def _weight_floor(llm: LlmSpec) -> Callable[[str], int]:
    """A lower bound of the on-GPU weight bytes of a file type, cheap to compute (``fit`` skips
    the exact sum of file types that cannot fit even so).

    llama.cpp's quantizer gives every 2-D tensor the file type's base type or a larger one (the
    per-tensor rules and the row-length fallbacks only raise the bit width, for the file types fit
    tries), and keeps 1-D tensors in F32; the token embedding stays in host memory.
    """
    n2d = n1d = 0
    for t in llm_tensors(llm):
        if t.role == "token_embd":
            continue
        if t.ndim >= 2:
            n2d += t.numel
        else:
            n1d += t.numel

    def floor(ftype: str) -> int:
        # rounding the block count of the whole sum up stays below the per-tensor sum of rounded-up blocks
        return ggml_type_bytes(GGUF_FILE_TYPES[ftype], n2d) + ggml_type_bytes("F32", n1d)

    return floor
