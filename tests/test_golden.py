"""The golden record: today's `check --json` / `fit --json` over a fixed grid equal the recorded ones.

benchmarks/golden/record.py wrote tests/fixtures/golden/golden.jsonl.gz before the pipeline redesign
(main at 08c060a). Every difference is a regression, or an intended change listed in CHANGELOG.md
(then re-record).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "fixtures" / "golden" / "golden.jsonl.gz"


def _record_module():
    spec = importlib.util.spec_from_file_location("golden_record", ROOT / "benchmarks" / "golden" / "record.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["golden_record"] = mod  # ProcessPoolExecutor pickles its functions by module name
    spec.loader.exec_module(mod)
    return mod


def diff(a, b, path: str = "") -> list[str]:
    """Paths where two JSON values differ (floats: relative 1e-9, the noise of a reordered sum)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: {'missing' if k not in b else 'new'}")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items -> {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=False)) for d in diff(x, y, f"{path}[{i}]")]
    numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
    if (isinstance(a, float) or isinstance(b, float)) and numbers and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
        return []
    if a != b:
        return [f"{path}: {a!r} -> {b!r}"]
    return []


def test_diff_finds_changes():
    assert diff({"a": 1.0, "b": [1, 2]}, {"a": 1.0 + 1e-12, "b": [1, 2]}) == []
    assert diff({"a": 1, "b": [1, 2]}, {"a": 2, "b": [1]}) == [".a: 1 -> 2", ".b: 2 items -> 1"]
    assert diff({"a": "x"}, {}) == [".a: missing"]


def test_golden_record_unchanged():
    rec = _record_module()
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as f:
        golden = [json.loads(line) for line in f]
    assert len(golden) > 2000  # every catalog model on five GPUs, two runtimes, four option sets, fit on four
    now = rec.run_all([g["args"] for g in golden], jobs=2)
    problems = []
    for g, n in zip(golden, now, strict=True):
        d = diff({k: v for k, v in g.items() if k != "args"}, {k: v for k, v in n.items() if k != "args"})
        if d:
            problems.append(f"{' '.join(g['args'])}: " + "; ".join(d[:4]) + (f" (+{len(d) - 4})" if len(d) > 4 else ""))
    assert not problems, f"{len(problems)} of {len(golden)} cases differ:\n" + "\n".join(problems[:40])
