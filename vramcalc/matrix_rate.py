"""An FP16 rate for a GPU whose catalog entry has none (laptop parts, a few small cards): a clearly
labelled estimate, so that prefill and time to first token still get a number.

The rule: the card's memory bandwidth x the FP16-TFLOPS-per-GB/s ratio of the catalog cards of the
same vendor, architecture and memory class that have a published FP16 rate (``fp16_tflops``). The
reference cards are those of the same category (laptop with laptop) where there are at least
``MIN_REFERENCES`` of them, else the consumer desktop cards of the architecture. The *median* ratio
is taken: a chip generation is built with a compute-to-bandwidth balance, and the median is the
central value of that balance, not swayed by one card with an odd memory configuration (the RTX 3060
8 GB's 128-bit bus makes its ratio 1.5x the 12 GB's). The spread of the ratios (max / median and
median / min) widens the speed band, so the band covers every reference card's balance.

Pure: the caller (estimate) passes the catalog's GPUs; speed.py never reads the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from vramcalc.jsonable import Jsonable, result
from vramcalc.speed import memory_class, nvidia_cc

if TYPE_CHECKING:  # pragma: no cover
    from vramcalc.schema import GpuSpec

#: Fewest same-category reference cards for their ratio to be used instead of the desktop cards': a
#: chosen threshold (a median of fewer than three is one card's balance), not a measurement.
MIN_REFERENCES = 3


@result
class RateEstimate(Jsonable):
    """An estimated FP16 (shader) rate and how it was made."""

    gpu: str
    fp16_tflops: float
    tflops_per_gbs: float  # the median ratio used
    spread_log: float  # ln of the larger of max/median and median/min ratio: added to the speed band
    references: tuple[str, ...]  # catalog ids of the reference cards
    basis: str  # one line for people


def needs_estimate(gpu: GpuSpec) -> bool:
    """True when the catalog gives no matrix rate the speed model could use, for a GPU whose kernels
    would have one (NVIDIA before Volta has no tensor cores: its dp4a/FP32 kernels are not this rule's)."""
    if gpu.fp16_tflops or gpu.fp16_tensor_tflops or gpu.bf16_tensor_tflops:
        return False
    if gpu.vendor == "nvidia":
        return nvidia_cc(gpu) >= 7.0
    return True


def estimate_fp16_rate(gpu: GpuSpec, catalog_gpus: Iterable[GpuSpec]) -> RateEstimate | None:
    """The labelled FP16 rate of ``gpu`` from the catalog cards like it (module docstring), or None
    when no card of its vendor, architecture and memory class has a published figure."""
    import statistics  # only for a card that needs the estimate (start-up time)

    if not needs_estimate(gpu):
        return None
    mc = memory_class(gpu)
    like = [
        g
        for g in catalog_gpus
        if g.id != gpu.id and g.fp16_tflops and g.vendor == gpu.vendor and g.architecture == gpu.architecture and memory_class(g) == mc
    ]
    same = [g for g in like if g.category == gpu.category]
    refs = same if len(same) >= MIN_REFERENCES else [g for g in like if g.category == "consumer"]
    if not refs:
        return None
    ratios = sorted(g.fp16_tflops / g.memory_bandwidth_gbs for g in refs)  # type: ignore[operator]
    med = statistics.median(ratios)
    spread = max(math.log(ratios[-1] / med), math.log(med / ratios[0]))
    kind = "laptop" if refs[0].category == "laptop" else "desktop"
    value = round(gpu.memory_bandwidth_gbs * med, 2)
    basis = (
        f"FP16 shader rate {value:g} TFLOPS = {gpu.memory_bandwidth_gbs:g} GB/s x the median FP16 TFLOPS per GB/s ({med:.4f}) "
        f"of {len(refs)} {gpu.architecture} {kind} cards in the catalog (the matrix peak follows from it)"
    )
    return RateEstimate(
        gpu=gpu.id,
        fp16_tflops=value,
        tflops_per_gbs=round(med, 5),
        spread_log=round(spread, 3),
        references=tuple(sorted(g.id for g in refs)),
        basis=basis,
    )


def with_estimated_rates(gpus: list[GpuSpec], catalog: object) -> tuple[list[GpuSpec], tuple[RateEstimate, ...]]:
    """``gpus`` with an estimated ``fp16_tflops`` filled in where the catalog has none (and the rule
    finds reference cards), and the estimates made. ``catalog`` is a vramcalc.catalog.Catalog."""
    import dataclasses

    if not any(needs_estimate(g) for g in gpus):
        return gpus, ()
    cat_gpus = [catalog.get("gpus", i) for i in catalog.ids("gpus")]  # type: ignore[attr-defined]
    out: list[GpuSpec] = []
    made: dict[str, RateEstimate] = {}
    for g in gpus:
        e = made.get(g.id) or estimate_fp16_rate(g, cat_gpus)
        if e is None:
            out.append(g)
            continue
        made[g.id] = e
        out.append(dataclasses.replace(g, fp16_tflops=e.fp16_tflops))
    return out, tuple(made.values())
