"""fit's quality order (issue 12): the date each model is ranked by comes from a named source, and
data/quality.yaml is what benchmarks/quality/generate.py writes from the reference files.

Sources: a date stamp in the model's Hugging Face repo ids (mistralai/Mistral-Small-24B-Instruct-2501,
allenai/Molmo-7B-D-0924), the arXiv id of its own paper cited by the entry (gpt-oss model card
arXiv:2508.10925), and, as the labelled fallback, the first PyPI upload of the transformers release
its published config.json was written with (benchmarks/quality/transformers_releases.csv, read from
https://pypi.org/simple/transformers/: 4.51.0 on 2025-04-05, 4.42.0 on 2024-06-27).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("quality_generate", REPO / "benchmarks" / "quality" / "generate.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _generator()


@pytest.mark.parametrize(
    ("repo", "month"),
    [
        ("mistralai/Mistral-Small-24B-Instruct-2501", "2025-01"),  # YYMM
        ("mistralai/Mistral-Nemo-Instruct-2407", "2024-07"),
        ("allenai/Molmo-7B-D-0924", "2024-09"),  # MMYY
        ("deepseek-ai/DeepSeek-R1-0528", None),  # MMDD: no year, not a date stamp this rule reads
        ("Qwen/Qwen2.5-7B-Instruct", None),
    ],
)
def test_date_stamp_in_a_repo_id(repo, month):
    assert GEN.stamp_month(repo) == month


def test_not_before_is_the_pypi_release_of_the_config_version():
    rel = GEN.load_releases()
    # rows of transformers_releases.csv (first PyPI upload of each X.Y.0)
    assert rel[(4, 51)] == "2025-04-05" and rel[(4, 42)] == "2024-06-27"
    assert GEN.not_before("4.51.0", rel) == ("2025-04-05", "4.51.0")
    # a development build of 4.43 was written after 4.42.0 came out (Llama 3.1's config: 4.43.0.dev0)
    assert GEN.not_before("4.43.0.dev0", rel) == ("2024-06-27", "4.42.0")
    assert GEN.not_before("5.5.0.dev0", rel) == (rel[(5, 4)], "5.4.0")


def test_quality_yaml_is_what_the_generator_writes():
    out = io.StringIO()
    argv = sys.argv
    sys.argv = ["generate.py", "--reference", str(REPO / "tests" / "fixtures" / "reference")]
    try:
        with contextlib.redirect_stdout(out):
            GEN.main()
    finally:
        sys.argv = argv
    assert out.getvalue() == (REPO / "data" / "quality.yaml").read_text(encoding="utf-8")


def test_dates_come_from_the_named_sources():
    from vramcalc.fit import load_quality

    q = load_quality()
    assert (q["mistral-small-24b-2501"].released, q["mistral-small-24b-2501"].basis) == ("2025-01", "released")
    assert "Mistral-Small-24B" in (q["mistral-small-24b-2501"].released_source or "")
    assert q["gpt-oss-20b"].released == "2025-08" and "arXiv:2508.10925" in (q["gpt-oss-20b"].released_source or "")
    # fallback: Qwen3-8B's config.json was written with transformers 4.51.0 (PyPI 2025-04-05)
    assert (q["qwen3-8b"].released, q["qwen3-8b"].not_before, q["qwen3-8b"].basis) == (None, "2025-04", "not_before")
    # an unstamped repo id beside a stamped revision: no stamp date (Qwen/Qwen3-30B-A3B and ...-Instruct-2507)
    assert q["qwen3-30b-a3b"].released is None
    # its own config, not the one it shares the architecture with (Llama-3.3-70B-Instruct.json: 4.47.0.dev0)
    assert q["llama-3.3-70b"].config_transformers == "4.47.0.dev0" and q["llama-3.3-70b"].not_before == "2024-10"
    # a VLM is not older than its language model
    assert (q["llava-1.5-7b"].not_before or "") >= (q["vicuna-7b-v1.5"].not_before or "")


def test_quality_score_is_the_documented_rule():
    from vramcalc.fit import YEARS_PER_DOUBLING, quality_score

    assert YEARS_PER_DOUBLING == 1.0
    assert quality_score(16 * 10**9, "2023-01") == 4.0
    assert quality_score(8 * 10**9, "2024-01") == quality_score(16 * 10**9, "2023-01")  # a year newer = twice the size
    assert quality_score(8 * 10**9, "2024-07") == 4.5
    assert quality_score(8 * 10**9, None) is None


def test_quality_file_checks(tmp_path):
    from vramcalc.errors import CatalogError
    from vramcalc.fit import load_quality

    p = tmp_path / "q.yaml"
    for bad in (
        "qwen3-8b: {released: '2025-04'}\n",  # a date without its source
        "qwen3-8b: {released: '2025-13', released_source: x}\n",  # not a month
        "qwen3-8b: {not_before: '2025-04', not_before_basis: x}\n",  # a bound without the config version
        "qwen3-8b: {config_transformers: '4.51.0', source: x, not_before: '2025-04'}\n",  # a bound without its basis
    ):
        p.write_text(bad)
        with pytest.raises(CatalogError):
            load_quality(p)


def test_one_row_constructor():
    """FitRow is built in one place (make_row); the three callers go through it."""
    import inspect

    from vramcalc import fit

    src = inspect.getsource(fit)
    assert src.count("FitRow(\n") == 1  # make_row (the cache decodes with FitRow(*row))
    for caller in (fit._fit_one, fit._encoder_row, fit._fit_own):
        assert "make_row(" in inspect.getsource(caller)
