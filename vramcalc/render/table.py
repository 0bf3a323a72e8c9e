"""Tables that fit the terminal: every column has an importance; when the natural width does not
fit, headers are abbreviated, a flexible text column (a name) is shortened, and then the least
important columns are dropped, one by one. Ids are never truncated or wrapped; a dropped column is
named in a footnote so nothing disappears silently."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

#: the gap rich puts between two columns of a box-less table with padding (0, 1)
GAP = 2


@dataclass(frozen=True)
class Col:
    """One column: its header, an abbreviated header, its importance (0: never dropped; higher
    numbers are dropped first) and whether its text may be shortened with '…' (names, not ids)."""

    header: str
    justify: Literal["left", "right", "center"] = "left"
    drop: int = 0
    short: str | None = None
    flexible: int = 0  # > 0: may shrink to this many cells (ellipsis)
    style: str | None = None


def _cell_len(x: Any) -> int:
    if isinstance(x, Text):
        return x.cell_len
    return Text(str(x)).cell_len


class FitTable:
    """A rich renderable: ``cols`` and ``rows`` (str or Text cells) laid out for the width it is
    rendered at (``options.max_width``)."""

    def __init__(self, cols: Sequence[Col], rows: Sequence[Sequence[Any]], header_style: str = "bold") -> None:
        self.cols = list(cols)
        self.rows = [list(r) for r in rows]
        self.header_style = header_style
        self.dropped: list[str] = []

    def layout(self, width: int) -> tuple[list[int], list[str], list[int]]:
        """(kept column indexes, their headers, their widths) for ``width`` cells."""
        keep = list(range(len(self.cols)))
        headers = [c.header for c in self.cols]
        natural = [max([_cell_len(c.header)] + [_cell_len(r[i]) for r in self.rows]) for i, c in enumerate(self.cols)]
        widths = list(natural)

        def total() -> int:
            return sum(widths[i] for i in keep) + GAP * (len(keep) - 1)

        if total() > width:  # abbreviate headers
            for i, c in enumerate(self.cols):
                if c.short:
                    headers[i] = c.short
                    widths[i] = max([_cell_len(c.short)] + [_cell_len(r[i]) for r in self.rows])
        for i, c in enumerate(self.cols):  # shorten flexible text
            if total() > width and c.flexible:
                widths[i] = max(c.flexible, widths[i] - (total() - width))
        droppable = sorted((i for i, c in enumerate(self.cols) if c.drop), key=lambda i: -self.cols[i].drop)
        while total() > width and droppable:
            keep.remove(droppable.pop(0))
        for i in keep:  # give flexible columns back what the drops freed
            if self.cols[i].flexible and total() < width:
                widths[i] = min(natural[i], widths[i] + width - total())
        self.dropped = [self.cols[i].header for i in range(len(self.cols)) if i not in keep]
        return keep, headers, widths

    def table(self, width: int) -> Table:
        keep, headers, widths = self.layout(width)
        t = Table(box=None, pad_edge=False, show_edge=False, header_style=self.header_style)
        for i in keep:
            c = self.cols[i]
            flex = bool(c.flexible)
            t.add_column(
                headers[i],
                justify=c.justify,
                no_wrap=True,
                overflow="ellipsis" if flex else "fold",
                style=c.style,
                min_width=widths[i] if not flex else None,
                max_width=widths[i] if flex else None,
            )
        for r in self.rows:
            t.add_row(*[r[i] for i in keep])
        return t

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)

    def lines(self, width: int) -> Iterator[str]:  # for tests
        c = Console(width=width, record=True, color_system=None)
        c.print(self.table(width))
        yield from c.export_text().splitlines()


class DroppedNote:
    """'Not shown at this width: ...' after a FitTable, when it dropped columns."""

    def __init__(self, table: FitTable, hint: str = "widen the terminal or use --wide/--json") -> None:
        self.t = table
        self.hint = hint

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        self.t.layout(options.max_width)
        if self.t.dropped:
            yield Text(f"Not shown at this width: {', '.join(self.t.dropped)} ({self.hint}).", style="dim")


def shell_words(line: str) -> list[str]:
    """A shell line's words as written: spaces inside quotes or a ``<placeholder>`` do not split."""
    words: list[str] = []
    cur = ""
    quote = ""
    for ch in line:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"<":
            quote = ">" if ch == "<" else ch
            cur += ch
        elif ch == " ":
            if cur:
                words.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def command_lines(line: str, lead: int, width: int = 80) -> list[str]:
    """``line`` broken at words into shell lines of at most ``width`` columns (the first after ``lead``
    columns of label), each but the last ending in a continuation backslash, so that a copy of the
    wrapped command (a terminal, a pipe, a log) still runs. A flag stays with its value; a word longer
    than a line gets a line of its own."""
    words = shell_words(line)
    groups: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("-") and i + 1 < len(words) and not words[i + 1].startswith("-"):
            w = f"{w} {words[i + 1]}"
            i += 1
        groups.append(w)
        i += 1
    out: list[str] = []
    cur = ""
    room = width - lead
    for g in groups:
        if cur and len(cur) + 1 + len(g) + 2 > room:
            out.append(cur + " \\")
            cur, room = "  " + g, width
        else:
            cur = f"{cur} {g}" if cur else g
    out.append(cur)
    return out
