"""Fast pickling of frozen slotted dataclasses.

A frozen slotted dataclass pickles through Python-level `__getstate__`/`__setstate__` per object
(each call walks `dataclasses.fields`). Account checkpoints hold thousands of them (quotes,
positions, conversions and their legs), which made that walk most of a host's checkpoint cost;
pickled as constructor and field values instead, they cost what a tuple does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from typing import Any


def pickle_as_fields(cls: type) -> None:
    """Pickle instances of `cls` as its constructor and field values (every field an init field)."""
    names = [f.name for f in fields(cls)]
    getter = attrgetter(*names)
    values: Callable[[Any], tuple[Any, ...]] = getter if len(names) > 1 else (lambda obj: (getter(obj),))

    def reduce(self: Any) -> tuple[Any, ...]:
        return cls, values(self)

    cls.__reduce__ = reduce  # type: ignore[method-assign,assignment]
