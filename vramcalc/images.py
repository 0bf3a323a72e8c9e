"""Image tokens: one function per image-token policy, the only place that counts patches, crops and tokens.

A VLM's ``image_tokens`` policy (schema.py) says how many LLM tokens an image of a given size takes
and what the vision encoder runs on it: fixed (LLaVA-1.5, Gemma 3), anyres (LLaVA-NeXT), dynamic
resolution (Qwen2-VL), tiles (InternVL). ``image_tokens()`` returns (tokens, encoder crops,
patches per crop); ``encoder_tokens()`` is the sequence one crop gives the encoder.
"""

from __future__ import annotations

import functools
import math

from vramcalc.params import vision_grid
from vramcalc.schema import (
    AnyresTokens,
    DynamicResolutionTokens,
    FixedTokens,
    TileTokens,
    VisionEncoderSpec,
    VlmSpec,
)


def image_size(model: VlmSpec | VisionEncoderSpec, enc: VisionEncoderSpec, size: tuple[int, int] | None) -> tuple[int, int]:
    """The image size in effect: the one asked for, else the VLM's default, else the encoder's native square."""
    if size:
        return size
    if isinstance(model, VlmSpec) and model.defaults.image_size:
        return model.defaults.image_size
    return (enc.image_size, enc.image_size)


#: llama.cpp's Qwen-VL image limits, in merged tokens (tools/mtmd/clip.cpp, PROJECTOR_TYPE_QWEN2VL / QWEN25VL /
#: QWEN3VL: ``hparams.set_limit_image_tokens(8, 4096)``, whatever the model's preprocessor_config says)
LLAMACPP_QWEN_TOKEN_LIMITS = (8, 4096)
#: the encoder families llama.cpp preprocesses with those limits
QWEN_VIT_FAMILIES = ("qwen2_vit", "qwen25_vit", "qwen3_vit")


def image_tokens(vlm: VlmSpec, enc: VisionEncoderSpec, size: tuple[int, int] | None, mtmd: bool = False) -> tuple[int, int, int]:
    """LLM tokens one image takes, and what the encoder runs: (tokens, encoder images, patches each).

    ``size`` is (width, height); None means the VLM's default image size. ``mtmd`` (a runtime whose
    ``mtmd_images`` is set: llama.cpp) applies llama.cpp's own preprocessing where it differs from the Hugging Face processor (Qwen-VL: see
    :func:`llamacpp_smart_resize`).
    """
    w, h = image_size(vlm, enc, size)
    pol = vlm.image_tokens
    native = native_tokens(enc)
    if isinstance(pol, FixedTokens):
        return pol.tokens, 1, native
    if isinstance(pol, AnyresTokens):
        return anyres_tokens(pol, enc, w, h)
    if isinstance(pol, DynamicResolutionTokens):
        if mtmd and enc.family in QWEN_VIT_FAMILIES:
            lo, hi = LLAMACPP_QWEN_TOKEN_LIMITS
            rh, rw = llamacpp_smart_resize(h, w, pol.factor, lo * pol.factor**2, hi * pol.factor**2)
        else:
            rh, rw = smart_resize(h, w, pol.factor, pol.min_pixels, pol.max_pixels)
        patches = (rh // enc.patch_size) * (rw // enc.patch_size)
        return (rh // pol.factor) * (rw // pol.factor), 1, patches
    if isinstance(pol, TileTokens):
        tiles = internvl_tiles(w, h, pol)
        return tiles * pol.tokens_per_tile, tiles, native
    raise TypeError(f"no image-token policy for {type(pol).__name__}")


def native_tokens(enc: VisionEncoderSpec) -> int:
    """Sequence length of one image at the encoder's native square size (patches + class/register tokens)."""
    return encoder_tokens(enc, None)


def encoder_tokens(enc: VisionEncoderSpec, size: tuple[int, int] | None) -> int:
    """Sequence length the encoder runs on one image of ``size`` (width, height; None = native):
    the floored patch grid + class/register tokens."""
    gx, gy = vision_grid(enc, *(size or (enc.image_size, enc.image_size)))
    return gx * gy + int(enc.class_token) + enc.register_tokens


def smart_resize(h: int, w: int, factor: int, min_px: int, max_px: int, half_up: bool = False) -> tuple[int, int]:
    """Qwen2-VL image processor ``smart_resize`` (transformers models/qwen2_vl/image_processing_qwen2_vl.py).
    ``half_up``: llama.cpp's version (tools/mtmd/mtmd-image.cpp ``calc_size_preserved_ratio``): the same steps,
    but sides are rounded with C's ``std::round``, which takes halves away from zero where Python's ``round``
    takes them to even (a 336-pixel side at factor 32 is 11 blocks in llama.cpp, 10 in transformers)."""

    def blocks(x: float) -> int:
        return math.floor(x + 0.5) if half_up else round(x)

    hb = max(factor, blocks(h / factor) * factor)
    wb = max(factor, blocks(w / factor) * factor)
    if hb * wb > max_px:
        beta = math.sqrt(h * w / max_px)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < min_px:
        beta = math.sqrt(min_px / (h * w))
        hb = math.ceil(h * beta / factor) * factor
        wb = math.ceil(w * beta / factor) * factor
    return hb, wb


def llamacpp_smart_resize(h: int, w: int, factor: int, min_px: int, max_px: int) -> tuple[int, int]:
    """llama.cpp's ``smart_resize`` (halves rounded up: see ``smart_resize``)."""
    return smart_resize(h, w, factor, min_px, max_px, half_up=True)


@functools.lru_cache(maxsize=64)
def tile_grids(min_tiles: int, max_tiles: int) -> tuple[tuple[int, int], ...]:
    """InternVL's ``target_ratios``: the (columns, rows) grids of min..max tiles, fewest tiles first."""
    return tuple(
        sorted(
            {
                (i, j)
                for n in range(min_tiles, max_tiles + 1)
                for i in range(1, n + 1)
                for j in range(1, n + 1)
                if min_tiles <= i * j <= max_tiles
            },
            key=lambda r: r[0] * r[1],
        )
    )


def internvl_tiles(w: int, h: int, pol: TileTokens) -> int:
    """InternVL ``dynamic_preprocess``: the tile grid closest to the image aspect ratio (+ thumbnail)."""
    ratios = tile_grids(pol.min_tiles, pol.max_tiles)
    aspect = w / h
    best, best_diff = (1, 1), float("inf")
    area = w * h
    for r in ratios:
        diff = abs(aspect - r[0] / r[1])
        if diff < best_diff:
            best, best_diff = r, diff
        elif diff == best_diff and area > 0.5 * pol.tile_size**2 * r[0] * r[1]:
            best = r
    blocks = best[0] * best[1]
    return blocks + 1 if pol.thumbnail and blocks != 1 else blocks


def anyres_tokens(pol: AnyresTokens, enc: VisionEncoderSpec, w: int, h: int) -> tuple[int, int, int]:
    """LLaVA-NeXT: base image + grid tiles, unpadded to the aspect ratio, one newline per row.

    transformers models/llava_next (select_best_resolution, get_anyres_image_grid_shape, unpad_image).
    """
    side = enc.image_size
    best, best_eff, best_waste = pol.grid_pinpoints[0], -1, float("inf")
    for cw, ch in pol.grid_pinpoints:
        scale = min(cw / w, ch / h)
        dw, dh = int(w * scale), int(h * scale)
        eff = min(dw * dh, w * h)
        waste = cw * ch - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (cw, ch), eff, waste
    gx, gy = best[0] // side, best[1] // side
    per = side // enc.patch_size
    cur_w, cur_h = gx * per, gy * per
    if w / h > cur_w / cur_h:
        new_h = int(round(h * (cur_w / w), 7))
        pad = (cur_h - new_h) // 2
        cur_h = cur_h - 2 * pad
    else:
        new_w = int(round(w * (cur_h / h), 7))
        pad = (cur_w - new_w) // 2
        cur_w = cur_w - 2 * pad
    tokens = per * per + cur_w * cur_h + (cur_h if pol.newline_tokens else 0)
    return tokens, 1 + gx * gy, native_tokens(enc)
