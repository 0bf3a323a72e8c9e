"""Hostile input for the quick remote GGUF header read (vramcalc/readers/gguf_remote.py) and the range
reads under it: each file or server here is built to make the reader hang, fetch without bound, raise
a traceback, or accept a false end of a tokenizer array. The answer must be the full read's (or its
one-line error), in bounded reads and time.

Files carry a 20,000-token generated vocabulary (tests/gguf_tokenizer.py): past the first 64 KiB read,
so the quick read locates its end, and cheap to write.
"""

from __future__ import annotations

import struct
import threading
import time
from pathlib import Path

import pytest

from gguf_fixtures import llama_tensors, nbytes
from gguf_tokenizer import bpe_vocab, kv_bytes, tokenizer_kvs
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
    with pytest.raises(InputError, match=r"general\.alignment .* is not a power of two") as full:
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
    h, way, _ = _quick(p, p.stat().st_size + delta)
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


# --- hostile servers: the loopback fake Hub and Ollama registry, their file answers switched -------------


def _hostile_file(self, path: Path, extra: dict[str, str]) -> None:
    """hub_fakes' file answer, or the fault ``self.owner.mode`` names (for range reads past offset 0)."""
    import re as _re

    self.owner.auth.append((self.path, self.headers.get("Authorization")))
    mode = self.owner.mode
    m = _re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range") or "")
    if not mode or m is None or (mode != "ignore_range" and int(m.group(1)) == 0):
        return type(self).__mro__[2]._file(self, path, extra)
    start, end = int(m.group(1)), int(m.group(2))
    size = path.stat().st_size
    if mode == "ignore_range":  # 200 and the whole file
        start, end, status = 0, size - 1, 200
    elif mode == "wrong_start":  # 206, but bytes from the start of the file
        start, end, status = 0, end - start, 206
    else:  # "drip": 206 with the right headers, then one byte every 50 ms; "superscript*": Latin-1 digits
        status = 206
    with open(path, "rb") as f:
        f.seek(start)
        body = f.read(min(end - start + 1, 1 << 20))
    self.send_response(status)
    self.send_header("Content-Type", "application/octet-stream")
    self.send_header("Content-Length", "\u00b2" if mode == "superscript_length" else str(end - start + 1))
    if status == 206:
        lead = "\u00b2" if mode == "superscript" else ""
        self.send_header("Content-Range", f"bytes {lead}{start}-{end}/{size}")
    self.end_headers()
    if mode == "drip":
        for i in range(len(body)):
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
            time.sleep(0.05)
    else:
        self.wfile.write(body)
    self.close_connection = True


@pytest.fixture()
def servers(vocab, tmp_path, monkeypatch):
    """Start, on demand, a fake Hub or a fake Ollama registry serving a 20k-vocabulary GGUF (quick
    read) and a 1,000-token one (whole header in the first read); HF_TOKEN is set and the Hub's CDN
    is on another host name ('localhost' for '127.0.0.1')."""
    import contextlib

    import huggingface_hub.constants
    import huggingface_hub.utils._detect_agent as detect
    from hub_fakes import FakeHub, FakeOllama, FakeServer, _HubHandler, _OllamaHandler, ollama_model

    import vramcalc.readers.hub as hubmod

    monkeypatch.setattr(detect, "_registry", {"standardEnvVars": [], "harnesses": {}})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(hubmod, "_CLIENT_SET", False)
    monkeypatch.setenv("VRAMCALC_HTTP_TIMEOUT", "0.5")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_for_the_hub_only")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-store"))

    class HubH(_HubHandler):
        _file = _hostile_file

        def _redirect(self, location: str, extra: dict[str, str]) -> None:
            port = self.owner.httpd.server_address[1]
            super()._redirect(f"http://localhost:{port}{location}" if location.startswith("/cdn/") else location, extra)

    class OllamaH(_OllamaHandler):
        _file = _hostile_file

    class Hub(FakeHub):
        def __init__(self) -> None:
            self.repos, self.mode, self.auth = {}, "", []
            FakeServer.__init__(self, HubH)
            self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)  # a quick shutdown

    class Registry(FakeOllama):
        def __init__(self) -> None:
            self.manifests, self.blobs, self.mode, self.auth = {}, {}, "", []
            FakeServer.__init__(self, OllamaH)
            self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)  # a quick shutdown

    big = _file(tmp_path, vocab, "big-Q4_K_M.gguf")
    small = _file(tmp_path, (vocab[0][:1000], vocab[1][:100]), "small-Q4_K_M.gguf")
    with contextlib.ExitStack() as stack:

        def start(kind: str):
            if kind == "hf":
                hub = stack.enter_context(Hub())
                hub.add("someone/big-GGUF", {big.name: big})
                hub.add("someone/small-GGUF", {small.name: small})
                monkeypatch.setenv("HF_ENDPOINT", hub.url)
                return hub
            reg = stack.enter_context(Registry())
            for tag, p in (("big", big), ("small", small)):
                m = ollama_model(p)
                reg.manifests[("library", "tiny", tag)] = m.manifest
                reg.blobs.update(m.blobs)
            monkeypatch.setenv("VRAMCALC_OLLAMA_REGISTRY", reg.url)
            return reg

        yield start


def _run(*args: str) -> tuple[int, str, float]:
    from typer.testing import CliRunner

    from vramcalc.cli import app

    t = time.monotonic()
    r = CliRunner().invoke(app, ["check", *args, "--gpu", "rtx3060", "--json"])
    return r.exit_code, r.output, time.monotonic() - t


def _one_line_error(code: int, out: str, says: str) -> None:
    assert code == 2 and says in out and "Traceback" not in out and len(out.strip().splitlines()) <= 3, out


HF_BIG, HF_SMALL = ("someone/big-GGUF", "--source", "hf"), ("someone/small-GGUF", "--source", "hf")
OL_BIG, OL_SMALL = ("tiny:big", "--source", "ollama"), ("tiny:small", "--source", "ollama")


@pytest.mark.parametrize("model", [HF_BIG, OL_BIG])
def test_a_body_that_trickles_is_a_one_line_error_in_bounded_time(servers, model, monkeypatch):
    """Headers at once, then one byte every 50 ms: each byte is within the read timeout (0.5 s here),
    so only a deadline on the whole body ends it (a 64 KiB range read took 55 min before)."""
    servers(model[-1]).mode = "drip"
    monkeypatch.setenv("VRAMCALC_HTTP_TIMEOUT", "0.3")  # a 64 KiB body then has 0.6 s
    code, out, took = _run(*model)
    _one_line_error(code, out, "too slowly (a stalled body)")
    assert took < 5, took


@pytest.mark.parametrize("model", [HF_BIG, OL_BIG])
def test_a_range_answered_from_another_offset_is_refused(servers, model):
    servers(model[-1]).mode = "wrong_start"
    code, out, _ = _run(*model)
    _one_line_error(code, out, "answered bytes from 0")


@pytest.mark.parametrize(("model", "answers"), [(HF_SMALL, True), (OL_SMALL, True), (HF_BIG, False), (OL_BIG, False)])
def test_a_server_that_ignores_ranges(servers, model, answers):
    """200 and the whole file: a header in the first 64 KiB is read from its start (the Ollama reader
    refused the body as too large before); one that needs a later range is a one-line error."""
    servers(model[-1]).mode = "ignore_range"
    code, out, _ = _run(*model)
    if answers:
        assert code == 0, out
    else:
        _one_line_error(code, out, "ignored the range request")


def test_the_hub_token_never_reaches_another_host(servers):
    hub = servers("hf")
    code, out, _ = _run(*HF_BIG)
    assert code == 0, out
    cdn = [a for path, a in hub.auth if path.startswith("/cdn/")]
    assert len(cdn) >= 3 and cdn == [None] * len(cdn)


@pytest.mark.parametrize(("model", "mode"), [(HF_BIG, "superscript"), (OL_BIG, "superscript"), (OL_BIG, "superscript_length")])
def test_latin1_digits_in_range_headers_are_not_a_traceback(servers, model, mode):
    """'\u00b2' (Latin-1 superscript two) passes str.isdigit but not int(): a Content-Range start or
    a Content-Length holding it raised a ValueError, answered as "corrupt or unsupported model file"
    (measured before the fix, found in review round 3). Such a header is unreadable, as an absent one
    is; the bytes themselves are the file's, so the model is read."""
    servers(model[-1]).mode = mode
    code, out, _ = _run(*model)
    assert code == 0 and "Traceback" not in out, out
