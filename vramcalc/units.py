"""Byte and rate units: parsing for the catalog, formatting for the terminal."""

from __future__ import annotations

import re

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4

_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": KiB,
    "mib": MiB,
    "gib": GiB,
    "tib": TiB,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]+)?\s*$")


def parse_bytes(value: int | float | str) -> int:
    """Parse '12 GiB', '80GB', 1024 into an integer number of bytes.

    A bare number is taken as bytes. GB means 10^9 and GiB 2^30, as written.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as '12 GiB', got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"a size in bytes must be whole, got {value}")
        return int(value)
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"expected a size such as '12 GiB' or '80 GB', got {value!r}")
    number, unit = m.groups()
    factor = _UNITS.get((unit or "b").lower())
    if factor is None:
        raise ValueError(f"unknown size unit {unit!r} (use B, KB, MB, GB, KiB, MiB, GiB)")
    return round(float(number) * factor)


def fmt_bytes(n: int | float | None, digits: int = 2) -> str:
    """Binary units, as nvidia-smi and llama.cpp print them (GiB, MiB)."""
    if n is None:
        return "-"
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, size in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{sign}{n / size:.{digits}f} {unit}"
    return f"{sign}{int(n)} B"


def fmt_count(n: int | float | None) -> str:
    """Parameter counts: 6.74 B, 303.5 M."""
    if n is None:
        return "-"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return str(int(n))


def fmt_flops(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} FLOP"
