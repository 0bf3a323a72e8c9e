"""A content-keyed store on disk for values derived from the catalog (what ``fit`` computes for
each model), so that a second run does not redo them.

It is a cache, and a cache never answers wrongly:

- The file's name carries a hash of the code that computes the values: every ``.py`` file of the
  package and every non-catalog data file (calibration factors, ...), with the Python and package
  versions. Any edit to them starts a new, empty store (the old files are removed).
- Each value is keyed on a hash of the ``repr`` of everything it was computed from (the specs, whose
  ``repr`` names every field, the GPU and the options), never on a path or a modification time.
- Only plain data is stored (``None``, bool, int, float, str, and tuples, lists and dicts of them),
  checked when written and read by ``marshal`` (which builds nothing else); a file that is
  truncated, tampered with or of the wrong shape is discarded as a whole.
- Bounded: at most ``MAX_ENTRIES`` values and ``MAX_BYTES`` on disk; a full store starts again.

``VRAMCALC_NO_DISK_CACHE=1`` turns it off (the answers are the same, only slower).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vramcalc.fasthash import blake2b as _blake2b

#: bump when the file layout changes
_FORMAT = 1
_MAGIC = b"vramcalc derived cache\n"
MAX_ENTRIES = 50_000
MAX_BYTES = 32 * 2**20
#: the package's data files that are not catalog entries (catalog entries are keyed by content)
_CATALOG_DIRS = {"gpus", "encoders", "llms", "vlms"}  # catalog.KIND_DIRS

_PLAIN = (type(None), bool, int, float, str)


def is_plain(value: Any, depth: int = 0) -> bool:
    """True for None, bool, int, float, str and (nested, at most 32 deep) tuples, lists and dicts of them."""
    if isinstance(value, _PLAIN):
        return True
    if depth >= 32:
        return False
    if isinstance(value, (tuple, list)):
        return all(is_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v, depth + 1) for k, v in value.items())
    return False


def code_tag(package_dir: Path | None = None) -> str:
    """A hash of the code and the non-catalog data that derived values depend on."""
    import sys

    from vramcalc import __version__

    pkg = package_dir or Path(__file__).parent
    h = _blake2b(digest_size=12)
    h.update(f"{_FORMAT}|{__version__}|{sys.version}".encode())
    roots = [pkg]
    from vramcalc.catalog import builtin_catalog_dir

    data = builtin_catalog_dir()
    if data.resolve() != pkg.resolve():
        roots.append(data)
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and d not in _CATALOG_DIRS)
            for name in sorted(filenames):
                if name.endswith((".py", ".yaml", ".yml", ".csv", ".json")):
                    p = os.path.join(dirpath, name)
                    h.update(os.path.relpath(p, root).encode() + b"\0")
                    with open(p, "rb") as f:
                        h.update(f.read())
                    h.update(b"\0")
    return h.hexdigest()


def cache_dir() -> Path:
    """``<user data dir>/cache`` (``VRAMCALC_HOME`` overrides the base), beside the catalog cache."""
    from vramcalc.catalog import user_catalog_dir

    return user_catalog_dir().parent / "cache"


class DiskMemo:
    """The store: loaded on first use, written once at exit when something was added."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[bytes, Any] | None = None
        self._dirty = False

    def _load(self) -> dict[bytes, Any]:
        if self._data is not None:
            return self._data
        self._data = {}
        try:
            blob = self.path.read_bytes()
        except OSError:
            return self._data
        if len(blob) > MAX_BYTES or not blob.startswith(_MAGIC):
            return self._data
        import marshal
        import zlib

        try:
            crc, payload = marshal.loads(blob[len(_MAGIC) :])
            if zlib.crc32(payload) != crc:
                return self._data
            data = marshal.loads(payload)
        except Exception:  # truncated or not ours: start again
            return self._data
        if isinstance(data, dict) and all(isinstance(k, bytes) and is_plain(v) for k, v in data.items()):
            self._data = data
        return self._data

    @staticmethod
    def key(namespace: str, parts: tuple[Any, ...]) -> bytes:
        return _blake2b(repr((namespace, parts)).encode(), digest_size=16).digest()

    def get(self, key: bytes) -> Any:
        """The stored value, or KeyError."""
        return self._load()[key]

    def put(self, key: bytes, value: Any) -> None:
        if not is_plain(value):
            raise TypeError(f"only plain data is stored on disk, got {type(value).__name__}")
        data = self._load()
        if len(data) >= MAX_ENTRIES:
            data.clear()
        data[key] = value
        if not self._dirty:
            self._dirty = True
            atexit.register(self.save)

    def save(self) -> None:
        """Write atomically (temp file + rename); remove stores of other code versions. Errors
        (read-only home, full disk) are ignored: the cache is only an optimisation."""
        if not self._dirty or self._data is None:
            return
        import marshal
        import zlib

        self._dirty = False
        try:
            payload = marshal.dumps(self._data)
            blob = _MAGIC + marshal.dumps((zlib.crc32(payload), payload))
            if len(blob) > MAX_BYTES:
                return
            path = self.path
            path.parent.mkdir(parents=True, exist_ok=True)
            tag = path.name.split("-")[1] if path.name.count("-") >= 2 else None
            for old in path.parent.glob("derived-*.marshal"):  # stores of other code versions
                if tag is not None and old.name.split("-")[1] != tag:
                    old.unlink(missing_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(blob)
            tmp.replace(path)
        except (OSError, ValueError):
            pass


_STORES: dict[Path, DiskMemo] = {}  # by file


def store(namespace: str = "default") -> DiskMemo | None:
    """The store of ``namespace`` in the current cache folder (tests change ``VRAMCALC_HOME``), or
    None when ``VRAMCALC_NO_DISK_CACHE`` is set. One file per namespace: `check` reads the small
    calibration store, not the rows `fit` keeps."""
    if os.environ.get("VRAMCALC_NO_DISK_CACHE"):
        return None
    folder = cache_dir()
    path = folder / f"derived-{_code_tag()}-{''.join(c if c.isalnum() else '_' for c in namespace)}.marshal"
    st = _STORES.get(path)
    if st is None:
        st = _STORES[path] = DiskMemo(path)
    return st


_TAG: list[str] = []


def _code_tag() -> str:
    if not _TAG:
        _TAG.append(code_tag())
    return _TAG[0]


def cached(
    namespace: str,
    parts: tuple[Any, ...],
    compute: Callable[[], Any],
    encode: Callable[[Any], Any] = lambda v: v,
    decode: Callable[[Any], Any] = lambda v: v,
) -> Any:
    """``compute()``, or its stored value for the same ``namespace`` and ``parts`` (whose ``repr``
    must name everything the value depends on). ``encode`` turns the value into plain data and
    ``decode`` back; a stored value that ``decode`` rejects is recomputed."""
    st = store(namespace)
    if st is None:
        return compute()
    key = st.key(namespace, parts)
    try:
        return decode(st.get(key))
    except Exception:  # not stored (KeyError), or a stored value of the wrong shape: recompute it
        pass
    value = compute()
    try:
        st.put(key, encode(value))
    except TypeError:  # not plain data: not kept
        return value
    return value
