"""'What can I run on this GPU?': every catalog model at the best precision that fits.

For each LLM and VLM of the catalog, ``fit()`` walks the precisions from the highest quality down
(llama.cpp: F16 > Q8_0 > Q6_K > Q5_K_M > Q4_K_M > IQ4_XS > Q3_K_M > Q2_K; transformers: the
checkpoint dtype > int8 > nf4) and keeps the first one that *fits* (at least the 1 GiB margin
llama.cpp's --fit keeps free); failing that, the first that is *tight* (fits with less margin);
failing that, the smallest one, with verdict offload (llama.cpp) or no.

Only the weights change with the precision: the KV cache, compute buffers, vision encoder and
runtime overhead do not. So each model is estimated once for those parts, the weights of every
precision are summed tensor by tensor (shared between a VLM and its LLM), and the full estimate
(largest context, speed) runs once, at the chosen precision. The result equals ``estimate()``
at that precision (a test checks it).

Ranking, "the most capable model that runs first":
1. models that run on the GPU (fits or tight) before those that do not (offload, no);
2. with ``min_speed``, those meeting it first;
3. the precision's quality tier: 4 bits and up (F16 .. IQ4_XS; transformers: all) before 3-bit
   (Q3_K_M) before 2-bit (Q2_K). llama.cpp's own quantize table (tools/quantize/quantize.cpp
   QUANT_OPTIONS, Llama-3-8B perplexity increase; recalled, not re-checked here) puts Q4_K_M at
   about +0.18, Q3_K_M at +0.66 and Q2_K at +3.5: below 4 bits quality drops fast, so a bigger
   model squeezed into 2-3 bits is not ranked above a smaller one at 4+ bits;
4. more LLM parameters first (total parameters: a mixture-of-experts model counts all experts);
5. a higher-quality precision first; then the id.
Parameter count is a coarse proxy for capability, and it is the one the catalog can state
without benchmarks; the table shows the precision so a heavily quantized pick is visible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from vramcalc import runtimes
from vramcalc.errors import InputError, VramcalcError
from vramcalc.estimate import Parts, account, estimate, model_parts
from vramcalc.jsonable import Jsonable, doc, result
from vramcalc.params import encoder_tensors
from vramcalc.placement import gpu_info
from vramcalc.quant import WeightBytes
from vramcalc.results import DEFAULT_TEXT_CONTEXT, Estimate, FixedWeights, GpuInfo, Verdict, Workload
from vramcalc.schema import GpuSpec, LlmSpec, VlmSpec

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.results import ServingOptions
    from vramcalc.runtimes import Runtime

#: Quality tier of each precision (0 best), see the ranking above.
QUALITY_TIER = {"Q3_K_M": 1, "Q2_K": 2}

RANKING = (
    "runs on the GPU (fits/tight) first; then meets --min-speed; then 4+ bit precisions before Q3_K_M before Q2_K; "
    "then more LLM parameters (MoE: total); then higher-quality precision; then id"
)


@result
class FitRow(Jsonable):
    """One catalog model at the best precision that fits."""

    model: str = doc("Catalog id.")
    name: str = doc("The model's name.")
    kind: Literal["llm", "vlm"] = doc("llm | vlm.")
    llm_params: int = doc("Parameters of the language model (all experts of an MoE).")
    params: int = doc("All parameters (LLM + vision encoder + projector).")
    quant: str = doc("The best precision that fits (the smallest one tried if none does).")
    total_bytes: int = doc("GPU memory needed at the requested context.")
    headroom_bytes: int = doc("Usable GPU memory minus total_bytes (negative: short by this much; llama.cpp offloads layers to the CPU).")
    max_context_tokens: int | None = doc("Largest context per sequence that fits at this precision.")
    verdict: Verdict = doc("fits | tight | offload | no.")
    decode_tokens_per_s: float | None = doc("Expected decode speed, where the speed model gives one.", default=None)
    meets_min_speed: bool | None = doc("None when no --min-speed was given or no speed is known.", default=None)


@result
class FitResult(Jsonable):
    """``vramcalc fit``: the catalog ranked for one GPU and workload."""

    gpu: GpuInfo = doc("The GPU.")
    runtime: str = doc("Runtime plugin name.")
    context_tokens: int | None = doc("Text tokens per sequence asked for (None: the estimate default, 4096).")
    images: int | None = doc("Images per sequence for VLMs (None: 1).")
    kind: Literal["llm", "vlm", "all"] = doc("Which models.")
    min_speed: float | None = doc("Minimum decode tokens/s asked for.")
    precisions: list[str] = doc("Precisions tried, best quality first.")
    rows: list[FitRow] = doc("One row per model, sorted by ``ranking``.")
    skipped: list[str] = doc("Catalog entries left out, with the reason.", default_factory=list)
    ranking: str = doc("How rows are sorted.", default=RANKING)


def decode_speed(est: Estimate) -> float | None:
    """Decode tokens/s from an Estimate, if the speed model filled it in."""
    fig = est.throughput.decode_tokens_per_s if est.throughput is not None else None
    return fig.value if fig is not None else None


def fit(
    gpu: GpuSpec,
    catalog: Catalog,
    ctx: int | None = None,
    images: int | None = None,
    kind: Literal["llm", "vlm", "all"] = "all",
    min_speed: float | None = None,
    runtime: str = "llama.cpp",
    headless: bool = False,
    n_gpus: int = 1,
    serving: ServingOptions | None = None,
    ram_bytes: int | None = None,
) -> FitResult:
    """Every catalog LLM/VLM at the best precision that fits ``gpu``, most capable first.

    Args:
        gpu: the GPU.
        catalog: a loaded ``Catalog``.
        ctx: text tokens per sequence (None: 4096).
        images: images per sequence for VLMs (None: 1).
        kind: 'llm', 'vlm' or 'all'.
        min_speed: keep only precisions whose decode speed reaches this many tokens/s (when known).
        runtime: 'llama.cpp' (GGUF quantizations) or 'transformers'.
        headless: the GPU drives no display.
        n_gpus: GPUs of this kind (a serving runtime shards over them: tensor parallelism).
        serving: serving-runtime settings (runtimes with their own accounting, ``estimate_own``).
        ram_bytes: system RAM: MoE expert offload may then use a precision above the default.

    Returns:
        FitResult with one row per model, sorted as described in the module docstring.
    """
    if min_speed is not None and min_speed <= 0:
        raise InputError("--min-speed must be a positive number of tokens per second.")
    rt = runtimes.get(runtime)
    own = getattr(rt, "estimate_own", None) is not None  # a runtime with its own accounting (runtimes/serving.py)
    if n_gpus > 1 and not own:
        raise InputError(f"fit over {n_gpus} GPUs is for the serving runtimes (vllm, sglang); {runtime} ranks one GPU.")
    if own:
        from vramcalc.results import ServingOptions

        opts = serving or ServingOptions()
        if opts.max_model_len is None:  # rank at --ctx tokens per request, not at each model's maximum
            opts = dataclasses.replace(opts, max_model_len=ctx or DEFAULT_TEXT_CONTEXT)
        serving = opts
    kinds = ["llms", "vlms"] if kind == "all" else [kind + "s"]
    weights_cache: dict[tuple[str, str], WeightBytes] = {}
    rows: list[FitRow] = []
    skipped: list[str] = []
    base_work = Workload(runtime=runtime, context_tokens=ctx, images=images, headless=headless, serving=serving, ram_bytes=ram_bytes)
    ginfo = None
    order: list[str] = []
    for k in kinds:
        for eid in catalog.ids(k):
            try:
                spec = catalog.get(k, eid)
                assert isinstance(spec, (LlmSpec, VlmSpec))
                if own:
                    row, info, order_k = _fit_own(spec, [gpu] * n_gpus, catalog, base_work, rt, min_speed)
                else:
                    row, info, order_k = _fit_one(spec, gpu, catalog, base_work, rt, min_speed, weights_cache)
            except VramcalcError as e:  # an entry that does not validate or names a missing part: listed, not fatal
                skipped.append(f"{eid}: {str(e).splitlines()[0]}")
                continue
            rows.append(row)
            ginfo = ginfo or info
            order = order or order_k
    if ginfo is None:
        ginfo = gpu_info(gpu, headless)
    rows.sort(key=lambda r: _rank(r, order))
    return FitResult(
        gpu=ginfo,
        runtime=runtime,
        context_tokens=ctx,
        images=images,
        kind=kind,
        min_speed=min_speed,
        precisions=order or rt.precision_label(),
        rows=rows,
        skipped=skipped,
    )


def _rank(r: FitRow, order: list[str]) -> tuple:
    runs = r.verdict in ("fits", "tight")
    q = order.index(r.quant) if r.quant in order else len(order)
    return (not runs, r.meets_min_speed is False, QUALITY_TIER.get(r.quant, 0), -r.llm_params, q, r.model)


def _fit_one(
    spec: LlmSpec | VlmSpec,
    gpu: GpuSpec,
    catalog: Catalog,
    work: Workload,
    rt: Runtime,
    min_speed: float | None,
    cache: dict[tuple[str, str], WeightBytes],
) -> tuple[FitRow, GpuInfo, list[str]]:
    parts = model_parts(spec, catalog)
    llm = parts.llm
    assert llm is not None
    order = rt.precisions(llm)

    def weights(q: str) -> WeightBytes:
        key = (llm.id, q)
        wb = cache.get(key)
        if wb is None:
            wb = cache[key] = rt.llm_weights(llm, q)
        return wb

    def on_device(wb: WeightBytes) -> int:
        return wb.bytes - (wb.host_bytes if rt.embeddings_on_host else 0)

    vision = _vision_weights(spec, parts, work, rt) if isinstance(spec, VlmSpec) else {}

    def fixed(q: str) -> FixedWeights:
        return FixedWeights(llm=weights(q), **vision)

    # everything but the LLM weights is independent of the precision: estimate it once
    first = order[0]
    base = account(parts, gpu, work.with_(quant=first), rt, fixed(first), catalog)
    rest = base.memory.total_bytes - on_device(weights(first))
    usable = gpu_info(gpu, work.headless).usable_bytes
    fitting: list[str] = []
    tight: list[str] = []
    floor = rt.weight_floor(llm)
    for q in order:  # best first; the weights of lower precisions are summed only while needed
        if floor is not None and usable - rest - floor(q) < 0:
            continue  # cannot fit even at the file type's base bit width: skip the exact sum
        headroom = usable - rest - on_device(weights(q))
        if headroom >= rt.margin_bytes:
            fitting.append(q)
            if min_speed is None:
                break
        elif headroom >= 0:
            tight.append(q)
    candidates = fitting + tight
    if not candidates or QUALITY_TIER.get(candidates[0], 0) > 0:  # none, or only below 4 bits: MoE experts in RAM first
        candidates = _expert_offload(spec, gpu, catalog, work, rt, llm, order, fixed) or candidates
    candidates = candidates or [order[-1]]

    chosen = None
    for q in candidates:
        est = estimate(spec, gpu, work.with_(quant=q), catalog, fixed(q))
        speed = decode_speed(est)
        meets = None if min_speed is None or speed is None else speed >= min_speed
        chosen = (q, est, speed, meets)
        if meets is not False:
            break
    assert chosen is not None
    q, est, speed, meets = chosen
    row = FitRow(
        model=spec.id,
        name=spec.name,
        kind="vlm" if isinstance(spec, VlmSpec) else "llm",
        llm_params=est.params.llm,
        params=est.params.total,
        quant=q,
        total_bytes=est.memory.total_bytes,
        headroom_bytes=est.gpu.usable_bytes - est.memory.total_bytes,
        max_context_tokens=est.max_context_tokens,
        decode_tokens_per_s=speed,
        verdict=est.verdict,
        meets_min_speed=meets,
    )
    return row, est.gpu, order


def _expert_offload(
    spec: LlmSpec | VlmSpec,
    gpu: GpuSpec,
    catalog: Catalog,
    work: Workload,
    rt: Runtime,
    llm: LlmSpec,
    order: list[str],
    fixed: Callable[[str], FixedWeights],
) -> list[str]:
    """A MoE model that fits at no precision: before a lower precision, the experts of some layers in
    system RAM (llama.cpp --n-cpu-moe, as its --fit places them) with every layer on the GPU. With
    --ram, the best precision whose RAM part fits; without it, only the runtime's default precision
    (system RAM unknown: a larger file is not assumed to fit)."""
    if llm.moe is None or not rt.offloads_layers:
        return []
    tries = order if work.ram_bytes is not None else [rt.normalize_precision(rt.default_precision(spec, llm))]
    for q in tries:
        est = estimate(spec, gpu, work.with_(quant=q), catalog, fixed(q))
        off = est.offload
        if off is not None and off.cpu_moved_bytes and off.gpu_layers >= off.total_layers and est.verdict == "offload":
            return [q]
    return []


def _vision_weights(spec: VlmSpec, parts: Parts, work: Workload, rt: Runtime) -> dict[str, WeightBytes]:
    """The VLM's encoder and projector weights at its default mmproj/vision precision, computed
    once for every precision of the LLM that fit tries."""
    assert parts.encoder is not None
    vq = rt.vision_precision(spec, work)
    own_tensors = getattr(rt, "vision_tensors", None)  # what the runtime's projector file keeps of the tower (as estimate.account)
    tensors = own_tensors(spec, parts.encoder) if own_tensors else encoder_tensors(parts.encoder)
    out = {"vision": rt.vision_weights(tensors, vq)}
    if parts.projector:
        out["projector"] = rt.vision_weights(parts.projector, vq)
    return out


def _fit_own(
    spec: LlmSpec | VlmSpec, gpus: list[GpuSpec], catalog: Catalog, work: Workload, rt: Runtime, min_speed: float | None
) -> tuple[FitRow, GpuInfo, list[str]]:
    """A runtime with its own accounting: the full estimate at each precision, best first, until one starts."""
    parts = model_parts(spec, catalog)
    assert parts.llm is not None
    order = rt.precisions(parts.llm)
    chosen = None
    for q in order:
        est = estimate(spec, gpus, work.with_(quant=q), catalog)
        speed = decode_speed(est)
        meets = None if min_speed is None or speed is None else speed >= min_speed
        if chosen is None or (est.verdict in ("fits", "tight") and chosen[1].verdict not in ("fits", "tight")):
            chosen = (q, est, speed, meets)
        if est.verdict in ("fits", "tight") and meets is not False:
            chosen = (q, est, speed, meets)
            break
        chosen = chosen if chosen[1].verdict in ("fits", "tight") else (q, est, speed, meets)
    assert chosen is not None
    q, est, speed, meets = chosen
    row = FitRow(
        model=spec.id,
        name=spec.name,
        kind="vlm" if isinstance(spec, VlmSpec) else "llm",
        llm_params=est.params.llm,
        params=est.params.total,
        quant=q,
        total_bytes=est.memory.total_bytes,
        headroom_bytes=est.headroom_bytes,
        max_context_tokens=est.max_context_tokens,
        decode_tokens_per_s=speed,
        verdict=est.verdict,
        meets_min_speed=meets,
    )
    return row, est.gpu, order
