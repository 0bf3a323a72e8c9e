"""`vramcalc fit`: what can I run on this GPU?"""

from typing import Annotated

import typer

from vramcalc.cli.options import (
    MAX_CTX,
    MAX_IMAGES,
    MAX_ROWS,
    MAX_SPEED,
    FitKind,
    FitSort,
    JsonOpt,
    RuntimeOpt,
    WideOpt,
    complete_gpu,
    finite_float,
    parse_ram,
    resolve_gpus,
)
from vramcalc.cli.output import console, print_json

EPILOG = (
    "Examples: vramcalc fit --gpu rtx3060 | vramcalc fit --gpu 'RTX 4090' --ctx 16384 --kind vlm"
    " | vramcalc fit --gpu 2xrtx3090 --sort speed | vramcalc fit --gpu local --min-speed 20 --all"
)


def fit(
    gpu: Annotated[
        list[str],
        typer.Option(
            "--gpu",
            "-g",
            autocompletion=complete_gpu,
            help="GPU id, alias or NVML name; 'local' = the card in this machine (NVIDIA, via NVML); 2xrtx3090 or repeat it for a split.",
        ),
    ],
    ctx: Annotated[
        int | None, typer.Option("--ctx", "-c", min=1, max=MAX_CTX, help="Text tokens per sequence (default 4096); image tokens are added.")
    ] = None,
    images: Annotated[int | None, typer.Option("--images", min=0, max=MAX_IMAGES, help="Images per sequence for VLMs (default 1).")] = None,
    kind: Annotated[
        FitKind, typer.Option("--kind", help="Which models: llm, vlm, encoder (vision encoders alone) or all (llm + vlm).")
    ] = FitKind.all,
    min_speed: Annotated[
        float | None,
        typer.Option(
            "--min-speed",
            callback=finite_float("--min-speed", 0, MAX_SPEED),
            help="Only precisions that decode at least this many tokens/s (where a speed is known).",
        ),
    ] = None,
    min_ctx: Annotated[
        int | None, typer.Option("--min-ctx", min=1, help="Only models whose context reaches this many tokens (and fit it).")
    ] = None,
    sort: Annotated[FitSort, typer.Option("--sort", help="quality (what a person would pick), speed or context.")] = FitSort.quality,
    runtime: RuntimeOpt = "llama.cpp",
    headless: Annotated[
        bool, typer.Option("--headless", help="This GPU drives no display: do not keep memory back for the desktop.")
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, max=MAX_ROWS, help="Show the first N rows (default 15; the JSON always has all)."),
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Show every row.")] = False,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
    ram: Annotated[
        str | None,
        typer.Option("--ram", help="System RAM (64 or 64GiB): MoE models may keep experts there (llama.cpp --n-cpu-moe)."),
    ] = None,
) -> None:
    """What can I run on GPU? Each catalog model at the best quantization that fits, what a person would pick first."""
    from vramcalc.catalog import load_catalog
    from vramcalc.fit import fit as run_fit

    cat = load_catalog()
    cards = resolve_gpus(cat, gpu)
    result = run_fit(
        cards,
        cat,
        ctx=ctx,
        images=images,
        kind=kind.value,
        min_speed=min_speed,
        runtime=runtime,
        headless=headless,
        sort=sort.value,
        min_ctx=min_ctx,
        ram_bytes=parse_ram(ram),
    )
    if as_json:
        print_json(result)
        return
    from vramcalc.render.fit import DEFAULT_ROWS, render_fit

    console(wide=wide).print(render_fit(result, None if show_all else (limit or DEFAULT_ROWS)))
