"""`vramcalc fit`: the command function (registered in cli.py) and its table."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from vramcalc.cli import JsonOpt, RuntimeOpt, _console, _print_json
from vramcalc.errors import InputError

if TYPE_CHECKING:
    from rich.console import Group

    from vramcalc.fit import FitResult
    from vramcalc.schema import GpuSpec


class FitKind(str, Enum):
    all = "all"
    llm = "llm"
    vlm = "vlm"


FIT_EPILOG = "Examples: vramcalc fit --gpu rtx3060 | vramcalc fit --gpu 'RTX 4090' --ctx 16384 --kind vlm | vramcalc fit --gpu local --min-speed 20"


def fit(
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU id, alias or NVML name; 'local' = the card in this machine (NVIDIA, via NVML).")],
    ctx: Annotated[Optional[int], typer.Option("--ctx", "-c", min=1, help="Text tokens per sequence (default 4096); image tokens are added.")] = None,
    images: Annotated[Optional[int], typer.Option("--images", min=0, help="Images per sequence for VLMs (default 1).")] = None,
    kind: Annotated[FitKind, typer.Option("--kind", help="Which models: llm, vlm or all.")] = FitKind.all,
    min_speed: Annotated[Optional[float], typer.Option("--min-speed", help="Only precisions that decode at least this many tokens/s (where a speed is known).")] = None,
    runtime: Annotated[RuntimeOpt, typer.Option("--runtime", "-r", help="llama.cpp (GGUF quantizations) or transformers (dtype, int8, nf4).")] = RuntimeOpt.llama_cpp,
    headless: Annotated[bool, typer.Option("--headless", help="This GPU drives no display: do not keep memory back for the desktop.")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Show only the first N rows (the JSON always has all).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What can I run on GPU? Every catalog model at the best quantization that fits, most capable first."""
    from vramcalc.catalog import load_catalog
    from vramcalc.fit import fit as run_fit

    cat = load_catalog()
    card = local_gpu(cat) if gpu.strip().lower() == "local" else cat.resolve_gpu(gpu)
    result = run_fit(card, cat, ctx=ctx, images=images, kind=kind.value, min_speed=min_speed, runtime=runtime.value, headless=headless)
    if as_json:
        _print_json(result.to_json())
        return
    _console().print(render_fit(result, limit))


def local_gpu(cat) -> GpuSpec:  # noqa: ANN001
    """This machine's first GPU (NVML): its catalog entry with the memory NVML reports, or, for a card
    the catalog does not know, the figures ``vramcalc probe`` measured (vramcalc.probe.bench.local_gpu)."""
    from vramcalc.probe.bench import local_gpu as detect
    from vramcalc.probe.gpu import discover_gpus

    found = discover_gpus()
    if not found.available or not found.devices:
        raise InputError(f"--gpu local: {found.message or 'no GPU found.'} Name the GPU instead, e.g. --gpu rtx3060.")
    if len(found.devices) > 1:
        typer.echo(f"Note: {len(found.devices)} GPUs found; using the first, {found.devices[0].name}.", err=True)
    spec = detect(0, found)
    if spec is None:
        dev = found.devices[0]
        raise InputError(
            f"--gpu local: '{dev.name}' is not in the catalog and has no probe profile. Run 'vramcalc probe' "
            "to measure it, or pick the closest entry with --gpu (vramcalc list gpus)."
        )
    return spec


def render_fit(r: FitResult, limit: int | None = None) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from vramcalc.render import VERDICT_TEXT
    from vramcalc.units import fmt_bytes, fmt_count

    g = r.gpu
    ctx = f"{r.context_tokens:,}" if r.context_tokens else "4,096"
    head = Text.assemble(
        "What runs on ", (g.name, "bold"), f" [{g.id}]: {fmt_bytes(g.usable_bytes)} usable of {fmt_bytes(g.memory_bytes)}, ",
        f"{r.runtime}, context {ctx} text tokens" + (f", {r.images} image(s)" if r.images is not None else "") + ".",
    )
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("model", no_wrap=True, overflow="ellipsis", min_width=12)
    for col, just in (("kind", "left"), ("params", "right"), ("quant", "left"), ("memory", "right"),
                      ("free", "right"), ("max ctx", "right"), ("tok/s", "right"), ("verdict", "left")):
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    rows = r.rows if limit is None else r.rows[:limit]
    for row in rows:
        label, style = VERDICT_TEXT[row.verdict]
        if row.meets_min_speed is False:
            label += " (slow)"
        table.add_row(
            row.model,
            row.kind,
            fmt_count(row.llm_params),
            row.quant,
            fmt_bytes(row.total_bytes, 1),
            fmt_bytes(row.headroom_bytes, 1),
            f"{row.max_context_tokens:,}" if row.max_context_tokens else "-",
            f"{row.decode_tokens_per_s:.0f}" if row.decode_tokens_per_s is not None else "-",
            Text(label, style=style),
        )
    parts: list = [head, table] if r.rows else [head, Text("No results found.")]
    if limit is not None and len(r.rows) > limit:
        parts.append(Text(f"... {len(r.rows) - limit} more (--limit, or --json for all).", style="dim"))
    parts.append(Text(f"Best quantization that fits, from {' > '.join(r.precisions)}. Order: {r.ranking}.", style="dim"))
    if r.skipped:
        parts.append(Text(f"Skipped {len(r.skipped)} catalog entr{'y' if len(r.skipped) == 1 else 'ies'}: " + "; ".join(r.skipped[:3]), style="dim"))
    return Group(*parts)
