"""The estimate pipeline: spec -> runtime accounting -> placement -> verdict -> speed -> Estimate.

Pure functions over catalog specs; no printing, no I/O, no global catalog. ``estimate()`` returns
the :class:`~vramcalc.results.Estimate` that ``vramcalc check`` renders and prints with ``--json``.

- *accounting* (``account``): what each part needs on the main GPU, by the runtime plugin's rules
  (vramcalc.runtimes): weights, the part it keeps in host memory, KV cache, compute buffers, overhead;
- *placement* (placement.py): which device holds which layers, and — decided there, once — the
  verdict, headroom, largest context and suggestion;
- *speed* (speed.py): a roofline over the finished placement; it never changes a memory figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vramcalc import runtimes
from vramcalc.images import encoder_tokens, image_size, image_tokens
from vramcalc.jsonable import Jsonable, result
from vramcalc.params import ParamCount, Tensor, count_params, encoder_tensors, vlm_parts
from vramcalc.placement import (
    KV_TYPE_BYTES,
    Fixed,
    Moved,
    Placement,
    decide,
    devices_for,
    gpu_info,
    kv_cache_bytes,
    kv_cells,
    llm_bytes,
    max_context,
    moved_bytes,
    place_layers,
    recurrent_state_note,
    split_max_context,
    suggestions,
    verdict_for,
)
from vramcalc.quant import WeightBytes
from vramcalc.results import (
    DEFAULT_TEXT_CONTEXT,
    ComponentBytes,
    Estimate,
    FixedWeights,
    Inputs,
    Memory,
    ModelKind,
    Offload,
    Params,
    Suggestion,
    Verdict,
    Workload,
)
from vramcalc.schema import GpuSpec, LlmSpec, VisionEncoderSpec, VlmSpec
from vramcalc.speed import SpeedInputs, decode_label, throughput
from vramcalc.units import MiB

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.matrix_rate import RateEstimate
    from vramcalc.runtimes import Runtime

Model = LlmSpec | VlmSpec | VisionEncoderSpec

__all__ = ["Estimate", "FixedWeights", "Workload", "account", "estimate", "model_parts"]


@result
class Parts(Jsonable):
    """A model split into what the runtime accounts for: LLM, vision encoder, projector tensors."""

    model: Model
    kind: ModelKind
    llm: LlmSpec | None
    encoder: VisionEncoderSpec | None
    projector: tuple[Tensor, ...]


def model_parts(model: Model, catalog: Catalog | None) -> Parts:
    """The parts of a model; a VLM's encoder and LLM are looked up in ``catalog``."""
    if isinstance(model, VlmSpec):
        if catalog is None:
            raise TypeError("a VLM needs the catalog its encoder and LLM ids resolve in")
        p = vlm_parts(model, catalog)
        return Parts(model, "vlm", p.llm, p.encoder, p.projector)
    if isinstance(model, LlmSpec):
        return Parts(model, "llm", model, None, ())
    return Parts(model, "encoder", None, model, ())


@result
class Accounting(Jsonable):
    """The runtime's memory accounting of one workload on the main GPU, before placement."""

    inputs: Inputs
    params: Params
    memory: Memory
    notes: list[str]
    weights: FixedWeights  # every part's weights as accounted (reused when only the context changes)
    encoder_crops: int
    encoder_patches: int
    projector_params: int
    vision_compute_host: int = 0  # --no-mmproj-offload: the clip compute buffer, in system RAM (not in memory)


def account(
    parts: Parts, gpu: GpuSpec, w: Workload, rt: Runtime, weights: FixedWeights | None = None, catalog: Catalog | None = None
) -> Accounting:
    """What each part needs on ``gpu`` under the runtime's rules (``weights``: exact parts, e.g. a GGUF file's)."""
    fixed = weights or FixedWeights()
    model, llm, enc, kind = parts.model, parts.llm, parts.encoder, parts.kind
    notes: list[str] = []
    quant = fixed.llm.precision if fixed.llm else rt.normalize_precision(w.quant or rt.default_precision(model, llm))
    vq = None
    if enc is not None:
        vq = rt.vision_precision(model, w)  # type: ignore[arg-type]  # also rejects a bad --vision-quant
        if fixed.vision:
            vq = fixed.vision.precision
    rt.check(w)

    # --- images and context (images.py counts the tokens)
    n_images = (1 if kind == "vlm" else 0) if w.images is None else w.images
    if kind == "encoder":
        n_images = max(1, w.images or w.batch)
    tok_per_image, crops, patches = 0, 0, 0
    size = None
    if enc is not None:
        size = image_size(model, enc, w.image_size)  # type: ignore[arg-type]
        if isinstance(model, VlmSpec):
            tok_per_image, crops, patches = image_tokens(model, enc, w.image_size, mtmd=getattr(rt, "mtmd_images", False))
        else:
            crops, patches = 1, encoder_tokens(enc, size)
    text = w.context_tokens or (DEFAULT_TEXT_CONTEXT if llm else 0)
    # Llama 3.2 Vision (transformers models/mllama): the text stream holds one <|image|> token per
    # image; the image states are keys/values of the cross-attention layers only.
    xattn_layers = (
        len(model.projector.cross_attention_layers) if isinstance(model, VlmSpec) and model.projector.kind == "cross_attention" else 0
    )
    if w.context_tokens is None and llm is not None:
        # the default context never exceeds the trained maximum: the images take their share of it
        text = max(1, min(text, llm.max_context - n_images * (1 if xattn_layers else tok_per_image)))
    ctx = text + n_images * (1 if xattn_layers else tok_per_image)
    if llm is not None and ctx > llm.max_context:
        notes.append(f"Context {ctx} exceeds the model's trained maximum of {llm.max_context} tokens.")

    # --- weights
    wb_llm = fixed.llm or (rt.llm_weights(llm, quant) if llm else WeightBytes(quant))
    own_tensors = getattr(rt, "vision_tensors", None)  # what the runtime's projector file keeps of the tower
    enc_tensors = (own_tensors(model, enc) if own_tensors else encoder_tensors(enc)) if enc else ()
    wb_vis = fixed.vision or (rt.vision_weights(enc_tensors, vq) if enc and vq else WeightBytes(vq or ""))
    wb_proj = fixed.projector or (rt.vision_weights(parts.projector, vq) if parts.projector and vq else WeightBytes(vq or ""))
    host = wb_llm.host_bytes if rt.embeddings_on_host else 0
    vision_host = not w.mmproj_offload and enc is not None and not isinstance(model, VisionEncoderSpec)
    if vision_host:  # --no-mmproj-offload: the mmproj weights stay in system RAM
        host += wb_vis.bytes + wb_proj.bytes

    # --- KV cache and compute
    kv, cells, compute_llm = 0, 0, 0
    if llm is not None:
        kv, cells = kv_cache_bytes(llm, ctx, w, rt)
        if xattn_layers:
            kv += int(
                n_images
                * tok_per_image
                * w.batch
                * xattn_layers
                * llm.num_kv_heads
                * llm.head_dim_
                * (KV_TYPE_BYTES[w.k_type] + KV_TYPE_BYTES[w.v_type])
            )
        compute_llm = rt.llm_compute_bytes(llm, ctx, cells, w)
        vlm_extra = getattr(rt, "vlm_llm_compute_extra", None)  # llama.cpp: a DeepStack LLM's wider input embedding
        if vlm_extra is not None and isinstance(model, VlmSpec):
            compute_llm += vlm_extra(model, llm, w, ctx)
        if llm.linear_attention is not None:
            notes.append(recurrent_state_note(llm, w.batch))
    vis_crops, vis_patches = crops * (w.batch if kind == "encoder" else 1), patches
    reserved = getattr(rt, "vision_reserved", None)  # a runtime that reserves the buffer for another image (llama.cpp warm-up)
    if reserved is not None and enc is not None and isinstance(model, VlmSpec):
        vis_crops, vis_patches = reserved(model, enc, size, w)
    compute_vis = rt.vision_compute_bytes(enc, vis_patches, vis_crops, w) if enc is not None else 0
    own_vlm_compute = getattr(rt, "vlm_compute_bytes", None)  # a runtime whose vision graph includes the projector (llama.cpp)
    if own_vlm_compute is not None and enc is not None and llm is not None and isinstance(model, VlmSpec):
        compute_vis = own_vlm_compute(model, enc, llm, vis_patches, vis_crops, w)
    vision_compute_host = 0
    if vision_host:
        notes.append(
            f"--no-mmproj-offload: the vision encoder ({(wb_vis.bytes + wb_proj.bytes) / 2**30:.2f} GiB weights, "
            f"{compute_vis / 2**20:.0f} MiB compute buffer) runs from system RAM, on the CPU."
        )
        vision_compute_host, compute_vis = compute_vis, 0

    info = gpu_info(gpu, w.headless, w.reserve_bytes)
    if w.reserve_bytes:
        notes.append(f"{w.reserve_bytes // MiB} MiB of each GPU held by other programs (--reserve, or in use per NVML for --gpu local).")
    if info.reserved_bytes - w.reserve_bytes and not gpu.unified_memory:
        display = info.reserved_bytes - w.reserve_bytes
        notes.append(f"{display // MiB} MiB kept back for the desktop display (a guess; --headless if this GPU drives no display).")
    pc = _param_count(parts, fixed, weights is not None, catalog)
    return Accounting(
        inputs=Inputs(
            model=model.id,
            model_name=model.name,
            model_kind=kind,
            llm=llm.id if llm else None,
            encoder=enc.id if enc else None,
            gpu=gpu.id,
            gpu_name=gpu.name,
            runtime=rt.name,
            quant=quant,
            vision_quant=vq,
            text_tokens=text,
            images=n_images,
            image_size=size,
            image_tokens_per_image=tok_per_image,
            context_tokens=ctx,
            batch=w.batch,
            kv_cache=w.kv_cache if w.k_type == w.v_type else f"{w.k_type}/{w.v_type}",
            flash_attention=w.flash_attention,
            n_ubatch=w.n_ubatch,
            headless=w.headless,
        ),
        params=Params(llm=pc.llm, vision=pc.vision, projector=pc.projector),
        memory=Memory(
            weights_bytes=ComponentBytes(llm=wb_llm.bytes, vision=wb_vis.bytes, projector=wb_proj.bytes),
            weights_host_bytes=host,
            weights_bits_per_weight=round(wb_llm.bits_per_weight, 3),
            weights_by_type=dict(sorted(wb_llm.by_type.items(), key=lambda kv_: -kv_[1])),
            kv_cache_bytes=kv,
            kv_cache_cells=cells,
            compute_bytes=ComponentBytes(llm=compute_llm, vision=compute_vis),
            overhead_bytes=rt.overhead_bytes(gpu),
        ),
        notes=notes,
        weights=FixedWeights(llm=wb_llm, vision=wb_vis if enc else None, projector=wb_proj if parts.projector else None),
        encoder_crops=crops,
        encoder_patches=patches,
        vision_compute_host=vision_compute_host,
        projector_params=sum(t.numel for t in parts.projector),
    )


def _param_count(parts: Parts, fixed: FixedWeights, given: bool, catalog: Catalog | None) -> ParamCount:
    """Derived counts; exact counts of a file's tensors where given."""
    complete = fixed.llm is not None and (
        parts.encoder is None or (fixed.vision is not None and (fixed.projector is not None or not parts.projector))
    )
    if complete:
        assert fixed.llm is not None
        return ParamCount(
            llm=fixed.llm.params,
            vision=fixed.vision.params if fixed.vision else 0,
            projector=fixed.projector.params if fixed.projector else 0,
        )
    pc = count_params(parts.model, catalog) if parts.kind != "encoder" else count_params(parts.encoder)  # type: ignore[arg-type]
    if given:
        pc = ParamCount(
            llm=fixed.llm.params if fixed.llm else pc.llm,
            vision=fixed.vision.params if fixed.vision else pc.vision,
            projector=fixed.projector.params if fixed.projector else pc.projector,
        )
    return pc


def _requant(weights: FixedWeights | None, update: dict[str, object]) -> FixedWeights | None:
    """A suggestion that changes the LLM precision drops the fixed LLM weights (a file has one)."""
    if weights is None or "quant" not in update:
        return weights
    return FixedWeights(llm=None, vision=weights.vision, projector=weights.projector)


def estimate(
    model: Model,
    gpu: GpuSpec | list[GpuSpec],
    workload: Workload | None = None,
    catalog: Catalog | None = None,
    weights: FixedWeights | None = None,
    notes: list[str] | None = None,
    with_suggestions: bool = True,
) -> Estimate:
    """Memory, placement, verdict and speed of running ``model`` on ``gpu`` under ``workload``.

    Args:
        model: an LLM, a VLM, or a vision encoder on its own (image embedding).
        gpu: the GPU, or a list of GPUs (a layer split; the first one is the main GPU).
        workload: runtime, precision, context, images, batch; defaults if None.
        catalog: where a VLM's encoder and LLM ids are looked up (required for a VLM).
        weights: exact weights of some parts (a GGUF file's tensors), used instead of derived ones.
        notes: what the input stage has to say (e.g. where a file's weights came from), shown first.
        with_suggestions: False skips the search for changes that make it fit (``fit`` shows none).
    """
    w = workload or Workload()
    rt = runtimes.get(w.runtime)
    gpus = list(gpu) if isinstance(gpu, (list, tuple)) else [gpu]
    _check_llama_options(rt, w)
    gpus = _split_mode_gpus(gpus, w)
    own = getattr(rt, "estimate_own", None)  # optional hook: a serving runtime's own accounting (runtimes/serving.py)
    if own is not None:
        return own(model, gpus, w, catalog, weights, notes)  # type: ignore[no-any-return]
    main = gpus[0]
    parts = model_parts(model, catalog)
    acc = account(parts, main, w, rt, weights, catalog)
    info = gpu_info(main, w.headless, w.reserve_bytes)
    llm, enc = parts.llm, parts.encoder

    def headroom_at(text: int) -> bool:  # only the context changes: the weights are the ones accounted
        a = account(parts, main, w.with_(context_tokens=text), rt, acc.weights, catalog)
        return info.usable_bytes - a.memory.total_bytes >= 0

    def memory_for(update: dict[str, object]) -> tuple[int, Verdict]:
        changed = w.with_(**update)
        a = account(parts, main, changed, rt, _requant(acc.weights, update), catalog)
        if llm is not None and w.expert_overrides and _llama_like(rt) and rt.places_layers(len(gpus)):
            return _split_memory(llm, gpus, changed, rt, a, experts=True)  # the user's experts stay in RAM under the change
        if len(gpus) > 1 and llm is not None and rt.places_layers(len(gpus)):
            return _split_memory(llm, gpus, changed, rt, a)
        return a.memory.total_bytes, verdict_for(
            gpu_info(main, changed.headless, changed.reserve_bytes).usable_bytes - a.memory.total_bytes, rt
        )

    i, m = acc.inputs, acc.memory
    single_ctx = max_context(llm.max_context, i.context_tokens - i.text_tokens, headroom_at) if llm is not None else None

    # --- placement (layers over GPUs and system RAM)
    dev = devices_for(gpus, w)
    offload = placement = lb = None
    if llm is not None:
        lb = llm_bytes(llm, rt, i.quant, w.k_type, w.v_type)
        cells, swa_cells = kv_cells(llm, i.context_tokens, w, rt)
        fixed = _fixed(acc, rt, w)
        if rt.places_layers(len(gpus)):
            quant, n_gpus = i.quant, len(gpus)

            def moves(n: int | None) -> tuple[Moved, ...]:
                assert llm is not None
                return moved_bytes(llm, rt, quant, w, n_gpus, n)

            if _llama_like(rt):
                offload, placement = place_layers(lb, dev, w, cells, swa_cells, fixed, moves)
            else:  # no tensor rules and no llama.cpp --fit in other runtimes' placements
                offload, placement = place_layers(lb, dev, w.with_(fit=False), cells, swa_cells, fixed)
        else:
            placement = Placement((0,) * llm.num_layers, 0, llm.num_layers + 1)

    # --- speed over the placement; a labelled FP16 rate for a card without a published one (matrix_rate)
    speed_gpus: list[GpuSpec] = list(gpus)
    rate_estimates: tuple[RateEstimate, ...] = ()
    if catalog is not None:
        from vramcalc.matrix_rate import with_estimated_rates

        speed_gpus, rate_estimates = with_estimated_rates(list(gpus), catalog)
    s = SpeedInputs(
        kind=i.model_kind,
        runtime=rt,
        quant=i.quant,
        context_tokens=i.context_tokens,
        images=i.images,
        image_tokens_per_image=i.image_tokens_per_image,
        encoder_crops=acc.encoder_crops,
        encoder_patches=acc.encoder_patches,
        batch=1 if i.model_kind == "encoder" else i.batch,
        image_batch=w.batch,
        n_ubatch=i.n_ubatch,
        projector_params=acc.projector_params,
        backend=w.backend,
        depth=w.depth,
        rate_estimates=rate_estimates,
    )
    thr, speed_notes = throughput(llm, enc, speed_gpus, s, lb, placement, dev.ram_bw)

    # --- expert offload as a suggestion (MoE under llama.cpp), before a lower precision
    experts = None
    if (
        llm is not None
        and llm.moe
        and lb is not None
        and offload is not None
        and _llama_like(rt)
        and not offload.cpu_moved_bytes
        and not w.expert_overrides
    ):
        lb_, fixed_, cells_, swa_ = lb, fixed, cells, swa_cells
        quant_, n_gpus_ = i.quant, len(gpus)

        def experts() -> Suggestion | None:
            w2 = w.with_(fit=True, gpu_layers=None, offload="auto")
            off2, _ = place_layers(lb_, dev, w2, cells_, swa_, fixed_, lambda n: moved_bytes(llm, rt, quant_, w2, n_gpus_, n))
            if not off2.cpu_moved_bytes or off2.gpu_layers < off2.total_layers or off2.fits_in_ram is False:
                return None
            n = off2.n_cpu_moe or 0
            flags = ["--n-cpu-moe", str(n)]
            if n_gpus_ > 1 and w.tensor_split is None:  # the layer counts per GPU the placement chose
                flags += ["--tensor-split", ",".join(str(d.layers + (1 if d.output_layer else 0)) for d in off2.gpus)]
            return Suggestion(
                change=f"keep the experts of {n} layers in system RAM (same weights, slower decode)",
                flags=flags,
                total_bytes=off2.gpus[0].total_bytes,
                verdict="offload",
            )

    # --- the verdict, decided once
    split_ctx = None
    if llm is not None and lb is not None:

        def split_ctx(off):  # noqa: ANN001, ANN202
            return split_max_context(llm, lb, off, m.kv_cache_cells, i.batch, single_ctx)

    alternatives: list[Suggestion] = []
    d = decide(
        m,
        info,
        rt,
        len(gpus),
        offload,
        [*acc.notes, *speed_notes],
        single_ctx,
        lambda: (
            None
            if not with_suggestions or (w.expert_overrides and memory_for({})[1] == "fits")  # runs as placed
            else _first(
                alternatives,
                suggestions(
                    main,
                    w,
                    rt,
                    llm is not None,
                    i.quant,
                    i.text_tokens,
                    i.context_tokens,
                    single_ctx,
                    memory_for,
                    vision=enc is not None and llm is not None,
                    experts=experts,
                ),
            )
        ),
        split_ctx,
        decode_label(offload, thr),
    )
    fit_ctx = _llama_fit_context(parts, main, w, rt, acc, catalog, dev.usable) if llm is not None else None
    return Estimate(
        inputs=i,
        params=acc.params,
        memory=m,
        gpu=info,
        verdict=d.verdict,
        headroom_bytes=d.headroom_bytes,
        max_context_tokens=d.max_context_tokens,
        suggestion=d.suggestion,
        notes=[*(notes or []), *d.notes],
        throughput=thr,
        offload=offload,
        llama_server=_server_command(rt, model, i, w, offload, gpus),
        llama_fit_context_tokens=fit_ctx,
        alternatives=alternatives if d.suggestion is not None else [],
    )


def _first(rest: list[Suggestion], found: list[Suggestion]) -> Suggestion | None:
    """The first suggestion; the others go to ``rest`` (Estimate.alternatives)."""
    rest[:] = found[1:]
    return found[0] if found else None


def _fixed(acc: Accounting, rt: Runtime, w: Workload) -> Fixed:
    """What each GPU holds whatever the layer split, from the accounting. --no-mmproj-offload: the
    accounting left the vision tower and its compute buffer out of the GPU total; the CPU share holds them."""
    m = acc.memory
    return Fixed(
        compute_llm=m.compute_bytes.llm,
        compute_vis=m.compute_bytes.vision if w.mmproj_offload else acc.vision_compute_host,
        vision_weights=m.weights_bytes.vision + m.weights_bytes.projector,
        overhead=m.overhead_bytes,
        embd_on_cpu=rt.embeddings_on_host,
        vision_on_cpu=not w.mmproj_offload,
        n_seq=w.batch,
    )


def _split_memory(llm: LlmSpec, gpus: list[GpuSpec], w: Workload, rt: Runtime, a: Accounting, experts: bool = False) -> tuple[int, Verdict]:
    """(bytes on the GPUs, verdict) of a layer split under workload ``w`` (a suggestion's change).

    ``experts``: with the user's expert placement (--cpu-moe, --n-cpu-moe, -ot) kept: a suggestion's flags are
    added to the user's, so its figure is what the combined command places on the GPUs. Experts in system RAM as
    asked are not an offload here; layers are."""
    i = a.inputs
    lb = llm_bytes(llm, rt, i.quant, w.k_type, w.v_type)
    cells, swa_cells = kv_cells(llm, i.context_tokens, w, rt)
    n_gpus = len(gpus)
    moves = (lambda n: moved_bytes(llm, rt, i.quant, w, n_gpus, n)) if experts else None
    off, _ = place_layers(lb, devices_for(gpus, w), w.with_(fit=False), cells, swa_cells, _fixed(a, rt, w), moves)
    on_gpu = sum(d.total_bytes for d in off.gpus)
    if experts and off.fits_in_ram is False:
        return on_gpu, "no"
    if off.cpu.layers or off.cpu.output_layer:
        return on_gpu, "offload"
    return on_gpu, verdict_for(off.min_gpu_headroom, rt)


#: llama.cpp --fit-ctx default: --fit does not lower the context below this (common/common.h fit_params_min_ctx).
FIT_MIN_CTX = 4096


def _llama_fit_context(
    parts: Parts, main: GpuSpec, w: Workload, rt: Runtime, acc: Accounting, catalog: Catalog | None, usable: tuple[int, ...]
) -> int | None:
    """The context per sequence llama-server would pick without -c (llama.cpp --fit on, common/fit.cpp
    step 2): the model's training context when the model, KV and buffers of all devices leave
    --fit-target free on each; else fit.cpp's linear interpolation of the memory between the training
    context and 4096 (--fit-ctx), rounded down to 256, never below 4096 (then --fit moves layers or
    experts instead). None when the runtime has no such fit or --fit off."""
    llm = parts.llm
    if llm is None or not w.fit or not _llama_like(rt):
        return None
    n = len(usable)
    budget = sum(usable) - n * w.fit_target_bytes
    images = acc.inputs.context_tokens - acc.inputs.text_tokens

    def used(ctx: int) -> int:
        m = account(parts, main, w.with_(context_tokens=max(ctx - images, 1)), rt, acc.weights, catalog).memory
        return m.total_bytes + (n - 1) * (m.compute_bytes.llm + m.overhead_bytes)

    hi, lo = max(llm.max_context, FIT_MIN_CTX), FIT_MIN_CTX
    used_hi = used(hi)
    if used_hi <= budget or hi == lo:
        return hi
    used_lo = used(lo)
    if used_lo >= budget:
        return lo
    ctx = lo + (hi - lo) * (budget - used_lo) // (used_hi - used_lo)
    return max(ctx - ctx % 256, lo)


def _llama_like(rt: Runtime) -> bool:
    """The runtime takes llama.cpp's placement options (tensor rules, --fit, split modes): it has a
    llama-server command line (runtimes/llamacpp.py ``server_command``)."""
    return getattr(rt, "server_command", None) is not None


LLAMA_ONLY = ("n_cpu_moe", "cpu_moe", "override_tensor", "tensor_split", "cache_type_k", "cache_type_v", "kv_unified")


def _check_llama_options(rt: Runtime, w: Workload) -> None:
    """llama.cpp's placement options are refused for a runtime that has none of them."""
    from vramcalc.errors import InputError

    if _llama_like(rt):
        return
    given = [name for name in LLAMA_ONLY if getattr(w, name)]
    if w.split_mode != "layer" or w.main_gpu or not w.mmproj_offload:
        given.append("split_mode/main_gpu/mmproj_offload")
    if given:
        raise InputError(f"{', '.join(given)}: llama.cpp options, not available with --runtime {rt.name}.")


def _split_mode_gpus(gpus: list[GpuSpec], w: Workload) -> list[GpuSpec]:
    """llama.cpp -sm none: the model on the main GPU (-mg) only; -sm row: refused where llama.cpp
    itself cannot run it (placement.py ``row_split_refusal``: every GPU backend at 0c1e57098)."""
    from vramcalc.errors import InputError

    if w.main_gpu >= len(gpus):
        raise InputError(f"--main-gpu {w.main_gpu}: only {len(gpus)} GPU(s) given (0 .. {len(gpus) - 1}).")
    if w.split_mode == "row":
        from vramcalc.placement import row_split_refusal
        from vramcalc.speed import backend_for

        why = row_split_refusal([backend_for(g, w.backend) for g in gpus])
        if why is not None:
            raise InputError(why)
    if w.split_mode == "none":
        return [gpus[w.main_gpu]]
    return gpus


def _server_command(rt: Runtime, model: Model, i: Inputs, w: Workload, off: Offload | None, gpus: list[GpuSpec]) -> list[str] | None:
    """The llama-server command line reproducing this answer (runtimes that have one)."""
    make = getattr(rt, "server_command", None)
    if make is None or i.llm is None:
        return None
    return make(model, i, w, off, len(gpus))
