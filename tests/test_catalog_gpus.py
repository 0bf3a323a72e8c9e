"""The GPU catalog (data/gpus/): every entry validates and resolves, and pinned published facts hold.

The pinned figures are the makers' published specifications, with the document named next to each
assertion; they are not values read back from the catalog files.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from vramcalc.catalog import Catalog, builtin_catalog_dir, load_catalog, normalize_gpu
from vramcalc.schema import GpuSpec
from vramcalc.units import GiB

# loaded directly (no parse cache, no user catalog): ids are needed at collection time, before the
# hermetic fixture points the user data dir at a temp dir
CAT = Catalog.load([builtin_catalog_dir()])
GPU_IDS = CAT.ids("gpus")
REFERENCE_CSV = Path(__file__).resolve().parent / "fixtures" / "reference" / "gpu_specs.csv"  # copied from shared/reference


def gpu(query: str) -> GpuSpec:
    return CAT.resolve_gpu(query)


# -- every entry -----------------------------------------------------------------------------


def test_catalog_loads_without_problems():
    # duplicate ids, alias collisions (after normalize_gpu), id != file name, YAML errors
    gpu_problems = [p for p in CAT.problems if "/gpus/" in p.replace("\\", "/")]
    assert gpu_problems == []


def test_load_catalog_reports_no_gpu_problems():
    # the loader the CLI uses (with its parse cache, here in the test's temp dir): no problem names a GPU
    # file, including collisions between a GPU alias and a model alias ("collides with gpus/...")
    assert [p for p in load_catalog().problems if "gpus/" in p.replace("\\", "/")] == []


@pytest.mark.parametrize("gid", GPU_IDS)
def test_entry_validates_and_resolves(gid: str):
    spec = CAT.get("gpus", gid)
    assert isinstance(spec, GpuSpec)
    assert spec.id == gid
    path = builtin_catalog_dir() / "gpus" / f"{gid}.yaml"
    assert path.is_file()
    # the id and every alias resolve back to this entry, however they are spelled; an Apple chip family
    # alone ('M1 Max') names several configurations and asks, listing this one (issue 12)
    from vramcalc.errors import AmbiguousGpuError

    for name in [gid, *spec.aliases]:
        for typed in (name, name.upper()):
            try:
                assert gpu(typed).id == gid, typed
            except AmbiguousGpuError as e:
                assert gid in str(e) and spec.vendor == "apple", typed
    # sanity of units: memory is whole MiB, bandwidth and TFLOPS in plausible ranges
    assert spec.memory_bytes % (1024 * 1024) == 0
    assert 2 * GiB <= spec.memory_bytes <= 512 * GiB
    assert 50 <= spec.memory_bandwidth_gbs <= 10_000
    # every entry says where its numbers come from
    assert len(spec.source) > 40


def test_tensor_figures_never_below_the_rate_they_build_on():
    """Tensor figures are dense and never below the shader FP16 rate; INT8 never below FP16 tensor.

    Checked on every entry that has both figures; the number of such entries is pinned from below so
    that a loader that dropped the fields could not make this pass with nothing compared.
    """
    fp16_pairs = int8_pairs = 0
    for gid in GPU_IDS:
        spec = CAT.get("gpus", gid)
        if spec.fp16_tensor_tflops and spec.fp16_tflops:
            assert spec.fp16_tensor_tflops >= spec.fp16_tflops, gid
            fp16_pairs += 1
        if spec.int8_tensor_tops and spec.fp16_tensor_tflops:
            assert spec.int8_tensor_tops >= spec.fp16_tensor_tflops, gid
            int8_pairs += 1
    assert fp16_pairs >= 60 and int8_pairs >= 60, (fp16_pairs, int8_pairs)


# entries whose maker publishes no memory bus width (each needs its reason)
NO_BUS_WIDTH: set[str] = {
    # Apple M5: shared/reference/gpu_specs.csv gives bandwidth (153.6 GB/s) but no memory type or bus width
    "m5-16gb",
    "m5-24gb",
    "m5-32gb",
    # Jetson Orin Nano (pre-Super clocks): 68 GB/s over the 128-bit bus the source names is 4.25 GT/s, below the
    # catalog's LPDDR5 range, so the entry leaves the bus width out (see its notes)
    "jetson-orin-nano-8gb",
}


def test_only_the_known_entries_lack_a_bus_width():
    assert {g for g in GPU_IDS if not CAT.get("gpus", g).bus_width_bits} == NO_BUS_WIDTH


@pytest.mark.parametrize("gid", [g for g in GPU_IDS if g not in NO_BUS_WIDTH])
def test_bandwidth_matches_bus_width(gid: str):
    """bandwidth / (bus width / 8) is a real memory data rate for the memory type (GT/s per pin)."""
    spec = CAT.get("gpus", gid)
    assert spec.bus_width_bits, gid
    rate = spec.memory_bandwidth_gbs * 8 / spec.bus_width_bits
    # GDDR5 up to ~8, GDDR6 12-20, GDDR6X 19-23, GDDR7 28-32, HBM 0.8-9.6, LPDDR4X/5/5X 4.2-8.6
    assert 0.8 <= rate <= 32, (gid, rate)


def test_geforce_tensor_figures_are_fp32_accumulate():
    """One convention across the catalog: fp16_tensor_tflops is dense FP16 with FP32 accumulate.

    On GeForce Turing..Blackwell that is 2 x the shader FP16 rate (the whitepapers: RTX 3090 71 vs 35.6,
    RTX 4090 165.2 vs 82.6); the FP16-accumulate figure (4 x) must not slip in from other sources.
    """
    checked = 0
    for gid in GPU_IDS:
        s = CAT.get("gpus", gid)
        if s.vendor == "nvidia" and s.category in ("consumer", "laptop") and s.fp16_tensor_tflops and s.fp16_tflops:
            assert s.fp16_tensor_tflops / s.fp16_tflops == pytest.approx(2, rel=0.01), gid
            assert s.int8_tensor_tops / s.fp16_tflops == pytest.approx(8, rel=0.01), gid
            if s.bf16_tensor_tflops:
                assert s.bf16_tensor_tflops == s.fp16_tensor_tflops, gid
            checked += 1
    assert checked >= 35


def test_unified_memory_systems_are_flagged():
    unified = [g for g in GPU_IDS if CAT.get("gpus", g).vendor == "apple" or g.startswith(("dgx-spark", "strix-halo", "jetson"))]
    # Apple M1..M4 families, DGX Spark, Strix Halo and Jetson AGX Orin (one LPDDR5 pool for CPU and GPU)
    assert len(unified) >= 40
    for gid in unified:
        spec = CAT.get("gpus", gid)
        assert spec.unified_memory and spec.category == "unified", gid
        if spec.vendor == "apple" and not gid.startswith("m5-"):  # the M5 row has no core count or FP16 figure
            assert spec.gpu_cores and spec.fp16_tflops, gid
            assert spec.fp16_tensor_tflops is None, gid  # Apple publishes no tensor-core figure
    # and nothing else claims unified memory
    assert {g for g in GPU_IDS if CAT.get("gpus", g).unified_memory} == set(unified)


# -- coverage ----------------------------------------------------------------------------------


def test_counts():
    specs = [CAT.get("gpus", g) for g in GPU_IDS]
    assert len(specs) >= 100
    assert sum(s.vendor == "nvidia" for s in specs) >= 30
    assert sum(s.vendor == "amd" for s in specs) >= 15
    assert sum(s.vendor == "intel" for s in specs) >= 3
    apple = {s.architecture for s in specs if s.vendor == "apple"}
    assert {"Apple M1", "Apple M2", "Apple M3", "Apple M4"} <= apple
    assert "dgx-spark" in GPU_IDS
    assert any(g.startswith("strix-halo") for g in GPU_IDS)
    assert {s.category for s in specs} == {"consumer", "laptop", "workstation", "datacenter", "unified"}


@pytest.mark.parametrize(
    "gid",
    [
        "rtx3060-12gb",
        "rtx3060-8gb",
        "rtx3090",
        "rtx4060ti-8gb",
        "rtx4060ti-16gb",
        "rtx4090",
        "rtx5090",
        "a100-pcie-40gb",
        "a100-sxm4-40gb",
        "a100-pcie-80gb",
        "a100-sxm4-80gb",
        "h100-sxm",
        "h100-pcie",
        "l4",
        "t4",
        "rx7900xtx",
        "m1-8c-16gb",
        "m2-max-30c-64gb",
        "m3-max-40c-128gb",
        "m4-max-40c-128gb",
        "dgx-spark",
        "strix-halo-128gb",
    ],
)
def test_required_entries_exist(gid: str):
    assert gid in GPU_IDS


def test_reference_csv_rows_are_covered():
    """Every row of shared/reference/gpu_specs.csv has an entry that names it in its source.

    One row is deliberately left out, with the reason in the M3 Ultra entries: 'Apple M3 Ultra (128 GB)'
    matches no configuration Apple sold (96, 256 or 512 GB).
    """
    # the copy is committed under tests/fixtures: a missing file is a failure, not a skip
    assert REFERENCE_CSV.is_file(), REFERENCE_CSV
    rows = [r["name"] for r in csv.DictReader(REFERENCE_CSV.open(encoding="utf-8"))]
    cited = " ".join(CAT.get("gpus", g).source for g in GPU_IDS)
    missing = [r for r in rows if f"row '{r}'" not in cited]
    # rows that cannot be entries: no memory size and/or no bandwidth in the row (issue 15 closing note)
    no_memory_figures = {
        "Intel Arc 140V (Lunar Lake iGPU)",
        "Intel Arc 130V (Lunar Lake iGPU)",
        "Radeon 780M (Phoenix iGPU)",
        "Radeon 890M (Strix Point iGPU)",
        "Jetson AGX Orin 32GB",
        "Jetson Orin NX 16GB",
        "NVIDIA Jetson AGX Thor (T5000)",
    }
    assert "Apple M3 Ultra (128 GB)" in missing
    assert set(missing) <= {"Apple M3 Ultra (128 GB)"} | no_memory_figures, missing
    # the DGX Spark and Strix Halo rows (issue 15 round 2): every memory option of the row is an entry
    for gid in ("dgx-spark", "strix-halo-64gb", "strix-halo-96gb", "strix-halo-128gb"):
        assert "row '" in CAT.get("gpus", gid).source and "recalled" not in CAT.get("gpus", gid).source.split("row '")[0], gid


# -- names that NVML / ROCm / Metal report ------------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "gid"),
    [
        # nvidia-smi --query-gpu=name; the 12 GB and 8 GB RTX 3060 report the same name
        ("NVIDIA GeForce RTX 3060", "rtx3060-12gb"),
        ("NVIDIA GeForce RTX 4090", "rtx4090"),
        ("NVIDIA GeForce RTX 4060 Ti", "rtx4060ti-8gb"),
        ("NVIDIA GeForce RTX 4090 Laptop GPU", "rtx4090-laptop"),
        ("NVIDIA RTX A6000", "rtx-a6000"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("NVIDIA A100-PCIE-40GB", "a100-pcie-40gb"),
        ("NVIDIA A100 80GB PCIe", "a100-pcie-80gb"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("Tesla T4", "t4"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA GB10", "dgx-spark"),
        # ROCm / torch.cuda.get_device_name on ROCm
        ("AMD Radeon RX 7900 XTX", "rx7900xtx"),
        ("AMD Instinct MI300X", "mi300x"),
        ("AMD Radeon 8060S Graphics", "strix-halo-128gb"),
        # SYCL / Vulkan device name
        ("Intel(R) Arc(TM) A770 Graphics", "arc-a770-16gb"),
        # what people type
        ("rtx3060", "rtx3060-12gb"),
        ("RTX 4090", "rtx4090"),
        ("4090", "rtx4090"),
        ("h100", "h100-sxm"),
        ("A100 40GB", "a100-sxm4-40gb"),
        ("7900xtx", "rx7900xtx"),
        ("Strix Halo", "strix-halo-128gb"),
        ("DGX Spark", "dgx-spark"),
        ("m2 max 38c 96gb", "m2-max-38c-96gb"),
    ],
)
def test_reported_names_resolve(reported: str, gid: str):
    assert gpu(reported).id == gid


def test_a_plain_apple_chip_name_asks():
    """Issue 12: 'Apple M2 Max' (the Metal device name) is five configurations; it lists them (exit 2)
    rather than taking the smallest."""
    from vramcalc.errors import AmbiguousGpuError

    with pytest.raises(AmbiguousGpuError) as e:
        gpu("Apple M2 Max")
    assert e.value.exit_code == 2 and "m2-max-30c-32gb" in str(e.value) and "m2-max-38c-96gb" in str(e.value)


def test_no_two_gpus_share_a_normalized_name():
    owner: dict[str, str] = {}
    for gid in GPU_IDS:
        spec = CAT.get("gpus", gid)
        for name in [gid, *spec.aliases]:
            key = normalize_gpu(name)
            assert owner.setdefault(key, gid) == gid, (name, owner[key], gid)


# -- pinned published facts ----------------------------------------------------------------------


def test_rtx4090_published():
    # NVIDIA Ada GPU architecture whitepaper, appendix A (RTX 4090): 24 GB GDDR6X, 384-bit, 1008 GB/s,
    # FP16 tensor 330.3 TFLOPS with FP16 accumulate / 165.2 with FP32 accumulate (dense), INT8 660.6 TOPS;
    # https://www.nvidia.com/en-us/geforce/graphics-cards/40-series/rtx-4090/ lists 24 GB GDDR6X.
    s = gpu("rtx4090")
    assert s.memory_bytes == 24 * GiB
    assert s.bus_width_bits == 384
    assert s.memory_bandwidth_gbs == 1008
    assert s.fp16_tensor_tflops == pytest.approx(165.2, abs=0.1)
    assert s.int8_tensor_tops == pytest.approx(660.6, abs=0.1)
    assert s.compute_capability == "8.9"


def test_rtx3090_published():
    # NVIDIA Ampere GA102 whitepaper, appendix A (RTX 3090): 24 GB GDDR6X, 936 GB/s,
    # FP16 tensor with FP32 accumulate 71 TFLOPS dense, INT8 284 TOPS dense.
    s = gpu("NVIDIA GeForce RTX 3090")
    assert s.memory_bytes == 24 * GiB
    assert s.memory_bandwidth_gbs == 936
    assert s.fp16_tensor_tflops == pytest.approx(71, abs=0.5)
    assert s.int8_tensor_tops == pytest.approx(284, abs=1)


def test_rtx3060_variants_published():
    # NVIDIA GeForce RTX 3060 family spec page: 12 GB on 192-bit and 8 GB on 128-bit, 15 Gbps GDDR6
    # (360 and 240 GB/s).
    big, small = gpu("rtx3060-12gb"), gpu("rtx3060-8gb")
    assert (big.memory_bytes, big.bus_width_bits, big.memory_bandwidth_gbs) == (12 * GiB, 192, 360)
    assert (small.memory_bytes, small.bus_width_bits, small.memory_bandwidth_gbs) == (8 * GiB, 128, 240)


def test_rtx5090_published():
    # NVIDIA GeForce RTX 5090 spec page: 32 GB GDDR7, 512-bit, 1792 GB/s; compute capability 12.0.
    s = gpu("RTX 5090")
    assert (s.memory_bytes, s.bus_width_bits, s.memory_bandwidth_gbs) == (32 * GiB, 512, 1792)
    assert s.compute_capability == "12.0"


def test_h100_published():
    # NVIDIA H100 datasheet: SXM 80 GB, 3.35 TB/s, FP16/BF16 tensor 1,979 TFLOPS with sparsity (989.4 dense),
    # INT8 3,958 TOPS with sparsity; PCIe 80 GB, 2 TB/s, FP16 1,513 with sparsity.
    sxm, pcie = gpu("h100-sxm"), gpu("h100-pcie")
    assert sxm.memory_bytes == 80 * GiB and sxm.memory_bandwidth_gbs == 3350
    assert sxm.fp16_tensor_tflops == pytest.approx(989.4, abs=0.1)
    assert sxm.bf16_tensor_tflops == pytest.approx(989.4, abs=0.1)
    assert sxm.int8_tensor_tops == pytest.approx(3958 / 2, abs=1)
    assert pcie.memory_bandwidth_gbs == 2000
    assert pcie.fp16_tensor_tflops == pytest.approx(1513 / 2, abs=1)


def test_a100_published():
    # NVIDIA A100 datasheet: FP16/BF16 tensor 312 TFLOPS dense, INT8 624 TOPS dense;
    # 40 GB HBM2 1,555 GB/s; 80 GB HBM2e 1,935 GB/s (PCIe) / 2,039 GB/s (SXM).
    for gid, mem, bw in [
        ("a100-sxm4-40gb", 40, 1555),
        ("a100-pcie-40gb", 40, 1555),
        ("a100-pcie-80gb", 80, 1935),
        ("a100-sxm4-80gb", 80, 2039),
    ]:
        s = gpu(gid)
        assert s.memory_bytes == mem * GiB and s.memory_bandwidth_gbs == bw, gid
        assert s.fp16_tensor_tflops == 312 and s.bf16_tensor_tflops == 312 and s.int8_tensor_tops == 624, gid


def test_t4_and_l4_published():
    # NVIDIA T4 datasheet: 16 GB GDDR6, 320+ GB/s, mixed-precision 65 TFLOPS, INT8 130 TOPS, 70 W, no BF16.
    t4 = gpu("Tesla T4")
    assert (t4.memory_bytes, t4.memory_bandwidth_gbs, t4.fp16_tensor_tflops, t4.int8_tensor_tops, t4.tdp_w) == (16 * GiB, 320, 65, 130, 70)
    assert t4.bf16_tensor_tflops is None
    # NVIDIA L4 datasheet: 24 GB, 300 GB/s, FP16 tensor 242 TFLOPS with sparsity (121 dense), 72 W.
    l4 = gpu("NVIDIA L4")
    assert (l4.memory_bytes, l4.memory_bandwidth_gbs, l4.tdp_w) == (24 * GiB, 300, 72)
    assert l4.fp16_tensor_tflops == pytest.approx(121, abs=0.5)


def test_rx7900xtx_published():
    # AMD Radeon RX 7900 XTX spec page: 24 GB GDDR6, 384-bit, 960 GB/s, 122.8 TFLOPS peak half precision.
    s = gpu("AMD Radeon RX 7900 XTX")
    assert (s.memory_bytes, s.bus_width_bits, s.memory_bandwidth_gbs) == (24 * GiB, 384, 960)
    assert s.fp16_tflops == pytest.approx(122.8, abs=0.1)
    assert s.backend == "rocm"


def test_mi300x_published():
    # AMD Instinct MI300X data sheet: 192 GB HBM3, 5.3 TB/s, FP16 1307.4 TFLOPS dense (2614.9 with sparsity).
    s = gpu("MI300X")
    assert s.memory_bytes == 192 * GiB and s.memory_bandwidth_gbs == 5300
    assert s.fp16_tensor_tflops == pytest.approx(1307.4, abs=0.1)


def test_apple_published():
    # Apple newsroom (Jan 2023, M2 Pro and M2 Max): M2 Max 400 GB/s, 30- or 38-core GPU, up to 96 GB.
    assert gpu("m2-max-38c-96gb").memory_bandwidth_gbs == 400
    assert gpu("m2-max-38c-96gb").memory_bytes == 96 * GiB
    assert gpu("m2-max-30c-64gb").gpu_cores == 30
    # Apple newsroom (Oct 2023, M3 family): M3 Max 300 GB/s with the 30-core GPU, 400 GB/s with the 40-core GPU.
    assert gpu("m3-max-30c-36gb").memory_bandwidth_gbs == 300
    assert gpu("m3-max-40c-128gb").memory_bandwidth_gbs == 400
    # Apple newsroom (Oct 2024, M4 Pro and M4 Max): M4 Pro 273 GB/s; M4 Max 410 GB/s (32-core GPU) and
    # 546 GB/s (40-core GPU), up to 128 GB.
    assert gpu("m4-pro-20c-48gb").memory_bandwidth_gbs == 273
    assert gpu("m4-max-32c-36gb").memory_bandwidth_gbs == 410
    assert gpu("m4-max-40c-128gb").memory_bandwidth_gbs == 546
    # Apple newsroom (Mar 2022, M1 Ultra): 800 GB/s, up to 128 GB, 64-core GPU.
    s = gpu("m1-ultra-64c-128gb")
    assert (s.memory_bandwidth_gbs, s.memory_bytes, s.gpu_cores) == (800, 128 * GiB, 64)
    assert s.backend == "metal"


def test_unified_systems_published():
    # NVIDIA DGX Spark product page: 128 GB LPDDR5X unified memory, 256-bit, 273 GB/s.
    spark = gpu("DGX Spark")
    assert (spark.memory_bytes, spark.bus_width_bits, spark.memory_bandwidth_gbs) == (128 * GiB, 256, 273)
    assert spark.unified_memory
    # AMD Ryzen AI Max+ 395 product page: up to 128 GB LPDDR5X-8000 on a 256-bit bus (8000 x 256 / 8 = 256 GB/s),
    # Radeon 8060S with 40 compute units.
    halo = gpu("Ryzen AI Max+ 395")
    assert (halo.memory_bytes, halo.memory_bandwidth_gbs, halo.gpu_cores) == (128 * GiB, 256, 40)
    assert halo.unified_memory and halo.vendor == "amd"
