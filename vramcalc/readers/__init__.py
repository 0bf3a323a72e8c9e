"""Models from the user's own files: GGUF headers, Hugging Face config.json, safetensors headers.

Only headers are read, never tensor data. One module per reader:

- ``gguf``: the GGUF header parser (a path or any seekable binary file object).
- ``gguf_spec``: GGUF metadata and tensor infos -> catalog specs + the exact weights.
- ``gguf_remote``: a remote GGUF header without its tokenizer strings (checked; else the full read).
- ``safetensors``: safetensors headers (parameter counts and bytes by dtype).
- ``hf_config``: config.json -> catalog specs.
- ``load``: a path -> a ``FileModel`` (catalog-schema specs, so ``estimate()`` runs unchanged, plus
  the exact weights where the files fix them).
- ``common``: ``slug``, ``anyres_tokens`` and ``looks_like_path``.

The names below are imported on first use (PEP 562), so ``from vramcalc.readers import
looks_like_path`` (every ``check``) loads neither the GGUF modules nor the ``gguf`` package.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vramcalc.readers.common import looks_like_path, slug
    from vramcalc.readers.gguf import GgufHeader, GgufTensorInfo, SkippedArray, parse_gguf_header, read_gguf_header
    from vramcalc.readers.gguf_spec import GGUF_ARCHITECTURES, MMPROJ_TYPES, gguf_llm, gguf_mmproj
    from vramcalc.readers.hf_config import HF_TEXT_TYPES, HF_VLM_TYPES, ConfigModel, llm_from_hf, model_from_hf_config
    from vramcalc.readers.load import FileModel, entry_data, load_model_files, renamed
    from vramcalc.readers.safetensors import SafetensorsSummary, read_safetensors_header, summarize_safetensors

#: public name -> the module that owns it
_MODULE_OF = {
    "looks_like_path": "common",
    "slug": "common",
    "GgufHeader": "gguf",
    "GgufTensorInfo": "gguf",
    "SkippedArray": "gguf",
    "parse_gguf_header": "gguf",
    "read_gguf_header": "gguf",
    "GGUF_ARCHITECTURES": "gguf_spec",
    "MMPROJ_TYPES": "gguf_spec",
    "gguf_llm": "gguf_spec",
    "gguf_mmproj": "gguf_spec",
    "HF_TEXT_TYPES": "hf_config",
    "HF_VLM_TYPES": "hf_config",
    "ConfigModel": "hf_config",
    "llm_from_hf": "hf_config",
    "model_from_hf_config": "hf_config",
    "FileModel": "load",
    "entry_data": "load",
    "load_model_files": "load",
    "renamed": "load",
    "SafetensorsSummary": "safetensors",
    "read_safetensors_header": "safetensors",
    "summarize_safetensors": "safetensors",
}

__all__ = [
    "GGUF_ARCHITECTURES",
    "HF_TEXT_TYPES",
    "HF_VLM_TYPES",
    "MMPROJ_TYPES",
    "ConfigModel",
    "FileModel",
    "GgufHeader",
    "GgufTensorInfo",
    "SafetensorsSummary",
    "SkippedArray",
    "entry_data",
    "gguf_llm",
    "gguf_mmproj",
    "llm_from_hf",
    "load_model_files",
    "looks_like_path",
    "model_from_hf_config",
    "parse_gguf_header",
    "read_gguf_header",
    "read_safetensors_header",
    "renamed",
    "slug",
    "summarize_safetensors",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'vramcalc.readers' has no attribute {name!r}")
    value = getattr(import_module(f"vramcalc.readers.{module}"), name)
    globals()[name] = value
    return value
