"""`vramcalc fit`: what can I run on this GPU?"""

from __future__ import annotations

from typing import Annotated

import typer

from vramcalc.cli.options import (
    MAX_CTX,
    MAX_IMAGES,
    MAX_ROWS,
    MAX_SPEED,
    FitKind,
    JsonOpt,
    RuntimeOpt,
    finite_float,
    parse_ram,
)
from vramcalc.cli.output import console, print_json

EPILOG = (
    "Examples: vramcalc fit --gpu rtx3060 | vramcalc fit --gpu 'RTX 4090' --ctx 16384 --kind vlm | vramcalc fit --gpu local --min-speed 20"
)


def fit(
    gpu: Annotated[
        str, typer.Option("--gpu", "-g", help="GPU id, alias or NVML name; 'local' = the card in this machine (NVIDIA, via NVML).")
    ],
    ctx: Annotated[
        int | None, typer.Option("--ctx", "-c", min=1, max=MAX_CTX, help="Text tokens per sequence (default 4096); image tokens are added.")
    ] = None,
    images: Annotated[int | None, typer.Option("--images", min=0, max=MAX_IMAGES, help="Images per sequence for VLMs (default 1).")] = None,
    kind: Annotated[FitKind, typer.Option("--kind", help="Which models: llm, vlm or all.")] = FitKind.all,
    min_speed: Annotated[
        float | None,
        typer.Option(
            "--min-speed",
            callback=finite_float("--min-speed", 0, MAX_SPEED),
            help="Only precisions that decode at least this many tokens/s (where a speed is known).",
        ),
    ] = None,
    runtime: RuntimeOpt = "llama.cpp",
    headless: Annotated[
        bool, typer.Option("--headless", help="This GPU drives no display: do not keep memory back for the desktop.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, max=MAX_ROWS, help="Show only the first N rows (the JSON always has all).")
    ] = None,
    as_json: JsonOpt = False,
    ram: Annotated[
        str | None,
        typer.Option("--ram", help="System RAM (64 or 64GiB): MoE models may keep experts there (llama.cpp --n-cpu-moe)."),
    ] = None,
) -> None:
    """What can I run on GPU? Every catalog model at the best quantization that fits, most capable first."""
    from vramcalc.catalog import load_catalog
    from vramcalc.fit import fit as run_fit

    cat = load_catalog()
    from vramcalc.cli.options import resolve_gpus

    cards = resolve_gpus(cat, [gpu])  # 2xrtx3090: a serving runtime shards over them; local: the detected card
    card = cards[0]
    result = run_fit(
        card,
        cat,
        ctx=ctx,
        images=images,
        kind=kind.value,
        min_speed=min_speed,
        runtime=runtime,
        headless=headless,
        n_gpus=len(cards),
        ram_bytes=parse_ram(ram),
    )
    if as_json:
        print_json(result)
        return
    from vramcalc.render.fit import render_fit

    console().print(render_fit(result, limit))
