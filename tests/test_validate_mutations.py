"""`vramcalc validate` catches the mistakes people make (issue 14): each kind of realistic catalog
mistake is injected into a copy of one built-in entry, and the entry is validated as `validate`
does it (schema, cross-checks, plausibility). Every kind is listed with whether it is caught; a kind
the checks do not catch is listed as such (``caught=False``), so a regression either way fails.

The test prints "validate mutation kinds: N caught / M injected" and the kinds not caught; the full
table with each problem found is ``python benchmarks/fuzz.py --cli 0 --files 0`` (mutation_kinds_*).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from vramcalc.catalog import Catalog, RawEntry, builtin_catalog_dir
from vramcalc.errors import CatalogError

GIB = 2**30


def _set(**kw: Any) -> Callable[[dict], None]:
    def f(d: dict) -> None:
        for k, v in kw.items():
            node, *path = k.split("__")
            target = d
            for p in [node, *path][:-1]:
                target = target[p]
            target[[node, *path][-1]] = v

    return f


def _scale(field: str, x: float, integer: bool = False) -> Callable[[dict], None]:
    def f(d: dict) -> None:
        node, *path = field.split("__")
        target = d
        for p in [node, *path][:-1]:
            target = target[p]
        key = [node, *path][-1]
        v = target[key] * x
        target[key] = int(v) if integer else v

    return f


def _swap(a: str, b: str) -> Callable[[dict], None]:
    def f(d: dict) -> None:
        d[a], d[b] = d[b], d[a]

    return f


def _mem(text: str) -> Callable[[dict], None]:
    return _set(memory_bytes=text)


def _off_by_one(field: str, delta: int = -1) -> Callable[[dict], None]:
    return _scale(field, 1) if delta == 0 else (lambda d: _set(**{field: _get(d, field) + delta})(d))


def _get(d: dict, field: str) -> Any:
    for p in field.split("__"):
        d = d[p]
    return d


#: (kind of mistake, folder, entry id, mutation, caught by validate today)
MUTATIONS: list[tuple[str, str, str, Callable[[dict], None], bool]] = [
    # GPUs: memory units
    ("GPU memory as a bare number (12 bytes)", "gpus", "rtx3060-12gb", _mem(12), True),
    ("GPU memory in MiB (12 MiB)", "gpus", "rtx3060-12gb", _mem("12 MiB"), True),
    ("GPU memory in bits (96 GiB for 12 GiB)", "gpus", "rtx3060-12gb", _mem("96 GiB"), True),
    ("GPU memory 10x (120 GiB)", "gpus", "rtx3060-12gb", _mem("120 GiB"), True),
    ("HBM GPU memory 10x (800 GiB)", "gpus", "a100-sxm4-80gb", _mem("800 GiB"), True),
    ("unified memory not a sold size (60 GiB)", "gpus", "m3-max-40c-64gb", _mem("60 GiB"), True),
    ("unified memory 10x (640 GiB)", "gpus", "m3-max-40c-64gb", _mem("640 GiB"), True),
    # GPUs: bandwidth and bus
    ("bandwidth 10x", "gpus", "rtx3060-12gb", _scale("memory_bandwidth_gbs", 10), True),
    ("bandwidth as the per-pin rate (15)", "gpus", "rtx3060-12gb", _set(memory_bandwidth_gbs=15), True),
    ("bus width doubled", "gpus", "rtx3060-12gb", _scale("bus_width_bits", 2, True), True),
    ("memory type of another card (HBM3 for GDDR6)", "gpus", "rtx3060-12gb", _set(memory_type="HBM3"), True),
    ("bandwidth in MB/s (360000)", "gpus", "rtx3060-12gb", _set(memory_bandwidth_gbs=360_000), True),
    # GPUs: compute
    ("shader and tensor FP16 swapped", "gpus", "rtx3060-12gb", _swap("fp16_tflops", "fp16_tensor_tflops"), True),
    ("sparse FP16 tensor figure (2x)", "gpus", "rtx3060-12gb", _scale("fp16_tensor_tflops", 2), True),
    ("sparse BF16 tensor figure (2x)", "gpus", "h100-sxm", _scale("bf16_tensor_tflops", 2), True),
    ("FP16 TFLOPS x1000 (GFLOPS typed)", "gpus", "rtx3060-12gb", _scale("fp16_tflops", 1000), True),
    ("tensor TFLOPS x1000", "gpus", "h100-sxm", _scale("fp16_tensor_tflops", 1000), True),
    ("INT8 TOPS x1000", "gpus", "rtx4090", _scale("int8_tensor_tops", 1000), True),
    ("Apple TFLOPS 10x for its cores", "gpus", "m3-max-40c-64gb", _scale("fp16_tflops", 10), True),
    ("Apple core count 10x", "gpus", "m3-max-40c-64gb", _scale("gpu_cores", 10, True), True),
    ("category unified on a discrete card", "gpus", "rtx3060-12gb", _set(category="unified"), True),
    ("release year 20211", "gpus", "rtx3060-12gb", _set(release_year=20211), True),
    # sources
    ("placeholder source TODO", "gpus", "rtx3060-12gb", _set(source="TODO"), True),
    ("placeholder source example.com", "llms", "llama-3.1-8b", _set(source="https://example.com/llama-3.1-8b-config"), True),
    ("placeholder source TBD in an LLM", "llms", "qwen3-0.6b", _set(source="TBD - fill in later"), True),
    # LLMs
    ("max context 10x", "llms", "llama-3.1-8b", _scale("max_context", 10, True), False),
    ("max context 1000x", "llms", "llama-3.1-8b", _scale("max_context", 1000, True), True),
    ("sliding window larger than the context", "llms", "gemma-2-9b", _set(sliding_window__size=10**6), True),
    ("sliding pattern longer than the layers", "llms", "gemma-2-9b", _set(sliding_window__pattern=[True, False] * 40), True),
    ("layers 10x (published_params set)", "llms", "llama-3.1-8b", _scale("num_layers", 10, True), True),
    ("layers 10x (no published_params)", "llms", "qwen3-0.6b", _scale("num_layers", 10, True), True),
    ("intermediate size 10x (no published_params)", "llms", "qwen3-0.6b", _scale("intermediate_size", 10, True), True),
    ("vocab 10x (no published_params)", "llms", "qwen3-0.6b", _scale("vocab_size", 10, True), True),
    ("hidden size 2x (published_params set)", "llms", "llama-3.1-8b", _scale("hidden_size", 2, True), True),
    ("intermediate typo (14366 for 14336)", "llms", "llama-3.1-8b", _set(intermediate_size=14366), True),
    ("KV heads not dividing the heads", "llms", "llama-3.1-8b", _set(num_kv_heads=7), True),
    ("KV heads above the heads", "llms", "llama-3.1-8b", _set(num_kv_heads=64), True),
    ("heads not dividing hidden (no head_dim)", "llms", "llama-3.1-8b", _set(num_heads=31, num_kv_heads=31), True),
    ("MoE dense layer beyond the layer count", "llms", "deepseek-v2-lite", _set(moe__dense_layers=[0, 270]), True),
    ("MoE experts per token above the experts", "llms", "deepseek-v2-lite", _set(moe__experts_per_token=100), True),
    ("negative layer count", "llms", "llama-3.1-8b", _set(num_layers=-32), True),
    # encoders
    ("feature_layer -100", "encoders", "clip-vit-l-14-336", _set(feature_layer=-100), True),
    ("feature_layer beyond the layers", "encoders", "clip-vit-l-14-336", _set(feature_layer=24), True),
    (
        "full-attention layer beyond the tower",
        "encoders",
        "qwen2.5-vl-vit",
        _set(window_attention__full_attention_layers=[7, 15, 23, 32]),
        True,
    ),
    ("image size below the patch size", "encoders", "clip-vit-l-14-336", _set(image_size=12), True),
    ("encoder hidden size 2x", "encoders", "clip-vit-l-14-336", _scale("hidden_size", 2, True), True),
    ("encoder heads not dividing hidden", "encoders", "clip-vit-l-14-336", _set(num_heads=13), True),
    # VLMs
    ("image tokens off by one (577)", "vlms", "llava-1.5-7b", _set(image_tokens__tokens=577), True),
    ("image tokens off by one (575)", "vlms", "llava-1.5-7b", _set(image_tokens__tokens=575), True),
    ("tokens per tile off by one", "vlms", "internvl2.5-8b", _set(image_tokens__tokens_per_tile=257), True),
    ("max_tiles < min_tiles", "vlms", "internvl2.5-8b", _set(image_tokens__min_tiles=13), True),
    ("dynamic factor of another patch size", "vlms", "qwen2-vl-7b", _set(image_tokens__factor=32), True),
    ("min_pixels above max_pixels", "vlms", "qwen2-vl-7b", _set(image_tokens__min_pixels=10**9), True),
    ("anyres pinpoint not a multiple of the tile", "vlms", "llava-1.6-vicuna-7b", _set(image_tokens__grid_pinpoints=[[336, 700]]), True),
    ("projector input size of another encoder", "vlms", "mistral-small-3.1-24b", _set(projector__input_size=1152), True),
    (
        "cross-attention layer beyond the LLM",
        "vlms",
        "llama-3.2-11b-vision",
        _set(projector__cross_attention_layers=[3, 8, 13, 18, 23, 28, 33, 99]),
        True,
    ),
    ("encoder id misspelled", "vlms", "llava-1.5-7b", _set(encoder="clip-vit-l-14-363"), True),
    ("LLM id misspelled", "vlms", "llava-1.5-7b", _set(llm="vicuna-7b-v15"), True),
    ("VLM published params 10x", "vlms", "qwen2-vl-7b", _scale("published_params", 10, True), True),
]


@pytest.fixture(scope="module")
def base():
    from vramcalc.schema import KINDS, parse

    cat = Catalog.load([builtin_catalog_dir()])
    valid = {(k, i): parse(KINDS[k], r.data) for k in cat.raw for i, r in cat.raw[k].items()}
    return cat, valid


def _caught(base, folder: str, eid: str, mutate) -> list[str]:
    """The problems `validate` reports for the entry after the mutation."""
    from vramcalc.params import count_params
    from vramcalc.schema import KINDS, errors, parse
    from vramcalc.validate import _cross_checks, plausibility

    cat, valid = base
    raw0 = cat.raw[folder][eid]
    data = copy.deepcopy(raw0.data)
    mutate(data)
    raw = RawEntry(folder, raw0.path, data)
    try:
        entry = parse(KINDS[folder], data)
    except ValidationError as e:
        return [f"{loc}: {msg}" for loc, msg in errors(e)]
    except CatalogError as e:
        return [str(e)]
    old = valid[(folder, eid)]
    cat.raw[folder][eid], valid[(folder, eid)] = raw, entry
    cat._validated.pop((folder, eid), None)
    try:
        found = _cross_checks(cat, folder, raw, entry, valid, count_params) + plausibility(cat, folder, raw, entry, valid)
        # a mutated part is caught when a VLM using it fails too (validate checks every entry)
        if folder in ("encoders", "llms"):
            for (k, i), v in valid.items():
                if k == "vlms" and getattr(v, folder[:-1]) == eid:
                    found += _cross_checks(cat, k, cat.raw[k][i], v, valid, count_params) + plausibility(cat, k, cat.raw[k][i], v, valid)
        return [str(p) for p in found]
    finally:
        cat.raw[folder][eid], valid[(folder, eid)] = raw0, old
        cat._validated.pop((folder, eid), None)


def test_the_unmutated_entries_pass(base):
    for _, folder, eid, _, _ in MUTATIONS:
        assert _caught(base, folder, eid, lambda d: None) == [], (folder, eid)


def test_each_kind_of_mistake_is_caught_as_listed(base, capsys):
    rows, wrong = [], []
    for name, folder, eid, mutate, expected in MUTATIONS:
        problems = _caught(base, folder, eid, mutate)
        caught = bool(problems)
        rows.append(f"{'caught' if caught else 'MISSED'}  {name}  ({folder}/{eid})" + (f": {problems[0][-110:]}" if caught else ""))
        if caught != expected:
            wrong.append((name, caught, problems[:2]))
    n = sum(r.startswith("caught") for r in rows)
    with capsys.disabled():  # the summary, and the kinds not caught (-s with -v shows every row via the report below)
        print(f"\nvalidate mutation kinds: {n} caught / {len(MUTATIONS)} injected")
        for r in rows:
            if not r.startswith("caught"):
                print("  " + r)
    assert not wrong, wrong
    assert n >= 0.9 * len(MUTATIONS)


def test_user_catalog_collisions_are_reported_by_validate(tmp_path):
    import yaml

    from vramcalc.validate import validate_paths

    root = tmp_path / "mine"
    (root / "vlms").mkdir(parents=True)
    (root / "llms").mkdir()
    base_cat = Catalog.load([builtin_catalog_dir()])
    vlm = dict(base_cat.raw["vlms"]["llava-1.5-7b"].data, id="llama-3.1-8b", aliases=[])
    (root / "vlms" / "llama-3.1-8b.yaml").write_text(yaml.safe_dump(vlm))
    llm = dict(base_cat.raw["llms"]["qwen3-0.6b"].data, id="mine", aliases=[base_cat.raw["llms"]["llama-3.1-8b"].data["aliases"][0]])
    (root / "llms" / "mine.yaml").write_text(yaml.safe_dump(llm))
    report = validate_paths([root])
    assert not report.ok
    joined = "\n".join(report.problems)
    assert "llama-3.1-8b.yaml -> id: 'llama-3.1-8b' collides with llms/llama-3.1-8b" in joined
    assert "mine.yaml -> aliases -> 0" in joined
