"""Golden record: `check --json` and `fit --json` over a fixed grid, to prove a refactor changes nothing.

Records, for every catalog LLM, VLM and encoder, the JSON (or the error) that `vramcalc check` prints
on a fixed set of GPUs, both runtimes and several option sets, plus `fit --json` on three GPUs, into
``tests/fixtures/golden/golden.jsonl.gz``. ``tests/test_golden.py`` recomputes every case and compares.
A difference is either a bug (fix it) or an intended change: re-record with this script and list the
change, with its reason, in CHANGELOG.md.

Usage: python benchmarks/golden/record.py [--jobs N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "golden" / "golden.jsonl.gz"

#: The GPUs of the grid: a 12 GB consumer card, a 24 GB one, a two-card layer split, Apple unified
#: memory and a datacenter card.
GPUS = ["rtx3060-12gb", "rtx4090", "2xrtx3090", "m2-max-38c-64gb", "a100-sxm4-80gb"]
#: Option sets beyond the defaults (applied to LLMs and VLMs).
OPTION_SETS = {
    "long-ctx-q8kv": ["--ctx", "32768", "--kv-cache", "q8_0"],
    "no-fa": ["--no-flash-attn"],
    "ngl10": ["--gpu-layers", "10"],
    "two-images-1080p": ["--images", "2", "--image-size", "1920x1080"],
}
FIT_GPUS = ["rtx3060-12gb", "rtx4090", "m2-max-38c-64gb"]


def cases(model_ids: dict[str, list[str]]) -> list[list[str]]:
    out: list[list[str]] = []
    every = [m for k in ("llms", "vlms", "encoders") for m in model_ids[k]]
    lm = [m for k in ("llms", "vlms") for m in model_ids[k]]
    for m in every:  # defaults: every model, every GPU, llama.cpp; transformers on two GPUs
        for g in GPUS:
            out.append(["check", m, "--gpu", g, "--json"])
        for g in ("rtx4090", "a100-sxm4-80gb"):
            out.append(["check", m, "--gpu", g, "--runtime", "transformers", "--json"])
    for name, opts in OPTION_SETS.items():
        for m in lm:
            out.append(["check", m, "--gpu", "rtx3060-12gb", *opts, "--json"])
            if name == "ngl10":
                out.append(["check", m, "--gpu", "2xrtx3090", *opts, "--json"])
            if name in ("long-ctx-q8kv", "two-images-1080p"):
                out.append(["check", m, "--gpu", "rtx4090", "--runtime", "transformers", *opts, "--json"])
    for g in FIT_GPUS:
        out.append(["fit", "--gpu", g, "--json"])
    out.append(["fit", "--gpu", "rtx4090", "--runtime", "transformers", "--json"])
    return out


def catalog_ids() -> dict[str, list[str]]:
    from vramcalc.catalog import Catalog, builtin_catalog_dir

    cat = Catalog.load([builtin_catalog_dir()])
    return {k: cat.ids(k) for k in ("llms", "vlms", "encoders")}


_COMMANDS: dict[int, object] = {}


def _memoize_get_command() -> None:
    """typer's CliRunner.invoke rebuilds the click command from the app on every call (~2/3 of a check
    case's time); one command per process runs the same code. (typer 0.28 has typer.testing._get_command;
    without it nothing changes.)"""
    import typer.testing

    build = getattr(typer.testing, "_get_command", None)
    if build is None or getattr(build, "vramcalc_memo", False):
        return

    def get_command(app):  # one app, built once: the Typer object is kept alive by the CLI module
        if id(app) not in _COMMANDS:
            _COMMANDS[id(app)] = build(app)
        return _COMMANDS[id(app)]

    get_command.vramcalc_memo = True  # type: ignore[attr-defined]
    typer.testing._get_command = get_command


def run_case(args: list[str]) -> dict:
    """One CLI invocation in-process (built-in catalog only): its exit code and output."""
    from typer.testing import CliRunner

    from vramcalc.cli import app

    _memoize_get_command()
    r = CliRunner().invoke(app, args)
    rec: dict = {"args": args, "exit": r.exit_code}
    if r.exit_code == 0:
        rec["json"] = json.loads(r.stdout)
    else:
        rec["error"] = (r.stderr if hasattr(r, "stderr") else r.output).strip().splitlines()[-1:]
    return rec


def _init() -> None:
    """Each worker: a fresh user data dir (no user catalog entries; its parse cache is private)."""
    import tempfile

    os.environ["VRAMCALC_HOME"] = tempfile.mkdtemp(prefix="vramcalc-golden-")


def run_all(case_list: list[list[str]], jobs: int) -> list[dict]:
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init) as ex:
        return list(ex.map(run_case, case_list, chunksize=16))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    _init()
    recs = run_all(cases(catalog_ids()), args.jobs)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(OUT, "wt", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    print(f"{len(recs)} cases -> {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
