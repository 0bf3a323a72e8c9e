"""MLX (mlx-lm) on Apple silicon: peak memory as mlx-lm reports it, prompt and generation speed.
``--runtime mlx``.

Rules (mlx-lm 0.2x / MLX 0.2x-0.3x; recalled from the source, named, not re-checked here):

- Weights (``mlx_lm/utils.py quantize_model`` -> ``mlx.nn.quantize``): every Linear, Embedding and
  SwitchLinear (MoE experts) whose input width is a multiple of the group size is quantized to
  ``bits`` with one scale and one bias per group in the model dtype (2 bytes each): bits + 32 /
  group_size bits per weight (4-bit, group 64: 4.5). The embedding is quantized too
  (QuantizedEmbedding) and a tied head uses it (``as_linear``); an untied head is a quantized Linear.
  Norms and biases stay 16-bit. MoE routers (``mlp.gate``) are kept at 8 bits by the models'
  ``quant_predicate`` (qwen3_moe, ...). bf16/fp16: 2 bytes.
- KV cache (``mlx_lm/models/cache.py``): ``KVCache`` grows keys and values in steps of 256 tokens,
  in the model dtype; ``RotatingKVCache`` (sliding-window layers) stops at the window.
- Prompt (``mlx_lm/generate.py generate_step``): processed in chunks of ``prefill_step_size``
  (2048) whose logits are never evaluated (MLX is lazy); the last chunk (1..2048 tokens) runs the
  head on every position: chunk x vocab logits in the model dtype. Attention is
  ``mx.fast.scaled_dot_product_attention`` (no score matrix). Live inside one layer: the MLP's
  gate and up outputs and their product (3 x chunk x ff; MoE: x experts per token).
- Peak (``mx.get_peak_memory``, what ``mlx_lm.generate``/``mlx_lm.benchmark`` print, in GB =
  1e9 bytes): weights + the larger of (KV at the prompt + the last chunk's activations and logits)
  and (KV at prompt + generation).
- Wired limit: ``mlx_lm.generate`` wires up to Metal's ``recommendedMaxWorkingSetSize`` (placement:
  about 2/3 of RAM up to 32 GB, 3/4 above); ``sudo sysctl iogpu.wired_limit_mb=N`` raises it
  (``--wired-limit-mb N``). Above it macOS pages and mlx-lm warns the model "can be slow".

Speeds: decode = bytes read per token / (efficiency x bandwidth) + layers x per-layer time;
prompt = FLOPs / (efficiency x peak); the factors are fitted on mlx_memory.csv (mlx-lm
BENCHMARKS.md, M4 Max) by benchmarks/accuracy_serving.py --fit, data/calibration.yaml ``serving.mlx``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from vramcalc.errors import InputError
from vramcalc.params import Tensor, llm_tensors
from vramcalc.quant import WeightBytes
from vramcalc.runtimes.serving import gib, hub_repo, serving_calibration, serving_inputs
from vramcalc.runtimes.transformers import Transformers
from vramcalc.units import GiB, MiB

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.results import Estimate, Workload
    from vramcalc.schema import GpuSpec, LlmSpec

VERSION = "mlx-lm 0.2x (MLX 0.2x-0.3x)"
#: The names and defaults below are recalled from mlx-lm's source (module docstring), not re-read here.
#: models/cache.py KVCache.step: the cache grows by this many tokens.
KV_STEP = 256
#: generate.py generate_step prefill_step_size default.
PREFILL_STEP = 2048
#: nn.quantize / mlx_lm.convert default q_group_size.
DEFAULT_GROUP = 64
#: mlx_lm.benchmark's default generation length (-g).
DEFAULT_GEN = 128
#: The MoE router's bits in the models' quant_predicate (``mlp.gate`` -> 8 bits, group 64).
ROUTER_BITS = 8
#: Headroom kept below the wired limit for "fits": a guess (the KV cache's next 256-token step, Metal's
#: command buffers and the process's own memory), not a rule of mlx-lm.
GUESS_MARGIN_BYTES = 1 * GiB
#: RAM left to macOS when suggesting a higher iogpu.wired_limit_mb: a guess (the system and apps need
#: some; Apple documents no floor), not a rule.
GUESS_MACOS_RESERVE_BYTES = 8 * GiB


def parse_quant(name: str) -> tuple[int, int]:
    """'4bit' / 'q4' / '4' / '4bit-g32' / 'bf16' -> (bits, group size); 16 = unquantized."""
    low = name.strip().lower()
    if low in ("bf16", "fp16", "float16", "bfloat16", "16bit", "f16"):
        return 16, 0
    m = re.fullmatch(r"(?:q|int)?([2-8])(?:-?bits?)?(?:[-_ ]?g(?:roup)?(\d+))?", low)
    if not m:
        raise InputError(f"Unknown mlx precision '{name}'. Known: 3bit, 4bit, 5bit, 6bit, 8bit (optionally -g32 / -g128), bf16, fp16.")
    group = int(m.group(2) or DEFAULT_GROUP)
    if group not in (32, 64, 128):
        raise InputError(f"MLX quantizes in groups of 32, 64 or 128, got {group}.")
    return int(m.group(1)), group


def canonical(name: str) -> str:
    bits, group = parse_quant(name)
    if bits == 16:
        return "fp16" if name.strip().lower() in ("fp16", "float16", "f16") else "bf16"
    return f"{bits}bit" + (f"-g{group}" if group != DEFAULT_GROUP else "")


def quantizable(t: Tensor, group: int) -> bool:
    """nn.quantize's predicate: Linear/Embedding/SwitchLinear weights whose input width divides into groups."""
    return t.ndim >= 2 and t.shape[0] % group == 0


def tensor_format(t: Tensor, bits: int, group: int) -> tuple[int, int]:
    """(bits, group) one tensor is stored at: 16 = unquantized (norms, biases, widths that do not divide
    into groups); the MoE router at ROUTER_BITS in groups of DEFAULT_GROUP (the models' quant_predicate)."""
    if bits == 16 or not quantizable(t, group):
        return 16, 0
    if t.role == "ffn_gate_inp":
        return ROUTER_BITS, DEFAULT_GROUP
    return bits, group


def tensor_bytes(t: Tensor, bits: int, group: int) -> int:
    """Bytes of one tensor in MLX's format: bits per weight + one 16-bit scale and bias per group."""
    b, g = tensor_format(t, bits, group)
    if b == 16:
        return 2 * t.numel
    return int(t.numel * b / 8) + t.numel // g * 4


def weight_bytes(llm: LlmSpec, precision: str) -> WeightBytes:
    """Bytes of the model at an MLX precision (module docstring)."""
    bits, group = parse_quant(precision)
    out = WeightBytes(precision)
    for t in llm_tensors(llm):
        b, _ = tensor_format(t, bits, group)
        out.add("bf16/fp16" if b == 16 else f"q{b}", t.numel, tensor_bytes(t, bits, group))
    return out


def kv_bytes(llm: LlmSpec, tokens: int) -> int:
    """KVCache in steps of 256 tokens; RotatingKVCache (sliding-window layers) at most the window; 2 bytes.
    Layers without a per-token cache (serving.layer_kv_heads: linear-attention, cross-attention) hold a
    fixed state instead: the linear-attention state (ArraysCache) at the config's state dtype is added."""
    from vramcalc.placement import kv_dims, recurrent_state_bytes
    from vramcalc.runtimes.serving import layer_kv_heads

    full = math.ceil(tokens / KV_STEP) * KV_STEP
    total = 0
    for i in range(llm.num_layers):
        heads = layer_kv_heads(llm, i)
        if heads is None:
            continue
        if llm.mla:
            k, v = kv_dims(llm)  # as before this change (the cache layout of mlx-lm's MLA models is not re-checked)
        else:
            k = v = heads[0] * heads[1]
        n = full
        if llm.sliding_window and llm.sliding_window.is_sliding(i):
            n = min(full, llm.sliding_window.size)
        total += n * (k + v) * 2
    return total + recurrent_state_bytes(llm, 1)


def prefill_bytes(llm: LlmSpec, prompt: int, step: int = PREFILL_STEP) -> int:
    """The last prompt chunk: logits of every position + the MLP intermediates of one layer (2 bytes)."""
    last = prompt - (math.ceil(prompt / step) - 1) * step if prompt > step else prompt
    ff = llm.moe.experts_per_token * llm.moe.expert_intermediate_size if llm.moe else llm.intermediate_size
    return 2 * last * llm.vocab_size + 2 * 3 * last * ff + 2 * 4 * last * llm.hidden_size


def peak_bytes(llm: LlmSpec, precision: str, prompt: int, gen: int, step: int = PREFILL_STEP) -> tuple[int, int, int, int]:
    """(peak, weights, KV at prompt + generation, prefill activations)."""
    w = weight_bytes(llm, precision).bytes
    act = prefill_bytes(llm, prompt, step)
    kv_end = kv_bytes(llm, prompt + gen)
    return w + max(kv_bytes(llm, prompt) + act, kv_end), w, kv_end, act


def active_read_bytes(llm: LlmSpec, precision: str) -> int:
    """Weight bytes one generated token reads: routed experts only; one embedding row (untied head read whole).
    Each tensor at the bytes ``weight_bytes`` counts for it (the router at 8 bits, too)."""
    wb = 0
    bits, group = parse_quant(precision)
    for t in llm_tensors(llm):
        one = tensor_bytes(t, bits, group)
        if t.role == "token_embd" and not llm.tied_embeddings:
            continue
        if t.role.endswith("_exps") and llm.moe:
            one = one * llm.moe.experts_per_token // llm.moe.num_experts
        wb += one
    return wb


def active_params(llm: LlmSpec) -> int:
    from vramcalc.runtimes.serving import active_params as ap

    return ap(llm)


class Mlx(Transformers):
    """The MLX (mlx-lm) runtime plugin."""

    name: str = "mlx"
    margin_note: str = "kept below the wired limit (Metal's recommended working set)"
    margin_bytes: int = GUESS_MARGIN_BYTES
    guesses: Mapping[str, int] = MappingProxyType(
        {"GUESS_MARGIN_BYTES": GUESS_MARGIN_BYTES, "GUESS_MACOS_RESERVE_BYTES": GUESS_MACOS_RESERVE_BYTES}
    )
    pytorch_kernels: bool = False

    def normalize_precision(self, name: str) -> str:
        return canonical(name)

    def default_precision(self, model: Any, llm: LlmSpec | None) -> str:
        return "4bit"

    def precisions(self, llm: LlmSpec) -> list[str]:
        return ["bf16", "8bit", "6bit", "4bit", "3bit"]

    def precision_label(self) -> list[str]:
        return ["bf16", "8bit", "6bit", "4bit", "3bit"]

    def smaller_precisions(self, current: str) -> list[str]:
        order = ["8bit", "6bit", "4bit", "3bit"]
        return order[order.index(current) + 1 :] if current in order else order

    def smaller_precision_change(self, precision: str) -> tuple[str, list[str]]:
        return f"use a {precision} MLX conversion", ["--quant", precision]

    def llm_weights(self, llm: LlmSpec, precision: str) -> WeightBytes:
        return weight_bytes(llm, precision)

    def places_layers(self, n_gpus: int) -> bool:
        return False

    def estimate_own(
        self, model: Any, gpus: list[GpuSpec], w: Workload, catalog: Catalog | None, weights: Any = None, notes: list[str] | None = None
    ) -> Estimate:
        from vramcalc.estimate import model_parts
        from vramcalc.params import count_params
        from vramcalc.placement import gpu_info, recurrent_state_bytes, verdict_for
        from vramcalc.results import (
            ComponentBytes,
            Estimate,
            GpuInfo,
            Memory,
            Params,
            ServingAnswer,
            ServingGpu,
            ServingOptions,
            SpeedBasis,
            SpeedFigure,
            Suggestion,
            Throughput,
        )
        from vramcalc.speed import calibration, decode_time, peak_tflops

        parts = model_parts(model, catalog)
        llm = parts.llm
        if llm is None:
            raise InputError("mlx-lm runs LLMs (mlx-vlm VLMs are not modelled); a vision encoder alone is not an mlx-lm workload.")
        gpu = gpus[0]
        if gpu.vendor != "apple" or len(gpus) > 1:
            raise InputError("MLX runs on one Apple silicon GPU (--gpu m4-max-40c-128gb, ...); use --runtime vllm/llama.cpp elsewhere.")
        opts = w.serving or ServingOptions()
        precision = canonical(w.quant or "4bit")
        prompt = w.context_tokens or 2048
        gen = opts.generation_tokens or DEFAULT_GEN
        step = opts.max_num_batched_tokens or PREFILL_STEP
        peak, wbytes, kv_end, act = peak_bytes(llm, precision, prompt, gen, step)
        base = gpu_info(gpu, True)
        limit = opts.wired_limit_mb * MiB if opts.wired_limit_mb else base.usable_bytes
        if limit > gpu.memory_bytes:
            raise InputError(f"--wired-limit-mb {opts.wired_limit_mb} is more than the {gpu.memory_bytes // MiB} MB of RAM.")
        head = limit - peak
        verdict = verdict_for(head, self)
        out_notes = [
            f"mlx-lm peak = weights {peak_gb(wbytes)} + max(KV at the prompt + last prompt chunk {peak_gb(act)}, KV at "
            f"{prompt + gen} tokens {peak_gb(kv_end)}) = {peak_gb(peak)} (mlx-lm prints GB = 1e9 bytes); a rule recalled from mlx-lm's "
            "source, checked against published runs: docs/accuracy_serving.md.",
            f"Wired limit {gib(limit)}"
            + (
                " (iogpu.wired_limit_mb)"
                if opts.wired_limit_mb
                else " (Metal's recommended working set; sudo sysctl iogpu.wired_limit_mb=N raises it)"
            )
            + f"; 'fits' keeps {gib(self.margin_bytes)} below it (a guess, not an mlx-lm rule).",
        ]
        sugg = None
        lower: list[str] = []
        if verdict == "no":
            need_mb = math.ceil((peak + self.margin_bytes) / MiB)
            if peak + self.margin_bytes <= gpu.memory_bytes - GUESS_MACOS_RESERVE_BYTES:
                lower.append(
                    f"--wired-limit-mb {need_mb} (sudo sysctl iogpu.wired_limit_mb={need_mb}; offered while it leaves "
                    f"macOS {gib(GUESS_MACOS_RESERVE_BYTES)}, a guess)"
                )
                sugg = Suggestion(
                    change=f"raise the wired limit to {need_mb} MB",
                    flags=["--wired-limit-mb", str(need_mb)],
                    total_bytes=peak,
                    verdict="fits",
                )
            for q in self.smaller_precisions(precision):
                p2 = peak_bytes(llm, q, prompt, gen, step)[0]
                if p2 + self.margin_bytes <= limit:
                    lower.append(f"--quant {q}")
                    sugg = sugg or Suggestion(change=f"use a {q} MLX conversion", flags=["--quant", q], total_bytes=p2, verdict="fits")
                    break
            out_notes.insert(
                0, f"Peak {peak_gb(peak)} exceeds the wired limit {gib(limit)}: macOS pages the weights and generation crawls."
            )

        # speeds
        cal = serving_calibration()["mlx"]
        unc = calibration()["uncalibrated_spread_log"]

        def fig(v: float, unit: str, basis: SpeedBasis, group: dict[str, Any]) -> SpeedFigure:
            k = math.exp(group.get("spread_log") or unc)
            return SpeedFigure(value=float(f"{v:.4g}"), low=float(f"{v / k:.4g}"), high=float(f"{v * k:.4g}"), unit=unit, basis=basis)  # type: ignore[arg-type]

        read = active_read_bytes(llm, precision) + kv_bytes(llm, prompt + gen // 2) // 1
        t_tok = decode_time(read, llm.num_layers, gpu.memory_bandwidth_gbs, cal["decode"])
        calibrated = bool(cal["decode"].get("rows"))
        dec = fig(
            1 / t_tok,
            "tokens/s",
            SpeedBasis(factors="serving.mlx.decode", calibrated=calibrated, bytes=read, bandwidth_gbs=gpu.memory_bandwidth_gbs),
            cal["decode"],
        )
        pk = peak_tflops(gpu)
        speeds = {"generation": dec}
        thr = Throughput(decode_tokens_per_s=dec, notes=[])
        if pk:
            flops = 2 * active_params(llm) * prompt
            t_pf = flops / (cal["prefill"]["compute_efficiency"] * pk * 1e12)
            pb = SpeedBasis(factors="serving.mlx.prefill", calibrated=bool(cal["prefill"].get("rows")), flops=flops, peak_tflops=pk)
            speeds["prompt"] = fig(prompt / t_pf, "tokens/s", pb, cal["prefill"])
            speeds["ttft"] = fig(t_pf, "s", pb, cal["prefill"])
            thr = Throughput(decode_tokens_per_s=dec, prefill_tokens_per_s=speeds["prompt"], time_to_first_token_s=speeds["ttft"], notes=[])
        thr_notes = [
            "Speeds: the roofline with the mlx-lm factors fitted on mlx_memory.csv (M4 Max, mlx_lm.benchmark); "
            "bands from the fit's residuals."
        ]
        thr = Throughput(
            decode_tokens_per_s=thr.decode_tokens_per_s,
            prefill_tokens_per_s=thr.prefill_tokens_per_s,
            time_to_first_token_s=thr.time_to_first_token_s,
            notes=thr_notes,
        )
        model_id = hub_repo(model)
        cmd = f"mlx_lm.generate --model {mlx_repo(model_id, precision)} --max-tokens {gen} --prompt <{prompt} tokens>"
        if opts.max_num_batched_tokens:
            cmd += f" --prefill-step-size {step}"
        out_notes.append("The command's repo follows mlx-community's naming (a guess: check the conversion exists).")
        g = ServingGpu(
            stage=0,
            layers=llm.num_layers,
            usable_bytes=limit,
            weights_bytes=wbytes,
            non_torch_bytes=0,
            activation_bytes=act,
            kv_cache_bytes=kv_end,
            # per token: kv_bytes less the linear-attention layers' fixed state (one request's, not a token's)
            kv_bytes_per_token=(kv_bytes(llm, KV_STEP) - recurrent_state_bytes(llm, 1)) // KV_STEP,
            kv_cache_tokens=math.ceil((prompt + gen) / KV_STEP) * KV_STEP,
        )
        ans = ServingAnswer(
            runtime_version=VERSION,
            starts=verdict != "no",
            error=None,
            lower=lower,
            tensor_parallel=1,
            pipeline_parallel=1,
            memory_fraction=1.0,
            max_model_len=prompt + gen,
            max_num_seqs=1,
            max_num_batched_tokens=step,
            kv_cache_dtype="fp16" if precision == "fp16" else "bf16",
            block_size=KV_STEP,
            kv_cache_tokens=g.kv_cache_tokens,
            max_concurrency=1.0,
            k_cache_bytes=kv_end // 2,
            v_cache_bytes=kv_end // 2,
            cuda_graph_bytes=0,
            smallest_tp=None,
            peak_bytes=peak,
            command=cmd,
            gpus=[g],
            speeds=speeds,
            concurrency=1,
            notes=out_notes,
        )
        pc = count_params(llm)
        wb = weight_bytes(llm, precision)
        return Estimate(
            inputs=serving_inputs(
                model,
                parts,
                gpu,
                self.name,
                precision,
                encoder=None,
                text_tokens=prompt,
                images=0,
                context_tokens=prompt + gen,
                batch=1,
                kv_cache="f16",
                n_ubatch=step,
            ),
            params=Params(llm=pc.llm, vision=0, projector=0),
            memory=Memory(
                weights_bytes=ComponentBytes(llm=wbytes),
                weights_host_bytes=0,
                weights_bits_per_weight=round(wb.bits_per_weight, 3),
                weights_by_type=dict(sorted(wb.by_type.items(), key=lambda kv_: -kv_[1])),
                kv_cache_bytes=peak - wbytes - act if peak - wbytes - act > kv_end else kv_end,
                kv_cache_cells=g.kv_cache_tokens,
                compute_bytes=ComponentBytes(llm=act if peak - wbytes > kv_end else 0),
                overhead_bytes=0,
            ),
            gpu=GpuInfo(
                id=gpu.id,
                name=gpu.name,
                memory_bytes=gpu.memory_bytes,
                usable_bytes=limit,
                unified_memory=True,
                memory_bandwidth_gbs=gpu.memory_bandwidth_gbs,
            ),
            verdict=verdict,
            headroom_bytes=head,
            max_context_tokens=None,
            suggestion=sugg,
            notes=[*(notes or []), *out_notes],
            throughput=thr,
            offload=None,
            serving=ans,
        )


def peak_gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def mlx_repo(model_id: str, precision: str) -> str:
    """The mlx-community conversion's usual name (a guess at the repo; check it exists)."""
    base = model_id.split("/")[-1]
    return f"mlx-community/{base}-{precision}"
