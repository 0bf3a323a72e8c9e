"""Runtimes as plugins: each one owns how it accounts memory and which speed factors it uses.

A runtime is any object with the attributes and methods of :class:`Runtime`; ``register()`` adds
one under its ``name`` and ``--runtime NAME`` picks it. No other module compares runtime names.
Built in: ``llama.cpp`` (llamacpp.py; also what ollama and LM Studio run), ``transformers``
(transformers.py), and the serving runtimes ``vllm`` (vllm.py), ``sglang`` (sglang.py) and ``mlx``
(mlx.py). docs/architecture.md shows what a new runtime touches (only its own module).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from vramcalc.errors import InputError

if TYPE_CHECKING:
    from vramcalc.params import Tensor
    from vramcalc.quant import WeightBytes
    from vramcalc.results import Workload
    from vramcalc.schema import GpuSpec, LlmSpec, VisionEncoderSpec, VlmSpec


@runtime_checkable
class Runtime(Protocol):
    """What the pipeline asks a runtime. Bytes are per GPU unless said otherwise."""

    #: ``--runtime`` name, also the key of its speed factors in data/calibration.yaml.
    name: str
    #: KV cells are allocated in multiples of this (llama.cpp pads n_ctx to 256).
    kv_pad: int
    #: The runtime keeps the token embedding in system RAM (llama.cpp), not on GPU 0.
    embeddings_on_host: bool
    #: Layers that do not fit can run from system RAM (verdict ``offload``, not ``no``).
    offloads_layers: bool
    #: Below this much free memory the verdict is ``tight`` (the margin the runtime's auto-fit keeps).
    margin_bytes: int
    #: What it loads: "gguf" (a GGUF file's exact tensor types) or "checkpoint" (safetensors at their dtype).
    weights_format: str
    #: The runtime runs PyTorch kernels: prefill and the vision tower use the timm-fitted GEMM factors.
    pytorch_kernels: bool
    #: Decode factors (a key of its calibration group) for precisions/backends it has none for; None: llama.cpp CUDA's.
    decode_fallback: str | None
    #: How the tables name its compute memory: "compute buffer" (llama.cpp) or "activations" (PyTorch).
    compute_label: str
    #: It has a flash-attention switch worth showing (llama.cpp -fa).
    flash_attention_switch: bool
    #: Why the margin is kept, as the verdict line says it ("llama.cpp --fit keeps free by default").
    margin_note: str
    #: Named guesses (constant -> bytes) this runtime's accounting uses, for docs and review.
    guesses: Mapping[str, int]

    def check(self, w: Workload) -> None:
        """Raise InputError for a workload the runtime cannot run (e.g. a setting that needs another)."""

    def default_precision(self, model: LlmSpec | VlmSpec | VisionEncoderSpec, llm: LlmSpec | None) -> str:
        """LLM precision when none is asked for (encoder alone: its weights' precision)."""

    def normalize_precision(self, name: str) -> str:
        """Canonical precision name, or InputError listing the known ones."""

    def precisions(self, llm: LlmSpec) -> list[str]:
        """The LLM precisions ``fit`` tries, best quality first."""

    def smaller_precisions(self, current: str) -> list[str]:
        """Precisions smaller than ``current``, best first (for the suggestion)."""

    def smaller_precision_change(self, precision: str) -> tuple[str, list[str]]:
        """How the suggestion words a switch to ``precision``: (change, check flags)."""

    def precision_label(self) -> list[str]:
        """How ``fit`` names the precisions it tries when it has no model to ask."""

    def vision_precision(self, model: VlmSpec | VisionEncoderSpec, w: Workload) -> str:
        """Precision of a vision encoder + projector."""

    def llm_weights(self, llm: LlmSpec, precision: str) -> WeightBytes:
        """Bytes of every LLM tensor at the precision (``host_bytes``: the part kept in system RAM)."""

    def vision_weights(self, tensors: tuple[Tensor, ...], precision: str) -> WeightBytes:
        """Bytes of the vision encoder's or projector's tensors."""

    def tensor_bytes(self, llm: LlmSpec, precision: str) -> tuple[int, ...]:
        """Bytes of each tensor of ``params.llm_tensors(llm)``, in order (what placement and speed move)."""

    def swa_extra_cells(self, w: Workload) -> int:
        """Cells a sliding-window layer holds beyond window x sequences (llama.cpp: one micro-batch)."""

    def llm_compute_bytes(self, llm: LlmSpec, context: int, cells: int, w: Workload) -> int:
        """The LLM's compute buffer / activations."""

    def vision_compute_bytes(self, enc: VisionEncoderSpec, patches: int, crops: int, w: Workload) -> int:
        """The vision encoder's compute buffer / activations for ``crops`` crops of ``patches`` tokens."""

    def overhead_bytes(self, gpu: GpuSpec) -> int:
        """Runtime context on each GPU (CUDA/Metal context, library workspaces)."""

    def weight_floor(self, llm: LlmSpec) -> Callable[[str], int] | None:
        """A cheap lower bound of the on-GPU weight bytes per precision (``fit`` skips what cannot fit), or None."""

    def places_layers(self, n_gpus: int) -> bool:
        """Whether the runtime assigns layers to devices (llama.cpp -ngl / tensor split; accelerate device_map)."""

    def suggestions(self, w: Workload) -> list[tuple[str, list[str], dict[str, object]]]:
        """Free switches that save memory: (change in words, check flags, workload update)."""

    def speed_key(self, precision: str) -> str:
        """Weight class the speed factors are keyed by (kernels differ by it)."""

    def speed_notes(self, gpu: GpuSpec) -> list[str]:
        """Caveats of the speed estimate on this GPU."""

    # Optional hook (not part of the checked protocol; looked up with getattr):
    # ``estimate_own(model, gpus, workload, catalog, weights, notes) -> Estimate``: a runtime whose
    # memory is not layers + KV + buffers (a server that takes a share of each GPU and fills the rest
    # with KV blocks: vLLM, SGLang; MLX's peak memory) does the whole estimate by its own rules, and
    # ``estimate.estimate()`` returns it. Built-in users: runtimes/serving.py, runtimes/mlx.py.


_REGISTRY: dict[str, Runtime] = {}


def register(runtime: Runtime) -> Runtime:
    """Add a runtime (replacing one of the same name); returns it."""
    _REGISTRY[runtime.name] = runtime
    return runtime


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


#: The built-in runtimes, imported on first use (a check under llama.cpp never imports vLLM's module):
#: name -> (module under vramcalc.runtimes, class).
_BUILTIN: dict[str, tuple[str, str]] = {
    "llama.cpp": ("llamacpp", "LlamaCpp"),
    "transformers": ("transformers", "Transformers"),
    "vllm": ("vllm", "Vllm"),
    "sglang": ("sglang", "Sglang"),
    "mlx": ("mlx", "Mlx"),
}


def names() -> list[str]:
    """Every runtime name: the built-in ones, then those registered."""
    return list(dict.fromkeys([*_BUILTIN, *_REGISTRY]))


def get(name: str) -> Runtime:
    """The runtime registered as ``name``; InputError naming the known ones otherwise."""
    rt = _REGISTRY.get(name)
    if rt is not None:
        return rt
    if name in _BUILTIN:
        import importlib

        module, cls = _BUILTIN[name]
        rt = getattr(importlib.import_module(f"vramcalc.runtimes.{module}"), cls)()
        return _REGISTRY.setdefault(name, rt)
    raise InputError(f"Unknown runtime '{name}'. Known: {', '.join(names())}.") from None
