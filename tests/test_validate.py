"""Mutation test for `vramcalc validate`: inject one kind of error at a time into a copy of the
catalog and check that it is reported with the right file and field (issue 6).

Kinds of error injected (MUTATIONS below):
  wrong type, unknown key, missing field, negative memory, duplicate alias, duplicate id across
  files (file name vs id), dangling VLM reference, inconsistent head count (hidden not divisible),
  parameter count off by 5%, image-token count inconsistent with the encoder, bandwidth
  inconsistent with bus width and memory type, KV heads not dividing heads, invalid YAML,
  sliding-window pattern empty, missing source.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from vramcalc.catalog import Catalog, builtin_catalog_dir
from vramcalc.validate import validate_catalog

GPU, LLM, ENC, VLM = "gpus/rtx3060-12gb.yaml", "llms/llama-2-7b.yaml", "encoders/clip-vit-l-14-336.yaml", "vlms/llava-1.6-mistral-7b.yaml"


def _edit(rel, fn):
    def apply(root: Path) -> None:
        p = root / rel
        data = yaml.safe_load(p.read_text())
        fn(data)
        p.write_text(yaml.safe_dump(data, sort_keys=False))

    return apply


def _set(rel, key, value):
    return _edit(rel, lambda d: d.__setitem__(key, value))


def _drop(rel, key):
    return _edit(rel, lambda d: d.pop(key))


def _write(rel, text):
    def apply(root: Path) -> None:
        (root / rel).write_text(text)

    return apply


def _published_off(d):
    d["published_params"] = int(d["published_params"] * 1.05)


MUTATIONS = {
    # name: (mutation, file that must be named, field that must be named)
    "wrong type": (_set(GPU, "memory_bandwidth_gbs", "fast"), GPU, "memory_bandwidth_gbs"),
    "unknown key": (_set(LLM, "num_layer", 32), LLM, "num_layer"),
    "missing field": (_drop(ENC, "patch_size"), ENC, "patch_size"),
    "negative memory": (_set(GPU, "memory_bytes", -12), GPU, "memory_bytes"),
    # the later file in load order (gpus, encoders, llms, vlms) is reported, naming the earlier one
    "duplicate alias": (_edit(VLM, lambda d: d["aliases"].append("llama2:7b")), VLM, "aliases"),
    "id does not match file": (_set(LLM, "id", "llama-2-7b-x"), LLM, "id"),
    "dangling reference": (_set(VLM, "llm", "mistral-7b-v9"), VLM, "llm"),
    "inconsistent head count": (_set(ENC, "num_heads", 15), ENC, "num_heads"),
    "kv heads do not divide heads": (_set(LLM, "num_kv_heads", 5), LLM, "(entry)"),
    "parameter count off by 5%": (_edit(LLM, _published_off), LLM, "published_params"),
    "image tokens vs encoder": (
        _write(
            VLM.replace("llava-1.6-mistral-7b", "bad-vlm"),
            "id: bad-vlm\nname: Bad\nsource: test fixture\nencoder: clip-vit-l-14-336\nllm: llama-2-7b\n"
            "projector: {kind: mlp}\nimage_tokens: {kind: fixed, tokens: 600}\n",
        ),
        "vlms/bad-vlm.yaml",
        "image_tokens -> tokens",
    ),
    "bandwidth vs bus width": (_set(GPU, "memory_bandwidth_gbs", 3600), GPU, "memory_bandwidth_gbs"),
    "invalid YAML": (_write(LLM, "id: llama-2-7b\nname: [unclosed\n"), LLM, "(file)"),
    "empty sliding-window pattern": (_set(LLM, "sliding_window", {"size": 4096, "pattern": []}), LLM, "sliding_window -> pattern"),
    "missing source": (_drop(GPU, "source"), GPU, "source"),
}


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog")
    shutil.copytree(builtin_catalog_dir(), root / "data", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return root / "data"


def test_clean_catalog_validates(clean_copy):
    problems, checked = validate_catalog(Catalog.load([clean_copy]))
    assert checked > 300
    assert problems == [], [str(p) for p in problems[:5]]


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_mutation_is_reported_with_file_and_field(name, clean_copy, tmp_path):
    mutate, rel, field = MUTATIONS[name]
    root = tmp_path / "data"
    shutil.copytree(clean_copy, root)
    mutate(root)
    problems, _ = validate_catalog(Catalog.load([root]))
    assert problems, f"{name}: not reported"
    hits = [p for p in problems if p.path.endswith(rel) and p.field.startswith(field)]
    assert hits, f"{name}: expected {rel} -> {field}, got {[str(p) for p in problems]}"


def test_cli_fails_on_a_mutated_user_catalog(runner, tmp_path):
    from vramcalc.cli import app

    (tmp_path / "llms").mkdir()
    (tmp_path / "llms" / "tiny.yaml").write_text(
        "id: tiny\nname: Tiny\nsource: test fixture\nfamily: llama\nnum_layers: 2\nhidden_size: 64\nnum_heads: 4\n"
        "num_kv_heads: 4\nintermediate_size: 128\nvocab_size: 100\nmax_context: 512\npublished_params: 999\n"
    )
    r = runner.invoke(app, ["validate", str(tmp_path)])
    assert r.exit_code == 1
    assert "tiny.yaml -> published_params" in r.stdout
