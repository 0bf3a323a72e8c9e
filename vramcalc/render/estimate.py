"""The estimate of ``check``: memory table, bar, verdict, speed section. Meaning is never colour alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from vramcalc import runtimes
from vramcalc.render.table import Col, FitTable, command_lines
from vramcalc.units import fmt_bytes, fmt_count

if TYPE_CHECKING:
    from vramcalc.estimate import Estimate

#: bar segments: (label, glyph, style) — glyphs differ so the bar reads without colour
_SEGMENTS = [
    ("weights", "█", "bright_blue"),
    ("KV cache", "▓", "magenta"),
    ("compute", "▒", "yellow"),
    ("overhead", "░", "bright_black"),
]
VERDICT_TEXT = {
    "fits": ("FITS", "bold green"),
    "tight": ("TIGHT", "bold yellow"),
    "offload": ("OFFLOAD", "bold dark_orange"),
    "no": ("DOES NOT FIT", "bold red"),
}


def bar_width(suffix: str, over: bool = False, columns: int = 80) -> int:
    """Cells of the memory bar so that '[bar] !' and its suffix stay on one line of ``columns``
    (48 at most; at least 16). The segments' rounding can add a cell, hence one spare column."""
    return max(16, min(48, columns - 1 - 2 - (2 if over else 0) - len(suffix)))


def memory_bar(parts: list[int], capacity: int, width: int = 48) -> Text:
    """A bar of memory use against the card: one glyph per segment, '·' for what is free,
    and '!' past the end when the total exceeds the capacity."""
    total = sum(parts)
    scale = max(total, capacity)
    text = Text("[")
    used_cells = 0
    for (_, glyph, style), n in zip(_SEGMENTS, parts, strict=True):
        cells = round(width * n / scale)
        if n > 0 and cells == 0:
            cells = 1
        text.append(glyph * cells, style=style)
        used_cells += cells
    cap_cells = round(width * capacity / scale)
    if used_cells < cap_cells:
        text.append("·" * (cap_cells - used_cells), style="dim")
    text.append("]")
    if total > capacity:
        text.append(" !", style="bold red")
    return text


def render_estimate(est: Estimate) -> Group:
    i, m, g = est.inputs, est.memory, est.gpu
    title = Text.assemble((i.model_name, "bold"), f"  [{i.model}]  on  ", *gpu_title(est))
    setting = [i.runtime, f"{i.quant} ({m.weights_bits_per_weight:.2f} bpw)" if i.llm else i.quant]
    if i.vision_quant:
        setting.append(f"vision {i.vision_quant}")
    if i.model_kind != "encoder":
        ctx = f"context {i.context_tokens:,} tokens"
        if i.images:
            size = f" at {i.image_size[0]}x{i.image_size[1]}" if i.image_size else ""
            ctx += f" ({i.text_tokens:,} text + {i.images} image{'s' if i.images > 1 else ''} x {i.image_tokens_per_image:,}{size})"
        setting += [ctx, f"KV {i.kv_cache}"]
        if i.batch > 1:
            setting.append(f"{i.batch} parallel sequences")
    else:
        setting.append(f"batch {i.batch} images at {i.image_size[0]}x{i.image_size[1]}" if i.image_size else f"batch {i.batch}")
    rt = runtimes.get(i.runtime)
    if rt.flash_attention_switch:
        setting.append("flash attention " + ("on" if i.flash_attention else "off"))

    t = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    t.add_column("Component")
    t.add_column("Params", justify="right")
    t.add_column("Memory", justify="right")
    if i.llm:
        t.add_row(f"LLM weights ({i.quant})", fmt_count(est.params.llm), fmt_bytes(m.weights_bytes.llm))
        if m.weights_host_bytes:
            t.add_row("  kept in system RAM (token embeddings)", "", "-" + fmt_bytes(m.weights_host_bytes))
    if i.encoder:
        t.add_row(f"Vision encoder ({i.vision_quant})", fmt_count(est.params.vision), fmt_bytes(m.weights_bytes.vision))
    if m.weights_bytes.projector:
        t.add_row(f"Projector ({i.vision_quant})", fmt_count(est.params.projector), fmt_bytes(m.weights_bytes.projector))
    if i.llm:
        t.add_row(f"KV cache ({m.kv_cache_cells:,} cells, {i.kv_cache})", "", fmt_bytes(m.kv_cache_bytes))
        t.add_row(f"LLM {rt.compute_label}", "", fmt_bytes(m.compute_bytes.llm))
    if i.encoder:
        t.add_row(f"Vision {rt.compute_label}", "", fmt_bytes(m.compute_bytes.vision))
    t.add_row("Runtime overhead (context, workspaces)", "", fmt_bytes(m.overhead_bytes))
    off = est.offload
    cpu_share = off.cpu if off is not None and (off.cpu.layers or off.cpu.output_layer or off.cpu_moved_bytes) else None
    gpu_shares_ = off.gpus if off is not None else []
    on_gpu = sum(d.total_bytes for d in gpu_shares_) if cpu_share is not None else m.total_bytes
    if cpu_share is not None and off is not None:  # layers in system RAM: the GPU part is what is on the GPU
        t.add_row("Total (all layers)", fmt_count(est.params.total), fmt_bytes(m.total_bytes))
        t.add_row(Text(f"Total on GPU ({_on_gpu_label(off)})", style="bold"), "", Text(fmt_bytes(on_gpu), style="bold"))
        t.add_row(
            "In system RAM (" + ("offloaded layers" if off.cpu.layers or off.cpu.output_layer else "expert weights") + ")",
            "",
            fmt_bytes(cpu_share.total_bytes),
        )
    else:
        t.add_row(Text("Total on GPU", style="bold"), fmt_count(est.params.total), Text(fmt_bytes(m.total_bytes), style="bold"))
    kept = "OS share" if g.unified_memory else "display" if not i.headless and not _reserved(est) else "reserved"
    reserved = f" ({fmt_bytes(g.memory_bytes)} - {fmt_bytes(g.reserved_bytes)} {kept})" if g.reserved_bytes else ""
    cap = g.usable_bytes
    gpu_shares = est.offload.gpus if est.offload else []
    n_gpus = len(gpu_shares) or 1
    if n_gpus > 1:  # a layer split: the cards' usable memory together (per card: the Layers line)
        cap = sum(d.usable_bytes or 0 for d in gpu_shares)
        t.add_row(f"Usable on {n_gpus} GPUs", "", fmt_bytes(cap))
    else:
        t.add_row(f"Usable on GPU{reserved}", "", fmt_bytes(g.usable_bytes))

    weights_dev = m.weights_bytes.llm - m.weights_host_bytes + m.weights_bytes.vision + m.weights_bytes.projector
    parts = [weights_dev, m.kv_cache_bytes, m.compute_bytes.llm + m.compute_bytes.vision, m.overhead_bytes]
    if cpu_share is not None:  # the bar shows the GPU part
        parts = [
            sum(d.weights_bytes for d in gpu_shares_),
            sum(d.kv_cache_bytes for d in gpu_shares_),
            sum(d.compute_bytes for d in gpu_shares_),
            sum(d.overhead_bytes for d in gpu_shares_),
        ]
    pct = 100 * on_gpu / cap
    suffix = f" {fmt_bytes(on_gpu)} of {fmt_bytes(cap)} ({pct:.0f}%)" + (" on GPU" if cpu_share is not None else "")
    bar = memory_bar(parts, cap, bar_width(suffix, over=sum(parts) > cap))
    bar.append(suffix)
    legend = Text("  ")
    for label, glyph, style in _SEGMENTS:
        legend.append(glyph, style=style)
        legend.append(f" {label}  ")
    legend.append("·", style="dim")
    legend.append(" free")

    word, style = VERDICT_TEXT[est.verdict]
    verdict = Text.assemble(("Verdict: ", "bold"), (word, style))
    if cpu_share is not None and off is not None and est.verdict == "no":
        verdict.append(f" - the offloaded layers need {fmt_bytes(cpu_share.total_bytes)} of system RAM")
    elif cpu_share is not None and off is not None:
        ram = fmt_bytes(cpu_share.total_bytes)
        what = f"the experts of {off.n_cpu_moe} layers ({ram})" if off.cpu_moved_bytes and off.n_cpu_moe else ram
        verdict.append(f" - {off.gpu_layers}/{off.total_layers} layers on the GPU; {what} in system RAM")
    elif est.headroom_bytes >= 0:
        verdict.append(f" - {fmt_bytes(est.headroom_bytes)} headroom")
    else:
        verdict.append(f" - exceeds usable memory by {fmt_bytes(-est.headroom_bytes)}")
    if est.verdict == "tight":
        verdict.append(f" (under the {fmt_bytes(rt.margin_bytes)} {rt.margin_note})")
    lines: list[Any] = [title, Text(" · ".join(setting), style="dim"), Text(""), t, Text(""), bar, legend, Text(""), verdict]
    if i.llm:
        if est.max_context_tokens:
            lines.append(Text(f"Largest context that fits: {est.max_context_tokens:,} tokens per sequence"))
        else:
            lines.append(Text("No context fits entirely on the GPU at this precision."))
    for n, s in enumerate([est.suggestion, *est.alternatives] if est.suggestion else []):
        cost = f"; cost: {s.cost}" if s.cost else ""
        lines.append(
            Text.assemble(
                ("Suggestion: " if n == 0 else "        or: ", "bold"),
                (" ".join(s.flags), "cyan"),
                f"  {s.change} -> {fmt_bytes(s.total_bytes)} ({s.verdict}{cost})",
            )
        )
    if est.verdict == "no" and est.throughput is not None:
        lines += [
            Text(""),
            Text(NO_SPEED, style="dim"),
        ]
    else:
        lines += render_speed(est)
    lines += render_devices(est)
    for note in est.notes:
        lines.append(Text(f"Note: {note}", style="dim"))
    return Group(*lines)


def _rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2g}"


def _secs(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.0f} s"


BACKEND_NAMES = {"cuda": "CUDA", "rocm": "ROCm", "vulkan": "Vulkan", "metal": "Metal", "sycl": "SYCL", "cpu": "CPU"}


#: What ``check`` prints instead of speeds when the verdict says it does not run (llama.cpp, serving, MLX).
NO_SPEED = "No speed shown: it does not run with these settings (speeds would describe a run that cannot happen)."


def render_speed(est: Estimate) -> list[Any]:
    """The speed section: each figure with its band and the basis it is computed from. Each row says
    what it is for (decode at which context depth; first token for a typical question and for the
    full context). Where the Basis column does not fit the width, it moves under the table."""
    thr, off = est.throughput, est.offload
    if thr is None:
        return []

    def basis(f: Any) -> str:
        b = f.basis
        cpu = off.cpu if off and (off.cpu.layers or off.cpu.output_layer or off.cpu_moved_bytes) else None
        if b.bytes is not None and b.effective_bandwidth_gbs is not None and cpu is not None and f is thr.decode_tokens_per_s:
            out = (
                f"{fmt_bytes(b.bytes)}/token at {b.effective_bandwidth_gbs:,.0f} GB/s effective "
                f"(GPU + {cpu.memory_bandwidth_gbs:g} GB/s RAM)"
            )
        elif b.bytes is not None and b.effective_bandwidth_gbs is not None:
            out = f"{fmt_bytes(b.bytes)}/token at {b.effective_bandwidth_gbs:,.0f} of {b.bandwidth_gbs:,.0f} GB/s"
        elif b.flops is not None and b.effective_tflops is not None:
            out = f"{b.flops / 1e12:,.2f} TFLOP at {b.effective_tflops:,.1f} of {b.peak_tflops:,.0f} TFLOPS"
        else:
            out = b.factors
        return out + ("" if b.calibrated else " (uncalibrated)")

    depth = est.inputs.context_tokens
    # --depth: decode at that depth, prefill a 512-token prompt after it (llama-bench tg/pp512 @ d)
    kv_depth = thr.depth_tokens if thr.depth_tokens is not None else depth
    prefill_label = f"Prefill, 512 tok @ {thr.depth_tokens:,}" if thr.depth_tokens is not None else f"Prefill, {depth:,} tok"
    rows: list[list[Any]] = []
    for label, f, fmt in (
        (f"Decode at {kv_depth:,} tok", thr.decode_tokens_per_s, lambda x: f"{_rate(x)} tok/s"),
        (prefill_label, thr.prefill_tokens_per_s, lambda x: f"{_rate(x)} tok/s"),
        ("Image encode", thr.image_encode_s, lambda x: f"{_secs(x)}/image"),
        ("Images", thr.images_per_s, lambda x: f"{_rate(x)} img/s"),
    ):
        if f:
            band = f"{_secs(f.low)}-{_secs(f.high)}" if label == "Image encode" else f"{_rate(f.low)}-{_rate(f.high)}"
            est_rate = thr.prefill_rate_estimated and label in (prefill_label, "Image encode", "Images")
            rows.append([label, fmt(f.value), band, basis(f) + (" (estimated, see Note)" if est_rate else "")])
    imgs = est.inputs.images
    plus = f" + {imgs} img" if thr.image_encode_s and imgs else ""
    q = thr.time_to_first_token_question_s
    if q and thr.question_tokens and thr.question_tokens < depth:
        text_q = thr.question_tokens - imgs * est.inputs.image_tokens_per_image
        rows.append(
            [
                f"1st token, {text_q:,} tok{plus}",
                _secs(q.value),
                f"{_secs(q.low)}-{_secs(q.high)}",
                "a typical question: " + ("image encode + prefill" if plus else "prefill"),
            ]
        )
    if thr.time_to_first_token_s:
        f = thr.time_to_first_token_s
        why = "image encode + prefill" if thr.image_encode_s else "prefill"
        rows.append([f"1st token, {depth:,} tok", _secs(f.value), f"{_secs(f.low)}-{_secs(f.high)}", f"the full context: {why}"])
    if thr.decode_aggregate_tokens_per_s:
        f = thr.decode_aggregate_tokens_per_s
        rows.append(["Decode, all sequences", f"{_rate(f.value)} tok/s", f"{_rate(f.low)}-{_rate(f.high)}", "parallel sequences together"])
    cols = [Col("Speed"), Col("Estimate", "right"), Col("Band", "right"), Col("Basis", drop=1, style="dim")]
    table = FitTable(cols, rows)
    lines: list[Any] = [Text(""), table, _BasisBelow(table, rows)]
    if thr.backend:
        where = f"; decode and prefill at depth {thr.depth_tokens:,}" if thr.depth_tokens is not None else ""
        lines.append(Text(f"Speeds for llama.cpp's {BACKEND_NAMES.get(thr.backend, thr.backend)} backend (--backend){where}.", style="dim"))
    if off is not None and (off.mode != "full" or len(off.gpus) > 1) and not show_devices(est):
        parts = []
        for d in off.devices:
            if d.index < 0 and d.layers == 0 and not d.output_layer:
                continue
            what = f"{d.layers} layers" + (" + output" if d.output_layer else "")
            parts.append(f"{d.device}: {what}, {fmt_bytes(d.total_bytes)}")
        lines.append(Text(f"Layers on GPU: {off.gpu_layers}/{off.total_layers} (" + "; ".join(parts) + ")"))
    if thr.time_to_first_token_s:
        lines.append(
            Text("Time to first token (1st token): for a typical 512-token question (+ images), and for the full context.", style="dim")
        )
    lines.append(Text("Bands: the calibration fit's residual spread (docs/accuracy.md).", style="dim"))
    for note in thr.notes:
        lines.append(Text(f"Note: {note}", style="dim"))
    return lines


class _BasisBelow:
    """The Basis column as lines under the speed table when the width dropped it."""

    def __init__(self, table: FitTable, rows: list[list[Any]]) -> None:
        self.table, self.rows = table, rows

    def __rich_console__(self, console: Any, options: Any) -> Any:
        self.table.layout(options.max_width)
        if "Basis" in self.table.dropped:
            for r in self.rows:
                yield Text(f"  {r[0]}: {r[3]}", style="dim")


def gpu_title(est: Estimate) -> list[Any]:
    """The GPU part of the title: every card of a split ('2 x GeForce RTX 3090 [rtx3090 x2]',
    'GeForce RTX 3090 [rtx3090] + rtx4090')."""
    g = est.gpu
    ids = [d.device for d in est.offload.gpus] if est.offload is not None else [g.id]
    if len(ids) <= 1:
        return [(g.name, "bold"), f"  [{g.id}]"]
    if len(set(ids)) == 1:
        return [(f"{len(ids)} x {g.name}", "bold"), f"  [{g.id} x{len(ids)}]"]
    return [(g.name, "bold"), f"  [{ids[0]}] + " + " + ".join(ids[1:])]


def show_devices(est: Estimate) -> bool:
    """A per-device table when the model is spread: layers on the CPU, tensor rules, several GPUs."""
    off = est.offload
    if off is None:
        return False
    cpu = off.cpu
    return off.mode != "full" or len(off.gpus) > 1 or bool(off.cpu_moved_bytes) or cpu.compute_bytes > 0


def render_devices(est: Estimate) -> list[Any]:
    """Memory per device (GPUs, then system RAM) and the llama-server line that reproduces it."""
    from vramcalc.cmdline import shell_line

    off = est.offload
    lines: list[Any] = []
    if off is not None and show_devices(est):
        t = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        for col in ("Device", "Holds", "Weights", "KV", "Compute", "Total", "Free"):
            t.add_column(col, justify="left" if col in ("Device", "Holds") else "right")
        for d in off.devices:
            holds = f"{d.layers}" + ("+out" if d.output_layer else "")
            if d.index < 0:
                if d.layers == 0 and not d.output_layer and not d.weights_bytes:
                    continue
                extra = ""
                if off.cpu_moved_bytes:
                    extra = f"exps {off.n_cpu_moe}" if off.n_cpu_moe else "-ot"
                if d.layers or d.output_layer:
                    holds = f"{holds}, {extra}" if extra else holds
                else:
                    holds = extra or ("embd, mmproj" if d.compute_bytes else "embd")
            free = Text("?" if d.headroom_bytes is None else fmt_bytes(d.headroom_bytes))
            if d.headroom_bytes is not None and d.headroom_bytes < 0:
                free.stylize("bold red")
                free.append("!")
            name = "RAM" if d.index < 0 else f"{d.index}:{d.device}"
            t.add_row(
                name,
                holds,
                fmt_bytes(d.weights_bytes),
                fmt_bytes(d.kv_cache_bytes),
                fmt_bytes(d.compute_bytes),
                fmt_bytes(d.total_bytes),
                free,
            )
        head = f"Memory per device (layers on the GPUs: {off.gpu_layers}/{off.total_layers}"
        if off.tensor_split:
            head += ", split " + ":".join(f"{x:g}" for x in off.tensor_split)
        if off.fit_target_bytes:
            head += f", --fit keeps {fmt_bytes(off.fit_target_bytes)} free"
        lines += [Text(""), Text(head + ")", style="bold"), t]
    if est.llama_server:
        first, *more = command_lines(shell_line(est.llama_server), len("Command: "))
        lines += [Text(""), Text.assemble(("Command: ", "bold"), (first, "cyan")), *[Text(x, style="cyan") for x in more]]
    if est.llama_fit_context_tokens:
        lines.append(
            Text(
                f"Without -c, llama.cpp's --fit would set the context to {est.llama_fit_context_tokens:,} tokens per sequence "
                "(training context lowered to keep its --fit-target free, not below 4,096).",
                style="dim",
            )
        )
    return lines


def _reserved(est: Estimate) -> bool:
    """Memory held by other programs (--reserve / --gpu local) is part of what the card keeps back."""
    return any("held by other programs" in n for n in est.notes)


def _on_gpu_label(off: Any) -> str:
    """'20/33 layers', or with MoE experts in system RAM '49/49 layers, experts of 23 in RAM'."""
    out = f"{off.gpu_layers}/{off.total_layers} layers"
    if off.cpu_moved_bytes:
        out += f", experts of {off.n_cpu_moe} in RAM" if off.n_cpu_moe else ", some experts in RAM"
    return out
