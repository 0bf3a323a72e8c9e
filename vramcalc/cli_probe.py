"""`vramcalc probe`: the command function (registered in cli.py) and its table. torch is imported only
when the command runs (inside ``run_probe``), never when the CLI is loaded."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from vramcalc.cli import JsonOpt, _parse_size, _print_json

if TYPE_CHECKING:
    from rich.table import Table

    from vramcalc.probe.results import ProbeReport


class ProbeDtype(str, Enum):
    fp16 = "fp16"
    bf16 = "bf16"


class ProbeDevice(str, Enum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


PROBE_EPILOG = "Examples: vramcalc probe --quick | vramcalc probe --encoder clip-vit-l-14-336 --batch 1 8 32 | vramcalc probe --device cpu --json"


#: click hands the values after the first one of '--batch 1 4 16' / '--encoder a b' to the command as extra args
PROBE_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": False}


def probe(
    ctx: typer.Context,
    encoder: Annotated[list[str] | None, typer.Option("--encoder", "-e", help="Encoder id or alias; repeat it, or list several after one --encoder. Default: every catalog encoder.")] = None,
    batch: Annotated[list[str] | None, typer.Option("--batch", "-b", help="Batch sizes; repeat it, or list several after one --batch (default 1 4 16; --quick: 1).")] = None,
    image_size: Annotated[str | None, typer.Option("--image-size", help="WIDTHxHEIGHT in pixels (default: each encoder's native size).")] = None,
    dtype: Annotated[ProbeDtype, typer.Option("--dtype", help="Weights and activations dtype.")] = ProbeDtype.fp16,
    quick: Annotated[bool, typer.Option("--quick", help="Batch 1, short microbenchmarks, CPU latency for one encoder only.")] = False,
    device: Annotated[ProbeDevice, typer.Option("--device", help="auto: CUDA if torch sees a GPU, else CPU latency + simulated memory (FakeTensorMode).")] = ProbeDevice.auto,
    markdown: Annotated[str | None, typer.Option("--markdown", help="Also write the report as Markdown to this file (e.g. docs/probe-h100.md).", rich_help_panel="Output")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the real vision encoders (transformers, random weights) and compare memory and FLOPs with vramcalc's model."""
    from rich.console import Console

    from vramcalc.probe.run import require_torch

    size = _parse_size(image_size)
    extra = list(ctx.args)
    bad = [a for a in extra if a.startswith("-") and not a.lstrip("-").isdigit()]
    if bad:
        raise typer.BadParameter(f"no such option: {bad[0]}")
    encoders, batches = _split(encoder, extra), _split_int(batch, extra)
    require_torch()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from vramcalc.probe.run import run_probe

    err = Console(stderr=True, highlight=False)
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as bar:
        task = bar.add_task("probe", total=None)

        def progress(done: int, total: int, desc: str) -> None:
            bar.update(task, completed=done, total=total, description=desc)

        report = run_probe(
            encoders=encoders, batches=batches, image_size=size, dtype=dtype.value,
            device=device.value, quick=quick, progress=progress,
        )
    if markdown:
        from pathlib import Path

        from vramcalc.probe.results import to_markdown

        Path(markdown).write_text(to_markdown(report), encoding="utf-8")
        err.print(f"Wrote {markdown}")
    if as_json:
        if not report.gpus.available and report.gpus.message:
            err.print(report.gpus.message)
        _print_json(report.model_dump(mode="json"))
        return
    out = Console(highlight=False, markup=False)  # ids, GPU names and messages may contain [brackets]
    out.print(render_gpus(report))
    out.print(render_probe(report))
    for line in render_notes(report):
        out.print(line)
    out.print(report.summary.line)


def _items(values: list[str] | None) -> list[str]:
    """The comma- or space-separated items of a repeated option."""
    return [v for item in (values or []) for v in item.replace(",", " ").split()]


def _split(values: list[str] | None, extra: list[str]) -> list[str] | None:
    """Encoder ids from '--encoder a --encoder b', '--encoder a,b' and '--encoder a b' (b arrives as an extra arg)."""
    out = _items(values) + [a for a in extra if not a.lstrip("-").isdigit()]
    return out or None


def _split_int(values: list[str] | None, extra: list[str]) -> list[int] | None:
    """Batch sizes from '--batch 1 --batch 4', '--batch 1,4,16' and '--batch 1 4 16' (4 and 16 arrive as extra args)."""
    items = _items(values) + [a for a in extra if a.lstrip("-").isdigit()]
    out = []
    for v in items:
        if not v.isdigit() or int(v) < 1:
            raise typer.BadParameter(f"batch sizes are positive integers, got '{v}'", param_hint="--batch")
        out.append(int(v))
    return out or None


def render_gpus(report: ProbeReport) -> str:
    """One line per GPU NVML found (or why none), and the calibration profile."""
    from vramcalc.units import fmt_bytes

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
    return (["Notes:"] + lines) if lines else []


def render_probe(report: ProbeReport) -> Table:
    """predicted | measured | error % of activation memory and FLOPs, one row per configuration."""
    from rich.table import Table

    from vramcalc.units import fmt_bytes, fmt_flops

    mem = "CUDA allocator" if report.device == "cuda" else "simulated (FakeTensorMode)"
    t = Table(title=f"vramcalc probe: {report.device_name or 'CPU'}; memory: {mem}", title_justify="left")
    for col in ("encoder", "batch", "image", "tokens", "activations", "measured", "err %", "FLOPs", "measured", "err %", "latency", "status"):
        t.add_column(col, justify="left" if col in ("encoder", "status", "image") else "right")

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:+.2f}"

    for r in report.rows:
        lat = "-" if r.latency_s.measured is None else f"{r.latency_s.measured * 1000:.0f} ms {r.device}"
        if r.latency_s.error_pct is not None:
            lat += f" ({r.latency_s.error_pct:+.0f}%)"
        status = {"ok": "ok", "oom": "OOM", "not_available": "n/a", "error": "error"}[r.status]
        t.add_row(
            r.encoder, str(r.batch), f"{r.image_width}x{r.image_height}", str(r.tokens_per_image or "-"),
            fmt_bytes(r.activation_bytes.predicted), fmt_bytes(r.activation_bytes.measured), pct(r.activation_bytes.error_pct),
            fmt_flops(r.flops.predicted), fmt_flops(r.flops.measured), pct(r.flops.error_pct), lat, status,
        )
    return t
