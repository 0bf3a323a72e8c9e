"""Shared fixtures: hermetic environment, the GPU marker, a CLI runner."""

from __future__ import annotations

import importlib.util
import os

import pytest

# .ci/run installs every extra and sets this: there a skip is a missing dependency or a broken fixture,
# so it fails (the gpu marker's skip without CUDA excepted). Read here, before _hermetic clears VRAMCALC_*.
STRICT_SKIPS = os.environ.get("VRAMCALC_STRICT_SKIPS") == "1"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if STRICT_SKIPS and rep.skipped and item.get_closest_marker("gpu") is None:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else rep.longrepr
        rep.outcome = "failed"
        rep.longrepr = f"skipped under VRAMCALC_STRICT_SKIPS=1 (CI installs every extra): {reason}"
    return rep


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A whole module skipped at collection (importorskip at the top) fails under strict skips too. Changed
    where the report is made, before any pytest_collectreport hook (the terminal's, or pytest-xdist's,
    which sends it from a worker) sees it as a skip."""
    rep = yield
    if STRICT_SKIPS and rep.skipped:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else rep.longrepr
        rep.outcome = "failed"
        rep.longrepr = f"skipped at collection under VRAMCALC_STRICT_SKIPS=1 (CI installs every extra): {reason}"
    return rep


@pytest.fixture(scope="session")
def _builtin_catalog_cache(tmp_path_factory) -> dict[str, bytes]:
    """The files a first run writes to ``<home>/cache`` for the built-in catalog (validated entries), built
    once per session: name -> bytes."""
    from vramcalc.catalog import load_catalog

    home = tmp_path_factory.mktemp("catalog-cache-seed") / "vramcalc-home"
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("VRAMCALC_"):
                mp.delenv(k)
        mp.setenv("VRAMCALC_HOME", str(home))
        load_catalog.cache_clear()
        load_catalog()
        load_catalog.cache_clear()
    return {p.name: p.read_bytes() for p in (home / "cache").glob("catalog-*.pickle")}


@pytest.fixture(autouse=True)
def _hermetic(request, tmp_path, monkeypatch):
    """No VRAMCALC_* from the caller; the user data dir is a fresh temp dir.

    Its ``cache/`` starts with the built-in catalog's cache file, as on a user's second run: a cold load
    validates all ~430 entries (~0.2 s of CPU), and about 40% of the tests load the catalog. The cold path
    keeps its own tests (test_catalog_cache.py, and any test marked ``cold_catalog_cache``, whose home starts
    empty); a test with a user catalog loads other roots, so its cache file is another and starts cold."""
    for k in list(os.environ):
        if k.startswith("VRAMCALC_"):
            monkeypatch.delenv(k)
    home = tmp_path / "vramcalc-home"
    monkeypatch.setenv("VRAMCALC_HOME", str(home))
    if request.node.get_closest_marker("cold_catalog_cache") is None:
        seed = request.getfixturevalue("_builtin_catalog_cache")
        (home / "cache").mkdir(parents=True)
        for name, blob in seed.items():
            (home / "cache" / name).write_bytes(blob)
    # no test reaches the internet: a name that looks like a Hub repo or an Ollama tag is answered
    # offline (the loopback fake Hub/registry fixtures of test_hub.py / test_ollama.py undo these)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("VRAMCALC_OLLAMA_REGISTRY", "http://127.0.0.1:9")
    from vramcalc.catalog import load_catalog

    load_catalog.cache_clear()
    yield
    load_catalog.cache_clear()


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """@pytest.mark.gpu tests are skipped, with the reason shown, where torch has no CUDA device."""
    if any("gpu" in item.keywords for item in items) and not _cuda_available():
        skip = pytest.mark.skip(reason="needs torch with a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


def _memoize_typer_get_command() -> None:
    """typer's CliRunner.invoke rebuilds the click command from the Typer app on every call (inspecting every
    command's signature and type hints): 27 of the 35 ms of a `check llava-7b --json` case. Build it once per app and per
    set of registered commands; the click command is stateless between invocations (each gets a new
    Context), so every test still runs the same command code. typer 0.28 (pyproject pins <0.29) has
    typer.testing._get_command; without it nothing changes."""
    import typer.testing

    build = getattr(typer.testing, "_get_command", None)
    if build is None or getattr(build, "vramcalc_memo", False):
        return
    built: dict[tuple, object] = {}

    def get_command(app):
        infos = (*app.registered_commands, *app.registered_groups, app.registered_callback)
        key = (id(app), *(id(i) for i in infos))
        if key not in built:
            built[key] = (app, build(app))  # keeps app alive, so its id is not reused
        return built[key][1]

    get_command.vramcalc_memo = True  # type: ignore[attr-defined]
    typer.testing._get_command = get_command


_memoize_typer_get_command()


@pytest.fixture(scope="session")
def runner():
    from typer.testing import CliRunner

    return CliRunner()
