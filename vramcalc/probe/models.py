"""Build the transformers vision tower a VLM uses from a catalog ``VisionEncoderSpec`` (random weights).

Nothing is downloaded: every model is built from a config object with random (or no) weights.
torch and transformers are imported inside the functions, so importing this module is cheap.

Families and the transformers (5.x) classes they map to:

- ``clip``      -> ``CLIPVisionModel``          (LLaVA-1.5/1.6)
- ``siglip``    -> ``SiglipVisionModel``        (PaliGemma, Gemma 3, LLaVA-OneVision, Idefics2)
- ``dinov2``    -> ``Dinov2Model`` / ``Dinov2WithRegistersModel``
- ``internvit`` -> ``InternVLVisionModel``      (InternVL 2/2.5/3 in the ``-hf`` layout)
- ``qwen2_vit`` -> ``Qwen2VisionTransformerPretrainedModel`` (Qwen2-VL; includes the patch merger)
- ``qwen25_vit``-> ``Qwen2_5_VisionTransformerPretrainedModel`` (Qwen2.5-VL; windowed attention, merger)
- ``pixtral``   -> ``PixtralVisionModel``       (Pixtral, Mistral Small 3.1; all images of a batch in one sequence)
- ``dinov3``    -> ``DINOv3ViTModel``           (DINOv3 S/S+/B/L/H+/7B: RoPE, register tokens; any size, multiples of 16)

Other families (EVA-CLIP and MoonViT have no transformers class; Mllama, SigLIP2-NaFlex and Qwen3-VL are not
wired in yet) raise :class:`ModelNotAvailable` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vramcalc.schema import VisionEncoderSpec

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: spec.mlp_activation -> transformers ACT2FN key
_ACT = {"gelu": "gelu", "quick_gelu": "quick_gelu", "gelu_tanh": "gelu_pytorch_tanh", "silu": "silu", "swiglu": "silu"}

#: family -> the transformers class name the probe builds
MODEL_CLASSES = {
    "clip": "CLIPVisionModel",
    "siglip": "SiglipVisionModel",
    "dinov2": "Dinov2Model",
    "internvit": "InternVLVisionModel",
    "qwen2_vit": "Qwen2VisionTransformerPretrainedModel",
    "qwen25_vit": "Qwen2_5_VisionTransformerPretrainedModel",
    "pixtral": "PixtralVisionModel",
    "dinov3": "DINOv3ViTModel",
}

_NOT_AVAILABLE = {
    "eva_clip": "EVA-CLIP has no transformers model class (it ships as open_clip/timm code)",
    "siglip2": "Siglip2VisionModel (NaFlex) resizes its position table with "
    "spatial_shapes[i].tolist(), which FakeTensorMode cannot run; not wired in yet",
    "qwen3_vit": "Qwen3VLVisionModel needs its DeepStack layer indexes, which the catalog schema does not record yet",
    "mllama": "MllamaVisionModel takes tiled images with aspect-ratio ids; not wired into the probe yet",
    "moonvit": "MoonViT (Kimi-VL) has no transformers class in this version",
    "other": "family 'other' has no known transformers class",
    "aimv2": "Aimv2VisionModel is not wired into the probe yet",
    "radio": "RADIO ships as torch.hub code (no transformers class)",
}


class ModelNotAvailable(Exception):
    """This encoder cannot be built with the installed transformers (the reason is the message)."""


@dataclass
class BuiltModel:
    """A model plus how to call it: ``model(**inputs(batch, width, height))``."""

    model: Any
    class_name: str
    family: str
    make_inputs: Any  # callable(batch, width, height, dtype, device) -> dict of tensors


def transformers_class_name(spec: VisionEncoderSpec) -> str:
    """The transformers class the probe builds for ``spec``; raises ModelNotAvailable if none."""
    if spec.family in _NOT_AVAILABLE:
        raise ModelNotAvailable(_NOT_AVAILABLE[spec.family])
    name = MODEL_CLASSES[spec.family]
    if spec.family == "dinov2" and spec.register_tokens:
        name = "Dinov2WithRegistersModel"
    return name


def make_config(spec: VisionEncoderSpec, attn: str = "sdpa", merger_out_size: int | None = None) -> Any:
    """The transformers config for ``spec`` (raises ModelNotAvailable where the spec cannot be expressed)."""
    import transformers

    cls = transformers_class_name(spec)
    fam = spec.family
    d, heads, layers, inter = spec.hidden_size, spec.num_heads, spec.num_layers, spec.intermediate_size
    if spec.head_dim_ * heads != d and fam != "qwen2_vit":
        raise ModelNotAvailable(f"{cls} needs head_dim x heads == hidden_size ({spec.head_dim_} x {heads} != {d})")
    act = _ACT[spec.mlp_activation]
    table_size = _position_table_side(spec) * spec.patch_size  # the pre-training resolution of the position table
    cfg: Any  # the transformers config class of the family
    if fam == "clip":
        if spec.gated_mlp or spec.norm != "layernorm" or spec.class_token is False:
            raise ModelNotAvailable("CLIPVisionModel has a plain MLP, LayerNorm and a class token")
        cfg = transformers.CLIPVisionConfig(
            hidden_size=d,
            intermediate_size=inter,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            image_size=table_size,
            patch_size=spec.patch_size,
            num_channels=spec.num_channels,
            hidden_act=act,
        )
    elif fam == "siglip":
        cfg = transformers.SiglipVisionConfig(
            hidden_size=d,
            intermediate_size=inter,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            image_size=table_size,
            patch_size=spec.patch_size,
            num_channels=spec.num_channels,
            hidden_act=act,
            vision_use_head=spec.pooling_head == "map",
        )
    elif fam == "dinov2":
        if spec.gated_mlp:
            # Dinov2SwiGLUFFN: hidden = (int(hidden_size * mlp_ratio * 2 / 3) + 7) // 8 * 8
            ratio = round(inter * 3 / 2 / d)  # the config field is an int
            if (int(d * ratio * 2 / 3) + 7) // 8 * 8 != inter:
                raise ModelNotAvailable(f"Dinov2SwiGLUFFN cannot produce intermediate_size {inter} from hidden {d}")
        else:
            if inter % d:
                raise ModelNotAvailable(f"Dinov2 MLP width is hidden x mlp_ratio (an integer); {inter} / {d} is not")
            ratio = inter // d
        kw: dict[str, Any] = dict(
            hidden_size=d,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            mlp_ratio=ratio,
            image_size=spec.image_size,
            patch_size=spec.patch_size,
            num_channels=spec.num_channels,
            qkv_bias=spec.qkv_bias,
            use_swiglu_ffn=spec.gated_mlp,
            hidden_act=act,
        )
        if spec.register_tokens:
            cfg = transformers.Dinov2WithRegistersConfig(num_register_tokens=spec.register_tokens, **kw)
        else:
            cfg = transformers.Dinov2Config(**kw)
    elif fam == "internvit":
        cfg = transformers.InternVLVisionConfig(
            hidden_size=d,
            intermediate_size=inter,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            image_size=[spec.image_size, spec.image_size],
            patch_size=[spec.patch_size, spec.patch_size],
            num_channels=spec.num_channels,
            attention_bias=spec.qkv_bias,
            use_qk_norm=spec.qk_norm,
            norm_type="layer_norm" if spec.norm == "layernorm" else "rms_norm",
            hidden_act=act,
            # InternViT has no final norm; transformers then pools by mean (use_mean_pooling, Identity norm)
            use_mean_pooling=not spec.post_norm,
        )
    elif fam == "qwen2_vit":
        if inter % d:
            raise ModelNotAvailable("Qwen2-VL ViT MLP width is embed_dim x mlp_ratio (integer)")
        cfg = transformers.Qwen2VLVisionConfig(
            depth=layers,
            embed_dim=d,
            hidden_size=merger_out_size or d,
            mlp_ratio=inter // d,
            num_heads=heads,
            in_channels=spec.num_channels,
            patch_size=spec.patch_size,
            temporal_patch_size=spec.temporal_patch_size,
            spatial_merge_size=2,
            hidden_act=act,
        )
    elif fam == "qwen25_vit":
        win = spec.window_attention
        cfg = transformers.Qwen2_5_VLVisionConfig(
            depth=layers,
            hidden_size=d,
            intermediate_size=inter,
            num_heads=heads,
            in_channels=spec.num_channels,
            patch_size=spec.patch_size,
            temporal_patch_size=spec.temporal_patch_size,
            spatial_merge_size=2,
            out_hidden_size=merger_out_size or d,
            hidden_act=act,
            window_size=win.window_size_px if win else 112,
            fullatt_block_indexes=list(win.full_attention_layers) if win else list(range(layers)),
        )
    elif fam == "pixtral":
        if not spec.gated_mlp:
            raise ModelNotAvailable("PixtralVisionModel has a gated (SwiGLU) MLP")
        cfg = transformers.PixtralVisionConfig(
            hidden_size=d,
            intermediate_size=inter,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_channels=spec.num_channels,
            image_size=spec.image_size,
            patch_size=spec.patch_size,
            hidden_act="silu",
        )
    elif fam == "dinov3":
        # transformers models/dinov3_vit (DINOv3ViTConfig): RoPE patches, CLS + register tokens, LayerScale. The
        # native checkpoints store a key bias that they mask (mask_k_bias); the converted HF ones drop it
        # (key_bias=False). The probe keeps it, as the catalog counts it: 1 x hidden per layer, nothing else.
        cfg = transformers.DINOv3ViTConfig(
            hidden_size=d,
            intermediate_size=inter,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            patch_size=spec.patch_size,
            image_size=spec.image_size,
            num_channels=spec.num_channels,
            query_bias=spec.qkv_bias,
            key_bias=spec.qkv_bias,
            value_bias=spec.qkv_bias,
            proj_bias=spec.attn_out_bias,
            mlp_bias=spec.mlp_bias,
            use_gated_mlp=spec.gated_mlp,
            hidden_act=act,
            num_register_tokens=spec.register_tokens,
        )
    else:  # pragma: no cover - guarded by transformers_class_name
        raise ModelNotAvailable(f"family {fam!r} is not supported")
    cfg._attn_implementation = {"flash": "flash_attention_2"}.get(attn, attn)
    return cfg


def _position_table_side(spec: VisionEncoderSpec) -> int:
    """Patches per side of the learned position table: the native grid, or sqrt(num_position_embeddings)
    where the catalog records a larger table (MiniCPM-V's SigLIP: 70 x 70 = 4900, run at 448 px)."""
    side = spec.image_size // spec.patch_size
    if spec.num_position_embeddings and spec.family in ("clip", "siglip"):
        n = spec.num_position_embeddings - int(spec.class_token)
        root = round(n**0.5)
        if root * root == n:
            side = root
    return side


def build_model(
    spec: VisionEncoderSpec,
    *,
    dtype: torch.dtype,
    device: str = "cpu",
    attn: str = "sdpa",
    fake_mode: Any = None,
    merger_out_size: int | None = None,
) -> BuiltModel:
    """Build the tower with random weights in eval mode.

    Args:
        spec: the catalog encoder.
        dtype: torch dtype of the weights (fp16/bf16 for a real run).
        device: 'cpu' or 'cuda' (ignored when ``fake_mode`` is given: fake tensors live on the fake CPU).
        attn: 'sdpa', 'eager' or 'flash' (flash_attention_2, CUDA only).
        fake_mode: a ``FakeTensorMode``; the model is built on the meta device (no memory, no init cost)
            and its parameters and buffers are swapped for fake tensors, so the real model code runs on it
            without allocating.
        merger_out_size: Qwen-VL towers include the patch merger; its output width (the LLM hidden size).
    """
    import torch
    import transformers

    cfg = make_config(spec, attn, merger_out_size)
    class_name = transformers_class_name(spec)
    cls = getattr(transformers, class_name, None)
    if cls is None and spec.family == "qwen2_vit":  # not exported at the top level in transformers 5.x
        from transformers.models.qwen2_vl import modeling_qwen2_vl

        cls = getattr(modeling_qwen2_vl, class_name, None)
    if cls is None:
        raise ModelNotAvailable(f"transformers {transformers.__version__} has no {class_name}")
    if fake_mode is not None:
        with torch.device("meta"):
            model = cls(cfg)
        model = model.to(dtype).eval()
        _to_fake(model, fake_mode)
    else:
        # Skip transformers' weight init (trunc-normal of every fp32 weight, then a cast: measured 5.3 s for
        # clip-vit-l-14-336, 304M parameters, on a 2-core CPU VM, against 1.6 s for this build); build in the
        # target dtype and draw cheap random weights instead. Values only need to be finite and of a plausible
        # scale for timing (std 0.02: transformers' default initializer_range); nothing depends on trained weights.
        from transformers.initialization import no_init_weights

        with torch.device(device), no_init_weights():
            model = cls._from_config(cfg, dtype=dtype)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dtype.is_floating_point:
                    if p.ndim == 1 and ("norm" in name or "ln" in name):
                        p.fill_(1.0)
                    else:
                        p.normal_(0.0, 0.02)
        model = model.eval()
    return BuiltModel(model, class_name, spec.family, _input_maker(spec, cfg))


def _to_fake(model: Any, fake_mode: Any) -> None:
    """Replace meta parameters/buffers by fake CPU tensors of the same shape, dtype and strides."""
    import torch

    with fake_mode:
        for mod in model.modules():
            for name, p in list(mod._parameters.items()):
                if p is not None:
                    t = torch.empty_strided(p.shape, p.stride(), dtype=p.dtype, device="cpu")
                    # MemTracker hooks gradients of parameters, so they keep requires_grad (no graph under inference_mode)
                    mod._parameters[name] = torch.nn.Parameter(t, requires_grad=p.dtype.is_floating_point)
            for name, b in list(mod._buffers.items()):
                if b is not None:
                    mod._buffers[name] = torch.zeros(b.shape, dtype=b.dtype, device="cpu")


def _input_maker(spec: VisionEncoderSpec, cfg: Any) -> Any:
    """A function (batch, width, height, dtype, device) -> forward kwargs for this tower."""
    import torch

    fam = spec.family
    if fam in ("qwen2_vit", "qwen25_vit"):

        def qwen_inputs(batch: int, width: int, height: int, dtype: Any, device: str = "cpu") -> dict[str, Any]:
            # The Qwen image processor flattens each image into (t*h*w) patch rows of C*T*P*P values; one image
            # gives grid (t=1, h=H/P, w=W/P) (a still image is repeated over the 2-frame temporal patch).
            from vramcalc.vit import vit_tokens

            p, tp = spec.patch_size, spec.temporal_patch_size
            t = vit_tokens(spec, width, height)  # an even grid, as the Qwen processor resizes to multiples of 28
            gh, gw = t.grid_h, t.grid_w
            rows = batch * gh * gw
            pixels = torch.zeros(rows, spec.num_channels * tp * p * p, dtype=dtype, device=device)
            grid = torch.tensor([[1, gh, gw]] * batch, dtype=torch.int64)
            # Position ids and sequence boundaries are data-dependent (.tolist()); transformers lets the caller
            # precompute them (vision_utils), which keeps them real under FakeTensorMode.
            from transformers import vision_utils

            pos = vision_utils.get_vision_position_ids(grid, 2)
            cu = vision_utils.get_vision_cu_seqlens(grid)
            out = {"hidden_states": pixels, "grid_thw": grid.to(device), "position_ids": pos.to(device), "cu_seqlens": cu.to(device)}
            if fam == "qwen25_vit":
                win, cu_win = vision_utils.get_vision_window_index(grid, 2, cfg.window_size, p)
                out.update(window_index=win.to(device), cu_window_seqlens=cu_win.to(device))
            return out

        return qwen_inputs

    def pixel_inputs(batch: int, width: int, height: int, dtype: Any, device: str = "cpu") -> dict[str, Any]:
        pixels = torch.zeros(batch, spec.num_channels, height, width, dtype=dtype, device=device)
        kw: dict[str, Any] = {"pixel_values": pixels}
        if fam == "pixtral":
            # Python ints, as the image processor's sizes end up: PixtralVisionModel slices each image's patches by them
            kw["image_sizes"] = [(height, width)] * batch
        table = _position_table_side(spec) * spec.patch_size
        if (width, height) != (table, table) and fam in ("clip", "siglip"):
            kw["interpolate_pos_encoding"] = True  # transformers resizes the table to this grid (bicubic)
        return kw

    return pixel_inputs


def forward_kwargs(spec: VisionEncoderSpec) -> dict[str, Any]:
    """Extra kwargs the VLM passes: transformers 5 keeps only the selected hidden state (feature_layer)."""
    if spec.feature_layer != -1 and spec.family not in ("qwen2_vit", "qwen25_vit"):
        return {"output_hidden_states": spec.feature_layer}
    return {}
