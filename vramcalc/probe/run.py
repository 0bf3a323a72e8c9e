"""Orchestrate ``vramcalc probe``: discover GPUs, benchmark, run every configuration, compare with vit.py."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from vramcalc.errors import ProbeUnavailableError
from vramcalc.probe.results import (
    Compared,
    GpuDiscovery,
    ProbeReport,
    ProbeRow,
    summarize,
)
from vramcalc.quant import TORCH_FORMATS
from vramcalc.schema import VisionEncoderSpec

DEFAULT_BATCHES = (1, 4, 16)
QUICK_BATCHES = (1,)
#: CPU forward passes above this many FLOPs are not timed; their memory and FLOPs are still simulated.
#: A choice that keeps a CPU probe to seconds per configuration: a 1024^3 bf16 matmul ran at 0.38 TFLOPS
#: on a 2-core AMD EPYC VM (torch 2.13 CPU, measured while writing this); laptops are of that order.
CPU_LATENCY_MAX_FLOPS = 2e12

Progress = Callable[[int, int, str], None]


def require_torch() -> None:
    """Raise ProbeUnavailableError unless torch and transformers can be imported (checked without importing)."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise ProbeUnavailableError(f"vramcalc probe needs {' and '.join(missing)}. Install with: pip install 'vramcalc[probe]'")


def _merger_out_size(spec: VisionEncoderSpec, catalog: Any) -> int | None:
    """Qwen-VL towers carry the patch merger; its output is the hidden size of the LLM of a VLM using them."""
    if spec.family not in ("qwen2_vit", "qwen25_vit", "qwen3_vit"):
        return None
    for vid in catalog.ids("vlms"):
        try:
            vlm = catalog.get("vlms", vid)
            if vlm.encoder == spec.id:
                return catalog.llm(vlm.llm).hidden_size
        except Exception:  # an invalid VLM entry elsewhere in the catalog must not stop the probe
            continue
    return None


def _latency_predicted(
    spec: VisionEncoderSpec, gpu_id: str | None, batch: int, width: int, height: int, dtype: str, catalog: Any
) -> float | None:
    """Seconds per batch from the speed model (what ``vramcalc check ENCODER --gpu GPU --runtime transformers`` says)."""
    if gpu_id is None:
        return None
    try:
        from vramcalc.estimate import Workload, estimate

        est = estimate(
            spec,
            catalog.resolve_gpu(gpu_id),
            Workload(runtime="transformers", quant=dtype, batch=batch, image_size=(width, height)),
            catalog,
        )
        ips = est.throughput.images_per_s if est.throughput else None
        return batch / ips.value if ips and ips.value else None
    except Exception:  # the speed model is another module's contract; the probe still measures without it
        return None


def _weights_predicted(spec: VisionEncoderSpec, dtype_bytes: int, merger_out_size: int | None = None) -> int | None:
    """Tower weights from params.py; Qwen towers in transformers also hold the patch merger (LN + 2 linears)."""
    try:
        from vramcalc.params import count_params

        params = count_params(spec).vision
        if merger_out_size:
            md = spec.hidden_size * 4  # 2 x 2 merge
            ln = (1 if spec.norm == "rmsnorm" else 2) * spec.hidden_size  # Qwen2.5: RMSNorm ln_q (no bias)
            params += ln + md * md + md + md * merger_out_size + merger_out_size
        return params * dtype_bytes
    except Exception:  # params.py is another module's contract; the probe still runs without it
        return None


def _predicted(spec: VisionEncoderSpec, base: dict[str, Any], batch: int, dtype_bytes: int, merger: int | None) -> tuple[Any, ProbeRow]:
    """vit.py's prediction for one configuration, and its row (status ok until a measurement says otherwise)."""
    from vramcalc.vit import vit_forward

    pred = vit_forward(spec, batch, base["image_width"], base["image_height"], dtype_bytes, base["attention"], merger)  # type: ignore[arg-type]
    return pred, ProbeRow(**base, batch=batch, tokens_per_image=pred.tokens.sequence_length, status="ok")


def _error_row(row: ProbeRow, e: Exception) -> ProbeRow:
    return dataclasses.replace(row, status="error", message=f"{type(e).__name__}: {e}")


def run_probe(
    encoders: Sequence[str] | None = None,
    batches: Sequence[int] | None = None,
    image_size: tuple[int, int] | None = None,
    dtype: str = "fp16",
    device: str = "auto",
    quick: bool = False,
    attention: str = "sdpa",
    progress: Progress | None = None,
    benchmark: bool = True,
    gpus: GpuDiscovery | None = None,
) -> ProbeReport:
    """Run the real vision towers and compare them with the analytic model (vit.py).

    Args:
        encoders: catalog ids or aliases; default every catalog encoder.
        batches: batch sizes; default 1 4 16 (``quick``: 1).
        image_size: (width, height) in pixels; default each encoder's native size.
        dtype: fp16 or bf16 (fp32 also works).
        device: auto (CUDA if torch sees one, else CPU), cuda or cpu.
        quick: batch 1 only, short microbenchmarks, CPU latency for the first encoder only.
        attention: sdpa (default), eager or flash.
        progress: called as progress(done, total, description) before each configuration.
        benchmark: run the CUDA microbenchmarks and save the calibration profile.
        gpus: NVML discovery result (tests pass one); default: discover now.
    """
    require_torch()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights only: never touch the hub
    import torch
    import transformers

    import vramcalc
    from vramcalc.catalog import load_catalog
    from vramcalc.probe import measure
    from vramcalc.probe.gpu import discover_gpus, process_gpu_bytes
    from vramcalc.probe.models import (
        ModelNotAvailable,
        build_model,
        forward_kwargs,
        transformers_class_name,
    )

    started = datetime.now(UTC).isoformat(timespec="seconds")
    gpus = gpus if gpus is not None else discover_gpus()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ProbeUnavailableError(
            "--device cuda: torch sees no CUDA device (CPU-only torch build, or no NVIDIA driver). Use --device cpu."
        )
    catalog = load_catalog()
    found = [catalog.resolve(["encoders"], e, "encoder") for e in encoders] if encoders else catalog.entries("encoders")
    specs = [e for e in found if isinstance(e, VisionEncoderSpec)]  # every encoders/ entry is one
    batches = sorted(set(batches or (QUICK_BATCHES if quick else DEFAULT_BATCHES)))
    nbytes = int(TORCH_FORMATS[dtype]) // 8  # bytes per weight
    tdtype = measure.torch_dtype(dtype)

    calibration = None
    calibration_message = None
    device_name = None
    gpu_id = gpus.devices[0].catalog_id if gpus.devices else None
    if device == "cuda":
        device_name = torch.cuda.get_device_name(0)
        if benchmark:
            from vramcalc.probe.bench import run_microbenchmarks, save_profile

            dev0 = gpus.devices[0] if gpus.devices else None
            calibration = run_microbenchmarks(device_name, dev0.catalog_id if dev0 else None, dev0.total_bytes if dev0 else None, quick)
            path = save_profile(calibration)
            calibration = dataclasses.replace(calibration, path=str(path))
    else:
        calibration_message = "no CUDA device: microbenchmarks skipped; memory is simulated with FakeTensorMode, latency is CPU"

    rows: list[ProbeRow] = []
    total = len(specs) * len(batches)
    done = 0
    timed_quick = False  # --quick times one CPU forward pass: the first configuration that runs
    for spec in specs:
        w, h = image_size or (spec.image_size, spec.image_size)
        merger = _merger_out_size(spec, catalog)
        base: dict[str, Any] = {
            "encoder": spec.id,
            "dtype": dtype,
            "attention": attention,
            "image_width": w,
            "image_height": h,
            "device": device,
            "memory_source": "cuda" if device == "cuda" else "simulated",
            "model_class": None,
        }
        try:
            base["model_class"] = transformers_class_name(spec)
        except ModelNotAvailable as e:
            for b in batches:
                if progress:
                    progress(done, total, f"{spec.id} (not available)")
                done += 1
                rows.append(ProbeRow(**base, batch=b, status="not_available", message=f"not available: {e}"))
            continue
        extra = forward_kwargs(spec)
        if device == "cuda":
            built = None
            oom_at = None
            for b in batches:
                if progress:
                    progress(done, total, f"{spec.id} batch {b} (cuda)")
                done += 1
                pred, row = _predicted(spec, base, b, nbytes, merger)
                if oom_at is not None:
                    rows.append(
                        dataclasses.replace(
                            row, status="oom", message=f"does not fit at batch {b} (batch {oom_at} already ran out of memory)"
                        )
                    )
                    continue
                try:
                    if built is None:
                        built = build_model(spec, dtype=tdtype, device="cuda", attn=attention, merger_out_size=merger)
                        weights = measure.model_bytes(built.model)
                    m = measure.cuda_run(built.model, built.make_inputs, b, w, h, tdtype, extra, weights)
                except torch.cuda.OutOfMemoryError:
                    m = measure.CudaMeasurement(status="oom")
                except ModelNotAvailable as e:
                    rows.append(dataclasses.replace(row, status="not_available", message=f"not available: {e}"))
                    continue
                except Exception as e:  # a model that fails to run is a result, not a crash
                    rows.append(_error_row(row, e))
                    continue
                if m.status == "oom":
                    oom_at = b
                    why = f"does not fit at batch {b}" + ("" if built is not None else " (the weights alone ran out of memory)")
                    rows.append(dataclasses.replace(row, status="oom", message=why))
                    continue
                wpred = _weights_predicted(spec, nbytes, merger)
                rows.append(
                    dataclasses.replace(
                        row,
                        weights_bytes=m.weights_bytes,
                        flops=Compared(predicted=pred.flops.total, measured=m.flops),
                        activation_bytes=Compared(predicted=pred.activations.peak_bytes, measured=m.activation_bytes),
                        peak_allocated_bytes=Compared(
                            predicted=(wpred + pred.activations.peak_bytes) if wpred else None, measured=m.peak_allocated_bytes
                        ),
                        reserved_bytes=m.reserved_bytes,
                        process_bytes=process_gpu_bytes(os.getpid()),
                        latency_s=Compared(predicted=_latency_predicted(spec, gpu_id, b, w, h, dtype, catalog), measured=m.latency_s),
                        latency_dtype=dtype,
                    )
                )
            del built
            torch.cuda.empty_cache()
            continue
        # CPU: memory and FLOPs simulated on the real model code; latency of a real CPU forward pass
        try:
            sim = measure.Simulator(spec, dtype, attention, merger)
        except ModelNotAvailable as e:
            for b in batches:
                done += 1
                rows.append(ProbeRow(**base, batch=b, status="not_available", message=f"not available: {e}"))
            continue
        cpu_model = None
        # fp16 matmuls have no fast CPU kernel: time CPU runs in bf16 (1024^3 matmul, torch 2.13 CPU, 2-core
        # AMD EPYC VM: fp16 1.1 GFLOPS, bf16 382 GFLOPS, measured while writing this)
        cpu_dtype = "bf16" if dtype == "fp16" else dtype
        cpu_tdtype = measure.torch_dtype(cpu_dtype)
        for b in batches:
            if progress:
                progress(done, total, f"{spec.id} batch {b} (simulated + cpu)")
            done += 1
            pred, row = _predicted(spec, base, b, nbytes, merger)
            try:
                s = sim.run(b, w, h)
            except Exception as e:  # a model that fails to run is a result, not a crash
                rows.append(_error_row(row, e))
                continue
            notes = []
            latency = None
            want_latency = pred.flops.total <= CPU_LATENCY_MAX_FLOPS and not (quick and timed_quick)
            if want_latency:
                timed_quick = True
                if cpu_model is None:
                    cpu_model = build_model(
                        spec, dtype=cpu_tdtype, device="cpu", attn=attention if attention != "flash" else "sdpa", merger_out_size=merger
                    )
                inputs = cpu_model.make_inputs(b, w, h, cpu_tdtype)
                latency = measure.cpu_latency(cpu_model.model, inputs, extra, repeats=1 if quick else 3)
                if cpu_dtype != dtype:
                    notes.append("CPU latency measured in bf16 (no fast fp16 matmul on CPU)")
            else:
                notes.append("CPU latency not measured (" + ("--quick" if quick else f"> {CPU_LATENCY_MAX_FLOPS:.0e} FLOPs") + ")")
            if sim.qwen:
                notes.append(
                    "simulated with one packed SDPA call per batch (flash-varlen layout); transformers' SDPA path splits per image"
                )
            rows.append(
                dataclasses.replace(
                    row,
                    weights_bytes=s.weights_bytes,
                    flops=Compared(predicted=pred.flops.total, measured=s.flops),
                    activation_bytes=Compared(predicted=pred.activations.peak_bytes, measured=s.activation_bytes),
                    latency_s=Compared(measured=latency),
                    latency_dtype=cpu_dtype if latency is not None else None,
                    notes=notes,
                )
            )
        del cpu_model, sim
    if progress:
        progress(total, total, "done")
    return ProbeReport(
        vramcalc_version=vramcalc.__version__,
        torch_version=torch.__version__,
        transformers_version=transformers.__version__,
        started_at=started,
        device=device,  # type: ignore[arg-type]  # "cuda" or "cpu", checked above
        device_name=device_name,
        gpus=gpus,
        calibration=calibration,  # type: ignore[arg-type]
        calibration_message=calibration_message,
        rows=rows,
        summary=summarize(rows, device),
    )
