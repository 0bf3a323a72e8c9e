"""vramcalc.vit: tokens and FLOPs against published figures; FLOPs and activation memory against the real
transformers model code (FakeTensorMode + MemTracker for full-size catalog encoders, real tensors for
small ones). The torch tests skip on a core-only install; CI installs the probe extra and runs them."""

from __future__ import annotations

import dataclasses

import pytest

from vramcalc.catalog import load_catalog
from vramcalc.schema import VisionEncoderSpec
from vramcalc.vit import activation_bytes, vit_flops, vit_forward, vit_tokens


def enc(eid: str) -> VisionEncoderSpec:
    return load_catalog().encoder(eid)


# ---------------------------------------------------------------------------------------------
# Pure Python: published figures


@pytest.mark.parametrize(
    ("eid", "size", "sequence", "merged"),
    [
        # LLaVA-1.5 (CLIP ViT-L/14-336): 576 image tokens = 24 x 24 patches, + the CLS token in the tower
        # (Liu et al. 2023, "Improved Baselines with Visual Instruction Tuning", Sec. 3).
        ("clip-vit-l-14-336", None, 577, 576),
        # SigLIP so400m/14 at 384 px: 27 x 27 = 729 tokens (PaliGemma / LLaVA-OneVision papers), no CLS.
        ("siglip-so400m-14-384", None, 729, 729),
        # InternViT-300M-448px: 32 x 32 patches + CLS (InternVL 1.5 report: 1024 patches, pixel-shuffled to 256).
        ("internvit-300m-448", None, 1025, 1024),
        # Qwen2-VL: one LLM token per 28 x 28 pixels (Qwen2-VL model card): 448 x 448 -> 16 x 16 = 256 tokens.
        ("qwen2-vl-vit", (448, 448), 1024, 256),
        # Qwen2-VL at 1344 x 896: 96 x 64 patches -> 48 x 32 = 1536 tokens (1344 x 896 / 28^2, the same rule).
        ("qwen2-vl-vit", (1344, 896), 6144, 1536),
    ],
)
def test_tokens_published(eid, size, sequence, merged):
    t = vit_tokens(enc(eid), *(size or (None, None)))
    assert t.sequence_length == sequence
    assert t.merged_tokens == merged


@pytest.mark.parametrize(
    ("eid", "gmacs"),
    [
        # timm inference benchmark rows (shared/calibration/timm_vit_bench.csv, pytorch-image-models@aa4b5850c154
        # results/benchmark-infer-amp-nchw-pt113-cu117-rtx3090.csv): vit_large_patch14_clip_224 81.08 GMACs,
        # vit_large_patch14_clip_336 191.11 GMACs per image. timm's towers also count a small projection
        # head (1024 x 768, < 0.01%), so 1% is the tolerance.
        ("clip-vit-l-14", 81.08),
        ("clip-vit-l-14-336", 191.11),
    ],
)
def test_flops_match_timm_published_gmacs(eid, gmacs):
    flops = vit_flops(enc(eid), batch=1).total
    assert flops / 2 / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_flops_scale_with_batch_and_window_attention_is_cheaper():
    spec = enc("qwen2.5-vl-vit")
    one = vit_flops(spec, 1, 896, 896)
    assert vit_flops(spec, 4, 896, 896).total == 4 * one.total
    full = vit_flops(dataclasses.replace(spec, window_attention=None), 1, 896, 896)
    assert one.attn_scores < full.attn_scores  # 28 of 32 layers attend within 8 x 8-patch windows
    assert one.mlp == full.mlp


def test_forward_result_is_numbers_and_eager_holds_scores():
    spec = enc("clip-vit-l-14-336")
    sdpa = vit_forward(spec, 8)
    eager = vit_forward(spec, 8, attention="eager")
    assert isinstance(sdpa.activations.peak_bytes, int) and isinstance(sdpa.flops.total, int)
    assert sdpa.activations.peak_phase == "mlp"
    # eager keeps 8 x 16 heads x 577^2 scores in fp16 plus their fp32 softmax: more than SDPA's peak
    assert eager.activations.peak_bytes > sdpa.activations.peak_bytes
    assert eager.activations.layer_attention_bytes >= 8 * 16 * 577 * 577 * (2 + 4)
    assert activation_bytes(spec, 8, 576) == sdpa.activations.peak_bytes


# ---------------------------------------------------------------------------------------------
# Against the real model code (probe extra)


def _buildable() -> list[str]:
    from vramcalc.probe.models import ModelNotAvailable, transformers_class_name

    out = []
    for spec in load_catalog(include_user=False).entries("encoders"):
        try:
            transformers_class_name(spec)
        except ModelNotAvailable:
            continue
        out.append(spec.id)
    return out


# catalog encoders the probe cannot build with transformers, each for the reason
# vramcalc.probe.models.transformers_class_name gives (EVA-CLIP and MoonViT have no transformers class;
# Mllama tiles, Qwen3-VL DeepStack indexes and SigLIP2 NaFlex are not wired in; 'other' families)
NOT_BUILDABLE = {
    "eva02-clip-l-14",
    "eva02-clip-l-14-336",
    "glm4v-vit",
    "llama4-vit",
    "mllama-vit",
    "moondream2-siglip-378",
    "moonvit",
    "qwen3-vl-vit-300m",
    "qwen3-vl-vit-400m",
    "siglip2-so400m-16-naflex",
    # catalog 2026 (issue 15): AIMv2 has a transformers class not wired into the probe yet; the
    # SigLIP2 entries are modelled as the NaFlex family (above); Gemma 4's tower is an 'other' family
    "aimv2-l-14-224",
    "aimv2-h-14-224",
    "aimv2-1b-14-224",
    "aimv2-3b-14-224",
    "gemma4-vit",
    "siglip2-b-16-224",
    "siglip2-l-16-384",
    "siglip2-so400m-16-384",
    # issue 15 round 2: EVA02-CLIP B/16 and E/14+ (no transformers class, as the L/14 entries)
    "eva02-clip-b-16",
    "eva02-clip-e-14-plus",
}


def test_only_the_known_encoders_are_left_out_of_the_measurement():
    every = {spec.id for spec in load_catalog(include_user=False).entries("encoders")}
    assert every - set(_buildable()) == NOT_BUILDABLE
    assert len(_buildable()) >= 25


def _structure(spec: VisionEncoderSpec) -> tuple:
    """What selects a different code path in vit.py, params.py or the transformers model: every field but
    the names, sources and sizes (width, depth, heads, MLP width, image and patch size), plus the switches
    that the sizes carry (an explicit head_dim, register tokens, a position table of its own size, an image
    size that is not a multiple of the patch, extra parameters)."""
    sizes = {"id", "name", "aliases", "source", "notes", "kind", "dtype", "published_params", "num_channels"}
    sizes |= {"image_size", "patch_size", "hidden_size", "num_layers", "num_heads", "intermediate_size"}
    sizes |= {"head_dim", "register_tokens", "num_position_embeddings", "extra_params", "window_attention"}
    out = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name not in sizes}
    out.update(
        head_dim=spec.head_dim is not None and spec.head_dim * spec.num_heads != spec.hidden_size,
        registers=spec.register_tokens > 0,
        position_table=spec.num_position_embeddings is not None,
        windows=spec.window_attention is not None,
        uneven_patches=spec.image_size % spec.patch_size != 0,
        extra=spec.extra_params > 0,
    )
    return tuple(sorted(out.items()))


def _representatives() -> list[str]:
    """One buildable catalog encoder per structure (_structure), the shallowest and then the smallest: the
    test suite measures these (19 of 37); benchmarks/vit_catalog.py measures every one (CI runs it)."""
    groups: dict[tuple, list[VisionEncoderSpec]] = {}
    for eid in _buildable():
        spec = load_catalog(include_user=False).encoder(eid)
        groups.setdefault(_structure(spec), []).append(spec)
    cost = lambda s: (s.num_layers, s.hidden_size * (s.image_size // s.patch_size) ** 2, s.id)  # noqa: E731
    return sorted(min(specs, key=cost).id for specs in groups.values())


def check_catalog_encoder(eid: str) -> None:
    """FLOPs within 1%, activations within 10% at batch 1 and 32, parameters exact, against the real model
    code (FakeTensorMode + MemTracker; fp16, SDPA). Also run by benchmarks/vit_catalog.py over every entry."""
    from vramcalc.probe.measure import Simulator
    from vramcalc.probe.run import _merger_out_size, _weights_predicted

    spec = load_catalog(include_user=False).encoder(eid)
    merger = _merger_out_size(spec, load_catalog())
    # ModelNotAvailable here (a known family in a shape its class cannot take) fails: list the entry in
    # NOT_BUILDABLE via transformers_class_name instead of skipping it silently
    sim = Simulator(spec, "fp16", "sdpa", merger)
    # the built transformers model has exactly the parameters params.py derives (plus the Qwen merger)
    assert sum(p.numel() for p in sim.built.model.parameters()) == _weights_predicted(spec, 1, merger)
    for batch in (1, 32):
        measured = sim.run(batch, spec.image_size, spec.image_size)
        pred = vit_forward(spec, batch, dtype_bytes=2, merger_out_size=merger)
        assert pred.flops.total == pytest.approx(measured.flops, rel=0.01), (eid, batch)
        assert pred.activations.peak_bytes == pytest.approx(measured.activation_bytes, rel=0.10), (eid, batch)


@pytest.mark.probe
@pytest.mark.parametrize("eid", _representatives())
def test_catalog_encoder_matches_fake_tensor_measurement(eid):
    """One catalog encoder per structure (see _representatives; every switch combination the catalog has,
    at full size) matches the measurement of the real model code (check_catalog_encoder)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    check_catalog_encoder(eid)


def _tiny(family: str, **kw) -> VisionEncoderSpec:
    base = dict(
        id=f"tiny-{family.replace('_', '-')}",
        name="tiny",
        source="test: a small config of this family",
        family=family,
        image_size=56,
        patch_size=14,
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        intermediate_size=256,
        mlp_activation="gelu",
        class_token=True,
    )
    base.update(kw)
    return VisionEncoderSpec(**base)


TINY = {
    "clip": dict(mlp_activation="quick_gelu", patch_bias=False, pre_norm=True, feature_layer=-2),
    "siglip": dict(mlp_activation="gelu_tanh", class_token=False, pooling_head="map"),
    "dinov2": dict(layer_scale=True),
    "dinov2-swiglu": dict(family="dinov2", mlp_activation="swiglu", intermediate_size=128, layer_scale=True),
    "internvit": dict(layer_scale=True, post_norm=False),
    "qwen2_vit": dict(mlp_activation="quick_gelu", class_token=False, temporal_patch_size=2, position_embedding="rope2d", post_norm=False),
}


@pytest.mark.probe
@pytest.mark.parametrize("name", list(TINY))
def test_small_real_models_on_cpu(name):
    """Real weights, real tensors on the CPU: FlopCounterMode equals vit_flops, and MemTracker's tensor
    accounting of the eager (non-fake) run equals the analytic live set."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from torch.distributed._tools.mem_tracker import MemTracker

    from vramcalc.probe.measure import count_flops_real, cpu_latency
    from vramcalc.probe.models import build_model, forward_kwargs

    kw = dict(TINY[name])
    spec = _tiny(kw.pop("family", name), **kw)
    built = build_model(spec, dtype=torch.float32, device="cpu", merger_out_size=96)
    inputs = built.make_inputs(2, 56, 56, torch.float32)
    extra = forward_kwargs(spec)
    pred = vit_forward(spec, 2, dtype_bytes=4, merger_out_size=96)
    assert count_flops_real(built.model, inputs, extra) == pytest.approx(pred.flops.total, rel=0.01)
    tracker = MemTracker()
    tracker.track_external(built.model, *[v for k, v in inputs.items() if k in ("pixel_values", "hidden_states")])
    with tracker, torch.inference_mode():
        built.model(**inputs, **extra)
    snap = next(iter(tracker.get_tracker_snapshot("peak").values()))
    vals = {str(getattr(k, "value", k)): v for k, v in snap.items()}
    measured = vals["Total"] - vals["Parameter"] - vals["Buffer"]
    # tiny tensors: position ids, rotary tables and 512-byte rounding weigh more than at full size
    assert pred.activations.peak_bytes == pytest.approx(measured, rel=0.25)
    assert cpu_latency(built.model, inputs, extra, repeats=1, warmup=0) > 0


@pytest.mark.probe
def test_peak_tracker_agrees_with_memtracker():
    """The probe's lightweight tracker and PyTorch's MemTracker count the same bytes (CLIP-L/14-336, batch 4)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from vramcalc.probe.measure import Simulator

    spec = enc("clip-vit-l-14-336")
    sim = Simulator(spec, "fp16")
    assert sim.run(4, 336, 336).activation_bytes == sim.run_memtracker(4, 336, 336)
    # a non-native size interpolates the position table (bicubic): FlopCounterMode decomposes that op, and the
    # tracker must still count only what the op returns
    assert sim.run(1, 672, 448).activation_bytes == sim.run_memtracker(1, 672, 448)


@pytest.mark.probe
@pytest.mark.parametrize(
    ("eid", "attention", "dtype", "size"),
    [
        ("clip-vit-l-14-336", "eager", "fp16", None),  # softmax upcast to fp32: scaled + fp32 softmax + cast
        ("siglip-so400m-14-384", "eager", "bf16", None),
        ("dinov2-l-14", "eager", "fp16", None),  # softmax in the input dtype: product + scaled
        ("internvit-300m-448", "eager", "fp16", None),
        ("clip-vit-l-14-336", "sdpa", "fp16", (672, 448)),  # interpolated position embeddings
        ("qwen2-vl-vit", "sdpa", "bf16", (1344, 896)),
        ("qwen2.5-vl-vit", "sdpa", "bf16", (1344, 896)),  # windows of unequal size at the right/bottom edge
        ("clip-vit-l-14-336", "sdpa", "fp32", None),
    ],
)
def test_variants_match_fake_tensor_measurement(eid, attention, dtype, size):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from vramcalc.probe.measure import Simulator
    from vramcalc.probe.run import _merger_out_size

    spec = enc(eid)
    merger = _merger_out_size(spec, load_catalog())
    w, h = size or (spec.image_size, spec.image_size)
    measured = Simulator(spec, dtype, attention, merger).run(2, w, h)
    pred = vit_forward(spec, 2, w, h, dtype_bytes=4 if dtype == "fp32" else 2, attention=attention, merger_out_size=merger)
    assert pred.flops.total == pytest.approx(measured.flops, rel=0.01)
    assert pred.activations.peak_bytes == pytest.approx(measured.activation_bytes, rel=0.10)
