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

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vramcalc.errors import InputError
from vramcalc.params import Tensor, llm_active_params, llm_tensors
from vramcalc.quant import torch_weight_bytes
from vramcalc.units import GiB

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.results import Estimate, GpuInfo, Inputs, ServingGpu, Workload
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


def layer_stages(num_layers: int, pp: int) -> list[int]:
    """The pipeline stage of each decoder layer (``pp_layers``' split, in order)."""
    return [i for i, n in enumerate(pp_layers(num_layers, pp)) for _ in range(n)]


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


def expert_pad_ratio(llm: LlmSpec, tp: int, pad_to: tuple[int, int]) -> float:
    """How much larger an MoE expert tensor is once the kernel pads hidden to a multiple of
    ``pad_to[0]`` and the per-rank expert intermediate to a multiple of ``pad_to[1]``."""
    if llm.moe is None or pad_to == (1, 1):
        return 1.0
    h, i = llm.hidden_size, llm.moe.expert_intermediate_size // tp
    return pad(h, pad_to[0]) * pad(i, pad_to[1]) / (h * i)


def stage_weight_bytes(llm: LlmSpec, fmt: str, tp: int, pp: int, expert_pad: tuple[int, int] = (1, 1)) -> list[int]:
    """Weights on one GPU of each pipeline stage. ``expert_pad``: the (hidden, intermediate) multiples a
    runtime's MoE kernel pads expert weights to (vLLM's MXFP4 Marlin path); (1, 1) = none."""
    ratio = expert_pad_ratio(llm, tp, expert_pad)
    stage_of = layer_stages(llm.num_layers, pp)
    out = [0.0] * pp
    for t in llm_tensors(llm):
        b = tensor_bytes(t, fmt) * shard_fraction(t, llm, tp) * (ratio if t.role.endswith("_exps") else 1.0)
        if t.layer is not None:
            out[stage_of[t.layer]] += b
        elif t.role == "token_embd":
            out[0] += b
            if llm.tied_embeddings and pp > 1:
                out[-1] += b
        else:  # output norm, LM head
            out[-1] += b
    return [int(x) for x in out]


def layer_kv_heads(llm: LlmSpec, i: int) -> tuple[int, int] | None:
    """(KV heads, head size) layer ``i`` caches per token, or None for a layer without a per-token KV
    cache: a linear-attention layer of a hybrid model (a fixed state per request instead) or a
    cross-attention layer (the image's states, fixed per request). Gemma 4's full-attention layers
    cache their own heads and head size (placement.layer_kv_dims)."""
    la = llm.linear_attention
    if (la is not None and la.is_linear(i)) or i in llm.cross_attention_layers:
        return None
    ga = llm.global_attention
    if ga is not None and llm.sliding_window is not None and not llm.sliding_window.is_sliding(i):
        return ga.num_kv_heads, ga.head_dim
    return llm.num_kv_heads, llm.head_dim_


def kv_per_token(llm: LlmSpec, layers: int, tp: int, elem_bytes: int, start: int = 0) -> tuple[int, int]:
    """(K, V) bytes per token on one TP rank for the ``layers`` layers from ``start``. GQA:
    ``max(1, kv_heads / tp)`` heads per rank (QKVParallelLinear replicates KV heads when tp > kv
    heads); MLA (DeepSeek-V2/V3): one latent of kv_lora_rank + rope dims, the same on every rank
    (vLLM MLAAttention, SGLang MLATokenToKVPool), counted as K. Layers without a per-token cache
    (``layer_kv_heads``) count 0."""
    k = 0
    for i in range(start, start + layers):
        heads = layer_kv_heads(llm, i)
        if heads is None:
            continue
        if llm.mla:
            k += (llm.mla.kv_lora_rank + llm.mla.qk_rope_head_dim) * elem_bytes
            continue
        k += max(1, heads[0] // tp) * heads[1] * elem_bytes
    return (k, 0) if llm.mla else (k, k)


def stage_starts(num_layers: int, pp: int) -> list[int]:
    """The first layer of each pipeline stage."""
    out, at = [], 0
    for n in pp_layers(num_layers, pp):
        out.append(at)
        at += n
    return out


def serving_inputs(model: Any, parts: Any, gpu: GpuSpec, runtime: str, quant: str, **workload: Any) -> Inputs:
    """The ``Inputs`` of a serving runtime's own estimate (vLLM, SGLang, MLX): the model, its LLM, the
    (main) GPU, runtime and precision; no vision precision, image size or per-image tokens; flash
    attention on, headless. ``workload``: the fields each runtime resolves its own way."""
    from vramcalc.results import Inputs

    return Inputs(
        model=model.id,
        model_name=model.name,
        model_kind=parts.kind,
        llm=parts.llm.id,
        gpu=gpu.id,
        gpu_name=gpu.name,
        runtime=runtime,
        quant=quant,
        vision_quant=None,
        image_size=None,
        image_tokens_per_image=0,
        flash_attention=True,
        headless=True,
        **workload,
    )


def gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB"


# ---------------------------------------------------------------------------------------------
# Calibration (data/calibration.yaml, section ``serving``)


def serving_calibration() -> dict[str, Any]:
    """The ``serving`` section of data/calibration.yaml (fitted constants with what they were fitted on)."""
    from vramcalc.speed import calibration

    return calibration()["serving"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# Speed: the roofline with borrowed factors: llama.cpp CUDA decode factors with the card's memory class,
# the timm-fitted PyTorch GEMM efficiency for prefill (no vLLM/SGLang timing rows to fit on)


def active_stage_bytes(llm: LlmSpec, fmt: str, tp: int, pp: int, concurrency: int) -> list[float]:
    """Weight bytes one decode step reads per GPU of each stage: MoE experts only where some of
    ``concurrency`` tokens route (expected distinct experts n(1 - (1 - k/n)^c)); embeddings one row."""
    stage_of = layer_stages(llm.num_layers, pp)
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
            out[stage_of[t.layer]] += b
        else:
            out[-1] += b
    return out


def active_params(llm: LlmSpec) -> int:
    """Parameters one token multiplies by (MoE: the routed experts only): ``llm_active_params``, plus a
    tied token embedding (it is the LM head too)."""
    tied = sum(t.numel for t in llm_tensors(llm) if t.role == "token_embd") if llm.tied_embeddings else 0
    return llm_active_params(llm) + tied


# ---------------------------------------------------------------------------------------------
# The plumbing shared by vLLM and SGLang: a runtime's own accounting -> Estimate

#: Precisions vLLM and SGLang load here (their --quantization choices that the catalog can express).
PRECISIONS = ("bf16", "fp16", "fp8", "awq-int4", "gptq-int4", "gptq-int8", "nf4", "mxfp4")
#: The largest memory fraction a suggestion names: a guess (neither runtime caps it below 1.0, but
#: the CUDA context and CUDA graphs live outside the share, so a suggestion keeps 2% for them).
GUESS_MAX_FRACTION = 0.98
#: The larger fraction the "to start" alternatives try first: a guess (a common recipe value), not a rule.
GUESS_ALT_FRACTION = 0.95
#: The smaller --max-num-seqs the alternatives try: a guess (a quarter of vLLM's default 256).
GUESS_ALT_SEQS = 64
#: Suggested request lengths are rounded down to a multiple of this: a guess (a round number), not a rule.
GUESS_LEN_ROUND = 256


def normalize_serving_precision(name: str, runtime: str) -> str:
    """A --quant spelling -> one of PRECISIONS (vLLM and SGLang take the same checkpoints)."""
    from vramcalc.quant import normalize_torch_format

    low = name.strip().lower()
    if low == "mxfp4":
        return "mxfp4"
    if low in ("bnb", "bitsandbytes"):
        return "nf4"
    q = normalize_torch_format(name, runtime)
    if q not in PRECISIONS:
        raise InputError(f"{runtime} does not load '{name}' weights here. Known: {', '.join(PRECISIONS)}.")
    return q


@dataclass(frozen=True)
class Setup:
    """The resolved settings of one vLLM/SGLang start."""

    tp: int
    pp: int
    fraction: float
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    kv_elem: int
    kv_name: str
    eager: bool
    total: int  # memory the runtime sees on one GPU
    #: The runtime version whose rules apply (vLLM: "v0" for the 0.6-0.8 V0 engine, "v1" for the V1 engine).
    era: str = "v1"
    #: The GPU's CUDA compute capability ("9.0"), where the catalog has it: some kernels pad by architecture.
    compute_capability: str | None = None


class ServingRuntime:
    """Base of vLLM and SGLang: ``estimate_own`` is the hook ``estimate.estimate()`` delegates to.

    Shared here: precisions, ``setup`` (the resolved settings), ``stages`` (per-GPU accounting),
    ``command`` (the launch line), the start check and the estimate. Each runtime module keeps only
    its names (flags, launcher, quantization spellings) and rules: ``default_fraction``,
    ``default_batch``, ``profile_peak`` (activations inside the budget), ``pool_bytes`` (what the KV
    pool gets), ``start_error``, ``describe``, ``cuda_graph_bytes`` and ``non_torch_bytes``.
    """

    name: str
    version: str
    block_size: int
    #: The words its ``check`` uses for 'fits' / 'no': the server's own start check on its KV pool.
    verdict_words: dict[str, str] = {"fits": "STARTS", "no": "DOES NOT START"}  # noqa: RUF012 (read-only class data)
    fraction_flag: str
    len_flag: str
    seqs_flag: str
    tp_flag: str
    #: The launcher, model flag included ("vllm serve", "python -m sglang.launch_server --model-path").
    launch: str
    #: --quantization spelling per precision (absent: the checkpoint's config says it).
    quant_flags: Mapping[str, str]
    #: --max-num-batched-tokens under its name; None when the runtime has no such flag.
    batched_flag: str | None = None
    #: --kv-cache-dtype's fp8 spelling.
    kv_fp8_name: str = "fp8"
    #: The flag that turns CUDA graphs off.
    eager_flag: str = "--enforce-eager"
    #: --limit-mm-per-prompt under its name; None when not taken.
    mm_flag: str | None = None
    #: Serving runtimes do not place layers in system RAM, nor split layers the llama.cpp way.
    offloads_layers: bool = False
    #: The runtime refuses to start unless one request of max_model_len fits (vLLM); SGLang only needs a token.
    needs_full_request: bool = True

    def places_layers(self, n_gpus: int) -> bool:
        return False

    # --- precisions (the same for both)

    def normalize_precision(self, name: str) -> str:
        return normalize_serving_precision(name, self.name)

    def precisions(self, llm: LlmSpec) -> list[str]:
        return [llm.dtype if llm.dtype != "fp32" else "bf16", "fp8", "awq-int4"]

    def precision_label(self) -> list[str]:
        return ["bf16/fp16", "fp8", "awq-int4"]

    def smaller_precisions(self, current: str) -> list[str]:
        order = ["fp8", "awq-int4"]
        return order[order.index(current) + 1 :] if current in order else order

    def smaller_precision_change(self, precision: str) -> tuple[str, list[str]]:
        return f"serve a {precision} checkpoint", ["--quant", precision]

    # --- the runtime's own rules (each runtime module overrides these)

    def default_fraction(self, tp: int) -> float:
        raise NotImplementedError

    def default_batch(self, gpu: GpuSpec) -> tuple[int, int]:
        """(max_num_seqs, max_num_batched_tokens) when not given; 0 = the runtime has none."""
        return 0, 0

    def total_bytes(self, gpu: GpuSpec) -> int:
        """Memory the runtime sees on one GPU: the card less what the CUDA driver keeps (fitted)."""
        return gpu.memory_bytes - int(serving_calibration()["vllm"]["cuda_reserved_gib"]["value"] * GiB)

    def kv_name(self, opts: Any, model_dtype: str) -> str:
        return self.kv_fp8_name if opts.kv_cache_dtype == "fp8" else model_dtype

    def expert_padding(self, precision: str, s: Setup) -> tuple[int, int]:
        """(hidden, intermediate) multiples the MoE kernel pads expert weights to; (1, 1) = none."""
        return 1, 1

    def profile_peak(self, llm: LlmSpec, s: Setup) -> int:
        """Activation memory inside the budget (vLLM's profile run); 0 when outside it (SGLang)."""
        return 0

    def pool_bytes(self, s: Setup, weights: int, non_torch: int, activation: int) -> int:
        """What the KV pool of one GPU gets."""
        raise NotImplementedError

    def non_torch_bytes(self, tp: int, pp: int) -> int:
        """CUDA context and NCCL buffers outside PyTorch (vLLM's non_torch_memory, fitted)."""
        cal = serving_calibration()["vllm"]
        key = "non_torch_tp1_gib" if tp * pp == 1 else "non_torch_multi_gib"
        return int(cal[key]["value"] * GiB)

    def start_error(self, s: Setup, g: Any, max_len: int, need: int) -> str:
        """The runtime's own error when it does not start (``need``: the bytes one request of max_model_len needs)."""
        raise NotImplementedError

    def describe(self, s: Setup, g: Any) -> list[str]:
        """The per-GPU accounting in the runtime's terms (notes)."""
        raise NotImplementedError

    def cuda_graph_bytes(self, s: Setup) -> int:
        """CUDA-graph memory, captured outside the share (0 under eager); fitted on vLLM's
        "Graph capturing finished ... took X GiB" lines (a property of CUDA graphs, used for SGLang too)."""
        return 0 if s.eager else int(serving_calibration()["vllm"]["cuda_graph_gib"]["value"] * GiB)

    def pool_tokens(self, llm: LlmSpec, s: Setup, g: ServingGpu) -> int:
        """Tokens the KV pool of stage GPU ``g`` holds, as the runtime reports them: whole blocks."""
        return max(0, g.kv_cache_bytes) // (self.block_size * g.kv_bytes_per_token) * self.block_size

    def request_bytes(self, llm: LlmSpec, s: Setup, g: ServingGpu, length: int) -> int:
        """Pool bytes one request of ``length`` tokens needs on stage GPU ``g`` (the start check)."""
        return length * g.kv_bytes_per_token

    def longest_request(self, llm: LlmSpec, s: Setup, g: ServingGpu) -> int:
        """The longest request the pool of stage GPU ``g`` holds."""
        return max(0, g.kv_cache_bytes) // g.kv_bytes_per_token

    def concurrency_of(self, llm: LlmSpec, s: Setup, g: ServingGpu) -> float:
        """Requests of max_model_len the pool of stage GPU ``g`` holds at once."""
        return float(g.kv_cache_tokens / s.max_model_len)

    def sliding_note(self, llm: LlmSpec, s: Setup) -> str | None:
        """What the estimate says about sliding-window layers (None: the model has none)."""
        if not llm.sliding_window:
            return None
        return (
            "Sliding-window layers are counted as full attention (a hybrid KV manager frees blocks outside the window): "
            "the token capacity shown is a lower bound."
        )

    # --- shared

    def setup(self, llm: LlmSpec, gpu: GpuSpec, n_gpus: int, opts: Any, model_dtype: str) -> Setup:
        tp = opts.tensor_parallel or n_gpus
        seqs, batched = self.default_batch(gpu)
        return Setup(
            tp=tp,
            pp=opts.pipeline_parallel or opts.nodes,
            fraction=opts.memory_fraction or self.default_fraction(tp),
            max_model_len=opts.max_model_len or llm.max_context,
            max_num_seqs=opts.max_num_seqs or seqs,
            max_num_batched_tokens=opts.max_num_batched_tokens or batched,
            kv_elem=1 if opts.kv_cache_dtype == "fp8" else 2,
            kv_name=self.kv_name(opts, model_dtype),
            eager=opts.enforce_eager,
            total=self.total_bytes(gpu),
            compute_capability=gpu.compute_capability,
        )

    def stages(self, llm: LlmSpec, precision: str, s: Setup, scale: float = 1.0) -> list[Any]:
        """One GPU of each pipeline stage. ``scale``: the checkpoint's exact bytes / the derived bytes
        (1 = derived), applied to each GPU's share."""
        from dataclasses import replace

        from vramcalc.results import ServingGpu

        out = []
        padded = stage_weight_bytes(llm, precision, s.tp, s.pp, self.expert_padding(precision, s))
        weights = [int(w * scale) for w in padded]
        act = self.profile_peak(llm, s)
        starts = stage_starts(llm.num_layers, s.pp)
        non_torch = self.non_torch_bytes(s.tp, s.pp)  # the same on every GPU
        for i, n in enumerate(pp_layers(llm.num_layers, s.pp)):
            k, v = kv_per_token(llm, n, s.tp, s.kv_elem, starts[i])
            if k + v == 0:  # every pool figure is per token (pool_tokens, longest_request): refuse, do not divide by 0
                raise InputError(
                    f"Pipeline stage {i} holds layers {starts[i]}-{starts[i] + n - 1}, none with a per-token KV cache "
                    "(linear- or cross-attention layers only): a split not modelled here; use fewer pipeline stages (--pp)."
                )
            left = self.pool_bytes(s, weights[i], non_torch, act)
            out.append(
                ServingGpu(
                    stage=i,
                    layers=n,
                    usable_bytes=int(s.total * s.fraction),
                    weights_bytes=weights[i],
                    non_torch_bytes=non_torch,
                    activation_bytes=act,
                    kv_cache_bytes=left,
                    kv_bytes_per_token=k + v,
                    kv_cache_tokens=0,
                )
            )
        return [replace(g, kv_cache_tokens=self.pool_tokens(llm, s, g)) for g in out]

    def pp_args(self, s: Setup, opts: Any) -> list[str]:
        """The pipeline-parallel flags (pp > 1)."""
        raise NotImplementedError

    def command(self, model_id: str, precision: str, s: Setup, opts: Any) -> str:
        """The launch line that reproduces the estimate, in the runtime's own flags."""
        parts = [self.launch, model_id]
        if precision in self.quant_flags:
            parts += ["--quantization", self.quant_flags[precision]]
        if s.tp > 1:
            parts += [self.tp_flag, str(s.tp)]
        if s.pp > 1:
            parts += self.pp_args(s, opts)
        parts += [self.fraction_flag, f"{s.fraction:g}", self.len_flag, str(s.max_model_len)]
        if opts.max_num_seqs:
            parts += [self.seqs_flag, str(s.max_num_seqs)]
        if opts.max_num_batched_tokens and self.batched_flag:
            parts += [self.batched_flag, str(s.max_num_batched_tokens)]
        if s.kv_elem == 1:
            parts += ["--kv-cache-dtype", self.kv_fp8_name]
        if s.eager:
            parts.append(self.eager_flag)
        if opts.mm_items is not None and self.mm_flag:
            parts += [self.mm_flag, f"'{{\"image\": {opts.mm_items}}}'"]
        return " ".join(parts)

    def _run(
        self, llm: LlmSpec, gpu: Any, n_gpus: int, opts: Any, precision: str, scale: float = 1.0, parts: Any = None
    ) -> tuple[Setup, list[Any]]:
        s = self.setup(llm, gpu, n_gpus, opts, llm.dtype)
        if llm.num_heads % s.tp:
            raise InputError(f"Total number of attention heads ({llm.num_heads}) must be divisible by tensor parallel size ({s.tp}).")
        if s.pp > llm.num_layers:
            raise InputError(f"Pipeline parallel size {s.pp} exceeds the model's {llm.num_layers} layers.")
        stages = self.stages(llm, precision, s, scale)
        if parts is not None and parts.encoder is not None:
            stages = self._with_vision(llm, parts, precision, s, opts, stages)
        return s, stages

    # --- vision-language models: the first stage holds the vision tower and runs the encoder's profile

    def vision_format(self, precision: str) -> str:
        """The vision tower's precision: bf16, fp16 with an fp16 LLM (quantized LLM weights leave the tower in 16 bits)."""
        return "fp16" if precision == "fp16" else "bf16"

    def vision_weights_bytes(self, tensors: Any, fmt: str, s: Setup) -> int:
        """Vision tower + projector bytes on one GPU of the first stage; here whole on each GPU (a runtime that
        shards them overrides this)."""
        return sum(tensor_bytes(t, fmt) for t in tensors)

    def encoder_profile(self, parts: Any, llm: LlmSpec, s: Setup, opts: Any) -> Any:
        """The encoder's share of the runtime's profile run: an object whose ``peak(llm_phase)`` is the run's
        activation peak with it; None when the runtime has none (or it is not modelled)."""
        return None

    def vision_note(self, parts: Any, s: Setup, vis_bytes: int, prof: Any) -> str:
        return (
            f"Vision encoder + projector ({gib(vis_bytes)}) counted whole on each GPU of the first stage; the encoder's "
            "profile run (largest image --limit-mm-per-prompt allows) is not modelled."
        )

    def _vision(self, llm: LlmSpec, parts: Any, precision: str, s: Setup, opts: Any) -> tuple[int, Any]:
        from vramcalc.params import encoder_tensors

        tensors = (*encoder_tensors(parts.encoder), *parts.projector)
        return self.vision_weights_bytes(tensors, self.vision_format(precision), s), self.encoder_profile(parts, llm, s, opts)

    def _with_vision(self, llm: LlmSpec, parts: Any, precision: str, s: Setup, opts: Any, stages: list[Any]) -> list[Any]:
        from dataclasses import replace

        vis, prof = self._vision(llm, parts, precision, s, opts)
        g = stages[0]
        act = prof.peak(g.activation_bytes) if prof is not None else g.activation_bytes
        g = replace(
            g,
            weights_bytes=g.weights_bytes + vis,
            activation_bytes=act,
            kv_cache_bytes=g.kv_cache_bytes - vis - (act - g.activation_bytes),
        )
        return [replace(g, kv_cache_tokens=self.pool_tokens(llm, s, g)), *stages[1:]]

    def _starts(self, llm: LlmSpec, s: Any, stages: list[Any]) -> bool:
        need = s.max_model_len if self.needs_full_request else 1
        return all(g.kv_cache_bytes > 0 and g.kv_cache_bytes >= self.request_bytes(llm, s, g, need) for g in stages)

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
        precision = self.normalize_precision(w.quant or llm.dtype)
        out_notes: list[str] = []
        fixed = getattr(weights, "llm", None)
        scale = 1.0
        if fixed is not None and fixed.bytes:
            derived = sum(tensor_bytes(t, precision) for t in llm_tensors(llm))
            scale = fixed.bytes / derived
            out_notes.append(
                f"Weights read from the checkpoint ({gib(fixed.bytes)} in all, {fixed.precision}), split over the GPUs by the "
                f"sharding rules of {precision} ({scale:.3f} x the derived size)."
            )
        return self._estimate(model, parts, llm, gpu, opts, n_node, precision, w, catalog, notes, out_notes, scale)

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
        scale: float = 1.0,
    ) -> Estimate:
        from dataclasses import replace

        from vramcalc.params import count_params
        from vramcalc.results import ComponentBytes, Estimate, Memory, Params, ServingAnswer, Suggestion

        s, stages = self._run(llm, gpu, n_node, opts, precision, scale, parts)
        if s.tp * s.pp > n_node * opts.nodes:
            raise InputError(
                f"{self.tp_flag} {s.tp} x pipeline {s.pp} = {s.tp * s.pp} GPUs, but {opts.nodes} node(s) x {n_node} GPU(s) were given."
            )
        if s.tp > n_node:
            raise InputError(f"tensor parallelism stays inside a node: {self.tp_flag} {s.tp} > {n_node} GPUs per node.")
        vis_bytes = 0
        if parts.encoder is not None:
            vis_bytes, prof = self._vision(llm, parts, precision, s, opts)
            out_notes.append(self.vision_note(parts, s, vis_bytes, prof))
        starts = self._starts(llm, s, stages)
        tight = min(stages, key=lambda g: g.kv_cache_tokens)
        est_len = min(self.longest_request(llm, s, g) for g in stages)
        error = None if starts else self.start_error(s, tight, est_len, self.request_bytes(llm, s, tight, s.max_model_len))
        concurrency = min(self.concurrency_of(llm, s, g) for g in stages)

        smallest = None
        t = 1
        while t <= n_node:
            if llm.num_heads % t == 0:
                try:
                    s2, st2 = self._run(llm, gpu, n_node, replace(opts, tensor_parallel=t), precision, scale, parts)
                except InputError:
                    st2 = []
                if st2 and self._starts(llm, s2, st2):
                    smallest = t
                    break
            t *= 2

        lower: list[str] = []
        sugg = None
        if not starts:
            if est_len > 0:
                lower.append(f"{self.len_flag} {est_len} (the longest request the KV pool holds)")
            need = max(
                (g.weights_bytes + g.non_torch_bytes + g.activation_bytes + self.request_bytes(llm, s, g, s.max_model_len)) / s.total
                for g in stages
            )
            if need <= GUESS_MAX_FRACTION:  # the share that fits, rounded up to the next 0.01
                lower.append(f"{self.fraction_flag} {min(GUESS_MAX_FRACTION, math.ceil(need * 100) / 100):.2f}")
            if s.kv_elem == 2:
                _, st_fp8 = self._run(llm, gpu, n_node, replace(opts, kv_cache_dtype="fp8"), precision, scale, parts)
                if self._starts(llm, s, st_fp8):
                    lower.append("--kv-cache-dtype fp8")
            if smallest is not None and smallest > s.tp:
                lower.append(f"{self.tp_flag} {smallest}")
            lower += self._alternatives(llm, gpu, n_node, opts, precision, est_len, s, scale, parts)
            out_notes.append(
                f"The ways to start try {self.fraction_flag} {GUESS_ALT_FRACTION} (at most {GUESS_MAX_FRACTION})"
                + (f", {self.seqs_flag} {GUESS_ALT_SEQS}" if self.needs_full_request else "")
                + f" and round lengths down to {GUESS_LEN_ROUND} tokens: guesses (common values), not {self.name} rules."
            )
            if est_len > 0:
                sugg = Suggestion(
                    change=f"lower the maximum request length to {est_len} tokens",
                    flags=[self.len_flag, str(est_len)],
                    total_bytes=tight.usable_bytes,
                    verdict="fits",
                )
        graphs = self.cuda_graph_bytes(s)
        outside = int(s.total * (1 - s.fraction))
        if graphs and graphs > outside:
            out_notes.append(
                f"CUDA graphs (about {gib(graphs)}) are captured outside the {s.fraction:g} share, which leaves {gib(outside)}: "
                f"capture may run out of memory (lower {self.fraction_flag} or --enforce-eager)."
            )
        out_notes += self.describe(s, tight)
        sw_note = self.sliding_note(llm, s)
        if sw_note:
            out_notes.append(sw_note)
        if llm.linear_attention is not None:
            from vramcalc.placement import recurrent_state_bytes

            n_lin = sum(1 for i in range(llm.num_layers) if llm.linear_attention.is_linear(i))
            out_notes.append(
                f"{n_lin} of {llm.num_layers} layers are linear-attention layers: no per-token KV there; each running request "
                f"holds their fixed state ({gib(recurrent_state_bytes(llm, 1) / s.tp)} per GPU at "
                f"{llm.linear_attention.state_dtype}) in the same pool, and the hybrid allocator's page alignment is not "
                "modelled: the token capacity shown is an upper bound."
            )
        if llm.cross_attention_layers:
            out_notes.append(
                f"{len(llm.cross_attention_layers)} cross-attention layers cache the image's states per request, not per token: "
                "not in the per-token KV figure."
            )
        if s.pp > 1:
            out_notes.append(
                "Pipeline stages: "
                + "; ".join(
                    f"stage {g.stage}: {g.layers} layers, weights {gib(g.weights_bytes)}, KV {g.kv_cache_tokens:,} tokens" for g in stages
                )
                + ". The pool is the smallest stage's."
            )
        model_id = hub_repo(model, CHECKPOINT_TAGS.get(precision) if precision not in self.quant_flags else None)
        cmd = self.command(model_id, precision, s, opts)
        tag = CHECKPOINT_TAGS.get(precision)
        if tag and precision not in self.quant_flags and tag.lower() not in model_id.lower():
            out_notes.append(
                f"{self.name} reads {precision} from the checkpoint's config: put a checkpoint of {model_id} quantized with "
                f"{tag} in its place in the command (the catalog names none)."
            )

        # max_num_seqs 0: the runtime has no such cap (SGLang here), the pool alone bounds the requests
        conc = opts.concurrency or max(1, min(s.max_num_seqs or int(concurrency), int(concurrency)))
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
        head = min(g.kv_cache_bytes - self.request_bytes(llm, s, g, s.max_model_len) for g in stages)
        info = gpu_info_for(gpu, s.total, s.fraction)
        return Estimate(
            inputs=serving_inputs(
                model,
                parts,
                gpu,
                self.name,
                precision,
                encoder=parts.encoder.id if parts.encoder else None,
                text_tokens=s.max_model_len,
                images=opts.mm_items or 0,
                context_tokens=s.max_model_len,
                batch=s.max_num_seqs,
                kv_cache=s.kv_name,
                n_ubatch=s.max_num_batched_tokens,
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

    def _alternatives(
        self, llm: LlmSpec, gpu: GpuSpec, n_node: int, opts: Any, precision: str, est_len: int, s: Setup, scale: float, parts: Any = None
    ) -> list[str]:
        """Settings that make room for longer requests: a larger share, fewer sequences in the profile
        run (a smaller sampler peak), an fp8 KV cache; each with the longest request it then holds."""
        from dataclasses import replace

        out = []
        steps: list[tuple[str, dict[str, Any]]] = []
        if s.fraction < GUESS_ALT_FRACTION:
            steps.append((f"{self.fraction_flag} {GUESS_ALT_FRACTION}", {"memory_fraction": GUESS_ALT_FRACTION}))
        if self.needs_full_request and s.max_num_seqs > GUESS_ALT_SEQS:
            steps.append((f"{self.seqs_flag} {GUESS_ALT_SEQS}", {"max_num_seqs": GUESS_ALT_SEQS}))
        if opts.kv_cache_dtype != "fp8":
            steps.append(("--kv-cache-dtype fp8", {"kv_cache_dtype": "fp8"}))
        flags: list[str] = []
        upd: dict[str, Any] = {}
        for flag, u in steps:
            flags.append(flag)
            upd.update(u)
            s_alt, st = self._run(llm, gpu, n_node, replace(opts, **upd), precision, scale, parts)
            longest = min(self.longest_request(llm, s_alt, g) for g in st)
            if longest > est_len:
                out.append(f"{' '.join(flags)} {self.len_flag} {longest // GUESS_LEN_ROUND * GUESS_LEN_ROUND or longest}")
        return out

    def _v_per_token(self, llm: LlmSpec, g: Any, s: Any) -> int:
        return kv_per_token(llm, g.layers, s.tp, s.kv_elem, stage_starts(llm.num_layers, s.pp)[g.stage])[1]

    def speeds(
        self, llm: LlmSpec, gpu: GpuSpec, precision: str, s: Any, stages: list[Any], conc: int, ctx: int
    ) -> tuple[dict[str, Any], Any]:
        """Decode per request and aggregate at ``conc`` requests of ``ctx`` tokens, prefill and TTFT."""
        import math

        from vramcalc.results import SpeedBasis, SpeedFigure, Throughput
        from vramcalc.speed import calibration, decode_factors, decode_time, peak_tflops, prefill_factors

        spread = calibration()["uncalibrated_spread_log"]
        # the GPU's memory class picks the bandwidth efficiency (without it every card read as GDDR, an H100 too)
        fd, dkey, _ = decode_factors(self, gpu.backend, precision, gpu)  # type: ignore[arg-type]
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
            f"Speeds: the roofline with borrowed factors (decode {dkey}; prefill {pkey}); "
            f"no {self.name} timings to calibrate on, so the band is "
            f"x/÷{math.exp(spread):.1f}. Decode at {ctx:,} tokens of context; prefill and time to first token for a {ctx:,}-token "
            "prompt; TP all-reduce and PP bubbles are not modelled."
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


#: Precisions a serving runtime takes from the checkpoint's own quantization_config (no --quantization
#: flag needed) and that the catalog's repos are not published in: the tag such a checkpoint's repo
#: name carries. (MXFP4 is gpt-oss's own published format, so its repo is already right.)
CHECKPOINT_TAGS = {"awq-int4": "AWQ", "gptq-int4": "GPTQ", "gptq-int8": "GPTQ"}


def hub_repo(model: Any, tag: str | None = None) -> str:
    """The Hugging Face repo a serving command names: with ``tag`` (AWQ, GPTQ), an alias whose name
    carries it; else the alias that is the catalog id spelled as a repo (Qwen/Qwen3-30B-A3B for
    qwen3-30b-a3b), else the first repo-shaped alias, else the id. An entry's aliases may list
    fine-tunes of the same architecture first (Qwen3-Coder-30B-A3B)."""
    model_id = str(model.id)
    repos = [str(a) for a in getattr(model, "aliases", []) if "/" in a]
    tagged = [a for a in repos if tag and tag.lower() in a.split("/")[-1].lower()]
    same = [a for a in repos if a.split("/")[-1].lower() == model_id.lower()]
    return (tagged or same or repos or [model_id])[0]
