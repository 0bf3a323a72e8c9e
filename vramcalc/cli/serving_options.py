"""Options of the serving runtimes (vLLM, SGLang, MLX) for ``check`` and ``fit``: each under the
runtime's own spelling (vLLM's first, SGLang's as an alias), gathered into one
:class:`~vramcalc.results.ServingOptions`. Imports only typer at module level."""

from __future__ import annotations

import json
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from vramcalc.results import ServingOptions

PANEL = "Serving (--runtime vllm / sglang / mlx)"


class KvDtypeOpt(str, Enum):
    auto = "auto"
    fp8 = "fp8"


FractionOpt = Annotated[
    float | None,
    typer.Option(
        "--gpu-memory-utilization",
        "--mem-fraction-static",
        min=0.01,
        max=1.0,
        help="Share of each GPU the server takes (vLLM default 0.9; SGLang 0.79-0.88 by TP).",
        rich_help_panel=PANEL,
    ),
]
MaxLenOpt = Annotated[
    int | None,
    typer.Option(
        "--max-model-len", "--context-length", min=1, help="Longest request in tokens (default: the model's).", rich_help_panel=PANEL
    ),
]
SeqsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-num-seqs", "--max-running-requests", min=1, help="Requests scheduled at once (vLLM 256/1024).", rich_help_panel=PANEL
    ),
]
BatchedOpt = Annotated[
    int | None,
    typer.Option(
        "--max-num-batched-tokens",
        "--prefill-step-size",
        min=1,
        help="Tokens of one step: vLLM's profile run (2048/8192), MLX's prompt chunk (2048).",
        rich_help_panel=PANEL,
    ),
]
KvDtype = Annotated[KvDtypeOpt, typer.Option("--kv-cache-dtype", help="KV cache: auto (model dtype) or fp8.", rich_help_panel=PANEL)]
TpOpt = Annotated[
    int | None,
    typer.Option("--tensor-parallel-size", "--tp", min=1, help="GPUs per stage (default: the --gpu count).", rich_help_panel=PANEL),
]
PpOpt = Annotated[
    int | None,
    typer.Option("--pipeline-parallel-size", "--pp", min=1, help="Pipeline stages (default: --nodes).", rich_help_panel=PANEL),
]
NodesOpt = Annotated[
    int, typer.Option("--nodes", min=1, max=64, help="Nodes, each with the --gpu GPUs (PP across them).", rich_help_panel=PANEL)
]
EagerOpt = Annotated[bool, typer.Option("--enforce-eager", help="No CUDA graphs.", rich_help_panel=PANEL)]
MmOpt = Annotated[
    str | None,
    typer.Option("--limit-mm-per-prompt", help="Images per prompt for a VLM: 2 or '{\"image\": 2}'.", rich_help_panel=PANEL),
]
WiredOpt = Annotated[
    int | None,
    typer.Option("--wired-limit-mb", min=1, help="MLX: macOS iogpu.wired_limit_mb when raised.", rich_help_panel=PANEL),
]
ConcOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency", min=1, help="Requests at once for the aggregate speed (default: what the pool holds).", rich_help_panel=PANEL
    ),
]
GenOpt = Annotated[int | None, typer.Option("--gen-tokens", min=1, help="MLX: tokens generated (default 128).", rich_help_panel=PANEL)]


def parse_mm(value: str | None) -> int | None:
    """--limit-mm-per-prompt 2 or '{"image": 2}' -> images per prompt."""
    if value is None:
        return None
    v = value.strip()
    try:
        n = int(v)
    except ValueError:
        try:
            d = json.loads(v)
            n = int(d.get("image", 0)) if isinstance(d, dict) else -1
        except (ValueError, TypeError, AttributeError):
            raise typer.BadParameter(f"expected a count or '{{\"image\": N}}', got '{value}'", param_hint="--limit-mm-per-prompt") from None
    if n < 0:
        raise typer.BadParameter("images per prompt must be 0 or more", param_hint="--limit-mm-per-prompt")
    return n


def serving_options(
    fraction: float | None = None,
    max_len: int | None = None,
    seqs: int | None = None,
    batched: int | None = None,
    kv: KvDtypeOpt = KvDtypeOpt.auto,
    tp: int | None = None,
    pp: int | None = None,
    nodes: int = 1,
    eager: bool = False,
    mm: str | None = None,
    wired: int | None = None,
    concurrency: int | None = None,
    gen: int | None = None,
) -> ServingOptions | None:
    """The options as one value; None when none was given (the runtime's defaults)."""
    from vramcalc.errors import InputError
    from vramcalc.results import ServingOptions

    given = (fraction, max_len, seqs, batched, tp, pp, mm, wired, concurrency, gen)
    if all(v is None for v in given) and kv == KvDtypeOpt.auto and nodes == 1 and not eager:
        return None
    try:
        return ServingOptions(
            memory_fraction=fraction,
            max_model_len=max_len,
            max_num_seqs=seqs,
            max_num_batched_tokens=batched,
            kv_cache_dtype=kv.value,
            tensor_parallel=tp,
            pipeline_parallel=pp,
            nodes=nodes,
            enforce_eager=eager,
            mm_items=parse_mm(mm),
            wired_limit_mb=wired,
            concurrency=concurrency,
            generation_tokens=gen,
        )
    except InputError as e:
        raise typer.BadParameter(str(e)) from None
