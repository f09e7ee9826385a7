"""The MySQL writer (cometql/mysql/_adapter.py): an answer leaves before the deliveries it decided."""

from __future__ import annotations

import socket

import trio

from cometql.mysql._adapter import TrioWriter


async def test_the_answer_is_on_the_wire_when_after_send_runs() -> None:
    a, b = trio.socket.socketpair()
    peer = b._sock  # type: ignore[attr-defined]  # read without trio: the check runs inside a sync callback
    seen: list[bytes] = []

    def after_send() -> None:  # the engine's answered(): the OK must be in the peer's buffer already
        seen.append(peer.recv(100, socket.MSG_DONTWAIT))

    writer = TrioWriter(trio.SocketStream(a), after_send)
    writer.write(b"\x07\x00\x00\x01")
    writer.write(b"\x00\x01\x00\x02\x00\x00\x00")
    await writer.drain()
    assert seen == [b"\x07\x00\x00\x01\x00\x01\x00\x02\x00\x00\x00"]
    await writer.drain()  # nothing written: no hand-out either
    assert len(seen) == 1
    a.close()
    b.close()


async def test_an_answer_too_large_for_one_send_goes_through_trio_then_hands_out() -> None:
    a, b = trio.socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    calls: list[int] = []
    big = b"x" * (1 << 20)
    writer = TrioWriter(trio.SocketStream(a), lambda: calls.append(1))
    received = bytearray()

    async def read_all() -> None:
        while len(received) < len(big):
            received.extend(await b.recv(1 << 16))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        writer.write(big)
        await writer.drain()
    assert bytes(received) == big and calls == [1]
    a.close()
    b.close()
