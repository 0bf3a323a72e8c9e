"""`vramcalc probe`: run the real vision encoders and compare with vramcalc's model. torch is imported
only when the command runs (inside ``run_probe``), never when the CLI is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vramcalc.cli.options import MAX_BATCH, OUTPUT, JsonOpt, ProbeDevice, ProbeDtype, check_output_path, parse_size
from vramcalc.cli.output import console, err_console, print_json
from vramcalc.errors import InputError

EPILOG = "Examples: vramcalc probe --quick | vramcalc probe --encoder clip-vit-l-14-336 --batch 1 8 32 | vramcalc probe --device cpu --json"

#: click hands the values after the first one of '--batch 1 4 16' / '--encoder a b' to the command as extra args
CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": False}


def probe(
    ctx: typer.Context,
    encoder: Annotated[
        list[str] | None,
        typer.Option(
            "--encoder", "-e", help="Encoder id or alias; repeat it, or list several after one --encoder. Default: every catalog encoder."
        ),
    ] = None,
    batch: Annotated[
        list[str] | None,
        typer.Option("--batch", "-b", help="Batch sizes; repeat it, or list several after one --batch (default 1 4 16; --quick: 1)."),
    ] = None,
    image_size: Annotated[
        str | None, typer.Option("--image-size", help="WIDTHxHEIGHT in pixels (default: each encoder's native size).")
    ] = None,
    dtype: Annotated[ProbeDtype, typer.Option("--dtype", help="Weights and activations dtype.")] = ProbeDtype.fp16,
    quick: Annotated[bool, typer.Option("--quick", help="Batch 1, short microbenchmarks, CPU latency for one encoder only.")] = False,
    device: Annotated[
        ProbeDevice, typer.Option("--device", help="auto: CUDA if torch sees a GPU, else CPU latency + simulated memory (FakeTensorMode).")
    ] = ProbeDevice.auto,
    markdown: Annotated[
        str | None,
        typer.Option(
            "--markdown", help="Also write the report as Markdown to this file (e.g. docs/probe-h100.md).", rich_help_panel=OUTPUT
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the real vision encoders (transformers, random weights) and compare memory and FLOPs with vramcalc's model."""
    from vramcalc.probe.run import require_torch

    size = parse_size(image_size)
    extra = list(ctx.args)
    bad = [a for a in extra if a.startswith("-") and not a.lstrip("-").isdigit()]
    if bad:
        raise typer.BadParameter(f"no such option: {bad[0]}")
    encoders, batches = _split(encoder, extra), _split_int(batch, extra)
    check_output_path(markdown, "--markdown")  # before the measurement, not after it
    require_torch()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from vramcalc.probe.run import run_probe

    err = err_console()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("probe", total=None)

        def progress(done: int, total: int, desc: str) -> None:
            bar.update(task, completed=done, total=total, description=desc)

        report = run_probe(
            encoders=encoders,
            batches=batches,
            image_size=size,
            dtype=dtype.value,
            device=device.value,
            quick=quick,
            progress=progress,
        )
    if markdown:
        from vramcalc.probe.results import to_markdown

        try:
            Path(markdown).write_text(to_markdown(report), encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot write {markdown}: {e.strerror}") from None
        err.print(f"Wrote {markdown}")
    if as_json:
        if not report.gpus.available and report.gpus.message:
            err.print(report.gpus.message)
        print_json(report)
        return
    from vramcalc.render.probe import render_gpus, render_notes, render_probe

    out = console(markup=False)  # ids, GPU names and messages may contain [brackets]
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
        if not v.isdigit() or len(v) > 6 or not 1 <= int(v) <= MAX_BATCH:
            raise typer.BadParameter(f"batch sizes are integers in 1..{MAX_BATCH}, got '{v[:40]}'", param_hint="--batch")
        out.append(int(v))
    return out or None
