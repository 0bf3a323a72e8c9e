"""vLLM: a server that takes a fixed share of each GPU and fills what weights, activations and
the CUDA context leave with KV-cache blocks. ``--runtime vllm``.

The memory rules, per GPU (recalled from vLLM's and PyTorch's source, named, not re-checked here;
each checked against a published start-up line of benchmarks/calibration/vllm_memory.csv):

- ``worker/worker.py Worker.determine_num_available_blocks`` (V0 engine, 0.6.4-0.8) and
  ``v1/worker/gpu_worker.py Worker.determine_available_memory`` (V1, 0.9-0.20), both with
  ``utils.memory_profiling``: requested = total_gpu_memory x gpu_memory_utilization; KV =
  requested - (weights + non_torch_increase + torch_peak_increase of the profile run). CUDA graphs
  are captured after the KV cache is allocated, in the memory the fraction leaves (from 0.21 an
  estimate is subtracted first: not modelled, said in a note).
- weights: runtimes/serving.py (TP/PP sharding).
- the profile run (V0 ``GPUModelRunner.profile_run``; V1 ``gpu_model_runner.profile_run`` +
  ``_dummy_sampler_run``): one forward of max_num_batched_tokens tokens over min(max_num_seqs,
  tokens) sequences, then the sampler on one row of logits per sequence with top-k/top-p on. The
  torch peak (``allocated_bytes.all.peak``) is the larger of the two phases, not their sum (the
  forward's activations are freed before the sampler runs):

  * forward (eager, V0): the largest moment is inside one MLP, at the down projection. Alive:
    ``gate_up`` (tokens x 2 x ff / tp; kept by its Python name until ``forward`` returns), the
    SiluAndMul output (tokens x ff / tp), and HIDDEN_LIVE tensors of tokens x hidden: the layer's
    input (held by the model's ``for layer in self.layers`` loop), the residual (fused_add_rms_norm
    works in place), the MLP's input and the down projection's output; under TP one more, the
    all-reduce's output (``GroupCoordinator.all_reduce`` is out of place, ``pynccl.all_reduce``
    allocates its result). MoE (``fused_moe.fused_experts``): tokens x top-k x (max(2 x ff / tp,
    hidden) for the shared intermediate_cache1/3 buffer + ff / tp for intermediate_cache2) in
    place of the dense MLP's 3 x ff / tp. Activations are 2 bytes (bf16/fp16 compute, also for
    fp8/AWQ/GPTQ weights).
  * sampler (V0 ``model_executor/layers/sampler.py _apply_top_k_top_p``; V1
    ``v1/sample/ops/topk_topp_sampler.py apply_top_k_top_p``): the peak is inside
    ``logits.sort(dim=-1)``: the head's bf16 logits (2 bytes, held by the caller) + the fp32 copy (4)
    + the sorted values (4) + int64 indices (8) + PyTorch's ``segmented_sort_pairs`` scratch
    (``aten/src/ATen/native/cuda/Sort.cu``: int64 reverse indices, 8, and cub's
    DeviceSegmentedRadixSort alternate key and value buffers, 4 + 8) = 38 bytes per logit, plus
    the forward's final hidden states (tokens x hidden x 2) still held by the runner.

  Checked: vllm_memory.csv:14 (T4, Qwen2.5-1.5B, 32,768 tokens: forward 2.016 GiB vs "2.02GiB"),
  :19 (Qwen2.5-Math-1.5B, 4,096 tokens: sampler 1.388 vs "1.40"), :2 (Llama-3-8B, 8,192 tokens:
  sampler 1.224 vs "1.26"), :17 (ROCm TP8, R1-Distill-Qwen-32B, 32,768 tokens: forward 2.195 vs
  "2.20"). The V1 engine compiles the forward (torch.compile frees tensors at their last use): the
  same count is an upper bound there; no V1 row in the calibration set states its activation peak.
- KV blocks (``v1/core/kv_cache_utils.py``; V0 ``CacheEngine.get_cache_block_size``): page =
  block_size (16) x per-token bytes of the rank's layers; num_blocks = KV // page (the minimum over
  the ranks); GPU KV cache size = num_blocks x block_size tokens; maximum concurrency = tokens /
  max_model_len. ``check_enough_kv_cache_memory`` refuses to start when one request of
  max_model_len does not fit (its error is quoted in ``error``).
- defaults: V1 (``engine/arg_utils.py _set_default_args_v1``, ``vllm serve``): max_num_batched_tokens
  2048 and max_num_seqs 256 on GPUs under 70 GiB, 8192 and 1024 from 70 GiB (H100/H200/MI300
  class). V0 (``config.py SchedulerConfig``): max_num_seqs 256; without chunked prefill
  max_num_batched_tokens = max(max_model_len, 2048); chunked prefill is on by default above 32K of
  context (``arg_utils``), where the budget is 2048 here (0.6.x used 512: pass
  --max-num-batched-tokens to be exact). gpu_memory_utilization 0.9 (``CacheConfig``);
  max_model_len = the model's.

Fitted (data/calibration.yaml ``serving.vllm``, what each was fitted on is listed there):
non_torch_memory with and without TP (CUDA context, NCCL buffers), CUDA-graph memory, and the
memory the CUDA driver keeps from ``cudaMemGetInfo``'s total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from vramcalc.runtimes.serving import (
    ServingRuntime,
    Setup,
    gib,
    kv_per_token,
    pp_layers,
    stage_starts,
)
from vramcalc.runtimes.transformers import Transformers
from vramcalc.units import GiB

if TYPE_CHECKING:
    from vramcalc.results import ServingGpu
    from vramcalc.schema import GpuSpec, LlmSpec

__all__ = ["EncoderProfile", "Setup", "Vllm", "activation_peak", "encoder_profile", "forward_peak", "largest_image", "sampler_peak"]

#: The names and defaults below are recalled from vLLM's source (module docstring), not re-read here; the
#: user-visible notes say so once (``describe``) and point at docs/accuracy_serving.md.
VERSION = "vLLM V1 0.9-0.20 (memory rules; the V0 engine 0.6.4-0.8 where a row says so)"
#: The eras whose rules differ here (Setup.era): "v0" = the V0 engine (0.6.4-0.8), "v1" = V1 (0.9-0.20).
ERAS = ("v0", "v1")
#: CacheConfig default block_size (tokens per KV block) on CUDA.
BLOCK_SIZE = 16
#: CacheConfig default gpu_memory_utilization.
DEFAULT_FRACTION = 0.9
#: Bytes per logit at the sampler's peak, inside the sort (module docstring): bf16 logits, fp32 logits,
#: sorted values, int64 indices, Sort.cu's int64 reverse indices, cub's alternate keys (fp32) and values (int64).
SAMPLER_BYTES_PER_LOGIT = 2 + 4 + 4 + 8 + 8 + 4 + 8
#: [tokens, hidden] tensors alive at an MLP's down projection in the eager forward (module docstring):
#: the layer's input, the residual, the MLP's input, the down projection's output.
HIDDEN_LIVE = 4
#: Bytes per activation element (bf16/fp16 compute).
ACT_BYTES = 2
#: GPUs of this size and up get the larger V1 defaults (arg_utils: device memory >= 70 GiB).
LARGE_GPU = 70 * GiB
#: V1 defaults (max_num_seqs, max_num_batched_tokens) for `vllm serve`, below / from LARGE_GPU.
V1_DEFAULTS = ((256, 2048), (1024, 8192))
#: V0 SchedulerConfig: default max_num_seqs, the smallest max_num_batched_tokens without chunked
#: prefill (_DEFAULT_MAX_NUM_BATCHED_TOKENS), and the context above which chunked prefill is on (32K).
V0_SEQS, V0_MIN_BATCHED, V0_LONG_CONTEXT = 256, 2048, 32 * 1024
#: MXFP4 MoE weights as ``Mxfp4MoEMethod.create_weights`` (model_executor/layers/quantization/mxfp4.py)
#: allocates them: the Marlin MoE kernel needs n % 256 and k % 128, so hidden is padded to a multiple of 256
#: and the per-rank expert intermediate to 128 (GPUs without native FP4: compute capability below 10);
#: the Blackwell (SM100) FlashInfer paths pad both to 256. Checked: vllm_memory.csv:10 (gpt-oss-120b on an
#: H100, "Marlin weight-only FP4": 65.84 vs 65.97 GiB) and :13 (gpt-oss-20b on an A100: 13.67 vs 13.72).
#: Newer versions may pick the Triton kernels on Hopper (intermediate padded to 128 only): not modelled.
MXFP4_PAD_MARLIN = (256, 128)
MXFP4_PAD_SM100 = (256, 256)
#: ``vllm serve --quantization`` spellings per vramcalc precision (None: from the checkpoint's config).
QUANT_FLAG = MappingProxyType({"fp8": "fp8", "int8": "bitsandbytes", "nf4": "bitsandbytes"})


def forward_peak(llm: LlmSpec, tokens: int, tp: int) -> int:
    """The profile forward's peak inside one MLP (module docstring)."""
    h = llm.hidden_size
    live = HIDDEN_LIVE + (1 if tp > 1 else 0)
    dense = 3 * (llm.intermediate_size // tp)
    per = dense
    if llm.moe:
        f = llm.moe.expert_intermediate_size // tp
        moe = llm.moe.experts_per_token * (max(2 * f, h) + f)
        per = max(moe, dense) if llm.moe.dense_layers else moe
    return tokens * (live * h + per) * ACT_BYTES


def sampler_peak(llm: LlmSpec, tokens: int, seqs: int) -> int:
    """The dummy sampler's peak: the sort of min(seqs, tokens) rows of logits + the final hidden states."""
    rows = min(seqs, tokens)
    return rows * llm.vocab_size * SAMPLER_BYTES_PER_LOGIT + tokens * llm.hidden_size * ACT_BYTES


def activation_peak(llm: LlmSpec, tokens: int, seqs: int, tp: int) -> int:
    """The profile run's torch peak increase: the larger of the forward and the sampler."""
    return max(forward_peak(llm, tokens, tp), sampler_peak(llm, tokens, seqs))


# --- vision-language models: the encoder's profile run (V1) and the vision tower under TP

#: V1 ``MultiModalConfig.limit_per_prompt`` default per modality when --limit-mm-per-prompt is not given
#: (the V0 engine's default was 1). Recalled from vLLM's ``--limit-mm-per-prompt`` help ("Defaults to 1 (V0)
#: or 999 (V1) for each modality"), not re-checked here.
V1_MM_LIMIT = 999
#: The side vLLM's Qwen2-VL processing info feeds ``smart_resize`` to find the image with the most features
#: (``Qwen2VLProcessingInfo.get_image_size_with_most_features``: image_width = image_height = 9999999; recalled).
HUGE_SIDE = 9999999
#: Vision tensors (vramcalc's names, params.py) whose matrices vision_shard splits: the tower's blocks, Qwen3-VL's
#: DeepStack mergers and the projector.
SHARDED_VISION = ("v.blk.", "v.deepstack.", "mm.")


@dataclass(frozen=True)
class EncoderProfile:
    """The V1 profile run's multimodal part on one GPU of the first stage (``gpu_model_runner.profile_run``)."""

    tokens_per_item: int  # LLM tokens of the largest image the processor allows
    crops: int  # encoder crops of one such image
    patches: int  # patches per crop (class/register tokens included)
    budget: int  # encoder cache size / compute budget in tokens: max(max_num_batched_tokens, tokens_per_item)
    items: int  # dummy images encoded in one batch
    encoder_bytes: int  # the vision encoder's activation peak on them (vit.activation_bytes)
    cache_bytes: int  # their outputs kept in the encoder cache: items x tokens x LLM hidden (x DeepStack levels + 1) x 2

    def peak(self, llm_phase: int) -> int:
        """The profile's torch peak: the encoder phase, or the LLM forward / sampler with the cache still held
        (``self.encoder_cache["tmp"]`` is cleared only after ``_dummy_sampler_run``)."""
        return max(self.encoder_bytes, self.cache_bytes + llm_phase)


def largest_image(vlm: Any, enc: Any) -> tuple[int, int, int]:
    """(LLM tokens, encoder crops, patches per crop) of the image with the most features the processor allows,
    as vLLM's ``get_max_image_tokens`` / ``get_image_size_with_most_features`` pick it (recalled): fixed-token
    models one native crop (LLaVA-1.5 576, Gemma 3 256, pan-and-scan off); Qwen-VL ``smart_resize`` of a
    9999999-pixel square to max_pixels (Qwen2/2.5-VL's 12,845,056 -> 16,384 tokens); anyres the richest grid
    pinpoint; tiles the richest tile grid (+ thumbnail). The counts are vramcalc's images.image_tokens."""
    from vramcalc.images import image_tokens, tile_grids
    from vramcalc.schema import AnyresTokens, DynamicResolutionTokens, TileTokens

    pol = vlm.image_tokens
    sizes: list[tuple[int, int] | None] = [None]
    if isinstance(pol, DynamicResolutionTokens):
        sizes = [(HUGE_SIDE, HUGE_SIDE)]
    elif isinstance(pol, AnyresTokens):
        sizes = [(w, h) for w, h in pol.grid_pinpoints]
    elif isinstance(pol, TileTokens):
        sizes = [(c * pol.tile_size, r * pol.tile_size) for c, r in tile_grids(pol.min_tiles, pol.max_tiles)]
    return max(image_tokens(vlm, enc, size) for size in sizes)


def encoder_profile(vlm: Any, enc: Any, llm: LlmSpec, s: Setup, limit: int | None) -> EncoderProfile | None:
    """The V1 encoder profile (``v1/worker/utils.py MultiModalBudget`` / ``compute_mm_encoder_budget``, recalled):

    - budget = max(max_num_batched_tokens, tokens per item) (``max_num_encoder_input_tokens`` and
      ``encoder_cache_size`` both default to max_num_batched_tokens);
    - items = max(1, min(budget // tokens per item, max_num_seqs x max(1, min(limit, max_model_len // tokens per
      item)))) (chunked prefill on, V1's default);
    - the encoder runs once on all of them; its outputs stay in the encoder cache through the LLM's dummy forward
      and the sampler: tokens x LLM hidden x 2 bytes, x (1 + DeepStack levels) for Qwen3-VL, whose vLLM model
      concatenates the DeepStack features to the embeddings it returns (recalled).

    None when no image is profiled: --limit-mm-per-prompt image=0 (the modality is dropped)."""
    from vramcalc.runtimes.transformers import vit_activation_bytes

    limit = V1_MM_LIMIT if limit is None else limit
    if limit <= 0:
        return None
    tokens, crops, patches = largest_image(vlm, enc)
    budget = max(s.max_num_batched_tokens, tokens)
    per_prompt = max(1, min(limit, s.max_model_len // tokens))
    items = max(1, min(budget // tokens, s.max_num_seqs * per_prompt))
    return EncoderProfile(
        tokens_per_item=tokens,
        crops=crops,
        patches=patches,
        budget=budget,
        items=items,
        encoder_bytes=vit_activation_bytes(enc, patches, items * crops),
        cache_bytes=items * tokens * llm.hidden_size * (1 + len(vlm.projector.deepstack_layers)) * ACT_BYTES,
    )


def vision_shard(t: Any, tp: int) -> float:
    """Share of a vision tower / projector tensor one TP rank holds. vLLM's ViTs (clip.py, siglip.py,
    qwen2_vl.py / qwen2_5_vl.py, mllama.py, intern_vit.py; recalled) build attention from QKVParallelLinear /
    ColumnParallelLinear + RowParallelLinear and the MLP from ColumnParallelLinear + RowParallelLinear, and the
    projectors (LLaVA's, Qwen's merger, mllama's) from the same layers: their matrices are split over the ranks.
    Patch embedding (a convolution), position and tile embeddings, class token, norms and biases stay whole.
    ``--mm-encoder-tp-mode data`` (newer versions, some models: the tower replicated) is not modelled."""
    if tp > 1 and t.ndim >= 2 and t.name.startswith(SHARDED_VISION) and t.name != "mm.query":
        return 1.0 / tp
    return 1.0


@dataclass(frozen=True)
class HybridLayout:
    """The V1 hybrid KV cache manager's layout of one GPU's layers (``v1/core/kv_cache_utils.py``
    ``_get_kv_cache_groups_uniform_page_size`` / ``get_kv_cache_config_from_groups``): layers of one
    attention type in groups of ``group_size`` (the smaller type's count; the last group of a type
    padded), one shared tensor per group slot, so a block is ``group_size`` pages."""

    full: int  # full-attention layers on this GPU
    sliding: int  # sliding-window layers
    window: int
    page: int  # bytes of one block of one layer (block_size x per-token bytes of a layer)

    @property
    def group_size(self) -> int:
        return min(c for c in (self.full, self.sliding) if c)

    @property
    def full_groups(self) -> int:
        return -(-self.full // self.group_size)

    @property
    def sliding_groups(self) -> int:
        return -(-self.sliding // self.group_size)

    def num_blocks(self, pool: int) -> int:
        """get_num_blocks: available memory // page // layers per group."""
        return max(0, pool) // self.page // self.group_size

    def sliding_tokens(self, length: int, batched: int) -> int:
        """SlidingWindowSpec.max_memory_usage_bytes: the window - 1 computed tokens + one step's new tokens,
        at most the request."""
        return min(self.window - 1 + batched, length)

    def blocks_per_request(self, length: int, batched: int) -> int:
        """Blocks one request of ``length`` takes over all groups (get_max_concurrency_for_kv_cache_config);
        a sliding window may straddle one more block (the spec's + 1)."""
        sw = (-(-self.sliding_tokens(length, batched) // BLOCK_SIZE) + 1) if self.sliding else 0
        return self.full_groups * -(-length // BLOCK_SIZE) + self.sliding_groups * sw

    def request_bytes(self, length: int, batched: int) -> int:
        """check_enough_kv_cache_memory's need: the spec's max_memory_usage_bytes summed over the layers."""
        sw = (-(-self.sliding_tokens(length, batched) // BLOCK_SIZE) + 1) if self.sliding else 0
        return (self.full * -(-length // BLOCK_SIZE) + self.sliding * sw) * self.page


def hybrid_layout(llm: LlmSpec, s: Setup, start: int, layers: int) -> HybridLayout | None:
    """The hybrid layout of a pipeline stage whose layers include sliding-window ones, under the V1 rules;
    None where the rule does not apply here: the V0 engine (sliding layers kept whole), no sliding layer,
    or layers of different page sizes (Gemma 4's wider global layers, MLA, linear or cross attention:
    vLLM then resizes blocks per group, not modelled)."""
    sw = llm.sliding_window
    if s.era != "v1" or sw is None or llm.mla or llm.linear_attention or llm.global_attention or llm.cross_attention_layers:
        return None
    sliding = sum(1 for i in range(start, start + layers) if sw.is_sliding(i))
    if not sliding:
        return None
    per_layer = sum(kv_per_token(llm, 1, s.tp, s.kv_elem, start))
    return HybridLayout(full=layers - sliding, sliding=sliding, window=sw.size, page=BLOCK_SIZE * per_layer)


def era_of(version: str) -> str:
    """'0.6.4' / '0.8.5' -> 'v0'; '0.9.0' and later -> 'v1' (the V1 engine became the default in 0.9 here;
    0.8.x could run either: its rows say which by their log wording)."""
    parts = version.strip().lstrip("v").split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return "v1"
    return "v0" if (major, minor) < (0, 9) else "v1"


class Vllm(ServingRuntime, Transformers):
    """The vLLM runtime plugin."""

    name: str = "vllm"
    margin_note: str = "vLLM takes --gpu-memory-utilization of each GPU"
    guesses: Mapping[str, int] = MappingProxyType({})
    version: str = VERSION
    block_size: int = BLOCK_SIZE
    fraction_flag: str = "--gpu-memory-utilization"
    len_flag: str = "--max-model-len"
    seqs_flag: str = "--max-num-seqs"
    tp_flag: str = "--tensor-parallel-size"
    launch: str = "vllm serve"
    quant_flags: Mapping[str, str] = QUANT_FLAG
    batched_flag: str | None = "--max-num-batched-tokens"
    mm_flag: str | None = "--limit-mm-per-prompt"
    #: The rules' era (ERAS); the newest unless a caller (benchmarks/accuracy_serving.py) states a row's.
    era: str = "v1"

    # --- vLLM's rules (runtimes/serving.py calls these)

    def default_fraction(self, tp: int) -> float:
        return DEFAULT_FRACTION

    def default_batch(self, gpu: GpuSpec) -> tuple[int, int]:
        return V1_DEFAULTS[gpu.memory_bytes >= LARGE_GPU]

    def setup(self, llm: LlmSpec, gpu: GpuSpec, n_gpus: int, opts: Any, model_dtype: str) -> Setup:
        s = super().setup(llm, gpu, n_gpus, opts, model_dtype)
        return s if self.era == "v1" else v0_setup(s, opts)

    def expert_padding(self, precision: str, s: Setup) -> tuple[int, int]:
        if precision != "mxfp4":
            return 1, 1
        return MXFP4_PAD_SM100 if (s.compute_capability or "").startswith("10.") else MXFP4_PAD_MARLIN

    def profile_peak(self, llm: LlmSpec, s: Setup) -> int:
        return activation_peak(llm, s.max_num_batched_tokens, s.max_num_seqs, s.tp)

    def pool_bytes(self, s: Setup, weights: int, non_torch: int, activation: int) -> int:
        return int(s.total * s.fraction) - weights - non_torch - activation

    # --- vision-language models (EncoderProfile, vision_shard)

    def vision_weights_bytes(self, tensors: Any, fmt: str, s: Setup) -> int:
        from vramcalc.runtimes.serving import tensor_bytes

        return int(sum(tensor_bytes(t, fmt) * vision_shard(t, s.tp) for t in tensors))

    def encoder_profile(self, parts: Any, llm: LlmSpec, s: Setup, opts: Any) -> EncoderProfile | None:
        if s.era != "v1" or parts.model.projector.kind == "cross_attention":
            return None
        return encoder_profile(parts.model, parts.encoder, llm, s, opts.mm_items)

    def vision_note(self, parts: Any, s: Setup, vis_bytes: int, prof: Any) -> str:
        tp = f", its matrices split over the {s.tp} TP ranks (vLLM's parallel linear layers; norms and embeddings whole)"
        head = f"Vision encoder + projector: {gib(vis_bytes)} on each GPU of the first stage" + (tp if s.tp > 1 else "") + ". "
        if prof is None:
            why = (
                "the V0 engine runs the encoder inside its dummy forward"
                if s.era != "v1"
                else "a cross-attention VLM caches image states per request"
            )
            return head + f"The encoder's profile run is not modelled here ({why})."
        return head + (
            f"Encoder profile (V1): the largest image the processor allows is {prof.tokens_per_item:,} tokens "
            f"({prof.crops} crop(s) of {prof.patches:,} patches); budget max({s.max_num_batched_tokens}, {prof.tokens_per_item:,}) "
            f"= {prof.budget:,} tokens -> {prof.items} image(s) encoded at once: encoder peak {gib(prof.encoder_bytes)}"
            + (" (the whole tower's activations: an upper bound under TP)" if s.tp > 1 else "")
            + f", then {gib(prof.cache_bytes)} of encoder cache held through the LLM forward and sampler. "
            "The activation peak is the larger phase. Rules recalled from v1/worker/gpu_model_runner.py profile_run "
            "and MultiModalBudget, not re-checked; the encoder's live set is transformers' (vit.py), not vLLM's own ViT code."
        )

    # --- the V1 hybrid KV cache manager (sliding-window layers; HybridLayout)

    def _layout(self, llm: LlmSpec, s: Setup, g: ServingGpu) -> HybridLayout | None:
        return hybrid_layout(llm, s, stage_starts(llm.num_layers, s.pp)[g.stage], g.layers)

    def pool_tokens(self, llm: LlmSpec, s: Setup, g: ServingGpu) -> int:
        """_report_kv_cache_config: num_blocks // groups x block_size ("GPU KV cache size")."""
        h = self._layout(llm, s, g)
        if h is None:
            return super().pool_tokens(llm, s, g)
        return h.num_blocks(g.kv_cache_bytes) // (h.full_groups + h.sliding_groups) * BLOCK_SIZE

    def request_bytes(self, llm: LlmSpec, s: Setup, g: ServingGpu, length: int) -> int:
        h = self._layout(llm, s, g)
        return super().request_bytes(llm, s, g, length) if h is None else h.request_bytes(length, s.max_num_batched_tokens)

    def longest_request(self, llm: LlmSpec, s: Setup, g: ServingGpu) -> int:
        h = self._layout(llm, s, g)
        if h is None:
            # The same need as the hybrid case, one attention type: cdiv(length, block) blocks per layer
            # (max_memory_usage_bytes), so the longest request is the pool's whole blocks, the "KV tokens"
            # row (was the pool's bytes / bytes per token: up to 15 tokens more than the blocks hold).
            return self.pool_tokens(llm, s, g)
        lo, hi = 0, 4 * max(s.max_model_len, llm.max_context)  # request_bytes grows with the length
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if h.request_bytes(mid, s.max_num_batched_tokens) <= g.kv_cache_bytes else (lo, mid - 1)
        return lo

    def concurrency_of(self, llm: LlmSpec, s: Setup, g: ServingGpu) -> float:
        """get_max_concurrency_for_kv_cache_config: num_blocks / blocks one request of max_model_len takes."""
        h = self._layout(llm, s, g)
        if h is None:
            return super().concurrency_of(llm, s, g)
        return h.num_blocks(g.kv_cache_bytes) / h.blocks_per_request(s.max_model_len, s.max_num_batched_tokens)

    def sliding_note(self, llm: LlmSpec, s: Setup) -> str | None:
        h = hybrid_layout(llm, s, 0, pp_layers(llm.num_layers, s.pp)[0])
        if h is None:
            if llm.sliding_window and s.era == "v1":
                return (
                    "Sliding-window layers are counted as full attention: with layers of different page sizes (MLA, linear, "
                    "cross or wider global attention) vLLM resizes the blocks per group, not modelled; a lower bound."
                )
            return super().sliding_note(llm, s)
        return (
            f"Sliding-window layers (window {h.window}): vLLM V1's hybrid KV cache manager keeps {h.full} full-attention and "
            f"{h.sliding} sliding-window layers in {h.full_groups + h.sliding_groups} groups of {h.group_size}; a request "
            f"holds min(window - 1 + {s.max_num_batched_tokens}, its length) tokens of each sliding layer. The KV tokens "
            "are vLLM's 'GPU KV cache size' (blocks / groups x 16); the concurrency counts the window's saving. "
            "Rules recalled from v1/core/kv_cache_utils.py; no calibration row checks them."
        )

    def pp_args(self, s: Setup, opts: Any) -> list[str]:
        out = ["--pipeline-parallel-size", str(s.pp)]
        if opts.nodes > 1:
            out += ["--distributed-executor-backend", "ray"]
        return out

    def start_error(self, s: Setup, g: ServingGpu, max_len: int, need: int) -> str:
        """vLLM's own words (v1/core/kv_cache_utils.py check_enough_kv_cache_memory)."""
        if g.kv_cache_bytes <= 0:
            return (
                "ValueError: No available memory for the cache blocks. "
                "Try increasing `gpu_memory_utilization` when initializing the engine."
            )
        return (
            f"ValueError: To serve at least one request with the models's max seq len ({s.max_model_len}), "
            f"({need / GiB:.2f} GiB KV cache is needed, which is larger than the available KV cache memory "
            f"({g.kv_cache_bytes / GiB:.2f} GiB). Based on the available memory, the estimated maximum model length is {max_len}. "
            "Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
        )

    def describe(self, s: Setup, g: ServingGpu) -> list[str]:
        return [
            f"vLLM per GPU: total {gib(s.total)} x gpu_memory_utilization {s.fraction:g} = {gib(g.usable_bytes)}; "
            f"weights {gib(g.weights_bytes)}, non_torch {gib(g.non_torch_bytes)}, activation peak {gib(g.activation_bytes)} "
            f"(profile run: {s.max_num_batched_tokens} tokens, {min(s.max_num_seqs, s.max_num_batched_tokens)} sampled rows); "
            f"the rest, {gib(max(0, g.kv_cache_bytes))}, is KV cache in blocks of {self.block_size} tokens x "
            f"{g.kv_bytes_per_token} bytes per token. These vLLM rules are recalled from its source (not re-read here) "
            "and checked against published start-up lines: docs/accuracy_serving.md.",
        ]


def v0_setup(s: Setup, opts: Any) -> Setup:
    """The V0 engine's defaults on top of a resolved setup (module docstring)."""
    from dataclasses import replace

    batched = opts.max_num_batched_tokens
    if not batched:
        batched = V0_MIN_BATCHED if s.max_model_len > V0_LONG_CONTEXT else max(s.max_model_len, V0_MIN_BATCHED)
    return replace(s, era="v0", max_num_seqs=opts.max_num_seqs or V0_SEQS, max_num_batched_tokens=batched)


def for_era(era: str) -> Vllm:
    """A vLLM plugin instance with one era's rules (the registry's instance keeps the newest)."""
    if era not in ERAS:
        raise ValueError(f"unknown vLLM era {era!r}; known: {', '.join(ERAS)}")
    rt = Vllm()
    rt.era = era
    return rt
