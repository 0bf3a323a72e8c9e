"""Measure a real transformers vision tower: FLOPs, simulated or CUDA memory, latency (torch, lazily).

- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` (2 x MACs of matmul / conv / SDPA). PyTorch's
  table has no entry for the CPU flash-attention kernel that SDPA picks on CPU tensors, so the same
  ``sdpa_flop`` formula is mapped onto it (otherwise CPU runs would count no attention at all).
- Simulated memory: the model is built on the meta device, its weights swapped for fake tensors, and the
  real model code runs under ``FakeTensorMode`` with a dispatch-mode tracker counting every tensor's storage
  (rounded to 512 bytes like the CUDA caching allocator): the accounting of
  ``torch.distributed._tools.mem_tracker.MemTracker`` (checked equal in the tests), without its per-module cost. Nothing is
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


#: The CUDA caching allocator rounds every request up to 512 bytes (kMinBlockSize,
#: c10/cuda/CUDACachingAllocator.cpp); MemTracker rounds the same way (_PYTORCH_MIN_ALLOCATE = 2**9 in
#: torch/distributed/_tools/mem_tracker.py, checked in the installed torch 2.13).
_BLOCK = 512
#: The forward kwargs that hold the image (pixel_values; Qwen towers: the packed hidden_states).
_IMAGE_KEYS = ("hidden_states", "pixel_values")


def _images(inputs: dict[str, Any]) -> list[Any]:
    return [v for k, v in inputs.items() if k in _IMAGE_KEYS]


@dataclass
class Simulated:
    flops: int
    activation_bytes: int  # peak of everything but parameters and buffers (input included)
    weights_bytes: int  # parameters + buffers as MemTracker counts them


def peak_tracker() -> Any:
    """A TorchDispatchMode that counts every storage the model code creates (rounded up to 512 bytes, the
    CUDA caching allocator's granularity, as MemTracker does) and keeps the peak of the live total.

    The same accounting as ``torch.distributed._tools.mem_tracker.MemTracker`` without its per-module
    snapshots, which cost O(modules) per op (5-10x slower on 40-layer towers); a test checks that both agree.
    Storages registered with ``known()`` (weights, buffers, the input) are not counted, also when an op
    returns a view of them.
    """
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class PeakTracker(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.live: dict[int, int] = {}
            self.current = 0
            self.peak = 0
            self._known: list[Any] = []  # keeps the known storages (and so their ids) alive

        def known(self, *tensors: Any) -> None:
            for t in tensors:
                st = t.untyped_storage()
                self._known.append(st)
                self.live[id(st)] = 0

        def _free(self, key: int) -> None:
            self.current -= self.live.pop(key, 0)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    st = t.untyped_storage()
                    key = id(st)
                    if key in self.live or st.nbytes() == 0:
                        continue
                    n = -(-st.nbytes() // _BLOCK) * _BLOCK
                    self.live[key] = n
                    self.current += n
                    weakref.finalize(st, self._free, key)
            self.peak = max(self.peak, self.current)
            return out

    return PeakTracker()


#: max sequence length -> the segment lengths of a packed batch (set per run, read by the packed attention)
_PACKED_LENGTHS: dict[int, list[int]] = {}


def _register_packed_attention() -> str:
    """A flash-style attention for Qwen towers under FakeTensorMode (see ``Simulator``); returns its name.

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
        lengths = _PACKED_LENGTHS.get(n)
        if lengths is None or len(set(lengths)) == 1:
            b = total // n

            def split(t: Any) -> Any:  # (1, H, B*n, d) -> (B, H, n, d), a view
                return t[0].unflatten(1, (b, n)).transpose(0, 1)

            out = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v), scale=scaling)
            return out.transpose(1, 2).reshape(1, total, heads, dim), None
        # windows of unequal size (Qwen2.5-VL): one SDPA per window, like transformers' SDPA path
        outs = [
            torch.nn.functional.scaled_dot_product_attention(a, b_, c, scale=scaling)
            for a, b_, c in zip(q.split(lengths, dim=2), k.split(lengths, dim=2), v.split(lengths, dim=2), strict=False)
        ]
        return torch.cat(outs, dim=2).transpose(1, 2), None

    AttentionInterface.register(name, packed)
    return name


class Simulator:
    """One encoder built once on fake tensors; ``run(batch, width, height)`` measures a configuration.

    The real transformers model code runs under FakeTensorMode: FLOPs are exact, tensor memory is
    exact (peak_tracker, the same accounting as MemTracker; a test checks both agree), nothing is allocated.
    """

    def __init__(self, spec: VisionEncoderSpec, dtype: str, attn: str = "sdpa", merger_out_size: int | None = None):
        from torch._subclasses.fake_tensor import FakeTensorMode

        from vramcalc.probe.models import ModelNotAvailable, build_model

        if spec.family in ("qwen2_vit", "qwen25_vit") and attn == "eager":
            raise ModelNotAvailable(
                "eager attention of Qwen-VL towers splits per image with cu_seqlens.tolist(), which FakeTensorMode cannot run"
            )
        self.spec = spec
        self.dtype = torch_dtype(dtype)
        self.qwen = spec.family in ("qwen2_vit", "qwen25_vit")
        self.fake = FakeTensorMode(allow_non_fake_inputs=True)
        self.built = build_model(spec, dtype=self.dtype, fake_mode=self.fake, attn=attn, merger_out_size=merger_out_size)
        if self.qwen and attn != "eager":
            # set after construction: transformers would try to load a flash-attention kernel for a 'flash' name
            self.built.model.config._attn_implementation_internal = _register_packed_attention()

    def _inputs(self, batch: int, width: int, height: int) -> tuple[dict, dict]:
        """Real (CPU) inputs for one batch and the model's extra forward arguments (Qwen: packed lengths)."""
        from vramcalc.probe.models import forward_kwargs

        real_inputs = self.built.make_inputs(batch, width, height, self.dtype)
        extra = forward_kwargs(self.spec)
        if self.qwen:
            self._packed(real_inputs, extra)
        return real_inputs, extra

    def _fake_inputs(self, real_inputs: dict) -> dict:
        return {k: (self.fake.from_tensor(v) if k in _IMAGE_KEYS else v) for k, v in real_inputs.items()}

    def run(self, batch: int, width: int, height: int) -> Simulated:
        import torch

        model = self.built.model
        real_inputs, extra = self._inputs(batch, width, height)
        with self.fake:
            inputs = self._fake_inputs(real_inputs)
            # one pass. The tracker is entered last so it sees each op before FlopCounterMode, which decomposes
            # composite ops (e.g. bicubic position-embedding interpolation into fp32 index/mul/add steps that a
            # CUDA kernel never allocates); the tracker counts only the op's own output.
            counter = _flop_counter()
            tracker = peak_tracker()
            tracker.known(*model.parameters(), *model.buffers(), *[v for v in inputs.values() if isinstance(v, torch.Tensor)])
            with counter, torch.inference_mode(), tracker:
                out = model(**inputs, **dict(extra))
                del out
            flops = counter.get_total_flops()
        inputs_bytes = sum(-(-v.untyped_storage().nbytes() // _BLOCK) * _BLOCK for v in _images(inputs))
        return Simulated(flops=int(flops), activation_bytes=int(tracker.peak + inputs_bytes), weights_bytes=model_bytes(model))

    def run_memtracker(self, batch: int, width: int, height: int) -> int:
        """Peak activation bytes by PyTorch's own MemTracker (slower; used to cross-check ``run``)."""
        import torch
        from torch.distributed._tools.mem_tracker import MemTracker

        model = self.built.model
        real_inputs, extra = self._inputs(batch, width, height)
        with self.fake:
            inputs = self._fake_inputs(real_inputs)
            tracker = MemTracker()
            tracker.track_external(model, *_images(inputs))
            with tracker, torch.inference_mode():
                out = model(**inputs, **dict(extra))
                del out
            snap = tracker.get_tracker_snapshot("peak")
        total = weights = 0
        for dev_snap in snap.values():
            items = {str(getattr(k, "value", k)): v for k, v in dev_snap.items()}
            weights += items.get("Parameter", 0) + items.get("Buffer", 0)
            total += items.get("Total", 0)
        return int(total - weights)

    @staticmethod
    def _packed(real_inputs: dict[str, Any], extra: dict[str, Any]) -> None:
        """Qwen: the packed attention needs the (max) segment lengths as Python ints."""
        _PACKED_LENGTHS.clear()
        for key, name in (("cu_seqlens", "max_seqlen"), ("cu_window_seqlens", "max_window_seqlen")):
            if key in real_inputs:
                lengths = (real_inputs[key][1:] - real_inputs[key][:-1]).tolist()
                extra[name] = max(lengths)
                _PACKED_LENGTHS.setdefault(max(lengths), lengths)


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


def cuda_run(
    model: Any,
    make_inputs: Any,
    batch: int,
    width: int,
    height: int,
    dtype: Any,
    extra: dict[str, Any],
    weights_bytes: int,
    repeats: int = 5,
    warmup: int = 2,
) -> CudaMeasurement:
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
            status="ok",
            weights_bytes=weights_bytes,
            activation_bytes=peak - base,
            peak_allocated_bytes=peak,
            reserved_bytes=reserved,
            latency_s=statistics.median(times),
            flops=flops,
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
