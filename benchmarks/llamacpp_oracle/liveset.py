"""What ggml-alloc keeps alive at the compute buffer's peak, from a llama.cpp log with allocator debugging.

Build a copy of libggml-base with ``GGML_ALLOCATOR_DEBUG`` (README.md, "Live sets"), run llama-completion
at ``-lv 5`` with it on LD_LIBRARY_PATH, and pass the log here: for each graph reservation it prints the
tensors allocated (name, start-end offset in MiB, size) when the buffer reached its largest size. The gaps
between them are freed blocks that the allocator could not reuse.

    python liveset.py LOG
"""

from __future__ import annotations

import re
import sys

LINE = re.compile(r"max_size\[(\d+)\] = ([\d.]+) MB: tensors: (.*)")
TENSOR = re.compile(r"(\S+) \[(\d+): ([0-9a-f]+)-([0-9a-f]+)\] \(([\d.]+) MB\)")


def peaks(lines: list[str]) -> list[tuple[float, str]]:
    """(peak MiB, tensor list) of each reservation: the max_size lines restart low at each new graph."""
    out: list[tuple[float, str]] = []
    best: tuple[float, str] | None = None
    prev = 0.0
    for line in lines:
        m = LINE.search(line)
        if not m:
            continue
        v = float(m.group(2))
        if v < prev and best:
            out.append(best)
            best = None
        prev = v
        if best is None or v >= best[0]:
            best = (v, m.group(3))
    if best:
        out.append(best)
    return out


def main() -> None:
    with open(sys.argv[1], errors="replace") as f:
        lines = f.readlines()
    for v, tensors in peaks(lines):
        print(f"== peak {v:.2f} MiB")
        for t in TENSOR.finditer(tensors):
            lo, hi = int(t.group(3), 16) / 2**20, int(t.group(4), 16) / 2**20
            print(f"   {t.group(1):28s} {lo:9.2f}-{hi:9.2f}  {float(t.group(5)):8.2f}")


if __name__ == "__main__":
    main()
