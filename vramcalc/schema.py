"""Catalog schema: pydantic models for GPUs, vision encoders, LLMs and VLMs.

Every record is strict (``extra="forbid"``, frozen): a typo in a YAML file fails loudly.
Quantities are in base units with the unit in the field name. Sizes in bytes accept
strings such as ``12 GiB`` (binary) or ``80 GB`` (decimal) in YAML and are stored as int.
The catalog holds architecture hyper-parameters only; totals are derived in ``params.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from vramcalc.units import parse_bytes

Bytes = Annotated[int, BeforeValidator(parse_bytes), Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ResultModel(BaseModel):
    """Base of the result objects (Estimate, throughput, fit, probe rows): strict, and built on first
    use (defer_build) because building ~40 validators at import would double the start-up time."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class Entry(Strict):
    """Fields every catalog entry has."""

    id: str = Field(description="Stable lowercase id, e.g. 'rtx3060-12gb' or 'llama-2-7b'.", pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str = Field(description="Human-readable name as its maker writes it.")
    aliases: list[str] = Field(default_factory=list, description="Other names that resolve to this entry (NVML names, ollama tags, HF repo ids).")
    source: str = Field(min_length=8, description="Where the numbers come from (URL, file at a commit, datasheet).")
    notes: str | None = Field(default=None, description="Caveats, and the reason for each choice where sources disagree.")


# --------------------------------------------------------------------------------------------
# GPUs


class GpuSpec(Entry):
    """A GPU (or a unified-memory system such as an Apple M-series chip)."""

    kind: Literal["gpu"] = "gpu"
    vendor: Literal["nvidia", "amd", "intel", "apple"]
    category: Literal["consumer", "laptop", "workstation", "datacenter", "unified"] = Field(
        description="consumer = desktop GeForce/Radeon/Arc; unified = SoC sharing system RAM (Apple, DGX Spark, Strix Halo)."
    )
    architecture: str = Field(description="e.g. Ampere, Ada Lovelace, RDNA 3, Apple M2.")
    memory_bytes: Bytes = Field(description="Memory on the card; for unified-memory systems the whole system RAM.")
    memory_type: str | None = None
    bus_width_bits: PositiveInt | None = None
    memory_bandwidth_gbs: float = Field(gt=0, description="Peak memory bandwidth in GB/s (10^9 bytes/s).")
    fp16_tflops: float | None = Field(default=None, gt=0, description="FP16 non-tensor (shader) TFLOPS.")
    fp16_tensor_tflops: float | None = Field(default=None, gt=0, description="Dense FP16 tensor-core TFLOPS (FP32 accumulate where the maker lists both).")
    bf16_tensor_tflops: float | None = Field(default=None, gt=0, description="Dense BF16 tensor-core TFLOPS.")
    int8_tensor_tops: float | None = Field(default=None, gt=0, description="Dense INT8 tensor TOPS, where published.")
    unified_memory: bool = Field(default=False, description="CPU and GPU share one memory pool.")
    gpu_cores: PositiveInt | None = Field(default=None, description="GPU cores (Apple) or compute units; prompt speed scales with them.")
    compute_capability: str | None = None
    tdp_w: PositiveInt | None = None
    release_year: int | None = Field(default=None, ge=2010, le=2030)

    @model_validator(mode="after")
    def _unified(self) -> GpuSpec:
        if (self.category == "unified") != self.unified_memory:
            raise ValueError("category 'unified' and unified_memory: true go together")
        return self

    @property
    def backend(self) -> str:
        """The llama.cpp backend this GPU normally runs: CUDA, ROCm, Metal or SYCL/Vulkan."""
        return {"nvidia": "cuda", "amd": "rocm", "apple": "metal", "intel": "sycl"}[self.vendor]


# --------------------------------------------------------------------------------------------
# Vision encoders (ViT)


class VisionEncoderSpec(Entry):
    """A ViT image encoder as the VLMs use it (CLIP, SigLIP, DINOv2, InternViT, Qwen-VL ViT...)."""

    kind: Literal["encoder"] = "encoder"
    family: Literal[
        "clip", "siglip", "siglip2", "dinov2", "eva_clip", "internvit", "qwen2_vit", "qwen25_vit", "qwen3_vit",
        "pixtral", "mllama", "moonvit", "other",
    ] = Field(description="Which implementation (transformers class) the tower follows.")
    image_size: PositiveInt = Field(description="Native (pre-training) square image side in pixels; dynamic-resolution towers: a typical side.")
    patch_size: PositiveInt
    num_channels: PositiveInt = 3
    temporal_patch_size: PositiveInt = Field(default=1, description="Qwen2-VL style 3-D patches (2 frames); 1 for ordinary ViTs.")
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    head_dim: PositiveInt | None = Field(default=None, description="Defaults to hidden_size / num_heads.")
    intermediate_size: PositiveInt
    mlp_activation: Literal["gelu", "quick_gelu", "gelu_tanh", "silu", "swiglu"] = Field(
        description="swiglu means a gated MLP (gate, up, down); the others have fc1, fc2."
    )
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    class_token: bool = Field(description="A learned [CLS] token is prepended to the patches.")
    register_tokens: NonNegInt = 0
    patch_bias: bool = Field(default=True, description="Patch-embedding convolution has a bias.")
    qkv_bias: bool = True
    attn_out_bias: bool = True
    mlp_bias: bool = True
    qk_norm: bool = Field(default=False, description="Per-head norm on q and k (InternViT-6B).")
    layer_scale: bool = Field(default=False, description="Learned per-channel scales after attention and MLP (DINOv2, InternViT).")
    position_embedding: Literal["learned", "rope2d", "learned+rope2d", "none"] = "learned"
    num_position_embeddings: PositiveInt | None = Field(
        default=None,
        description="Size of the learned position table when it is not the native patch grid (+ class token), e.g. Qwen3-VL 2304.",
    )
    pre_norm: bool = Field(default=False, description="A norm before the first layer (CLIP's pre_layrnorm).")
    post_norm: bool = Field(default=True, description="A final norm after the last layer.")
    pooling_head: Literal["none", "map"] = Field(default="none", description="SigLIP's attention-pooling head (part of SiglipVisionModel).")
    feature_layer: int = Field(default=-1, description="Which layer's output the VLM takes (-1 last, -2 second to last).")
    window_attention: WindowAttention | None = Field(default=None, description="Qwen2.5-VL style windowed attention in most layers.")
    dtype: Literal["fp32", "fp16", "bf16"] = Field(default="bf16", description="Dtype the weights are published in.")
    extra_params: NonNegInt = Field(
        default=0,
        description="Tower parameters not covered by the shape above (documented in notes), e.g. Llama 3.2 Vision tile position embeddings.",
    )
    published_params: PositiveInt | None = Field(default=None, description="Published exact parameter count of the tower, used only to cross-check the derived count.")

    @property
    def head_dim_(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def gated_mlp(self) -> bool:
        return self.mlp_activation == "swiglu"


class WindowAttention(Strict):
    window_size_px: PositiveInt = Field(description="Window side in pixels (Qwen2.5-VL: 112).")
    full_attention_layers: list[NonNegInt] = Field(description="Layers that attend over the whole image.")


# --------------------------------------------------------------------------------------------
# LLMs


class SlidingWindow(Strict):
    """Sliding-window attention: which layers attend only to the last ``size`` tokens."""

    size: PositiveInt = Field(description="Window in tokens.")
    pattern: list[bool] = Field(
        min_length=1,
        description="Repeats over the layers; true = sliding-window layer. [true] = every layer; Gemma 2 [true, false]; Gemma 3 [true]*5 + [false].",
    )

    def is_sliding(self, layer: int) -> bool:
        return self.pattern[layer % len(self.pattern)]


class Moe(Strict):
    """Mixture of experts in the FFN."""

    num_experts: PositiveInt
    experts_per_token: PositiveInt
    expert_intermediate_size: PositiveInt
    shared_experts: NonNegInt = 0
    shared_expert_intermediate_size: PositiveInt | None = Field(default=None, description="Per shared expert; defaults to expert_intermediate_size.")
    shared_expert_gate: bool = Field(default=False, description="Qwen2-MoE style sigmoid gate on the shared expert.")
    dense_layers: list[NonNegInt] = Field(default_factory=list, description="Layers with an ordinary dense FFN (intermediate_size) instead of experts.")
    expert_bias: bool = Field(default=False, description="Expert FFNs have biases (gpt-oss).")
    router_bias: bool = False
    expert_dtype: Literal["native", "mxfp4"] = Field(default="native", description="gpt-oss ships experts in MXFP4.")

    @model_validator(mode="after")
    def _k(self) -> Moe:
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token cannot exceed num_experts")
        return self


class Mla(Strict):
    """DeepSeek multi-head latent attention (compressed KV)."""

    kv_lora_rank: PositiveInt
    q_lora_rank: PositiveInt | None = None
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


class LlmSpec(Entry):
    """A decoder-only transformer language model."""

    kind: Literal["llm"] = "llm"
    family: str = Field(description="Architecture family, e.g. llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3, gpt-oss.")
    num_layers: PositiveInt
    hidden_size: PositiveInt
    num_heads: PositiveInt
    num_kv_heads: PositiveInt
    head_dim: PositiveInt | None = Field(default=None, description="Defaults to hidden_size / num_heads.")
    intermediate_size: PositiveInt = Field(description="Dense FFN width (for MoE models: of the dense layers, if any).")
    gated_mlp: bool = Field(default=True, description="SwiGLU/GeGLU FFN with gate, up and down projections.")
    activation: Literal["silu", "gelu", "gelu_tanh", "relu", "swiglu_oai"] = "silu"
    vocab_size: PositiveInt
    tied_embeddings: bool = False
    qkv_bias: bool = Field(default=False, description="q/k/v projections have biases (Qwen2).")
    attn_out_bias: bool = False
    mlp_bias: bool = False
    fused_qkv: bool = Field(default=False, description="One fused qkv projection (Phi-3); same parameter count, matters for GGUF quant mixtures.")
    fused_gate_up: bool = Field(default=False, description="One fused gate_up projection (Phi-3).")
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    norm_bias: bool = Field(default=False, description="LayerNorm with a bias term.")
    qk_norm: bool = Field(default=False, description="Per-head RMSNorm on q and k (Qwen3, Gemma 3).")
    extra_norms_per_layer: NonNegInt = Field(default=0, description="Norms beyond the two per layer (Gemma 2/3 post-attention and post-FFN norms: 2).")
    attention_sinks: bool = Field(default=False, description="Per-head learned sink logits (gpt-oss).")
    max_context: PositiveInt = Field(description="Maximum context length the model was trained for.")
    sliding_window: SlidingWindow | None = None
    moe: Moe | None = None
    mla: Mla | None = None
    dtype: Literal["fp32", "fp16", "bf16"] = Field(default="bf16", description="Dtype the weights are published in.")
    published_params: PositiveInt | None = Field(default=None, description="Published exact parameter count, used only to cross-check the derived count.")

    @property
    def head_dim_(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @model_validator(mode="after")
    def _heads(self) -> LlmSpec:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        if self.moe:
            bad = [i for i in self.moe.dense_layers if i >= self.num_layers]
            if bad:
                raise ValueError(f"moe.dense_layers {bad} are beyond num_layers ({self.num_layers})")
        return self


# --------------------------------------------------------------------------------------------
# VLMs


class Projector(Strict):
    """What maps vision features into the LLM's embedding space."""

    kind: Literal["mlp", "linear", "merger", "pixel_shuffle_mlp", "resampler", "cross_attention", "pooled_linear", "other"] = Field(
        description=(
            "mlp = LLaVA mlp2x_gelu; merger = Qwen-VL patch merger (merge x merge patches -> MLP); pixel_shuffle_mlp = InternVL / "
            "Idefics3 / SmolVLM (pixel shuffle then MLP); resampler = learned queries with cross-attention (MiniCPM-V); "
            "cross_attention = Llama 3.2 Vision (gated cross-attention layers inside the LLM); pooled_linear = Gemma 3 (avg-pool + norm + linear)."
        )
    )
    layers: PositiveInt = Field(default=2, description="Linear layers in the MLP.")
    hidden_size: PositiveInt | None = Field(default=None, description="Width of the MLP's hidden layer; defaults to the LLM hidden size.")
    input_size: PositiveInt | None = Field(default=None, description="Feature width going in; defaults to encoder hidden (x merge^2 for merger / pixel shuffle).")
    merge: PositiveInt = Field(default=1, description="Spatial merge / pixel-shuffle factor per side (Qwen merger 2, InternVL 2, Idefics3 3).")
    norm: bool = Field(default=False, description="A norm before the MLP (Qwen merger ln_q, InternVL mlp1 LayerNorm).")
    bias: bool = True
    num_queries: PositiveInt | None = Field(default=None, description="Resampler: learned queries per image.")
    cross_attention_layers: list[NonNegInt] = Field(default_factory=list, description="Llama 3.2 Vision: LLM layers that are cross-attention layers.")
    extra_params: NonNegInt = Field(default=0, description="Parameters not covered by the shape above (documented in notes), e.g. resampler attention.")


class FixedTokens(Strict):
    kind: Literal["fixed"] = "fixed"
    tokens: PositiveInt = Field(description="Image tokens per image (e.g. LLaVA-1.5: 576; Gemma 3: 256).")


class AnyresTokens(Strict):
    """LLaVA-1.6 (LLaVA-NeXT) anyres: a base image plus a grid of encoder-sized tiles."""

    kind: Literal["anyres"] = "anyres"
    grid_pinpoints: list[tuple[PositiveInt, PositiveInt]] = Field(description="Allowed (width, height) canvases in pixels.")
    newline_tokens: bool = Field(default=True, description="transformers adds one image_newline token per feature row.")


class DynamicResolutionTokens(Strict):
    """Qwen2-VL / Qwen2.5-VL / Qwen3-VL: tokens follow the image size, within min/max pixels."""

    kind: Literal["dynamic"] = "dynamic"
    min_pixels: PositiveInt
    max_pixels: PositiveInt
    factor: PositiveInt = Field(description="Side rounding in pixels: patch_size x merge (Qwen2-VL: 28, Qwen3-VL: 32).")


class TileTokens(Strict):
    """InternVL / Idefics3 / MiniCPM-V style tiling into encoder-sized crops (+ a thumbnail)."""

    kind: Literal["tiles"] = "tiles"
    tile_size: PositiveInt
    tokens_per_tile: PositiveInt
    min_tiles: PositiveInt = 1
    max_tiles: PositiveInt
    thumbnail: bool = True


ImageTokenPolicy = Annotated[
    FixedTokens | AnyresTokens | DynamicResolutionTokens | TileTokens, Field(discriminator="kind")
]


class VlmDefaults(Strict):
    image_size: tuple[PositiveInt, PositiveInt] | None = Field(
        default=None, description="(width, height) assumed when --image-size is not given; defaults to the encoder's native size."
    )
    mmproj_dtype: Literal["f32", "f16", "bf16", "q8_0"] = Field(default="f16", description="llama.cpp mmproj file type usually published.")


class LlmOverrides(Strict):
    """Where a VLM's language model differs from the catalog LLM it names (padded vocab, untied head)."""

    vocab_size: PositiveInt | None = None
    tied_embeddings: bool | None = None
    max_context: PositiveInt | None = None


class VlmSpec(Entry):
    """A vision-language model: encoder + projector + LLM + image-token policy."""

    kind: Literal["vlm"] = "vlm"
    encoder: str = Field(description="Id of the vision encoder entry.")
    llm: str = Field(description="Id of the language model entry.")
    projector: Projector
    image_tokens: ImageTokenPolicy
    defaults: VlmDefaults = Field(default_factory=VlmDefaults)
    llm_overrides: LlmOverrides | None = Field(default=None, description="Fields of the LLM entry that this VLM's checkpoint changes (say why in notes).")
    published_params: PositiveInt | None = Field(default=None, description="Published exact total parameter count.")

    @field_validator("encoder", "llm")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()



AnyEntry = GpuSpec | VisionEncoderSpec | LlmSpec | VlmSpec

#: catalog sub-folder -> model class
KINDS: dict[str, type[Entry]] = {
    "gpus": GpuSpec,
    "encoders": VisionEncoderSpec,
    "llms": LlmSpec,
    "vlms": VlmSpec,
}
