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

Speed reads a finished placement (placement.py: which device holds each layer) and never changes
a memory result. Each runtime plugin names the calibration keys its kernels use.

No I/O at import time: the calibration file is read on first use.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

from vramcalc.jsonable import Jsonable, result
from vramcalc.placement import LlmBytes, Placement
from vramcalc.results import Offload, SpeedBasis, SpeedFigure, Throughput

if TYPE_CHECKING:  # pragma: no cover
    from vramcalc.runtimes import Runtime
    from vramcalc.schema import GpuSpec, LlmSpec, VisionEncoderSpec


# ---------------------------------------------------------------------------------------------
# Calibration data


@functools.cache
def calibration() -> dict:
    """The fitted factors (data/calibration.yaml), read on first use."""
    import yaml

    from vramcalc.catalog import builtin_catalog_dir

    text = (builtin_catalog_dir() / "calibration.yaml").read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 8x faster than the pure-Python loader
    return yaml.load(text, Loader=loader)


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


# ---------------------------------------------------------------------------------------------
# Fitted factors, by the runtime's calibration keys

#: Layers in system RAM run on llama.cpp's CPU backend: its decode factors.
CPU_DECODE = ("llama.cpp", "cpu", "quant")


def _lookup(section: str, runtime: str, backend: str, qkey: str) -> tuple[dict[str, Any], str, bool] | None:
    group = calibration()[section].get(runtime, {})
    for key in (f"{backend}.{qkey}", backend):
        if key in group:
            return group[key], f"{section}.{runtime}.{key}", bool(group[key].get("rows"))
    return None


def decode_factors(runtime: Runtime, backend: str, precision: str) -> tuple[dict[str, Any], str, bool]:
    """(factors, key, calibrated) for decode on a backend: the runtime's own, else its fallback
    (uncalibrated), else llama.cpp CUDA's (uncalibrated)."""
    hit = _lookup("decode", runtime.name, backend, runtime.speed_key(precision))
    if hit:
        return hit
    if runtime.decode_fallback:  # e.g. bnb nf4/int8 and non-CUDA backends under transformers
        fb = calibration()["decode"].get(runtime.name, {}).get(runtime.decode_fallback)
        if fb:
            return fb, f"decode.{runtime.name}.{runtime.decode_fallback}", False
    return calibration()["decode"]["llama.cpp"]["cuda"], "decode.llama.cpp.cuda", False


def cpu_decode_factors() -> tuple[dict[str, Any], str, bool]:
    name, backend, qkey = CPU_DECODE
    hit = _lookup("decode", name, backend, qkey)
    assert hit is not None, "data/calibration.yaml lacks decode.llama.cpp.cpu"
    return hit


def prefill_factors(runtime: Runtime, backend: str, qkey: str) -> tuple[dict[str, Any], str, bool]:
    """(factors, key, calibrated) for prompt processing; PyTorch runtimes: the timm-fitted GEMM
    efficiency (no published transformers prefill timings here)."""
    if runtime.pytorch_kernels:
        return calibration()["vit"]["transformers"]["cuda"], "vit.transformers.cuda (PyTorch GEMMs)", False
    hit = _lookup("prefill", runtime.name, backend, qkey)
    if hit:
        return hit
    return calibration()["prefill"]["llama.cpp"]["cuda.quant"], "prefill.llama.cpp.cuda.quant", False


def _spread(f: dict[str, Any], calibrated: bool) -> float:
    cal = calibration()
    s = f.get("spread_log") or cal["uncalibrated_spread_log"]
    return s if calibrated else max(s, cal["uncalibrated_spread_log"])


# ---------------------------------------------------------------------------------------------
# Speeds over a finished placement


@result
class SpeedInputs(Jsonable):
    """What the speeds need from the memory estimate (so this module does not recompute it)."""

    kind: str  # llm / vlm / encoder
    runtime: Runtime
    quant: str
    context_tokens: int
    images: int
    image_tokens_per_image: int
    encoder_crops: int
    encoder_patches: int
    batch: int  # sequences decoded together (1 for an encoder workload)
    image_batch: int  # the workload's batch (images per step for an encoder)
    n_ubatch: int
    projector_params: int


def throughput(
    llm: LlmSpec | None,
    enc: VisionEncoderSpec | None,
    gpus: list[GpuSpec],
    s: SpeedInputs,
    lb: LlmBytes | None,
    pl: Placement | None,
    ram_bw: float,
) -> tuple[Throughput, list[str]]:
    """Decode, prefill, image encode, time to first token (or images/s for an encoder), and notes."""
    notes: list[str] = []
    thr_notes: list[str] = []
    decode = prefill = encode = images_per_s = ttft = None
    t_prefill = 0.0
    gpu0 = gpus[0]
    if llm is not None and lb is not None and pl is not None:
        decode = _decode(llm, lb, pl, gpus, s, ram_bw)
        if all(peak_tflops(g) > 0 for g in gpus):
            prefill, t_prefill = _prefill(llm, lb, pl, gpus, s)
        else:
            thr_notes.append("No prefill or time-to-first-token estimate: the catalog has no matrix (FP16/FP32) rate for this GPU.")
        notes += s.runtime.speed_notes(gpu0)
    if enc is not None and peak_tflops(gpu0) > 0:
        fig, per_image = _image_encode(enc, gpu0, s)
        if s.kind == "encoder":
            images_per_s = fig
            if s.image_batch < 64:
                thr_notes.append("images/s is fitted on large batches (timm, 256-1024 images); a small batch leaves the GPU partly idle.")
        else:
            encode = per_image
    if llm is not None and prefill is not None:
        t = t_prefill
        lo_t = s.context_tokens / prefill.high
        hi_t = s.context_tokens / prefill.low
        if encode is not None and s.images:
            t += s.images * encode.value
            lo_t += s.images * encode.low
            hi_t += s.images * encode.high
        basis = SpeedBasis(
            flops=prefill.basis.flops,
            factors="image_encode_s x images + context / prefill_tokens_per_s",
            calibrated=prefill.basis.calibrated,
        )
        r = _round_sig
        ttft = SpeedFigure(value=r(t), low=r(lo_t), high=r(hi_t), unit="s", basis=basis)
    ttft_q, q_tokens = None, None
    if llm is not None and lb is not None and pl is not None and prefill is not None and ttft is not None:
        ttft_q, q_tokens = _question_ttft(llm, lb, pl, gpus, s, encode, ttft)
    thr = Throughput(
        decode_tokens_per_s=decode,
        prefill_tokens_per_s=prefill,
        image_encode_s=encode,
        time_to_first_token_s=ttft,
        images_per_s=images_per_s,
        notes=thr_notes,
        time_to_first_token_question_s=ttft_q,
        question_tokens=q_tokens,
    )
    return thr, notes


#: A typical question: 512 text tokens (llama.cpp's default micro-batch, one prefill step), plus the images.
#: A chosen size for "how long until the answer starts", not a measurement of what people type.
QUESTION_TOKENS = 512


def _question_ttft(
    llm: LlmSpec, lb: LlmBytes, pl: Placement, gpus: list[GpuSpec], s: SpeedInputs, encode: SpeedFigure | None, full: SpeedFigure
) -> tuple[SpeedFigure, int]:
    """Time to first token for a QUESTION_TOKENS-token question plus the images, by the same prefill
    model as the full context (the whole context when it is shorter)."""
    import dataclasses

    tokens = min(s.context_tokens, QUESTION_TOKENS + s.images * s.image_tokens_per_image)
    if tokens >= s.context_tokens:
        return full, s.context_tokens
    fig, t = _prefill(llm, lb, pl, gpus, dataclasses.replace(s, context_tokens=tokens))
    lo_t, hi_t = tokens * s.batch / fig.high, tokens * s.batch / fig.low
    if encode is not None and s.images:
        t += s.images * encode.value
        lo_t += s.images * encode.low
        hi_t += s.images * encode.high
    basis = SpeedBasis(
        flops=fig.basis.flops,
        factors="image_encode_s x images + question / prefill_tokens_per_s",
        calibrated=fig.basis.calibrated,
    )
    r = _round_sig
    return SpeedFigure(value=r(t), low=r(lo_t), high=r(hi_t), unit="s", basis=basis), tokens


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
    for d in [*range(len(gpus)), -1]:
        idx = [i for i in range(n) if pl.layer_dev[i] == d]
        b = sum(lb.layer_read[i] for i in idx) + kv_read_bytes(lb, ctx, idx) * s.batch  # type: ignore[arg-type]
        if pl.output_dev == d:
            b += lb.output_read
        if b == 0:
            continue
        if d == -1:
            f, key, cal = cpu_decode_factors()
            bw = ram_bw
        else:
            f, key, cal = decode_factors(s.runtime, gpus[d].backend, s.quant)
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
        bytes=int(bytes_total),
        bandwidth_gbs=round(bw_weighted / bytes_total, 1),
        effective_bandwidth_gbs=round(bytes_total * tps / 1e9, 1),
        fixed_s=_round_sig(fixed_s),
        factors=" + ".join(dict.fromkeys(keys)),
        calibrated=calibrated,
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
    for d in [*range(len(gpus)), -1]:
        idx = [i for i in range(n) if pl.layer_dev[i] == d]
        share = (len(idx) / n) if n else 0
        if share == 0 and pl.output_dev != d:
            continue
        flops = (total_flops - 2 * lb.output_params * s.batch) * share + (2 * lb.output_params * s.batch if pl.output_dev == d else 0)
        wbytes = sum(lb.layer_stored[i] for i in idx) + (lb.output_stored if pl.output_dev == d else 0)
        g = gpus[d] if d >= 0 else gpus[0]
        peak = peak_tflops(g)
        f, key, cal = prefill_factors(s.runtime, g.backend, s.runtime.speed_key(s.quant))
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
        flops=int(total_flops),
        peak_tflops=round(max(peaks), 2),
        effective_tflops=round(total_flops / t / 1e12, 2),
        factors=" + ".join(dict.fromkeys(keys)),
        calibrated=calibrated,
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
    torch_like = s.runtime.pytorch_kernels or s.kind == "encoder"
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
        f, key, _ = prefill_factors(s.runtime, gpu.backend, s.runtime.speed_key("F16"))
        key += " (applied to the vision tower)"
        calibrated = False
        t = f_img / (f["compute_efficiency"] * peak * 1e12)
    spread = _spread(f, calibrated)
    basis = SpeedBasis(
        flops=int(f_img),
        bytes=int(ew),
        bandwidth_gbs=bw,
        peak_tflops=round(peak, 2),
        effective_tflops=round(f_img / t / 1e12, 2),
        factors=key,
        calibrated=calibrated,
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
