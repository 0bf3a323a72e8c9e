"""Qwen2.5-VL's clip compute buffer with flash attention: ggml-alloc replayed over the graph's allocation order
(vramcalc.runtimes.clip_alloc), pinned to llama.cpp 0c1e57098 itself.

Sources: the recorded runs 649-664 (tests/fixtures/llamacpp_oracle/runs.csv, qwen2.5-vl-7b, CPU backend) and two
ggml-alloc traces of the same graph (tests/fixtures/llamacpp_oracle/alloc_trace_qwen2.5-vl-7b_fa_*.csv: every
allocation's size and offset as ggml-alloc printed it, AT_PRINTF enabled in a copy of ggml-alloc.c; the headers give
the commands). Before this replay the flash-attention term was a fit (2 N^2 + 7.75 hidden states beside the FFN) that
came out +21.9% at 336x336 (run 661).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vramcalc.readers.hf_config import model_from_hf_config
from vramcalc.runtimes import clip_alloc as ca
from vramcalc.runtimes import llamacpp as lc

ORACLE = Path(__file__).resolve().parent / "fixtures" / "llamacpp_oracle"
MiB = 1024 * 1024

with (ORACLE / "runs.csv").open() as _f:
    RUNS = {int(r["run"]): r for r in csv.DictReader(_f)}


def _qwen25():  # noqa: ANN202
    path = ORACLE / "configs" / "qwen2.5-vl-7b.json"
    cm = model_from_hf_config(json.loads(path.read_text()), path, "x", "x")
    return cm.model, cm.encoder, cm.llm


def _trace(image: str) -> list[dict[str, str]]:
    with (ORACLE / f"alloc_trace_qwen2.5-vl-7b_fa_{image}.csv").open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@pytest.mark.parametrize(("image", "patches"), [("336x336", 24 * 24), ("640x480", 46 * 34)])
def test_replay_places_every_tensor_where_ggml_alloc_did(image: str, patches: int):
    """Each allocation of the program has the traced size (its size class, rounded up to 32 bytes) and lands at
    the traced offset: the replay is the allocator, not a fit of its peak. 640x480 has 1564 patches, so the
    391-entry window indexes (1564 bytes) are rounded up to 1568 as ggml_dyn_tallocr does."""
    _vlm, enc, llm = _qwen25()
    sizes = ca.qwen25_flash_sizes(patches, enc.hidden_size, enc.intermediate_size, enc.patch_size, enc.num_channels, llm.hidden_size)
    program = ca.qwen25_flash_program(enc.num_layers, enc.window_attention.full_attention_layers[0] + 1)
    trace = _trace(image)
    allocs = [p for p in program if not p.startswith("-")]
    assert len(allocs) == len(trace) == 526
    assert [row["step"] for row in trace] == allocs
    offsets: list[int] = []
    ca.replay(program, sizes, offsets)
    assert [-(-sizes[s.split(":")[0]] // 32) * 32 for s in allocs] == [int(row["bytes"]) for row in trace]
    assert offsets == [int(row["offset"]) for row in trace]


@pytest.mark.parametrize(
    "run",
    [
        661,  # 336x336, 576 patches: 30.74 MiB (the fit said 37.47: +21.9%)
        650,  # 448x448, 1024 patches: 63.89
        653,  # 640x480, 1564 patches: 101.65
        656,  # 1024x768, 3996 patches: 282.71
        663,  # 896x896, 4096 patches: 292.13 (100 patches more than 1024x768, 9.4 MiB more)
        659,  # 1288x1288, 8464 patches: 704.79
        649,  # warm-up on (448x448 image): reserved at 46 x 46 merged tokens, 704.79
        655,  # warm-up on (1024x768)
    ],
)
def test_qwen25_flash_clip_buffer_matches_recorded_runs(run: int):
    r = RUNS[run]
    assert r["arch"] == "qwen2.5-vl-7b" and r["fa"] == "on"
    vlm, enc, llm = _qwen25()
    _tok, crops, patches = lc.clip_reserved_tokens(vlm, enc, (int(r["image_w"]), int(r["image_h"])), warmup=r["warmup"] == "1")  # type: ignore[arg-type]
    got = lc.clip_compute_bytes(enc, patches, crops, True, **lc.clip_extras(vlm, enc, llm))  # type: ignore[arg-type]
    assert got / MiB == pytest.approx(float(r["clip_compute_mib"]), abs=0.006)  # runs.csv has 2 decimals


def test_program_follows_the_window_pattern():
    """llama.cpp's full-attention layers are every n_wa_pattern-th (qwen2vl.cpp: (il + 1) % n_wa_pattern == 0;
    conversion/qwenvl.py: n_wa_pattern = fullatt_block_indexes[0] + 1): the 28 window layers each copy the f16
    mask, the first one casts it (one more f16 mask) and frees the f32 one."""
    p = ca.qwen25_flash_program(32, 8)
    assert sum(s.startswith("m16:") for s in p) == 28 + 1
    assert p.count("-m32") == 1 and p.count("-m16") == 1 and p.count("-pos") == 1
    allocated = [s.split(":")[1] for s in p if not s.startswith("-")]
    freed = [s[1:] for s in p if s.startswith("-")]
    assert len(allocated) - len(freed) == 1  # only the graph's output (the window-reordered merger output) stays
    assert [i for i, s in enumerate(p) if s == "-pos"] == [len(p) - 1 - p[::-1].index("-d") + 1]  # the last layer's K rope
