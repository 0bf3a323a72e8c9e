"""Side-by-side views over ``estimate()``: one model across cards or precisions (``compare``),
the cards that run a model (``gpus_for``) and memory against context (``context_curve``).
Nothing here computes a memory figure or a verdict of its own: each row is one ``estimate()``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vramcalc.errors import InputError, VramcalcError
from vramcalc.estimate import estimate
from vramcalc.jsonable import Jsonable, doc, result
from vramcalc.results import Estimate, Verdict, Workload

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.schema import GpuSpec, LlmSpec, VisionEncoderSpec, VlmSpec

    Model = LlmSpec | VlmSpec | VisionEncoderSpec


@result
class ViewRow(Jsonable):
    """One estimate, summarised: what a side-by-side table shows."""

    gpus: list[str] = doc("GPU ids (a split lists each card).")
    gpu_name: str = doc("Name of the (main) GPU.")
    quant: str = doc("LLM weights precision.")
    memory_bytes: int = doc("Memory the model needs on the GPU(s) at the asked context (all layers).")
    usable_bytes: int = doc("Usable memory of the GPU(s) together.")
    verdict: Verdict = doc("fits | tight | offload | no.")
    max_context_tokens: int | None = doc("Largest context per sequence that fits.")
    decode_tokens_per_s: float | None = doc("Decode speed at the asked context (None when not known or when it does not run).")
    time_to_first_token_s: float | None = doc("Time to first token for a typical question (512 tokens + the images).")
    gpu_layers: str | None = doc("With offload: 'on GPU/total' layers.", default=None)


@result
class Comparison(Jsonable):
    """``vramcalc compare``: one model, side by side across GPUs and/or precisions."""

    model: str = doc("Catalog id.")
    model_name: str = doc("The model's name.")
    runtime: str = doc("Runtime plugin name.")
    context_tokens: int = doc("Context per sequence of the estimates (text + image tokens).")
    rows: list[ViewRow] = doc("One row per GPU x precision, in the order asked.")


@result
class GpuChoice(Jsonable):
    """``vramcalc gpus``: the cards (single, and pairs) that run a model, smallest memory first."""

    model: str = doc("Catalog id.")
    model_name: str = doc("The model's name.")
    runtime: str = doc("Runtime plugin name.")
    quant: str = doc("LLM weights precision.")
    context_tokens: int = doc("Context per sequence (text + image tokens).")
    min_speed: float | None = doc("--min-speed: decode tokens/s the card must reach.")
    rows: list[ViewRow] = doc("Cards that run it on the GPU (fits or tight), smallest usable memory first, then faster.")
    considered: int = doc("Cards and pairs estimated.")
    pairs: str = doc("Which pairs were tried.", default="")


@result
class CurvePoint(Jsonable):
    """One point of the curve."""

    context_tokens: int = doc("Context per sequence (text + image tokens).")
    memory_bytes: int = doc("Memory needed (all layers) at that context.")


@result
class ContextCurve(Jsonable):
    """``check --plot``: memory against context, with the card's usable memory."""

    usable_bytes: int = doc("Usable memory of the GPU(s).")
    points: list[CurvePoint] = doc("Memory at growing contexts up to the trained maximum.")
    max_context_tokens: int | None = doc("Largest context that fits (the estimate's).")


def row_of(est: Estimate) -> ViewRow:
    """The summary of one estimate. No speed where the verdict is 'no' (it does not run)."""
    off = est.offload
    gpus = [d.device for d in off.gpus] if off is not None and off.gpus else [est.gpu.id]
    usable = sum(d.usable_bytes or 0 for d in off.gpus) if off is not None and len(off.gpus) > 1 else est.gpu.usable_bytes
    thr = est.throughput
    runs = est.verdict != "no"
    dec = thr.decode_tokens_per_s.value if runs and thr is not None and thr.decode_tokens_per_s is not None else None
    q = thr.time_to_first_token_question_s if thr is not None else None
    ttft = q.value if runs and q is not None else None
    layers = f"{off.gpu_layers}/{off.total_layers}" if off is not None and off.mode != "full" else None
    memory = est.memory.total_bytes
    if est.serving is not None and est.serving.peak_bytes is None:  # vLLM / SGLang: per-GPU figures, TP x PP cards
        n = est.serving.tensor_parallel * est.serving.pipeline_parallel
        gpus, memory, usable = [est.gpu.id] * n, memory * n, usable * n
    return ViewRow(
        gpus=gpus,
        gpu_name=est.gpu.name,
        quant=est.inputs.quant,
        memory_bytes=memory,
        usable_bytes=usable,
        verdict=est.verdict,
        max_context_tokens=est.max_context_tokens,
        decode_tokens_per_s=dec,
        time_to_first_token_s=ttft,
        gpu_layers=layers,
    )


def compare(model: Model, setups: list[list[GpuSpec]], quants: list[str | None], work: Workload, catalog: Catalog) -> Comparison:
    """``model`` on each GPU setup (one card or a split) at each precision (None: the default)."""
    if not setups:
        raise InputError("compare needs at least one --gpu.")
    rows = []
    ctx = 0
    for gpus in setups:
        for q in quants or [None]:
            est = estimate(model, gpus, work.with_(quant=q) if q else work, catalog)
            ctx = est.inputs.context_tokens
            rows.append(row_of(est))
    return Comparison(model=model.id, model_name=model.name, runtime=work.runtime, context_tokens=ctx, rows=rows)


#: Pairs ``gpus`` tries: two of the same desktop or workstation card (CUDA/ROCm layer split).
PAIR_CATEGORIES = ("consumer", "workstation")


def gpus_for(model: Model, catalog: Catalog, work: Workload, min_speed: float | None = None, pairs: bool = True) -> GpuChoice:
    """Every catalog GPU, and two of each desktop/workstation card, that runs ``model`` on the GPU
    (fits or tight) at ``work``'s precision and context, with speed; smallest usable memory first."""
    import math

    if min_speed is not None and (not math.isfinite(min_speed) or min_speed <= 0):
        raise InputError("--min-speed must be a positive number of tokens per second.")
    setups: list[list[GpuSpec]] = []
    for g in catalog.entries("gpus"):
        setups.append([g])  # type: ignore[list-item]
        if pairs and g.category in PAIR_CATEGORIES:  # type: ignore[attr-defined]
            setups.append([g, g])  # type: ignore[list-item]
    rows: list[ViewRow] = []
    quant = work.quant or ""
    ctx = 0
    for gpus in setups:
        try:
            est = estimate(model, gpus, work, catalog)
        except VramcalcError:
            continue
        quant, ctx = est.inputs.quant, est.inputs.context_tokens
        if est.verdict not in ("fits", "tight"):
            continue
        r = row_of(est)
        if min_speed is not None and (r.decode_tokens_per_s is None or r.decode_tokens_per_s < min_speed):
            continue
        rows.append(r)
    rows.sort(key=lambda r: (r.usable_bytes, -(r.decode_tokens_per_s or 0.0), len(r.gpus), r.gpus))
    return GpuChoice(
        model=model.id,
        model_name=model.name,
        runtime=work.runtime,
        quant=quant,
        context_tokens=ctx,
        min_speed=min_speed,
        rows=rows,
        considered=len(setups),
        pairs="two of each " + " / ".join(PAIR_CATEGORIES) + " card" if pairs else "none",
    )


def context_curve(model: Model, gpus: list[GpuSpec], work: Workload, catalog: Catalog, est: Estimate, points: int = 24) -> ContextCurve:
    """Memory (all layers) at ``points`` text contexts from 512 tokens to the trained maximum (and the
    asked context), by ``estimate``'s own accounting."""
    from vramcalc import runtimes
    from vramcalc.estimate import account, model_parts

    parts = model_parts(model, catalog)
    llm = parts.llm
    if llm is None:
        raise InputError("--plot draws memory against context: it needs a model with a language model.")
    rt = runtimes.get(work.runtime)
    images = est.inputs.context_tokens - est.inputs.text_tokens
    top = max(llm.max_context - images, 1)
    lo = min(512, top)
    xs = sorted({max(1, round(lo * (top / lo) ** (k / (points - 1)))) for k in range(points)} | {est.inputs.text_tokens})
    fixed = None
    pts = []
    for text in xs:
        a = account(parts, gpus[0], work.with_(context_tokens=text), rt, fixed, catalog)
        fixed = fixed or a.weights
        pts.append(CurvePoint(context_tokens=text + images, memory_bytes=a.memory.total_bytes))
    from vramcalc.placement import devices_for

    usable = sum(devices_for(gpus, work).usable)  # as the verdict counts it: display on GPU 0, --reserve
    return ContextCurve(usable_bytes=usable, points=pts, max_context_tokens=est.max_context_tokens)
