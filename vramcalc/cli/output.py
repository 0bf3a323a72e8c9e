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


def console(*, soft_wrap: bool = False, markup: bool = True) -> Console:
    """The stdout console for tables (no automatic highlighting: colours carry meaning only with text)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=soft_wrap, markup=markup)


def err_console() -> Console:
    """The stderr console for progress bars and notices."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)
