"""'What can I run on this GPU?': every catalog model at the precision a person would run.

For each LLM and VLM of the catalog, ``fit()`` walks the precisions from the highest quality down
(llama.cpp: F16 > Q8_0 > Q6_K > Q5_K_M > Q4_K_M > IQ4_XS > Q3_K_M > Q2_K; transformers: the
checkpoint dtype > int8 > nf4) and keeps the first one that *fits* (at least the 1 GiB margin
llama.cpp's --fit keeps free; failing that, *tight*: fits with less margin) **and decodes at a
usable speed** (``min_speed``, else ``USABLE_TOKENS_PER_S``): a larger file that fits but decodes
below it is passed over for a smaller one (a 70B model on a 128 GB Mac: Q6_K at ~5.6 tok/s, not
Q8_0 at ~4). When no precision that fits reaches the usable speed, the best that fits, flagged
``usable_speed`` False and ranked after the rows that are usable. Failing all, the offload rule
below, verdict offload (llama.cpp) or no.

Only the weights change with the precision: the KV cache, compute buffers, vision encoder and
runtime overhead do not. So each model is estimated once for those parts, the weights of every
precision are summed tensor by tensor (shared between a VLM and its LLM), and the full estimate
(largest context, speed) runs once, at the chosen precision. The result equals ``estimate()``
at that precision (a test checks it).

Ranking, "what a person would pick" (``sort="quality"``, the default):
0. rows at a usable decode speed before those below it (``usable_speed`` False: no precision that
   runs reaches it; unknown speed counts as usable);
1. models that run on the GPU (fits or tight) before those that do not (offload, no);
2. with ``min_speed``, those meeting it first;
3. the precision's quality tier: 4 bits and up (F16 .. IQ4_XS; transformers: all) before 3-bit
   (Q3_K_M) before 2-bit (Q2_K). llama.cpp's own quantize table (tools/quantize/quantize.cpp
   QUANT_OPTIONS, Llama-3-8B perplexity increase; recalled, not re-checked here) puts Q4_K_M at
   about +0.18, Q3_K_M at +0.66 and Q2_K at +3.5: below 4 bits quality drops fast, so a bigger
   model squeezed into 2-3 bits is not ranked above a smaller one at 4+ bits;
4. the model's quality score, higher first: ``quality_score`` = log2(size in billions: the
   LLM's parameters; a mixture of experts sqrt(total x active), a chosen middle) + years from
   2023-01 to its date: one year newer counts as twice the parameters (``YEARS_PER_DOUBLING``,
   a chosen trade-off, not a measurement). The date is the release month from a named source in
   ``data/quality.yaml`` (``released``: a date stamp in the model's repo ids, or its own paper's
   arXiv id), else the labelled fallback ``not_before`` (the model cannot predate the
   transformers release its published config.json was written with, dated by PyPI; a lower
   bound). A model with neither comes after the dated ones (rule and sources:
   benchmarks/quality/generate.py). Models are grouped in quality tiers, the whole part of the
   score (one tier per doubling of the size-equivalent), higher tier first: the issue's "a quality
   tier per model, then speed" (a 122B-A10B MoE at 36 tok/s is not ranked below a dense 72B at
   5 tok/s whose score differs by 0.05);
5. within a tier, a faster speed class first: the whole part of log2(decode tok/s), one class per
   doubling (so 27 and 29 tok/s are one class and the score decides between them);
6. then the higher score; more LLM parameters; faster decode; a higher-quality precision; the id.
``sort="speed"`` and ``sort="context"`` order the models that run by decode speed or largest
context instead (after 0-2). Catalog entries that are only a VLM's language stack (``component`` in
data/quality.yaml) are left out (``hidden``).

A model that does not fit at any precision shows the best precision, from the runtime's default
(the download people pick, Q4_K_M) down, whose decode still reaches a usable speed (``min_speed``,
or ``USABLE_TOKENS_PER_S``) with layers offloaded to system RAM; the smallest only when none does.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from vramcalc import runtimes
from vramcalc.errors import InputError, VramcalcError
from vramcalc.estimate import Parts, account, estimate, model_parts
from vramcalc.jsonable import Jsonable, doc, result
from vramcalc.params import encoder_tensors
from vramcalc.placement import devices_for, gpu_info, verdict_for
from vramcalc.quant import WeightBytes
from vramcalc.results import DEFAULT_TEXT_CONTEXT, Estimate, FixedWeights, GpuInfo, Verdict, Workload
from vramcalc.schema import GpuSpec, LlmSpec, VisionEncoderSpec, VlmSpec

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.results import ServingOptions
    from vramcalc.runtimes import Runtime

#: Quality tier of each precision (0 best), see the ranking above.
QUALITY_TIER = {"Q3_K_M": 1, "Q2_K": 2}

RANKING = (
    "usable speed first; then runs on the GPU (fits/tight); then meets --min-speed; then 4+ bit precisions before Q3_K_M before Q2_K; "
    "then higher quality tier = whole part of the quality score, log2(LLM params in B; MoE: sqrt(total x active)) + years since "
    "2023-01 of its release month (data/quality.yaml; else the not-before bound from its config; undated last); within a tier, "
    "a faster speed class first (doublings of tok/s: 4-8, 8-16, 16-32 ...); then the higher score; then more params; then faster; "
    "then higher-quality precision; then id"
)
SORTS = {
    "quality": RANKING,
    "speed": "usable speed first; then runs on the GPU (fits/tight); then meets --min-speed; then faster decode; then the quality order",
    "context": "usable speed first; then runs on the GPU (fits/tight); then meets --min-speed; then larger context; then the quality order",
}
#: A decode speed a person can still use interactively: about reading pace. A chosen threshold
#: (not a measurement) for picking every row's precision (fitting or offloaded) when no
#: --min-speed is given, and for ranking rows below it last.
USABLE_TOKENS_PER_S = 5.0
#: Years of release date worth a doubling of the parameters in ``quality_score`` (a chosen
#: trade-off, not a measurement: a model a year newer ranks with one twice its size).
YEARS_PER_DOUBLING = 1.0
#: The origin of the date term of ``quality_score``: a chosen month (not a measurement). With tiers the
#: whole part of the score, it sets where the tier boundaries fall (the ranking text names it).
SCORE_EPOCH = (2023, 1)


def usable_tokens_per_s(min_speed: float | None) -> float:
    """The decode speed rows are picked at: ``min_speed`` (--min-speed), else USABLE_TOKENS_PER_S."""
    return USABLE_TOKENS_PER_S if min_speed is None else min_speed


def _month(value: object, where: str) -> str | None:
    import re

    from vramcalc.errors import CatalogError

    if value is None:
        return None
    text = str(value)
    m = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise CatalogError(f"{where}: expected a month 'YYYY-MM', got {text!r}")
    return text


@result
class Quality(Jsonable):
    """One model's entry of data/quality.yaml (written by benchmarks/quality/generate.py)."""

    released: str | None = doc("Month of release 'YYYY-MM', from a named source.", default=None)
    released_source: str | None = doc("Where the release month was read.", default=None)
    config_transformers: str | None = doc("transformers version its published config.json was written with.", default=None)
    source: str | None = doc("Where that version was read.", default=None)
    not_before: str | None = doc("Fallback: the model is not older than this month (a lower bound from its config).", default=None)
    not_before_basis: str | None = doc("How not_before was dated.", default=None)
    component: bool = doc("Only a VLM's language stack: fit leaves it out.", default=False)
    component_of: str | None = doc("The VLM it belongs to.", default=None)

    @property
    def date(self) -> str | None:
        """The month fit ranks by: the release month, else the fallback lower bound."""
        return self.released or self.not_before

    @property
    def basis(self) -> Literal["released", "not_before"] | None:
        return "released" if self.released else "not_before" if self.not_before else None


def quality_score(params: int, date: str | None) -> float | None:
    """log2(parameters in billions) + years from SCORE_EPOCH to ``date`` / YEARS_PER_DOUBLING (None: no date)."""
    if date is None or params <= 0:
        return None
    year, month = (int(x) for x in date.split("-"))
    years = (year - SCORE_EPOCH[0]) + (month - SCORE_EPOCH[1]) / 12
    return round(math.log2(params / 1e9) + years / YEARS_PER_DOUBLING, 3)


def load_quality(path: object = None) -> dict[str, Quality]:
    """data/quality.yaml, typed; unknown fields or a malformed file are a CatalogError."""
    from pathlib import Path

    from vramcalc.catalog import builtin_catalog_dir
    from vramcalc.errors import CatalogError

    p = Path(str(path)) if path is not None else builtin_catalog_dir() / "quality.yaml"

    def parse() -> object:
        import yaml

        try:
            return yaml.load(p.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise CatalogError(f"{p}: {e}") from None

    if path is None:  # the built-in file is part of the derived cache's code tag: its parse is kept there
        from vramcalc import diskmemo

        data = diskmemo.cached("quality.yaml", (), parse)
    else:
        data = parse()
    if not isinstance(data, dict):
        raise CatalogError(f"{p}: expected a mapping of catalog ids")
    out: dict[str, Quality] = {}
    fields = {f.name for f in dataclasses.fields(Quality)}
    texts = fields - {"component"}
    for eid, rec in data.items():
        where = f"{p} -> {eid}"
        if not isinstance(rec, dict) or set(rec) - fields:
            raise CatalogError(f"{where}: expected a mapping with {sorted(fields)}")
        comp = rec.get("component", False)
        if not isinstance(comp, bool) or any(rec.get(k) is not None and not isinstance(rec[k], str) for k in texts):
            raise CatalogError(f"{where}: component must be true/false, every other field a string")
        for value, needs, what in (
            ("released", "released_source", "a release month needs its source"),
            ("config_transformers", "source", "config_transformers needs its source"),
            ("not_before", "config_transformers", "not_before needs the config version it rests on"),
            ("not_before", "not_before_basis", "not_before needs its basis"),
        ):
            if rec.get(value) is not None and not rec.get(needs):
                raise CatalogError(f"{where}: {what}")
        out[str(eid)] = Quality(
            released=_month(rec.get("released"), where),
            released_source=rec.get("released_source"),
            config_transformers=rec.get("config_transformers"),
            source=rec.get("source"),
            not_before=_month(rec.get("not_before"), where),
            not_before_basis=rec.get("not_before_basis"),
            component=comp,
            component_of=rec.get("component_of"),
        )
    return out


@result
class FitRow(Jsonable):
    """One catalog model at the best precision that fits and decodes at a usable speed."""

    model: str = doc("Catalog id.")
    name: str = doc("The model's name.")
    kind: Literal["llm", "vlm", "encoder"] = doc("llm | vlm | encoder (a vision encoder alone, at its default precision).")
    llm_params: int = doc("Parameters of the language model (all experts of an MoE).")
    params: int = doc("All parameters (LLM + vision encoder + projector).")
    quant: str = doc(
        "The best precision that fits and decodes at the usable speed (else the best that fits; with offload the "
        "best still usable, else the smallest tried)."
    )
    total_bytes: int = doc("GPU memory needed at the requested context.")
    headroom_bytes: int = doc("Usable GPU memory minus total_bytes (negative: short by this much; llama.cpp offloads layers to the CPU).")
    max_context_tokens: int | None = doc("Largest context per sequence that fits at this precision.")
    verdict: Verdict = doc("fits | tight | offload | no.")
    decode_tokens_per_s: float | None = doc("Expected decode speed, where the speed model gives one.", default=None)
    meets_min_speed: bool | None = doc("None when no --min-speed was given or no speed is known.", default=None)
    released: str | None = doc(
        "The month the ranking dates the model by (data/quality.yaml): its release month, or with released_basis "
        "'not_before' a lower bound from its config; None: no date.",
        default=None,
    )
    released_basis: Literal["released", "not_before"] | None = doc("How 'released' was found.", default=None)
    quality_score: float | None = doc(
        "log2(size in billions) + years from 2023-01 to 'released' (the quality order; None: no date). Size: the LLM's "
        "parameters; a mixture-of-experts model sqrt(total x llm_active_params).",
        default=None,
    )
    llm_active_params: int | None = doc("Mixture of experts: LLM parameters read per token (None: dense).", default=None)
    gpu_layers: str | None = doc("With offload: layers on the GPU as 'on GPU/total'.", default=None)
    usable_speed: bool | None = doc(
        "Decodes at a usable speed: at least --min-speed, else USABLE_TOKENS_PER_S (5 tok/s). False: no precision "
        "that runs reaches it (the table marks it '(slow)'; ranked after the rows that do), or verdict no; None: no "
        "speed known.",
        default=None,
    )


@result
class FitResult(Jsonable):
    """``vramcalc fit``: the catalog ranked for one GPU and workload."""

    gpu: GpuInfo = doc("The GPU.")
    runtime: str = doc("Runtime plugin name.")
    context_tokens: int | None = doc("Text tokens per sequence asked for (None: the estimate default, 4096).")
    images: int | None = doc("Images per sequence for VLMs (None: 1).")
    kind: Literal["llm", "vlm", "encoder", "all"] = doc("Which models.")
    min_speed: float | None = doc("Minimum decode tokens/s asked for.")
    precisions: list[str] = doc("Precisions tried, best quality first.")
    rows: list[FitRow] = doc("One row per model, sorted by ``ranking``.")
    skipped: list[str] = doc("Catalog entries left out, with the reason.", default_factory=list)
    ranking: str = doc("How rows are sorted.", default=RANKING)
    hidden: list[str] = doc(
        "Catalog entries left out on purpose (a VLM's language stack; trained context below --min-ctx).", default_factory=list
    )
    sort: Literal["quality", "speed", "context"] = doc("The --sort order.", default="quality")
    min_context_tokens: int | None = doc("--min-ctx: only models whose context reaches this.", default=None)
    gpus: list[str] = doc("Every GPU of a split (ids, main first).", default_factory=list)
    usable_tokens_per_s: float = doc(
        "The usable decode speed rows are picked at: --min-speed, else USABLE_TOKENS_PER_S (a chosen threshold).",
        default=USABLE_TOKENS_PER_S,
    )


def decode_speed(est: Estimate) -> float | None:
    """Decode tokens/s from an Estimate, if the speed model filled it in."""
    fig = est.throughput.decode_tokens_per_s if est.throughput is not None else None
    return fig.value if fig is not None else None


def fit(
    gpu: GpuSpec | list[GpuSpec],
    catalog: Catalog,
    ctx: int | None = None,
    images: int | None = None,
    kind: Literal["llm", "vlm", "encoder", "all"] = "all",
    min_speed: float | None = None,
    runtime: str = "llama.cpp",
    headless: bool = False,
    sort: Literal["quality", "speed", "context"] = "quality",
    min_ctx: int | None = None,
    quality: dict[str, Quality] | None = None,
    n_gpus: int = 1,
    serving: ServingOptions | None = None,
    ram_bytes: int | None = None,
) -> FitResult:
    """Every catalog LLM/VLM at the best precision that fits ``gpu`` at a usable speed, most capable first.

    Args:
        gpu: the GPU.
        catalog: a loaded ``Catalog``.
        ctx: text tokens per sequence (None: 4096).
        images: images per sequence for VLMs (None: 1).
        kind: 'llm', 'vlm' or 'all'.
        min_speed: the usable speed, tokens/s (None: USABLE_TOKENS_PER_S): a row takes the best precision
            reaching it (when known); rows that cannot are flagged and ranked last.
        runtime: 'llama.cpp' (GGUF quantizations) or 'transformers'.
        headless: the GPU drives no display.
        sort: 'quality' (the ranking above), 'speed' or 'context'.
        min_ctx: only models whose trained context reaches this; the context asked for is at least this.
        quality: data/quality.yaml (loaded when None).
        n_gpus: GPUs of this kind (a serving runtime shards over them: tensor parallelism).
        serving: serving-runtime settings (runtimes with their own accounting, ``estimate_own``).
        ram_bytes: system RAM: MoE expert offload may then use a precision above the default.

    Returns:
        FitResult with one row per model, sorted as described in the module docstring.
    """
    if min_speed is not None and (not math.isfinite(min_speed) or min_speed <= 0):
        raise InputError("--min-speed must be a positive number of tokens per second.")
    if sort not in SORTS:
        raise InputError(f"--sort must be one of {', '.join(SORTS)}, got '{sort}'.")
    gpus = list(gpu) if isinstance(gpu, (list, tuple)) else [gpu]
    if not gpus:
        raise InputError("fit needs a GPU.")
    qual = load_quality() if quality is None else quality
    rt = runtimes.get(runtime)
    own = getattr(rt, "estimate_own", None) is not None  # a runtime with its own accounting (runtimes/serving.py)
    all_ids = [g.id for g in gpus]
    if own and len(gpus) > 1:  # 2xh100: a serving runtime shards over them (tensor parallelism)
        n_gpus, gpus = max(n_gpus, len(gpus)), gpus[:1]
    elif own and n_gpus > 1:
        all_ids = all_ids[:1] * n_gpus
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
    hidden: list[str] = []
    if min_ctx is not None and ctx is not None and ctx < min_ctx:
        ctx = min_ctx
    base_work = Workload(
        runtime=runtime, context_tokens=ctx or min_ctx, images=images, headless=headless, serving=serving, ram_bytes=ram_bytes
    )
    ginfo = None
    order: list[str] = []
    for k in kinds:
        for eid in catalog.ids(k):
            q = qual.get(eid, Quality())
            if q.component:
                hidden.append(f"{eid}: the language stack of {q.component_of or 'a VLM'}")
                continue
            try:
                if k == "encoders":
                    rows.append(_with_quality(_encoder_row(catalog.get(k, eid), gpus, catalog, base_work), q))  # type: ignore[arg-type]
                    continue
                spec = catalog.get(k, eid)
                assert isinstance(spec, (LlmSpec, VlmSpec))
                if min_ctx is not None:
                    trained = model_parts(spec, catalog).llm
                    if trained is not None and trained.max_context < min_ctx:
                        hidden.append(f"{eid}: trained context {trained.max_context:,} < {min_ctx:,}")
                        continue
                if own:
                    row, info, order_k = _fit_own(spec, [gpus[0]] * n_gpus, catalog, base_work, rt, min_speed)
                else:
                    row, info, order_k = _fit_one_cached(spec, gpus, catalog, base_work, rt, min_speed, weights_cache)
            except VramcalcError as e:  # an entry that does not validate or names a missing part: listed, not fatal
                skipped.append(f"{eid}: {str(e).splitlines()[0]}")
                continue
            rows.append(_with_quality(row, q, spec, catalog))
            ginfo = ginfo or info
            order = order or order_k
    if ginfo is None:
        ginfo = gpu_info(gpus[0], headless)
    rows.sort(key=lambda r: _rank(r, order, sort))
    return FitResult(
        gpu=ginfo,
        runtime=runtime,
        context_tokens=ctx or min_ctx,
        images=images,
        kind=kind,
        min_speed=min_speed,
        precisions=order or rt.precision_label(),
        rows=rows,
        skipped=skipped,
        ranking=SORTS[sort],
        hidden=hidden,
        sort=sort,
        min_context_tokens=min_ctx,
        gpus=all_ids,
        usable_tokens_per_s=usable_tokens_per_s(min_speed),
    )


def make_row(
    spec: LlmSpec | VlmSpec | VisionEncoderSpec,
    quant: str,
    est: Estimate,
    n_gpus: int,
    speed: float | None = None,
    meets: bool | None = None,
    gpu_layers: str | None = None,
    own_accounting: bool = False,
    usable_speed: float | None = None,
) -> FitRow:
    """The one way a FitRow is built from an estimate (LLM/VLM at its chosen precision, an encoder
    alone, a serving runtime's own answer); the quality fields are added by ``_with_quality``.
    Headroom: usable minus total on one GPU; a split's (or a serving runtime's) own headroom.
    ``usable_speed``: the tokens/s threshold the row's ``usable_speed`` flag is judged against."""
    kind: Literal["llm", "vlm", "encoder"] = (
        "vlm" if isinstance(spec, VlmSpec) else "encoder" if isinstance(spec, VisionEncoderSpec) else "llm"
    )
    single = n_gpus == 1 and not own_accounting
    return FitRow(
        model=spec.id,
        name=spec.name,
        kind=kind,
        llm_params=0 if kind == "encoder" else est.params.llm,
        params=est.params.total,
        quant=quant,
        total_bytes=est.memory.total_bytes,
        headroom_bytes=est.gpu.usable_bytes - est.memory.total_bytes if single else est.headroom_bytes,
        max_context_tokens=None if kind == "encoder" else est.max_context_tokens,
        decode_tokens_per_s=speed,
        verdict=est.verdict,
        meets_min_speed=meets,
        gpu_layers=gpu_layers,
        usable_speed=None if usable_speed is None else False if est.verdict == "no" else None if speed is None else speed >= usable_speed,
    )


def _with_quality(row: FitRow, q: Quality, spec: object = None, catalog: Catalog | None = None) -> FitRow:
    """The row with its date and quality score from data/quality.yaml (outside the row cache). A
    mixture-of-experts model is sized sqrt(total x active): a chosen middle, since it is neither as
    capable as a dense model of its total size nor as weak as one of its active size."""
    from vramcalc.params import llm_active_params

    active = None
    llm = model_parts(spec, catalog).llm if isinstance(spec, (LlmSpec, VlmSpec)) and catalog is not None else None
    if llm is not None and llm.moe is not None:
        from vramcalc import diskmemo

        active = diskmemo.cached("active params", (repr(llm),), lambda: llm_active_params(llm))
    size = row.llm_params or row.params
    if active:
        size = int(math.sqrt(size * active))
    return dataclasses.replace(
        row, released=q.date, released_basis=q.basis, quality_score=quality_score(size, q.date), llm_active_params=active
    )


def _rank(r: FitRow, order: list[str], sort: str = "quality") -> tuple:
    runs = r.verdict in ("fits", "tight")
    q = order.index(r.quant) if r.quant in order else len(order)
    speed = -(r.decode_tokens_per_s or 0.0)
    score = r.quality_score
    tier = -math.floor(score) if score is not None else 0  # one tier per doubling of the size-equivalent
    sp = r.decode_tokens_per_s
    speed_class = -math.floor(math.log2(sp)) if sp and sp > 0 else 0  # one class per doubling of tok/s
    params = -(r.llm_params or r.params)
    quality = (QUALITY_TIER.get(r.quant, 0), score is None, tier, speed_class, -(score or 0.0), params, speed, q, r.model)
    first = (r.usable_speed is False, not runs, r.meets_min_speed is False)
    if sort == "speed":
        return (*first, speed, *quality)
    if sort == "context":
        return (*first, -(r.max_context_tokens or 0), *quality)
    return (*first, *quality)


def _fit_one_cached(
    spec: LlmSpec | VlmSpec,
    gpus: list[GpuSpec],
    catalog: Catalog,
    work: Workload,
    rt: Runtime,
    min_speed: float | None,
    cache: dict[tuple[str, str], WeightBytes],
) -> tuple[FitRow, GpuInfo, list[str]]:
    """``_fit_one``, kept in the derived-value cache (vramcalc.diskmemo) for a built-in runtime: keyed on
    the ``repr`` of everything the row is computed from (the model and its parts, the GPUs, the
    workload, the runtime and --min-speed; the cache's file name carries a hash of the code and the
    calibration data), so a second ``fit`` reuses the rows and a changed input is a new key."""
    if not type(rt).__module__.startswith("vramcalc."):  # a plugin's code is not in the cache key
        return _fit_one(spec, gpus, catalog, work, rt, min_speed, cache)
    from vramcalc import diskmemo

    parts = model_parts(spec, catalog)
    key = (
        repr(spec),
        repr(parts.llm),
        repr(parts.encoder),
        repr(parts.projector),
        repr(gpus),
        repr(work),
        rt.name,
        min_speed,
        ("usable tok/s", USABLE_TOKENS_PER_S),
    )

    def encode(value: tuple[FitRow, GpuInfo, list[str]]) -> list[object]:
        row, info, order = value
        return [[getattr(row, f.name) for f in dataclasses.fields(row)], [getattr(info, f.name) for f in dataclasses.fields(info)], order]

    def decode(value: Any) -> tuple[FitRow, GpuInfo, list[str]]:
        row, info, order = value
        return FitRow(*row), GpuInfo(*info), [str(x) for x in order]

    out: tuple[FitRow, GpuInfo, list[str]] = diskmemo.cached(
        "fit row", key, lambda: _fit_one(spec, gpus, catalog, work, rt, min_speed, cache), encode, decode
    )
    return out


def _fit_one(
    spec: LlmSpec | VlmSpec,
    gpus: list[GpuSpec],
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
    gpu = gpus[0]
    base = account(parts, gpu, work.with_(quant=first), rt, fixed(first), catalog)
    rest = base.memory.total_bytes - on_device(weights(first))
    usable = sum(devices_for(gpus, work).usable)  # as the verdict counts it: display on GPU 0, --reserve
    floor = rt.weight_floor(llm)

    def runs_on_gpu() -> Iterator[str]:
        """The precisions that fit, best first, then those that are tight; the weights of lower
        precisions are summed only while needed."""
        tight: list[str] = []
        for q in order:
            if floor is not None and usable - rest - floor(q) < 0:
                continue  # cannot fit even at the file type's base bit width: skip the exact sum
            v = verdict_for(usable - rest - on_device(weights(q)), rt)
            if v == "fits":
                yield q
            elif v == "tight":
                tight.append(q)
        yield from tight

    # a split's placement is decided by estimate(): the sum above only orders the candidates
    on_gpu = runs_on_gpu()
    top = next(on_gpu, None)
    expert: list[str] = []
    if top is None or QUALITY_TIER.get(top, 0) > 0:  # none, or only below 4 bits: MoE experts in RAM first
        expert = _expert_offload(spec, gpus, catalog, work, rt, llm, order, fixed)
    candidates = itertools.chain(expert, [top] if top is not None else [], on_gpu)  # then the sub-4-bit ones that fit

    # the best precision that runs at a usable speed; if none does, the best that runs (flagged)
    usable_speed = usable_tokens_per_s(min_speed)
    chosen = slow = None
    for q in candidates:
        est = estimate(spec, gpus, work.with_(quant=q), catalog, fixed(q), with_suggestions=False)
        speed = decode_speed(est)
        offloaded = est.verdict not in ("fits", "tight")
        if offloaded and (q not in expert or speed is None or speed < usable_speed):
            continue  # expert offload (every layer on the GPU) only at a usable speed
        meets = None if min_speed is None or speed is None else speed >= min_speed
        if speed is None or speed >= usable_speed:
            chosen = (q, est, speed, meets)
            break
        slow = slow or (q, est, speed, meets)
    chosen = chosen or slow
    if chosen is None:  # it does not run on the GPU: the best precision that still runs at a usable speed
        # from the precision people download (the runtime's default) down: a higher one offloaded
        # needs its whole weights in system RAM for the same speed
        default = rt.normalize_precision(rt.default_precision(spec, llm))
        start = order.index(default) if default in order else 0
        for q in order[start:]:
            est = estimate(spec, gpus, work.with_(quant=q), catalog, fixed(q), with_suggestions=False)
            speed = decode_speed(est)
            meets = None if min_speed is None or speed is None else speed >= min_speed
            chosen = (q, est, speed, meets)
            if est.verdict != "no" and speed is not None and speed >= usable_speed:
                break
    assert chosen is not None
    q, est, speed, meets = chosen
    off = est.offload
    layers = f"{off.gpu_layers}/{off.total_layers}" if off is not None and off.mode != "full" else None
    row = make_row(spec, q, est, len(gpus), speed, meets, gpu_layers=layers, usable_speed=usable_speed)
    return row, est.gpu, order


def _encoder_row(spec: VisionEncoderSpec, gpus: list[GpuSpec], catalog: Catalog, work: Workload) -> FitRow:
    """A vision encoder alone (image embedding) at the runtime's default precision: memory and verdict."""
    est = estimate(spec, gpus, work.with_(context_tokens=None, images=None), catalog)
    return make_row(spec, est.inputs.quant, est, len(gpus))


def _expert_offload(
    spec: LlmSpec | VlmSpec,
    gpu: GpuSpec | list[GpuSpec],
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
        est = estimate(spec, gpu, work.with_(quant=q), catalog, fixed(q), with_suggestions=False)
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
    """A runtime with its own accounting: the full estimate at each precision, best first, until one starts
    at a usable speed (--min-speed, else USABLE_TOKENS_PER_S); else the best one that starts; else the last."""
    parts = model_parts(spec, catalog)
    assert parts.llm is not None
    order = rt.precisions(parts.llm)
    usable_speed = usable_tokens_per_s(min_speed)
    chosen = None
    for q in order:
        est = estimate(spec, gpus, work.with_(quant=q), catalog)
        speed = decode_speed(est)
        meets = None if min_speed is None or speed is None else speed >= min_speed
        if chosen is None or (est.verdict in ("fits", "tight") and chosen[1].verdict not in ("fits", "tight")):
            chosen = (q, est, speed, meets)
        if est.verdict in ("fits", "tight") and (speed is None or speed >= usable_speed):
            chosen = (q, est, speed, meets)
            break
        chosen = chosen if chosen[1].verdict in ("fits", "tight") else (q, est, speed, meets)
    assert chosen is not None
    q, est, speed, meets = chosen
    row = make_row(spec, q, est, len(gpus), speed, meets, own_accounting=True, usable_speed=usable_speed)
    return row, est.gpu, order
