"""MLX (runtimes/mlx.py): quantized weights with group scales and biases, the KV cache in steps of
256, the last prompt chunk, and peak memory as mlx-lm prints it, pinned to mlx-lm's BENCHMARKS.md rows
(benchmarks/calibration/mlx_memory.csv, GB = 1e9 bytes)."""

from __future__ import annotations

import json

import pytest

from vramcalc.catalog import load_catalog
from vramcalc.params import Tensor
from vramcalc.runtimes import mlx


def test_four_bit_is_four_and_a_half_bits():
    # nn.quantize: 4-bit values + an fp16 scale and bias per group of 64 = 4 + 32/64 bits
    t = Tensor("blk.0.ffn_up.weight", (4096, 11008), 0)
    assert mlx.tensor_bytes(t, 4, 64) * 8 / t.numel == 4.5
    assert mlx.tensor_bytes(t, 8, 64) * 8 / t.numel == 8.5
    assert mlx.tensor_bytes(t, 4, 32) * 8 / t.numel == 5.0
    # a width that is not a multiple of the group stays 16-bit (nn.quantize's class predicate)
    assert mlx.tensor_bytes(Tensor("x.weight", (100, 64), 0), 4, 64) == 2 * 6400


def test_kv_cache_grows_in_steps_of_256():
    llm = load_catalog().get("llms", "qwen3-4b")
    per = llm.num_layers * 2 * llm.num_kv_heads * llm.head_dim_ * 2
    assert mlx.kv_bytes(llm, 1) == 256 * per and mlx.kv_bytes(llm, 257) == 512 * per


@pytest.mark.parametrize(
    ("line", "model", "precision", "peak_gb"),
    [
        (12, "qwen3-4b", "bf16", 9.02),
        (13, "qwen3-4b", "8bit", 5.254),
        (17, "qwen3-4b", "4bit-g32", 3.603),
        (18, "qwen3-4b", "4bit", 3.35),
        (19, "qwen3-30b-a3b", "8bit", 33.46),
        (22, "qwen3-30b-a3b", "4bit", 18.2),
    ],
)
def test_peak_memory_of_mlx_lm_benchmark(line, model, precision, peak_gb):
    """mlx_lm.benchmark -p 2048 -g 128 on an M4 Max (ml-explore/mlx-lm BENCHMARKS.md): within the 5% target."""
    llm = load_catalog().get("llms", model)
    assert mlx.peak_bytes(llm, precision, 2048, 128)[0] / 1e9 == pytest.approx(peak_gb, rel=0.05), f"mlx_memory.csv:{line}"


def test_done_when_qwen3_30b_on_an_m4_max(runner):
    from vramcalc.cli import app

    args = ["check", "qwen3-30b-a3b", "--runtime", "mlx", "--quant", "4bit", "--gpu", "m4-max-40c-128gb"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    est = json.loads(r.stdout)
    s = est["serving"]
    assert est["verdict"] == "fits" and s["peak_bytes"] / 1e9 == pytest.approx(18.2, rel=0.05)  # mlx_memory.csv:22
    # generation 113.33 tok/s, prompt 1753.9 tok/s on the 64 GB M4 Max (same chip): within the band
    gen, prompt = s["speeds"]["generation"], s["speeds"]["prompt"]
    assert gen["low"] <= 113.33 <= gen["high"] and prompt["low"] <= 1753.9 <= prompt["high"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "peak (mlx-lm)" in table.stdout


def test_a_low_wired_limit_says_what_to_raise(runner):
    from vramcalc.cli import app

    r = runner.invoke(
        app,
        [
            "check",
            "qwen3-30b-a3b",
            "--runtime",
            "mlx",
            "--quant",
            "8bit",
            "--gpu",
            "m4-max-40c-128gb",
            "--wired-limit-mb",
            "16384",
            "--json",
        ],
    )
    est = json.loads(r.stdout)
    assert est["verdict"] == "no" and est["suggestion"]["flags"][0] == "--wired-limit-mb"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--gpu", "rtx4090"], "Apple silicon"), (["--gpu", "m4-max-40c-128gb", "--quant", "9bit"], "Unknown mlx precision")],
)
def test_bad_settings_are_usage_errors(runner, args, message):
    from vramcalc.cli import app

    r = runner.invoke(app, ["check", "qwen3-4b", "--runtime", "mlx", *args])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_the_command_names_the_models_own_repo_not_a_finetune_listed_first():
    """qwen3-30b-a3b's aliases list Qwen3-Coder-30B-A3B (same architecture) before Qwen/Qwen3-30B-A3B;
    the command names the repo that is the catalog id."""
    from vramcalc.catalog import load_catalog
    from vramcalc.runtimes.serving import hub_repo

    m = load_catalog(include_user=False).resolve_model("qwen3-30b-a3b")
    assert m.aliases[0] != "Qwen/Qwen3-30B-A3B"
    assert hub_repo(m) == "Qwen/Qwen3-30B-A3B"


def test_the_moe_router_is_counted_one_way():
    """Qwen3-30B-A3B's routers (48 layers x 128 experts x 2048, published config) at 8 bits + an fp16 scale and
    bias per 64 (the model's quant_predicate) = 8.5 bits: 13,369,344 bytes, in the weights and in the bytes a
    generated token reads alike (the first version read them at 4 bits there)."""
    llm = load_catalog().get("llms", "qwen3-30b-a3b")
    router = 48 * 128 * 2048
    assert mlx.weight_bytes(llm, "4bit").by_type["q8"] == router * 17 // 16 == 13_369_344
    from vramcalc.params import llm_tensors

    others = sum(
        mlx.tensor_bytes(t, 4, 64) * (8 if t.role.endswith("_exps") else 128) // 128
        for t in llm_tensors(llm)
        if t.role != "ffn_gate_inp" and not (t.role == "token_embd" and not llm.tied_embeddings)
    )
    assert mlx.active_read_bytes(llm, "4bit") - others == 13_369_344


def test_linear_attention_layers_hold_a_state_not_a_kv_cache():
    # Qwen3.6-35B-A3B (published config: 40 layers, full_attention_interval 4, 2 KV heads of 256): 10 layers cache
    # K and V per token in 16-bit; the 30 Gated DeltaNet layers hold (kernel 4 - 1) x conv_dim + 32 x 128 x 128
    # state elements each, in f32 (the catalog's state dtype)
    llm = load_catalog().get("llms", "qwen3.6-35b-a3b-text")
    la = llm.linear_attention
    state = 30 * ((la.conv_kernel - 1) * la.conv_dim + la.num_value_heads * la.key_head_dim * la.value_head_dim) * 4
    assert mlx.kv_bytes(llm, 256) == 256 * 10 * 2 * 2 * 256 * 2 + state


def test_the_per_token_kv_figure_leaves_out_the_linear_attention_state(runner):
    """Qwen3.6-35B-A3B (published config above): a token adds K and V of 2 heads x 256 in 16 bits on its 10
    full-attention layers; the DeltaNet state is one request's, not a token's (it was spread over 256 tokens)."""
    from vramcalc.cli import app

    args = ["check", "qwen3.6-35b-a3b-text", "--runtime", "mlx", "--gpu", "m4-max-40c-128gb", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["serving"]["gpus"][0]["kv_bytes_per_token"] == 10 * 2 * 2 * 256 * 2
