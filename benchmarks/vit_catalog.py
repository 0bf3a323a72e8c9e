"""Every catalog encoder that transformers can build, against the real model code (probe extra).

The check is tests/test_vit.py::check_catalog_encoder (FakeTensorMode + the peak tracker on the transformers
model built from the entry: parameters exact, FLOPs within 1%, activations within 10% at batch 1 and 32).
The test suite runs it on one encoder per structure (test_vit._representatives: every switch combination
the catalog has, at full size; ~50% of the suite's time when it ran all of them); this script runs it on
all of them (``--rest``: the others, as .ci/run does, so CI still measures each entry once).
Exit code 1 when any entry fails.
Usage: python benchmarks/vit_catalog.py [--rest | --only ID ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="these encoder ids only")
    ap.add_argument("--rest", action="store_true", help="only the encoders the test suite leaves out (CI)")
    args = ap.parse_args()
    os.environ["VRAMCALC_HOME"] = tempfile.mkdtemp(prefix="vramcalc-vit-")  # no user catalog entries

    from test_vit import _buildable, _representatives, check_catalog_encoder

    in_tests = set(_representatives())
    ids = args.only or [e for e in _buildable() if not (args.rest and e in in_tests)]
    failed = []
    for eid in ids:
        t = time.process_time()
        try:
            check_catalog_encoder(eid)
            status = "ok"
        except Exception as e:  # an AssertionError or a build failure: report it and go on
            failed.append(eid)
            status = "FAILED " + (str(e).splitlines() or [type(e).__name__])[0][:200]
            traceback.print_exc(limit=2, file=sys.stderr)
        tag = " (also in the test suite)" if eid in in_tests else ""
        print(f"{eid:32s} {time.process_time() - t:6.1f} s CPU  {status}{tag}", flush=True)
    print(f"{len(ids) - len(failed)} of {len(ids)} encoders match the measurement")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
