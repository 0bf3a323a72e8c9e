"""The analytic memory model: will a model run on a GPU, with what context, and what to change.

Pure functions over catalog specs; no printing, no I/O. ``estimate()`` returns an ``Estimate``,
the object that ``vramcalc check`` renders as a table and prints with ``--json``.

Accounting follows the runtime:
- ``llama.cpp`` (what ollama and LM Studio run): per device ``self = model + context + compute``
  (common_memory_breakdown_print), with the token embedding kept in host memory, the KV cache in
  cells padded to 256, the compute buffer reserved for a full micro-batch (n_ubatch 512), and the
  mmproj (vision encoder + projector) with its own compute buffer at the image size.
- ``transformers`` (PyTorch): weights at the checkpoint dtype or a quantized format, a DynamicCache
  KV cache, activations of the prefill forward pass, and the CUDA context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from vramcalc import __version__
from vramcalc.errors import InputError
from vramcalc.params import (
    ParamCount,
    Tensor,
    count_params,
    encoder_tensors,
    llm_tensors,
    vision_grid,
    vlm_parts,
)
from vramcalc.quant import (
    GGML_TYPES,
    GGUF_FILE_TYPES,
    GGUF_QUALITY_ORDER,
    QuantContext,
    WeightBytes,
    gguf_weight_bytes,
    mmproj_weight_bytes,
    normalize_precision,
    torch_weight_bytes,
)
from vramcalc.schema import (
    ResultModel,
    AnyresTokens,
    DynamicResolutionTokens,
    FixedTokens,
    GpuSpec,
    LlmSpec,
    TileTokens,
    VisionEncoderSpec,
    VlmSpec,
)
from vramcalc.speed import Offload, Throughput, attach_speed
from vramcalc.units import GiB, MiB

Runtime = Literal["llama.cpp", "transformers"]
KvType = Literal["f16", "q8_0", "q4_0"]
Verdict = Literal["fits", "tight", "offload", "no"]

# ---------------------------------------------------------------------------------------------
# Empirical constants, each with its source. Guesses are named as such.

#: ollama keeps this much per GPU for the CUDA/ROCm runtime (context, cuBLAS handles) on top of the
#: model: ``cudaMinimumMemory = 457 * format.MebiByte`` (ollama discover/gpu.go; field.md).
GUESS_CUDA_RUNTIME_BYTES = 457 * MiB
#: ollama's Metal minimum (field.md: 512 MiB Metal minimum).
GUESS_METAL_RUNTIME_BYTES = 512 * MiB
#: PyTorch CUDA context incl. cuBLAS workspace, outside max_memory_allocated(). A guess (typical
#: 400-600 MiB on Ampere/Ada with torch 2.x); ``vramcalc probe`` measures it on the user's card.
GUESS_TORCH_CONTEXT_BYTES = 512 * MiB
#: What a desktop session usually holds on the card that drives the display (Xorg/Wayland
#: compositor, browser): a guess from typical nvidia-smi readings of 200-800 MiB. --headless drops it.
GUESS_DISPLAY_BYTES = 512 * MiB
#: What Linux and a desktop keep of a 64-128 GB unified-memory system (DGX Spark, Strix Halo): a guess.
GUESS_UNIFIED_OS_BYTES = 8 * GiB
#: llama.cpp ``--fit`` leaves this much free by default (field.md: fit target 1024 MiB); below
#: it we call the result ``tight``.
TIGHT_MARGIN_BYTES = 1024 * MiB
#: llama.cpp pads the KV cache to 256 cells (llama-context: n_ctx = GGML_PAD(n_ctx, 256)).
KV_PAD = 256
#: Default micro-batch (llama.cpp common defaults: n_batch 2048, n_ubatch 512; field.md).
DEFAULT_UBATCH = 512
#: Realistic default context: 4096 text tokens (+ image tokens), never the model maximum (issue 2).
DEFAULT_TEXT_CONTEXT = 4096

#: Bytes per element of the KV cache types (ggml block layouts; F16 2 bytes).
KV_TYPE_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "bf16": 2.0}


class Workload(ResultModel):
    """What the user asks about: runtime, precision, context, images, batch."""

    runtime: Runtime = "llama.cpp"
    quant: str | None = Field(default=None, description="LLM weights: GGUF file type (llama.cpp) or torch format; None = runtime default.")
    vision_quant: str | None = Field(default=None, description="Vision encoder + projector weights; None = the VLM's mmproj default (f16).")
    context_tokens: int | None = Field(default=None, gt=0, description="Text tokens per sequence; None = 4096.")
    images: int | None = Field(default=None, ge=0, description="Images per sequence; None = 1 for a VLM, 0 otherwise.")
    image_size: tuple[int, int] | None = Field(default=None, description="(width, height) of each image in pixels.")
    batch: int = Field(default=1, gt=0, description="Parallel sequences (llama.cpp -np) or batch size.")
    kv_cache: KvType = "f16"
    flash_attention: bool = Field(default=True, description="llama.cpp -fa (auto = on where the backend supports it).")
    n_ubatch: int = Field(default=DEFAULT_UBATCH, gt=0)
    headless: bool = Field(default=False, description="No display on this GPU: do not reserve desktop memory.")
    gpu_layers: int | None = Field(default=None, ge=0, description="llama.cpp -ngl (repeating layers + 1 for the output layer); None = all that fit.")
    offload: Literal["auto", "none"] = Field(default="auto", description="auto: when the model does not fit, keep the layers that do not fit in system RAM.")
    ram_bytes: int | None = Field(default=None, gt=0, description="System RAM (for the CPU-offloaded part); None = not checked.")
    ram_bandwidth_gbs: float | str | None = Field(default=None, description="System RAM bandwidth in GB/s, or 'ddr4' / 'ddr5' (dual channel); None = ddr5.")


class Inputs(ResultModel):
    """The resolved inputs, echoed so a result is self-describing."""

    vramcalc_version: str = __version__
    model: str
    model_name: str
    model_kind: Literal["llm", "vlm", "encoder"]
    llm: str | None
    encoder: str | None
    gpu: str
    gpu_name: str
    runtime: Runtime
    quant: str
    vision_quant: str | None
    text_tokens: int
    images: int
    image_size: tuple[int, int] | None
    image_tokens_per_image: int
    context_tokens: int = Field(description="Text + image tokens per sequence.")
    batch: int
    kv_cache: KvType
    flash_attention: bool
    n_ubatch: int
    headless: bool


class Params(ResultModel):
    llm: int
    vision: int
    projector: int
    total: int


class ComponentBytes(ResultModel):
    llm: int = 0
    vision: int = 0
    projector: int = 0


class Memory(ResultModel):
    """Where the memory goes, in bytes. ``total_bytes`` is what must sit on the GPU."""

    weights_bytes: ComponentBytes = Field(description="Weights of each component at its precision (the whole file's tensors).")
    weights_host_bytes: int = Field(description="Part of the weights the runtime keeps in system RAM (llama.cpp: token embeddings).")
    weights_bits_per_weight: float = Field(description="LLM weights: average bits per weight of the mixture.")
    weights_by_type: dict[str, int] = Field(description="LLM weight bytes per tensor type (GGUF mixtures).")
    kv_cache_bytes: int
    kv_cache_cells: int = Field(description="KV cells of the full-attention layers (context x batch, padded).")
    compute_bytes: ComponentBytes = Field(description="Runtime buffers / activations: LLM compute buffer, vision encoder compute buffer.")
    overhead_bytes: int = Field(description="Runtime overhead on the GPU: CUDA/Metal context, library workspaces.")
    total_bytes: int


class GpuInfo(ResultModel):
    id: str
    name: str
    memory_bytes: int
    reserved_bytes: int = Field(description="Held by the desktop or the OS, not available to the model.")
    usable_bytes: int
    unified_memory: bool
    memory_bandwidth_gbs: float


class Suggestion(ResultModel):
    change: str = Field(description="What to change, in words.")
    flags: list[str] = Field(description="The check options that make the change.")
    total_bytes: int
    verdict: Verdict


class Estimate(ResultModel):
    """The answer to 'will it run?' for one model, GPU and workload."""

    inputs: Inputs
    params: Params
    memory: Memory
    gpu: GpuInfo
    verdict: Verdict
    headroom_bytes: int = Field(description="usable_bytes - total_bytes (negative: does not fit).")
    max_context_tokens: int | None = Field(description="Largest context per sequence (text + images) whose total fits in usable memory; None if none does.")
    suggestion: Suggestion | None
    notes: list[str] = Field(default_factory=list)
    throughput: Throughput | None = Field(default=None, description="Speed estimates with bands and their basis (speed.py).")
    offload: Offload | None = Field(default=None, description="Layer placement: GPU layers, per-device memory (llama.cpp split / CPU offload).")


# ---------------------------------------------------------------------------------------------
# Image tokens


def image_tokens(vlm: VlmSpec, enc: VisionEncoderSpec, size: tuple[int, int] | None) -> tuple[int, int, int]:
    """LLM tokens one image takes, and what the encoder runs: (tokens, encoder images, patches each).

    ``size`` is (width, height); None means the VLM's default image size.
    """
    w, h = size or vlm.defaults.image_size or (enc.image_size, enc.image_size)
    pol = vlm.image_tokens
    native = _native_tokens(enc)
    if isinstance(pol, FixedTokens):
        return pol.tokens, 1, native
    if isinstance(pol, AnyresTokens):
        return _anyres_tokens(pol, enc, w, h)
    if isinstance(pol, DynamicResolutionTokens):
        rh, rw = _smart_resize(h, w, pol.factor, pol.min_pixels, pol.max_pixels)
        patches = (rh // enc.patch_size) * (rw // enc.patch_size)
        return (rh // pol.factor) * (rw // pol.factor), 1, patches
    if isinstance(pol, TileTokens):
        tiles = _internvl_tiles(w, h, pol)
        return tiles * pol.tokens_per_tile, tiles, native
    raise AssertionError(pol)  # pragma: no cover


def _native_tokens(enc: VisionEncoderSpec) -> int:
    gx, gy = vision_grid(enc)
    return gx * gy + int(enc.class_token) + enc.register_tokens


def _smart_resize(h: int, w: int, factor: int, min_px: int, max_px: int) -> tuple[int, int]:
    """Qwen2-VL image processor ``smart_resize`` (transformers models/qwen2_vl/image_processing_qwen2_vl.py)."""
    hb = max(factor, round(h / factor) * factor)
    wb = max(factor, round(w / factor) * factor)
    if hb * wb > max_px:
        beta = math.sqrt(h * w / max_px)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < min_px:
        beta = math.sqrt(min_px / (h * w))
        hb = math.ceil(h * beta / factor) * factor
        wb = math.ceil(w * beta / factor) * factor
    return hb, wb


def _internvl_tiles(w: int, h: int, pol: TileTokens) -> int:
    """InternVL ``dynamic_preprocess``: the tile grid closest to the image aspect ratio (+ thumbnail)."""
    ratios = sorted(
        {(i, j) for n in range(pol.min_tiles, pol.max_tiles + 1) for i in range(1, n + 1) for j in range(1, n + 1)
         if pol.min_tiles <= i * j <= pol.max_tiles},
        key=lambda r: r[0] * r[1],
    )
    aspect = w / h
    best, best_diff = (1, 1), float("inf")
    area = w * h
    for r in ratios:
        diff = abs(aspect - r[0] / r[1])
        if diff < best_diff:
            best, best_diff = r, diff
        elif diff == best_diff and area > 0.5 * pol.tile_size**2 * r[0] * r[1]:
            best = r
    blocks = best[0] * best[1]
    return blocks + 1 if pol.thumbnail and blocks != 1 else blocks


def _anyres_tokens(pol: AnyresTokens, enc: VisionEncoderSpec, w: int, h: int) -> tuple[int, int, int]:
    """LLaVA-NeXT: base image + grid tiles, unpadded to the aspect ratio, one newline per row.

    transformers models/llava_next (select_best_resolution, get_anyres_image_grid_shape, unpad_image).
    """
    side = enc.image_size
    best, best_eff, best_waste = pol.grid_pinpoints[0], -1, float("inf")
    for cw, ch in pol.grid_pinpoints:
        scale = min(cw / w, ch / h)
        dw, dh = int(w * scale), int(h * scale)
        eff = min(dw * dh, w * h)
        waste = cw * ch - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (cw, ch), eff, waste
    gx, gy = best[0] // side, best[1] // side
    per = side // enc.patch_size
    cur_w, cur_h = gx * per, gy * per
    if w / h > cur_w / cur_h:
        new_h = int(round(h * (cur_w / w), 7))
        pad = (cur_h - new_h) // 2
        cur_h = cur_h - 2 * pad
    else:
        new_w = int(round(w * (cur_h / h), 7))
        pad = (cur_w - new_w) // 2
        cur_w = cur_w - 2 * pad
    tokens = per * per + cur_w * cur_h + (cur_h if pol.newline_tokens else 0)
    return tokens, 1 + gx * gy, _native_tokens(enc)


# ---------------------------------------------------------------------------------------------
# KV cache and compute buffers


def kv_cache_bytes(llm: LlmSpec, tokens: int, batch: int, kv: str, runtime: Runtime, n_ubatch: int = DEFAULT_UBATCH) -> tuple[int, int]:
    """KV cache bytes and the number of cells of the full-attention layers.

    K and V per layer per cell: kv_heads x head_dim each (GQA/MQA). Sliding-window layers hold
    only the window (llama.cpp llama_kv_cache_iswa: min(n_ctx, pad(n_swa * n_seq + n_ubatch, 256))).
    MLA (DeepSeek-V2/V3) caches the compressed latent: K = kv_lora_rank + rope dims, V = kv_lora_rank.
    """
    pad = KV_PAD if runtime == "llama.cpp" else 1
    cells = _pad(tokens * batch, pad)
    swa_cells = cells
    if llm.sliding_window:
        extra = n_ubatch if runtime == "llama.cpp" else 0
        swa_cells = min(cells, _pad(llm.sliding_window.size * batch + extra, pad))
    if llm.mla:
        k_dim = llm.mla.kv_lora_rank + llm.mla.qk_rope_head_dim
        v_dim = llm.mla.kv_lora_rank
    else:
        k_dim = v_dim = llm.num_kv_heads * llm.head_dim_
    per_elem = KV_TYPE_BYTES[kv]
    total = 0.0
    for i in range(llm.num_layers):
        n = swa_cells if llm.sliding_window and llm.sliding_window.is_sliding(i) else cells
        total += n * (k_dim + v_dim) * per_elem
    return int(total), cells


def _pad(n: int, to: int) -> int:
    return -(-n // to) * to


def llamacpp_compute_bytes(llm: LlmSpec, n_ctx: int, n_ubatch: int, flash_attention: bool) -> int:
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


# ---------------------------------------------------------------------------------------------
# Weights


def _quant_context(llm: LlmSpec, ftype: str) -> QuantContext:
    return QuantContext(
        ftype=ftype,
        n_layers=llm.num_layers,
        n_gqa=llm.num_heads // llm.num_kv_heads,
        n_expert=llm.moe.num_experts if llm.moe else 0,
        is_70b=llm.num_layers == 80 and llm.family.startswith("llama"),
        has_output=not llm.tied_embeddings,
    )


def llm_weight_bytes(llm: LlmSpec, runtime: Runtime, quant: str) -> WeightBytes:
    tensors = llm_tensors(llm)
    if runtime == "llama.cpp":
        return gguf_weight_bytes(tensors, _quant_context(llm, quant))
    return torch_weight_bytes(tensors, quant)


def vision_weight_bytes(tensors: tuple[Tensor, ...], runtime: Runtime, quant: str) -> WeightBytes:
    if runtime == "llama.cpp":
        return mmproj_weight_bytes(tensors, quant)
    return torch_weight_bytes(tensors, quant)


# ---------------------------------------------------------------------------------------------
# GPU memory available


def gpu_info(gpu: GpuSpec, headless: bool) -> GpuInfo:
    """Usable memory: the card minus what the desktop holds, or on unified-memory systems the
    share the OS lets the GPU use."""
    total = gpu.memory_bytes
    if gpu.vendor == "apple":
        # Metal's recommendedMaxWorkingSetSize: about 2/3 of RAM up to 32 GB, 3/4 above (field.md:
        # 'roughly 2/3 to 3/4 of RAM'; llama.cpp logs 'recommendedMaxWorkingSetSize = 48 GB' on 64 GB).
        usable = total * 2 // 3 if total <= 32 * GiB else total * 3 // 4
    elif gpu.unified_memory:
        usable = total - GUESS_UNIFIED_OS_BYTES
    elif gpu.category in ("consumer", "laptop") and not headless:
        usable = total - GUESS_DISPLAY_BYTES
    else:
        usable = total
    return GpuInfo(
        id=gpu.id, name=gpu.name, memory_bytes=total, reserved_bytes=total - usable, usable_bytes=usable,
        unified_memory=gpu.unified_memory, memory_bandwidth_gbs=gpu.memory_bandwidth_gbs,
    )


def runtime_overhead_bytes(gpu: GpuSpec, runtime: Runtime) -> int:
    if runtime == "transformers":
        return GUESS_TORCH_CONTEXT_BYTES
    return GUESS_METAL_RUNTIME_BYTES if gpu.backend == "metal" else GUESS_CUDA_RUNTIME_BYTES


# ---------------------------------------------------------------------------------------------
# The estimate


def vision_precision(model: VlmSpec | VisionEncoderSpec, w: Workload) -> str:
    """Precision of the vision encoder + projector: --vision-quant, else the VLM's published mmproj
    type (f16 for most), or for an encoder on its own --quant/--dtype."""
    default = model.defaults.mmproj_dtype if isinstance(model, VlmSpec) else (w.quant or "f16")
    if w.runtime == "llama.cpp":
        vq = (w.vision_quant or default).lower()
        if vq not in ("f32", "f16", "bf16", "q8_0"):
            raise InputError(f"--vision-quant for llama.cpp must be f32, f16, bf16 or q8_0 (mmproj types), got '{vq}'.")
        return vq
    return normalize_precision(w.vision_quant or ("fp16" if default == "f16" else default), "transformers")


def default_quant(model: LlmSpec | VlmSpec | VisionEncoderSpec, llm: LlmSpec | None, runtime: Runtime) -> str:
    """Q4_K_M for llama.cpp (the most downloaded GGUF); the checkpoint dtype for transformers."""
    if runtime == "llama.cpp":
        return "F16" if llm is None else "Q4_K_M"
    return (llm or model).dtype  # type: ignore[union-attr]


@dataclass(frozen=True)
class FixedWeights:
    """Weights known exactly (read from a model file's tensor headers by ``files.py``, or computed
    once per quantization by ``fit``). A part given here replaces the one ``estimate()`` derives
    from the architecture and the workload's precision; its ``precision`` is the label shown."""

    llm: WeightBytes | None = None
    vision: WeightBytes | None = None
    projector: WeightBytes | None = None


def estimate(model: LlmSpec | VlmSpec | VisionEncoderSpec, gpu: GpuSpec | list[GpuSpec], workload: Workload | None = None, catalog=None,  # noqa: ANN001
             weights: FixedWeights | None = None) -> Estimate:
    """Memory estimate of running ``model`` on ``gpu`` under ``workload``.

    Args:
        model: an LLM, a VLM, or a vision encoder on its own (image embedding).
        gpu: the GPU, or a list of GPUs (llama.cpp layer split; the first one is the main GPU).
        workload: runtime, precision, context, images, batch; defaults if None.
        catalog: where a VLM's encoder and LLM ids are looked up (default: the loaded catalog).
        weights: exact weights of some parts (a GGUF file's tensors), used instead of derived ones.

    Returns:
        The Estimate: breakdown, verdict, headroom, largest context, suggestion.
    """
    w = workload or Workload()
    gpus = list(gpu) if isinstance(gpu, (list, tuple)) else [gpu]
    gpu = gpus[0]
    est = _estimate_once(model, gpu, w, catalog, weights)
    if est.inputs.llm is not None:
        est.max_context_tokens = _max_context(model, gpu, w, catalog, est, weights)
    if est.verdict != "fits":
        est.suggestion = _suggest(model, gpu, w, catalog, est, weights)
    # speeds, CPU offload and multi-GPU split (speed.py); may settle the verdict for those cases
    attach_speed(est, model, gpus, w, catalog)
    return est


def _estimate_once(model, gpu: GpuSpec, w: Workload, catalog, weights: FixedWeights | None = None) -> Estimate:  # noqa: ANN001, C901
    fixed = weights or FixedWeights()
    notes: list[str] = []
    enc: VisionEncoderSpec | None = None
    llm: LlmSpec | None = None
    proj_tensors: tuple[Tensor, ...] = ()
    if isinstance(model, VlmSpec):
        parts = vlm_parts(model, catalog)
        enc, llm, proj_tensors = parts.encoder, parts.llm, parts.projector
        kind = "vlm"
    elif isinstance(model, LlmSpec):
        llm, kind = model, "llm"
    else:
        enc, kind = model, "encoder"

    quant = fixed.llm.precision if fixed.llm else normalize_precision(w.quant or default_quant(model, llm, w.runtime), w.runtime)
    vq = None
    if enc is not None:
        vq = vision_precision(model, w)
        if fixed.vision:
            vq = fixed.vision.precision
    if w.runtime == "llama.cpp" and w.kv_cache != "f16" and not w.flash_attention:
        raise InputError("llama.cpp needs flash attention for a quantized V cache: drop --no-flash-attn or use --kv-cache f16.")

    # --- images and context
    n_images = (1 if kind == "vlm" else 0) if w.images is None else w.images
    if kind == "encoder":
        n_images = max(1, w.images or w.batch)
    tok_per_image, enc_crops, enc_patches = 0, 0, 0
    image_size = None
    if enc is not None:
        if isinstance(model, VlmSpec):
            tok_per_image, enc_crops, enc_patches = image_tokens(model, enc, w.image_size)
            image_size = w.image_size or model.defaults.image_size or (enc.image_size, enc.image_size)
        else:
            image_size = w.image_size or (enc.image_size, enc.image_size)
            gx, gy = image_size[0] // enc.patch_size, image_size[1] // enc.patch_size
            enc_crops, enc_patches = 1, gx * gy + int(enc.class_token) + enc.register_tokens
    text = w.context_tokens or (DEFAULT_TEXT_CONTEXT if llm else 0)
    # Llama 3.2 Vision (transformers models/mllama): the text stream holds one <|image|> token per
    # image; the image states are keys/values of the cross-attention layers only.
    xattn_layers = len(model.projector.cross_attention_layers) if isinstance(model, VlmSpec) and model.projector.kind == "cross_attention" else 0
    ctx = text + n_images * (1 if xattn_layers else tok_per_image)
    if llm is not None and ctx > llm.max_context:
        notes.append(f"Context {ctx} exceeds the model's trained maximum of {llm.max_context} tokens.")

    # --- weights
    wb_llm = fixed.llm or (llm_weight_bytes(llm, w.runtime, quant) if llm else WeightBytes(quant))
    wb_vis = fixed.vision or (vision_weight_bytes(encoder_tensors(enc), w.runtime, vq) if enc else WeightBytes(vq or ""))
    wb_proj = fixed.projector or (vision_weight_bytes(proj_tensors, w.runtime, vq) if proj_tensors else WeightBytes(vq or ""))
    host = wb_llm.host_bytes if w.runtime == "llama.cpp" else 0

    # --- KV cache and compute
    kv, cells = (0, 0)
    compute_llm = 0
    if llm is not None:
        kv, cells = kv_cache_bytes(llm, ctx, w.batch, w.kv_cache, w.runtime, w.n_ubatch)
        if xattn_layers:
            kv += int(n_images * tok_per_image * w.batch * xattn_layers * 2 * llm.num_kv_heads * llm.head_dim_ * KV_TYPE_BYTES[w.kv_cache])
        if w.runtime == "llama.cpp":
            compute_llm = llamacpp_compute_bytes(llm, cells, w.n_ubatch, w.flash_attention)
        else:
            compute_llm = torch_prefill_bytes(llm, ctx, w.batch)
    compute_vis = 0
    if enc is not None:
        if w.runtime == "llama.cpp":
            # llama.cpp encodes one image at a time (all its crops in one batch)
            compute_vis = clip_compute_bytes(enc, enc_patches, enc_crops * (w.batch if kind == "encoder" else 1), w.flash_attention)
        else:
            compute_vis = torch_vit_bytes(enc, enc_patches, enc_crops * (w.batch if kind == "encoder" else 1))
    overhead = runtime_overhead_bytes(gpu, w.runtime)
    weights_dev = wb_llm.bytes - host + wb_vis.bytes + wb_proj.bytes
    total = weights_dev + kv + compute_llm + compute_vis + overhead

    ginfo = gpu_info(gpu, w.headless)
    headroom = ginfo.usable_bytes - total
    verdict = _verdict(headroom, w.runtime)
    if verdict == "offload":
        notes.append("Does not fit entirely on the GPU; llama.cpp can keep some layers in system RAM (slower).")
    if ginfo.reserved_bytes and not gpu.unified_memory:
        notes.append(f"{ginfo.reserved_bytes // MiB} MiB kept back for the desktop display (a guess; --headless if this GPU drives no display).")
    complete = fixed.llm is not None and (enc is None or (fixed.vision is not None and (fixed.projector is not None or not proj_tensors)))
    if complete:  # every part's count is in the fixed weights (a GGUF file's tensors, or fit's precomputed ones)
        pc = ParamCount(llm=fixed.llm.params, vision=fixed.vision.params if fixed.vision else 0,
                        projector=fixed.projector.params if fixed.projector else 0)
    else:
        pc = count_params(model, catalog) if kind != "encoder" else count_params(enc)
        if weights is not None:  # exact counts of the file's tensors where given
            pc = ParamCount(llm=fixed.llm.params if fixed.llm else pc.llm, vision=fixed.vision.params if fixed.vision else pc.vision,
                            projector=fixed.projector.params if fixed.projector else pc.projector)

    return Estimate(
        inputs=Inputs(
            model=model.id, model_name=model.name, model_kind=kind, llm=llm.id if llm and kind == "vlm" else (llm.id if llm else None),
            encoder=enc.id if enc else None, gpu=gpu.id, gpu_name=gpu.name, runtime=w.runtime, quant=quant,
            vision_quant=vq, text_tokens=text, images=n_images, image_size=image_size,
            image_tokens_per_image=tok_per_image, context_tokens=ctx, batch=w.batch, kv_cache=w.kv_cache,
            flash_attention=w.flash_attention, n_ubatch=w.n_ubatch, headless=w.headless,
        ),
        params=Params(llm=pc.llm, vision=pc.vision, projector=pc.projector, total=pc.total),
        memory=Memory(
            weights_bytes=ComponentBytes(llm=wb_llm.bytes, vision=wb_vis.bytes, projector=wb_proj.bytes),
            weights_host_bytes=host,
            weights_bits_per_weight=round(wb_llm.bits_per_weight, 3),
            weights_by_type=dict(sorted(wb_llm.by_type.items(), key=lambda kv_: -kv_[1])),
            kv_cache_bytes=kv,
            kv_cache_cells=cells,
            compute_bytes=ComponentBytes(llm=compute_llm, vision=compute_vis),
            overhead_bytes=overhead,
            total_bytes=total,
        ),
        gpu=ginfo,
        verdict=verdict,
        headroom_bytes=headroom,
        max_context_tokens=None,
        suggestion=None,
        notes=notes,
    )


def _verdict(headroom: int, runtime: Runtime) -> Verdict:
    if headroom >= TIGHT_MARGIN_BYTES:
        return "fits"
    if headroom >= 0:
        return "tight"
    return "offload" if runtime == "llama.cpp" else "no"


def torch_prefill_bytes(llm: LlmSpec, tokens: int, batch: int) -> int:
    """Peak activations of a transformers prefill forward (SDPA, no KQ matrix kept).

    Live at the MLP of one layer: the residual stream and normed input (2 x T x h), gate and up
    outputs and their product (3 x T x ff) at the activation dtype (2 bytes); plus the last token's
    logits in fp32 (generate() keeps only the last position: logits_to_keep=1, transformers >= 4.45).
    """
    t = tokens * batch
    ff = llm.moe.expert_intermediate_size * llm.moe.experts_per_token if llm.moe else llm.intermediate_size
    return 2 * (2 * t * llm.hidden_size + 3 * t * ff) + batch * llm.vocab_size * 4


def torch_vit_bytes(enc: VisionEncoderSpec, patches: int, images: int) -> int:
    """Peak activations of a ViT forward pass in PyTorch: vit.activation_bytes, the live-set model
    that the probe checks against FakeTensorMode. ``patches`` includes class/register tokens."""
    from vramcalc.vit import activation_bytes

    return activation_bytes(enc, images, patches - int(enc.class_token) - enc.register_tokens)  # vit.py adds them


# ---------------------------------------------------------------------------------------------
# Largest context and the cheapest change that fits


def _max_context(model, gpu: GpuSpec, w: Workload, catalog, base: Estimate, weights: FixedWeights | None = None) -> int | None:  # noqa: ANN001
    """Largest text+image context per sequence whose total fits the usable memory (steps of 256)."""
    llm_max = catalog_llm(model, catalog).max_context
    images_tokens = base.inputs.context_tokens - base.inputs.text_tokens
    lo_text = 256
    hi_text = max(lo_text, llm_max - images_tokens)

    def fits(text: int) -> bool:
        e = _estimate_once(model, gpu, w.model_copy(update={"context_tokens": text}), catalog, weights)
        return e.headroom_bytes >= 0

    if not fits(lo_text):
        return None
    if fits(hi_text):
        return hi_text + images_tokens
    lo, hi = lo_text // 256, hi_text // 256  # invariant: fits(lo*256), not fits(hi*256)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid * 256):
            lo = mid
        else:
            hi = mid
    return lo * 256 + images_tokens


def catalog_llm(model, catalog) -> LlmSpec:  # noqa: ANN001
    return vlm_parts(model, catalog).llm if isinstance(model, VlmSpec) else model


def _suggest(model, gpu: GpuSpec, w: Workload, catalog, est: Estimate, weights: FixedWeights | None = None) -> Suggestion | None:  # noqa: ANN001
    """The cheapest change that makes it fit: free switches first, then context, then precision."""
    tries: list[tuple[str, list[str], dict]] = []
    if w.runtime == "llama.cpp":
        if not w.flash_attention:
            tries.append(("turn flash attention on", ["--flash-attn"], {"flash_attention": True}))
        if w.kv_cache == "f16":
            tries.append(("quantize the KV cache to q8_0", ["--kv-cache", "q8_0"], {"kv_cache": "q8_0", "flash_attention": True}))
    if w.headless is False and gpu.category in ("consumer", "laptop"):
        tries.append(("run with no display on this GPU", ["--headless"], {"headless": True}))
    max_ctx = est.max_context_tokens
    if est.inputs.llm and max_ctx and max_ctx >= 2048 + est.inputs.context_tokens - est.inputs.text_tokens:
        text = max_ctx - (est.inputs.context_tokens - est.inputs.text_tokens)
        if text < est.inputs.text_tokens:
            tries.append((f"shorten the context to {text} text tokens", ["--ctx", str(text)], {"context_tokens": text}))
    if est.inputs.llm and w.runtime == "llama.cpp":
        order = GGUF_QUALITY_ORDER
        cur = est.inputs.quant
        start = order.index(cur) + 1 if cur in order else next(
            (i for i, q in enumerate(order) if _bpw(q) < _bpw(cur)), len(order))
        for q in order[start:]:
            tries.append((f"use a smaller quantization ({q})", ["--quant", q], {"quant": q}))
    elif est.inputs.llm:
        for q in ("int8", "nf4"):
            if est.inputs.quant not in ("int8", "nf4") or (q == "nf4" and est.inputs.quant == "int8"):
                tries.append((f"load the weights in {q} (bitsandbytes)", ["--quant", q], {"quant": q}))
    for change, flags, update in tries:
        e = _estimate_once(model, gpu, w.model_copy(update=update), catalog, _requant(weights, update))
        if e.verdict == "fits":
            return Suggestion(change=change, flags=flags, total_bytes=e.memory.total_bytes, verdict=e.verdict)
    # nothing alone: combine the free switches with the smallest precision tried
    if tries:
        combined: dict = {}
        flags: list[str] = []
        for _, f, u in tries:
            if "quant" in u or "context_tokens" in u:
                continue
            combined.update(u)
            flags += f
        smallest = [t for t in tries if "quant" in t[2]]  # tries are ordered best quality first
        if smallest:
            combined.update(smallest[-1][2])
            flags += smallest[-1][1]
        if combined:
            e = _estimate_once(model, gpu, w.model_copy(update=combined), catalog, _requant(weights, combined))
            if e.verdict in ("fits", "tight"):
                return Suggestion(change="combine: " + " ".join(flags), flags=flags, total_bytes=e.memory.total_bytes, verdict=e.verdict)
    return None


def _requant(weights: FixedWeights | None, update: dict) -> FixedWeights | None:
    """A suggestion that changes the LLM precision drops the fixed LLM weights (a file has one)."""
    if weights is None or "quant" not in update:
        return weights
    return FixedWeights(llm=None, vision=weights.vision, projector=weights.projector)


def _bpw(ftype: str) -> float:
    """Bits per weight of a file type's default tensor type (Q4_K_M -> Q4_K: 4.5)."""
    block_bytes, block = GGML_TYPES[GGUF_FILE_TYPES[ftype]]
    return 8 * block_bytes / block
