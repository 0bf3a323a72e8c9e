"""Catalog 2026 (issue 15): the models and GPUs people run now, each pinned to its reference row.

Parameter counts: shared/reference/model_params.csv (row named per case; HF safetensors totals scraped by
llmfit, Keras-Hub preset metadata). GPU figures: shared/reference/gpu_specs.csv (row named per case).
"""

from __future__ import annotations

import pytest

from vramcalc import runtimes
from vramcalc.catalog import load_catalog
from vramcalc.estimate import Workload, estimate
from vramcalc.params import count_params, mtp_params

CAT = load_catalog(include_user=False)

# (catalog id, kind, model_params.csv row, published count)
PUBLISHED = [
    ("deepseek-v3", "llms", "DeepSeek-V3", 684531386000),
    ("deepseek-r1", "llms", "DeepSeek-R1", 684531386000),
    ("kimi-k2", "llms", "Kimi-K2-Instruct", 1026470731056),
    ("qwen3-coder-480b-a35b", "llms", "Qwen3-Coder-480B-A35B-Instruct", 480154875392),
    ("codellama-7b", "llms", "CodeLlama-7b-hf", 6738546688),
    ("smollm2-360m", "llms", "SmolLM2-360M", 361821120),
    ("gemma-2b", "llms", "gemma-2b (gemma 1)", 2506172416),
    ("gemma-7b", "llms", "Gemma-7B (gemma 1)", 8537680896),
    ("qwq-32b", "llms", "QwQ-32B", 32763876352),
    ("qwen2.5-coder-7b", "llms", "Qwen2.5-Coder-7B", 7615616512),
    ("qwen2.5-coder-14b", "llms", "Qwen2.5-Coder-14B", 14770033664),
    ("qwen2.5-coder-32b", "llms", "Qwen2.5-Coder-32B", 32763876352),
    ("llama-4-maverick", "vlms", "Llama-4-Maverick-17B-128E-Instruct", 401583781376),
    ("qwen3-vl-2b", "vlms", "Qwen3-VL-2B-Instruct", 2127532032),
    ("qwen3-vl-4b", "vlms", "Qwen3-VL-4B-Instruct", 4437815808),
    ("qwen3-vl-30b-a3b", "vlms", "Qwen3-VL-30B-A3B-Thinking", 31070754032),
    ("qwen3.5-27b", "vlms", "Qwen3.5-27B", 27781427952),
    # round 2: rows of model_params.csv (HF safetensors totals scraped by llmfit) for entries that had no published count
    ("internvl3-1b", "vlms", "InternVL3-1B", 938193024),
    ("internvl3-2b", "vlms", "InternVL3-2B", 2088957440),
    ("internvl3-8b", "vlms", "InternVL3-8B", 7944373760),
    ("internvl3-38b", "vlms", "InternVL3-38B", 38388164992),
    ("qwen2.5-vl-32b", "vlms", "Qwen2.5-VL-32B-Instruct", 33452718336),
    ("qwen2.5-vl-72b", "vlms", "Qwen2.5-VL-72B-Instruct", 73410777344),
    ("llava-onevision-qwen2-0.5b", "vlms", "llava-onevision-qwen2-0.5b-ov-hf", 893675552),
    ("molmo-7b-d", "vlms", "Molmo-7B-D-0924", 8021025280),
    ("kimi-vl-a3b", "vlms", "Kimi-VL-A3B-Instruct", 16407657776),
    ("paligemma-2-3b-224", "vlms", "paligemma2-3b-mix-224", 3032242416),
    ("paligemma-2-3b-448", "vlms", "paligemma2-3b-pt-448", 3033127152),
    ("paligemma-2-10b-224", "vlms", "PaliGemma2-10B-224", 9662409456),
]


@pytest.mark.parametrize(("eid", "kind", "row", "published"), PUBLISHED)
def test_derived_count_within_half_a_percent(eid, kind, row, published):
    e = CAT.get(kind, eid)
    derived = count_params(e, CAT).total + mtp_params(e if kind == "llms" else CAT.llm(e.llm))
    assert abs(derived / published - 1) < 0.005, row


def test_deepseek_v3_counts_its_mtp_layer():
    """The published 684.5B includes model.layers.61 (NextN); without it the model is ~671B."""
    llm = CAT.llm("deepseek-v3")
    assert abs(count_params(llm).llm / 684531386000 - 1) > 0.015
    assert mtp_params(llm) > 13e9


# ids a user pastes (HF repo ids in the reference configs / model_params.csv)
ALIASES = {
    "deepseek-ai/DeepSeek-V3": "deepseek-v3",
    "deepseek-ai/DeepSeek-R1-0528": "deepseek-r1",
    "moonshotai/Kimi-K2-Instruct-0905": "kimi-k2",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct": "qwen3-coder-480b-a35b",
    "MiniMaxAI/MiniMax-M2.7": "minimax-m2.7",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct": "llama-4-maverick",
    "Qwen/Qwen3.5-35B-A3B": "qwen3.5-35b-a3b",
    "Qwen/Qwen3.6-35B-A3B": "qwen3.6-35b-a3b",
    "facebook/dinov3-vitl16-pretrain-lvd1689m": "dinov3-l-16",
    "google/siglip2-so400m-patch16-384": "siglip2-so400m-16-384",
    "openai/clip-vit-base-patch32": "clip-vit-b-32",
    "codellama/CodeLlama-7b-Instruct-hf": "codellama-7b",
}


@pytest.mark.parametrize(("alias", "eid"), ALIASES.items())
def test_aliases_resolve(alias, eid):
    assert CAT.resolve_model(alias).id == eid


def test_gpt_oss_downloads_as_mxfp4():
    """gpt-oss ships its experts in MXFP4; the GGUF people download keeps them (about 12.1 GB for 20b and 63.4 GB
    for 120b, as quoted in the issue 12 text; shared/calibration/gguf_sizes.csv has no gpt-oss row)."""
    rt = runtimes.get("llama.cpp")
    for eid, file_gb in (("gpt-oss-20b", 12.1), ("gpt-oss-120b", 63.4)):
        llm = CAT.llm(eid)
        assert rt.default_precision(llm, llm) == "MXFP4_MOE"
        est = estimate(llm, CAT.resolve_gpu("h200-sxm"), Workload(headless=True))
        assert est.inputs.quant == "MXFP4_MOE"
        assert abs(est.memory.weights_bytes.llm / 1e9 / file_gb - 1) < 0.01


# (gpu id, gpu_specs.csv row, memory GB, bandwidth GB/s)
GPUS = [
    ("rtx-pro-5000-blackwell", "RTX PRO 5000 Blackwell", 48, 1344),
    ("rtx-pro-4500-blackwell", "RTX PRO 4500 Blackwell", 32, 896),
    ("rtx-pro-4000-blackwell", "RTX PRO 4000 Blackwell", 24, 672),
    ("rtx-pro-6000-blackwell-maxq", "RTX PRO 6000 Blackwell Max-Q Workstation Edition", 96, 1792),
    ("rtx5000-ada", "RTX 5000 Ada Generation", 32, 576),
    ("rtx4000-ada", "RTX 4000 Ada Generation", 20, 360),
    ("rtx4000-sff-ada", "RTX 4000 SFF Ada Generation", 20, 280),
    ("rtx4090d", "GeForce RTX 4090 D", 24, 1008),
    ("rtx3050-6gb", "GeForce RTX 3050 6 GB", 6, 168),
    ("radeon-ai-pro-r9700", "Radeon AI PRO R9700", 32, 640),
    ("radeon-pro-v620", "Radeon PRO V620", 32, 512),
    ("radeon-pro-w7800", "Radeon PRO W7800", 32, 576),
    ("jetson-orin-nano-8gb", "Jetson Orin Nano 8GB", 8, 68),
    ("jetson-orin-nano-8gb-super", "Jetson Orin Nano 8GB Super (JetPack 6.1+ clocks)", 8, 102),
    ("m5-24gb", "Apple M5", 24, 153.6),
]


@pytest.mark.parametrize(("gid", "row", "mem_gb", "bw"), GPUS)
def test_new_gpus_carry_the_csv_figures(gid, row, mem_gb, bw):
    g = CAT.resolve_gpu(gid)
    assert g.memory_bytes == mem_gb * 2**30, row
    assert g.memory_bandwidth_gbs == bw, row


# every model named in issue 15 that has a source here answers `check`
NAMED = [
    "deepseek-v3", "deepseek-r1", "kimi-k2", "minimax-m2.7", "qwen3-coder-480b-a35b", "llama-3.3-70b",
    "llama-4-maverick", "mistral-nemo-12b", "codellama-7b", "smollm2-360m", "gemma-2b", "gemma-7b", "gemma-3-1b",
    "qwen3.5-27b", "qwen3.5-35b-a3b", "qwen3.5-122b-a10b", "qwen3.5-397b-a17b", "qwen3.6-35b-a3b", "qwen3-vl-2b",
    "qwen3-vl-4b", "qwen3-vl-30b-a3b", "dinov3-b-16", "dinov3-7b-16", "siglip2-so400m-16-384", "clip-vit-b-32",
    "clip-vit-b-16", "aimv2-l-14-224", "qwq-32b", "qwen2.5-coder-32b",
]  # fmt: skip


@pytest.mark.parametrize("eid", NAMED)
def test_check_answers(eid):
    model = CAT.resolve_model(eid)
    est = estimate(model, CAT.resolve_gpu("h200-sxm"), Workload(headless=True), CAT)
    assert est.memory.total_bytes > 0
    assert est.verdict in ("fits", "tight", "offload", "no")
