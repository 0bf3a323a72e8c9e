"""Tables of ``compare`` and ``gpus``, and the memory-against-context plot of ``check --plot``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.text import Text

from vramcalc.render.estimate import VERDICT_TEXT
from vramcalc.render.table import Col, DroppedNote, FitTable
from vramcalc.units import fmt_bytes

if TYPE_CHECKING:
    from vramcalc.views import Comparison, ContextCurve, GpuChoice, ViewRow


def _setup(r: ViewRow) -> str:
    ids = r.gpus
    if len(ids) > 1 and len(set(ids)) == 1:
        return f"{len(ids)}x{ids[0]}"
    return "+".join(ids)


def verdict_words(runtime: str) -> dict[str, str]:
    """The runtime plugin's own words for verdicts (``verdict_words``: a serving runtime's STARTS /
    DOES NOT START, the server's start check on its KV pool); {} for the others or an unknown name."""
    from vramcalc import runtimes
    from vramcalc.errors import InputError

    try:
        return dict(getattr(runtimes.get(runtime), "verdict_words", None) or {})
    except InputError:
        return {}


def verdict_label(verdict: str, runtime: str) -> tuple[str, str]:
    """The verdict word and style; a runtime's own words (``verdict_words``) where it has them."""
    label, style = VERDICT_TEXT[verdict]
    return verdict_words(runtime).get(verdict, label), style


def _cells(r: ViewRow, runtime: str = "") -> list[Any]:
    label, style = verdict_label(r.verdict, runtime)
    if r.gpu_layers and r.verdict == "offload":
        label += f" {r.gpu_layers}"
    return [
        fmt_bytes(r.memory_bytes, 1),
        fmt_bytes(r.usable_bytes, 1),
        Text(label, style=style),
        f"{r.max_context_tokens:,}" if r.max_context_tokens else "-",
        f"{r.decode_tokens_per_s:.1f}" if r.decode_tokens_per_s is not None else "-",
        f"{r.time_to_first_token_s:.2f} s" if r.time_to_first_token_s is not None else "-",
    ]


_COLS = [
    Col("memory", "right", short="mem"),
    Col("usable", "right", drop=3),
    Col("verdict"),
    Col("max ctx", "right", drop=2, short="ctx"),
    Col("tok/s", "right", drop=1),
    Col("1st token", "right", drop=4, short="TTFT"),
]
_FOOT = "tok/s: decode at the context asked; 1st token (TTFT): a 512-token question + images; '-': unknown, or it does not run."


def render_compare(c: Comparison) -> Group:
    head = Text.assemble((c.model_name, "bold"), f"  [{c.model}]  ·  {c.runtime}  ·  context {c.context_tokens:,} tokens")
    many_gpus = len({tuple(r.gpus) for r in c.rows}) > 1
    many_quants = len({r.quant for r in c.rows}) > 1 or not many_gpus
    cols = ([Col("GPU")] if many_gpus else []) + ([Col("quant")] if many_quants else []) + _COLS
    body = [([_setup(r)] if many_gpus else []) + ([r.quant] if many_quants else []) + _cells(r, c.runtime) for r in c.rows]
    table = FitTable(cols, body)
    parts: list[Any] = [head]
    if not many_gpus and c.rows:
        parts.append(Text(f"on {c.rows[0].gpu_name} [{_setup(c.rows[0])}]"))
    parts += [table, DroppedNote(table, "widen the terminal or use --json"), Text(_FOOT, style="dim")]
    return Group(*parts)


def render_gpus(g: GpuChoice, limit: int | None = None) -> Group:
    head = Text.assemble(
        "Cards that run ",
        (g.model_name, "bold"),
        f" [{g.model}] at {g.quant}, context {g.context_tokens:,} tokens ({g.runtime})"
        + (f", at least {g.min_speed:g} tok/s" if g.min_speed else "")
        + ":",
    )
    cols = [Col("GPU"), Col("name", drop=5, flexible=12), *_COLS]
    shown = g.rows if limit is None else g.rows[:limit]
    body = [[_setup(r), r.gpu_name if len(r.gpus) == 1 else f"{len(r.gpus)} x {r.gpu_name}", *_cells(r, g.runtime)] for r in shown]
    table = FitTable(cols, body)
    if not g.rows:
        return Group(head, Text("No card or pair in the catalog runs it on the GPU with these settings."))
    return Group(
        head,
        table,
        DroppedNote(table, "widen the terminal or use --json"),
        *([Text(f"... {len(g.rows) - len(shown)} more (--all, or --json).", style="dim")] if len(shown) < len(g.rows) else []),
        Text(f"{len(g.rows)} of {g.considered} cards and pairs ({g.pairs}); smallest usable memory first. " + _FOOT, style="dim"),
    )


class ContextPlot:
    """Total memory (all layers) as the context grows, one column per point, with the usable memory
    as a line of '─': where the bars cross it, the model stops fitting. Text only, so it reads
    without colour and in a log."""

    def __init__(self, curve: ContextCurve, height: int = 12) -> None:
        self.c = curve
        self.height = height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        c = self.c
        pts = c.points
        if not pts:
            return
        label_w = 11
        width = max(10, min(options.max_width - label_w - 1, 3 * len(pts)))
        step = max(1, width // len(pts))
        top = max(max(p.memory_bytes for p in pts), c.usable_bytes) * 1.05
        h = self.height
        line_row = round(c.usable_bytes / top * h)
        yield Text("Memory (all layers) as the context grows; ─ = usable on the GPU(s):", style="bold")
        for row in range(h, 0, -1):
            level = top * row / h
            if row == line_row:
                label = fmt_bytes(c.usable_bytes, 1).rjust(label_w - 1) + " "
            elif row in (h, 1):
                label = fmt_bytes(int(level), 0).rjust(label_w - 1) + " "
            else:
                label = " " * label_w
            t = Text(label)
            for p in pts:
                filled = p.memory_bytes / top * h >= row - 0.5
                over = p.memory_bytes > c.usable_bytes
                if row == line_row:
                    ch = "┼" if filled else "─"
                    t.append((ch * step), style="bold red" if filled and over else "bold")
                else:
                    t.append(("█" if filled else " ") * step, style="red" if filled and over else "bright_blue" if filled else "")
            yield t
        axis = Text(" " * label_w)
        marks = [pts[0], pts[len(pts) // 2], pts[-1]]
        first, mid, last = (f"{m.context_tokens:,}" for m in marks)
        span = step * len(pts)
        gap1 = max(1, span // 2 - len(first) - len(mid) // 2)
        gap2 = max(1, span - len(first) - gap1 - len(mid) - len(last))
        axis.append(first + " " * gap1 + mid + " " * gap2 + last)
        yield axis
        fits = f"largest context that fits: {c.max_context_tokens:,} tokens" if c.max_context_tokens else "no context fits"
        yield Text(" " * label_w + f"context tokens (log scale); usable {fmt_bytes(c.usable_bytes)}; {fits}", style="dim")
