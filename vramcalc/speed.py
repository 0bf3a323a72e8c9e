"""Speed model: decode and prefill tokens/s, image-encode time, time to first token, images/s.

A roofline per component, with efficiency factors per runtime and backend fitted on published
benchmarks (``data/calibration.yaml``, written by ``benchmarks/fit_speed.py`` from
``shared/calibration/*.csv``):

- decode (one token): read every active weight once plus the KV cache at the current context,
  ``t = bytes / (eta_bw x bandwidth) + n_layers x tau``, where ``tau`` is a per-layer fixed cost
  (kernel launches, synchronisation) that dominates on fast cards with small models;
- prefill (a prompt of n tokens): ``t = FLOPs / (eta_c x peak) + weights read per micro-batch /
  bandwidth``, FLOPs = 2 x active parameters per token + the attention over the context;
- ViT forward (PyTorch): ``t = FLOPs / (eta_c x peak) + elementwise bytes / (eta_m x bandwidth)``,
  the second term being the non-GEMM traffic (norms, activations, residuals) that makes small
  towers inefficient.

Partial CPU offload and multi-GPU layer split follow llama.cpp's layer assignment
(``llama-model.cpp`` ``load_tensors``: the last ``n_gpu_layers`` repeating layers go to the GPUs,
the output layer counts as one more layer and is on a GPU only when ``n_gpu_layers > n_layer``;
layers are split between GPUs in proportion to their free memory by default (``tensor_split``
cumulative fractions, ``upper_bound``), the token embedding always stays on the CPU).

No I/O at import time: the calibration file is read on first use.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from importlib.resources import files
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from vramcalc.catalog import _Loader
from vramcalc.params import Tensor, llm_tensors, vision_grid
from vramcalc.quant import (
    QuantContext,
    ggml_type_bytes,
    gguf_tensor_type,
    torch_weight_bytes,
)
from vramcalc.schema import GpuSpec, LlmSpec, ResultModel, VisionEncoderSpec
from vramcalc.units import GiB

if TYPE_CHECKING:  # pragma: no cover
    from vramcalc.estimate import Workload

# ---------------------------------------------------------------------------------------------
# Result objects (part of the Estimate JSON)


class SpeedBasis(ResultModel):
    """What a speed figure is computed from, so it can be reproduced by hand."""

    bytes: int | None = Field(default=None, description="Bytes read per token (decode) or moved per image (non-GEMM traffic).")
    flops: int | None = Field(default=None, description="FLOPs of the step (prefill of the prompt, one image forward).")
    bandwidth_gbs: float | None = Field(default=None, description="Peak memory bandwidth used (GB/s); several devices: bytes-weighted.")
    effective_bandwidth_gbs: float | None = Field(default=None, description="Bytes per token x tokens/s: the bandwidth actually achieved.")
    peak_tflops: float | None = Field(default=None, description="Peak dense FP16 TFLOPS the compute term uses.")
    effective_tflops: float | None = Field(default=None, description="FLOPs / time: the compute rate actually achieved.")
    fixed_s: float | None = Field(default=None, description="Fixed cost per step (per-layer launch overhead x layers).")
    factors: str = Field(description="Key of the fitted factors in data/calibration.yaml.")
    calibrated: bool = Field(description="False where no published measurement backs this runtime/backend; the band is then wider.")


class SpeedFigure(ResultModel):
    """One speed with its band (the fit's residual spread)."""

    value: float
    low: float
    high: float
    unit: Literal["tokens/s", "s", "images/s"]
    basis: SpeedBasis


class Throughput(ResultModel):
    """How fast: decode and prefill tokens/s, image encode and time to first token, images/s."""

    decode_tokens_per_s: SpeedFigure | None = Field(default=None, description="One sequence, at the full context (KV cache read included).")
    prefill_tokens_per_s: SpeedFigure | None = Field(default=None, description="Prompt processing of the whole context (text + image tokens).")
    image_encode_s: SpeedFigure | None = Field(default=None, description="Vision encoder + projector, per image (all its crops).")
    time_to_first_token_s: SpeedFigure | None = Field(default=None, description="Image encodes + prefill of the context.")
    images_per_s: SpeedFigure | None = Field(default=None, description="Encoder workload: images per second at the batch size.")
    notes: list[str] = Field(default_factory=list)


class DeviceShare(ResultModel):
    """What one device holds under a llama.cpp layer split."""

    device: str = Field(description="GPU id, or 'cpu' for system RAM.")
    index: int = Field(description="GPU index (CUDA0 = 0); -1 for the CPU.")
    layers: int = Field(description="Repeating layers on this device.")
    first_layer: int | None = None
    output_layer: bool = Field(description="The output layer (output norm + lm head) is on this device.")
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    overhead_bytes: int
    total_bytes: int
    usable_bytes: int | None = Field(description="Memory the model may use on this device (None: system RAM size not given).")
    headroom_bytes: int | None
    memory_bandwidth_gbs: float


class Offload(ResultModel):
    """Layer placement: how many layers run on the GPU(s), and what each device holds."""

    mode: Literal["full", "auto", "manual"] = Field(description="full = everything on the GPU(s); auto = most layers that fit; manual = --gpu-layers.")
    gpu_layers: int = Field(description="llama.cpp -ngl: repeating layers + 1 for the output layer.")
    total_layers: int = Field(description="n_layer + 1 (the output layer counts, as llama.cpp prints 'offloaded 33/33 layers').")
    devices: list[DeviceShare]
    cpu_weights_bytes: int = Field(description="Weights in system RAM (token embeddings + CPU layers).")
    ram_bytes: int | None = Field(description="System RAM given with --ram.")
    ram_usable_bytes: int | None = Field(description="System RAM left to the model after the OS share.")
    ram_bandwidth_gbs: float
    fits_in_ram: bool | None


# ---------------------------------------------------------------------------------------------
# Calibration data


@functools.cache
def calibration() -> dict:
    """The fitted factors (data/calibration.yaml), read on first use."""
    import yaml

    text = (files("vramcalc.data") / "calibration.yaml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=_Loader)  # libyaml: 8x faster than safe_load's pure-Python loader


def _factors(*path: str) -> dict:
    node = calibration()
    for p in path:
        node = node[p]
    return node


#: Dual-channel desktop memory (2 x 64-bit channels): DDR4-3200 = 2 x 8 B x 3200 MT/s = 51.2 GB/s,
#: DDR5-5600 = 2 x 8 B x 5600 MT/s = 89.6 GB/s (JEDEC transfer rates; peak, not measured).
RAM_BANDWIDTH_GBS = {"ddr4": 51.2, "ddr5": 89.6}
DEFAULT_RAM = "ddr5"
#: What the OS and other programs keep of system RAM: a guess (a desktop session uses 3-6 GB).
GUESS_OS_RAM_BYTES = 4 * GiB


def ram_bandwidth(value: str | float | None) -> float:
    """GB/s from a number or 'ddr4' / 'ddr5' (dual channel); None = the DDR5 default."""
    if value is None:
        return RAM_BANDWIDTH_GBS[DEFAULT_RAM]
    if isinstance(value, (int, float)):
        return float(value)
    v = value.strip().lower()
    if v in RAM_BANDWIDTH_GBS:
        return RAM_BANDWIDTH_GBS[v]
    return float(v)


# ---------------------------------------------------------------------------------------------
# Hardware: backend and peak compute


def peak_tflops(gpu: GpuSpec) -> float:
    """Peak dense FP16 matrix TFLOPS the prefill/ViT compute term scales with.

    NVIDIA Volta..Blackwell: 4 x the FP16 shader rate (dense FP16 tensor rate with FP16
    accumulate; e.g. GA102 whitepaper RTX 3090 142 = 4 x 35.6, A100 312 = 4 x 78). This is taken
    in preference to ``fp16_tensor_tflops`` because catalog entries mix the FP16- and the
    FP32-accumulate figure for GeForce cards, which differ 2x; llama.cpp's MMQ (int8) and
    cuBLAS FP16 paths run at the FP16-accumulate rate or above. Other vendors: the tensor /
    matrix figure where given, else the FP16 shader rate (Apple: scales with the GPU core count).

    Why not the FP32-accumulate rate (half on GeForce cards; GA102 whitepaper: RTX 3090 71 vs 142
    TFLOPS): fitted against it, the timm ViT rows come out
    above that peak (efficiency 1.15 on an RTX 3090), and carried to an A100 it would predict more
    than the A100's 312 TFLOPS; the FP16-accumulate convention gives 0.57 and sane transfers.
    """
    cc = float(gpu.compute_capability) if gpu.vendor == "nvidia" and gpu.compute_capability else 0.0
    if gpu.vendor == "nvidia" and cc >= 9.0 and gpu.category == "datacenter" and gpu.fp16_tensor_tflops:
        # Hopper/Blackwell datacenter parts: tensor cores run 7.4x the shader rate (H100 SXM whitepaper:
        # 989.4 dense FP16 tensor vs 133.8 FP16 shader), so 4x the shader rate would understate them 1.85x
        return gpu.fp16_tensor_tflops
    if gpu.vendor == "nvidia" and cc >= 7.0 and gpu.fp16_tflops:
        return 4 * gpu.fp16_tflops
    if gpu.vendor == "nvidia" and cc and cc < 7.0:
        # Maxwell/Pascal: no tensor cores and FP16 at 1/64 rate on most; llama.cpp runs FP32/dp4a
        # kernels there, whose rate the catalog does not carry: no compute estimate (0)
        return 0.0
    return gpu.fp16_tensor_tflops or gpu.fp16_tflops or gpu.bf16_tensor_tflops or 0.0


# ---------------------------------------------------------------------------------------------
# Bytes and FLOPs of an LLM, layer by layer


@dataclass(frozen=True)
class LlmBytes:
    """Weight bytes of an LLM at one precision, split the way llama.cpp places them."""

    layer_stored: tuple[int, ...]  # per repeating layer, all experts (memory)
    layer_read: tuple[int, ...]  # per repeating layer, bytes read per token (active experts only)
    output_stored: int  # output norm + output.weight (lm head); for tied embeddings the token_embd copy
    output_read: int
    embd: int  # token_embd: host memory, a row lookup per token
    active_params: int  # parameters multiplied per token (MoE: active experts), without token_embd and output
    output_params: int
    kv_elem_bytes_per_cell: tuple[float, ...]  # K + V bytes per cell per layer
    sliding: tuple[bool, ...]
    window: int | None


_LB_CACHE: dict[tuple, tuple[LlmSpec, LlmBytes]] = {}


def llm_bytes(llm: LlmSpec, runtime: str, quant: str, kv_type: str = "f16") -> LlmBytes:
    """Per-layer weight bytes (stored and read per token) at ``quant``, and KV bytes per cell (memoized)."""
    key = (id(llm), runtime, quant, kv_type)
    hit = _LB_CACHE.get(key)
    if hit is not None and hit[0] is llm:
        return hit[1]
    out = _llm_bytes(llm, runtime, quant, kv_type)
    _LB_CACHE[key] = (llm, out)
    return out


def _llm_bytes(llm: LlmSpec, runtime: str, quant: str, kv_type: str = "f16") -> LlmBytes:
    """Per-layer weight bytes (stored and read per token) at ``quant``, and KV bytes per cell.

    llama.cpp: each tensor at the type ``llama_tensor_get_type`` gives it (quant.py); PyTorch
    formats: quant.torch_weight_bytes tensor by tensor. MoE expert tensors (``*_exps``) are read
    only for the active experts: ``experts_per_token / num_experts`` of their bytes.
    """
    from vramcalc.estimate import KV_TYPE_BYTES, _quant_context

    n = llm.num_layers
    stored = [0] * n
    read = [0.0] * n
    out_s = out_r = embd = 0
    active = out_p = 0
    qctx: QuantContext | None = _quant_context(llm, quant) if runtime == "llama.cpp" else None
    moe_frac = llm.moe.experts_per_token / llm.moe.num_experts if llm.moe else 1.0
    for t in llm_tensors(llm):
        nb = _tensor_bytes(t, runtime, quant, qctx)
        frac = moe_frac if t.role.endswith("_exps") else 1.0
        if t.role == "token_embd":
            embd += nb
            if llm.tied_embeddings:  # the lm head is the same matrix: read fully per token
                out_r += nb
                out_p += t.numel
        elif t.layer is None:  # output norm, output.weight
            out_s += nb
            out_r += nb
            if t.ndim >= 2:
                out_p += t.numel
        else:
            stored[t.layer] += nb
            read[t.layer] += nb * frac
            if t.ndim >= 2:
                active += int(t.numel * frac)
    if llm.mla:
        k_dim = llm.mla.kv_lora_rank + llm.mla.qk_rope_head_dim
        v_dim = llm.mla.kv_lora_rank
    else:
        k_dim = v_dim = llm.num_kv_heads * llm.head_dim_
    per = (k_dim + v_dim) * KV_TYPE_BYTES[kv_type]
    sliding = tuple(bool(llm.sliding_window and llm.sliding_window.is_sliding(i)) for i in range(n))
    return LlmBytes(
        layer_stored=tuple(stored), layer_read=tuple(int(r) for r in read), output_stored=out_s, output_read=out_r,
        embd=embd, active_params=active, output_params=out_p, kv_elem_bytes_per_cell=tuple([per] * n), sliding=sliding,
        window=llm.sliding_window.size if llm.sliding_window else None,
    )


def _tensor_bytes(t: Tensor, runtime: str, quant: str, qctx: QuantContext | None) -> int:
    if qctx is not None:
        return ggml_type_bytes(gguf_tensor_type(t, qctx), t.numel)
    return torch_weight_bytes((t,), quant).bytes


def kv_read_bytes(lb: LlmBytes, context: int, layers: range | None = None) -> float:
    """KV bytes read for one decoded token at ``context`` tokens (sliding layers: the window)."""
    total = 0.0
    for i in layers if layers is not None else range(len(lb.layer_read)):
        cells = min(context, lb.window) if lb.sliding[i] and lb.window else context
        total += cells * lb.kv_elem_bytes_per_cell[i]
    return total


def prefill_flops(llm: LlmSpec, lb: LlmBytes, tokens: int, start: int = 0) -> int:
    """FLOPs to process ``tokens`` prompt tokens after ``start`` tokens already in the cache.

    2 x active parameters per token (each weight one multiply-add), the lm head for the last token
    only (llama.cpp computes logits for the last prompt token), and the attention: per layer
    QK^T and AV, 2 x 2 x q_dim FLOPs per (query, key) pair, over the causal pairs (sliding-window
    layers: at most the window).
    """
    if llm.mla:
        qk = llm.num_heads * (llm.mla.qk_nope_head_dim + llm.mla.qk_rope_head_dim)
        vd = llm.num_heads * llm.mla.v_head_dim
    else:
        qk = vd = llm.num_heads * llm.head_dim_
    flops = 2 * lb.active_params * tokens + 2 * lb.output_params
    end = start + tokens
    full_pairs = (end * (end + 1) - start * (start + 1)) // 2  # sum of keys seen by each new query
    for i in range(llm.num_layers):
        pairs = full_pairs
        if lb.sliding[i] and lb.window:
            pairs = min(full_pairs, tokens * lb.window)
        flops += 2 * pairs * (qk + vd)
    return int(flops)


# ---------------------------------------------------------------------------------------------
# ViT FLOPs and elementwise traffic


def vit_flops(enc: VisionEncoderSpec, patches: int) -> int:
    """Forward FLOPs of one image (one crop) with ``patches`` tokens (incl. class/register tokens).

    Uses ``vramcalc.vit.vit_flops`` (checked against torch's FlopCounterMode) for a square patch
    grid; otherwise the same count done here: patch embedding, QKV/out projections, attention
    scores and weighted sum (N^2), MLP, and SigLIP's attention-pooling head.
    """
    grid = patches - int(enc.class_token) - enc.register_tokens
    side = math.isqrt(max(grid, 0))
    if side * side == grid and enc.temporal_patch_size == 1 and enc.window_attention is None:
        from vramcalc.vit import vit_flops as counted

        px = side * enc.patch_size
        return counted(enc, 1, px, px).total
    return _vit_flops(enc, patches)


def _vit_flops(enc: VisionEncoderSpec, n: int) -> int:
    h = enc.hidden_size
    qd = enc.num_heads * enc.head_dim_
    ff = enc.intermediate_size
    p2c = enc.patch_size**2 * enc.num_channels * enc.temporal_patch_size
    extra = int(enc.class_token) + enc.register_tokens
    grid = max(n - extra, 1)
    f = 2 * grid * p2c * h
    per_layer_lin = 2 * n * h * 3 * qd + 2 * n * qd * h + 2 * n * h * ff * (3 if enc.gated_mlp else 2)
    for i in range(enc.num_layers):
        keys = n
        wa = enc.window_attention
        if wa and i not in wa.full_attention_layers:
            keys = min(n, (wa.window_size_px // enc.patch_size) ** 2)
        f += per_layer_lin + 2 * 2 * n * keys * qd
    if enc.pooling_head == "map":
        f += 2 * n * h * 2 * h + 2 * 2 * h * h + 2 * 2 * n * h + 2 * 2 * h * ff
    return int(f)


def vit_elementwise_bytes(enc: VisionEncoderSpec, patches: int, dtype_bytes: int = 2) -> int:
    """Non-GEMM memory traffic of one image forward: the activations each elementwise op reads
    and writes (2 layer norms, the attention kernel's q/k/v in and out, bias + activation on the
    MLP hidden, 2 residual adds): about 14 hidden-size and 2 MLP-size tensors per token per layer.
    The factor (eta_m) that turns this into time is fitted on the timm benchmark."""
    per_tok = 14 * enc.hidden_size + 2 * enc.intermediate_size * (2 if enc.gated_mlp else 1)
    return int(enc.num_layers * patches * per_tok * dtype_bytes)


# ---------------------------------------------------------------------------------------------
# Elementary timings (used by the fit too, so the fit and the prediction share one formula)


def decode_time(read_bytes: float, layers: int, bw_gbs: float, f: dict) -> float:
    """Seconds per decoded token on one device: bytes / (eta x bandwidth) + layers x tau.

    ``overlap`` factors (transformers): the Python dispatch of each layer runs ahead of the GPU, so
    the two overlap: (mem^p + cpu^p)^(1/p), p = ``overlap`` (1 = no overlap, large p = the longer of
    the two), with mem = bytes / (eta x bandwidth) and cpu = layers x tau.
    """
    mem = read_bytes / (f["bandwidth_efficiency"] * bw_gbs * 1e9)
    p = f.get("overlap")
    if p:
        return (mem**p + (layers * f["per_layer_s"]) ** p) ** (1 / p)
    return mem + layers * f["per_layer_s"]


def prefill_time(flops: float, weight_bytes: float, ubatches: int, peak: float, bw_gbs: float, f: dict) -> float:
    """Seconds for a prompt on one device: FLOPs / (eta x peak) + weights read per micro-batch."""
    return flops / (f["compute_efficiency"] * peak * 1e12) + ubatches * weight_bytes / (bw_gbs * 1e9)


def vit_time(flops: float, ew_bytes: float, peak: float, bw_gbs: float, f: dict) -> float:
    """Seconds for one image forward (PyTorch): GEMM FLOPs + elementwise traffic."""
    return flops / (f["compute_efficiency"] * peak * 1e12) + ew_bytes / (f["bandwidth_efficiency"] * bw_gbs * 1e9)


def _band(value: float, spread: float) -> tuple[float, float]:
    """(low, high) from a relative log spread; for times the band is the same factor."""
    k = math.exp(spread)
    return value / k, value * k


def _figure(value: float, spread: float, unit: str, basis: SpeedBasis) -> SpeedFigure:
    lo, hi = _band(value, spread)
    r = _round_sig
    return SpeedFigure(value=r(value), low=r(lo), high=r(hi), unit=unit, basis=basis)  # type: ignore[arg-type]


def _round_sig(x: float, sig: int = 4) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, sig - 1 - math.floor(math.log10(abs(x))))


def _quant_key(runtime: str, quant: str) -> str:
    """Weight class the factors are keyed by: transformers bf16 / gptq / awq (the kernels differ);
    llama.cpp f16 / quant (prefill only: dequantising matmuls vs cuBLAS/Metal F16 GEMMs)."""
    q = quant.lower()
    if runtime == "transformers":
        if q in ("fp16", "bf16", "fp32", "fp8"):
            return "bf16"
        return q.split("-")[0]  # gptq-int4 -> gptq, awq-int4 -> awq, nf4, int8
    return "f16" if q in ("f16", "bf16", "f32") else "quant"


def _decode_factors(runtime: str, backend: str, quant: str = "") -> tuple[dict, str, bool]:
    cal = calibration()
    group = cal["decode"].get(runtime, {})
    for key in (f"{backend}.{_quant_key(runtime, quant)}", backend):
        if key in group:
            return group[key], f"decode.{runtime}.{key}", bool(group[key].get("rows"))
    if runtime == "transformers":  # bnb nf4/int8 and non-CUDA backends: the bf16 CUDA factors, uncalibrated
        fb = group.get("cuda.bf16")
        if fb:
            return fb, f"decode.{runtime}.cuda.bf16", False
    return cal["decode"]["llama.cpp"]["cuda"], "decode.llama.cpp.cuda", False


def _prefill_factors(runtime: str, backend: str, quant: str) -> tuple[dict, str, bool]:
    cal = calibration()
    group = cal["prefill"].get(runtime, {})
    for key in (f"{backend}.{_quant_key(runtime, quant)}", backend):
        if key in group:
            return group[key], f"prefill.{runtime}.{key}", bool(group[key].get("rows"))
    return cal["prefill"]["llama.cpp"]["cuda.quant"], "prefill.llama.cpp.cuda.quant", False


def _spread(f: dict, calibrated: bool) -> float:
    cal = calibration()
    s = f.get("spread_log") or cal["uncalibrated_spread_log"]
    return s if calibrated else max(s, cal["uncalibrated_spread_log"])


# ---------------------------------------------------------------------------------------------
# Placement (llama.cpp layer split and CPU offload)


@dataclass
class Placement:
    """Which device each repeating layer and the output layer sit on (-1 = CPU)."""

    layer_dev: list[int]
    output_dev: int
    ngl: int


def assign_layers(n_layer: int, ngl: int, splits: list[float]) -> Placement:
    """llama.cpp ``load_tensors`` layer assignment for ``-ngl`` and a tensor split.

    ``i_gpu_start = max(n_layer - ngl, 0)``, ``act = min(ngl, n_layer + 1)``; layer ``il`` (the
    output layer is ``il = n_layer``) is on the CPU if ``il < i_gpu_start`` or ``il - i_gpu_start >=
    act``, else on GPU ``upper_bound(splits, (il - i_gpu_start) / act)`` with ``splits`` the
    cumulative normalised split fractions.
    """
    total = sum(splits) or 1.0
    cum, acc = [], 0.0
    for s in splits:
        acc += s
        cum.append(acc / total)
    start = max(n_layer - ngl, 0)
    act = min(ngl, n_layer + 1)

    def dev(il: int) -> int:
        if il < start or il - start >= act or act == 0:
            return -1
        x = (il - start) / act
        for k, c in enumerate(cum):
            if c > x:
                return k
        return len(cum) - 1

    return Placement([dev(i) for i in range(n_layer)], dev(n_layer), ngl)


@dataclass
class _Fixed:
    """Per-GPU memory that does not depend on the layer split."""

    compute_llm: int
    compute_vis: int
    vision_weights: int
    overhead: int
    embd_on_cpu: bool = True  # llama.cpp keeps token_embd on the host; accelerate puts it on GPU 0


def device_shares(
    placement: Placement, lb: LlmBytes, gpus: list[GpuSpec], usable: list[int], cells: int, swa_cells: int, fixed: _Fixed,
    ram_usable: int | None, ram_bw: float,
) -> list[DeviceShare]:
    """Memory per device for a placement. KV lives with its layer (offload_kqv): ``cells`` per
    full-attention layer, ``swa_cells`` per sliding-window layer (the memory estimate's figures); each
    GPU holds a compute buffer and a runtime context; the vision tower (mmproj) sits on GPU 0."""
    n = len(lb.layer_stored)
    out: list[DeviceShare] = []
    for d in list(range(len(gpus))) + [-1]:
        idx = [i for i in range(n) if placement.layer_dev[i] == d]
        w = sum(lb.layer_stored[i] for i in idx)
        has_out = placement.output_dev == d
        if has_out:
            w += lb.output_stored
        kv = int(sum((swa_cells if lb.sliding[i] else cells) * lb.kv_elem_bytes_per_cell[i] for i in idx))
        if d == (-1 if fixed.embd_on_cpu else 0):
            w += lb.embd
        if d == -1:  # system RAM: weights and KV only (no compute buffer or runtime context counted there)
            tot = w + kv
            out.append(DeviceShare(
                device="cpu", index=-1, layers=len(idx), first_layer=idx[0] if idx else None, output_layer=has_out,
                weights_bytes=w, kv_cache_bytes=kv, compute_bytes=0, overhead_bytes=0, total_bytes=tot,
                usable_bytes=ram_usable, headroom_bytes=None if ram_usable is None else ram_usable - tot,
                memory_bandwidth_gbs=ram_bw,
            ))
            continue
        if d == 0:
            w += fixed.vision_weights
        comp = fixed.compute_llm + (fixed.compute_vis if d == 0 else 0)
        over = fixed.overhead
        tot = w + kv + comp + over
        out.append(DeviceShare(
            device=gpus[d].id, index=d, layers=len(idx), first_layer=idx[0] if idx else None, output_layer=has_out,
            weights_bytes=w, kv_cache_bytes=kv, compute_bytes=comp, overhead_bytes=over, total_bytes=tot,
            usable_bytes=usable[d], headroom_bytes=usable[d] - tot, memory_bandwidth_gbs=gpus[d].memory_bandwidth_gbs,
        ))
    return out


# ---------------------------------------------------------------------------------------------
# The plan: placement + speeds for one estimate


@dataclass
class SpeedInputs:
    """What speed_plan needs from the memory estimate (so this module does not recompute it)."""

    kind: str  # llm / vlm / encoder
    runtime: str
    quant: str
    context_tokens: int
    images: int
    image_tokens_per_image: int
    encoder_crops: int
    encoder_patches: int
    batch: int
    kv_cache: str
    n_ubatch: int
    kv_cells: int  # per full-attention layer
    kv_swa_cells: int  # per sliding-window layer
    compute_llm: int
    compute_vis: int
    vision_weights: int  # vision tower + projector bytes (on GPU 0)
    projector_params: int
    overhead: int
    usable: list[int] = field(default_factory=list)


def speed_plan(
    llm: LlmSpec | None, enc: VisionEncoderSpec | None, gpus: list[GpuSpec], s: SpeedInputs, w: Workload,
) -> tuple[Offload | None, Throughput, list[str]]:
    """Placement of the layers and the speeds that follow.

    Returns (offload, throughput, notes). ``offload`` is None for an encoder-only workload and for
    transformers on one GPU (no layer placement to report).
    """
    notes: list[str] = []
    thr = Throughput()
    ram_bw = ram_bandwidth(w.ram_bandwidth_gbs)
    ram_usable = None if w.ram_bytes is None else max(w.ram_bytes - GUESS_OS_RAM_BYTES, 0)
    offload: Offload | None = None
    gpu0 = gpus[0]

    if llm is not None:
        lb = llm_bytes(llm, s.runtime, s.quant, s.kv_cache)
        n = llm.num_layers
        fixed = _Fixed(compute_llm=s.compute_llm, compute_vis=s.compute_vis, vision_weights=s.vision_weights, overhead=s.overhead,
                       embd_on_cpu=s.runtime == "llama.cpp")
        if s.runtime == "llama.cpp" or len(gpus) > 1:
            offload, placement = _choose_placement(lb, n, gpus, s, w, fixed, ram_usable, ram_bw)
        else:
            placement = Placement([0] * n, 0, n + 1)
        thr.decode_tokens_per_s = _decode(llm, lb, placement, gpus, s, ram_bw)
        if all(peak_tflops(g) > 0 for g in gpus):
            thr.prefill_tokens_per_s, t_prefill = _prefill(llm, lb, placement, gpus, s)
        else:
            thr.notes.append("No prefill or time-to-first-token estimate: the catalog has no matrix (FP16/FP32) rate for this GPU.")
        if s.runtime == "transformers" and gpu0.backend == "metal":
            notes.append("transformers on Apple (MPS) is not calibrated; speeds use the llama.cpp Metal factors.")
    if enc is not None and peak_tflops(gpu0) > 0:
        fig, per_image = _image_encode(enc, gpu0, s)
        if s.kind == "encoder":
            thr.images_per_s = fig
            if w.batch < 64:
                thr.notes.append("images/s is fitted on large batches (timm, 256-1024 images); a small batch leaves the GPU partly idle.")
        else:
            thr.image_encode_s = per_image
    if llm is not None and thr.prefill_tokens_per_s is not None:
        ttft = t_prefill
        f_pf = thr.prefill_tokens_per_s
        lo_t = s.context_tokens / f_pf.high
        hi_t = s.context_tokens / f_pf.low
        if thr.image_encode_s is not None and s.images:
            ttft += s.images * thr.image_encode_s.value
            lo_t += s.images * thr.image_encode_s.low
            hi_t += s.images * thr.image_encode_s.high
        basis = SpeedBasis(
            flops=thr.prefill_tokens_per_s.basis.flops, factors="image_encode_s x images + context / prefill_tokens_per_s",
            calibrated=thr.prefill_tokens_per_s.basis.calibrated,
        )
        r = _round_sig
        thr.time_to_first_token_s = SpeedFigure(value=r(ttft), low=r(lo_t), high=r(hi_t), unit="s", basis=basis)
    return offload, thr, notes


def _choose_placement(
    lb: LlmBytes, n: int, gpus: list[GpuSpec], s: SpeedInputs, w: Workload, fixed: _Fixed, ram_usable: int | None, ram_bw: float,
) -> tuple[Offload, Placement]:
    usable = s.usable
    # llama.cpp default tensor split: proportional to each device's free memory
    splits = [float(u) for u in usable]
    full = n + 1
    if w.gpu_layers is not None:
        ngl = min(max(w.gpu_layers, 0), full)
        mode = "manual"
        pl = assign_layers(n, ngl, splits)
    else:
        pl = assign_layers(n, full, splits)
        shares = device_shares(pl, lb, gpus, usable, s.kv_cells, s.kv_swa_cells, fixed, ram_usable, ram_bw)
        if all((d.headroom_bytes or 0) >= 0 for d in shares if d.index >= 0) or w.offload == "none":
            mode = "full"
        else:
            # most layers that fit: the largest ngl whose every GPU share fits; with several GPUs
            # the split is re-weighted so no card overflows first (what --fit / ollama do)
            mode = "auto"
            best = None
            for ngl in range(full - 1, -1, -1):
                cand = assign_layers(n, ngl, splits)
                sh = device_shares(cand, lb, gpus, usable, s.kv_cells, s.kv_swa_cells, fixed, ram_usable, ram_bw)
                if all((d.headroom_bytes or 0) >= 0 for d in sh if d.index >= 0):
                    best = cand
                    break
            pl = best or assign_layers(n, 0, splits)
    shares = device_shares(pl, lb, gpus, usable, s.kv_cells, s.kv_swa_cells, fixed, ram_usable, ram_bw)
    cpu = shares[-1]
    off = Offload(
        mode=mode, gpu_layers=pl.ngl if mode != "full" else full, total_layers=full, devices=shares,
        cpu_weights_bytes=cpu.weights_bytes, ram_bytes=w.ram_bytes, ram_usable_bytes=ram_usable, ram_bandwidth_gbs=ram_bw,
        fits_in_ram=None if ram_usable is None else cpu.total_bytes <= ram_usable,
    )
    return off, pl


def _decode(llm: LlmSpec, lb: LlmBytes, pl: Placement, gpus: list[GpuSpec], s: SpeedInputs, ram_bw: float) -> SpeedFigure:
    """Decode: devices run their layers one after the other for one token, so times add."""
    n = llm.num_layers
    ctx = s.context_tokens
    t = 0.0
    bytes_total = 0.0
    fixed_s = 0.0
    spreads = []
    keys = []
    calibrated = True
    bw_weighted = 0.0
    for d in list(range(len(gpus))) + [-1]:
        idx = [i for i in range(n) if pl.layer_dev[i] == d]
        b = sum(lb.layer_read[i] for i in idx) + kv_read_bytes(lb, ctx, idx) * s.batch  # type: ignore[arg-type]
        if pl.output_dev == d:
            b += lb.output_read
        if b == 0:
            continue
        if d == -1:
            f, key, cal = _decode_factors("llama.cpp", "cpu")
            bw = ram_bw
        else:
            f, key, cal = _decode_factors(s.runtime, gpus[d].backend, s.quant)
            bw = gpus[d].memory_bandwidth_gbs
        layers = len(idx) + (1 if pl.output_dev == d else 0)
        dt = decode_time(b, layers, bw, f)
        t += dt
        fixed_s += layers * f["per_layer_s"]
        bytes_total += b
        bw_weighted += b * bw
        spreads.append((dt, _spread(f, cal)))
        keys.append(key)
        calibrated = calibrated and cal
    spread = sum(dt * sp for dt, sp in spreads) / t
    tps = 1.0 / t
    basis = SpeedBasis(
        bytes=int(bytes_total), bandwidth_gbs=round(bw_weighted / bytes_total, 1), effective_bandwidth_gbs=round(bytes_total * tps / 1e9, 1),
        fixed_s=_round_sig(fixed_s), factors=" + ".join(dict.fromkeys(keys)), calibrated=calibrated,
    )
    return _figure(tps, spread, "tokens/s", basis)


#: PCIe 4.0 x16 host-to-device copy rate llama.cpp gets when it streams CPU-resident weights to the
#: GPU for prompt processing (ggml-cuda offload_op, batches >= 32): a guess (25 of 32 GB/s peak).
GUESS_PCIE_GBS = 25.0


def _prefill(llm: LlmSpec, lb: LlmBytes, pl: Placement, gpus: list[GpuSpec], s: SpeedInputs) -> tuple[SpeedFigure, float]:
    """Prefill of the whole context: each GPU computes its layers; layers on the CPU are computed
    on GPU 0 with their weights copied over PCIe once per micro-batch (llama.cpp CUDA op offload)."""
    n = llm.num_layers
    tokens = s.context_tokens * s.batch
    ub = max(1, -(-tokens // s.n_ubatch))
    total_flops = prefill_flops(llm, lb, s.context_tokens) * s.batch
    t = 0.0
    keys, spreads, calibrated = [], [], True
    peaks = []
    for d in list(range(len(gpus))) + [-1]:
        idx = [i for i in range(n) if pl.layer_dev[i] == d]
        share = (len(idx) / n) if n else 0
        if share == 0 and pl.output_dev != d:
            continue
        flops = (total_flops - 2 * lb.output_params * s.batch) * share + (2 * lb.output_params * s.batch if pl.output_dev == d else 0)
        wbytes = sum(lb.layer_stored[i] for i in idx) + (lb.output_stored if pl.output_dev == d else 0)
        g = gpus[d] if d >= 0 else gpus[0]
        peak = peak_tflops(g)
        if s.runtime == "transformers":
            # no published transformers prefill timings here: PyTorch GEMM efficiency from the timm fit
            f, key, cal = calibration()["vit"]["transformers"]["cuda"], "vit.transformers.cuda (PyTorch GEMMs)", False
        else:
            f, key, cal = _prefill_factors(s.runtime, g.backend, s.quant)
        if d == -1:
            if g.unified_memory:
                dt = prefill_time(flops, wbytes, ub, peak, g.memory_bandwidth_gbs, f)
            else:
                dt = prefill_time(flops, 0, ub, peak, g.memory_bandwidth_gbs, f) + ub * wbytes / (GUESS_PCIE_GBS * 1e9)
                cal = False
        else:
            dt = prefill_time(flops, wbytes, ub, peak, g.memory_bandwidth_gbs, f)
        t += dt
        keys.append(key)
        spreads.append((dt, _spread(f, cal)))
        peaks.append(peak)
        calibrated = calibrated and cal
    spread = sum(dt * sp for dt, sp in spreads) / t
    tps = tokens / t
    basis = SpeedBasis(
        flops=int(total_flops), peak_tflops=round(max(peaks), 2), effective_tflops=round(total_flops / t / 1e12, 2),
        factors=" + ".join(dict.fromkeys(keys)), calibrated=calibrated,
    )
    return _figure(tps, spread, "tokens/s", basis), t


def _image_encode(enc: VisionEncoderSpec, gpu: GpuSpec, s: SpeedInputs) -> tuple[SpeedFigure, SpeedFigure]:
    """(images/s at the batch, seconds per image). PyTorch: the timm-fitted ViT factors; llama.cpp
    (clip/mtmd, one image at a time): its F16 prefill compute factors, not separately calibrated."""
    crops = max(s.encoder_crops, 1)
    patches = s.encoder_patches
    f_img = vit_flops(enc, patches) * crops + 2 * s.projector_params * max(s.image_tokens_per_image, 1)
    ew = vit_elementwise_bytes(enc, patches) * crops
    # an encoder on its own (image embedding in batches) is a PyTorch job: the timm-fitted factors
    torch_like = s.runtime == "transformers" or s.kind == "encoder"
    peak = peak_tflops(gpu)
    bw = gpu.memory_bandwidth_gbs
    cal = calibration()
    if torch_like:
        backend = gpu.backend
        group = cal["vit"]["transformers"]
        f = group.get(backend) or group["cuda"]
        key = f"vit.transformers.{backend if backend in group else 'cuda'}"
        calibrated = backend in group and bool(f.get("rows"))
        t = vit_time(f_img, ew, peak, bw, f)
    else:
        f, key, _ = _prefill_factors("llama.cpp", gpu.backend, "F16")
        key += " (applied to the vision tower)"
        calibrated = False
        t = f_img / (f["compute_efficiency"] * peak * 1e12)
    spread = _spread(f, calibrated)
    basis = SpeedBasis(
        flops=int(f_img), bytes=int(ew), bandwidth_gbs=bw, peak_tflops=round(peak, 2), effective_tflops=round(f_img / t / 1e12, 2),
        factors=key, calibrated=calibrated,
    )
    per_image = _figure(t, spread, "s", basis)
    ips = _figure(1.0 / t, spread, "images/s", basis)
    return ips, per_image


def decode_label(off: Offload | None, thr: Throughput) -> str | None:
    """'runs with 20/81 layers on GPU at ~6 tok/s' for the offload verdict."""
    if off is None or thr.decode_tokens_per_s is None:
        return None
    return f"runs with {off.gpu_layers}/{off.total_layers} layers on GPU at ~{_fmt_rate(thr.decode_tokens_per_s.value)} tok/s"


def _fmt_rate(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


# ---------------------------------------------------------------------------------------------
# Hook called at the end of estimate()


def attach_speed(est, model, gpus: list[GpuSpec], w: Workload, catalog=None) -> None:
    """Add ``throughput`` and ``offload`` to an Estimate, and settle the verdict for CPU offload,
    several GPUs and --gpu-layers. Mutates ``est`` (called by ``estimate()`` only)."""
    from vramcalc.estimate import (
        KV_PAD,
        TIGHT_MARGIN_BYTES,
        _pad,
        gpu_info,
        image_tokens,
    )
    from vramcalc.params import vlm_parts
    from vramcalc.schema import VlmSpec

    i, m = est.inputs, est.memory
    enc = llm = None
    proj_params = 0
    crops = patches = 0
    if isinstance(model, VlmSpec):
        parts = vlm_parts(model, catalog)
        enc, llm = parts.encoder, parts.llm
        proj_params = sum(t.numel for t in parts.projector)
        _, crops, patches = image_tokens(model, enc, i.image_size)
    elif isinstance(model, LlmSpec):
        llm = model
    else:
        enc = model
        gx, gy = vision_grid(enc, *(i.image_size or (enc.image_size, enc.image_size)))
        crops, patches = 1, gx * gy + int(enc.class_token) + enc.register_tokens
    usable = [gpu_info(g, w.headless if k == 0 else True).usable_bytes for k, g in enumerate(gpus)]
    swa_cells = m.kv_cache_cells
    if llm is not None and llm.sliding_window:
        # the cells estimate.kv_cache_bytes gives a sliding-window layer (llama.cpp llama_kv_cache_iswa:
        # min(n_ctx, pad(n_swa x n_seq + n_ubatch, 256)); transformers: the window per sequence)
        llama = w.runtime == "llama.cpp"
        swa_cells = min(swa_cells, _pad(llm.sliding_window.size * w.batch + (w.n_ubatch if llama else 0), KV_PAD if llama else 1))
    if gpus[0].unified_memory and w.ram_bytes is None:
        # one pool: what the CPU side may use is the RAM beyond the GPU working set, less the OS
        w = w.model_copy(update={"ram_bytes": max(gpus[0].memory_bytes - usable[0], 0) + GUESS_OS_RAM_BYTES,
                                 "ram_bandwidth_gbs": w.ram_bandwidth_gbs or gpus[0].memory_bandwidth_gbs})
    s = SpeedInputs(
        kind=i.model_kind, runtime=i.runtime, quant=i.quant, context_tokens=i.context_tokens, images=i.images, image_tokens_per_image=i.image_tokens_per_image, encoder_crops=crops,
        encoder_patches=patches, batch=i.batch, kv_cache=i.kv_cache, n_ubatch=i.n_ubatch, kv_cells=m.kv_cache_cells, kv_swa_cells=swa_cells,
        compute_llm=m.compute_bytes.llm, compute_vis=m.compute_bytes.vision,
        vision_weights=m.weights_bytes.vision + m.weights_bytes.projector, projector_params=proj_params,
        overhead=m.overhead_bytes, usable=usable,
    )
    if i.model_kind == "encoder":
        s.batch = 1
    offload, thr, notes = speed_plan(llm, enc, gpus, s, w)
    est.throughput = thr
    est.offload = offload
    est.notes.extend(notes)
    if offload is None:
        return
    gpu_shares = [d for d in offload.devices if d.index >= 0]
    min_head = min(d.headroom_bytes or 0 for d in gpu_shares)
    label = decode_label(offload, thr)
    if offload.mode == "full" and min_head < 0:  # --offload none and it does not fit
        est.verdict = "no"
        est.headroom_bytes = min_head
        est.notes = [n for n in est.notes if not n.startswith("Does not fit entirely")]
        est.notes.insert(0, "Does not fit on the GPU and --offload none keeps every layer there.")
        return
    if offload.mode == "full":
        if len(gpus) > 1:
            est.headroom_bytes = min_head
            est.verdict = "fits" if min_head >= TIGHT_MARGIN_BYTES else "tight" if min_head >= 0 else est.verdict
            if est.verdict in ("fits", "tight"):
                est.suggestion = None
                est.notes = [n for n in est.notes if not n.startswith("Does not fit entirely")]
            if llm is not None and est.verdict in ("fits", "tight"):
                est.max_context_tokens = _split_max_context(llm, offload, s, est.max_context_tokens)
            split = ", ".join(f"{d.device}: {d.layers} layers" + (" + output" if d.output_layer else "") for d in gpu_shares)
            est.notes.insert(0, f"Layer split over {len(gpus)} GPUs ({split}); the KV cache of each layer stays with it.")
        return
    est.notes = [n for n in est.notes if not n.startswith("Does not fit entirely")]  # replaced by what follows
    if offload.mode == "manual" and min_head < 0:
        est.verdict = "no"
        est.notes.insert(0, f"--gpu-layers {offload.gpu_layers} does not fit: a GPU is short of {_gib(-min_head)} GiB.")
        return
    if offload.gpu_layers >= offload.total_layers:
        est.headroom_bytes = min_head
        est.verdict = "fits" if min_head >= TIGHT_MARGIN_BYTES else "tight"
        return
    if i.runtime != "llama.cpp":
        return
    est.verdict = "offload"
    est.headroom_bytes = min_head
    if offload.fits_in_ram is False:
        est.verdict = "no"
        cpu = offload.devices[-1]
        est.notes.insert(0, f"Does not fit even with CPU offload: system RAM needs {_gib(cpu.total_bytes)} GiB for the CPU layers, "
                            f"{_gib(offload.ram_usable_bytes or 0)} GiB usable.")
        return
    if label:
        est.notes.insert(0, f"Does not fit entirely on the GPU; {label} (CPU layers at {offload.ram_bandwidth_gbs:g} GB/s RAM).")


def _gib(n: int) -> str:
    return f"{n / GiB:.1f}"


def _split_max_context(llm: LlmSpec, off: Offload, s: SpeedInputs, single: int | None) -> int | None:
    """Largest context per sequence under a layer split: each card's headroom over the KV bytes
    per cell of its layers (the compute buffer's growth with the context is neglected)."""
    lb = llm_bytes(llm, s.runtime, s.quant, s.kv_cache)
    extra = None
    for d in off.devices:
        if d.index < 0 or d.layers == 0:
            continue
        first = d.first_layer or 0
        per_cell = sum(lb.kv_elem_bytes_per_cell[i] for i in range(first, first + d.layers) if not lb.sliding[i])
        if per_cell <= 0 or d.headroom_bytes is None:
            continue
        cells = int(d.headroom_bytes // per_cell)
        extra = cells if extra is None else min(extra, cells)
    if extra is None:
        return single
    ctx = (s.kv_cells + extra) // max(s.batch, 1) // 256 * 256  # steps of 256, as estimate's max context
    return max(min(ctx, llm.max_context), 0) or None
