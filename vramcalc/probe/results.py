"""Result objects of ``vramcalc probe`` (frozen dataclasses, no torch): predicted | measured | error % per row.

``--json`` prints ``ProbeReport.to_json()``: the same object the table renders. The one object read
back from disk, the calibration profile, is checked field by field in :meth:`CalibrationProfile.from_dict`.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, Literal

from vramcalc.jsonable import Jsonable, doc, kw_result


def _as_floats(obj: Any, *names: str) -> None:
    """Store the ints among ``names`` as floats (a float field prints as 1000.0, never 1000)."""
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, int) and not isinstance(v, bool):
            object.__setattr__(obj, name, float(v))


def _finite(v: float) -> bool:
    """A number a float can hold: not NaN or infinity (JSON files may say so), not an int beyond 1e308."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


@kw_result
class Compared(Jsonable):
    """One quantity, predicted by the analytic model and measured on the real model."""

    __json_computed__ = ("error_pct",)

    predicted: float | None = doc("The analytic model's figure.", default=None)
    measured: float | None = doc("The real model's figure.", default=None)

    def __post_init__(self) -> None:
        _as_floats(self, "predicted", "measured")

    @property
    def error_pct(self) -> float | None:
        """(predicted - measured) / measured x 100; positive = the model over-estimates."""
        if self.predicted is None or not self.measured:
            return None
        return round((self.predicted - self.measured) / self.measured * 100, 3)


@kw_result
class GpuProcess(Jsonable):
    pid: int = doc("Process id.")
    used_bytes: int | None = doc("GPU memory NVML attributes to the process (None where the driver hides it).")


@kw_result
class GpuDevice(Jsonable):
    """One GPU as NVML reports it."""

    index: int = doc("NVML device index.")
    name: str = doc("NVML device name.")
    catalog_id: str | None = doc("The catalog GPU this NVML name resolves to; None = unknown card.")
    total_bytes: int = doc("Memory on the card.")
    free_bytes: int = doc("Free memory when discovered.")
    used_bytes: int = doc("Used memory when discovered.")
    bus_width_bits: int | None = doc("Memory bus width.", default=None)
    max_graphics_clock_mhz: int | None = doc("Maximum graphics clock.", default=None)
    max_memory_clock_mhz: int | None = doc("Maximum memory clock.", default=None)
    compute_capability: str | None = doc("CUDA compute capability, e.g. '8.6'.", default=None)
    processes: list[GpuProcess] = doc("Processes using the GPU.", default_factory=list)


@kw_result
class GpuDiscovery(Jsonable):
    """What NVML found (or why it could not look)."""

    available: bool = doc("NVML found at least one NVIDIA GPU.")
    message: str | None = doc("Why there is no NVML information (no driver, no pynvml, no NVIDIA GPU).", default=None)
    driver_version: str | None = doc("NVIDIA driver version.", default=None)
    cuda_driver_version: str | None = doc("Highest CUDA version the driver supports, e.g. '12.4'.", default=None)
    devices: list[GpuDevice] = doc("Every device NVML sees.", default_factory=list)


@kw_result
class CalibrationProfile(Jsonable):
    """Measured figures of the local GPU; ``--gpu local`` uses them in place of the datasheet for a card the catalog does not know."""

    gpu_name: str = doc("The device name the profile was measured on (CUDA / NVML).")
    catalog_id: str | None = doc("The catalog GPU the card resolves to; None = unknown card.")
    memory_bytes: int | None = doc("Memory NVML reports.")
    copy_bandwidth_gbs: float = doc("Device-to-device copy: 2 x bytes / time (read + write), GB/s (10^9).")
    fp16_matmul_tflops: float | None = doc("Dense fp16 matmul TFLOPS; None where it failed.")
    bf16_matmul_tflops: float | None = doc("Dense bf16 matmul TFLOPS; None where it failed (e.g. pre-Ampere).")
    matmul_size: int = doc("Square matmul side used (n x n @ n x n, 2 n^3 FLOPs).")
    copy_bytes: int = doc("Bytes copied per timed copy.")
    measured_at: str = doc("UTC ISO timestamp.")
    torch_version: str = doc("torch version that measured it.")
    path: str | None = doc("Where the profile was saved.", default=None)

    def __post_init__(self) -> None:
        _as_floats(self, "copy_bandwidth_gbs", "fp16_matmul_tflops", "bf16_matmul_tflops")

    @classmethod
    def from_dict(cls, data: object) -> CalibrationProfile:
        """A profile from parsed JSON (a saved file): every field checked, no unknown keys.

        Raises:
            ValueError: a one-line reason (missing or unknown key, wrong type, a figure that is not a
                finite positive number).
        """
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in fields)
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}")
        kinds = {
            "gpu_name": (str, False),
            "catalog_id": (str, True),
            "memory_bytes": (int, True),
            "copy_bandwidth_gbs": (float, False),
            "fp16_matmul_tflops": (float, True),
            "bf16_matmul_tflops": (float, True),
            "matmul_size": (int, False),
            "copy_bytes": (int, False),
            "measured_at": (str, False),
            "torch_version": (str, False),
            "path": (str, True),
        }
        assert kinds.keys() == fields.keys()
        values: dict[str, Any] = {}
        for name, (kind, nullable) in kinds.items():
            if name not in data:
                if fields[name].default is not dataclasses.MISSING:
                    continue
                raise ValueError(f"missing key {name!r}")
            v = data[name]
            if v is None and nullable:
                values[name] = None
                continue
            if kind is str:
                ok = isinstance(v, str)
            else:
                ok = isinstance(v, (int, float) if kind is float else int) and not isinstance(v, bool) and _finite(v)
                # bandwidth divides and sizes count: they must be positive; TFLOPS may round to 0.0
                ok = ok and (v >= 0 if name.endswith("_tflops") else v > 0)
            if not ok:
                want = {str: "a string", int: "a positive integer", float: "a positive number"}[kind]
                raise ValueError(f"{name}: expected {want}{' or null' if nullable else ''}, got {v!r:.40}")
            values[name] = v
        return cls(**values)


@kw_result
class ProbeRow(Jsonable):
    """One encoder at one batch size and image size."""

    encoder: str = doc("Catalog encoder id.")
    model_class: str | None = doc("transformers class built (random weights); None when not available.")
    device: Literal["cuda", "cpu"] = doc("Where the forward pass ran for latency (memory: see memory_source).")
    memory_source: Literal["cuda", "simulated"] = doc(
        "cuda = torch.cuda.max_memory_allocated; simulated = FakeTensorMode + MemTracker (exact tensor accounting, no allocation)."
    )
    dtype: Literal["fp16", "bf16", "fp32"] = doc("Weights and activations dtype.")
    attention: str = doc("Attention implementation (sdpa, eager, flash).")
    batch: int = doc("Images per forward pass.")
    image_width: int = doc("Image width in pixels.")
    image_height: int = doc("Image height in pixels.")
    tokens_per_image: int | None = doc("Tokens each layer sees per image (vit.py).", default=None)
    status: Literal["ok", "oom", "not_available", "error"] = doc("ok, oom (out of memory), not_available or error.")
    message: str | None = doc("e.g. 'does not fit at batch 64', or why the model is not available.", default=None)
    weights_bytes: int | None = doc("Measured parameter + buffer bytes of the built model.", default=None)
    flops: Compared = doc("Forward FLOPs (FlopCounterMode convention).", default_factory=Compared)
    activation_bytes: Compared = doc("Peak bytes above the weights during the forward pass (input included).", default_factory=Compared)
    peak_allocated_bytes: Compared = doc("Weights + activations (CUDA: max_memory_allocated).", default_factory=Compared)
    reserved_bytes: int | None = doc("CUDA: max_memory_reserved (allocator cache included).", default=None)
    process_bytes: int | None = doc("NVML: GPU memory used by this process (includes the CUDA context).", default=None)
    latency_s: Compared = doc(
        "Median forward time in seconds (CUDA events on GPU, perf_counter on CPU); predicted on CUDA by the speed "
        "model (`check --runtime transformers`) for the catalog GPU NVML found.",
        default_factory=Compared,
    )
    latency_dtype: str | None = doc("dtype the latency was measured at (CPU runs fp16 requests at bf16).", default=None)
    notes: list[str] = doc("Caveats of this row.", default_factory=list)


@kw_result
class ProbeSummary(Jsonable):
    """Median and worst absolute error of the analytic model over the rows that measured it."""

    rows_ok: int = doc("Rows measured.")
    rows_oom: int = doc("Rows out of memory.")
    rows_unavailable: int = doc("Rows not available or failed.")
    activation_median_abs_error_pct: float | None = doc("Activation memory: median |error %|.")
    activation_worst_abs_error_pct: float | None = doc("Activation memory: worst |error %|.")
    flops_median_abs_error_pct: float | None = doc("FLOPs: median |error %|.")
    flops_worst_abs_error_pct: float | None = doc("FLOPs: worst |error %|.")
    latency_median_abs_error_pct: float | None = doc(
        "CUDA rows whose GPU is in the catalog: the speed model's time per batch.", default=None
    )
    latency_worst_abs_error_pct: float | None = doc("Latency: worst |error %|.", default=None)
    line: str = doc("The one-line summary printed after the table.")


@kw_result
class ProbeReport(Jsonable):
    """Everything one ``vramcalc probe`` run found."""

    vramcalc_version: str = doc("vramcalc version.")
    torch_version: str | None = doc("torch version.")
    transformers_version: str | None = doc("transformers version.")
    started_at: str = doc("UTC ISO timestamp.")
    device: Literal["cuda", "cpu"] = doc("Where the forward passes ran.")
    device_name: str | None = doc("CUDA device name; None on CPU.")
    gpus: GpuDiscovery = doc("What NVML found.")
    calibration: CalibrationProfile | None = doc("Microbenchmark results (CUDA only).", default=None)
    calibration_message: str | None = doc("Why there are no microbenchmarks.", default=None)
    rows: list[ProbeRow] = doc("One row per encoder, batch and image size.")
    summary: ProbeSummary = doc("Errors over all rows.")


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
        rows_ok=ok,
        rows_oom=oom,
        rows_unavailable=na,
        activation_median_abs_error_pct=am,
        activation_worst_abs_error_pct=aw,
        flops_median_abs_error_pct=fm,
        flops_worst_abs_error_pct=fw,
        latency_median_abs_error_pct=lm,
        latency_worst_abs_error_pct=lw,
        line=line,
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
            f"- measured: copy {c.copy_bandwidth_gbs:.0f} GB/s, fp16 matmul {c.fp16_matmul_tflops} TFLOPS, "
            f"bf16 {c.bf16_matmul_tflops} TFLOPS (n = {c.matmul_size})"
        )
    lines += [
        "",
        "| encoder | batch | image | activations predicted | measured | err % | FLOPs err % | peak allocated "
        "| reserved | latency measured | predicted | err % | status |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report.rows:
        lat_m = "-" if r.latency_s.measured is None else f"{r.latency_s.measured * 1000:.1f} ms"
        lat_p = "-" if r.latency_s.predicted is None else f"{r.latency_s.predicted * 1000:.1f} ms"
        status = r.status if r.status == "ok" else (r.message or r.status)
        lines.append(
            f"| {r.encoder} | {r.batch} | {r.image_width}x{r.image_height} | {size(r.activation_bytes.predicted)} | "
            f"{size(r.activation_bytes.measured)} | {pct(r.activation_bytes.error_pct)} | {pct(r.flops.error_pct)} | "
            f"{size(r.peak_allocated_bytes.measured)} | {size(r.reserved_bytes)} | {lat_m} | "
            f"{lat_p} | {pct(r.latency_s.error_pct)} | {status} |"
        )
    lines += ["", report.summary.line, ""]
    return "\n".join(lines)
