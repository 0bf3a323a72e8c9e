"""2026 vision encoders: DINOv3 (patch 16, RoPE, register tokens), CLIP ViT-B/32, SigLIP 2, AIMv2.

Pinned figures:
- DINOv3: shared/reference/model_params.csv rows 'DINOv3 ViT-*/16' (github:facebookresearch/dinov3@6876159a
  README table, published in millions: S 21.6M, S+ 29M, B 86M, L 300M, H+ 840M, 7B 6716M).
- CLIP ViT-B/32: github:mlfoundations/open_clip@89fb801f docs/model_profile.csv, 87.85M image parameters, as
  quoted in shared/reference/hf_configs/encoders/SOURCES.csv (row open_clip__ViT-B-32.json); it counts
  open_clip's 768 x 512 visual projection on top of the tower.
"""

from __future__ import annotations

import pytest

from vramcalc.catalog import load_catalog
from vramcalc.estimate import Workload, estimate
from vramcalc.images import encoder_tokens
from vramcalc.params import count_params, encoder_tensors

CAT = load_catalog(include_user=False)

# (id, published figure, significant digits as published)
DINOV3 = [
    ("dinov3-s-16", 21_600_000, 3),
    ("dinov3-s-plus-16", 29_000_000, 2),
    ("dinov3-b-16", 86_000_000, 2),
    ("dinov3-l-16", 300_000_000, 2),
    ("dinov3-h-plus-16", 840_000_000, 2),
    ("dinov3-7b-16", 6_716_000_000, 4),
]


def _round_sig(x: int, digits: int) -> int:
    from math import floor, log10

    scale = 10 ** (floor(log10(x)) - digits + 1)
    return round(x / scale) * scale


@pytest.mark.parametrize(("eid", "published", "digits"), DINOV3)
def test_dinov3_counts_round_to_the_published_figure(eid, published, digits):
    derived = count_params(CAT.encoder(eid)).vision
    assert _round_sig(derived, digits) == published


def test_dinov3_has_registers_and_no_position_table():
    enc = CAT.encoder("dinov3-l-16")
    names = {t.name for t in encoder_tensors(enc)}
    assert "v.register_embd" in names and "v.class_embd" in names
    assert not any("position_embd" in n for n in names)  # RoPE: any image size


@pytest.mark.parametrize("size", [(224, 224), (512, 512), (1024, 768)])
def test_dinov3_runs_at_variable_image_sizes(size):
    enc = CAT.encoder("dinov3-b-16")
    # patch 16: one token per 16x16 block, plus the class token and 4 registers
    assert encoder_tokens(enc, size) == size[0] // 16 * (size[1] // 16) + 1 + 4
    est = estimate(enc, CAT.resolve_gpu("rtx3060-12gb"), Workload(image_size=size, headless=True))
    assert est.inputs.image_size == size
    assert est.memory.compute_bytes.vision > 0


def test_dinov3_compute_grows_with_the_image():
    enc = CAT.encoder("dinov3-l-16")
    gpu = CAT.resolve_gpu("rtx3060-12gb")
    small, large = (estimate(enc, gpu, Workload(image_size=(s, s), headless=True)) for s in (224, 1024))
    assert large.memory.compute_bytes.vision > small.memory.compute_bytes.vision
    assert large.memory.weights_bytes.vision == small.memory.weights_bytes.vision  # no position table to resize


def test_clip_b32_tower_plus_projection_equals_open_clip_profile():
    derived = count_params(CAT.encoder("clip-vit-b-32")).vision
    assert round((derived + 768 * 512) / 1e6, 2) == 87.85


def test_dinov3_probe_builds_the_transformers_tower():
    """vramcalc probe builds transformers DINOv3ViTModel from the entry, with the key bias the native checkpoints
    store (masked, mask_k_bias): the same parameter count as the catalog's."""
    torch = pytest.importorskip("torch")
    from vramcalc.probe.models import build_model

    spec = CAT.encoder("dinov3-s-16")
    built = build_model(spec, dtype=torch.float32)
    assert built.class_name == "DINOv3ViTModel"
    n = sum(p.numel() for p in built.model.parameters())
    assert count_params(spec).vision == n
    with torch.no_grad():
        out = built.model(**built.make_inputs(1, 320, 240, torch.float32))
    assert out.last_hidden_state.shape[1] == encoder_tokens(spec, (320, 240)) == 20 * 15 + 5
