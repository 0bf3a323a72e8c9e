"""A GGUF header over range requests without the tokenizer's strings ("quick read"), checked.

A GGUF header stores its metadata before the tensor infos, and the tokenizer's arrays of strings
(``tokenizer.ggml.tokens``, ``tokenizer.ggml.merges``: ~6 MB for a 150k-token vocabulary) are
length-prefixed, so a plain reader fetches all of them to reach the tensor infos. The memory model
needs none of their items: only the array's declared count (the vocabulary size comes from
``token_embd.weight``'s shape anyway), every other key, and the tensor infos.

The quick read parses the header with the same code as the full read (``gguf.Cursor``, the same
key, value and tensor-info checks), except that the items of a string array longer than
``gguf.MAX_KEPT_ARRAY`` (which the full read keeps as ``SkippedArray(count)`` too) are not read:
the array's end is *located* by reading small windows further in the file:

1. the items already in the first read are walked (a small array ends there: no probe);
2. a window at a guessed offset is classified by syncing on the chain of (u64 length, bytes) items:
   *inside* the array (a chain of items of the same kind as the array's first ones: merges hold one
   space each, tokens almost never), *end* (the chain reaches a position where the next metadata
   entries parse: a lowercase dotted key, a known value type, a plausible value; or, after the last
   entry, a tensor info), or *after* (no such chain: integer arrays, tensor infos, tensor data);
3. past the guess, steps that double each time until *after*, then halving, until a window holds
   the end.

Every key after a located end is then parsed normally (numeric arrays are skipped by arithmetic, as
in the full read), then the tensor infos. A wrong guess cannot pass silently: the result is kept
only if the tensor infos parse to exactly the declared count with known types, the bytes between
their end and the data start are the zero padding, the tensors tile the data section (the first at
offset 0, each next one at the aligned end of the one before: how gguf-py's GGUFWriter and ggml's
gguf.cpp write them), and the data section ends at the end of the file (give or take the last
tensor's padding). Any failure, or more than ``MAX_PROBES`` windows, falls back to the full read
(and says so). Residual: a file whose token strings embed a forged header continuation (keys,
tensor infos and padding) whose tensors also tile to the file's end would pass; a full read of the
same file would give the real header. That file is built to deceive; no accidental content is.

Bounds against hostile files (tests/test_hub_quick_hostile.py): at most ``MAX_PROBES`` windows,
at most ``_MAX_STEPS`` chain steps and entry checks per window (else the full read), padding over
a window never fetched (a huge ``general.alignment``: the full read never reads it). A located end
cannot count the items before it: the arrays with one item per token (token_type, scores) must
declare the tokens' count, so a wrong count of tokens is the full read's error. What the skipped
items hold is not read, so a corruption there (a wrong count of *merges*, which no array repeats; a
broken item length in the middle of the tokens) is not seen: the quick read answers with every key
and tensor of the file, where the full read refuses it (``benchmarks/fuzz.py --cli 0 --files 0
--quick 2000 --seed 14``: 228 of 2,000 corrupted headers; none answered differently, no traceback).
A Hub or registry file is content-addressed (LFS sha256, blob digest): such a file was uploaded
broken, not damaged on the way.
"""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path
from typing import IO, Any, cast

from vramcalc.errors import InputError
from vramcalc.readers.gguf import (
    ARRAY_TYPE,
    MAX_ARRAY_STRINGS,
    MAX_KEPT_ARRAY,
    SCALAR_FORMATS,
    STRING_TYPE,
    Cursor,
    GgufHeader,
    SkippedArray,
    read_gguf_header,
    read_key,
    read_start,
    read_tensor_infos,
    read_value,
)

#: Bytes of each probe window (a choice: a window holds a few thousand tokenizer items, enough to
#: sync on the chain and classify it; 20 windows stay under 1.3 MB).
WINDOW = 64 * 1024
#: At most this many probe windows per header, then the full read (a choice: bounds the requests).
MAX_PROBES = 24
#: Offsets within a window where a chain of items may start (the longest item is shorter).
_SYNC_SPAN = 4096
#: An item longer than this breaks a chain (tokens and merges are far shorter; a longer real one
#: only makes the search fail, and the full read answer).
_MAX_ITEM = 4096
#: Items a chain needs before it counts as inside the array, or before its end is believed.
_MIN_ITEMS = 48
#: Chain steps one window's classification may take, over all its sync offsets (a bound, not a
#: tuning: a real window syncs in one or two walks of at most ``WINDOW // 8`` items each; strings
#: that nest item chains inside items make every sync offset walk the whole window, ~2 s a window).
_MAX_STEPS = 8 * WINDOW // 8
#: Metadata entries checked past a candidate end (a bound on the work per candidate; the entries
#: after a located end are all parsed and checked anyway).
_MAX_END_ENTRIES = 32
#: Metadata keys after a located end must look like every key llama.cpp writes (lowercase dotted).
_KEY = re.compile(rb"[a-z0-9_]+(?:\.[a-z0-9_\-]+)+")
_TENSOR_NAME = re.compile(rb"[A-Za-z0-9_.\-]+")
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


class _Fail(Exception):
    """The quick read cannot vouch for its result: the full read answers."""


class _NetError(Exception):
    """A read of the underlying file failed (the network): raised as is, never retried by a full read."""

    def __init__(self, err: BaseException):
        super().__init__(str(err))
        self.err = err


class _Reads(io.RawIOBase):
    """The file object, with its errors kept apart from the parser's (a failed request is not a wrong guess)."""

    def __init__(self, f: IO[bytes] | io.RawIOBase):
        super().__init__()
        self.f = f

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def read(self, n: int | None = -1) -> bytes:
        try:
            return self.f.read(-1 if n is None else n)
        except (InputError, OSError) as e:
            raise _NetError(e) from None


def read_gguf_header_quick(f: IO[bytes] | io.RawIOBase, name: str, read_bytes: tuple[int, int]) -> tuple[GgufHeader, str]:
    """The header of a remote (or cached) GGUF: the quick read when it validates, else the full read.

    Returns the header and how it was read: ``"quick"`` (string arrays located, their items not
    read), ``"whole"`` (nothing to skip: the same reads as the full read), or ``"fallback"`` (the
    quick read's checks failed: the full read answered).
    """
    size = f.seek(0, io.SEEK_END)
    f.seek(0)
    try:
        h, skipped = _quick(cast("IO[bytes]", _Reads(f)), Path(name), int(size), read_bytes)
        return h, "quick" if skipped else "whole"
    except _NetError as e:
        raise e.err from None
    except (_Fail, InputError, RecursionError, struct.error, UnicodeDecodeError):
        pass
    f.seek(0)
    return read_gguf_header(cast("IO[bytes]", f), name=name, read_bytes=read_bytes), "fallback"


def _quick(f: IO[bytes], path: Path, size: int, read_bytes: tuple[int, int]) -> tuple[GgufHeader, bool]:
    cur = Cursor(f, path, size, read_bytes)
    version, n_tensors, n_kv = read_start(cur, path, size)
    if cur.order != "<":
        raise _Fail("big-endian")
    meta: dict[str, Any] = {}
    probes = [0]
    located = False
    for i in range(n_kv):
        key = read_key(cur, path, meta, i)
        if located and not _KEY.fullmatch(key.encode()):
            raise _Fail(f"key {key!r} after a located end")
        vtype = cur.scalar("I", f"metadata '{key}'")
        if vtype != ARRAY_TYPE:
            read_value(cur, path, meta, key, vtype)
            continue
        what = f"metadata '{key}'"
        itype, count = cur.scalar("I", what), cur.scalar("Q", what)
        if itype != STRING_TYPE or count <= MAX_KEPT_ARRAY:
            meta[key] = cur.array(itype, count, what)
            continue
        if count > MAX_ARRAY_STRINGS:
            raise _Fail("too many strings")
        cur.need(8 * count, what)  # every string has at least its 8-byte length
        if _skip_buffered(cur, count):
            meta[key] = SkippedArray(count)
            continue
        located = True
        _locate_end(cur, f, count, n_kv - i - 1, set(meta) | {key}, probes)
        cur.chunk = cur.max_chunk = WINDOW  # what follows (the last keys, the tensor infos) is small
        meta[key] = SkippedArray(count)
    h = read_tensor_infos(cur, path, size, version, meta, n_tensors)
    if located:
        _check_counts(meta)
        _check_layout(cur, h)
    return h, located


#: Arrays with one item per token: their declared counts must agree with the tokens' count.
_PER_TOKEN = ("tokenizer.ggml.token_type", "tokenizer.ggml.scores")


def _check_counts(meta: dict[str, Any]) -> None:
    """A located end cannot count the items before it: an array whose declared count is wrong (a
    flipped bit) ends where it ends all the same, and the full read of that file fails. The arrays
    with one item per token must declare the tokens' count (whose end was located)."""
    tokens = meta.get("tokenizer.ggml.tokens")
    n = tokens.length if isinstance(tokens, SkippedArray) else None
    for key in _PER_TOKEN:
        v = meta.get(key)
        m = v.length if isinstance(v, SkippedArray) else len(v) if isinstance(v, list) else None
        if n is not None and m is not None and m != n:
            raise _Fail(f"{key} declares {m} items, the tokens {n}")


def _skip_buffered(cur: Cursor, count: int) -> bool:
    """Skip the array when all its items lie in the bytes already read (as the full read would)."""
    buf, start, pos = cur.buf, cur.start, cur.pos
    end = start + len(buf)
    for _ in range(count):
        if pos + 8 > end:
            return False
        pos += 8 + _U64.unpack_from(buf, pos - start)[0]
        if pos > end:
            return False
    cur.pos = pos
    return True


def _spaced(item: bytes) -> bool:
    return item.count(b" ") == 1


def _sample(cur: Cursor) -> tuple[int, int, float, int]:
    """The items of the array from the cursor on, as far as the read bytes go: (position of the
    first item not wholly read, items walked, share holding one space, bytes walked)."""
    buf, start, pos = cur.buf, cur.start, cur.pos
    end = start + len(buf)
    n = spaced = 0
    while pos + 8 <= end:
        ln = _U64.unpack_from(buf, pos - start)[0]
        if pos + 8 + ln > end:
            break
        spaced += _spaced(buf[pos + 8 - start : pos + 8 + ln - start])
        n += 1
        pos += 8 + ln
    return pos, n, spaced / n if n else 0.0, pos - cur.pos


def _window(f: IO[bytes], x: int, n: int, size: int, probes: list[int]) -> bytes:
    probes[0] += 1
    if probes[0] > MAX_PROBES:
        raise _Fail("too many probes")
    n = min(n, size - x)
    if n <= 0:
        return b""
    f.seek(x)
    data = f.read(n)
    if not isinstance(data, bytes | bytearray) or len(data) != n:
        raise _Fail("short read")
    return bytes(data)


def _locate_end(cur: Cursor, f: IO[bytes], count: int, n_left: int, keys: set[str], probes: list[int]) -> None:
    """Put the cursor at the end of the string array whose items start at ``cur.pos``, and its
    window (the bytes read around the end) in the cursor's buffer."""
    size = cur.size
    a = cur.pos
    lo, n_seen, spaced_share, walked = _sample(cur)
    if n_seen < _MIN_ITEMS:  # the array starts near the end of what was read: read its start
        data = _window(f, a, WINDOW, size, probes)
        cur.buf, cur.start = data, a
        f.seek(a + len(data))
        lo, n_seen, spaced_share, walked = _sample(cur)
        if n_seen < _MIN_ITEMS:
            raise _Fail("too few items to learn the array's kind")
    merges_like = spaced_share > 0.5
    # a first guess: the rest of the items as long as the ones seen (tokenizers sort short ones first)
    guess = lo + (count - n_seen) * max(walked // n_seen, 8)
    lo_min = lo + 8 * (count - n_seen)  # the end is at least here (an empty string takes 8 bytes)
    hi: int | None = None
    x = max(guess, lo_min)
    step = max(2 * WINDOW, (x - a) // 16)  # past the guess: growing steps, each twice the last
    while True:
        if hi is not None and hi - lo <= WINDOW:
            data = _window(f, lo, hi - lo + _MAX_ITEM + 512, size, probes)
            kind, at = _classify(data, lo, merges_like, n_left, keys, synced=True)
            if kind != "end":
                raise _Fail("the end is not where the search narrowed to")
            _inject(cur, f, data, lo, at)
            return
        if hi is not None:
            x = (lo + hi) // 2
        x = min(x, size - 1)
        data = _window(f, x, WINDOW, size, probes)
        kind, at = _classify(data, x, merges_like, n_left, keys, synced=False)
        if kind == "end":
            _inject(cur, f, data, x, at)
            return
        if kind == "inside":
            lo = at
            if hi is None:
                if x >= size - 1:
                    raise _Fail("the array runs to the end of the file")
                x, step = x + step, 2 * step
        else:
            hi = max(x + _SYNC_SPAN + _MAX_ITEM, lo + 1)
            if x <= lo:
                raise _Fail("the search found no end")


def _inject(cur: Cursor, f: IO[bytes], data: bytes, x: int, at: int) -> None:
    cur.buf, cur.start, cur.pos = data, x, at
    f.seek(x + len(data))


def _classify(data: bytes, x: int, merges_like: bool, n_left: int, keys: set[str], synced: bool) -> tuple[str, int]:
    """("inside", an item boundary near the window's end) | ("end", the array's end) | ("after", x)."""
    n_data = len(data)
    tried: set[int] = set()
    steps = [0]  # chain steps and metadata entries checked, over every sync offset
    for s in range(1 if synced else min(_SYNC_SPAN, n_data)):
        if s in tried:
            continue
        b, n, nonempty, spaced = s, 0, 0, 0
        while True:
            tried.add(b)
            steps[0] += 1
            if steps[0] > _MAX_STEPS:
                raise _Fail("the window's items do not sync")
            if b + 8 > n_data:
                break
            ln = _U64.unpack_from(data, b)[0]
            if (n >= _MIN_ITEMS or synced) and _is_end(data, b, n_left, keys, steps):
                if n and (nonempty < 0.9 * n or (spaced > n / 2) != merges_like) and not synced:
                    b = -1
                    break
                return "end", x + b
            if ln > _MAX_ITEM or b + 8 + ln > n_data:
                if ln > _MAX_ITEM:
                    b = -1
                break
            item = data[b + 8 : b + 8 + ln]
            nonempty += ln > 0
            spaced += _spaced(item)
            n += 1
            b += 8 + ln
            if n >= 32 and nonempty < 0.5 * n:  # runs of empty strings: zeros (padding, sparse data), not a tokenizer
                b = -1
                break
        if b < 0 or n < _MIN_ITEMS or nonempty < 0.9 * n or (spaced > n / 2) != merges_like:
            if synced:
                return "after", x
            continue
        return "inside", x + b
    return "after", x


def _is_end(data: bytes, b: int, n_left: int, keys: set[str], steps: list[int]) -> bool:
    """Whether the metadata entries left (or, for none, a tensor info) parse from ``b`` in the
    window, as far as it goes: each key lowercase dotted and new, each value type known and each
    value plausible. The first entry's key and type must be in the window."""
    n = len(data)
    if n_left == 0:
        return _is_tensor_info(data, b)
    seen: set[bytes] = set()
    first = True
    for _ in range(min(n_left, _MAX_END_ENTRIES)):
        steps[0] += 1
        if b + 8 > n:
            return not first
        ln = _U64.unpack_from(data, b)[0]
        if not 0 < ln <= 256 or b + 12 + ln > n:
            return not first and ln <= 256 and b + 8 + ln > n - 4
        key = data[b + 8 : b + 8 + ln]
        if not _KEY.fullmatch(key) or key in seen or key.decode() in keys:
            return False
        seen.add(key)
        vtype = _U32.unpack_from(data, b + 8 + ln)[0]
        b += 12 + ln
        first = False
        fmt = SCALAR_FORMATS.get(vtype)
        if fmt is not None:
            b += struct.calcsize(fmt)
        elif vtype == STRING_TYPE:
            if b + 8 > n:
                return True
            sl = _U64.unpack_from(data, b)[0]
            if sl > 2**24:
                return False
            b += 8 + sl
        elif vtype == ARRAY_TYPE:
            if b + 12 > n:
                return True
            itype, count = _U32.unpack_from(data, b)[0], _U64.unpack_from(data, b + 4)[0]
            b += 12
            if itype in SCALAR_FORMATS:
                if count > 2**32:
                    return False
                b += count * struct.calcsize(SCALAR_FORMATS[itype])
            elif itype == STRING_TYPE:
                return count <= MAX_ARRAY_STRINGS  # another string array: its items are not checked here
            else:
                return itype == ARRAY_TYPE
        else:
            return False
        if b >= n:
            return True
    if n_left > _MAX_END_ENTRIES:  # as many entries as are checked parsed: believed (and all parsed after)
        return True
    return b >= n or _is_tensor_info(data, b)


def _is_tensor_info(data: bytes, b: int) -> bool:
    n = len(data)
    if b + 8 > n:
        return True
    ln = _U64.unpack_from(data, b)[0]
    if not 0 < ln <= 256 or b + 12 + ln > n:
        return False
    if not _TENSOR_NAME.fullmatch(data[b + 8 : b + 8 + ln]):
        return False
    n_dims = _U32.unpack_from(data, b + 8 + ln)[0]
    return 1 <= n_dims <= 8


def _check_layout(cur: Cursor, h: GgufHeader) -> None:
    """What a located end must agree with: zero padding up to the data start, tensors tiling the
    data section from offset 0 in aligned steps, and the data section ending at the file's end."""
    align = h.metadata.get("general.alignment", 32)
    if h.data_offset - cur.pos > WINDOW:  # a huge general.alignment: its padding is not fetched (the full read never reads it)
        raise _Fail(f"{h.data_offset - cur.pos} bytes of padding before the tensor data")
    pad = cur.take(h.data_offset - cur.pos, "the padding before the tensor data")
    if pad.strip(b"\0"):
        raise _Fail("the bytes before the data start are not padding")
    expected = 0
    end = 0
    for t in sorted(h.tensors, key=lambda t: t.offset):
        if t.offset != expected:
            raise _Fail(f"tensor {t.name} at {t.offset}, not {expected}")
        end = t.offset + t.nbytes
        expected = -(-end // align) * align
    if h.file_size not in (h.data_offset + end, h.data_offset + expected):
        raise _Fail(f"the data section ends at {h.data_offset + end}, the file at {h.file_size}")
