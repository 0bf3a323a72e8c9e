"""Exceptions the core raises; the CLI turns them into one-line messages and exit codes."""

from __future__ import annotations


class VramcalcError(Exception):
    """Base class: a problem the user can fix, shown without a traceback."""

    exit_code = 1


class UnknownEntryError(VramcalcError, KeyError):
    """An id or alias that is not in the catalog (exit code 2, like a usage error)."""

    exit_code = 2

    def __init__(self, kind: str, query: str, suggestions: list[str]):
        self.kind = kind
        self.query = query
        self.suggestions = suggestions
        super().__init__(str(self))

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        msg = f"Unknown {self.kind} '{self.query}'."
        if self.suggestions:
            msg += " Did you mean " + ", ".join(f"'{s}'" for s in self.suggestions) + "?"
        plural = {"GPU": "gpus", "model": "llms / vlms", "encoder": "encoders"}.get(self.kind, "")
        if plural:
            msg += f" Run 'vramcalc list {plural.split(' ')[0]}'" + (" or 'vramcalc list vlms'." if self.kind == "model" else ".")
        return msg


class AmbiguousGpuError(VramcalcError):
    """A GPU name that several catalog cards share ('m3 max'): the message lists them (exit code 2)."""

    exit_code = 2

    def __init__(self, query: str, variants: list[str], example: str = ""):
        self.query = query
        self.variants = variants
        eg = f" (e.g. '{example}')" if example else ""
        super().__init__(
            f"'{query}' names {len(variants)} configurations; add the memory and GPU cores{eg} or give an id: " + "; ".join(variants) + "."
        )


class CatalogError(VramcalcError):
    """A catalog file that does not parse or does not validate (exit code 2)."""

    exit_code = 2


class InputError(VramcalcError):
    """A user-supplied file or value the core cannot use (exit code 2)."""

    exit_code = 2


class ProbeUnavailableError(VramcalcError):
    """The probe needs torch/transformers or a device that is not there."""
