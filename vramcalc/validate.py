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
        if pol.tokens not in (expect, expect + 1):  # +1: some keep the class token
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
    from vramcalc.catalog import builtin_catalog_dir

    if not paths:
        cat = Catalog.load([builtin_catalog_dir()])
    else:
        roots = []
        for p in paths:
            if p.is_file() or (p.is_dir() and p.name in KIND_DIRS):
                raise CatalogError(f"{p}: give a catalog directory (the folder that holds gpus/, encoders/, llms/, vlms/)")
            if not p.is_dir():
                raise CatalogError(f"{p}: no such directory")
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
