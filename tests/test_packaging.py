"""The wheel ships every module and the catalog, and works installed (non-editable) from anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package():
    """pyproject names its packages one by one (vramcalc.data lives at data/, which packages.find cannot
    map): every folder of vramcalc/ that holds Python files must be on the list."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vramcalc").rglob("*.py") if "__pycache__" not in p.parts}
    assert on_disk <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(on_disk - listed)}"
    assert "vramcalc.data" in listed


def _build_wheel(tmp_path: Path) -> Path:
    pytest.importorskip("build")
    # build from a clean copy: a stale build/ folder in the checkout would leak old files into the wheel
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"
        ),
    )
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(src)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return next(tmp_path.glob("vramcalc-*.whl"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_wheel_contains_catalog_and_every_module(wheel, tmp_path):
    names = zipfile.ZipFile(wheel).namelist()
    yaml_in_repo = sorted(
        p.relative_to(ROOT / "data").as_posix() for p in [*(ROOT / "data").glob("*/*.yaml"), *(ROOT / "data").glob("*.yaml")]
    )
    yaml_in_wheel = sorted(n.removeprefix("vramcalc/data/") for n in names if n.startswith("vramcalc/data/") and n.endswith(".yaml"))
    assert yaml_in_wheel == yaml_in_repo
    py_in_repo = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vramcalc").rglob("*.py") if "__pycache__" not in p.parts}
    missing = sorted(py_in_repo - set(names))
    assert not missing, f"modules missing from the wheel: {missing}"
    # installed elsewhere (plain unzip on a path, no editable finder), the package finds its catalog
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "from vramcalc.catalog import load_catalog; c = load_catalog(); print(c.resolve_model('llava-7b').id, len(c.raw['gpus']))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "VRAMCALC_HOME": str(tmp_path / "home")},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("llava-1.6-mistral-7b ")


def _test_site_dirs() -> list[str]:
    """The site-packages folders of the interpreter running the tests (where the dependencies are)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    dirs += [p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages"))]
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_runs_the_commands(wheel, tmp_path):
    """pip install --no-deps of the wheel into a new venv (the dependencies come from this interpreter's
    site-packages through a .pth file: no download), then the console script from a folder outside the
    repository. Catches modules left out of the wheel that an editable install hides."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, symlinks=os.name != "nt")
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / ("python.exe" if os.name == "nt" else "python")
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    # appended after the venv's own site-packages, so the wheel's vramcalc wins over any editable install
    (Path(purelib) / "zz-test-deps.pth").write_text("\n".join(_test_site_dirs()) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("VRAMCALC_")}
    env |= {"VRAMCALC_HOME": str(tmp_path / "home"), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "COLUMNS": "80"}
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    where = subprocess.run(
        [str(py), "-c", "import vramcalc.cli; print(vramcalc.cli.__file__)"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout  # the wheel's copy, not the checkout
    exe = bindir / ("vramcalc.exe" if os.name == "nt" else "vramcalc")
    for args in (["probe", "--help"], ["check", "llava-7b", "--gpu", "rtx3060"], ["validate"]):
        out = subprocess.run([str(exe), *args], check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert out.returncode == 0, f"vramcalc {' '.join(args)}: {out.stdout[-1000:]}{out.stderr[-2000:]}"
