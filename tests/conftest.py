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


def pytest_collectreport(report):
    """A whole module skipped at collection (importorskip at the top) fails under strict skips too."""
    if STRICT_SKIPS and report.skipped:
        report.outcome = "failed"


@pytest.fixture(autouse=True)
def _hermetic(tmp_path, monkeypatch):
    """No VRAMCALC_* from the caller; the user data dir is a fresh temp dir."""
    for k in list(os.environ):
        if k.startswith("VRAMCALC_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("VRAMCALC_HOME", str(tmp_path / "vramcalc-home"))
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


@pytest.fixture(scope="session")
def runner():
    from typer.testing import CliRunner

    return CliRunner()
