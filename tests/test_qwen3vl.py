"""Qwen3-VL (DeepStack) and the llama.cpp clip compute live sets, pinned to published counts and to the
recorded llama.cpp 0c1e57098 runs (tests/fixtures/llamacpp_oracle/runs.csv; README in
benchmarks/llamacpp_oracle/).

Sources: the published configs in tests/fixtures/reference/hf_configs/vlm (provenance in their SOURCES.csv),
model_params.csv's HF safetensors totals, and the recorded buffers (qwen3-vl-2b runs 605-624, LLaVA-1.5
688-703, Gemma 3 665-680, Qwen2-VL 625-640, Qwen2.5-VL 649-664).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vramcalc.errors import InputError
from vramcalc.images import image_tokens, llamacpp_smart_resize, smart_resize
from vramcalc.params import encoder_tensors, llm_tensors, projector_tensors
from vramcalc.readers.hf_config import model_from_hf_config
from vramcalc.runtimes import llamacpp as lc

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "fixtures" / "reference" / "hf_configs" / "vlm"
ORACLE = ROOT / "tests" / "fixtures" / "llamacpp_oracle"
MiB = 1024 * 1024

with (ORACLE / "runs.csv").open() as _f:
    RUNS = {int(r["run"]): r for r in csv.DictReader(_f)}


@pytest.fixture(scope="module")
def cat():  # noqa: ANN201  # one catalog load for the module (a cold load is ~1 s)
    from vramcalc.catalog import load_catalog

    return load_catalog(include_user=False)


def _read(path: Path):  # noqa: ANN202
    return model_from_hf_config(json.loads(path.read_text()), path, "x", "x")


def _oracle(arch: str):  # noqa: ANN202
    cm = _read(ORACLE / "configs" / f"{arch}.json")
    return cm.model, cm.encoder, cm.llm


@pytest.mark.parametrize(
    ("config", "published"),
    [
        # shared/reference/model_params.csv, total (vision+text), HF API safetensors totals
        ("Qwen3-VL-2B-Instruct.json", 2_127_532_032),
        ("Qwen3-VL-4B-Instruct.json", 4_437_815_808),
        ("Qwen3-VL-8B-Instruct.json", 8_767_123_696),
        ("Qwen3-VL-30B-A3B-Instruct.json", 31_070_754_032),  # row Qwen3-VL-30B-A3B-Thinking, same architecture
    ],
)
def test_qwen3_vl_config_reads_to_the_published_count(config: str, published: int):
    cm = _read(REF / config)
    vlm, enc, llm = cm.model, cm.encoder, cm.llm
    assert enc is not None and enc.family == "qwen3_vit"
    n = sum(t.numel for t in llm_tensors(llm)) + sum(t.numel for t in encoder_tensors(enc))
    n += sum(t.numel for t in projector_tensors(vlm.projector, enc, llm))  # type: ignore[union-attr]
    assert n == published


def test_qwen3_vl_reader_fields():
    cm = _read(REF / "Qwen3-VL-30B-A3B-Instruct.json")
    assert cm.llm.family == "qwen3_moe" and cm.llm.moe is not None and cm.llm.moe.num_experts == 128
    assert cm.llm.qk_norm and not cm.llm.tied_embeddings
    assert cm.model.projector.deepstack_layers == [8, 16, 24]  # type: ignore[union-attr]
    small = _read(REF / "Qwen3-VL-2B-Instruct.json")
    assert small.llm.family == "qwen3" and small.llm.tied_embeddings
    assert small.encoder is not None and small.encoder.image_size == 768  # 48 x 48 learned positions x patch 16
    assert small.model.image_tokens.factor == 32  # type: ignore[union-attr]  # patch 16 x merge 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"deepstack_visual_indexes": [5, 99]}, "deepstack_visual_indexes"),
        ({"deepstack_visual_indexes": "5"}, "deepstack_visual_indexes"),
        ({"out_hidden_size": 4096}, "out_hidden_size"),
    ],
)
def test_qwen3_vl_reader_refuses_bad_vision_fields(change: dict, message: str):
    cfg = json.loads((REF / "Qwen3-VL-2B-Instruct.json").read_text())
    cfg["vision_config"].update(change)
    with pytest.raises(InputError, match=message):
        model_from_hf_config(cfg, Path("config.json"), "x", "x")


def test_qwen3_vl_mmproj_bytes_match_the_recorded_file():
    """clip model buffer 781.42 MiB (run 613): tower + merger + three DeepStack mergers (v.deepstack.N), F16
    with F32 norms, biases and position table."""
    vlm, enc, llm = _oracle("qwen3-vl-2b")
    rt = lc.LlamaCpp()
    proj = projector_tensors(vlm.projector, enc, llm)  # type: ignore[union-attr,arg-type]
    got = rt.vision_weights(rt.vision_tensors(vlm, enc), "f16").bytes + rt.vision_weights(proj, "f16").bytes  # type: ignore[arg-type]
    assert got / MiB == pytest.approx(float(RUNS[613]["clip_model_mib"]), abs=0.01)
    names = {t.name for t in projector_tensors(vlm.projector, enc, llm)}  # type: ignore[union-attr,arg-type]
    assert {"v.deepstack.5.fc1.weight", "v.deepstack.17.fc2.bias", "v.deepstack.11.norm.weight"} <= names


def test_llamacpp_rounds_halves_up_where_transformers_rounds_to_even():
    """A 336-pixel side at factor 32 is 10.5 blocks: llama.cpp (std::round) gives 11 (run 621: 11 x 11 image
    tokens), transformers' smart_resize (Python round) gives 10."""
    assert llamacpp_smart_resize(336, 336, 32, 8 * 1024, 4096 * 1024) == (352, 352)
    assert smart_resize(336, 336, 32, 65536, 16777216) == (320, 320)  # HF: 10 x 10 blocks (102400 px, above min_pixels)
    vlm, enc, _ = _oracle("qwen3-vl-2b")
    r = RUNS[621]
    assert image_tokens(vlm, enc, (336, 336), mtmd=True)[0] == int(r["image_nx"]) * int(r["image_ny"]) == 121  # type: ignore[arg-type]


def test_llamacpp_caps_qwen_images_at_4096_tokens():
    """clip.cpp set_limit_image_tokens(8, 4096) for the Qwen-VL projectors, whatever the preprocessor config says."""
    vlm, enc, _ = _oracle("qwen3-vl-2b")
    tok_llama = image_tokens(vlm, enc, (4096, 4096), mtmd=True)[0]  # type: ignore[arg-type]
    tok_hf = image_tokens(vlm, enc, (4096, 4096))[0]  # type: ignore[arg-type]
    assert tok_llama == 4096 and tok_hf == 128 * 128


@pytest.mark.parametrize(
    ("arch", "run"),
    [
        ("qwen3-vl-2b", 619),  # flash attention on, 1288 px: FFN up + 5 act + image
        ("qwen3-vl-2b", 620),  # off: KQ + 10 act + image
        ("qwen3-vl-2b", 621),  # on, 336 px
        ("qwen3-vl-2b", 622),  # off, 336 px
        ("llava-1.5-7b", 689),  # on: the MLP projector's two outputs are the peak (was -29%)
        ("llava-1.5-7b", 691),  # off: KQ + 5 act + image
        ("gemma-3-4b", 666),  # on: up + 3 act
        ("gemma-3-4b", 668),  # off: KQ + 6 act
        ("qwen2-vl-7b", 626),  # on: up + 2 act + image
        ("qwen2-vl-7b", 628),  # off: KQ + 5 act + image
        ("qwen2.5-vl-7b", 662),  # off, 336 px: + the f32 window mask (was +22% with the fitted 5 act)
        ("qwen2.5-vl-7b", 660),  # off, 1288 px
    ],
)
def test_clip_compute_live_sets_match_recorded_runs(arch: str, run: int):
    r = RUNS[run]
    assert r["arch"] == arch and r["warmup"] == "0"
    vlm, enc, llm = _oracle(arch)
    _tok, crops, patches = lc.clip_reserved_tokens(vlm, enc, (int(r["image_w"]), int(r["image_h"])), warmup=False)  # type: ignore[arg-type]
    got = lc.clip_compute_bytes(enc, patches, crops, r["fa"] == "on", **lc.clip_extras(vlm, enc, llm))  # type: ignore[arg-type]
    assert got / MiB == pytest.approx(float(r["clip_compute_mib"]), rel=0.001)


def test_deepstack_widens_the_llm_input_embedding():
    """Run 605 (qwen3-vl-2b, 4096 cells, flash attention): 320.75 MiB = the logits (512 x 151936 f32) + one
    hidden state + the CPU input embedding, 4 hidden states wide (1 + 3 DeepStack layers)."""
    vlm, _enc, llm = _oracle("qwen3-vl-2b")
    r = RUNS[605]
    base = lc.compute_buffer_bytes(llm, 4096, 512, True, backend="cpu")
    extra = lc.deepstack_input_bytes(llm, len(vlm.projector.deepstack_layers), 512)  # type: ignore[union-attr]
    assert extra == 3 * 512 * 2048 * 4
    assert (base + extra) / MiB == pytest.approx(float(r["compute_mib"]), rel=0.0125)
    assert abs(base / MiB / float(r["compute_mib"]) - 1) > 0.04  # without it: -5%


def test_catalog_qwen3_vl_estimate_counts_deepstack_and_projector_phase(cat):
    from vramcalc.estimate import estimate
    from vramcalc.results import Workload

    gpu = cat.resolve_gpu("rtx4090")
    vl = estimate(cat.resolve_model("qwen3-vl-2b"), gpu, Workload(context_tokens=4096), catalog=cat)
    text = estimate(cat.resolve_model("qwen3-1.7b"), gpu, Workload(context_tokens=4096 + vl.inputs.image_tokens_per_image), catalog=cat)
    # the DeepStack input is 3 hidden-size tensors wider; with ggml-alloc's placement simulated the buffer grows by 4
    # (16 MiB at u=512: the measured 6-layer qwen3-vl-2b-deep run 940, 320.75 MiB, against 304.75 without DeepStack)
    assert vl.memory.compute_bytes.llm - text.memory.compute_bytes.llm == 4 * 512 * 2048 * 4
    # warm-up: the clip buffer is reserved for 46 x 46 merged tokens (1472 px), whatever the image
    enc = cat.encoder("qwen3-vl-vit-300m")
    assert vl.memory.compute_bytes.vision == lc.clip_compute_bytes(enc, 46 * 46 * 4, 1, True, deepstack=(3, 2048, 2))
    # the tower alone (check qwen3-vl-vit-300m) has no DeepStack mergers: 1.5 hidden-size tensors fewer
    alone = lc.clip_compute_bytes(enc, 46 * 46 * 4, 1, True)
    assert vl.memory.compute_bytes.vision - alone == 3 * 46 * 46 * 2048 * 4


def test_validate_refuses_a_deepstack_index_beyond_the_encoder(cat):
    import dataclasses

    from vramcalc.catalog import RawEntry
    from vramcalc.validate import plausibility

    vlm = cat.get("vlms", "qwen3-vl-2b")
    valid = {("encoders", vlm.encoder): cat.encoder(vlm.encoder), ("llms", vlm.llm): cat.llm(vlm.llm)}
    assert not [p for p in plausibility(cat, "vlms", RawEntry("vlms", "ok.yaml"), vlm, valid) if "deepstack" in p.field]
    bad = dataclasses.replace(vlm, projector=dataclasses.replace(vlm.projector, deepstack_layers=[5, 11, 30]))
    hits = [p for p in plausibility(cat, "vlms", RawEntry("vlms", "bad.yaml"), bad, valid) if p.field == "projector -> deepstack_layers"]
    assert hits and "24 layers" in str(hits[0]) and hits[0].path == "bad.yaml"


def test_qwen3vl_gguf_pair_is_read_with_its_deepstack_layers(tmp_path, cat):
    """A Qwen3-VL language GGUF (general.architecture qwen3vl) and its mmproj (clip.projector_type qwen3vl_merger,
    clip.vision.is_deepstack_layers; llama.cpp conversion/qwen3vl.py) are read: the DeepStack flags become
    deepstack_layers, so the clip buffer counts the DeepStack features and the LLM buffer the wider input."""
    from gguf_fixtures import llama_tensors, write_gguf
    from vramcalc.estimate import Workload, estimate
    from vramcalc.readers import load_model_files

    h, ff, layers = 64, 128, 4
    meta = {"block_count": 2, "context_length": 4096, "embedding_length": 256, "feed_forward_length": 512}
    meta |= {"attention.head_count": 4, "attention.head_count_kv": 2, "attention.layer_norm_rms_epsilon": 1e-6}
    llm = write_gguf(tmp_path / "llm.gguf", "qwen3vl", meta, llama_tensors(2, 256, 4, 2, 512, 1000, types={}), file_type=15)
    vis = [("v.patch_embd.weight", (16, 16, 3, h), "F16"), ("v.patch_embd.weight.1", (16, 16, 3, h), "F16")]
    vis += [("v.patch_embd.bias", (h,), "F32"), ("v.position_embd.weight", (h, 2304), "F32")]
    for i in range(layers):
        b = f"v.blk.{i}"
        vis += [(f"{b}.ln1.weight", (h,), "F32"), (f"{b}.ln1.bias", (h,), "F32"), (f"{b}.ln2.weight", (h,), "F32")]
        vis += [(f"{b}.attn_qkv.weight", (h, 3 * h), "F16"), (f"{b}.attn_qkv.bias", (3 * h,), "F32")]
        vis += [(f"{b}.attn_out.weight", (h, h), "F16"), (f"{b}.ffn_up.weight", (h, ff), "F16"), (f"{b}.ffn_down.weight", (ff, h), "F16")]
    proj = [("mm.0.weight", (4 * h, 4 * h), "F16"), ("mm.2.weight", (4 * h, 256), "F16")]
    proj += [(f"v.deepstack.1.{n}.weight", s, "F16") for n, s in (("fc1", (4 * h, 4 * h)), ("fc2", (4 * h, 256)))]
    mmeta = {"clip.projector_type": "qwen3vl_merger", "clip.vision.image_size": 768, "clip.vision.patch_size": 16}
    mmeta |= {"clip.vision.embedding_length": h, "clip.vision.feed_forward_length": ff, "clip.vision.block_count": layers}
    mmeta |= {"clip.vision.attention.head_count": 4, "clip.vision.is_deepstack_layers": [False, True, False, False]}
    mmeta |= {"clip.vision.spatial_merge_size": 2, "general.name": "q3vl"}
    mm = write_gguf(tmp_path / "mmproj.gguf", "clip", mmeta, vis + proj)
    fm = load_model_files(llm, mm)
    assert fm.model.projector.deepstack_layers == [1]  # type: ignore[union-attr]
    enc = fm.encoder
    assert enc is not None and enc.family == "qwen3_vit"
    w = Workload(image_size=(1024, 768), context_tokens=2048)
    est = estimate(fm.model, cat.resolve_gpu("rtx3060"), w, fm.catalog(cat), fm.weights)
    assert est.inputs.image_tokens_per_image == 32 * 24
    assert est.memory.compute_bytes.llm == lc.compute_buffer_bytes(fm.llm, 2048 + 768, 512, True) + 1 * 512 * 256 * 4


def _llm_compute(arch: str, r: dict[str, str]) -> float:
    """vramcalc's CPU compute buffer (MiB) for a recorded llama-completion / batched-bench run of a Qwen3-VL LLM."""
    vlm, _enc, llm = _oracle(arch)
    n_seq, ub = int(r["np"]), min(int(r["ub"]), int(r["b"]))
    lay = lc.kv_layout(llm, int(r["n_ctx"]), n_seq, r["kvu"] == "1", min(ub, int(r["n_ctx"])))
    fa, types = r["fa"] == "on", {"type_k": r["ctk"], "type_v": r["ctv"]}
    cpu = lc.compute_buffer_bytes(llm, lay.stream_cells, ub, fa, n_seq=n_seq, backend="cpu", **types)
    n_ds = len(vlm.projector.deepstack_layers)  # type: ignore[union-attr]
    return (cpu + lc.deepstack_input_bytes(llm, n_ds, ub, lay.stream_cells, fa, **types, n_pos=lc.MROPE_POSITIONS)) / MiB


def _deep_runs() -> list[dict[str, str]]:
    return [r for r in RUNS.values() if r["arch"] == "qwen3-vl-2b-deep" and r["tool"] != "llama-mtmd-cli"]


def test_deepstack_rule_holds_on_a_deeper_recording():
    """Runs 940-949: Qwen3-VL-2B with 6 decoder layers, so the 3 DeepStack additions (layers 0-2) end before the
    last layer. ggml-alloc's live set at the peak is inp_embd (16 MiB = 512 x (1 + 3) x 2048 f32, the DeepStack
    input) + the final hidden state (4 MiB) + the logits (296.75 MiB). With the allocator simulated
    (ggml_alloc.py over llamacpp_graph.py) every run is exact to the log's rounding, the two at 16k cells with flash
    attention included (the final hidden state lands in the freed padded rows, 20 MiB higher: were -5.9%)."""
    runs = _deep_runs()
    assert len(runs) == 10
    for r in runs:
        assert _llm_compute("qwen3-vl-2b-deep", r) == pytest.approx(float(r["compute_mib"]), abs=0.01), r["run"]
    # without the DeepStack term the 4096-cell flash-attention run (320.75 MiB) is 5% low
    r940 = RUNS[940]
    assert r940["arch"] == "qwen3-vl-2b-deep" and r940["n_ctx"] == "4096" and r940["fa"] == "on"
    _vlm, _enc, llm = _oracle("qwen3-vl-2b-deep")
    base = lc.compute_buffer_bytes(llm, 4096, 512, True, backend="cpu") / MiB
    assert base / float(r940["compute_mib"]) - 1 < -0.045


@pytest.mark.parametrize(
    ("shallow", "deep"),
    [(607, 942), (606, 941), (611, 947), (610, 945)],  # the four 2-layer KNOWN_GAPS and their 6-layer twins
)
def test_two_layer_deepstack_gaps_are_an_artefact_of_the_shallow_model(shallow: int, deep: int):
    """The same settings on the 2-layer and 6-layer Qwen3-VL-2B: llama.cpp's buffer shrinks by 16-28 MiB with
    depth, because with 2 layers the token rows padded to the 4-wide input (node_1, 16 MiB) are alive until the
    last layer's DeepStack add and the final hidden state is placed above them. The live-set model predicted the
    same buffer at both depths (6.5-10.2% low at 2 layers); the simulated allocator reproduces both depths."""
    a, b = RUNS[shallow], RUNS[deep]
    assert (a["arch"], b["arch"]) == ("qwen3-vl-2b", "qwen3-vl-2b-deep")
    keys = ("n_ctx", "np", "kvu", "ub", "fa", "ctk", "ctv")
    assert [a[k] for k in keys] == [b[k] for k in keys]
    pa, pb = _llm_compute("qwen3-vl-2b", a), _llm_compute("qwen3-vl-2b-deep", b)
    ma, mb = float(a["compute_mib"]), float(b["compute_mib"])
    assert 16 <= ma - mb <= 28.1
    assert pa == pytest.approx(ma, abs=0.01)
    assert pb == pytest.approx(mb, abs=0.01)
