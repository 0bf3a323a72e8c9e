"""``--gpu local``: the NVIDIA card in this machine (NVML) as a catalog ``GpuSpec``, for every command.

No torch: NVML discovery (vramcalc.probe.gpu) and the saved probe profile (vramcalc.probe.bench).
The command line only prints the notice and maps the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vramcalc.errors import InputError

if TYPE_CHECKING:
    from vramcalc.schema import GpuSpec


@dataclass(frozen=True)
class LocalGpu:
    """The detected card and a notice for the user (several GPUs found, the first one used), or None."""

    spec: GpuSpec
    notice: str | None = None
    #: NVML's free memory of the card (what other processes and the driver hold is not usable), or None.
    free_bytes: int | None = None

    @property
    def in_use_bytes(self) -> int:
        """Memory NVML reports in use by others (total - free): --gpu local counts only free memory."""
        return 0 if self.free_bytes is None else max(self.spec.memory_bytes - self.free_bytes, 0)


def detect_local_gpu() -> LocalGpu:
    """This machine's first GPU (NVML): its catalog entry with the memory NVML reports, or, for a card
    the catalog does not know, the figures ``vramcalc probe`` measured (vramcalc.probe.bench.local_gpu).

    Raises:
        InputError: no NVIDIA GPU / driver, or an unknown card without a probe profile.
    """
    from vramcalc.probe import gpu as probe_gpu
    from vramcalc.probe.bench import local_gpu

    found = probe_gpu.discover_gpus()
    if not found.available or not found.devices:
        raise InputError(f"--gpu local: {found.message or 'no GPU found.'} Name the GPU instead, e.g. --gpu rtx3060.")
    notice = None
    if len(found.devices) > 1:
        notice = f"{len(found.devices)} GPUs found; using the first, {found.devices[0].name}."
    spec = local_gpu(0, found)
    if spec is None:
        dev = found.devices[0]
        raise InputError(
            f"--gpu local: '{dev.name}' is not in the catalog and has no probe profile. Run 'vramcalc probe' "
            "to measure it, or pick the closest entry with --gpu (vramcalc list gpus)."
        )
    free = found.devices[0].free_bytes
    return LocalGpu(spec=spec, notice=notice, free_bytes=int(free) if free is not None else None)
