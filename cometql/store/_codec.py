"""Records and cluster events as compact JSON, for Redis.

Each value becomes ``[tag, field1, field2, ...]`` in field order: smaller and
faster than a dict per value, and fields are checked against the dataclass on
the way back (a node of another version fails loudly, not subtly).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ..hub import _cluster, _records

__all__ = ["decode", "decode_many", "encode", "encode_many"]

_CLASSES: tuple[type, ...] = (
    _records.SetAuth, _records.DeleteAuth, _records.SetUserData, _records.DeleteUserData,
    _records.AddRevokedToken, _records.DeleteRevokedToken, _records.SetPipeSettings, _records.DeletePipeSettings,
    _records.AppendHistory, _records.ClearHistory, _records.DeleteHistoryIds, _records.QueueMessage,
    _records.DeleteQueued, _records.SetLastSeen,
    _cluster.Published, _cluster.UserMessage, _cluster.SessionOpened, _cluster.SessionSubscribed,
    _cluster.SessionClosed, _cluster.Kick,
)
_ENTRIES = {"HistoryEntry": _records.HistoryEntry, "QueuedMessage": _records.QueuedMessage}


def _field_decoder(annotation: str) -> Callable[[Any], Any] | None:
    """How a JSON value turns back into a field of this annotation (None: as it is)."""
    entry = _ENTRIES.get(annotation)
    if entry is not None:
        return lambda v: entry(*v)
    if annotation.startswith("tuple"):
        return lambda v: None if v is None else tuple(v)
    return None


def _decoders(cls: type) -> tuple[type, int, tuple[Callable[[Any], Any] | None, ...]]:
    fields = dataclasses.fields(cls)
    return cls, len(fields), tuple(_field_decoder(str(f.type)) for f in fields)


_BY_TAG = {cls.__name__: _decoders(cls) for cls in _CLASSES}


def _encoder(cls: type) -> Callable[[Any], list[Any]]:
    """Built once per class: encoding runs for every published message."""
    name = cls.__name__
    getters = []
    for f in dataclasses.fields(cls):
        entry = _ENTRIES.get(str(f.type))
        if entry is None:
            getters.append(operator.attrgetter(f.name))
        else:  # a nested entry becomes a list of its fields
            inner = operator.attrgetter(*(g.name for g in dataclasses.fields(entry)))
            outer = operator.attrgetter(f.name)
            getters.append(lambda v, inner=inner, outer=outer: list(inner(outer(v))))
    return lambda value: [name, *(g(value) for g in getters)]


_ENCODE = {cls: _encoder(cls) for cls in _CLASSES}


def to_list(value: Any) -> list[Any]:
    return _ENCODE[type(value)](value)


def from_list(item: Sequence[Any]) -> Any:
    try:
        cls, count, decoders = _BY_TAG[item[0]]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"not a CometQL record or event: {item!r:.200}") from None
    values = item[1:]
    if len(values) != count:
        raise ValueError(f"{item[0]}: {len(values)} fields, expected {count}")
    return cls(*(v if d is None else d(v) for d, v in zip(decoders, values, strict=True)))


def encode(value: Any) -> bytes:
    return orjson.dumps(to_list(value))


def decode(data: bytes | str) -> Any:
    return from_list(orjson.loads(data))


def encode_many(values: Sequence[Any]) -> bytes:
    return orjson.dumps([to_list(v) for v in values])


def decode_many(data: bytes | str) -> list[Any]:
    return [from_list(item) for item in orjson.loads(data)]
