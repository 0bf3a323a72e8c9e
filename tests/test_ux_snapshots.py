"""Golden terminal snapshots (issue 12): `check` (fits, tight, offload, no, multi-GPU, encoder-only,
a GGUF file), `fit`, `list`, `show`, `compare` and `gpus` at 80 and 120 columns, printed by rich at a
fixed width (COLUMNS) without colour. A table never prints a line wider than the terminal and never
cuts an id; a changed layout or number shows up as a diff of tests/snapshots/.

Re-record after an intended change (then review the diff):

    VRAMCALC_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_ux_snapshots.py -p no:xdist
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

sys.path.insert(0, str(Path(__file__).parent))
from tiny_llama import tiny_llama

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("VRAMCALC_UPDATE_SNAPSHOTS") == "1"

CASES = {
    "check-fits": ["check", "llama-3.1-8b", "--gpu", "rtx3090"],
    "check-tight": ["check", "llama-3.1-8b", "--gpu", "rtx3060-laptop"],
    "check-offload": ["check", "llama-3.1-8b", "--gpu", "rtx3060", "--quant", "F16", "--gpu-layers", "20"],
    "check-no": ["check", "llama-3.1-70b", "--gpu", "rtx3060", "--ram", "16"],
    "check-multi-gpu": ["check", "llama-3.3-70b", "--gpu", "2xrtx3090", "--ctx", "32768"],
    "check-encoder": ["check", "siglip-so400m-14-384", "--gpu", "rtx3060"],
    "check-vlm": ["check", "llava-1.5-7b", "--gpu", "rtx3090", "--quant", "F16"],
    "check-gguf-file": ["check", "./tiny-Q4_K_M.gguf", "--gpu", "rtx3060"],
    "fit": ["fit", "--gpu", "rtx3060"],
    "list-vlms": ["list", "vlms"],
    "list-gpus": ["list", "gpus", "-q", "3090"],
    "show-gpu": ["show", "rtx3090"],
    "show-vlm": ["show", "qwen2.5-vl-7b"],
    "compare-gpus": ["compare", "qwen3-14b", "--gpu", "rtx3060", "--gpu", "rtx4090", "--gpu", "2xrtx3060"],
    "compare-quants": ["compare", "llama-3.1-8b", "--gpu", "rtx3060", "--quant", "Q4_K_M,Q5_K_M,Q8_0,F16"],
    "gpus": ["gpus", "qwen3-32b", "--limit", "8"],
}

#: the ids each case must print whole (never cut with '…')
IDS = {
    "list-vlms": ["qwen2.5-vl-72b", "qwen2.5-vl-7b", "llava-onevision-qwen2-0.5b"],
    "fit": ["deepseek-r1-distill-qwen-14b"],
    "gpus": ["m1-max-24c-32gb"],
}


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    tiny_llama(tmp_path / "tiny-Q4_K_M.gguf")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def render(args: list[str], width: int) -> tuple[int, str]:
    from typer.testing import CliRunner

    from vramcalc.cli import app

    r = CliRunner().invoke(app, args, env={"COLUMNS": str(width), "LINES": "50", "NO_COLOR": "1", "TERM": "dumb"})
    return r.exit_code, r.stdout


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("case", sorted(CASES))
def test_terminal_snapshot(case, width, in_tmp):
    code, text = render(CASES[case], width)
    assert code == 0, text[-2000:]
    wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not wide, f"{case} at {width} columns: lines wider than the terminal: {wide}"
    for eid in IDS.get(case, []):
        assert eid in text.split(), f"{case}: id {eid} not printed whole"
    if case.startswith(("list", "fit", "gpus", "compare")):  # tables whose first column is an id
        firsts = [line.split()[0] for line in text.splitlines() if line.split()]
        assert not [f for f in firsts if f.endswith("…")], "an id in the first column was cut"
    path = SNAPSHOTS / f"{case}-{width}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path}; record it with VRAMCALC_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8"), f"{case} at {width} columns changed; if intended, re-record (see module docstring)"
