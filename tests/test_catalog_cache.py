"""The catalog cache (<user data dir>/cache/catalog.pickle) holds validated entries: a hit imports
neither pydantic nor yaml, an edited, added or removed YAML file is never served stale, and a
corrupt or tampered cache file is ignored and rebuilt, never an error."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vramcalc import catalog as catalog_mod
from vramcalc.catalog import Catalog, builtin_catalog_dir, load_catalog
from vramcalc.errors import CatalogError
from vramcalc.schema import GpuSpec, LlmSpec, to_dict

# the cache's own tests: each home starts empty (conftest seeds the others with the built-in catalog's cache)
pytestmark = pytest.mark.cold_catalog_cache

GPU = "gpus/rtx3060-12gb.yaml"
LLM = "llms/llama-2-7b.yaml"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A small catalog root: one GPU and one LLM copied from the built-in catalog."""
    r = tmp_path / "cat"
    for rel in (GPU, LLM):
        (r / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(builtin_catalog_dir() / rel, r / rel)
    return r


def _cache(root: Path) -> Path:
    return catalog_mod._cache_file([root])


def _load(root: Path) -> Catalog:
    return Catalog.load([root], cache=True)


def test_hit_returns_equal_entries_and_writes_one_file(root):
    first = _load(root)
    assert _cache(root).is_file()
    second = _load(root)
    assert isinstance(second._checked[str(root / GPU)], bytes)  # came from the cache
    for kind, eid in (("gpus", "rtx3060-12gb"), ("llms", "llama-2-7b")):
        assert second.get(kind, eid) == first.get(kind, eid) == Catalog.load([root]).get(kind, eid)
    assert second.raw["gpus"]["rtx3060-12gb"].data == first.raw["gpus"]["rtx3060-12gb"].data  # read back lazily
    assert sorted(p.name for p in _cache(root).parent.iterdir()) == [_cache(root).name]


def test_hit_imports_neither_pydantic_nor_yaml(tmp_path):
    code = (
        "import sys; from vramcalc.catalog import load_catalog; c = load_catalog();"
        "m = c.resolve_model('llava-7b'); g = c.resolve_gpu('rtx3060'); c.encoder(m.encoder); c.llm(m.llm);"
        "print(g.memory_bytes, sorted(x for x in ('pydantic', 'pydantic_core', 'yaml') if x in sys.modules))"
    )
    env = {**os.environ, "VRAMCALC_HOME": str(tmp_path / "home")}
    cold = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "pydantic" in cold.stdout  # the miss validated everything
    warm = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert warm.stdout.strip() == "12884901888 []", warm.stdout + warm.stderr


def _rewrite(path: Path, old: str, new: str, keep_mtime: bool = True) -> None:
    st = path.stat()
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    if keep_mtime:  # an editor or a copy that keeps the time stamp: the ctime still changes
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_edited_file_is_never_stale(root):
    assert _load(root).get("gpus", "rtx3060-12gb").memory_bandwidth_gbs == 360.0
    _load(root)
    # same size, same mtime: only the content (and the ctime) differ
    _rewrite(root / GPU, "memory_bandwidth_gbs: 360", "memory_bandwidth_gbs: 361")
    assert _load(root).get("gpus", "rtx3060-12gb").memory_bandwidth_gbs == 361.0
    _rewrite(root / GPU, "memory_bandwidth_gbs: 361", "memory_bandwidth_gbs: 400.5", keep_mtime=False)
    assert _load(root).get("gpus", "rtx3060-12gb").memory_bandwidth_gbs == 400.5


def test_edited_user_catalog_through_load_catalog():
    user = catalog_mod.user_catalog_dir() / "gpus"
    user.mkdir(parents=True)
    src = (builtin_catalog_dir() / GPU).read_text()
    (user / "my-gpu.yaml").write_text(re.sub(r"(?m)^aliases: .*$", "aliases: []", src.replace("id: rtx3060-12gb", "id: my-gpu")))
    assert load_catalog().resolve_gpu("my-gpu").memory_bandwidth_gbs == 360.0
    load_catalog.cache_clear()
    _rewrite(user / "my-gpu.yaml", "memory_bandwidth_gbs: 360", "memory_bandwidth_gbs: 362")
    assert load_catalog().resolve_gpu("my-gpu").memory_bandwidth_gbs == 362.0


def test_added_and_removed_files_are_seen(root):
    assert _load(root).ids("gpus") == ["rtx3060-12gb"]
    text = (root / GPU).read_text().replace("id: rtx3060-12gb", "id: rtx3060-copy").replace("aliases: [", "old_aliases: [")
    (root / "gpus/rtx3060-copy.yaml").write_text(text)
    cat = _load(root)
    assert cat.ids("gpus") == ["rtx3060-12gb", "rtx3060-copy"]
    with pytest.raises(CatalogError, match="old_aliases: Extra inputs are not permitted"):
        cat.get("gpus", "rtx3060-copy")
    (root / "gpus/rtx3060-copy.yaml").unlink()
    assert _load(root).ids("gpus") == ["rtx3060-12gb"]


def test_invalid_entry_has_the_same_error_from_the_cache(root):
    _rewrite(root / LLM, "num_kv_heads: 32", "num_kv_heads: 5", keep_mtime=False)
    errors = []
    for _ in range(2):  # a miss, then a hit
        cat = _load(root)
        with pytest.raises(CatalogError) as e:
            cat.get("llms", "llama-2-7b")
        errors.append(str(e.value))
        assert cat.get("gpus", "rtx3060-12gb").id == "rtx3060-12gb"  # the others still load
    assert errors[0] == errors[1]
    assert errors[0] == f"{root / LLM} -> (entry): Value error, num_heads (32) must be a multiple of num_kv_heads (5)"


def _good_blob(root: Path) -> bytes:
    _load(root)
    return _cache(root).read_bytes()


def _tampered(blob: bytes, marker: Path) -> bytes:
    """A cache whose payload would run code when unpickled by a plain pickle.load."""

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    key, _, _ = pickle.loads(blob[len(catalog_mod._CACHE_MAGIC) :])
    import zlib

    payload = pickle.dumps(({}, {"x": Evil()}))
    return catalog_mod._CACHE_MAGIC + pickle.dumps((key, zlib.crc32(payload), payload))


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "flipped byte", "other magic", "tampered", "directory"])
def test_corrupt_cache_is_rebuilt(root, tmp_path, damage):
    blob = _good_blob(root)
    expect = to_dict(Catalog.load([root]).get("llms", "llama-2-7b"))
    marker = tmp_path / "pwned"
    cache = _cache(root)
    if damage == "garbage":
        cache.write_bytes(b"\x80\x04not a pickle at all")
    elif damage == "empty":
        cache.write_bytes(b"")
    elif damage == "truncated":
        cache.write_bytes(blob[: len(blob) // 2])
    elif damage == "flipped byte":
        i = len(blob) - 200
        cache.write_bytes(blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1 :])
    elif damage == "other magic":
        cache.write_bytes(b"vramcalc catalog cache v0\n" + blob[len(catalog_mod._CACHE_MAGIC) :])
    elif damage == "tampered":
        cache.write_bytes(_tampered(blob, marker))
    elif damage == "directory":
        cache.unlink()
        cache.mkdir()
    cat = _load(root)
    assert to_dict(cat.get("llms", "llama-2-7b")) == expect
    assert isinstance(cat.get("gpus", "rtx3060-12gb"), GpuSpec)
    assert not marker.exists()
    if damage != "directory":  # rebuilt: the next load is a hit again
        assert _cache(root).read_bytes() != b"" and isinstance(_load(root)._checked[str(root / LLM)], bytes)


def test_cache_never_unpickles_other_classes():
    with pytest.raises(pickle.UnpicklingError):
        catalog_mod._safe_loads(pickle.dumps(Path("/")), allow_specs=True)
    with pytest.raises(pickle.UnpicklingError):
        catalog_mod._safe_loads(pickle.dumps(LlmSpec), allow_specs=False)


def test_unwritable_cache_dir_still_loads(root, monkeypatch, tmp_path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setattr(catalog_mod, "_cache_file", lambda roots: blocker / "cache" / "catalog.pickle")
    assert _load(root).get("gpus", "rtx3060-12gb").id == "rtx3060-12gb"


def test_each_set_of_roots_keeps_its_own_cache(root, tmp_path):
    """Loading the catalog without the user folder (import --write does) leaves the other cache alone."""
    other = tmp_path / "other-root"
    shutil.copytree(root, other)
    _load(root)
    Catalog.load([other], cache=True)
    assert _cache(root) != catalog_mod._cache_file([other]) and _cache(root).is_file()
    assert isinstance(_load(root)._checked[str(root / GPU)], bytes)  # still a hit
