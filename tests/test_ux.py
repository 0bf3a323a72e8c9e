"""Issue 12: names people type, tables that fit, `fit` that recommends, answers that read true, and
the new views (compare, gpus, check --plot). One test (at least) per example of the issue."""

from __future__ import annotations

import json
import math

import pytest
from rich.cells import cell_len

from vramcalc.cli import app

W80 = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}


def run(runner, *args, env=None):
    return runner.invoke(app, list(args), env=env or W80)


def jrun(runner, *args):
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    text = r.stdout
    assert "NaN" not in text and "Infinity" not in text
    return json.loads(text)


# ---------------------------------------------------------------------------------------------
# 1. Names people type resolve, or ask


@pytest.mark.parametrize(("typed", "gpu_id"), [("7900xtx", "rx7900xtx"), ("9070xt", "rx9070xt")])
def test_amd_names_are_not_gpu_counts(runner, typed, gpu_id):
    d = jrun(runner, "check", "qwen3:30b", "--gpu", typed)
    assert d["inputs"]["gpu"] == gpu_id


@pytest.mark.parametrize(
    ("typed", "variants"),
    [
        ("m3 max", ["m3-max-30c-36gb", "m3-max-30c-96gb", "m3-max-40c-48gb", "m3-max-40c-64gb", "m3-max-40c-128gb"]),
        ("m2 ultra", ["m2-ultra-60c-64gb", "m2-ultra-76c-192gb"]),
        ("m1 max", ["m1-max-24c-32gb", "m1-max-32c-64gb"]),
    ],
)
def test_apple_family_names_ask(runner, typed, variants):
    r = run(runner, "check", "llama3:70b", "--gpu", typed)
    assert r.exit_code == 2, r.output
    msg = r.stderr
    assert len(msg.strip().splitlines()) == 1 and "Traceback" not in msg
    for v in variants:
        assert v in msg
    assert "GB" in msg and "GPU cores" in msg  # memory and cores of each variant
    # show asks too
    assert run(runner, "show", typed).exit_code == 2


@pytest.mark.parametrize(
    ("typed", "gpu_ids"),
    [
        ("m3 max 128gb", ["m3-max-40c-128gb"]),
        ("m4 max 128gb", ["m4-max-40c-128gb"]),
        ("M1 Max 32-core 64GB", ["m1-max-32c-64gb"]),
        ("3080 10gb", ["rtx3080-10gb"]),
        ("3080 12GB", ["rtx3080-12gb"]),
        ("3090x2", ["rtx3090", "rtx3090"]),
        ("2x 3090", ["rtx3090", "rtx3090"]),
        ("2xrtx3090", ["rtx3090", "rtx3090"]),
    ],
)
def test_sizes_and_counts_resolve(runner, typed, gpu_ids):
    from vramcalc.catalog import load_catalog
    from vramcalc.cli.options import resolve_gpus

    assert [g.id for g in resolve_gpus(load_catalog(), [typed])] == gpu_ids


def test_a_size_that_leaves_two_cards_asks():
    from vramcalc.catalog import load_catalog
    from vramcalc.errors import AmbiguousGpuError

    with pytest.raises(AmbiguousGpuError) as e:
        load_catalog().resolve_gpu("m1 max 32gb")  # 24- and 32-core GPUs both have 32 GB
    assert "m1-max-24c-32gb" in str(e.value) and "m1-max-32c-32gb" in str(e.value)


def test_unknown_gpu_did_you_mean(runner):
    r = run(runner, "check", "llama3.1:8b", "--gpu", "rtx3099")
    assert r.exit_code == 2 and "Did you mean" in r.stderr and "rtx3090" in r.stderr


@pytest.mark.parametrize(
    ("typed", "model", "quant"),
    [
        ("qwen2.5:7b-instruct-q8_0", "qwen2.5-7b", "Q8_0"),
        ("llama3.1:8b-instruct-q4_K_M", "llama-3.1-8b", "Q4_K_M"),
        ("gemma3:27b-it-qat", "gemma-3-27b", "Q4_0"),
        ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", "qwen2.5-7b", "Q4_K_M"),
    ],
)
def test_quantization_in_the_name(runner, typed, model, quant, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no such file here: a .gguf name is a name
    d = jrun(runner, "check", typed, "--gpu", "rtx3090")
    assert d["inputs"]["model"] == model and d["inputs"]["quant"] == quant
    assert any(f"read as {model} at {quant}" in n for n in d["notes"])
    r = run(runner, "check", typed, "--gpu", "rtx3090", env={"COLUMNS": "120"})
    assert f"read as {model} at {quant}" in r.stdout and f"[{model}]" in r.stdout


def test_conflicting_quant_is_an_error(runner):
    r = run(runner, "check", "qwen2.5:7b-instruct-q8_0", "--gpu", "rtx3090", "--quant", "Q4_K_M")
    assert r.exit_code == 2 and "Q8_0" in r.stderr and "Q4_K_M" in r.stderr
    # the same precision twice is no conflict
    assert run(runner, "check", "qwen2.5:7b-instruct-q8_0", "--gpu", "rtx3090", "--quant", "q8_0").exit_code == 0


def test_split_quant_leaves_plain_names():
    from vramcalc.names import split_quant

    assert split_quant("qwen2.5:7b") == ("qwen2.5:7b", None)
    assert split_quant("llama-3.1-8b") == ("llama-3.1-8b", None)
    assert split_quant("qwen2.5:7b-instruct-fp16") == ("qwen2.5:7b-instruct", "F16")


def test_shell_completion(runner):
    from vramcalc.cli.options import complete_gpu, complete_model

    assert "qwen2.5:7b" in complete_model("qwen2.5:7")
    assert "llava-1.5-7b" in complete_model("llava-1.5")
    assert "rtx3090" in complete_gpu("rtx309") and "local" in complete_gpu("lo")
    r = runner.invoke(app, ["--help"], env=W80)
    assert "--install-completion" in r.stdout


# ---------------------------------------------------------------------------------------------
# 2. Tables that fit


def _no_cut_cells(text: str) -> None:
    for line in text.splitlines():
        for cell in line.split():
            assert not cell.endswith("…"), f"a cut cell: {line!r}"


def test_fit_at_80_columns_cuts_nothing(runner):
    r = run(runner, "fit", "--gpu", "rtx3060")
    assert r.exit_code == 0
    assert all(cell_len(line) <= 80 for line in r.stdout.splitlines())
    _no_cut_cells(r.stdout.split("Not shown")[0])
    assert "Not shown at this width" in r.stdout  # dropped columns are named


def test_piped_output_has_a_fixed_width(runner):
    r = runner.invoke(app, ["fit", "--gpu", "rtx3060"], env={"COLUMNS": None, "NO_COLOR": "1"})
    assert r.exit_code == 0
    from vramcalc.cli.output import PIPE_WIDTH

    assert max(cell_len(line) for line in r.stdout.splitlines()) <= PIPE_WIDTH
    assert "max ctx" in r.stdout and "free" in r.stdout  # every column at the pipe width
    wide = runner.invoke(app, ["fit", "--gpu", "rtx3060", "--wide"], env={"COLUMNS": None})
    assert "Not shown" not in wide.stdout and "date" in wide.stdout


def test_list_vlms_ids_whole_at_80(runner):
    r = run(runner, "list", "vlms")
    ids = [line.split()[0] for line in r.stdout.splitlines()[1:] if line.split()]
    for eid in ("qwen2.5-vl-7b", "qwen2.5-vl-72b", "llava-onevision-qwen2-72b"):
        assert eid in ids
    _no_cut_cells("\n".join(line.split()[0] for line in r.stdout.splitlines() if line.split()))


def test_speed_rows_do_not_wrap_at_80(runner):
    r = run(runner, "check", "llava-1.5-7b", "--gpu", "rtx3090", "--quant", "F16")
    lines = r.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Speed"))
    for line in lines[start + 1 : start + 6]:
        assert line.split()[0] in ("Decode", "Prefill,", "Image", "1st"), line  # one line per figure
    assert all(cell_len(line) <= 80 for line in lines)


# ---------------------------------------------------------------------------------------------
# 3. fit that recommends


@pytest.fixture(scope="module")
def fits():
    from vramcalc.catalog import load_catalog
    from vramcalc.fit import fit

    cat = load_catalog()
    return {g: fit(cat.resolve_gpu(g), cat) for g in ("rtx3060", "rtx5090", "m3-max-40c-128gb")}, cat


def test_fit_top_picks_are_what_a_person_would_pick(fits):
    r, _ = fits
    top3060 = [row.model for row in r["rtx3060"].rows[:3]]
    for odd in ("kimi-vl-a3b", "moonlight-16b-a3b", "deepseek-moe-16b-vl2-small"):
        assert odd not in top3060
    assert r["rtx5090"].rows[0].model != "mixtral-8x7b"
    assert r["m3-max-40c-128gb"].rows[0].model != "mixtral-8x22b"
    # the top row has the best quality score (release month + size) of the 4-bit-or-better models that run
    runs = [row for row in r["rtx3060"].rows if row.verdict in ("fits", "tight") and row.quant not in ("Q3_K_M", "Q2_K")]
    assert r["rtx3060"].rows[0].quality_score == max(row.quality_score or 0 for row in runs)
    # current models: each card's top 3 are dated 2024-07 or later (release month or config bound), none a 2023 MoE
    for g in ("rtx3060", "rtx5090", "m3-max-40c-128gb"):
        for row in r[g].rows[:3]:
            assert row.released and row.released >= "2024-07", (g, row.model, row.released)
            assert not row.model.startswith("mixtral"), (g, row.model)


def test_fit_hides_components(fits):
    r, _ = fits
    rows = {row.model for row in r["rtx3060"].rows}
    for comp in ("deepseek-moe-16b-vl2-small", "gemma-3-12b-text"):
        assert comp not in rows and any(h.startswith(comp + ":") for h in r["rtx3060"].hidden)


def test_fit_default_15_rows_and_all(runner):
    r = run(runner, "fit", "--gpu", "rtx3060", "--json")
    n = len(json.loads(r.stdout)["rows"])
    table = run(runner, "fit", "--gpu", "rtx3060", env={"COLUMNS": "200"}).stdout
    assert f"... {n - 15} more" in table
    every = run(runner, "fit", "--gpu", "rtx3060", "--all", env={"COLUMNS": "200"}).stdout
    assert "more (--all" not in every and len([line for line in every.splitlines() if " FITS" in line or "OFFLOAD" in line]) >= n - 5


def test_fit_sort_kind_min_ctx_and_split():
    from vramcalc.catalog import load_catalog
    from vramcalc.fit import fit

    cat = load_catalog()
    g = cat.resolve_gpu("rtx3060")
    by_speed = fit(g, cat, sort="speed")
    runs = [row.decode_tokens_per_s or 0 for row in by_speed.rows if row.verdict in ("fits", "tight")]
    assert runs == sorted(runs, reverse=True)
    by_ctx = fit(g, cat, sort="context")
    ctxs = [row.max_context_tokens or 0 for row in by_ctx.rows if row.verdict in ("fits", "tight")]
    assert ctxs == sorted(ctxs, reverse=True)
    vlm = fit(g, cat, kind="vlm")
    assert vlm.rows and {row.kind for row in vlm.rows} == {"vlm"}
    long = fit(g, cat, min_ctx=32768)
    assert long.rows and all(cat.resolve_model(row.model) for row in long.rows)
    assert any("trained context" in h for h in long.hidden) and long.context_tokens == 32768
    split = fit([cat.resolve_gpu("rtx3090")] * 2, cat)
    assert split.gpus == ["rtx3090", "rtx3090"]
    one = fit(cat.resolve_gpu("rtx3090"), cat)
    assert sum(r.verdict in ("fits", "tight") for r in split.rows) > sum(r.verdict in ("fits", "tight") for r in one.rows)


def test_fit_cli_accepts_a_split(runner):
    d = jrun(runner, "fit", "--gpu", "2xrtx3090")
    assert d["gpus"] == ["rtx3090", "rtx3090"]


def test_offload_rows_show_a_usable_precision(fits):
    from vramcalc.fit import USABLE_TOKENS_PER_S

    r, _ = fits
    off = [row for row in r["rtx3060"].rows if row.verdict == "offload"]
    assert off
    assert any(row.quant not in ("Q2_K",) for row in off)  # not only Q2_K
    for row in off:
        if row.quant != "Q2_K":
            assert row.decode_tokens_per_s is not None and row.decode_tokens_per_s >= USABLE_TOKENS_PER_S, row


def test_quality_file_is_sourced_and_typed():
    from vramcalc.catalog import load_catalog
    from vramcalc.fit import load_quality

    cat = load_catalog()
    q = load_quality()
    known = {*cat.ids("llms"), *cat.ids("vlms")}
    assert set(q) <= known and len(q) >= 100
    for eid, rec in q.items():
        if rec.config_transformers:
            assert rec.source and "hf_configs/" in rec.source and "transformers_version" in rec.source, eid
        if rec.released:
            assert rec.released_source and ("date stamp" in rec.released_source or "arXiv:" in rec.released_source), eid
        if rec.not_before:
            assert rec.config_transformers and rec.not_before_basis and "PyPI" in rec.not_before_basis, eid
        if rec.component:
            vlm = cat.get("vlms", rec.component_of)
            assert vlm.llm == eid  # type: ignore[union-attr]


def test_quality_file_rejects_unknown_fields(tmp_path):
    from vramcalc.errors import CatalogError
    from vramcalc.fit import load_quality

    p = tmp_path / "q.yaml"
    p.write_text("qwen3-8b: {score: 99}\n")
    with pytest.raises(CatalogError):
        load_quality(p)
    p.write_text("qwen3-8b: {config_transformers: '4.51.0'}\n")  # a version without its source
    with pytest.raises(CatalogError):
        load_quality(p)


# ---------------------------------------------------------------------------------------------
# 4. Answers that read true


def test_default_context_within_trained_maximum(runner):
    d = jrun(runner, "check", "llava-1.5-7b", "--gpu", "rtx3090", "--quant", "F16")
    assert d["inputs"]["context_tokens"] <= 4096
    assert not any("exceeds the model's trained maximum" in n for n in d["notes"])
    # an explicit --ctx is kept (and warned about)
    d = jrun(runner, "check", "llava-1.5-7b", "--gpu", "rtx3090", "--ctx", "4096")
    assert d["inputs"]["text_tokens"] == 4096 and any("trained maximum" in n for n in d["notes"])


def test_offload_shown_consistently(runner):
    args = ["check", "llama-3.1-8b", "--gpu", "rtx3060", "--quant", "F16", "--gpu-layers", "20"]
    d = jrun(runner, *args)
    from vramcalc.units import fmt_bytes

    on_gpu = sum(
        dev["weights_bytes"] + dev["kv_cache_bytes"] + dev["compute_bytes"] + dev["overhead_bytes"]
        for dev in d["offload"]["devices"]
        if dev["index"] >= 0
    )
    text = run(runner, *args, env={"COLUMNS": "120"}).stdout
    assert "Total on GPU (20/33 layers)" in text and fmt_bytes(on_gpu) in text
    verdict = next(line for line in text.splitlines() if line.startswith("Verdict"))
    assert "OFFLOAD" in verdict and "headroom" not in verdict and "20/33 layers on the GPU" in verdict
    bar = next(line for line in text.splitlines() if line.startswith("["))
    assert f"{fmt_bytes(on_gpu)} of" in bar


def test_speeds_say_what_they_are_for(runner):
    d = jrun(runner, "check", "llava-1.5-7b", "--gpu", "rtx3090")
    thr = d["throughput"]
    per_image = d["inputs"]["image_tokens_per_image"]
    assert thr["question_tokens"] == 512 + per_image
    assert thr["time_to_first_token_question_s"]["value"] < thr["time_to_first_token_s"]["value"]
    text = run(runner, "check", "llava-1.5-7b", "--gpu", "rtx3090", env={"COLUMNS": "120"}).stdout
    ctx = f"{d['inputs']['context_tokens']:,}"
    assert f"Decode at {ctx} tok" in text and "1st token, 512 tok + 1 img" in text and f"1st token, {ctx} tok" in text


def test_no_speed_when_it_does_not_run(runner):
    text = run(runner, "check", "llama-3.1-70b", "--gpu", "rtx3060", "--ram", "16", env={"COLUMNS": "120"}).stdout
    assert "DOES NOT FIT" in text and "Decode at" not in text and "No speed shown" in text


def test_encoder_only_precision(runner):
    text = run(runner, "check", "siglip-so400m-14-384", "--gpu", "rtx3060", env={"COLUMNS": "120"}).stdout
    assert "F16" in text and "0.00 bpw" not in text


def test_multi_gpu_header_names_every_card(runner):
    same = run(runner, "check", "llama3.3:70b", "--gpu", "2xrtx3090", env={"COLUMNS": "120"}).stdout.splitlines()[0]
    assert "2 x GeForce RTX 3090" in same
    mixed = run(runner, "check", "llama3.3:70b", "--gpu", "rtx3090", "--gpu", "rtx4090", env={"COLUMNS": "120"}).stdout.splitlines()[0]
    assert "rtx3090" in mixed and "rtx4090" in mixed


def test_suggestions_cheapest_first_with_cost(runner):
    d = jrun(runner, "check", "llama3.3:70b", "--gpu", "2xrtx3090", "--ctx", "32768")
    s = d["suggestion"]
    assert s is not None and s["flags"] == ["--kv-cache", "q8_0"] and s["cost"]
    assert len(d["alternatives"]) <= 2 and all(a["cost"] for a in d["alternatives"])
    # the suggestion holds: with it, it runs on the GPUs
    after = jrun(runner, "check", "llama3.3:70b", "--gpu", "2xrtx3090", "--ctx", "32768", *s["flags"])
    assert after["verdict"] in ("fits", "tight")


def test_no_two_bit_suggestion_when_it_already_runs(runner):
    d = jrun(runner, "check", "llama-3.1-8b", "--gpu", "rtx3060-laptop")
    assert d["suggestion"] or d["alternatives"]  # the loop below checks something
    for s in [d["suggestion"], *d["alternatives"]]:
        if s:
            assert "Q2_K" not in s["flags"], s


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "--gpu", "rtx3060", "--min-speed", "nan"],
        ["fit", "--gpu", "rtx3060", "--min-speed", "inf"],
        ["gpus", "qwen3-8b", "--min-speed", "nan"],
        ["list", "gpus", "--min-memory", "nan"],
        ["check", "llama3.1:8b", "--gpu", "rtx3060", "--ram-bandwidth", "nan"],
        ["check", "llama3.1:8b", "--gpu", "rtx3060", "--ram", "inf"],
    ],
)
def test_nan_and_inf_are_usage_errors(runner, args):
    r = run(runner, *args)
    assert r.exit_code == 2 and "Traceback" not in r.output


# ---------------------------------------------------------------------------------------------
# 5. New views


def test_compare_gpus(runner):
    d = jrun(runner, "compare", "qwen3-14b", "--gpu", "rtx3060", "--gpu", "rtx4090", "--gpu", "2xrtx3060")
    assert [r["gpus"] for r in d["rows"]] == [["rtx3060-12gb"], ["rtx4090"], ["rtx3060-12gb", "rtx3060-12gb"]]
    single = jrun(runner, "check", "qwen3-14b", "--gpu", "rtx4090")
    assert d["rows"][1]["memory_bytes"] == single["memory"]["total_bytes"]
    assert d["rows"][1]["decode_tokens_per_s"] == single["throughput"]["decode_tokens_per_s"]["value"]
    text = run(runner, "compare", "qwen3-14b", "--gpu", "rtx3060", "--gpu", "rtx4090").stdout
    assert "rtx3060-12gb" in text and "rtx4090" in text and "FITS" in text


def test_compare_quants(runner):
    d = jrun(runner, "compare", "llama-3.1-8b", "--gpu", "rtx3060", "--quant", "Q4_K_M,Q5_K_M,Q8_0,F16")
    assert [r["quant"] for r in d["rows"]] == ["Q4_K_M", "Q5_K_M", "Q8_0", "F16"]
    mem = [r["memory_bytes"] for r in d["rows"]]
    assert mem == sorted(mem)
    assert d["rows"][-1]["verdict"] == "offload"


def test_gpus_smallest_first_with_speed(runner):
    d = jrun(runner, "gpus", "qwen3-32b", "--min-speed", "10")
    rows = d["rows"]
    assert rows and all(r["verdict"] in ("fits", "tight") for r in rows)
    assert all(r["decode_tokens_per_s"] >= 10 for r in rows)
    usable = [r["usable_bytes"] for r in rows]
    assert usable == sorted(usable)
    assert any(len(r["gpus"]) == 2 for r in rows)  # pairs are considered
    assert "rtx3060-12gb" not in {r["gpus"][0] for r in rows if len(r["gpus"]) == 1}  # 12 GB runs no 32B at Q4_K_M


def test_check_plot(runner):
    text = run(runner, "check", "llama3.1:8b", "--gpu", "rtx3060", "--plot").stdout
    assert "usable on the GPU(s)" in text and "─" in text and all(cell_len(line) <= 80 for line in text.splitlines())
    d = jrun(runner, "check", "llama3.1:8b", "--gpu", "rtx3060", "--plot")
    pts = d["context_curve"]["points"]
    assert len(pts) > 10 and [p["memory_bytes"] for p in pts] == sorted(p["memory_bytes"] for p in pts)
    at = {p["context_tokens"]: p["memory_bytes"] for p in pts}
    assert at[d["inputs"]["context_tokens"]] == d["memory"]["total_bytes"]  # the same accounting as check
    usable = d["context_curve"]["usable_bytes"]
    mx = d["max_context_tokens"]
    assert all((m <= usable) == (c <= mx) for c, m in at.items() if abs(c - mx) > 512)
    assert math.isfinite(usable)


def test_fit_kind_encoder(runner):
    d = jrun(runner, "fit", "--gpu", "rtx3060", "--kind", "encoder")
    rows = d["rows"]
    assert rows and {r["kind"] for r in rows} == {"encoder"}
    check = jrun(runner, "check", rows[0]["model"], "--gpu", "rtx3060")
    assert check["memory"]["total_bytes"] == rows[0]["total_bytes"] and check["verdict"] == rows[0]["verdict"]
    params = [r["params"] for r in rows if r["verdict"] in ("fits", "tight")]
    assert params == sorted(params, reverse=True)


def test_a_size_that_no_card_has_suggests_the_family(runner):
    r = run(runner, "check", "llama3.1:8b", "--gpu", "m3 max 256gb")
    assert r.exit_code == 2 and "Did you mean" in r.stderr and "m3-max-40c-128gb" in r.stderr and "m3-max-30c-36gb" in r.stderr
    r = run(runner, "show", "rtx 5090 48gb")
    assert r.exit_code == 2 and "'rtx5090'" in r.stderr


def test_expert_offload_reads_true(runner):
    """MoE experts in system RAM (llama.cpp --n-cpu-moe): every layer on the GPU, the experts' bytes in RAM, no headroom."""
    d = jrun(runner, "check", "qwen3:30b", "--gpu", "rtx3060")
    off = d["offload"]
    if not off["cpu_moved_bytes"]:
        pytest.fail("expected expert offload for qwen3-30b-a3b Q4_K_M on a 12 GB card")
    text = run(runner, "check", "qwen3:30b", "--gpu", "rtx3060", env={"COLUMNS": "120"}).stdout
    verdict = next(line for line in text.splitlines() if line.startswith("Verdict"))
    assert "headroom" not in verdict and f"experts of {off['n_cpu_moe']} layers" in verdict
    assert "In system RAM (expert weights)" in text


def test_fit_top3_at_80_columns_run_at_a_usable_speed(fits):
    """Issue 12 section 3, what a person would run: on the issue's three cards the top 3 rows shown at 80
    columns fit, at 4 bits or more, and decode at the usable speed (fit.USABLE_TOKENS_PER_S); the table
    prints each id whole with its precision and speed (rtx3060: qwen3-14b, phi-4, gemma-3-12b; rtx5090:
    gemma-4-31b, qwen3-vl-32b, qwen3.5-27b; M3 Max 128 GB: gemma-4-31b F16, llama-3.2-90b-vision Q5_K_M,
    llama-3.3-70b Q6_K, no longer the 70-90B models at Q8_0 and ~4 tok/s)."""
    from rich.console import Console

    from vramcalc.fit import USABLE_TOKENS_PER_S
    from vramcalc.render.fit import render_fit

    r, _ = fits
    for g in ("rtx3060", "rtx5090", "m3-max-40c-128gb"):
        top = r[g].rows[:3]
        for row in top:
            assert row.verdict == "fits" and row.quant not in ("Q3_K_M", "Q2_K"), (g, row)
            assert row.usable_speed is True and row.decode_tokens_per_s >= USABLE_TOKENS_PER_S, (g, row)
        con = Console(width=80, record=True, color_system=None)
        con.print(render_fit(r[g]))
        shown = [line.split()[:5] for line in con.export_text().splitlines()[3:6]]
        assert [s[0] for s in shown] == [row.model for row in top] and [s[4] for s in shown] == [row.quant for row in top], (g, shown)
    m3 = {row.model: row for row in r["m3-max-40c-128gb"].rows}
    for dense in ("llama-3.3-70b", "qwen2.5-72b", "llama-3.2-90b-vision"):
        assert m3[dense].quant != "Q8_0" and m3[dense].usable_speed is True, m3[dense]
