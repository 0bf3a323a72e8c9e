"""Catalog listings and single-entry views for `vramcalc list` and `vramcalc show`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramcalc.catalog import KIND_DIRS, normalize
from vramcalc.schema import LlmSpec, VisionEncoderSpec, VlmSpec, to_dict
from vramcalc.units import GiB

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog


def list_entries(
    cat: Catalog,
    kind: str,
    query: str | None = None,
    vendor: str | None = None,
    min_memory_gib: float | None = None,
    family: str | None = None,
) -> dict[str, Any]:
    """Entries of one kind, filtered, with derived parameter counts for models.

    Returns ``{"kind", "count", "catalog_counts", "items"}``; each item is the entry's fields
    (plus ``params`` for models), the same rows the table shows.
    """
    from vramcalc.params import count_params

    q = normalize(query) if query else None
    items = []
    for eid in cat.ids(kind):
        raw = cat.raw[kind][eid]
        if q and not any(q in normalize(n) for n in [eid, raw.name, *raw.aliases]):
            continue
        e = cat.get(kind, eid)
        if vendor and getattr(e, "vendor", None) != vendor.lower():
            continue
        if min_memory_gib is not None and getattr(e, "memory_bytes", 0) < min_memory_gib * GiB:
            continue
        if family and normalize(str(getattr(e, "family", ""))) != normalize(family):
            continue
        row = to_dict(e, exclude_none=True)
        if isinstance(e, (LlmSpec, VlmSpec, VisionEncoderSpec)):
            row["params"] = count_params(e, cat).total
        items.append(row)
    counts = {k: len(cat.raw[k]) for k in KIND_DIRS}
    return {"kind": kind, "count": len(items), "catalog_counts": counts, "items": items}


def describe(cat: Catalog, query: str) -> dict[str, Any]:
    """One entry (any kind) with derived parameter counts; a VLM also shows its parts."""
    from vramcalc.params import count_params

    e = cat.resolve_any(query)
    data = to_dict(e, exclude_none=True)
    if isinstance(e, (LlmSpec, VlmSpec, VisionEncoderSpec)):
        pc = count_params(e, cat)
        data["derived_params"] = {"llm": pc.llm, "vision": pc.vision, "projector": pc.projector, "total": pc.total}
    return data
