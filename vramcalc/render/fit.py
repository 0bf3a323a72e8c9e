"""The ``fit`` table: every catalog model at the best precision that fits at a usable speed, most capable first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text

from vramcalc.render.table import Col, DroppedNote, FitTable
from vramcalc.render.views import verdict_label, verdict_words
from vramcalc.results import DEFAULT_TEXT_CONTEXT
from vramcalc.units import fmt_bytes, fmt_count

if TYPE_CHECKING:
    from vramcalc.fit import FitResult


#: rows shown by default (``--all`` for every row; the JSON always has all)
DEFAULT_ROWS = 15


def _date(released: str | None, basis: str | None) -> str:
    """The month fit dates a model by: '2025-04', '>=2025-04' for the not-before bound, '?' without one."""
    if released is None:
        return "?"
    return released if basis == "released" else f">={released}"


def _speed(tokens_per_s: float | None) -> str:
    """Decode tokens/s: one decimal below 10 (4.6 beside a 5 tok/s threshold is not '5'), else whole."""
    if tokens_per_s is None:
        return "-"
    return f"{tokens_per_s:.1f}" if tokens_per_s < 9.95 else f"{tokens_per_s:.0f}"


def _usable(r: FitResult) -> str:
    """The usable-speed threshold the rows were picked at: --min-speed, else USABLE_TOKENS_PER_S."""
    return f"{r.usable_tokens_per_s:g}"


def render_fit(r: FitResult, limit: int | None = DEFAULT_ROWS) -> Group:
    """The header line, one row per model (the first ``limit``), and how the rows were chosen.
    Columns that do not fit the width are dropped least important first; ids are never cut."""
    g = r.gpu
    ctx = f"{r.context_tokens or DEFAULT_TEXT_CONTEXT:,}"
    cards = g.name if len(r.gpus) <= 1 else f"{len(r.gpus)} x {g.name}" if len(set(r.gpus)) == 1 else " + ".join(r.gpus)
    usable = g.usable_bytes * max(1, len(r.gpus))
    mem = g.memory_bytes * max(1, len(r.gpus))
    head = Text.assemble(
        "What runs on ",
        (cards, "bold"),
        f" [{'+'.join(r.gpus) if r.gpus else g.id}]: {fmt_bytes(usable)} usable of {fmt_bytes(mem)}, ",
        f"{r.runtime}, context {ctx} text tokens" + (f", {r.images} image(s)" if r.images is not None else "") + ".",
    )
    cols = [
        Col("model"),
        Col("kind", drop=4),
        Col("params", "right", drop=3),
        Col("quant"),
        Col("memory", "right", drop=2, short="mem"),
        Col("free", "right", drop=6),
        Col("max ctx", "right", drop=5, short="ctx"),
        Col("tok/s", "right", drop=1),
        Col("date", "right", drop=7),
        Col("verdict"),
    ]
    rows = r.rows if limit is None else r.rows[:limit]
    body = []
    for row in rows:
        label, style = verdict_label(row.verdict, r.runtime)
        if row.verdict == "offload" and row.gpu_layers:
            label += f" {row.gpu_layers}"
        if row.verdict != "no" and (row.meets_min_speed is False or row.usable_speed is False):  # below the usable speed
            label += " (slow)"
        body.append(
            [
                row.model,
                row.kind,
                fmt_count(row.llm_params or row.params),
                row.quant,
                fmt_bytes(row.total_bytes, 1),
                fmt_bytes(row.headroom_bytes, 1),
                f"{row.max_context_tokens:,}" if row.max_context_tokens else "-",
                _speed(row.decode_tokens_per_s),
                _date(row.released, row.released_basis),
                Text(label, style=style),
            ]
        )
    table = FitTable(cols, body)
    parts: list = [head, table, DroppedNote(table)] if r.rows else [head, Text("No results found.")]
    if limit is not None and len(r.rows) > limit:
        parts.append(Text(f"... {len(r.rows) - limit} more (--all, --limit N, or --json for all).", style="dim"))
    parts.append(
        Text(
            f"Best quantization that fits and decodes at {_usable(r)} tok/s or more, from {' > '.join(r.precisions)}. Order: {r.ranking}.",
            style="dim",
        )
    )
    parts.append(
        Text(
            "date: release month from a named source (data/quality.yaml); >=: not older than the transformers release its "
            "config was written with (a lower bound); ? none. "
            "offload rows: the best precision still decoding at a usable speed, with layers on GPU/total. "
            f"(slow): no precision that runs reaches {_usable(r)} tok/s; the best that runs, ranked after the others.",
            style="dim",
        )
    )
    if verdict_words(r.runtime):  # a serving runtime (STARTS / DOES NOT START): its columns explained
        parts.append(
            Text(
                f"{r.runtime}: memory is per GPU, the whole share the server takes (total x its memory fraction); free: the "
                "KV pool left after one request of the context; max ctx: the longest request the pool holds.",
                style="dim",
            )
        )
    if r.hidden:
        parts.append(
            Text(
                f"Hidden: {len(r.hidden)} catalog entr{'y' if len(r.hidden) == 1 else 'ies'} "
                "(a VLM's language stack, or context below --min-ctx).",
                style="dim",
            )
        )
    if r.skipped:
        parts.append(
            Text(f"Skipped {len(r.skipped)} catalog entr{'y' if len(r.skipped) == 1 else 'ies'}: " + "; ".join(r.skipped[:3]), style="dim")
        )
    return Group(*parts)
