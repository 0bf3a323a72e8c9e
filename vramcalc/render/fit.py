"""The ``fit`` table: every catalog model at the best precision that fits, most capable first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from vramcalc.render.estimate import VERDICT_TEXT
from vramcalc.results import DEFAULT_TEXT_CONTEXT
from vramcalc.units import fmt_bytes, fmt_count

if TYPE_CHECKING:
    from vramcalc.fit import FitResult


def render_fit(r: FitResult, limit: int | None = None) -> Group:
    """The header line, one row per model (the first ``limit``), and how the rows were chosen."""
    g = r.gpu
    ctx = f"{r.context_tokens or DEFAULT_TEXT_CONTEXT:,}"
    head = Text.assemble(
        "What runs on ",
        (g.name, "bold"),
        f" [{g.id}]: {fmt_bytes(g.usable_bytes)} usable of {fmt_bytes(g.memory_bytes)}, ",
        f"{r.runtime}, context {ctx} text tokens" + (f", {r.images} image(s)" if r.images is not None else "") + ".",
    )
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("model", no_wrap=True, overflow="ellipsis", min_width=12)
    for col, just in (
        ("kind", "left"),
        ("params", "right"),
        ("quant", "left"),
        ("memory", "right"),
        ("free", "right"),
        ("max ctx", "right"),
        ("tok/s", "right"),
        ("verdict", "left"),
    ):
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    rows = r.rows if limit is None else r.rows[:limit]
    for row in rows:
        label, style = VERDICT_TEXT[row.verdict]
        if row.meets_min_speed is False:
            label += " (slow)"
        table.add_row(
            row.model,
            row.kind,
            fmt_count(row.llm_params),
            row.quant,
            fmt_bytes(row.total_bytes, 1),
            fmt_bytes(row.headroom_bytes, 1),
            f"{row.max_context_tokens:,}" if row.max_context_tokens else "-",
            f"{row.decode_tokens_per_s:.0f}" if row.decode_tokens_per_s is not None else "-",
            Text(label, style=style),
        )
    parts: list = [head, table] if r.rows else [head, Text("No results found.")]
    if limit is not None and len(r.rows) > limit:
        parts.append(Text(f"... {len(r.rows) - limit} more (--limit, or --json for all).", style="dim"))
    parts.append(Text(f"Best quantization that fits, from {' > '.join(r.precisions)}. Order: {r.ranking}.", style="dim"))
    if r.skipped:
        parts.append(
            Text(f"Skipped {len(r.skipped)} catalog entr{'y' if len(r.skipped) == 1 else 'ies'}: " + "; ".join(r.skipped[:3]), style="dim")
        )
    return Group(*parts)
