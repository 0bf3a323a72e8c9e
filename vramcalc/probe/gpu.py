"""GPU discovery with NVML (nvidia-ml-py's ``pynvml``); no torch.

Every failure mode (pynvml not installed, no NVIDIA driver, no NVIDIA GPU, a query the driver does
not support) becomes a message or a ``None`` field, never an exception: ``probe`` goes on with what
it can do.
"""

from __future__ import annotations

from typing import Any

from vramcalc.probe.results import GpuDevice, GpuDiscovery, GpuProcess


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:  # NVMLError_NotSupported and friends: the field is simply unknown
        return None


def match_catalog_gpu(nvml_name: str) -> str | None:
    """The catalog GPU id for an NVML device name ('NVIDIA GeForce RTX 3060' -> 'rtx3060-12gb'), or None."""
    from vramcalc.catalog import load_catalog

    hit = load_catalog().lookup(["gpus"], nvml_name)
    return hit[1] if hit else None


def discover_gpus(nvml: Any = None) -> GpuDiscovery:
    """Every NVIDIA device NVML sees: memory, driver/CUDA versions, bus width, clocks, processes.

    Args:
        nvml: the ``pynvml`` module (tests pass a stand-in); default: import it.
    """
    if nvml is None:
        try:
            import pynvml as nvml  # type: ignore[no-redef]
        except ImportError:
            return GpuDiscovery(available=False, message="pynvml is not installed (pip install nvidia-ml-py); no GPU information.")
    try:
        nvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound / DriverNotLoaded on machines without an NVIDIA driver
        return GpuDiscovery(
            available=False, message=f"No NVIDIA driver found (NVML: {_str(e) or type(e).__name__}); running without a GPU."
        )
    try:
        driver = _try(nvml.nvmlSystemGetDriverVersion)
        cuda = _try(nvml.nvmlSystemGetCudaDriverVersion)
        cuda_s = f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None
        count = _try(nvml.nvmlDeviceGetCount) or 0
        devices = []
        for i in range(count):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            name = _str(nvml.nvmlDeviceGetName(h))
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            cc = _try(nvml.nvmlDeviceGetCudaComputeCapability, h)
            procs = _try(nvml.nvmlDeviceGetComputeRunningProcesses, h) or []
            devices.append(
                GpuDevice(
                    index=i,
                    name=name,
                    catalog_id=match_catalog_gpu(name),
                    total_bytes=int(mem.total),
                    free_bytes=int(mem.free),
                    used_bytes=int(mem.used),
                    bus_width_bits=_try(nvml.nvmlDeviceGetMemoryBusWidth, h),
                    max_graphics_clock_mhz=_try(nvml.nvmlDeviceGetMaxClockInfo, h, nvml.NVML_CLOCK_GRAPHICS),
                    max_memory_clock_mhz=_try(nvml.nvmlDeviceGetMaxClockInfo, h, nvml.NVML_CLOCK_MEM),
                    compute_capability=f"{cc[0]}.{cc[1]}" if cc else None,
                    processes=[GpuProcess(pid=int(p.pid), used_bytes=_used(p)) for p in procs],
                )
            )
        message = None if devices else "NVML found no NVIDIA GPU."
        return GpuDiscovery(
            available=bool(devices),
            message=message,
            driver_version=_str(driver) if driver else None,
            cuda_driver_version=cuda_s,
            devices=devices,
        )
    finally:
        _try(nvml.nvmlShutdown)


def _used(proc: Any) -> int | None:
    v = getattr(proc, "usedGpuMemory", None)
    # NVML reports NVML_VALUE_NOT_AVAILABLE (2^64 - 1) where the driver hides per-process use (Windows WDDM)
    return int(v) if isinstance(v, int) and v < 2**63 else None


def process_gpu_bytes(pid: int, index: int = 0, nvml: Any = None) -> int | None:
    """GPU memory NVML attributes to ``pid`` on device ``index`` (includes the CUDA context), or None."""
    if nvml is None:
        try:
            import pynvml as nvml  # type: ignore[no-redef]
        except ImportError:
            return None
    try:
        nvml.nvmlInit()
    except Exception:
        return None
    try:
        h = nvml.nvmlDeviceGetHandleByIndex(index)
        for p in _try(nvml.nvmlDeviceGetComputeRunningProcesses, h) or []:
            if int(p.pid) == pid:
                return _used(p)
        return None
    finally:
        _try(nvml.nvmlShutdown)
