"""Speed of `fit` in-process: the whole catalog against one GPU, after a warm-up on another GPU.

This was tests/test_fit.py::test_fit_is_fast (a 2 s wall-clock assertion); time belongs here, the
test keeps the behaviour (one row per catalog model; warm caches change nothing).
Prints the median over N runs; with --max-seconds S it exits 1 when the median exceeds S.
Usage: python benchmarks/speed_of_fit.py [--runs N] [--gpu GPU] [--max-seconds S] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gpu", default="rtx3060")
    ap.add_argument("--warm-gpu", default="rtx4090", help="GPU fitted once first, to warm the parse caches")
    ap.add_argument("--max-seconds", type=float, default=None, help="fail when the median exceeds this")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from vramcalc.catalog import load_catalog
    from vramcalc.fit import fit

    cat = load_catalog(include_user=False)
    fit(cat.resolve_gpu(args.warm_gpu), cat)
    gpu = cat.resolve_gpu(args.gpu)
    times, rows = [], 0
    for _ in range(args.runs):
        t = time.perf_counter()
        rows = len(fit(gpu, cat).rows)
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    result = {"gpu": gpu.id, "rows": rows, "runs": args.runs, "median_s": median, "min_s": min(times), "max_s": max(times)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"fit --gpu {gpu.id}: {rows} rows, median {median * 1000:.0f} ms over {args.runs} runs "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
        )
    if args.max_seconds is not None and median > args.max_seconds:
        print(f"median {median:.2f} s exceeds --max-seconds {args.max_seconds}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
