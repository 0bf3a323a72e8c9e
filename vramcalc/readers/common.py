"""Helpers the readers share, and the test the CLI makes before reading anything (no gguf import here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vramcalc.errors import InputError
from vramcalc.schema import AnyresTokens, VlmDefaults


def slug(text: str) -> str:
    """A catalog id from a name: lowercase, [a-z0-9._-]."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-._")
    return s or "model"


def anyres_tokens(pairs: list[Any], newline: bool) -> tuple[Any, VlmDefaults]:
    """LLaVA-1.6 anyres tokens for these grid pinpoints, and the default image size: the largest
    square one pinpoint holds (the largest short side)."""
    side = max(min(p) for p in pairs)
    return AnyresTokens(grid_pinpoints=pairs, newline_tokens=newline), VlmDefaults(image_size=(side, side))


def looks_like_path(text: str) -> bool:
    """True when a MODEL argument names a file or folder rather than a catalog id."""
    if text.startswith(("./", "../", "/", "~", ".\\")) or text.endswith((".gguf", ".json", ".safetensors")):
        return True
    try:
        return Path(text).exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte: not a file we can read
        return False


#: Most repeating layers a model file may declare: a choice, far above any published model (the
#: deepest in the catalog have about 100), so that a hostile layer count is refused before the readers
#: build one entry per layer.
MAX_LAYERS = 1024


def layer_count(value: object, where: object) -> int:
    """A declared number of repeating layers, checked: an integer in 1..MAX_LAYERS."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: the layer count is {show_value(value)}; expected an integer in 1..{MAX_LAYERS}.")
    if not 1 <= value <= MAX_LAYERS:
        raise InputError(f"{where}: {value} layers is not a plausible model (1..{MAX_LAYERS}).")
    return value


# -- typed access to the numbers a model file declares (issue 14: hostile input) ----------------
# A model file's metadata is checked for its type and a sane range before any arithmetic: a float,
# a string, a boolean or a list where an integer belongs, or a count no model has, is a one-line
# InputError naming the file and the field, never a number read from garbage (hidden_size 1.5 read
# as 1, 'abc' read as true) nor a hang or a traceback further on.

#: The widest dimension (hidden size, FFN width, head size, LoRA rank) a model file may declare: a
#: choice, 16x the widest published model (Llama 3.1 405B: FFN 53,248; hidden 16,384).
MAX_WIDTH = 2**20
#: Most tokens a vocabulary or a context may hold: a choice, above the largest published ones
#: (vocabularies: 262,144 for Gemma 3; context: 10,485,760 for Llama 4 Scout).
MAX_TOKENS = 2**24
#: Most experts a MoE layer may declare: a choice, above any published model (DeepSeek-V3: 256).
MAX_EXPERTS = 2**14


def show_value(v: object) -> str:
    """A value as an error message quotes it: its repr, cut to 40 characters, and its JSON/GGUF type."""
    text = repr(v)
    if len(text) > 40:
        text = text[:37] + "..."
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object"}.get(
        type(v), type(v).__name__
    )
    return f"{text} ({kind})"


def checked_int(v: object, where: str, lo: int = 1, hi: int = MAX_WIDTH) -> int:
    """``v`` when it is an integer (not a boolean, a float or a string) in lo..hi; else an InputError
    whose message starts with ``where`` (the file and the field)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(f"{where} is {show_value(v)}; expected an integer in {lo:,}..{hi:,}.")
    if not lo <= v <= hi:
        shown = f"{v:,}" if abs(v) < 10**30 else f"a {len(str(abs(v)))}-digit number"
        raise InputError(f"{where} is {shown}, outside {lo:,}..{hi:,}: not a plausible model.")
    return v


def checked_bool(v: object, where: str) -> bool:
    """``v`` when it is a boolean (true/false; not 'abc', not 1)."""
    if not isinstance(v, bool):
        raise InputError(f"{where} is {show_value(v)}; expected true or false.")
    return v


def checked_float(v: object, where: str, lo: float, hi: float) -> float:
    """``v`` when it is a finite number (int or float, not a boolean) in lo..hi."""
    import math

    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
        raise InputError(f"{where} is {show_value(v)}; expected a number in {lo:g}..{hi:g}.")
    return float(v)
