"""Memoizing pure functions of catalog specs, keyed on the spec's content.

Specs are frozen but unhashable (they hold lists), so the key is their ``repr``, which names every
field: two equal specs share an entry, and a new spec never gets an answer computed for another one
(as a key on ``id()`` could, once an object is freed and its id reused).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: Entries kept by each memo; a full memo starts again (a catalog has a few hundred specs).
MEMO_SIZE = 1024


def spec_memo(fn: Callable[P, R]) -> Callable[P, R]:
    """Memoize ``fn(spec, *args)`` on ``(repr(spec), *args)``; ``args`` must be hashable. Callers
    treat what it returns as read-only."""
    memo: dict[tuple[Any, ...], R] = {}

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        key = (repr(args[0]), *args[1:], *sorted(kwargs.items()))
        try:
            return memo[key]
        except KeyError:
            pass
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        out = memo[key] = fn(*args, **kwargs)
        return out

    return wrapper
