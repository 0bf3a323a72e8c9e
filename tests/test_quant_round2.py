"""llama.cpp's quantization mixtures for MLA (DeepSeek-V2/V3) and Gated DeltaNet (Qwen3-Next) models,
tensor by tensor, against ``llama-quantize --dry-run`` of llama.cpp 0c1e57098.

tests/fixtures/llamacpp_oracle/dry_run_types.json holds the type each tensor got in the quantizer's
log (benchmarks/llamacpp_oracle/dry_run_types.py made it from the oracle's F16 GGUFs); runs.csv has
only the totals. The rules under test (vramcalc/quant.py) follow src/llama-quant.cpp:
the converter's split of attn_kv_b into 3-D attn_k_b / attn_v_b and of ssm_in into attn_qkv /
attn_gate, the row-size fallback (tensor_type_fallback), and the quantizer's running counters
(qs.i_attention_wv, qs.i_ffn_down).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from vramcalc.params import Tensor, llm_tensors
from vramcalc.quant import QuantContext, gguf_file_tensors, gguf_typed_tensors
from vramcalc.runtimes.llamacpp import quant_context

ROOT = Path(__file__).resolve().parents[1]
FIX = json.loads((ROOT / "tests" / "fixtures" / "llamacpp_oracle" / "dry_run_types.json").read_text())
MiB = 1024 * 1024
#: vramcalc's name -> the converter's, where only the name differs (Qwen3-Next in_proj_ba)
ALIAS = {"ssm_beta_alpha": "ssm_ba"}


def _spec(arch: str):  # noqa: ANN202
    mod = sys.modules.get("llamacpp_oracle_compare")
    if mod is None:
        s = importlib.util.spec_from_file_location("llamacpp_oracle_compare", ROOT / "benchmarks" / "llamacpp_oracle" / "compare.py")
        assert s and s.loader
        mod = importlib.util.module_from_spec(s)
        sys.modules["llamacpp_oracle_compare"] = mod
        s.loader.exec_module(mod)
    return mod.specs(arch)[0]


def _typed(arch: str, ftype: str) -> tuple[dict[str, str], int]:
    """vramcalc's type per GGUF tensor name, and the total bytes."""
    llm = _spec(arch)
    q = quant_context(llm, ftype)
    tensors = llm_tensors(llm)
    names: dict[str, str] = {}
    total = 0
    for t, parts in zip(tensors, gguf_typed_tensors(tensors, q), strict=True):
        for ft, (ttype, _, nb) in zip(gguf_file_tensors(t, q), parts, strict=True):
            name = ft.name
            for ours, theirs in ALIAS.items():
                name = name.replace(f".{ours}.", f".{theirs}.")
            names[name] = ttype
            total += nb
    return names, total


@pytest.mark.parametrize("run", sorted(FIX["runs"]))
def test_every_tensor_gets_llama_quantize_type(run):
    arch, ftype = run.split()
    rec = FIX["runs"][run]
    ours, total = _typed(arch, ftype)
    quantized = {n: t for n, t in rec["tensors"].items() if t != "F32"}
    missing = sorted(set(quantized) - set(ours))
    assert not missing, f"tensors vramcalc does not have: {missing}"
    wrong = {n: (t, ours[n]) for n, t in rec["tensors"].items() if n in ours and ours[n] != t}
    assert not wrong, f"(llama-quantize, vramcalc): {wrong}"
    # the quantizer's total ("quant size", printed to 0.01 MiB); vramcalc lacks only DeepSeek-V3's
    # 1-D exp_probs_b (n_expert F32 values per MoE layer)
    assert abs(total / MiB - rec["quant_mib"]) <= 0.006


def test_mla_kv_b_is_split_as_the_converter_does():
    """conversion/deepseek.py: kv_b_proj -> k_b [n_head, qk_nope, kv_lora] (transposed) and v_b
    [n_head, v_head, kv_lora]; in ggml order (ne0 first) [qk_nope, kv_lora, n_head], [kv_lora, v_head, n_head]
    (dry-run log of deepseek-v3-narrow: attn_k_b [128, 512, 128], attn_v_b [512, 128, 128])."""
    q = QuantContext("IQ2_XXS", n_layers=2, n_expert=8, mla_kv_b=(128, 128))
    k_b, v_b = gguf_file_tensors(Tensor("blk.0.attn_kv_b.weight", (512, 128 * 256), 0), q)
    assert (k_b.name, k_b.shape, v_b.name, v_b.shape) == (
        "blk.0.attn_k_b.weight",
        (128, 512, 128),
        "blk.0.attn_v_b.weight",
        (512, 128, 128),
    )
    # no category rule matches either; the 128-wide rows of attn_k_b fall back from IQ2_XXS to IQ4_NL
    # ("ncols 128 not divisible by 256 ... falling back to iq4_nl" in the log)
    assert [p[0] for p in gguf_typed_tensors([Tensor("blk.0.attn_kv_b.weight", (512, 128 * 256), 0)], q)[0]] == ["IQ4_NL", "IQ2_XXS"]
    # MXFP4_MOE gives every 3-D tensor with ne[2] > 1 MXFP4, MLA's included (llama_tensor_get_type_impl)
    mx = QuantContext("MXFP4_MOE", n_layers=2, n_expert=8, mla_kv_b=(128, 128))
    assert [p[0] for p in gguf_typed_tensors([Tensor("blk.0.attn_kv_b.weight", (512, 128 * 256), 0)], mx)[0]] == ["MXFP4", "MXFP4"]


def test_iq12_ffn_down_counts_tensors_not_layers():
    """The IQ1/IQ2 branch bumps ffn_down while ``qs.i_ffn_down < qs.n_ffn_down/8`` with a counter
    incremented per ffn_down* tensor (ffn_down, ffn_down_exps, ffn_down_shexp) and n_ffn_down = the
    layer count (llama-quant.cpp llama_tensor_get_type_impl, init_quantize_state_counters): with a
    dense first layer and shared experts, 16 layers bump only 2 tensors (layer 0's ffn_down and layer
    1's ffn_down_exps), not layers 0-1 entirely."""
    q = QuantContext("IQ2_XXS", n_layers=16, n_expert=16)
    ts = [Tensor("blk.0.ffn_down.weight", (1024, 512), 0)]
    for i in range(1, 16):
        ts += [Tensor(f"blk.{i}.ffn_down_exps.weight", (256, 512, 16), i), Tensor(f"blk.{i}.ffn_down_shexp.weight", (256, 512), i)]
    types = [parts[0][0] for parts in gguf_typed_tensors(ts, q)]
    assert types[:4] == ["Q2_K", "Q2_K", "IQ2_XXS", "IQ2_XXS"]
    assert set(types[4:]) == {"IQ2_XXS"}


def test_attn_v_counter_skips_linear_attention_layers():
    """Qwen3-Next Q3_K_M: the attn_v rule ``qs.i_attention_wv < 2 ? Q5_K : Q4_K`` counts attn_v-like
    tensors (the linear layers' attn_qkv and the full-attention layers' attn_v) in the loader's order
    (llama-model-loader.h weight_name_comparer: by block, then by name); the recorded log agrees."""
    rec = FIX["runs"]["qwen3-next-80b-a3b Q3_K_M"]["tensors"]
    assert [rec[f"blk.{i}.attn_qkv.weight"] for i in range(3)] + [rec["blk.3.attn_v.weight"]] == ["Q5_K", "Q5_K", "Q4_K", "Q4_K"]
    ours, _ = _typed("qwen3-next-80b-a3b", "Q3_K_M")
    assert [ours[f"blk.{i}.attn_qkv.weight"] for i in range(3)] + [ours["blk.3.attn_v.weight"]] == ["Q5_K", "Q5_K", "Q4_K", "Q4_K"]
    assert ours["blk.0.ssm_conv1d.weight"] == rec["blk.0.ssm_conv1d.weight"] == "F32"  # never quantized


def test_non_weight_tensors_stay_f32():
    """gpt-oss's 2-D expert biases [n_ff, n_expert]: the converter writes every tensor whose name does not
    end in ".weight" in F32 and the quantizer only touches names ending in "weight"
    (tensor_allows_quantization); dry-run of the oracle's gpt-oss-20b as MXFP4_MOE logs
    ``blk.0.ffn_down_exps.bias - [2880, 32, 1, 1], type = f32`` (no conversion)."""
    q = QuantContext("MXFP4_MOE", n_layers=24, n_expert=32)
    (parts,) = gguf_typed_tensors([Tensor("blk.0.ffn_down_exps.bias", (2880, 32), 0)], q)
    assert parts == (("F32", 2880 * 32, 4 * 2880 * 32),)


def test_category_is_a_name_match():
    """tensor_get_category tests ``name.find("attn_v.weight")`` etc.: a cross-attention V projection
    (blk.N.cross_attn_v.weight) gets the attn_v rules, attn_q_a / attn_kv_a_mqa none (Q3_K_M: attn_v-like
    tensors are Q5_K for the first two, ``qs.i_attention_wv < 2``)."""
    q = QuantContext("Q3_K_M", n_layers=8)
    ts = [Tensor("blk.0.cross_attn_v.weight", (4096, 1024), 0), Tensor("blk.0.attn_q_a.weight", (4096, 1536), 0)]
    assert [p[0][0] for p in gguf_typed_tensors(ts, q)] == ["Q5_K", "Q3_K"]
