"""vramcalc probe: NVML discovery (stubbed), results and summary, profile storage, the CLI (CPU + simulated),
and the CUDA path (@pytest.mark.gpu, skipped without a CUDA device)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nvml_fakes import FakeNvml
from vramcalc.probe.results import Compared, ProbeRow, summarize


def test_nvml_discovery_matches_catalog_gpu():
    from vramcalc.probe.gpu import discover_gpus, process_gpu_bytes

    found = discover_gpus(FakeNvml())
    assert found.available and found.driver_version == "550.54" and found.cuda_driver_version == "12.4"
    dev = found.devices[0]
    # the NVML name of the 12 GB card resolves through the catalog aliases (data/gpus/rtx3060-12gb.yaml)
    assert dev.catalog_id == "rtx3060-12gb"
    assert dev.bus_width_bits == 192 and dev.compute_capability == "8.6"
    assert [p.used_bytes for p in dev.processes] == [300 * 2**20, None]  # NVML_VALUE_NOT_AVAILABLE -> None
    assert process_gpu_bytes(4242, nvml=FakeNvml()) == 300 * 2**20


def test_nvml_without_driver_is_a_message():
    from vramcalc.probe.gpu import discover_gpus

    found = discover_gpus(FakeNvml(fail_init=True))
    assert not found.available and "No NVIDIA driver" in found.message


def test_compared_and_summary():
    assert Compared(predicted=110, measured=100).error_pct == 10.0
    assert Compared(predicted=None, measured=100).error_pct is None
    rows = [
        ProbeRow(
            encoder="a",
            model_class="X",
            device="cpu",
            memory_source="simulated",
            dtype="fp16",
            attention="sdpa",
            batch=b,
            image_width=224,
            image_height=224,
            status="ok",
            activation_bytes=Compared(predicted=100 + e, measured=100),
            flops=Compared(predicted=1000, measured=1000),
        )
        for b, e in ((1, 1), (2, -3), (4, 5))
    ]
    rows.append(
        ProbeRow(
            encoder="b",
            model_class="X",
            device="cuda",
            memory_source="cuda",
            dtype="fp16",
            attention="sdpa",
            batch=64,
            image_width=224,
            image_height=224,
            status="oom",
            message="does not fit at batch 64",
        )
    )
    s = summarize(rows, "cpu")
    assert s.activation_median_abs_error_pct == 3.0 and s.activation_worst_abs_error_pct == 5.0
    assert s.flops_worst_abs_error_pct == 0.0 and s.rows_oom == 1
    assert "median 3.00%, worst 5.00%" in s.line and "1 out of memory" in s.line


def test_profile_round_trip_in_user_data_dir(tmp_path):
    from vramcalc.probe.bench import load_profile, profiles_dir, save_profile
    from vramcalc.probe.results import CalibrationProfile

    prof = CalibrationProfile(
        gpu_name="NVIDIA H100 80GB HBM3",
        catalog_id=None,
        memory_bytes=80 * 10**9,
        copy_bandwidth_gbs=2900.0,
        fp16_matmul_tflops=700.0,
        bf16_matmul_tflops=710.0,
        matmul_size=8192,
        copy_bytes=2**30,
        measured_at="2026-01-01T00:00:00+00:00",
        torch_version="2.13.0",
    )
    path = save_profile(prof)
    # VRAMCALC_HOME (set by the conftest) is the base: <home>/profiles/<gpu>.json
    assert path.parent == profiles_dir() and str(tmp_path) in str(path)
    assert load_profile("NVIDIA H100 80GB HBM3").copy_bandwidth_gbs == 2900.0
    assert load_profile("NVIDIA A100") is None


_GOOD_PROFILE = {
    "gpu_name": "NVIDIA H100 80GB HBM3",
    "catalog_id": None,
    "memory_bytes": 80 * 10**9,
    "copy_bandwidth_gbs": 2900,
    "fp16_matmul_tflops": 700.0,
    "bf16_matmul_tflops": None,
    "matmul_size": 8192,
    "copy_bytes": 2**30,
    "measured_at": "2026-01-01T00:00:00+00:00",
    "torch_version": "2.13.0",
}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "Expecting property name"),
        ("[1, 2]", "expected a JSON object"),
        ("\xff\xfe", "codec can't decode"),
        (json.dumps({**_GOOD_PROFILE, "extra": 1}), "unknown key 'extra'"),
        (json.dumps({k: v for k, v in _GOOD_PROFILE.items() if k != "copy_bandwidth_gbs"}), "missing key 'copy_bandwidth_gbs'"),
        (json.dumps({**_GOOD_PROFILE, "copy_bandwidth_gbs": "fast"}), "copy_bandwidth_gbs: expected a positive number"),
        (json.dumps({**_GOOD_PROFILE, "copy_bandwidth_gbs": -1}), "copy_bandwidth_gbs: expected a positive number"),
        (json.dumps({**_GOOD_PROFILE, "copy_bandwidth_gbs": float("nan")}), "got nan"),
        (json.dumps({**_GOOD_PROFILE, "fp16_matmul_tflops": 1e400}), "fp16_matmul_tflops: expected a positive number or null"),
        (json.dumps({**_GOOD_PROFILE, "matmul_size": True}), "matmul_size: expected a positive integer"),
        (json.dumps({**_GOOD_PROFILE, "gpu_name": None}), "gpu_name: expected a string"),
        ("[" * 100_000, "recursion"),  # nesting beyond the parser's recursion limit (RecursionError's text)
    ],
)
def test_corrupt_profile_is_a_one_line_input_error(text, reason):
    """A profile in the user data dir is read back field by field: a corrupt or tampered file is an
    InputError naming the file and the problem (the CLI prints it as one line), never a traceback."""
    from vramcalc.errors import InputError
    from vramcalc.probe.bench import load_profile, profile_path

    path = profile_path(_GOOD_PROFILE["gpu_name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    with pytest.raises(InputError) as err:
        load_profile(_GOOD_PROFILE["gpu_name"])
    msg = str(err.value)
    assert reason in msg and str(path) in msg and "vramcalc probe" in msg and "\n" not in msg


def test_profile_from_dict_accepts_a_valid_file_and_keeps_floats():
    from vramcalc.probe.results import CalibrationProfile

    prof = CalibrationProfile.from_dict(_GOOD_PROFILE)
    assert prof.copy_bandwidth_gbs == 2900.0 and isinstance(prof.copy_bandwidth_gbs, float) and prof.path is None
    assert prof.to_json() == {**_GOOD_PROFILE, "copy_bandwidth_gbs": 2900.0, "path": None}
    assert CalibrationProfile.from_dict(prof.to_json()) == prof


def test_missing_torch_gives_install_hint(monkeypatch):
    import importlib.util

    from vramcalc.errors import ProbeUnavailableError
    from vramcalc.probe.run import require_torch

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(ProbeUnavailableError, match=r"pip install 'vramcalc\[probe\]'"):
        require_torch()


def test_cli_help_does_not_import_torch():
    code = "import sys; from vramcalc.cli import app; import vramcalc.cli.probe, vramcalc.probe; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.probe
def test_cli_probe_quick_json(runner):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from vramcalc.cli import app

    res = runner.invoke(
        app,
        [
            "probe",
            "--quick",
            "--device",
            "cpu",
            "--encoder",
            "clip-vit-b-16",
            "siglip-b-16-224",
            "eva02-clip-l-14",
            "--batch",
            "1",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    rows = data["rows"]
    assert [(r["encoder"], r["batch"]) for r in rows] == [
        ("clip-vit-b-16", 1),
        ("clip-vit-b-16", 2),
        ("siglip-b-16-224", 1),
        ("siglip-b-16-224", 2),
        ("eva02-clip-l-14", 1),
        ("eva02-clip-l-14", 2),
    ]
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 4 and all(r["memory_source"] == "simulated" for r in ok)
    assert all(abs(r["activation_bytes"]["error_pct"]) < 10 and abs(r["flops"]["error_pct"]) < 1 for r in ok)
    assert rows[0]["latency_s"]["measured"] > 0 and rows[0]["latency_s"]["predicted"] is None  # --quick times the first row on the CPU
    assert rows[-1]["status"] == "not_available" and "EVA-CLIP" in rows[-1]["message"]
    assert data["summary"]["line"].startswith("CPU + simulated memory")


@pytest.mark.probe
def test_cli_probe_table_markdown_and_bad_batch(runner, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from vramcalc.cli import app

    md = tmp_path / "probe-cpu.md"
    res = runner.invoke(
        app, ["probe", "--quick", "--device", "cpu", "-e", "siglip-b-16-224", "--markdown", str(md)], env={"COLUMNS": "200"}
    )
    assert res.exit_code == 0, res.output
    assert "siglip-b-16-224" in res.stdout and "activation memory error median" in res.stdout
    text = md.read_text()
    assert text.startswith("# vramcalc probe: CPU") and "| siglip-b-16-224 | 1 | 224x224 |" in text and "transformers 5" in text
    bad = runner.invoke(app, ["probe", "--batch", "0"])
    assert bad.exit_code == 2


# ---------------------------------------------------------------------------------------------
# CUDA (skipped without a device: tests/conftest.py)


@pytest.mark.gpu
def test_cuda_probe_measures_and_matches(tmp_path):
    from vramcalc.probe.run import run_probe

    report = run_probe(encoders=["clip-vit-l-14-336", "siglip-so400m-14-384"], batches=[1, 8], device="cuda", quick=True)
    assert report.device == "cuda" and report.calibration is not None and report.calibration.copy_bandwidth_gbs > 0
    assert len(report.rows) == 4  # 2 encoders x 2 batches: the loop below checks something
    for r in report.rows:
        assert r.status == "ok", r.message
        assert r.memory_source == "cuda" and r.latency_s.measured > 0 and r.reserved_bytes >= r.peak_allocated_bytes.measured
        assert abs(r.flops.error_pct) < 1
        # the CUDA allocator adds what FakeTensorMode cannot see (flash log-sum-exp, kernel workspaces)
        assert abs(r.activation_bytes.error_pct) < 15


@pytest.mark.gpu
def test_cuda_oom_is_a_result():
    import torch

    from vramcalc.probe.run import run_probe

    free, _ = torch.cuda.mem_get_info()
    # InternViT-6B at 448 px holds ~5 x 1025 x 3200 x 2 bytes + 2 x 1025 x 12800 x 2 per image at its MLP peak (~85 MB):
    # enough images to exceed the free memory (60 MB per image, below that peak, so the batch surely does)
    batch = int(free / 60e6) + 1
    report = run_probe(encoders=["internvit-6b-448"], batches=[1, batch], device="cuda", quick=True, benchmark=False)
    last = report.rows[-1]
    assert last.status == "oom" and f"does not fit at batch {batch}" in last.message


@pytest.mark.probe
def test_cuda_branch_control_flow_without_a_gpu(monkeypatch):
    """The CUDA branch of run_probe with the device calls stubbed: rows carry the measurement, an OOM at batch 8
    becomes 'does not fit at batch 8' and batch 16 is not tried. (The real CUDA run: the gpu-marked tests.)"""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from vramcalc.probe import measure, models, run
    from vramcalc.probe.results import GpuDiscovery

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA Test GPU")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    real_build = models.build_model
    monkeypatch.setattr(models, "build_model", lambda spec, **kw: real_build(spec, **{**kw, "device": "cpu", "dtype": torch.float32}))
    tried = []

    def fake_cuda_run(model, make_inputs, batch, w, h, dtype, extra, weights_bytes, **kw):
        tried.append(batch)
        if batch >= 8:
            return measure.CudaMeasurement(status="oom", weights_bytes=weights_bytes)
        return measure.CudaMeasurement(
            status="ok",
            weights_bytes=weights_bytes,
            activation_bytes=5_000_000 * batch,
            peak_allocated_bytes=weights_bytes + 5_000_000 * batch,
            reserved_bytes=2 * weights_bytes,
            latency_s=0.01,
            flops=35_000_000_000 * batch,
        )

    monkeypatch.setattr(measure, "cuda_run", fake_cuda_run)
    monkeypatch.setattr("vramcalc.probe.gpu.process_gpu_bytes", lambda pid, index=0, nvml=None: 123)
    from vramcalc.probe.results import GpuDevice

    card = GpuDevice(
        index=0, name="NVIDIA GeForce RTX 3060", catalog_id="rtx3060-12gb", total_bytes=12 * 2**30, free_bytes=11 * 2**30, used_bytes=2**30
    )
    report = run.run_probe(
        encoders=["clip-vit-b-16"], batches=[1, 8, 16], device="cuda", benchmark=False, gpus=GpuDiscovery(available=True, devices=[card])
    )
    assert tried == [1, 8]
    ok, oom8, oom16 = report.rows
    assert ok.status == "ok" and ok.memory_source == "cuda" and ok.process_bytes == 123 and ok.flops.measured == 35e9
    assert ok.peak_allocated_bytes.predicted is not None
    # the speed model's time for one image on the catalog card NVML named (check --runtime transformers)
    assert 0 < ok.latency_s.predicted < 1 and ok.latency_s.error_pct is not None
    assert oom8.status == "oom" and oom8.message == "does not fit at batch 8"
    assert oom16.status == "oom" and "batch 8 already ran out of memory" in oom16.message
    assert report.summary.rows_oom == 2 and report.device_name == "NVIDIA Test GPU"


@pytest.mark.probe
def test_cli_probe_image_size_and_bf16(runner):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from vramcalc.cli import app

    res = runner.invoke(
        app,
        [
            "probe",
            "--quick",
            "--device",
            "cpu",
            "-e",
            "siglip-b-16-224",
            "--image-size",
            "320x256",
            "--dtype",
            "bf16",
            "--batch",
            "3",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)["rows"]
    # 320/16 x 256/16 = 20 x 16 patches with interpolated position embeddings; bf16 runs as asked
    assert (row["image_width"], row["image_height"], row["tokens_per_image"], row["dtype"]) == (320, 256, 320, "bf16")
    assert row["batch"] == 3 and abs(row["activation_bytes"]["error_pct"]) < 10 and abs(row["flops"]["error_pct"]) < 1


def test_local_gpu_overlays_the_measured_profile(monkeypatch):
    from vramcalc.probe import gpu as gpu_mod
    from vramcalc.probe.bench import local_gpu, save_profile
    from vramcalc.probe.results import CalibrationProfile

    real = gpu_mod.discover_gpus
    monkeypatch.setattr(gpu_mod, "discover_gpus", lambda nvml=None: real(FakeNvml()))
    plain = local_gpu()
    # catalog (datasheet) figure: NVIDIA's RTX 3060 12 GB spec, 192-bit GDDR6 at 15 Gbps = 192 x 15 / 8 = 360 GB/s
    assert plain.id == "rtx3060-12gb" and plain.memory_bandwidth_gbs == 360
    save_profile(
        CalibrationProfile(
            gpu_name="NVIDIA GeForce RTX 3060",
            catalog_id="rtx3060-12gb",
            memory_bytes=12 * 2**30,
            copy_bandwidth_gbs=331.5,
            fp16_matmul_tflops=25.0,
            bf16_matmul_tflops=25.5,
            matmul_size=8192,
            copy_bytes=2**30,
            measured_at="2026-01-01T00:00:00+00:00",
            torch_version="2.13.0",
        )
    )
    # a known card keeps its datasheet figures (the speed model's efficiencies are fitted against them);
    # the measurement is reported in the notes
    known = local_gpu()
    assert known.memory_bandwidth_gbs == 360 and "332 GB/s" in (known.notes or "")  # 331.5 rounded
    # a card the catalog does not know gets the measured figures
    from vramcalc.probe.results import GpuDevice, GpuDiscovery

    dev = GpuDevice(index=0, name="NVIDIA Future GPU", catalog_id=None, total_bytes=12 * 2**30, free_bytes=0, used_bytes=0)
    monkeypatch.setattr(gpu_mod, "discover_gpus", lambda nvml=None: GpuDiscovery(available=True, devices=[dev]))
    save_profile(
        CalibrationProfile(
            gpu_name="NVIDIA Future GPU",
            catalog_id=None,
            memory_bytes=12 * 2**30,
            copy_bandwidth_gbs=331.5,
            fp16_matmul_tflops=25.0,
            bf16_matmul_tflops=25.5,
            matmul_size=8192,
            copy_bytes=2**30,
            measured_at="2026-01-01T00:00:00+00:00",
            torch_version="2.13.0",
        )
    )
    measured = local_gpu()
    assert measured.memory_bandwidth_gbs == 331.5 and measured.fp16_tensor_tflops == 25.0 and measured.memory_bytes == 12 * 2**30
