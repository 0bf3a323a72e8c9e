"""vLLM: a server that takes a fixed share of each GPU and fills what weights, activations and
the CUDA context leave with KV-cache blocks. ``--runtime vllm``.

The memory rules, per GPU (vLLM V1, 0.10-0.20; recalled from the source, named, not re-checked here):

- ``v1/worker/gpu_worker.py Worker.determine_available_memory()`` with ``utils.memory_profiling``:
  requested = total_gpu_memory x gpu_memory_utilization; KV = requested - (weights +
  non_torch_memory + torch peak increase of the profile run). CUDA graphs are captured after the
  KV cache is allocated, in the memory the fraction leaves (from 0.21 an estimate is subtracted
  first: not modelled, said in a note).
- weights: runtimes/serving.py (TP/PP sharding).
- the profile run (``gpu_model_runner.profile_run``): one forward of max_num_batched_tokens
  tokens, then ``_dummy_sampler_run`` on min(max_num_seqs, tokens) rows of logits with top-k/top-p
  on (so the sampler sorts the vocabulary). Its activation peak is modelled as the largest tensor of
  the forward, the gate_up output of one MLP (tokens x 2 x ff / tp x 2 bytes; MoE: tokens x top-k x
  2 x expert ff / tp, fused_moe intermediate_cache1), plus the sampler on the logits:
  bf16 logits (2) + fp32 logits (4) + sorted values (4) + int64 sort indices (8) + softmax of the
  sorted values (4) + cumsum (4) + the scattered-back logits (4) = 30 bytes per logit
  (``v1/sample/ops/topk_topp_sampler.py apply_top_k_top_p``; V0 ``model_executor/layers/sampler.py``
  ``_apply_top_k_top_p`` sorts alike).
- KV blocks (``v1/core/kv_cache_utils.py``): page = block_size (16) x per-token bytes of the
  rank's layers; num_blocks = KV // page; GPU KV cache size = num_blocks x block_size tokens;
  maximum concurrency = tokens / max_model_len. ``check_enough_kv_cache_memory`` refuses to start
  when one request of max_model_len does not fit (its error is quoted in ``error``).
- defaults (``engine/arg_utils.py _set_default_args_v1``, ``vllm serve``): max_num_batched_tokens
  2048 and max_num_seqs 256 on GPUs under 70 GiB, 8192 and 1024 from 70 GiB (H100/H200/MI300
  class); gpu_memory_utilization 0.9; max_model_len = the model's.

Fitted (data/calibration.yaml ``serving.vllm``, what each was fitted on is listed there):
non_torch_memory with and without TP (CUDA context, NCCL buffers), CUDA-graph memory, and the
memory the CUDA driver keeps from ``cudaMemGetInfo``'s total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from vramcalc.errors import InputError
from vramcalc.quant import normalize_torch_format
from vramcalc.runtimes.serving import (
    ServingRuntime,
    gib,
    kv_per_token,
    pp_layers,
    serving_calibration,
    stage_weight_bytes,
)
from vramcalc.runtimes.transformers import Transformers
from vramcalc.units import GiB

if TYPE_CHECKING:
    from vramcalc.results import ServingGpu, ServingOptions
    from vramcalc.schema import GpuSpec, LlmSpec

VERSION = "vLLM V1 0.10-0.20 (memory rules); V0 0.6-0.8 defaults where a row says so"
BLOCK_SIZE = 16
#: Bytes per logit held at the sampler's peak (see the module docstring).
SAMPLER_BYTES_PER_LOGIT = 2 + 4 + 4 + 8 + 4 + 4 + 4
#: GPUs of this size and up get the larger V1 defaults (arg_utils: device memory >= 70 GiB).
LARGE_GPU = 70 * GiB
#: ``vllm serve --quantization`` spellings per vramcalc precision (None: from the checkpoint's config).
QUANT_FLAG = {"fp8": "fp8", "int8": "bitsandbytes", "nf4": "bitsandbytes"}
PRECISIONS = ("bf16", "fp16", "fp8", "awq-int4", "gptq-int4", "gptq-int8", "nf4", "mxfp4")


def _normalize(name: str, runtime: str) -> str:
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


def activation_peak(llm: LlmSpec, tokens: int, seqs: int, tp: int) -> int:
    """The profile run's torch peak increase (module docstring)."""
    if llm.moe:
        fwd = tokens * llm.moe.experts_per_token * 2 * llm.moe.expert_intermediate_size // tp * 2
    else:
        fwd = tokens * 2 * llm.intermediate_size // tp * 2
    rows = min(seqs, tokens)
    return fwd + rows * llm.vocab_size * SAMPLER_BYTES_PER_LOGIT


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

    def normalize_precision(self, name: str) -> str:
        return _normalize(name, self.name)

    def precisions(self, llm: LlmSpec) -> list[str]:
        return [llm.dtype if llm.dtype != "fp32" else "bf16", "fp8", "awq-int4"]

    def precision_label(self) -> list[str]:
        return ["bf16/fp16", "fp8", "awq-int4"]

    def smaller_precisions(self, current: str) -> list[str]:
        order = ["fp8", "awq-int4"]
        return order[order.index(current) + 1 :] if current in order else order

    def smaller_precision_change(self, precision: str) -> tuple[str, list[str]]:
        return f"serve a {precision} checkpoint", ["--quant", precision]

    # --- the serving hooks (runtimes/serving.py calls these)

    def setup(self, llm: LlmSpec, gpu: GpuSpec, n_gpus: int, opts: ServingOptions, model_dtype: str) -> Setup:
        cal = serving_calibration()["vllm"]
        total = gpu.memory_bytes - int(cal["cuda_reserved_gib"]["value"] * GiB)
        large = gpu.memory_bytes >= LARGE_GPU
        tp = opts.tensor_parallel or n_gpus
        pp = opts.pipeline_parallel or opts.nodes
        mml = opts.max_model_len or llm.max_context
        return Setup(
            tp=tp,
            pp=pp,
            fraction=opts.memory_fraction or 0.9,
            max_model_len=mml,
            max_num_seqs=opts.max_num_seqs or (1024 if large else 256),
            max_num_batched_tokens=opts.max_num_batched_tokens or (8192 if large else 2048),
            kv_elem=1 if opts.kv_cache_dtype == "fp8" else 2,
            kv_name="fp8" if opts.kv_cache_dtype == "fp8" else model_dtype,
            eager=opts.enforce_eager,
            total=total,
        )

    def non_torch_bytes(self, tp: int, pp: int) -> int:
        cal = serving_calibration()["vllm"]
        key = "non_torch_tp1_gib" if tp * pp == 1 else "non_torch_multi_gib"
        return int(cal[key]["value"] * GiB)

    def cuda_graph_bytes(self, s: Setup) -> int:
        return 0 if s.eager else int(serving_calibration()["vllm"]["cuda_graph_gib"]["value"] * GiB)

    def stages(self, llm: LlmSpec, precision: str, s: Setup) -> list[ServingGpu]:
        from vramcalc.results import ServingGpu

        out = []
        weights = stage_weight_bytes(llm, precision, s.tp, s.pp)
        act = activation_peak(llm, s.max_num_batched_tokens, s.max_num_seqs, s.tp)
        usable = int(s.total * s.fraction)
        for i, n in enumerate(pp_layers(llm.num_layers, s.pp)):
            k, v = kv_per_token(llm, n, s.tp, s.kv_elem)
            per_tok = k + v
            non_torch = self.non_torch_bytes(s.tp, s.pp)
            left = usable - weights[i] - non_torch - act
            blocks = max(0, left) // (self.block_size * per_tok)
            out.append(
                ServingGpu(
                    stage=i,
                    layers=n,
                    usable_bytes=usable,
                    weights_bytes=weights[i],
                    non_torch_bytes=non_torch,
                    activation_bytes=act,
                    kv_cache_bytes=left,
                    kv_bytes_per_token=per_tok,
                    kv_cache_tokens=blocks * self.block_size,
                )
            )
        return out

    def start_error(self, s: Setup, g: ServingGpu, max_len: int) -> str:
        """vLLM's own words (v1/core/kv_cache_utils.py check_enough_kv_cache_memory)."""
        if g.kv_cache_bytes <= 0:
            return (
                "ValueError: No available memory for the cache blocks. "
                "Try increasing `gpu_memory_utilization` when initializing the engine."
            )
        need = s.max_model_len * g.kv_bytes_per_token
        return (
            f"ValueError: To serve at least one request with the models's max seq len ({s.max_model_len}), "
            f"({need / GiB:.2f} GiB KV cache is needed, which is larger than the available KV cache memory "
            f"({g.kv_cache_bytes / GiB:.2f} GiB). Based on the available memory, the estimated maximum model length is {max_len}. "
            "Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
        )

    def command(self, model_id: str, precision: str, s: Setup, opts: ServingOptions) -> str:
        parts = ["vllm serve", model_id]
        if precision in QUANT_FLAG:
            parts += ["--quantization", QUANT_FLAG[precision]]
        if s.tp > 1:
            parts += ["--tensor-parallel-size", str(s.tp)]
        if s.pp > 1:
            parts += ["--pipeline-parallel-size", str(s.pp)]
            if opts.nodes > 1:
                parts += ["--distributed-executor-backend", "ray"]
        parts += ["--gpu-memory-utilization", f"{s.fraction:g}", "--max-model-len", str(s.max_model_len)]
        if opts.max_num_seqs:
            parts += ["--max-num-seqs", str(s.max_num_seqs)]
        if opts.max_num_batched_tokens:
            parts += ["--max-num-batched-tokens", str(s.max_num_batched_tokens)]
        if s.kv_elem == 1:
            parts += ["--kv-cache-dtype", "fp8"]
        if s.eager:
            parts.append("--enforce-eager")
        if opts.mm_items is not None:
            parts += ["--limit-mm-per-prompt", f"'{{\"image\": {opts.mm_items}}}'"]
        return " ".join(parts)

    def describe(self, s: Setup, g: ServingGpu) -> list[str]:
        return [
            f"vLLM per GPU: total {gib(s.total)} x gpu_memory_utilization {s.fraction:g} = {gib(g.usable_bytes)}; "
            f"weights {gib(g.weights_bytes)}, non_torch {gib(g.non_torch_bytes)}, activation peak {gib(g.activation_bytes)} "
            f"(profile run: {s.max_num_batched_tokens} tokens, {min(s.max_num_seqs, s.max_num_batched_tokens)} sampled rows); "
            f"the rest, {gib(max(0, g.kv_cache_bytes))}, is KV cache in blocks of {self.block_size} tokens x "
            f"{g.kv_bytes_per_token} bytes.",
        ]
