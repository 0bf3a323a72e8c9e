"""vLLM (runtimes/vllm.py): weights per GPU under TP/PP, KV block sizing, the profile run's activation
peak and the start check, each pinned to a published start-up line of
benchmarks/calibration/vllm_memory.csv (copied from ../shared/calibration, SERVING_PROVENANCE.md)."""

from __future__ import annotations

import json

import pytest
from test_hub import files, hub  # noqa: F401  (the fake Hub on loopback and its repos)

from vramcalc.catalog import load_catalog
from vramcalc.runtimes.serving import kv_per_token, pp_layers, stage_weight_bytes
from vramcalc.runtimes.vllm import SAMPLER_BYTES_PER_LOGIT, Setup, Vllm, activation_peak, era_of, for_era, forward_peak, v0_setup
from vramcalc.units import GiB


@pytest.fixture
def cat():
    return load_catalog()


def test_weights_per_gpu_match_vllm_lines(cat):
    llm = cat.get("llms", "llama-3-8b")
    # vllm_memory.csv:2 / :3 (vllm-project/vllm#10511): "model weights take 14.96GiB" (TP1), "7.48GiB" (TP2)
    assert stage_weight_bytes(llm, "bf16", 1, 1)[0] / GiB == pytest.approx(14.96, abs=0.01)
    assert stage_weight_bytes(llm, "bf16", 2, 1)[0] / GiB == pytest.approx(7.48, abs=0.01)
    # vllm_memory.csv:19: Qwen2.5-Math-1.5B (the Qwen2.5-1.5B architecture, tied head) "model weights take 2.88GiB"
    assert stage_weight_bytes(cat.get("llms", "qwen2.5-1.5b"), "bf16", 1, 1)[0] / GiB == pytest.approx(2.88, abs=0.01)
    # vllm_memory.csv:17: R1-Distill-Qwen-32B fine-tune under TP8 "model weights take 7.71GiB" (1% : vocab padding, norms)
    w = stage_weight_bytes(cat.get("llms", "deepseek-r1-distill-qwen-32b"), "fp16", 8, 1)[0] / GiB
    assert w == pytest.approx(7.71, rel=0.015)


@pytest.mark.parametrize(
    ("line", "model", "tp", "kv_gib", "blocks", "block_size", "tol"),
    [
        (14, "qwen2.5-1.5b", 1, 2.36, 5519, 16, 0.003),  # T4, "# CUDA blocks: 5519"
        (19, "qwen2.5-1.5b", 1, 33.37, 78115, 16, 0.003),  # Qwen2.5-Math-1.5B, "# CUDA blocks: 78115"
        (34, "llama-3-8b", 1, 11.12, 5691, 16, 0.003),  # A100 40GB, "# GPU blocks: 5691"
        # ROCm, "# rocm blocks: 40178" of 32 tokens: 0.7% fewer than the printed GiB gives (not explained here)
        (17, "deepseek-r1-distill-qwen-32b", 8, 39.51, 40178, 32, 0.01),
    ],
)
def test_kv_blocks_from_the_printed_kv_memory(cat, line, model, tp, kv_gib, blocks, block_size, tol):
    """KV block sizing (kv_cache_utils): blocks = KV bytes // (block x per-token bytes of the rank's layers).
    The printed GiB is rounded to 0.01, hence the 0.3% tolerance."""
    llm = cat.get("llms", model)
    per_tok = sum(kv_per_token(llm, llm.num_layers, tp, 2))
    assert int(kv_gib * GiB) // (block_size * per_tok) == pytest.approx(blocks, rel=tol), f"vllm_memory.csv:{line}"


def test_qwen3_235b_fp8_tp4_kv_tokens(cat):
    # vllm_memory.csv:5 (vllm#21348): "Available KV cache memory: 8.11 GiB / GPU KV cache size: 178,880 tokens" on 4 x H100;
    # 94 layers x 1 KV head per rank (4 / TP4) x 128 x 2 x 2 bytes = 48,128 bytes per token
    llm = cat.get("llms", "qwen3-235b-a22b")
    per_tok = sum(kv_per_token(llm, llm.num_layers, 4, 2))
    assert per_tok == 94 * 1 * 128 * 2 * 2
    assert int(8.11 * GiB) // (16 * per_tok) * 16 == pytest.approx(178_880, rel=0.015)


def test_sampler_bytes_per_logit_follow_the_sort():
    # bf16 logits 2 + fp32 copy 4 + sorted values 4 + int64 indices 8 + Sort.cu reverse indices 8 + cub's
    # alternate keys 4 and values 8 (runtimes/vllm.py docstring)
    assert SAMPLER_BYTES_PER_LOGIT == 38


def test_forward_peak_counts_the_mlp_at_the_down_projection(cat):
    # Qwen2.5-1.5B (published config: hidden 1536, intermediate 8960): 4 hidden-sized tensors + gate_up (2 x 8960)
    # + the SiluAndMul output (8960), 2 bytes each, per token; under TP8 one more hidden-sized tensor (the
    # all-reduce's output) and the MLP split 8 ways (R1-Distill-Qwen-32B: hidden 5120, intermediate 27648)
    assert forward_peak(cat.get("llms", "qwen2.5-1.5b"), 32768, 1) == 32768 * (4 * 1536 + 3 * 8960) * 2
    assert forward_peak(cat.get("llms", "deepseek-r1-distill-qwen-32b"), 32768, 8) == 32768 * (5 * 5120 + 3 * 27648 // 8) * 2


@pytest.mark.parametrize(
    ("line", "model", "tokens", "tp", "measured", "tol"),
    [
        (14, "qwen2.5-1.5b", 32768, 1, 2.02, 0.01),  # T4, max_model_len 32768: the forward's MLP
        (17, "deepseek-r1-distill-qwen-32b", 32768, 8, 2.20, 0.01),  # ROCm TP8: the forward + the all-reduce output
        (19, "qwen2.5-1.5b", 4096, 1, 1.40, 0.015),  # 256 rows of 151,936 logits: the sampler's sort
        (2, "llama-3-8b", 8192, 1, 1.26, 0.04),  # 256 rows of 128,256 logits (a Dec 2024 dev build)
        (18, "phi-4-mini", 2048, 1, 1.83, 0.01),  # 256 rows of 200,064 logits (name inferred from 7.17 GiB bf16)
        (20, "llama-3.2-3b", 10000, 1, 1.22, 0.01),  # 256 rows of 128,256 logits + 10,000 x 3072 hidden states
    ],
)
def test_activation_peak_of_the_profile_run(cat, line, model, tokens, tp, measured, tol):
    """vllm_memory.csv 'PyTorch activation peak memory takes X GiB' (V0 worker: the profile runs
    max(max_model_len, 2048) tokens over 256 sequences): the larger of the forward and the sampler."""
    got = activation_peak(cat.get("llms", model), tokens, 256, tp) / GiB
    assert got == pytest.approx(measured, rel=tol), f"vllm_memory.csv:{line}"


def test_v0_and_v1_defaults():
    # V0 SchedulerConfig: max(max_model_len, 2048) without chunked prefill; chunked prefill above 32K
    from vramcalc.results import ServingOptions

    def setup(mml: int) -> Setup:
        return Setup(1, 1, 0.9, mml, 1024, 8192, 2, "bf16", False, 80 * GiB)

    assert v0_setup(setup(4096), ServingOptions()).max_num_batched_tokens == 4096
    assert v0_setup(setup(1024), ServingOptions()).max_num_batched_tokens == 2048
    assert v0_setup(setup(131072), ServingOptions()).max_num_batched_tokens == 2048
    assert v0_setup(setup(131072), ServingOptions()).max_num_seqs == 256
    assert [era_of(v) for v in ("0.6.1.dev238", "0.7.3", "0.9.0", "0.19.0", "junk")] == ["v0", "v0", "v1", "v1", "v1"]
    with pytest.raises(ValueError, match="unknown vLLM era"):
        for_era("v2")


def test_era_rules_live_on_their_own_instance():
    """The registry's vLLM instance keeps the newest rules; another era is a separate instance (no state is
    set on the shared plugin during an estimate)."""
    from vramcalc import runtimes

    shared = runtimes.get("vllm")
    v0 = for_era("v0")
    assert v0 is not shared and v0.era == "v0" and shared.era == "v1"
    assert not hasattr(shared, "_scale")


def test_end_to_end_kv_tokens_on_a_t4(cat):
    """vllm_memory.csv:14: total 14.56 GiB x 0.5, max_model_len 32768: 5519 blocks = 88,304 tokens, 2.69x.
    The estimate is 1.7% low (the fitted non_torch 0.07 GiB against the row's 0.01): docs/accuracy_serving.md."""
    from vramcalc.results import ServingOptions

    llm = cat.get("llms", "qwen2.5-1.5b")
    s = v0_setup(Setup(1, 1, 0.5, 32768, 256, 2048, 2, "bf16", False, int(14.56 * GiB)), ServingOptions())
    assert (s.max_num_batched_tokens, s.max_num_seqs) == (32768, 256)
    g = for_era("v0").stages(llm, "bf16", s)[0]
    assert g.kv_cache_tokens == pytest.approx(88_304, rel=0.03)
    assert g.kv_cache_tokens / 32768 == pytest.approx(2.69, rel=0.03)


def test_pipeline_split_follows_get_pp_indices():
    # vllm distributed/utils.py get_pp_indices: the remainder goes to the stages before the last
    assert pp_layers(80, 2) == [40, 40]
    assert pp_layers(61, 4) == [15, 15, 16, 15]


def test_done_when_72b_awq_on_two_3090s(runner):
    from vramcalc.cli import app

    args = ["check", "qwen2.5-72b", "--quant", "awq", "--runtime", "vllm", "--gpu", "2xrtx3090", "--max-model-len", "32768"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["serving"]
    assert s["tensor_parallel"] == 2 and s["command"].startswith("vllm serve Qwen/Qwen2.5-72B --tensor-parallel-size 2")
    # 5 GiB of KV for one 32K request (80 layers x 4 KV heads per rank x 128 x 2 x 2 bytes = 160 KiB/token)
    # does not fit beside 19.3 GiB of weights on a 24 GB card; the sampler's peak (256 rows x 152,064 logits x
    # 38 bytes = 1.38 GiB) leaves no KV block at 0.9: vLLM's own error, and what to change
    assert not s["starts"] and "No available memory for the cache blocks" in s["error"]
    assert s["kv_cache_tokens"] == 0 and s["max_concurrency"] == 0
    assert any("--kv-cache-dtype fp8" in x for x in s["lower"])
    # vLLM takes AWQ from the checkpoint's config: the catalog's repo is the bf16 one, so the note says to swap it
    assert any("quantized with AWQ" in n for n in s["notes"])
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "DOES NOT START" in table.stdout and "vllm serve" in table.stdout
    # issue 12: no speed is printed as if it were an answer when the server cannot start (JSON keeps the figures)
    assert "No speed shown" in table.stdout and "decode, one request" not in table.stdout
    ok = runner.invoke(app, [*args[:-1], "4096", "--gpu-memory-utilization", "0.95", "--json"])
    s2 = json.loads(ok.stdout)["serving"]
    assert s2["starts"] and s2["kv_cache_tokens"] >= 4096 and s2["max_concurrency"] == round(s2["kv_cache_tokens"] / 4096, 2)


def test_done_when_70b_fp8_on_two_nodes(runner):
    from vramcalc.cli import app

    r = runner.invoke(app, ["check", "llama-3.1-70b", "--runtime", "vllm", "--gpu", "8xh100", "--nodes", "2", "--quant", "fp8", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["serving"]
    assert (s["tensor_parallel"], s["pipeline_parallel"]) == (8, 2) and len(s["gpus"]) == 2
    assert [g["layers"] for g in s["gpus"]] == [40, 40]
    # fp8 linears (1 byte) and bf16 embedding + head (2 x 128,256 x 8,192 x 2 bytes) of the published
    # 70,553,706,496 parameters, over 16 GPUs
    emb = 128_256 * 8192
    total = (70_553_706_496 - 2 * emb) + 2 * emb * 2
    assert sum(g["weights_bytes"] for g in s["gpus"]) * 8 == pytest.approx(total, rel=0.005)
    assert "--pipeline-parallel-size 2" in s["command"] and "ray" in s["command"]


def test_fit_over_two_3090s(runner):
    from vramcalc.cli import app

    r = runner.invoke(app, ["fit", "--runtime", "vllm", "--gpu", "2xrtx3090", "--json"])
    assert r.exit_code == 0, r.output
    rows = {x["model"]: x for x in json.loads(r.stdout)["rows"]}
    assert rows["llama-3.1-70b"]["quant"] == "awq-int4" and rows["llama-3.1-70b"]["verdict"] == "fits"
    assert rows["llama-3.1-405b"]["verdict"] == "no"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "3xrtx3090"], "divisible by tensor parallel size (3)"),
        (["--gpu", "2xrtx3090", "--tp", "4"], "but 1 node(s) x 2 GPU(s) were given"),
        (["--gpu", "2xrtx3090", "--nodes", "2", "--tp", "4", "--pp", "1"], "stays inside a node"),
        (["--gpu", "m4-max-40c-128gb"], "not Apple silicon"),
        (["--gpu", "rtx3090", "--quant", "Q4_K_M"], "Unknown vllm precision"),
    ],
)
def test_bad_settings_are_usage_errors(runner, args, message):
    from vramcalc.cli import app

    r = runner.invoke(app, ["check", "llama-3.1-8b", "--runtime", "vllm", *args])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_a_hub_checkpoint_under_vllm_uses_its_header_bytes(hub, files, runner):  # noqa: F811
    """A Hugging Face repo (the fake Hub of tests/test_hub.py on loopback) under vLLM: the weights are the
    checkpoint's bytes from its safetensors headers, the same as the local folder, split by the TP rules."""
    from vramcalc.cli import app

    def run(*args):
        r = runner.invoke(app, ["check", *args, "--runtime", "vllm", "--gpu", "2xrtx4090", "--max-model-len", "8192", "--json"])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    remote = run("someone/Qwen3-8B-Base-Copy")
    local = run(str(files["text"]))
    assert remote["serving"]["gpus"] == local["serving"]["gpus"]
    assert any("Weights read from the checkpoint" in n for n in remote["notes"])
    assert remote["serving"]["kv_cache_tokens"] > 0 and remote["serving"]["tensor_parallel"] == 2


def test_per_token_kv_skips_layers_without_one(cat):
    """Hybrid linear-attention layers and Gemma 4's wider full-attention layers (published configs)."""
    q = cat.get("llms", "qwen3.6-35b-a3b-text")  # 10 of 40 layers full attention, 2 KV heads of 256
    assert kv_per_token(q, q.num_layers, 1, 1) == (10 * 2 * 256, 10 * 2 * 256)
    g = cat.get("llms", "gemma-4-31b-text")  # 50 sliding layers: 16 KV heads of 256; 10 global: 4 of 512
    assert sum(kv_per_token(g, g.num_layers, 1, 2)) == 2 * 2 * (50 * 16 * 256 + 10 * 4 * 512)
    assert sum(kv_per_token(g, g.num_layers, 2, 2)) == 2 * 2 * (50 * 8 * 256 + 10 * 2 * 512)
    # a pipeline stage counts its own layers: the first 20 hold 5 full-attention layers
    assert kv_per_token(q, 20, 1, 1, start=0)[0] == 5 * 2 * 256


@pytest.mark.parametrize("runtime", ["vllm", "sglang"])
def test_a_pipeline_stage_without_per_token_kv_is_a_usage_error(runner, runtime):
    """Qwen3-Next's published layer_types: 3 linear-attention layers, then 1 full-attention (48 layers). Split
    16 ways, stage 0 holds layers 0-2 only, none with a per-token KV cache: an error, not a division by zero."""
    from vramcalc.cli import app

    r = runner.invoke(app, ["check", "qwen3-next-80b-a3b", "--runtime", runtime, "--gpu", "h100", "--pp", "16", "--nodes", "16"])
    assert r.exit_code == 2 and "layers 0-2, none with a per-token KV cache" in r.output and "Traceback" not in r.output
    # 12 stages of 4 layers each hold one full-attention layer: estimated as before
    r = runner.invoke(app, ["check", "qwen3-next-80b-a3b", "--runtime", runtime, "--gpu", "h100", "--pp", "12", "--nodes", "12"])
    assert r.exit_code == 0, r.output


def test_one_command_builder_speaks_each_runtimes_flags():
    from vramcalc.results import ServingOptions
    from vramcalc.runtimes.sglang import Sglang
    from vramcalc.runtimes.vllm import Vllm

    s = Setup(8, 2, 0.85, 8192, 64, 4096, 1, "fp8", True, 80 * GiB)
    opts = ServingOptions(nodes=2, max_num_seqs=64, max_num_batched_tokens=4096, kv_cache_dtype="fp8", enforce_eager=True)
    assert Vllm().command("org/m", "fp8", s, opts) == (
        "vllm serve org/m --quantization fp8 --tensor-parallel-size 8 --pipeline-parallel-size 2 "
        "--distributed-executor-backend ray --gpu-memory-utilization 0.85 --max-model-len 8192 --max-num-seqs 64 "
        "--max-num-batched-tokens 4096 --kv-cache-dtype fp8 --enforce-eager"
    )
    assert Sglang().command("org/m", "awq-int4", s, opts) == (
        "python -m sglang.launch_server --model-path org/m --quantization awq --tp 8 --pp-size 2 --nnodes 2 "
        "--mem-fraction-static 0.85 --context-length 8192 --max-running-requests 64 --kv-cache-dtype fp8_e5m2 "
        "--disable-cuda-graph"
    )


@pytest.mark.parametrize(
    ("line", "model", "cc", "measured"),
    [
        (10, "gpt-oss-120b", "9.0", 65.9651),  # H100, "Marlin weight-only FP4": "Model loading took 65.9651 GiB"
        (13, "gpt-oss-20b", "8.0", 13.72),  # A100 (vLLM 0.19.0): "Model loading took 13.72 GiB"
    ],
)
def test_mxfp4_experts_padded_for_the_marlin_kernel(cat, line, model, cc, measured):
    """Mxfp4MoEMethod pads hidden (2880) to 3072 and the expert intermediate (2880) to 2944 for Marlin: the
    experts take 3072 x 2944 / 2880^2 = 1.0904 x their published MXFP4 bytes."""
    from vramcalc.runtimes.serving import expert_pad_ratio

    llm = cat.get("llms", model)
    assert expert_pad_ratio(llm, 1, (256, 128)) == pytest.approx(3072 * 2944 / 2880**2)
    s = Setup(1, 1, 0.9, 8192, 256, 2048, 2, "bf16", False, 80 * GiB, compute_capability=cc)
    w = stage_weight_bytes(llm, "mxfp4", 1, 1, Vllm().expert_padding("mxfp4", s))[0]
    assert w / GiB == pytest.approx(measured, rel=0.01), f"vllm_memory.csv:{line}"
    assert stage_weight_bytes(llm, "mxfp4", 1, 1)[0] < 0.95 * w  # unpadded: the first version, 7-8% short


def test_sliding_window_layers_under_the_v1_hybrid_manager(cat):
    """Gemma-3-27B (published config: 62 layers, every 6th full attention, window 1024, 16 KV heads of 128):
    10 full + 52 sliding layers in groups of 10 (1 + 6 groups); a block of one layer = 16 x 8,192 bytes."""
    from vramcalc.runtimes.vllm import hybrid_layout

    llm = cat.get("llms", "gemma-3-27b-text")
    s = Setup(1, 1, 0.9, 32768, 1024, 8192, 2, "bf16", False, 80 * GiB)
    h = hybrid_layout(llm, s, 0, llm.num_layers)
    assert h is not None and (h.full, h.sliding, h.group_size, h.full_groups, h.sliding_groups) == (10, 52, 10, 1, 6)
    assert h.page == 16 * 16 * 128 * 2 * 2
    # a 32K request: 2,048 blocks of each full layer; min(1023 + 8192, 32768) = 9,215 tokens = 576 blocks + 1 of each
    # sliding layer
    assert h.blocks_per_request(32768, 8192) == 2048 + 6 * 577
    assert h.request_bytes(32768, 8192) == (10 * 2048 + 52 * 577) * h.page
    assert h.num_blocks(10 * h.page * 100) == 100
    # the V0 engine keeps sliding layers whole; Gemma 4's wider global layers are not grouped here
    from dataclasses import replace

    assert hybrid_layout(llm, replace(s, era="v0"), 0, llm.num_layers) is None
    g4 = cat.get("llms", "gemma-4-31b-text")
    assert hybrid_layout(g4, s, 0, g4.num_layers) is None


def test_a_sliding_window_model_reports_vllm_s_tokens_and_concurrency(runner):
    from vramcalc.cli import app

    args = ["check", "gemma-3-27b-text", "--runtime", "vllm", "--gpu", "a100-sxm4-80gb", "--max-model-len", "32768", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["serving"]
    g = s["gpus"][0]
    blocks = g["kv_cache_bytes"] // (16 * 8192 * 10)
    assert s["kv_cache_tokens"] == blocks // 7 * 16
    assert s["max_concurrency"] == round(blocks / (2048 + 6 * 577), 2) and s["starts"]
    assert any("hybrid KV cache manager" in n for n in s["notes"])
