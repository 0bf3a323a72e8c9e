"""GGUF files with a real-sized tokenizer in their header, for the quick remote header read.

The strings are generated (a seeded random generator), shaped like a byte-level BPE vocabulary as
Qwen2/Qwen3 GGUFs store it (their tokenizer.json: 151,643 BPE tokens + special tokens, 151,387
merges): tokens get longer with their rank, about half start with 'Ġ' (a space), some hold dots
('os.path'), digits or 3-byte CJK characters; each merge is two tokens joined by one space. The
keys follow llama.cpp's order: general.* and the architecture's keys, the tokenizer (model, pre,
tokens, token_type, merges, special ids, chat template), then general.quantization_version and
general.file_type last, where llama-quantize puts them (it removes and re-adds general.file_type).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from gguf_fixtures import nbytes, write_tensor_infos

_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
_CJK = "的一是不了人我在有他这中大来上"


def bpe_vocab(n_tokens: int, n_merges: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    n = n_tokens - 3
    rank = np.arange(n) / n_tokens
    lengths = np.clip(rng.normal(2 + 7 * rank, 2), 1, 24).astype(int)
    letters = np.frombuffer(_LETTERS.encode(), dtype=np.uint8)[rng.integers(0, 26, size=int(lengths.sum()))].tobytes().decode()
    ends = np.cumsum(lengths).tolist()
    kind = rng.random(n).tolist()
    space = (rng.random(n) < 0.5).tolist()
    lengths = lengths.tolist()
    prefixes = ("os.", "np.", "self.", "www.", "re.", "sys.")
    tokens: list[str] = []
    for i in range(n):
        body = letters[ends[i] - lengths[i] : ends[i]]
        k = kind[i]
        if k < 0.04:
            body = "".join(_CJK[ord(c) % len(_CJK)] for c in body[: max(1, len(body) // 3)])
        elif k < 0.07:
            body = prefixes[i % len(prefixes)] + body
        elif k < 0.1:
            body = str(i % 1000)
        tokens.append(("Ġ" if space[i] else "") + body if i >= 94 else chr(33 + i))
    tokens += ["<|endoftext|>", "<|im_start|>", "<|im_end|>"][: n_tokens - len(tokens)]
    pairs = rng.integers(0, n_tokens, size=(n_merges, 2))
    merges = [tokens[a] + " " + tokens[b] for a, b in zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), strict=True)]
    return tokens, merges


CHAT_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
) * 8


def write_gguf_with_tokenizer(
    path: Path,
    arch: str,
    meta: dict,
    tensors: list[tuple[str, tuple[int, ...], str]],
    file_type: int,
    tokens: list[str],
    merges: list[str],
    extra_tail: dict | None = None,
) -> Path:
    """A GGUF whose header holds ``tokens`` and ``merges``; tensor data a sparse hole."""
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    for key, val in meta.items():
        full = key if key.startswith(("general.", "split.")) else f"{arch}.{key}"
        (w.add_string if isinstance(val, str) else w.add_uint32)(full, val)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([1] * (len(tokens) - 3) + [3] * min(3, len(tokens)))
    if merges:
        w.add_token_merges(merges)
    w.add_eos_token_id(len(tokens) - 1)
    w.add_pad_token_id(len(tokens) - 3)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)
    for key, val in (extra_tail or {}).items():
        (w.add_string if isinstance(val, str) else w.add_uint32)(key, val)
    w.add_quantization_version(2)
    w.add_file_type(file_type)
    f = write_tensor_infos(w, tensors)
    start = -(-f.tell() // 32) * 32
    f.truncate(start + sum(-(-nbytes(t, s) // 32) * 32 for _, s, t in tensors))
    w.close()
    return path


# --- a fast writer: gguf's GGUFWriter packs each of 300k strings in Python (seconds); this writes the
# same bytes (GGUF v3: docs/gguf.md of ggml) with one join. Checked against gguf.GGUFReader once, by hand.

_U8, _U32T, _STR, _ARR, _BOOL = 0, 4, 8, 9, 7


def _s(x: str | bytes) -> bytes:
    b = x if isinstance(x, bytes) else x.encode()  # bytes: a hostile token, written as is
    return struct.pack("<Q", len(b)) + b


def _kv(key: str, val: object) -> bytes:
    if isinstance(val, bool):
        return _s(key) + struct.pack("<IB", _BOOL, val)
    if isinstance(val, int):
        return _s(key) + struct.pack("<II", _U32T, val)
    if isinstance(val, str):
        return _s(key) + struct.pack("<I", _STR) + _s(val)
    if isinstance(val, list) and val and isinstance(val[0], float):
        return _s(key) + struct.pack("<IIQ", _ARR, 6, len(val)) + np.asarray(val, dtype="<f4").tobytes()
    if isinstance(val, list) and val and isinstance(val[0], str | bytes):
        return _s(key) + struct.pack("<IIQ", _ARR, _STR, len(val)) + b"".join(_s(v) for v in val)
    if isinstance(val, list):
        return _s(key) + struct.pack("<IIQ", _ARR, 5, len(val)) + np.asarray(val, dtype="<i4").tobytes()
    raise TypeError(key)


def tensor_infos(tensors: list[tuple[str, tuple[int, ...], str]], gap: int = 0) -> tuple[bytes, int]:
    """The tensor-info entries of ``tensors`` (offsets contiguous, 32-aligned; ``gap`` extra bytes
    before the last tensor) and the data section's size."""
    import gguf

    out, offset = [], 0
    for i, (name, shape, t) in enumerate(tensors):
        if gap and i == len(tensors) - 1:
            offset += gap
        out.append(_s(name) + struct.pack("<I", len(shape)) + struct.pack(f"<{len(shape)}Q", *shape))
        out.append(struct.pack("<IQ", gguf.GGMLQuantizationType[t].value, offset))
        offset += -(-nbytes(t, shape) // 32) * 32
    return b"".join(out), offset


def kv_bytes(kvs: list[tuple[str, object]]) -> bytes:
    return b"".join(_kv(k, v) for k, v in kvs)


def write_gguf_fast(path: Path, kvs: list[tuple[str, object]], tensors: list[tuple[str, tuple[int, ...], str]], gap: int = 0) -> Path:
    """A GGUF v3 file: ``kvs`` in order, the tensors' infos (contiguous, 32-aligned), a sparse data hole."""
    out = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(kvs))]
    out += [_kv(k, v) for k, v in kvs]
    infos, offset = tensor_infos(tensors, gap)
    out.append(infos)
    head = b"".join(out)
    start = -(-len(head) // 32) * 32
    with open(path, "wb") as f:
        f.write(head + b"\0" * (start - len(head)))
        f.truncate(start + offset)
    return path


def tokenizer_kvs(
    arch: str, meta: dict, file_type: int, tokens: list[str], merges: list[str], extra_tail: dict | None = None, spm: bool = False
) -> list:
    """llama.cpp's key order, general.file_type last (as llama-quantize leaves it). ``spm``: a
    SentencePiece tokenizer (model 'llama', f32 scores after the tokens, no merges: Llama 2, Gemma)."""
    kvs: list[tuple[str, object]] = [("general.architecture", arch)]
    kvs += [(k if k.startswith(("general.", "split.")) else f"{arch}.{k}", v) for k, v in meta.items()]
    kvs += [("tokenizer.ggml.model", "llama" if spm else "gpt2"), ("tokenizer.ggml.pre", "default" if spm else "qwen2")]
    kvs.append(("tokenizer.ggml.tokens", tokens))
    if spm:
        kvs.append(("tokenizer.ggml.scores", [-1.0 * i for i in range(len(tokens))]))
    kvs.append(("tokenizer.ggml.token_type", [1] * (len(tokens) - 3) + [3] * min(3, len(tokens))))
    if merges:
        kvs.append(("tokenizer.ggml.merges", merges))
    kvs += [("tokenizer.ggml.eos_token_id", len(tokens) - 1), ("tokenizer.ggml.add_bos_token", False)]
    kvs += [("tokenizer.chat_template", CHAT_TEMPLATE), *(extra_tail or {}).items()]
    return [*kvs, ("general.quantization_version", 2), ("general.file_type", file_type)]
