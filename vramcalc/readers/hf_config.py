"""Hugging Face config.json -> catalog-schema specs: the ``PretrainedConfig`` fields, with the
defaults of the transformers config classes for fields a config leaves out.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vramcalc.errors import InputError
from vramcalc.readers.common import (
    MAX_EXPERTS,
    MAX_LAYERS,
    MAX_TOKENS,
    MAX_WIDTH,
    anyres_tokens,
    checked_bool,
    checked_float,
    checked_int,
    layer_count,
    show_value,
)
from vramcalc.schema import (
    DynamicResolutionTokens,
    FixedTokens,
    LinearAttention,
    LlmSpec,
    Mla,
    Moe,
    Projector,
    SlidingWindow,
    VisionEncoderSpec,
    VlmDefaults,
    VlmSpec,
    WindowAttention,
)

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog


#: Defaults of the transformers config classes for fields that published configs often omit
#: (transformers models/<type>/configuration_<type>.py __init__ defaults).
_HF_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": dict(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        max_position_embeddings=2048,
        hidden_act="silu",
        tie_word_embeddings=False,
    ),
    "mistral": dict(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=4096 * 32,
        hidden_act="silu",
        sliding_window=4096,
        tie_word_embeddings=False,
    ),
    "qwen2": dict(
        vocab_size=151936,
        hidden_size=4096,
        intermediate_size=22016,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=32768,
        hidden_act="silu",
        tie_word_embeddings=False,
    ),
    "gemma3_text": dict(
        vocab_size=262208,
        hidden_size=2304,
        intermediate_size=9216,
        num_hidden_layers=26,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=256,
        max_position_embeddings=131072,
        hidden_activation="gelu_pytorch_tanh",
        sliding_window=4096,
        sliding_window_pattern=6,
        tie_word_embeddings=True,
    ),
    "clip_vision_model": dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=224,
        patch_size=32,
        hidden_act="quick_gelu",
    ),
    "siglip_vision_model": dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=224,
        patch_size=16,
        hidden_act="gelu_pytorch_tanh",
    ),
}
_HF_DEFAULTS["qwen3"] = _HF_DEFAULTS["qwen2"]

#: HF model_type -> catalog family, for the text models this reader knows.
HF_TEXT_TYPES = {
    "llama": "llama",
    "mistral": "mistral",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "gemma3_text": "gemma3",
    "phi3": "phi3",
    "mixtral": "mixtral",
    "qwen2_moe": "qwen2_moe",
    "qwen3_moe": "qwen3_moe",
    "deepseek_v2": "deepseek_v2",
    "deepseek_v3": "deepseek_v3",
    "gpt_oss": "gpt-oss",
    "granite": "granite",
    "olmo2": "olmo2",
    # issue 15: hybrid linear-attention Qwen (Gated DeltaNet) and DeepSeek-V3-shaped Kimi K2
    "qwen3_next": "qwen3_next",
    "qwen3_5_text": "qwen3_5",
    "qwen3_5_moe_text": "qwen3_5_moe",
    "kimi_k2": "deepseek_v3",
}

#: hybrid model_types whose layer_types mark Gated DeltaNet layers ('linear_attention')
_HF_HYBRID = ("qwen3_next", "qwen3_5_text", "qwen3_5_moe_text")
#: multimodal model_types whose text_config is read as a text model (the vision tower is not read)
HF_TEXT_OF_VLM = {"qwen3_5": "qwen3_5_text", "qwen3_5_moe": "qwen3_5_moe_text"}
HF_VLM_TYPES = ("llava", "llava_next", "qwen2_vl", "qwen2_5_vl", "gemma3", "qwen3_vl", "qwen3_vl_moe")
#: Qwen3-VL text_config model_types -> the text model they are (transformers models/qwen3_vl: Qwen3VLTextModel is a
#: Qwen3 decoder with interleaved MRoPE; qwen3_vl_moe: the Qwen3-MoE decoder), read with that model's rules
QWEN3_VL_TEXT = {"qwen3_vl": "qwen3", "qwen3_vl_moe": "qwen3_moe", "qwen3_vl_text": "qwen3", "qwen3_vl_moe_text": "qwen3_moe"}

_ACTS = {
    "silu": "silu",
    "swish": "silu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
    "quick_gelu": "quick_gelu",
}
_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def _get(cfg: dict[str, Any], mt: str, key: str, where: Path, default: Any = ...) -> Any:
    if cfg.get(key) is not None:
        return cfg[key]
    d = _HF_DEFAULTS.get(mt, {}).get(key)
    if d is not None:
        return d
    if default is not ...:
        return default
    raise InputError(f"{where}: the config has no '{key}' (model_type '{mt}'), needed for the estimate.")


def _pattern(layer_types: list[str], marks: str = "sliding") -> list[bool]:
    """Shortest repeating unit of a per-layer list of attention types, True where a type starts with
    ``marks`` (the callers bound the list by the layer count, at most MAX_LAYERS, so the search is at
    most a million comparisons)."""
    flags = [str(x).startswith(marks) for x in layer_types]
    for n in range(1, len(flags) + 1):
        if all(flags[i] == flags[i % n] for i in range(len(flags))):
            return flags[:n]
    return flags


def _int(cfg: dict[str, Any], key: str, where: Path, lo: int = 1, hi: int = MAX_WIDTH, default: Any = None) -> Any:
    """The integer field ``key`` of a config (absent or null: ``default``), checked for its type and range."""
    v = cfg.get(key)
    if v is None:
        return default
    return checked_int(v, f"{where}: '{key}'", lo, hi)


def _bool(cfg: dict[str, Any], key: str, where: Path, default: bool) -> bool:
    v = cfg.get(key)
    return default if v is None else checked_bool(v, f"{where}: '{key}'")


def _obj(cfg: dict[str, Any], key: str, where: Path) -> dict[str, Any] | None:
    """A nested config object (text_config, vision_config ...): a JSON object or absent."""
    v = cfg.get(key)
    if v is not None and not isinstance(v, dict):
        raise InputError(f"{where}: '{key}' is {show_value(v)}; expected an object of fields.")
    return v


def llm_from_hf(cfg: dict[str, Any], where: Path, ident: str, name: str, torch_dtype: str | None = None) -> LlmSpec:
    """An LlmSpec from a Hugging Face text config (the top level or a VLM's text_config)."""
    mt = str(cfg.get("model_type") or "")
    if mt == "gemma3":
        mt = "gemma3_text"
    if mt == "kimi_k2":  # DeepseekV3ForCausalLM with another model_type
        mt = "deepseek_v3"
    if mt not in HF_TEXT_TYPES:
        raise InputError(f"{where}: model_type '{mt or '(none)'}' is not supported; supported: {', '.join(sorted(HF_TEXT_TYPES))}.")

    def g(key: str, default: Any = ...) -> Any:
        return _get(cfg, mt, key, where, default)

    def gi(key: str, lo: int = 1, hi: int = MAX_WIDTH, default: Any = ...) -> int:
        return checked_int(g(key, default), f"{where}: '{key}'", lo, hi)

    hidden = gi("hidden_size")
    heads = gi("num_attention_heads", 1, hidden)
    n_layers = layer_count(gi("num_hidden_layers", 1, MAX_LAYERS), where)
    defaults = _HF_DEFAULTS.get(mt, {})
    head_dim = _int(cfg, "head_dim", where, default=defaults.get("head_dim"))
    if head_dim and head_dim == hidden // heads:
        head_dim = None
    act_name = str(
        cfg.get("hidden_activation")
        or cfg.get("hidden_act")
        or defaults.get("hidden_activation")
        or defaults.get("hidden_act")
        or ("gelu_pytorch_tanh" if mt.startswith("gemma") else "silu")
    )
    activation = "swiglu_oai" if mt == "gpt_oss" else _ACTS.get(act_name, "silu")
    if activation == "quick_gelu":
        activation = "gelu"
    gemma = mt in ("gemma", "gemma2", "gemma3_text")
    bias = _bool(cfg, "attention_bias", where, False)
    moe = None
    ff = gi("intermediate_size", 0, MAX_WIDTH, 0)
    if mt in ("mixtral", "gpt_oss"):
        n_exp = gi("num_local_experts", 1, MAX_EXPERTS)
        moe = Moe(
            num_experts=n_exp,
            experts_per_token=_int(cfg, "num_experts_per_tok", where, 1, n_exp) or gi("experts_per_token", 1, n_exp),
            expert_intermediate_size=ff,
            expert_bias=mt == "gpt_oss",
            router_bias=mt == "gpt_oss",
            expert_dtype="mxfp4" if (_obj(cfg, "quantization_config", where) or {}).get("quant_method") == "mxfp4" else "native",
        )
    elif mt in ("qwen2_moe", "qwen3_moe") or (mt in _HF_HYBRID and cfg.get("num_experts")):
        step = _int(cfg, "decoder_sparse_step", where, 1, MAX_LAYERS, 1)
        only_v = cfg.get("mlp_only_layers") or []
        if not isinstance(only_v, list):
            raise InputError(f"{where}: 'mlp_only_layers' is {show_value(only_v)}; expected a list of layer indexes.")
        only = {checked_int(i, f"{where}: 'mlp_only_layers'", 0, n_layers - 1) for i in only_v}
        dense = [i for i in range(n_layers) if i in only or (i + 1) % step != 0]
        shared = _int(cfg, "shared_expert_intermediate_size", where, 0, MAX_WIDTH, 0)
        n_exp = gi("num_experts", 1, MAX_EXPERTS)
        moe = Moe(
            num_experts=n_exp,
            experts_per_token=gi("num_experts_per_tok", 1, n_exp),
            expert_intermediate_size=gi("moe_intermediate_size"),
            shared_experts=1 if shared else 0,
            shared_expert_intermediate_size=shared or None,
            shared_expert_gate=bool(shared),
            dense_layers=dense,
        )
    elif mt in ("deepseek_v2", "deepseek_v3"):
        n_routed = _int(cfg, "n_routed_experts", where, 0, MAX_EXPERTS, 0)
        if n_routed:
            k_dense = _int(cfg, "first_k_dense_replace", where, 0, MAX_LAYERS, 0)
            freq = _int(cfg, "moe_layer_freq", where, 1, MAX_LAYERS, 1)
            dense = [i for i in range(n_layers) if i < k_dense or i % freq != 0]
            moe = Moe(
                num_experts=n_routed,
                experts_per_token=gi("num_experts_per_tok", 1, n_routed),
                expert_intermediate_size=gi("moe_intermediate_size"),
                shared_experts=_int(cfg, "n_shared_experts", where, 0, MAX_EXPERTS, 0),
                dense_layers=dense,
                router_bias=mt == "deepseek_v3",
            )
    mla = None
    if mt in ("deepseek_v2", "deepseek_v3"):
        q_rank = _int(cfg, "q_lora_rank", where, 0)
        mla = Mla(
            kv_lora_rank=gi("kv_lora_rank"),
            q_lora_rank=q_rank or None,
            qk_nope_head_dim=gi("qk_nope_head_dim"),
            qk_rope_head_dim=gi("qk_rope_head_dim"),
            v_head_dim=gi("v_head_dim"),
        )
        head_dim = None
    sliding = None
    window = _int(cfg, "sliding_window", where, 0, MAX_TOKENS) if "sliding_window" in cfg else defaults.get("sliding_window")
    layer_types = cfg.get("layer_types")
    if layer_types is not None and not (isinstance(layer_types, list) and all(isinstance(x, str) for x in layer_types)):
        raise InputError(f"{where}: 'layer_types' is {show_value(layer_types)}; expected a list of attention types, one per layer.")
    if window and layer_types:
        if len(layer_types) != n_layers:
            raise InputError(f"{where}: layer_types lists {len(layer_types)} layers, num_hidden_layers says {n_layers}.")
        pat = _pattern(layer_types)
        if any(pat):
            sliding = SlidingWindow(size=window, pattern=pat)
    elif window and mt == "gemma2":
        sliding = SlidingWindow(size=window, pattern=[True, False])
    elif window and mt == "gemma3_text":
        n = _int(cfg, "sliding_window_pattern", where, 1, MAX_LAYERS, 6)
        sliding = SlidingWindow(size=window, pattern=[True] * (n - 1) + [False])
    elif window and (mt == "mistral" or (mt in ("qwen2", "qwen3") and _bool(cfg, "use_sliding_window", where, False))):
        sliding = SlidingWindow(size=window, pattern=[True])
    dtype = _DTYPES.get(str(cfg.get("torch_dtype") or cfg.get("dtype") or torch_dtype or "bfloat16"), "bf16")
    hybrid = _hybrid_fields(cfg, mt, n_layers, where) if mt in _HF_HYBRID else {}
    return LlmSpec(
        id=ident,
        name=name,
        source=f"Hugging Face config {where} (model_type {mt}; read by vramcalc)",
        family=HF_TEXT_TYPES[mt],
        num_layers=n_layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=_int(cfg, "num_key_value_heads", where, 1, heads, defaults.get("num_key_value_heads") or heads),
        head_dim=head_dim or None,
        intermediate_size=ff or (moe.expert_intermediate_size if moe else 1),
        gated_mlp=True,
        activation=activation,  # type: ignore[arg-type]
        vocab_size=gi("vocab_size", 1, MAX_TOKENS),
        tied_embeddings=_bool(cfg, "tie_word_embeddings", where, defaults.get("tie_word_embeddings", gemma)),
        qkv_bias=mt in ("qwen2", "qwen2_moe") or bias,
        attn_out_bias=bias and mt not in ("qwen2", "qwen2_moe"),
        mlp_bias=_bool(cfg, "mlp_bias", where, False),
        fused_qkv=mt == "phi3",
        fused_gate_up=mt == "phi3",
        qk_norm=mt in ("qwen3", "qwen3_moe", "gemma3_text", "olmo2", *_HF_HYBRID),
        extra_norms_per_layer=2 if mt in ("gemma2", "gemma3_text") else 0,
        attention_sinks=mt == "gpt_oss",
        max_context=gi("max_position_embeddings", 1, MAX_TOKENS),
        sliding_window=sliding,
        moe=moe,
        mla=mla,
        dtype=dtype,  # type: ignore[arg-type]
        # experts published in MXFP4 (gpt-oss quantization_config) are downloaded as MXFP4 GGUFs
        default_gguf_type="MXFP4_MOE" if moe is not None and moe.expert_dtype == "mxfp4" else None,
        **hybrid,
    )


def _hybrid_fields(cfg: dict[str, Any], mt: str, n_layers: int, where: Path) -> dict[str, Any]:
    """Qwen3-Next / Qwen3.5: which layers are Gated DeltaNet layers (layer_types, else every
    full_attention_interval-th layer is full attention), their shape, the gated q_proj and the MTP layers."""
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        if len(layer_types) != n_layers:
            raise InputError(f"{where}: layer_types lists {len(layer_types)} layers, num_hidden_layers says {n_layers}.")
        pattern = _pattern(layer_types, marks="linear_attention")
    else:  # Qwen3-Next configuration default: every 4th layer is full attention
        interval = _int(cfg, "full_attention_interval", where, 1, n_layers, 4)
        pattern = [True] * (interval - 1) + [False]

    def g(key: str) -> int:
        return int(checked_int(_get(cfg, mt, key, where), f"{where}: '{key}'", 1, MAX_WIDTH))

    la = LinearAttention(
        pattern=pattern,
        num_key_heads=g("linear_num_key_heads"),
        num_value_heads=g("linear_num_value_heads"),
        key_head_dim=g("linear_key_head_dim"),
        value_head_dim=g("linear_value_head_dim"),
        conv_kernel=_int(cfg, "linear_conv_kernel_dim", where, 1, MAX_WIDTH, 4),  # configuration default 4
        state_dtype="f32",
    )
    mtp_key = "mtp_num_hidden_layers" if cfg.get("mtp_num_hidden_layers") is not None else "num_nextn_predict_layers"
    mtp = _int(cfg, mtp_key, where, 0, MAX_LAYERS, 0)
    return {"linear_attention": la, "attn_output_gate": _bool(cfg, "attn_output_gate", where, True), "mtp_layers": mtp}


def _vision_from_hf(vlm_type: str, vc: dict[str, Any], where: Path, ident: str, name: str) -> VisionEncoderSpec:
    """The vision tower of a HF VLM config (transformers modeling_clip / siglip / qwen2_vl / qwen2_5_vl layouts)."""
    common: dict[str, Any] = dict(id=ident, name=name, source=f"vision_config of the Hugging Face config {where} (read by vramcalc)")
    if vlm_type in ("llava", "llava_next", "gemma3"):
        mt = str(vc.get("model_type") or ("siglip_vision_model" if vlm_type == "gemma3" else "clip_vision_model"))
        if mt not in ("clip_vision_model", "siglip_vision_model"):
            raise InputError(f"{where}: vision_config model_type '{mt}' is not supported (clip_vision_model, siglip_vision_model).")
        clip = mt == "clip_vision_model"

        def g(key: str) -> Any:
            return _get(vc, mt, key, where)

        def gi(key: str, lo: int = 1, hi: int = MAX_WIDTH) -> int:
            return checked_int(g(key), f"{where}: 'vision_config.{key}'", lo, hi)

        act = _ACTS.get(str(g("hidden_act")), "gelu")
        image_size = gi("image_size", 1, 2**16)
        hid = gi("hidden_size")
        return VisionEncoderSpec(
            **common,
            family="clip" if clip else "siglip",
            image_size=image_size,
            patch_size=gi("patch_size", 1, image_size),
            hidden_size=hid,
            num_layers=layer_count(gi("num_hidden_layers", 1, MAX_LAYERS), where),
            num_heads=gi("num_attention_heads", 1, hid),
            intermediate_size=gi("intermediate_size"),
            mlp_activation=act,  # type: ignore[arg-type]  # one of the _ACTS values
            class_token=clip,
            patch_bias=not clip,
            pre_norm=clip,
            post_norm=True,
            dtype="fp16",
        )
    if vlm_type in ("qwen3_vl", "qwen3_vl_moe"):
        return _qwen3_vision(vc, where, common)
    # Qwen2-VL / Qwen2.5-VL vision transformers. Fallbacks for fields a vision_config leaves out: the
    # published 7B vision_configs (shared/reference/hf_configs/vlm/Qwen2-VL-7B-Instruct.json: depth 32,
    # embed_dim 1280, mlp_ratio 4, num_heads 16, patch_size 14; Qwen2.5-VL-7B-Instruct.json: hidden_size
    # 1280, intermediate_size 3420, window_size 112). The towers have no native size (dynamic
    # resolution): image_size 32 patches (448 px) is only a nominal side, as the catalog entries use.
    w = Path(f"{where}: vision_config")

    def vi(key: str, default: int, lo: int = 1, hi: int = MAX_WIDTH) -> int:
        return int(_int(vc, key, w, lo, hi, default))

    depth = layer_count(vi("depth", 32, 1, MAX_LAYERS), where)
    patch = vi("patch_size", 14, 1, 2**10)
    if vlm_type == "qwen2_vl":
        embed = vi("embed_dim", 1280)
        ratio = vc.get("mlp_ratio")
        return VisionEncoderSpec(
            **common,
            family="qwen2_vit",
            image_size=patch * 32,
            patch_size=patch,
            temporal_patch_size=vi("temporal_patch_size", 2, 1, 16),
            hidden_size=embed,
            num_layers=depth,
            num_heads=vi("num_heads", 16, 1, embed),
            intermediate_size=int(embed * (4 if ratio is None else checked_float(ratio, f"{w}: 'mlp_ratio'", 0.01, 1024))),
            mlp_activation="quick_gelu",
            class_token=False,
            patch_bias=False,
            position_embedding="rope2d",
            post_norm=False,
            dtype="bf16",
        )
    hid = vi("hidden_size", 1280)
    full = vc.get("fullatt_block_indexes") or []
    if not isinstance(full, list):
        raise InputError(f"{w}: 'fullatt_block_indexes' is {show_value(full)}; expected a list of layer indexes.")
    full = [checked_int(i, f"{w}: 'fullatt_block_indexes'", 0, depth - 1) for i in full]
    return VisionEncoderSpec(
        **common,
        family="qwen25_vit",
        image_size=patch * 32,
        patch_size=patch,
        temporal_patch_size=vi("temporal_patch_size", 2, 1, 16),
        hidden_size=hid,
        num_layers=depth,
        num_heads=vi("num_heads", 16, 1, hid),
        intermediate_size=vi("intermediate_size", 3420),
        mlp_activation="swiglu",
        norm="rmsnorm",
        class_token=False,
        patch_bias=False,
        mlp_bias=True,
        position_embedding="rope2d",
        post_norm=False,
        window_attention=WindowAttention(window_size_px=vi("window_size", 112, 1, 2**16), full_attention_layers=full) if full else None,
        dtype="bf16",
    )


def _qwen3_vision(vc: dict[str, Any], where: Path, common: dict[str, Any]) -> VisionEncoderSpec:
    """The Qwen3-VL vision tower (transformers models/qwen3_vl Qwen3VLVisionModel: Conv3d patch embedding with bias,
    a learned num_position_embeddings grid interpolated per image plus 2-D RoPE, LayerNorm blocks with a fused
    qkv, GELU-tanh MLP, no final norm; the merger and DeepStack mergers are the projector). Fallbacks for fields a
    vision_config leaves out: Qwen3VLVisionConfig defaults (depth 27, hidden 1152, intermediate 4304, 16 heads,
    patch 16, temporal 2, 2304 positions)."""
    w = Path(f"{where}: vision_config")

    def vi(key: str, default: int, lo: int = 1, hi: int = MAX_WIDTH) -> int:
        return int(_int(vc, key, w, lo, hi, default))

    hid = vi("hidden_size", 1152)
    patch = vi("patch_size", 16, 1, 2**10)
    n_pos = vi("num_position_embeddings", 2304, 1, 2**24)
    side = max(1, round(n_pos**0.5))  # the learned table is a side x side grid (48 x 48 for 2304)
    return VisionEncoderSpec(
        **common,
        family="qwen3_vit",
        image_size=side * patch,
        patch_size=patch,
        temporal_patch_size=vi("temporal_patch_size", 2, 1, 16),
        hidden_size=hid,
        num_layers=layer_count(vi("depth", 27, 1, MAX_LAYERS), where),
        num_heads=vi("num_heads", 16, 1, hid),
        intermediate_size=vi("intermediate_size", 4304),
        mlp_activation=_ACTS.get(str(vc.get("hidden_act") or "gelu_pytorch_tanh"), "gelu_tanh"),  # type: ignore[arg-type]
        norm="layernorm",
        class_token=False,
        patch_bias=True,
        qkv_bias=True,
        attn_out_bias=True,
        mlp_bias=True,
        position_embedding="learned+rope2d",
        num_position_embeddings=n_pos,
        pre_norm=False,
        post_norm=False,
        dtype="bf16",
    )


def _deepstack(vc: dict[str, Any], where: Path, depth: int) -> list[int]:
    """vision_config.deepstack_visual_indexes: the encoder layers that feed a DeepStack merger."""
    v = vc.get("deepstack_visual_indexes")
    if v is None:
        return []
    if not isinstance(v, list) or len(v) > depth:
        raise InputError(f"{where}: 'vision_config.deepstack_visual_indexes' is {show_value(v)}; expected a list of encoder layer indexes.")
    return [checked_int(i, f"{where}: 'vision_config.deepstack_visual_indexes'", 0, depth - 1) for i in v]


@dataclass
class ConfigModel:
    """Specs read from a Hugging Face config.json."""

    model: LlmSpec | VlmSpec
    llm: LlmSpec
    encoder: VisionEncoderSpec | None


def model_from_hf_config(cfg: dict[str, Any], where: Path, ident: str, name: str, catalog: Catalog | None = None) -> ConfigModel:
    """An LLM or a VLM (encoder + projector + LLM) from a config.json's contents.

    ``catalog`` resolves the vision tower an original-LLaVA config names by its repo id
    (``mm_vision_tower``); other configs describe every part themselves and need none.
    """
    if not isinstance(cfg, dict) or not ("model_type" in cfg or "architectures" in cfg):
        raise InputError(f"{where}: not a model config (no 'model_type' or 'architectures' field).")
    mt = str(cfg.get("model_type") or "")
    if mt in HF_TEXT_OF_VLM and isinstance(cfg.get("text_config"), dict):  # Qwen3.5: the language model only
        text_only = dict(cfg["text_config"])
        text_only.setdefault("model_type", HF_TEXT_OF_VLM[mt])
        text_only.setdefault("tie_word_embeddings", cfg.get("tie_word_embeddings", False))
        llm = llm_from_hf(text_only, where, ident, name)
        return ConfigModel(llm, llm, None)
    if mt not in HF_VLM_TYPES:
        llm = llm_from_hf(cfg, where, ident, name)
        return ConfigModel(llm, llm, None)
    text = _obj(cfg, "text_config", where)
    _obj(cfg, "vision_config", where)
    if mt == "llava" and text is None and cfg.get("mm_vision_tower"):
        return _original_llava(cfg, where, ident, name, catalog)
    if mt in ("qwen3_vl", "qwen3_vl_moe"):
        if text is None:
            raise InputError(f"{where}: a {mt} config needs its 'text_config'.")
        text = dict(text)
        text["model_type"] = QWEN3_VL_TEXT.get(str(text.get("model_type") or mt), QWEN3_VL_TEXT[mt])
        text.setdefault("tie_word_embeddings", cfg.get("tie_word_embeddings", False))
    elif text is None:  # Qwen2-VL configs keep the text fields at the top level
        text = {k: v for k, v in cfg.items() if k != "vision_config"}
        text["model_type"] = "qwen2"
    else:
        text = dict(text)
        text.setdefault("model_type", {"llava": "llama", "llava_next": "llama", "gemma3": "gemma3_text"}.get(mt, "qwen2"))
    llm = llm_from_hf(text, where, ident + "-text", name + " (language model)", cfg.get("torch_dtype"))
    vc = cfg.get("vision_config") or {}
    enc = _vision_from_hf(mt, vc, where, ident + "-vision", name + " (vision tower)")
    fl = cfg.get("vision_feature_layer")
    if mt in ("llava", "llava_next") and isinstance(fl, int) and not isinstance(fl, bool) and -enc.num_layers <= fl < 0:
        enc = dataclasses.replace(enc, feature_layer=fl)  # LlavaConfig.vision_feature_layer (-2 by default)
    defaults = VlmDefaults()
    if mt in ("llava", "llava_next"):
        projector = Projector(kind="mlp", layers=2)
        grid = enc.image_size // enc.patch_size
        if mt == "llava_next":
            # default: LlavaNextConfig.image_grid_pinpoints (transformers models/llava_next/configuration_llava_next.py)
            pins = _pinpoints(cfg, where) or [(336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008)]
            tokens, defaults = anyres_tokens(pins, newline=_bool(cfg, "use_image_newline_parameter", where, True))
        else:
            tokens = FixedTokens(tokens=grid * grid)
    elif mt == "gemma3":
        per = _int(cfg, "mm_tokens_per_image", where, 1, 2**16, 256)  # Gemma3Config default (transformers configuration_gemma3.py)
        grid = enc.image_size // enc.patch_size
        projector = Projector(kind="pooled_linear", merge=max(1, round(grid / per**0.5)))
        tokens = FixedTokens(tokens=per)
    else:
        merge = _int(vc, "spatial_merge_size", Path(f"{where}: vision_config"), 1, 64, 2)
        projector = Projector(
            kind="merger",
            merge=merge,
            norm=True,
            hidden_size=enc.hidden_size * merge**2,
            deepstack_layers=_deepstack(vc, where, enc.num_layers),
        )
        if mt in ("qwen3_vl", "qwen3_vl_moe"):
            out = _int(vc, "out_hidden_size", Path(f"{where}: vision_config"), 1, MAX_WIDTH, llm.hidden_size)
            if out != llm.hidden_size:
                raise InputError(f"{where}: vision_config.out_hidden_size {out} differs from the text hidden_size {llm.hidden_size}.")
            # Qwen3-VL preprocessor_config.json size (shortest_edge 65536 / longest_edge 16777216 pixels), as the
            # catalog's qwen3-vl entries (data/vlms/qwen3-vl-*.yaml, where the caveat on that source is written)
            tokens = DynamicResolutionTokens(min_pixels=65536, max_pixels=16777216, factor=enc.patch_size * merge)
        else:
            # Qwen2-VL image processor defaults, as in gguf_mmproj above
            tokens = DynamicResolutionTokens(min_pixels=3136, max_pixels=12845056, factor=enc.patch_size * merge)
        defaults = VlmDefaults(image_size=(1024, 768))  # a choice: the 4:3 photo the catalog VLMs assume (data/vlms notes)
    vlm = VlmSpec(
        id=ident,
        name=name,
        source=f"Hugging Face config {where} (model_type {mt}; read by vramcalc)",
        encoder=enc.id,
        llm=llm.id,
        projector=projector,
        image_tokens=tokens,
        defaults=defaults,
    )
    return ConfigModel(vlm, llm, enc)


def _original_llava(cfg: dict[str, Any], where: Path, ident: str, name: str, catalog: Catalog | None) -> ConfigModel:
    """A config in the original LLaVA repo's format (liuhaotian/llava-v1.5-7b): the LLM's fields at
    the top level, the vision tower named by its HF repo id (mm_vision_tower), looked up in the catalog."""
    text = {k: v for k, v in cfg.items() if not k.startswith("mm_")}
    arch = " ".join(cfg.get("architectures") or [])
    text["model_type"] = "mistral" if "Mistral" in arch else "llama"
    llm = llm_from_hf(text, where, ident + "-text", name + " (language model)")
    tower = str(cfg["mm_vision_tower"])
    if catalog is None:
        raise InputError(f"{where}: an original-LLaVA config names its vision tower by repo id ('{tower}'); reading it needs the catalog.")
    hit = catalog.lookup(["encoders"], tower)
    if hit is None:
        raise InputError(f"{where}: vision tower '{tower}' (mm_vision_tower) is not in the catalog; add it under encoders/ first.")
    enc = catalog.encoder(hit[1])
    ptype = str(cfg.get("mm_projector_type") or "linear")
    m = re.fullmatch(r"mlp(\d+)x_gelu", ptype)
    projector = Projector(kind="mlp", layers=int(m.group(1))) if m else Projector(kind="linear", layers=1)
    grid = enc.image_size // enc.patch_size
    defaults = VlmDefaults()
    pins = _pinpoints(cfg, where)
    if str(cfg.get("image_aspect_ratio")) == "anyres" and pins:
        tokens, defaults = anyres_tokens(pins, newline=True)
    else:
        tokens = FixedTokens(tokens=grid * grid)
    vlm = VlmSpec(
        id=ident,
        name=name,
        source=f"LLaVA config {where} (mm_vision_tower {tower}; read by vramcalc)",
        encoder=enc.id,
        llm=llm.id,
        projector=projector,
        image_tokens=tokens,
        defaults=defaults,
    )
    return ConfigModel(vlm, llm, enc)


def _pinpoints(cfg: dict[str, Any], where: Path) -> list[tuple[int, int]] | None:
    """image_grid_pinpoints: a list of [width, height] pairs of positive sizes (absent: None)."""
    pins = cfg.get("image_grid_pinpoints")
    if pins is None:
        return None
    ok = isinstance(pins, list) and 0 < len(pins) <= 256 and all(isinstance(p, list) and len(p) == 2 for p in pins)
    if not ok:
        raise InputError(f"{where}: 'image_grid_pinpoints' is {show_value(pins)}; expected a list of [width, height] pairs.")
    return [
        (checked_int(p[0], f"{where}: 'image_grid_pinpoints'", 1, 2**16), checked_int(p[1], f"{where}: 'image_grid_pinpoints'", 1, 2**16))
        for p in pins
    ]
