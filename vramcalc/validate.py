"""Catalog validation beyond the schema: references, uniqueness, parameter counts, consistency.

``vramcalc validate`` runs this on the built-in catalog (CI does too) or on a user's directory.
Every problem names the file, the field path and, where we know it, the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from vramcalc.catalog import KIND_DIRS, Catalog, RawEntry
from vramcalc.errors import CatalogError
from vramcalc.jsonable import Jsonable, doc, result

#: derived parameter count vs published_params (issue 6: within 0.5%)
PARAMS_TOLERANCE = 0.005

#: Per-pin data rates (Gbit/s) each memory type is sold at, from the JEDEC/vendor ranges
#: (GDDR5 up to 9, GDDR5X 10-12, GDDR6 10-20, GDDR6X 19-24, GDDR7 28-32; HBM2 1.6-2.4, HBM2e 2.4-3.7,
#: HBM3 4.8-6.4, HBM3e 6.4-9.8; LPDDR4X 4.27, LPDDR5 6.4, LPDDR5X 7.5-10.7; DDR5 4.8-8.0), with slack.
DATA_RATE_GBPS = {
    "GDDR5": (5.0, 9.5),
    "GDDR5X": (9.5, 12.5),
    "GDDR6": (9.5, 20.5),  # the Tesla T4 runs GDDR6 at 10 Gbit/s
    "GDDR6X": (18.0, 24.5),
    "GDDR7": (27.0, 34.0),
    "HBM2": (1.4, 2.5),
    "HBM2E": (2.4, 3.8),
    "HBM3": (4.0, 6.6),
    "HBM3E": (5.5, 10.0),
    "LPDDR4X": (3.7, 4.4),
    "LPDDR5": (5.0, 6.8),
    "LPDDR5X": (6.4, 10.8),
    "DDR5": (4.0, 8.5),
}


#: LLM families whose reference implementation computes head_dim = hidden_size // num_heads
HEAD_DIM_DERIVED = {"qwen2", "phi3", "internlm2", "llama2"}


@dataclass(frozen=True)
class Problem:
    path: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path} -> {self.field}: {self.message}"


@result
class ValidationReport(Jsonable):
    """``vramcalc validate``: every catalog file checked."""

    ok: bool = doc("No problem found.")
    checked: int = doc("Entries checked.")
    counts: dict[str, int] = doc("Entries per kind.")
    problems: list[str] = doc("'<file> -> <field path>: <message>' per problem.")


def validate_catalog(cat: Catalog) -> tuple[list[Problem], int]:
    """All problems of a catalog and the number of entries checked."""
    from vramcalc.params import count_params
    from vramcalc.schema import KINDS, errors, parse

    problems: list[Problem] = [_load_problem(p) for p in cat.problems]
    checked = 0
    valid: dict[tuple[str, str], object] = {}
    for kind in KIND_DIRS:
        for eid, raw in cat.raw[kind].items():
            checked += 1
            try:
                valid[(kind, eid)] = parse(KINDS[kind], raw.data)
            except ValidationError as e:
                problems += [Problem(str(raw.path), loc, msg) for loc, msg in errors(e)]
    for (kind, eid), entry in valid.items():
        raw = cat.raw[kind][eid]
        problems += _cross_checks(cat, kind, raw, entry, valid, count_params)
        problems += plausibility(cat, kind, raw, entry, valid)
    return problems, checked


def _mtp(cat: Catalog, kind: str, e) -> int:  # noqa: ANN001
    """Parameters of the MTP (NextN) layers a checkpoint ships (counted in its published total)."""
    from vramcalc.params import mtp_params

    if kind == "llms":
        return mtp_params(e)
    if kind == "vlms":
        return mtp_params(cat.llm(e.llm))
    return 0


def _load_problem(text: str) -> Problem:
    path, _, rest = text.partition(" -> ")
    if not rest:
        path, _, msg = text.partition(": ")
        return Problem(path, "(file)", msg)
    field, _, msg = rest.partition(": ")
    return Problem(path, field, msg)


def _cross_checks(cat: Catalog, kind: str, raw: RawEntry, e, valid, count_params) -> list[Problem]:  # noqa: ANN001, C901
    out: list[Problem] = []
    path = str(raw.path)
    if kind == "vlms":
        refs_ok = True
        for field, ref_kind in (("encoder", "encoders"), ("llm", "llms")):
            ref = getattr(e, field)
            if (ref_kind, ref) not in valid:
                refs_ok = False
                near = cat.suggest([ref_kind], ref)
                hint = f" Did you mean {', '.join(near)}?" if near else f" Add data/{ref_kind}/{ref}.yaml."
                out.append(Problem(path, field, f"'{ref}' does not resolve to a valid {ref_kind[:-1]} entry.{hint}"))
        if refs_ok:
            enc = valid[("encoders", e.encoder)]
            out += _image_token_checks(path, e, enc)
    if kind in ("llms", "encoders", "vlms") and e.published_params and (kind != "vlms" or not out):
        try:
            derived = count_params(e, cat).total
            derived += _mtp(cat, kind, e)
        except (CatalogError, KeyError) as err:  # a VLM whose parts do not validate: reported above
            out.append(Problem(path, "published_params", f"cannot derive the count: {err}"))
        else:
            rel = derived / e.published_params - 1
            if abs(rel) > PARAMS_TOLERANCE:
                out.append(
                    Problem(
                        path,
                        "published_params",
                        f"derived count {derived:,} is {rel:+.2%} off the published {e.published_params:,} "
                        f"(tolerance {PARAMS_TOLERANCE:.1%}); fix the architecture fields or the published figure",
                    )
                )
    if kind == "llms" and getattr(e, "default_gguf_type", None):
        from vramcalc.quant import GGUF_FILE_TYPES

        if e.default_gguf_type not in GGUF_FILE_TYPES:
            out.append(
                Problem(path, "default_gguf_type", f"'{e.default_gguf_type}' is not a GGUF file type ({', '.join(GGUF_FILE_TYPES)})")
            )
    if kind == "encoders":
        if e.head_dim is None and e.hidden_size % e.num_heads:
            out.append(
                Problem(
                    path,
                    "num_heads",
                    f"hidden_size {e.hidden_size} is not divisible by num_heads {e.num_heads}; set head_dim or fix the head count",
                )
            )
        if e.family in ("clip", "siglip", "siglip2", "dinov2") and e.head_dim and e.head_dim * e.num_heads != e.hidden_size:
            out.append(
                Problem(
                    path,
                    "head_dim",
                    f"head_dim x num_heads = {e.head_dim * e.num_heads} != hidden_size {e.hidden_size}, which {e.family} requires",
                )
            )
        # image_size need not be a multiple of patch_size: SigLIP so400m/14-384 (HF config) has 27 patches a side, the
        # stride-14 patch convolution drops the last 6 px
        if e.image_size < e.patch_size:
            out.append(Problem(path, "image_size", f"image_size {e.image_size} is smaller than patch_size {e.patch_size}"))
    if kind == "llms":
        if e.head_dim is None and e.hidden_size % e.num_heads:
            out.append(
                Problem(
                    path,
                    "num_heads",
                    f"hidden_size {e.hidden_size} is not divisible by num_heads {e.num_heads}; set head_dim or fix the head count",
                )
            )
        # these implementations derive head_dim = hidden_size // num_heads (their HF configs have no head_dim)
        if e.family in HEAD_DIM_DERIVED and e.head_dim and e.head_dim * e.num_heads != e.hidden_size:
            out.append(
                Problem(
                    path,
                    "head_dim",
                    f"head_dim x num_heads = {e.head_dim * e.num_heads} != hidden_size {e.hidden_size}, which {e.family} requires",
                )
            )
    if kind == "gpus" and e.bus_width_bits and e.memory_type:
        mtype = re.sub(r"[^A-Z0-9]", "", e.memory_type.upper())
        rng = DATA_RATE_GBPS.get(mtype)
        if rng:
            rate = e.memory_bandwidth_gbs * 8 / e.bus_width_bits
            if not rng[0] <= rate <= rng[1]:
                out.append(
                    Problem(
                        path,
                        "memory_bandwidth_gbs",
                        f"{e.memory_bandwidth_gbs} GB/s over a {e.bus_width_bits}-bit bus means {rate:.1f} Gbit/s per pin, "
                        f"outside {rng[0]}-{rng[1]} for {e.memory_type}; check the bandwidth, bus width or memory type",
                    )
                )
    return out


def image_token_problems(vlm, enc) -> list[str]:  # noqa: ANN001
    """'<field>: <message>' for each way a VLM's image-token policy disagrees with its encoder: the
    same checks `validate` makes, for specs read from model files (vramcalc.readers)."""
    return [f"{p.field}: {p.message}" for p in _image_token_checks("", vlm, enc)]


def _image_token_checks(path: str, vlm, enc) -> list[Problem]:  # noqa: ANN001
    """The policy must agree with the encoder's image and patch size (and the projector's merge)."""
    out: list[Problem] = []
    pol = vlm.image_tokens
    merge = vlm.projector.merge
    grid = (enc.image_size // enc.patch_size) ** 2
    if pol.kind == "tiles":
        expect = (-(-(pol.tile_size // enc.patch_size) // merge)) ** 2  # ceil: DeepSeek-VL2 pads 27 -> 28 patches before 2x2
        if pol.tokens_per_tile != expect and vlm.projector.kind in ("pixel_shuffle_mlp", "mlp", "merger", "linear"):
            out.append(
                Problem(
                    path,
                    "image_tokens -> tokens_per_tile",
                    f"{pol.tokens_per_tile} != ({pol.tile_size}/{enc.patch_size})^2 / {merge}^2 = {expect}",
                )
            )
    elif pol.kind == "dynamic":
        if pol.factor != enc.patch_size * merge:
            out.append(Problem(path, "image_tokens -> factor", f"{pol.factor} != patch_size {enc.patch_size} x merge {merge}"))
        if pol.min_pixels > pol.max_pixels:
            out.append(Problem(path, "image_tokens -> min_pixels", "min_pixels is larger than max_pixels"))
    elif pol.kind == "fixed" and vlm.projector.kind in ("mlp", "linear", "pixel_shuffle_mlp", "merger") and enc.family != "other":
        # family 'other' (e.g. Gemma 4's pooled variable-resolution tower) has no grid rule to check against
        expect = grid // merge**2
        if pol.tokens != expect:  # no catalog VLM feeds the class token to the LLM (LLaVA drops it: 576 for 24 x 24)
            out.append(
                Problem(
                    path,
                    "image_tokens -> tokens",
                    f"{pol.tokens} != ({enc.image_size}/{enc.patch_size})^2 / {merge}^2 = {expect} for encoder {enc.id}",
                )
            )
    elif pol.kind == "anyres":
        for i, (w, h) in enumerate(pol.grid_pinpoints):
            if w % enc.image_size or h % enc.image_size:
                out.append(
                    Problem(
                        path, f"image_tokens -> grid_pinpoints -> {i}", f"{w}x{h} is not a multiple of the encoder's {enc.image_size} px"
                    )
                )
    return out


def validate_paths(paths: list[Path] | None) -> ValidationReport:
    """Validate the built-in catalog (no paths) or the given catalog directories / YAML files."""
    from vramcalc.catalog import builtin_catalog_dir, user_catalog_dir

    if not paths:
        # the built-in catalog and, when there is one, the user's own (vramcalc import --write)
        roots = [builtin_catalog_dir()]
        try:
            if user_catalog_dir().is_dir():
                roots.append(user_catalog_dir())
        except OSError:
            pass
        cat = Catalog.load(roots)
    else:
        roots = []
        for p in paths:
            try:
                if p.is_file() or (p.is_dir() and p.name in KIND_DIRS):
                    raise CatalogError(f"{p}: give a catalog directory (the folder that holds gpus/, encoders/, llms/, vlms/)")
                if not p.is_dir():
                    raise CatalogError(f"{p}: no such directory")
            except OSError as e:
                raise CatalogError(f"{str(p)[:120]}: cannot read: {e.strerror or e}") from None
            roots.append(p)
        # a user catalog may reference built-in entries: load it on top of the built-in one
        cat = Catalog.load([builtin_catalog_dir(), *roots])
        user = {str(r) for r in roots}
    problems, checked = validate_catalog(cat)
    if paths:
        problems = [p for p in problems if any(p.path.startswith(u) for u in user)]
        checked = sum(1 for k in KIND_DIRS for r in cat.raw[k].values() if any(str(r.path).startswith(u) for u in user))
    counts = {k: sum(1 for r in cat.raw[k].values() if not paths or any(str(r.path).startswith(u) for u in user)) for k in KIND_DIRS}
    return ValidationReport(ok=not problems, checked=checked, counts=counts, problems=[str(p) for p in problems])


# -- physical plausibility (issue 14): the mistakes people make when they type a catalog entry ----

#: Words and hosts that mark a source nobody filled in.
_PLACEHOLDER = re.compile(
    r"^\s*(todo|tbd|tba|fixme|xxx+|n/?a|none|unknown|placeholder|lorem ipsum.*|source|\?+|-+|\.+)\s*\.?\s*$"
    r"|\b(todo|fixme|tbd)\b|https?://(www\.)?example\.(com|org|net)|https?://(localhost|127\.0\.0\.1)\b",
    re.IGNORECASE,
)
#: Memory per 32-bit GDDR channel (one chip, or two in clamshell) in GiB that cards are sold with
#: (GDDR5 to GDDR7 chips of 0.5, 1, 1.5, 2 and 3 GB, twice that in clamshell), and per 1024-bit HBM
#: stack (4 to 12 high stacks of 1 to 4 GB dies): a card's memory over its bus must be one of them.
_PER_GDDR_CHANNEL_GIB = (0.25, 0.5, 1, 1.5, 2, 3, 4, 6)
_PER_HBM_STACK_GIB = (1, 2, 4, 8, 12, 16, 24, 32, 36, 48)
#: Unified-memory sizes sold (Apple M1-M4, DGX Spark, Strix Halo, Jetson), in GiB.
_UNIFIED_SIZES_GIB = (8, 16, 18, 24, 32, 36, 48, 64, 96, 128, 192, 256, 512)
#: Upper bounds no GPU reaches (B200: 8 TB/s, 2.25 dense FP16 tensor PFLOPS): a figure above one is
#: a unit mistake (TFLOPS typed as GFLOPS, x1000).
_MAX = {
    "memory_bandwidth_gbs": 20_000,
    "fp16_tflops": 1_000,
    "fp16_tensor_tflops": 10_000,
    "bf16_tensor_tflops": 10_000,
    "int8_tensor_tops": 40_000,
}
#: Derived parameters over the size in a model's name ('8B', '0.5B', '22M'): published names round
#: (Llama 2 7B holds 6.74 B, Gemma 7B 8.54 B), a field typed 10x off does not.
NAME_SIZE_RANGE = (0.7, 1.4)
_NAME_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([BM])(?![a-zA-Z])")


def name_size(name: str) -> float | None:
    """The largest parameter count a model's name states ('Qwen2-VL 7B' -> 7e9, '(27.5B, 4.5B active)' -> 27.5e9)."""
    sizes = [float(m.group(1)) * (1e9 if m.group(2) == "B" else 1e6) for m in _NAME_SIZE.finditer(name)]
    return max(sizes) if sizes else None


def plausibility(cat: Catalog, kind: str, raw: RawEntry, e, valid) -> list[Problem]:  # noqa: ANN001, C901
    """Physical-plausibility checks of one validated entry against its parts and its peers."""
    from vramcalc.params import count_params

    out: list[Problem] = []
    path = str(raw.path)

    def bad(field: str, msg: str) -> None:
        out.append(Problem(path, field, msg))

    if _PLACEHOLDER.search(e.source or ""):
        bad("source", f"'{e.source[:60]}' is a placeholder; name the datasheet, paper, config file or URL the numbers come from")
    if kind == "gpus":
        gib = e.memory_bytes / 2**30
        mtype = re.sub(r"[^A-Z0-9]", "", (e.memory_type or "").upper())
        if not 1 <= gib <= 2048:
            bad("memory_bytes", f"{e.memory_bytes:,} bytes ({gib:.3g} GiB) is no GPU's memory; write it with a unit, e.g. '12 GiB'")
        elif e.unified_memory:
            if not any(abs(gib - s) < 0.01 for s in _UNIFIED_SIZES_GIB):
                bad("memory_bytes", f"{gib:g} GiB is not a unified-memory size sold ({', '.join(map(str, _UNIFIED_SIZES_GIB))} GiB)")
        elif e.bus_width_bits and mtype.startswith(("GDDR", "HBM")):
            unit, sizes = (1024, _PER_HBM_STACK_GIB) if mtype.startswith("HBM") else (32, _PER_GDDR_CHANNEL_GIB)
            per = gib / (e.bus_width_bits / unit)
            # HBM parts may expose a little less than their stacks hold (H100 NVL: 94 of 96 GB, H200 141 of 144)
            if not any(0.9 * s <= per <= s * 1.001 for s in sizes):
                what = "1024-bit HBM stack" if unit == 1024 else "32-bit channel"
                bad(
                    "memory_bytes",
                    f"{gib:g} GiB over a {e.bus_width_bits}-bit {e.memory_type} bus is {per:.3g} GiB per {what}, which no part is sold "
                    f"with ({', '.join(map(str, sizes))}); check the memory size (a unit or 10x mistake) or the bus width",
                )
        for f, hi in _MAX.items():
            v = getattr(e, f)
            if v is not None and v > hi:
                bad(f, f"{v:,} is above any GPU made (at most {hi:,}); a unit mistake (GFLOPS or MB/s typed as T/G?)")
        if e.fp16_tflops and e.fp16_tensor_tflops and e.fp16_tensor_tflops < e.fp16_tflops:
            bad(
                "fp16_tensor_tflops", f"{e.fp16_tensor_tflops} is below the shader FP16 {e.fp16_tflops}: tensor and shader figures swapped?"
            )
        cc = e.compute_capability
        nvidia_bf16 = e.vendor == "nvidia" and cc and _cc(cc) >= 8.0 and e.fp16_tensor_tflops and e.bf16_tensor_tflops
        if nvidia_bf16 and abs(e.bf16_tensor_tflops / e.fp16_tensor_tflops - 1) > 0.02:
            bad(
                "bf16_tensor_tflops",
                f"{e.bf16_tensor_tflops} != fp16_tensor_tflops {e.fp16_tensor_tflops}: NVIDIA tensor cores (compute "
                "capability 8.0+) run dense FP16 and BF16 at one rate; a sparse (2x) figure, or the FP16-accumulate one?",
            )
        # TFLOPS vs architecture: GPUs of one architecture share their tensor/shader ratio (2 on GeForce,
        # 4 on most workstation and datacenter parts, 7.4 on Hopper)
        if e.fp16_tflops and e.fp16_tensor_tflops:
            ratio = e.fp16_tensor_tflops / e.fp16_tflops
            peers = [
                g.fp16_tensor_tflops / g.fp16_tflops
                for (k, i), g in valid.items()
                if k == "gpus"
                and i != e.id
                and g.vendor == e.vendor
                and (g.architecture == e.architecture or g.category == e.category)
                and g.fp16_tflops
                and g.fp16_tensor_tflops
            ]
            if len(peers) >= 2 and not any(abs(ratio / p - 1) <= 0.03 for p in peers):
                bad(
                    "fp16_tensor_tflops",
                    f"tensor/shader FP16 ratio {ratio:.3g} matches no other {e.architecture} or {e.category} GPU "
                    f"({', '.join(sorted({f'{p:.3g}' for p in peers}))}); a sparse, swapped or mistyped figure?",
                )
        # TFLOPS vs core count: one architecture's cores run at about one rate
        if e.fp16_tflops and e.gpu_cores:
            per_core = e.fp16_tflops / e.gpu_cores
            peers = sorted(
                g.fp16_tflops / g.gpu_cores
                for (k, i), g in valid.items()
                if k == "gpus" and i != e.id and g.vendor == e.vendor and g.architecture == e.architecture and g.fp16_tflops and g.gpu_cores
            )
            if len(peers) >= 2:
                mid = peers[len(peers) // 2]
                if not 0.7 <= per_core / mid <= 1.43:
                    bad(
                        "fp16_tflops",
                        f"{per_core:.3g} TFLOPS per core, while other {e.architecture} parts do about {mid:.3g}: "
                        "check the TFLOPS or gpu_cores",
                    )
        return out

    if kind == "encoders":
        if not -e.num_layers <= e.feature_layer < e.num_layers:
            bad("feature_layer", f"{e.feature_layer} is outside the tower's {e.num_layers} layers (-{e.num_layers}..{e.num_layers - 1})")
        if e.window_attention:
            over = [i for i in e.window_attention.full_attention_layers if i >= e.num_layers]
            if over:
                bad("window_attention -> full_attention_layers", f"layer {over[0]} is beyond the tower's {e.num_layers} layers")
    if kind == "llms":
        if e.sliding_window and e.sliding_window.size >= e.max_context:
            bad("sliding_window -> size", f"window {e.sliding_window.size:,} is not smaller than max_context {e.max_context:,}")
        if e.sliding_window and len(e.sliding_window.pattern) > e.num_layers:
            bad("sliding_window -> pattern", f"{len(e.sliding_window.pattern)} entries for {e.num_layers} layers")
        if e.moe:
            over = [i for i in e.moe.dense_layers if i >= e.num_layers]
            if over:
                bad("moe -> dense_layers", f"layer {over[0]} is beyond the model's {e.num_layers} layers")
            if e.moe.experts_per_token > e.moe.num_experts:
                bad("moe -> experts_per_token", f"{e.moe.experts_per_token} experts per token of {e.moe.num_experts}")
        # every published LLM's widths are multiples of 32 (GPU kernels tile by it); a width that is not is a typo
        widths = {"hidden_size": e.hidden_size, "intermediate_size": e.intermediate_size}
        if e.moe:
            widths["moe -> expert_intermediate_size"] = e.moe.expert_intermediate_size
        for f, v in widths.items():
            if v % 32 and v > 1:
                bad(f, f"{v:,} is not a multiple of 32, as every published model's widths are; a typo?")
        if e.num_kv_heads > e.num_heads:
            bad("num_kv_heads", f"{e.num_kv_heads} KV heads for {e.num_heads} query heads")
        if e.max_context > 2**24:
            bad("max_context", f"{e.max_context:,} tokens is above any published model (Llama 4 Scout: 10,485,760); a digit too many?")
    if kind == "vlms" and ("encoders", e.encoder) in valid and ("llms", e.llm) in valid:
        enc, llm = valid[("encoders", e.encoder)], valid[("llms", e.llm)]
        pol, proj = e.image_tokens, e.projector
        if pol.kind == "tiles" and pol.max_tiles < pol.min_tiles:
            bad("image_tokens -> max_tiles", f"max_tiles {pol.max_tiles} < min_tiles {pol.min_tiles}")
        if proj.input_size is not None and proj.kind in ("mlp", "linear", "merger", "pixel_shuffle_mlp"):
            want = enc.hidden_size * (proj.merge**2 if proj.kind in ("merger", "pixel_shuffle_mlp") else 1)
            # an MLP may take several feature maps side by side (moondream2: global + local crops, 2 x 1152)
            if proj.input_size != want and (proj.kind in ("merger", "pixel_shuffle_mlp") or proj.input_size % want):
                bad(
                    "projector -> input_size",
                    f"{proj.input_size} != the encoder's hidden size {enc.hidden_size}"
                    + (f" x merge {proj.merge}^2 = {want}" if want != enc.hidden_size else ""),
                )
        # Qwen3-VL DeepStack: each index names an encoder layer, and each merger feeds one LLM layer
        ds_over = [i for i in proj.deepstack_layers if i >= enc.num_layers]
        if ds_over or len(proj.deepstack_layers) > llm.num_layers or (proj.deepstack_layers and proj.kind != "merger"):
            bad(
                "projector -> deepstack_layers",
                f"{proj.deepstack_layers} needs a merger projector, indexes below the encoder's {enc.num_layers} layers "
                f"and at most {llm.num_layers} entries (one per LLM layer)",
            )
        # Llama 3.2 Vision numbers its layers over the whole stack: the LLM's self-attention layers plus these
        total = llm.num_layers + len(proj.cross_attention_layers)
        over = [i for i in proj.cross_attention_layers if i >= total]
        if over:
            bad(
                "projector -> cross_attention_layers",
                f"layer {over[0]} is beyond the {total} layers of the LLM and its cross-attention layers",
            )
    # parameter count vs the size in the name (most useful where published_params is missing)
    if kind in ("llms", "vlms"):
        size = name_size(e.name)
        moe = getattr(e, "moe", None) or (kind == "vlms" and ("llms", e.llm) in valid and valid[("llms", e.llm)].moe)
        sizes_in_name = len(_NAME_SIZE.findall(e.name))
        if size and (not moe or sizes_in_name >= 2):
            try:
                pc = count_params(e, cat)
            except (CatalogError, KeyError):
                return out
            low, high = NAME_SIZE_RANGE
            if not any(low <= n / size <= high for n in {pc.total, pc.llm} if n):
                bad(
                    "name",
                    f"the fields give {pc.total / 1e9:.3g} B parameters but the name says {size / 1e9:.3g} B; "
                    "check num_layers, hidden_size, intermediate_size and vocab_size",
                )
    return out


def _cc(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0
