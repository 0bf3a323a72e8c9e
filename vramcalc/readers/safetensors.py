"""safetensors headers: the 8-byte little-endian header length and the JSON header (dtype, shape,
offsets of every tensor), the format's whole header (https://github.com/huggingface/safetensors#format).
The tensor data is never read.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vramcalc.errors import InputError


@dataclass
class SafetensorsSummary:
    """Parameter count and bytes by dtype over the tensors of one or more safetensors files."""

    files: list[Path] = field(default_factory=list)
    params: int = 0
    bytes: int = 0
    params_by_dtype: dict[str, int] = field(default_factory=dict)
    bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    vision_params: int = 0  # tensors under a vision tower / projector prefix

    @property
    def main_dtype(self) -> str:
        return max(self.params_by_dtype, key=self.params_by_dtype.get) if self.params_by_dtype else ""  # type: ignore[arg-type]


_VISION_PREFIXES = (
    "vision_tower",
    "model.vision_tower",
    "visual",
    "model.visual",
    "vision_model",
    "model.vision_model",
    "multi_modal_projector",
    "model.multi_modal_projector",
    "mm_projector",
    "model.mm_projector",
    "vision_embed",
)


#: Bytes per element of the safetensors dtypes (the format's Dtype enum, safetensors README "Format");
#: a tensor's data_offsets must span shape x this.
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique (a tensor named twice would be counted once, silently)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON); data is not read."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise InputError(f"{path}: not a safetensors file (shorter than its 8-byte header length).")
        (n,) = struct.unpack("<Q", raw)
        # the safetensors library refuses headers over 100,000,000 bytes (MAX_HEADER_SIZE, safetensors
        # src/tensor.rs; recalled, not re-checked here); 100 MiB is the same sanity bound, slightly looser
        if n > size - 8 or n > 100 * 2**20:
            raise InputError(f"{path}: truncated or corrupt safetensors file (header length {n} in a file of {size} bytes).")
        try:
            header = json.loads(f.read(n), object_pairs_hook=_no_duplicates)
        except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: bad JSON, a 5,000-digit integer, a repeated tensor
            raise InputError(f"{path}: corrupt safetensors file: the header is not valid JSON (or names a tensor twice).") from None
    if not isinstance(header, dict):
        raise InputError(f"{path}: corrupt safetensors file: the header is not a JSON object.")
    try:
        end = max(
            (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v),
            default=0,
        )
    except (IndexError, KeyError, TypeError, ValueError):
        raise InputError(f"{path}: corrupt safetensors header: a tensor's data_offsets is not [begin, end].") from None
    if 8 + n + end > size:
        raise InputError(f"{path}: truncated safetensors file: its header declares {8 + n + end:,} bytes but the file has {size:,}.")
    return header


def summarize_safetensors(paths: list[Path]) -> SafetensorsSummary:
    return summarize_safetensors_headers([(p, read_safetensors_header(p)) for p in paths])


def summarize_safetensors_headers(headers: list[tuple[Path, dict[str, Any]]]) -> SafetensorsSummary:
    """The summary of safetensors headers already read (a local file's, or one read from the Hub)."""
    out = SafetensorsSummary(files=[p for p, _ in headers])
    for p, header in headers:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                dtype, dims, offsets = info["dtype"], info["shape"], info["data_offsets"]
            except (KeyError, TypeError):
                raise InputError(f"{p}: corrupt safetensors header: tensor '{name}' lacks dtype, shape or data_offsets.") from None
            # the format's types, exactly: a string dtype, a list of integer dims, two integer offsets (a shape "3"
            # or [1.5] read through int() would invent a parameter count)
            if (
                not isinstance(dtype, str)
                or not isinstance(dims, list)
                or not all(type(d) is int for d in dims)
                or not isinstance(offsets, list)
                or len(offsets) != 2
                or not all(type(x) is int for x in offsets)
            ):
                raise InputError(
                    f"{p}: corrupt safetensors header: tensor '{name}' needs a string dtype, a list of integer dims and "
                    "two integer data_offsets."
                )
            begin, end = offsets
            numel = math.prod(dims)
            nbytes = end - begin
            size = DTYPE_BYTES.get(dtype)
            if min(dims, default=0) < 0 or not 0 <= begin <= end or (size is not None and nbytes != numel * size):
                raise InputError(
                    f"{p}: corrupt safetensors header: tensor '{name}' has shape {dims} in {dtype} but data_offsets [{begin}, {end}]."
                )
            out.params += numel
            out.bytes += nbytes
            out.params_by_dtype[dtype] = out.params_by_dtype.get(dtype, 0) + numel
            out.bytes_by_dtype[dtype] = out.bytes_by_dtype.get(dtype, 0) + nbytes
            if name.startswith(_VISION_PREFIXES):
                out.vision_params += numel
    return out
