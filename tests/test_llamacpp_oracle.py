"""vramcalc's llama.cpp accounting against real llama.cpp runs.

tests/fixtures/llamacpp_oracle/runs.csv is a recording of llama.cpp 0c1e57098 (the llama-cpp-python
0.3.36 sdist's vendored copy, CPU build) loading random-weight GGUFs made from published configs
(benchmarks/llamacpp_oracle/: generate.py, run.py; README.md has the commands). Each row has the
buffers llama.cpp printed at ``-lv 4``; the model spec comes from the same reduced config.json
(tests/fixtures/llamacpp_oracle/configs/), and benchmarks/llamacpp_oracle/compare.py puts vramcalc's
figure next to llama.cpp's. Tolerances (issue 9): weights and KV 0.5%, LLM compute buffer 5%, clip
compute buffer 10%, image tokens exact.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("llamacpp_oracle_compare", ROOT / "benchmarks" / "llamacpp_oracle" / "compare.py")
assert _spec and _spec.loader
compare = importlib.util.module_from_spec(_spec)
sys.modules["llamacpp_oracle_compare"] = compare
_spec.loader.exec_module(compare)

ROWS = compare.load_runs()
CHECKS = compare.all_checks(ROWS)
MiB = 1024 * 1024


def _rows(**kw: str) -> list[dict[str, str]]:
    return [r for r in ROWS if all(r[k] == v for k, v in kw.items())]


def _check(run: dict[str, str], what: str):  # noqa: ANN202
    return next(c for c in compare.predict(run) if c.what == what)


# --------------------------------------------------------------------------------------------
# Coverage of the recording


def test_recording_covers_the_architectures_and_settings():
    archs = {r["arch"] for r in ROWS} - set(compare.UNSUPPORTED)
    assert len(ROWS) >= 300, len(ROWS)
    assert len(archs) >= 12, sorted(archs)
    fam = {a: compare.specs(a)[0] for a in archs}
    assert any(s.moe for s in fam.values()), "an MoE"
    assert any(s.sliding_window for s in fam.values()), "a sliding-window model"
    assert any(s.mla for s in fam.values()), "an MLA model"
    assert any(s.linear_attention for s in fam.values()), "a hybrid linear-attention model"
    assert any(s.moe and s.moe.num_experts == 8 and s.moe.experts_per_token == 2 for s in fam.values()), "Mixtral-style MoE"
    vlms = {r["arch"] for r in ROWS if r["tool"] == "llama-mtmd-cli"} - set(compare.UNSUPPORTED)
    assert len(vlms) >= 4, sorted(vlms)
    # every setting the issue names was varied
    for col in ("quant", "n_ctx", "ub", "fa", "ctk", "ctv", "np", "kvu", "image_w", "warmup"):
        assert len({r[col] for r in ROWS if r[col] != ""}) >= 2, col
    assert any(r["ctk"] != r["ctv"] for r in ROWS), "separate K and V types"
    assert {r["llama_cpp_commit"] for r in ROWS} == {"0c1e57098"}
    assert all(r["command"] and r["date"] for r in ROWS)


# --------------------------------------------------------------------------------------------
# Every recorded run, every quantity


@pytest.mark.parametrize("what", list(compare.TOLERANCE))
def test_every_run_within_tolerance(what):
    checks = [c for c in CHECKS if c.what == what]
    assert checks, f"no recorded {what}"
    bad = [c for c in checks if not c.ok and not compare.known_gap(c)]
    msg = "\n".join(
        f"run {c.run} {c.arch} {c.settings}: {c.error:+.2%} (llama.cpp {c.measured / MiB:.2f} MiB, vramcalc {c.predicted / MiB:.2f})"
        for c in bad[:20]
    )
    assert not bad, f"{len(bad)} of {len(checks)} outside {compare.TOLERANCE[what]:.1%}:\n{msg}"


def test_known_gaps_are_still_gaps():
    """A run vramcalc cannot express is listed with its reason (compare.KNOWN_GAPS); once fixed, the entry must go."""
    for arch, what, part, why in compare.KNOWN_GAPS:
        assert why
        cs = [c for c in CHECKS if c.arch == arch and c.what == what and part in c.settings]
        assert cs, (arch, what, part)
        assert any(not c.ok for c in cs), f"{arch} {what} {part}: within tolerance now, drop it from KNOWN_GAPS"


def test_docs_are_current():
    rows = compare.load_runs()
    assert (ROOT / "docs" / "accuracy_llamacpp.md").read_text() == compare.markdown(compare.all_checks(rows), rows)


def test_counts():
    """One weights check per text run, one clip check per vision run; unsupported architectures are listed, not compared."""
    compared = [r for r in ROWS if r["arch"] not in compare.UNSUPPORTED]
    n = Counter(c.what for c in CHECKS)
    assert n["model"] == sum(r["tool"] != "llama-mtmd-cli" for r in compared)
    assert n["clip_compute"] == sum(r["tool"] == "llama-mtmd-cli" for r in compared)
    for arch, why in compare.UNSUPPORTED.items():
        assert why and any(r["arch"] == arch for r in ROWS)


# --------------------------------------------------------------------------------------------
# Each fix of issue 9, pinned to the recorded runs that showed it


def _within(rows: list[dict[str, str]], what: str) -> list:
    rows = [r for r in rows if r["arch"] not in compare.UNSUPPORTED]
    assert rows, "no recorded run of this kind"
    cs = [_check(r, what) for r in rows]
    bad = [(c.run, f"{c.error:+.2%}") for c in cs if not c.ok and not compare.known_gap(c)]  # gaps: listed in compare.py
    assert not bad, bad
    assert any(c.ok for c in cs)
    return cs


def test_kv_padding_is_256_cells_with_and_without_flash_attention():
    """llama-context.cpp (0c1e57098): n_ctx = GGML_PAD(n_ctx, 256) whatever -fa; -c 1000 -> 1024 cells."""
    rows = [r for r in ROWS if r["n_ctx"] == "1000" and r["tool"] == "llama-completion"]
    assert {r["fa"] for r in rows} == {"on", "off"}
    for r in rows:
        assert int(r["kv_cells"]) == 1024, r["command"]
    _within(rows, "kv")


def test_sliding_window_keeps_one_window_per_stream():
    """Non-unified KV (llama.cpp's default with -np > 1): each sequence's stream keeps its own window
    (llama-kv-cache-iswa.cpp: pad(min(n_ctx_seq, n_swa * (unified ? n_seq : 1) + n_ubatch), 256) per stream)."""
    from vramcalc.runtimes.llamacpp import kv_layout

    rows = [r for r in ROWS if r["np"] not in ("", "1") and r["kv_swa_cells"] and r["tool"] == "llama-completion"]
    cs = _within(rows, "kv")
    assert {c.arch for c in cs} >= {"gemma-3-1b"}
    for r in rows:
        llm = compare.specs(r["arch"])[0]
        lay = kv_layout(llm, int(r["n_ctx"]), int(r["np"]), False, int(r["ub"]))
        assert lay.stream_swa_cells == int(r["kv_swa_cells"]) and lay.n_stream == int(r["kv_streams"])


def test_unified_kv_is_one_stream():
    rows = [r for r in ROWS if r["kvu"] == "1"]
    assert all(r["kv_streams"] == "1" for r in rows)
    _within(rows, "kv")
    _within(rows, "compute")


def test_kq_is_sized_per_stream_without_flash_attention():
    """-fa off, 4 non-unified sequences: the KQ scores cover one stream's cells (was +283%)."""
    rows = [r for r in ROWS if r["np"] == "4" and r["kvu"] == "0" and r["fa"] == "off"]
    _within(rows, "compute")


def test_flash_attention_compute_with_a_32k_vocabulary():
    """Llama-2 / Mistral (32k vocabulary) with flash attention: was 30-52% low."""
    rows = [r for r in ROWS if r["arch"] in ("llama-2-7b", "mistral-7b-v0.1") and r["fa"] == "on" and r["tool"] == "llama-completion"]
    _within(rows, "compute")


def test_cpu_compute_buffer_holds_one_more_ubatch_hidden_tensor_than_cuda():
    """A CUDA build moves the token-embedding rows (n_ubatch x n_embd f32) to a CUDA_Host buffer
    (shared/reference/llamacpp_oracle_notes.md: Llama-3.1-8B 266.5 MiB on CPU, 258.5 MiB published for CUDA)."""
    from vramcalc.runtimes.llamacpp import compute_buffer_bytes

    llm = compare.specs("llama-3.1-8b")[0]
    cpu = compute_buffer_bytes(llm, 4096, 512, True, backend="cpu")
    cuda = compute_buffer_bytes(llm, 4096, 512, True)
    assert cpu - cuda == 512 * 4096 * 4
    assert abs(cuda / (258.5 * MiB) - 1) < 0.01
    r = next(r for r in _rows(arch="llama-3.1-8b", n_ctx="4096", fa="on", ub="512", np="1", ctk="f16", ctv="f16", tool="llama-completion"))
    assert abs(cpu / (float(r["compute_mib"]) * MiB) - 1) < 0.01


def test_tied_embeddings_whole_file_on_the_gpu():
    """llama.cpp loads a tied token_embd twice: on the host (input) and as the output matrix on the
    GPU (TENSOR_DUPLICATED), so nothing of the file leaves the GPU total."""
    from vramcalc.placement import llm_bytes
    from vramcalc.runtimes.llamacpp import LlamaCpp

    for arch in ("qwen2.5-0.5b", "llama-3.2-1b", "qwen3-0.6b", "gemma-3-1b"):
        llm = compare.specs(arch)[0]
        assert llm.tied_embeddings, arch
        wb = LlamaCpp().llm_weights(llm, "Q4_K_M")
        assert wb.host_bytes == 0
        lb = llm_bytes(llm, LlamaCpp(), "Q4_K_M")
        assert lb.output_stored >= lb.embd  # the copy is placed with the output layer
        _within([r for r in _rows(arch=arch) if r["tool"] != "llama-mtmd-cli"], "model")


@pytest.mark.parametrize(
    "quant",
    [
        "Q3_K_M",
        "Q3_K_L",
        "Q3_K_S",
        "Q2_K",
        "Q2_K_S",
        "IQ4_XS",
        "IQ3_XXS",
        "IQ3_S",
        "IQ3_M",
        "IQ2_M",
        "IQ2_S",
        "IQ2_XS",
        "IQ2_XXS",
        "IQ1_S",
        "IQ1_M",
    ],
)
def test_quantization_mixtures(quant):
    """Every file type's per-tensor rules (llama-quant.cpp llama_tensor_get_type_impl), against the
    quantizer itself (llama-quantize, a real file or --dry-run) over every architecture recorded."""
    rows = [r for r in ROWS if r["quant"] == quant and r["tool"] != "llama-mtmd-cli"]
    cs = _within(rows, "model")
    assert len({c.arch for c in cs}) >= 5


def test_clip_buffer_is_reserved_at_the_warm_up_image():
    """With warm-up (the default) mtmd reserves the clip buffer for its warm-up image (Qwen-VL: 46 x 46
    merged tokens = 1288 x 1288 px), whatever image follows; --no-warmup reserves for the image."""
    from vramcalc.runtimes.llamacpp import clip_compute_bytes

    for arch in ("qwen2-vl-7b", "qwen2.5-vl-7b"):
        warm = _rows(arch=arch, tool="llama-mtmd-cli", warmup="1", image_w="448")
        cold = _rows(arch=arch, tool="llama-mtmd-cli", warmup="0", image_w="448")
        _within(warm + cold, "clip_compute")
        _llm, vlm, enc, _ = compare.specs(arch)
        from vramcalc.images import image_tokens

        _t, _c, patches = image_tokens(vlm, enc, (448, 448))
        for r in warm:
            at_image = clip_compute_bytes(enc, patches, 1, r["fa"] == "on")
            assert at_image < 0.5 * float(r["clip_compute_mib"]) * MiB  # the user's image alone is far too low


def test_qwen2vl_language_model_gguf_is_read(tmp_path):
    """general.architecture = qwen2vl (the LM of Qwen2-VL / Qwen2.5-VL GGUFs) reads as a Qwen2 model."""
    sys.path.insert(0, str(Path(__file__).parent))
    from gguf_fixtures import llama_tensors, write_gguf
    from vramcalc.readers import load_model_files

    meta = {
        "block_count": 2,
        "context_length": 32768,
        "embedding_length": 256,
        "feed_forward_length": 512,
        "attention.head_count": 4,
        "attention.head_count_kv": 2,
        "general.name": "Tiny Qwen2-VL",
    }
    tensors = llama_tensors(n_layers=2, hidden=256, heads=4, kv_heads=2, ff=512, vocab=1000, types={}, qkv_bias=True)
    fm = load_model_files(write_gguf(tmp_path / "q.gguf", "qwen2vl", meta, tensors))
    assert fm.llm.family == "qwen2" and fm.llm.qkv_bias and fm.llm.num_layers == 2


def test_llava_mmproj_drops_the_unused_last_clip_layer():
    """LLaVA takes CLIP's second-to-last layer; llama.cpp's converter drops the last layer and the final norm."""
    rows = _rows(arch="llava-1.5-7b", tool="llama-mtmd-cli")
    cs = _within(rows, "clip_model")
    _llm, vlm, enc, _ = compare.specs("llava-1.5-7b")
    from vramcalc.runtimes.llamacpp import LlamaCpp

    kept = LlamaCpp().vision_tensors(vlm, enc)
    assert max(int(t.name.split(".")[2]) for t in kept if t.name.startswith("v.blk.")) == enc.num_layers - 2
    assert cs


def test_multi_crop_images_reserve_one_crop():
    """mtmd encodes one crop at a time (clip-graph.h ``support_batch()`` is false but for Gemma 4), so a
    LLaVA-1.6 image of five crops needs one crop's clip buffer. No converter for LLaVA-NeXT exists at
    0c1e57098, so this is pinned to the source, not to a recorded run."""
    from vramcalc.catalog import load_catalog
    from vramcalc.estimate import estimate
    from vramcalc.images import image_tokens, native_tokens
    from vramcalc.results import Workload
    from vramcalc.runtimes.llamacpp import clip_compute_bytes, clip_projector_outputs

    cat = load_catalog(include_user=False)
    vlm = cat.resolve_model("llava-1.6-mistral-7b")
    enc = cat.encoder(vlm.encoder)  # type: ignore[union-attr]
    _tok, crops, _patches = image_tokens(vlm, enc, (672, 672))  # type: ignore[arg-type]
    assert crops == 5
    e = estimate(vlm, cat.resolve_gpu("rtx4090"), Workload(image_size=(672, 672)), catalog=cat)
    proj = clip_projector_outputs(vlm, enc, cat.llm(vlm.llm))  # type: ignore[arg-type,union-attr]  # one crop's projector too
    assert e.memory.compute_bytes.vision == clip_compute_bytes(enc, native_tokens(enc), 1, True, proj)


# --------------------------------------------------------------------------------------------
# Round 2: the compute buffer from ggml-alloc's live sets, Mixtral-style MoE, a hybrid model


def test_fused_gate_up_ffn_is_up_plus_swiglu():
    """Phi-3 (fused gate_up): ffn_up is 2 x n_ff wide and ggml_swiglu reads both halves, so the FFN live set is
    3 n_ff wide, not 4 (was +12% to +27% outside 16k)."""
    rows = [r for r in _rows(arch="phi-3-mini", tool="llama-completion") if r["n_ctx"] != "16384"]
    cs = _within(rows, "compute")
    assert len(cs) >= 20 and all(c.ok for c in cs)
    # 512 cells, no FA (ggml-alloc live set: inp_embd 6, v_idxs 12, mask 1, gap 6, node 6, ffn_up 32, swiglu 16)
    r = next(iter(_rows(arch="phi-3-mini", n_ctx="512", fa="off", tool="llama-completion")))
    assert float(r["compute_mib"]) == pytest.approx(79.01)
    # the simulated allocator (ggml_alloc.py) gives the same live set, with its small inputs: 79.0098 MiB
    assert _check(r, "compute").predicted == pytest.approx(79.01 * MiB, abs=0.005 * MiB)


def test_v_indices_without_flash_attention():
    """Without FA the transposed V store's int64 index tensor (n_ubatch x n_embd_v_gqa x 8 bytes) stays alive
    in the attention live set: Mistral -np 2 at 2048 cells was -6.8%."""
    r = next(iter(_rows(arch="mistral-7b-v0.1", n_ctx="4096", np="2", fa="off", tool="llama-completion")))
    c = _check(r, "compute")
    assert float(r["compute_mib"]) == pytest.approx(176.01)
    assert c.ok, c.error


def test_mla_compute_buffer():
    """MLA with absorbed attention: the per-head q, q_pe, absorbed q and Qcur are alive together (DeepSeek-V3's
    attention at 2048 wide: 360.01 MiB with FA at u=512, 1388.01 MiB without at 4096 cells), and the logits sit
    above a gap of 4 hidden states (DeepSeek-V2-Lite: was -7% to -8% at every setting)."""
    for arch in ("deepseek-v2-lite", "deepseek-v3-narrow"):
        rows = [r for r in ROWS if r["arch"] == arch and r["tool"] in ("llama-completion", "llama-batched-bench")]
        cs = _within(rows, "compute")
        assert len(cs) >= 20 and all(c.ok for c in cs), arch
    r = next(iter(_rows(arch="deepseek-v3-narrow", n_ctx="4096", np="1", ub="512", fa="on", ctk="f16", tool="llama-completion")))
    assert float(r["compute_mib"]) == pytest.approx(360.01)
    assert abs(_check(r, "compute").error) < 0.001


def test_mixtral_style_moe_recorded_and_within_tolerance():
    """8 experts, top-2, no shared expert (Mixtral's rules at a quarter of the width): weights, KV and compute."""
    rows = [r for r in ROWS if r["arch"] == "mixtral-8x7b-narrow" and r["tool"] != "llama-quantize --dry-run"]
    assert len(rows) >= 25
    spec = compare.specs("mixtral-8x7b-narrow")[0]
    assert spec.moe and spec.moe.num_experts == 8 and spec.moe.experts_per_token == 2
    for what in ("model", "kv", "compute"):
        assert all(c.ok for c in _within(rows, what)), what


def test_hybrid_recurrent_state_and_kv():
    """Qwen3-Next (3 Gated DeltaNet layers : 1 attention layer): llama.cpp's KV buffer holds the attention
    layer only, and the recurrent state is its own RS buffer, one cell per sequence (6.28 MiB for one
    sequence: R 0.28 + S 6.00 MiB; 25.12 MiB for -np 4)."""
    rows = [r for r in ROWS if r["arch"] == "qwen3-next-80b-a3b" and r["tool"] != "llama-quantize --dry-run"]
    assert len(rows) >= 25
    rs = _within(rows, "rs")
    assert all(c.ok for c in rs)
    one = next(r for r in rows if r["np"] == "1")
    four = next(r for r in rows if r["np"] == "4")
    assert float(one["rs_mib"]) == pytest.approx(6.28) and float(four["rs_mib"]) == pytest.approx(25.12)
    assert all(c.ok for c in _within(rows, "kv"))
    r = next(r for r in rows if r["n_ctx"] == "4096" and r["np"] == "1" and r["ctk"] == "f16" and r["fa"] == "on")
    assert float(r["kv_mib"]) == 8.0  # 1 of 4 layers: 4096 cells x 2 x 2 heads x 256 x 2 bytes
    assert all(c.ok for c in _within(rows, "compute"))


def test_hybrid_kv_figure_of_the_pipeline_is_kv_plus_recurrent_state():
    """What `check` reports as the KV cache of a hybrid model (placement.kv_cache_bytes) is llama.cpp's KV buffer
    plus its RS buffer, for one and four sequences."""
    from vramcalc.placement import kv_cache_bytes
    from vramcalc.results import Workload
    from vramcalc.runtimes.llamacpp import LlamaCpp

    llm = compare.specs("qwen3-next-80b-a3b")[0]
    for np_, c in (("1", "4096"), ("4", "16384")):
        r = next(iter(_rows(arch="qwen3-next-80b-a3b", np=np_, n_ctx=c, kvu="0", fa="on", ctk="f16", ctv="f16", ub="512")))
        n = int(np_)
        got, _cells = kv_cache_bytes(llm, int(c) // n, Workload(batch=n), LlamaCpp())
        want = (float(r["kv_mib"]) + float(r["rs_mib"])) * MiB
        assert abs(got / want - 1) < 0.005, (np_, got / MiB, want / MiB)
