"""Plain frozen dataclasses as JSON: the base of every result type (no pydantic at run time).

A result field documents itself with ``doc("...")`` (docs/json.md is generated from these), and a
total that is computed from its parts is a property named in ``__json_computed__``: it appears in
the JSON but is never stored twice.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar, TypeVar, dataclass_transform


def doc(text: str, omit_none: bool = False, **kwargs: Any) -> Any:
    """A dataclass field with a description (shown in docs/json.md); ``omit_none``: left out of the
    JSON while None (a field only some runtimes fill, e.g. ``Estimate.serving``)."""
    meta = {"doc": text, "omit_none": True} if omit_none else {"doc": text}
    return dataclasses.field(metadata=meta, **kwargs)


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, doc))
def result(cls: type[_T]) -> type[_T]:
    """Make a :class:`Jsonable` subclass a result dataclass (frozen by the base class)."""
    return dataclasses.dataclass(eq=False, repr=False)(cls)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(dataclasses.field, doc))
def kw_result(cls: type[_T]) -> type[_T]:
    """:func:`result` with keyword-only fields (for results with many optional ones)."""
    return dataclasses.dataclass(eq=False, repr=False, kw_only=True)(cls)


class Jsonable:
    """Base of result dataclasses: ``to_json()`` gives the object ``--json`` prints.

    Results are frozen once built: a field set by ``__init__`` cannot be set again or deleted
    (``dataclasses.FrozenInstanceError``). The subclasses are ``@result`` dataclasses, which only
    generate ``__init__``: equality and repr are written once here, and freezing is this class's
    ``__setattr__`` — dataclass(frozen=True) would generate five functions per class, a third of
    vramcalc's start-up time spent in exec().
    """

    __json_computed__: ClassVar[tuple[str, ...]] = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__dataclass_fields__)

    __hash__ = None  # type: ignore[assignment]  # results hold lists

    def __repr__(self) -> str:
        return f"{self.__class__.__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__dataclass_fields__)})"

    def to_json(self) -> dict[str, Any]:
        out = to_json(self)
        assert isinstance(out, dict)
        return out


def to_json(obj: Any) -> Any:
    """Dataclasses (fields in order, then their computed properties), lists, tuples and dicts, to
    JSON values; tuples become lists, enums their value."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {
            f.name: to_json(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not (f.metadata.get("omit_none") and getattr(obj, f.name) is None)
        }
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
