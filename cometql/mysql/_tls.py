"""The MySQL SSLRequest upgrade on trio streams.

mysql-mimic advertises CLIENT_SSL when its ``Connection`` gets an ``ssl``
context, and on an SSLRequest packet calls ``stream.start_tls``, which in
mysql-mimic assumes asyncio transports. Our connections run on trio through
``TrioReader``/``TrioWriter``, and its ``MysqlStream`` is compiled (it cannot be
subclassed), so during the connection phase only the connection's stream is a
thin proxy whose ``start_tls`` wraps the trio stream in a server-side
``trio.SSLStream`` and points the reader and writer at it. Bytes the client
sent right after the SSLRequest (its TLS ClientHello, often in the same
segment) are handed to the TLS layer first, so none are lost.
"""

from __future__ import annotations

import ssl
from typing import Any

import trio
from mysql_mimic.stream import ConnectionClosed, MysqlStream

from ..streams import PrefixedStream
from ._adapter import TrioReader, TrioWriter

__all__ = ["TlsUpgrade"]

HANDSHAKE_TIMEOUT = 10.0


class TlsUpgrade:
    """The trio side of one MySQL connection: its raw stream, reader, writer and (once upgraded) TLS stream."""

    def __init__(self, stream: trio.SocketStream, *, max_payload: int) -> None:
        self.raw = stream
        self.reader = TrioReader(stream, max_payload=max_payload)
        self.writer = TrioWriter(stream)
        # mysql-mimic annotates asyncio's StreamReader/StreamWriter; the trio adapters have the methods it calls
        self.mysql_stream = MysqlStream(self.reader, self.writer)  # type: ignore[arg-type]
        self.tls: trio.SSLStream[trio.abc.Stream] | None = None

    @property
    def stream(self) -> trio.abc.AsyncResource:
        """What to close at the end: the TLS stream if there is one (it sends close_notify)."""
        return self.tls or self.raw

    def handshake_proxy(self) -> _HandshakeStream:
        return _HandshakeStream(self)

    async def start_tls(self, ssl_context: ssl.SSLContext) -> None:
        unread = self.reader.switch(self.raw)
        transport: trio.abc.Stream = PrefixedStream(self.raw, unread) if unread else self.raw
        tls = trio.SSLStream(transport, ssl_context, server_side=True)
        try:
            with trio.fail_after(HANDSHAKE_TIMEOUT):
                await tls.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            raise ConnectionClosed(f"TLS handshake failed: {exc!r}") from None
        self.tls = tls
        self.reader.switch(tls)
        self.writer.switch(tls)


class _HandshakeStream:
    """mysql-mimic's stream with a trio ``start_tls``; used only until the login is done."""

    def __init__(self, upgrade: TlsUpgrade) -> None:
        self._upgrade = upgrade
        self._stream = upgrade.mysql_stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def start_tls(self, ssl_context: ssl.SSLContext) -> None:
        await self._upgrade.start_tls(ssl_context)
