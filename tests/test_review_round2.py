"""Round-2 review (user-facing output and honest notes): each test pins one finding of
/work/notes/r2/review2.md. Cheap: a few in-process CLI calls, no subprocess."""

from __future__ import annotations

import io
import json

import pytest

from vramcalc.cli import app


@pytest.fixture(autouse=True)
def _eighty(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def _json(runner, *args: str) -> dict:
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_vllm_longest_request_is_the_pools_whole_blocks(runner):
    # vLLM sizes a request in whole blocks (max_memory_usage_bytes = cdiv(length, block_size) x page, the rule the
    # hybrid layout already used): the longest request the pool holds is its KV tokens (whole blocks), not the
    # pool's bytes / bytes per token. Before: "KV tokens 40,640" and "--max-model-len 40655" on one screen.
    d = _json(runner, "check", "llama-3.1-8b", "--gpu", "rtx4090", "--runtime", "vllm")
    s = d["serving"]
    assert not s["starts"] and s["kv_cache_tokens"] % 16 == 0
    assert d["max_context_tokens"] == s["kv_cache_tokens"]
    assert s["lower"][0].startswith(f"--max-model-len {s['kv_cache_tokens']} ")
    assert f"the estimated maximum model length is {s['kv_cache_tokens']}." in s["error"]


def test_bar_line_fits_80_columns_with_experts_in_ram(runner):
    # the bar + "22.41 GiB of 23.50 GiB (95%) on GPU" was 86 columns: the suffix wrapped onto its own line
    from vramcalc.render.estimate import bar_width, memory_bar

    suffix = " 222.41 GiB of 223.50 GiB (100%) on GPU"
    for over in (False, True):
        bar = memory_bar([10, 5, 3, 2], 18 if over else 30, bar_width(suffix, over=over))
        assert len(bar.plain) + len(suffix) <= 80
    assert bar_width(" 5.50 GiB of 23.50 GiB (23%)") == 48  # the common case keeps its 48 cells
    r = runner.invoke(app, ["check", "qwen3-next-80b-a3b", "--gpu", "rtx4090", "--ram", "64"])
    assert r.exit_code == 0, r.output
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("[")]
    assert line.endswith("on GPU") and len(line) <= 80


def test_laptop_estimated_rate_says_which_rate(runner):
    # the Prefill line showed "of 51 TFLOPS (estimated FP16 rate)" and the note "12.77 TFLOPS = ...": the note's
    # figure is the FP16 shader rate, the line's the matrix peak derived from it (4x on Ampere, speed.peak_tflops);
    # the line must stay within 80 columns (it wrapped with a longer label)
    d = _json(runner, "check", "llama-3.1-8b", "--gpu", "rtx3060-laptop")
    thr = d["throughput"]
    assert thr["prefill_rate_basis"].startswith("FP16 shader rate ")
    shader = float(thr["prefill_rate_basis"].split()[3])
    assert thr["prefill_tokens_per_s"]["basis"]["peak_tflops"] == pytest.approx(4 * shader, rel=1e-3)
    out = runner.invoke(app, ["check", "llama-3.1-8b", "--gpu", "rtx3060-laptop"]).stdout
    assert "of 51 TFLOPS (estimated, see Note)" in out and "Note: Prefill from an estimated FP16 rate" in out


def test_serving_verdict_words_match_check(runner):
    # compare / gpus / fit said FITS / DOES NOT FIT where check says STARTS / DOES NOT START (vLLM, SGLang)
    out = runner.invoke(app, ["compare", "llama-3.1-8b", "--gpu", "rtx4090", "--gpu", "h100-sxm", "--runtime", "vllm"]).stdout
    assert "DOES NOT START" in out and "STARTS" in out and "FITS" not in out
    assert "1st token (TTFT)" in out
    # fit: the same words, and one line on what memory / free / max ctx mean for a server (a whole fit run is ~6 s:
    # the render is checked on an empty result instead)
    from types import SimpleNamespace

    from rich.console import Console

    from vramcalc.render.fit import render_fit
    from vramcalc.render.views import verdict_label

    assert verdict_label("no", "sglang")[0] == "DOES NOT START" and verdict_label("no", "llama.cpp")[0] == "DOES NOT FIT"
    gpu = SimpleNamespace(name="GeForce RTX 3090", id="rtx3090", usable_bytes=1 << 34, memory_bytes=1 << 34)
    for runtime, shown in (("vllm", True), ("llama.cpp", False)):
        r = SimpleNamespace(
            gpu=gpu, gpus=["rtx3090"], context_tokens=4096, runtime=runtime, images=None, rows=[], precisions=["bf16"],
            ranking="id", usable_tokens_per_s=5.0, hidden=[], skipped=[],
        )  # fmt: skip
        con = Console(width=80, record=True, file=io.StringIO())
        con.print(render_fit(r))  # type: ignore[arg-type]
        assert ("memory is per GPU, the whole share" in " ".join(con.export_text().split())) is shown


@pytest.mark.parametrize(
    ("runtime", "gpu", "word"),
    [
        ("vllm", "h100-sxm", "These vLLM rules are recalled"),
        ("sglang", "h100-sxm", "These SGLang rules"),
        ("mlx", "m3-max-40c-128gb", "recalled from mlx-lm's"),
    ],
)
def test_one_note_says_the_serving_rules_are_recalled(runner, runtime, gpu, word):
    notes = _json(runner, "check", "llama-3.1-8b", "--gpu", gpu, "--runtime", runtime)["notes"]
    hits = [n for n in notes if "docs/accuracy_serving.md" in n]
    assert len(hits) == 1 and word in hits[0]


def test_serving_title_counts_the_gpus(runner):
    # the title named one card for a TP 8 x PP 2 run ("on NVIDIA H100 SXM5 80 GB"): it is TP x PP cards
    d = _json(runner, "check", "llama-3.1-70b", "--gpu", "8xh100", "--nodes", "2", "--runtime", "vllm")
    n = d["serving"]["tensor_parallel"] * d["serving"]["pipeline_parallel"]
    out = runner.invoke(app, ["check", "llama-3.1-70b", "--gpu", "8xh100", "--nodes", "2", "--runtime", "vllm"]).stdout
    assert n == 16 and out.splitlines()[0].startswith(f"Llama 3.1 70B  [llama-3.1-70b]  on  {n} x NVIDIA H100")


def test_sglang_aggregate_decode_uses_the_pools_concurrency(runner):
    # SGLang has no max_num_seqs here (0 = none): min(0, pool concurrency) made every aggregate figure 1 request
    s = _json(runner, "check", "llama-3.1-8b", "--gpu", "h100-sxm", "--runtime", "sglang")["serving"]
    assert s["max_num_seqs"] == 0 and s["concurrency"] == int(s["max_concurrency"]) > 1
    assert s["speeds"]["decode_aggregate"]["value"] > s["speeds"]["decode_per_request"]["value"]


def test_serving_decode_uses_the_cards_memory_class(runner):
    # speeds() called decode_factors without the GPU: every card got the GDDR bandwidth efficiency (an H100's
    # figure said "decode_bandwidth.gddr"), and the note called llama.cpp's CUDA factors "PyTorch-kernel factors"
    d = _json(runner, "check", "llama-3.1-8b", "--gpu", "h100-sxm", "--runtime", "vllm")
    assert d["serving"]["speeds"]["decode_per_request"]["basis"]["factors"].endswith("decode_bandwidth.hbm (uncalibrated for vllm)")
    (note,) = [n for n in d["throughput"]["notes"] if n.startswith("Speeds:")]
    assert "borrowed factors (decode decode.llama.cpp.cuda" in note and "4,096-token prompt" in note
    out = " ".join(runner.invoke(app, ["check", "llama-3.1-8b", "--gpu", "h100-sxm", "--runtime", "vllm"]).stdout.split())
    assert "• Speeds: the roofline with borrowed factors" in out  # the table shows the JSON's throughput notes


def test_serving_pairs_are_shown_as_pairs(runner):
    # gpus/compare showed a vLLM TP-2 pair as one card ("rtx4090 ... STARTS 131,072" while check on one RTX 4090
    # says DOES NOT START): row_of took one GPU id and the per-GPU memory for serving estimates
    d = _json(runner, "compare", "llama-3.1-8b", "--gpu", "rtx4090", "--gpu", "2xrtx4090", "--runtime", "vllm")
    one, two = d["rows"]
    assert one["gpus"] == ["rtx4090"] and one["verdict"] == "no"
    assert two["gpus"] == ["rtx4090", "rtx4090"] and two["verdict"] == "fits"
    assert two["usable_bytes"] == 2 * one["usable_bytes"]  # the pair's two shares, as llama.cpp pairs sum theirs
    # gpus uses the same row_of (views.gpus_for); a run over every card is ~2 s, so compare stands for it


def test_wrapped_commands_still_run_when_copied():
    # rich wrapped "Command: vllm serve ... \n--max-model-len 131072" at a space: pasted, the shell ran `vllm serve`
    # without the flag and then `--max-model-len` as a command. Now: whole words, continuation backslashes.
    import shlex

    from vramcalc.render.table import command_lines

    line = (
        "vllm serve meta-llama/Llama-3.1-70B --tensor-parallel-size 8 --pipeline-parallel-size 2 "
        "--distributed-executor-backend ray --gpu-memory-utilization 0.9 --max-model-len 131072 --limit-mm-per-prompt '{\"image\": 1}'"
    )
    out = command_lines(line, len("Command: "))
    assert len("Command: ") + len(out[0]) <= 80 and all(len(x) <= 80 for x in out) and len(out) > 1
    assert all(x.endswith(" \\") for x in out[:-1]) and not out[-1].endswith("\\")
    # what a POSIX shell reads from the copied lines: backslash-newline is removed (a line continuation)
    assert shlex.split("\n".join(out).replace("\\\n", "")) == shlex.split(line)
    assert "--max-model-len 131072" in " ".join(out)  # a flag stays on the line of its value
    assert command_lines("llama-server -m a.gguf -c 4096", 9) == ["llama-server -m a.gguf -c 4096"]
