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

import dataclasses
import functools
import math
from typing import TYPE_CHECKING, Any

from vramcalc.jsonable import Jsonable, result
from vramcalc.placement import LlmBytes, Placement
from vramcalc.results import Offload, SpeedBasis, SpeedFigure, Throughput

if TYPE_CHECKING:  # pragma: no cover
    from vramcalc.matrix_rate import RateEstimate
    from vramcalc.runtimes import Runtime
    from vramcalc.schema import GpuSpec, LlmSpec, VisionEncoderSpec


# ---------------------------------------------------------------------------------------------
# Calibration data


@functools.cache
def calibration() -> dict:
    """The fitted factors (data/calibration.yaml), read on first use; kept parsed in the derived-value
    cache (vramcalc.diskmemo, keyed on the file's content), so a start-up need not import yaml."""
    from vramcalc import diskmemo

    def parse() -> dict:
        import yaml

        from vramcalc.catalog import builtin_catalog_dir

        text = (builtin_catalog_dir() / "calibration.yaml").read_text(encoding="utf-8")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 8x faster than the pure-Python loader
        return yaml.load(text, Loader=loader)

    out = diskmemo.cached("calibration.yaml", (), parse, decode=_dict)
    return out


def _dict(value: object) -> dict:
    if not isinstance(value, dict):
        raise TypeError("calibration data is a mapping")
    return value


# ---------------------------------------------------------------------------------------------
# Hardware: backend and peak compute


def peak_tflops(gpu: GpuSpec) -> float:
    """Peak dense FP16 matrix TFLOPS of an FP16 GEMM (cuBLAS/hipBLAS, PyTorch, Metal): the rate
    llama.cpp's F16 weights, the ViT towers and transformers prefill scale with.

    NVIDIA Volta..Blackwell: 4 x the FP16 shader rate (dense FP16 tensor rate with FP16
    accumulate; e.g. GA102 whitepaper RTX 3090 142 = 4 x 35.6, A100 312 = 4 x 78). This is taken
    in preference to ``fp16_tensor_tflops`` because catalog entries mix the FP16- and the
    FP32-accumulate figure for GeForce cards, which differ 2x. Hopper/Blackwell datacenter parts:
    their tensor figure (H100 SXM 989.4 dense FP16 vs 133.8 FP16 shader, whitepaper), which
    cuBLAS FP16 GEMMs reach; llama.cpp's quantized kernels do not (``mmq_tflops``). Other
    vendors: the tensor / matrix figure where given, else the FP16 shader rate (Apple: scales
    with the GPU core count).

    Why not the FP32-accumulate rate (half on GeForce cards; GA102 whitepaper: RTX 3090 71 vs 142
    TFLOPS): fitted against it, the timm ViT rows come out
    above that peak (efficiency 1.15 on an RTX 3090), and carried to an A100 it would predict more
    than the A100's 312 TFLOPS; the FP16-accumulate convention gives 0.57 and sane transfers.
    """
    cc = nvidia_cc(gpu)
    if gpu.vendor == "nvidia" and cc >= 9.0 and gpu.category == "datacenter" and gpu.fp16_tensor_tflops:
        return gpu.fp16_tensor_tflops
    if gpu.vendor == "nvidia" and cc >= 7.0 and gpu.fp16_tflops:
        return 4 * gpu.fp16_tflops
    if gpu.vendor == "nvidia" and cc and cc < 7.0:
        # Maxwell/Pascal: no tensor cores and FP16 at 1/64 rate on most; llama.cpp runs FP32/dp4a
        # kernels there, whose rate the catalog does not carry: no compute estimate (0)
        return 0.0
    if gpu.vendor == "amd" and (gpu.compute_capability or "").startswith(("gfx11", "gfx12")) and not gpu.fp16_tensor_tflops:
        # RDNA 3/3.5/4: AMD's FP16 figure counts dual issue, which GEMMs do not reach: measured FP16
        # GEMMs on the Radeon 8060S (gfx1151) run at 30-32 TFLOPS of its 59 (shared/reference/
        # gpu_specs.csv row 'Radeon 8060S': ROCm issues 5807 mamf-finder, 4566 hipBLASLt), i.e. half.
        # RDNA 4's WMMA rate is not in the sources read: the same half is taken (see docs/accuracy.md)
        return (gpu.fp16_tflops or 0.0) / 2
    return gpu.fp16_tensor_tflops or gpu.fp16_tflops or gpu.bf16_tensor_tflops or 0.0


#: NVIDIA architectures whose FP16 shader rate is double their single-issue rate (a second FP16
#: datapath): GA100 (cc 8.0: A100 78 FP16 vs 19.5 FP32 TFLOPS, 4:1, where GA102 is 1:1), Hopper
#: (9.0: H100 SXM 133.8 FP16 vs 66.9 FP32, 2:1) and datacenter Blackwell (10.x), per the
#: TechPowerUp figures the catalog carries (fp16_tflops) and NVIDIA's A100 / H100 whitepapers.
#: llama.cpp's quantized matmul (MMQ: int8 MMA tiles plus per-block scale arithmetic on the
#: CUDA cores) does not use that extra datapath: the llamacpp_bench.csv pp512 rows of the A100
#: and A30 reach half the rate per FP16-shader-TFLOP of GA102 cards (see docs/accuracy.md).
DOUBLE_RATE_FP16_CC = (8.0, 9.0, 10.0, 10.3)


def mmq_tflops(gpu: GpuSpec) -> float:
    """The rate llama.cpp's kernels for *quantized* weights scale with (prompt processing).

    CUDA (MMQ, the default for quantized types on Volta and newer): 4 x the single-rate FP16
    shader rate (the GA102 FP16-accumulate tensor rate convention of ``peak_tflops``), halved on
    the double-rate FP16 architectures (``DOUBLE_RATE_FP16_CC``), so that neither GA100's FP16
    datapath nor Hopper's 989 TFLOPS tensor figure (which only cuBLAS FP16 GEMMs reach) inflates
    quantized prefill. AMD RDNA 3/3.5/4 (gfx11xx/gfx12xx): half the catalog FP16 rate, which
    counts dual issue (VOPD; AMD's 122.8 TFLOPS for the RX 7900 XTX = 96 CUs x 64 x 2 x 2 x 2 x
    2.5 GHz) that the integer dot-product kernels cannot use. AMD CDNA (gfx908/90a/94x, matrix
    figure only): a quarter of the dense FP16 matrix rate (the packed FP16 vector rate: MI100
    184.6 matrix vs 46.1 vector). Others: the FP16 shader rate (Apple, Intel, older AMD).
    """
    if gpu.vendor == "nvidia":
        cc = nvidia_cc(gpu)
        if cc and cc < 7.0:
            return 0.0  # Maxwell/Pascal: dp4a kernels, rate not in the catalog (as peak_tflops)
        shader = gpu.fp16_tflops
        if shader is None and gpu.fp16_tensor_tflops:
            # FP16 shader rate from the dense tensor figure: 4:1 on Volta/Ampere (A30: 165 / 4 = 41.3),
            # 7.4:1 on Hopper/Blackwell datacenter parts (H100 SXM whitepaper: 989.4 vs 133.8)
            shader = gpu.fp16_tensor_tflops / (4 if cc < 9.0 else 989.4 / 133.8)
        if not shader:
            return 0.0
        return 4 * shader / (2 if cc in DOUBLE_RATE_FP16_CC else 1)
    if gpu.vendor == "amd":
        if (gpu.compute_capability or "").startswith(("gfx11", "gfx12")) and gpu.fp16_tflops:
            return gpu.fp16_tflops / 2
        if gpu.fp16_tflops:
            return gpu.fp16_tflops
        return (gpu.fp16_tensor_tflops or 0.0) / 4
    return gpu.fp16_tflops or gpu.fp16_tensor_tflops or 0.0


def memory_class(gpu: GpuSpec) -> str:
    """hbm / gddr / lpddr: the memory a decode step streams from. llama.cpp's matrix-vector
    kernels reach a different fraction of the peak on each (HBM needs far more bytes in flight
    for its peak: the fitted efficiencies in data/calibration.yaml ``decode_bandwidth``)."""
    mt = (gpu.memory_type or "").upper()
    if mt.startswith("HBM"):
        return "hbm"
    if mt.startswith("LPDDR") or gpu.unified_memory:
        return "lpddr"
    return "gddr"


#: (vendor, llama.cpp backend) pairs whose decode bandwidth efficiency is a group of its own in
#: data/calibration.yaml ``decode_bandwidth`` instead of the memory class's: upstream llama.cpp's
#: Vulkan and SYCL matrix-vector kernels on Intel Xe GPUs reach a far lower fraction of the memory
#: peak than the same backends' kernels on NVIDIA/AMD GDDR (the A770 rows: 26-39% of 512 GB/s, where
#: Intel's IPEX-LLM fork reaches 54% on the same card). Fitted by benchmarks/accuracy.py --fit; the
#: calibration records the rows and GPUs it rests on.
DECODE_BANDWIDTH_GROUPS = {("intel", "vulkan"): "intel", ("intel", "sycl"): "intel"}


def decode_bandwidth_group(vendor: str, backend: str, mc: str) -> str:
    """The ``decode_bandwidth`` group of a llama.cpp decode: a (vendor, backend) kernel group where
    DECODE_BANDWIDTH_GROUPS names one, else the GPU's memory class."""
    return DECODE_BANDWIDTH_GROUPS.get((vendor, backend), mc)


#: llama.cpp backends (--backend) and the one each vendor normally runs.
BACKENDS = ("cuda", "rocm", "vulkan", "metal", "sycl", "cpu")
VENDOR_BACKENDS = {
    "nvidia": ("cuda", "vulkan"),
    "amd": ("rocm", "vulkan"),
    "apple": ("metal", "vulkan"),  # MoltenVK builds exist; no published rows
    "intel": ("sycl", "vulkan"),
}


def backend_for(gpu: GpuSpec, requested: str | None) -> str:
    """The backend a GPU runs: the requested one, else the vendor's usual backend. 'cpu' means the
    GPU is not used for compute (llama.cpp CPU backend)."""
    from vramcalc.errors import InputError

    if requested is None:
        return gpu.backend
    b = requested.lower()
    if b not in BACKENDS:
        raise InputError(f"unknown backend '{requested}': choose one of {', '.join(BACKENDS)}.")
    if b != "cpu" and b not in VENDOR_BACKENDS[gpu.vendor]:
        raise InputError(f"backend '{b}' does not run on {gpu.name} ({gpu.vendor}): choose {' or '.join(VENDOR_BACKENDS[gpu.vendor])}.")
    return b


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
    return int(sum(prefill_flops_parts(llm, lb, tokens, start)))


def prefill_flops_parts(llm: LlmSpec, lb: LlmBytes, tokens: int, start: int = 0) -> tuple[float, float, float]:
    """(dense matmul FLOPs incl. the lm head, MoE expert matmul FLOPs, attention FLOPs) of a prompt:
    the three run different llama.cpp kernels (MMQ / MUL_MAT_ID over the experts / flash attention)."""
    if llm.mla:
        qk = llm.num_heads * (llm.mla.qk_nope_head_dim + llm.mla.qk_rope_head_dim)
        vd = llm.num_heads * llm.mla.v_head_dim
    else:
        qk = vd = llm.num_heads * llm.head_dim_
    experts = 2 * expert_active_params(llm) * tokens
    dense = 2 * lb.active_params * tokens + 2 * lb.output_params - experts
    end = start + tokens
    full_pairs = (end * (end + 1) - start * (start + 1)) // 2  # sum of keys seen by each new query
    attn = 0.0
    for i in range(llm.num_layers):
        pairs = full_pairs
        if lb.sliding[i] and lb.window:
            pairs = min(full_pairs, tokens * lb.window)
        attn += 2 * pairs * (qk + vd)
    return float(dense), float(experts), attn


def expert_active_params(llm: LlmSpec) -> float:
    """Parameters of the routed experts one token multiplies (k of E experts per MoE layer)."""
    from vramcalc.params import llm_tensors

    if not llm.moe:
        return 0.0
    k = llm.moe.experts_per_token / llm.moe.num_experts
    return k * sum(t.numel for t in llm_tensors(llm) if t.role.endswith("_exps"))


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


def prefill_time(
    flops: float,
    weight_bytes: float,
    ubatches: int,
    peak: float,
    bw_gbs: float,
    f: dict,
    fd: dict | None = None,
    layers: int = 0,
    *,
    attn_flops: float = 0.0,
    attn_peak: float | None = None,
    expert_flops: float = 0.0,
    ubatch_tokens: int = 512,
    expert_layers: float = 0.0,
    dequant_bytes: float = 0.0,
) -> float:
    """Seconds for a prompt on one device, a roofline per micro-batch:

    - the matrix multiplications: matmul FLOPs / (eta_c x peak) plus one stream of the weights
      they touch per micro-batch at the decode factors ``fd``. A micro-batch of at most
      ``SMALL_BATCH_TOKENS`` tokens runs llama.cpp's matrix-vector kernels
      (``small_batch_efficiency``), which compute while they stream the weights: there the time is
      the larger of the two, not the sum (the llama 8B Q4_0 -ub 1..8 sweep on an RTX 3090 grows from
      the decode time by about one column's compute per token). MoE expert matmuls have their own
      efficiency (``moe_expert_efficiency``);
    - plus, per micro-batch: the layers' fixed cost (``fd`` per_layer_s, and for the tiled matrix
      kernels ``prompt_per_layer_s`` on top: the per-layer work of a prompt step that is neither a
      weight pass nor FLOPs, such as quantizing the activations for the integer kernels), a fixed cost per expert
      matrix the micro-batch routes at least one token to (``moe_expert_s`` x ``expert_layers``: the
      grouped expert matmul, MUL_MAT_ID, handles each active expert separately), and, on the
      dequantize-then-GEMM path (``prefill_kernel``), the dequantization pass over ``dequant_bytes``;
    - plus attention FLOPs / (attention_efficiency x FP16 GEMM peak).

    Factors missing from ``f`` default to ``compute_efficiency`` (0 for ``moe_expert_s``); without
    ``fd`` the weight stream is at the peak bandwidth and there is no fixed cost.
    """
    eta = f["compute_efficiency"]
    dense = flops - attn_flops - expert_flops
    small = ubatch_tokens <= SMALL_BATCH_TOKENS and "small_batch_efficiency" in f
    t_mm = dense / ((f["small_batch_efficiency"] if small else eta) * peak * 1e12)
    t_mm += expert_flops / (f.get("moe_expert_efficiency", eta) * peak * 1e12)
    t = 0.0
    if attn_flops:
        t += attn_flops / (f.get("attention_efficiency", eta) * (attn_peak or peak) * 1e12)
    eta_bw = fd["bandwidth_efficiency"] if fd is not None else 1.0
    mem = ubatches * weight_bytes / (eta_bw * bw_gbs * 1e9)
    t += max(t_mm, mem) if small else t_mm + mem
    fixed = (layers * fd["per_layer_s"] if fd is not None else 0.0) + expert_layers * f.get("moe_expert_s", 0.0)
    if not small:
        fixed += layers * f.get("prompt_per_layer_s", 0.0)
    return t + ubatches * (fixed + dequant_bytes / (eta_bw * bw_gbs * 1e9))


#: llama.cpp runs a micro-batch of at most this many tokens through its matrix-vector kernels
#: (ggml-cuda MMVQ_MAX_BATCH_SIZE = 8, mmvq.cuh) rather than the tiled matrix-matrix ones.
SMALL_BATCH_TOKENS = 8

#: llama.cpp CUDA on a GPU with FP16 tensor cores but no int8 tensor-core MMA (Volta, cc 7.0): a
#: micro-batch of at least this many tokens of quantized weights is dequantized to FP16 and
#: multiplied by cuBLAS (ggml/src/ggml-cuda/mmq.cu ``ggml_cuda_should_use_mmq`` at llama.cpp 0c1e57098,
#: line 386: MMQ's dp4a path only below MMQ_DP4A_MAX_BATCH_SIZE = 64 tokens, mmq.cuh line 8, where FP16
#: MMA hardware exists).
DEQUANT_GEMM_MIN_TOKENS = 64
#: Builds before llama.cpp's int8-MMA quantized kernels (PR 7676, June 2024: number and date recalled, not
#: re-read; the Jan-2024 RTX 3090 rows of llamacpp_bench.csv agree with the rule) did the same on every
#: tensor-core GPU above MMQ_MAX_BATCH_SIZE = 32 tokens (only the accuracy report uses it: the
#: estimate is for current builds).
OLD_DEQUANT_MIN_TOKENS = 33


def nvidia_cc(gpu: GpuSpec) -> float:
    """An NVIDIA GPU's compute capability as a number (8.6); 0 for other vendors or an unreadable one."""
    if gpu.vendor != "nvidia":
        return 0.0
    try:
        return float(gpu.compute_capability or 0)
    except ValueError:
        return 0.0


def prefill_kernel(gpu: GpuSpec, backend: str, qkey: str, ubatch_tokens: int, era: str = "current") -> str:
    """The kernel path llama.cpp runs a prompt's weight matmuls on: 'f16' (F16/BF16 weights: an
    FP16 GEMM, ``peak_tflops``), 'mmq' (quantized weights through llama.cpp's own quantized kernels,
    ``mmq_tflops``) or 'dequant' (quantized weights dequantized to FP16 then an FP16 GEMM: CUDA on
    Volta at ``DEQUANT_GEMM_MIN_TOKENS`` or more tokens per micro-batch; builds before mid-2024 on
    every tensor-core NVIDIA GPU above ``OLD_DEQUANT_MIN_TOKENS``)."""
    if qkey != "quant":
        return "f16"
    if backend == "cuda":
        cc = nvidia_cc(gpu)
        if era == "old" and cc >= 7.0 and ubatch_tokens >= OLD_DEQUANT_MIN_TOKENS:
            return "dequant"
        if 7.0 <= cc < 7.5 and ubatch_tokens >= DEQUANT_GEMM_MIN_TOKENS:
            return "dequant"
    return "mmq"


#: NVIDIA architecture generations by compute capability (CUDA programming guide numbering).
_NVIDIA_GENERATIONS = (
    (12.0, "blackwell"),
    (10.0, "blackwell"),
    (9.0, "hopper"),
    (8.9, "ada"),
    (8.0, "ampere"),
    (7.5, "turing"),
    (7.0, "volta"),
)


def arch_generation(gpu: GpuSpec) -> str:
    """The GPU's architecture generation as the kernel factors name it ('turing', 'ampere', ...;
    '' where none applies). A prefill factor group ``<backend>.<weights>.<generation>`` in
    data/calibration.yaml, where fitted, replaces the backend's group for that generation: llama.cpp's
    quantized CUDA kernels run a different instruction mix per generation (Turing's int8 MMA is a
    smaller shape than Ampere's)."""
    cc = nvidia_cc(gpu)
    for lo, name in _NVIDIA_GENERATIONS:
        if cc >= lo:
            return name
    return ""


def dequant_pass_bytes(lb: LlmBytes, weight_bytes: float) -> float:
    """Bytes the dequantize-then-GEMM path moves per micro-batch beyond the quantized weights' one
    read (which ``prefill_time`` counts as the weight stream): their FP16 copy written by the
    dequantize kernel and read again by the GEMM, 2 + 2 bytes per parameter (parameters per byte from
    the model's read bytes)."""
    read = sum(lb.layer_read) + lb.output_read
    if read <= 0:
        return 0.0
    params_per_byte = (lb.active_params + lb.output_params) / read
    return weight_bytes * 4 * params_per_byte


def _touched_fraction(k: float, tokens: int) -> float:
    """Share of a layer's experts at least one of ``tokens`` tokens routes to, with uniform routing of
    ``k`` = active / all experts per token: 1 - (1 - k)^tokens (all of them where k >= 1)."""
    return 1.0 if k >= 1 else 1 - (1 - k) ** max(tokens, 1)


def ubatch_weight_bytes(llm: LlmSpec, lb: LlmBytes, idx: list[int] | range, tokens: int) -> float:
    """Weight bytes one micro-batch of ``tokens`` tokens reads on layers ``idx``: dense tensors
    once; MoE expert tensors for the experts at least one token routes to, with uniform routing
    1 - (1 - k/E)^tokens of them (all of them for a 512-token micro-batch of a 128-expert model
    with 8 active; 8/128 for one token, as in decode)."""
    stored = sum(lb.layer_stored[i] for i in idx)
    if not llm.moe:
        return float(stored)
    read = sum(lb.layer_read[i] for i in idx)
    k = llm.moe.experts_per_token / llm.moe.num_experts
    if k >= 1:
        return float(stored)
    experts = (stored - read) / (1 - k)  # stored = dense + experts, read = dense + k x experts
    return stored - experts * (1 - _touched_fraction(k, tokens))


def ubatch_expert_layers(llm: LlmSpec, lb: LlmBytes, idx: list[int] | range, tokens: int) -> float:
    """Experts one micro-batch of ``tokens`` tokens routes at least one token to, summed over the MoE
    layers in ``idx`` (uniform routing: E x (1 - (1 - k/E)^tokens) per layer; a layer is MoE where it
    stores more than it reads per token)."""
    if not llm.moe:
        return 0.0
    e = llm.moe.num_experts
    moe_layers = sum(1 for i in idx if lb.layer_stored[i] > lb.layer_read[i])
    return moe_layers * e * _touched_fraction(llm.moe.experts_per_token / e, tokens)


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


def _lookup(section: str, runtime: str, backend: str, qkey: str, arch: str = "") -> tuple[dict[str, Any], str, bool] | None:
    group = calibration()[section].get(runtime, {})
    for key in ([f"{backend}.{qkey}.{arch}"] if arch else []) + [f"{backend}.{qkey}", backend]:
        if key in group:
            return group[key], f"{section}.{runtime}.{key}", bool(group[key].get("rows"))
    return None


def decode_factors(runtime: Runtime, backend: str, precision: str, gpu: GpuSpec | None = None) -> tuple[dict[str, Any], str, bool]:
    """(factors, key, calibrated) for decode on a backend: the runtime's own, else its fallback
    (uncalibrated), else llama.cpp CUDA's (uncalibrated). llama.cpp: the backend's per-layer cost
    with the bandwidth efficiency of the GPU's memory class (``decode_bandwidth``)."""
    hit = _lookup("decode", runtime.name, backend, runtime.speed_key(precision))
    if hit is None and runtime.decode_fallback:  # e.g. bnb nf4/int8 and non-CUDA backends under transformers
        fb = calibration()["decode"].get(runtime.name, {}).get(runtime.decode_fallback)
        if fb:
            hit = (fb, f"decode.{runtime.name}.{runtime.decode_fallback}", False)
    if hit is None:
        hit = (calibration()["decode"]["llama.cpp"]["cuda"], "decode.llama.cpp.cuda", False)
    f, key, cal = hit
    if "bandwidth_efficiency" not in f:
        mc = memory_class(gpu) if gpu is not None else "gddr"
        by_rt = calibration()["decode_bandwidth"]
        group = by_rt.get(runtime.name) if key.startswith(f"decode.{runtime.name}.") else None
        group = group or by_rt["llama.cpp"]
        kg = decode_bandwidth_group(gpu.vendor, backend, mc) if gpu is not None else mc
        if kg not in group:
            kg = mc if mc in group else "gddr"
        bwf = group[kg]
        f = {**f, "bandwidth_efficiency": bwf["bandwidth_efficiency"]}
        key = f"{key} + decode_bandwidth.{kg}"
        cal = cal and bool(bwf.get("rows"))
    return f, key, cal


def cpu_decode_factors() -> tuple[dict[str, Any], str, bool]:
    name, backend, qkey = CPU_DECODE
    hit = _lookup("decode", name, backend, qkey)
    assert hit is not None, "data/calibration.yaml lacks decode.llama.cpp.cpu"
    return hit


def prefill_factors(runtime: Runtime, backend: str, qkey: str, gpu: GpuSpec | None = None) -> tuple[dict[str, Any], str, bool]:
    """(factors, key, calibrated) for prompt processing; PyTorch runtimes: the timm-fitted GEMM
    efficiency (no published transformers prefill timings here). With ``gpu``, a group fitted for
    its architecture generation (``arch_generation``) comes first."""
    if runtime.pytorch_kernels:
        return calibration()["vit"]["transformers"]["cuda"], "vit.transformers.cuda (PyTorch GEMMs)", False
    hit = _lookup("prefill", runtime.name, backend, qkey, arch_generation(gpu) if gpu is not None else "")
    if hit is None:
        hit = calibration()["prefill"]["llama.cpp"]["cuda.quant"], "prefill.llama.cpp.cuda.quant", False
    kernels = calibration().get("prefill_kernels", {}).get(runtime.name if hit[1].startswith(f"prefill.{runtime.name}.") else "llama.cpp")
    if kernels:
        return {**kernel_factors(kernels), **hit[0]}, hit[1] + " + prefill_kernels", hit[2]
    return hit


def kernel_factors(kernels: dict[str, Any]) -> dict[str, Any]:
    """The factors of a ``prefill_kernels`` entry that ``prefill_time`` reads: efficiencies and the fixed
    costs in seconds (``prompt_per_layer_s``, ``moe_expert_s``), not its row lists or prose. The one
    selection for the estimate and benchmarks/accuracy.py, so `check` runs the model the report validates."""
    return {k: v for k, v in kernels.items() if k.endswith(("_efficiency", "_s"))}


def prefill_peak(runtime: Runtime, gpu: GpuSpec, qkey: str) -> float:
    """The compute ceiling of prompt processing: PyTorch and F16 weights run FP16 GEMMs
    (``peak_tflops``); quantized GGUF weights run llama.cpp's quantized kernels (``mmq_tflops``)."""
    if runtime.pytorch_kernels or qkey == "f16":
        return peak_tflops(gpu)
    return mmq_tflops(gpu)


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
    backend: str | None = None  # llama.cpp backend (--backend); None = the GPU vendor's usual one
    depth: int | None = None  # tokens already in the KV cache where decode/prefill are measured (--depth)
    rate_estimates: tuple[RateEstimate, ...] = ()  # FP16 rates estimated for cards without a published one (matrix_rate)

    def rate_spread(self) -> float:
        """Extra band (log) for compute figures that rest on an estimated FP16 rate."""
        return max((e.spread_log for e in self.rate_estimates), default=0.0)


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
    if s.runtime.pytorch_kernels and s.backend is not None:
        from vramcalc.errors import InputError

        raise InputError(f"--backend chooses a llama.cpp backend; the {s.runtime.name} runtime runs on PyTorch's device.")
    # an encoder workload is a PyTorch job (timm-fitted factors): no llama.cpp backend to show
    backend = None if s.runtime.pytorch_kernels or s.kind == "encoder" else backend_for(gpu0, s.backend)
    aggregate = None
    if llm is not None and lb is not None and pl is not None:
        decode = _decode(llm, lb, pl, gpus, s, ram_bw)
        ram_note = ram_rate_note(ram_bw) if CPU_DECODE_KEY in decode.basis.factors else None
        if ram_note:
            thr_notes.append(ram_note)
        if s.batch > 1:
            r = _round_sig
            aggregate = SpeedFigure(
                value=r(decode.value * s.batch),
                low=r(decode.low * s.batch),
                high=r(decode.high * s.batch),
                unit="tokens/s",
                basis=decode.basis,
            )
        qkey = s.runtime.speed_key(s.quant)
        if backend == "cpu":
            thr_notes.append("No prefill or time-to-first-token estimate for the CPU backend (no CPU compute rates in the catalog).")
        elif all(prefill_peak(s.runtime, g, qkey) > 0 for g in gpus):
            prefill, t_prefill = _prefill(llm, lb, pl, gpus, s)
            if s.depth is not None:  # the prefill figure is pp512 @ depth; time to first token is the whole context
                _, t_prefill = _prefill(llm, lb, pl, gpus, dataclasses.replace(s, depth=None))
        else:
            thr_notes.append("No prefill or time-to-first-token estimate: the catalog has no matrix (FP16/FP32) rate for this GPU.")
        notes += s.runtime.speed_notes(gpu0)
    estimated = bool(s.rate_estimates) and backend != "cpu"
    if estimated:
        thr_notes += [
            f"Prefill from an estimated FP16 rate: no published figure for this card ({e.gpu}); {e.basis}; the band is wider "
            f"by x{math.exp(e.spread_log):.2f}."
            for e in s.rate_estimates
        ]
    if enc is not None and peak_tflops(gpu0) > 0:
        fig, per_image = _image_encode(enc, gpu0, s)
        if s.kind == "encoder":
            images_per_s = fig
            if s.image_batch < 64:
                thr_notes.append("images/s is fitted on large batches (timm, 256-1024 images); a small batch leaves the GPU partly idle.")
        else:
            encode = per_image
    if llm is not None and prefill is not None:
        ttft = time_to_first_token(t_prefill, prefill, encode, s.images, "context")
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
        backend=backend,
        depth_tokens=s.depth,
        decode_aggregate_tokens_per_s=aggregate,
        image_tokens_per_image=s.image_tokens_per_image if encode is not None else None,
        time_to_first_token_question_s=ttft_q,
        question_tokens=q_tokens,
        prefill_rate_estimated=estimated and (prefill is not None or encode is not None or images_per_s is not None),
        prefill_rate_basis="; ".join(e.basis for e in s.rate_estimates) if estimated else None,
    )
    return thr, notes


#: the calibration key of decode parts read from system RAM (cpu_decode_factors)
CPU_DECODE_KEY = "decode.llama.cpp.cpu"


def ram_rate_note(ram_bw: float) -> str | None:
    """For a decode that reads system RAM (CPU layers, experts in RAM) at vramcalc's default rate (no
    --ram-bandwidth): what the published --n-cpu-moe runs say of that default (data/calibration.yaml
    ``offload_hosts``, written by benchmarks/accuracy.py from the host rate each sweep implies). None otherwise."""
    from vramcalc.placement import DEFAULT_RAM, RAM_BANDWIDTH_GBS

    hosts = calibration().get("offload_hosts", {}).get("sweeps", {})
    if ram_bw != RAM_BANDWIDTH_GBS[DEFAULT_RAM] or not hosts:
        return None
    reads = sorted(h["read_gbs"] for h in hosts.values())
    fast = sorted(h["default_signed_median"] for h in hosts.values())
    eta = cpu_decode_factors()[0]["bandwidth_efficiency"]
    return (
        f"System RAM is read at {ram_bw:g} GB/s x {eta:g} (dual-channel DDR5, the default; a guess). The hosts of the "
        f"{len(hosts)} published --n-cpu-moe runs read {reads[0]:.0f}-{reads[-1]:.0f} GB/s, and at this default their decode "
        f"came out {fast[0]:.0%}-{fast[-1]:.0%} too fast (docs/accuracy.md): --ram-bandwidth sets your machine's rate."
    )


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
    fig, t = _prefill(llm, lb, pl, gpus, dataclasses.replace(s, context_tokens=tokens, depth=None))  # an empty cache
    return time_to_first_token(t, fig, encode, s.images, "question"), tokens


def time_to_first_token(t_prefill: float, prefill: SpeedFigure, encode: SpeedFigure | None, images: int, prompt: str) -> SpeedFigure:
    """Time to first token: the images' encode plus the prompt's prefill (``t_prefill`` seconds at the
    rate ``prefill``, whose band it takes); ``prompt`` names the prompt in the basis ('context',
    'question'). The one place a time to first token is assembled."""
    t = t_prefill
    lo_t = t_prefill * prefill.value / prefill.high
    hi_t = t_prefill * prefill.value / prefill.low
    if encode is not None and images:
        t += images * encode.value
        lo_t += images * encode.low
        hi_t += images * encode.high
    basis = SpeedBasis(
        flops=prefill.basis.flops,
        factors=f"image_encode_s x images + {prompt} / prefill_tokens_per_s",
        calibrated=prefill.basis.calibrated,
    )
    r = _round_sig
    return SpeedFigure(value=r(t), low=r(lo_t), high=r(hi_t), unit="s", basis=basis)


@result
class DevicePart(Jsonable):
    """What one device reads per decoded token: its bytes, the layers it runs (each a fixed cost),
    its bandwidth and the factors that apply. A device may be system RAM (CPU layers, or the MoE
    expert tensors of ``--n-cpu-moe`` / ``-ot exps=CPU`` kept there)."""

    bytes: float
    layers: int
    bandwidth_gbs: float
    factors: dict[str, Any]
    key: str
    calibrated: bool


def split_decode_time(parts: list[DevicePart]) -> float:
    """Seconds per decoded token over several devices: they run one after the other for one token
    (a layer's attention on the GPU, then its experts in RAM, ...), so the times add. MoE expert
    offload: the expert bytes read per token from RAM at the RAM bandwidth (CPU factors) plus the
    rest at the GPU's; each part's layers pay its per-layer cost."""
    return sum(decode_time(p.bytes, p.layers, p.bandwidth_gbs, p.factors) for p in parts if p.bytes > 0)


def decode_parts(
    llm: LlmSpec, lb: LlmBytes, pl: Placement, gpus: list[GpuSpec], s: SpeedInputs, ram_bw: float, context: int
) -> list[DevicePart]:
    """The per-device parts of one decoded token for a layer placement (``split_decode_time``)."""
    n = llm.num_layers
    parts = []
    traffic = getattr(s.runtime, "decode_kv_traffic", None)  # KV bytes moved per token, in cache sizes (transformers)
    kv_mult = float(traffic(llm)) if callable(traffic) else 1.0
    for d in [*range(len(gpus)), -1]:
        idx = [i for i in range(n) if pl.layer_dev[i] == d]
        kv = kv_read_bytes(lb, context, idx)  # type: ignore[arg-type]
        b = sum(lb.layer_read[i] for i in idx) + kv_mult * kv * s.batch
        if pl.output_dev == d:
            b += lb.output_read
        _, moved_read, moved_layers = pl.moved_delta(d)  # tensor rules (experts in RAM): bytes read per device
        b += moved_read
        if b <= 0:
            continue
        backend = backend_for(gpus[max(d, 0)], s.backend)
        if d == -1 or backend == "cpu":
            f, key, cal = cpu_decode_factors()
            bw = ram_bw
        else:
            f, key, cal = decode_factors(s.runtime, backend, s.quant, gpus[d])
            bw = gpus[d].memory_bandwidth_gbs
        layers = len(idx) + (1 if pl.output_dev == d else 0) + moved_layers
        parts.append(DevicePart(bytes=b, layers=layers, bandwidth_gbs=bw, factors=f, key=key, calibrated=cal))
    return parts


def _decode(llm: LlmSpec, lb: LlmBytes, pl: Placement, gpus: list[GpuSpec], s: SpeedInputs, ram_bw: float) -> SpeedFigure:
    """Decode: devices run their layers one after the other for one token, so times add. At
    ``s.depth`` cached tokens when given (llama-bench tg @ d), else at the full context."""
    ctx = s.depth if s.depth is not None else s.context_tokens
    parts = decode_parts(llm, lb, pl, gpus, s, ram_bw, ctx)
    t = split_decode_time(parts)
    spreads = [(decode_time(p.bytes, p.layers, p.bandwidth_gbs, p.factors), _spread(p.factors, p.calibrated)) for p in parts]
    bytes_total = sum(p.bytes for p in parts)
    spread = sum(dt * sp for dt, sp in spreads) / t
    tps = 1.0 / t
    basis = SpeedBasis(
        bytes=int(bytes_total),
        bandwidth_gbs=round(sum(p.bytes * p.bandwidth_gbs for p in parts) / bytes_total, 1),
        effective_bandwidth_gbs=round(bytes_total * tps / 1e9, 1),
        fixed_s=_round_sig(sum(p.layers * p.factors["per_layer_s"] for p in parts)),
        factors=" + ".join(dict.fromkeys(p.key for p in parts)),
        calibrated=all(p.calibrated for p in parts),
    )
    return _figure(tps, spread, "tokens/s", basis)


#: PCIe 4.0 x16 host-to-device copy rate llama.cpp gets when it streams CPU-resident weights to the
#: GPU for prompt processing (ggml-cuda offload_op, batches >= 32): a guess (25 of 32 GB/s peak).
GUESS_PCIE_GBS = 25.0

#: llama-bench's prompt test at a depth (pp512 @ d): the prompt measured with --depth.
DEPTH_PROMPT_TOKENS = 512


def _prefill(llm: LlmSpec, lb: LlmBytes, pl: Placement, gpus: list[GpuSpec], s: SpeedInputs) -> tuple[SpeedFigure, float]:
    """Prefill of the whole context (or, with ``s.depth``, of a 512-token prompt after that many
    cached tokens): each GPU computes its layers; layers on the CPU are computed on GPU 0 with
    their weights copied over PCIe once per micro-batch (llama.cpp CUDA op offload)."""
    n = llm.num_layers
    start = s.depth or 0
    per_seq = DEPTH_PROMPT_TOKENS if s.depth is not None else s.context_tokens
    tokens = per_seq * s.batch
    ub = max(1, -(-tokens // s.n_ubatch))
    ub_tokens = min(s.n_ubatch, tokens)
    dense_f, exp_f, attn_f = (x * s.batch for x in prefill_flops_parts(llm, lb, per_seq, start))
    total_flops = dense_f + exp_f + attn_f
    qkey = s.runtime.speed_key(s.quant)
    t = 0.0
    keys, spreads, calibrated = [], [], True
    peaks = []
    for d in [*range(len(gpus)), -1]:
        idx = [i for i in range(n) if pl.layer_dev[i] == d]
        share = (len(idx) / n) if n else 0
        if share == 0 and pl.output_dev != d and not (d == -1 and pl.cpu_moved_bytes):
            continue
        flops = (total_flops - 2 * lb.output_params * s.batch) * share + (2 * lb.output_params * s.batch if pl.output_dev == d else 0)
        kw: dict[str, Any] = {
            "attn_flops": attn_f * share,
            "attn_peak": peak_tflops(gpus[max(d, 0)]),
            "expert_flops": exp_f * share,
            "ubatch_tokens": ub_tokens,
        }
        wbytes = ubatch_weight_bytes(llm, lb, idx, ub_tokens) + (lb.output_stored if pl.output_dev == d else 0) + pl.moved_delta(d)[0]
        if share == 0 and pl.output_dev != d and wbytes <= 0:
            continue
        layers = len(idx) + (1 if pl.output_dev == d else 0)
        g = gpus[d] if d >= 0 else gpus[0]
        backend = backend_for(g, s.backend)
        kernel = "f16" if s.runtime.pytorch_kernels else prefill_kernel(g, backend, qkey, ub_tokens)
        peak = mmq_tflops(g) if kernel == "mmq" else peak_tflops(g)
        f, key, cal = prefill_factors(s.runtime, backend, "f16" if kernel == "dequant" else qkey, g)
        fd = None if s.runtime.pytorch_kernels else decode_factors(s.runtime, backend, s.quant, g)[0]
        kw["expert_layers"] = ubatch_expert_layers(llm, lb, idx, ub_tokens)
        kw["dequant_bytes"] = dequant_pass_bytes(lb, wbytes) if kernel == "dequant" else 0.0
        if kernel == "dequant":
            key += " (quantized weights dequantized to FP16, then an FP16 GEMM)"
        if d == -1:
            if g.unified_memory:
                dt = prefill_time(flops, wbytes, ub, peak, g.memory_bandwidth_gbs, f, fd, layers, **kw)
            else:
                dt = prefill_time(flops, 0, ub, peak, g.memory_bandwidth_gbs, f, **kw) + ub * wbytes / (GUESS_PCIE_GBS * 1e9)
                cal = False
        else:
            dt = prefill_time(flops, wbytes, ub, peak, g.memory_bandwidth_gbs, f, fd, layers, **kw)
        t += dt
        keys.append(key)
        spreads.append((dt, _spread(f, cal)))
        peaks.append(peak)
        calibrated = calibrated and cal
    spread = sum(dt * sp for dt, sp in spreads) / t + s.rate_spread()
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
        backend = backend_for(gpu, s.backend)
        enc_f = cal.get("encode", {}).get(s.runtime.name, {})
        if backend in enc_f or "cuda" in enc_f:
            # llama.cpp clip/mtmd: one image at a time through ggml's graph, fitted on mtmd_vision.csv
            f = enc_f.get(backend) or enc_f["cuda"]
            key = f"encode.{s.runtime.name}.{backend if backend in enc_f else 'cuda'}"
        else:
            f, key, _ = prefill_factors(s.runtime, backend, s.runtime.speed_key("F16"))
            key += " (applied to the vision tower)"
        calibrated = False  # at most one published encode time per backend: the band stays the uncalibrated one
        t = f_img / (f["compute_efficiency"] * peak * 1e12)
    spread = _spread(f, calibrated) + s.rate_spread()
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
