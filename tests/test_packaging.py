"""The catalog must ship inside the wheel and be found from an installed (non-editable) package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_catalog(tmp_path):
    pytest.importorskip("build")
    # build from a clean copy: a stale build/ folder in the checkout would leak old files into the wheel
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    wheel = next(tmp_path.glob("vramcalc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    yaml_in_repo = sorted(p.relative_to(ROOT / "data").as_posix() for p in [*(ROOT / "data").glob("*/*.yaml"), *(ROOT / "data").glob("*.yaml")])
    yaml_in_wheel = sorted(n.removeprefix("vramcalc/data/") for n in names if n.startswith("vramcalc/data/") and n.endswith(".yaml"))
    assert yaml_in_wheel == yaml_in_repo
    # installed elsewhere (plain unzip on a path, no editable finder), the package finds its catalog
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "from vramcalc.catalog import load_catalog; c = load_catalog(); print(c.resolve_model('llava-7b').id, len(c.raw['gpus']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "VRAMCALC_HOME": str(tmp_path / "home")}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("llava-1.6-mistral-7b ")
