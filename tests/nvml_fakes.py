"""A pynvml stand-in shared by the tests that discover GPUs through NVML (test_probe.py,
test_llamacpp_placement.py)."""

from __future__ import annotations

from types import SimpleNamespace


class FakeNvml:
    """Stand-in for pynvml: one RTX 3060 with one process."""

    NVML_CLOCK_GRAPHICS, NVML_CLOCK_MEM = 0, 2

    def __init__(self, fail_init: bool = False):
        self.fail_init = fail_init

    def nvmlInit(self):
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return "550.54"

    def nvmlSystemGetCudaDriverVersion(self):
        return 12040

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA GeForce RTX 3060"

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=12 * 2**30, free=11 * 2**30, used=2**30)

    def nvmlDeviceGetMemoryBusWidth(self, h):
        return 192

    def nvmlDeviceGetMaxClockInfo(self, h, which):
        return 1867 if which == 0 else 7501

    def nvmlDeviceGetCudaComputeCapability(self, h):
        return (8, 6)

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=4242, usedGpuMemory=300 * 2**20), SimpleNamespace(pid=7, usedGpuMemory=2**64 - 1)]
