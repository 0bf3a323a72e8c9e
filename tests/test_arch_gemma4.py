"""Gemma 4 (31B dense, 26B-A4B MoE): sliding layers and full-attention layers of another shape.

Architecture: tests/fixtures/reference/hf_configs/vlm/gemma-4-26B-A4B-it.json (hash-verified) and
gemma-4-31B-it.nvidia-NVFP4.json (architecture only). Published totals: shared/reference/model_params.csv rows
gemma-4-31B-it (32,682,372,656) and gemma-4-26B-A4B-it (26,544,131,376), total multimodal (HF API via llmfit).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramcalc import placement, runtimes
from vramcalc.catalog import load_catalog
from vramcalc.estimate import Workload
from vramcalc.params import count_params, llm_tensors

CAT = load_catalog(include_user=False)
CFG = Path(__file__).parent / "fixtures" / "reference" / "hf_configs" / "vlm"


@pytest.mark.parametrize(("vlm_id", "published", "hidden"), [("gemma-4-31b", 32682372656, 5376), ("gemma-4-26b-a4b", 26544131376, 2816)])
def test_published_total_is_derived_plus_one_embedding_sized_tensor(vlm_id, published, hidden):
    """Exact for both sizes: the checkpoint stores one more vocab x hidden tensor than the tied config explains."""
    assert published - count_params(CAT.get("vlms", vlm_id), CAT).total == 262144 * hidden


@pytest.mark.parametrize(
    ("llm_id", "config"), [("gemma-4-31b-text", "gemma-4-31B-it.nvidia-NVFP4.json"), ("gemma-4-26b-a4b-text", "gemma-4-26B-A4B-it.json")]
)
def test_global_layers_follow_the_config(llm_id, config):
    text = json.loads((CFG / config).read_text(encoding="utf-8"))["text_config"]
    llm = CAT.llm(llm_id)
    full = [i for i, t in enumerate(text["layer_types"]) if t == "full_attention"]
    assert [i for i in range(llm.num_layers) if not llm.sliding_window.is_sliding(i)] == full
    shapes = {t.name: t.shape for t in llm_tensors(llm)}
    g, s = full[0], 0
    h, nq = text["hidden_size"], text["num_attention_heads"]
    assert shapes[f"blk.{g}.attn_k.weight"] == (h, text["num_global_key_value_heads"] * text["global_head_dim"])
    assert f"blk.{g}.attn_v.weight" not in shapes  # attention_k_eq_v
    assert shapes[f"blk.{g}.attn_q.weight"] == (h, nq * text["global_head_dim"])
    assert shapes[f"blk.{s}.attn_v.weight"] == (h, text["num_key_value_heads"] * text["head_dim"])


def test_kv_cache_counts_each_layer_kind_with_its_shape():
    """31B at 8192 tokens, f16: 50 sliding layers hold the window (llama.cpp: pad(1024 + 512, 256) = 1536 cells) of
    16 KV heads x 256; 10 full-attention layers hold every cell of 4 KV heads x 512."""
    llm = CAT.llm("gemma-4-31b-text")
    kv, cells = placement.kv_cache_bytes(llm, 8192, Workload(), runtimes.get("llama.cpp"))
    assert cells == 8192
    assert kv == 50 * 1536 * 2 * 16 * 256 * 2 + 10 * 8192 * 2 * 4 * 512 * 2
