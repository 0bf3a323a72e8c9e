"""Qwen3-Next-80B-A3B (issue 15): the catalog entry, its parameter count and its KV + recurrent state.

Sources:
- architecture: transformers 4.57.6, models/qwen3_next/configuration_qwen3_next.py, whose Qwen3NextConfig
  docstring says its defaults "yield a similar configuration to that of Qwen3-Next-80B-A3B-Instruct". The
  llama.cpp oracle's reduced model was written from those defaults (num_hidden_layers 4, num_experts 16):
  tests/fixtures/llamacpp_oracle/configs/qwen3-next-80b-a3b.json;
- published totals: shared/reference/model_params.csv rows 'Qwen3-Next-80B-A3B-Instruct' (81,324,862,720) and
  'Qwen3-Next-80B-A3B-Thinking' (79,039,037,440), HF API safetensors.total as scraped by llmfit
  (github:AlexsJones/llmfit@5bdc9df9d8e2 llmfit-core/data/hf_models.json), both 48 layers, hidden 2048, 16 heads,
  2 KV heads, vocab 151936 (copied below);
- llama.cpp buffers: tests/fixtures/llamacpp_oracle/runs.csv, arch qwen3-next-80b-a3b (llama.cpp 0c1e57098), the
  reduced model with 3 Gated DeltaNet layers and 1 full-attention layer.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vramcalc import placement
from vramcalc.catalog import load_catalog
from vramcalc.cli import app
from vramcalc.params import count_params, mtp_params

CAT = load_catalog(include_user=False)
LLM = CAT.llm("qwen3-next-80b-a3b")
FIXTURES = Path(__file__).parent / "fixtures" / "llamacpp_oracle"
MiB = 2**20

# shared/reference/model_params.csv (model, params_exact, layers, hidden, heads, kv_heads, vocab)
INSTRUCT = ("Qwen3-Next-80B-A3B-Instruct", 81324862720, 48, 2048, 16, 2, 151936)
THINKING = ("Qwen3-Next-80B-A3B-Thinking", 79039037440, 48, 2048, 16, 2, 151936)


def test_decoder_plus_one_mtp_layer_is_the_instruct_total():
    """model_params.csv row Qwen3-Next-80B-A3B-Instruct: the HF safetensors total is the decoder (79,674,391,296,
    the same figure transformers 4.57.6 instantiates from Qwen3NextConfig()) plus one full-attention MoE MTP
    layer (the checkpoint's mtp.* tensors, which modeling_qwen3_next.py ignores on load)."""
    decoder = count_params(LLM, CAT).total
    assert LLM.published_params == INSTRUCT[1]
    assert decoder + mtp_params(LLM) == INSTRUCT[1]  # exact, well inside validate's 0.5%
    # without the MTP layer the count is 2.0% short: the published total does hold it
    assert abs(decoder / INSTRUCT[1] - 1) > 0.005


def test_thinking_total_is_not_explained_by_the_mtp_layer():
    """The Thinking row (79,039,037,440) is below the MTP-less decoder by 635,353,856 (0.80%) and 2.81% below
    decoder + MTP: outside 0.5% either way, so it is not the entry's published_params (the row's own note flags
    the disagreement)."""
    decoder = count_params(LLM, CAT).total
    assert decoder - THINKING[1] == 635_353_856
    for derived in (decoder, decoder + mtp_params(LLM)):
        assert abs(derived / THINKING[1] - 1) > 0.005


@pytest.mark.parametrize("row", [INSTRUCT, THINKING], ids=lambda r: r[0])
def test_shape_matches_the_model_params_rows(row):
    _, _, layers, hidden, heads, kv_heads, vocab = row
    assert (LLM.num_layers, LLM.hidden_size, LLM.num_heads, LLM.num_kv_heads, LLM.vocab_size) == (
        layers,
        hidden,
        heads,
        kv_heads,
        vocab,
    )
    assert f"Qwen/{row[0]}" in LLM.aliases


def test_entry_equals_the_transformers_defaults_the_oracle_model_was_made_from():
    """Every field the reduced config kept unchanged (all but num_hidden_layers and num_experts) equals the entry."""
    cfg = json.loads((FIXTURES / "configs" / "qwen3-next-80b-a3b.json").read_text(encoding="utf-8"))
    la, moe = LLM.linear_attention, LLM.moe
    assert la is not None and moe is not None
    assert cfg["transformers_version"] == "4.57.6" and cfg["model_type"] == "qwen3_next"
    assert (cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]) == (
        LLM.hidden_size,
        LLM.num_heads,
        LLM.num_kv_heads,
        LLM.head_dim,
    )
    assert (cfg["vocab_size"], cfg["tie_word_embeddings"], cfg["max_position_embeddings"]) == (
        LLM.vocab_size,
        LLM.tied_embeddings,
        LLM.max_context,
    )
    assert cfg["intermediate_size"] == LLM.intermediate_size
    assert (cfg["linear_num_key_heads"], cfg["linear_num_value_heads"]) == (la.num_key_heads, la.num_value_heads)
    assert (cfg["linear_key_head_dim"], cfg["linear_value_head_dim"]) == (la.key_head_dim, la.value_head_dim)
    assert cfg["linear_conv_kernel_dim"] == la.conv_kernel
    assert [t == "linear_attention" for t in cfg["layer_types"]] == la.pattern
    assert (cfg["num_experts_per_tok"], cfg["moe_intermediate_size"]) == (moe.experts_per_token, moe.expert_intermediate_size)
    assert cfg["shared_expert_intermediate_size"] == moe.shared_expert_intermediate_size
    assert cfg["decoder_sparse_step"] == 1 and cfg["mlp_only_layers"] == []


def _oracle_row() -> dict[str, str]:
    with (FIXTURES / "runs.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if (r["arch"], r["tool"], r["n_ctx"], r["np"], r["fa"], r["ctk"], r["ctv"]) == (
                "qwen3-next-80b-a3b",
                "llama-completion",
                "4096",
                "1",
                "on",
                "f16",
                "f16",
            ):
                return r
    raise AssertionError("no qwen3-next-80b-a3b row at 4096 cells, 1 sequence, f16, FA on in runs.csv")


def test_check_kv_is_the_oracle_buffers_scaled_to_48_layers(runner):
    """`vramcalc check qwen3-next-80b-a3b --gpu rtx4090 --ram 64 --json`: the KV figure is llama.cpp's KV buffer
    (attention layers) plus its RS buffer (linear layers). The oracle's reduced model has 1 attention and 3 linear
    layers: KV 8.00 MiB at 4096 cells, RS 6.28 MiB per sequence (placement.recurrent_state_bytes matched it within
    0.02%). Both buffers are per layer of their kind, so the full model (12 attention, 36 linear layers) holds 12x
    each. Tolerance 0.1%: runs.csv keeps MiB to 2 decimals."""
    r = runner.invoke(app, ["check", "qwen3-next-80b-a3b", "--gpu", "rtx4090", "--ram", "64", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["inputs"]["batch"] == 1 and out["memory"]["kv_cache_cells"] == 4096
    assert out["inputs"]["kv_cache"] == "f16" and out["inputs"]["flash_attention"] is True

    row = _oracle_row()
    la = LLM.linear_attention
    assert la is not None
    n_linear = sum(la.is_linear(i) for i in range(LLM.num_layers))
    assert (n_linear, LLM.num_layers - n_linear) == (36, 12)
    scale = 12  # reduced model: 3 linear + 1 attention layer -> 36 + 12
    rs = float(row["rs_mib"]) * MiB * scale
    kv = float(row["kv_mib"]) * MiB * scale
    assert placement.recurrent_state_bytes(LLM, 1) == pytest.approx(rs, rel=1e-3)
    assert out["memory"]["kv_cache_bytes"] == pytest.approx(kv + rs, rel=1e-3)
    assert any("36 of 48 layers are linear-attention" in n for n in out["notes"])
