"""The ggml-alloc port (vramcalc/runtimes/ggml_alloc.py) and llama.cpp's graph (llamacpp_graph.py) against llama.cpp.

Ground truth: llama.cpp 0c1e57098 itself. tests/fixtures/llamacpp_oracle/alloc_traces/RUN.json are the allocator's
own events (AT_PRINTF in ggml-alloc.c, benchmarks/llamacpp_oracle/README.md "Allocator traces") of the worst-case
reserve of runs.csv row RUN, re-run with a debug libggml-base: every allocation (tensor, padded size, the offset
llama.cpp chose) and every free (offset, size), and the compute buffer the run reported.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from vramcalc.runtimes import llamacpp as lc
from vramcalc.runtimes import llamacpp_graph as lg
from vramcalc.runtimes.ggml_alloc import DynTallocr, allocate_graph

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "llamacpp_oracle"
TRACES = sorted((FIX / "alloc_traces").glob("*.json"))
RUNS = {int(r["run"]): r for r in csv.DictReader((FIX / "runs.csv").open())}
MiB = 1024 * 1024

sys.path.insert(0, str(ROOT / "benchmarks" / "llamacpp_oracle"))
import compare  # noqa: E402


def _trace(path: Path) -> dict:
    return json.loads(path.read_text())


def test_there_are_traces_of_each_ported_graph():
    runs = {_trace(p)["run"] for p in TRACES}
    archs = {RUNS[r]["arch"] for r in runs}
    assert {"qwen3-0.6b", "llama-2-7b", "phi-3-mini", "qwen3-vl-2b", "qwen2.5-0.5b", "gpt-oss-20b", "qwen3-30b-a3b"} <= archs
    assert "mixtral-8x7b-narrow" in archs
    for p in TRACES:  # each trace is of the run it names: the buffer it ends with is the one runs.csv recorded
        t = _trace(p)
        assert t["compute_mib"] == pytest.approx(float(RUNS[t["run"]]["compute_mib"]), abs=0.005)


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_dyn_tallocr_replays_llama_cpp_offsets_exactly(path: Path):
    """ggml_dyn_tallocr (best fit among all free blocks but the last, else the last; merge on free): fed llama.cpp's
    own allocation sizes and frees in order, the port picks every offset llama.cpp picked and reaches its size."""
    t = _trace(path)
    alloc = DynTallocr(32)  # ggml-impl.h TENSOR_ALIGNMENT, the CPU buffer type's
    n = 0
    for ev in t["events"]:
        if len(ev) == 3:
            name, size, offset = ev
            assert alloc.alloc(size) == offset, name
            n += 1
        else:
            alloc.free(*ev)
    assert n >= 30
    assert alloc.max_size / MiB == pytest.approx(t["compute_mib"], abs=0.005)


def _setting(run: int) -> tuple:
    r = RUNS[run]
    llm, vlm, _enc, _proj = compare.specs(r["arch"])
    ub = min(int(r["ub"]), int(r["b"]))
    lay = lc.kv_layout(llm, int(r["n_ctx"]), int(r["np"]), r["kvu"] == "1", ub)
    n_ds = len(vlm.projector.deepstack_layers) if vlm is not None else 0
    n_pos = lc.MROPE_POSITIONS if vlm is not None and vlm.projector.kind == "merger" else 1
    return llm, lay.stream_cells, min(ub, lay.stream_cells), r["fa"] == "on", n_ds, r["ctk"], r["ctv"], n_pos, lay.stream_swa_cells


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_graph_allocates_what_llama_cpp_allocates(path: Path):
    """llamacpp_graph.build + allocate_graph (gallocr: leafs and inputs first, in-place reuse of a single-consumer
    parent of the same layout, free after the last consumer) make the same allocations, in the same order, at the
    same offsets as llama.cpp's trace: Qwen3 (q/k norm), Llama-2 without flash attention, Phi-3 (fused qkv and
    gate_up) with and without it, Qwen3-VL with its DeepStack input, Qwen2 (biases), a quantized KV cache (the
    Hadamard rotation inputs and products), gpt-oss (MoE, sinks, sliding-window layers with their own cells: run
    561 has 2048 full and 768 sliding cells per stream), Qwen3-MoE and Mixtral (softmax router, normalized top-k
    weights; run 797 at ubatch 128 without flash attention)."""
    t = _trace(path)
    llm, cells, u, fa, n_ds, tk, tv, n_pos, swa = _setting(t["run"])
    nodes, leafs = lg.build(llm, cells, u, fa, 1, n_ds, tk, tv, n_pos, swa)
    log: list[str] = []
    size = allocate_graph(nodes, leafs, 32, log)
    mine = [(int(a.rsplit(" ", 2)[1]), int(a.rsplit(" ", 2)[2][1:])) for a in log if a.startswith("alloc ")]
    theirs = [(size_, offset) for ev in t["events"] if len(ev) == 3 for _name, size_, offset in [ev]]
    assert mine == theirs
    assert size / MiB == pytest.approx(t["compute_mib"], abs=0.005)


def _simulated_cpu_mib(r: dict[str, str]) -> float | None:
    llm, vlm, _enc, _proj = compare.specs(r["arch"])
    ub = min(int(r["ub"]), int(r["b"]))
    lay = lc.kv_layout(llm, int(r["n_ctx"]), int(r["np"]), r["kvu"] == "1", ub)
    n_ds = len(vlm.projector.deepstack_layers) if vlm is not None else 0
    n_pos = lc.MROPE_POSITIONS if vlm is not None and vlm.projector.kind == "merger" else 1
    sim = lc.simulated_compute_bytes(llm, lay.stream_cells, ub, r["fa"] == "on", r["ctk"], r["ctv"], n_ds, n_pos, lay.stream_swa_cells)
    return None if sim is None else sim / MiB


def test_every_recorded_run_of_a_ported_graph_is_exact():
    """All LLM runs of the ported families (Llama-2/3.1/3.2, Mistral, LLaVA-1.5's Llama, Qwen2.5, Qwen2-VL and
    Qwen2.5-VL's Qwen2, Qwen3, Qwen3-VL at 2 and 6 layers, Phi-3, gpt-oss, Qwen3-30B-A3B, Mixtral):
    contexts 512-16k, ubatch 128-1024, flash attention
    on/off, f16/q8_0/q4_0 K and V, 1-4 sequences, unified or not: the simulated buffer equals llama.cpp's to the
    log's 0.01 MiB rounding."""
    done = {}
    for r in RUNS.values():
        if not r["compute_mib"] or r["tool"] == "llama-mtmd-cli" or r["arch"] in compare.UNSUPPORTED:
            continue
        mib = _simulated_cpu_mib(r)
        if mib is None:
            continue
        assert mib == pytest.approx(float(r["compute_mib"]), abs=0.0051), (r["run"], r["arch"])
        done[r["arch"]] = done.get(r["arch"], 0) + 1
    assert sum(done.values()) >= 330
    assert len(done) == 16, sorted(done)


@pytest.mark.parametrize(
    ("run", "was"),
    [
        (298, "+25.1% (Phi-3 16k FA: the final hidden state in a low gap)"),
        (774, "+25.1% (Phi-3 16k FA, -np 4 -kvu)"),
        (244, "-7.6% (Llama-2 512 cells no FA: an 8 MiB gap under attn_out)"),
        (53, "-6.2% (Qwen3-0.6B 16k FA: ffn_out-3 above the freed mask)"),
        (764, "-6.2% (Qwen3-0.6B 16k FA, -np 4 -kvu)"),
        (607, "-10.2% (Qwen3-VL 2 layers, 16k FA: node_1 alive to the last layer)"),
        (606, "-9.2% (Qwen3-VL 2 layers, 4096 no FA)"),
        (611, "-9.2% (Qwen3-VL 2 layers, -np 4 16k no FA)"),
        (610, "-6.5% (Qwen3-VL 2 layers, -np 2 FA)"),
        (942, "-5.9% (Qwen3-VL 6 layers, 16k FA: the final state in the freed padded rows)"),
        (946, "-5.9% (Qwen3-VL 6 layers, -np 4 -kvu FA)"),
        (539, "-6.6% (gpt-oss 512 cells no FA: the final hidden state is an output, kept above a gap)"),
        (541, "-6.9% (gpt-oss 1000 cells no FA)"),
        (561, "-7.3% (gpt-oss -np 2 4096 no FA)"),
    ],
)
def test_former_known_gaps_are_exact(run: int, was: str):
    """The 14 LLM compute runs the live-set model missed (compare.KNOWN_GAPS before the allocator was simulated)."""
    r = RUNS[run]
    checks = [c for c in compare.predict(r) if c.what == "compute"]
    assert len(checks) == 1
    assert checks[0].predicted / MiB == pytest.approx(float(r["compute_mib"]), abs=0.0051), was


def test_cuda_figure_is_the_cpu_one_less_the_unused_embedding_input():
    """The backend semantics are kept: a CUDA build holds the f32 ``inp_embd`` input (u x n_embd, allocated first
    and never freed in the CPU trace) in its CUDA_Host buffer, so CUDA0's buffer is the CPU figure less it
    (published Llama-3.1-8B: 266.5 MiB CPU here, 258.5 MiB CUDA0, README 'CPU build vs CUDA')."""
    from vramcalc.catalog import Catalog, builtin_catalog_dir

    llm = Catalog.load([builtin_catalog_dir()]).llm("llama-3.1-8b")  # the full 32 layers
    cpu = lc.compute_buffer_bytes(llm, 4096, 512, True, backend="cpu")
    assert cpu / MiB == pytest.approx(266.5, abs=0.01)
    cuda = lc.compute_buffer_bytes(llm, 4096, 512, True)
    assert cpu - cuda == 512 * 4096 * 4
    assert cuda / MiB == pytest.approx(258.5, abs=0.01)  # shared/reference/llamacpp_oracle_notes.md, published


def test_unported_graphs_keep_the_live_set_model():
    """Gemma (sliding window, extra norms), MLA and hybrid graphs are not ported: supported() is False and the
    live-set formula applies."""
    for arch in ("gemma-2-2b", "gemma-3-1b", "deepseek-v2-lite", "deepseek-v3-narrow", "qwen3-next-80b-a3b"):
        llm, _v, _e, _p = compare.specs(arch)
        assert lc.simulated_compute_bytes(llm, 4096, 512, True) is None, arch


@pytest.mark.parametrize(
    ("model", "n_ds", "n_pos", "setting"),
    [
        ("llama-3.1-70b", 0, 1, (8192, 512, False, "f16", "f16")),
        ("qwen3-0.6b", 0, 1, (32768, 512, True, "q8_0", "q8_0")),  # quantized KV: the Hadamard products
        ("gpt-oss-120b", 0, 1, (4096, 512, False, "f16", "f16")),  # sliding-window pattern: period 2
        ("qwen3-8b", 3, 4, (16384, 512, True, "f16", "f16")),  # as Qwen3-VL-8B's language model: DeepStack layers first
        ("qwen3-30b-a3b", 3, 4, (4096, 512, False, "f16", "f16")),  # MoE, as Qwen3-VL-30B-A3B's language model
    ],
)
def test_simulate_skips_repeated_layers_exactly(model: str, n_ds: int, n_pos: int, setting: tuple):
    """simulate() builds a few layers, finds the boundary where the allocator's whole state repeats and simulates
    a shallower graph that ends in the same state: the same buffer as allocating the full-depth graph."""
    from vramcalc.catalog import Catalog, builtin_catalog_dir

    llm = Catalog.load([builtin_catalog_dir()]).llm(model)
    cells, u, fa, tk, tv = setting
    window = lc.llamacpp_window(llm)
    swa = min(cells, (window or 0) + u + 255) // 256 * 256 if window else None
    nodes, leafs = lg.build(llm, cells, u, fa, 1, n_ds, tk, tv, n_pos, swa)
    assert llm.num_layers >= 28
    lg._graphs.clear()
    lg._results.clear()
    assert lg.simulate(llm, cells, u, fa, n_ds, tk, tv, n_pos, swa) == allocate_graph(nodes, leafs)
    assert max(key[0] for key in lg._graphs) < llm.num_layers  # it did not build the full depth


def test_unrecorded_architectures_are_exact_too():
    """Mistral-Nemo-12B (query width 4096 under a 5120 hidden size) and Phi-4 (phi3 graph at 5120 wide, 100k
    vocabulary), run on llama.cpp 0c1e57098 for this check only (fixtures/llamacpp_oracle/sim_check_runs.json,
    8 settings each: 512-32768 cells, flash attention on/off, f16 and q8_0 KV): the simulated buffer is llama.cpp's
    to the log's rounding, where the live-set model was -13.2% to +24.1% off."""
    from vramcalc.readers.hf_config import model_from_hf_config

    doc = json.loads((FIX / "sim_check_runs.json").read_text())
    assert doc["llama_cpp_commit"] == "0c1e57098" and len(doc["runs"]) == 16
    worst = 0.0
    for r in doc["runs"]:
        path = FIX / "configs" / f"{r['arch']}.json"
        llm = model_from_hf_config(json.loads(path.read_text()), path, r["arch"], r["arch"]).llm
        lay = lc.kv_layout(llm, r["n_ctx"], 1, False, 512)
        cpu = lc.compute_buffer_bytes(llm, lay.stream_cells, 512, r["fa"] == "on", backend="cpu", type_k=r["ctk"], type_v=r["ctv"])
        assert cpu / MiB == pytest.approx(r["measured"], abs=0.0051), r["command"]
        worst = max(worst, abs(r["live_set_model"] / r["measured"] - 1))
    assert worst > 0.2  # the recorded live-set predictions (main at f011b5f): these runs tell the two apart
