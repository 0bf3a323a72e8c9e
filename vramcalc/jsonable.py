"""Plain frozen dataclasses as JSON: the base of every result type (no pydantic at run time).

A result field documents itself with ``doc("...")`` (docs/json.md is generated from these), and a
total that is computed from its parts is a property named in ``__json_computed__``: it appears in
the JSON but is never stored twice.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar


def doc(text: str, **kwargs: Any) -> Any:
    """A dataclass field with a description (shown in docs/json.md)."""
    return dataclasses.field(metadata={"doc": text}, **kwargs)


class Jsonable:
    """Mixin for result dataclasses: ``to_json()`` gives the object ``--json`` prints."""

    __json_computed__: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        out = to_json(self)
        assert isinstance(out, dict)
        return out


def to_json(obj: Any) -> Any:
    """Dataclasses (fields in order, then their computed properties), lists, tuples and dicts, to
    JSON values; tuples become lists, enums their value."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        for name in getattr(obj, "__json_computed__", ()):
            out[name] = to_json(getattr(obj, name))
        return out
    if isinstance(obj, (list, tuple)):
        return [to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> description of a result dataclass (its ``doc()`` texts)."""
    return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}
