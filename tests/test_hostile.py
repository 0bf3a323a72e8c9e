"""Hostile input (issue 14): every example of the issue, as a regression test.

CLI values are usage errors naming the accepted range (exit 2, one line, no traceback); model files
whose metadata has the wrong type, an absurd count, or contradicts the header's tensors are one-line
InputErrors naming the file and the field; the user catalog cannot break or hijack the built-in one;
the catalog cache never serves a wrong answer. Hostile files are written byte by byte
(tests/hostile_builders.py), so nothing here depends on vramcalc's own output for what is expected.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hostile_builders import (
    ARRAY,
    BOOL,
    F32,
    STRING,
    TINY_CONFIG,
    U32,
    U64,
    clip_meta,
    clip_tensors,
    nbytes,
    nested_array,
    raw_gguf,
    tiny_hf_tensors,
    tiny_llama,
    tiny_meta,
    tiny_tensors,
    write_config,
)

from gguf_fixtures import write_safetensors
from vramcalc.cli import app
from vramcalc.errors import InputError


def _cli(runner, *argv: str):
    from vramcalc.catalog import load_catalog

    load_catalog.cache_clear()  # each invocation as a fresh process (notices are printed once per process)
    res = runner.invoke(app, list(argv))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"traceback for {argv[:6]}: {res.exception!r}")
    return res


def _usage_error(runner, *argv: str, says: str = "") -> str:
    res = _cli(runner, *argv)
    out = res.output
    assert res.exit_code == 2, (argv, res.exit_code, out[-300:])
    assert "Traceback" not in out
    assert says in out, (says, out[-300:])
    return out


# ---------------------------------------------------------------------------------------------
# 1. CLI values

HUGE = "9" * 310


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--ram", "-5"], "at most 1,048,576 GiB"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--ram", "0"], "more than 0"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--ram", "inf"], "--ram"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--ram", "nan"], "--ram"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--ram", "1e300"], "at most 1,048,576 GiB"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--ram", "9" * 400 + "GiB"], "--ram"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--ctx", HUGE], "1<=x<=16777216"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--batch", HUGE], "1<=x<=4096"),
        (["check", "llava-7b", "--gpu", "rtx3060", "--images", HUGE], "0<=x<=1024"),
        (["check", "llava-7b", "--gpu", "rtx3060", "--images", "9223372036854775808"], "0<=x<=1024"),
        (["check", "llava-7b", "--gpu", "rtx3060", "--image-size", HUGE + "x10"], "1..65,535 pixels"),
        (["check", "llava-7b", "--gpu", "rtx3060", "--image-size", "100000x100000"], "1..65,535 pixels"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--gpu-layers", HUGE], "0<=x<=100000"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--ubatch", HUGE], "1<=x<=65536"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--ram-bandwidth", "1e308"], "up to 100,000"),
        (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--ram-bandwidth", "nan"], "--ram-bandwidth"),
        (["check", "llama-3.1-8b", "--gpu", HUGE + "xrtx3060"], "Unknown GPU"),
        (["fit", "--gpu", "rtx3060", "--ctx", HUGE], "1<=x<=16777216"),
        (["fit", "--gpu", "rtx3060", "--images", HUGE], "0<=x<=1024"),
        (["fit", "--gpu", "rtx3060", "--min-speed", "nan"], "0..1,000,000"),
        (["fit", "--gpu", "rtx3060", "--min-speed", "inf"], "0..1,000,000"),
        (["fit", "--gpu", "rtx3060", "--limit", HUGE], "1<=x<=100000"),
        (["list", "gpus", "--min-memory", "nan"], "0..1,048,576"),
        (["list", "gpus", "--min-memory", "-1"], "0..1,048,576"),
        (["probe", "--batch", HUGE], "1..4096"),
        (["check", "a" * 300, "--gpu", "rtx3060"], "Unknown model"),
        # a 5,000-character "Ollama tag": no store path is stat'ed with it (ENAMETOOLONG, fuzz seed 16)
        (["check", "9" * 5000, "--gpu", "rtx3060"], "Unknown model"),
        (["check", "./" + "a" * 300 + ".gguf", "--gpu", "rtx3060"], "File name too long"),
        (["import", "a" * 300], "no such file, and not a Hugging Face repo id"),
        (["validate", "a" * 300], "File name too long"),
        (["show", "a" * 300], "Unknown id"),
    ],
)
def test_absurd_cli_values_are_usage_errors(runner, argv, says):
    _usage_error(runner, *argv, says=says)


def test_values_inside_the_range_still_work(runner):
    res = _cli(runner, "check", "llava-7b", "--gpu", "rtx3060", "--images", "1024", "--ctx", "4096", "--json")
    assert res.exit_code in (0, 1), res.output[-300:]
    assert json.loads(res.stdout)["inputs"]["images"] == 1024
    res = _cli(runner, "check", "llama-3.1-8b", "--gpu", "rtx3060", "--gpu-layers", "999", "--ram", "64", "--json")
    assert res.exit_code == 0, res.output[-300:]


def test_unreadable_model_file_is_one_line(tmp_path, runner, monkeypatch):
    p = tiny_llama(tmp_path / "m.gguf")

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    # root reads any file whatever its mode: simulate the refusal the way the OS reports it
    monkeypatch.setattr("vramcalc.readers.load._load", refuse)
    out = _usage_error(runner, "check", str(p), "--gpu", "rtx3060", says="Permission denied")
    assert out.count("\n") <= 2


def test_probe_markdown_path_is_checked_before_measuring(tmp_path, runner, monkeypatch):
    def must_not_run(*a, **k):
        raise AssertionError("the probe measured before checking --markdown")

    monkeypatch.setattr("vramcalc.probe.run.require_torch", must_not_run)
    _usage_error(runner, "probe", "--markdown", str(tmp_path / "no" / "dir" / "x.md"), says="no folder")
    _usage_error(runner, "probe", "--markdown", str(tmp_path / ("x" * 300 + ".md")), says="longer than 255 bytes")
    _usage_error(runner, "probe", "--markdown", str(tmp_path), says="cannot write")


# ---------------------------------------------------------------------------------------------
# 2. Files: GGUF metadata and tensors


def _input_error(path, mmproj=None, runtime="llama.cpp") -> str:
    from vramcalc.readers import load_model_files

    with pytest.raises(InputError) as e:
        load_model_files(path, mmproj, runtime=runtime)
    msg = str(e.value)
    assert ("\n" not in msg and str(Path(path).name) in msg) or (mmproj and Path(mmproj).name in msg), msg
    return msg


_T = tiny_tensors()


def _offsets(shift: int) -> list[int]:
    out, off = [], 0
    for _, s, t in _T:
        out.append(off + shift)
        off += -(-nbytes(t, s) // 32) * 32 + 32
    return out


GGUF_CASES = {
    "head_count string": (dict(meta=tiny_meta(attention__head_count=(STRING, "x"))), "'llama.attention.head_count' is 'x'"),
    "head_count float": (dict(meta=tiny_meta(attention__head_count=(F32, 4.5))), "'llama.attention.head_count' is 4.5"),
    "head_count 0": (dict(meta=tiny_meta(attention__head_count=(U32, 0))), "'llama.attention.head_count' is 0"),
    "head_count 2^40": (dict(meta=tiny_meta(attention__head_count=(U64, 2**40))), "'llama.attention.head_count' is 1,099,511,627,776"),
    "head_count 3 (attn_q has 256 outputs)": (
        dict(meta=tiny_meta(attention__head_count=(U32, 3), attention__head_count_kv=(U32, 1))),
        "does not fit blk.0.attn_q.weight",
    ),
    "head_count_kv 0": (dict(meta=tiny_meta(attention__head_count_kv=(U32, 0))), "'llama.attention.head_count_kv' is 0"),
    "head_count_kv 3": (dict(meta=tiny_meta(attention__head_count_kv=(U32, 3))), "head_count_kv' 3 does not divide"),
    "block_count 2^63": (dict(meta=tiny_meta(block_count=(U64, 2**63))), "'llama.block_count' is 9,223,372,036,854,775,808"),
    "block_count float": (dict(meta=tiny_meta(block_count=(F32, 2.0))), "'llama.block_count' is 2.0 (a number)"),
    "block_count bool": (dict(meta=tiny_meta(block_count=(BOOL, True))), "'llama.block_count' is True (a boolean)"),
    "block_count 3 with 2 layers of tensors": (
        dict(meta=tiny_meta(block_count=(U32, 3))),
        "block_count' is 3 but the file's layer tensors",
    ),
    "block_count 1 with 2 layers of tensors": (
        dict(meta=tiny_meta(block_count=(U32, 1))),
        "block_count' is 1 but the file's layer tensors",
    ),
    "embedding_length contradicts token_embd": (dict(meta=tiny_meta(embedding_length=(U32, 512))), "token_embd.weight has rows of 256"),
    "embedding_length string": (dict(meta=tiny_meta(embedding_length=(STRING, "abc"))), "'llama.embedding_length' is 'abc'"),
    "context_length 2^63": (dict(meta=tiny_meta(context_length=(U64, 2**63))), "'llama.context_length' is 9,223,372,036,854,775,808"),
    "context_length 0": (dict(meta=tiny_meta(context_length=(U32, 0))), "'llama.context_length' is 0"),
    "general.name a list": (dict(meta=tiny_meta(general__name=(ARRAY, (U32, [1])))), "'general.name' is [1] (a list)"),
    "general.file_type a string": (dict(meta=tiny_meta(general__file_type=(STRING, "x"))), "'general.file_type' is 'x'"),
    "duplicate key, same value": (dict(meta=[*tiny_meta(), ("llama.block_count", U32, 2)]), "'llama.block_count' appears twice"),
    "duplicate key, other value": (
        dict(meta=[*tiny_meta(), ("llama.embedding_length", U32, 512)]),
        "'llama.embedding_length' appears twice",
    ),
    "arrays nested 100,000 deep": (
        dict(meta=[*tiny_meta(), ("llama.deep", ARRAY, nested_array(100_000))]),
        "'llama.deep' nests arrays too deeply",
    ),
    "duplicated tensor": (dict(tensors=[*_T, _T[1]]), "tensor 'blk.0.attn_norm.weight' appears twice"),
    "overlapping offsets": (dict(offsets=[0] * len(_T)), "overlap"),
    "unaligned offsets": (dict(offsets=_offsets(1)), "not a multiple of 32"),
}


@pytest.mark.parametrize("case", list(GGUF_CASES))
def test_hostile_gguf_is_a_one_line_error_naming_the_field(tmp_path, case):
    kw, says = GGUF_CASES[case]
    p = tiny_llama(tmp_path / "m.gguf", **kw)
    assert says in _input_error(p)


def test_the_untouched_tiny_gguf_reads(tmp_path):
    from vramcalc.readers import load_model_files

    fm = load_model_files(tiny_llama(tmp_path / "m.gguf"))
    assert (fm.llm.num_layers, fm.llm.hidden_size, fm.llm.num_heads, fm.llm.num_kv_heads) == (2, 256, 4, 2)


MMPROJ_CASES = {
    "no tensors": (clip_meta(), [], "no vision tower or projector tensors"),
    "projector for another model": (
        clip_meta(),
        clip_tensors(llm_hidden=512),
        "outputs 512 features but the language model's hidden size is 256",
    ),
    "embedding_length contradicts patch_embd": (
        clip_meta(clip__vision__embedding_length=(U32, 128)),
        clip_tensors(),
        "'clip.vision.embedding_length' is 128 but v.patch_embd.weight makes 64",
    ),
    "block_count contradicts v.blk": (
        clip_meta(clip__vision__block_count=(U32, 40)),
        clip_tensors(),
        "'clip.vision.block_count' does not match",
    ),
    "head_count 0": (clip_meta(clip__vision__attention__head_count=(U32, 0)), clip_tensors(), "'clip.vision.attention.head_count' is 0"),
    "patch_size 0": (clip_meta(clip__vision__patch_size=(U32, 0)), clip_tensors(), "'clip.vision.patch_size' is 0"),
    "image_size a string": (clip_meta(clip__vision__image_size=(STRING, "x")), clip_tensors(), "'clip.vision.image_size' is 'x'"),
    "odd pinpoints": (
        clip_meta(clip__vision__image_grid_pinpoints=(ARRAY, (U32, [0, 0, 5]))),
        clip_tensors(),
        "'clip.vision.image_grid_pinpoints' is not a list of (width, height) pairs",
    ),
}


@pytest.mark.parametrize("case", list(MMPROJ_CASES))
def test_hostile_mmproj_is_an_error(tmp_path, case):
    meta, tensors, says = MMPROJ_CASES[case]
    llm = tiny_llama(tmp_path / "m.gguf")
    mm = raw_gguf(tmp_path / "mmproj.gguf", meta, tensors)
    assert says in _input_error(llm, mm)


def test_matching_mmproj_reads(tmp_path):
    from vramcalc.readers import load_model_files

    fm = load_model_files(tiny_llama(tmp_path / "m.gguf"), raw_gguf(tmp_path / "mmproj.gguf", clip_meta(), clip_tensors()))
    assert fm.encoder is not None and fm.encoder.hidden_size == 64 and fm.encoder.num_layers == 2


def test_fifo_as_mmproj_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "mmproj.gguf"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    assert "not a regular file" in _input_error(tiny_llama(tmp_path / "m.gguf"), fifo)
    assert time.monotonic() - t0 < 5


# ---------------------------------------------------------------------------------------------
# 2. Files: config.json, safetensors, index

CONFIG_CASES = {
    "hidden_size 1.5": ({"hidden_size": 1.5}, "'hidden_size' is 1.5 (a number)"),
    "hidden_size true": ({"hidden_size": True}, "'hidden_size' is True (a boolean)"),
    "hidden_size '256'": ({"hidden_size": "256"}, "'hidden_size' is '256' (a string)"),
    "tie_word_embeddings 'abc'": ({"tie_word_embeddings": "abc"}, "'tie_word_embeddings' is 'abc' (a string); expected true or false"),
    "num_hidden_layers 10^6": ({"num_hidden_layers": 10**6}, "'num_hidden_layers' is 1,000,000, outside 1..1,024"),
    "num_hidden_layers 10^9": ({"num_hidden_layers": 10**9}, "outside 1..1,024"),
    "num_hidden_layers 2.5": ({"num_hidden_layers": 2.5}, "'num_hidden_layers' is 2.5"),
    "num_attention_heads 2^40": ({"num_attention_heads": 2**40}, "'num_attention_heads' is 1,099,511,627,776"),
    "max_position_embeddings 10^30": ({"max_position_embeddings": 10**30}, "'max_position_embeddings' is a 31-digit number"),
    "vocab_size a list": ({"vocab_size": [1]}, "'vocab_size' is [1] (a list)"),
    "head_dim 1.5": ({"head_dim": 1.5}, "'head_dim' is 1.5"),
    "layer_types 100k": ({"sliding_window": 128, "layer_types": ["sliding_attention"] * 100_000}, "layer_types lists 100000 layers"),
    "layer_types an object": ({"sliding_window": 128, "layer_types": {"a": 1}}, "'layer_types' is {'a': 1} (an object)"),
    "text_config a list": ({"model_type": "llava", "text_config": [1]}, "'text_config' is [1] (a list)"),
    "vision_config a string": ({"model_type": "llava", "text_config": TINY_CONFIG, "vision_config": "x"}, "'vision_config' is 'x'"),
    "qwen2-vl depth 10^6": ({"model_type": "qwen2_vl", "vision_config": {"depth": 10**6}}, "'depth' is 1,000,000"),
    "gemma3 mm_tokens_per_image 0": (
        {"model_type": "gemma3", "text_config": {**TINY_CONFIG, "model_type": "gemma3_text"}, "mm_tokens_per_image": 0},
        "'mm_tokens_per_image' is 0",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_hostile_config_is_a_one_line_error_naming_the_field(tmp_path, case):
    update, says = CONFIG_CASES[case]
    t0 = time.monotonic()
    msg = _input_error(write_config(tmp_path / "m", {**TINY_CONFIG, **update}))
    assert says in msg
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"model_type": "llama", "hidden_size": ' + "9" * 5000 + "}", "not a plausible config.json"),
        ('{"model_type": "llama", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "JSON nested too deeply"),
        ('{"model_type": "llama", "hidden_size": 256, "hidden_size": 512}', "'hidden_size' appears twice"),
    ],
)
def test_hostile_json_text(tmp_path, text, says):
    assert says in _input_error(write_config(tmp_path / "m", text))


@pytest.mark.parametrize(
    ("index", "says"),
    [
        ("[1]", "not a safetensors index"),
        ('{"weight_map": [1, 2]}', "not a safetensors index"),
        ('{"weight_map": {"a": 1}}', "not a safetensors index"),
        ('{"weight_map": {"a": "../../etc/passwd"}}', "not a safetensors index"),
    ],
)
def test_hostile_safetensors_index(tmp_path, index, says):
    d = tmp_path / "m"
    write_config(d, TINY_CONFIG)
    write_safetensors(d / "model.safetensors", tiny_hf_tensors())
    (d / "model.safetensors.index.json").write_text(index)
    assert says in _input_error(d, runtime="transformers")


def test_huge_safetensors_index_is_refused_unread(tmp_path):
    d = tmp_path / "m"
    write_config(d, TINY_CONFIG)
    write_safetensors(d / "model.safetensors", tiny_hf_tensors())
    with open(d / "model.safetensors.index.json", "wb") as f:
        f.truncate(17 * 2**20)
    assert "too large for safetensors index" in _input_error(d, runtime="transformers")


def test_safetensors_header_with_a_tensor_named_twice(tmp_path):
    import struct

    from vramcalc.readers.safetensors import summarize_safetensors

    entry = '{"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}'
    header = ('{"w": ' + entry + ', "w": ' + entry + "}").encode()
    p = tmp_path / "model.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(InputError, match="names a tensor twice"):
        summarize_safetensors([p])


def test_a_7b_config_beside_a_tiny_safetensors_file_warns(tmp_path):
    from vramcalc.readers import load_model_files

    big = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32}
    big |= {"num_key_value_heads": 32, "vocab_size": 32000}
    d = tmp_path / "m"
    write_config(d, {**TINY_CONFIG, **big})
    write_safetensors(d / "model.safetensors", tiny_hf_tensors())
    fm = load_model_files(d, runtime="transformers")
    # 2 layers x (4 x 256^2 / ... ) : the tiny file holds 1,692,928 parameters (tests/hostile_builders.tiny_hf_tensors)
    assert any(n.startswith("Warning: config.json describes") and "1,692,928" in n for n in fm.notes), fm.notes
    ok = tmp_path / "ok"
    write_config(ok, TINY_CONFIG)
    write_safetensors(ok / "model.safetensors", tiny_hf_tensors())
    assert not any(n.startswith("Warning") for n in load_model_files(ok, runtime="transformers").notes)


# ---------------------------------------------------------------------------------------------
# 3. The user catalog


def _user(kind: str) -> Path:
    from vramcalc.catalog import user_catalog_dir

    d = user_catalog_dir() / kind
    d.mkdir(parents=True, exist_ok=True)
    return d


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join([*lines, "id: bomb", ""])


def test_yaml_alias_bomb_in_the_user_catalog_is_refused_fast(runner):
    (_user("llms") / "bomb.yaml").write_text(_bomb())
    assert len(_bomb()) < 600
    t0 = time.monotonic()
    res = _cli(runner, "check", "llama-3.1-8b", "--gpu", "rtx3060", "--json")
    assert time.monotonic() - t0 < 30
    assert res.exit_code == 0
    assert "bomb.yaml: refused: YAML anchors and aliases" in res.stderr
    from vramcalc.catalog import user_catalog_dir

    cache = user_catalog_dir().parent / "cache"
    assert sum(f.stat().st_size for f in cache.iterdir()) < 10 * 2**20


def test_bad_user_files_are_reported_and_skipped(runner, tmp_path):
    d = _user("llms")
    (d / "latin1.yaml").write_bytes(b"id: latin1\nname: caf\xe9\n")
    (d / "dir.yaml").mkdir()
    (d / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (d / "invalid.yaml").write_text("id: invalid\nname: x\n")
    (d / "big.yaml").write_bytes(b"#" * (2 * 2**20))
    for argv in (["list", "llms"], ["check", "llama-3.1-8b", "--gpu", "rtx3060"], ["show", "llava-7b"], ["fit", "--gpu", "rtx3060"]):
        res = _cli(runner, *argv)
        assert res.exit_code == 0, (argv, res.output[-400:])
        for name, reason in [
            ("latin1.yaml", "not UTF-8"),
            ("dir.yaml", "not a regular file"),
            ("dangling.yaml", "dangling symlink"),
            ("invalid.yaml", "Field required"),
            ("big.yaml", "larger than 1,048,576 bytes"),
        ]:
            assert any(name in line and reason in line for line in res.stderr.splitlines()), (argv, name, res.stderr)
    res = _cli(runner, "validate")
    assert res.exit_code == 1
    for name in ("latin1.yaml", "dir.yaml", "dangling.yaml", "invalid.yaml", "big.yaml"):
        assert name in res.output


def _llm_entry(eid: str, **over) -> dict:
    from vramcalc.catalog import load_catalog
    from vramcalc.readers import entry_data

    spec = load_catalog(include_user=False).llm("qwen2.5-7b")
    data = entry_data(spec)
    data.pop("aliases", None)
    data.pop("published_params", None)
    return {**data, "id": eid, **over}


def _write_yaml(path: Path, data: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_user_vlm_cannot_take_a_builtin_llm_id(runner):
    """One rule: a user entry replaces a built-in one only by the same id and kind."""
    vlm = {
        "id": "llama-3.1-8b",
        "name": "hijack",
        "source": "a user file for the test",
        "encoder": "clip-vit-l-14-336",
        "llm": "vicuna-7b-v1.5",
        "projector": {"kind": "mlp", "layers": 2},
        "image_tokens": {"kind": "fixed", "tokens": 576},
    }
    _write_yaml(_user("vlms") / "llama-3.1-8b.yaml", vlm)
    for argv in (["check", "llama-3.1-8b", "--gpu", "rtx3060", "--json"], ["show", "llama-3.1-8b", "--json"]):
        res = _cli(runner, *argv)
        assert res.exit_code == 0
        assert '"name": "hijack"' not in res.stdout
        assert "collides with llms/llama-3.1-8b" in res.stderr
    res = _cli(runner, "validate")
    assert res.exit_code == 1 and "collides with llms/llama-3.1-8b" in res.output


def test_user_id_equal_to_a_builtin_alias_is_refused_for_every_spelling(runner):
    from vramcalc.catalog import load_catalog

    alias = load_catalog(include_user=False).llm("llama-3.1-8b").aliases[0]  # e.g. meta-llama/Llama-3.1-8B
    _write_yaml(_user("llms") / "mine.yaml", _llm_entry("mine", aliases=[alias], name="mine"))
    load_catalog.cache_clear()
    cat = load_catalog()
    for spelling in ("llama-3.1-8b", alias, alias.lower(), alias.upper()):
        assert cat.resolve_model(spelling).id == "llama-3.1-8b"
    assert "mine" not in cat.raw["llms"]
    assert any("mine.yaml -> aliases -> 0" in p and "collides" in p for p in cat.user_problems)


def test_user_entry_overrides_a_builtin_by_the_same_id_and_says_so(runner):
    _write_yaml(_user("llms") / "qwen2.5-7b.yaml", _llm_entry("qwen2.5-7b", name="My Qwen", num_layers=14))
    for argv in (["check", "qwen2.5-7b", "--gpu", "rtx3060", "--json"], ["show", "qwen2.5-7b", "--json"]):
        res = _cli(runner, *argv)
        assert res.exit_code == 0, res.output[-300:]
        assert "is from your catalog" in res.stderr
    assert json.loads(_cli(runner, "show", "qwen2.5-7b", "--json").stdout)["num_layers"] == 14


def test_validate_without_arguments_reads_the_user_catalog(runner):
    (_user("gpus") / "broken.yaml").write_text("id: broken\nvendor: nvidia\n")
    res = _cli(runner, "validate", "--json")
    assert res.exit_code == 1
    assert any("broken.yaml" in p for p in json.loads(res.stdout)["problems"])


# ---------------------------------------------------------------------------------------------
# 4. The cache


def _cache_files() -> list[Path]:
    from vramcalc.catalog import user_catalog_dir

    d = user_catalog_dir().parent / "cache"
    return sorted(d.glob("catalog-*.pickle")) if d.is_dir() else []


def test_an_edit_that_keeps_size_and_mtime_is_seen(runner):
    p = _user("llms") / "mine.yaml"
    _write_yaml(p, _llm_entry("mine", name="mine", num_layers=20))
    st = p.stat()
    assert json.loads(_cli(runner, "show", "mine", "--json").stdout)["num_layers"] == 20
    text = p.read_text().replace("num_layers: 20", "num_layers: 10")
    assert len(text) == st.st_size
    p.write_text(text)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p / rsync -t leave it
    from vramcalc.catalog import load_catalog

    load_catalog.cache_clear()
    assert json.loads(_cli(runner, "show", "mine", "--json").stdout)["num_layers"] == 10


def test_cache_key_hashes_user_file_contents(tmp_path):
    from vramcalc.catalog import _cache_key

    root = tmp_path / "user"
    (root / "llms").mkdir(parents=True)
    p = root / "llms" / "x.yaml"
    p.write_text("id: x\nnum_layers: 20\n")
    k1 = _cache_key([("llms", str(p))], [root])
    p.write_text("id: x\nnum_layers: 10\n")
    assert _cache_key([("llms", str(p))], [root]) != k1


@pytest.mark.parametrize("junk", [b"null", b"[]", b"{}", b"", b"vramcalc catalog cache\n\x80\x04N.", b"\x00" * 100])
def test_a_corrupt_cache_is_discarded_and_rebuilt(runner, junk):
    _cli(runner, "list", "gpus")
    files = _cache_files()
    assert files
    for f in files:
        f.write_bytes(junk)
    from vramcalc.catalog import load_catalog

    for _ in range(2):
        load_catalog.cache_clear()
        res = _cli(runner, "check", "llama-3.1-8b", "--gpu", "rtx3060", "--json")
        assert res.exit_code == 0
        assert json.loads(res.stdout)["inputs"]["model"] == "llama-3.1-8b"
    assert all(f.read_bytes() != junk for f in _cache_files())


def test_a_cache_of_the_wrong_shape_is_discarded(runner):
    """A cache whose checksum is right but whose index has an unexpected shape is rebuilt, not trusted."""
    import zlib

    from vramcalc import catalog as c

    _cli(runner, "list", "gpus")
    (f,) = _cache_files()
    blob = f.read_bytes()
    key, _, _ = c._safe_loads(blob[len(c._CACHE_MAGIC) :], allow_specs=False)
    payload = c._pickle(({}, {}, ({"gpus": []}, {}, [])))
    f.write_bytes(c._CACHE_MAGIC + c._pickle((key, zlib.crc32(payload), payload)))
    c.load_catalog.cache_clear()
    assert c.load_catalog().resolve_gpu("rtx3060").id.startswith("rtx3060")


def test_cold_and_warm_runs_validate_alike(runner):
    """A YAML date in notes is not a string: the entry is refused cold and warm alike."""
    _write_yaml(_user("llms") / "dated.yaml", _llm_entry("dated", name="dated"))
    p = _user("llms") / "dated.yaml"
    p.write_text(p.read_text() + "notes: 2024-01-01\n")
    from vramcalc.catalog import load_catalog

    outs = []
    for _ in range(2):  # cold (builds the cache), then warm (reads it)
        load_catalog.cache_clear()
        res = _cli(runner, "show", "dated")
        outs.append((res.exit_code, "dated.yaml -> notes" in res.stderr))
    assert outs[0] == outs[1] == (2, True), outs


# ---------------------------------------------------------------------------------------------
# Found by benchmarks/fuzz.py (seed 14), kept as regression tests


def test_mmproj_pinpoints_that_are_not_whole_tiles_are_refused(tmp_path):
    """Pinpoints 237x200 with a 336 px tower gave a ZeroDivisionError in the estimate: the file's VLM
    now passes the image-token checks `validate` makes of catalog VLMs."""
    meta = clip_meta(clip__vision__image_grid_pinpoints=(ARRAY, (U32, [237, 200, 219, 179])))
    mm = raw_gguf(tmp_path / "mmproj.gguf", meta, clip_tensors())
    assert "is not a multiple of the encoder's 336 px" in _input_error(tiny_llama(tmp_path / "m.gguf"), mm)


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "F16", "shape": "3", "data_offsets": [0, 6]},  # a string read as the list [3]
        {"dtype": "F16", "shape": [1.5], "data_offsets": [0, 2]},  # int(1.5) = 1
        {"dtype": "F16", "shape": [True], "data_offsets": [0, 2]},
        {"dtype": 5, "shape": [1], "data_offsets": [0, 2]},
        {"dtype": "F16", "shape": [1], "data_offsets": {"0": 0, "1": 2}},
        {"dtype": "F16", "shape": [1], "data_offsets": [0, 2, 4]},
    ],
)
def test_safetensors_fields_of_the_wrong_type(tmp_path, entry):
    import struct

    from vramcalc.readers.safetensors import summarize_safetensors

    header = json.dumps({"w": entry}).encode()
    p = tmp_path / "model.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    with pytest.raises(InputError, match="corrupt safetensors"):
        summarize_safetensors([p])


def test_a_user_file_whose_id_is_not_its_name_replaces_nothing():
    from vramcalc.catalog import load_catalog

    _write_yaml(_user("llms") / "x.yaml", _llm_entry("qwen2.5-7b", name="not me", num_layers=14))
    cat = load_catalog()
    assert cat.llm("qwen2.5-7b").name != "not me"
    assert any("x.yaml -> id: 'qwen2.5-7b' must match the file name" in p for p in cat.user_problems)


def test_a_cached_entry_of_another_kind_or_id_is_not_served(runner):
    """A cache entry edited by hand (checksum recomputed) that unpickles to another entry is not used:
    the file is validated afresh."""
    import zlib

    from vramcalc import catalog as c

    _cli(runner, "list", "gpus")
    (f,) = _cache_files()
    blob = f.read_bytes()
    key, _, payload = c._safe_loads(blob[len(c._CACHE_MAGIC) :], allow_specs=False)
    heads, checked, index = c._safe_loads(payload, allow_specs=False)
    path = next(p for p in checked if p.endswith("rtx3060-12gb.yaml"))
    checked[path] = next(v for p, v in checked.items() if p.endswith("rtx4090.yaml"))  # another GPU's entry
    payload = c._pickle((heads, checked, index))
    f.write_bytes(c._CACHE_MAGIC + c._pickle((key, zlib.crc32(payload), payload)))
    c.load_catalog.cache_clear()
    assert c.load_catalog().resolve_gpu("rtx3060").id == "rtx3060-12gb"


def test_a_gguf_key_swallowing_binary_bytes_is_a_one_line_error(tmp_path):
    """A corrupt key length made the key hold the following bytes (newlines included), and the error
    message quoting it ran over several lines (found by benchmarks/fuzz.py, seed 15)."""
    p = tiny_llama(tmp_path / "m.gguf")
    data = bytearray(p.read_bytes())
    i = data.index(b"general.name") - 8
    data[i] = 60  # the key's length: 60 bytes instead of 12
    p.write_bytes(bytes(data))
    msg = _input_error(p)
    assert "is not a printable name" in msg


@pytest.mark.parametrize("cmd", ["check", "import"])
def test_dev_zero_and_a_fifo_as_the_model_are_refused_at_once(runner, tmp_path, cmd):
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    for target in ("/dev/zero", str(fifo)):
        t0 = time.monotonic()
        argv = [cmd, target] + (["--gpu", "rtx3060"] if cmd == "check" else [])
        _usage_error(runner, *argv, says="not a regular file")
        assert time.monotonic() - t0 < 5


def _sparse_gguf(path, n_tensors: int, n_kv: int, body: bytes, size: int = 8 * 2**30):
    """A GGUF header followed by zeros up to ``size`` bytes (sparse: a few KB on disk)."""
    import struct

    with open(path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + body)
        f.truncate(size)
    return path


def test_gguf_declared_counts_cannot_keep_the_parser_looping(tmp_path):
    """An 8 GB sparse file of zeros that declares 10^9 tokenizer strings, or 10^8 tensors, or one tensor
    name twice, is refused at once (the loops ran for minutes: review of the merged readers)."""
    import struct

    from vramcalc.readers.gguf import read_gguf_header

    key = b"tokenizer.ggml.tokens"
    strings = _sparse_gguf(tmp_path / "s.gguf", 0, 1, struct.pack("<Q", len(key)) + key + struct.pack("<IIQ", 9, 8, 10**9))
    many = _sparse_gguf(tmp_path / "t.gguf", 10**8, 0, b"")
    one = struct.pack("<Q", 1) + b"a" + struct.pack("<I", 1) + struct.pack("<Q", 32) + struct.pack("<IQ", 0, 0)
    twice = _sparse_gguf(tmp_path / "d.gguf", 2, 0, one + one, size=4096)
    for path, says in ((strings, "1,000,000,000 items"), (many, "100,000,000 tensors"), (twice, "'a' appears twice")):
        with pytest.raises(InputError, match=says):  # the declared count is refused before any loop
            read_gguf_header(path)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("linear_num_key_heads", 1.5),
        ("linear_num_key_heads", "16"),
        ("full_attention_interval", -3),
        ("full_attention_interval", 10**10),
        ("attn_output_gate", "false"),
        ("mtp_num_hidden_layers", 2.7),
    ],
)
def test_hybrid_config_fields_are_checked(tmp_path, runner, field, bad):
    """Qwen3.5's linear-attention fields go through the checked readers: 1.5 heads was read as 1,
    '"false"' as True, an interval of 10^10 was a MemoryError (review of the merged readers)."""
    src = Path(__file__).parent / "fixtures" / "reference" / "hf_configs" / "vlm" / "Qwen3.5-27B.json"
    cfg = json.loads(src.read_text(encoding="utf-8"))
    text = cfg["text_config"]
    text[field] = bad
    if field == "full_attention_interval":
        text.pop("layer_types", None)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    res = _cli(runner, "check", str(path), "--gpu", "h100-sxm")
    assert res.exit_code == 2, res.output[-400:]
    assert field in res.output and "Traceback" not in res.output
