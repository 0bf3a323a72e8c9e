"""The quick remote GGUF header read (vramcalc/readers/gguf_remote.py): the same header as the full
read of the same file, for every kind of GGUF, in few small range reads; a wrong guess falls back.

Each file is read twice: by ``read_gguf_header`` from disk (the reference, as a local file is read)
and by ``read_gguf_header_quick`` through ``RecordingFile`` (the range-read file object the Hub and
Ollama readers use), whose fetches are counted here. The files carry generated BPE-like tokenizers
(tests/gguf_tokenizer.py) and sparse data; the end-to-end runs against the loopback Hub and Ollama
registry are in test_hub.py and test_ollama.py.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from gguf_fixtures import llama_tensors, write_gguf
from gguf_tokenizer import _kv, bpe_vocab, kv_bytes, tensor_infos, tokenizer_kvs, write_gguf_fast
from vramcalc.errors import InputError
from vramcalc.readers.gguf import read_gguf_header
from vramcalc.readers.gguf_remote import read_gguf_header_quick
from vramcalc.readers.remote import GGUF_READ_BYTES, ModelSource, RecordingFile, SegmentFile

TINY = dict(n_layers=2, hidden=256, heads=4, kv_heads=2, ff=512, vocab=151936)
TINY_META = {"context_length": 2048, "block_count": 2, "embedding_length": 256, "feed_forward_length": 512}
TINY_META |= {"attention.head_count": 4, "attention.head_count_kv": 2, "general.name": "Tiny"}


def moe_tensors(layers: int, experts: int = 64, hidden: int = 1024, eff: int = 512, vocab: int = 151936) -> list:
    """A DeepSeek-sized tensor count (layers x 14): the tensor infos span more than one read window."""
    t = [("token_embd.weight", (hidden, vocab), "Q4_K")]
    for i in range(layers):
        b = f"blk.{i}"
        t += [(f"{b}.{n}.weight", (hidden,), "F32") for n in ("attn_norm", "ffn_norm")]
        t += [(f"{b}.{n}.weight", (128,), "F32") for n in ("attn_q_norm", "attn_k_norm")]
        t += [(f"{b}.{n}.weight", (hidden, hidden), "Q4_K") for n in ("attn_q", "attn_output")]
        t += [(f"{b}.{n}.weight", (hidden, 256), "Q4_K") for n in ("attn_k", "attn_v")]
        t += [(f"{b}.ffn_gate_inp.weight", (hidden, experts), "F32")]
        t += [(f"{b}.{n}.weight", (hidden, eff, experts), "Q4_K") for n in ("ffn_gate_exps", "ffn_up_exps")]
        t += [(f"{b}.ffn_down_exps.weight", (eff, hidden, experts), "Q6_K")]
        t += [(f"{b}.{n}.weight", (hidden, eff), "Q4_K") for n in ("ffn_gate_shexp", "ffn_up_shexp")]
    return [*t, ("output_norm.weight", (hidden,), "F32"), ("output.weight", (hidden, vocab), "Q6_K")]


@pytest.fixture(scope="module")
def vocab():
    return bpe_vocab(151936, 151387)


@pytest.fixture(scope="module")
def gguf_files(vocab, tmp_path_factory):
    from test_hub import CLIP_META, Q4_K_M, QWEN3_8B_META, clip_tensors, qwen3_tensors

    d = tmp_path_factory.mktemp("quick")
    tokens, merges = vocab
    tiny = llama_tensors(**TINY, types={})
    out = {
        "qwen3-8b-150k": write_gguf_fast(d / "q8b.gguf", tokenizer_kvs("qwen3", QWEN3_8B_META, 15, tokens, merges), qwen3_tensors(Q4_K_M)),
        "small-vocab": write_gguf_fast(
            d / "small.gguf",
            tokenizer_kvs("llama", TINY_META, 15, tokens[:1997] + tokens[-3:], merges[:500]),
            llama_tensors(**dict(TINY, vocab=2000), types={}),
        ),
        "mmproj": write_gguf(d / "mmproj.gguf", "clip", CLIP_META, clip_tensors()),
        "moe-94-layers": write_gguf_fast(
            d / "moe.gguf",
            tokenizer_kvs("qwen3moe", dict(TINY_META, block_count=94, expert_count=64, expert_used_count=8), 15, tokens, merges),
            moe_tensors(94),
        ),
    }
    # a SentencePiece-style vocabulary of 262,144 tokens with f32 scores and no merges (as Gemma 3's)
    spm_tokens, _ = bpe_vocab(262144, 0, seed=1)
    spm = tokenizer_kvs("llama", TINY_META, 15, spm_tokens, [], spm=True)
    out["spm-262k"] = write_gguf_fast(d / "spm.gguf", spm, llama_tensors(**dict(TINY, vocab=262144), types={}))
    # a split GGUF as gguf-split writes it: the tokenizer in part 1, split.* keys last
    half = len(tiny) // 2
    tail = {"split.no": 0, "split.count": 2, "split.tensors.count": len(tiny)}
    out["split-1"] = write_gguf_fast(d / "t-00001-of-00002.gguf", tokenizer_kvs("llama", TINY_META, 15, tokens, merges, tail), tiny[:half])
    out["split-2"] = write_gguf_fast(
        d / "t-00002-of-00002.gguf",
        [("general.architecture", "llama"), ("split.no", 1), ("split.count", 2), ("split.tensors.count", len(tiny))],
        tiny[half:],
    )
    return out


def _quick(path: Path) -> tuple[object, str, list[tuple[int, int]], RecordingFile]:
    f = open(path, "rb")  # noqa: SIM115
    reads: list[tuple[int, int]] = []

    def fetch(off: int, n: int) -> bytes:
        reads.append((off, n))
        f.seek(off)
        return f.read(n)

    rf = RecordingFile(fetch, path.stat().st_size, path.name)
    try:
        h, way = read_gguf_header_quick(rf, path.name, GGUF_READ_BYTES)
    finally:
        f.close()
    return h, way, reads, rf


def _same(a, b) -> None:
    assert (a.version, a.data_offset, a.file_size) == (b.version, b.data_offset, b.file_size)
    assert a.metadata == b.metadata  # the skipped arrays are SkippedArray(count) in both
    assert a.tensors == b.tensors


@pytest.mark.parametrize(
    ("name", "way"),
    [
        ("qwen3-8b-150k", "quick"),
        ("small-vocab", "whole"),
        ("mmproj", "whole"),
        ("moe-94-layers", "quick"),
        ("spm-262k", "quick"),
        ("split-1", "quick"),
        ("split-2", "whole"),
    ],
)
def test_quick_read_equals_the_full_read(name, way, gguf_files):
    path = gguf_files[name]
    full = read_gguf_header(path)
    h, got, reads, _ = _quick(path)
    _same(h, full)
    assert got == way
    nbytes = sum(n for _, n in reads)
    if way == "quick":  # the header is megabytes; the reads are not
        assert full.data_offset > 2_500_000 and nbytes < 2_000_000 and len(reads) <= 20, (nbytes, len(reads))
    else:
        assert len(reads) == 1
    print(f"\n{name}: header {full.data_offset:,} bytes, {len(full.tensors)} tensors; read {nbytes:,} bytes in {len(reads)} reads ({got})")


def test_the_model_from_a_quick_read_is_the_local_files(gguf_files):
    """The spec and the exact weights, not only the header, for the 150k-token Qwen3-8B file."""
    from vramcalc.readers.gguf_spec import gguf_llm

    h, way, _, _ = _quick(gguf_files["qwen3-8b-150k"])
    assert way == "quick"
    spec, weights, notes = gguf_llm(h)
    assert (spec, weights, notes) == gguf_llm(read_gguf_header(gguf_files["qwen3-8b-150k"]))
    assert weights.precision == "Q4_K_M"  # general.file_type is the header's last key, after the tokenizer


def test_a_cached_quick_read_reads_the_same_bytes(gguf_files):
    """The cache keeps the segments read; the same reads over them give the same header, no fetch."""
    _, _, _, rf = _quick(gguf_files["qwen3-8b-150k"])
    segs = rf.segments()
    cached = SegmentFile(b"".join(b for _, b in segs), [(o, len(b)) for o, b in segs], rf.size, rf.name)
    h, way = read_gguf_header_quick(cached, rf.name, GGUF_READ_BYTES)
    assert way == "quick"
    _same(h, read_gguf_header(gguf_files["qwen3-8b-150k"]))


def test_a_failed_request_is_raised_not_retried(gguf_files):
    path = gguf_files["qwen3-8b-150k"]
    calls = []

    def fetch(off: int, n: int) -> bytes:
        calls.append(off)
        if len(calls) == 3:
            raise InputError("the server went away")
        with open(path, "rb") as f:
            f.seek(off)
            return f.read(n)

    with pytest.raises(InputError, match="went away"):
        read_gguf_header_quick(RecordingFile(fetch, path.stat().st_size, path.name), path.name, GGUF_READ_BYTES)
    assert len(calls) == 3  # no full read after a network error


def _hostile(d: Path, name: str, vocab, tensors, evil: bytes, where: float, gap: int = 0) -> Path:
    tokens, merges = list(vocab[0]), list(vocab[1])
    i = int(len(tokens) * where)
    tokens[i] = evil  # type: ignore[call-overload]
    merges[int(len(merges) * where)] = evil  # type: ignore[call-overload]
    return write_gguf_fast(d / name, tokenizer_kvs("llama", TINY_META, 15, tokens, merges), tensors, gap=gap)


def test_fake_headers_inside_token_strings_never_change_the_answer(vocab, tmp_path):
    """Token and merge strings holding what the quick read looks for (a copy of the file's own tensor
    infos; metadata entries for another file type and alignment): the full read's answer."""
    tiny = llama_tensors(**TINY, types={})
    infos, _ = tensor_infos(tiny)
    for label, evil in {
        "copy-of-infos": infos[:3000],
        "key-like-token": _kv("general.file_type", 7) + _kv("general.alignment", 64),
    }.items():
        p = _hostile(tmp_path, f"{label}.gguf", vocab, tiny, evil, 0.6)
        h, way, _, _ = _quick(p)
        _same(h, read_gguf_header(p))
        assert way == "quick", label  # the strings' insides are never parsed as entries
        p.unlink()


def test_a_forged_continuation_where_the_first_probe_lands_falls_back(vocab, tmp_path):
    """The worst case: a token placed so that the first probe window starts inside it, holding a
    chain of items, then as many metadata entries as the header has left (general.file_type 7, not
    15) and tensor infos. The quick read takes the forged end, and its checks refuse it (the forged
    tensors do not end the file where its data section would): the full read answers."""
    tiny = llama_tensors(**TINY, types={})
    tokens, merges = list(vocab[0]), list(vocab[1])
    kvs = tokenizer_kvs("llama", TINY_META, 15, tokens, merges)
    clean = write_gguf_fast(tmp_path / "clean.gguf", kvs, tiny)
    _, way, reads, _ = _quick(clean)
    assert way == "quick"
    first_probe = reads[1][0]
    # where each token starts in the file: the fixed header, the entries before the tokens, their header
    i_tok = next(i for i, (k, _) in enumerate(kvs) if k == "tokenizer.ggml.tokens")
    pos = 24 + len(kv_bytes(kvs[:i_tok])) + 8 + len("tokenizer.ggml.tokens") + 4 + 4 + 8
    k = 0
    while pos + 8 + len(tokens[k].encode()) <= first_probe:
        pos += 8 + len(tokens[k].encode())
        k += 1
    assert 1000 < k < len(tokens) - 3  # the probe lands inside the tokens, past the first read
    chain = b"".join(struct.pack("<Q", 3) + b"abc" for _ in range(80))
    rest = [
        ("tokenizer.ggml.token_type", [1, 1, 1]),
        ("tokenizer.ggml.merges", ["a b"]),
        ("tokenizer.ggml.eos_token_id", 2),
        ("tokenizer.ggml.add_bos_token", False),
        ("tokenizer.chat_template", "x"),
        ("general.quantization_version", 2),
        ("general.file_type", 7),
    ]
    assert len(rest) == len(kvs) - i_tok - 1
    forged = b"a" * (first_probe - pos - 8) + chain + kv_bytes(rest) + tensor_infos(tiny)[0] + b"\0" * 64
    tokens[k] = forged  # type: ignore[call-overload]
    p = write_gguf_fast(tmp_path / "forged.gguf", tokenizer_kvs("llama", TINY_META, 15, tokens, merges), tiny)
    h, way, reads, _ = _quick(p)
    assert reads[1][0] == first_probe  # the probe did land inside the forged token
    assert way == "fallback"
    _same(h, read_gguf_header(p))
    assert h.metadata["general.file_type"] == 15


def test_tensors_that_do_not_tile_the_data_fall_back_to_the_full_read(vocab, tmp_path):
    """A gap before the last tensor: the quick read cannot vouch for where the tensor infos start,
    so the full read answers (same header), and the source line says so."""
    p = _hostile(tmp_path, "gap.gguf", vocab, llama_tensors(**TINY, types={}), b"x", 0.5, gap=4096)
    h, way, _, _ = _quick(p)
    assert way == "fallback"
    _same(h, read_gguf_header(p))
    line = ModelSource(kind="hf", name="a/b", repo="a/b", bytes_read=8_000_000, requests=12, header_read=way).line()
    assert line.endswith("header read: 8.00 MB in 12 requests (the quick read's checks failed: whole header read)")
