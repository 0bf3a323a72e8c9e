"""Analytic ViT forward pass: tokens, FLOPs and peak activation memory (pure Python, no torch).

For a :class:`~vramcalc.schema.VisionEncoderSpec` at a batch, image size, dtype and attention
implementation this module gives

- the token count (patches + class + register tokens; Qwen-style 3-D patches and the 2x2 merge),
- the forward FLOPs broken down by op, counted the way ``torch.utils.flop_counter.FlopCounterMode``
  counts them (2 x multiply-accumulates of every matmul, convolution and SDPA; norms, activations,
  softmax and element-wise ops are *not* counted there, so they are reported separately),
- the peak activation memory of an inference-mode forward pass in transformers/PyTorch: what
  ``torch.cuda.max_memory_allocated()`` shows above the weights (input pixels included).

``vramcalc probe`` checks both against the real transformers model (FlopCounterMode, and
FakeTensorMode + MemTracker, or a CUDA device); ``tests/test_vit.py`` does so for every catalog encoder.
"""

from __future__ import annotations

import math
from typing import Literal

from vramcalc.jsonable import Jsonable, doc, kw_result
from vramcalc.params import vision_grid
from vramcalc.schema import VisionEncoderSpec

Attention = Literal["sdpa", "eager", "flash"]
ATTENTIONS: tuple[Attention, ...] = ("sdpa", "eager", "flash")

#: Qwen2-VL / Qwen2.5-VL merge 2x2 neighbouring patches into one LLM token (spatial_merge_size=2 in
#: transformers' Qwen2VLVisionConfig / Qwen2_5_VLVisionConfig).
QWEN_MERGE = 2
QWEN_FAMILIES = ("qwen2_vit", "qwen25_vit", "qwen3_vit")


@kw_result
class VitTokens(Jsonable):
    """How many tokens one image becomes."""

    grid_w: int = doc("Patches across (image width / patch size, floored; Qwen: to an even count).")
    grid_h: int = doc("Patches down.")
    patches: int = doc("grid_w x grid_h.")
    extra_tokens: int = doc("Class token + register tokens prepended to the patches.")
    sequence_length: int = doc("Tokens each transformer layer sees per image.")
    merged_tokens: int = doc("Tokens per image after the Qwen 2x2 patch merger (= patches elsewhere).")


@kw_result
class VitFlops(Jsonable):
    """Forward FLOPs of one batch, as FlopCounterMode counts them (2 FLOPs per multiply-accumulate)."""

    __json_computed__ = ("total",)

    patch_embed: int = doc("Patch-embedding convolution (2-D, or 3-D for Qwen).")
    qkv_proj: int = doc("q, k, v projections, all layers.")
    attn_scores: int = doc("q @ k^T, all layers (an N^2 term; per window for windowed layers).")
    attn_weighted_sum: int = doc("softmax(scores) @ v, all layers (an N^2 term).")
    out_proj: int = doc("Attention output projection, all layers.")
    mlp: int = doc("MLP matmuls (fc1+fc2, or gate+up+down), all layers.")
    pooling_head: int = doc("SigLIP attention-pooling head (MAP) matmuls; 0 when absent.")
    merger: int = doc("Qwen patch merger MLP inside the transformers tower; 0 when absent.")
    elementwise: int = doc("Norms, activations, softmax and residual adds (approximate; NOT counted by FlopCounterMode, not in total).")

    @property
    def total(self) -> int:
        """Matmul + convolution + attention FLOPs: what FlopCounterMode reports."""
        return (
            self.patch_embed
            + self.qkv_proj
            + self.attn_scores
            + self.attn_weighted_sum
            + self.out_proj
            + self.mlp
            + self.pooling_head
            + self.merger
        )


@kw_result
class VitActivations(Jsonable):
    """Peak activation memory of the forward pass (bytes), and where it happens."""

    __json_computed__ = ("peak_bytes",)

    input_bytes: int = doc("The pixel tensor handed to the model.")
    layer_mlp_bytes: int = doc("Live set at the MLP activation of a transformer layer (excluding input).")
    layer_attention_bytes: int = doc("Live set inside attention (excluding input); eager attention holds the N^2 scores.")
    head_bytes: int = doc("Live set after the last layer: final norm, pooling head or merger (excluding input).")
    peak_phase: Literal["mlp", "attention", "head"] = doc("The phase with the largest live set.")

    @property
    def peak_bytes(self) -> int:
        """Input + the largest live set: what max_memory_allocated() shows above the weights."""
        return self.input_bytes + max(self.layer_mlp_bytes, self.layer_attention_bytes, self.head_bytes)


@kw_result
class VitForward(Jsonable):
    """The analytic forward pass of one encoder on one batch."""

    encoder: str = doc("Catalog encoder id.")
    batch: int = doc("Images per forward pass.")
    image_width: int = doc("Image width in pixels.")
    image_height: int = doc("Image height in pixels.")
    dtype_bytes: int = doc("Bytes per activation element (2 for fp16/bf16, 4 for fp32).")
    attention: Attention = doc("Attention implementation: sdpa, eager or flash.")
    tokens: VitTokens = doc("Tokens per image.")
    flops: VitFlops = doc("Forward FLOPs of the batch.")
    activations: VitActivations = doc("Peak activation memory of the batch.")

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")


# --------------------------------------------------------------------------------------------
# Tokens


def vit_tokens(spec: VisionEncoderSpec, width: int | None = None, height: int | None = None) -> VitTokens:
    """Token count for one image of ``width`` x ``height`` pixels (default: the native square size).

    The image processor resizes to a multiple of the patch size; here the grid is floored. Qwen-VL
    towers need an even grid (2x2 merge; their processor rounds sides to multiples of 28 = 14 x 2).
    """
    gw, gh = vision_grid(spec, width, height)
    if spec.family in QWEN_FAMILIES:
        gw, gh = max(QWEN_MERGE, gw - gw % QWEN_MERGE), max(QWEN_MERGE, gh - gh % QWEN_MERGE)
    gw, gh = max(gw, 1), max(gh, 1)
    patches = gw * gh
    extra = int(spec.class_token) + spec.register_tokens
    merged = patches // QWEN_MERGE**2 if spec.family in QWEN_FAMILIES else patches
    return VitTokens(grid_w=gw, grid_h=gh, patches=patches, extra_tokens=extra, sequence_length=patches + extra, merged_tokens=merged)


# --------------------------------------------------------------------------------------------
# FLOPs


def _windows(spec: VisionEncoderSpec, tokens: VitTokens) -> list[int]:
    """Token counts of the attention windows of one image (Qwen2.5-VL windowed layers).

    transformers Qwen2_5_VisionTransformerPretrainedModel.get_window_index: windows of
    window_size / spatial_merge / patch merged units per side (112 / 2 / 14 = 4, i.e. 8x8 patches);
    the grid is cut from the top-left, so the last row/column of windows can be smaller.
    """
    assert spec.window_attention is not None
    unit = spec.window_attention.window_size_px // QWEN_MERGE // spec.patch_size  # merged units per window side
    mh, mw = tokens.grid_h // QWEN_MERGE, tokens.grid_w // QWEN_MERGE

    def cuts(n: int) -> list[int]:
        return [min(unit, n - i) for i in range(0, n, unit)]

    return [a * b * QWEN_MERGE**2 for a in cuts(mh) for b in cuts(mw)]


def vit_flops(
    spec: VisionEncoderSpec,
    batch: int = 1,
    width: int | None = None,
    height: int | None = None,
    merger_out_size: int | None = None,
    attention: Attention = "sdpa",
) -> VitFlops:
    """Forward FLOPs of ``batch`` images; matmul terms are 2 x M x N x K (FlopCounterMode's convention).

    Args:
        spec: the encoder.
        batch: images in the batch.
        width, height: image size in pixels (default: native).
        attention: only Pixtral depends on it (see ``joint_batch_attention``).
        merger_out_size: Qwen-VL towers in transformers include the patch merger; its output width
            (the LLM hidden size). None: the merger is not counted.
    """
    t = vit_tokens(spec, width, height)
    d, heads, hd, ff, layers = spec.hidden_size, spec.num_heads, spec.head_dim_, spec.intermediate_size, spec.num_layers
    qd = heads * hd
    n = t.sequence_length
    rows = batch * n  # tokens through every linear layer
    # Patch embedding: a conv with kernel = stride = patch, i.e. one (C*T*P*P) x D matmul per patch
    # (flop_counter.conv_flop_count: 2 x batch x prod(weight shape) x prod(output spatial)).
    patch_embed = 2 * batch * t.patches * d * spec.num_channels * spec.temporal_patch_size * spec.patch_size**2
    qkv = 2 * rows * d * 3 * qd
    out = 2 * rows * qd * d
    # MLP: fc1 + fc2 (2 matmuls of D x ff), or gate + up + down (3) for a gated (SwiGLU) MLP.
    mlp = 2 * rows * d * ff * (3 if spec.gated_mlp else 2) * layers
    # Attention: q @ k^T is (N x hd) @ (hd x N) per head: 2 N^2 hd; softmax @ v the same
    # (flop_counter.sdpa_flop_count). Windowed layers attend within windows only.
    full = batch * 2 * n * n * qd
    if joint_batch_attention(spec, attention):
        full = 2 * (batch * n) ** 2 * qd  # one sequence of batch x n tokens, block-diagonal mask: SDPA computes it all
    if spec.window_attention is not None:
        full_layers = len([i for i in spec.window_attention.full_attention_layers if i < layers])
        windowed = batch * sum(2 * w * w * qd for w in _windows(spec, t))
        scores = full * full_layers + windowed * (layers - full_layers)
    else:
        scores = full * layers
    head = 0
    if spec.pooling_head == "map":
        # SiglipMultiheadAttentionPoolingHead -> nn.MultiheadAttention(probe, h, h) with need_weights
        # (the slow path): q proj of the 1 probe token, packed k/v projection of all N tokens, then
        # bmm scores (1 x N per head) and bmm weighted sum, out proj, and the head MLP on 1 token.
        head = (
            2 * batch * d * d  # q in-projection (1 token)
            + 2 * rows * d * 2 * d  # k, v in-projection
            + 2 * (2 * batch * n * d)  # probe @ k^T and weights @ v over all heads
            + 2 * batch * d * d  # out projection
            + 2 * batch * d * ff * 2  # MLP fc1 + fc2 on the pooled token
        )
    merger = 0
    if spec.family in QWEN_FAMILIES and merger_out_size:
        # Qwen2-VL PatchMerger: LayerNorm, then (merge^2 x D) -> (merge^2 x D) -> out on each merged token
        m_rows = batch * t.merged_tokens
        md = d * QWEN_MERGE**2
        merger = 2 * m_rows * md * md + 2 * m_rows * md * merger_out_size
    # Not counted by FlopCounterMode; per-element op counts are a guess (not measured): ~5 FLOPs per
    # element per norm (mean, var, scale, shift), ~8 per activation element (GELU/SiLU), ~5 per attention
    # score (scale, max, exp, sum, divide; windowed layers: their window's scores), 1 per residual add (2 a layer).
    norms = 2 * layers + int(spec.pre_norm) + int(spec.post_norm)
    elementwise = 5 * rows * d * norms + 8 * rows * ff * layers + 2 * rows * d * layers
    elementwise += 5 * (scores // (2 * hd)) if hd else 0
    return VitFlops(
        patch_embed=patch_embed,
        qkv_proj=qkv * layers,
        attn_scores=scores,
        attn_weighted_sum=scores,
        out_proj=out * layers,
        mlp=mlp,
        pooling_head=head,
        merger=merger,
        elementwise=elementwise,
    )


# --------------------------------------------------------------------------------------------
# Activation memory


def joint_batch_attention(spec: VisionEncoderSpec, attention: str) -> bool:
    """transformers' PixtralVisionModel concatenates all images of a batch into one sequence and, unless flash
    attention (varlen) is used, masks attention between images with a (B N)^2 block-diagonal mask
    (``generate_block_attention_mask``): the mask and the attention FLOPs grow with the square of the batch."""
    return spec.family == "pixtral" and attention != "flash"


def _mlp_transient(spec: VisionEncoderSpec) -> float:
    """Intermediate-width (B x N x ff) tensors alive at the MLP's peak, from the transformers code.

    - gelu / gelu_tanh / silu are one op (``ACT2FN``): fc1 output + activation output = 2.
    - quick_gelu is ``x * torch.sigmoid(1.702 * x)`` (activations.QuickGELUActivation): fc1 output,
      the 1.702*x temporary and the sigmoid are alive together = 3.
    - a gated MLP ``down(act(gate(x)) * up(x))`` (DINOv2's Dinov2SwiGLUFFN too, in transformers 5.x):
      act, up and their product = 3.
    """
    if spec.gated_mlp:
        return 3.0
    return 3.0 if spec.mlp_activation == "quick_gelu" else 2.0


def _held_hidden(spec: VisionEncoderSpec) -> int:
    """Hidden-width (B x N x D) tensors alive at the MLP peak of a layer (traced in transformers 5.x).

    Every tower: the encoder's input (kept by the caller's frame while the encoder loop runs), the
    layer's input (kept by the loop variable), the residual after attention, and the normed MLP input = 4.
    InternVLVisionLayer also keeps ``attention_output`` (the layer-scaled attention output) = 5.
    Qwen towers have no separate embedding variable held by an outer frame (the block loop rebinds
    ``hidden_states`` in the same frame): layer input, residual, normed input = 3. Pixtral keeps the
    patch-conv output (the per-image slices in ``patch_embeds_list`` are views of it) besides ln_pre's
    output (the encoder input) = 5.
    """
    if spec.family in ("internvit", "pixtral"):
        return 5
    if spec.family in QWEN_FAMILIES:
        return 3
    return 4


def activation_breakdown(
    spec: VisionEncoderSpec,
    batch: int,
    patches: int,
    dtype_bytes: int = 2,
    attention: Attention = "sdpa",
    merger_out_size: int | None = None,
) -> VitActivations:
    """Live sets of an inference-mode forward pass (no autograd graph kept), in bytes.

    The model follows the transformers 5.x code of each tower: tensors are freed as soon as Python
    drops the last reference, so the peak is the largest set alive at one op. SDPA and flash
    attention never materialise the N x N scores (flash output is allocated as B x N x H x d, so
    the transpose back is free); eager attention holds q, k, v, the scaled scores and their fp32
    softmax. Allocations are rounded up to 512 bytes as the CUDA caching allocator does (MemTracker
    applies the same rounding); the flash log-sum-exp (B x H x N fp32, freed inside the op) and the
    cuBLAS workspace (allocated once, before the measured window) are not counted.
    """
    extra = int(spec.class_token) + spec.register_tokens
    n = patches + extra
    d, ff = spec.hidden_size, spec.intermediate_size

    def alloc(elements: int, nbytes: int = dtype_bytes) -> int:
        return math.ceil(elements * nbytes / 512) * 512

    x = alloc(batch * n * d)  # one hidden-width activation
    m = alloc(batch * n * ff)  # one intermediate-width activation
    input_bytes = alloc(batch * spec.num_channels * spec.temporal_patch_size * patches * spec.patch_size**2)
    held = _held_hidden(spec)
    # A VLM that takes an earlier layer (feature_layer <= -3) keeps that hidden state alive through the
    # later layers (transformers 5 captures only the selected one); -2 is the last layer's own input.
    captured = 1 if spec.feature_layer <= -3 else 0
    mlp_set = (held + captured) * x + round(_mlp_transient(spec) * m)
    # Attention: held inputs (encoder input, layer input, normed input) + q, k, v + output + out proj.
    attn_held = 3 if spec.family not in QWEN_FAMILIES else 2
    attn_set = (attn_held + captured) * x + 3 * x + 2 * x
    if spec.qk_norm:
        attn_set += 2 * x  # q and k norms allocate their own outputs
    rope = 0
    if spec.family in QWEN_FAMILIES:
        # Qwen2-VL rotary embedding: cos and sin of (tokens, head_dim) in fp32, alive for the whole pass.
        rope = 2 * alloc(batch * n * spec.head_dim_, 4)
        # apply_rotary_pos_emb_vision upcasts q and k to fp32 (q.float(), k.float(): 2 x f each, f = 4 /
        # dtype_bytes, nothing new in fp32), keeps q_embed (f) and, while rotating k, k*cos, rotate_half(k)
        # and its product with sin (3 f), next to the layer input, the normed input and the packed qkv (5).
        f = 4 / dtype_bytes
        attn_set = (2 + captured + 3) * x + round(((2 * f if dtype_bytes < 4 else 0) + 4 * f) * x)
        mlp_set += rope
        attn_set += rope
    if spec.family == "pixtral":
        # cos/sin in the activation dtype for the B x N sequence, and the (B N)^2 block mask in the activation
        # dtype (generate_block_attention_mask), both alive through the whole encoder. Attention peaks while
        # RoPE rotates k: layer input, normed input, q, k, v, q_embed and k's rotation temporaries next to the
        # conv output and the encoder input (10 x, traced).
        rope = 2 * alloc(batch * n * spec.head_dim_)
        if joint_batch_attention(spec, attention):
            rope += alloc((batch * n) ** 2)
        mlp_set += rope
        attn_set = (10 + captured) * x + rope
    if attention == "eager":
        # eager_attention_forward of each tower: scores = (q @ k^T) * scale (the product and the scaled copy
        # alive together), then softmax. CLIP, SigLIP and Qwen take the softmax in fp32 and cast back
        # (softmax(..., dtype=torch.float32).to(query.dtype)) while the scaled scores are still bound: at the
        # cast scaled + fp32 softmax + cast are alive. DINOv2 and InternViT take it in the input dtype, so
        # the peak is product + scaled. Held next to them: encoder input, layer input, normed input, q, k, v (6).
        if spec.family in QWEN_FAMILIES:
            # transformers' non-flash path runs attention image by image (cu_seqlens split): one image's
            # scores at a time; q and k after RoPE are new tensors (+2). Not checked against a simulation
            # (the split needs real sequence lengths).
            # Full-attention layers hold the largest scores (Qwen2.5's windowed layers hold one window's).
            s = spec.num_heads * n * n
            held_eager = 7
        elif joint_batch_attention(spec, attention):
            s = spec.num_heads * (batch * n) ** 2  # Pixtral: one sequence of all images (not simulated; eager)
            held_eager = 6
        else:
            s = batch * spec.num_heads * n * n
            held_eager = 6
        if spec.family in ("dinov2", "internvit"):
            scores = 2 * alloc(s)
        elif dtype_bytes < 4:
            scores = 2 * alloc(s) + alloc(s, 4)
        else:
            scores = 2 * alloc(s, 4)
        attn_set = (held_eager + captured) * x + scores + rope
    head_set = _head_bytes(spec, batch, patches, x, alloc, merger_out_size)
    phases = {"mlp": mlp_set, "attention": attn_set, "head": head_set}
    peak = max(phases, key=lambda k: phases[k])
    return VitActivations(
        input_bytes=input_bytes,
        layer_mlp_bytes=mlp_set,
        layer_attention_bytes=attn_set,
        head_bytes=head_set,
        peak_phase=peak,  # type: ignore[arg-type]
    )


def _head_bytes(spec: VisionEncoderSpec, batch: int, patches: int, x: int, alloc, merger_out_size: int | None) -> int:
    """Live set after the last layer.

    - SigLIP MAP head: embeddings + encoder output + post-norm output (3) + the packed k/v projection and
      its contiguous copy inside nn.functional.multi_head_attention_forward (2 + 2) = 7 x BND.
    - DINOv2: embeddings + encoder output + final LayerNorm over all tokens = 3.
    - CLIP / InternViT: encoder input and output, the post-norm acts on one token (CLIP) or is absent = 2.
    - Qwen merger: last hidden + LN + fc1 and GELU on (merge^2 x D) wide rows (2) + output.
    """
    if spec.pooling_head == "map":
        return 7 * x
    if spec.family in QWEN_FAMILIES:
        out = alloc(batch * (patches // QWEN_MERGE**2) * (merger_out_size or spec.hidden_size))
        return 4 * x + out
    return (3 if spec.post_norm and spec.family != "clip" else 2) * x


def activation_bytes(spec: VisionEncoderSpec, batch: int, patches: int, dtype_bytes: int = 2, attention: Attention = "sdpa") -> int:
    """Peak activation bytes of ``batch`` images of ``patches`` patches each (input pixels included).

    The compact entry point for the memory model (estimate.py); see :func:`activation_breakdown`.
    """
    return activation_breakdown(spec, batch, patches, dtype_bytes, attention).peak_bytes


def vit_forward(
    spec: VisionEncoderSpec,
    batch: int = 1,
    width: int | None = None,
    height: int | None = None,
    dtype_bytes: int = 2,
    attention: Attention = "sdpa",
    merger_out_size: int | None = None,
) -> VitForward:
    """Tokens, FLOPs and peak activation memory of one forward pass.

    Args:
        spec: the catalog encoder.
        batch: images per forward pass.
        width, height: image size in pixels (default: the encoder's native square size).
        dtype_bytes: bytes per activation element (2 for fp16/bf16, 4 for fp32).
        attention: 'sdpa' (PyTorch scaled_dot_product_attention: flash / memory-efficient kernels on
            CUDA), 'flash' (flash-attention 2; same memory as SDPA's flash kernel) or 'eager' (N^2 scores).
        merger_out_size: Qwen-VL towers: the merger's output width (LLM hidden size), if it is to be counted.
    """
    w = width or spec.image_size
    h = height or spec.image_size
    t = vit_tokens(spec, w, h)
    return VitForward(
        encoder=spec.id,
        batch=batch,
        image_width=w,
        image_height=h,
        dtype_bytes=dtype_bytes,
        attention=attention,
        tokens=t,
        flops=vit_flops(spec, batch, w, h, merger_out_size, attention),
        activations=activation_breakdown(spec, batch, t.patches, dtype_bytes, attention, merger_out_size),
    )
