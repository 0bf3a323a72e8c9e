"""Intel GPUs under upstream llama.cpp (Vulkan, SYCL): a decode bandwidth group of their own.

Upstream llama.cpp's Vulkan and SYCL matrix-vector kernels on the Intel Arc A770 reach 26-39% of its
memory peak (benchmarks/calibration/llamacpp_bench.csv:143, :153, :155: tg128 52.56, 34.67 and 42.1
t/s for LLaMA-2 7B Q4_0), where Intel's IPEX-LLM fork reaches 54% on the same card (:157, 72.66 t/s).
The group is fitted by benchmarks/accuracy.py --fit (data/calibration.yaml decode_bandwidth.llama.cpp.intel)
on one GPU only; these tests pin its provenance and check the estimate against the measured rows.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vramcalc import runtimes, speed
from vramcalc.catalog import load_catalog
from vramcalc.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_ROWS = ["llamacpp_bench.csv:143", "llamacpp_bench.csv:153", "llamacpp_bench.csv:155"]
FORK_ROW = "llamacpp_bench.csv:157"
VULKAN_MEASURED = (34.67, 52.56)  # llamacpp_bench.csv:153 (build 3999) and :143 (build a69d54f), tg128


@pytest.fixture(scope="module")
def intel_group() -> dict:
    cal = yaml.load((ROOT / "data" / "calibration.yaml").read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return cal["decode_bandwidth"]["llama.cpp"]


def _csv_row(src: str) -> dict:
    name, line = src.split(":")
    with (ROOT / "benchmarks" / "calibration" / name).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return rows[int(line) - 2]  # line 1 is the header


def test_intel_group_records_its_rows_and_its_one_gpu(intel_group):
    g = intel_group["intel"]
    assert g["rows"] == UPSTREAM_ROWS
    assert g["n_gpus"] == 1 and g["gpus"] == ["arc-a770-16gb"]
    assert "not validated on a second intel GPU" in g["about"]
    # the rows named are the A770's upstream tg128 rows (Vulkan, Vulkan, SYCL), not the IPEX-LLM fork
    for src, backend in zip(UPSTREAM_ROWS, ("Vulkan", "Vulkan", "SYCL"), strict=True):
        r = _csv_row(src)
        assert (r["device"], r["backend"], r["test"]) == ("Intel Arc A770", backend, "tg128")
    assert "IPEX" in _csv_row(FORK_ROW)["backend"]
    # the fork is another runtime: in no fitted group; the Intel rows left the memory-class groups
    for name, grp in intel_group.items():
        assert FORK_ROW not in grp["rows"], name
        if name != "intel":
            assert not set(UPSTREAM_ROWS) & set(grp["rows"]), name


def test_upstream_intel_efficiency_is_below_the_fork_and_the_gddr_class(intel_group):
    # the fork's 72.66 t/s on the same card and weights is a floor on what the card's memory allows:
    # upstream kernels that ran at the GDDR class's efficiency would be faster than the fork
    eta = intel_group["intel"]["bandwidth_efficiency"]
    assert 0 < eta < intel_group["gddr"]["bandwidth_efficiency"]
    fork = _csv_row(FORK_ROW)  # size_gib x GiB x tok/s over the catalog's 560 GB/s (A770 16 GB, 17.5 Gbps x 256 bit)
    fork_share = float(fork["size_gib"]) * 2**30 * float(fork["tokens_per_s"]) / 560e9
    assert fork_share == pytest.approx(0.50, abs=0.01)
    assert eta < fork_share


def test_the_lookup_uses_the_intel_group_only_for_intel_under_vulkan_and_sycl():
    cat = load_catalog(include_user=False)
    rt = runtimes.get("llama.cpp")
    arc = cat.resolve_gpu("arc-a770-16gb")
    for b in ("vulkan", "sycl"):
        _, key, calibrated = speed.decode_factors(rt, b, "Q4_0", arc)
        assert key.endswith("decode_bandwidth.intel") and calibrated
    for gid in ("rx7900xtx", "rtx3090"):  # NVIDIA/AMD under Vulkan keep their memory class
        _, key, _ = speed.decode_factors(rt, "vulkan", "Q4_0", cat.resolve_gpu(gid))
        assert key.endswith("decode_bandwidth.gddr")


def test_arc_a770_check_decodes_within_the_measured_vulkan_rows():
    r = CliRunner().invoke(
        app, ["check", "llama-2-7b", "--gpu", "arc-a770-16gb", "--quant", "Q4_0", "--backend", "vulkan", "--depth", "0", "--json"]
    )
    assert r.exit_code == 0, r.output
    thr = json.loads(r.stdout)["throughput"]
    assert thr["backend"] == "vulkan"
    lo, hi = VULKAN_MEASURED
    assert lo <= thr["decode_tokens_per_s"]["value"] <= hi
