"""The derived-value cache on disk (vramcalc.diskmemo): keyed on content, never a wrong answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vramcalc import diskmemo
from vramcalc.diskmemo import DiskMemo, cached, code_tag, is_plain


def test_plain_data_only():
    assert is_plain({"a": [1, 2.5, None, True, ("x",)]})
    assert not is_plain({1: "int key"})
    assert not is_plain(Path("/"))
    assert not is_plain(b"bytes")
    deep: list = []
    for _ in range(40):
        deep = [deep]
    assert not is_plain(deep)
    with pytest.raises(TypeError, match="plain data"):
        DiskMemo(Path("/nonexistent/x")).put(b"k", object())


def test_round_trip_and_atomic_file(tmp_path):
    path = tmp_path / "derived-x.marshal"
    st = DiskMemo(path)
    k = st.key("ns", ("a", 1))
    st.put(k, {"rows": [1, 2, 3]})
    st.save()
    assert path.exists() and not list(tmp_path.glob("*.tmp"))
    assert DiskMemo(path).get(k) == {"rows": [1, 2, 3]}
    with pytest.raises(KeyError):
        DiskMemo(path).get(st.key("ns", ("a", 2)))  # other parts, other key


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b[:-3] + bytes(3),  # payload changed: the CRC no longer matches
        lambda b: b"not ours\n" + b,  # another file
        lambda b: b"",  # empty
    ],
)
def test_damaged_file_is_discarded(tmp_path, damage):
    path = tmp_path / "derived-x.marshal"
    st = DiskMemo(path)
    k = st.key("ns", ())
    st.put(k, 42)
    st.save()
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(KeyError):
        DiskMemo(path).get(k)


def test_wrong_shape_is_discarded(tmp_path):
    import marshal
    import zlib

    path = tmp_path / "derived-x.marshal"
    for payload_obj in (None, [], {"not bytes": 1}, {b"k": b"bytes value"}):
        payload = marshal.dumps(payload_obj)
        path.write_bytes(diskmemo._MAGIC + marshal.dumps((zlib.crc32(payload), payload)))
        with pytest.raises(KeyError):
            DiskMemo(path).get(b"k")


def test_cached_recomputes_a_value_decode_rejects(tmp_path, monkeypatch):
    monkeypatch.setenv("VRAMCALC_HOME", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"v": 1}

    def decode(v):
        if not isinstance(v, dict):
            raise TypeError
        return v

    assert cached("t", ("p",), compute, decode=decode) == {"v": 1}
    assert cached("t", ("p",), compute, decode=decode) == {"v": 1}
    assert len(calls) == 1  # the second came from the store
    st = diskmemo.store("t")
    assert st is not None
    st.put(st.key("t", ("p",)), "tampered")  # a value of the wrong shape
    assert cached("t", ("p",), compute, decode=decode) == {"v": 1}
    assert len(calls) == 2


def test_off_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("VRAMCALC_HOME", str(tmp_path))
    monkeypatch.setenv("VRAMCALC_NO_DISK_CACHE", "1")
    calls = []
    for _ in range(2):
        cached("t", (), lambda: calls.append(1) or 7)
    assert len(calls) == 2


def test_code_tag_follows_code_and_data_not_catalog(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "llms").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "calibration.yaml").write_text("k: 1\n")
    (pkg / "llms" / "m.yaml").write_text("id: m\n")
    t0 = code_tag(pkg)
    (pkg / "llms" / "m.yaml").write_text("id: m2\n")  # catalog entries are keyed by their content instead
    assert code_tag(pkg) == t0
    (pkg / "calibration.yaml").write_text("k: 2\n")
    t1 = code_tag(pkg)
    assert t1 != t0
    st = os.stat(pkg / "a.py")
    (pkg / "a.py").write_text("x = 2\n")  # same size, same mtime: still a new tag
    os.utime(pkg / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert code_tag(pkg) != t1


def test_calibration_cached_equals_the_file(tmp_path):
    """The parsed calibration.yaml kept in the store is the file's content, and a later process
    reads it without importing yaml."""
    import yaml

    from vramcalc.catalog import builtin_catalog_dir

    env = {**os.environ, "VRAMCALC_HOME": str(tmp_path)}
    code = (
        "import sys, json; from vramcalc.speed import calibration; c = calibration();"
        "print(json.dumps({'yaml': 'yaml' in sys.modules, 'c': c}))"
    )
    import json

    first = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    second = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    truth = yaml.safe_load((builtin_catalog_dir() / "calibration.yaml").read_text(encoding="utf-8"))
    assert first["yaml"] is True and second["yaml"] is False
    assert first["c"] == second["c"] == json.loads(json.dumps(truth))
    assert list(tmp_path.glob("cache/derived-*.marshal"))


def test_warm_check_registers_one_command_and_imports_no_yaml(tmp_path):
    """What start-up saves on a warm cache (benchmarks/startup.py measures it): `check` builds only
    its own command and reads neither yaml nor pydantic nor rich; the answer is the full app's."""
    import json

    from typer.testing import CliRunner

    from vramcalc.cli import app

    argv = ["check", "llava-7b", "--gpu", "rtx3060", "--json"]
    code = (
        "import sys, atexit\n"
        f"sys.argv = ['vramcalc', *{argv!r}]\n"
        "from vramcalc.cli.app import app, main\n"
        "def report():\n"
        "    names = [c.name for c in app.registered_commands]\n"
        "    print('REPORT', names, [m for m in ('yaml', 'pydantic', 'rich') if m in sys.modules], file=sys.stderr)\n"
        "atexit.register(report)\n"
        "main()\n"
    )
    env = {**os.environ, "VRAMCALC_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    assert "REPORT ['check'] []" in runs[1].stderr, runs[1].stderr[-2000:]  # warm: nothing heavy
    full = CliRunner().invoke(app, argv)
    assert full.exit_code == 0
    assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout) == json.loads(full.stdout)


def test_fit_rows_come_from_the_store_and_follow_the_catalog(tmp_path, monkeypatch):
    """A second `fit` reads its rows from the store and answers the same as without the store; an
    edited catalog entry (here a user entry overriding a built-in model by id) is a new key, never
    the old row."""
    import json

    from typer.testing import CliRunner

    from vramcalc.catalog import load_catalog
    from vramcalc.cli import app

    runner = CliRunner()
    argv = ["fit", "--gpu", "rtx3060", "--all", "--json"]
    first = runner.invoke(app, argv)
    assert first.exit_code == 0, first.output
    st = diskmemo.store("fit row")
    assert st is not None
    st.save()
    stored = len(st._load())
    assert stored > 100  # one row per catalog model
    calls = []
    import vramcalc.fit as fitmod

    real = fitmod._fit_one
    monkeypatch.setattr(fitmod, "_fit_one", lambda *a, **k: calls.append(1) or real(*a, **k))
    second = runner.invoke(app, argv)
    assert json.loads(second.stdout) == json.loads(first.stdout)
    assert calls == []  # every row came from the store
    monkeypatch.setenv("VRAMCALC_NO_DISK_CACHE", "1")
    third = runner.invoke(app, argv)
    assert json.loads(third.stdout) == json.loads(first.stdout)
    monkeypatch.delenv("VRAMCALC_NO_DISK_CACHE")

    # a user entry that replaces qwen3-8b with a 4-layer model: its row changes, the others come from the store
    cat = load_catalog()
    base = cat.resolve_model("qwen3-8b")
    src = (cat.raw["llms"][base.id].path).read_text(encoding="utf-8")
    user = Path(os.environ["VRAMCALC_HOME"]) / "catalog" / "llms"
    user.mkdir(parents=True, exist_ok=True)
    import re

    (user / f"{base.id}.yaml").write_text(re.sub(r"(?m)^num_layers: \d+", "num_layers: 4", src), encoding="utf-8")
    (user / f"{base.id}.yaml").write_text(
        re.sub(r"(?m)^published_params:.*\n", "", (user / f"{base.id}.yaml").read_text(encoding="utf-8")), encoding="utf-8"
    )
    load_catalog.cache_clear()
    calls.clear()
    fourth = runner.invoke(app, argv)
    assert fourth.exit_code == 0, fourth.output
    rows = {r["model"]: r for r in json.loads(fourth.stdout)["rows"]}
    old = {r["model"]: r for r in json.loads(first.stdout)["rows"]}
    assert rows[base.id]["llm_params"] < old[base.id]["llm_params"] / 3  # 4 of 36 layers (+ the embeddings)
    from vramcalc.estimate import model_parts

    cat = load_catalog()
    uses = [m for k in ("llms", "vlms") for m in cat.ids(k) if (model_parts(cat.get(k, m), cat).llm or base).id == base.id]
    assert len(calls) == len(uses) >= 1  # only the models built on the edited entry were computed again


@pytest.mark.cold_catalog_cache  # lists tmp_path, where conftest would make the seeded home
def test_a_save_removes_other_code_versions_only(tmp_path):
    (tmp_path / "derived-0ld7a9-fit_row.marshal").write_bytes(b"old")
    (tmp_path / "derived-5a3e7a9-calibration_yaml.marshal").write_bytes(b"same version, other namespace")
    st = DiskMemo(tmp_path / "derived-5a3e7a9-fit_row.marshal")
    st.put(st.key("fit row", ()), 1)
    st.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["derived-5a3e7a9-calibration_yaml.marshal", "derived-5a3e7a9-fit_row.marshal"]
