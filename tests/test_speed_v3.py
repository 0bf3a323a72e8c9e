"""Speed model, round 2: llama.cpp's prompt kernel paths, the cost per routed expert, matrix-vector
micro-batches, the prefill p90 target in ``accuracy.py --check``, one time-to-first-token assembly,
and the labelled FP16 rate for cards without a published one.

Expected figures are published measurements (``benchmarks/calibration`` rows, named per test) or
catalog figures (TechPowerUp-derived ``fp16_tflops``, named per test); never values the code produced.
"""

from __future__ import annotations

import dataclasses

import pytest

from vramcalc import runtimes, speed
from vramcalc.catalog import load_catalog
from vramcalc.estimate import Workload, estimate
from vramcalc.matrix_rate import estimate_fp16_rate, needs_estimate
from vramcalc.results import SpeedBasis, SpeedFigure


@pytest.fixture(scope="module")
def cat():
    return load_catalog(include_user=False)


# --- kernel paths


def test_prefill_kernel_paths(cat):
    v100, turing, ga102 = (cat.resolve_gpu(i) for i in ("v100-pcie-32gb", "quadro-rtx-6000", "rtx3090"))
    # Volta: FP16 tensor cores, no int8 MMA: dequantize + cuBLAS from 64 tokens, MMQ (dp4a) below
    assert speed.prefill_kernel(v100, "cuda", "quant", 512) == "dequant"
    assert speed.prefill_kernel(v100, "cuda", "quant", 32) == "mmq"
    assert speed.prefill_kernel(ga102, "cuda", "quant", 512) == "mmq"
    assert speed.prefill_kernel(ga102, "cuda", "quant", 512, era="old") == "dequant"  # builds before mid-2024
    assert speed.prefill_kernel(ga102, "vulkan", "quant", 512) == "mmq"
    assert speed.prefill_kernel(ga102, "cuda", "f16", 512) == "f16"
    assert speed.arch_generation(turing) == "turing" and speed.arch_generation(ga102) == "ampere"
    assert speed.arch_generation(cat.resolve_gpu("rx7900xtx")) == ""


def test_prefill_time_roofline_arithmetic():
    f = {"compute_efficiency": 0.5, "small_batch_efficiency": 0.1, "moe_expert_s": 1e-5}
    fd = {"bandwidth_efficiency": 0.5, "per_layer_s": 1e-5}
    # matrix-vector micro-batch: 1e12 FLOP at 0.1 x 100 TFLOPS = 0.1 s vs 1e9 B at 0.5 x 1000 GB/s = 2 ms: 0.1 s
    t = speed.prefill_time(1e12, 1e9, 1, 100.0, 1000.0, f, fd, 10, ubatch_tokens=4)
    assert t == pytest.approx(0.1 + 10 * 1e-5)
    # the same bytes and FLOPs at 512 tokens: compute at 0.5 + the weight stream, added
    t = speed.prefill_time(1e12, 1e9, 1, 100.0, 1000.0, f, fd, 10, ubatch_tokens=512)
    assert t == pytest.approx(0.02 + 0.002 + 10 * 1e-5)
    # 100 routed experts x 2 micro-batches x 1e-5 s, and a dequant pass of 2e9 B per micro-batch
    t2 = speed.prefill_time(1e12, 1e9, 2, 100.0, 1000.0, f, fd, 0, ubatch_tokens=512, expert_layers=100, dequant_bytes=2e9)
    assert t2 == pytest.approx(0.02 + 0.004 + 2 * (100 * 1e-5 + 0.004))


def test_ubatch_expert_layers_counts_routed_experts(cat):
    """DeepSeek-V2-Lite (config.json: 27 layers, first_k_dense_replace 1, 64 routed experts, 6 per
    token): one token routes to 6 experts in each of 26 MoE layers; 512 tokens to nearly all 64."""
    from vramcalc import placement, runtimes

    llm = cat.llm("deepseek-v2-lite")
    lb = placement.llm_bytes(llm, runtimes.get("llama.cpp"), "Q4_0")
    idx = range(llm.num_layers)
    assert speed.ubatch_expert_layers(llm, lb, idx, 1) == pytest.approx(26 * 6)
    assert speed.ubatch_expert_layers(llm, lb, idx, 512) == pytest.approx(26 * 64, rel=1e-3)


def test_time_to_first_token_adds_image_encodes_and_takes_the_prefill_band():
    basis = SpeedBasis(factors="x", flops=1, calibrated=True)
    prefill = SpeedFigure(value=1000.0, low=500.0, high=2000.0, unit="tokens/s", basis=basis)
    enc = SpeedFigure(value=0.5, low=0.25, high=1.0, unit="s", basis=basis)
    t = speed.time_to_first_token(2.0, prefill, enc, 2, "question")
    assert (t.value, t.low, t.high) == (3.0, 1.5, 6.0)
    assert "question" in t.basis.factors
    assert speed.time_to_first_token(2.0, prefill, None, 0, "context").value == 2.0


# --- a labelled FP16 rate for cards without a published one


@pytest.mark.parametrize(("gid", "published"), [("rtx3090", 35.58), ("rtx3060-12gb", 12.74), ("rtx3080-10gb", 29.77)])
def test_rate_rule_reproduces_published_desktop_ampere_figures(cat, gid, published):
    """The rule applied to a desktop Ampere card with its own figure removed (and itself out of the
    references) gives its catalog FP16 rate (TechPowerUp-derived, data/gpus: RTX 3090 35.58, RTX 3060
    12 GB 12.74, RTX 3080 10 GB 29.77 TFLOPS) within 10%."""
    g = cat.resolve_gpu(gid)
    assert g.fp16_tflops == published
    bare = dataclasses.replace(g, fp16_tflops=None, fp16_tensor_tflops=None, bf16_tensor_tflops=None)
    est = estimate_fp16_rate(bare, [cat.get("gpus", i) for i in cat.ids("gpus")])
    assert est is not None and gid not in est.references
    assert est.fp16_tflops == pytest.approx(published, rel=0.10)
    assert all(cat.get("gpus", r).architecture == "Ampere" and cat.get("gpus", r).category == "consumer" for r in est.references)


def test_laptop_check_gets_a_labelled_prefill_estimate(cat):
    gpu = cat.resolve_gpu("rtx3080-laptop-16gb")
    assert needs_estimate(gpu)
    est = estimate(cat.llm("llama-3.1-8b"), gpu, Workload(quant="Q4_K_M", context_tokens=4096), cat)
    thr = est.throughput
    assert thr.prefill_tokens_per_s is not None and thr.time_to_first_token_s is not None
    assert thr.prefill_rate_estimated and "GB/s x the median FP16 TFLOPS per GB/s" in thr.prefill_rate_basis
    assert any(n.startswith("Prefill from an estimated FP16 rate: no published figure for this card") for n in thr.notes)
    p = thr.prefill_tokens_per_s
    # wider than the calibrated band of the same figure on a desktop card with a published rate
    desk = estimate(cat.llm("llama-3.1-8b"), cat.resolve_gpu("rtx3070"), Workload(quant="Q4_K_M", context_tokens=4096), cat)
    d = desk.throughput.prefill_tokens_per_s
    assert p.high / p.low > d.high / d.low * 1.2
    assert not desk.throughput.prefill_rate_estimated and desk.throughput.prefill_rate_basis is None


def test_no_reference_card_keeps_no_prefill(cat):
    """Pre-Volta NVIDIA (no tensor cores: llama.cpp's dp4a kernels) is not this rule's: no estimate."""
    m40 = cat.resolve_gpu("m40-24gb")
    assert not needs_estimate(m40)
    est = estimate(cat.llm("llama-3.1-8b"), m40, Workload(quant="Q4_K_M", context_tokens=4096), cat)
    assert est.throughput.prefill_tokens_per_s is None and not est.throughput.prefill_rate_estimated


def test_runtime_speed_notes_do_not_depend_on_an_estimated_rate(cat):
    """The runtime's speed caveats (transformers on Apple MPS runs on the llama.cpp Metal factors) come
    with every LLM speed estimate, not only with one whose FP16 rate was estimated (the M2 Max has a
    published rate: no estimate)."""
    gpu = cat.resolve_gpu("m2-max-38c-64gb")
    assert not needs_estimate(gpu)
    est = estimate(cat.llm("llama-3.1-8b"), gpu, Workload(quant="fp16", runtime="transformers", context_tokens=4096), cat)
    assert "transformers on Apple (MPS) is not calibrated; speeds use the llama.cpp Metal factors." in est.notes


def test_check_applies_the_fitted_prompt_costs_per_layer_and_routed_expert(cat):
    """llamacpp_bench_models.csv:36: DeepSeek-V2-Lite Q4_0 on an RTX 3090, -ub 256, pp512 3280.19 t/s (PR 15525
    master). estimate() (what `check` runs) must apply prefill_kernels' fitted fixed costs (moe_expert_s,
    prompt_per_layer_s) as benchmarks/accuracy.py does: without them it said about 5,400 t/s (+66%)."""
    f, _, _ = speed.prefill_factors(runtimes.get("llama.cpp"), "cuda", "quant", cat.resolve_gpu("rtx3090"))
    assert f["moe_expert_s"] > 0 and f["prompt_per_layer_s"] > 0
    w = Workload(quant="Q4_0", context_tokens=512, n_ubatch=256, depth=0)
    est = estimate(cat.llm("deepseek-v2-lite"), cat.resolve_gpu("rtx3090"), w, cat)
    assert est.throughput.prefill_tokens_per_s.value == pytest.approx(3280.19, rel=0.15)
