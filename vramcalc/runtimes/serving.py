"""What the serving runtimes (vLLM, SGLang; MLX for its weights) share: weights per GPU under
tensor and pipeline parallelism, KV bytes per token per GPU, and the plumbing that turns a
runtime's own accounting into an :class:`~vramcalc.results.Estimate`.

A serving runtime provides the optional hook ``serve(model, parts, gpus, w, catalog)`` (see
``runtimes.Runtime``); ``estimate.estimate()`` delegates to ``rt.estimate_own`` when a runtime has
it, so llama.cpp and transformers are untouched.

Sharding (vLLM ``model_executor/layers/linear.py`` ColumnParallelLinear / RowParallelLinear /
QKVParallelLinear, ``vocab_parallel_embedding.py`` VocabParallelEmbedding / ParallelLMHead;
SGLang copies the same layers in ``srt/layers/``):
- q, o, gate/up/down and expert weights are split over the TP ranks;
- k and v hold ``max(1, kv_heads / tp)`` heads per rank (QKVParallelLinear replicates KV heads
  when tp > kv_heads);
- embedding and LM head are split by vocabulary, padded to a multiple of 64
  (``DEFAULT_VOCAB_PADDING_SIZE``); norms, the MoE router and MLA's down-projections
  (``ReplicatedLinear``) are replicated;
- pipeline stages take ``num_layers // pp`` layers, the remainder going to the stages before the
  last (``distributed/utils.py get_pp_indices``); the embedding sits on the first stage, the final
  norm and LM head on the last (a tied head is a second copy there when pp > 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramcalc.errors import InputError
from vramcalc.params import Tensor, llm_tensors
from vramcalc.quant import torch_weight_bytes
from vramcalc.units import GiB

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.results import Estimate, GpuInfo, Workload
    from vramcalc.schema import GpuSpec, LlmSpec

#: vLLM DEFAULT_VOCAB_PADDING_SIZE (model_executor/layers/vocab_parallel_embedding.py).
VOCAB_PADDING = 64
#: MXFP4 (OCP microscaling): 4-bit E2M1 values + one 8-bit E8M0 scale per 32 = 4.25 bits per weight
#: (gpt-oss checkpoints store the MoE experts so; attention, embeddings and head stay bf16).
MXFP4_BITS = 4 + 8 / 32


def pad(n: int, to: int) -> int:
    return -(-n // to) * to


def pp_layers(num_layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage, as vLLM ``get_pp_indices`` splits them (remainder to the stages
    before the last)."""
    parts = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        parts[-i] += 1
    return parts


def tensor_bytes(t: Tensor, fmt: str) -> int:
    """Bytes of one whole (unsharded) tensor at a serving precision (vocab padding excluded)."""
    if fmt == "mxfp4":
        if t.role.endswith("_exps") and t.ndim >= 2:
            return int(t.numel * MXFP4_BITS / 8)
        return 2 * t.numel
    return torch_weight_bytes((t,), fmt).bytes


def shard_fraction(t: Tensor, llm: LlmSpec, tp: int) -> float:
    """Share of tensor ``t`` one TP rank holds."""
    role = t.role
    if tp == 1:
        return 1.0
    if role in ("token_embd", "output"):
        return pad(llm.vocab_size, VOCAB_PADDING * tp) / tp / llm.vocab_size
    if t.ndim < 2 or role in ("ffn_gate_inp", "attn_q_a", "attn_kv_a_mqa"):
        return 1.0  # norms, biases, router, MLA down-projections: replicated
    if role in ("attn_k", "attn_v"):
        return max(1, llm.num_kv_heads // tp) / llm.num_kv_heads
    if role == "attn_qkv":
        hd, nq, nkv = llm.head_dim_, llm.num_heads, llm.num_kv_heads
        return (nq * hd / tp + 2 * max(1, nkv // tp) * hd) / ((nq + 2 * nkv) * hd)
    return 1.0 / tp


def stage_weight_bytes(llm: LlmSpec, fmt: str, tp: int, pp: int) -> list[int]:
    """Weights on one GPU of each pipeline stage."""
    layers = pp_layers(llm.num_layers, pp)
    bounds, start = [], 0
    for n in layers:
        bounds.append((start, start + n))
        start += n
    out = [0.0] * pp
    for t in llm_tensors(llm):
        b = tensor_bytes(t, fmt) * shard_fraction(t, llm, tp)
        if t.layer is not None:
            stage = next(i for i, (lo, hi) in enumerate(bounds) if lo <= t.layer < hi)
            out[stage] += b
        elif t.role == "token_embd":
            out[0] += b
            if llm.tied_embeddings and pp > 1:
                out[-1] += b
        else:  # output norm, LM head
            out[-1] += b
    return [int(x) for x in out]


def kv_per_token(llm: LlmSpec, layers: int, tp: int, elem_bytes: int) -> tuple[int, int]:
    """(K, V) bytes per token on one TP rank for ``layers`` layers. GQA: ``max(1, kv_heads / tp)``
    heads per rank; MLA (DeepSeek-V2/V3): one latent of kv_lora_rank + rope dims, the same on every
    rank (vLLM MLAAttention, SGLang MLATokenToKVPool), counted as K."""
    if llm.mla:
        return layers * (llm.mla.kv_lora_rank + llm.mla.qk_rope_head_dim) * elem_bytes, 0
    per = max(1, llm.num_kv_heads // tp) * llm.head_dim_ * elem_bytes * layers
    return per, per


def gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB"


# ---------------------------------------------------------------------------------------------
# Calibration (data/calibration.yaml, section ``serving``)


def serving_calibration() -> dict[str, Any]:
    """The ``serving`` section of data/calibration.yaml (fitted constants with what they were fitted on)."""
    from vramcalc.speed import calibration

    return calibration()["serving"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# Speed: the roofline with the PyTorch-kernel factors (no vLLM/SGLang timing rows to fit on)


def active_stage_bytes(llm: LlmSpec, fmt: str, tp: int, pp: int, concurrency: int) -> list[float]:
    """Weight bytes one decode step reads per GPU of each stage: MoE experts only where some of
    ``concurrency`` tokens route (expected distinct experts n(1 - (1 - k/n)^c)); embeddings one row."""
    layers = pp_layers(llm.num_layers, pp)
    bounds, start = [], 0
    for n in layers:
        bounds.append((start, start + n))
        start += n
    out = [0.0] * pp
    frac = 1.0
    if llm.moe:
        n, k = llm.moe.num_experts, llm.moe.experts_per_token
        frac = min(1.0, (1 - (1 - k / n) ** concurrency))
    for t in llm_tensors(llm):
        if t.role == "token_embd" and not llm.tied_embeddings:
            continue  # one row per token
        b = tensor_bytes(t, fmt) * shard_fraction(t, llm, tp) * (frac if t.role.endswith("_exps") else 1.0)
        if t.layer is not None:
            out[next(i for i, (lo, hi) in enumerate(bounds) if lo <= t.layer < hi)] += b
        else:
            out[-1] += b
    return out


def active_params(llm: LlmSpec) -> int:
    """Parameters one token multiplies by (MoE: the routed experts only)."""
    total = 0
    for t in llm_tensors(llm):
        if t.role == "token_embd" and not llm.tied_embeddings:
            continue
        if t.role.endswith("_exps") and llm.moe:
            total += t.numel * llm.moe.experts_per_token // llm.moe.num_experts
        else:
            total += t.numel
    return total


# ---------------------------------------------------------------------------------------------
# The plumbing shared by vLLM and SGLang: a runtime's own accounting -> Estimate


class ServingRuntime:
    """Mixin of vLLM and SGLang: ``estimate_own`` is the hook ``estimate.estimate()`` delegates to.

    The runtime class provides ``setup``, ``stages``, ``start_error``, ``command``, ``describe``,
    ``cuda_graph_bytes``, ``version``, ``block_size`` and the flag names.
    """

    name: str
    version: str
    block_size: int
    fraction_flag: str
    len_flag: str
    seqs_flag: str
    tp_flag: str
    #: Serving runtimes do not place layers in system RAM, nor split layers the llama.cpp way.
    offloads_layers: bool = False

    def places_layers(self, n_gpus: int) -> bool:
        return False

    #: Exact weights / derived weights of the checkpoint being estimated (a file's headers); 1 = derived.
    _scale: float = 1.0

    def _run(self, llm: LlmSpec, gpu: Any, n_gpus: int, opts: Any, precision: str) -> tuple[Any, list[Any]]:
        from dataclasses import replace

        s = self.setup(llm, gpu, n_gpus, opts, llm.dtype)  # type: ignore[attr-defined]
        if llm.num_heads % s.tp:
            raise InputError(f"Total number of attention heads ({llm.num_heads}) must be divisible by tensor parallel size ({s.tp}).")
        if s.pp > llm.num_layers:
            raise InputError(f"Pipeline parallel size {s.pp} exceeds the model's {llm.num_layers} layers.")
        stages = self.stages(llm, precision, s)  # type: ignore[attr-defined]
        if self._scale != 1.0:  # weights read from the checkpoint: the same split, the exact total
            out = []
            for g in stages:
                extra = int(g.weights_bytes * (self._scale - 1))
                kv = g.kv_cache_bytes - extra
                step = self.block_size * g.kv_bytes_per_token
                out.append(
                    replace(
                        g, weights_bytes=g.weights_bytes + extra, kv_cache_bytes=kv, kv_cache_tokens=max(0, kv) // step * self.block_size
                    )
                )
            stages = out
        return s, stages

    #: The runtime refuses to start unless one request of max_model_len fits (vLLM); SGLang only needs a token.
    needs_full_request: bool = True

    def _starts(self, s: Any, stages: list[Any]) -> bool:
        need = s.max_model_len if self.needs_full_request else 1
        return all(g.kv_cache_bytes > 0 and g.kv_cache_bytes >= need * g.kv_bytes_per_token for g in stages)

    def estimate_own(
        self, model: Any, gpus: list[GpuSpec], w: Workload, catalog: Catalog | None, weights: Any = None, notes: list[str] | None = None
    ) -> Estimate:
        """The whole estimate by this runtime's rules (the optional ``Runtime.estimate_own`` hook)."""
        from vramcalc.estimate import model_parts
        from vramcalc.results import ServingOptions

        parts = model_parts(model, catalog)
        llm = parts.llm
        if llm is None:
            raise InputError(f"{self.name} serves LLMs and VLMs; a vision encoder alone is a transformers or llama.cpp workload.")
        if len({g.id for g in gpus}) > 1:
            raise InputError(f"{self.name} runs one kind of GPU per server (tensor parallelism); got {', '.join(g.id for g in gpus)}.")
        gpu = gpus[0]
        if gpu.vendor == "apple":
            raise InputError(f"{self.name} runs on NVIDIA/AMD GPUs, not Apple silicon; use --runtime mlx.")
        opts = w.serving or ServingOptions()
        n_node = len(gpus)
        precision = self.normalize_precision(w.quant or llm.dtype)  # type: ignore[attr-defined]
        out_notes: list[str] = []
        fixed = getattr(weights, "llm", None)
        self._scale = 1.0
        if fixed is not None and fixed.bytes:
            derived = sum(tensor_bytes(t, precision) for t in llm_tensors(llm))
            self._scale = fixed.bytes / derived
            out_notes.append(
                f"Weights read from the checkpoint ({gib(fixed.bytes)} in all, {fixed.precision}), split over the GPUs by the "
                f"sharding rules of {precision} ({self._scale:.3f} x the derived size)."
            )
        try:
            return self._estimate(model, parts, llm, gpu, opts, n_node, precision, w, catalog, notes, out_notes)
        finally:
            self._scale = 1.0

    def _estimate(
        self,
        model: Any,
        parts: Any,
        llm: LlmSpec,
        gpu: GpuSpec,
        opts: Any,
        n_node: int,
        precision: str,
        w: Workload,
        catalog: Catalog | None,
        notes: list[str] | None,
        out_notes: list[str],
    ) -> Estimate:
        from dataclasses import replace

        from vramcalc.params import count_params, encoder_tensors
        from vramcalc.results import ComponentBytes, Estimate, Inputs, Memory, Params, ServingAnswer, Suggestion

        s, stages = self._run(llm, gpu, n_node, opts, precision)
        if s.tp * s.pp > n_node * opts.nodes:
            raise InputError(
                f"{self.tp_flag} {s.tp} x pipeline {s.pp} = {s.tp * s.pp} GPUs, but {opts.nodes} node(s) x {n_node} GPU(s) were given."
            )
        if s.tp > n_node:
            raise InputError(f"tensor parallelism stays inside a node: {self.tp_flag} {s.tp} > {n_node} GPUs per node.")
        vis_bytes = 0
        if parts.encoder is not None:
            vq = "bf16" if precision not in ("fp16",) else "fp16"
            vis_bytes = sum(tensor_bytes(t, vq) for t in (*encoder_tensors(parts.encoder), *parts.projector))
            stages = [
                replace(stages[0], weights_bytes=stages[0].weights_bytes + vis_bytes, kv_cache_bytes=stages[0].kv_cache_bytes - vis_bytes),
                *stages[1:],
            ]
            stages = [
                replace(g, kv_cache_tokens=max(0, g.kv_cache_bytes) // (self.block_size * g.kv_bytes_per_token) * self.block_size)
                for g in stages
            ]
            out_notes.append(
                f"Vision encoder + projector ({gib(vis_bytes)}) counted whole on each GPU of the first stage; the encoder's "
                "profile run (largest image --limit-mm-per-prompt allows) is not modelled."
            )
        starts = self._starts(s, stages)
        tight = min(stages, key=lambda g: g.kv_cache_tokens)
        est_len = min(max(0, g.kv_cache_bytes) // g.kv_bytes_per_token for g in stages)
        error = None if starts else self.start_error(s, tight, est_len)  # type: ignore[attr-defined]
        concurrency = tight.kv_cache_tokens / s.max_model_len

        smallest = None
        t = 1
        while t <= n_node:
            if llm.num_heads % t == 0:
                try:
                    s2, st2 = self._run(llm, gpu, n_node, replace(opts, tensor_parallel=t), precision)
                except InputError:
                    st2 = []
                if st2 and self._starts(s2, st2):
                    smallest = t
                    break
            t *= 2

        lower: list[str] = []
        sugg = None
        if not starts:
            if est_len > 0:
                lower.append(f"{self.len_flag} {est_len} (the longest request the KV pool holds)")
            need = max(
                (g.weights_bytes + g.non_torch_bytes + g.activation_bytes + s.max_model_len * g.kv_bytes_per_token) / s.total
                for g in stages
            )
            if need <= 0.98:
                lower.append(f"{self.fraction_flag} {min(0.98, need + 0.005):.2f}")
            if s.kv_elem == 2:
                _, st_fp8 = self._run(llm, gpu, n_node, replace(opts, kv_cache_dtype="fp8"), precision)
                if self._starts(s, st_fp8):
                    lower.append("--kv-cache-dtype fp8")
            if smallest is not None and smallest > s.tp:
                lower.append(f"{self.tp_flag} {smallest}")
            lower += self._alternatives(llm, gpu, n_node, opts, precision, est_len)
            if est_len > 0:
                sugg = Suggestion(
                    change=f"lower the maximum request length to {est_len} tokens",
                    flags=[self.len_flag, str(est_len)],
                    total_bytes=tight.usable_bytes,
                    verdict="fits",
                )
        graphs = self.cuda_graph_bytes(s)  # type: ignore[attr-defined]
        outside = int(s.total * (1 - s.fraction))
        if graphs and graphs > outside:
            out_notes.append(
                f"CUDA graphs (about {gib(graphs)}) are captured outside the {s.fraction:g} share, which leaves {gib(outside)}: "
                f"capture may run out of memory (lower {self.fraction_flag} or --enforce-eager)."
            )
        out_notes += self.describe(s, tight)  # type: ignore[attr-defined]
        if llm.sliding_window:
            out_notes.append(
                "Sliding-window layers are counted as full attention (the hybrid KV manager frees blocks outside the window): "
                "the token capacity shown is a lower bound."
            )
        if s.pp > 1:
            out_notes.append(
                "Pipeline stages: "
                + "; ".join(
                    f"stage {g.stage}: {g.layers} layers, weights {gib(g.weights_bytes)}, KV {g.kv_cache_tokens:,} tokens" for g in stages
                )
                + ". The pool is the smallest stage's."
            )
        model_id = hub_repo(model)
        cmd = self.command(model_id, precision, s, opts)  # type: ignore[attr-defined]

        conc = opts.concurrency or max(1, min(s.max_num_seqs, int(concurrency)))
        ctx = min(w.context_tokens or 4096, s.max_model_len)
        speeds, thr = self.speeds(llm, gpu, precision, s, stages, conc, ctx)
        ans = ServingAnswer(
            runtime_version=self.version,
            starts=starts,
            error=error,
            lower=lower,
            tensor_parallel=s.tp,
            pipeline_parallel=s.pp,
            memory_fraction=s.fraction,
            max_model_len=s.max_model_len,
            max_num_seqs=s.max_num_seqs,
            max_num_batched_tokens=s.max_num_batched_tokens,
            kv_cache_dtype=s.kv_name,
            block_size=self.block_size,
            kv_cache_tokens=tight.kv_cache_tokens,
            max_concurrency=round(concurrency, 2),
            k_cache_bytes=tight.kv_cache_tokens * (tight.kv_bytes_per_token - self._v_per_token(llm, tight, s)),
            v_cache_bytes=tight.kv_cache_tokens * self._v_per_token(llm, tight, s),
            cuda_graph_bytes=graphs,
            smallest_tp=smallest,
            command=cmd,
            gpus=stages,
            speeds=speeds,
            concurrency=conc,
            notes=out_notes,
        )
        pc = count_params(model, catalog) if parts.kind == "vlm" else count_params(llm)
        head = min(g.kv_cache_bytes - s.max_model_len * g.kv_bytes_per_token for g in stages)
        info = gpu_info_for(gpu, s.total, s.fraction)
        return Estimate(
            inputs=Inputs(
                model=model.id,
                model_name=model.name,
                model_kind=parts.kind,
                llm=llm.id,
                encoder=parts.encoder.id if parts.encoder else None,
                gpu=gpu.id,
                gpu_name=gpu.name,
                runtime=self.name,
                quant=precision,
                vision_quant=None,
                text_tokens=s.max_model_len,
                images=opts.mm_items or 0,
                image_size=None,
                image_tokens_per_image=0,
                context_tokens=s.max_model_len,
                batch=s.max_num_seqs,
                kv_cache=s.kv_name,
                flash_attention=True,
                n_ubatch=s.max_num_batched_tokens,
                headless=True,
            ),
            params=Params(llm=pc.llm, vision=pc.vision, projector=pc.projector),
            memory=Memory(
                weights_bytes=ComponentBytes(
                    llm=tight.weights_bytes - vis_bytes * (tight.stage == 0), vision=vis_bytes * (tight.stage == 0)
                ),
                weights_host_bytes=0,
                weights_bits_per_weight=0.0,
                weights_by_type={},
                kv_cache_bytes=max(0, tight.kv_cache_bytes),
                kv_cache_cells=tight.kv_cache_tokens,
                compute_bytes=ComponentBytes(llm=tight.activation_bytes),
                overhead_bytes=tight.non_torch_bytes,
            ),
            gpu=info,
            verdict=("tight" if graphs > outside else "fits") if starts else "no",
            headroom_bytes=head,
            max_context_tokens=min(est_len, llm.max_context) if est_len > 0 else None,
            suggestion=sugg,
            notes=[*(notes or []), *([error] if error else []), *out_notes],
            throughput=thr,
            offload=None,
            serving=ans,
        )

    def _alternatives(self, llm: LlmSpec, gpu: GpuSpec, n_node: int, opts: Any, precision: str, est_len: int) -> list[str]:
        """Settings that make room for longer requests: a larger share, fewer sequences in the profile
        run (a smaller sampler peak), an fp8 KV cache; each with the longest request it then holds."""
        from dataclasses import replace

        out = []
        steps: list[tuple[str, dict[str, Any]]] = []
        if (opts.memory_fraction or 0.9) < 0.95:
            steps.append((f"{self.fraction_flag} 0.95", {"memory_fraction": 0.95}))
        if self.needs_full_request and (opts.max_num_seqs or 256) > 64:
            steps.append((f"{self.seqs_flag} 64", {"max_num_seqs": 64}))
        if opts.kv_cache_dtype != "fp8":
            steps.append(("--kv-cache-dtype fp8", {"kv_cache_dtype": "fp8"}))
        flags: list[str] = []
        upd: dict[str, Any] = {}
        for flag, u in steps:
            flags.append(flag)
            upd.update(u)
            _, st = self._run(llm, gpu, n_node, replace(opts, **upd), precision)
            longest = min(max(0, g.kv_cache_bytes) // g.kv_bytes_per_token for g in st)
            if longest > est_len:
                out.append(f"{' '.join(flags)} {self.len_flag} {longest // 256 * 256 or longest}")
        return out

    def _v_per_token(self, llm: LlmSpec, g: Any, s: Any) -> int:
        return kv_per_token(llm, g.layers, s.tp, s.kv_elem)[1]

    def speeds(
        self, llm: LlmSpec, gpu: GpuSpec, precision: str, s: Any, stages: list[Any], conc: int, ctx: int
    ) -> tuple[dict[str, Any], Any]:
        """Decode per request and aggregate at ``conc`` requests of ``ctx`` tokens, prefill and TTFT."""
        import math

        from vramcalc.results import SpeedBasis, SpeedFigure, Throughput
        from vramcalc.speed import calibration, decode_factors, decode_time, peak_tflops, prefill_factors

        spread = calibration()["uncalibrated_spread_log"]
        fd, dkey, _ = decode_factors(self, gpu.backend, precision)  # type: ignore[arg-type]
        fp, pkey, _ = prefill_factors(self, gpu.backend, precision)  # type: ignore[arg-type]
        bw = gpu.memory_bandwidth_gbs

        def step(c: int) -> tuple[float, float]:
            w_bytes = active_stage_bytes(llm, precision, s.tp, s.pp, c)
            t = 0.0
            total = 0.0
            for g, wb in zip(stages, w_bytes, strict=True):
                b = wb + c * ctx * g.kv_bytes_per_token
                total += b
                t += decode_time(b, g.layers, bw, fd)
            return t, total

        def fig(v: float, unit: str, basis: SpeedBasis) -> SpeedFigure:
            k = math.exp(spread)
            return SpeedFigure(value=_r4(v), low=_r4(v / k), high=_r4(v * k), unit=unit, basis=basis)  # type: ignore[arg-type]

        t1, b1 = step(1)
        tc, bc = step(conc)
        basis = SpeedBasis(factors=f"{dkey} (uncalibrated for {self.name})", calibrated=False, bytes=int(b1), bandwidth_gbs=bw)
        per_req = fig(1 / t1, "tokens/s", basis)
        agg = fig(conc / tc, "tokens/s", replace_basis(basis, int(bc)))
        peak = peak_tflops(gpu)
        out = {"decode_per_request": per_req, "decode_aggregate": agg}
        thr = Throughput(decode_tokens_per_s=per_req, notes=[])
        if peak:
            flops = 2 * active_params(llm) * ctx / s.tp
            t_pf = flops / (fp["compute_efficiency"] * peak * 1e12)
            pb = SpeedBasis(factors=f"{pkey} (uncalibrated for {self.name})", calibrated=False, flops=int(flops), peak_tflops=peak)
            pf = fig(ctx / t_pf, "tokens/s", pb)
            ttft = fig(t_pf, "s", pb)
            out["prefill"] = pf
            out["ttft"] = ttft
            thr = Throughput(decode_tokens_per_s=per_req, prefill_tokens_per_s=pf, time_to_first_token_s=ttft, notes=[])
        notes = [
            f"Speeds: the roofline with the PyTorch-kernel factors ({dkey}); no {self.name} timings to calibrate on, so the band is "
            f"x/÷{math.exp(spread):.1f}. Decode at {ctx} tokens of context; TP all-reduce and PP bubbles are not modelled."
        ]
        return out, Throughput(
            decode_tokens_per_s=thr.decode_tokens_per_s,
            prefill_tokens_per_s=thr.prefill_tokens_per_s,
            time_to_first_token_s=thr.time_to_first_token_s,
            notes=notes,
        )


def _r4(x: float) -> float:
    return float(f"{x:.4g}")


def replace_basis(b: Any, nbytes: int) -> Any:
    from dataclasses import replace

    return replace(b, bytes=nbytes)


def gpu_info_for(gpu: GpuSpec, total: int, fraction: float) -> GpuInfo:
    """The GPU as a serving runtime sees it: usable = what it takes (total x fraction)."""
    from vramcalc.results import GpuInfo

    return GpuInfo(
        id=gpu.id,
        name=gpu.name,
        memory_bytes=gpu.memory_bytes,
        usable_bytes=int(total * fraction),
        unified_memory=gpu.unified_memory,
        memory_bandwidth_gbs=gpu.memory_bandwidth_gbs,
    )


def hub_repo(model: Any) -> str:
    """The Hugging Face repo a serving command names: the alias that is the catalog id spelled as a
    repo (Qwen/Qwen3-30B-A3B for qwen3-30b-a3b), else the first repo-shaped alias, else the id. An
    entry's aliases may list fine-tunes of the same architecture first (Qwen3-Coder-30B-A3B)."""
    model_id = str(model.id)
    repos = [str(a) for a in getattr(model, "aliases", []) if "/" in a]
    same = [a for a in repos if a.split("/")[-1].lower() == model_id.lower()]
    return (same or repos or [model_id])[0]
