"""The GGUF header parser: metadata and tensor infos, never the tensor data.

The type ids, block sizes and file types are the ``gguf`` package's constants. ``gguf.GGUFReader``
is not used: it builds a numpy view per tokenizer string (measured here with gguf 0.19: 6.9 s for
a header holding a 151,936-token vocabulary and 151,387 merges, as Qwen2 GGUFs do; this parser
0.1 s) and raises assorted exceptions on a short file. This parser walks the header by plain
reads of a seekable binary stream (a path, an open file, ``io.BytesIO``, or a remote file object
such as ``HfFileSystem().open(...)``), in chunks of ``CHUNK_BYTES``, skips long arrays, and checks
every length against the file size, so a truncated or corrupt file is a clean one-line error.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from vramcalc.errors import InputError

GGUF_MAGIC = b"GGUF"
#: GGUF metadata value types (gguf constants GGUFValueType): id -> struct format (None: string/array).
SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING_TYPE, ARRAY_TYPE = 8, 9
#: Arrays longer than this (tokenizer vocabularies, merges) are skipped; only their length is kept.
#: A choice, not a format limit: per-layer arrays (head counts, SWA patterns) have one item per layer
#: (at most a few hundred), tokenizer arrays tens of thousands (32,000 for Llama 2).
#: Bounds on what a header may declare, so that a sparse file of zeros cannot keep the parser looping:
#: string (and nested) arrays are read item by item (the largest real ones are tokenizer vocabularies of
#: ~262k tokens and merge lists of ~500k), and each tensor entry builds an object (a large MoE GGUF has
#: a few thousand). Chosen bounds, far above any published file.
MAX_ARRAY_STRINGS = 2**24
MAX_TENSORS = 2**20
MAX_KEPT_ARRAY = 4096
#: Bytes asked of the stream per read (a choice: few reads for a multi-MB tokenizer header, and at
#: most this much read past the header's end).
CHUNK_BYTES = 1 << 20
#: The fixed part of a GGUF header: magic 4 + version 4 + tensor count 8 + metadata count 8.
MIN_HEADER_BYTES = 24


@dataclass(frozen=True)
class GgufTensorInfo:
    """One tensor of a GGUF file, from its header."""

    name: str
    shape: tuple[int, ...]  # ne0 (row length) first, as GGUF stores it
    ggml_type: str  # GGML type name: F32, F16, Q4_K, ...
    offset: int  # from the start of the data section
    nbytes: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class SkippedArray:
    """A long metadata array (tokenizer) whose items were skipped: only its length is kept."""

    length: int


@dataclass
class GgufHeader:
    """What a GGUF file's header says: metadata, tensor infos, where the data starts."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: list[GgufTensorInfo]
    data_offset: int
    file_size: int

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_key(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{key}", default)


def gguf_constants() -> tuple[Any, Any, Any]:
    """The gguf package's (GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType), imported on first use."""
    try:
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType
    except ImportError as e:  # a dependency of vramcalc: only a broken install lacks it
        raise InputError(
            f"Reading GGUF files needs the 'gguf' package, a dependency of vramcalc that is missing here ({e}); reinstall vramcalc."
        ) from e
    return GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType


class Cursor:
    """Bounds-checked reads of a seekable binary stream, through a window of the bytes read so far.

    ``pos`` is the absolute offset in the file; ``buf`` holds the bytes from ``start`` on, and the
    stream is positioned at ``start + len(buf)``. Every length is checked against ``size`` (the
    file's size) before anything is read, so a corrupt length never triggers a huge read.
    """

    def __init__(self, f: IO[bytes], path: Path, size: int, read_bytes: tuple[int, int] = (CHUNK_BYTES, CHUNK_BYTES)):
        self.f, self.path, self.size, self.order = f, path, size, "<"
        self.buf, self.start, self.pos = b"", 0, 0
        # bytes asked per read: the first, doubling up to the second (remote reads start small)
        self.chunk, self.max_chunk = read_bytes

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise InputError(f"{self.path}: truncated or corrupt GGUF file: {what} runs past the end of the file ({self.size} bytes).")

    def fill(self, n: int, what: str) -> int:
        """Make the window hold the ``n`` bytes at ``pos`` (bounds already checked); their index in ``buf``."""
        i = self.pos - self.start
        if i >= 0 and i + n <= len(self.buf):
            return i
        parts, got = [], 0
        try:
            if 0 <= i <= len(self.buf):
                parts.append(self.buf[i:])
                got = len(parts[0])
            else:  # the position was skipped past the window: go there
                self.f.seek(self.pos)
            while got < n:
                # never past the end of the file: a range read there is an error on some servers
                chunk = self.f.read(min(max(n - got, self.chunk), self.size - self.pos - got))
                self.chunk = min(2 * self.chunk, self.max_chunk)
                if not chunk:
                    raise InputError(
                        f"{self.path}: truncated or corrupt GGUF file: {what} runs past the end of the file "
                        f"(it ends at {self.pos + got} bytes)."
                    )
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise TypeError(f"GGUF header reader: expected a binary stream, read {type(chunk).__name__}")
                parts.append(bytes(chunk))
                got += len(chunk)
        except OSError as e:
            raise InputError(f"{self.path}: cannot read {what}: {e.strerror or e}.") from None
        self.buf, self.start = b"".join(parts), self.pos
        return 0

    def take(self, n: int, what: str) -> bytes:
        self.need(n, what)
        i = self.fill(n, what)
        self.pos += n
        return self.buf[i : i + n]

    def scalar(self, fmt: str, what: str) -> Any:
        n = struct.calcsize(fmt)
        self.need(n, what)
        i = self.fill(n, what)
        (v,) = struct.unpack_from(self.order + fmt, self.buf, i)
        self.pos += n
        return v

    def string(self, what: str) -> str:
        n = self.scalar("Q", what)
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{self.path}: corrupt GGUF file: {what} is not valid UTF-8.") from None

    def skip_strings(self, count: int, what: str) -> None:
        """Skip ``count`` strings (a tokenizer array): only their 8-byte lengths are read."""
        unpack = struct.Struct(self.order + "Q").unpack_from
        buf, start, pos = self.buf, self.start, self.pos
        last = start + len(buf) - 8  # the last position whose length is in the window
        for _ in range(count):
            if pos > last:  # past the window: check the bound, read on
                self.pos = pos
                self.need(8, what)
                self.fill(8, what)
                buf, start = self.buf, self.start
                last = start + len(buf) - 8
            pos += 8 + unpack(buf, pos - start)[0]
        self.pos = pos
        self.need(0, what)

    def value(self, vtype: int, what: str) -> Any:
        fmt = SCALAR_FORMATS.get(vtype)
        if fmt is not None:
            return self.scalar(fmt, what)
        if vtype == STRING_TYPE:
            return self.string(what)
        if vtype == ARRAY_TYPE:
            itype = self.scalar("I", what)
            count = self.scalar("Q", what)
            return self.array(itype, count, what)
        raise InputError(f"{self.path}: corrupt GGUF file: {what} has unknown value type {vtype}.")

    def array(self, itype: int, count: int, what: str) -> Any:
        """An array's items, after its item type and count were read."""
        ifmt = SCALAR_FORMATS.get(itype)
        if ifmt is not None:
            nbytes = count * struct.calcsize(ifmt)
            self.need(nbytes, what)
            if count > MAX_KEPT_ARRAY:
                self.pos += nbytes  # skipped: not read
                return SkippedArray(count)
            i = self.fill(nbytes, what)
            out = list(struct.unpack_from(f"{self.order}{count}{ifmt}", self.buf, i))
            self.pos += nbytes
            return out
        if itype in (STRING_TYPE, ARRAY_TYPE) and count > MAX_ARRAY_STRINGS:  # each is read one by one: bound the loop
            raise InputError(f"{self.path}: corrupt GGUF file: {what} declares {count:,} items (at most {MAX_ARRAY_STRINGS:,}).")
        if itype == STRING_TYPE:
            if count > MAX_KEPT_ARRAY:
                self.need(8 * count, what)  # every string has at least its 8-byte length
                self.skip_strings(count, what)
                return SkippedArray(count)
            return [self.string(what) for _ in range(count)]
        if itype == ARRAY_TYPE:
            return [self.value(ARRAY_TYPE, what) for _ in range(count)]
        raise InputError(f"{self.path}: corrupt GGUF file: {what} has unknown array item type {itype}.")


def read_gguf_header(
    source: str | os.PathLike[str] | IO[bytes] | io.RawIOBase, name: str | None = None, read_bytes: tuple[int, int] | None = None
) -> GgufHeader:
    """Parse a GGUF file's header (metadata + tensor infos); the tensor data is never read.

    Args:
        source: a path, or a seekable binary file object (an open file, ``io.BytesIO``, a remote
            file such as ``HfFileSystem().open(...)``). A file object is read from its start
            by plain reads of the header only; it is left open.
        name: what errors and specs call the file (default: the path, or the object's ``name``
            or ``path`` attribute).
        read_bytes: (first, largest) bytes asked of the stream per read; each read asks twice the
            last, up to the largest. Default: ``CHUNK_BYTES`` each time. A remote file starts small,
            so a small header costs one small range request and a tokenizer-sized one a few.

    Raises:
        InputError: not GGUF, truncated, corrupt, or unreadable; the message names the file.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            f = open(path, "rb")  # noqa: SIM115
        except OSError as e:
            raise InputError(f"{path}: cannot open: {e.strerror or e}.") from None
        with f:
            return _parse(f, Path(name) if name else path, os.fstat(f.fileno()).st_size)
    label = name or next(
        (a for a in (getattr(source, "name", None), getattr(source, "path", None)) if isinstance(a, str) and a), "<stream>"
    )
    path = Path(label)
    try:
        size = source.seek(0, io.SEEK_END)
        size = source.tell() if size is None else size
        source.seek(0)
    except (OSError, AttributeError) as e:
        raise InputError(f"{path}: cannot read a GGUF header from a stream that cannot seek ({e}).") from None
    return _parse(cast("IO[bytes]", source), path, int(size), read_bytes)


def parse_gguf_header(buf: Any, path: str | os.PathLike[str], file_size: int) -> GgufHeader:
    """Parse a GGUF header from ``buf`` (any bytes-like object holding at least the header's bytes).

    ``file_size`` is the size of the whole file, checked against what the header declares. The
    parser needs no byte past the header: a buffer holding only the header parses the same.
    """
    return _parse(io.BytesIO(buf), Path(path), file_size)


def has_gguf_magic(path: Path) -> bool:
    """True when the file starts with the GGUF magic (a GGUF file without the .gguf suffix)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _parse(f: IO[bytes], path: Path, size: int, read_bytes: tuple[int, int] | None = None) -> GgufHeader:
    cur = Cursor(f, path, size, read_bytes or (CHUNK_BYTES, CHUNK_BYTES))
    version, n_tensors, n_kv = read_start(cur, path, size)
    meta: dict[str, Any] = {}
    for i in range(n_kv):
        key = read_key(cur, path, meta, i)
        vtype = cur.scalar("I", f"metadata '{key}'")
        read_value(cur, path, meta, key, vtype)
    return read_tensor_infos(cur, path, size, version, meta, n_tensors)


def read_start(cur: Cursor, path: Path, size: int) -> tuple[int, int, int]:
    """The fixed part of the header: (version, tensor count, metadata count), each checked."""
    if size < MIN_HEADER_BYTES:
        raise InputError(f"{path}: not a GGUF file (only {size} bytes; a GGUF header is at least {MIN_HEADER_BYTES}).")
    if cur.take(4, "the magic") != GGUF_MAGIC:
        raise InputError(f"{path}: not a GGUF file (the first bytes are not 'GGUF').")
    raw_version = cur.take(4, "the version")
    version = struct.unpack("<I", raw_version)[0]
    if version & 0xFFFF == 0:  # written on a big-endian host (gguf GGUFReader does the same test)
        cur.order, version = ">", struct.unpack(">I", raw_version)[0]
    if version not in (2, 3):
        raise InputError(f"{path}: unsupported GGUF version {version} (vramcalc reads versions 2 and 3).")
    n_tensors = cur.scalar("Q", "the tensor count")
    n_kv = cur.scalar("Q", "the metadata count")
    # each metadata entry takes at least 12 bytes (key length 8 + value type 4), each tensor info at least 28
    # (name length 8 + n_dims 4 + type 4 + offset 8 = 24, and 8 per dimension: 32 for a 1-D tensor)
    if n_tensors > MAX_TENSORS:
        raise InputError(f"{path}: corrupt GGUF file: it declares {n_tensors:,} tensors (at most {MAX_TENSORS:,}).")
    if n_kv * 12 > size or n_tensors * 28 > size:
        raise InputError(
            f"{path}: truncated or corrupt GGUF file: it declares {n_kv} metadata entries and {n_tensors} tensors in {size} bytes."
        )
    return version, n_tensors, n_kv


def read_key(cur: Cursor, path: Path, meta: dict[str, Any], i: int) -> str:
    """Metadata entry #i's key (checked: printable, at most 256 characters, not seen before)."""
    key = cur.string(f"metadata key #{i}")
    if not key.isprintable() or len(key) > 256:  # a corrupt length swallowed the bytes after it
        raise InputError(f"{path}: corrupt GGUF file: metadata key #{i} is not a printable name ({key[:40]!r}).")
    if key in meta:  # a second value would silently replace the first (llama.cpp's gguf.cpp refuses it too)
        raise InputError(f"{path}: corrupt GGUF file: metadata key '{key}' appears twice.")
    return key


def read_value(cur: Cursor, path: Path, meta: dict[str, Any], key: str, vtype: int) -> None:
    try:
        meta[key] = cur.value(vtype, f"metadata '{key}'")
    except RecursionError:  # arrays of arrays nested thousands deep: no real file nests more than twice
        raise InputError(f"{path}: corrupt GGUF file: metadata '{key}' nests arrays too deeply.") from None


def read_tensor_infos(cur: Cursor, path: Path, size: int, version: int, meta: dict[str, Any], n_tensors: int) -> GgufHeader:
    """The tensor infos at the cursor, and the header they end."""
    quant_sizes, qtype, _ = gguf_constants()
    tensors: list[GgufTensorInfo] = []
    names: set[str] = set()
    for i in range(n_tensors):
        name = cur.string(f"tensor info #{i}")
        if not name or not name.isprintable() or len(name) > 256:
            raise InputError(f"{path}: corrupt GGUF file: tensor info #{i} has no printable name ({name[:40]!r}).")
        if name in names:  # refused here, not after millions of entries (gguf_spec checks the layout later)
            raise InputError(f"{path}: corrupt GGUF file: tensor '{name}' appears twice.")
        names.add(name)
        n_dims = cur.scalar("I", f"tensor '{name}'")
        if n_dims > 8:
            raise InputError(f"{path}: corrupt GGUF file: tensor '{name}' has {n_dims} dimensions.")
        shape = tuple(cur.scalar("Q", f"tensor '{name}'") for _ in range(n_dims))
        type_id = cur.scalar("I", f"tensor '{name}'")
        offset = cur.scalar("Q", f"tensor '{name}'")
        try:
            gtype = qtype(type_id)
        except ValueError:
            raise InputError(
                f"{path}: tensor '{name}' has GGML type {type_id}, unknown to the installed gguf package "
                "(a newer quantization? pip install -U gguf)."
            ) from None
        block, type_size = quant_sizes[gtype]
        numel = 1
        for d in shape:
            numel *= d
        if shape and shape[0] % block:
            raise InputError(f"{path}: corrupt GGUF file: tensor '{name}' rows of {shape[0]} are not whole {gtype.name} blocks of {block}.")
        tensors.append(GgufTensorInfo(name, shape, gtype.name, offset, numel // block * type_size))
    alignment = meta.get("general.alignment", 32)
    if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0 or alignment & (alignment - 1):
        raise InputError(f"{path}: corrupt GGUF file: general.alignment {alignment!r} is not a power of two.")
    data_offset = -(-cur.pos // alignment) * alignment
    end = max((t.offset + t.nbytes for t in tensors), default=0)
    if data_offset + end > size:
        raise InputError(
            f"{path}: truncated GGUF file: its header declares {data_offset + end:,} bytes but the file has {size:,} "
            "(an incomplete download?)."
        )
    return GgufHeader(path, version, meta, tensors, data_offset, size)
