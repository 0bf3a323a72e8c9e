"""Hybrid linear-attention models (Qwen3.5 / Qwen3.6: Gated DeltaNet + gated full attention).

Pinned figures (shared/reference/model_params.csv, copied here with their rows):
- 'total (vision+text)' of Qwen3.5-27B / 35B-A3B / 122B-A10B / 397B-A17B: HF safetensors totals
  (llmfit scrape of the HF API), which include the vision tower and the checkpoint's MTP layer;
- 'llm (text preset)' of Qwen3.5-27B / 35B-A3B: Keras-Hub presets, which turn out to hold the text
  model and the vision tower + merger but not the MTP layer (the arithmetic below shows it exactly).
The architecture comes from shared/reference/hf_configs/vlm/Qwen3.5-*.json (hash-verified copies).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramcalc import placement, runtimes
from vramcalc.catalog import load_catalog
from vramcalc.estimate import Workload, estimate
from vramcalc.params import count_params, llm_tensors, mtp_params
from vramcalc.readers.hf_config import model_from_hf_config

CAT = load_catalog(include_user=False)

# model_params.csv rows 'Qwen3.5-*,total (vision+text)'
HF_TOTALS = {
    "qwen3.5-27b": 27781427952,
    "qwen3.5-35b-a3b": 35951822704,
    "qwen3.5-122b-a10b": 125086497008,
    "qwen3.5-397b-a17b": 403397928944,
}
# model_params.csv rows 'Qwen3.5-*,llm (text preset)' (Keras-Hub)
KERAS_TEXT_PRESETS = {"qwen3.5-27b": 27356728560, "qwen3.5-35b-a3b": 35107181936}


@pytest.mark.parametrize(("vlm_id", "published"), HF_TOTALS.items())
def test_qwen35_totals_equal_hf_safetensors_totals(vlm_id, published):
    vlm = CAT.get("vlms", vlm_id)
    pc = count_params(vlm, CAT)
    assert pc.total + mtp_params(CAT.llm(vlm.llm)) == published


@pytest.mark.parametrize(("vlm_id", "published"), KERAS_TEXT_PRESETS.items())
def test_keras_text_preset_is_text_plus_vision_without_mtp(vlm_id, published):
    pc = count_params(CAT.get("vlms", vlm_id), CAT)
    assert pc.total == published
    assert pc.llm < published  # so the 'text preset' figure cannot pin the text model alone


def test_gated_deltanet_layer_tensors_follow_the_config():
    """Qwen3.5-35B-A3B config: 16 key heads x 128, 32 value heads x 128, conv kernel 4, hidden 2048."""
    llm = CAT.llm("qwen3.5-35b-a3b-text")
    blk0 = {t.name: t.shape for t in llm_tensors(llm) if t.name.startswith("blk.0.ssm")}
    assert blk0["blk.0.ssm_in.weight"] == (2048, 2 * 16 * 128 + 2 * 32 * 128)  # q, k, v, z
    assert blk0["blk.0.ssm_beta_alpha.weight"] == (2048, 2 * 32)
    assert blk0["blk.0.ssm_conv1d.weight"] == (4, 2 * 16 * 128 + 32 * 128)
    assert blk0["blk.0.ssm_out.weight"] == (32 * 128, 2048)
    # layer 3 is the full-attention layer: gated q (2 x 16 heads x 256), 2 KV heads of 256
    blk3 = {t.name: t.shape for t in llm_tensors(llm) if t.name.startswith("blk.3.attn_")}
    assert blk3["blk.3.attn_q.weight"] == (2048, 2 * 16 * 256)
    assert blk3["blk.3.attn_k.weight"] == (2048, 2 * 256)
    assert not any(t.name.startswith("blk.3.ssm") for t in llm_tensors(llm))


def _kv(llm, tokens, batch=1):
    return placement.kv_cache_bytes(llm, tokens, Workload(batch=batch), runtimes.get("llama.cpp"))[0]


def test_recurrent_state_is_fixed_per_sequence_and_counted():
    """30 of 40 layers are linear: each holds (kernel-1) x conv_dim + v_heads x k_dim x v_dim F32 values
    per sequence; the 10 full-attention layers hold 2 KV heads x 256 for K and V per cell (f16)."""
    llm = CAT.llm("qwen3.5-35b-a3b-text")
    state_per_seq = 30 * ((4 - 1) * (2 * 16 * 128 + 32 * 128) + 32 * 128 * 128) * 4
    kv_per_cell = 10 * 2 * (2 * 256) * 2
    assert _kv(llm, 4096) == 4096 * kv_per_cell + state_per_seq
    # the state does not grow with the context, it grows with the sequences
    assert _kv(llm, 8192) - _kv(llm, 4096) == 4096 * kv_per_cell
    assert _kv(llm, 4096, batch=2) == 2 * 4096 * kv_per_cell + 2 * state_per_seq


def test_hybrid_check_reports_state_and_splits_it_with_the_layers():
    llm = CAT.llm("qwen3.5-27b-text")
    est = estimate(llm, CAT.resolve_gpu("rtx3060-12gb"), Workload(quant="Q4_K_M", headless=True))
    assert any("recurrent state" in n for n in est.notes)
    devices = est.offload.devices if est.offload else []
    state = placement.recurrent_state_bytes(llm, 1)
    assert state == 48 * ((4 - 1) * (2 * 16 * 128 + 48 * 128) + 48 * 128 * 128) * 4
    # the layer split carries the state with the layers: the shares' KV adds up to the whole figure
    assert sum(d.kv_cache_bytes for d in devices) == est.memory.kv_cache_bytes


FIXTURES = Path(__file__).parent / "fixtures" / "reference" / "hf_configs"


@pytest.mark.parametrize(
    ("config", "entry"),
    [("vlm/Qwen3.5-35B-A3B.json", "qwen3.5-35b-a3b-text"), ("vlm/Qwen3.5-27B.json", "qwen3.5-27b-text")],
)
def test_reading_a_qwen35_config_gives_the_catalog_text_model(config, entry):
    """`check ./config.json` of a Qwen3.5 checkpoint (tests/fixtures/reference copies of the hash-verified configs)."""
    path = FIXTURES / config
    model = model_from_hf_config(json.loads(path.read_text(encoding="utf-8")), path, "x", "x").model
    cat = CAT.llm(entry)
    assert count_params(model).llm == count_params(cat).llm
    assert model.linear_attention == cat.linear_attention and model.attn_output_gate and model.mtp_layers == 1
    assert placement.recurrent_state_bytes(model, 1) == placement.recurrent_state_bytes(cat, 1)
