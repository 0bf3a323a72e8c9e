"""Load the YAML catalog, index ids and aliases, resolve user queries.

The built-in catalog ships as the package ``vramcalc.data`` (top-level ``data/`` in the repo);
a user catalog can live in ``<user data dir>/catalog`` with the same sub-folders. The index (ids and
aliases) is built from the raw YAML. Without the cache an entry is validated the first time it is
used; ``load_catalog`` keeps every entry validated in a pickle in ``<user data dir>/cache/``, keyed on
each source file's path, size, mtime and ctime, the vramcalc version and the schema, so a start-up
that hits it reads one file and imports neither pydantic nor the YAML files.
``validate_catalog`` validates everything afresh (``vramcalc validate``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vramcalc.errors import AmbiguousGpuError, CatalogError, UnknownEntryError

if TYPE_CHECKING:
    from vramcalc.schema import Entry, GpuSpec, LlmSpec, VisionEncoderSpec, VlmSpec

KIND_DIRS = ("gpus", "encoders", "llms", "vlms")
KIND_LABEL = {"gpus": "GPU", "encoders": "encoder", "llms": "LLM", "vlms": "VLM"}

# Words that GPU names carry or drop freely: 'NVIDIA GeForce RTX 3060' == 'RTX 3060' == 'rtx3060'.
_GPU_NOISE = re.compile(r"^(nvidia|geforce|amd|radeon|intel|apple|tesla)+")
# Apple GPU ids: <chip family>-<GPU cores>c-<memory>gb (m3-max-40c-128gb)
_APPLE_ID = re.compile(r"(m\d+(?:-(?:pro|max|ultra))?)-(\d+)c-(\d+)gb")


def normalize(name: str) -> str:
    """Case- and punctuation-insensitive key: 'Llama-3.1-8B' -> 'llama318b'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def normalize_gpu(name: str) -> str:
    return _GPU_NOISE.sub("", normalize(name)) or normalize(name)


def builtin_catalog_dir() -> Path:
    # find_spec, not importlib.resources.files: that imports tempfile, shutil, random... (~15 ms)
    from importlib.util import find_spec

    spec = find_spec("vramcalc.data")
    assert spec is not None and spec.submodule_search_locations, "the vramcalc.data package is missing"
    return Path(next(iter(spec.submodule_search_locations)))


def user_catalog_dir() -> Path:
    """``<platformdirs user data dir>/catalog``; ``VRAMCALC_HOME`` overrides the base (tests use it)."""
    base = os.environ.get("VRAMCALC_HOME")
    if not base:
        import platformdirs

        base = platformdirs.user_data_dir("vramcalc", appauthor=False)
    return Path(base) / "catalog"


class RawEntry:
    """One YAML file, parsed but not necessarily validated.

    An entry that comes from the cache (so it validated) keeps only what the index needs (``head``:
    id, name, aliases) and reads its ``data`` from the file on first use.
    """

    __slots__ = ("_data", "_head", "_path", "kind")

    def __init__(self, kind: str, path: Path | str, data: dict[str, Any] | None = None, head: dict[str, Any] | None = None) -> None:
        self.kind = kind  # folder name: gpus / encoders / llms / vlms
        self._path = path  # a str from the cache becomes a Path on first use (hundreds per start-up)
        self._data = data
        self._head = head if head is not None else (data or {})

    @property
    def path(self) -> Path:
        p = self._path
        if not isinstance(p, Path):
            p = self._path = Path(p)
        return p

    def __repr__(self) -> str:
        return f"RawEntry({self.kind!r}, {str(self.path)!r})"

    @property
    def data(self) -> dict[str, Any]:
        """The YAML mapping."""
        if self._data is None:
            data = _parse(self.path)
            self._data = data if isinstance(data, dict) else {}
        return self._data

    @property
    def id(self) -> str:
        return str(self._head.get("id", ""))

    @property
    def name(self) -> str:
        return str(self._head.get("name", ""))

    @property
    def aliases(self) -> list[str]:
        aliases = self._head.get("aliases") or []
        return [str(a) for a in aliases] if isinstance(aliases, list) else []


def _head(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in ("id", "name", "aliases") if k in data}


@dataclass
class Catalog:
    """All entries of one or more catalog roots, indexed by id and alias."""

    roots: list[Path]
    raw: dict[str, dict[str, RawEntry]] = field(default_factory=dict)  # kind -> id -> entry
    problems: list[str] = field(default_factory=list)  # load-time problems (parse errors, duplicates)
    _keys: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> normalized key -> id
    _validated: dict[tuple[str, str], Entry] = field(default_factory=dict)
    _checked: dict[str, Entry | bytes | str] = field(default_factory=dict)  # cache: path -> entry (pickled), or its error
    #: problems with the user's own catalog files (skipped: everything else keeps working)
    user_problems: list[str] = field(default_factory=list)
    #: with True, resolving a name to an entry from the user's catalog prints a note on stderr (the CLI's catalog)
    echo_user_notes: bool = False

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, roots: Iterable[Path], cache: bool = False) -> Catalog:
        """Parse every ``<root>/<kind>/*.yaml``; later roots override earlier ones by id.

        With ``cache``, the parsed and validated entries come from (or go to) the cache file in
        ``<user data dir>/cache/`` (see ``_read_cache``): a start-up reads one pickle instead of
        parsing and validating hundreds of YAML files.
        """
        cat = cls(roots=[Path(r) for r in roots])
        for kind in KIND_DIRS:
            cat.raw[kind] = {}
            cat._keys[kind] = {}
        names: list[tuple[str, str]] = []  # (kind, path) as strings: a warm start only stats them
        odd: list[str] = []
        for root in cat.roots:
            for kind in KIND_DIRS:
                found, skipped = _scan(os.path.join(root, kind))
                names += [(kind, path) for path in found]
                odd += skipped
        if cache:
            cache_file, key = _cache_file(cat.roots), _cache_key(names, cat.roots[1:])
            hit = _read_cache(cache_file, key)
            if hit is not None:
                heads, checked, index = hit
                cat._checked = dict(checked)
                try:
                    cat._restore(index, heads)
                except Exception:  # a cache of an unexpected shape: discarded and rebuilt below
                    cat = cls(roots=cat.roots, raw={k: {} for k in KIND_DIRS}, _keys={k: {} for k in KIND_DIRS})
                else:
                    cat._split_user_problems()
                    return cat
        files = [(kind, Path(p)) for kind, p in names]
        if not cache:
            cat.problems += odd
            cat._index(files, {})
            cat._split_user_problems()
            return cat
        cat.problems += odd
        parsed, cat._checked = _parse_and_validate(files)
        cat._index(files, parsed)
        # valid entries keep only their index fields in the cache (RawEntry.data re-reads the file)
        stored: dict[str, bytes | str] = {}
        for path, entry in cat._checked.items():
            stored[path] = entry if isinstance(entry, str) else _pickle(entry)
        heads = {p: _head(d) if isinstance(stored.get(p), bytes) else d for p, d in parsed.items()}
        _write_cache(cache_file, key, heads, stored, cat._snapshot())
        cat._split_user_problems()
        return cat

    def is_user(self, path: Path) -> bool:
        """True for a file of a catalog root after the first (the user's catalog over the built-in one)."""
        return any(path.parent.parent == r for r in self.roots[1:])

    def _split_user_problems(self) -> None:
        self.user_problems = [p for p in self.problems if any(p.startswith(str(r) + os.sep) for r in self.roots[1:])]

    def _index(self, files: list[tuple[str, Path]], parsed: dict[str, Any]) -> None:
        owner: dict[str, str] = {}  # global normalized key -> "kind/id (file)"
        for kind, path in files:
            self._add_file(kind, path, owner, parsed.get(str(path)))

    def _snapshot(self) -> tuple[dict[str, list[tuple[str, str]]], dict[str, dict[str, str]], list[str]]:
        """The index as plain data, for the cache: (kind -> [(id, path)], normalized keys, problems)."""
        return {k: [(eid, str(r.path)) for eid, r in v.items()] for k, v in self.raw.items()}, self._keys, self.problems

    def _restore(self, index: Any, heads: dict[str, Any]) -> None:
        raw, self._keys, self.problems = index
        if set(raw) != set(KIND_DIRS) or set(self._keys) != set(KIND_DIRS) or not all(isinstance(p, str) for p in self.problems):
            raise ValueError("catalog cache of an unexpected shape")
        for kind, items in raw.items():
            self.raw[kind] = {
                eid: RawEntry(kind, p, None, heads[p]) if isinstance(self._checked.get(p), bytes) else RawEntry(kind, p, heads[p])
                for eid, p in items
            }

    def _add_file(self, kind: str, path: Path, owner: dict[str, str], data: Any = None) -> None:
        if data is None:
            try:
                data = _parse(path)
            except _yaml_error() as e:
                self.problems.append(f"{path}: {_yaml_reason(e)}")
                return
        if not isinstance(data, dict):
            self.problems.append(f"{path}: expected a mapping of fields, got {type(data).__name__}")
            return
        entry = RawEntry(kind, path, data)
        eid = entry.id
        if not eid:
            self.problems.append(f"{path} -> id: field required")
            return
        if path.stem != eid:
            self.problems.append(f"{path} -> id: '{eid}' must match the file name '{path.stem}.yaml'")
            if self.is_user(path):  # a user file may not replace another entry under a different name
                return
        prev = self.raw[kind].get(eid)
        if prev is not None and prev.path.parent.parent == path.parent.parent:
            self.problems.append(f"{path} -> id: duplicate id '{eid}' (also in {prev.path})")
            return
        norm = normalize_gpu if kind == "gpus" else normalize
        if self.is_user(path):
            # One rule for the user's catalog: an entry overrides a built-in one only by the same id
            # and kind; any other clash of its id or aliases with an existing id or alias (of any
            # kind) is reported and the entry skipped, so no spelling resolves to a hijacked entry.
            checked = self._checked.get(str(path))
            if isinstance(checked, str):
                self.problems.append(checked.splitlines()[0] + " (entry skipped)")
                return
            for i, name in enumerate([eid, *entry.aliases]):
                other = owner.get(norm(name)) or owner.get(normalize(name))
                if other and not other.startswith(f"{kind}/{eid} "):
                    loc = "id" if i == 0 else f"aliases -> {i - 1}"
                    self.problems.append(
                        f"{path} -> {loc}: '{name}' collides with {other}; a user entry may replace a built-in one "
                        "only by the same id and kind (entry skipped)"
                    )
                    return
        # a user catalog entry with the same id replaces the built-in one
        self.raw[kind][eid] = entry
        for i, name in enumerate([eid, *entry.aliases]):
            key = norm(name)
            where = f"{kind}/{eid} ({path.name})"
            other = owner.get(key)
            if other and not other.startswith(f"{kind}/{eid} "):
                loc = "id" if i == 0 else f"aliases -> {i - 1}"
                self.problems.append(f"{path} -> {loc}: '{name}' collides with {other}")
                continue
            owner[key] = where
            if norm is normalize_gpu:
                owner.setdefault(normalize(name), where)
            self._keys[kind][key] = eid

    # -- access --------------------------------------------------------------------------
    def ids(self, kind: str) -> list[str]:
        return sorted(self.raw[kind], key=natural_key)

    def get(self, kind: str, eid: str) -> Entry:
        """The validated entry ``eid`` of ``kind`` (raises CatalogError if it does not validate)."""
        cached = self._validated.get((kind, eid))
        if cached is not None:
            return cached
        raw = self.raw[kind].get(eid)
        if raw is None:
            raise UnknownEntryError(KIND_LABEL[kind], eid, [])
        checked = self._checked.get(str(raw.path))
        if isinstance(checked, str):
            raise CatalogError(checked)
        if isinstance(checked, bytes):
            from vramcalc.schema import KINDS

            try:
                entry = _safe_loads(checked, allow_specs=True)
            except Exception:  # a cache entry that does not unpickle: validate the file afresh
                entry = None
            if not isinstance(entry, KINDS[kind]) or entry.id != eid:  # of another kind or id: not this entry
                entry = validate_entry(raw)
        else:
            entry = checked if checked is not None else validate_entry(raw)
        self._validated[(kind, eid)] = entry
        return entry

    def entries(self, kind: str) -> list[Entry]:
        return [self.get(kind, i) for i in self.ids(kind)]

    def lookup(self, kinds: Iterable[str], query: str) -> tuple[str, str] | None:
        for kind in kinds:
            norm = normalize_gpu if kind == "gpus" else normalize
            eid = self._keys[kind].get(norm(query))
            if eid is not None:
                return kind, eid
        return None

    def resolve(self, kinds: Iterable[str], query: str, label: str) -> Entry:
        """Exact id, then alias, then case/punctuation-insensitive match; else 'did you mean'."""
        kinds = list(kinds)
        for kind in kinds:
            if query in self.raw[kind]:
                return self._note_user(kind, query)
        hit = self.lookup(kinds, query)
        if hit:
            return self._note_user(*hit)
        raise UnknownEntryError(label, query, self.suggest(kinds, query))

    def _note_user(self, kind: str, eid: str) -> Entry:
        """The entry, and on the CLI's catalog a note when it comes from the user's catalog."""
        entry = self.get(kind, eid)
        raw = self.raw[kind][eid]
        if self.echo_user_notes and self.is_user(raw.path):
            import sys

            sys.stderr.write(f"Note: {KIND_LABEL[kind]} '{eid}' is from your catalog ({raw.path}).\n")
        return entry

    def suggest(self, kinds: Iterable[str], query: str, n: int = 3) -> list[str]:
        names: dict[str, str] = {}
        for kind in kinds:
            norm = normalize_gpu if kind == "gpus" else normalize
            for eid, raw in self.raw[kind].items():
                for name in [eid, *raw.aliases]:
                    names.setdefault(norm(name), eid)
        q = normalize_gpu(query) if list(kinds) == ["gpus"] else normalize(query)
        import difflib

        close = difflib.get_close_matches(q, list(names), n=n * 3, cutoff=0.6)
        # also offer entries whose key contains the query ('3060' -> rtx3060-12gb, rtx3060-8gb)
        close += [k for k in names if q and len(q) >= 3 and q in k]
        out: list[str] = []
        for k in close:
            if names[k] not in out:
                out.append(names[k])
        return out[:n]

    def resolve_gpu(self, query: str) -> GpuSpec:
        """A GPU by id, alias or name as people type it: an Apple chip family without its size
        ('m3 max') asks (AmbiguousGpuError lists the variants), a size or core count picks one
        ('m3 max 128gb', 'm1 max 32-core 64gb', '3080 10gb')."""
        if query in self.raw["gpus"]:
            return self.get("gpus", query)  # type: ignore[return-value]
        variants = self._apple_family(normalize_gpu(query))
        if len(variants) > 1:
            raise AmbiguousGpuError(query, [self._gpu_variant_label(v) for v in variants], variants[-1].replace("-", " "))
        hit = self.lookup(["gpus"], query)
        if hit:
            return self.get(*hit)  # type: ignore[return-value]
        sized = self._gpu_by_size(query)
        if sized is not None:
            return sized
        return self.resolve(["gpus"], query, "GPU")  # type: ignore[return-value]

    def find_gpu(self, query: str) -> GpuSpec | None:
        """``resolve_gpu`` without the 'unknown' error (ambiguity still raises): None if no GPU matches."""
        try:
            return self.resolve_gpu(query)
        except UnknownEntryError:
            return None

    def _apple_family(self, key: str) -> list[str]:
        """Apple GPU ids of the chip family ``key`` names ('m3max' -> every m3-max-*), by id pattern."""
        out = []
        for eid in self.ids("gpus"):
            m = _APPLE_ID.fullmatch(eid)
            if m and normalize(m.group(1)) == key:
                out.append(eid)
        return out

    def _gpu_variant_label(self, eid: str) -> str:
        try:
            g: Any = self.get("gpus", eid)
        except CatalogError:
            return eid
        cores = f", {g.gpu_cores} GPU cores" if getattr(g, "gpu_cores", None) else ""
        return f"{eid} ({g.memory_bytes / 2**30:g} GB{cores})"

    def _gpu_by_size(self, query: str) -> GpuSpec | None:
        """'m3 max 128gb', 'm1 max 32c 64gb', '3080 10gb', 'rtx 3060 8 gb': a base name plus a memory
        size (GB) and/or an Apple GPU core count. None when the query carries neither or the base
        names no GPU; AmbiguousGpuError when several cards remain."""
        q = query.lower()
        mem = re.search(r"(\d+)\s*gi?b\b", q)
        cores = re.search(r"(\d+)[\s-]*c(?:ores?)?\b(?:\s*gpu)?", q)
        if not mem and not cores:
            return None
        base = q
        for m in (mem, cores):
            if m:
                base = base.replace(m.group(0), " ")
        key = normalize_gpu(base)
        if not key:
            return None
        matches: list[Any] = []
        same_name: list[str] = []  # the base name matches, the size or cores do not
        for eid, raw in self.raw["gpus"].items():
            keys = set()
            am = _APPLE_ID.fullmatch(eid)
            if am:
                keys.add(normalize(am.group(1)))
            for name in [eid, raw.name, *raw.aliases]:
                k = re.sub(r"\d+gi?b$", "", normalize_gpu(name))
                keys |= {k, re.sub(r"^(rtx|gtx|rx)", "", k)}
            if key not in keys:
                continue
            try:
                g: Any = self.get("gpus", eid)
            except CatalogError:
                continue
            same_name.append(eid)
            if mem and round(g.memory_bytes / 2**30) != int(mem.group(1)) and round(g.memory_bytes / 1e9) != int(mem.group(1)):
                continue
            if cores and getattr(g, "gpu_cores", None) != int(cores.group(1)):
                continue
            matches.append(g)
        if len(matches) == 1:
            return matches[0]  # type: ignore[no-any-return]
        if len(matches) > 1:
            ids = sorted((g.id for g in matches), key=natural_key)
            raise AmbiguousGpuError(query, [self._gpu_variant_label(i) for i in ids], ids[-1].replace("-", " "))
        if same_name:  # 'm3 max 256gb': that chip, but no such configuration
            raise UnknownEntryError("GPU", query, sorted(same_name, key=natural_key))
        return None

    def resolve_model(self, query: str) -> LlmSpec | VlmSpec | VisionEncoderSpec:
        """A model to estimate: a VLM, an LLM, or a vision encoder on its own."""
        return self.resolve(["vlms", "llms", "encoders"], query, "model")  # type: ignore[return-value]

    def resolve_any(self, query: str) -> Entry:
        if query not in self.raw["gpus"] and len(self._apple_family(normalize_gpu(query))) > 1:
            return self.resolve_gpu(query)  # an Apple family without its size: asks
        try:
            return self.resolve(list(KIND_DIRS), query, "id")
        except UnknownEntryError:
            gpu = self._gpu_by_size(query)  # a GPU written with its size ('3080 10gb'); asks or suggests its sizes
            if gpu is None:
                raise
            return gpu

    def encoder(self, eid: str) -> VisionEncoderSpec:
        return self.get("encoders", eid)  # type: ignore[return-value]

    def llm(self, eid: str) -> LlmSpec:
        return self.get("llms", eid)  # type: ignore[return-value]

    def overlay(self, entries: Iterable[Entry]) -> Catalog:
        """A new catalog in which these validated specs (a model read from the user's files) also
        resolve, by id and alias, over any entry with the same id; this catalog is unchanged."""
        from vramcalc.schema import to_dict

        cat = Catalog(
            list(self.roots),
            {k: dict(v) for k, v in self.raw.items()},
            list(self.problems),
            {k: dict(v) for k, v in self._keys.items()},
            dict(self._validated),
            dict(self._checked),
        )
        for spec in entries:
            kind = f"{spec.kind}s"  # type: ignore[attr-defined]  # gpu -> gpus, llm -> llms, ...
            cat.raw.setdefault(kind, {})[spec.id] = RawEntry(kind, Path(f"<overlay>/{kind}/{spec.id}.yaml"), to_dict(spec))
            norm = normalize_gpu if kind == "gpus" else normalize
            for name in [spec.id, *spec.aliases]:
                cat._keys.setdefault(kind, {})[norm(name)] = spec.id
            cat._validated[(kind, spec.id)] = spec
        return cat


def _scan(folder: str) -> tuple[list[str], list[str]]:
    """The regular ``*.yaml`` files of a catalog folder, and a problem line for each ``*.yaml`` that is
    not one (a directory, a dangling symlink, a FIFO): reported and skipped, never read."""
    files, odd = [], []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return [], []
    except OSError as e:
        return [], [f"{folder}: cannot list the folder: {e.strerror or e}"]
    for de in entries:
        if not de.name.endswith(".yaml"):
            continue
        try:
            regular = de.is_file()  # follows symlinks: a dangling one is not a file
        except OSError:
            regular = False
        if regular:
            files.append(de.path)
        else:
            what = "a dangling symlink" if de.is_symlink() and not os.path.exists(de.path) else "not a regular file"
            odd.append(f"{de.path}: {what} (skipped)")
    return sorted(files), odd


#: The largest catalog file read: a choice (the largest built-in entry is a few KB), so a huge file
#: is refused before the YAML parser sees it.
MAX_CATALOG_FILE_BYTES = 1 << 20


class CatalogFileRefused(ValueError):
    """A catalog file refused before or while parsing: too large, or it uses YAML anchors/aliases."""


def _parse(path: Path) -> Any:
    import yaml  # not needed when the cache is current

    with open(path, "rb") as f:
        raw = f.read(MAX_CATALOG_FILE_BYTES + 1)
    if len(raw) > MAX_CATALOG_FILE_BYTES:
        raise CatalogFileRefused(f"larger than {MAX_CATALOG_FILE_BYTES:,} bytes; a catalog entry is a few KB")
    text = raw.decode("utf-8")
    # libyaml is 5-10x faster than the pure-Python loader; PyYAML wheels ship it
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if "&" in text or "*" in text:
        # Anchors and aliases (&a / *a) let a few hundred bytes expand to gigabytes (an alias bomb):
        # catalog files may not use them. The event scan is only paid by files that hold & or *.
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise CatalogFileRefused("YAML anchors and aliases (&name / *name) are not allowed in catalog files")
    return yaml.load(text, Loader=loader)


def _yaml_error() -> tuple[type[Exception], ...]:
    """What reading one catalog file can raise: bad YAML, bytes that are not UTF-8, an unreadable or
    refused file, a document nested too deeply for the parser."""
    import yaml

    return (yaml.YAMLError, UnicodeDecodeError, OSError, CatalogFileRefused, RecursionError)


def _yaml_reason(e: BaseException) -> str:
    """One line saying why a catalog file could not be read."""
    if isinstance(e, UnicodeDecodeError):
        return "not UTF-8 text (skipped)"
    if isinstance(e, OSError):
        return f"cannot read: {e.strerror or e} (skipped)"
    if isinstance(e, CatalogFileRefused):
        return f"refused: {e} (skipped)"
    if isinstance(e, RecursionError):
        return "not valid YAML: nested too deeply (skipped)"
    return "not valid YAML: " + " ".join(str(e).split())[:300]


#: bump when the cache's layout changes
_CACHE_FORMAT = 2
_CACHE_MAGIC = b"vramcalc catalog cache\n"


def _cache_file(roots: list[Path]) -> Path:
    """One cache per set of catalog roots (with and without the user catalog), so loading one does
    not throw away the other's."""
    from vramcalc.fasthash import blake2b

    tag = blake2b("\n".join(str(r) for r in roots).encode(), digest_size=6).hexdigest()
    return user_catalog_dir().parent / "cache" / f"catalog-{tag}.pickle"


def _stamp(path: Path | str) -> str:
    st = os.stat(path)
    return f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def _content(path: Path | str) -> str:
    """A file's path and a hash of its bytes: an edit that keeps size and times (cp -p, rsync -t)
    still changes the key."""
    from vramcalc.fasthash import blake2b

    try:
        with open(path, "rb") as f:
            digest = blake2b(f.read(MAX_CATALOG_FILE_BYTES + 1), digest_size=16).hexdigest()
    except OSError as e:
        digest = f"unreadable {e.errno}"
    return f"{path}|{digest}"


def _cache_key(files: list[tuple[str, str]], user_roots: list[Path] | None = None) -> str:
    """Everything a cached entry depends on: each source file, the vramcalc version, the schema and
    units modules (a changed schema validates differently), Python. Files of the user's catalog are
    keyed on their content (a hash of the bytes); the built-in ones, installed with the package and
    so tied to its version, on path, size, mtime and ctime (hashing them would add ~6 ms to every
    start-up)."""
    import sys

    from vramcalc import __version__

    here = Path(__file__).parent
    head = [
        f"format {_CACHE_FORMAT}",
        f"vramcalc {__version__}",
        f"python {sys.version}",
        _stamp(here / "schema.py"),
        _stamp(here / "units.py"),
        _stamp(Path(__file__)),
    ]
    users = [str(r) for r in user_roots or []]

    def stamp(p: str) -> str:
        try:
            return _content(p) if any(p.startswith(u + os.sep) for u in users) else _stamp(p)
        except OSError as e:
            return f"{p}|unreadable {e.errno}"

    return "\n".join(head + [f"{kind}|{stamp(p)}" for kind, p in files])


_UNPICKLERS: dict[bool, Any] = {}


def _safe_loads(data: bytes, allow_specs: bool) -> Any:
    """Unpickle plain data and, with ``allow_specs``, the catalog's own spec dataclasses; a cache
    file that names any other class or function is treated as corrupt, never run."""
    import io

    cls = _UNPICKLERS.get(allow_specs)
    if cls is None:
        import pickle

        class Restricted(pickle.Unpickler):
            def find_class(self, module: str, name: str) -> Any:
                if allow_specs and module == "vramcalc.schema" and not name.startswith("_"):
                    from vramcalc import schema

                    obj = getattr(schema, name, None)
                    if isinstance(obj, type) and hasattr(obj, "__dataclass_fields__"):
                        return obj
                raise pickle.UnpicklingError(f"{module}.{name} is not allowed in the catalog cache")

        cls = _UNPICKLERS[allow_specs] = Restricted
    return cls(io.BytesIO(data)).load()


def _pickle(obj: Any) -> bytes:
    import pickle

    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _read_cache(path: Path, key: str) -> tuple[dict[str, Any], dict[str, bytes | str], Any] | None:
    """(YAML mapping by path, pickled entry or error message by path, the catalog's index) when the
    cache file is current and intact; None when it is missing, stale, corrupt or tampered with.
    A valid entry keeps only its index fields in the first dict and is unpickled on first use."""
    import zlib

    try:
        blob = path.read_bytes()
        if not blob.startswith(_CACHE_MAGIC):
            return None
        stored_key, crc, payload = _safe_loads(blob[len(_CACHE_MAGIC) :], allow_specs=False)
        if stored_key != key or zlib.crc32(payload) != crc:
            return None
        heads, checked, index = _safe_loads(payload, allow_specs=False)
        raw, keys, problems = index
        if (
            isinstance(heads, dict)
            and isinstance(checked, dict)
            and isinstance(raw, dict)
            and isinstance(keys, dict)
            and isinstance(problems, list)
        ):
            return heads, checked, index
    except Exception:
        return None
    return None


def _write_cache(path: Path, key: str, heads: dict[str, Any], stored: dict[str, bytes | str], index: Any) -> None:
    """Write atomically (temp file + rename); a cache that cannot be written is skipped."""
    import pickle
    import zlib

    try:
        payload = _pickle((heads, stored, index))
        blob = _CACHE_MAGIC + _pickle((key, zlib.crc32(payload), payload))
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob("catalog-*.json"):  # the cache format before 0.2
            old.unlink(missing_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        tmp.replace(path)
    except (OSError, pickle.PicklingError):
        pass


def _parse_and_validate(files: list[tuple[str, Path]]) -> tuple[dict[str, Any], dict[str, Entry | bytes | str]]:
    """YAML mappings, and validated entries or their one-line errors, by path (imports pydantic).
    Files that do not parse are left out (``_add_file`` reports them)."""
    parsed: dict[str, Any] = {}
    checked: dict[str, Entry | bytes | str] = {}
    for kind, p in files:
        k = str(p)
        try:
            data = parsed[k] = _parse(p)
        except _yaml_error():
            continue
        if isinstance(data, dict):
            try:
                checked[k] = validate_entry(RawEntry(kind, p, data))
            except CatalogError as e:
                checked[k] = str(e)
    return parsed, checked


def natural_key(s: str) -> list[Any]:
    """'h20' before 'h100', 'a2' before 'a10'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def validate_entry(raw: RawEntry) -> Entry:
    """Validate one raw entry; errors name the file and the field path."""
    from pydantic import ValidationError

    from vramcalc.schema import KINDS, parse

    try:
        return parse(KINDS[raw.kind], raw.data)
    except ValidationError as e:
        raise CatalogError(format_validation_error(raw.path, e)) from e


def format_validation_error(path: Path, err: Any) -> str:
    from vramcalc.schema import errors

    return "\n".join(f"{path} -> {loc}: {msg}" for loc, msg in errors(err))


@functools.cache
def load_catalog(include_user: bool = True) -> Catalog:
    """The built-in catalog plus the user's own entries (``vramcalc import --write``). Problems with
    the user's files are printed once on stderr (file and reason); those files are skipped and
    everything else keeps working."""
    roots = [builtin_catalog_dir()]
    if include_user:
        user = user_catalog_dir()
        try:
            if user.is_dir():
                roots.append(user)
        except OSError:
            pass
    cat = Catalog.load(roots, cache=True)
    cat.echo_user_notes = include_user
    if cat.user_problems:
        import sys

        shown = cat.user_problems[:5]
        more = f" (and {len(cat.user_problems) - 5} more; run 'vramcalc validate')" if len(cat.user_problems) > 5 else ""
        sys.stderr.write(f"Warning: {len(cat.user_problems)} problem(s) in your catalog{more}:\n")
        for p in shown:
            sys.stderr.write(f"  {p[:300]}\n")
    return cat
