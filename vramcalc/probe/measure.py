"""Measure a real transformers vision tower: FLOPs, simulated or CUDA memory, latency (torch, lazily).

- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` (2 x MACs of matmul / conv / SDPA). PyTorch's
  table has no entry for the CPU flash-attention kernel that SDPA picks on CPU tensors, so the same
  ``sdpa_flop`` formula is mapped onto it (otherwise CPU runs would count no attention at all).
- Simulated memory: the model is built on the meta device, its weights swapped for fake tensors, and the
  real model code runs under ``FakeTensorMode`` with ``torch.distributed._tools.mem_tracker.MemTracker``
  counting every tensor's storage (rounded to 512 bytes like the CUDA caching allocator). Nothing is
  allocated, so full-size encoders at batch 32 take well under a second on a laptop CPU.
- CUDA: ``reset_peak_memory_stats`` / ``max_memory_allocated`` / ``max_memory_reserved`` around the
  timed passes, CUDA events for latency, OOM caught and returned as a result.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import Any

from vramcalc.schema import VisionEncoderSpec

TORCH_DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, TORCH_DTYPES[name])


def _flop_counter() -> Any:
    """FlopCounterMode that also counts the CPU flash-attention kernel with PyTorch's own SDPA formula."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_flash_flop(query: Any, key: Any, value: Any, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
        return sdpa_flop_count(query.shape, key.shape, value.shape)

    cpu_flash_flop._get_raw = True  # type: ignore[attr-defined]  # gets the tensors, like flop_counter's raw formulas
    mapping = {}
    cpu_flash = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_flash is not None:
        mapping[cpu_flash] = cpu_flash_flop
    return FlopCounterMode(display=False, custom_mapping=mapping)


@dataclass
class Simulated:
    flops: int
    activation_bytes: int  # peak of everything but parameters and buffers (input included)
    weights_bytes: int  # parameters + buffers as MemTracker counts them


def _register_packed_attention() -> str:
    """A flash-style attention for Qwen towers under FakeTensorMode (see ``simulate``); returns its name.

    transformers' SDPA path for Qwen-VL towers splits q/k/v per image with ``cu_seqlens.tolist()``,
    which needs real data. Every image of a probe batch has the same size, so the packed sequence is
    reshaped to (images, heads, tokens, dim) and SDPA runs once: the same kernel, the same output
    allocation as flash-attention's varlen call. The name contains 'flash' so transformers takes its
    packed (varlen) branch and passes ``max_length_q``.
    """
    import torch
    from transformers import AttentionInterface

    name = "vramcalc_packed_flash_sdpa"

    def packed(module: Any, q: Any, k: Any, v: Any, attention_mask: Any = None, scaling: float | None = None, **kw: Any) -> Any:
        n = kw["max_length_q"]
        heads, total, dim = q.shape[1], q.shape[2], q.shape[3]
        b = total // n

        def split(t: Any) -> Any:  # (1, H, B*n, d) -> (B, H, n, d), a view
            return t[0].unflatten(1, (b, n)).transpose(0, 1)

        out = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v), scale=scaling)
        return out.transpose(1, 2).reshape(1, total, heads, dim), None

    AttentionInterface.register(name, packed)
    return name


class Simulator:
    """One encoder built once on fake tensors; ``run(batch, width, height)`` measures a configuration.

    The real transformers model code runs under FakeTensorMode: FLOPs are exact, tensor memory is
    exact (MemTracker), nothing is allocated.
    """

    def __init__(self, spec: VisionEncoderSpec, dtype: str, attn: str = "sdpa", merger_out_size: int | None = None):
        import torch
        from torch._subclasses.fake_tensor import FakeTensorMode

        from vramcalc.probe.models import build_model

        self.spec = spec
        self.dtype = torch_dtype(dtype)
        self.qwen = spec.family in ("qwen2_vit", "qwen25_vit")
        self.fake = FakeTensorMode(allow_non_fake_inputs=True)
        self.built = build_model(spec, dtype=self.dtype, fake_mode=self.fake, attn=attn, merger_out_size=merger_out_size)
        if self.qwen and attn != "eager":
            # set after construction: transformers would try to load a flash-attention kernel for a 'flash' name
            self.built.model.config._attn_implementation_internal = _register_packed_attention()

    def run(self, batch: int, width: int, height: int) -> Simulated:
        import torch
        from torch.distributed._tools.mem_tracker import MemTracker

        from vramcalc.probe.models import forward_kwargs

        model = self.built.model
        real_inputs = self.built.make_inputs(batch, width, height, self.dtype)
        extra = forward_kwargs(self.spec)
        if self.qwen:
            # the packed path asks for the longest sequence; every image has the same size here
            cu = real_inputs["cu_seqlens"]
            extra["max_seqlen"] = int((cu[1:] - cu[:-1]).max())
        with self.fake:
            inputs = {k: (self.fake.from_tensor(v) if k in ("hidden_states", "pixel_values") else v) for k, v in real_inputs.items()}
            counter = _flop_counter()
            with torch.inference_mode(), counter:
                model(**inputs, **dict(extra))
            flops = counter.get_total_flops()
            tracker = MemTracker()
            tracker.track_external(model, *[v for k, v in inputs.items() if k in ("hidden_states", "pixel_values")])
            with tracker, torch.inference_mode():
                out = model(**inputs, **dict(extra))
                del out
            snap = tracker.get_tracker_snapshot("peak")
        total = weights = 0
        for dev_snap in snap.values():
            items = {str(getattr(k, "value", k)): v for k, v in dev_snap.items()}
            weights += items.get("Parameter", 0) + items.get("Buffer", 0)
            total += items.get("Total", 0)
        return Simulated(flops=int(flops), activation_bytes=int(total - weights), weights_bytes=int(weights))


def simulate(spec: VisionEncoderSpec, batch: int, width: int, height: int, dtype: str, attn: str = "sdpa", merger_out_size: int | None = None) -> Simulated:
    """Run the real model code under FakeTensorMode: exact FLOPs and tensor memory, nothing allocated."""
    return Simulator(spec, dtype, attn, merger_out_size).run(batch, width, height)


def count_flops_real(model: Any, inputs: dict[str, Any], extra: dict[str, Any]) -> int:
    import torch

    counter = _flop_counter()
    with torch.inference_mode(), counter:
        model(**inputs, **extra)
    return int(counter.get_total_flops())


def cpu_latency(model: Any, inputs: dict[str, Any], extra: dict[str, Any], repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of a CPU forward pass (seconds)."""
    import torch

    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            model(**inputs, **extra)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


@dataclass
class CudaMeasurement:
    status: str  # ok | oom
    weights_bytes: int | None = None
    activation_bytes: int | None = None
    peak_allocated_bytes: int | None = None
    reserved_bytes: int | None = None
    latency_s: float | None = None
    flops: int | None = None


def cuda_run(model: Any, make_inputs: Any, batch: int, width: int, height: int, dtype: Any, extra: dict[str, Any], weights_bytes: int, repeats: int = 5, warmup: int = 2) -> CudaMeasurement:
    """Peak allocated / reserved memory and median latency of one configuration on the current CUDA device.

    The warm-up passes allocate the cuBLAS workspace and settle the caching allocator; the baseline is
    taken after them, so ``activation_bytes`` = max_memory_allocated during the timed passes minus what
    was allocated before the input was created (weights, buffers, workspace).
    """
    import torch

    inputs = None
    try:
        torch.cuda.synchronize()
        gc.collect()
        torch.cuda.empty_cache()
        inputs = make_inputs(batch, width, height, dtype, "cuda")
        with torch.inference_mode():
            for _ in range(warmup):
                model(**inputs, **extra)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated() - sum(v.numel() * v.element_size() for v in inputs.values() if torch.is_tensor(v))
        torch.cuda.reset_peak_memory_stats()
        times = []
        with torch.inference_mode():
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                out = model(**inputs, **extra)
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1000)
                del out
        peak = torch.cuda.max_memory_allocated()
        reserved = torch.cuda.max_memory_reserved()
        flops = count_flops_real(model, inputs, extra)
        return CudaMeasurement(
            status="ok", weights_bytes=weights_bytes, activation_bytes=peak - base, peak_allocated_bytes=peak,
            reserved_bytes=reserved, latency_s=statistics.median(times), flops=flops,
        )
    except torch.cuda.OutOfMemoryError:
        return CudaMeasurement(status="oom", weights_bytes=weights_bytes)
    finally:
        inputs = None
        gc.collect()
        torch.cuda.empty_cache()


def model_bytes(model: Any) -> int:
    """Parameter + buffer bytes of a built model."""
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
