"""``Shared``: one copy of equal immutable values held by many sessions, freed with the last of them.

Idle sessions are many and mostly alike (the same channel list; on other nodes the same dev, user and
channels), so each holding its own equal tuple costs more than everything else they hold. A ``Shared``
hands out the one copy and counts its holders; the copy is dropped when the last one releases it.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Shared"]

T = TypeVar("T", bound=Hashable)


class Shared(Generic[T]):
    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[T, list[T | int]] = {}  # value -> [the one copy, holders]

    def __len__(self) -> int:
        return len(self._held)

    def values(self) -> list[T]:
        """Every value held, once."""
        return [entry[0] for entry in self._held.values()]  # type: ignore[misc]

    def hold(self, value: T) -> T:
        """The shared copy of ``value``, counted once more."""
        entry = self._held.get(value)
        if entry is None:
            entry = self._held[value] = [value, 0]
        entry[1] += 1  # type: ignore[operator]
        return entry[0]  # type: ignore[return-value]

    def release(self, value: T) -> None:
        """One holder of ``value`` lets it go (a value never held is ignored)."""
        entry = self._held.get(value)
        if entry is None:
            return
        entry[1] -= 1  # type: ignore[operator]
        if not entry[1]:
            del self._held[value]
