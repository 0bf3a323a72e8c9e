"""Llama 3.2 Vision: the gated cross-attention layers are language-model layers.

Architecture: shared/reference/hf_configs/vlm/Llama-3.2-11B-Vision.json (text_config: 40 decoder layers,
cross_attention_layers [3, 8, 13, 18, 23, 28, 33, 38], hidden 4096, 32 heads, 8 KV heads, MLP 14336).
They are quantized with the LLM and read for every decoded token; before, they were an f16 "projector".
"""

from __future__ import annotations

from vramcalc import placement, runtimes
from vramcalc.catalog import load_catalog
from vramcalc.estimate import Workload, estimate
from vramcalc.params import count_params, llm_tensors, vlm_parts

CAT = load_catalog(include_user=False)
XATTN = [3, 8, 13, 18, 23, 28, 33, 38]


def test_cross_attention_layers_are_llm_layers_not_projector():
    vlm = CAT.get("vlms", "llama-3.2-11b-vision")
    parts = vlm_parts(vlm, CAT)
    assert parts.llm.num_layers == 40 and parts.llm.cross_attention_layers == XATTN
    names = {t.name for t in llm_tensors(parts.llm)}
    assert "blk.3.cross_attn_k.weight" in names and "blk.3.attn_k.weight" not in names
    assert "blk.4.attn_k.weight" in names
    # the projector is the 7680 -> 4096 vision projection (with bias) only
    assert sum(t.numel for t in parts.projector) == 7680 * 4096 + 4096
    # one cross-attention layer: q, o 4096x4096; k, v 4096x1024; q/k norms 128; 2 gates; 2 norms; MLP 3 x 4096 x 14336
    per_layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 2 * 128 + 2 + 2 * 4096 + 3 * 4096 * 14336
    assert count_params(parts.llm).llm == count_params(CAT.llm("llama-3.1-8b")).llm + 8 * per_layer


def test_total_matches_the_published_count():
    """HF safetensors total of meta-llama/Llama-3.2-11B-Vision, 10,670,220,835 (the entry's published_params;
    the 32,768 difference = 8 extra embedding rows x 4096, documented in the entry)."""
    vlm = CAT.get("vlms", "llama-3.2-11b-vision")
    assert vlm.published_params - count_params(vlm, CAT).total == 8 * 4096


def test_cross_layers_hold_no_self_attention_kv_and_are_read_during_decode():
    llm = CAT.llm("llama-3.2-11b-vision-text")
    rt = runtimes.get("llama.cpp")
    kv, cells = placement.kv_cache_bytes(llm, 4096, Workload(), rt)
    assert kv == cells * 32 * 2 * (8 * 128) * 2  # 32 self-attention layers, f16 K and V
    lb = placement.llm_bytes(llm, rt, "Q4_K_M")
    assert all(lb.kv_elem_bytes_per_cell[i] == 0 for i in XATTN)
    assert all(lb.layer_read[i] > 0 for i in XATTN)  # decode reads them


def test_weights_are_quantized_with_the_llm():
    vlm = CAT.get("vlms", "llama-3.2-11b-vision")
    est = estimate(vlm, CAT.resolve_gpu("rtx3060-12gb"), Workload(quant="Q4_K_M", headless=True), CAT)
    w = est.memory.weights_bytes
    # f16 projector of 31.5M parameters, not 1.78B; the LLM at ~4.9 bits per weight holds the cross layers
    assert w.projector < 64 * 2**20
    assert est.memory.weights_bits_per_weight < 5.5
    assert est.params.llm > 9.7e9
