"""Byte-level builders of hostile model files for the hostile-input tests (issue 14).

``raw_gguf`` writes a GGUF header by hand (the format: magic, version, counts, key/value pairs with
their value-type ids, tensor infos, then the data section aligned to general.alignment), so a test can
write what the gguf package's writer refuses to: duplicate keys, a key of the wrong value type, nested
arrays, overlapping or unaligned tensor offsets. The data section is a sparse hole (``truncate``).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from gguf_fixtures import BLOCKS, llama_tensors

#: GGUF value-type ids (gguf GGUFValueType)
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
_FMT = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?", U64: "Q", I64: "q", F64: "d"}
#: GGML type ids (ggml.h enum ggml_type)
GGML_IDS = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 8, "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "BF16": 30}


def _s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def gguf_value(vtype: int, value: Any) -> bytes:
    """The bytes of one metadata value of type ``vtype``; arrays are (item type, [items]); ``bytes``
    are written as they are (a value whose bytes the caller built)."""
    if isinstance(value, bytes):
        return value
    if vtype == STRING:
        return _s(value)
    if vtype == ARRAY:
        itype, items = value
        return struct.pack("<IQ", itype, len(items)) + b"".join(gguf_value(itype, x) for x in items)
    return struct.pack("<" + _FMT[vtype], value)


def nested_array(depth: int) -> bytes:
    """The value bytes of an array nested ``depth`` deep (arrays of one array ... of one u32)."""
    return struct.pack("<IQ", ARRAY, 1) * (depth - 1) + struct.pack("<IQI", U32, 1, 1)


def nbytes(ggml_type: str, shape: tuple[int, ...]) -> int:
    block, size = BLOCKS[ggml_type]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


def raw_gguf(
    path: Path,
    meta: list[tuple[str, int, Any]],
    tensors: list[tuple[str, tuple[int, ...], str]],
    offsets: list[int] | None = None,
    alignment: int = 32,
) -> Path:
    """A GGUF v3 file: ``meta`` as (key, value type, value) in order (duplicates allowed), ``tensors``
    as (name, shape ne0 first, GGML type); offsets packed and aligned unless given."""
    out = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(meta))]
    for key, vtype, value in meta:
        out.append(_s(key) + struct.pack("<I", vtype) + gguf_value(vtype, value))
    if offsets is None:
        offsets, off = [], 0
        for _, shape, t in tensors:
            offsets.append(off)
            off += -(-nbytes(t, shape) // alignment) * alignment
    for (name, shape, t), off in zip(tensors, offsets, strict=True):
        out.append(_s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape))
        out.append(struct.pack("<IQ", GGML_IDS[t], off))
    head = b"".join(out)
    head += b"\0" * (-len(head) % alignment)
    end = max((o + nbytes(t, s) for (_, s, t), o in zip(tensors, offsets, strict=True)), default=0)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + end)
    return path


#: the tiny llama of tests/tiny_llama.py: 2 layers, hidden 256, 4 heads of 64, 2 KV heads, FFN 512, vocab 1000
TINY = dict(n_layers=2, hidden=256, heads=4, kv_heads=2, ff=512, vocab=1000)


def tiny_meta(**over: tuple[int, Any]) -> list[tuple[str, int, Any]]:
    """The tiny llama's metadata as (key, type, value); ``over`` replaces or adds llama.<key> entries
    (dots in keys written as '__')."""
    meta = {
        "general.architecture": (STRING, "llama"),
        "general.name": (STRING, "Tiny Llama"),
        "llama.block_count": (U32, 2),
        "llama.context_length": (U32, 2048),
        "llama.embedding_length": (U32, 256),
        "llama.feed_forward_length": (U32, 512),
        "llama.attention.head_count": (U32, 4),
        "llama.attention.head_count_kv": (U32, 2),
        "general.file_type": (U32, 15),
    }
    for k, v in over.items():
        key = k.replace("__", ".")
        meta[key if key.startswith("general.") else f"llama.{key}"] = v
    return [(k, t, v) for k, (t, v) in meta.items()]


def tiny_tensors(**kw: Any) -> list[tuple[str, tuple[int, ...], str]]:
    return llama_tensors(**{**TINY, **kw.pop("dims", {})}, types={}, **kw)


def tiny_llama(path: Path, meta: list | None = None, tensors: list | None = None, **kw: Any) -> Path:
    return raw_gguf(path, tiny_meta() if meta is None else meta, tiny_tensors() if tensors is None else tensors, **kw)


def clip_meta(**over: Any) -> list[tuple[str, int, Any]]:
    meta: dict[str, tuple[int, Any]] = {
        "general.architecture": (STRING, "clip"),
        "general.name": (STRING, "tiny clip"),
        "clip.projector_type": (STRING, "mlp"),
        "clip.vision.image_size": (U32, 336),
        "clip.vision.patch_size": (U32, 14),
        "clip.vision.embedding_length": (U32, 64),
        "clip.vision.feed_forward_length": (U32, 128),
        "clip.vision.block_count": (U32, 2),
        "clip.vision.attention.head_count": (U32, 4),
    }
    for k, v in over.items():
        meta[k.replace("__", ".")] = v
    return [(k, t, v) for k, (t, v) in meta.items()]


def clip_tensors(h: int = 64, ff: int = 128, layers: int = 2, llm_hidden: int = 256) -> list[tuple[str, tuple[int, ...], str]]:
    t = [("v.patch_embd.weight", (14, 14, 3, h), "F16"), ("v.class_embd", (h,), "F32"), ("v.position_embd.weight", (h, 577), "F32")]
    for i in range(layers):
        b = f"v.blk.{i}"
        t += [
            (f"{b}.ln1.weight", (h,), "F32"),
            (f"{b}.ln1.bias", (h,), "F32"),
            (f"{b}.ln2.weight", (h,), "F32"),
            (f"{b}.ln2.bias", (h,), "F32"),
        ]
        for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
            t += [(f"{b}.{n}.weight", (h, h), "F16"), (f"{b}.{n}.bias", (h,), "F32")]
        t += [(f"{b}.ffn_up.weight", (h, ff), "F16"), (f"{b}.ffn_down.weight", (ff, h), "F16")]
    return [*t, ("mm.0.weight", (h, llm_hidden), "F16"), ("mm.2.weight", (llm_hidden, llm_hidden), "F16")]


#: a tiny llama config.json (hidden 256, 4 heads, 2 KV heads, 2 layers)
TINY_CONFIG = {
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def tiny_hf_tensors(hidden: int = 256, ff: int = 512, layers: int = 2, vocab: int = 1000, kv: int = 128) -> dict:
    t: dict = {"model.embed_tokens.weight": ("BF16", (vocab, hidden)), "lm_head.weight": ("BF16", (vocab, hidden))}
    for i in range(layers):
        b = f"model.layers.{i}"
        t[f"{b}.self_attn.q_proj.weight"] = ("BF16", (hidden, hidden))
        t[f"{b}.self_attn.k_proj.weight"] = ("BF16", (kv, hidden))
        t[f"{b}.self_attn.v_proj.weight"] = ("BF16", (kv, hidden))
        t[f"{b}.self_attn.o_proj.weight"] = ("BF16", (hidden, hidden))
        t[f"{b}.mlp.gate_proj.weight"] = ("BF16", (ff, hidden))
        t[f"{b}.mlp.up_proj.weight"] = ("BF16", (ff, hidden))
        t[f"{b}.mlp.down_proj.weight"] = ("BF16", (hidden, ff))
        t[f"{b}.input_layernorm.weight"] = ("BF16", (hidden,))
        t[f"{b}.post_attention_layernorm.weight"] = ("BF16", (hidden,))
    t["model.norm.weight"] = ("BF16", (hidden,))
    return t


def write_config(folder: Path, cfg: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "config.json"
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg), encoding="utf-8")
    return p
