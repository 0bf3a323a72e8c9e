"""Regenerate docs/catalog.md from the schema's field descriptions: python docs/gen_catalog_md.py"""

from __future__ import annotations

from pathlib import Path
from typing import ForwardRef

from vramcalc import schema

INTRO = """# Catalog format

The catalog is YAML, one file per entry, under `data/gpus/`, `data/encoders/`, `data/llms/`, `data/vlms/`
(shipped in the wheel as `vramcalc/data`). A user catalog with the same layout lives in
`<user data dir>/vramcalc/catalog/` (`vramcalc import --write` puts entries there) and overrides built-in
entries with the same id. Every file is validated by the pydantic models in `vramcalc/schema.py`
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


def _type(ann) -> str:
    if isinstance(ann, type):
        return ann.__name__
    if isinstance(ann, ForwardRef):  # a field declared before its type; pydantic resolves it on first use
        ann = ann.__forward_arg__
    s = str(ann).replace("typing.", "").replace("vramcalc.schema.", "")
    if "parse_bytes" in s:
        return "bytes (int, or '12 GiB')"
    s = s.replace("Annotated[int, FieldInfo(annotation=NoneType, required=True, metadata=[Gt(gt=0)])]", "int > 0")
    s = s.replace("Annotated[int, FieldInfo(annotation=NoneType, required=True, metadata=[Ge(ge=0)])]", "int >= 0")
    return s if len(s) < 60 else s[:57] + "..."


def section(title: str, cls) -> list[str]:
    lines = [f"## {title} (`{cls.__name__}`)", "", (cls.__doc__ or "").strip(), "", "| field | type | required | description |", "|---|---|---|---|"]
    for name, f in cls.model_fields.items():
        ann = _type(f.annotation).replace("|", "\\|")
        req = "yes" if f.is_required() else f"default `{f.default!r}`" if f.default is not None and not callable(f.default_factory) else "no"
        lines.append(f"| `{name}` | `{ann}` | {req} | {(f.description or '').replace('|', '/')} |")
    return [*lines, ""]


def render() -> str:
    """The text of docs/catalog.md (tests/test_docs.py compares it with the committed file)."""
    out = [INTRO]
    for title, cls in [
        ("GPU", schema.GpuSpec), ("Vision encoder", schema.VisionEncoderSpec), ("Window attention", schema.WindowAttention),
        ("LLM", schema.LlmSpec), ("Sliding window", schema.SlidingWindow), ("Mixture of experts", schema.Moe),
        ("Multi-head latent attention", schema.Mla), ("VLM", schema.VlmSpec), ("Projector", schema.Projector),
        ("Image tokens: fixed", schema.FixedTokens), ("Image tokens: LLaVA-NeXT anyres", schema.AnyresTokens),
        ("Image tokens: dynamic resolution", schema.DynamicResolutionTokens), ("Image tokens: tiles", schema.TileTokens),
        ("VLM defaults", schema.VlmDefaults),
    ]:
        out += section(title, cls)
    out.append("## Examples\n")
    root = Path(__file__).resolve().parents[1] / "data"
    for rel in ("gpus/rtx3060-12gb.yaml", "encoders/clip-vit-l-14-336.yaml", "llms/llama-2-7b.yaml", "vlms/llava-1.6-mistral-7b.yaml"):
        out += [f"`data/{rel}`", "", "```yaml", (root / rel).read_text().rstrip(), "```", ""]
    return "\n".join(out)


def main() -> None:
    Path(__file__).with_name("catalog.md").write_text(render())


if __name__ == "__main__":
    main()
