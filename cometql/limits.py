"""Abuse limits as small pure policies, applied by the transports at their edges.

Nothing here does I/O or reads a clock: callers pass ``now``. That keeps each
rule testable on its own and lets the WebSocket, TLS and long-poll paths share
one implementation.
"""

from __future__ import annotations

from collections import Counter
from enum import Enum

from .sql import Insert, Statement

__all__ = ["FailedLogins", "IpSessions", "RateLimiter", "Verdict", "insert_message_too_long", "web_message_size"]

#: Tables whose ``message`` column is a message to deliver.
_MESSAGE_TABLES = {"pipes_messages", "users_messages"}


class Verdict(Enum):
    OK = "ok"
    LIMITED = "limited"  # refuse this command, keep the session
    ABUSE = "abuse"  # refused again and again: close the session


class RateLimiter:
    """A token bucket per session: ``rate`` commands/s on average, ``burst`` at once.

    Each refusal adds a strike and each accepted command takes one away; at
    ``abuse_after`` strikes the client is plainly ignoring the error frames (a
    flooder still gets a command through now and then as the bucket refills,
    which must not wipe its record), and the session should be closed.
    A rate of 0 disables the limit.
    """

    __slots__ = ("rate", "burst", "abuse_after", "_tokens", "_last", "_refused")

    def __init__(self, rate: float, burst: int, *, abuse_after: int = 50) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.abuse_after = abuse_after
        self._tokens = float(self.burst)
        self._last: float | None = None
        self._refused = 0

    def take(self, now: float) -> Verdict:
        if self.rate <= 0:
            return Verdict.OK
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self._refused = max(0, self._refused - 1)
            return Verdict.OK
        self._refused += 1
        return Verdict.ABUSE if self._refused >= self.abuse_after else Verdict.LIMITED


class IpSessions:
    """Open browser sessions per client address; ``limit`` 0 means no limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def acquire(self, ip: str) -> bool:
        """Count a new session from ``ip``; False (and nothing counted) if it is over the limit."""
        if self.limit and self._open[ip] >= self.limit:
            return False
        self._open[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self._open[ip] -= 1
        if self._open[ip] <= 0:
            del self._open[ip]

    def count(self, ip: str) -> int:
        return self._open.get(ip, 0)


class FailedLogins:
    """Password guesses per client address: ``allowed`` failures, then one more per ``refill`` seconds.

    A token bucket per address that only failures drain, so a user who mistypes
    once is never slowed, and a guesser gets ``allowed`` tries and then one every
    ``refill`` seconds (10 and 6 s: 600 guesses an hour instead of thousands a
    second). At most ``max_tracked`` addresses are remembered (the oldest are
    forgotten first), so a spoofing flood cannot grow memory.
    """

    def __init__(self, allowed: int = 10, refill: float = 6.0, *, max_tracked: int = 10000) -> None:
        self.allowed = allowed
        self.refill = refill
        self.max_tracked = max_tracked
        self._buckets: dict[str, tuple[float, float]] = {}  # ip -> (tokens, when), in insertion order

    def _tokens(self, ip: str, now: float) -> float:
        tokens, when = self._buckets.get(ip, (float(self.allowed), now))
        return min(float(self.allowed), tokens + (now - when) / self.refill)

    def blocked(self, ip: str, now: float) -> float:
        """0 if ``ip`` may try a password now, else the seconds until it may."""
        tokens = self._tokens(ip, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) * self.refill

    def failed(self, ip: str, now: float) -> None:
        tokens = self._tokens(ip, now) - 1.0
        self._buckets.pop(ip, None)
        if tokens < self.allowed:
            self._buckets[ip] = (max(0.0, tokens), now)
            while len(self._buckets) > self.max_tracked:
                del self._buckets[next(iter(self._buckets))]


def web_message_size(command: str) -> int:
    """Bytes of the message a ``web_pipe2`` command carries (0 for other commands)."""
    if not command.startswith("web_pipe2"):
        return 0
    parts = command.split("\n", 4)
    return len(parts[4].encode()) if len(parts) == 5 else 0


def insert_message_too_long(stmt: Statement, limit: int) -> bool:
    """True if an INSERT into a message table carries a message over ``limit`` bytes."""
    if not isinstance(stmt, Insert) or stmt.table.name not in _MESSAGE_TABLES or "message" not in stmt.columns:
        return False
    col = stmt.columns.index("message")
    # a row of the wrong width is left for execute() to refuse with its own error
    return any(col < len(row) and isinstance(value := row[col], str) and len(value.encode()) > limit
               for row in stmt.rows)
