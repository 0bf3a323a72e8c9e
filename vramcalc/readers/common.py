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
    return Path(text).exists()


#: Most repeating layers a model file may declare: a choice, far above any published model (the
#: deepest in the catalog have about 100), so that a hostile layer count is refused before the readers
#: build one entry per layer.
MAX_LAYERS = 1024


def layer_count(value: object, where: object) -> int:
    """A declared number of repeating layers, checked: an integer in 1..MAX_LAYERS."""
    n = int(value)  # type: ignore[call-overload]
    if not 1 <= n <= MAX_LAYERS:
        raise InputError(f"{where}: {n} layers is not a plausible model (1..{MAX_LAYERS}).")
    return n
