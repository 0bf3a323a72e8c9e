"""Catalog schema: GPUs, vision encoders, LLMs and VLMs as plain frozen dataclasses.

Every record is strict (``extra="forbid"``, frozen): a typo in a YAML file fails loudly.
Quantities are in base units with the unit in the field name. Sizes in bytes accept
strings such as ``12 GiB`` (binary) or ``80 GB`` (decimal) in YAML and are stored as int.
The catalog holds architecture hyper-parameters only; totals are derived in ``params.py``.

The specs are ordinary dataclasses at run time: importing this module does not import pydantic.
pydantic validates them only when data is parsed (``parse(cls, data)``: catalog YAML, user files);
the constraints it checks are ``Annotated`` metadata (``Check``, ``ByteSize``) that build their
pydantic schema on first use, and a field's description is its ``metadata["description"]``.
Cross-field rules live in ``__post_init__`` (pydantic calls it too, and reports its ValueError
like a model validator: at the entry level).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from vramcalc.units import parse_bytes

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, ValidationError
    from pydantic_core import CoreSchema

T = TypeVar("T")


class Check:
    """``Annotated`` metadata: pydantic ``Field`` constraints (``gt=0``, ``pattern=...``,
    ``discriminator=...``), turned into a pydantic schema only when pydantic builds a validator."""

    __slots__ = ("kwargs",)

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Check({', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic import Field

        return handler.generate_schema(Annotated[source, Field(**self.kwargs)])


class ByteSize:
    """``Annotated`` metadata: a size in bytes, an int or a string such as '12 GiB' (``units.parse_bytes``), > 0."""

    def __repr__(self) -> str:
        return "ByteSize"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic import BeforeValidator, Field

        return handler.generate_schema(Annotated[int, BeforeValidator(parse_bytes), Field(gt=0)])


Bytes = Annotated[int, ByteSize()]
PositiveInt = Annotated[int, Check(gt=0)]
NonNegInt = Annotated[int, Check(ge=0)]
PositiveFloat = Annotated[float, Check(gt=0)]

#: pydantic's config for every spec dataclass (each class without a spec base sets ``__pydantic_config__``)
_CONFIG: Any = {"extra": "forbid"}


class _Spec:
    """Base of the spec dataclasses: ``==``, ``repr`` and freezing as dataclasses write them, but
    written once here instead of generated per class (``eq=False, repr=False`` and no ``frozen``: the
    generated functions were most of the import time). A field set by ``__init__`` cannot be set
    again or deleted (``dataclasses.FrozenInstanceError``). Specs are unhashable, as they hold lists."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            object.__getattribute__(self, name)
        except AttributeError:  # not set yet: __init__ is filling the slot
            object.__setattr__(self, name, value)
            return
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__dataclass_fields__)

    def __repr__(self) -> str:
        return f"{self.__class__.__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__dataclass_fields__)})"


def _f(description: str | None = None, **kwargs: Any) -> Any:
    """A dataclass field with a description (pydantic takes it from the metadata too)."""
    return dataclasses.field(metadata={"description": description} if description else {}, **kwargs)


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class Entry(_Spec):
    """Fields every catalog entry has."""

    __pydantic_config__ = _CONFIG

    id: Annotated[str, Check(pattern=r"^[a-z0-9][a-z0-9._-]*$")] = _f(
        description="Stable lowercase id, e.g. 'rtx3060-12gb' or 'llama-2-7b'."
    )
    name: str = _f(description="Human-readable name as its maker writes it.")
    aliases: list[str] = _f(
        default_factory=list, description="Other names that resolve to this entry (NVML names, ollama tags, HF repo ids)."
    )
    source: Annotated[str, Check(min_length=8)] = _f(description="Where the numbers come from (URL, file at a commit, datasheet).")
    notes: str | None = _f(default=None, description="Caveats, and the reason for each choice where sources disagree.")


# --------------------------------------------------------------------------------------------
# GPUs


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class GpuSpec(Entry):
    """A GPU (or a unified-memory system such as an Apple M-series chip)."""

    kind: Literal["gpu"] = "gpu"
    vendor: Literal["nvidia", "amd", "intel", "apple"]
    category: Literal["consumer", "laptop", "workstation", "datacenter", "unified"] = _f(
        description="consumer = desktop GeForce/Radeon/Arc; unified = SoC sharing system RAM (Apple, DGX Spark, Strix Halo)."
    )
    architecture: str = _f(description="e.g. Ampere, Ada Lovelace, RDNA 3, Apple M2.")
    memory_bytes: Bytes = _f(description="Memory on the card; for unified-memory systems the whole system RAM.")
    memory_type: str | None = None
    bus_width_bits: PositiveInt | None = None
    memory_bandwidth_gbs: PositiveFloat = _f(description="Peak memory bandwidth in GB/s (10^9 bytes/s).")
    fp16_tflops: PositiveFloat | None = _f(default=None, description="FP16 non-tensor (shader) TFLOPS.")
    fp16_tensor_tflops: PositiveFloat | None = _f(
        default=None, description="Dense FP16 tensor-core TFLOPS (FP32 accumulate where the maker lists both)."
    )
    bf16_tensor_tflops: PositiveFloat | None = _f(default=None, description="Dense BF16 tensor-core TFLOPS.")
    int8_tensor_tops: PositiveFloat | None = _f(default=None, description="Dense INT8 tensor TOPS, where published.")
    unified_memory: bool = _f(default=False, description="CPU and GPU share one memory pool.")
    gpu_cores: PositiveInt | None = _f(default=None, description="GPU cores (Apple) or compute units; prompt speed scales with them.")
    compute_capability: str | None = None
    tdp_w: PositiveInt | None = None
    release_year: Annotated[int, Check(ge=2010, le=2030)] | None = None

    def __post_init__(self) -> None:
        if (self.category == "unified") != self.unified_memory:
            raise ValueError("category 'unified' and unified_memory: true go together")

    @property
    def backend(self) -> str:
        """The llama.cpp backend this GPU normally runs: CUDA, ROCm, Metal or SYCL/Vulkan."""
        return {"nvidia": "cuda", "amd": "rocm", "apple": "metal", "intel": "sycl"}[self.vendor]


# --------------------------------------------------------------------------------------------
# Vision encoders (ViT)


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class VisionEncoderSpec(Entry):
    """A ViT image encoder as the VLMs use it (CLIP, SigLIP, DINOv2, InternViT, Qwen-VL ViT...)."""

    kind: Literal["encoder"] = "encoder"
    family: Literal[
        "clip",
        "siglip",
        "siglip2",
        "dinov2",
        "eva_clip",
        "internvit",
        "qwen2_vit",
        "qwen25_vit",
        "qwen3_vit",
        "pixtral",
        "mllama",
        "moonvit",
        "other",
        "dinov3",
        "aimv2",
        "radio",
    ] = _f(description="Which implementation (transformers class) the tower follows.")
    image_size: PositiveInt = _f(
        description="Native (pre-training) square image side in pixels; dynamic-resolution towers: a typical side."
    )
    patch_size: PositiveInt
    num_channels: PositiveInt = 3
    temporal_patch_size: PositiveInt = _f(default=1, description="Qwen2-VL style 3-D patches (2 frames); 1 for ordinary ViTs.")
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    head_dim: PositiveInt | None = _f(default=None, description="Defaults to hidden_size / num_heads.")
    intermediate_size: PositiveInt
    mlp_activation: Literal["gelu", "quick_gelu", "gelu_tanh", "silu", "swiglu"] = _f(
        description="swiglu means a gated MLP (gate, up, down); the others have fc1, fc2."
    )
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    class_token: bool = _f(description="A learned [CLS] token is prepended to the patches.")
    register_tokens: NonNegInt = 0
    patch_bias: bool = _f(default=True, description="Patch-embedding convolution has a bias.")
    qkv_bias: bool = True
    attn_out_bias: bool = True
    mlp_bias: bool = True
    qk_norm: bool = _f(default=False, description="Per-head norm on q and k (InternViT-6B).")
    layer_scale: bool = _f(default=False, description="Learned per-channel scales after attention and MLP (DINOv2, InternViT).")
    position_embedding: Literal["learned", "rope2d", "learned+rope2d", "none"] = "learned"
    num_position_embeddings: PositiveInt | None = _f(
        default=None,
        description="Size of the learned position table when it is not the native patch grid (+ class token), e.g. Qwen3-VL 2304.",
    )
    pre_norm: bool = _f(default=False, description="A norm before the first layer (CLIP's pre_layrnorm).")
    post_norm: bool = _f(default=True, description="A final norm after the last layer.")
    pooling_head: Literal["none", "map"] = _f(default="none", description="SigLIP's attention-pooling head (part of SiglipVisionModel).")
    feature_layer: int = _f(default=-1, description="Which layer's output the VLM takes (-1 last, -2 second to last).")
    window_attention: WindowAttention | None = _f(default=None, description="Qwen2.5-VL style windowed attention in most layers.")
    dtype: Literal["fp32", "fp16", "bf16"] = _f(default="bf16", description="Dtype the weights are published in.")
    extra_params: NonNegInt = _f(
        default=0,
        description=(
            "Tower parameters not covered by the shape above (documented in notes), e.g. Llama 3.2 Vision tile position embeddings."
        ),
    )
    published_params: PositiveInt | None = _f(
        default=None, description="Published exact parameter count of the tower, used only to cross-check the derived count."
    )

    @property
    def head_dim_(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def gated_mlp(self) -> bool:
        return self.mlp_activation == "swiglu"


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class WindowAttention(_Spec):
    """Qwen2.5-VL windowed attention: most layers attend within windows, a few over the whole image."""

    __pydantic_config__ = _CONFIG

    window_size_px: PositiveInt = _f(description="Window side in pixels (Qwen2.5-VL: 112).")
    full_attention_layers: list[NonNegInt] = _f(description="Layers that attend over the whole image.")


# --------------------------------------------------------------------------------------------
# LLMs


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class SlidingWindow(_Spec):
    """Sliding-window attention: which layers attend only to the last ``size`` tokens."""

    __pydantic_config__ = _CONFIG

    size: PositiveInt = _f(description="Window in tokens.")
    pattern: Annotated[list[bool], Check(min_length=1)] = _f(
        description=(
            "Repeats over the layers; true = sliding-window layer. [true] = every layer; Gemma 2 [true, false]; Gemma 3 [true]*5 + [false]."
        ),
    )

    def is_sliding(self, layer: int) -> bool:
        return self.pattern[layer % len(self.pattern)]


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class Moe(_Spec):
    """Mixture of experts in the FFN."""

    __pydantic_config__ = _CONFIG

    num_experts: PositiveInt
    experts_per_token: PositiveInt
    expert_intermediate_size: PositiveInt
    shared_experts: NonNegInt = 0
    shared_expert_intermediate_size: PositiveInt | None = _f(
        default=None, description="Per shared expert; defaults to expert_intermediate_size."
    )
    shared_expert_gate: bool = _f(default=False, description="Qwen2-MoE style sigmoid gate on the shared expert.")
    dense_layers: list[NonNegInt] = _f(
        default_factory=list, description="Layers with an ordinary dense FFN (intermediate_size) instead of experts."
    )
    expert_bias: bool = _f(default=False, description="Expert FFNs have biases (gpt-oss).")
    router_bias: bool = False
    expert_dtype: Literal["native", "mxfp4"] = _f(default="native", description="gpt-oss ships experts in MXFP4.")

    def __post_init__(self) -> None:
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token cannot exceed num_experts")


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class Mla(_Spec):
    """DeepSeek multi-head latent attention (compressed KV)."""

    __pydantic_config__ = _CONFIG

    kv_lora_rank: PositiveInt
    q_lora_rank: PositiveInt | None = None
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class LinearAttention(_Spec):
    """Hybrid models' linear-attention layers (Qwen3-Next / Qwen3.5 Gated DeltaNet): a fixed state per sequence, no KV cache."""

    __pydantic_config__ = _CONFIG

    kind: Literal["gated_deltanet"] = _f(
        default="gated_deltanet", description="gated_deltanet = Qwen3-Next / Qwen3.5 (transformers Qwen3NextGatedDeltaNet)."
    )
    pattern: Annotated[list[bool], Check(min_length=1)] = _f(
        description="Repeats over the layers; true = linear-attention layer (Qwen3.5 full_attention_interval 4: [true, true, true, false])."
    )
    num_key_heads: PositiveInt = _f(description="linear_num_key_heads (q and k heads).")
    num_value_heads: PositiveInt = _f(description="linear_num_value_heads.")
    key_head_dim: PositiveInt = _f(description="linear_key_head_dim.")
    value_head_dim: PositiveInt = _f(description="linear_value_head_dim.")
    conv_kernel: PositiveInt = _f(default=4, description="linear_conv_kernel_dim (causal depthwise convolution over q, k, v).")
    state_dtype: Literal["f32", "bf16", "f16"] = _f(
        default="f32", description="Dtype of the recurrent state (config mamba_ssm_dtype; llama.cpp keeps it in F32)."
    )

    def is_linear(self, layer: int) -> bool:
        return self.pattern[layer % len(self.pattern)]

    @property
    def conv_dim(self) -> int:
        """Channels of the short convolution: q and k (key heads) and v (value heads)."""
        return 2 * self.num_key_heads * self.key_head_dim + self.num_value_heads * self.value_head_dim

    @property
    def state_elems(self) -> int:
        """State elements per sequence per layer: the convolution's last (kernel - 1) inputs and the
        recurrent key x value matrix of every value head (the shapes llama.cpp's recurrent memory
        allocates per layer: n_embd_r = (d_conv - 1) * conv_dim, n_embd_s = d_state * d_inner)."""
        return (self.conv_kernel - 1) * self.conv_dim + self.num_value_heads * self.key_head_dim * self.value_head_dim


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class GlobalAttention(_Spec):
    """Gemma 4: the full-attention (non-sliding) layers have their own KV heads and head size."""

    __pydantic_config__ = _CONFIG

    num_kv_heads: PositiveInt = _f(description="num_global_key_value_heads.")
    head_dim: PositiveInt = _f(description="global_head_dim (also the query head size of those layers).")
    k_eq_v: bool = _f(default=False, description="attention_k_eq_v: values are the keys (no v projection).")


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class LlmSpec(Entry):
    """A decoder-only transformer language model."""

    kind: Literal["llm"] = "llm"
    family: str = _f(description="Architecture family, e.g. llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3, gpt-oss.")
    num_layers: PositiveInt
    hidden_size: PositiveInt
    num_heads: PositiveInt
    num_kv_heads: PositiveInt
    head_dim: PositiveInt | None = _f(default=None, description="Defaults to hidden_size / num_heads.")
    intermediate_size: PositiveInt = _f(description="Dense FFN width (for MoE models: of the dense layers, if any).")
    gated_mlp: bool = _f(default=True, description="SwiGLU/GeGLU FFN with gate, up and down projections.")
    activation: Literal["silu", "gelu", "gelu_tanh", "relu", "swiglu_oai"] = "silu"
    vocab_size: PositiveInt
    tied_embeddings: bool = False
    qkv_bias: bool = _f(default=False, description="q/k/v projections have biases (Qwen2).")
    attn_out_bias: bool = False
    mlp_bias: bool = False
    fused_qkv: bool = _f(
        default=False, description="One fused qkv projection (Phi-3); same parameter count, matters for GGUF quant mixtures."
    )
    fused_gate_up: bool = _f(default=False, description="One fused gate_up projection (Phi-3).")
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    norm_bias: bool = _f(default=False, description="LayerNorm with a bias term.")
    qk_norm: bool = _f(default=False, description="Per-head RMSNorm on q and k (Qwen3, Gemma 3).")
    extra_norms_per_layer: NonNegInt = _f(
        default=0, description="Norms beyond the two per layer (Gemma 2/3 post-attention and post-FFN norms: 2)."
    )
    attention_sinks: bool = _f(default=False, description="Per-head learned sink logits (gpt-oss).")
    max_context: PositiveInt = _f(description="Maximum context length the model was trained for.")
    sliding_window: SlidingWindow | None = None
    moe: Moe | None = None
    mla: Mla | None = None
    dtype: Literal["fp32", "fp16", "bf16"] = _f(default="bf16", description="Dtype the weights are published in.")
    published_params: PositiveInt | None = _f(
        default=None, description="Published exact parameter count, used only to cross-check the derived count."
    )
    linear_attention: LinearAttention | None = _f(
        default=None, description="Hybrid models: which layers are linear-attention (recurrent-state) layers and their shape."
    )
    attn_output_gate: bool = _f(
        default=False, description="q_proj also yields a sigmoid gate on the attention output (Qwen3-Next / Qwen3.5: q_proj width doubled)."
    )
    mtp_layers: NonNegInt = _f(
        default=0,
        description=(
            "Multi-token-prediction (NextN) layers shipped in the checkpoint (DeepSeek-V3 num_nextn_predict_layers, Qwen3.5 "
            "mtp_num_hidden_layers): counted against published_params, not loaded for ordinary decoding."
        ),
    )
    global_attention: GlobalAttention | None = _f(
        default=None, description="Gemma 4: KV heads and head size of the full-attention layers (the sliding ones use the fields above)."
    )
    cross_attention_layers: list[NonNegInt] = _f(
        default_factory=list,
        description=(
            "Llama 3.2 Vision: decoder layers (counted in num_layers) that are gated cross-attention layers reading the "
            "image states instead of self-attention; they hold no self-attention KV cache."
        ),
    )
    default_gguf_type: str | None = _f(
        default=None,
        description=(
            "GGUF file type the model is usually downloaded in (llama.cpp's default when --quant is not given), e.g. "
            "MXFP4_MOE for gpt-oss, whose published experts are MXFP4; None = the runtime's default (Q4_K_M)."
        ),
    )
    mtp_own_embeddings: bool = _f(
        default=False, description="Each MTP layer stores its own copy of the token embedding and output head (DeepSeek-V3 layer 61)."
    )

    @property
    def head_dim_(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    def __post_init__(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        if self.global_attention and not self.sliding_window:
            raise ValueError("global_attention needs sliding_window (it applies to the layers that do not slide)")
        bad_x = [i for i in self.cross_attention_layers if i >= self.num_layers]
        if bad_x:
            raise ValueError(f"cross_attention_layers {bad_x} are beyond num_layers ({self.num_layers})")
        if self.moe:
            bad = [i for i in self.moe.dense_layers if i >= self.num_layers]
            if bad:
                raise ValueError(f"moe.dense_layers {bad} are beyond num_layers ({self.num_layers})")


# --------------------------------------------------------------------------------------------
# VLMs


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class Projector(_Spec):
    """What maps vision features into the LLM's embedding space."""

    __pydantic_config__ = _CONFIG

    kind: Literal["mlp", "linear", "merger", "pixel_shuffle_mlp", "resampler", "cross_attention", "pooled_linear", "other"] = _f(
        description=(
            "mlp = LLaVA mlp2x_gelu; merger = Qwen-VL patch merger (merge x merge patches -> MLP); pixel_shuffle_mlp = InternVL / "
            "Idefics3 / SmolVLM (pixel shuffle then MLP); resampler = learned queries with cross-attention (MiniCPM-V); "
            "cross_attention = Llama 3.2 Vision (gated cross-attention layers inside the LLM); "
            "pooled_linear = Gemma 3 (avg-pool + norm + linear)."
        )
    )
    layers: PositiveInt = _f(default=2, description="Linear layers in the MLP.")
    hidden_size: PositiveInt | None = _f(default=None, description="Width of the MLP's hidden layer; defaults to the LLM hidden size.")
    input_size: PositiveInt | None = _f(
        default=None, description="Feature width going in; defaults to encoder hidden (x merge^2 for merger / pixel shuffle)."
    )
    merge: PositiveInt = _f(default=1, description="Spatial merge / pixel-shuffle factor per side (Qwen merger 2, InternVL 2, Idefics3 3).")
    norm: bool = _f(default=False, description="A norm before the MLP (Qwen merger ln_q, InternVL mlp1 LayerNorm).")
    bias: bool = True
    num_queries: PositiveInt | None = _f(default=None, description="Resampler: learned queries per image.")
    cross_attention_layers: list[NonNegInt] = _f(
        default_factory=list, description="Llama 3.2 Vision: LLM layers that are cross-attention layers."
    )
    extra_params: NonNegInt = _f(
        default=0, description="Parameters not covered by the shape above (documented in notes), e.g. resampler attention."
    )
    deepstack_layers: list[NonNegInt] = _f(
        default_factory=list,
        description=(
            "Qwen3-VL DeepStack: encoder layers whose outputs go through their own merger (LayerNorm over the merged features, "
            "then an MLP as wide as the main one) into the first LLM layers, one LLM layer each."
        ),
    )


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class FixedTokens(_Spec):
    """The same number of tokens for every image (LLaVA-1.5, Gemma 3)."""

    __pydantic_config__ = _CONFIG

    kind: Literal["fixed"] = "fixed"
    tokens: PositiveInt = _f(description="Image tokens per image (e.g. LLaVA-1.5: 576; Gemma 3: 256).")


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class AnyresTokens(_Spec):
    """LLaVA-1.6 (LLaVA-NeXT) anyres: a base image plus a grid of encoder-sized tiles."""

    __pydantic_config__ = _CONFIG

    kind: Literal["anyres"] = "anyres"
    grid_pinpoints: list[tuple[PositiveInt, PositiveInt]] = _f(description="Allowed (width, height) canvases in pixels.")
    newline_tokens: bool = _f(default=True, description="transformers adds one image_newline token per feature row.")


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class DynamicResolutionTokens(_Spec):
    """Qwen2-VL / Qwen2.5-VL / Qwen3-VL: tokens follow the image size, within min/max pixels."""

    __pydantic_config__ = _CONFIG

    kind: Literal["dynamic"] = "dynamic"
    min_pixels: PositiveInt
    max_pixels: PositiveInt
    factor: PositiveInt = _f(description="Side rounding in pixels: patch_size x merge (Qwen2-VL: 28, Qwen3-VL: 32).")


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class TileTokens(_Spec):
    """InternVL / Idefics3 / MiniCPM-V style tiling into encoder-sized crops (+ a thumbnail)."""

    __pydantic_config__ = _CONFIG

    kind: Literal["tiles"] = "tiles"
    tile_size: PositiveInt
    tokens_per_tile: PositiveInt
    min_tiles: PositiveInt = 1
    max_tiles: PositiveInt
    thumbnail: bool = True


ImageTokenPolicy = Annotated[FixedTokens | AnyresTokens | DynamicResolutionTokens | TileTokens, Check(discriminator="kind")]


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class VlmDefaults(_Spec):
    """What a check assumes for this VLM when the command line does not say."""

    __pydantic_config__ = _CONFIG

    image_size: tuple[PositiveInt, PositiveInt] | None = _f(
        default=None, description="(width, height) assumed when --image-size is not given; defaults to the encoder's native size."
    )
    mmproj_dtype: Literal["f32", "f16", "bf16", "q8_0"] = _f(default="f16", description="llama.cpp mmproj file type usually published.")


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class LlmOverrides(_Spec):
    """Where a VLM's language model differs from the catalog LLM it names (padded vocab, untied head)."""

    __pydantic_config__ = _CONFIG

    vocab_size: PositiveInt | None = None
    tied_embeddings: bool | None = None
    max_context: PositiveInt | None = None


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class VlmSpec(Entry):
    """A vision-language model: encoder + projector + LLM + image-token policy."""

    kind: Literal["vlm"] = "vlm"
    encoder: str = _f(description="Id of the vision encoder entry.")
    llm: str = _f(description="Id of the language model entry.")
    projector: Projector
    image_tokens: ImageTokenPolicy
    defaults: VlmDefaults = _f(default_factory=VlmDefaults)
    llm_overrides: LlmOverrides | None = _f(
        default=None, description="Fields of the LLM entry that this VLM's checkpoint changes (say why in notes)."
    )
    published_params: PositiveInt | None = _f(default=None, description="Published exact total parameter count.")

    def __post_init__(self) -> None:  # references are case-insensitive
        object.__setattr__(self, "encoder", self.encoder.lower())
        object.__setattr__(self, "llm", self.llm.lower())


AnyEntry = GpuSpec | VisionEncoderSpec | LlmSpec | VlmSpec

#: catalog sub-folder -> model class
KINDS: dict[str, type[AnyEntry]] = {
    "gpus": GpuSpec,
    "encoders": VisionEncoderSpec,
    "llms": LlmSpec,
    "vlms": VlmSpec,
}


# --------------------------------------------------------------------------------------------
# Parsing (pydantic, imported here only) and dumping


_ADAPTERS: dict[type, Any] = {}


def parse(cls: type[T], data: Any) -> T:
    """``data`` (a mapping, as read from YAML or JSON) validated into ``cls``; raises pydantic's
    ``ValidationError`` (see ``errors``). The first call per class imports pydantic and builds the validator."""
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter.validate_python(data)  # type: ignore[no-any-return]


#: dataclass-validation messages that differ from pydantic's model wording: the model wording,
#: which the catalog's error messages have always used
_MESSAGES = {
    "unexpected_keyword_argument": "Extra inputs are not permitted",
    "missing_keyword_only_argument": "Field required",
    "missing_argument": "Field required",
}


def errors(err: ValidationError) -> list[tuple[str, str]]:
    """(field path, message) per error of a ``parse`` failure; the path is 'a -> b -> 0', or '(entry)'."""
    out = []
    for item in err.errors():
        loc = " -> ".join(str(p) for p in item["loc"]) or "(entry)"
        msg = item["msg"]
        if item["type"] == "dataclass_type":
            cls = (item.get("ctx") or {}).get("class_name", "")
            msg = f"Input should be a valid dictionary or instance of {cls}" if cls else msg
        out.append((loc, _MESSAGES.get(item["type"], msg)))
    return out


def to_dict(
    spec: Any, *, exclude_none: bool = False, exclude_defaults: bool = False, exclude: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A spec as JSON values (fields in order, nested specs as dicts, tuples as lists); the
    ``exclude*`` options as in pydantic's ``model_dump`` (``exclude`` applies to the top level only)."""
    out = {}
    for f in dataclasses.fields(spec):
        if f.name in exclude:
            continue
        v = getattr(spec, f.name)
        if exclude_none and v is None:
            continue
        if exclude_defaults and (
            (f.default is not dataclasses.MISSING and v == f.default)
            or (f.default_factory is not dataclasses.MISSING and v == f.default_factory())
        ):
            continue
        out[f.name] = _json(v, exclude_none, exclude_defaults)
    return out


def _json(v: Any, exclude_none: bool, exclude_defaults: bool) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return to_dict(v, exclude_none=exclude_none, exclude_defaults=exclude_defaults)
    if isinstance(v, (list, tuple)):
        return [_json(x, exclude_none, exclude_defaults) for x in v]
    if isinstance(v, dict):
        return {str(k): _json(x, exclude_none, exclude_defaults) for k, x in v.items()}
    return v


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> description of a spec dataclass."""
    return {f.name: f.metadata.get("description", "") for f in dataclasses.fields(cls)}
