"""Start-up benchmark: whole `vramcalc` processes against importing their base libraries.

Prints the median wall time of each command over N runs and its ratio to the baseline
`python -c "import typer, rich, pydantic, yaml"`. The runs are interleaved (one of each command per
round) so that a machine whose load changes during the benchmark slows every command alike.

Conditions, as a user has them after `pip install`: byte-code is written and used (the
environment's PYTHONDONTWRITEBYTECODE is dropped for the runs), the catalog cache is warm (a
warm-up run fills it, in a temporary VRAMCALC_HOME so the user's own catalog plays no part).
The `(cold cache)` rows remove the caches (the parsed catalog, and the derived values `fit` keeps:
vramcalc.diskmemo) before each run: the first start after an install or a catalog edit; they have
no target.

Targets (issue 17): check --json <= 1.3x, fit over the whole catalog <= 2.5x, --help <= 1.1x.
Usage: python benchmarks/startup.py [--runs N] [--json] [--check] [--before DIR]
  --check: exit 1 if a target is missed. --before DIR: also run every command with DIR first on
  PYTHONPATH (a folder holding an older `vramcalc` package, e.g. `git archive <rev> vramcalc | tar -x -C DIR`),
  interleaved with the current code in the same rounds, for a before/after table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
EXE = shutil.which("vramcalc", path=str(Path(PY).parent)) or shutil.which("vramcalc")

BASELINE_NAME = "baseline: import typer, rich, pydantic, yaml"
BASELINE = [PY, "-c", "import typer, rich, pydantic, yaml"]
COMMANDS = {
    "check --json": [EXE, "check", "llava-7b", "--gpu", "rtx3060", "--json"],
    "check --json (cold cache)": [EXE, "check", "llava-7b", "--gpu", "rtx3060", "--json"],
    "check (table)": [EXE, "check", "llava-7b", "--gpu", "rtx3060"],
    "list gpus --json": [EXE, "list", "gpus", "--json"],
    "fit --gpu rtx3060 --json": [EXE, "fit", "--gpu", "rtx3060", "--json"],  # every catalog model
    "fit --gpu rtx3060 --json (cold cache)": [EXE, "fit", "--gpu", "rtx3060", "--json"],
    "--help": [EXE, "--help"],
}
#: command -> largest ratio to the baseline
TARGETS = {"check --json": 1.3, "fit --gpu rtx3060 --json": 2.5, "--help": 1.1}


def _env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("VRAMCALC_")}
    return {**env, "COLUMNS": "120", "VRAMCALC_HOME": home}


def _run(cmd: list[str], env: dict[str, str], cold: bool) -> float:
    if cold:
        shutil.rmtree(Path(env["VRAMCALC_HOME"]) / "cache", ignore_errors=True)
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, env=env, check=True)
    return time.perf_counter() - t


def measure(runs: int, before: str | None = None) -> dict[str, float]:
    """Median seconds per command (baseline first), interleaved over ``runs`` rounds; with
    ``before``, each command also runs on the code in that folder ('before: ...' rows)."""
    with (
        tempfile.TemporaryDirectory(prefix="vramcalc-bench-") as home,
        tempfile.TemporaryDirectory(prefix="vramcalc-bench-") as home0,
        tempfile.TemporaryDirectory(prefix="vramcalc-bench-cold-") as cold,
    ):
        env = _env(home)
        # the cold rows empty their own home's cache before each run, not the warm rows' one
        env_cold = _env(cold)
        cmds = {BASELINE_NAME: (BASELINE, env)}
        for k, v in COMMANDS.items():
            if before:
                env0 = {**_env(home0), "PYTHONPATH": before}
                cmds[f"before: vramcalc {k}"] = (v, env0)
            cmds[f"vramcalc {k}"] = (v, env_cold if "cold cache" in k else env)
        for cmd, e in cmds.values():  # warm the OS file cache, the byte-code and the catalog cache
            _run(cmd, e, cold=False)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(runs):
            for name, (cmd, e) in cmds.items():
                times[name].append(_run(cmd, e, cold="cold cache" in name))
        return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check", action="store_true", help="exit 1 when a ratio target is missed")
    ap.add_argument("--before", metavar="DIR", help="folder with an older vramcalc package to compare with")
    args = ap.parse_args()
    if EXE is None:
        sys.exit("vramcalc is not installed in this environment")
    med = measure(args.runs, str(Path(args.before).resolve()) if args.before else None)
    base = med[BASELINE_NAME]
    rows = {name: {"median_s": t, "ratio": t / base} for name, t in med.items()}
    results = []
    for cmd, limit in TARGETS.items():
        ratio = rows[f"vramcalc {cmd}"]["ratio"]
        results.append({"command": cmd, "ratio": ratio, "target": limit, "met": ratio <= limit})
    if args.json:
        print(json.dumps({"runs": args.runs, "rows": rows, "targets": results}, indent=2))
    else:
        for name, r in rows.items():
            print(f"{r['median_s'] * 1000:8.1f} ms  {r['ratio']:5.2f}x  {name}")
        if args.check:
            print()
            for r in results:
                print(f"{'met   ' if r['met'] else 'MISSED'}  vramcalc {r['command']}: {r['ratio']:.2f}x (target <= {r['target']}x)")
    if args.check and not all(r["met"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
