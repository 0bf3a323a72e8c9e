"""`vramcalc gpus`: which GPU (or pair) runs this model?"""

from __future__ import annotations

from typing import Annotated

import typer

from vramcalc.cli.options import MAX_CTX, MAX_IMAGES, MAX_SPEED, JsonOpt, KvOpt, RuntimeOpt, complete_model, finite_float
from vramcalc.cli.output import console, print_json

EPILOG = "Examples: vramcalc gpus qwen3:32b | vramcalc gpus llama3.3:70b --ctx 16384 --min-speed 10"


def gpus(
    model: Annotated[
        str,
        typer.Argument(
            help="Model id or alias (a quantization in the name is used: qwen2.5:7b-instruct-q8_0).", autocompletion=complete_model
        ),
    ],
    ctx: Annotated[
        int | None,
        typer.Option("--ctx", "-c", min=1, max=MAX_CTX, help="Text tokens per sequence (default 4096, at most the trained maximum)."),
    ] = None,
    min_speed: Annotated[
        float | None,
        typer.Option(
            "--min-speed", callback=finite_float("--min-speed", 0, MAX_SPEED), help="Only cards that decode at least this many tokens/s."
        ),
    ] = None,
    quant: Annotated[str | None, typer.Option("--quant", "-q", help="LLM weights precision (default Q4_K_M / the model's dtype).")] = None,
    images: Annotated[
        int | None, typer.Option("--images", min=0, max=MAX_IMAGES, help="Images per sequence (default 1 for a VLM).")
    ] = None,
    kv_cache: Annotated[KvOpt, typer.Option("--kv-cache", help="KV cache type (llama.cpp -ctk/-ctv).")] = KvOpt.f16,
    runtime: RuntimeOpt = "llama.cpp",
    no_pairs: Annotated[bool, typer.Option("--no-pairs", help="Single cards only (no two-card splits).")] = False,
    headless: Annotated[bool, typer.Option("--headless", help="The GPUs drive no display.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show the first N cards (the JSON always has all).")] = 20,
    show_all: Annotated[bool, typer.Option("--all", help="Show every card.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Which GPU for MODEL? The cards (and pairs of cards) that run it on the GPU, smallest memory first, with speed."""
    from vramcalc.catalog import load_catalog
    from vramcalc.names import resolve_typed
    from vramcalc.results import Workload
    from vramcalc.views import gpus_for

    cat = load_catalog()
    typed = resolve_typed(cat, model, quant)
    work = Workload(
        runtime=runtime, quant=typed.quant or quant, context_tokens=ctx, images=images, kv_cache=kv_cache.value, headless=headless
    )
    result = gpus_for(typed.spec, cat, work, min_speed=min_speed, pairs=not no_pairs)
    if as_json:
        print_json(result)
        return
    from vramcalc.render.views import render_gpus

    console().print(render_gpus(result, None if show_all else limit))
