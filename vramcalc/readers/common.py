"""Helpers the readers share, and the test the CLI makes before reading anything (no gguf import here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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
