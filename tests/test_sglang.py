"""SGLang (runtimes/sglang.py): the KV pool's K/V sizes from max_total_num_tokens and the pool rule,
pinned to benchmarks/calibration/sglang_memory.csv (SGLang's 'GB' is GiB)."""

from __future__ import annotations

import json

import pytest

from vramcalc.catalog import load_catalog
from vramcalc.runtimes.serving import kv_per_token
from vramcalc.runtimes.sglang import default_fraction
from vramcalc.units import GiB


@pytest.mark.parametrize(
    ("line", "model", "tp", "tokens", "k_gib"),
    [
        (2, "qwen3-235b-a22b", 4, 367_404, 8.23),  # "#tokens: 367404, K size: 8.23 GB, V size: 8.23 GB"
        (5, "qwen2.5-32b", 4, 46_611, 1.42),  # "#tokens: 46611, K size: 1.42 GB" (Qwen2 ~32B, 14 shards)
    ],
)
def test_k_size_from_the_token_count(line, model, tp, tokens, k_gib):
    llm = load_catalog().get("llms", model)
    k, v = kv_per_token(llm, llm.num_layers, tp, 2)
    assert k == v
    assert tokens * k / GiB == pytest.approx(k_gib, abs=0.006), f"sglang_memory.csv:{line}"


def test_default_fraction_by_tp():
    assert [default_fraction(t) for t in (1, 2, 4, 8, 16)] == [0.88, 0.87, 0.85, 0.81, 0.79]


def test_pool_end_to_end_qwen3_235b(runner):
    """sglang_memory.csv:2: 4 x H100, --mem-fraction-static 0.93: max_total_num_tokens 367,404.
    The estimate is 11% high (catalog card of 80 GiB, the fitted CUDA/NCCL context): docs/accuracy_serving.md."""
    from vramcalc.cli import app

    r = runner.invoke(
        app,
        [
            "check",
            "qwen3-235b-a22b",
            "--runtime",
            "sglang",
            "--gpu",
            "4xh100-sxm",
            "--quant",
            "fp8",
            "--mem-fraction-static",
            "0.93",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["serving"]
    assert s["starts"] and s["kv_cache_tokens"] == pytest.approx(367_404, rel=0.12)
    assert s["k_cache_bytes"] == s["v_cache_bytes"]
    assert s["command"].startswith("python -m sglang.launch_server --model-path Qwen/Qwen3-235B-A22B --quantization fp8 --tp 4")


def test_too_small_a_fraction_does_not_start(runner):
    from vramcalc.cli import app

    r = runner.invoke(app, ["check", "llama-3.1-8b", "--runtime", "sglang", "--gpu", "rtx3090", "--mem-fraction-static", "0.5", "--json"])
    s = json.loads(r.stdout)["serving"]
    assert not s["starts"] and "increase --mem-fraction-static" in s["error"]
