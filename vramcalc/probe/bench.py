"""CUDA microbenchmarks (copy bandwidth, fp16/bf16 matmul TFLOPS) and the local calibration profile.

The profile is JSON in ``<user data dir>/profiles/<gpu>.json`` (``VRAMCALC_HOME`` overrides the base,
like the user catalog). ``local_gpu()`` (no torch) turns the detected card plus its profile into a
``GpuSpec`` with measured figures in place of the datasheet ones, for ``check --gpu local``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vramcalc.errors import InputError
from vramcalc.probe.results import CalibrationProfile, GpuDiscovery

if TYPE_CHECKING:  # pragma: no cover
    from vramcalc.schema import GpuSpec


def profiles_dir() -> Path:
    from vramcalc.catalog import user_catalog_dir

    return user_catalog_dir().parent / "profiles"


def profile_path(gpu_name: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-") or "gpu"
    return profiles_dir() / f"{slug}.json"


def save_profile(profile: CalibrationProfile) -> Path:
    path = profile_path(profile.gpu_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dataclasses.replace(profile, path=str(path))
    path.write_text(json.dumps(profile.to_json(), indent=2) + "\n", encoding="utf-8")
    return path


def load_profile(gpu_name: str) -> CalibrationProfile | None:
    """The saved profile of ``gpu_name``, or None where there is none.

    Raises:
        InputError: the file cannot be read or is not a valid profile (one line naming the file and
            the first problem; the user deletes it or runs ``vramcalc probe`` again).
    """
    path = profile_path(gpu_name)
    if not path.is_file():
        return None
    try:
        return CalibrationProfile.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise InputError(
            f"The probe profile {path} is not valid ({e}). Delete it, or run 'vramcalc probe' to measure the GPU again."
        ) from None


def local_gpu(index: int = 0, found: GpuDiscovery | None = None) -> GpuSpec | None:
    """The detected GPU as a catalog ``GpuSpec``, with the probe's measured figures where a profile exists.

    Memory comes from NVML; bandwidth and tensor TFLOPS from the saved profile (measured), else from
    the catalog entry the NVML name resolves to. None where there is no NVIDIA GPU or it is unknown
    and has no profile. ``found``: a discovery the caller already made (default: discover now).

    Caveat for the speed model: its efficiency factors are fitted against datasheet peaks, so measured
    (already sustained) figures must not be discounted by them a second time.
    """
    from vramcalc.catalog import load_catalog
    from vramcalc.probe.gpu import discover_gpus

    found = found if found is not None else discover_gpus()
    if not found.devices or index >= len(found.devices):
        return None
    dev = found.devices[index]
    prof = load_profile(dev.name)
    base = load_catalog().resolve_gpu(dev.catalog_id) if dev.catalog_id else None
    if base is None and prof is None:
        return None
    from vramcalc.schema import GpuSpec

    update: dict[str, Any] = {"memory_bytes": dev.total_bytes}
    # A known card keeps its datasheet bandwidth and TFLOPS: the speed model's efficiency factors are
    # fitted against datasheet peaks, and a measured (already sustained) figure would be discounted twice.
    # An unknown card has only the measured figures.
    if prof is not None and base is None:
        update["memory_bandwidth_gbs"] = prof.copy_bandwidth_gbs
        if prof.fp16_matmul_tflops:
            update["fp16_tensor_tflops"] = prof.fp16_matmul_tflops
        if prof.bf16_matmul_tflops:
            update["bf16_tensor_tflops"] = prof.bf16_matmul_tflops
    note = f"local GPU '{dev.name}' (NVML, {dev.total_bytes / 2**30:.2f} GiB)"
    if prof is not None:
        note += f"; vramcalc probe measured {prof.copy_bandwidth_gbs:.0f} GB/s copy bandwidth at {prof.measured_at}"
    if base is not None:
        return dataclasses.replace(base, **{**update, "notes": note})
    assert prof is not None
    return GpuSpec(
        id="local",
        name=dev.name,
        source="measured by vramcalc probe (NVML + microbenchmarks)",
        vendor="nvidia",
        category="consumer",
        architecture="unknown",
        notes=note,
        **update,
    )


def _median_cuda_s(repeats: int, fn: Any, *args: Any) -> float:
    """Median seconds of ``fn(*args)`` by CUDA events, over ``repeats`` calls after 3 untimed warm-up calls."""
    import torch

    for _ in range(3):
        fn(*args)
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn(*args)
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1000)
    return statistics.median(times)


def run_microbenchmarks(gpu_name: str, catalog_id: str | None, memory_bytes: int | None, quick: bool = False) -> CalibrationProfile:
    """Device-to-device copy bandwidth and dense fp16/bf16 matmul TFLOPS on CUDA device 0."""
    import torch

    dev = torch.device("cuda")
    free, _total = torch.cuda.mem_get_info()
    # Copy: two buffers of up to 1 GiB (256 MiB in --quick), well above any L2 cache (H100: 50 MB).
    nbytes = min((256 if quick else 1024) * 2**20, free // 4)
    repeats = 5 if quick else 20
    src = torch.empty(nbytes, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    bandwidth = 2 * nbytes / _median_cuda_s(repeats, dst.copy_, src) / 1e9  # read + write
    del src, dst
    torch.cuda.empty_cache()
    n = 4096 if quick else 8192
    tflops: dict[str, float | None] = {}
    for name, dt in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        try:
            x = torch.randn(n, n, dtype=dt, device=dev)
            y = torch.randn(n, n, dtype=dt, device=dev)
            tflops[name] = 2 * n**3 / _median_cuda_s(repeats, torch.matmul, x, y) / 1e12
            del x, y
        except RuntimeError:  # e.g. bf16 on a pre-Ampere card
            tflops[name] = None
    torch.cuda.empty_cache()
    return CalibrationProfile(
        gpu_name=gpu_name,
        catalog_id=catalog_id,
        memory_bytes=memory_bytes,
        copy_bandwidth_gbs=round(bandwidth, 1),
        fp16_matmul_tflops=round(tflops["fp16"], 1) if tflops["fp16"] else None,
        bf16_matmul_tflops=round(tflops["bf16"], 1) if tflops["bf16"] else None,
        matmul_size=n,
        copy_bytes=nbytes,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        torch_version=torch.__version__,
    )
