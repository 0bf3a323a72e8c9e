"""``vramcalc probe``: the GPU lines, the predicted-vs-measured table and the notes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from vramcalc.units import fmt_bytes, fmt_flops

if TYPE_CHECKING:
    from vramcalc.probe.results import ProbeReport


def render_gpus(report: ProbeReport) -> str:
    """One line per GPU NVML found (or why none), and the calibration profile."""
    lines = []
    g = report.gpus
    if g.available:
        lines.append(f"NVIDIA driver {g.driver_version}, CUDA {g.cuda_driver_version}")
        for d in g.devices:
            lines.append(
                f"  GPU {d.index}: {d.name} ({d.catalog_id or 'not in the catalog'}), {fmt_bytes(d.total_bytes)} total, "
                f"{fmt_bytes(d.free_bytes)} free, bus {d.bus_width_bits or '?'} bit, "
                f"max clocks {d.max_graphics_clock_mhz or '?'}/{d.max_memory_clock_mhz or '?'} MHz, {len(d.processes)} processes"
            )
    else:
        lines.append(f"No GPU information: {g.message}")
    c = report.calibration
    if c:
        lines.append(
            f"Measured: copy {c.copy_bandwidth_gbs:.0f} GB/s, fp16 matmul {c.fp16_matmul_tflops or '-'} TFLOPS, "
            f"bf16 {c.bf16_matmul_tflops or '-'} TFLOPS (saved to {c.path})"
        )
    elif report.calibration_message:
        lines.append(report.calibration_message)
    lines.append(f"torch {report.torch_version}, transformers {report.transformers_version}")
    return "\n".join(lines)


def render_notes(report: ProbeReport) -> list[str]:
    """Why rows are n/a / OOM / error, and the notes of measured rows: each text once, with the encoders it applies to."""
    by_text: dict[str, list[str]] = {}
    for r in report.rows:
        for text in ([r.message] if r.message else []) + r.notes:
            encs = by_text.setdefault(text, [])
            if r.encoder not in encs:
                encs.append(r.encoder)
    lines = []
    for text, encs in by_text.items():
        who = ", ".join(encs) if len(encs) <= 4 else f"{len(encs)} encoders"
        lines.append(f"  {text} ({who})")
    return (["Notes:", *lines]) if lines else []


def render_probe(report: ProbeReport) -> Table:
    """predicted | measured | error % of activation memory and FLOPs, one row per configuration."""
    mem = "CUDA allocator" if report.device == "cuda" else "simulated (FakeTensorMode)"
    t = Table(title=f"vramcalc probe: {report.device_name or 'CPU'}; memory: {mem}", title_justify="left")
    for col in (
        "encoder",
        "batch",
        "image",
        "tokens",
        "activations",
        "measured",
        "err %",
        "FLOPs",
        "measured",
        "err %",
        "latency",
        "status",
    ):
        t.add_column(col, justify="left" if col in ("encoder", "status", "image") else "right")

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:+.2f}"

    for r in report.rows:
        lat = "-" if r.latency_s.measured is None else f"{r.latency_s.measured * 1000:.0f} ms {r.device}"
        if r.latency_s.error_pct is not None:
            lat += f" ({r.latency_s.error_pct:+.0f}%)"
        status = {"ok": "ok", "oom": "OOM", "not_available": "n/a", "error": "error"}[r.status]
        t.add_row(
            r.encoder,
            str(r.batch),
            f"{r.image_width}x{r.image_height}",
            str(r.tokens_per_image or "-"),
            fmt_bytes(r.activation_bytes.predicted),
            fmt_bytes(r.activation_bytes.measured),
            pct(r.activation_bytes.error_pct),
            fmt_flops(r.flops.predicted),
            fmt_flops(r.flops.measured),
            pct(r.flops.error_pct),
            lat,
            status,
        )
    return t
