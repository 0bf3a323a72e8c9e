"""Where every command's output goes: ``print_json`` (the one place that turns a result into JSON)
and the rich consoles the tables are printed on."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from vramcalc.jsonable import Jsonable

if TYPE_CHECKING:
    from rich.console import Console


def to_jsonable(obj: Any) -> Any:
    """The JSON value of a result: a result dataclass (``to_json()``), or plain dicts and lists as they are."""
    if isinstance(obj, Jsonable):
        return obj.to_json()
    return obj


def print_json(obj: Any) -> None:
    """Print a result as ``--json`` shows it: indented JSON on stdout. Commands pass the result object
    itself (not a dict) where they have one."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2) + "\n")


#: Width of tables printed to a pipe or file (no terminal to measure): sensible for a log or a
#: pager, and the same on every machine. --wide lifts it; COLUMNS overrides both.
PIPE_WIDTH = 120
#: --wide: wide enough that no table drops or wraps a column.
WIDE_WIDTH = 400


def console(*, soft_wrap: bool = False, markup: bool = True, wide: bool = False) -> Console:
    """The stdout console for tables (no automatic highlighting: colours carry meaning only with text).
    A terminal gets its own width; a pipe or file gets PIPE_WIDTH (WIDE_WIDTH with ``wide``)."""
    import os

    from rich.console import Console

    width = None
    if wide:
        width = WIDE_WIDTH
    elif not os.environ.get("COLUMNS") and not sys.stdout.isatty():
        width = PIPE_WIDTH
    return Console(highlight=False, soft_wrap=soft_wrap, markup=markup, width=width)


def err_console() -> Console:
    """The stderr console for progress bars and notices."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)
