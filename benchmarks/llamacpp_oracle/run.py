"""Run llama.cpp on the generated models and record every buffer it allocates (a CSV).

Each run starts llama-completion / llama-batched-bench / llama-mtmd-cli at ``-lv 4`` (``-lv 5`` for
mtmd: the image token grid is a debug line), reads the load log line by line and stops the process
as soon as the buffers (and, for mtmd, the image tokens and the clip compute buffer) are printed:
nothing later changes them, and a full forward pass on one CPU core is slow.

    python run.py --llama-cpp /work/llamacpp/llama.cpp --models /work/llamacpp/models \
        --out tests/fixtures/llamacpp_oracle/runs.csv [ARCH...]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import re
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import ARCHS, LLM_QUANTS

COMMIT = "0c1e57098"
#: file types recorded with llama-quantize --dry-run (its reported "quant size")
DRY_QUANTS = [
    "Q3_K_M", "Q8_0", "Q6_K", "Q5_K_M", "Q4_0", "IQ4_XS", "Q2_K_S", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M",
    "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "Q2_K", "Q3_K_S", "Q3_K_L", "Q4_K_S", "Q5_K_S", "IQ4_NL", "Q5_0", "Q4_1",
]  # fmt: skip
FIELDS = [
    "run", "arch", "tool", "quant", "n_ctx", "np", "kvu", "ub", "b", "fa", "ctk", "ctv", "image_w", "image_h", "warmup",
    "model_mib", "kv_mib", "kv_cells", "kv_swa_cells", "kv_streams", "n_ctx_seq", "n_outputs_max", "output_mib", "compute_mib",
    "clip_model_mib", "clip_compute_mib", "image_nx", "image_ny", "image_batch",
    "llama_cpp_commit", "date", "command", "rs_mib",
]  # fmt: skip

RE = {
    "model": re.compile(r"model buffer size =\s*([\d.]+) MiB"),
    "kv": re.compile(r"KV buffer size =\s*([\d.]+) MiB"),
    # a hybrid / recurrent model's recurrent-state buffer (llama-memory-recurrent.cpp: "RS buffer size")
    "rs": re.compile(r"RS buffer size =\s*([\d.]+) MiB"),
    "kvsize": re.compile(r"llama_kv_cache: size =.*\(\s*(\d+) cells,\s*(\d+) layers,\s*(\d+)/(\d+) seqs\)"),
    "output": re.compile(r"output buffer size =\s*([\d.]+) MiB"),
    "compute": re.compile(r"sched_reserve:\s+\S+ compute buffer size =\s*([\d.]+) MiB"),
    "n_ctx_seq": re.compile(r"n_ctx_seq\s+=\s*(\d+)"),
    "n_outputs_max": re.compile(r"n_outputs_max\s+=\s*(\d+)"),
    "clip_model": re.compile(r"load_hparams: model size:\s*([\d.]+) MiB"),
    "clip_compute": re.compile(r"reserve_compute_meta:\s+\S+ compute buffer size =\s*([\d.]+) MiB"),
    "nx": re.compile(r"image_tokens->nx = (\d+)"),
    "ny": re.compile(r"image_tokens->ny = (\d+)"),
    "nb": re.compile(r"batch_f32 size = (\d+)"),
}


def run_one(cmd: list[str], mtmd: bool, warmup: bool, timeout: float = 300.0) -> dict[str, object]:
    got: dict[str, object] = {"model_mib": 0.0, "kv_mib": 0.0, "kv_cells": [], "clip_compute": []}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    assert p.stdout is not None
    seen_encoding = False
    lines: list[str] = []
    try:
        for line in p.stdout:
            lines.append(line)
            if m := RE["model"].search(line):
                got["model_mib"] = float(got["model_mib"]) + float(m.group(1))  # type: ignore[arg-type]
            elif m := RE["kv"].search(line):
                got["kv_mib"] = float(got["kv_mib"]) + float(m.group(1))  # type: ignore[arg-type]
            elif m := RE["rs"].search(line):
                got["rs_mib"] = float(got.get("rs_mib", 0.0)) + float(m.group(1))  # type: ignore[arg-type]
            elif m := RE["kvsize"].search(line):
                got["kv_cells"].append((int(m.group(1)), int(m.group(4))))  # type: ignore[union-attr]
            elif m := RE["output"].search(line):
                got["output_mib"] = float(m.group(1))
            elif m := RE["compute"].search(line):
                got["compute_mib"] = float(m.group(1))
            elif m := RE["n_ctx_seq"].search(line):
                got["n_ctx_seq"] = int(m.group(1))
            elif m := RE["n_outputs_max"].search(line):
                got["n_outputs_max"] = int(m.group(1))
            elif m := RE["clip_model"].search(line):
                got["clip_model_mib"] = float(m.group(1))
            elif m := RE["clip_compute"].search(line):
                got["clip_compute"].append((seen_encoding, float(m.group(1))))  # type: ignore[union-attr]
            elif m := RE["nx"].search(line):
                got["image_nx"] = int(m.group(1))
            elif m := RE["ny"].search(line):
                got["image_ny"] = int(m.group(1))
            elif m := RE["nb"].search(line):
                got["image_batch"] = int(m.group(1))
            if "encoding mtmd batch" in line or "encoding image" in line:
                seen_encoding = True
            done = False
            if not mtmd and "reserve took" in line:
                done = True
            if mtmd and seen_encoding and (warmup or any(after for after, _ in got["clip_compute"])):  # type: ignore[union-attr]
                done = True
            if done:
                break
    finally:
        p.kill()
        p.wait()
    if "compute_mib" not in got and not mtmd:
        sys.stderr.write("".join(lines[-30:]))
        raise RuntimeError("no compute buffer line: " + shlex.join(cmd))
    cc = got.pop("clip_compute")
    if mtmd:
        want = [v for after, v in cc if after == (not warmup)]  # type: ignore[union-attr]
        if not want:
            sys.stderr.write("".join(lines[-30:]))
            raise RuntimeError("no clip compute line: " + shlex.join(cmd))
        got["clip_compute_mib"] = want[0]
    cells = got.pop("kv_cells")
    if cells:  # iswa: the non-SWA cache first, then the SWA cache
        got["kv_cells"], got["kv_streams"] = cells[0]  # type: ignore[index]
        if len(cells) > 1:
            got["kv_swa_cells"] = cells[1][0]  # type: ignore[index]
    return got


def llm_settings(arch: str) -> list[dict[str, object]]:
    """The grid of settings run on an architecture's Q4_K_M file (other files: the default only)."""
    base = dict(n_ctx=4096, np=1, kvu=0, ub=512, b=2048, fa="on", ctk="f16", ctv="f16")
    out: list[dict[str, object]] = []

    def add(**kw: object) -> None:
        out.append({**base, **kw})

    for c in (512, 1000, 4096, 16384):
        for fa in ("on", "off"):
            add(n_ctx=c, fa=fa)
    for ub in (128, 256, 1024):
        for fa in ("on", "off"):
            add(ub=ub, b=max(ub, 2048), fa=fa)
    for k, v in (("q8_0", "q8_0"), ("q4_0", "q4_0"), ("q8_0", "q4_0"), ("f16", "q8_0"), ("q4_0", "f16")):
        add(ctk=k, ctv=v)
    add(ctk="q8_0", ctv="f16", fa="off")
    for fa in ("on", "off"):
        add(np=4, n_ctx=4 * 4096, fa=fa)
        add(np=2, n_ctx=2 * 2048, fa=fa)
        add(np=4, n_ctx=4 * 4096, kvu=1, fa=fa)
    return out


def llm_cmd(bin_dir: Path, model: Path, s: dict[str, object]) -> list[str]:
    common = [
        "-m", str(model), "-c", str(s["n_ctx"]), "-b", str(s["b"]), "-ub", str(s["ub"]), "-fa", str(s["fa"]),
        "-ctk", str(s["ctk"]), "-ctv", str(s["ctv"]), "-t", "1", "-fit", "off", "-nr", "-lv", "4",
    ]  # fmt: skip
    if s["kvu"]:  # (llama-batched-bench has no --no-warmup; the warm-up changes no buffer)
        return [str(bin_dir / "llama-batched-bench"), *common, "-kvu", "-npp", "16", "-ntg", "1", "-npl", str(s["np"])]
    return [str(bin_dir / "llama-completion"), *common, "--no-warmup", "-np", str(s["np"]), "-n", "1", "-p", "t", "-no-cnv"]


def compare_moe(arch: str) -> bool:
    cfg = (HERE.parent.parent / "tests" / "fixtures" / "llamacpp_oracle" / "configs" / f"{arch}.json").read_text()
    return any(k in cfg for k in ('"num_experts"', '"num_local_experts"', '"n_routed_experts"'))


def image(path: Path, w: int, h: int) -> Path:
    """A plain RGB PNG of w x h pixels (written by hand: no imaging library needed)."""
    if not path.exists():
        import struct
        import zlib

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        raw = b"".join(b"\x00" + bytes((120, 60, 200)) * w for _ in range(h))
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", type=Path, default=Path("/work/llamacpp/llama.cpp"))
    ap.add_argument("--models", type=Path, default=Path("/work/llamacpp/models"))
    ap.add_argument("--out", type=Path, default=HERE.parent.parent / "tests" / "fixtures" / "llamacpp_oracle" / "runs.csv")
    ap.add_argument("--append", action="store_true")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    bin_dir = a.llama_cpp / "build" / "bin"
    rows: list[dict[str, object]] = []
    if a.append and a.out.exists():
        with a.out.open() as f:
            rows = list(csv.DictReader(f))
    done = {r["command"] for r in rows}
    today = datetime.date.today().isoformat()
    imgdir = a.models / "images"
    imgdir.mkdir(parents=True, exist_ok=True)

    def record(arch: str, tool: str, quant: str, s: dict[str, object], cmd: list[str], mtmd: bool = False) -> None:
        shown = shlex.join([Path(cmd[0]).name] + [Path(x).name if "/" in x else x for x in cmd[1:]])
        if shown in done:
            return
        try:
            got = run_one(cmd, mtmd, bool(s.get("warmup", 1)))
        except (RuntimeError, OSError) as e:
            print(f"FAILED {arch}: {e}", file=sys.stderr, flush=True)
            return
        row = {**s, **got, "arch": arch, "tool": tool, "quant": quant, "run": len(rows) + 1}
        row.update(llama_cpp_commit=COMMIT, date=today, command=shown)
        rows.append(row)
        done.add(shown)
        print(f"{arch} {quant} {s} -> {got}", flush=True)

    def record_dry(arch: str, quant: str, s: dict[str, object], cmd: list[str]) -> None:
        shown = shlex.join([Path(cmd[0]).name] + [Path(x).name if "/" in x else x for x in cmd[1:]])
        if shown in done:
            return
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        m = re.search(r"quant size\s*=\s*([\d.]+) MiB", p.stdout + p.stderr)
        if not m:
            print(f"FAILED {arch} dry-run {quant}: {(p.stdout + p.stderr)[-500:]}", file=sys.stderr, flush=True)
            return
        row = {**s, "model_mib": float(m.group(1)), "arch": arch, "tool": "llama-quantize --dry-run", "quant": quant}
        row.update(llama_cpp_commit=COMMIT, date=today, command=shown)
        rows.append(row)
        done.add(shown)
        print(f"{arch} dry-run {quant} -> {m.group(1)} MiB", flush=True)

    for arch in a.names or list(ARCHS):
        spec = ARCHS[arch]
        d = a.models / arch
        quants = spec.get("quants", LLM_QUANTS)
        # the settings grid runs on the Q4_K_M file where one was made, else on the F16 file (buffers other
        # than the weights do not depend on the weight type); other file types: --dry-run sizes below
        main_q = next((q for q in ["Q4_K_M", *quants, "F16"] if (d / f"{arch}-{q}.gguf").exists()), "F16")
        if not (d / f"{arch}-{main_q}.gguf").exists():
            print(f"{arch}: no model files, skipped", file=sys.stderr)
            continue
        grid = llm_settings(arch)
        if spec.get("vlm"):
            grid = [g for g in grid if g["n_ctx"] in (4096, 16384) and g["ub"] == 512 and g["ctk"] == g["ctv"] == "f16"]
        for s in grid:
            record(
                arch, "llama-batched-bench" if s["kvu"] else "llama-completion", main_q, s, llm_cmd(bin_dir, d / f"{arch}-{main_q}.gguf", s)
            )
        for q in ["F16", *quants]:
            f = d / f"{arch}-{q}.gguf"
            if q != main_q and f.exists():
                s = dict(n_ctx=4096, np=1, kvu=0, ub=512, b=2048, fa="on", ctk="f16", ctv="f16")
                record(arch, "llama-completion", q, s, llm_cmd(bin_dir, f, s))
        f16 = d / f"{arch}-F16.gguf"
        if f16.exists() and not spec.get("vlm"):
            # the quantizer's own size of each file type (--dry-run: no data written, no imatrix needed),
            # for the mixtures that need an imatrix to be made for real (IQ1/IQ2)
            for q in DRY_QUANTS + (["MXFP4_MOE"] if compare_moe(arch) else []):
                s = dict(n_ctx="", np="", kvu="", ub="", b="", fa="", ctk="", ctv="")
                record_dry(arch, q, s, [str(bin_dir / "llama-quantize"), "--dry-run", str(f16), q])
        mm = d / f"mmproj-{arch}-F16.gguf"
        if spec.get("vlm") and mm.exists():
            sizes = [(448, 448), (640, 480), (1024, 768), (1288, 1288), (336, 336), (896, 896)]
            for w, h in sizes:
                for fa in ("on", "off"):
                    for warm in (1, 0):
                        if warm and (w, h) not in ((448, 448), (1024, 768)):
                            continue
                        s = dict(n_ctx=8192, np=1, kvu=0, ub=512, b=2048, fa=fa, ctk="f16", ctv="f16", image_w=w, image_h=h, warmup=warm)
                        img = image(imgdir / f"img_{w}x{h}.png", w, h)
                        cmd = [
                            str(bin_dir / "llama-mtmd-cli"), "-m", str(d / f"{arch}-{main_q}.gguf"), "--mmproj", str(mm),
                            "--image", str(img), "-p", "t", "-n", "1", "-c", "8192", "-fa", fa, "-t", "1", "-fit", "off",
                            "-nr", "-lv", "5", "--chat-template", "chatml",
                        ]  # fmt: skip
                        if not warm:
                            cmd.append("--no-warmup")
                        record(arch, "llama-mtmd-cli", f"{main_q}+mmproj-F16", s, cmd, mtmd=True)
        write(a.out, rows)
    write(a.out, rows)


def write(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        for i, r in enumerate(rows, 1):
            w.writerow({**r, "run": i})


if __name__ == "__main__":
    main()
