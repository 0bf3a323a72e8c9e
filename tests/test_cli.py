"""The command line: output contract, errors and exit codes, no torch on the light commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vramcalc.cli import app


def test_check_table_shows_breakdown_and_bar(runner):
    r = runner.invoke(app, ["check", "llava-7b", "--gpu", "rtx3060"], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    out = r.stdout
    for text in (
        "llava-1.6-mistral-7b",
        "rtx3060-12gb",
        "LLM weights (Q4_K_M)",
        "Vision encoder",
        "KV cache",
        "Vision compute buffer",
        "Total on GPU",
        "Verdict: FITS",
        "Largest context",
    ):
        assert text in out, text
    assert "█" in out and "·" in out  # the bar, with free space


def test_check_json_contract(runner):
    r = runner.invoke(app, ["check", "llama-2-7b", "--gpu", "NVIDIA GeForce RTX 3060", "--quant", "Q4_K_M", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["inputs"]["model"] == "llama-2-7b" and d["inputs"]["gpu"] == "rtx3060-12gb"
    for key in ("llm", "vision", "projector", "total"):
        assert isinstance(d["params"][key], int)
    mem = d["memory"]
    for key in ("kv_cache_bytes", "overhead_bytes", "total_bytes"):
        assert isinstance(mem[key], int)
    assert set(mem["weights_bytes"]) >= {"llm", "vision", "projector"}
    assert set(mem["compute_bytes"]) >= {"llm", "vision"}
    assert isinstance(d["gpu"]["memory_bytes"], int) and isinstance(d["gpu"]["usable_bytes"], int)
    assert d["verdict"] in ("fits", "tight", "offload", "no")
    assert isinstance(d["headroom_bytes"], int) and "max_context_tokens" in d and "suggestion" in d
    # issue 2: weights within 1% of TheBloke's llama-2-7b.Q4_K_M.gguf, 4.08 GB
    assert mem["weights_bytes"]["llm"] == pytest.approx(4.08e9, rel=0.01)


def test_json_is_the_table_object(runner):
    """--json prints the Estimate the table renders: same numbers in both."""
    from vramcalc.units import fmt_bytes

    j = json.loads(runner.invoke(app, ["check", "llava-7b", "--gpu", "rtx3060", "--json"]).stdout)
    table = runner.invoke(app, ["check", "llava-7b", "--gpu", "rtx3060"], env={"COLUMNS": "150"}).stdout
    assert fmt_bytes(j["memory"]["total_bytes"]) in table
    assert fmt_bytes(j["memory"]["kv_cache_bytes"]) in table


def test_unknown_model_did_you_mean(runner):
    r = runner.invoke(app, ["check", "lava-7b", "--gpu", "rtx3060"])
    assert r.exit_code == 2
    assert "Unknown model 'lava-7b'" in r.stderr and "Did you mean" in r.stderr
    assert "Traceback" not in r.output


def test_unknown_gpu_did_you_mean(runner):
    r = runner.invoke(app, ["check", "llava-7b", "--gpu", "rtx306"])
    assert r.exit_code == 2 and "Did you mean 'rtx3060" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--image-size", "banana"],
        ["--kv-cache", "q3"],
        ["--ctx", "0"],
        ["--quant", "Q9_Z"],
        ["--ram", "inf"],
        ["--ram", "-5"],
        ["--ram", "0"],
        ["--ram-bandwidth", "nan"],
        ["--ram-bandwidth", "inf"],
    ],
)
def test_bad_values_are_usage_errors(runner, args):
    r = runner.invoke(app, ["check", "llava-7b", "--gpu", "rtx3060", *args])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output


def test_list_and_show(runner):
    r = runner.invoke(app, ["list", "gpus", "-q", "3060", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert "rtx3060-12gb" in [i["id"] for i in d["items"]]
    r = runner.invoke(app, ["list", "vlms"], env={"COLUMNS": "150"})
    assert r.exit_code == 0 and "llava-1.6-mistral-7b" in r.stdout
    r = runner.invoke(app, ["list", "gpus", "-q", "no-such-gpu-anywhere"])
    assert r.exit_code == 0 and "No results found." in r.stdout
    r = runner.invoke(app, ["show", "llava:7b", "--json"])
    d = json.loads(r.stdout)
    assert d["id"] == "llava-1.6-mistral-7b" and d["derived_params"]["total"] == 7_566_223_360


def test_validate_builtin_catalog(runner):
    r = runner.invoke(app, ["validate", "--json"])
    d = json.loads(r.stdout)
    assert d["ok"], d["problems"][:10]
    assert r.exit_code == 0


def test_validate_reports_file_and_field(runner, tmp_path):
    (tmp_path / "gpus").mkdir()
    (tmp_path / "gpus" / "bad.yaml").write_text(
        "id: bad\nname: Bad\nvendor: nvidia\ncategory: consumer\narchitecture: x\n"
        "memory_bytes: -1\nmemory_bandwidth_gbs: 100\nsource: test fixture\ncolour: red\n"
    )
    r = runner.invoke(app, ["validate", str(tmp_path)])
    assert r.exit_code == 1
    assert "bad.yaml -> memory_bytes" in r.stdout and "bad.yaml -> colour" in r.stdout


@pytest.mark.parametrize(
    "cmd",
    [
        ["check", "llava-7b", "--gpu", "rtx3060", "--json"],
        ["check", "llava-7b", "--gpu", "rtx3060"],
        ["list", "llms"],
        ["show", "rtx3060"],
        ["validate"],
    ],
)
def test_light_commands_never_import_torch(cmd):
    code = (
        "import sys; from vramcalc.cli import app\n"
        f"try:\n    app({cmd!r})\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'transformers' not in sys.modules\n"
        "print('no-torch-ok', file=sys.stderr)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "no-torch-ok" in r.stderr, r.stderr[-2000:]


def test_python_dash_m():
    r = subprocess.run(
        [sys.executable, "-m", "vramcalc", "check", "llava-7b", "--gpu", "rtx3060", "--json"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verdict"] == "fits"


def _fake_discovery(monkeypatch, name, total_bytes, catalog_id):
    from vramcalc.probe import gpu as probe_gpu
    from vramcalc.probe.results import GpuDevice, GpuDiscovery

    dev = GpuDevice(index=0, name=name, catalog_id=catalog_id, total_bytes=total_bytes, free_bytes=total_bytes, used_bytes=0)
    monkeypatch.setattr(probe_gpu, "discover_gpus", lambda nvml=None: GpuDiscovery(available=True, devices=[dev]))


def test_check_gpu_local_uses_the_detected_card(runner, monkeypatch):
    """--gpu local: the NVML name resolves to the catalog entry, the memory is what NVML reports
    (an RTX 3060 12 GB shows 12288 MiB total)."""
    _fake_discovery(monkeypatch, "NVIDIA GeForce RTX 3060", 12288 * 2**20, "rtx3060-12gb")
    r = runner.invoke(app, ["check", "llava-7b", "--gpu", "local", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["gpu"]["id"] == "rtx3060-12gb" and d["gpu"]["memory_bytes"] == 12288 * 2**20


def test_gpu_local_unknown_card_without_profile_is_a_clean_error(runner, monkeypatch):
    _fake_discovery(monkeypatch, "NVIDIA Future GPU 9000", 96 * 2**30, None)
    r = runner.invoke(app, ["check", "llava-7b", "--gpu", "local"])
    assert r.exit_code == 2 and "vramcalc probe" in r.stderr and "Traceback" not in r.output


@pytest.mark.parametrize("gpu", [("NVIDIA GeForce RTX 3060", "rtx3060-12gb"), ("NVIDIA Future GPU 9000", None)])
def test_gpu_local_with_a_corrupt_probe_profile_is_a_clean_error(runner, monkeypatch, gpu):
    """A tampered profile in the user data dir: one line naming the file, exit code 2, no traceback."""
    from vramcalc.probe.bench import profile_path

    name, catalog_id = gpu
    _fake_discovery(monkeypatch, name, 12 * 2**30, catalog_id)
    path = profile_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"gpu_name": "x", "copy_bandwidth_gbs": -5}', encoding="utf-8")
    r = runner.invoke(app, ["check", "llava-7b", "--gpu", "local"])
    assert r.exit_code == 2, r.output
    assert "is not valid" in r.stderr and path.name in r.stderr and "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_mmproj_needs_a_gguf_model(runner):
    r = runner.invoke(app, ["check", "llava-7b", "--gpu", "rtx3060", "--mmproj", "x.gguf"])
    assert r.exit_code == 2 and "--mmproj" in r.output and "Traceback" not in r.output


def test_output_paths_fail_cleanly(runner, tmp_path, monkeypatch):
    """An output that cannot be written is a one-line error; probe checks its --markdown folder
    before it measures anything."""
    r = runner.invoke(app, ["probe", "--quick", "--markdown", str(tmp_path / "no" / "dir" / "x.md")])
    assert r.exit_code == 2 and "--markdown" in r.output and "Traceback" not in r.output
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("VRAMCALC_HOME", str(blocker))
    cfg = Path(__file__).parent / "fixtures" / "reference" / "hf_configs" / "llm" / "Llama-2-7b.json"
    r = runner.invoke(app, ["import", str(cfg), "--write", "--id", "my-llama"])
    assert r.exit_code == 2 and "cannot write" in r.output and "Traceback" not in r.output
