"""Speed model v2 (issue 13): kernel ceilings, memory classes, backends, depth, parallel sequences,
MoE expert offload, image encode, transformers KV traffic.

Expected figures are published measurements (benchmarks/calibration rows, named per test), maker
figures the catalog carries, or arithmetic worked by hand from the formula's definition; never a
value the code produced.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vramcalc import placement, runtimes, speed
from vramcalc.catalog import load_catalog
from vramcalc.cli.app import app
from vramcalc.errors import InputError
from vramcalc.estimate import Workload, estimate


@pytest.fixture(scope="module")
def cat():
    return load_catalog(include_user=False)


# --- compute ceilings: what llama.cpp's kernels can reach


def test_quantized_prefill_does_not_use_the_hopper_tensor_figure(cat):
    # H100 SXM whitepaper: 989.4 dense FP16 tensor TFLOPS, 133.8 FP16 shader. cuBLAS FP16 GEMMs reach
    # the tensor figure; llama.cpp's quantized kernels get 4 x the single-rate shader figure:
    # 4 x 133.8 / 2 (Hopper's double-rate FP16 datapath) = 267.6
    h100 = cat.resolve_gpu("h100-sxm")
    assert speed.peak_tflops(h100) == pytest.approx(989.4)
    assert speed.mmq_tflops(h100) == pytest.approx(4 * 133.8 / 2)


def test_ga100_quantized_ceiling_is_half_its_fp16_tensor_rate(cat):
    # A100: 78 FP16 shader TFLOPS at 4:1 over FP32 (GA102 is 1:1); MMQ on GA100 -> 4 x 78 / 2 = 156.
    # GA102 (RTX 3090, 35.58 FP16 shader) keeps 4 x 35.58 = 142.3 for both paths.
    assert speed.mmq_tflops(cat.resolve_gpu("a100-sxm4-80gb")) == pytest.approx(4 * 78 / 2, rel=0.01)
    g = cat.resolve_gpu("rtx3090")
    assert speed.mmq_tflops(g) == speed.peak_tflops(g) == pytest.approx(4 * 35.58)


def test_rdna3_ceiling_is_half_the_dual_issue_figure(cat):
    # Radeon 8060S: 59.4 TFLOPS counts dual issue; measured FP16 GEMMs 30-32 TFLOPS (gpu_specs.csv row)
    strix = cat.resolve_gpu("strix-halo-128gb")
    assert speed.peak_tflops(strix) == pytest.approx(59.4 / 2)
    assert 29 <= speed.peak_tflops(strix) <= 33


def test_memory_class_from_the_catalog(cat):
    assert speed.memory_class(cat.resolve_gpu("h100-sxm")) == "hbm"
    assert speed.memory_class(cat.resolve_gpu("rtx4090")) == "gddr"
    assert speed.memory_class(cat.resolve_gpu("m2-max-30c-64gb")) == "lpddr"


# --- the calibration's structure: properties of backends, memory classes, kernels and eras


def test_calibration_has_no_per_gpu_keys(cat):
    cal = speed.calibration()
    gpu_ids = set(cat.ids("gpus"))
    keys = set(cal["decode"]["llama.cpp"]) | set(cal["prefill"]["llama.cpp"]) | set(cal["decode_bandwidth"]["llama.cpp"])
    assert not keys & gpu_ids
    # memory classes, and the (vendor, backend) kernel groups (Intel under upstream Vulkan/SYCL: test_speed_intel.py)
    assert set(cal["decode_bandwidth"]["llama.cpp"]) <= {"hbm", "gddr", "lpddr", *speed.DECODE_BANDWIDTH_GROUPS.values()}
    # efficiencies are fractions of a peak: none above 1
    for f in cal["decode_bandwidth"]["llama.cpp"].values():
        assert 0 < f["bandwidth_efficiency"] <= 1
    for f in cal["prefill"]["llama.cpp"].values():
        assert 0 < f["compute_efficiency"] <= 1
    # the old-build per-layer cost is recorded per backend and not used for predictions
    assert "before_2024_06" in cal["decode_era"]["llama.cpp"]


# --- backends


def test_backend_defaults_per_vendor_and_is_shown(cat):
    llm = cat.llm("llama-3.1-8b")
    for gid, want in (("rtx3090", "cuda"), ("rx7900xtx", "rocm"), ("m2-max-30c-64gb", "metal"), ("arc-a770-16gb", "sycl")):
        est = estimate(llm, cat.resolve_gpu(gid), Workload(quant="Q4_K_M"), cat)
        assert est.throughput.backend == want
        assert est.to_json()["throughput"]["backend"] == want


def test_vulkan_uses_its_own_factors(cat):
    llm, gpu = cat.llm("llama-3.1-8b"), cat.resolve_gpu("rx7900xtx")
    rocm = estimate(llm, gpu, Workload(quant="Q4_K_M"), cat).throughput
    vk = estimate(llm, gpu, Workload(quant="Q4_K_M", backend="vulkan"), cat).throughput
    assert "vulkan" in vk.decode_tokens_per_s.basis.factors and "rocm" in rocm.decode_tokens_per_s.basis.factors
    assert "vulkan" in vk.prefill_tokens_per_s.basis.factors
    assert vk.decode_tokens_per_s.value != rocm.decode_tokens_per_s.value


def test_backend_that_cannot_run_on_the_vendor_is_an_input_error(cat):
    with pytest.raises(InputError):
        estimate(cat.llm("llama-3.1-8b"), cat.resolve_gpu("rtx4090"), Workload(backend="metal"), cat)
    with pytest.raises(InputError):
        Workload(backend="opencl")
    # transformers runs on PyTorch's device: a llama.cpp backend is a usage error, not silently ignored
    with pytest.raises(InputError):
        estimate(cat.llm("llama-3.1-8b"), cat.resolve_gpu("rtx4090"), Workload(runtime="transformers", backend="vulkan"), cat)


def test_cli_backend_and_depth_options():
    runner = CliRunner()
    r = runner.invoke(app, ["check", "llama-3.1-8b", "--gpu", "rtx3090", "--backend", "vulkan", "--depth", "4096", "--json"])
    assert r.exit_code == 0, r.output
    thr = json.loads(r.output)["throughput"]
    assert thr["backend"] == "vulkan" and thr["depth_tokens"] == 4096
    r = runner.invoke(app, ["check", "llama-3.1-8b", "--gpu", "rtx3090", "--backend", "metal"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = runner.invoke(app, ["check", "llama-3.1-8b", "--gpu", "rtx3090", "--depth", "-1"])
    assert r.exit_code == 2


def test_cpu_backend_decodes_from_ram_and_gives_no_prefill(cat):
    est = estimate(cat.llm("llama-3.2-1b"), cat.resolve_gpu("rtx3090"), Workload(backend="cpu", ram_bandwidth_gbs=89.6), cat)
    thr = est.throughput
    assert thr.backend == "cpu" and thr.prefill_tokens_per_s is None
    assert thr.decode_tokens_per_s.basis.bandwidth_gbs == pytest.approx(89.6)


# --- depth (llama-bench tg / pp @ d)


def test_decode_at_depth_follows_the_published_slowdown(cat):
    # llamacpp_bench_models.csv:138/140 (PR 26284, RX 7900 XTX, ROCm, llama 8B Q4_K_M): tg64 105.75,
    # tg64 @ d4096 98.67 t/s: 0.933 of the empty-cache speed
    llm, gpu = cat.llm("llama-3.1-8b"), cat.resolve_gpu("rx7900xtx")
    d0 = estimate(llm, gpu, Workload(quant="Q4_K_M", depth=32), cat).throughput.decode_tokens_per_s.value
    d4k = estimate(llm, gpu, Workload(quant="Q4_K_M", depth=4096 + 32), cat).throughput.decode_tokens_per_s.value
    assert d4k / d0 == pytest.approx(98.67 / 105.75, abs=0.03)


def test_prefill_at_depth_is_a_512_token_prompt_after_the_cache(cat):
    # llamacpp_bench_models.csv:134/136: pp2048 3189 t/s, pp2048 @ d4096 2678 t/s (0.84): deeper is slower
    llm, gpu = cat.llm("llama-3.1-8b"), cat.resolve_gpu("rx7900xtx")
    shallow = estimate(llm, gpu, Workload(quant="Q4_K_M", depth=0), cat).throughput
    deep = estimate(llm, gpu, Workload(quant="Q4_K_M", depth=16384, context_tokens=32768), cat).throughput
    assert deep.prefill_tokens_per_s.value < shallow.prefill_tokens_per_s.value
    # pp512 @ d: the FLOPs are those of 512 tokens, the attention over 16384 + 512 keys
    # Llama 3.1 8B (config.json / model_params.csv): 8,030,261,248 parameters, of which 2 x 525,336,576 are the
    # embedding and the head (128,256 x 4,096) and 266,240 norm weights; 2 FLOP per weight and token for the 512
    # tokens' matmuls, the head once (the last token), and QK^T + PV over the 4,096-wide heads for 32 layers:
    # 4 x 4,096 x 8,519,936 causal (query, key) pairs of 512 queries after 16,384 cached keys
    want = 2 * (8_030_261_248 - 2 * 525_336_576 - 266_240) * 512 + 2 * 525_336_576 + 32 * 4 * 4096 * 8_519_936
    assert want == 11_614_776_459_264
    assert deep.prefill_tokens_per_s.basis.flops == pytest.approx(want, rel=1e-6)
    # time to first token is still the whole context
    assert deep.time_to_first_token_s.value > 32768 / shallow.prefill_tokens_per_s.value * 0.9


# --- parallel sequences


def test_parallel_sequences_aggregate_decode(cat):
    llm, gpu = cat.llm("llama-3.1-8b"), cat.resolve_gpu("rtx4090")
    one = estimate(llm, gpu, Workload(quant="Q4_K_M", context_tokens=2048), cat).throughput
    four = estimate(llm, gpu, Workload(quant="Q4_K_M", context_tokens=2048, batch=4), cat).throughput
    assert one.decode_aggregate_tokens_per_s is None
    agg = four.decode_aggregate_tokens_per_s.value
    # the weights are read once per step for all four: more than one sequence, less than 4x
    assert one.decode_tokens_per_s.value < agg < 4 * one.decode_tokens_per_s.value
    assert agg == pytest.approx(4 * four.decode_tokens_per_s.value, rel=1e-3)


# --- MoE: expert bytes from RAM plus the rest on the GPU


def test_split_decode_time_adds_ram_expert_bytes_and_gpu_bytes():
    # constructed: 2 GB of experts read per token from 80 GB/s RAM at efficiency 0.5, 1 GB of the rest
    # from 1000 GB/s at 0.8, 48 layers on each side at 20 us (GPU) and 30 us (CPU):
    # 2e9/(0.5*80e9) + 48*30e-6 + 1e9/(0.8*1000e9) + 48*20e-6 = 0.05 + 0.00144 + 0.00125 + 0.00096
    gpu = speed.DevicePart(
        bytes=1e9, layers=48, bandwidth_gbs=1000, factors={"bandwidth_efficiency": 0.8, "per_layer_s": 20e-6}, key="g", calibrated=True
    )
    ram = speed.DevicePart(
        bytes=2e9, layers=48, bandwidth_gbs=80, factors={"bandwidth_efficiency": 0.5, "per_layer_s": 30e-6}, key="c", calibrated=False
    )
    assert speed.split_decode_time([gpu, ram]) == pytest.approx(0.05 + 0.00144 + 0.00125 + 0.00096)
    # more experts in RAM -> slower; nothing in RAM -> the GPU part alone
    assert speed.split_decode_time([gpu]) == pytest.approx(0.00125 + 0.00096)


def test_moe_micro_batch_touches_experts_by_routing(cat):
    # Qwen3-30B-A3B: 128 experts, 8 per token. One token reads 8/128 of the expert bytes (decode);
    # a 512-token micro-batch touches 1 - (1 - 8/128)^512 ~ all of them
    llm = cat.llm("qwen3-30b-a3b")
    lb = placement.llm_bytes(llm, runtimes.get("llama.cpp"), "Q4_K_M")
    idx = range(llm.num_layers)
    assert speed.ubatch_weight_bytes(llm, lb, idx, 1) == pytest.approx(sum(lb.layer_read), rel=1e-9)
    assert speed.ubatch_weight_bytes(llm, lb, idx, 512) == pytest.approx(sum(lb.layer_stored), rel=1e-6)
    k = 8 / 128
    experts = (sum(lb.layer_stored) - sum(lb.layer_read)) / (1 - k)
    want = sum(lb.layer_stored) - experts * (1 - k) ** 4
    assert speed.ubatch_weight_bytes(llm, lb, idx, 4) == pytest.approx(want, rel=1e-9)


def test_moe_expert_flops_are_the_routed_share(cat):
    # Mixtral 8x7B: 2 of 8 experts per token; the expert share of the per-token FLOPs is most of them
    llm = cat.llm("mixtral-8x7b")
    lb = placement.llm_bytes(llm, runtimes.get("llama.cpp"), "Q4_K_M")
    dense, experts, attn = speed.prefill_flops_parts(llm, lb, 100)
    # config.json: 32 layers, hidden 4,096, expert FFN 14,336 (gate, up, down), 2 experts per token
    assert experts == pytest.approx(2 * (2 * 32 * 3 * 4096 * 14336) * 100)
    assert 0.5 < experts / (dense + experts) < 1
    assert dense + experts + attn == pytest.approx(speed.prefill_flops(llm, lb, 100), abs=1)


# --- VLM: image tokens and encode seconds in the JSON


def test_vlm_json_has_image_tokens_and_encode_seconds(cat):
    est = estimate(cat.get("vlms", "qwen2.5-vl-3b"), cat.resolve_gpu("rtx4070-laptop"), Workload(images=1, image_size=(980, 728)), cat)
    thr = est.to_json()["throughput"]
    # 980 x 728 at 28 px per token (patch 14 x merge 2): 35 x 26 = 910 tokens
    assert thr["image_tokens_per_image"] == 910
    assert thr["image_encode_s"]["value"] > 0
    assert "encode.llama.cpp" in thr["image_encode_s"]["basis"]["factors"]
    # time to first token = image encode + prefill of the context
    assert thr["time_to_first_token_s"]["value"] > thr["image_encode_s"]["value"]


# --- transformers: KV traffic per decoded token


def test_transformers_kv_traffic_counts_cache_copy_and_repeat_kv(cat):
    # Qwen2-7B: 28 query heads, 4 KV heads. Per token: 1 (attention read) + 2 (DynamicCache torch.cat
    # read + write) + 2 x 28/4 (repeat_kv write + read) = 17 cache sizes
    rt = runtimes.get("transformers")
    assert rt.decode_kv_traffic(cat.llm("qwen2-7b")) == pytest.approx(3 + 2 * 28 / 4)


def test_transformers_long_prompt_slowdown(cat):
    # transformers_peak_mem.csv:34/46 (Qwen2-7B-Instruct BF16, A100 80GB): 37.97 t/s after a 1-token prompt,
    # 17.49 t/s after 30720 tokens (2048 generated): 0.46 of it. The KV read alone predicted ~0.98 (the
    # old model, +112% at that row); with the cache copy and repeat_kv traffic most of the drop is there
    # (the rest, +37% at that row, is in docs/accuracy.md)
    llm, gpu = cat.llm("qwen2-7b"), cat.resolve_gpu("a100-pcie-80gb")
    w = Workload(runtime="transformers", quant="bf16")
    short = estimate(llm, gpu, w.with_(context_tokens=1 + 1024), cat).throughput.decode_tokens_per_s.value
    long = estimate(llm, gpu, w.with_(context_tokens=30720 + 1024), cat).throughput.decode_tokens_per_s.value
    assert 17.49 / 37.97 < long / short < 0.7
