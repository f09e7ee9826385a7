"""A Redis connection on trio: RESP encoding here, parsing by hiredis.

hiredis (maintained by the Redis project) is a sans-IO parser: bytes in,
replies out. That lets the Redis store run on the server's own trio loop with
no second event loop, no thread and no lock: each task that talks to Redis
owns its connection, and a batch of commands goes out in one write
(pipelining) with the replies read back in order.

Used by the Redis store (loading) and by the cluster (bus writer, follower).
Connection failures are raised as ``RedisDown``; callers turn them into
``StoreError`` where a statement is waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import hiredis
import trio

from ..redisurl import RedisAddress

__all__ = ["Arg", "Command", "RedisConnection", "RedisDown", "Reply", "ReplyError", "encode_command"]

ReplyError = hiredis.ReplyError
Arg: TypeAlias = str | bytes | int | float
#: One command: its name and arguments.
Command: TypeAlias = list[Arg]
#: What hiredis parsed: bytes, int, None, a list of replies, or a ``ReplyError`` (untyped by nature).
Reply: TypeAlias = Any


class RedisDown(ConnectionError):
    """The connection to Redis is gone (refused, reset, closed)."""


def _arg(value: Arg) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return str(value).encode()


def encode_command(args: Sequence[Arg]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _arg(a)
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RedisConnection:
    """One TCP connection. Not shared between tasks: callers own it for its lifetime."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._reader = hiredis.Reader()

    @classmethod
    async def open(cls, address: RedisAddress, *, name: str = "cometql") -> RedisConnection:
        try:
            stream = await trio.open_tcp_stream(address.host, address.port)
        except OSError as exc:
            raise RedisDown(f"cannot connect to {address}: {exc}") from exc
        conn = cls(stream)
        setup: list[list[Arg]] = []
        if address.password is not None:
            setup.append(["AUTH", address.username or "default", address.password])
        if address.db:
            setup.append(["SELECT", address.db])
        setup.append(["CLIENT", "SETNAME", name])
        try:
            replies = await conn.pipeline(setup)
        except BaseException:
            conn.abort()
            raise
        for reply in replies:
            if isinstance(reply, ReplyError):
                conn.abort()
                raise RedisDown(f"{address} refused the connection set-up: {reply}")
        return conn

    async def call(self, *args: Arg) -> Reply:
        """One command; a Redis error reply is raised as ``ReplyError``."""
        (reply,) = await self.pipeline([args])
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[Reply]:
        """Send every command in one write, return every reply (errors as values)."""
        try:
            await self._stream.send_all(b"".join(encode_command(c) for c in commands))
            replies: list[Reply] = []
            while len(replies) < len(commands):
                reply = self._reader.gets()
                if reply is False:
                    data = await self._stream.receive_some(262144)
                    if not data:
                        raise RedisDown("Redis closed the connection")
                    self._reader.feed(data)
                    continue
                replies.append(reply)
            return replies
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.abort()
            raise RedisDown(f"lost the connection to Redis: {exc}") from exc
        except BaseException:  # cancelled half-way: the replies no longer match the commands
            self.abort()
            raise

    def abort(self) -> None:
        """Drop a broken connection at once (nothing to flush, nothing to wait for); later use fails."""
        self._stream.socket.close()

    async def aclose(self) -> None:
        await self._stream.aclose()
