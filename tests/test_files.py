"""Models from the user's files: GGUF headers, config.json, safetensors headers, `import`.

Fixtures are written here with the gguf package's GGUFWriter (headers + a sparse data hole) and
by hand for safetensors; expected byte counts come from ggml's block layouts (tests/gguf_fixtures.py
BLOCKS, written out independently of vramcalc), never from vramcalc's own output.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
from pathlib import Path

import pytest

from gguf_fixtures import llama_tensors, nbytes, write_gguf, write_safetensors
from tiny_llama import TINY, TINY_META, tiny_llama
from vramcalc.cli import app
from vramcalc.errors import InputError
from vramcalc.schema import to_dict

REF = Path(__file__).resolve().parent / "fixtures" / "reference" / "hf_configs"  # copied from shared/reference


@pytest.fixture()
def tiny_gguf(tmp_path):
    return tiny_llama(tmp_path / "tiny-Q4_K_M.gguf")


# ---------------------------------------------------------------------------------------------
# GGUF: exact weights


def test_tiny_llama_exact_bytes_and_params(tiny_gguf):
    """Every tensor's bytes from ggml block layouts (Q4_K: 144 bytes per 256 weights, Q6_K: 210 per 256, F32: 4 per 1)."""
    from vramcalc.readers import load_model_files

    fm = load_model_files(tiny_gguf)
    # token_embd Q4_K 256x1000: 256000/256*144 = 144000
    # per layer: norms 2x256x4 = 2048; q 256x256 Q4_K 36864; k 256x128 Q4_K 18432; v 256x128 Q6_K 26880;
    #            o 256x256 Q4_K 36864; gate, up 256x512 Q4_K 73728 each; down 512x256 Q6_K 107520 -> 376064
    # output_norm 1024; output 256x1000 Q6_K: 256000/256*210 = 210000
    expected_bytes = 144000 + 2 * 376064 + 1024 + 210000
    assert expected_bytes == 1_107_152
    assert fm.weights.llm.bytes == expected_bytes
    assert fm.weights.llm.host_bytes == 144000  # token_embd stays in host memory under llama.cpp
    # params: 2 x 256000 (embd, output) + 2 x (2x256 + 65536 + 2x32768 + 65536 + 3x131072) + 256
    assert fm.weights.llm.params == 2 * 256000 + 2 * 590336 + 256 == 1_692_928
    assert fm.weights.llm.by_type == {
        "Q4_K": 144000 + 2 * (36864 + 18432 + 36864 + 2 * 73728),
        "Q6_K": 210000 + 2 * (26880 + 107520),
        "F32": 5 * 1024,
    }
    spec = fm.llm
    assert (spec.num_layers, spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.intermediate_size, spec.vocab_size) == (
        2,
        256,
        4,
        2,
        512,
        1000,
    )
    assert spec.family == "llama" and not spec.tied_embeddings and not spec.qkv_bias and spec.max_context == 2048
    assert fm.quant == "Q4_K_M" and spec.id == "tiny-llama"
    assert fm.notes == []  # the tensors are exactly those of the architecture model


def test_reader_agrees_with_the_gguf_package_reader(tmp_path):
    """Our header walk returns what gguf.GGUFReader (which maps the whole file) returns."""
    import gguf

    from vramcalc.readers import read_gguf_header

    p = tiny_llama(tmp_path / "t.gguf", qkv_bias=True)
    ours = read_gguf_header(p)
    ref = gguf.GGUFReader(p)
    assert [(t.name, t.ggml_type, t.shape, t.nbytes, t.offset + ours.data_offset) for t in ours.tensors] == [
        (t.name, t.tensor_type.name, tuple(int(x) for x in t.shape), int(t.n_bytes), int(t.data_offset)) for t in ref.tensors
    ]
    assert ours.data_offset == ref.data_offset
    assert ours.metadata["llama.block_count"] == ref.get_field("llama.block_count").contents()
    assert ours.metadata["general.name"] == "Tiny Llama"


def test_header_only_bytes_are_enough(tiny_gguf):
    """Nothing past the header is needed: parsing only the header's bytes gives the same result."""
    from vramcalc.readers import parse_gguf_header, read_gguf_header

    full = read_gguf_header(tiny_gguf)
    head = tiny_gguf.read_bytes()[: full.data_offset]
    again = parse_gguf_header(head, tiny_gguf, tiny_gguf.stat().st_size)
    assert again.tensors == full.tensors and again.metadata == full.metadata


def test_long_tokenizer_arrays_are_skipped(tmp_path):
    from vramcalc.readers import SkippedArray, read_gguf_header

    p = write_gguf(tmp_path / "v.gguf", "llama", TINY_META, llama_tensors(**TINY, types={}), vocab=5000)
    h = read_gguf_header(p)
    assert h.metadata["tokenizer.ggml.tokens"] == SkippedArray(5000)


def test_qwen2_biases_and_tied_embeddings(tmp_path):
    from vramcalc.readers import load_model_files

    meta = dict(TINY_META, **{"general.name": "Tiny Qwen2"})
    tensors = llama_tensors(**TINY, types={"attn_v": "Q8_0", "ffn_down": "Q8_0"}, tied=True, qkv_bias=True)
    fm = load_model_files(write_gguf(tmp_path / "q.gguf", "qwen2", meta, tensors))
    s = fm.llm
    assert s.family == "qwen2" and s.qkv_bias and s.tied_embeddings and not s.attn_out_bias
    # attn_v, ffn_down Q8_0: 34 bytes per 32 weights; 256x128 -> 32768/32*34 = 34816; 512x256 -> 139264
    assert fm.weights.llm.by_type["Q8_0"] == 2 * (34816 + 139264)
    assert fm.quant == "Q4_K_M"  # no general.file_type: the file type of the dominant tensor type (Q4_K)
    assert fm.notes == []


def test_gemma2_sliding_window_and_post_norms(tmp_path):
    from vramcalc.readers import load_model_files

    meta = dict(
        TINY_META,
        **{"attention.key_length": 128, "attention.value_length": 128, "attention.sliding_window": 512, "general.name": "Tiny Gemma 2"},
    )
    hd = 128
    tensors = llama_tensors(**TINY, types={}, tied=True, head_dim=hd)
    for i in range(2):
        tensors += [(f"blk.{i}.post_attention_norm.weight", (256,), "F32"), (f"blk.{i}.post_ffw_norm.weight", (256,), "F32")]
    fm = load_model_files(write_gguf(tmp_path / "g.gguf", "gemma2", meta, tensors))
    s = fm.llm
    assert s.head_dim == 128 and s.extra_norms_per_layer == 2 and s.activation == "gelu_tanh"
    assert s.sliding_window is not None and s.sliding_window.size == 512 and s.sliding_window.pattern == [True, False]
    assert fm.notes == []


def test_moe_experts(tmp_path):
    """A Mixtral-style llama MoE: experts stacked in 3-D ffn_*_exps tensors (ne0, ne1, n_expert)."""
    from vramcalc.readers import load_model_files

    meta = dict(TINY_META, **{"expert_count": 4, "expert_used_count": 2, "general.name": "Tiny MoE"})
    tensors = [t for t in llama_tensors(**TINY, types={}) if "ffn_gate." not in t[0] and "ffn_up." not in t[0] and "ffn_down." not in t[0]]
    for i in range(2):
        tensors += [
            (f"blk.{i}.ffn_gate_inp.weight", (256, 4), "F32"),
            (f"blk.{i}.ffn_gate_exps.weight", (256, 512, 4), "Q4_K"),
            (f"blk.{i}.ffn_up_exps.weight", (256, 512, 4), "Q4_K"),
            (f"blk.{i}.ffn_down_exps.weight", (512, 256, 4), "Q6_K"),
        ]
    fm = load_model_files(write_gguf(tmp_path / "m.gguf", "llama", meta, tensors))
    moe = fm.llm.moe
    assert moe is not None and (moe.num_experts, moe.experts_per_token, moe.expert_intermediate_size) == (4, 2, 512)
    # each expert tensor: 4 x 256 x 512 = 524288 weights; Q4_K -> 294912 bytes, Q6_K -> 430080 bytes
    assert nbytes("Q4_K", (256, 512, 4)) == 294912 and nbytes("Q6_K", (512, 256, 4)) == 430080
    assert fm.weights.llm.by_type["Q6_K"] == 210000 + 2 * (26880 + 430080)
    assert fm.notes == []


def test_llama2_7b_gguf_matches_catalog_entry(tmp_path, runner):
    """A GGUF with Llama-2-7B's real hyper-parameters and Q4_K_M tensor types (header only, the data a
    sparse hole) gives the same check as the catalog entry; its weights match TheBloke's
    llama-2-7b.Q4_K_M.gguf, 4.08 GB (shared/calibration/gguf_sizes.csv; the file adds the tokenizer)."""
    from vramcalc.catalog import load_catalog
    from vramcalc.params import llm_tensors
    from vramcalc.quant import QuantContext, gguf_tensor_type

    spec = load_catalog().resolve_model("llama-2-7b")
    q = QuantContext("Q4_K_M", n_layers=32, n_gqa=1)
    tensors = [(t.name, t.shape, gguf_tensor_type(t, q)) for t in llm_tensors(spec)]
    meta = {
        "block_count": 32,
        "context_length": 4096,
        "embedding_length": 4096,
        "feed_forward_length": 11008,
        "attention.head_count": 32,
        "attention.head_count_kv": 32,
        "rope.dimension_count": 128,
        "general.name": "Llama 2 7B",
    }
    p = write_gguf(tmp_path / "llama-2-7b.Q4_K_M.gguf", "llama", meta, tensors, file_type=15, vocab=32000)
    assert p.stat().st_size > 4e9  # a real-sized file ...
    a = json.loads(runner.invoke(app, ["check", str(p), "--gpu", "rtx3060", "--json"]).stdout)
    b = json.loads(runner.invoke(app, ["check", "llama-2-7b", "--gpu", "rtx3060", "--quant", "Q4_K_M", "--json"]).stdout)
    assert a["memory"] == b["memory"] and a["params"] == b["params"]
    assert (a["verdict"], a["headroom_bytes"], a["max_context_tokens"]) == (b["verdict"], b["headroom_bytes"], b["max_context_tokens"])
    assert a["inputs"]["quant"] == "Q4_K_M"
    assert a["memory"]["weights_bytes"]["llm"] == pytest.approx(4.08e9, rel=0.005)


def test_mmproj_makes_a_vlm(tmp_path, runner):
    """A LLaVA-style clip mmproj (2 tiny CLIP layers + a 2-layer MLP projector) with a llama GGUF."""
    from vramcalc.readers import load_model_files

    llm = tiny_llama(tmp_path / "llm.gguf")
    h, ff = 64, 128
    tensors = [
        ("v.patch_embd.weight", (14, 14, 3, h), "F16"),
        ("v.class_embd", (h,), "F32"),
        ("v.position_embd.weight", (h, 577), "F32"),
        ("v.pre_ln.weight", (h,), "F32"),
        ("v.pre_ln.bias", (h,), "F32"),
    ]
    for i in range(2):
        b = f"v.blk.{i}"
        for n in ("ln1", "ln2"):
            tensors += [(f"{b}.{n}.weight", (h,), "F32"), (f"{b}.{n}.bias", (h,), "F32")]
        for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
            tensors += [(f"{b}.{n}.weight", (h, h), "F16"), (f"{b}.{n}.bias", (h,), "F32")]
        tensors += [
            (f"{b}.ffn_up.weight", (h, ff), "F16"),
            (f"{b}.ffn_up.bias", (ff,), "F32"),
            (f"{b}.ffn_down.weight", (ff, h), "F16"),
            (f"{b}.ffn_down.bias", (h,), "F32"),
        ]
    tensors += [
        ("mm.0.weight", (h, 256), "F16"),
        ("mm.0.bias", (256,), "F32"),
        ("mm.2.weight", (256, 256), "F16"),
        ("mm.2.bias", (256,), "F32"),
    ]
    meta = {
        "clip.projector_type": "mlp",
        "clip.has_vision_encoder": True,
        "clip.vision.image_size": 336,
        "clip.vision.patch_size": 14,
        "clip.vision.embedding_length": h,
        "clip.vision.feed_forward_length": ff,
        "clip.vision.block_count": 2,
        "clip.vision.attention.head_count": 4,
        "general.name": "tiny clip",
    }
    mm = write_gguf(tmp_path / "mmproj.gguf", "clip", meta, tensors)
    fm = load_model_files(llm, mm)
    assert fm.model.kind == "vlm" and fm.encoder is not None and fm.encoder.num_layers == 2
    # projector: 2 F16 matrices (64x256 + 256x256 = 81920 weights x 2 bytes) + 2 F32 biases (512 x 4)
    assert fm.weights.projector.bytes == 81920 * 2 + 512 * 4
    vis_expected = sum(nbytes(t, s) for n, s, t in tensors if not n.startswith("mm."))
    assert fm.weights.vision.bytes == vis_expected
    r = runner.invoke(app, ["check", str(llm), "--mmproj", str(mm), "--gpu", "rtx3060", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["inputs"]["model_kind"] == "vlm" and d["inputs"]["image_tokens_per_image"] == 576  # (336/14)^2
    assert d["memory"]["weights_bytes"] == {"llm": 1_107_152, "vision": vis_expected, "projector": 81920 * 2 + 512 * 4}


# ---------------------------------------------------------------------------------------------
# Bad GGUF files: one line, exit code 2, the file named


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def _cut(src: Path, dst: Path, n: int) -> Path:
    dst.write_bytes(src.read_bytes()[:n])
    return dst


BAD_GGUF = {
    "empty": (lambda d, ok: _write(d / "empty.gguf", b""), "not a GGUF file"),
    "not-gguf": (lambda d, ok: _write(d / "x.gguf", b"PK\x03\x04" + b"\0" * 100), "not a GGUF file"),
    "cut-in-counts": (lambda d, ok: _cut(ok, d / "c1.gguf", 20), "GGUF"),
    "cut-in-metadata": (lambda d, ok: _cut(ok, d / "c2.gguf", 120), "truncated or corrupt"),
    "cut-in-tensor-infos": (lambda d, ok: _cut(ok, d / "c3.gguf", 900), "truncated or corrupt"),
    "cut-in-data": (lambda d, ok: _cut(ok, d / "c4.gguf", ok.stat().st_size - 1000), "truncated GGUF file"),
    "header-only": (
        lambda d, ok: write_gguf(d / "h.gguf", "llama", TINY_META, llama_tensors(**TINY, types={}), data=False),
        "truncated GGUF file",
    ),
    "bad-version": (lambda d, ok: _write(d / "v.gguf", b"GGUF" + struct.pack("<I", 7) + b"\0" * 40), "unsupported GGUF version 7"),
    "absurd-counts": (lambda d, ok: _write(d / "a.gguf", b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2**40) + b"\0" * 40), "corrupt GGUF"),
    "unsupported-arch": (
        lambda d, ok: write_gguf(d / "mamba.gguf", "mamba", TINY_META, llama_tensors(**TINY, types={})),
        "architecture 'mamba' is not supported",
    ),
}


@pytest.mark.parametrize("case", list(BAD_GGUF))
def test_bad_gguf_is_a_clean_error(case, tmp_path, runner, tiny_gguf):
    make, text = BAD_GGUF[case]
    path = make(tmp_path, tiny_gguf)
    r = runner.invoke(app, ["check", str(path), "--gpu", "rtx3060"])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit))
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and path.name in lines[0], r.stderr
    assert text in lines[0], lines[0]


def test_mmproj_given_as_the_model_says_so(tmp_path, runner):
    p = write_gguf(tmp_path / "mmproj-x.gguf", "clip", {"clip.projector_type": "mlp"}, [("mm.0.weight", (64, 64), "F16")])
    r = runner.invoke(app, ["check", str(p), "--gpu", "rtx3060"])
    assert r.exit_code == 2 and "--mmproj" in r.stderr


# ---------------------------------------------------------------------------------------------
# config.json and safetensors


def _ref(kind: str, name: str) -> Path:
    p = REF / kind / name
    assert p.is_file(), f"{p}: committed under tests/fixtures/reference"
    return p


def test_config_folder_matches_catalog_entry(tmp_path, runner):
    """HF meta-llama/Llama-2-7b-hf config.json in a folder gives the catalog entry's numbers."""
    folder = tmp_path / "Llama-2-7b-hf"
    folder.mkdir()
    shutil.copy(_ref("llm", "Llama-2-7b.json"), folder / "config.json")
    a = json.loads(runner.invoke(app, ["check", str(folder), "--gpu", "rtx3060", "--json"]).stdout)
    b = json.loads(runner.invoke(app, ["check", "llama-2-7b", "--gpu", "rtx3060", "--json"]).stdout)
    assert a["memory"] == b["memory"] and a["params"] == b["params"] and a["max_context_tokens"] == b["max_context_tokens"]
    assert a["params"]["total"] == 6_738_415_616  # HF safetensors total of meta-llama/Llama-2-7b-hf


# (reference config file, catalog id): every published config the catalog also describes
REF_PAIRS = [
    ("llm/Llama-2-7b.json", "llama-2-7b"),
    ("llm/Llama-3.1-8B.json", "llama-3.1-8b"),
    ("llm/Mistral-7B-v0.1.json", "mistral-7b-v0.1"),
    ("llm/Qwen2.5-7B.json", "qwen2.5-7b"),
    ("llm/Qwen2.5-0.5B.json", "qwen2.5-0.5b"),
    ("llm/Qwen3-8B.json", "qwen3-8b"),
    ("llm/Qwen3-30B-A3B.json", "qwen3-30b-a3b"),
    ("llm/gemma-2-9b.json", "gemma-2-9b"),
    ("llm/Phi-3-mini-4k-instruct.json", "phi-3-mini"),
    ("llm/Mixtral-8x7B-v0.1.json", "mixtral-8x7b"),
    ("llm/DeepSeek-V2-Lite.json", "deepseek-v2-lite"),
    ("llm/gpt-oss-20b.json", "gpt-oss-20b"),
    ("vlm/gemma-3-4b-it.json", "gemma-3-4b"),
    ("vlm/Qwen2-VL-7B-Instruct.json", "qwen2-vl-7b"),
    ("vlm/Qwen2.5-VL-7B-Instruct.json", "qwen2.5-vl-7b"),
    ("vlm/llava-v1.5-7b.json", "llava-1.5-7b"),
]


@pytest.mark.parametrize(("ref", "cid"), REF_PAIRS)
def test_published_configs_estimate_like_the_catalog(ref, cid):
    """A published config.json read as a user's file estimates exactly like its catalog entry
    (parameters, memory, largest context) for a VLM at a 1024x768 image."""
    from vramcalc.catalog import load_catalog
    from vramcalc.estimate import Workload, estimate
    from vramcalc.readers import load_model_files

    cat = load_catalog()
    fm = load_model_files(_ref(*ref.split("/")), catalog=cat)
    gpu = cat.resolve_gpu("rtx4090")
    w = Workload(image_size=(1024, 768))
    a = estimate(fm.model, gpu, w, fm.catalog(cat), fm.weights)
    b = estimate(cat.resolve_model(cid), gpu, w, cat)
    assert a.params == b.params
    assert a.memory.total_bytes == b.memory.total_bytes
    # the same architecture, field by field (names, sources and the trained context may differ:
    # the catalog notes where it chose another max_context than config.json)
    skip = {"id", "name", "aliases", "source", "notes", "published_params", "max_context", "dtype"}
    cat_llm = cat.llm(b.inputs.llm) if b.inputs.model_kind == "vlm" else cat.resolve_model(cid)
    assert to_dict(fm.llm, exclude=skip) == to_dict(cat_llm, exclude=skip)


def test_llava_hf_config_differs_only_by_its_padded_vocab():
    """llava-hf/llava-v1.6-mistral-7b-hf pads the vocabulary to 32064 (text_config.vocab_size);
    the catalog entry follows the original 32000: 64 rows of 4096 in embed_tokens and lm_head."""
    from vramcalc.catalog import load_catalog
    from vramcalc.estimate import estimate
    from vramcalc.readers import load_model_files

    cat = load_catalog()
    fm = load_model_files(_ref("vlm", "llava-v1.6-mistral-7b-hf.json"))
    a = estimate(fm.model, cat.resolve_gpu("rtx4090"), None, fm.catalog(cat))
    b = estimate(cat.resolve_model("llava-1.6-mistral-7b"), cat.resolve_gpu("rtx4090"), None, cat)
    assert a.params.total - b.params.total == 2 * 64 * 4096
    assert (a.params.vision, a.params.projector) == (b.params.vision, b.params.projector)
    assert a.inputs.image_tokens_per_image == b.inputs.image_tokens_per_image


TINY_CFG = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 100,
    "max_position_embeddings": 512,
    "torch_dtype": "bfloat16",
}


def _tiny_hf_tensors(dtype: str = "BF16") -> dict:
    t = {"model.embed_tokens.weight": (dtype, (100, 64)), "model.norm.weight": (dtype, (64,)), "lm_head.weight": (dtype, (100, 64))}
    for i in range(2):
        p = f"model.layers.{i}"
        t |= {
            f"{p}.input_layernorm.weight": (dtype, (64,)),
            f"{p}.post_attention_layernorm.weight": (dtype, (64,)),
            f"{p}.self_attn.q_proj.weight": (dtype, (64, 64)),
            f"{p}.self_attn.k_proj.weight": (dtype, (32, 64)),
            f"{p}.self_attn.v_proj.weight": (dtype, (32, 64)),
            f"{p}.self_attn.o_proj.weight": (dtype, (64, 64)),
            f"{p}.mlp.gate_proj.weight": (dtype, (128, 64)),
            f"{p}.mlp.up_proj.weight": (dtype, (128, 64)),
            f"{p}.mlp.down_proj.weight": (dtype, (64, 128)),
        }
    return t


# 2 x 6400 (embed, lm_head) + 64 + 2 x (128 + 4096 + 2048 + 2048 + 4096 + 3 x 8192) = 12800 + 64 + 2 x 36992
TINY_PARAMS = 2 * 6400 + 64 + 2 * (2 * 64 + 2 * 4096 + 2 * 2048 + 3 * 8192)


def test_safetensors_folder_exact_counts(tmp_path, runner):
    from vramcalc.readers import load_model_files

    assert TINY_PARAMS == 86848
    (tmp_path / "config.json").write_text(json.dumps(TINY_CFG))
    tensors = _tiny_hf_tensors()
    names = list(tensors)
    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {k: tensors[k] for k in names[:10]})
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {k: tensors[k] for k in names[10:]})
    fm = load_model_files(tmp_path, runtime="transformers")
    assert fm.safetensors.params == TINY_PARAMS and fm.safetensors.bytes == 2 * TINY_PARAMS
    assert fm.llm.published_params == TINY_PARAMS and fm.quant == "bf16"
    assert fm.weights.llm.bytes == 2 * TINY_PARAMS  # transformers loads the checkpoint's tensors as they are
    r = runner.invoke(app, ["check", str(tmp_path), "--gpu", "rtx3060", "--runtime", "transformers", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["memory"]["weights_bytes"]["llm"] == 2 * TINY_PARAMS and d["params"]["llm"] == TINY_PARAMS


def test_safetensors_header_agrees_with_safetensors_package(tmp_path):
    """Our 8-byte length + JSON header read gives what safetensors.safe_open reports."""
    np = pytest.importorskip("numpy")
    st = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    from vramcalc.readers import read_safetensors_header

    p = tmp_path / "real.safetensors"
    st.save_file({"a": np.zeros((3, 5), dtype=np.float16), "b": np.zeros((7,), dtype=np.float32)}, str(p))
    ours = {k: (v["dtype"], tuple(v["shape"])) for k, v in read_safetensors_header(p).items() if k != "__metadata__"}
    with safe_open(str(p), framework="numpy") as f:
        theirs = {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape())) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    assert ours == theirs == {"a": ("F16", (3, 5)), "b": ("F32", (7,))}


def _text(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def _bad_truncated_safetensors(d: Path) -> Path:
    _text(d / "config.json", json.dumps(TINY_CFG))
    write_safetensors(d / "model.safetensors", _tiny_hf_tensors(), data=False)
    return d


def _bad_missing_shard(d: Path) -> Path:
    _text(d / "config.json", json.dumps(TINY_CFG))
    write_safetensors(d / "model-00001-of-00002.safetensors", {"x": ("F32", (4,))})
    index = {"weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}}
    _text(d / "model.safetensors.index.json", json.dumps(index))
    return d


BAD_HF = {
    "not-json": (lambda d: _text(d / "config.json", "{nope"), "not valid JSON"),
    "not-a-config": (lambda d: _text(d / "config.json", '{"foo": 1}'), "not a model config"),
    "unknown-type": (lambda d: _text(d / "config.json", '{"model_type": "rwkv"}'), "model_type 'rwkv' is not supported"),
    "no-config": (lambda d: d, "folder has no config.json"),
    "truncated-safetensors": (_bad_truncated_safetensors, "truncated safetensors"),
    "missing-shard": (_bad_missing_shard, "model-00002-of-00002.safetensors"),
}


@pytest.mark.parametrize("case", list(BAD_HF))
def test_bad_config_or_folder_is_a_clean_error(case, tmp_path, runner):
    folder = tmp_path / "m"
    folder.mkdir()
    make, text = BAD_HF[case]
    path = make(folder)
    r = runner.invoke(app, ["check", str(path), "--gpu", "rtx3060"])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in r.output, r.stderr
    assert text in lines[0] and str(folder) in lines[0], lines[0]


# ---------------------------------------------------------------------------------------------
# import


def test_import_prints_a_valid_catalog_entry(tiny_gguf, runner):
    import yaml

    from vramcalc.schema import LlmSpec, parse

    r = runner.invoke(app, ["import", str(tiny_gguf)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("# llms/tiny-llama.yaml")
    spec = parse(LlmSpec, yaml.safe_load(r.stdout))
    assert spec.id == "tiny-llama" and spec.num_layers == 2 and spec.published_params == 1_692_928


def test_import_write_then_check_by_name(tiny_gguf, runner):
    from vramcalc.catalog import user_catalog_dir

    r = runner.invoke(app, ["import", str(tiny_gguf), "--write"])
    assert r.exit_code == 0, r.output
    assert (user_catalog_dir() / "llms" / "tiny-llama.yaml").is_file()
    r = runner.invoke(app, ["check", "tiny-llama", "--gpu", "rtx3060", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["params"]["llm"] == 1_692_928
    # again without --force: refused, nothing overwritten
    r = runner.invoke(app, ["import", str(tiny_gguf), "--write"])
    assert r.exit_code == 2 and "--force" in r.stderr


def test_import_vlm_config_writes_three_entries(tmp_path, runner):
    from vramcalc.catalog import user_catalog_dir

    folder = tmp_path / "Qwen2-VL-7B-Instruct"
    folder.mkdir()
    shutil.copy(_ref("vlm", "Qwen2-VL-7B-Instruct.json"), folder / "config.json")
    r = runner.invoke(app, ["import", str(folder), "--write", "--id", "my-qwen2-vl"])
    assert r.exit_code == 0, r.output
    root = user_catalog_dir()
    for rel in ("llms/my-qwen2-vl-text.yaml", "encoders/my-qwen2-vl-vision.yaml", "vlms/my-qwen2-vl.yaml"):
        assert (root / rel).is_file(), rel
    r = runner.invoke(app, ["validate", str(root)])
    assert r.exit_code == 0, r.output  # the written entries validate (image_tokens keeps its 'kind')
    size = ["--image-size", "1024x768"]
    a = json.loads(runner.invoke(app, ["check", "my-qwen2-vl", "--gpu", "rtx4090", "--json", *size]).stdout)
    b = json.loads(runner.invoke(app, ["check", "qwen2-vl-7b", "--gpu", "rtx4090", "--json", *size]).stdout)
    assert a["params"] == b["params"] and a["memory"]["total_bytes"] == b["memory"]["total_bytes"]


def test_import_refuses_to_shadow_a_builtin_id(tmp_path, runner):
    folder = tmp_path / "llama-2-7b"
    folder.mkdir()
    shutil.copy(_ref("llm", "Llama-2-7b.json"), folder / "config.json")
    r = runner.invoke(app, ["import", str(folder), "--write"])
    assert r.exit_code == 2 and "already a built-in" in r.stderr and "--id" in r.stderr


@pytest.mark.parametrize("argv", [["check", "llama-2-7b", "--gpu", "rtx3060"], ["fit", "--gpu", "rtx3060", "--json"]])
def test_no_torch_and_no_gguf_for_catalog_commands(argv):
    """The gguf package is imported only when a file is given; check and fit never import torch."""
    import subprocess
    import sys

    code = (
        f"import sys; from vramcalc.cli import main; sys.argv=['vramcalc', *{argv!r}];\n"
        "try: main()\nexcept SystemExit: pass\nassert 'gguf' not in sys.modules and 'torch' not in sys.modules, 'imported'"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_looks_like_path():
    from vramcalc.readers import looks_like_path

    assert looks_like_path("./x.gguf") and looks_like_path("model.gguf") and looks_like_path("/abs/folder")
    assert not looks_like_path("llama-2-7b") and not looks_like_path("meta-llama/Llama-2-7b-hf")


def test_input_error_is_exit_code_2():
    assert InputError.exit_code == 2


def test_split_gguf_reads_every_part(tmp_path):
    """llama.cpp gguf-split: model-00001-of-00002.gguf holds the metadata and some tensors, the
    other part the rest; the weights are the sum over the parts."""
    from vramcalc.readers import load_model_files

    tensors = llama_tensors(**TINY, types={})
    half = len(tensors) // 2
    write_gguf(tmp_path / "tiny-00001-of-00002.gguf", "llama", dict(TINY_META, **{"split.count": 2}), tensors[:half], file_type=15)
    write_gguf(tmp_path / "tiny-00002-of-00002.gguf", "llama", {"split.count": 2}, tensors[half:])
    fm = load_model_files(tmp_path / "tiny-00001-of-00002.gguf")
    assert fm.weights.llm.bytes == 1_107_152 and fm.weights.llm.params == 1_692_928
    (tmp_path / "tiny-00002-of-00002.gguf").unlink()
    with pytest.raises(InputError, match="part 2 of this split GGUF is missing"):
        load_model_files(tmp_path / "tiny-00001-of-00002.gguf")


def test_qwen3_moe_with_qk_norm(tmp_path):
    from vramcalc.readers import load_model_files

    meta = dict(
        TINY_META,
        **{
            "expert_count": 8,
            "expert_used_count": 2,
            "expert_feed_forward_length": 256,
            "attention.key_length": 64,
            "general.name": "Tiny Qwen3 MoE",
        },
    )
    tensors = [t for t in llama_tensors(**TINY, types={}) if not t[0].split(".")[-2].startswith("ffn_") or "norm" in t[0]]
    for i in range(2):
        tensors += [
            (f"blk.{i}.attn_q_norm.weight", (64,), "F32"),
            (f"blk.{i}.attn_k_norm.weight", (64,), "F32"),
            (f"blk.{i}.ffn_gate_inp.weight", (256, 8), "F32"),
            (f"blk.{i}.ffn_gate_exps.weight", (256, 256, 8), "Q4_K"),
            (f"blk.{i}.ffn_up_exps.weight", (256, 256, 8), "Q4_K"),
            (f"blk.{i}.ffn_down_exps.weight", (256, 256, 8), "Q6_K"),
        ]
    fm = load_model_files(write_gguf(tmp_path / "q3.gguf", "qwen3moe", meta, tensors))
    s = fm.llm
    assert s.family == "qwen3_moe" and s.qk_norm and s.moe.num_experts == 8 and s.moe.expert_intermediate_size == 256
    assert fm.notes == []
    # experts: 8 x 256 x 256 = 524288 weights per tensor; Q4_K 294912 bytes, Q6_K 430080 bytes
    assert fm.weights.llm.by_type["Q6_K"] == 210000 + 2 * (26880 + 430080)


def test_unknown_ggml_type_is_named(tmp_path):
    """A tensor type id the gguf package does not know (a newer quantization): a clean error."""
    from vramcalc.readers import read_gguf_header

    p = write_gguf(tmp_path / "one.gguf", "llama", {}, [("token_embd.weight", (256, 4), "F32")])
    raw = bytearray(p.read_bytes())
    name = b"token_embd.weight"
    at = raw.index(name) + len(name) + 4 + 2 * 8  # after the name: n_dims (u32), 2 dims (u64), then the type (u32)
    assert struct.unpack_from("<I", raw, at)[0] == 0  # F32
    struct.pack_into("<I", raw, at, 250)
    p.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="GGML type 250"):
        read_gguf_header(p)


def test_deepseek2_mla_and_shared_experts(tmp_path):
    """DeepSeek-V2-style: MLA attention (compressed KV), a leading dense layer, routed + shared experts."""
    from vramcalc.readers import load_model_files

    meta = dict(
        TINY_META,
        **{
            "attention.head_count_kv": 4,
            "attention.key_length": 96,
            "attention.value_length": 64,
            "rope.dimension_count": 32,
            "attention.kv_lora_rank": 128,
            "expert_count": 4,
            "expert_used_count": 2,
            "expert_shared_count": 1,
            "leading_dense_block_count": 1,
            "expert_feed_forward_length": 256,
            "general.name": "Tiny DeepSeek",
        },
    )
    t = [("token_embd.weight", (256, 1000), "Q4_K")]
    for i in range(2):
        b = f"blk.{i}"
        t += [
            (f"{b}.attn_norm.weight", (256,), "F32"),
            (f"{b}.attn_q.weight", (256, 384), "F16"),
            (f"{b}.attn_kv_a_mqa.weight", (256, 160), "F16"),
            (f"{b}.attn_kv_a_norm.weight", (128,), "F32"),
            (f"{b}.attn_kv_b.weight", (128, 512), "F16"),
            (f"{b}.attn_output.weight", (256, 256), "Q4_K"),
            (f"{b}.ffn_norm.weight", (256,), "F32"),
        ]
        if i == 0:
            t += [
                (f"{b}.ffn_gate.weight", (256, 512), "Q4_K"),
                (f"{b}.ffn_up.weight", (256, 512), "Q4_K"),
                (f"{b}.ffn_down.weight", (512, 256), "Q6_K"),
            ]
        else:
            t += [
                (f"{b}.ffn_gate_inp.weight", (256, 4), "F32"),
                (f"{b}.ffn_gate_exps.weight", (256, 256, 4), "Q4_K"),
                (f"{b}.ffn_up_exps.weight", (256, 256, 4), "Q4_K"),
                (f"{b}.ffn_down_exps.weight", (256, 256, 4), "Q6_K"),
                (f"{b}.ffn_gate_shexp.weight", (256, 256), "Q4_K"),
                (f"{b}.ffn_up_shexp.weight", (256, 256), "Q4_K"),
                (f"{b}.ffn_down_shexp.weight", (256, 256), "Q6_K"),
            ]
    t += [("output_norm.weight", (256,), "F32"), ("output.weight", (256, 1000), "Q6_K")]
    fm = load_model_files(write_gguf(tmp_path / "ds.gguf", "deepseek2", meta, t))
    s = fm.llm
    assert s.mla is not None and (s.mla.kv_lora_rank, s.mla.qk_nope_head_dim, s.mla.qk_rope_head_dim, s.mla.v_head_dim) == (128, 64, 32, 64)
    assert s.moe is not None and s.moe.dense_layers == [0] and s.moe.shared_experts == 1 and s.moe.shared_expert_intermediate_size == 256
    assert fm.notes == []  # the architecture model has exactly the file's tensors
    assert fm.weights.llm.bytes == sum(nbytes(ty, sh) for _, sh, ty in t)


def test_folder_of_ggufs_picks_the_model_and_its_mmproj(tmp_path):
    """A folder as ollama/LM Studio users keep it: the model (split in two parts) and an mmproj."""
    from vramcalc.readers import load_model_files

    tensors = llama_tensors(**TINY, types={})
    write_gguf(tmp_path / "tiny-00001-of-00002.gguf", "llama", dict(TINY_META, **{"split.count": 2}), tensors[:5], file_type=15)
    write_gguf(tmp_path / "tiny-00002-of-00002.gguf", "llama", {"split.count": 2}, tensors[5:])
    fm = load_model_files(tmp_path)
    assert fm.weights.llm.bytes == 1_107_152 and fm.model.kind == "llm"
    with pytest.raises(InputError, match=r"--mmproj goes with a \.gguf"):
        load_model_files(_ref("llm", "Llama-2-7b.json"), mmproj=tmp_path / "x.gguf")


def _clip_tensors(h: int = 64, ff: int = 128, layers: int = 2, cls: bool = True, n_pos: int = 577) -> list:
    t = [("v.patch_embd.weight", (14, 14, 3, h), "F16")]
    if cls:
        t.append(("v.class_embd", (h,), "F32"))
    if n_pos:
        t.append(("v.position_embd.weight", (h, n_pos), "F32"))
    for i in range(layers):
        b = f"v.blk.{i}"
        t += [
            (f"{b}.ln1.weight", (h,), "F32"),
            (f"{b}.ln1.bias", (h,), "F32"),
            (f"{b}.ln2.weight", (h,), "F32"),
            (f"{b}.ln2.bias", (h,), "F32"),
        ]
        for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
            t += [(f"{b}.{n}.weight", (h, h), "F16"), (f"{b}.{n}.bias", (h,), "F32")]
        t += [(f"{b}.ffn_up.weight", (h, ff), "F16"), (f"{b}.ffn_down.weight", (ff, h), "F16")]
    return t


MMPROJ_CASES = {
    # LLaVA-1.6 anyres (clip.vision.image_grid_pinpoints, flattened pairs) at 672x672: the 336 px base image,
    # 24 x 24 = 576 tokens, + the 2 x 2 grid of 336 px tiles, 48 x 48 = 2,304, + one newline per row of
    # the grid, 48: 576 + 2,304 + 48 = 2,928 (LLaVA-NeXT's pack_image_features; the catalog's llava-1.6 too)
    "llava-1.6-anyres": (
        {
            "clip.projector_type": "mlp",
            "clip.vision.image_size": 336,
            "clip.vision.image_grid_pinpoints": [336, 672, 672, 336, 672, 672, 1008, 336, 336, 1008],
        },
        [("mm.0.weight", (64, 256), "F16"), ("mm.2.weight", (256, 256), "F16")],
        None,
        "anyres",
        2928,
    ),
    # Gemma 3: 896 px / 14 = 64 patches a side, pooled 4x4 -> 256 tokens
    "gemma3": (
        {"clip.projector_type": "gemma3", "clip.vision.image_size": 896, "clip.vision.projector.scale_factor": 4},
        [("mm.input_projection.weight", (64, 256), "F16"), ("mm.soft_emb_norm.weight", (64,), "F32")],
        None,
        "fixed",
        256,
    ),
    # Qwen2-VL merger: 1024x768 -> smart_resize to 1036x756 (factor 28) -> 74 x 54 patches of 14, merged
    # 2 x 2 -> 37 x 27 = 999 tokens
    "qwen2vl": (
        {"clip.projector_type": "qwen2vl_merger", "clip.vision.image_size": 560},
        [("mm.0.weight", (256, 256), "F16"), ("mm.2.weight", (256, 256), "F16")],
        (1024, 768),
        "dynamic",
        999,
    ),
}


@pytest.mark.parametrize("case", list(MMPROJ_CASES))
def test_mmproj_projector_types(case, tmp_path):
    from vramcalc.estimate import Workload, estimate
    from vramcalc.readers import load_model_files

    meta, proj, size, kind, tokens = MMPROJ_CASES[case]
    meta = {
        **meta,
        "clip.vision.patch_size": 14,
        "clip.vision.embedding_length": 64,
        "clip.vision.feed_forward_length": 128,
        "clip.vision.block_count": 2,
        "clip.vision.attention.head_count": 4,
        "general.name": case,
    }
    vis = _clip_tensors(cls=case != "gemma3", n_pos=0 if case == "qwen2vl" else 577)
    mm = write_gguf(tmp_path / "mmproj.gguf", "clip", meta, vis + proj)
    fm = load_model_files(tiny_llama(tmp_path / "llm.gguf"), mm)
    assert fm.model.image_tokens.kind == kind
    from vramcalc.catalog import load_catalog

    est = estimate(fm.model, load_catalog().resolve_gpu("rtx3060"), Workload(image_size=size), fm.catalog(load_catalog()), fm.weights)
    assert est.inputs.image_tokens_per_image == tokens
    assert est.memory.weights_bytes.projector == sum(nbytes(t, s) for _, s, t in proj)


# ---------------------------------------------------------------------------------------------
# readers/: file objects, module boundaries, the catalog overlay


def test_gguf_header_from_file_objects(tiny_gguf):
    """The header parser reads any seekable binary file object (an open file, io.BytesIO, later a
    remote file) the same as a path, by plain reads of the header only."""
    import io

    from vramcalc.readers import read_gguf_header

    want = read_gguf_header(tiny_gguf)
    with open(tiny_gguf, "rb") as f:
        f.seek(100)  # the reader starts from the file's beginning, wherever the object stands
        from_file = read_gguf_header(f)
        assert not f.closed  # the caller's object is left open
    assert from_file.path == tiny_gguf and from_file.tensors == want.tensors and from_file.metadata == want.metadata
    assert from_file.data_offset == want.data_offset and from_file.file_size == want.file_size
    from_bytes = read_gguf_header(io.BytesIO(tiny_gguf.read_bytes()), name="remote/tiny.gguf")
    assert from_bytes.tensors == want.tensors and from_bytes.metadata == want.metadata and str(from_bytes.path) == "remote/tiny.gguf"


class _CountingReader:
    """A seekable stream (read, seek, tell only) that counts the bytes read and returns at most 7 bytes per read."""

    def __init__(self, data: bytes):
        self.data, self.pos, self.read_bytes = data, 0, 0

    def read(self, n: int = -1) -> bytes:
        n = min(7, len(self.data) - self.pos if n < 0 else n)
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        self.read_bytes += len(out)
        return out

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = {0: off, 1: self.pos + off, 2: len(self.data) + off}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos


def test_gguf_stream_reads_only_the_header_and_skips_long_arrays(tmp_path):
    """A stream giving short reads parses the same; a 5,000-token vocabulary is skipped, not kept;
    the tensor data is not read (a file with 10 MB of data costs the header plus one chunk at most)."""
    from vramcalc.readers import SkippedArray, read_gguf_header
    from vramcalc.readers.gguf import CHUNK_BYTES

    p = write_gguf(tmp_path / "v.gguf", "llama", TINY_META, llama_tensors(**TINY, types={}), vocab=5000)
    want = read_gguf_header(p)
    data = p.read_bytes() + b"\0" * 10_000_000
    stream = _CountingReader(data)
    got = read_gguf_header(stream, name=str(p))
    assert got.metadata == want.metadata and got.tensors == want.tensors and got.data_offset == want.data_offset
    assert got.metadata["tokenizer.ggml.tokens"] == SkippedArray(5000)
    assert got.file_size == len(data)
    assert stream.read_bytes <= want.data_offset + CHUNK_BYTES


def test_gguf_stream_cut_short_is_a_clean_error(tiny_gguf):
    """A stream that ends inside the header: the same one-line InputError as a truncated file."""
    import io

    from vramcalc.readers import read_gguf_header

    with pytest.raises(InputError, match="truncated or corrupt GGUF file"):
        read_gguf_header(io.BytesIO(tiny_gguf.read_bytes()[:900]), name="cut.gguf")
    with pytest.raises(InputError, match="not a GGUF file"):
        read_gguf_header(io.BytesIO(b"PK\x03\x04" + b"\0" * 100))


def test_readers_import_no_private_names_of_each_other():
    """No module of vramcalc.readers imports another module's private (_x) names."""
    import ast

    import vramcalc.readers

    folder = Path(vramcalc.readers.__file__).parent
    modules = sorted(folder.glob("*.py"))
    assert {m.stem for m in modules} >= {"__init__", "gguf", "gguf_spec", "safetensors", "hf_config"}
    offenders = []
    for mod in modules:
        for node in ast.walk(ast.parse(mod.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vramcalc"):
                offenders += [f"{mod.name}: from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
            elif (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in {m.stem for m in modules}
            ):  # module-attribute access such as gguf._Cursor on an imported vramcalc module
                offenders.append(f"{mod.name}: {node.value.id}.{node.attr}")
    assert offenders == []
    assert not (folder.parent / "files.py").exists()  # the old four-in-one module is gone


def test_catalog_overlay_adds_file_specs_and_leaves_the_base_alone(tiny_gguf):
    from vramcalc.catalog import load_catalog
    from vramcalc.readers import load_model_files

    base = load_catalog()
    fm = load_model_files(tiny_gguf)
    # a file model whose id shadows a catalog entry: the overlay answers with the file's spec
    shadow = dataclasses.replace(fm.llm, id="llama-2-7b")
    before = base.llm("llama-2-7b")
    cat = base.overlay([fm.llm, shadow])
    assert cat.llm("tiny-llama") is fm.llm and cat.llm("llama-2-7b") is shadow
    assert cat.resolve_model("Tiny-Llama") is fm.llm  # normalized keys too
    assert "tiny-llama" in cat.ids("llms") and cat.resolve_gpu("rtx3060") == base.resolve_gpu("rtx3060")
    assert base.llm("llama-2-7b") is before and "tiny-llama" not in base.raw["llms"] and base.lookup(["llms"], "tiny-llama") is None


def test_readers_exports_resolve_lazily():
    """Every exported name resolves (to its owning module's object); looks_like_path, which every
    `check` imports, loads no GGUF module and not the gguf package."""
    import subprocess
    import sys

    import vramcalc.readers as readers

    assert {"load_model_files", "read_gguf_header", "read_safetensors_header", "looks_like_path"} <= set(readers.__all__)
    for name in readers.__all__:
        value = getattr(readers, name)
        owner = getattr(value, "__module__", None)
        assert owner is None or owner.startswith(("vramcalc.readers.", "builtins", "typing")), (name, owner)
    code = (
        "import sys; from vramcalc.readers import looks_like_path; "
        "print(sorted(m for m in sys.modules if 'gguf' in m or m.startswith('numpy')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


# --- hostile files: a one-line error naming the problem, never a hang, a traceback or a number from garbage

_CFG = {
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
}


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"num_attention_heads": 0}, "'num_attention_heads' is 0, outside 1..256"),
        ({"num_hidden_layers": -2}, "not a plausible model"),
        ({"num_hidden_layers": 10**10}, "not a plausible model"),
        ({"num_attention_heads": "abc"}, "'num_attention_heads' is 'abc' \\(a string\\)"),
        ({"hidden_size": -256}, "hidden_size"),
        ({"sliding_window": 128, "layer_types": ["sliding_attention"] * 60_000}, "layer_types lists 60000 layers"),
    ],
)
def test_contradictory_config_is_an_input_error(tmp_path, update, message):
    from vramcalc.errors import InputError
    from vramcalc.readers import load_model_files

    p = _text(tmp_path / "config.json", json.dumps({**_CFG, **update}))
    with pytest.raises(InputError, match=message):
        load_model_files(p)


def test_special_files_are_refused_without_reading(tmp_path):
    import os

    from vramcalc.errors import InputError
    from vramcalc.readers import load_model_files

    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    for p in (fifo, Path("/dev/zero")):
        with pytest.raises(InputError, match="not a regular file"):
            load_model_files(p)


def test_gguf_with_an_absurd_layer_count_is_refused(tmp_path):
    from vramcalc.errors import InputError
    from vramcalc.readers import load_model_files

    meta = {**TINY_META, "block_count": 2**31}
    p = write_gguf(tmp_path / "deep.gguf", "llama", meta, llama_tensors(**TINY, types={}), file_type=15)
    with pytest.raises(InputError, match="not a plausible model"):
        load_model_files(p)


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "F16", "shape": [-5], "data_offsets": [0, 0]},  # negative dimension
        {"dtype": "F16", "shape": [10**12], "data_offsets": [0, 2]},  # a trillion elements in 2 bytes
        {"dtype": "F16", "shape": [3], "data_offsets": []},  # no offsets
        {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]},  # end before begin
    ],
)
def test_safetensors_header_that_contradicts_itself_is_refused(tmp_path, entry):
    """Sizes in a safetensors header must agree: shape x bytes per element (the format's dtype table)
    spans data_offsets; otherwise the parameter count would be invented from garbage."""
    import struct

    from vramcalc.errors import InputError
    from vramcalc.readers.safetensors import summarize_safetensors

    header = json.dumps({"w": entry}).encode()
    p = tmp_path / "model.safetensors"
    data = b"\0" * max((entry["data_offsets"] or [0, 0])[1], 8)
    p.write_bytes(struct.pack("<Q", len(header)) + header + data)
    with pytest.raises(InputError, match="corrupt safetensors header"):
        summarize_safetensors([p])
