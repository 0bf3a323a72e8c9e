"""The pipeline's result types: frozen dataclasses, printed with ``--json`` via ``to_json()``.

Input (id / path) -> spec -> runtime accounting (:class:`Memory`) -> placement (:class:`Offload`)
-> verdict (decided once, in placement.py) -> speed (:class:`Throughput`) -> :class:`Estimate`.
Totals are computed from their parts (``__json_computed__``), never stored twice.
docs/json.md is generated from the ``doc()`` texts here (docs/gen_json_md.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from vramcalc import __version__
from vramcalc.errors import InputError
from vramcalc.jsonable import Jsonable, doc, kw_result, result
from vramcalc.quant import WeightBytes

Verdict = Literal["fits", "tight", "offload", "no"]
KvType = Literal["f16", "q8_0", "q4_0"]
ModelKind = Literal["llm", "vlm", "encoder"]

#: Realistic default context: 4096 text tokens (+ image tokens), never the model maximum.
DEFAULT_TEXT_CONTEXT = 4096
#: Default micro-batch (llama.cpp common defaults: n_batch 2048, n_ubatch 512; field.md).
DEFAULT_UBATCH = 512


# ---------------------------------------------------------------------------------------------
# What the user asks


@result
class Workload(Jsonable):
    """What the user asks about: runtime, precision, context, images, batch, placement."""

    runtime: str = doc("Runtime plugin name (vramcalc.runtimes): llama.cpp, transformers, ...", default="llama.cpp")
    quant: str | None = doc("LLM weights: GGUF file type (llama.cpp) or torch format; None = runtime default.", default=None)
    vision_quant: str | None = doc("Vision encoder + projector weights; None = the VLM's mmproj default (f16).", default=None)
    context_tokens: int | None = doc("Text tokens per sequence; None = 4096.", default=None)
    images: int | None = doc("Images per sequence; None = 1 for a VLM, 0 otherwise.", default=None)
    image_size: tuple[int, int] | None = doc("(width, height) of each image in pixels.", default=None)
    batch: int = doc("Parallel sequences (llama.cpp -np) or batch size.", default=1)
    kv_cache: KvType = doc("KV cache type (llama.cpp -ctk/-ctv).", default="f16")
    flash_attention: bool = doc("llama.cpp -fa (auto = on where the backend supports it).", default=True)
    n_ubatch: int = doc("llama.cpp micro-batch (-ub).", default=DEFAULT_UBATCH)
    headless: bool = doc("No display on this GPU: do not reserve desktop memory.", default=False)
    gpu_layers: int | None = doc("llama.cpp -ngl (repeating layers + 1 for the output layer); None = all that fit.", default=None)
    offload: Literal["auto", "none"] = doc(
        "auto: when the model does not fit, keep the layers that do not fit in system RAM.", default="auto"
    )
    ram_bytes: int | None = doc("System RAM (for the CPU-offloaded part); None = not checked.", default=None)
    ram_bandwidth_gbs: float | str | None = doc(
        "System RAM bandwidth in GB/s, or 'ddr4' / 'ddr5' (dual channel); None = ddr5.", default=None
    )
    backend: str | None = doc(
        "llama.cpp backend for the speeds (cuda, rocm, vulkan, metal, sycl, cpu); None = the GPU vendor's usual one.", default=None
    )
    depth: int | None = doc(
        "Tokens already in the KV cache where decode and prefill speeds are given (llama-bench -d); None = full context.", default=None
    )
    serving: ServingOptions | None = doc(
        "Serving-runtime settings (vLLM / SGLang / MLX: memory fraction, max model len, TP/PP...); None = defaults.",
        omit_none=True,
        default=None,
    )
    # --- llama.cpp placements (issue 9): defaults keep the figures of a plain run
    n_cpu_moe: int | None = doc("llama.cpp --n-cpu-moe: expert tensors of the first N layers in system RAM.", default=None)
    cpu_moe: bool = doc("llama.cpp --cpu-moe: every expert tensor in system RAM.", default=False)
    override_tensor: tuple[tuple[str, str], ...] = doc(
        "llama.cpp -ot: (regex over GGUF tensor names, buffer type CPU / CUDAn), first match wins.", default=()
    )
    tensor_split: tuple[float, ...] | None = doc("llama.cpp -ts: share of the layers per GPU; None = by free memory.", default=None)
    split_mode: Literal["layer", "row", "none"] = doc("llama.cpp -sm: layer (default), row, none (main GPU only).", default="layer")
    main_gpu: int = doc("llama.cpp -mg: the GPU for split mode none (and KV/intermediates with row).", default=0)
    cache_type_k: KvType | None = doc("llama.cpp -ctk: K cache type; None = kv_cache.", default=None)
    cache_type_v: KvType | None = doc("llama.cpp -ctv: V cache type; None = kv_cache.", default=None)
    n_parallel: int = doc("llama.cpp -np: server slots (KV streams); the CLI sets batch to it too.", default=1)
    kv_unified: bool = doc("llama.cpp --kv-unified: one KV buffer shared by all sequences.", default=False)
    mmproj_offload: bool = doc("llama.cpp: the vision projector (mmproj) on the GPU; False = --no-mmproj-offload.", default=True)
    warmup: bool = doc("llama.cpp warm-up run (reserves the vision buffer at its warm-up image size); False = --no-warmup.", default=True)
    fit: bool = doc("llama.cpp --fit on: when it does not fit, place as llama.cpp's fit would (keep fit_target free).", default=True)
    fit_target_bytes: int = doc("llama.cpp --fit-target: memory --fit keeps free per GPU.", default=1024 * 1024 * 1024)
    reserve_bytes: int = doc("Memory other programs hold on each GPU (--reserve): not usable.", default=0)

    @property
    def k_type(self) -> str:
        """K cache type (-ctk), kv_cache unless set."""
        return self.cache_type_k or self.kv_cache

    @property
    def v_type(self) -> str:
        """V cache type (-ctv), kv_cache unless set."""
        return self.cache_type_v or self.kv_cache

    @property
    def expert_overrides(self) -> bool:
        """Some tensor is placed by a rule (--n-cpu-moe, --cpu-moe, -ot) rather than by its layer."""
        return bool(self.n_cpu_moe or self.cpu_moe or self.override_tensor)

    def __post_init__(self) -> None:
        for name in ("context_tokens", "batch", "n_ubatch", "ram_bytes"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise InputError(f"{name} must be positive, got {v}.")
        for name in ("images", "gpu_layers"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise InputError(f"{name} must be 0 or more, got {v}.")
        if self.kv_cache not in ("f16", "q8_0", "q4_0"):
            raise InputError(f"KV cache type must be f16, q8_0 or q4_0, got '{self.kv_cache}'.")
        if self.offload not in ("auto", "none"):
            raise InputError(f"offload must be auto or none, got '{self.offload}'.")
        if self.depth is not None and self.depth < 0:
            raise InputError(f"depth must be 0 or more, got {self.depth}.")
        if self.backend is not None and self.backend.lower() not in ("cuda", "rocm", "vulkan", "metal", "sycl", "cpu"):
            raise InputError(f"backend must be one of cuda, rocm, vulkan, metal, sycl, cpu; got '{self.backend}'.")
        for name in ("cache_type_k", "cache_type_v"):
            v = getattr(self, name)
            if v is not None and v not in ("f16", "q8_0", "q4_0"):
                raise InputError(f"{name} must be f16, q8_0 or q4_0, got '{v}'.")
        if self.n_cpu_moe is not None and self.n_cpu_moe < 0:
            raise InputError(f"n_cpu_moe must be 0 or more, got {self.n_cpu_moe}.")
        if self.n_parallel <= 0:
            raise InputError(f"n_parallel must be positive, got {self.n_parallel}.")
        if self.tensor_split is not None and (
            any(not (x >= 0) or x == float("inf") for x in self.tensor_split) or sum(self.tensor_split) <= 0
        ):
            raise InputError("tensor_split must be non-negative finite shares with a positive sum.")
        if self.split_mode not in ("layer", "row", "none"):
            raise InputError(f"split_mode must be layer, row or none, got '{self.split_mode}'.")
        if self.main_gpu < 0 or self.fit_target_bytes < 0 or self.reserve_bytes < 0:
            raise InputError("main_gpu, fit_target and reserve must be 0 or more.")

    def with_(self, **update: Any) -> Workload:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **update)


@result
class FixedWeights(Jsonable):
    """Weights known exactly (read from a model file's tensor headers, or computed once per
    quantization by ``fit``). A part given here replaces the one the runtime derives from the
    architecture and the workload's precision; its ``precision`` is the label shown."""

    llm: WeightBytes | None = None
    vision: WeightBytes | None = None
    projector: WeightBytes | None = None


# ---------------------------------------------------------------------------------------------
# The estimate


@result
class Inputs(Jsonable):
    """The resolved inputs, echoed so a result is self-describing."""

    model: str = doc("Resolved id (the alias you typed is not kept).")
    model_name: str = doc("The model's name.")
    model_kind: ModelKind = doc("llm | vlm | encoder.")
    llm: str | None = doc("LLM id (null for an encoder workload).")
    encoder: str | None = doc("Vision encoder id (null for an LLM).")
    gpu: str = doc("GPU id (the first, main GPU of a split).")
    gpu_name: str = doc("GPU name.")
    runtime: str = doc("llama.cpp | transformers (a runtime plugin's name).")
    quant: str = doc("LLM weights precision (GGUF file type or torch format).")
    vision_quant: str | None = doc("Vision encoder + projector precision.")
    text_tokens: int = doc("Text tokens per sequence.")
    images: int = doc("Images per sequence.")
    image_size: tuple[int, int] | None = doc("[width, height] of each image in pixels.")
    image_tokens_per_image: int = doc("LLM tokens one image takes (the VLM's image-token policy).")
    context_tokens: int = doc("Text + image tokens per sequence.")
    batch: int = doc("Parallel sequences / batch size.")
    kv_cache: str = doc("KV cache type.")
    flash_attention: bool = doc("Flash attention on.")
    n_ubatch: int = doc("Micro-batch.")
    headless: bool = doc("No display reserve on the GPU.")
    vramcalc_version: str = doc("vramcalc version that computed this.", default=__version__)


@result
class Params(Jsonable):
    """Parameters by component."""

    llm: int = doc("Language model parameters (all experts of an MoE).")
    vision: int = doc("Vision encoder parameters.")
    projector: int = doc("Projector parameters.")
    __json_computed__ = ("total",)

    @property
    def total(self) -> int:
        return self.llm + self.vision + self.projector


@result
class ComponentBytes(Jsonable):
    """Bytes per component."""

    llm: int = doc("Language model.", default=0)
    vision: int = doc("Vision encoder.", default=0)
    projector: int = doc("Projector.", default=0)


@result
class Memory(Jsonable):
    """Where the memory goes, in bytes (the runtime's accounting). ``total_bytes`` must sit on the GPU."""

    weights_bytes: ComponentBytes = doc("Weights of each component at its precision (the whole file's tensors).")
    weights_host_bytes: int = doc("Part of the weights the runtime keeps in system RAM (llama.cpp: token embeddings).")
    weights_bits_per_weight: float = doc("LLM weights: average bits per weight of the mixture.")
    weights_by_type: dict[str, int] = doc("LLM weight bytes per tensor type (GGUF mixtures).")
    kv_cache_bytes: int = doc("KV cache of every sequence at the full context.")
    kv_cache_cells: int = doc("KV cells of the full-attention layers (context x batch, padded).")
    compute_bytes: ComponentBytes = doc("Runtime buffers / activations: LLM compute buffer, vision encoder compute buffer.")
    overhead_bytes: int = doc("Runtime overhead on the GPU: CUDA/Metal context, library workspaces.")
    __json_computed__ = ("total_bytes",)

    @property
    def total_bytes(self) -> int:
        """Weights on the device + KV cache + compute buffers + runtime overhead."""
        w, c = self.weights_bytes, self.compute_bytes
        return (
            w.llm
            - self.weights_host_bytes
            + w.vision
            + w.projector
            + self.kv_cache_bytes
            + c.llm
            + c.vision
            + c.projector
            + self.overhead_bytes
        )


@result
class GpuInfo(Jsonable):
    """The (main) GPU and the memory a model may use on it."""

    id: str = doc("GPU id.")
    name: str = doc("GPU name.")
    memory_bytes: int = doc("Memory on the card (unified memory: the whole system RAM).")
    usable_bytes: int = doc("Memory the model may use: the card less the display reserve / the OS share.")
    unified_memory: bool = doc("CPU and GPU share one memory pool.")
    memory_bandwidth_gbs: float = doc("Peak memory bandwidth, GB/s.")
    __json_computed__ = ("reserved_bytes",)

    @property
    def reserved_bytes(self) -> int:
        """Held by the desktop or the OS, not available to the model."""
        return self.memory_bytes - self.usable_bytes


@result
class Suggestion(Jsonable):
    """The cheapest change that makes the model fit."""

    change: str = doc("What to change, in words.")
    flags: list[str] = doc("The check options that make the change.")
    total_bytes: int = doc("GPU memory needed after the change.")
    verdict: Verdict = doc("Verdict after the change.")
    cost: str | None = doc("What the change costs (quality, context, display), in words.", default=None)


# ---------------------------------------------------------------------------------------------
# Placement


@result
class DeviceShare(Jsonable):
    """What one device holds under a layer placement."""

    device: str = doc("GPU id, or 'cpu' for system RAM.")
    index: int = doc("GPU index (CUDA0 = 0); -1 for the CPU.")
    layers: int = doc("Repeating layers on this device.")
    first_layer: int | None = doc("First repeating layer on this device.")
    output_layer: bool = doc("The output layer (output norm + lm head) is on this device.")
    weights_bytes: int = doc("Weights on this device.")
    kv_cache_bytes: int = doc("KV cache of this device's layers.")
    compute_bytes: int = doc("Compute buffers on this device.")
    overhead_bytes: int = doc("Runtime context on this device.")
    usable_bytes: int | None = doc("Memory the model may use on this device (None: system RAM size not given).")
    memory_bandwidth_gbs: float = doc("Peak memory bandwidth of this device, GB/s.")
    __json_computed__ = ("total_bytes", "headroom_bytes")

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.overhead_bytes

    @property
    def headroom_bytes(self) -> int | None:
        return None if self.usable_bytes is None else self.usable_bytes - self.total_bytes


@result
class Offload(Jsonable):
    """Layer placement: how many layers run on the GPU(s), and what each device holds."""

    mode: Literal["full", "auto", "manual"] = doc("full = everything on the GPU(s); auto = most layers that fit; manual = --gpu-layers.")
    gpu_layers: int = doc("llama.cpp -ngl: repeating layers + 1 for the output layer.")
    total_layers: int = doc("n_layer + 1 (the output layer counts, as llama.cpp prints 'offloaded 33/33 layers').")
    devices: list[DeviceShare] = doc("Each GPU, then the CPU (system RAM).")
    ram_bytes: int | None = doc("System RAM given with --ram.")
    ram_usable_bytes: int | None = doc("System RAM left to the model after the OS share.")
    ram_bandwidth_gbs: float = doc("System RAM bandwidth used for CPU layers, GB/s.")
    n_cpu_moe: int | None = doc(
        "llama.cpp --n-cpu-moe: layers whose expert tensors sit in system RAM (given, or chosen by --fit).", default=None
    )
    tensor_overrides: list[str] = doc("llama.cpp -ot rules applied (PATTERN=BUFFER), first match wins.", default_factory=list)
    tensor_split: list[float] | None = doc("Share of the layers per GPU (llama.cpp -ts, normalised); None on one GPU.", default=None)
    cpu_moved_bytes: int = doc("Weights that tensor rules (experts) keep in system RAM although their layer is on a GPU.", default=0)
    fit_target_bytes: int | None = doc(
        "Memory the automatic placement kept free per GPU (llama.cpp --fit-target); None if not automatic.", default=None
    )
    __json_computed__ = ("cpu_weights_bytes", "fits_in_ram")

    @property
    def cpu(self) -> DeviceShare:
        return self.devices[-1]

    @property
    def gpus(self) -> list[DeviceShare]:
        return [d for d in self.devices if d.index >= 0]

    @property
    def cpu_weights_bytes(self) -> int:
        """Weights in system RAM (token embeddings + CPU layers)."""
        return self.cpu.weights_bytes

    @property
    def fits_in_ram(self) -> bool | None:
        return None if self.ram_usable_bytes is None else self.cpu.total_bytes <= self.ram_usable_bytes

    @property
    def min_gpu_headroom(self) -> int:
        return min(d.headroom_bytes or 0 for d in self.gpus)


# ---------------------------------------------------------------------------------------------
# Speed


@result
class SpeedBasis(Jsonable):
    """What a speed figure is computed from, so it can be reproduced by hand."""

    factors: str = doc("Key of the fitted factors in data/calibration.yaml.")
    calibrated: bool = doc("False where no published measurement backs this runtime/backend; the band is then wider.")
    bytes: int | None = doc("Bytes read per token (decode) or moved per image (non-GEMM traffic).", default=None)
    flops: int | None = doc("FLOPs of the step (prefill of the prompt, one image forward).", default=None)
    bandwidth_gbs: float | None = doc("Peak memory bandwidth used (GB/s); several devices: bytes-weighted.", default=None)
    effective_bandwidth_gbs: float | None = doc("Bytes per token x tokens/s: the bandwidth actually achieved.", default=None)
    peak_tflops: float | None = doc("Peak dense FP16 TFLOPS the compute term uses.", default=None)
    effective_tflops: float | None = doc("FLOPs / time: the compute rate actually achieved.", default=None)
    fixed_s: float | None = doc("Fixed cost per step (per-layer launch overhead x layers).", default=None)


@result
class SpeedFigure(Jsonable):
    """One speed with its band (the fit's residual spread)."""

    value: float = doc("The estimate.")
    low: float = doc("Low end of the band.")
    high: float = doc("High end of the band.")
    unit: Literal["tokens/s", "s", "images/s"] = doc("tokens/s, s or images/s.")
    basis: SpeedBasis = doc("What the figure is computed from.")


@result
class Throughput(Jsonable):
    """How fast: decode and prefill tokens/s, image encode and time to first token, images/s."""

    decode_tokens_per_s: SpeedFigure | None = doc("One sequence, at the full context (KV cache read included).", default=None)
    prefill_tokens_per_s: SpeedFigure | None = doc("Prompt processing of the whole context (text + image tokens).", default=None)
    image_encode_s: SpeedFigure | None = doc("Vision encoder + projector, per image (all its crops).", default=None)
    time_to_first_token_s: SpeedFigure | None = doc("Image encodes + prefill of the context.", default=None)
    images_per_s: SpeedFigure | None = doc("Encoder workload: images per second at the batch size.", default=None)
    notes: list[str] = doc("Caveats of the speed estimate.", default_factory=list)
    backend: str | None = doc(
        "llama.cpp backend the speeds are for (cuda, rocm, vulkan, metal, sycl, cpu); None for PyTorch runtimes.", default=None
    )
    depth_tokens: int | None = doc(
        "--depth: tokens already in the KV cache; decode is then at that depth and prefill is a 512-token prompt after it "
        "(llama-bench tg/pp512 @ d). None: decode at the full context, prefill of the whole context.",
        default=None,
    )
    decode_aggregate_tokens_per_s: SpeedFigure | None = doc(
        "Parallel sequences (batch > 1): tokens/s of all sequences together (the weights are read once per step).", default=None
    )
    image_tokens_per_image: int | None = doc("Image tokens each image adds to the context (with image_encode_s).", default=None)
    time_to_first_token_question_s: SpeedFigure | None = doc(
        "Image encodes + prefill of a typical question: question_tokens text tokens plus the images (at most the context).",
        default=None,
    )
    question_tokens: int | None = doc("Tokens of that typical question (512 text tokens + the image tokens).", default=None)
    prefill_rate_estimated: bool = doc(
        "True when prefill, image encode and time to first token rest on an FP16 rate estimated for a card without a "
        "published one (vramcalc.matrix_rate: bandwidth x the median FP16/bandwidth ratio of like catalog cards); the band is wider.",
        default=False,
    )
    prefill_rate_basis: str | None = doc("How that FP16 rate was estimated (None: the catalog's published figure).", default=None)


# ---------------------------------------------------------------------------------------------
# The answer


@result
class Estimate(Jsonable):
    """The answer to 'will it run?' for one model, GPU(s) and workload (``vramcalc check --json``)."""

    inputs: Inputs = doc("Every resolved setting.")
    params: Params = doc("Parameters by component.")
    memory: Memory = doc("The runtime's memory breakdown on the (main) GPU.")
    gpu: GpuInfo = doc("The (main) GPU.")
    verdict: Verdict = doc("fits (>= the runtime's free-memory margin left) | tight | offload (some layers in system RAM) | no.")
    headroom_bytes: int = doc("Usable minus needed memory on the tightest GPU (negative: does not fit).")
    max_context_tokens: int | None = doc("Largest context per sequence (text + images) that fits; None if none does.")
    suggestion: Suggestion | None = doc("The cheapest change that makes it fit (None when it fits).")
    notes: list[str] = doc("Caveats and explanations, most important first.")
    throughput: Throughput | None = doc("Speed estimates with bands and their basis (speed.py).", default=None)
    offload: Offload | None = doc("Layer placement: GPU layers, per-device memory (layer split / CPU offload).", default=None)
    llama_server: list[str] | None = doc(
        "llama.cpp: the llama-server command line (argument list) that reproduces this placement; None for other runtimes.",
        default=None,
    )
    llama_fit_context_tokens: int | None = doc(
        "llama.cpp by itself (llama-server without -c, --fit on): the context per sequence its --fit would set "
        "(the training context lowered until --fit-target stays free, not below 4096); None with --fit off or other runtimes.",
        default=None,
    )
    serving: ServingAnswer | None = doc(
        "Serving runtimes (vLLM, SGLang, MLX): the runtime's own memory accounting, KV pool and command line (absent otherwise).",
        omit_none=True,
        default=None,
    )
    alternatives: list[Suggestion] = doc("Up to two more changes that also make it run, cheapest in quality first.", default_factory=list)


# ---------------------------------------------------------------------------------------------
# Serving runtimes (vLLM, SGLang, MLX): runtimes/serving.py fills these


@kw_result
class ServingOptions(Jsonable):
    """Settings of a serving runtime, under neutral names (the CLI takes each runtime's own spelling)."""

    memory_fraction: float | None = doc("vLLM --gpu-memory-utilization / SGLang --mem-fraction-static; None = default.", default=None)
    max_model_len: int | None = doc("vLLM --max-model-len / SGLang --context-length; None = the model's maximum.", default=None)
    max_num_seqs: int | None = doc("vLLM --max-num-seqs / SGLang --max-running-requests; None = default.", default=None)
    max_num_batched_tokens: int | None = doc("vLLM --max-num-batched-tokens (the profile run's tokens); None = default.", default=None)
    kv_cache_dtype: str = doc("auto (the model dtype) or fp8.", default="auto")
    tensor_parallel: int | None = doc("GPUs per pipeline stage (--tensor-parallel-size / --tp); None = GPUs per node.", default=None)
    pipeline_parallel: int | None = doc("Pipeline stages (--pipeline-parallel-size); None = --nodes.", default=None)
    nodes: int = doc("Nodes, each with the --gpu GPUs (TP inside a node, PP across nodes).", default=1)
    enforce_eager: bool = doc("No CUDA graphs.", default=False)
    mm_items: int | None = doc("--limit-mm-per-prompt images per prompt (VLMs); None = default.", default=None)
    wired_limit_mb: int | None = doc("MLX: macOS iogpu.wired_limit_mb when raised; None = the default working set.", default=None)
    concurrency: int | None = doc("Concurrent requests the speed figures are given at; None = 1 and the maximum.", default=None)
    generation_tokens: int | None = doc("MLX: tokens generated after the prompt (mlx_lm.benchmark -g); None = 128.", default=None)

    def __post_init__(self) -> None:
        for name in (
            "max_model_len",
            "max_num_seqs",
            "max_num_batched_tokens",
            "tensor_parallel",
            "pipeline_parallel",
            "concurrency",
            "generation_tokens",
        ):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise InputError(f"{name} must be positive, got {v}.")
        if self.nodes <= 0:
            raise InputError(f"nodes must be positive, got {self.nodes}.")
        if self.memory_fraction is not None and not 0 < self.memory_fraction <= 1:
            raise InputError(f"the memory fraction must be in (0, 1], got {self.memory_fraction}.")
        if self.kv_cache_dtype not in ("auto", "fp8"):
            raise InputError(f"KV cache dtype must be auto or fp8, got '{self.kv_cache_dtype}'.")
        if self.wired_limit_mb is not None and self.wired_limit_mb <= 0:
            raise InputError(f"wired limit must be positive, got {self.wired_limit_mb}.")
        if self.mm_items is not None and self.mm_items < 0:
            raise InputError(f"images per prompt must be 0 or more, got {self.mm_items}.")


@result
class ServingGpu(Jsonable):
    """What one GPU of a serving runtime holds (one per pipeline stage: the TP ranks of a stage are alike)."""

    stage: int = doc("Pipeline stage (node under --nodes); its TP ranks hold the same.")
    layers: int = doc("Decoder layers of this stage.")
    usable_bytes: int = doc("Total x the memory fraction (vLLM requested memory; SGLang: the static share); MLX: the wired limit.")
    weights_bytes: int = doc("Weights on one GPU of this stage (sharded by TP; embeddings on the first stage, head on the last).")
    non_torch_bytes: int = doc("CUDA context, NCCL buffers (vLLM non_torch_memory); MLX: 0.")
    activation_bytes: int = doc("Activation peak of the profile run (vLLM); MLX: the prefill step's activations.")
    kv_cache_bytes: int = doc("KV pool on this GPU: what is left, in whole blocks (MLX: the cache at the context).")
    kv_bytes_per_token: int = doc("KV bytes one token takes on this GPU (all its layers).")
    kv_cache_tokens: int = doc("Tokens the KV pool holds (blocks x block size).")
    __json_computed__ = ("total_bytes",)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.non_torch_bytes + self.activation_bytes + self.kv_cache_bytes


@result
class ServingAnswer(Jsonable):
    """A serving runtime's answer: does it start, how many tokens the KV pool holds, how many requests at once."""

    runtime_version: str = doc("Runtime version whose rules are modelled.")
    starts: bool = doc("The server starts (the KV pool holds at least one request of max_model_len).")
    error: str | None = doc("The runtime's own start-up error, as it words it, when it does not start.")
    lower: list[str] = doc("Settings to change so it starts, cheapest first.")
    tensor_parallel: int = doc("TP size.")
    pipeline_parallel: int = doc("PP size (nodes).")
    memory_fraction: float = doc("gpu_memory_utilization / mem_fraction_static used (MLX: 1).")
    max_model_len: int = doc("Tokens per request (vLLM max_model_len, SGLang context_length, MLX prompt + generation).")
    max_num_seqs: int = doc("Requests scheduled at once (vLLM max_num_seqs, SGLang max_running_requests; MLX 1).")
    max_num_batched_tokens: int = doc("Tokens of the profile run / one prefill step.")
    kv_cache_dtype: str = doc("KV element type (bf16/fp16/fp8).")
    block_size: int = doc("KV block in tokens (vLLM 16; SGLang 1 token per slot; MLX cache step 256).")
    kv_cache_tokens: int = doc("Tokens the KV pool holds (vLLM 'GPU KV cache size', SGLang max_total_num_tokens).")
    max_concurrency: float = doc("kv_cache_tokens / max_model_len (vLLM 'Maximum concurrency for N tokens per request').")
    k_cache_bytes: int = doc("K part of the KV pool per GPU (SGLang 'K size'); MLA: the latent.")
    v_cache_bytes: int = doc("V part of the KV pool per GPU (SGLang 'V size').")
    cuda_graph_bytes: int = doc("CUDA graph memory (outside the fraction in the modelled versions); 0 with --enforce-eager.")
    smallest_tp: int | None = doc("Smallest TP size (on these GPUs) that starts; None if none does.")
    peak_bytes: int | None = doc("MLX: peak memory as mlx-lm reports it (mx.get_peak_memory).", default=None)
    command: str = doc("The command line that reproduces the estimate.", default="")
    gpus: list[ServingGpu] = doc("Per-GPU accounting, one per pipeline stage.", default_factory=list)
    speeds: dict[str, SpeedFigure] = doc(
        "Speeds: decode_per_request / decode_aggregate at 'concurrency', prefill, ttft (MLX: prompt / generation).",
        default_factory=dict,
    )
    concurrency: int = doc("Concurrent requests the aggregate figure is given at.", default=1)
    notes: list[str] = doc("How each figure was computed, caveats.", default_factory=list)
