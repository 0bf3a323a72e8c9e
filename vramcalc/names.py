"""Model names as people type them, with the quantization written into the name.

``qwen2.5:7b-instruct-q8_0`` (an Ollama tag), ``llama3.1:8b-instruct-q4_K_M``, ``gemma3:27b-it-qat``
(Gemma 3's quantization-aware-trained Q4_0 files) and ``Qwen2.5-7B-Instruct-Q4_K_M.gguf`` (a file
name typed as a name, not a file that exists) are a catalog model plus a quantization. The name
is resolved without the quantization (and, failing that, without the instruction-tuning word:
instruct, it, chat), against the catalog's ids and aliases. Hugging Face ids (``org/name:QUANT``,
``hf.co/...``) are resolved elsewhere (they name a file on the Hub).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vramcalc.errors import InputError, UnknownEntryError

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.schema import LlmSpec, VisionEncoderSpec, VlmSpec

# a GGUF type or torch dtype at the end of a name, after '-', '_', '.' or ':'
_QUANT_TAIL = re.compile(
    r"[-_.:](?P<q>(?:i?q\d(?:_\d|_k(?:_[sml]|_xl)?|_xxs|_xs|_s|_m|_nl)?)|f16|fp16|bf16|f32|fp32|mxfp4|qat)$",
    re.IGNORECASE,
)
_TUNING_TAIL = re.compile(r"[-_:.](instruct|it|chat|base|pt)$", re.IGNORECASE)

#: Gemma 3 QAT tags (ollama 'gemma3:27b-it-qat'): Google's quantization-aware-trained checkpoints
#: ship as Q4_0 GGUF files (google/gemma-3-27b-it-qat-q4_0-gguf).
QAT_TYPE = "Q4_0"


@dataclass(frozen=True)
class TypedName:
    """A model name resolved with the quantization it carried (None: none in the name)."""

    spec: LlmSpec | VlmSpec | VisionEncoderSpec
    quant: str | None
    typed: str

    @property
    def note(self) -> str | None:
        if self.quant is None:
            return None
        return f"'{self.typed}' read as {self.spec.id} at {self.quant}, the quantization in the name."


def resolve_typed(cat: Catalog, query: str, quant: str | None = None) -> TypedName:
    """The catalog model ``query`` names, and the quantization written into it.

    Raises UnknownEntryError (the one for the whole name) when neither the name nor the name
    without its quantization resolves; InputError when ``quant`` (--quant) contradicts the name's.
    """
    try:
        return TypedName(cat.resolve_model(query), None, query)
    except UnknownEntryError as first:
        err = first
    name, q = split_quant(query)
    if q is None:
        raise err
    spec = None
    for candidate in _bases(name):
        try:
            spec = cat.resolve_model(candidate)
            break
        except UnknownEntryError:
            continue
    if spec is None:
        raise err
    if quant is not None and _norm(quant) != _norm(q):
        raise InputError(f"'{query}' names the quantization {q}, but --quant is {quant}: give one of them.")
    return TypedName(spec, q, query)


def split_quant(query: str) -> tuple[str, str | None]:
    """('qwen2.5:7b-instruct', 'Q8_0') from 'qwen2.5:7b-instruct-q8_0'; (query, None) without one."""
    name = query.strip()
    if name.lower().endswith(".gguf"):
        name = name[: -len(".gguf")]
    m = _QUANT_TAIL.search(name)
    if not m:
        return query, None
    raw = m.group("q")
    return name[: m.start()], _canonical(raw)


def _canonical(raw: str) -> str:
    low = raw.lower()
    if low == "qat":
        return QAT_TYPE
    if low in ("fp16", "f16"):
        return "F16"
    if low in ("fp32", "f32"):
        return "F32"
    if low == "bf16":
        return "BF16"
    return raw.upper()


def _norm(q: str) -> str:
    return _canonical(q.strip())


def _bases(name: str) -> list[str]:
    """The name, then without the instruction-tuning word ('7b-instruct' -> '7b')."""
    out = [name]
    stripped = _TUNING_TAIL.sub("", name)
    if stripped != name:
        out.append(stripped)
    return out
