"""Tiny model files for the file-reader tests, written with the gguf package's own writer.

GGUF files carry real headers (metadata + tensor infos) and no real tensor data: the data
section is a sparse hole of the declared size (``truncate``), so a 7B-parameter header costs a
few KB of disk. Block layouts used to compute expected sizes are ggml's (ggml/src/ggml.c
type_traits), written out here independently of vramcalc: type -> (weights per block, bytes per block).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

#: ggml type_traits: blck_size, type_size (ggml/src/ggml.c; Q4_K: 256 weights in 144 bytes = 2 fp16
#: scales + 12 bytes of 6-bit scales/mins + 128 bytes of 4-bit quants; Q6_K: 128 + 64 + 16 + 2 = 210).
BLOCKS = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "Q8_0": (32, 34),
    "Q4_0": (32, 18),
    "Q4_K": (256, 144),
    "Q5_K": (256, 176),
    "Q6_K": (256, 210),
    "Q3_K": (256, 110),
    "Q2_K": (256, 84),
    "MXFP4": (32, 17),
}


def nbytes(ggml_type: str, shape: tuple[int, ...]) -> int:
    block, size = BLOCKS[ggml_type]
    n = int(np.prod(shape))
    assert shape[0] % block == 0
    return n // block * size


def write_tensor_infos(w: Any, tensors: Iterable[tuple[str, tuple[int, ...], str]]) -> Any:
    """Add the tensor infos to a ``gguf.GGUFWriter`` (GGML types by name, shapes with ne0 first), write the header,
    KV and tensor-info sections, and return the open file (positioned at the end of the tensor infos)."""
    import gguf

    for name, shape, t in tensors:
        w.add_tensor_info(name, tuple(reversed(shape)), np.float32, nbytes(t, shape), raw_dtype=gguf.GGMLQuantizationType[t])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    return w.fout[0]


def write_gguf(
    path: Path,
    arch: str,
    meta: dict,
    tensors: list[tuple[str, tuple[int, ...], str]],
    file_type: int | None = None,
    vocab: int | None = None,
    data: bool = True,
) -> Path:
    """Write a GGUF file. ``tensors``: (name, shape with ne0 first, GGML type name).

    ``data=False`` stops after the tensor infos (a header-only, i.e. truncated, file).
    """
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    for key, val in meta.items():
        full = key if key.startswith(("general.", "tokenizer.", "clip.", "split.")) else f"{arch}.{key}"
        if isinstance(val, bool):
            w.add_bool(full, val)
        elif isinstance(val, int):
            w.add_uint32(full, val)
        elif isinstance(val, float):
            w.add_float32(full, val)
        elif isinstance(val, str):
            w.add_string(full, val)
        elif isinstance(val, list):
            w.add_array(full, val)
        else:  # a value the writer calls above cannot store would otherwise vanish from the file
            raise TypeError(f"{key}: no GGUF writer for {type(val).__name__}")
    if file_type is not None:
        w.add_file_type(file_type)
    if vocab:
        w.add_token_list([f"t{i}" for i in range(vocab)])
    f = write_tensor_infos(w, tensors)
    pos = f.tell()
    if data:
        start = -(-pos // 32) * 32
        total = sum(-(-nbytes(t, s) // 32) * 32 for _, s, t in tensors)
        f.truncate(start + total)  # a sparse hole: no real data is written
    w.close()
    return path


def llama_tensors(
    n_layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    ff: int,
    vocab: int,
    types: dict[str, str],
    tied: bool = False,
    qkv_bias: bool = False,
    head_dim: int | None = None,
) -> list[tuple[str, tuple[int, ...], str]]:
    """Tensor list of a llama-style model (llama.cpp names, ne0 first); types by role, default F32 for 1-D."""
    hd = head_dim or hidden // heads
    out = [("token_embd.weight", (hidden, vocab), types.get("token_embd", "Q4_K"))]
    for i in range(n_layers):
        b = f"blk.{i}"
        out.append((f"{b}.attn_norm.weight", (hidden,), "F32"))
        out.append((f"{b}.attn_q.weight", (hidden, heads * hd), types.get("attn_q", "Q4_K")))
        out.append((f"{b}.attn_k.weight", (hidden, kv_heads * hd), types.get("attn_k", "Q4_K")))
        out.append((f"{b}.attn_v.weight", (hidden, kv_heads * hd), types.get("attn_v", "Q6_K")))
        if qkv_bias:
            out += [
                (f"{b}.attn_q.bias", (heads * hd,), "F32"),
                (f"{b}.attn_k.bias", (kv_heads * hd,), "F32"),
                (f"{b}.attn_v.bias", (kv_heads * hd,), "F32"),
            ]
        out.append((f"{b}.attn_output.weight", (heads * hd, hidden), types.get("attn_output", "Q4_K")))
        out.append((f"{b}.ffn_norm.weight", (hidden,), "F32"))
        out.append((f"{b}.ffn_gate.weight", (hidden, ff), types.get("ffn_gate", "Q4_K")))
        out.append((f"{b}.ffn_up.weight", (hidden, ff), types.get("ffn_up", "Q4_K")))
        out.append((f"{b}.ffn_down.weight", (ff, hidden), types.get("ffn_down", "Q6_K")))
    out.append(("output_norm.weight", (hidden,), "F32"))
    if not tied:
        out.append(("output.weight", (hidden, vocab), types.get("output", "Q6_K")))
    return out


def write_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...]]], data: bool = True) -> Path:
    """A safetensors file with the given (dtype, shape) tensors; the data section is a sparse hole."""
    size = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "U8": 1}
    header: dict = {}
    off = 0
    for name, (dt, shape) in tensors.items():
        n = int(np.prod(shape)) * size[dt]
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        if data:
            f.truncate(8 + len(raw) + off)
    return path
