"""vLLM and vision-language models (runtimes/vllm.py): the V1 profile run's encoder phase (the largest image
the processor allows, as many as the encoder budget and --limit-mm-per-prompt allow, outputs kept in the
encoder cache), the vision tower split over TP ranks, and the --limit-mm-per-prompt flag in the command."""

from __future__ import annotations

import json

import pytest

from vramcalc.catalog import load_catalog
from vramcalc.results import ServingOptions, Workload
from vramcalc.runtimes.vllm import Setup, encoder_profile, largest_image
from vramcalc.units import GiB


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def _setup(seqs: int = 1024, batched: int = 8192, max_len: int = 32768, tp: int = 1) -> Setup:
    return Setup(tp, 1, 0.9, max_len, seqs, batched, 2, "bf16", False, 80 * GiB)


def test_largest_image_per_processor(cat):
    # Qwen2.5-VL: smart_resize to max_pixels 12,845,056 (preprocessor_config.json, the catalog's source), one token per
    # 28 x 28 block: 12,845,056 / 784 = 16,384 tokens and 4 x 16,384 = 65,536 patches of 14 px; vllm_memory.csv:16 logs
    # the same worst case for a Qwen-VL model ("image 16384")
    v = cat.get("vlms", "qwen2.5-vl-7b")
    assert largest_image(v, cat.get("encoders", v.encoder)) == (16384, 1, 65536)
    # fixed-token processors: LLaVA-1.5 576 (24 x 24 patches of CLIP-L/14-336), Gemma 3 256 (pan-and-scan off)
    for model, tokens in (("llava-1.5-7b", 576), ("gemma-3-27b", 256)):
        v = cat.get("vlms", model)
        assert largest_image(v, cat.get("encoders", v.encoder))[0] == tokens


def test_encoder_phase_of_qwen25_vl_7b(cat):
    from vramcalc.vit import activation_bytes

    v = cat.get("vlms", "qwen2.5-vl-7b")
    enc, llm = cat.get("encoders", v.encoder), cat.get("llms", v.llm)
    p = encoder_profile(v, enc, llm, _setup(), None)
    assert p is not None
    # budget max(8,192, 16,384) = 16,384 tokens -> one image of the maximum size (vLLM logs "Encoder cache will be
    # initialized with a budget of 16384 tokens, and profiled with 1 image items of the maximum feature size")
    assert (p.budget, p.items) == (16384, 1)
    # its output in the encoder cache: 16,384 tokens x Qwen2.5-7B hidden 3,584 x 2 bytes (hand-derived)
    assert p.cache_bytes == 16384 * 3584 * 2 == 117_440_512
    # the encoder's activation peak is vit.activation_bytes (checked against FakeTensorMode in test_vit), not a second formula
    assert p.encoder_bytes == activation_bytes(enc, 1, 65536)
    # the profile's peak: the larger of the encoder phase and the LLM phase with the cache still held
    assert p.peak(0) == p.encoder_bytes and p.peak(10 * GiB) == 10 * GiB + p.cache_bytes


def test_qwen3_vl_cache_holds_the_deepstack_features(cat):
    # Qwen3-VL-8B: 16,384 tokens (max_pixels 16,777,216 / 32^2) x hidden 4,096 x (1 + 3 DeepStack levels) x 2 bytes
    v = cat.get("vlms", "qwen3-vl-8b")
    p = encoder_profile(v, cat.get("encoders", v.encoder), cat.get("llms", v.llm), _setup(), None)
    assert p is not None and p.tokens_per_item == 16384
    assert p.cache_bytes == 16384 * 4096 * 4 * 2


def test_limit_mm_per_prompt_bounds_the_profiled_images(cat):
    from vramcalc.estimate import estimate

    v = cat.get("vlms", "gemma-3-27b")
    enc, llm = cat.get("encoders", v.encoder), cat.get("llms", v.llm)
    # 8,192 // 256 = 32 images fill the encoder budget; 4 sequences x N images per prompt bound it below that
    assert encoder_profile(v, enc, llm, _setup(), None).items == 32  # type: ignore[union-attr]
    assert encoder_profile(v, enc, llm, _setup(seqs=4), 1).items == 4  # type: ignore[union-attr]
    assert encoder_profile(v, enc, llm, _setup(seqs=4), 2).items == 8  # type: ignore[union-attr]
    assert encoder_profile(v, enc, llm, _setup(seqs=4), 0) is None  # image=0: no image is profiled

    def peak(limit: int | None) -> int:
        opts = ServingOptions(max_num_seqs=4, mm_items=limit, max_model_len=8192)
        est = estimate(v, [cat.resolve_gpu("a100-80gb")], Workload(runtime="vllm", serving=opts), cat)
        assert est.serving is not None
        return est.serving.gpus[0].activation_bytes

    # more images per prompt, a larger encoder phase (Gemma 3's SigLIP at 896 px dominates 4 sequences' sampler)
    assert peak(0) < peak(1) < peak(2)


def test_vision_tower_split_under_tp_matches_row_4(cat):
    from vramcalc.estimate import estimate

    # vllm_memory.csv:4 (vllm-project/vllm#10034, vLLM 0.6.1, Llama-3.2-11B-Vision-Instruct on 2 x A10):
    # "Loading model weights took 10.0714 GB" per GPU (GiB, README); counted whole the tower gave 10.77 (+7%)
    est = estimate(cat.get("vlms", "llama-3.2-11b-vision"), [cat.resolve_gpu("a10")] * 2, Workload(runtime="vllm", quant="bf16"), cat)
    assert est.serving is not None
    assert est.serving.gpus[0].weights_bytes / GiB == pytest.approx(10.0714, rel=0.01)


def test_command_line_and_notes(runner):
    from vramcalc.cli import app

    args = ["check", "gemma-3-4b", "--runtime", "vllm", "--gpu", "a100-80gb", "--max-model-len", "8192", "--json"]
    r = runner.invoke(app, [*args, "--limit-mm-per-prompt", '{"image": 2}'])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["serving"]
    assert s["command"].endswith("""--limit-mm-per-prompt '{"image": 2}'""")
    assert any("Encoder profile (V1)" in n and "256 tokens" in n for n in s["notes"])
    r0 = runner.invoke(app, [*args, "--limit-mm-per-prompt", "0"])
    assert r0.exit_code == 0 and "--limit-mm-per-prompt '{\"image\": 0}'" in json.loads(r0.stdout)["serving"]["command"]
    bad = runner.invoke(app, [*args, "--limit-mm-per-prompt", "many"])
    assert bad.exit_code == 2
