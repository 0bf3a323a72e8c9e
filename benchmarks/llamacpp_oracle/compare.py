"""vramcalc's llama.cpp accounting against the recorded llama.cpp runs (tests/fixtures/llamacpp_oracle).

For every recorded run: the model spec is read from the same reduced config.json the GGUF was made
from (vramcalc.readers.hf_config), and vramcalc's llama.cpp accounting (vramcalc.runtimes.llamacpp)
predicts the model buffer, the KV buffer, the compute buffer, the clip model and compute buffers and
the image tokens for the run's settings. The llama.cpp figures are CPU-backend buffers; the CPU compute
buffer is the CUDA device's plus the host-side input embedding (``CPU_EXTRA``, see llamacpp.py).

    python benchmarks/llamacpp_oracle/compare.py            # summary per quantity
    python benchmarks/llamacpp_oracle/compare.py --markdown # docs/accuracy_llamacpp.md
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import statistics
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "llamacpp_oracle"
RUNS = FIX / "runs.csv"
MiB = 1024 * 1024

#: tolerances of the issue (relative): weights and KV 0.5%, LLM compute 5%, vision compute 10%, tokens exact
TOLERANCE = {"model": 0.005, "kv": 0.005, "rs": 0.005, "compute": 0.05, "clip_model": 0.005, "clip_compute": 0.10, "image_tokens": 0.0}

#: Runs vramcalc cannot express yet, and why: (arch, quantity, a part of the settings, reason). They are
#: listed in docs/accuracy_llamacpp.md and the tests check that each is still outside the tolerance.
KNOWN_GAPS: list[tuple[str, str, str, str]] = []


#: Recorded architectures vramcalc cannot read yet: their runs are kept in the recording (ground truth for
#: later) and listed, not compared.
UNSUPPORTED: dict[str, str] = {}


def known_gap(c: Check) -> str:
    """The reason a check is a known gap, or ''."""
    return next((why for a, w, part, why in KNOWN_GAPS if a == c.arch and w == c.what and part in c.settings), "")


@dataclass(frozen=True)
class Check:
    run: int
    arch: str
    what: str
    measured: float
    predicted: float
    settings: str

    @property
    def error(self) -> float:
        if self.measured == 0:
            return 0.0 if self.predicted == 0 else float("inf")
        return self.predicted / self.measured - 1

    @property
    def ok(self) -> bool:
        return abs(self.error) <= TOLERANCE[self.what] + 1e-12


def load_runs(path: Path = RUNS) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@functools.cache
def specs(arch: str):  # noqa: ANN201
    """(llm, vlm or None, encoder or None, projector tensors) from the reduced config."""
    from vramcalc.params import projector_tensors
    from vramcalc.readers.hf_config import model_from_hf_config

    path = FIX / "configs" / f"{arch}.json"
    cfg = json.loads(path.read_text())
    cm = model_from_hf_config(cfg, path, arch, arch)
    if cm.encoder is None:
        return cm.llm, None, None, ()
    vlm = cm.model
    return cm.llm, vlm, cm.encoder, projector_tensors(vlm.projector, cm.encoder, cm.llm)  # type: ignore[union-attr]


def _i(r: dict[str, str], k: str, default: int = 0) -> int:
    v = r.get(k) or ""
    return int(float(v)) if v else default


def predict(r: dict[str, str]) -> list[Check]:
    """vramcalc's figures for one recorded run, next to llama.cpp's."""
    from vramcalc.images import image_tokens
    from vramcalc.runtimes import llamacpp as lc

    arch = r["arch"]
    if arch in UNSUPPORTED:
        return []
    llm, vlm, enc, proj = specs(arch)
    fa = r["fa"] == "on"
    n_seq = _i(r, "np", 1)
    unified = r["kvu"] == "1"
    settings = (
        f"{r['quant']} -c {r['n_ctx']} -np {n_seq}{' -kvu' if unified else ''} -ub {r['ub']} -fa {r['fa']} -ctk {r['ctk']} -ctv {r['ctv']}"
    )
    out: list[Check] = []
    run = int(r["run"])

    def add(what: str, measured_mib: float, predicted: float, extra: str = "") -> None:
        out.append(Check(run, arch, what, measured_mib * MiB, predicted, settings + extra))

    quant = r["quant"].split("+")[0]
    if r["tool"].startswith("llama-quantize"):  # the quantizer's own size of the file type (--dry-run)
        out.append(
            Check(
                run,
                arch,
                "model",
                float(r["model_mib"]) * MiB,
                lc.LlamaCpp().llm_weights(llm, quant).bytes,
                f"{quant} (quantize --dry-run)",
            )
        )
        return out
    if r["tool"] != "llama-mtmd-cli":
        rt = lc.LlamaCpp()
        add("model", float(r["model_mib"]), rt.llm_weights(llm, quant).bytes)
        n_ctx = _i(r, "n_ctx")
        lay = lc.kv_layout(llm, n_ctx, n_seq, unified, min(_i(r, "ub"), _i(r, "b"), n_ctx))
        add("kv", float(r["kv_mib"]), lc.kv_bytes(llm, lay, r["ctk"], r["ctv"]))
        if r.get("rs_mib"):  # a hybrid model's recurrent state: one cell per sequence (llama_memory_recurrent)
            from vramcalc.placement import recurrent_state_bytes

            add("rs", float(r["rs_mib"]), recurrent_state_bytes(llm, n_seq))
        ub = min(_i(r, "ub"), _i(r, "b"))
        types = {"type_k": r["ctk"], "type_v": r["ctv"]}
        cells = {"swa_cells": lay.stream_swa_cells}
        cpu = lc.compute_buffer_bytes(llm, lay.stream_cells, ub, fa, n_seq=n_seq, backend="cpu", **types, **cells)
        if vlm is not None and vlm.projector.kind == "merger":  # Qwen-VL: M-RoPE positions; Qwen3-VL's wider input
            n_ds = len(vlm.projector.deepstack_layers)
            cpu += lc.deepstack_input_bytes(llm, n_ds, ub, lay.stream_cells, fa, **types, n_pos=lc.MROPE_POSITIONS)
        add("compute", float(r["compute_mib"]), cpu)
    else:
        assert vlm is not None and enc is not None
        w, h = _i(r, "image_w"), _i(r, "image_h")
        tok, _crops, _patches = image_tokens(vlm, enc, (w, h), mtmd=True)
        extra = f" image {w}x{h} warmup {'on' if r['warmup'] == '1' else 'off'}"
        if r.get("image_nx"):
            nx, ny = _i(r, "image_nx"), _i(r, "image_ny", 1)
            out.append(Check(run, arch, "image_tokens", nx * max(ny, 1), tok, settings + extra))
        rt = lc.LlamaCpp()
        vis = rt.vision_weights(rt.vision_tensors(vlm, enc), "f16").bytes + rt.vision_weights(proj, "f16").bytes
        if r.get("clip_model_mib"):
            add("clip_model", float(r["clip_model_mib"]), vis, extra)
        _tok, cc, cp = lc.clip_reserved_tokens(vlm, enc, (w, h), warmup=r["warmup"] == "1")
        clip = lc.clip_compute_bytes(enc, cp, cc, fa, **lc.clip_extras(vlm, enc, llm))
        add("clip_compute", float(r["clip_compute_mib"]), clip, extra)
    return out


def all_checks(rows: list[dict[str, str]] | None = None) -> list[Check]:
    return [c for r in (rows or load_runs()) for c in predict(r)]


def summary(checks: list[Check]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for what in TOLERANCE:
        cs = [c for c in checks if c.what == what]
        if not cs:
            continue
        errs = [abs(c.error) for c in cs]
        out[what] = dict(
            n=len(cs), ok=sum(c.ok for c in cs), median=statistics.median(errs), max=max(errs), archs=len({c.arch for c in cs})
        )
    return out


NAMES = {
    "model": "model (weights) buffer",
    "kv": "KV cache buffer",
    "rs": "recurrent state (RS) buffer",
    "compute": "LLM compute buffer",
    "clip_model": "mmproj (clip) weights",
    "clip_compute": "clip compute buffer",
    "image_tokens": "image tokens",
}


def markdown(checks: list[Check], rows: list[dict[str, str]]) -> str:
    s = summary(checks)
    archs = sorted({r["arch"] for r in rows})
    lines = [
        "# Accuracy against llama.cpp",
        "",
        "Generated by `python benchmarks/llamacpp_oracle/compare.py --markdown`; do not edit.",
        f"{len(rows)} runs of llama.cpp {rows[0]['llama_cpp_commit']} (CPU build, `-lv 4`, recorded in",
        "`tests/fixtures/llamacpp_oracle/runs.csv` by `benchmarks/llamacpp_oracle/run.py`) over",
        f"{len(archs)} architectures: {', '.join(archs)}.",
        "Models are random-weight GGUFs made from the published config.json with few decoder layers",
        "(benchmarks/llamacpp_oracle/README.md). Error = vramcalc / llama.cpp - 1.",
        "",
        "| quantity | checks | within tolerance | tolerance | median abs error | max abs error |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for what, v in s.items():
        lines.append(f"| {NAMES[what]} | {v['n']:.0f} | {v['ok']:.0f} | {TOLERANCE[what]:.1%} | {v['median']:.2%} | {v['max']:.2%} |")
    skipped = Counter(r["arch"] for r in rows if r["arch"] in UNSUPPORTED)
    if skipped:
        lines += ["", "## Recorded but not compared", ""]
        lines += [f"- {a} ({n} runs): {UNSUPPORTED[a]}." for a, n in sorted(skipped.items())]
    bad = sorted((c for c in checks if not c.ok), key=lambda c: -abs(c.error))
    lines += ["", "## Outside the tolerance", ""]
    if not bad:
        lines.append("None.")
    for c in bad[:40]:
        why = known_gap(c)
        lines.append(f"- run {c.run} {c.arch} {NAMES[c.what]} ({c.settings}): {c.error:+.1%}{' — ' + why if why else ''}")
    if len(bad) > 40:
        lines.append(f"- ... and {len(bad) - 40} more")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--markdown", action="store_true", help="write docs/accuracy_llamacpp.md")
    ap.add_argument("--worst", type=int, default=15)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    rows = load_runs()
    checks = all_checks(rows)
    if a.markdown:
        (ROOT / "docs" / "accuracy_llamacpp.md").write_text(markdown(checks, rows))
        return
    for what, v in summary(checks).items():
        print(f"{what:13s} n={v['n']:4.0f} ok={v['ok']:4.0f} median={v['median']:.3%} max={v['max']:.3%}")
    for c in sorted(checks, key=lambda c: -abs(c.error) / max(TOLERANCE[c.what], 1e-9))[: a.worst]:
        if not c.ok:
            meas, pred = c.measured / MiB, c.predicted / MiB
            print(f"  run {c.run:4d} {c.arch:16s} {c.what:12s} {c.error:+.2%}  meas {meas:.2f} pred {pred:.2f}  {c.settings}")


if __name__ == "__main__":
    main()
