"""Regenerate docs/catalog.md from the schema's field descriptions: python docs/gen_catalog_md.py"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from vramcalc import schema

INTRO = """# Catalog format

The catalog is YAML, one file per entry, under `data/gpus/`, `data/encoders/`, `data/llms/`, `data/vlms/`
(shipped in the wheel as `vramcalc/data`). A user catalog with the same layout lives in
`<user data dir>/vramcalc/catalog/` (`vramcalc import --write` puts entries there) and overrides built-in
entries with the same id. Every file is validated by pydantic against the dataclasses in `vramcalc/schema.py`
(`extra="forbid"`: an unknown key is an error) and cross-checked by `vramcalc validate`.

Rules
- The file name is the id: `data/llms/llama-2-7b.yaml` has `id: llama-2-7b` (lowercase, `[a-z0-9._-]`).
- Ids and aliases are unique across the whole catalog after normalization (lowercase, punctuation removed;
  for GPUs the leading words NVIDIA/GeForce/AMD/Radeon/Intel/Apple/Tesla are ignored).
- Architecture hyper-parameters only, never totals: parameter counts, weight bytes, KV sizes are derived.
  `published_params` is the published exact count, used only to cross-check the derived one (0.5%).
- Every entry has a `source`; where sources disagree, `notes` says which value was chosen and why.
- Sizes in bytes accept `12 GiB` (binary) or `80 GB` (decimal) and are stored as integers.

This file is generated from the schema by `python docs/gen_catalog_md.py`.
"""


def _type(t: Any) -> str:
    """A field's type as the YAML author sees it: 'int > 0', "bytes (int, or '12 GiB')", 'str | None'."""
    origin, args = get_origin(t), get_args(t)
    if origin is Annotated:
        base, *meta = args
        out = _type(base)
        for m in meta:
            if isinstance(m, schema.ByteSize):
                return "bytes (int, or '12 GiB')"
            kw = m.kwargs if isinstance(m, schema.Check) else {}
            if "ge" in kw and "le" in kw:
                out += f" in {kw['ge']}..{kw['le']}"
            elif "gt" in kw or "ge" in kw:
                out += f" > {kw['gt']}" if "gt" in kw else f" >= {kw['ge']}"
            if "min_length" in kw:
                out += f" (length >= {kw['min_length']})"
            if "pattern" in kw:
                out += f" matching {kw['pattern']}"
        return out
    if origin in (Union, types.UnionType):
        return " | ".join(_type(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type(a) for a in args)}]"
    if t is type(None):
        return "None"
    return t.__name__ if isinstance(t, type) else str(t)


def section(title: str, cls: type) -> list[str]:
    lines = [
        f"## {title} (`{cls.__name__}`)",
        "",
        (cls.__doc__ or "").strip(),
        "",
        "| field | type | required | description |",
        "|---|---|---|---|",
    ]
    hints = get_type_hints(cls, include_extras=True)
    docs = schema.field_docs(cls)
    for f in dataclasses.fields(cls):
        ann = _type(hints[f.name])
        ann = (ann if len(ann) < 60 else ann[:57] + "...").replace("|", "\\|")
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            req = "yes"
        elif f.default is not dataclasses.MISSING and f.default is not None:
            req = f"default `{f.default!r}`"
        else:
            req = "no"
        lines.append(f"| `{f.name}` | `{ann}` | {req} | {docs[f.name].replace('|', '/')} |")
    return [*lines, ""]


def render() -> str:
    """The text of docs/catalog.md (tests/test_docs.py compares it with the committed file)."""
    out = [INTRO]
    for title, cls in [
        ("GPU", schema.GpuSpec),
        ("Vision encoder", schema.VisionEncoderSpec),
        ("Window attention", schema.WindowAttention),
        ("LLM", schema.LlmSpec),
        ("Sliding window", schema.SlidingWindow),
        ("Mixture of experts", schema.Moe),
        ("Multi-head latent attention", schema.Mla),
        ("Linear attention (hybrid models)", schema.LinearAttention),
        ("Global attention (Gemma 4)", schema.GlobalAttention),
        ("VLM", schema.VlmSpec),
        ("Projector", schema.Projector),
        ("Image tokens: fixed", schema.FixedTokens),
        ("Image tokens: LLaVA-NeXT anyres", schema.AnyresTokens),
        ("Image tokens: dynamic resolution", schema.DynamicResolutionTokens),
        ("Image tokens: tiles", schema.TileTokens),
        ("VLM defaults", schema.VlmDefaults),
    ]:
        out += section(title, cls)
    out.append("## Examples\n")
    root = Path(__file__).resolve().parents[1] / "data"
    for rel in ("gpus/rtx3060-12gb.yaml", "encoders/clip-vit-l-14-336.yaml", "llms/llama-2-7b.yaml", "vlms/llava-1.6-mistral-7b.yaml"):
        out += [f"`data/{rel}`", "", "```yaml", (root / rel).read_text(encoding="utf-8").rstrip(), "```", ""]
    return "\n".join(out)


def main() -> None:
    Path(__file__).with_name("catalog.md").write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
