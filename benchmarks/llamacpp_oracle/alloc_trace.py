"""Read ggml-alloc's own trace (AT_PRINTF, README "Allocator traces") of a llama.cpp run.

``python benchmarks/llamacpp_oracle/alloc_trace.py LOG [--graph] [--fixture RUN]`` prints the allocator events of
the largest worst-case reserve (n_tokens = n_ubatch), checks that replaying them through vramcalc's port of
``ggml_dyn_tallocr`` (vramcalc/runtimes/ggml_alloc.py) gives every offset llama.cpp chose and the compute buffer
it reported, with ``--graph`` lists the executed nodes (op, name, parents) in order, and with ``--fixture RUN``
writes the byte events to tests/fixtures/llamacpp_oracle/alloc_traces/RUN.json (RUN: the runs.csv row the log
re-ran) for tests/test_ggml_alloc.py.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

_TS = re.compile(r"\d\.\d\d\.\d\d\d\.\d\d\d [A-Z] ")
_ALLOC = re.compile(r"allocating (.+?) \((\d+) bytes\) - block \d+, offset (\d+), chunk (\d+)")
_FREE = re.compile(r"freeing (.+?) at \{chunk=(\d+), offset=(\d+)\} \((\d+) bytes\)")
_REUSE = re.compile(r"^reusing (?:view )?parent (.+?) (?:\(.*\) )?for (.+)$")
_EXEC = re.compile(r"^exec: (\S+) \((.+?)\) <= (.*)$")
_EXTRA = re.compile(r"^freeing extra (\d+) bytes from parent (.+) for (.+)$")


def reserves(log: str) -> list[tuple[str, list[str]]]:
    """(header, lines) of every graph_reserve in the log, timestamps removed (AT_PRINTF's fragments joined)."""
    text = _TS.sub("", log)
    parts = re.split(r"graph_reserve: reserving a graph for ubatch with ([^\n]*)\n", text)
    return [(parts[k], parts[k + 1].splitlines()) for k in range(1, len(parts), 2)]


def events(lines: list[str]) -> list[tuple]:
    """('alloc', name, size, offset) / ('free', name, offset, size) / ('reuse', parent, node) /
    ('extra', size, parent, node) / ('exec', op, name, parents), in order, up to the reserve's end."""
    out: list[tuple] = []
    for line in lines:
        line = line.strip()
        if line.startswith("sched_reserve:") or line.startswith("~llama_context"):
            break
        if m := _ALLOC.search(line):
            out.append(("alloc", m[1], int(m[2]), int(m[3])))
        elif m := _FREE.search(line):
            out.append(("free", m[1], int(m[3]), int(m[4])))
        elif m := _EXTRA.match(line):
            out.append(("extra", int(m[1]), m[2], m[3]))
        elif m := _REUSE.match(line):
            out.append(("reuse", m[1], m[2]))
        elif m := _EXEC.match(line):
            parents = [p for p in m[3].split(", ") if p]
            out.append(("exec", m[1], m[2], parents))
    return out


def replay(evs: list[tuple], alignment: int = 32) -> tuple[int, int]:
    """Run the byte events through the port; (max_size, number of allocations whose offset differs)."""
    from vramcalc.runtimes.ggml_alloc import DynTallocr

    t = DynTallocr(alignment)
    where: dict[str, int] = {}
    wrong = 0
    for e in evs:
        if e[0] == "alloc":
            off = t.alloc(e[2])
            wrong += off != e[3]
            where[e[1]] = e[3]
        elif e[0] == "free":
            t.free(e[2], e[3])
        elif e[0] == "reuse":
            where[e[2]] = where.get(e[1], -1)
        elif e[0] == "extra":
            raise NotImplementedError("free_extra_space does not occur with same-layout reuse")
    return t.max_size, wrong


def pp_reserve(log: str) -> list[tuple]:
    """The events of the first reserve with the most tokens (the worst case sched_reserve sizes the buffer for)."""
    rs = reserves(log)
    best = max(rs, key=lambda r: int(re.search(r"n_tokens =\s*(\d+)", r[0])[1]))  # type: ignore[index]
    return events(best[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--graph", action="store_true")
    ap.add_argument("--fixture", metavar="RUN")
    a = ap.parse_args()
    log = a.log.read_text(errors="replace")
    evs = pp_reserve(log)
    size, wrong = replay(evs)
    m = re.search(r"CPU compute buffer size =\s+([\d.]+) MiB", log)
    print(
        f"replayed {sum(e[0] == 'alloc' for e in evs)} allocations: {wrong} offsets differ; "
        f"max_size {size / 2**20:.2f} MiB, llama.cpp {m[1] if m else '?'} MiB"
    )
    if a.fixture:
        import json

        out = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "llamacpp_oracle" / "alloc_traces" / f"{a.fixture}.json"
        out.parent.mkdir(exist_ok=True)
        compact = [[e[1], e[2], e[3]] if e[0] == "alloc" else [e[2], e[3]] for e in evs if e[0] in ("alloc", "free")]
        doc = {"run": int(a.fixture), "compute_mib": float(m[1]) if m else None, "events": compact}
        out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        print("wrote", out)
    if a.graph:
        for e in evs:
            if e[0] == "exec":
                print(e[1], e[2], "<=", ", ".join(e[3]))


if __name__ == "__main__":
    main()
