"""Stream helpers shared by both fronts (the MySQL port and the browser port).

``PrefixedStream`` hands bytes already read from a socket back to the layer
that takes the socket over: the MySQL SSLRequest upgrade reads the client's
first TLS bytes in the same segment as the request, and the TLS layer must
see them first. Only trio here: nothing from the fronts, the hub or the store.
"""

from __future__ import annotations

import trio

__all__ = ["PrefixedStream"]


class PrefixedStream(trio.abc.HalfCloseableStream):
    """A stream that first yields ``prefix``, then reads from the wrapped stream."""

    def __init__(self, stream: trio.abc.HalfCloseableStream, prefix: bytes) -> None:
        self.stream = stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            await trio.lowlevel.checkpoint()
            return data
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()
