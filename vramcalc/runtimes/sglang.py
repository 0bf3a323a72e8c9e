"""SGLang: the same shape as vLLM with its own names and its own pool rule. ``--runtime sglang``.

Rules (SGLang 0.4-0.5, ``srt/model_executor/model_runner.py``; recalled from the source, named,
not re-checked here):

- ``ModelRunner.profile_max_num_token``: after the weights load, ``available`` = the free GPU
  memory (the minimum over TP ranks); ``rest = available - total x (1 - mem_fraction_static)``;
  ``max_total_num_tokens = rest // cell_size`` with ``cell_size = kv_heads_per_rank x head_dim x
  layers x 2 x element size`` (MLA: ``(kv_lora_rank + qk_rope_head_dim) x layers x element size``).
  Activations and CUDA graphs live in the ``1 - mem_fraction_static`` share, outside the pool.
- ``mem_pool.py MHATokenToKVPool`` prints ``KV Cache is allocated. #tokens: N, K size: X GB,
  V size: X GB`` (GB there is GiB: bytes / 2^30).
- ``server_args.py ServerArgs.__post_init__`` default mem_fraction_static by TP size: 0.88 (TP1),
  0.87 (TP2), 0.85 (TP4), 0.81 (TP8), 0.79 (TP16) (the table of SGLang 0.3-0.4; newer versions also
  scale it by GPU memory: pass --mem-fraction-static to be exact).
- ``max_total_num_tokens <= 0`` stops the server ("Not enough memory. Please try to increase
  --mem-fraction-static.").

The memory taken before the pool (CUDA context, NCCL buffers) is the vLLM ``non_torch`` constant
(data/calibration.yaml ``serving.vllm``): a property of CUDA/NCCL, not fitted on SGLang rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vramcalc.runtimes.serving import gib, kv_per_token, pp_layers, serving_calibration, stage_weight_bytes
from vramcalc.runtimes.vllm import Setup, Vllm
from vramcalc.units import GiB

if TYPE_CHECKING:
    from vramcalc.results import ServingGpu, ServingOptions
    from vramcalc.schema import GpuSpec, LlmSpec

VERSION = "SGLang 0.4-0.5 (ModelRunner.profile_max_num_token)"
#: server_args.py default mem_fraction_static by TP size (largest TP first).
DEFAULT_FRACTION = ((16, 0.79), (8, 0.81), (4, 0.85), (2, 0.87), (1, 0.88))
QUANT_FLAG = {"fp8": "fp8", "awq-int4": "awq", "gptq-int4": "gptq", "gptq-int8": "gptq", "nf4": "bitsandbytes", "mxfp4": "mxfp4"}


def default_fraction(tp: int) -> float:
    return next(f for t, f in DEFAULT_FRACTION if tp >= t)


class Sglang(Vllm):
    """The SGLang runtime plugin."""

    name: str = "sglang"
    margin_note: str = "SGLang takes --mem-fraction-static of each GPU for weights + KV pool"
    version: str = VERSION
    block_size: int = 1
    fraction_flag: str = "--mem-fraction-static"
    len_flag: str = "--context-length"
    seqs_flag: str = "--max-running-requests"
    tp_flag: str = "--tp"
    needs_full_request: bool = False

    def setup(self, llm: LlmSpec, gpu: GpuSpec, n_gpus: int, opts: ServingOptions, model_dtype: str) -> Setup:
        cal = serving_calibration()["vllm"]
        tp = opts.tensor_parallel or n_gpus
        return Setup(
            tp=tp,
            pp=opts.pipeline_parallel or opts.nodes,
            fraction=opts.memory_fraction or default_fraction(tp),
            max_model_len=opts.max_model_len or llm.max_context,
            max_num_seqs=opts.max_num_seqs or 0,
            max_num_batched_tokens=opts.max_num_batched_tokens or 0,
            kv_elem=1 if opts.kv_cache_dtype == "fp8" else 2,
            kv_name="fp8_e5m2" if opts.kv_cache_dtype == "fp8" else model_dtype,
            eager=opts.enforce_eager,
            total=gpu.memory_bytes - int(cal["cuda_reserved_gib"]["value"] * GiB),
        )

    def stages(self, llm: LlmSpec, precision: str, s: Setup) -> list[ServingGpu]:
        from vramcalc.results import ServingGpu

        out = []
        weights = stage_weight_bytes(llm, precision, s.tp, s.pp)
        for i, n in enumerate(pp_layers(llm.num_layers, s.pp)):
            k, v = kv_per_token(llm, n, s.tp, s.kv_elem)
            ctx = self.non_torch_bytes(s.tp, s.pp)
            available = s.total - weights[i] - ctx
            rest = available - int(s.total * (1 - s.fraction))
            out.append(
                ServingGpu(
                    stage=i,
                    layers=n,
                    usable_bytes=int(s.total * s.fraction),
                    weights_bytes=weights[i],
                    non_torch_bytes=ctx,
                    activation_bytes=0,
                    kv_cache_bytes=rest,
                    kv_bytes_per_token=k + v,
                    kv_cache_tokens=max(0, rest) // (k + v),
                )
            )
        return out

    def start_error(self, s: Setup, g: ServingGpu, max_len: int) -> str:
        return "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static."

    def command(self, model_id: str, precision: str, s: Setup, opts: ServingOptions) -> str:
        parts = ["python -m sglang.launch_server --model-path", model_id]
        if precision in QUANT_FLAG:
            parts += ["--quantization", QUANT_FLAG[precision]]
        if s.tp > 1:
            parts += ["--tp", str(s.tp)]
        if s.pp > 1:
            parts += ["--pp-size", str(s.pp), "--nnodes", str(opts.nodes)]
        parts += ["--mem-fraction-static", f"{s.fraction:g}", "--context-length", str(s.max_model_len)]
        if opts.max_num_seqs:
            parts += ["--max-running-requests", str(opts.max_num_seqs)]
        if s.kv_elem == 1:
            parts += ["--kv-cache-dtype", "fp8_e5m2"]
        if s.eager:
            parts.append("--disable-cuda-graph")
        return " ".join(parts)

    def describe(self, s: Setup, g: ServingGpu) -> list[str]:
        notes = [
            f"SGLang per GPU: total {gib(s.total)}; after weights {gib(g.weights_bytes)} and the CUDA/NCCL context "
            f"{gib(g.non_torch_bytes)}, the pool gets what exceeds {gib(s.total * (1 - s.fraction))} "
            f"(1 - mem_fraction_static {s.fraction:g}): {gib(max(0, g.kv_cache_bytes))} = max_total_num_tokens "
            f"{g.kv_cache_tokens:,} x {g.kv_bytes_per_token} bytes."
        ]
        if 0 < g.kv_cache_tokens < s.max_model_len:
            notes.append(
                f"The pool holds {g.kv_cache_tokens:,} tokens, fewer than --context-length {s.max_model_len}: "
                "one long request cannot be held whole."
            )
        return notes
