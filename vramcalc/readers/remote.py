"""What the Hub and Ollama readers share: the cache of what was read, the count of requests and
bytes, range-read file objects, and where a model came from (``ModelSource``).

No network library is imported here: ``hub`` brings ``huggingface_hub`` (lazily), ``ollama`` the
standard library's urllib.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from vramcalc.errors import InputError
from vramcalc.jsonable import Jsonable, doc, kw_result

if TYPE_CHECKING:
    from collections.abc import Callable

    from vramcalc.readers.gguf import GgufHeader

#: How long a branch or tag name (``main``, ``latest``) is trusted to point at the commit or manifest
#: read last time before it is asked again: a choice (a day), so that a second check makes no
#: request while a re-upload is seen the next day. A commit hash or a content digest never expires.
REF_TTL_S = 24 * 3600
#: Seconds a connection or a read may take before a remote lookup gives up (a choice; exit 2).
#: ``VRAMCALC_HTTP_TIMEOUT`` overrides it (tests use a short one).
DEFAULT_TIMEOUT_S = 10.0
#: The first range read of a GGUF header, and the largest (each read doubles the last): a choice.
#: A header without a tokenizer (an mmproj, the 2nd part of a split GGUF: a few hundred tensor infos
#: of ~60 bytes) fits the first read; a 150k-token vocabulary's strings are located by 64 KiB reads
#: (``gguf_remote``), not fetched (a larger first read measured the same request count and more
#: bytes: 0.97 MB at 256 KiB, 0.77 MB at 64 KiB for the tests' Qwen3-8B header); the doubling reads
#: serve the full read that a failed check falls back to.
GGUF_READ_BYTES = (64 * 1024, 4 * 2**20)


def combine_header_reads(ways: list[str]) -> str:
    """One word for how the GGUF headers of an answer were read (``ModelSource.header_read``)."""
    for w in ("fallback", "quick"):
        if w in ways:
            return w
    return "whole"


def timeout_s() -> float:
    try:
        return max(0.1, float(os.environ.get("VRAMCALC_HTTP_TIMEOUT", DEFAULT_TIMEOUT_S)))
    except ValueError:
        return DEFAULT_TIMEOUT_S


#: The slowest body a remote read waits for: ``timeout_s()`` per 64 KiB asked, plus one (a choice:
#: 6.5 KB/s at the default 10 s). The timeout alone bounds each wait for a byte, not the whole body:
#: a server that sends one byte every few seconds would hold a 64 KiB read for days.
BODY_BYTES_PER_TIMEOUT = 64 * 1024


def body_deadline(n: int) -> float:
    """The ``time.monotonic()`` by which a body of ``n`` bytes must have arrived."""
    return time.monotonic() + timeout_s() * (1 + n / BODY_BYTES_PER_TIMEOUT)


def header_int(value: str | None) -> int | None:
    """A response header's non-negative integer (Content-Length, a range bound); None: absent or not
    ASCII digits. Headers are Latin-1 text, where '\u00b2' passes ``str.isdigit`` and fails ``int``."""
    v = (value or "").strip()
    return int(v) if v.isascii() and v.isdigit() else None


def range_start(content_range: str | None) -> int | None:
    """The first byte of a 206 answer's ``Content-Range: bytes START-END/SIZE`` (None: absent or unreadable)."""
    if not content_range:
        return None
    unit, _, spec = content_range.strip().partition(" ")
    return header_int(spec.partition("-")[0]) if unit == "bytes" else None


def offline_env() -> bool:
    """``HF_HUB_OFFLINE=1`` (huggingface_hub's switch; also honoured for Ollama's registry)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cache_root() -> Path:
    """``<platformdirs user cache dir>``; ``VRAMCALC_HOME/cache`` when that is set (like the catalog)."""
    base = os.environ.get("VRAMCALC_HOME")
    if base:
        return Path(base) / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir("vramcalc", appauthor=False))


def _key(text: str) -> str:
    """A file name for any repo / revision / path (quoted; long ones hashed)."""
    q = quote(text, safe="")
    return q if len(q) <= 150 else hashlib.sha256(text.encode()).hexdigest()


class Cache:
    """JSON and byte segments under ``cache_root()/<kind>/<key>/...``; unreadable entries are misses."""

    def __init__(self, kind: str):
        self.root = cache_root() / kind

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*(_key(p) for p in parts))

    def get_json(self, *parts: str, ttl: float | None = None) -> Any:
        p = self.path(*parts)
        try:
            if ttl is not None and time.time() - p.stat().st_mtime > ttl:
                return None
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put_json(self, value: Any, *parts: str) -> None:
        self._write(self.path(*parts), json.dumps(value).encode())

    def get_segments(self, *parts: str) -> SegmentFile | None:
        p = self.path(*parts)
        index = self.get_json(*parts[:-1], parts[-1] + ".json")
        try:
            data = p.read_bytes()
            segs = [(int(o), int(n)) for o, n in index["segments"]]
            size = int(index["size"])
        except (OSError, TypeError, KeyError, ValueError):
            return None
        if sum(n for _, n in segs) != len(data):
            return None
        return SegmentFile(data, segs, size, str(index.get("name") or parts[-1]))

    def put_segments(self, f: RecordingFile, *parts: str) -> None:
        segs = f.segments()
        self._write(self.path(*parts), b"".join(b for _, b in segs))
        index = {"size": f.size, "name": f.name, "segments": [(o, len(b)) for o, b in segs]}
        self._write(self.path(*parts[:-1], parts[-1] + ".json"), json.dumps(index).encode())

    @staticmethod
    def _write(p: Path, data: bytes) -> None:
        """Write atomically; a cache that cannot be written is only slower, never an error."""
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, p)
        except OSError:
            pass


class RemoteNotFound(InputError):
    """No such repo, revision, file, or tag (404): the next source in the resolution order may have it."""


@dataclass
class Traffic:
    """Requests made and bytes received (response bodies) by one lookup."""

    requests: int = 0
    bytes: int = 0

    def add(self, nbytes: int) -> None:
        self.requests += 1
        self.bytes += nbytes


class RecordingFile(io.RawIOBase):
    """A seekable, read-only binary file whose bytes come from ``fetch(offset, n)`` (a range
    request), reading only what is asked; what was read is kept (``segments``) for the cache."""

    def __init__(self, fetch: Any, size: int, name: str):
        super().__init__()
        self.fetch, self.size, self.name, self.pos = fetch, size, name, 0
        self._got: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        if n <= 0:
            return b""
        data = self.fetch(self.pos, n)
        if len(data) != n:
            raise InputError(f"{self.name}: the server sent {len(data)} bytes for a range of {n} (a truncated body).")
        if len(data) > len(self._got.get(self.pos, b"")):  # two reads at one offset: the longer is kept
            self._got[self.pos] = data
        self.pos += n
        return data

    def segments(self) -> list[tuple[int, bytes]]:
        return sorted(self._got.items())


def cached_gguf_header(
    cache: Cache,
    key: tuple[str, ...],
    name: str,
    size: int,
    ways: list[str],
    offline: str | None,
    fetcher: Callable[[], Callable[[int, int], bytes]],
) -> GgufHeader:
    """A GGUF header by range reads (``fetcher()`` gives the range-read function, only when the
    network is used), or from the bytes cached under ``key`` by the same reads the first time; how
    it was read is appended to ``ways``. ``offline``: the error when it is not cached (None: online)."""
    from vramcalc.readers.gguf_remote import read_gguf_header_quick

    cached = cache.get_segments(*key)
    if cached is not None:
        try:  # the same reads as the first time, from the bytes they got
            h, way = read_gguf_header_quick(cached, name, GGUF_READ_BYTES)
            ways.append(way)
            return h
        except (InputError, OSError):
            pass  # a cache that does not hold the whole header: read it again
    if offline is not None:
        raise InputError(offline)
    rf = RecordingFile(fetcher(), size, name)
    h, way = read_gguf_header_quick(rf, name, GGUF_READ_BYTES)
    ways.append(way)
    cache.put_segments(rf, *key)
    return h


class SegmentFile(RecordingFile):
    """The bytes of a header read before (from the cache): a read outside them is an OSError."""

    def __init__(self, data: bytes, segs: list[tuple[int, int]], size: int, name: str):
        self._segs: list[tuple[int, bytes]] = []
        i = 0
        for off, n in segs:
            self._segs.append((off, data[i : i + n]))
            i += n
        super().__init__(self._from_segments, size, name)

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes from the cached segment holding the position (a short read at its end)."""
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        out = b""
        while len(out) < n:  # across segments that overlap or touch (reads of a quick header read overlap)
            at = self.pos + len(out)
            best = max((b[at - start :] for start, b in self._segs if start <= at < start + len(b)), key=len, default=b"")
            if not best:
                break
            out += best[: n - len(out)]
        if n > 0 and not out:
            raise OSError(f"the cached header has no byte at {self.pos}")
        self.pos += len(out)
        return out

    def _from_segments(self, off: int, n: int) -> bytes:
        raise OSError("not used")


@kw_result
class ModelSource(Jsonable):
    """Where a model that is not a catalog entry came from, and what reading it cost."""

    kind: str = doc("file | ollama | hf (Hugging Face Hub).")
    name: str = doc("The name as given.")
    repo: str | None = doc("Hub repo id, or Ollama model (namespace/model:tag).", default=None)
    revision: str | None = doc("Branch or tag asked (Hub) / tag (Ollama).", default=None)
    commit: str | None = doc("Hub commit hash, or the Ollama manifest's digest.", default=None)
    files: list[str] = doc("Files (or blobs) whose headers were read.", default_factory=list)
    bytes_read: int = doc("Bytes received over the network for this answer (0: answered from the cache).", default=0)
    requests: int = doc("HTTP requests made for this answer.", default=0)
    cached: bool = doc("True when everything came from vramcalc's cache.", default=False)
    order: list[str] = doc("The resolution order tried, each with its outcome.", default_factory=list)
    store: str | None = doc("The local Ollama models folder the model was read from (None: not the local store).", default=None)
    settings: dict[str, Any] = doc("Settings taken from the source (Ollama's num_ctx, OLLAMA_* variables).", default_factory=dict)
    header_read: str = doc(
        "How GGUF headers were read: quick (the tokenizer's strings located by small range reads, not fetched), "
        "whole (every header byte), or fallback (the quick read's checks failed, so the whole header was read).",
        default="whole",
    )

    def line(self) -> str:
        """One line for the output header."""
        where = {"hf": "Hugging Face", "ollama": "Ollama", "file": "file"}.get(self.kind, self.kind)
        head = f"Model from {where} {self.repo or self.name}"
        if self.revision and self.kind == "hf" and self.revision != "main":
            head += f"@{self.revision}"
        if self.commit:
            head += f" (commit {self.commit[:12]})" if self.kind == "hf" else f" (manifest {self.commit[:19]})"
        if self.files:
            head += f", file{'s' if len(self.files) > 1 else ''} {', '.join(self.files)}"
        if self.kind == "file":
            return head
        if self.cached:
            return head + (f", from the local Ollama store {self.store}" if self.store else ", from the cache (no request)")
        line = head + f", header read: {_mb(self.bytes_read)} in {self.requests} request{'s' if self.requests != 1 else ''}"
        if self.header_read == "fallback":
            line += " (the quick read's checks failed: whole header read)"
        return line


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 10_000 else f"{n:,} bytes"
