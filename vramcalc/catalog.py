"""Load the YAML catalog, index ids and aliases, resolve user queries.

The built-in catalog ships as the package ``vramcalc.data`` (top-level ``data/`` in the repo);
a user catalog can live in ``<user data dir>/catalog`` with the same sub-folders. Entries are
parsed lazily: the index (ids and aliases) is built from the raw YAML, and an entry is validated
the first time it is used. ``validate_catalog`` validates everything (``vramcalc validate``).
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import yaml

from vramcalc.errors import CatalogError, UnknownEntryError

if TYPE_CHECKING:
    from vramcalc.schema import Entry, GpuSpec, LlmSpec, VisionEncoderSpec, VlmSpec

KIND_DIRS = ("gpus", "encoders", "llms", "vlms")
KIND_LABEL = {"gpus": "GPU", "encoders": "encoder", "llms": "LLM", "vlms": "VLM"}

try:  # libyaml is 5-10x faster than the pure-Python loader; PyYAML wheels ship it
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

# Words that GPU names carry or drop freely: 'NVIDIA GeForce RTX 3060' == 'RTX 3060' == 'rtx3060'.
_GPU_NOISE = re.compile(r"^(nvidia|geforce|amd|radeon|intel|apple|tesla)+")


def normalize(name: str) -> str:
    """Case- and punctuation-insensitive key: 'Llama-3.1-8B' -> 'llama318b'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def normalize_gpu(name: str) -> str:
    return _GPU_NOISE.sub("", normalize(name)) or normalize(name)


def builtin_catalog_dir() -> Path:
    return Path(str(files("vramcalc.data")))


def user_catalog_dir() -> Path:
    """``<platformdirs user data dir>/catalog``; ``VRAMCALC_HOME`` overrides the base (tests use it)."""
    base = os.environ.get("VRAMCALC_HOME")
    if not base:
        import platformdirs

        base = platformdirs.user_data_dir("vramcalc", appauthor=False)
    return Path(base) / "catalog"


@dataclass
class RawEntry:
    """One YAML file, parsed but not yet validated."""

    kind: str  # folder name: gpus / encoders / llms / vlms
    path: Path
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data.get("id", ""))


@dataclass
class Catalog:
    """All entries of one or more catalog roots, indexed by id and alias."""

    roots: list[Path]
    raw: dict[str, dict[str, RawEntry]] = field(default_factory=dict)  # kind -> id -> entry
    problems: list[str] = field(default_factory=list)  # load-time problems (parse errors, duplicates)
    _keys: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> normalized key -> id
    _validated: dict[tuple[str, str], Entry] = field(default_factory=dict)

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, roots: Iterable[Path], cache: bool = False) -> Catalog:
        """Parse every ``<root>/<kind>/*.yaml``; later roots override earlier ones by id.

        With ``cache``, parsed files are kept in ``<user data dir>/cache/`` keyed by path, size and
        mtime, so a start-up reads one JSON file instead of parsing hundreds of YAML files.
        """
        cat = cls(roots=[Path(r) for r in roots])
        for kind in KIND_DIRS:
            cat.raw[kind] = {}
            cat._keys[kind] = {}
        files = [(kind, path) for root in cat.roots for kind in KIND_DIRS
                 for path in _yaml_files(root / kind)]
        parsed = _parse_cached(files) if cache else {}
        owner: dict[str, str] = {}  # global normalized key -> "kind/id (file)"
        for kind, path in files:
            cat._add_file(kind, path, owner, parsed.get(str(path)))
        return cat

    def _add_file(self, kind: str, path: Path, owner: dict[str, str], data: Any = None) -> None:
        if data is None:
            try:
                data = _parse(path)
            except yaml.YAMLError as e:
                self.problems.append(f"{path}: not valid YAML: {e}")
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
        prev = self.raw[kind].get(eid)
        if prev is not None and prev.path.parent.parent == path.parent.parent:
            self.problems.append(f"{path} -> id: duplicate id '{eid}' (also in {prev.path})")
            return
        # a user catalog entry with the same id replaces the built-in one
        self.raw[kind][eid] = entry
        aliases = data.get("aliases") or []
        if not isinstance(aliases, list):
            aliases = []
        norm = normalize_gpu if kind == "gpus" else normalize
        for i, name in enumerate([eid, *map(str, aliases)]):
            key = norm(name)
            where = f"{kind}/{eid} ({path.name})"
            other = owner.get(key)
            if other and not other.startswith(f"{kind}/{eid} "):
                loc = "id" if i == 0 else f"aliases -> {i - 1}"
                self.problems.append(f"{path} -> {loc}: '{name}' collides with {other}")
                continue
            owner[key] = where
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
        entry = validate_entry(raw)
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
                return self.get(kind, query)
        hit = self.lookup(kinds, query)
        if hit:
            return self.get(*hit)
        raise UnknownEntryError(label, query, self.suggest(kinds, query))

    def suggest(self, kinds: Iterable[str], query: str, n: int = 3) -> list[str]:
        names: dict[str, str] = {}
        for kind in kinds:
            norm = normalize_gpu if kind == "gpus" else normalize
            for eid, raw in self.raw[kind].items():
                for name in [eid, *map(str, raw.data.get("aliases") or [])]:
                    names.setdefault(norm(name), eid)
        q = normalize_gpu(query) if list(kinds) == ["gpus"] else normalize(query)
        close = difflib.get_close_matches(q, list(names), n=n * 3, cutoff=0.6)
        # also offer entries whose key contains the query ('3060' -> rtx3060-12gb, rtx3060-8gb)
        close += [k for k in names if q and len(q) >= 3 and q in k]
        out: list[str] = []
        for k in close:
            if names[k] not in out:
                out.append(names[k])
        return out[:n]

    def resolve_gpu(self, query: str) -> GpuSpec:
        return self.resolve(["gpus"], query, "GPU")  # type: ignore[return-value]

    def resolve_model(self, query: str) -> LlmSpec | VlmSpec | VisionEncoderSpec:
        """A model to estimate: a VLM, an LLM, or a vision encoder on its own."""
        return self.resolve(["vlms", "llms", "encoders"], query, "model")  # type: ignore[return-value]

    def resolve_any(self, query: str) -> Entry:
        return self.resolve(list(KIND_DIRS), query, "id")

    def encoder(self, eid: str) -> VisionEncoderSpec:
        return self.get("encoders", eid)  # type: ignore[return-value]

    def llm(self, eid: str) -> LlmSpec:
        return self.get("llms", eid)  # type: ignore[return-value]

    def overlay(self, entries: Iterable[Entry]) -> Catalog:
        """A new catalog in which these validated specs (a model read from the user's files) also
        resolve, by id and alias, over any entry with the same id; this catalog is unchanged."""
        cat = Catalog(list(self.roots), {k: dict(v) for k, v in self.raw.items()}, list(self.problems),
                      {k: dict(v) for k, v in self._keys.items()}, dict(self._validated))
        for spec in entries:
            kind = f"{spec.kind}s"  # type: ignore[attr-defined]  # gpu -> gpus, llm -> llms, ...
            cat.raw.setdefault(kind, {})[spec.id] = RawEntry(kind, Path(f"<overlay>/{kind}/{spec.id}.yaml"), spec.model_dump(mode="json"))
            norm = normalize_gpu if kind == "gpus" else normalize
            for name in [spec.id, *spec.aliases]:
                cat._keys.setdefault(kind, {})[norm(name)] = spec.id
            cat._validated[(kind, spec.id)] = spec
        return cat


def _yaml_files(folder: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(folder) if e.name.endswith(".yaml"))
    except FileNotFoundError:
        return []


def _parse(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


def _parse_cached(files: list[tuple[str, Path]]) -> dict[str, Any]:
    """Parsed YAML for ``files``, from a JSON cache keyed by (path, size, mtime) when it is current.

    Files that do not parse are left out (``_add_file`` reports them). The cache lives in the user
    data dir; if it cannot be written, nothing is cached.
    """
    import hashlib
    import json

    stamps = []
    for _, p in files:
        st = p.stat()
        stamps.append(f"{p}|{st.st_size}|{st.st_mtime_ns}")
    key = hashlib.sha1("\n".join(stamps).encode()).hexdigest()[:16]
    cache_file = user_catalog_dir().parent / "cache" / f"catalog-{key}.json"
    try:
        return json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    parsed: dict[str, Any] = {}
    for _, p in files:
        try:
            parsed[str(p)] = _parse(p)
        except yaml.YAMLError:
            continue
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        for old in cache_file.parent.glob("catalog-*.json"):
            old.unlink(missing_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(parsed, default=str), encoding="utf-8")
        tmp.replace(cache_file)
    except OSError:
        pass
    return parsed


def natural_key(s: str) -> list[Any]:
    """'h20' before 'h100', 'a2' before 'a10'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def validate_entry(raw: RawEntry) -> Entry:
    """Validate one raw entry; errors name the file and the field path."""
    from pydantic import ValidationError

    from vramcalc.schema import KINDS

    model = KINDS[raw.kind]
    try:
        return model.model_validate(raw.data)
    except ValidationError as e:
        raise CatalogError(format_validation_error(raw.path, e)) from e


def format_validation_error(path: Path, err: Any) -> str:
    lines = []
    for item in err.errors():
        loc = " -> ".join(str(p) for p in item["loc"]) or "(entry)"
        lines.append(f"{path} -> {loc}: {item['msg']}")
    return "\n".join(lines)


@functools.cache
def load_catalog(include_user: bool = True) -> Catalog:
    """The built-in catalog plus the user's own entries (``vramcalc import --write``)."""
    roots = [builtin_catalog_dir()]
    if include_user:
        user = user_catalog_dir()
        if user.is_dir():
            roots.append(user)
    return Catalog.load(roots, cache=True)
