"""Records and cluster events as compact JSON, for Redis.

Each value becomes ``[tag, field1, field2, ...]`` in field order: smaller and
faster than a dict per value, and fields are checked against the dataclass on
the way back (a node of another version fails loudly, not subtly; fields added since with a default,
such as a history entry's offset, may be missing: a node of the previous version during a rolling
upgrade). The classes
it knows are the hub's registries (``RECORD_TYPES``, ``EVENT_TYPES``,
``ENTRY_TYPES``): a new record or event needs nothing here.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ..hub.events import EVENT_TYPES, Change
from ..hub.records import ENTRY_TYPES, RECORD_TYPES

__all__ = ["decode", "decode_many", "encode", "encode_many", "from_list", "to_list"]

_CLASSES: tuple[type[Change], ...] = (*RECORD_TYPES, *EVENT_TYPES)
_ENTRIES: dict[str, type[Any]] = {cls.__name__: cls for cls in ENTRY_TYPES}

#: Turns one JSON field back into the dataclass field (None: the JSON value as it is).
FieldDecoder = Callable[[Any], Any] | None


def _field_decoder(annotation: str) -> FieldDecoder:
    """How a JSON value turns back into a field of this annotation (None: as it is)."""
    entry = _ENTRIES.get(annotation)
    if entry is not None:
        return lambda v: entry(*v)
    if annotation.startswith("tuple"):
        return lambda v: None if v is None else tuple(v)
    return None


def _decoders(cls: type[Change]) -> tuple[type[Change], int, int, tuple[FieldDecoder, ...]]:
    """The class, how many fields it needs (those without a default) and has, and their decoders."""
    fields = dataclasses.fields(cls)
    required = sum(1 for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    return cls, required, len(fields), tuple(_field_decoder(str(f.type)) for f in fields)


_BY_TAG = {cls.__name__: _decoders(cls) for cls in _CLASSES}


def _encoder(cls: type[Change]) -> Callable[[Change], list[Any]]:
    """Built once per class: encoding runs for every published message."""
    name = cls.__name__
    getters: list[Callable[[Any], Any]] = []
    for f in dataclasses.fields(cls):
        entry = _ENTRIES.get(str(f.type))
        if entry is None:
            getters.append(operator.attrgetter(f.name))
        else:  # a nested entry becomes a list of its fields
            getters.append(_nested(f.name, entry))
    return lambda value: [name, *(g(value) for g in getters)]


def _nested(name: str, entry: type[Any]) -> Callable[[Any], list[Any]]:
    """Reads field ``name`` (an entry) as the list of the entry's fields."""
    inner = operator.attrgetter(*(g.name for g in dataclasses.fields(entry)))
    outer = operator.attrgetter(name)
    return lambda v: list(inner(outer(v)))


_ENCODE = {cls: _encoder(cls) for cls in _CLASSES}


def to_list(value: Change) -> list[Any]:
    return _ENCODE[type(value)](value)


def from_list(item: Sequence[Any]) -> Change:
    try:
        cls, required, count, decoders = _BY_TAG[item[0]]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"not a CometQL record or event: {item!r:.200}") from None
    values = item[1:]
    if not required <= len(values) <= count:  # fewer: a node of the previous version (fields added since)
        raise ValueError(f"{item[0]}: {len(values)} fields, expected {count}")
    return cls(*(v if d is None else d(v) for d, v in zip(decoders, values, strict=False)))


def encode(value: Change) -> bytes:
    return orjson.dumps(to_list(value))


def decode(data: bytes | str) -> Change:
    return from_list(orjson.loads(data))


def encode_many(values: Sequence[Change]) -> bytes:
    return orjson.dumps([to_list(v) for v in values])


def decode_many(data: bytes | str) -> list[Change]:
    return [from_list(item) for item in orjson.loads(data)]
