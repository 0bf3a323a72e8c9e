"""Record the type ``llama-quantize --dry-run`` gives each tensor (its per-tensor log lines), for a few
architectures and file types: tests/fixtures/llamacpp_oracle/dry_run_types.json, which
tests/test_quant_round2.py compares with vramcalc.quant tensor by tensor (runs.csv has only the totals).

    python benchmarks/llamacpp_oracle/dry_run_types.py --llama-cpp /work/llamacpp/llama.cpp \
        --models /work/llamacpp/models
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "llamacpp_oracle" / "dry_run_types.json"
COMMIT = "0c1e57098"
#: the architectures whose mixtures depend on converter splits and quantizer counters, and the file
#: types that exercise the IQ1/IQ2 branch, the attn_v counter, the row-size fallbacks and MXFP4
RECORD = {
    "deepseek-v3-narrow": ["IQ2_XXS", "IQ1_M", "Q2_K", "Q3_K_M", "Q4_K_M", "MXFP4_MOE"],
    "qwen3-next-80b-a3b": ["IQ1_S", "IQ2_M", "Q2_K", "Q3_K_M", "Q4_K_M", "MXFP4_MOE"],
    "deepseek-v2-lite": ["IQ2_XXS", "Q3_K_L", "MXFP4_MOE"],
}
# "[   4/  34] blk.0.attn_k_b.weight - [ 128, 512, 128, 1], type = f16, size = 16.00 MiB -> 4.50 MiB (iq4_nl)"
LINE = re.compile(r"\]\s+(\S+)\s+- \[\s*([\d,\s]+)\], type =\s+(\w+), size =\s+[\d.]+ MiB(?: ->\s+[\d.]+ MiB \((\w+)\))?")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", type=Path, default=Path("/work/llamacpp/llama.cpp"))
    ap.add_argument("--models", type=Path, default=Path("/work/llamacpp/models"))
    a = ap.parse_args()
    rec: dict[str, object] = {"llama_cpp_commit": COMMIT, "command": "llama-quantize --dry-run ARCH-F16.gguf FTYPE", "runs": {}}
    for arch, quants in RECORD.items():
        for q in quants:
            f = a.models / arch / f"{arch}-F16.gguf"
            p = subprocess.run(
                [str(a.llama_cpp / "build" / "bin" / "llama-quantize"), "--dry-run", str(f), q], capture_output=True, text=True
            )
            log = p.stdout + p.stderr
            types = {m.group(1): (m.group(4) or m.group(3)).upper() for m in LINE.finditer(log)}
            size = re.search(r"quant size\s*=\s*([\d.]+) MiB", log)
            assert size and types, log[-500:]
            rec["runs"][f"{arch} {q}"] = {"quant_mib": float(size.group(1)), "tensors": types}  # type: ignore[index]
    OUT.write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
