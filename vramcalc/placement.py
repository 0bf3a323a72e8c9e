"""Placement: which tensors sit on which GPU or in system RAM, and the verdict that follows.

Owns the usable memory of a device (display reserve, Metal working set, unified-memory OS share),
llama.cpp's layer assignment (``-ngl`` and the tensor split over several GPUs), the memory each
device holds, and — decided here, once — the verdict, headroom, largest context and suggestion.

Layer assignment follows llama.cpp (``llama-model.cpp`` ``load_tensors``): the last ``n_gpu_layers``
repeating layers go to the GPUs, the output layer counts as one more layer and is on a GPU only when
``n_gpu_layers > n_layer``; layers are split between GPUs in proportion to their free memory by
default (``tensor_split`` cumulative fractions, ``upper_bound``); the token embedding stays on the
host where the runtime keeps it there. The per-layer tables (:class:`LlmBytes`) are shaped per
tensor so that expert tensors and tensor-name overrides can be placed next.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from vramcalc.jsonable import Jsonable, result
from vramcalc.memo import spec_memo
from vramcalc.params import llm_tensors
from vramcalc.results import (
    DeviceShare,
    GpuInfo,
    Memory,
    Offload,
    Suggestion,
    Verdict,
    Workload,
)
from vramcalc.units import GiB, MiB

if TYPE_CHECKING:
    from vramcalc.params import Tensor
    from vramcalc.runtimes import Runtime
    from vramcalc.schema import GpuSpec, LlmSpec

#: What a desktop session usually holds on the card that drives the display (Xorg/Wayland
#: compositor, browser): a guess from typical nvidia-smi readings of 200-800 MiB. --headless drops it.
GUESS_DISPLAY_BYTES = 512 * MiB
#: What Linux and a desktop keep of a 64-128 GB unified-memory system (DGX Spark, Strix Halo): a guess.
GUESS_UNIFIED_OS_BYTES = 8 * GiB
#: What the OS and other programs keep of system RAM: a guess (a desktop session uses 3-6 GB).
GUESS_OS_RAM_BYTES = 4 * GiB
#: Dual-channel desktop memory (2 x 64-bit channels): DDR4-3200 = 2 x 8 B x 3200 MT/s = 51.2 GB/s,
#: DDR5-5600 = 2 x 8 B x 5600 MT/s = 89.6 GB/s (JEDEC transfer rates; peak, not measured).
RAM_BANDWIDTH_GBS = {"ddr4": 51.2, "ddr5": 89.6}
DEFAULT_RAM = "ddr5"
#: Bytes per element of the KV cache types (ggml block layouts: q8_0 34 bytes / 32, q4_0 18 / 32; F16 2 bytes).
KV_TYPE_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "bf16": 2.0}


# ---------------------------------------------------------------------------------------------
# Usable memory


def gpu_info(gpu: GpuSpec, headless: bool, reserve: int = 0) -> GpuInfo:
    """Usable memory: the card minus what the desktop holds, or on unified-memory systems the
    share the OS lets the GPU use; less ``reserve`` (--reserve: what other programs hold)."""
    total = gpu.memory_bytes
    if gpu.vendor == "apple":
        # Metal's recommendedMaxWorkingSetSize: about 2/3 of RAM up to 32 GB, 3/4 above (field.md:
        # 'roughly 2/3 to 3/4 of RAM'; llama.cpp logs 'recommendedMaxWorkingSetSize = 48 GB' on 64 GB).
        usable = total * 2 // 3 if total <= 32 * GiB else total * 3 // 4
    elif gpu.unified_memory:
        usable = total - GUESS_UNIFIED_OS_BYTES
    elif gpu.category in ("consumer", "laptop") and not headless:
        usable = total - GUESS_DISPLAY_BYTES
    else:
        usable = total
    usable -= reserve
    return GpuInfo(
        id=gpu.id,
        name=gpu.name,
        memory_bytes=total,
        usable_bytes=usable,
        unified_memory=gpu.unified_memory,
        memory_bandwidth_gbs=gpu.memory_bandwidth_gbs,
    )


def ram_bandwidth(value: str | float | None) -> float:
    """GB/s from a number or 'ddr4' / 'ddr5' (dual channel); None = the DDR5 default."""
    if value is None:
        return RAM_BANDWIDTH_GBS[DEFAULT_RAM]
    if isinstance(value, (int, float)):
        return float(value)
    v = value.strip().lower()
    if v in RAM_BANDWIDTH_GBS:
        return RAM_BANDWIDTH_GBS[v]
    return float(v)


def verdict_for(headroom: int, runtime: Runtime) -> Verdict:
    """The runtime's rule: fits with its free-memory margin left, tight below it, else offload
    (layers from system RAM) where the runtime can, else no."""
    if headroom >= runtime.margin_bytes:
        return "fits"
    if headroom >= 0:
        return "tight"
    return "offload" if runtime.offloads_layers else "no"


# ---------------------------------------------------------------------------------------------
# KV cache


def kv_dims(llm: LlmSpec) -> tuple[int, int]:
    """K and V widths per cell per layer: kv_heads x head_dim each (GQA/MQA); MLA (DeepSeek-V2/V3)
    caches the compressed latent: K = kv_lora_rank + rope dims, V = kv_lora_rank."""
    if llm.mla:
        return llm.mla.kv_lora_rank + llm.mla.qk_rope_head_dim, llm.mla.kv_lora_rank
    d = llm.num_kv_heads * llm.head_dim_
    return d, d


def recurrent_state_note(llm: LlmSpec, n_seq: int) -> str:
    """The line a check prints for a hybrid model: what the KV figure holds besides the KV cells."""
    la = llm.linear_attention
    n_linear = sum(1 for i in range(llm.num_layers) if la is not None and la.is_linear(i))
    mib = recurrent_state_bytes(llm, n_seq) / 2**20
    return (
        f"KV cache includes {mib:.1f} MiB of recurrent state ({n_linear} of {llm.num_layers} layers are linear-attention "
        f"layers: a fixed state per sequence, no KV cells); only the other {llm.num_layers - n_linear} layers grow with the context."
    )


def pad(n: int, to: int) -> int:
    return -(-n // to) * to


def kv_cells(llm: LlmSpec, tokens: int, w: Workload, runtime: Runtime) -> tuple[int, int]:
    """(cells of a full-attention layer, cells of a sliding-window layer) for ``tokens`` per sequence.

    Sliding-window layers hold only the window (llama.cpp llama_kv_cache_iswa:
    min(n_ctx, pad(n_swa * n_seq + n_ubatch, 256)); transformers: the window per sequence).
    """
    own = getattr(runtime, "kv_cells", None)  # a runtime with its own layout (llama.cpp: per-sequence streams)
    if own is not None:
        return own(llm, tokens, w)  # type: ignore[no-any-return]
    cells = pad(tokens * w.batch, runtime.kv_pad)
    swa = cells
    if llm.sliding_window:
        swa = min(cells, pad(llm.sliding_window.size * w.batch + runtime.swa_extra_cells(w), runtime.kv_pad))
    return cells, swa


def kv_cache_bytes(llm: LlmSpec, tokens: int, w: Workload, runtime: Runtime) -> tuple[int, int]:
    """KV cache bytes and the number of cells of the full-attention layers."""
    cells, swa = kv_cells(llm, tokens, w, runtime)
    k_dim, v_dim = getattr(runtime, "kv_dims", kv_dims)(llm)  # a runtime's own cache layout (llama.cpp MLA: no V)
    total = 0.0
    la = llm.linear_attention
    for i in range(llm.num_layers):
        if (la is not None and la.is_linear(i)) or i in llm.cross_attention_layers:
            continue  # no self-attention KV: a recurrent state (below) / image states (the VLM's cross-attention KV)
        sliding = bool(llm.sliding_window and llm.sliding_window.is_sliding(i))
        n = swa if sliding else cells
        kd, vd = layer_kv_dims(llm, i, k_dim, v_dim)
        total += n * (kd * KV_TYPE_BYTES[w.k_type] + vd * KV_TYPE_BYTES[w.v_type])  # -ctk / -ctv
    return int(total) + recurrent_state_bytes(llm, w.batch), cells


def layer_kv_dims(llm: LlmSpec, i: int, k_dim: int, v_dim: int) -> tuple[int, int]:
    """K and V widths of layer ``i``: ``kv_dims`` except Gemma 4's full-attention layers (global_attention),
    whose own KV heads and head size are cached (K and V both, also where the values are the keys)."""
    ga = llm.global_attention
    if ga is not None and llm.sliding_window is not None and not llm.sliding_window.is_sliding(i):
        d = ga.num_kv_heads * ga.head_dim
        return d, d
    return k_dim, v_dim


def _kv_cell_bytes(dims: tuple[int, int], k_type: str, v_type: str) -> float:
    """Bytes of one KV cell of a layer with K and V widths ``dims`` at their cache types."""
    return dims[0] * KV_TYPE_BYTES[k_type] + dims[1] * KV_TYPE_BYTES[v_type]


#: bytes per element of a recurrent state dtype
STATE_TYPE_BYTES = {"f32": 4, "bf16": 2, "f16": 2}


def recurrent_state_bytes(llm: LlmSpec, n_seq: int) -> int:
    """Recurrent-state bytes of the linear-attention layers of a hybrid model for ``n_seq`` sequences.

    Each such layer keeps, per sequence, the last (kernel - 1) inputs of its short convolution and
    a key x value state matrix per value head, whatever the context (llama.cpp llama_memory_recurrent
    allocates them as the separate 'RS' buffer, one cell per sequence, in F32). Included in the KV
    cache figure; 0 for models without linear attention."""
    la = llm.linear_attention
    if la is None:
        return 0
    n_linear = sum(1 for i in range(llm.num_layers) if la.is_linear(i))
    return n_linear * la.state_elems * STATE_TYPE_BYTES[la.state_dtype] * max(n_seq, 1)


# ---------------------------------------------------------------------------------------------
# Bytes of an LLM, layer by layer


@result
class LlmBytes(Jsonable):
    """Weight bytes of an LLM at one precision, split the way the runtime places them."""

    layer_stored: tuple[int, ...]  # per repeating layer, all experts (memory)
    layer_read: tuple[int, ...]  # per repeating layer, bytes read per token (active experts only)
    output_stored: int  # output norm + output.weight (lm head); for tied embeddings the token_embd copy
    output_read: int
    embd: int  # token_embd: host memory, a row lookup per token
    active_params: int  # parameters multiplied per token (MoE: active experts), without token_embd and output
    output_params: int
    kv_elem_bytes_per_cell: tuple[float, ...]  # K + V bytes per cell per layer
    sliding: tuple[bool, ...]
    window: int | None
    state_bytes_per_seq: tuple[int, ...] = ()  # hybrid models: recurrent state per layer per sequence (empty: none)


@spec_memo
def llm_bytes(llm: LlmSpec, runtime: Runtime, precision: str, kv_type: str = "f16", kv_type_v: str | None = None) -> LlmBytes:
    """Per-layer weight bytes (stored and read per token) at ``precision``, and KV bytes per cell.

    Each tensor at the runtime's bytes for it; MoE expert tensors (``*_exps``) are read only for
    the active experts: ``experts_per_token / num_experts`` of their bytes.
    """
    n = llm.num_layers
    stored = [0] * n
    read = [0.0] * n
    out_s = out_r = embd = 0
    active = out_p = 0
    moe_frac = llm.moe.experts_per_token / llm.moe.num_experts if llm.moe else 1.0
    for t, nb in zip(llm_tensors(llm), runtime.tensor_bytes(llm, precision), strict=True):
        frac = moe_frac if t.role.endswith("_exps") else 1.0
        if t.role == "token_embd":
            embd += nb
            if llm.tied_embeddings and runtime.embeddings_on_host:
                out_s += nb  # llama.cpp loads the tied matrix again as the output layer (TENSOR_DUPLICATED)
            if llm.tied_embeddings:  # the lm head is the same matrix: read fully per token
                out_r += nb
                out_p += t.numel
        elif t.layer is None:  # output norm, output.weight
            out_s += nb
            out_r += nb
            if t.ndim >= 2:
                out_p += t.numel
        else:
            stored[t.layer] += nb
            read[t.layer] += nb * frac
            if t.ndim >= 2:
                active += int(t.numel * frac)
    k_dim, v_dim = getattr(runtime, "kv_dims", kv_dims)(llm)
    sliding = tuple(bool(llm.sliding_window and llm.sliding_window.is_sliding(i)) for i in range(n))
    la = llm.linear_attention
    linear = tuple(la is not None and la.is_linear(i) for i in range(n))
    state = la.state_elems * STATE_TYPE_BYTES[la.state_dtype] if la is not None else 0
    return LlmBytes(
        layer_stored=tuple(stored),
        layer_read=tuple(int(r) for r in read),
        output_stored=out_s,
        output_read=out_r,
        embd=embd,
        active_params=active,
        output_params=out_p,
        kv_elem_bytes_per_cell=tuple(
            0
            if linear[i] or i in llm.cross_attention_layers
            else _kv_cell_bytes(layer_kv_dims(llm, i, k_dim, v_dim), kv_type, kv_type_v or kv_type)
            for i in range(n)
        ),
        sliding=sliding,
        window=llm.sliding_window.size if llm.sliding_window else None,
        state_bytes_per_seq=tuple(state if linear[i] else 0 for i in range(n)) if la is not None else (),
    )


# ---------------------------------------------------------------------------------------------
# Layer assignment


#: Buckets of :class:`Moved` outside the repeating layers.
OUTPUT_BUCKET = -1
EMBD_BUCKET = -2


@result
class Moved(Jsonable):
    """Bytes a tensor rule (-ot, --n-cpu-moe, --cpu-moe) takes from where their layer sits to ``dest``."""

    layer: int  # repeating layer, or OUTPUT_BUCKET / EMBD_BUCKET (where llm_bytes counts the tensors)
    dest: int  # -1 = system RAM, k = GPU k
    stored: int
    read: int  # bytes read per token (experts: the active ones)


@result
class Placement(Jsonable):
    """Which device each repeating layer and the output layer sit on (-1 = CPU), and what tensor
    rules move elsewhere."""

    layer_dev: tuple[int, ...]
    output_dev: int
    ngl: int
    moved: tuple[Moved, ...] = ()
    embd_dev: int = -1

    def source(self, m: Moved) -> int:
        """The device the moved bytes would sit on without the rule."""
        if m.layer == OUTPUT_BUCKET:
            return self.output_dev
        if m.layer == EMBD_BUCKET:
            return self.embd_dev
        return self.layer_dev[m.layer]

    def moved_delta(self, d: int) -> tuple[int, int, int]:
        """(stored bytes, bytes read per token, layers touched) device ``d`` gains (negative: loses)
        through the rules; a layer whose tensors are split between devices is touched on both."""
        stored = read = 0
        touched: set[int] = set()
        for m in self.moved:
            src = self.source(m)
            if src == m.dest:
                continue
            if m.dest == d:
                stored += m.stored
                read += m.read
                if m.layer >= 0 and self.layer_dev[m.layer] != d:
                    touched.add(m.layer)
            elif src == d:
                stored -= m.stored
                read -= m.read
        return stored, read, len(touched)

    @property
    def cpu_moved_bytes(self) -> int:
        """Bytes the rules put in system RAM that their layers would have on a GPU."""
        return sum(m.stored for m in self.moved if m.dest == -1 and self.source(m) != -1)


@spec_memo
def _expert_tensors(llm: LlmSpec) -> tuple[bool, ...]:
    """Per tensor of ``llm_tensors``: an expert tensor (what --cpu-moe / --n-cpu-moe match)."""
    from vramcalc.overrides import FFN_EXPS_REGEX

    rx = re.compile(FFN_EXPS_REGEX)
    return tuple(bool(rx.search(t.name)) for t in llm_tensors(llm))


def _bucket(t: Tensor) -> int:
    if t.role == "token_embd":
        return EMBD_BUCKET
    return OUTPUT_BUCKET if t.layer is None else t.layer


def moved_bytes(
    llm: LlmSpec, runtime: Runtime, precision: str, w: Workload, n_gpus: int, n_cpu_moe: int | None = None
) -> tuple[Moved, ...]:
    """What the workload's tensor rules move, summed per (layer, destination): -ot rules first
    (regex over the GGUF names, first match wins), then --cpu-moe / --n-cpu-moe (``n_cpu_moe``
    overrides the workload's, for the --fit search). llama.cpp tries the rules in the order they
    were given; vramcalc's command line gives them in this order."""
    from vramcalc.overrides import assign

    n_moe = w.n_cpu_moe if n_cpu_moe is None else n_cpu_moe
    if not (w.override_tensor or w.cpu_moe or n_moe):
        return ()
    tensors = llm_tensors(llm)
    by_rule = assign(tensors, list(w.override_tensor), n_gpus)
    experts = _expert_tensors(llm)
    frac = llm.moe.experts_per_token / llm.moe.num_experts if llm.moe else 1.0
    acc: dict[tuple[int, int], list[float]] = {}
    for t, nb, dest, is_exp in zip(tensors, runtime.tensor_bytes(llm, precision), by_rule, experts, strict=True):
        if dest is None and is_exp and (w.cpu_moe or (n_moe and t.layer is not None and t.layer < n_moe)):
            dest = -1
        if dest is None:
            continue
        b = _bucket(t)
        read = 0.0 if b == EMBD_BUCKET else nb * (frac if t.role.endswith("_exps") else 1.0)
        cur = acc.setdefault((b, dest), [0, 0.0])
        cur[0] += nb
        cur[1] += read
    return tuple(Moved(layer=b, dest=d, stored=int(v[0]), read=int(v[1])) for (b, d), v in sorted(acc.items()))


def assign_layers(n_layer: int, ngl: int, splits: list[float], moved: tuple[Moved, ...] = (), embd_dev: int = -1) -> Placement:
    """llama.cpp ``load_tensors`` layer assignment for ``-ngl`` and a tensor split.

    ``i_gpu_start = max(n_layer - ngl, 0)``, ``act = min(ngl, n_layer + 1)``; layer ``il`` (the
    output layer is ``il = n_layer``) is on the CPU if ``il < i_gpu_start`` or ``il - i_gpu_start >=
    act``, else on GPU ``upper_bound(splits, (il - i_gpu_start) / act)`` with ``splits`` the
    cumulative normalised split fractions.
    """
    total = sum(splits) or 1.0
    cum, acc = [], 0.0
    for s in splits:
        acc += s
        cum.append(acc / total)
    start = max(n_layer - ngl, 0)
    act = min(ngl, n_layer + 1)

    last = len(cum) - 1

    def dev(il: int) -> int:
        if il < start or il - start >= act or act == 0:
            return -1
        return min(bisect.bisect_right(cum, (il - start) / act), last)  # upper_bound

    return Placement(tuple([dev(i) for i in range(n_layer)]), dev(n_layer), ngl, moved, embd_dev)


@result
class Fixed(Jsonable):
    """Per-GPU memory that does not depend on the layer split (from the runtime's accounting)."""

    compute_llm: int
    compute_vis: int
    vision_weights: int
    overhead: int
    embd_on_cpu: bool = True
    vision_on_cpu: bool = False  # --no-mmproj-offload: the mmproj weights and clip compute buffer in RAM
    n_seq: int = 1  # sequences: each holds its own recurrent state in a hybrid model's linear-attention layers


@result
class Devices(Jsonable):
    """The devices a model is placed on: GPUs (main first) and system RAM."""

    gpus: tuple[GpuSpec, ...]
    usable: tuple[int, ...]
    ram_bytes: int | None
    ram_usable: int | None
    ram_bw: float


def devices_for(gpus: list[GpuSpec], w: Workload) -> Devices:
    """Usable memory of each GPU (the display reserve on the first only) and of system RAM. On a
    unified-memory system the CPU side may use the RAM beyond the GPU working set, less the OS."""
    usable = tuple(gpu_info(g, w.headless if k == 0 else True, w.reserve_bytes).usable_bytes for k, g in enumerate(gpus))
    ram_bytes, ram_bw_value = w.ram_bytes, w.ram_bandwidth_gbs
    if gpus[0].unified_memory and ram_bytes is None:
        ram_bytes = max(gpus[0].memory_bytes - usable[0], 0) + GUESS_OS_RAM_BYTES
        ram_bw_value = ram_bw_value or gpus[0].memory_bandwidth_gbs
    ram_usable = None if ram_bytes is None else max(ram_bytes - GUESS_OS_RAM_BYTES, 0)
    return Devices(tuple(gpus), usable, ram_bytes, ram_usable, ram_bandwidth(ram_bw_value))


def device_shares(pl: Placement, lb: LlmBytes, dev: Devices, cells: int, swa_cells: int, fixed: Fixed) -> list[DeviceShare]:
    """Memory per device for a placement. KV lives with its layer (offload_kqv): ``cells`` per
    full-attention layer, ``swa_cells`` per sliding-window layer (the memory estimate's figures); each
    GPU holds a compute buffer and a runtime context; the vision tower (mmproj) sits on GPU 0."""
    n = len(lb.layer_stored)
    out: list[DeviceShare] = []
    for d in [*range(len(dev.gpus)), -1]:
        idx = [i for i in range(n) if pl.layer_dev[i] == d]
        w = sum(lb.layer_stored[i] for i in idx)
        has_out = pl.output_dev == d
        if has_out:
            w += lb.output_stored
        kv = int(sum((swa_cells if lb.sliding[i] else cells) * lb.kv_elem_bytes_per_cell[i] for i in idx))
        if lb.state_bytes_per_seq:  # recurrent state lives with its layer, like the KV cache
            kv += sum(lb.state_bytes_per_seq[i] for i in idx) * max(fixed.n_seq, 1)
        if d == (-1 if fixed.embd_on_cpu else 0):
            w += lb.embd
        w += pl.moved_delta(d)[0]
        first = idx[0] if idx else None
        if d == -1:  # system RAM: weights and KV only (no compute buffer or runtime context counted there)
            vis_cpu = fixed.vision_on_cpu
            out.append(
                DeviceShare(
                    device="cpu",
                    index=-1,
                    layers=len(idx),
                    first_layer=first,
                    output_layer=has_out,
                    weights_bytes=w + (fixed.vision_weights if vis_cpu else 0),
                    kv_cache_bytes=kv,
                    compute_bytes=fixed.compute_vis if vis_cpu else 0,
                    overhead_bytes=0,
                    usable_bytes=dev.ram_usable,
                    memory_bandwidth_gbs=dev.ram_bw,
                )
            )
            continue
        vis_here = d == 0 and not fixed.vision_on_cpu
        if vis_here:
            w += fixed.vision_weights
        comp = fixed.compute_llm + (fixed.compute_vis if vis_here else 0)
        out.append(
            DeviceShare(
                device=dev.gpus[d].id,
                index=d,
                layers=len(idx),
                first_layer=first,
                output_layer=has_out,
                weights_bytes=w,
                kv_cache_bytes=kv,
                compute_bytes=comp,
                overhead_bytes=fixed.overhead,
                usable_bytes=dev.usable[d],
                memory_bandwidth_gbs=dev.gpus[d].memory_bandwidth_gbs,
            )
        )
    return out


def _gpus_fit(pl: Placement, lb: LlmBytes, dev: Devices, cells: int, swa_cells: int, fixed: Fixed, margin: int = 0) -> bool:
    """Whether every GPU's share of ``device_shares(...)`` fits with ``margin`` left, without building
    the shares: the same sums in the same order (the search over -ngl asks this for every candidate)."""
    n_gpu = len(dev.gpus)
    w = [0] * n_gpu
    kv = [0.0] * n_gpu
    for i, d in enumerate(pl.layer_dev):
        if d >= 0:
            w[d] += lb.layer_stored[i]
            kv[d] += (swa_cells if lb.sliding[i] else cells) * lb.kv_elem_bytes_per_cell[i]
            if lb.state_bytes_per_seq:
                kv[d] += lb.state_bytes_per_seq[i] * max(fixed.n_seq, 1)
    for d in range(n_gpu):
        total = w[d] + (lb.output_stored if pl.output_dev == d else 0) + int(kv[d])
        if d == 0:
            total += (0 if fixed.vision_on_cpu else fixed.vision_weights + fixed.compute_vis) + (0 if fixed.embd_on_cpu else lb.embd)
        total += fixed.compute_llm + fixed.overhead
        if pl.moved:
            total += pl.moved_delta(d)[0]
        if dev.usable[d] - total < margin:
            return False
    return True


def split_fractions(w: Workload, dev: Devices) -> list[float]:
    """The layer split over the GPUs: --tensor-split ratios (llama.cpp -ts: missing ones are 0),
    else llama.cpp's default, in proportion to each GPU's free memory."""
    n = len(dev.gpus)
    if w.tensor_split is None:
        return [float(u) for u in dev.usable]
    if len(w.tensor_split) > n:
        from vramcalc.errors import InputError

        raise InputError(f"--tensor-split gives {len(w.tensor_split)} shares for {n} GPU(s).")
    return [float(x) for x in w.tensor_split] + [0.0] * (n - len(w.tensor_split))


MovesFor = Callable[[int | None], tuple[Moved, ...]]


def place_layers(
    lb: LlmBytes, dev: Devices, w: Workload, cells: int, swa_cells: int, fixed: Fixed, moves: MovesFor | None = None
) -> tuple[Offload, Placement]:
    """The layer placement: all layers when they fit (or --offload none), --gpu-layers as given, or
    what llama.cpp's ``--fit`` would choose (common/fit.cpp at 0c1e57098; ``fit`` on, the default):
    a MoE model keeps every layer's dense tensors on the GPU and moves the experts of the first
    layers to system RAM (the fewest that leave ``--fit-target`` free), and only when even all
    experts in RAM do not fit, whole layers too; a dense model keeps the most layers that leave the
    target free. ``--fit off``: the most whole layers that fit (no margin, no expert placement).
    Simplified from fit.cpp: no partial layer (its "one more layer's up/gate" step) is tried.
    ``moves(n)`` gives the tensor-rule moves with ``--n-cpu-moe n`` (None: the workload's rules)."""
    n = len(lb.layer_stored)
    splits = split_fractions(w, dev)
    full = n + 1
    embd_dev = -1 if fixed.embd_on_cpu else 0
    user_moved = moves(None) if moves else ()
    margin = w.fit_target_bytes if w.fit else 0
    n_cpu_moe = n if w.cpu_moe else w.n_cpu_moe

    def at(ngl: int, moved: tuple[Moved, ...]) -> Placement:
        return assign_layers(n, ngl, splits, moved, embd_dev)

    def fits(p: Placement, m: int = margin) -> bool:
        return _gpus_fit(p, lb, dev, cells, swa_cells, fixed, m)

    mode: Literal["full", "auto", "manual"]
    if w.gpu_layers is not None:
        mode = "manual"
        pl = at(min(max(w.gpu_layers, 0), full), user_moved)
    else:
        pl = at(full, user_moved)
        if fits(pl, 0) or w.offload == "none":
            mode = "full"
        else:
            mode = "auto"
            best = None
            is_moe = moves is not None and any(r != s for r, s in zip(lb.layer_read, lb.layer_stored, strict=True))
            if w.fit and is_moe and not w.expert_overrides:
                assert moves is not None
                greedy = len(dev.gpus) > 1 and w.tensor_split is None

                def with_experts(k: int) -> Placement | None:
                    """Every layer on the GPUs, the experts of the first k in RAM; several GPUs: filled
                    front to back (fit.cpp sets the tensor split to layer counts per device)."""
                    moved = moves(k)
                    if greedy:
                        counts = _fill_counts(lb, moved, dev, cells, swa_cells, fixed, margin)
                        return None if counts is None else assign_layers(n, full, counts, moved, embd_dev)
                    p = at(full, moved)
                    return p if fits(p) else None

                all_cpu = with_experts(n)
                if all_cpu is not None:  # the fewest first layers whose experts go to RAM (monotone: bisect)
                    lo, hi, best = 0, n, all_cpu  # with_experts(hi) fits, with_experts(lo) does not
                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        cand_m = with_experts(mid)
                        if cand_m is not None:
                            hi, best = mid, cand_m
                        else:
                            lo = mid
                    n_cpu_moe = hi
                else:
                    user_moved, n_cpu_moe = moves(n), n
            if best is None:
                for ngl in range(full - 1, -1, -1):
                    cand = at(ngl, user_moved)
                    if fits(cand):
                        best = cand
                        break
            pl = best or at(0, user_moved)
    shares = device_shares(pl, lb, dev, cells, swa_cells, fixed)
    off = Offload(
        mode=mode,
        gpu_layers=pl.ngl if mode != "full" else full,
        total_layers=full,
        devices=shares,
        ram_bytes=dev.ram_bytes,
        ram_usable_bytes=dev.ram_usable,
        ram_bandwidth_gbs=dev.ram_bw,
        n_cpu_moe=n_cpu_moe if pl.cpu_moved_bytes or w.n_cpu_moe or w.cpu_moe else None,
        tensor_overrides=[f"{p}={b}" for p, b in w.override_tensor],
        tensor_split=[round(x / (sum(splits) or 1.0), 4) for x in splits] if len(dev.gpus) > 1 else None,
        cpu_moved_bytes=pl.cpu_moved_bytes,
        fit_target_bytes=margin if mode == "auto" and w.fit else None,
    )
    return off, pl


def _fill_counts(
    lb: LlmBytes, moved: tuple[Moved, ...], dev: Devices, cells: int, swa_cells: int, fixed: Fixed, margin: int
) -> list[float] | None:
    """Layers per GPU filling the GPUs in order (the output layer on the last), each up to its usable
    memory less ``margin`` and its fixed buffers, with ``moved`` bytes taken out; None if they do not all fit."""
    n = len(lb.layer_stored)
    out_moved = [0] * (n + 1)
    for m in moved:
        if m.dest == -1 and m.layer >= 0:
            out_moved[m.layer] += m.stored
        elif m.dest == -1 and m.layer == OUTPUT_BUCKET:
            out_moved[n] += m.stored
    need = [
        lb.layer_stored[i] - out_moved[i] + int((swa_cells if lb.sliding[i] else cells) * lb.kv_elem_bytes_per_cell[i]) for i in range(n)
    ]
    need.append(lb.output_stored - out_moved[n])
    counts = [0.0] * len(dev.gpus)
    i = 0
    for d in range(len(dev.gpus)):
        cap = dev.usable[d] - margin - fixed.compute_llm - fixed.overhead
        if d == 0:
            cap -= (0 if fixed.vision_on_cpu else fixed.vision_weights + fixed.compute_vis) + (0 if fixed.embd_on_cpu else lb.embd)
        used = 0
        last = d == len(dev.gpus) - 1
        while i < n + 1 and used + need[i] <= cap and (last or i < n):
            used += need[i]
            counts[d] += 1
            i += 1
    return counts if i == n + 1 else None


def split_max_context(llm: LlmSpec, lb: LlmBytes, off: Offload, cells: int, batch: int, single: int | None) -> int | None:
    """Largest context per sequence under a layer split: each card's headroom over the KV bytes
    per cell of its layers (the compute buffer's growth with the context is neglected)."""
    extra = None
    for d in off.devices:
        if d.index < 0 or d.layers == 0:
            continue
        first = d.first_layer or 0
        per_cell = sum(lb.kv_elem_bytes_per_cell[i] for i in range(first, first + d.layers) if not lb.sliding[i])
        if per_cell <= 0 or d.headroom_bytes is None:
            continue
        n = int(d.headroom_bytes // per_cell)
        extra = n if extra is None else min(extra, n)
    if extra is None:
        return single
    ctx = (cells + extra) // max(batch, 1) // 256 * 256  # steps of 256, as the single-GPU max context
    return max(min(ctx, llm.max_context), 0) or None


# ---------------------------------------------------------------------------------------------
# Largest context and the cheapest change, on the main GPU


def max_context(llm_max: int, image_tokens: int, fits: Callable[[int], bool]) -> int | None:
    """Largest text+image context per sequence whose total fits the usable memory (steps of 256).
    ``fits(text_tokens)`` answers for one text length."""
    lo_text = 256
    hi_text = max(lo_text, llm_max - image_tokens)
    if not fits(lo_text):
        return None
    if fits(hi_text):
        return hi_text + image_tokens
    lo, hi = lo_text // 256, hi_text // 256  # invariant: fits(lo*256), not fits(hi*256)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid * 256):
            lo = mid
        else:
            hi = mid
    return lo * 256 + image_tokens


#: Most changes shown: the suggestion and two alternatives.
MAX_SUGGESTIONS = 3


def _below_3_bits(precision: str) -> bool:
    """GGUF file types of fewer than 3 bits per weight (Q2_K, IQ2_*, IQ1_*)."""
    import re

    return re.match(r"^I?Q[12]_", precision.upper()) is not None


def suggestion_tries(
    gpu: GpuSpec,
    w: Workload,
    runtime: Runtime,
    is_llm: bool,
    quant: str,
    text_tokens: int,
    context_tokens: int,
    max_ctx: int | None,
    vision: bool = False,
) -> list[tuple[str, list[str], dict[str, object], str]]:
    """(change, flags, workload update, cost) in the order of what they cost in quality: a quantized
    KV cache, a shorter context, flash attention, no display, the vision encoder at q8_0, then lower
    weight precisions (below 3 bits last). Other kinds of change are appended by their owners."""
    free = list(runtime.suggestions(w))
    kv = [t for t in free if "kv_cache" in t[2]]
    other = [t for t in free if "kv_cache" not in t[2]]
    tries: list[tuple[str, list[str], dict[str, object], str]] = [(*t, "small quality cost (KV at 8 bits)") for t in kv]
    images = context_tokens - text_tokens
    if is_llm and max_ctx and max_ctx >= 2048 + images:
        text = max_ctx - images
        if text >= text_tokens and text_tokens >= 4096:  # it fits only without margin: half the context
            text = text_tokens // 2
        if text < text_tokens:
            tries.append((f"shorten the context to {text} text tokens", ["--ctx", str(text)], {"context_tokens": text}, "less context"))
    tries += [(*t, "none") for t in other]
    if w.headless is False and gpu.category in ("consumer", "laptop"):
        tries.append(("run with no display on this GPU", ["--headless"], {"headless": True}, "no desktop on this GPU"))
    if vision and (w.vision_quant or "f16").lower() in ("f16", "fp16", "bf16", "f32"):
        tries.append(
            ("vision encoder at q8_0", ["--vision-quant", "q8_0"], {"vision_quant": "q8_0"}, "small quality cost (vision at 8 bits)")
        )
    if is_llm:
        for q in runtime.smaller_precisions(quant):
            change, flags = runtime.smaller_precision_change(q)
            low = _below_3_bits(q)
            tries.append((change, flags, {"quant": q}, "large quality loss (below 3 bits)" if low else "some quality (lower precision)"))
    return tries


def suggestions(
    gpu: GpuSpec,
    w: Workload,
    runtime: Runtime,
    is_llm: bool,
    quant: str,
    text_tokens: int,
    context_tokens: int,
    max_ctx: int | None,
    memory_for: Callable[[dict[str, object]], tuple[int, Verdict]],
    vision: bool = False,
    tries: list[tuple[str, list[str], dict[str, object], str]] | None = None,
    experts: Callable[[], Suggestion | None] | None = None,
) -> list[Suggestion]:
    """Up to MAX_SUGGESTIONS changes that make it run, cheapest in quality first (``suggestion_tries``).
    A change counts when it makes the model run on the GPU (fits or tight); a precision below 3 bits
    only when nothing else does. ``experts()`` (MoE under llama.cpp) gives the expert placement that
    runs, tried just before the first lower precision. ``memory_for(update)`` gives (GPU bytes, verdict) for the workload
    so changed (every GPU of a split)."""
    from vramcalc.errors import InputError

    tries = tries if tries is not None else suggestion_tries(gpu, w, runtime, is_llm, quant, text_tokens, context_tokens, max_ctx, vision)
    runs: list[Suggestion] = []
    low_bits: list[Suggestion] = []
    # when it is already tight, only a change that leaves the margin free is one
    already_runs = memory_for({})[1] == "tight"
    better = ("fits",) if already_runs else ("fits", "tight")
    expert_tried = experts is None
    for change, flags, update, cost in tries:
        if len(runs) >= MAX_SUGGESTIONS:
            break
        if not expert_tried and "quant" in update:  # MoE under llama.cpp: experts in RAM before a lower precision
            expert_tried = True
            assert experts is not None
            got = experts()
            if got is not None:
                runs.append(got if got.cost else dataclasses.replace(got, cost="slower decode: expert weights read from system RAM"))
                continue
        try:
            total, verdict = memory_for(update)
        except InputError:  # a switch this runtime or model does not take
            continue
        s = Suggestion(change=change, flags=flags, total_bytes=total, verdict=verdict, cost=cost)
        if "quant" in update and _below_3_bits(str(update["quant"])):
            if verdict in better:
                low_bits.append(s)
            continue
        if verdict in better:
            runs.append(s)
    if runs:
        return runs[:MAX_SUGGESTIONS]
    # nothing alone: the free switches together, then (below 3 bits) a precision, then all of it
    combined: dict[str, object] = {}
    all_flags: list[str] = []
    for _, f, u, _c in tries:
        if "quant" in u or "context_tokens" in u or "vision_quant" in u:
            continue
        combined.update(u)
        all_flags += f
    if len(all_flags) > 2:  # more than one switch
        try:
            total, verdict = memory_for(combined)
        except InputError:
            verdict = "no"
            total = 0
        if verdict in better:
            return [
                Suggestion(change="these switches together", flags=all_flags, total_bytes=total, verdict=verdict, cost="small quality cost")
            ]
    if low_bits and not already_runs:  # below 3 bits only when nothing else runs
        return low_bits[:1]
    smallest = [t for t in tries if "quant" in t[2] and not (already_runs and _below_3_bits(str(t[2]["quant"])))]
    if smallest:
        combined.update(smallest[-1][2])
        all_flags += smallest[-1][1]
    if combined:
        try:
            total, verdict = memory_for(combined)
        except InputError:
            return []
        if verdict in better:
            return [
                Suggestion(
                    change="these changes together",
                    flags=all_flags,
                    total_bytes=total,
                    verdict=verdict,
                    cost="some quality (lower precision)",
                )
            ]
    return []


# ---------------------------------------------------------------------------------------------
# The verdict, decided once


@result
class Decision(Jsonable):
    verdict: Verdict
    headroom_bytes: int
    max_context_tokens: int | None
    suggestion: Suggestion | None
    notes: list[str]


DOES_NOT_FIT = "Does not fit entirely on the GPU; {runtime} can keep some layers in system RAM (slower)."


def _gib(n: int) -> str:
    return f"{n / GiB:.1f}"


def decide(
    memory: Memory,
    info: GpuInfo,
    runtime: Runtime,
    n_gpus: int,
    offload: Offload | None,
    notes: list[str],
    max_ctx: int | None,
    suggestion: Callable[[], Suggestion | None],
    split_ctx: Callable[[Offload], int | None] | None,
    decode_label: str | None,
) -> Decision:
    """Verdict, headroom, largest context, suggestion and the notes that explain them.

    On one GPU the runtime's rule on its headroom decides; under a layer placement the tightest
    GPU decides, CPU layers make it ``offload`` (``no`` when system RAM cannot hold them), and a
    --gpu-layers that does not fit is ``no``. ``notes`` are the pipeline's notes so far.
    """
    headroom = info.usable_bytes - memory.total_bytes
    verdict = verdict_for(headroom, runtime)
    main_notes = list(notes)
    does_not_fit = DOES_NOT_FIT.format(runtime=runtime.name)
    if verdict == "offload":
        main_notes.insert(_first_after_context(main_notes), does_not_fit)
    sugg = suggestion() if verdict != "fits" else None
    if offload is None:
        return Decision(verdict, headroom, max_ctx, sugg, main_notes)
    min_head = offload.min_gpu_headroom
    drop = [n for n in main_notes if n != does_not_fit]
    if offload.cpu_moved_bytes and runtime.offloads_layers:
        if split_ctx is not None:
            max_ctx = split_ctx(offload)
        return _decide_moved(offload, min_head, max_ctx, sugg, drop, decode_label)
    if offload.mode == "full" and min_head < 0:  # --offload none and it does not fit
        return Decision("no", min_head, max_ctx, sugg, ["Does not fit on the GPU and --offload none keeps every layer there.", *drop])
    if offload.mode == "full":
        if n_gpus == 1:
            return Decision(verdict, headroom, max_ctx, sugg, main_notes)
        v = verdict_for(min_head, runtime)  # min_head >= 0 here (a full placement short of memory returned above)
        out_notes = main_notes
        if v in ("fits", "tight"):
            sugg = None
            out_notes = drop
            if split_ctx is not None:
                max_ctx = split_ctx(offload)
        split = ", ".join(f"{d.device}: {d.layers} layers" + (" + output" if d.output_layer else "") for d in offload.gpus)
        return Decision(
            v, min_head, max_ctx, sugg, [f"Layer split over {n_gpus} GPUs ({split}); the KV cache of each layer stays with it.", *out_notes]
        )
    if offload.mode == "manual" and min_head < 0:
        return Decision(
            "no",
            headroom,
            max_ctx,
            sugg,
            [f"--gpu-layers {offload.gpu_layers} does not fit: a GPU is short of {_gib(-min_head)} GiB.", *drop],
        )
    if offload.gpu_layers >= offload.total_layers:
        return Decision(verdict_for(min_head, runtime), min_head, max_ctx, sugg, drop)
    if not runtime.offloads_layers:
        return Decision(verdict, headroom, max_ctx, sugg, drop)
    if offload.fits_in_ram is False:
        cpu = offload.cpu
        return Decision(
            "no",
            min_head,
            max_ctx,
            sugg,
            [
                f"Does not fit even with CPU offload: system RAM needs {_gib(cpu.total_bytes)} GiB for the CPU layers, "
                f"{_gib(offload.ram_usable_bytes or 0)} GiB usable.",
                *drop,
            ],
        )
    if decode_label:
        drop = [f"Does not fit entirely on the GPU; {decode_label} (CPU layers at {offload.ram_bandwidth_gbs:g} GB/s RAM).", *drop]
    return Decision("offload", min_head, max_ctx, sugg, drop)


def expert_phrase(off: Offload) -> str:
    """'the experts of 30 layers' / 'tensors matched by -ot' in system RAM, as the notes say it."""
    if off.tensor_overrides and not off.n_cpu_moe:
        return f"{_gib(off.cpu_moved_bytes)} GiB of tensors matched by -ot"
    n = off.n_cpu_moe or 0
    return f"the experts of {n} layer{'s' if n != 1 else ''}"


def _decide_moved(
    off: Offload, min_head: int, max_ctx: int | None, sugg: Suggestion | None, drop: list[str], decode_label: str | None
) -> Decision:
    """Tensor rules (expert offload) keep weights in system RAM: the GPUs must hold the rest, RAM
    the moved part; it runs at the speed of reading those weights from RAM (verdict ``offload``)."""
    where = expert_phrase(off)
    if min_head < 0:
        why = "--fit could not make it fit" if off.mode == "auto" else "this placement does not fit"
        return Decision(
            "no", min_head, max_ctx, sugg, [f"With {where} in system RAM a GPU is still short of {_gib(-min_head)} GiB ({why}).", *drop]
        )
    if off.fits_in_ram is False:  # no context runs: the weights alone do not fit in RAM
        return Decision(
            "no",
            min_head,
            None,
            sugg,
            [
                f"System RAM needs {_gib(off.cpu.total_bytes)} GiB for {where}"
                + (f" and {off.cpu.layers} CPU layers" if off.cpu.layers else "")
                + f", {_gib(off.ram_usable_bytes or 0)} GiB usable.",
                *drop,
            ],
        )
    who = "llama.cpp --fit's choice" if off.mode == "auto" else "as asked"
    if decode_label and off.gpu_layers >= off.total_layers:
        decode_label = decode_label.replace(f"runs with {off.gpu_layers}/{off.total_layers} layers on GPU at", "decode at")
    speed = f"; {decode_label}" if decode_label else ""
    return Decision(
        "offload",
        min_head,
        max_ctx,
        sugg,
        [f"Runs with {where} in system RAM ({who}, read at {off.ram_bandwidth_gbs:g} GB/s){speed}.", *drop],
    )


def _first_after_context(notes: list[str]) -> int:
    """The 'does not fit' note follows the context-exceeds-maximum note, as the pipeline orders them."""
    return 1 if notes and notes[0].startswith("Context ") else 0


# ---------------------------------------------------------------------------------------------
# --split-mode row (llama.cpp at 0c1e57098)
#
# In this llama.cpp, row split is not a placement vramcalc can model: it does not run on any GPU
# backend vramcalc knows. src/llama-model.cpp ``make_gpu_buft_list``: with LLAMA_SPLIT_MODE_ROW each
# GPU's buffer list starts with the buffer type the backend exports as
# "ggml_backend_split_buffer_type", and
#     } else {
#         throw std::runtime_error(format("device %s does not support split buffers", ggml_backend_dev_name(dev)));
# when it exports none. ``load_tensors`` builds this list for every device (``for (const auto & dev
# : devices)``), whatever -ngl or the number of GPUs. Who exports it at 0c1e57098: only ggml-sycl.cpp
# and ggml-hexagon.cpp. ggml-cuda.cu's ``ggml_backend_cuda_reg_get_proc_address`` (also built for
# ROCm, ggml-hip/CMakeLists.txt globs ../ggml-cuda/*.cu) and ggml-metal.cpp's answer other names
# only; ggml-vulkan.cpp's registry has ``get_proc_address = NULL``. SYCL exports one, but
# ``ggml_backend_sycl_device_supports_buft`` accepts only its plain buffer type
# (``buft->iface.get_name != ggml_backend_sycl_buffer_type_get_name`` → false), and the CPU device
# only host buffers, so ggml-backend.cpp ``ggml_backend_sched_backend_id_from_cur`` finds no backend
# for a weight in a SYCL_Split buffer and stops:
#     GGML_ABORT("pre-allocated tensor (%s) in a buffer (%s) that cannot run the operation (%s)", ...)
# (read from the source; no SYCL device here to run it). A CPU-only build never builds the GPU lists
# (no GPU devices): -sm has no effect there (common/arg.cpp: "Setting the split mode has no effect").

#: llama.cpp device-name prefix per backend that refuses at load (GGML_CUDA_NAME "CUDA"/"ROCm", GGML_METAL_NAME "MTL",
#: GGML_VK_NAME "Vulkan")
_DEVICE_PREFIX = {"cuda": "CUDA", "rocm": "ROCm", "metal": "MTL", "vulkan": "Vulkan"}
_BACKEND_NAME = {"cuda": "CUDA", "rocm": "ROCm", "metal": "Metal", "vulkan": "Vulkan"}
#: Where each backend's row-split refusal comes from (file of llama.cpp at 0c1e57098).
_NO_SPLIT_BUFFER = {
    "cuda": "ggml-cuda.cu exports no split buffer type",
    "rocm": "the ROCm build of ggml-cuda.cu exports no split buffer type",
    "metal": "ggml-metal.cpp exports no split buffer type",
    "vulkan": "ggml-vulkan.cpp exports no split buffer type",
}


def row_split_refusal(backends: list[str]) -> str | None:
    """Why llama.cpp (0c1e57098) cannot run ``--split-mode row`` on GPUs running ``backends`` (one per
    GPU, in order), as one line; None when it has no effect (CPU backend only: no GPU device)."""
    for k, b in enumerate(backends):  # load_tensors stops first (before any context or scheduler)
        if b in _NO_SPLIT_BUFFER:
            name = f"{_DEVICE_PREFIX[b]}{backends[:k].count(b)}"  # device names count per backend: CUDA0, CUDA1, ...
            return (
                f"--split-mode row: llama.cpp (0c1e57098) cannot load a model this way on {_BACKEND_NAME[b]}: "
                f"{_NO_SPLIT_BUFFER[b]}, so load_tensors stops with 'device {name} does not support "
                "split buffers'. Use --split-mode layer."
            )
    if "sycl" in backends:
        return (
            "--split-mode row: llama.cpp (0c1e57098) cannot run this way on SYCL: its devices do not accept "
            "their own split buffer (ggml_backend_sycl_device_supports_buft), so the scheduler aborts on the "
            "first weight ('pre-allocated tensor ... cannot run the operation'; read from the source, not run). "
            "Use --split-mode layer."
        )
    return None
