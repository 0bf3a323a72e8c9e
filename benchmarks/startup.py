"""Start-up benchmark: a whole `vramcalc check` process against importing its base libraries.

Prints the median wall time of each command over N runs and the ratio to the baseline
`python -c "import typer, rich, pydantic, yaml"` (issue 2 target: <= 1.3x for check --json).
Usage: python benchmarks/startup.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable
EXE = shutil.which("vramcalc", path=str(Path(PY).parent)) or shutil.which("vramcalc")

BASELINE = [PY, "-c", "import typer, rich, pydantic, yaml"]
COMMANDS = {
    "check --json": [EXE, "check", "llava-7b", "--gpu", "rtx3060", "--json"],
    "check (table)": [EXE, "check", "llava-7b", "--gpu", "rtx3060"],
    "list gpus --json": [EXE, "list", "gpus", "--json"],
}
if EXE and subprocess.run([EXE, "fit", "--help"], capture_output=True).returncode == 0:
    COMMANDS["fit --gpu rtx3060 --json"] = [EXE, "fit", "--gpu", "rtx3060", "--json"]


def median_time(cmd: list[str], runs: int) -> float:
    env = {**os.environ, "COLUMNS": "120"}
    subprocess.run(cmd, capture_output=True, env=env, check=True)  # warm the OS file cache
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if EXE is None:
        sys.exit("vramcalc is not installed in this environment")
    base = median_time(BASELINE, args.runs)
    rows = {"baseline: import typer, rich, pydantic, yaml": {"median_s": base, "ratio": 1.0}}
    for name, cmd in COMMANDS.items():
        t = median_time(cmd, args.runs)
        rows[f"vramcalc {name}"] = {"median_s": t, "ratio": t / base}
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for name, r in rows.items():
        print(f"{r['median_s'] * 1000:8.1f} ms  {r['ratio']:5.2f}x  {name}")


if __name__ == "__main__":
    main()
