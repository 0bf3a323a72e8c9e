"""Hostile input for the quick remote GGUF header read (vramcalc/readers/gguf_remote.py) and the range
reads under it: each file or server here is built to make the reader hang, fetch without bound, raise
a traceback, or accept a false end of a tokenizer array. The answer must be the full read's (or its
one-line error), in bounded reads and time.

Files carry a 20,000-token generated vocabulary (tests/gguf_tokenizer.py): past the first 64 KiB read,
so the quick read locates its end, and cheap to write.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from gguf_tokenizer import bpe_vocab, kv_bytes, tokenizer_kvs, write_gguf_fast

from gguf_fixtures import llama_tensors, nbytes
from vramcalc.errors import InputError
from vramcalc.readers.gguf import read_gguf_header
from vramcalc.readers.gguf_remote import read_gguf_header_quick
from vramcalc.readers.remote import GGUF_READ_BYTES, RecordingFile

TINY = dict(n_layers=2, hidden=256, heads=4, kv_heads=2, ff=512, vocab=20000)
META = {"context_length": 2048, "block_count": 2, "embedding_length": 256, "feed_forward_length": 512}
META |= {"attention.head_count": 4, "attention.head_count_kv": 2, "general.name": "Tiny"}


@pytest.fixture(scope="module")
def vocab():
    return bpe_vocab(20000, 19000)


def _tensors() -> list:
    return llama_tensors(**TINY, types={})


def _write(path: Path, kvs: list, tensors: list, align: int = 32) -> Path:
    """A GGUF v3 file with the tensors' data aligned to ``align`` (write_gguf_fast's layout otherwise)."""
    import gguf

    infos, off = [], 0
    for name, shape, t in tensors:
        infos.append(struct.pack("<Q", len(name)) + name.encode() + struct.pack(f"<I{len(shape)}Q", len(shape), *shape))
        infos.append(struct.pack("<IQ", gguf.GGMLQuantizationType[t].value, off))
        off += -(-nbytes(t, shape) // align) * align
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + kv_bytes(kvs) + b"".join(infos)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(-(-len(head) // align) * align + off)
    return path


def _quick(path: Path, size: int | None = None) -> tuple[object, str, list[tuple[int, int]]]:
    reads: list[tuple[int, int]] = []

    def fetch(off: int, n: int) -> bytes:
        reads.append((off, n))
        with open(path, "rb") as f:
            f.seek(off)
            return f.read(n)

    h, way = read_gguf_header_quick(RecordingFile(fetch, size or path.stat().st_size, path.name), path.name, GGUF_READ_BYTES)
    return h, way, reads


def _same(a, b) -> None:
    assert (a.version, a.data_offset, a.file_size, a.metadata, a.tensors) == (b.version, b.data_offset, b.file_size, b.metadata, b.tensors)


def _file(d: Path, vocab, name: str = "m.gguf", tokens: list | None = None, tail: dict | None = None, align: int = 32) -> Path:
    toks, merges = vocab
    kvs = tokenizer_kvs("llama", META, 15, toks if tokens is None else tokens, merges, tail)
    return _write(d / name, kvs, _tensors(), align)


def test_items_that_nest_item_chains_cost_a_bounded_time(vocab, tmp_path):
    """Tokens whose bytes are themselves (length, ' ') items, where the probes land: every sync offset
    of a window walked the whole window (5 s for this 20k vocabulary, measured before the bound; ~2 s
    per window, 24 windows for a large one). Now a window's walks are bounded: the full read answers."""
    nested = struct.pack("<Q", 1) + b" "
    p = _file(tmp_path, vocab, tokens=vocab[0][:6000] + [nested] * 14000)
    t = time.perf_counter()
    h, way, reads = _quick(p)
    took = time.perf_counter() - t
    _same(h, read_gguf_header(p))
    assert way == "fallback" and len(reads) <= 8 and took < 2.0, (way, len(reads), took)


def test_a_huge_alignment_does_not_fetch_its_padding(vocab, tmp_path):
    """general.alignment 2^20 (a power of two: valid): the padding before the data is ~1 MiB of zeros
    that the quick read's check fetched whole (1.07 GB for 2^30, measured before the fix); the full
    read never reads it, and is what answers now."""
    p = _file(tmp_path, vocab, tail={"general.alignment": 2**20}, align=2**20)
    h, way, reads = _quick(p)
    _same(h, read_gguf_header(p))
    assert way == "fallback" and max(n for _, n in reads) < 2**20 and sum(n for _, n in reads) < 10 * 2**20


@pytest.mark.parametrize("align", [True, 0, 3, "x"])
def test_an_alignment_that_is_not_a_power_of_two_is_refused_by_both_reads(vocab, tmp_path, align):
    """A bool is not a number (it read as alignment 1 before); 0, odd and non-integer values too."""
    p = _file(tmp_path, vocab, tail={"general.alignment": align})
    with pytest.raises(InputError, match="general.alignment .* is not a power of two") as full:
        read_gguf_header(p)
    with pytest.raises(InputError) as quick:
        _quick(p)
    assert str(quick.value) == str(full.value).replace(str(p), p.name)


@pytest.mark.parametrize("lie", [-1, 1, 500])
def test_a_token_count_that_lies_is_the_full_reads_error(vocab, tmp_path, lie):
    """The tokens array declares `lie` more items than it holds. A located end is where the items end,
    whatever the count says, so the quick read answered a file the full read refuses (measured before
    the fix: a header, for each of these). The per-token arrays (token_type) must declare the same count."""
    import gguf_tokenizer

    real = gguf_tokenizer._kv

    def kv(key: str, val: object) -> bytes:
        b = real(key, val)
        if key != "tokenizer.ggml.tokens":
            return b
        i = 8 + len(key) + 8
        return b[:i] + struct.pack("<Q", struct.unpack_from("<Q", b, i)[0] + lie) + b[i + 8 :]

    gguf_tokenizer._kv = kv
    try:
        p = _file(tmp_path, vocab)
    finally:
        gguf_tokenizer._kv = real
    with pytest.raises(InputError) as full:
        read_gguf_header(p)
    with pytest.raises(InputError) as quick:
        _quick(p)
    assert str(quick.value) == str(full.value).replace(str(p), p.name)


@pytest.mark.parametrize("delta", [1, 10**12])
def test_a_size_larger_than_the_content_falls_back(vocab, tmp_path, delta):
    """The server's listed size is larger than the file: the tensors do not end the file, the full read
    answers (it checks only that the data fits)."""
    p = _file(tmp_path, vocab)
    h, way, reads = _quick(p, p.stat().st_size + delta)
    assert way == "fallback" and h.tensors == read_gguf_header(p).tensors


def test_a_size_smaller_than_the_content_is_a_one_line_error(vocab, tmp_path):
    p = _file(tmp_path, vocab)
    with pytest.raises(InputError, match=r"truncated GGUF file: its header declares .* \(an incomplete download\?\)"):
        _quick(p, p.stat().st_size - 1)


@pytest.mark.parametrize("extra", [-1, 1])
def test_a_fetch_of_the_wrong_length_is_a_network_error_not_a_fallback(vocab, tmp_path, extra):
    p = _file(tmp_path, vocab)
    calls = []

    def fetch(off: int, n: int) -> bytes:
        calls.append(off)
        with open(p, "rb") as f:
            f.seek(off)
            return f.read(n + extra if len(calls) == 2 else n)

    with pytest.raises(InputError, match=r"the server sent \d+ bytes for a range of \d+ \(a truncated body\)"):
        read_gguf_header_quick(RecordingFile(fetch, p.stat().st_size, p.name), p.name, GGUF_READ_BYTES)
    assert len(calls) == 2
