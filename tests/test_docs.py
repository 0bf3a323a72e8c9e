"""Generated docs are current: regenerating them gives the committed files, byte for byte.

docs/catalog.md comes from the schema's field descriptions (docs/gen_catalog_md.py); a schema change
without a regenerated page fails here, naming the command that fixes it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(script: Path):
    spec = importlib.util.spec_from_file_location(f"vramcalc_docs_{script.stem}", script)
    assert spec is not None and spec.loader is not None, script
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_catalog_md_is_current():
    committed = (ROOT / "docs" / "catalog.md").read_text(encoding="utf-8")
    generated = _load(ROOT / "docs" / "gen_catalog_md.py").render()
    # the page documents every catalog kind (a generator that lost its sections would also be "current")
    for heading in ("## GPU (`GpuSpec`)", "## LLM (`LlmSpec`)", "## VLM (`VlmSpec`)", "## Vision encoder (`VisionEncoderSpec`)"):
        assert heading in generated, heading
    assert generated == committed, "docs/catalog.md is out of date: run `python docs/gen_catalog_md.py` and commit it"


def test_ci_ends_with_the_readme_test_command():
    """.ci/run's last command is the README's "install everything ... and run the tests" line, verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    at = readme.index("# install everything (incl. the torch probe, CPU build) and run the tests")
    command = readme[at + 1]
    assert command.endswith("&& .venv/bin/pytest"), command
    ci = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert ci[-1] == command


def test_json_md_is_current():
    """docs/json.md is generated from the result dataclasses (their fields and doc() texts)."""
    mod = _load(ROOT / "docs" / "gen_json_md.py")
    committed = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    assert mod.render() == committed, "docs/json.md is stale: run `python docs/gen_json_md.py --write`"
    # every result field is documented
    assert "| `max_context_tokens` |" in committed and "| `total_bytes` | int | *computed*" in committed
