"""Issue 12 section 3: `fit` recommends what a person would run. Every row takes the best precision
that fits AND decodes at the usable speed (--min-speed, else fit.USABLE_TOKENS_PER_S, 5 tok/s: a
chosen threshold, about reading pace); a model none of whose precisions that run reaches it keeps
the best that fits, flagged ``usable_speed`` False, "(slow)" in the table, and ranked after the rows
that are usable. Each test fits a few models (``fit._fit_one``), not the whole catalog: cheap."""

from __future__ import annotations

import pytest

from vramcalc.estimate import Workload, estimate
from vramcalc.fit import USABLE_TOKENS_PER_S, decode_speed

M3_MAX = "m3-max-40c-128gb"  # the "128 GB M3 Max": 400 GB/s, 96 GiB usable by the GPU
M3_PRO = "m3-pro-18c-36gb"  # 150 GB/s: a 70B model fits only at Q2_K and decodes below 5 tok/s


@pytest.fixture(scope="module")
def cat():
    from vramcalc.catalog import load_catalog

    return load_catalog()


def _row(cat, gpu_id, model, min_speed=None):
    from vramcalc import runtimes
    from vramcalc.fit import _fit_one

    row, _info, order = _fit_one(
        cat.resolve_model(model), [cat.resolve_gpu(gpu_id)], cat, Workload(), runtimes.get("llama.cpp"), min_speed, {}
    )
    return row, order


def _at(cat, gpu_id, model, quant):
    return estimate(cat.resolve_model(model), cat.resolve_gpu(gpu_id), Workload(quant=quant), cat, with_suggestions=False)


@pytest.mark.parametrize("model", ["llama-3.3-70b", "qwen2.5-72b"])
def test_dense_70b_on_a_128gb_m3_max_takes_the_best_precision_at_a_usable_speed(cat, model):
    """Before: Q8_0 (fits, ~4 tok/s: 70 GB of weights read per token at 400 GB/s). Now the best precision
    that fits and reaches 5 tok/s; the next better one fits too but decodes below it."""
    row, order = _row(cat, M3_MAX, model)
    assert row.verdict == "fits" and row.usable_speed is True, row
    assert row.decode_tokens_per_s is not None and row.decode_tokens_per_s >= USABLE_TOKENS_PER_S, row
    assert order.index(row.quant) > order.index("Q8_0"), row.quant  # not the old Q8_0 pick
    # the row equals estimate() at its precision
    est = _at(cat, M3_MAX, model, row.quant)
    assert (est.memory.total_bytes, est.verdict, decode_speed(est)) == (row.total_bytes, row.verdict, row.decode_tokens_per_s)
    better = _at(cat, M3_MAX, model, order[order.index(row.quant) - 1])
    assert better.verdict == "fits" and (decode_speed(better) or 0.0) < USABLE_TOKENS_PER_S, (better.inputs.quant, decode_speed(better))


def test_a_model_with_no_usable_precision_keeps_the_best_that_fits_flagged(cat):
    """70B on a 36 GB M3 Pro: only Q2_K fits (4.6 tok/s at 150 GB/s): kept (not dropped to offload), flagged."""
    row, order = _row(cat, M3_PRO, "llama-3.3-70b")
    assert row.verdict in ("fits", "tight") and row.usable_speed is False, row
    assert row.decode_tokens_per_s is not None and row.decode_tokens_per_s < USABLE_TOKENS_PER_S, row
    i = order.index(row.quant)
    assert i == 0 or _at(cat, M3_PRO, "llama-3.3-70b", order[i - 1]).verdict not in ("fits", "tight")


def test_min_speed_is_the_usable_speed_and_none_reaching_it_keeps_the_best_that_fits(cat):
    """--min-speed 100 on a 12 GB RTX 3060: no precision of an 8B model decodes that fast, so the row keeps
    the best that fits (Q8_0; F16's 16 GB does not), not the smallest; flagged on both counts."""
    row, order = _row(cat, "rtx3060", "llama-3.1-8b", min_speed=100.0)
    assert row.verdict == "fits" and row.meets_min_speed is False and row.usable_speed is False, row
    assert row.decode_tokens_per_s is not None and row.decode_tokens_per_s < 100.0
    assert _at(cat, "rtx3060", "llama-3.1-8b", order[order.index(row.quant) - 1]).verdict not in ("fits", "tight")
    fast, _ = _row(cat, "rtx3060", "llama-3.1-8b")
    assert fast.quant == row.quant and fast.usable_speed is True  # at 5 tok/s the same precision is usable


def test_slow_rows_rank_after_every_usable_row_in_every_sort(cat):
    """A slow fitting row (70B Q2_K on an M3 Pro) sorts after a usable fitting row and after a usable
    offload row (a MoE with experts in RAM), whatever the --sort."""
    from vramcalc.fit import _rank

    slow, order = _row(cat, M3_PRO, "llama-3.3-70b")
    usable_fit, _ = _row(cat, M3_PRO, "qwen3-14b")
    usable_off, _ = _row(cat, "rtx3060", "gpt-oss-120b")  # the same ranking key, whichever card
    assert usable_fit.usable_speed is True and usable_fit.verdict == "fits"
    assert usable_off.usable_speed is True and usable_off.verdict == "offload", usable_off
    for sort in ("quality", "speed", "context"):
        ranked = sorted([slow, usable_off, usable_fit], key=lambda r: _rank(r, order, sort))
        assert [r.model for r in ranked] == ["qwen3-14b", "gpt-oss-120b", "llama-3.3-70b"], sort


def test_table_marks_slow_rows_and_json_is_the_same_object(cat):
    import json

    from rich.console import Console

    from vramcalc.fit import FitResult
    from vramcalc.jsonable import to_json
    from vramcalc.render.fit import render_fit

    slow, order = _row(cat, M3_PRO, "llama-3.3-70b")
    ok, _ = _row(cat, M3_PRO, "qwen3-14b")
    from vramcalc.placement import gpu_info

    r = FitResult(
        gpu=gpu_info(cat.resolve_gpu(M3_PRO), False),
        runtime="llama.cpp",
        context_tokens=None,
        images=None,
        kind="all",
        min_speed=None,
        precisions=order,
        rows=[ok, slow],
        gpus=[M3_PRO],
    )
    con = Console(width=80, record=True, color_system=None)
    con.print(render_fit(r))
    text = con.export_text()
    lines = {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0] in ("qwen3-14b", "llama-3.3-70b")}
    assert lines["llama-3.3-70b"].rstrip().endswith(f"{slow.verdict.upper()} (slow)") and "(slow)" not in lines["qwen3-14b"], text
    assert f" {slow.decode_tokens_per_s:.1f} " in lines["llama-3.3-70b"]  # below 10 tok/s one decimal: 4.6 is not shown as 5
    assert "decodes at 5 tok/s or more" in text
    d = json.loads(json.dumps(to_json(r)))
    assert d["usable_tokens_per_s"] == USABLE_TOKENS_PER_S
    assert [(x["model"], x["usable_speed"]) for x in d["rows"]] == [("qwen3-14b", True), ("llama-3.3-70b", False)]


def test_the_row_cache_is_keyed_on_the_usable_speed(cat, monkeypatch):
    """fit rows are kept in the derived-value cache (diskmemo): a different threshold is a different key,
    not the stored row (the code tag covers a code change; the key names the threshold itself)."""
    from vramcalc import fit as fitmod
    from vramcalc import runtimes

    spec, gpu, rt = cat.resolve_model("llama-3.3-70b"), [cat.resolve_gpu(M3_MAX)], runtimes.get("llama.cpp")
    at5, _, _ = fitmod._fit_one_cached(spec, gpu, cat, Workload(), rt, None, {})
    again, _, _ = fitmod._fit_one_cached(spec, gpu, cat, Workload(), rt, None, {})
    monkeypatch.setattr(fitmod, "USABLE_TOKENS_PER_S", 3.0)
    at3, _, _ = fitmod._fit_one_cached(spec, gpu, cat, Workload(), rt, None, {})
    assert again == at5 and at5.quant != "Q8_0"
    assert at3.quant == "Q8_0" and at3.usable_speed is True, at3  # ~4 tok/s clears a 3 tok/s bar


def test_a_model_that_does_not_run_is_not_usable(cat):
    """Verdict no (405B on a 128 GB Mac: not even Q2_K with layers in RAM): ``usable_speed`` False, so it
    ranks with the slow rows, after every usable one, whatever speed the formula would give."""
    row, _ = _row(cat, M3_MAX, "llama-3.1-405b")
    assert row.verdict == "no" and row.usable_speed is False, row


def test_within_a_quality_tier_the_faster_model_ranks_first(cat):
    """Issue 12: "a quality tier per model, then speed". On the 128 GB M3 Max, Qwen3.5-122B-A10B (MoE:
    ~36 tok/s) and Qwen2.5-72B (dense: ~5 tok/s) have quality scores 7.6 and 7.7, one tier (7); the MoE
    now ranks first (before, the 0.05 higher score put the 5 tok/s model ahead of it)."""
    import math

    from vramcalc.fit import _rank, _with_quality, load_quality

    q = load_quality()
    moe, dense = (_with_quality(_row(cat, M3_MAX, m)[0], q[m], cat.resolve_model(m), cat) for m in ("qwen3.5-122b-a10b", "qwen2.5-72b"))
    assert moe.quality_score is not None and dense.quality_score is not None
    assert math.floor(moe.quality_score) == math.floor(dense.quality_score) == 7
    assert moe.quality_score < dense.quality_score and moe.decode_tokens_per_s > 5 * dense.decode_tokens_per_s
    assert _rank(moe, ["Q5_K_M", "Q6_K"]) < _rank(dense, ["Q5_K_M", "Q6_K"])
