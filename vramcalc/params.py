"""Parameter counts derived from the architecture, tensor by tensor.

Each model is expanded into the list of its weight tensors, named and shaped the way llama.cpp
names them in a GGUF file (``token_embd.weight``, ``blk.3.attn_v.weight``, shape in GGUF order:
``ne0`` = row length first). Parameter counts are the sum of the elements; weight bytes at any
precision (``quant.py``) are summed over the same list, so the GGUF quantization mixture, which
picks a type per tensor, is modelled exactly.

Layouts follow the reference implementations: transformers ``modeling_llama.py`` / ``modeling_qwen2.py``
/ ``modeling_gemma2.py`` / ``modeling_mixtral.py`` / ``modeling_deepseek_v2.py``; vision towers
``modeling_clip.py``, ``modeling_siglip.py``, ``modeling_dinov2.py``, ``modeling_qwen2_vl.py``; tensor
names from llama.cpp ``gguf-py/gguf/constants.py`` (MODEL_TENSOR names).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cache
from math import prod
from typing import TYPE_CHECKING

from vramcalc.memo import spec_memo
from vramcalc.schema import LinearAttention, LlmSpec, Projector, VisionEncoderSpec, VlmSpec

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog


@dataclass(frozen=True, slots=True)
class Tensor:
    """One weight tensor: GGUF name, shape (ne0 first), and its repeating layer (None: outside the blocks).

    ``numel``, ``ndim`` and ``role`` ('attn_v', 'ffn_down_exps', 'token_embd', ...: the name without
    block prefix and suffix) are worked out once, when the tensor is made: ``fit`` reads them for every
    tensor of every catalog model at several precisions.
    """

    name: str
    shape: tuple[int, ...]
    layer: int | None = None
    numel: int = field(init=False, repr=False, compare=False)
    ndim: int = field(init=False, repr=False, compare=False)
    role: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "numel", prod(self.shape))
        object.__setattr__(self, "ndim", len(self.shape))
        object.__setattr__(self, "role", _role(self.name))


@cache
def _role(name: str) -> str:
    # cached: `fit` asks for the role of every tensor of every catalog model at several precisions
    parts = name.split(".")
    if parts[0] == "blk" or (parts[0] == "v" and len(parts) > 1 and parts[1] == "blk"):
        parts = parts[3:] if parts[0] == "v" else parts[2:]
    elif parts[0] in ("v", "mm"):
        parts = parts[1:]
    return parts[0]


@dataclass(frozen=True, slots=True)
class ParamCount:
    """Derived parameter counts of a model, by component."""

    llm: int = 0
    vision: int = 0
    projector: int = 0

    @property
    def total(self) -> int:
        return self.llm + self.vision + self.projector


def _norm(name: str, dim: int, layernorm: bool, bias: bool | None = None) -> list[Tensor]:
    """A norm's weight, plus a bias for LayerNorm (RMSNorm has none)."""
    out = [Tensor(f"{name}.weight", (dim,))]
    if layernorm if bias is None else bias:
        out.append(Tensor(f"{name}.bias", (dim,)))
    return out


def _linear(name: str, n_in: int, n_out: int, bias: bool, layer: int | None = None, *extra: int) -> list[Tensor]:
    out = [Tensor(f"{name}.weight", (n_in, n_out, *extra), layer)]
    if bias:
        out.append(Tensor(f"{name}.bias", (n_out, *extra), layer))
    return out


# --------------------------------------------------------------------------------------------
# LLM


@spec_memo
def llm_tensors(spec: LlmSpec) -> tuple[Tensor, ...]:
    """All weight tensors of a decoder-only LLM, in GGUF naming."""
    h = spec.hidden_size
    ln = spec.norm == "layernorm"
    nb = spec.norm_bias
    t: list[Tensor] = [Tensor("token_embd.weight", (h, spec.vocab_size))]
    for i in range(spec.num_layers):
        t += _layer(spec, i)
    t += _norm("output_norm", h, ln, nb)
    if not spec.tied_embeddings:
        t.append(Tensor("output.weight", (h, spec.vocab_size)))
    return tuple(t)


def _layer(spec: LlmSpec, i: int, linear: bool | None = None) -> list[Tensor]:
    """The tensors of decoder layer ``i`` (``linear``: force a linear-attention or attention mixer)."""
    h = spec.hidden_size
    hd = spec.head_dim_
    nq, nkv = spec.num_heads, spec.num_kv_heads
    ln = spec.norm == "layernorm"
    nb = spec.norm_bias
    la = spec.linear_attention
    if linear is None:
        linear = la is not None and la.is_linear(i)
    t: list[Tensor] = []
    b = f"blk.{i}"
    t += _norm(f"{b}.attn_norm", h, ln, nb)
    if i in spec.cross_attention_layers:
        # Llama 3.2 Vision (modeling_mllama.py MllamaCrossAttentionDecoderLayer): q from the text, k/v from the
        # image states, per-head q/k RMSNorm, tanh gates on the attention and MLP outputs (names as llama.cpp mllama)
        t += _linear(f"{b}.cross_attn_q", h, nq * hd, False, i) + _linear(f"{b}.cross_attn_k", h, nkv * hd, False, i)
        t += _linear(f"{b}.cross_attn_v", h, nkv * hd, False, i) + _linear(f"{b}.cross_attn_o", nq * hd, h, False, i)
        t += [Tensor(f"{b}.cross_attn_q_norm.weight", (hd,)), Tensor(f"{b}.cross_attn_k_norm.weight", (hd,))]
        t += [Tensor(f"{b}.cross_attn_attn_gate", (1,), i), Tensor(f"{b}.cross_attn_mlp_gate", (1,), i)]
    elif linear and la is not None:
        t += _gated_deltanet(la, h, b, i)
    elif spec.mla is not None:
        m = spec.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        # DeepSeek-V2 MLA (modeling_deepseek_v2.py DeepseekV2Attention): low-rank q, compressed kv + shared rope key
        if m.q_lora_rank:
            t += _linear(f"{b}.attn_q_a", h, m.q_lora_rank, False, i)
            t += _norm(f"{b}.attn_q_a_norm", m.q_lora_rank, False)
            t += _linear(f"{b}.attn_q_b", m.q_lora_rank, nq * qk, False, i)
        else:
            t += _linear(f"{b}.attn_q", h, nq * qk, False, i)
        t += _linear(f"{b}.attn_kv_a_mqa", h, m.kv_lora_rank + m.qk_rope_head_dim, False, i)
        t += _norm(f"{b}.attn_kv_a_norm", m.kv_lora_rank, False)
        t += _linear(f"{b}.attn_kv_b", m.kv_lora_rank, nq * (m.qk_nope_head_dim + m.v_head_dim), False, i)
        t += _linear(f"{b}.attn_output", nq * m.v_head_dim, h, spec.attn_out_bias, i)
    else:
        if spec.fused_qkv:
            t += _linear(f"{b}.attn_qkv", h, (nq + 2 * nkv) * hd, spec.qkv_bias, i)
        else:
            ga = spec.global_attention
            k_eq_v = False
            if ga is not None and spec.sliding_window is not None and not spec.sliding_window.is_sliding(i):
                hd, nkv, k_eq_v = ga.head_dim, ga.num_kv_heads, ga.k_eq_v  # Gemma 4 global layers
            # Qwen3-Next / Qwen3.5 attn_output_gate: q_proj yields q and a per-channel output gate
            t += _linear(f"{b}.attn_q", h, nq * hd * (2 if spec.attn_output_gate else 1), spec.qkv_bias, i)
            t += _linear(f"{b}.attn_k", h, nkv * hd, spec.qkv_bias, i)
            if not k_eq_v:
                t += _linear(f"{b}.attn_v", h, nkv * hd, spec.qkv_bias, i)
        t += _linear(f"{b}.attn_output", nq * hd, h, spec.attn_out_bias, i)
        if spec.qk_norm:
            t += [Tensor(f"{b}.attn_q_norm.weight", (hd,)), Tensor(f"{b}.attn_k_norm.weight", (hd,))]
    if spec.attention_sinks:
        t.append(Tensor(f"{b}.attn_sinks.weight", (nq,)))
    # Gemma 2/3: post-attention and post-FFN norms on top of the usual two
    extra_names = ["post_attention_norm", "post_ffw_norm"]
    for k in range(spec.extra_norms_per_layer):
        t += _norm(f"{b}.{extra_names[k] if k < 2 else f'extra_norm_{k}'}", h, ln, nb)
    t += _norm(f"{b}.ffn_norm", h, ln, nb)
    t += _ffn(spec, b, i)
    return t


def _gated_deltanet(la: LinearAttention, h: int, b: str, i: int) -> list[Tensor]:
    """A Gated DeltaNet token mixer (transformers modeling_qwen3_next.py Qwen3NextGatedDeltaNet;
    Qwen3.5 splits in_proj_qkvz / in_proj_ba into four projections of the same total size):
    q, k (key heads), v, z (value heads) in; beta and alpha (one per value head); a depthwise causal
    conv over q, k, v without bias; dt_bias and A_log per value head; a gated RMSNorm over the value
    head dim; the output projection. Names follow llama.cpp's qwen3next tensors (ssm_*)."""
    key_dim = la.num_key_heads * la.key_head_dim
    value_dim = la.num_value_heads * la.value_head_dim
    t = _linear(f"{b}.ssm_in", h, 2 * key_dim + 2 * value_dim, False, i)
    t += _linear(f"{b}.ssm_beta_alpha", h, 2 * la.num_value_heads, False, i)
    t.append(Tensor(f"{b}.ssm_conv1d.weight", (la.conv_kernel, la.conv_dim), i))
    t += [Tensor(f"{b}.ssm_dt.bias", (la.num_value_heads,), i), Tensor(f"{b}.ssm_a", (la.num_value_heads,), i)]
    t.append(Tensor(f"{b}.ssm_norm.weight", (la.value_head_dim,), i))
    t += _linear(f"{b}.ssm_out", value_dim, h, False, i)
    return t


def mtp_params(spec: LlmSpec) -> int:
    """Parameters of the multi-token-prediction (NextN) layers a checkpoint ships besides the
    decoder (DeepSeek-V3 model.layers.61, Qwen3.5 mtp.*): per layer one full-attention decoder layer
    of the model's FFN kind, the input projection of [embedding; hidden] (2h -> h) and three norms
    (DeepSeek enorm, hnorm, shared_head.norm; Qwen3.5 pre_fc_norm_embedding, pre_fc_norm_hidden, norm),
    plus a private embedding and output head where the checkpoint stores them. Counted only against
    published_params: the runtimes here do not load them for ordinary decoding."""
    if not spec.mtp_layers:
        return 0
    h = spec.hidden_size
    per = sum(x.numel for x in _layer(spec, spec.num_layers, linear=False)) + 2 * h * h + 3 * h
    if spec.mtp_own_embeddings:
        per += 2 * h * spec.vocab_size
    return per * spec.mtp_layers


def _ffn(spec: LlmSpec, b: str, i: int) -> list[Tensor]:
    h = spec.hidden_size
    moe = spec.moe
    if moe is None or i in moe.dense_layers:
        return _dense_ffn(b, h, spec.intermediate_size, spec.gated_mlp, spec.fused_gate_up, spec.mlp_bias, i, "")
    n, ff = moe.num_experts, moe.expert_intermediate_size
    # experts stacked in one 3-D tensor per projection, as llama.cpp stores them (ffn_*_exps)
    t = _linear(f"{b}.ffn_gate_inp", h, n, moe.router_bias, i)
    if spec.gated_mlp:
        t += _linear(f"{b}.ffn_gate_exps", h, ff, moe.expert_bias, i, n)
    t += _linear(f"{b}.ffn_up_exps", h, ff, moe.expert_bias, i, n)
    t += _linear(f"{b}.ffn_down_exps", ff, h, moe.expert_bias, i, n)
    if moe.shared_experts:
        sff = (moe.shared_expert_intermediate_size or ff) * moe.shared_experts
        t += _dense_ffn(b, h, sff, spec.gated_mlp, False, False, i, "_shexp")
        if moe.shared_expert_gate:
            t += _linear(f"{b}.ffn_gate_inp_shexp", h, 1, False, i)
    return t


def _dense_ffn(b: str, h: int, ff: int, gated: bool, fused: bool, bias: bool, i: int, suffix: str) -> list[Tensor]:
    if gated and fused:  # Phi-3: one gate_up projection of width 2*ff
        t = _linear(f"{b}.ffn_up{suffix}", h, 2 * ff, bias, i)
    elif gated:
        t = _linear(f"{b}.ffn_gate{suffix}", h, ff, bias, i) + _linear(f"{b}.ffn_up{suffix}", h, ff, bias, i)
    else:
        t = _linear(f"{b}.ffn_up{suffix}", h, ff, bias, i)
    return t + _linear(f"{b}.ffn_down{suffix}", ff, h, bias, i)


def llm_active_params(spec: LlmSpec) -> int:
    """Parameters read per token: all but the inactive experts (and the token embedding, a lookup)."""
    total = 0
    for t in llm_tensors(spec):
        if t.role == "token_embd":
            continue
        if t.role.endswith("_exps") and spec.moe:
            total += t.numel * spec.moe.experts_per_token // spec.moe.num_experts
        else:
            total += t.numel
    return total


# --------------------------------------------------------------------------------------------
# Vision encoder


def vision_grid(spec: VisionEncoderSpec, width: int | None = None, height: int | None = None) -> tuple[int, int]:
    """Patch grid (columns, rows) at an image size; defaults to the native square size."""
    w = width or spec.image_size
    hh = height or spec.image_size
    return w // spec.patch_size, hh // spec.patch_size


@spec_memo
def encoder_tensors(spec: VisionEncoderSpec) -> tuple[Tensor, ...]:
    """All weight tensors of a ViT tower, named like llama.cpp's clip/mtmd GGUF (``v.blk.N...``)."""
    h = spec.hidden_size
    p = spec.patch_size
    qd = spec.num_heads * spec.head_dim_
    ln = spec.norm == "layernorm"
    t: list[Tensor] = [Tensor("v.patch_embd.weight", (p, p, spec.num_channels * spec.temporal_patch_size, h))]
    if spec.patch_bias:
        t.append(Tensor("v.patch_embd.bias", (h,)))
    if spec.class_token:
        t.append(Tensor("v.class_embd", (h,)))
    if spec.register_tokens:
        t.append(Tensor("v.register_embd", (h, spec.register_tokens)))
    if spec.position_embedding in ("learned", "learned+rope2d"):
        gx, gy = vision_grid(spec)
        n_pos = spec.num_position_embeddings or gx * gy + int(spec.class_token)
        t.append(Tensor("v.position_embd.weight", (h, n_pos)))
    if spec.pre_norm:
        t += _norm("v.pre_ln", h, ln)
    for i in range(spec.num_layers):
        b = f"v.blk.{i}"
        t += _norm(f"{b}.ln1", h, ln)
        t += _linear(f"{b}.attn_q", h, qd, spec.qkv_bias, i)
        t += _linear(f"{b}.attn_k", h, qd, spec.qkv_bias, i)
        t += _linear(f"{b}.attn_v", h, qd, spec.qkv_bias, i)
        if spec.qk_norm:  # InternViT-6B: RMSNorm over all heads of q and of k
            t += _norm(f"{b}.attn_q_norm", qd, False) + _norm(f"{b}.attn_k_norm", qd, False)
        t += _linear(f"{b}.attn_out", qd, h, spec.attn_out_bias, i)
        if spec.layer_scale:
            t += [Tensor(f"{b}.ls1", (h,)), Tensor(f"{b}.ls2", (h,))]
        t += _norm(f"{b}.ln2", h, ln)
        t += _dense_ffn(b, h, spec.intermediate_size, spec.gated_mlp, False, spec.mlp_bias, i, "")
    if spec.post_norm:
        t += _norm("v.post_ln", h, ln)
    if spec.pooling_head == "map":
        # SigLIP SiglipMultiheadAttentionPoolingHead: probe, nn.MultiheadAttention (packed in_proj), LayerNorm, MLP
        t.append(Tensor("v.head.probe", (h,)))
        t += _linear("v.head.attn_in", h, 3 * h, True) + _linear("v.head.attn_out", h, h, True)
        t += _norm("v.head.ln", h, True)
        t += _linear("v.head.ffn_up", h, spec.intermediate_size, True) + _linear("v.head.ffn_down", spec.intermediate_size, h, True)
    if spec.extra_params:  # documented per entry (mask token, tile embeddings, ...); 1-D so it stays F32/16-bit
        t.append(Tensor("v.extra", (spec.extra_params,)))
    return tuple(t)


# --------------------------------------------------------------------------------------------
# Projector (VLM)


def projector_tensors(proj: Projector, enc: VisionEncoderSpec, llm: LlmSpec, image_newline: bool = False) -> tuple[Tensor, ...]:
    """Weights that connect the encoder to the LLM (``mm.*``)."""
    h_out = llm.hidden_size
    n_in = proj.input_size or enc.hidden_size * proj.merge**2
    t: list[Tensor] = []
    if proj.kind == "cross_attention":
        # Llama 3.2 Vision (modeling_mllama.py): a projection of the concatenated vision features, plus
        # full decoder layers with cross-attention inserted into the LLM stack. An LLM entry that lists
        # them (cross_attention_layers) holds them as language-model layers: only the projection is here.
        t += _linear("mm.proj", n_in, h_out, True)
        hd, nq, nkv = llm.head_dim_, llm.num_heads, llm.num_kv_heads
        for i in [] if llm.cross_attention_layers else proj.cross_attention_layers:
            b = f"mm.xattn.{i}"
            t += _norm(f"{b}.attn_norm", h_out, False)
            t += _linear(f"{b}.attn_q", h_out, nq * hd, False, i)
            t += _linear(f"{b}.attn_k", h_out, nkv * hd, False, i)
            t += _linear(f"{b}.attn_v", h_out, nkv * hd, False, i)
            t += _linear(f"{b}.attn_output", nq * hd, h_out, False, i)
            t += [Tensor(f"{b}.attn_q_norm.weight", (hd,)), Tensor(f"{b}.attn_k_norm.weight", (hd,))]
            t += [Tensor(f"{b}.attn_gate", (1,)), Tensor(f"{b}.ffn_gate_scale", (1,))]
            t += _norm(f"{b}.ffn_norm", h_out, False)
            t += _dense_ffn(b, h_out, llm.intermediate_size, llm.gated_mlp, False, False, i, "")
    elif proj.kind == "resampler":
        # MiniCPM-V Resampler: learned queries, kv projection, one nn.MultiheadAttention, 3 LayerNorms, output proj
        q = proj.num_queries or 64
        t.append(Tensor("mm.query", (h_out, q)))
        t += _linear("mm.kv_proj", n_in, h_out, False)
        t += _linear("mm.attn_in", h_out, 3 * h_out, True) + _linear("mm.attn_out", h_out, h_out, True)
        for name in ("mm.ln_q", "mm.ln_kv", "mm.ln_post"):
            t += _norm(name, h_out, True)
        t.append(Tensor("mm.proj", (h_out, h_out)))
    elif proj.kind == "pooled_linear":
        # Gemma 3 (modeling_gemma3.py Gemma3MultiModalProjector): avg-pool, RMSNorm, linear without bias
        t += _norm("mm.soft_emb_norm", enc.hidden_size, False)
        t += _linear("mm.input_projection", enc.hidden_size, h_out, False)
    elif proj.kind != "other":
        if proj.norm:  # Qwen merger ln_q / InternVL mlp1.0 LayerNorm over the merged features
            src = enc.hidden_size if proj.kind == "merger" else n_in
            t += _norm("mm.input_norm", src, True)
        hidden = proj.hidden_size or (n_in if proj.kind == "merger" else h_out)
        if proj.kind == "linear" or proj.layers == 1:
            t += _linear("mm.0", n_in, h_out, proj.bias)
        else:
            dims = [n_in] + [hidden] * (proj.layers - 1) + [h_out]
            for k in range(proj.layers):
                t += _linear(f"mm.{k}", dims[k], dims[k + 1], proj.bias)
    if proj.deepstack_layers and proj.kind == "merger":
        # Qwen3-VL DeepStack mergers (transformers modeling_qwen3_vl Qwen3VLVisionPatchMerger with
        # use_postshuffle_norm=True; llama.cpp convert_hf_to_gguf.py Qwen3VLVisionModel: v.deepstack.N.norm/fc1/fc2)
        hidden = proj.hidden_size or n_in
        for i in proj.deepstack_layers:
            b = f"v.deepstack.{i}"
            t += _norm(f"{b}.norm", n_in, True)
            t += _linear(f"{b}.fc1", n_in, hidden, proj.bias) + _linear(f"{b}.fc2", hidden, h_out, proj.bias)
    if proj.extra_params:
        t.append(Tensor("mm.extra", (proj.extra_params,)))
    if image_newline:  # LLaVA-NeXT image_newline parameter (one LLM-width vector)
        t.append(Tensor("mm.image_newline", (h_out,)))
    return tuple(t)


# --------------------------------------------------------------------------------------------


def count_params(spec: LlmSpec | VisionEncoderSpec | VlmSpec, catalog: Catalog | None = None) -> ParamCount:
    """Derived parameter count, by component.

    Args:
        spec: an LLM, a vision encoder, or a VLM (whose encoder and LLM are looked up in ``catalog``).
        catalog: the ``Catalog`` a VLM's encoder and LLM ids resolve in (required for a VLM).

    Returns:
        ParamCount with ``llm``, ``vision``, ``projector`` and ``total``.
    """
    if isinstance(spec, LlmSpec):
        return ParamCount(llm=sum(t.numel for t in llm_tensors(spec)))
    if isinstance(spec, VisionEncoderSpec):
        return ParamCount(vision=sum(t.numel for t in encoder_tensors(spec)))
    parts = vlm_parts(spec, catalog)
    return ParamCount(
        llm=sum(t.numel for t in llm_tensors(parts.llm)),
        vision=sum(t.numel for t in encoder_tensors(parts.encoder)),
        projector=sum(t.numel for t in parts.projector),
    )


@dataclass(frozen=True)
class VlmParts:
    vlm: VlmSpec
    encoder: VisionEncoderSpec
    llm: LlmSpec
    projector: tuple[Tensor, ...]


def vlm_parts(vlm: VlmSpec, catalog: Catalog | None) -> VlmParts:
    """Resolve a VLM's encoder and LLM ids in ``catalog`` and build its projector tensors."""
    if catalog is None:
        raise TypeError(f"{vlm.id}: a VLM's parts resolve in a catalog; none was given")
    enc = catalog.encoder(vlm.encoder)
    llm = catalog.llm(vlm.llm)
    if vlm.llm_overrides is not None:
        llm = _overridden(llm, vlm)
    newline = getattr(vlm.image_tokens, "kind", "") == "anyres" and vlm.image_tokens.newline_tokens  # type: ignore[union-attr]
    return VlmParts(vlm, enc, llm, projector_tensors(vlm.projector, enc, llm, image_newline=newline))


_OVERRIDDEN: dict[tuple[str, str], LlmSpec] = {}


def _overridden(llm: LlmSpec, vlm: VlmSpec) -> LlmSpec:
    """The VLM's variant of its LLM (memoized on the content of the LLM and of the overrides)."""
    key = (repr(llm), repr(vlm.llm_overrides))
    hit = _OVERRIDDEN.get(key)
    if hit is None:
        over = vlm.llm_overrides
        update = {f.name: getattr(over, f.name) for f in dataclasses.fields(over) if getattr(over, f.name) is not None}  # type: ignore[arg-type]
        hit = _OVERRIDDEN[key] = dataclasses.replace(llm, **update)
    return hit
