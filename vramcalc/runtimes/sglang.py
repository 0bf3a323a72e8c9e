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
The settings, per-GPU stages and launch line are built by runtimes/serving.py from the names here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from vramcalc.runtimes.serving import ServingRuntime, Setup, gib
from vramcalc.runtimes.transformers import Transformers

if TYPE_CHECKING:
    from vramcalc.results import ServingGpu

VERSION = "SGLang 0.4-0.5 (ModelRunner.profile_max_num_token)"
#: server_args.py default mem_fraction_static by TP size (largest TP first): recalled (module docstring),
#: SGLang 0.3-0.4's table; newer versions also scale it by GPU memory (the describe note says so).
DEFAULT_FRACTION = ((16, 0.79), (8, 0.81), (4, 0.85), (2, 0.87), (1, 0.88))
#: ``--quantization`` spellings per vramcalc precision.
QUANT_FLAG = MappingProxyType(
    {"fp8": "fp8", "awq-int4": "awq", "gptq-int4": "gptq", "gptq-int8": "gptq", "nf4": "bitsandbytes", "mxfp4": "mxfp4"}
)


def default_fraction(tp: int) -> float:
    return next(f for t, f in DEFAULT_FRACTION if tp >= t)


class Sglang(ServingRuntime, Transformers):
    """The SGLang runtime plugin."""

    name: str = "sglang"
    margin_note: str = "SGLang takes --mem-fraction-static of each GPU for weights + KV pool"
    guesses: Mapping[str, int] = MappingProxyType({})
    version: str = VERSION
    #: The token pool allocates per token (page size 1).
    block_size: int = 1
    fraction_flag: str = "--mem-fraction-static"
    len_flag: str = "--context-length"
    seqs_flag: str = "--max-running-requests"
    tp_flag: str = "--tp"
    launch: str = "python -m sglang.launch_server --model-path"
    quant_flags: Mapping[str, str] = QUANT_FLAG
    kv_fp8_name: str = "fp8_e5m2"
    eager_flag: str = "--disable-cuda-graph"
    needs_full_request: bool = False

    def default_fraction(self, tp: int) -> float:
        return default_fraction(tp)

    def pool_bytes(self, s: Setup, weights: int, non_torch: int, activation: int) -> int:
        available = s.total - weights - non_torch
        return available - int(s.total * (1 - s.fraction))

    def pp_args(self, s: Setup, opts: Any) -> list[str]:
        return ["--pp-size", str(s.pp), "--nnodes", str(opts.nodes)]

    def start_error(self, s: Setup, g: ServingGpu, max_len: int, need: int) -> str:
        return "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static."

    def describe(self, s: Setup, g: ServingGpu) -> list[str]:
        notes = [
            f"SGLang per GPU: total {gib(s.total)}; after weights {gib(g.weights_bytes)} and the CUDA/NCCL context "
            f"{gib(g.non_torch_bytes)}, the pool gets what exceeds {gib(s.total * (1 - s.fraction))} "
            f"(1 - mem_fraction_static {s.fraction:g}): {gib(max(0, g.kv_cache_bytes))} = max_total_num_tokens "
            f"{g.kv_cache_tokens:,} x {g.kv_bytes_per_token} bytes. These SGLang rules (and the default fraction, its "
            "0.3-0.4 table by TP size) are recalled from its source (not re-read here) and checked against published "
            "start-up lines: docs/accuracy_serving.md."
        ]
        if 0 < g.kv_cache_tokens < s.max_model_len:
            notes.append(
                f"The pool holds {g.kv_cache_tokens:,} tokens, fewer than --context-length {s.max_model_len}: "
                "one long request cannot be held whole."
            )
        return notes
