"""`vramcalc compare`: one model side by side across GPUs (--gpu A --gpu B) or precisions (--quant a,b,c)."""

from __future__ import annotations

from typing import Annotated

import typer

from vramcalc.cli.options import MAX_CTX, MAX_IMAGES, JsonOpt, KvOpt, RuntimeOpt, complete_gpu, complete_model, resolve_gpus
from vramcalc.cli.output import console, print_json

EPILOG = (
    "Examples: vramcalc compare qwen3:14b --gpu rtx3060 --gpu rtx4090"
    " | vramcalc compare llama3.1:8b --gpu rtx3060 --quant Q4_K_M,Q5_K_M,Q8_0"
)


def compare(
    model: Annotated[
        str,
        typer.Argument(
            help="Model id or alias (also with a quantization in the name: qwen2.5:7b-instruct-q8_0).", autocompletion=complete_model
        ),
    ],
    gpu: Annotated[
        list[str],
        typer.Option(
            "--gpu", "-g", autocompletion=complete_gpu, help="A GPU (repeat for each card to compare); 2xrtx3090 is one split setup."
        ),
    ],
    quant: Annotated[
        str | None, typer.Option("--quant", "-q", help="Comma-separated precisions to compare, e.g. Q4_K_M,Q5_K_M,Q8_0.")
    ] = None,
    ctx: Annotated[
        int | None,
        typer.Option("--ctx", "-c", min=1, max=MAX_CTX, help="Text tokens per sequence (default 4096, at most the trained maximum)."),
    ] = None,
    images: Annotated[
        int | None, typer.Option("--images", min=0, max=MAX_IMAGES, help="Images per sequence (default 1 for a VLM).")
    ] = None,
    kv_cache: Annotated[KvOpt, typer.Option("--kv-cache", help="KV cache type (llama.cpp -ctk/-ctv).")] = KvOpt.f16,
    runtime: RuntimeOpt = "llama.cpp",
    headless: Annotated[bool, typer.Option("--headless", help="The GPUs drive no display.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare one model across GPUs or precisions: memory, verdict, largest context and speed side by side."""
    from vramcalc.catalog import load_catalog
    from vramcalc.names import resolve_typed
    from vramcalc.results import Workload
    from vramcalc.views import compare as run_compare

    cat = load_catalog()
    quants: list[str | None] = [q.strip() for q in quant.split(",") if q.strip()] if quant else []
    typed = resolve_typed(cat, model, None)
    if typed.quant and quants and any(q is not None and q.upper() != typed.quant.upper() for q in quants):
        raise typer.BadParameter(
            f"'{model}' names the quantization {typed.quant}; drop it from the name to compare --quant", param_hint="--quant"
        )
    if typed.quant and not quants:
        quants = [typed.quant]
    setups = [resolve_gpus(cat, [g]) for g in gpu]
    work = Workload(runtime=runtime, context_tokens=ctx, images=images, kv_cache=kv_cache.value, headless=headless)
    result = run_compare(typed.spec, setups, quants, work, cat)
    if as_json:
        print_json(result)
        return
    from vramcalc.render.views import render_compare

    console().print(render_compare(result))
