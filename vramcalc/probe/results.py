"""Result objects of ``vramcalc probe`` (pydantic, no torch): predicted | measured | error % per row.

``--json`` prints ``ProbeReport.model_dump(mode="json")``: the same object the table renders.
"""

from __future__ import annotations

import statistics
from typing import Literal

from pydantic import Field, computed_field

from vramcalc.schema import ResultModel

_Model = ResultModel


class Compared(_Model):
    """One quantity, predicted by the analytic model and measured on the real model."""

    predicted: float | None = None
    measured: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def error_pct(self) -> float | None:
        """(predicted - measured) / measured x 100; positive = the model over-estimates."""
        if self.predicted is None or not self.measured:
            return None
        return round((self.predicted - self.measured) / self.measured * 100, 3)


class GpuProcess(_Model):
    pid: int
    used_bytes: int | None = Field(description="GPU memory NVML attributes to the process (None where the driver hides it).")


class GpuDevice(_Model):
    """One GPU as NVML reports it."""

    index: int
    name: str
    catalog_id: str | None = Field(description="The catalog GPU this NVML name resolves to; None = unknown card.")
    total_bytes: int
    free_bytes: int
    used_bytes: int
    bus_width_bits: int | None = None
    max_graphics_clock_mhz: int | None = None
    max_memory_clock_mhz: int | None = None
    compute_capability: str | None = None
    processes: list[GpuProcess] = Field(default_factory=list)


class GpuDiscovery(_Model):
    """What NVML found (or why it could not look)."""

    available: bool
    message: str | None = Field(default=None, description="Why there is no NVML information (no driver, no pynvml, no NVIDIA GPU).")
    driver_version: str | None = None
    cuda_driver_version: str | None = Field(default=None, description="Highest CUDA version the driver supports, e.g. '12.4'.")
    devices: list[GpuDevice] = Field(default_factory=list)


class CalibrationProfile(_Model):
    """Measured figures of the local GPU; ``--gpu local`` uses them in place of the datasheet for a card the catalog does not know."""

    gpu_name: str
    catalog_id: str | None
    memory_bytes: int | None
    copy_bandwidth_gbs: float = Field(description="Device-to-device copy: 2 x bytes / time (read + write), GB/s (10^9).")
    fp16_matmul_tflops: float | None
    bf16_matmul_tflops: float | None
    matmul_size: int = Field(description="Square matmul side used (n x n @ n x n, 2 n^3 FLOPs).")
    copy_bytes: int
    measured_at: str = Field(description="UTC ISO timestamp.")
    torch_version: str
    path: str | None = Field(default=None, description="Where the profile was saved.")


class ProbeRow(_Model):
    """One encoder at one batch size and image size."""

    encoder: str
    model_class: str | None = Field(description="transformers class built (random weights); None when not available.")
    device: Literal["cuda", "cpu"] = Field(description="Where the forward pass ran for latency (memory: see memory_source).")
    memory_source: Literal["cuda", "simulated"] = Field(
        description="cuda = torch.cuda.max_memory_allocated; simulated = FakeTensorMode + MemTracker (exact tensor accounting, no allocation)."
    )
    dtype: Literal["fp16", "bf16", "fp32"]
    attention: str
    batch: int
    image_width: int
    image_height: int
    tokens_per_image: int | None = None
    status: Literal["ok", "oom", "not_available", "error"]
    message: str | None = Field(default=None, description="e.g. 'does not fit at batch 64', or why the model is not available.")
    weights_bytes: int | None = Field(default=None, description="Measured parameter + buffer bytes of the built model.")
    flops: Compared = Field(default_factory=Compared, description="Forward FLOPs (FlopCounterMode convention).")
    activation_bytes: Compared = Field(default_factory=Compared, description="Peak bytes above the weights during the forward pass (input included).")
    peak_allocated_bytes: Compared = Field(default_factory=Compared, description="Weights + activations (CUDA: max_memory_allocated).")
    reserved_bytes: int | None = Field(default=None, description="CUDA: max_memory_reserved (allocator cache included).")
    process_bytes: int | None = Field(default=None, description="NVML: GPU memory used by this process (includes the CUDA context).")
    latency_s: Compared = Field(
        default_factory=Compared,
        description="Median forward time in seconds (CUDA events on GPU, perf_counter on CPU); predicted on CUDA by the speed "
        "model (`check --runtime transformers`) for the catalog GPU NVML found.",
    )
    latency_dtype: str | None = Field(default=None, description="dtype the latency was measured at (CPU runs fp16 requests at bf16).")
    notes: list[str] = Field(default_factory=list)


class ProbeSummary(_Model):
    """Median and worst absolute error of the analytic model over the rows that measured it."""

    rows_ok: int
    rows_oom: int
    rows_unavailable: int
    activation_median_abs_error_pct: float | None
    activation_worst_abs_error_pct: float | None
    flops_median_abs_error_pct: float | None
    flops_worst_abs_error_pct: float | None
    latency_median_abs_error_pct: float | None = Field(default=None, description="CUDA rows whose GPU is in the catalog: the speed model's time per batch.")
    latency_worst_abs_error_pct: float | None = None
    line: str = Field(description="The one-line summary printed after the table.")


class ProbeReport(_Model):
    """Everything one ``vramcalc probe`` run found."""

    vramcalc_version: str
    torch_version: str | None
    transformers_version: str | None
    started_at: str
    device: Literal["cuda", "cpu"]
    device_name: str | None
    gpus: GpuDiscovery
    calibration: CalibrationProfile | None = None
    calibration_message: str | None = None
    rows: list[ProbeRow]
    summary: ProbeSummary


def summarize(rows: list[ProbeRow], device: str) -> ProbeSummary:
    """Median / worst absolute error % of activations and FLOPs, and the summary line."""

    def stats(vals: list[float]) -> tuple[float | None, float | None]:
        if not vals:
            return None, None
        return round(statistics.median(vals), 2), round(max(vals), 2)

    act = [abs(r.activation_bytes.error_pct) for r in rows if r.activation_bytes.error_pct is not None]
    lat = [abs(r.latency_s.error_pct) for r in rows if r.latency_s.error_pct is not None]
    fl = [abs(r.flops.error_pct) for r in rows if r.flops.error_pct is not None]
    am, aw = stats(act)
    fm, fw = stats(fl)
    lm, lw = stats(lat)
    ok = sum(r.status == "ok" for r in rows)
    oom = sum(r.status == "oom" for r in rows)
    na = sum(r.status in ("not_available", "error") for r in rows)
    where = "CUDA" if device == "cuda" else "CPU + simulated memory (FakeTensorMode)"

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}%"

    line = (
        f"{where}: {ok} configurations measured"
        + (f", {oom} out of memory" if oom else "")
        + (f", {na} not available" if na else "")
        + f"; activation memory error median {pct(am)}, worst {pct(aw)}; FLOPs error median {pct(fm)}, worst {pct(fw)}"
        + (f"; latency (speed model) error median {pct(lm)}, worst {pct(lw)}" if lat else "")
    )
    return ProbeSummary(
        rows_ok=ok, rows_oom=oom, rows_unavailable=na,
        activation_median_abs_error_pct=am, activation_worst_abs_error_pct=aw,
        flops_median_abs_error_pct=fm, flops_worst_abs_error_pct=fw,
        latency_median_abs_error_pct=lm, latency_worst_abs_error_pct=lw, line=line,
    )


def to_markdown(report: ProbeReport) -> str:
    """The report as Markdown (docs/probe-<gpu>.md): date, versions, device, calibration, the error table, summary."""

    def size(v: float | None) -> str:
        return "-" if v is None else f"{v / 2**20:,.1f} MiB"

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:+.2f}"

    lines = [
        f"# vramcalc probe: {report.device_name or 'CPU (simulated memory)'}",
        "",
        f"- date: {report.started_at}",
        f"- vramcalc {report.vramcalc_version}, torch {report.torch_version}, transformers {report.transformers_version}",
        f"- device: {report.device}" + (f" ({report.device_name})" if report.device_name else ""),
    ]
    if report.gpus.available:
        lines.append(f"- NVIDIA driver {report.gpus.driver_version}, CUDA {report.gpus.cuda_driver_version}")
        for d in report.gpus.devices:
            lines.append(f"- GPU {d.index}: {d.name} (catalog: {d.catalog_id or 'unknown'}), {d.total_bytes / 2**30:.1f} GiB")
    elif report.gpus.message:
        lines.append(f"- {report.gpus.message}")
    c = report.calibration
    if c:
        lines.append(
            f"- measured: copy {c.copy_bandwidth_gbs:.0f} GB/s, fp16 matmul {c.fp16_matmul_tflops} TFLOPS, bf16 {c.bf16_matmul_tflops} TFLOPS (n = {c.matmul_size})"
        )
    lines += [
        "",
        "| encoder | batch | image | activations predicted | measured | err % | FLOPs err % | peak allocated | reserved | latency measured | predicted | err % | status |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report.rows:
        lat_m = "-" if r.latency_s.measured is None else f"{r.latency_s.measured * 1000:.1f} ms"
        lat_p = "-" if r.latency_s.predicted is None else f"{r.latency_s.predicted * 1000:.1f} ms"
        status = r.status if r.status == "ok" else (r.message or r.status)
        lines.append(
            f"| {r.encoder} | {r.batch} | {r.image_width}x{r.image_height} | {size(r.activation_bytes.predicted)} | "
            f"{size(r.activation_bytes.measured)} | {pct(r.activation_bytes.error_pct)} | {pct(r.flops.error_pct)} | "
            f"{size(r.peak_allocated_bytes.measured)} | {size(r.reserved_bytes)} | {lat_m} | {lat_p} | {pct(r.latency_s.error_pct)} | {status} |"
        )
    lines += ["", report.summary.line, ""]
    return "\n".join(lines)
