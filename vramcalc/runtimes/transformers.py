"""transformers (PyTorch): how it accounts memory.

Weights at the checkpoint dtype or a quantized format (bitsandbytes, GPTQ, AWQ), a DynamicCache
KV cache (no padding), activations of the prefill forward pass, and the CUDA context. Several GPUs:
accelerate's device_map puts whole layers on each card. It does not run layers from system RAM
in a way worth estimating, so a model that does not fit gets the verdict ``no``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from vramcalc.params import llm_tensors
from vramcalc.quant import WeightBytes, normalize_torch_format, torch_weight_bytes
from vramcalc.schema import VlmSpec
from vramcalc.units import MiB

if TYPE_CHECKING:
    from vramcalc.params import Tensor
    from vramcalc.results import Workload
    from vramcalc.schema import GpuSpec, LlmSpec, VisionEncoderSpec

#: PyTorch CUDA context incl. cuBLAS workspace, outside max_memory_allocated(). A guess (typical
#: 400-600 MiB on Ampere/Ada with torch 2.x); ``vramcalc probe`` measures it on the user's card.
GUESS_TORCH_CONTEXT_BYTES = 512 * MiB
#: The same 1 GiB free-memory margin as llama.cpp's --fit, for a comparable ``tight`` verdict
#: (PyTorch's caching allocator fragments, so a model that fits to the last MiB often does not).
MARGIN_BYTES = 1024 * MiB
QUANTIZED = ("int8", "nf4")


def prefill_activation_bytes(llm: LlmSpec, tokens: int, batch: int) -> int:
    """Peak activations of a transformers prefill forward (SDPA, no KQ matrix kept).

    Live at the MLP of one layer: the residual stream and normed input (2 x T x h), gate and up
    outputs and their product (3 x T x ff) at the activation dtype (2 bytes); plus the last token's
    logits in fp32 (generate() keeps only the last position: logits_to_keep=1, transformers >= 4.45).
    """
    t = tokens * batch
    ff = llm.moe.expert_intermediate_size * llm.moe.experts_per_token if llm.moe else llm.intermediate_size
    return 2 * (2 * t * llm.hidden_size + 3 * t * ff) + batch * llm.vocab_size * 4


def vit_activation_bytes(enc: VisionEncoderSpec, patches: int, images: int) -> int:
    """Peak activations of a ViT forward pass in PyTorch: vit.activation_bytes, the live-set model
    that the probe checks against FakeTensorMode. ``patches`` includes class/register tokens."""
    from vramcalc.vit import activation_bytes

    return activation_bytes(enc, images, patches - int(enc.class_token) - enc.register_tokens)  # vit.py adds them


class Transformers:
    """The transformers (PyTorch) runtime plugin."""

    name: str = "transformers"
    kv_pad: int = 1
    embeddings_on_host: bool = False  # accelerate puts the embedding on GPU 0
    offloads_layers: bool = False
    pytorch_kernels: bool = True
    decode_fallback: str | None = "cuda.bf16"  # bnb nf4/int8 and non-CUDA backends: the bf16 CUDA factors, uncalibrated
    weights_format: str = "checkpoint"
    compute_label: str = "activations"
    flash_attention_switch: bool = False
    margin_note: str = "kept free for PyTorch's caching allocator"
    margin_bytes: int = MARGIN_BYTES
    guesses: Mapping[str, int] = MappingProxyType({"GUESS_TORCH_CONTEXT_BYTES": GUESS_TORCH_CONTEXT_BYTES})

    def check(self, w: Workload) -> None:
        return None

    def default_precision(self, model: LlmSpec | VlmSpec | VisionEncoderSpec, llm: LlmSpec | None) -> str:
        """The checkpoint dtype."""
        return (llm or model).dtype  # type: ignore[union-attr]

    def normalize_precision(self, name: str) -> str:
        return normalize_torch_format(name, self.name)

    def precisions(self, llm: LlmSpec) -> list[str]:
        return [llm.dtype if llm.dtype != "fp32" else "bf16", "int8", "nf4"]

    def precision_label(self) -> list[str]:
        return ["bf16/fp16", "int8", "nf4"]

    def smaller_precisions(self, current: str) -> list[str]:
        return [q for q in QUANTIZED if current not in QUANTIZED or (q == "nf4" and current == "int8")]

    def smaller_precision_change(self, precision: str) -> tuple[str, list[str]]:
        return f"load the weights in {precision} (bitsandbytes)", ["--quant", precision]

    def vision_precision(self, model: VlmSpec | VisionEncoderSpec, w: Workload) -> str:
        default = model.defaults.mmproj_dtype if isinstance(model, VlmSpec) else (w.quant or "f16")
        return normalize_torch_format(w.vision_quant or ("fp16" if default == "f16" else default), self.name)

    def llm_weights(self, llm: LlmSpec, precision: str) -> WeightBytes:
        return torch_weight_bytes(llm_tensors(llm), precision)

    def vision_weights(self, tensors: tuple[Tensor, ...], precision: str) -> WeightBytes:
        return torch_weight_bytes(tensors, precision)

    def tensor_bytes(self, llm: LlmSpec, precision: str) -> tuple[int, ...]:
        return tuple(torch_weight_bytes((t,), precision).bytes for t in llm_tensors(llm))

    def swa_extra_cells(self, w: Workload) -> int:
        return 0

    def llm_compute_bytes(self, llm: LlmSpec, context: int, cells: int, w: Workload) -> int:
        return prefill_activation_bytes(llm, context, w.batch)

    def vision_compute_bytes(self, enc: VisionEncoderSpec, patches: int, crops: int, w: Workload) -> int:
        return vit_activation_bytes(enc, patches, crops)

    def overhead_bytes(self, gpu: GpuSpec) -> int:
        return GUESS_TORCH_CONTEXT_BYTES

    def weight_floor(self, llm: LlmSpec) -> Callable[[str], int] | None:
        return None

    def places_layers(self, n_gpus: int) -> bool:
        return n_gpus > 1

    def suggestions(self, w: Workload) -> list[tuple[str, list[str], dict[str, object]]]:
        return []

    def speed_key(self, precision: str) -> str:
        """bf16 / gptq / awq / nf4 / int8: the kernels differ."""
        q = precision.lower()
        if q in ("fp16", "bf16", "fp32", "fp8"):
            return "bf16"
        return q.split("-")[0]  # gptq-int4 -> gptq, awq-int4 -> awq, nf4, int8

    #: attention implementation the speed model assumes (transformers' default since 4.36)
    attn_implementation: str = "sdpa"

    def decode_kv_traffic(self, llm: LlmSpec) -> float:
        """KV-cache bytes moved per decoded token, in units of the cache at the current context:
        1 read by the attention, 2 for DynamicCache.update's torch.cat (a read and a write of the
        whole layer cache each token, transformers cache_utils), and with ``eager`` / ``sdpa`` 2 x
        (query heads / KV heads) for repeat_kv, which writes and reads K and V expanded to every
        query head (models/*/modeling_*.py); flash_attention_2 takes the grouped heads as they are.
        Checked against the Qwen2 long-prompt speeds of transformers_peak_mem.csv (docs/accuracy.md)."""
        if self.attn_implementation == "flash_attention_2" or not llm.num_kv_heads:
            return 3.0
        return 3.0 + 2.0 * float(llm.num_heads) / float(llm.num_kv_heads)

    def speed_notes(self, gpu: GpuSpec) -> list[str]:
        if gpu.backend == "metal":
            return ["transformers on Apple (MPS) is not calibrated; speeds use the llama.cpp Metal factors."]
        return []
