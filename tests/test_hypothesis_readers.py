"""Property-based tests (hypothesis) over every reader (issue 14): GGUF headers (byte level and
field level), the GGUF -> spec layer, config.json, safetensors headers, and the user catalog's YAML.
Whatever a file holds, reading it gives a spec that agrees with the file, or a one-line InputError
naming the file: never another exception, a hang, or numbers that contradict the file's tensors.
"""

from __future__ import annotations

import json
import math
import struct
import tempfile
import time
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hostile_builders import (  # noqa: E402
    ARRAY,
    BOOL,
    F32,
    F64,
    I32,
    I64,
    STRING,
    TINY_CONFIG,
    U8,
    U32,
    U64,
    clip_meta,
    clip_tensors,
    raw_gguf,
    tiny_hf_tensors,
    tiny_meta,
    tiny_tensors,
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gguf_fixtures import write_safetensors  # noqa: E402
from vramcalc.errors import InputError  # noqa: E402

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

GGUF_VALUE = st.one_of(
    st.tuples(st.just(U32), st.integers(0, 2**32 - 1)),
    st.tuples(st.just(U64), st.integers(0, 2**64 - 1)),
    st.tuples(st.just(I32), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just(I64), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just(U8), st.integers(0, 255)),
    st.tuples(st.just(F32), st.floats(width=32, allow_nan=True, allow_infinity=True)),
    st.tuples(st.just(F64), st.floats(allow_nan=True, allow_infinity=True)),
    st.tuples(st.just(BOOL), st.booleans()),
    st.tuples(st.just(STRING), st.text(max_size=10)),
    st.tuples(st.just(ARRAY), st.tuples(st.just(U32), st.lists(st.integers(0, 2**32 - 1), max_size=4))),
    st.tuples(st.just(ARRAY), st.tuples(st.just(STRING), st.lists(st.text(max_size=4), max_size=3))),
    st.tuples(st.just(U32), st.sampled_from([0, 1, 2, 3, 4, 64, 256, 512, 1000, 2048])),
)
LLAMA_KEYS = [
    "block_count", "embedding_length", "context_length", "feed_forward_length", "attention__head_count",
    "attention__head_count_kv", "attention__key_length", "attention__sliding_window", "expert_count",
    "expert_used_count", "general__name", "general__file_type", "general__alignment", "general__architecture",
]  # fmt: skip


def _tensor_truth(fm) -> None:
    """A spec read from a GGUF agrees with its tensors (the header's tensors are the truth)."""
    import re

    from vramcalc.readers import read_gguf_header

    h = read_gguf_header(fm.path)
    t = {x.name: x for x in h.tensors}
    assert fm.llm.hidden_size == t["token_embd.weight"].shape[0]
    assert fm.llm.vocab_size == t["token_embd.weight"].shape[1]
    blocks = {int(m.group(1)) for x in h.tensors if (m := re.match(r"blk\.(\d+)\.", x.name))}
    assert blocks == set(range(fm.llm.num_layers))
    assert len(t) == len(h.tensors)
    q = t.get("blk.0.attn_q.weight")
    if q is not None:
        assert q.shape[1] % fm.llm.num_heads == 0
    assert fm.weights.llm.params == sum(x.numel for x in h.tensors)


def _estimate_is_sane(fm) -> None:
    from vramcalc.catalog import load_catalog
    from vramcalc.estimate import Workload, estimate

    cat = load_catalog()
    est = estimate(
        fm.model,
        cat.resolve_gpu("rtx3060"),
        Workload(runtime="llama.cpp" if fm.kind == "gguf" else "transformers"),
        fm.catalog(cat),
        fm.weights,
    )
    total = est.memory.total_bytes
    assert math.isfinite(total) and 0 < total < 1e18


def _read(path, mmproj=None, runtime="llama.cpp"):
    """load_model_files: a FileModel, or None after a one-line InputError naming the file."""
    from vramcalc.readers import load_model_files

    t0 = time.monotonic()
    try:
        fm = load_model_files(path, mmproj, runtime=runtime)
    except InputError as e:
        msg = str(e)
        assert "\n" not in msg
        assert Path(path).name in msg or (mmproj is not None and Path(mmproj).name in msg), msg
        fm = None
    assert time.monotonic() - t0 < 10
    return fm


@settings(max_examples=60, **SETTINGS)
@given(over=st.dictionaries(st.sampled_from(LLAMA_KEYS), GGUF_VALUE, max_size=3))
def test_gguf_metadata_fields(over):
    with tempfile.TemporaryDirectory() as d:
        p = raw_gguf(Path(d) / "m.gguf", tiny_meta(**over), tiny_tensors())
        fm = _read(p)
        if fm is not None:
            _tensor_truth(fm)
            _estimate_is_sane(fm)


@settings(max_examples=40, **SETTINGS)
@given(
    drop=st.sets(st.integers(0, 20), max_size=3),
    dup=st.sets(st.integers(0, 20), max_size=2),
    shift=st.sampled_from([None, 0, 1, 16, 32, -32]),
    dims=st.dictionaries(
        st.sampled_from(["hidden", "heads", "kv_heads", "ff", "vocab", "n_layers"]),
        st.sampled_from([1, 2, 3, 32, 64, 256, 257]),
        max_size=2,
    ),
)
def test_gguf_tensor_lists(drop, dup, shift, dims):
    try:
        tensors = tiny_tensors(dims=dims)
    except (AssertionError, ZeroDivisionError):
        return  # not a layout the fixture writer can express
    tensors = [x for i, x in enumerate(tensors) if i not in drop] + [tensors[i] for i in dup if i < len(tensors)]
    offsets = None
    if shift is not None:
        from hostile_builders import nbytes

        offsets, off = [], 0
        for _, s, t in tensors:
            offsets.append(max(0, off + shift))
            off += -(-nbytes(t, s) // 32) * 32
    with tempfile.TemporaryDirectory() as d:
        try:
            p = raw_gguf(Path(d) / "m.gguf", tiny_meta(), tensors, offsets=offsets)
        except AssertionError:
            return
        fm = _read(p)
        if fm is not None:
            _tensor_truth(fm)


@pytest.fixture(scope="module")
def tiny_bytes():
    with tempfile.TemporaryDirectory() as d:
        return raw_gguf(Path(d) / "m.gguf", tiny_meta(), tiny_tensors()).read_bytes()


@settings(max_examples=80, **SETTINGS)
@given(
    flips=st.lists(st.tuples(st.integers(0, 1500), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 1600)),
)
def test_gguf_bytes(tiny_bytes, flips, cut):
    data = bytearray(tiny_bytes)
    for pos, b in flips:
        if pos < len(data):
            data[pos] = b
    if cut is not None:
        data = data[:cut]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.gguf"
        p.write_bytes(bytes(data))
        fm = _read(p)
        if fm is not None:
            _tensor_truth(fm)


@settings(max_examples=40, **SETTINGS)
@given(
    meta=st.dictionaries(
        st.sampled_from(
            [
                "general.name",
                "general.architecture",
                "llama.block_count",
                "llama.embedding_length",
                "llama.attention.head_count",
                "llama.context_length",
                "llama.attention.head_count_kv",
            ]
        ),
        st.one_of(st.integers(-5, 2**64), st.floats(), st.text(max_size=5), st.booleans(), st.lists(st.integers(-2, 9), max_size=3)),
        max_size=7,
    )
)
def test_gguf_spec_layer(meta):
    """gguf_spec.gguf_llm on an in-memory header: any metadata values, the tiny llama's tensors."""
    from hostile_builders import nbytes

    from vramcalc.readers.gguf import GgufHeader, GgufTensorInfo
    from vramcalc.readers.gguf_spec import gguf_llm

    tensors, off = [], 0
    for name, shape, t in tiny_tensors():
        tensors.append(GgufTensorInfo(name, shape, t, off, nbytes(t, shape)))
        off += -(-nbytes(t, shape) // 32) * 32
    md = {"general.architecture": "llama", "llama.block_count": 2, "llama.attention.head_count": 4, **meta}
    h = GgufHeader(Path("mem.gguf"), 3, md, tensors, 1024, 1024 + off)
    try:
        spec, exact, _ = gguf_llm(h)
    except InputError as e:
        assert "mem.gguf" in str(e) and "\n" not in str(e)
        return
    assert spec.hidden_size == 256 and spec.num_layers == 2 and spec.vocab_size == 1000
    assert 256 % spec.num_heads == 0 and exact.params == sum(x.numel for x in tensors)


@settings(max_examples=30, **SETTINGS)
@given(
    over=st.dictionaries(
        st.sampled_from(
            [
                "clip__vision__embedding_length",
                "clip__vision__image_size",
                "clip__vision__patch_size",
                "clip__vision__block_count",
                "clip__vision__attention__head_count",
                "clip__vision__feed_forward_length",
                "clip__projector_type",
                "clip__vision__image_grid_pinpoints",
                "clip__vision__spatial_merge_size",
            ]
        ),
        GGUF_VALUE,
        max_size=2,
    ),
    llm_hidden=st.sampled_from([256, 256, 512]),
)
def test_mmproj_fields(over, llm_hidden):
    with tempfile.TemporaryDirectory() as d:
        llm = raw_gguf(Path(d) / "m.gguf", tiny_meta(), tiny_tensors())
        mm = raw_gguf(Path(d) / "mmproj.gguf", clip_meta(**over), clip_tensors(llm_hidden=llm_hidden))
        fm = _read(llm, mm)
        if fm is not None:
            assert llm_hidden == 256
            assert fm.encoder.hidden_size == 64 and fm.encoder.num_layers == 2
            _estimate_is_sane(fm)


JSON_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=6),
        st.sampled_from([0, 1, 2, 4, 256, 4096, 10**6]),
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)
CONFIG_KEYS = [
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size",
    "max_position_embeddings", "head_dim", "tie_word_embeddings", "sliding_window", "layer_types", "model_type",
    "text_config", "vision_config", "torch_dtype", "attention_bias", "mlp_bias", "hidden_act", "num_local_experts",
    "image_grid_pinpoints", "mm_tokens_per_image",
]  # fmt: skip
INT_FIELDS = {
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "vocab_size": "vocab_size",
    "max_position_embeddings": "max_context",
}


@settings(max_examples=80, **SETTINGS)
@given(over=st.dictionaries(st.sampled_from(CONFIG_KEYS), JSON_VALUE, max_size=3))
def test_hf_config_fields(over):
    from vramcalc.readers.hf_config import model_from_hf_config

    cfg = {**TINY_CONFIG, **over}
    try:
        cm = model_from_hf_config(cfg, Path("cfg/config.json"), "x", "x")
    except InputError as e:
        assert "config.json" in str(e) and "\n" not in str(e)
        return
    if cfg.get("model_type") == "llama":
        for key, field in INT_FIELDS.items():
            if key in over and over[key] is not None:
                assert getattr(cm.llm, field) == over[key] and type(over[key]) is int, (key, over[key])
        if isinstance(over.get("tie_word_embeddings"), bool):
            assert cm.llm.tied_embeddings == over["tie_word_embeddings"]


@settings(max_examples=25, **SETTINGS)
@given(
    over=st.dictionaries(st.sampled_from(CONFIG_KEYS), JSON_VALUE, max_size=2),
    text=st.sampled_from([None, "[", "{}", "null", '{"a": 1, "a": 2}', "\ud800"]),
)
def test_config_json_files(over, text):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "m"
        folder.mkdir()
        raw = json.dumps({**TINY_CONFIG, **over}) if text is None else text
        (folder / "config.json").write_text(raw, encoding="utf-8", errors="surrogatepass")
        write_safetensors(folder / "model.safetensors", tiny_hf_tensors())
        fm = _read(folder, runtime="transformers")
        if fm is not None:
            _estimate_is_sane(fm)


ST_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from(["F16", "BF16", "F32", "I8", "F8_E4M3", "Q4", "", "f16"]),
        "shape": st.one_of(
            st.lists(st.integers(-3, 2**40), max_size=3), st.text(max_size=3), st.integers(-2, 5), st.lists(st.floats(), max_size=2)
        ),
        "data_offsets": st.one_of(st.lists(st.integers(-5, 2**20), max_size=3), st.none(), st.text(max_size=2)),
    },
)


@settings(max_examples=80, **SETTINGS)
@given(header=st.dictionaries(st.text(max_size=6), st.one_of(ST_ENTRY, JSON_VALUE), max_size=4))
def test_safetensors_headers(header):
    from vramcalc.readers.safetensors import DTYPE_BYTES, summarize_safetensors

    raw = json.dumps(header).encode()
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "model.safetensors"
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            f.truncate(8 + len(raw) + 2**21)
        try:
            s = summarize_safetensors([p])
        except InputError as e:
            assert "model.safetensors" in str(e) and "\n" not in str(e)
            return
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert s.params == sum(math.prod(v["shape"]) for v in tensors.values())
    for v in tensors.values():
        size = DTYPE_BYTES.get(v["dtype"])
        if size is not None:
            assert v["data_offsets"][1] - v["data_offsets"][0] == math.prod(v["shape"]) * size


YAML_TEXT = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        [
            "a: &a [1]\nb: *a\n",
            "id: x\n\t- bad",
            "- 1\n- 2",
            "id: rtx3060-12gb\n",
            "id: 2024-01-01\n",
            "{" * 500,
            "id: !!python/object:os.system x",
        ]
    ),
    st.dictionaries(
        st.sampled_from(["id", "name", "aliases", "source", "vendor", "memory_bytes", "family", "num_layers"]), JSON_VALUE, max_size=5
    ).map(lambda d: json.dumps(d)),
)


@pytest.fixture(scope="module")
def mini_builtin(tmp_path_factory):
    """A small copy of the built-in catalog (a GPU, an LLM, an encoder, a VLM) to load fast."""
    import shutil

    from vramcalc.catalog import builtin_catalog_dir

    root = tmp_path_factory.mktemp("builtin")
    for kind, eid in [("gpus", "rtx3060-12gb"), ("llms", "vicuna-7b-v1.5"), ("encoders", "clip-vit-l-14-336"), ("vlms", "llava-1.5-7b")]:
        (root / kind).mkdir(exist_ok=True)
        shutil.copy(builtin_catalog_dir() / kind / f"{eid}.yaml", root / kind)
    return root


@settings(max_examples=50, **SETTINGS)
@given(
    text=YAML_TEXT,
    kind=st.sampled_from(["gpus", "llms", "encoders", "vlms"]),
    name=st.sampled_from(["x", "rtx3060-12gb", "llava-1.5-7b", "vicuna-7b-v1.5"]),
)
def test_user_catalog_yaml(mini_builtin, text, kind, name):
    from vramcalc.catalog import Catalog

    with tempfile.TemporaryDirectory() as d:
        user = Path(d) / "catalog"
        (user / kind).mkdir(parents=True)
        (user / kind / f"{name}.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        for cache in (True, True, False):  # cold, warm, uncached: the same answer
            t0 = time.monotonic()
            cat = Catalog.load([mini_builtin, user], cache=cache)
            assert time.monotonic() - t0 < 10
            # the built-in entries still resolve, to themselves, unless a valid user entry overrides by id and kind
            for k, eid in [("gpus", "rtx3060-12gb"), ("llms", "vicuna-7b-v1.5"), ("vlms", "llava-1.5-7b")]:
                raw = cat.raw[k][eid]
                if raw.path.parent.parent == mini_builtin:
                    assert cat.get(k, eid).id == eid
            for k in cat.raw:
                for eid, raw in cat.raw[k].items():
                    if raw.path.parent.parent == user:
                        # a user entry in the index is the file of that name and kind, and (loaded with the
                        # cache, which validates) it validates
                        assert (k, raw.path.stem) == (kind, eid)
                        if cache:
                            assert cat.get(k, eid).id == eid
