"""The answer of a serving runtime (vLLM, SGLang, MLX) for ``check``: does it start, the per-GPU
accounting in the runtime's own terms, the KV pool and concurrency, the command line, speeds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from vramcalc.render.estimate import NO_SPEED
from vramcalc.render.table import command_lines
from vramcalc.units import GiB

if TYPE_CHECKING:
    from vramcalc.results import Estimate, SpeedFigure

SPEED_NAMES = {
    "decode_per_request": "decode, one request",
    "decode_aggregate": "decode, all requests",
    "prefill": "prefill",
    "ttft": "time to first token",
    "generation": "generation",
    "prompt": "prompt",
}


def _gib(n: int) -> str:
    return f"{n / GiB:,.2f} GiB"


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _speed(f: SpeedFigure) -> str:
    unit = "s" if f.unit == "s" else "tok/s"
    return f"{_num(f.value)} {unit} ({_num(f.low)}-{_num(f.high)})"


def render_serving(est: Estimate) -> Group:
    s = est.serving
    assert s is not None
    i = est.inputs
    mlx = s.peak_bytes is not None
    n_gpus = 1 if mlx else s.tensor_parallel * s.pipeline_parallel  # every GPU the server runs on (TP x PP)
    cards = est.gpu.name if n_gpus == 1 else f"{n_gpus} x {est.gpu.name}"
    title = Text.assemble((i.model_name, "bold"), f"  [{i.model}]  on  ", (cards, "bold"), f"  [{est.gpu.id}]")
    if mlx:
        gen = i.context_tokens - i.text_tokens
        setting = (
            f"{i.runtime} {i.quant} ({est.memory.weights_bits_per_weight:.2f} bpw), prompt {i.text_tokens:,} + {gen:,} generated tokens"
        )
    else:
        setting = (
            f"{i.runtime} {i.quant}, TP {s.tensor_parallel} x PP {s.pipeline_parallel}, fraction {s.memory_fraction:g}, "
            f"max len {s.max_model_len:,}, KV {s.kv_cache_dtype}"
        )
        if s.max_num_seqs:
            setting += f", {s.max_num_seqs} seqs"
        if s.max_num_batched_tokens:
            setting += f", {s.max_num_batched_tokens:,} batched tokens"
    t = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    t.add_column("Per GPU" if not mlx else "Memory")
    for g in s.gpus:
        t.add_column(f"stage {g.stage} ({g.layers} layers)" if len(s.gpus) > 1 else "", justify="right")
    rows = [
        ("usable (total x fraction)" if not mlx else "wired limit", [g.usable_bytes for g in s.gpus]),
        ("weights", [g.weights_bytes for g in s.gpus]),
    ]
    if not mlx:
        rows.append(("non-torch (CUDA, NCCL)", [g.non_torch_bytes for g in s.gpus]))
    if any(g.activation_bytes for g in s.gpus):
        rows.append(("activation peak" if not mlx else "prefill activations", [g.activation_bytes for g in s.gpus]))
    rows.append(("KV cache" if mlx else "KV pool (the rest)", [max(0, g.kv_cache_bytes) for g in s.gpus]))
    for label, vals in rows:
        t.add_row(label, *[_gib(v) for v in vals])
    t.add_row("KV tokens" if not mlx else "KV cells", *[f"{g.kv_cache_tokens:,}" for g in s.gpus])
    if mlx:
        assert s.peak_bytes is not None
        t.add_row(Text("peak (mlx-lm)", style="bold"), f"{s.peak_bytes / 1e9:,.2f} GB")

    out: list[Text | Table] = [title, Text(setting, style="dim"), t]
    verdict = est.verdict
    if mlx:
        word = {"fits": ("FITS", "bold green"), "tight": ("TIGHT", "bold yellow"), "no": ("DOES NOT FIT", "bold red")}[verdict]
        out.append(Text.assemble("Verdict: ", word, f"  headroom {_gib(est.headroom_bytes)} under the wired limit"))
    else:
        word = ("STARTS", "bold green") if s.starts else ("DOES NOT START", "bold red")
        out.append(
            Text.assemble(
                "Verdict: ",
                word,
                f"  KV cache {s.kv_cache_tokens:,} tokens; max concurrency {s.max_concurrency:g}x at {s.max_model_len:,} tokens",
            )
        )
        k_v = f"K {_gib(s.k_cache_bytes)}, V {_gib(s.v_cache_bytes)} per GPU"
        extra = f"smallest TP that starts: {s.smallest_tp}" if s.smallest_tp else "no TP size on these GPUs starts"
        out.append(Text(f"{k_v}; {extra}; CUDA graphs ~{_gib(s.cuda_graph_bytes)} outside the fraction", style="dim"))
    if s.error:
        out.append(Text(s.error, style="red"))
    if s.lower:
        out.append(Text("To start: " + " | ".join(s.lower)))
    runs = (verdict != "no") if mlx else s.starts
    if s.speeds and not runs:
        out.append(Text(NO_SPEED, style="dim"))
    elif s.speeds:
        sp = Table(box=None, pad_edge=False, show_header=False)
        sp.add_column("")
        sp.add_column("", justify="right")
        for k, f in s.speeds.items():
            label = SPEED_NAMES.get(k, k)
            if k == "decode_aggregate":
                label += f" ({s.concurrency})"
            sp.add_row(label, _speed(f))
        out += [Text("Speed (band in brackets)", style="bold"), sp]
        if est.throughput is not None:  # what the figures are for and how sure (the JSON's throughput.notes)
            out += [Text("• " + n, style="dim") for n in est.throughput.notes]
    first, *more = command_lines(s.command, len("Command: "))  # whole words, continuation backslashes
    out += [Text.assemble(("Command: ", "bold"), first), *[Text(x) for x in more]]
    for n in est.notes:
        if n != s.error:
            out.append(Text("• " + n, style="dim"))
    return Group(*out)
