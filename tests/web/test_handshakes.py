"""The browser port's handshakes at their edges (the plain port's taskless path, ``web/_handshake.py``).

A plain upgrade in one segment is answered without a task; everything else is
handed to the task path with the bytes already read. Each test checks what a
client sees (the 101 and serverInfo, an HTTP error, a close) and that the
server keeps serving (a ``bystander`` session still gets a publish). No
timing is asserted: the waits are hang guards.
"""

from __future__ import annotations

import json

import trio

from ..servers import ServerProcess
from ._wire import TIMEOUT, RawWebSocket, assert_frame, bystander, client_frame, eventually, mysql_rows, new_uuid

#: Enough for a burst of connections on a loaded 2-core machine: a hang guard, not a speed requirement.
BURST_GUARD = 120.0


def _request(path: str, extra: bytes = b"") -> bytes:
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + b"\r\n")


def _path(dev: int, caps: str = "ack,offset,hb") -> str:
    return f"/ws/sesion=&myid=0&devid={dev}&v=4.08&uuid={new_uuid()}&api=js&caps={caps}"


async def _connect(port: int) -> RawWebSocket:
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, 1)
    await sock.connect(("127.0.0.1", port))
    return RawWebSocket(trio.SocketStream(sock))


async def _hello(raw: RawWebSocket) -> dict[str, object]:
    """Read the 101 and the serverInfo frame; return serverInfo."""
    with trio.fail_after(TIMEOUT):
        head = await raw._read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    opcode, payload = await raw.recv_frame()
    assert opcode == 0x1, (opcode, payload)
    hello = json.loads(payload)
    assert hello["event"] == "serverInfo", hello
    return hello  # type: ignore[no-any-return]


async def _http_status(raw: RawWebSocket) -> int | None:
    """The status of the server's reply, or None if it closed without one."""
    with trio.fail_after(TIMEOUT):
        try:
            head = await raw._read_until(b"\r\n")
        except (EOFError, trio.BrokenResourceError):
            return None
    return int(head.split()[1])


def _publish(server: ServerProcess, dev: int, channel: str, message: str) -> None:
    mysql_rows(server, dev, f"INSERT INTO pipes_messages (name, event, message) VALUES ('{channel}', 'e', '{message}')")


async def _subscribed(server: ServerProcess, dev: int, channel: str, n: int) -> None:
    def check() -> bool:
        return mysql_rows(server, dev, f"SELECT * FROM pipes WHERE name = '{channel}'") == [(channel, str(n))]
    await eventually(check, BURST_GUARD)


async def test_a_request_split_over_segments_is_upgraded(ws_server: ServerProcess, dev: int) -> None:
    request = _request(_path(dev))
    raw = await _connect(ws_server.ws_port)
    for part in (request[:5], request[5:60], request[60:-2], request[-2:]):  # four segments, one at a time
        await raw.send_raw(part)
        await trio.sleep(0.05)
    hello = await _hello(raw)
    assert hello["caps"] == ["ack", "hb", "offset"] and "heartbeat" in hello
    await raw.send_raw(client_frame(b"subscription\nweb_split"))
    await _subscribed(ws_server, dev, "web_split", 1)
    _publish(ws_server, dev, "web_split", "whole")
    opcode, payload = await raw.recv_frame()
    assert_frame(payload.decode(), '{"data":"whole","event":"e","message_send_time":{T},"pipe":"web_split"}')
    await raw.aclose()


async def test_garbage_gets_a_400_and_the_server_stays(ws_server: ServerProcess, dev: int) -> None:
    async with bystander(ws_server, dev) as still_served:
        for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200),  # a TLS hello on a plain port
                        b"GET /ws/ HTTP/1.1\r\nno colon here\r\n\r\n",
                        b"HELLO\r\n\r\n"):
            raw = await _connect(ws_server.ws_port)
            await raw.send_raw(garbage)
            assert await _http_status(raw) in (400, None)
            await raw.aclose()
        await still_served()


async def test_oversized_headers_are_refused_and_the_server_stays(ws_server: ServerProcess, dev: int) -> None:
    async with bystander(ws_server, dev) as still_served:
        raw = await _connect(ws_server.ws_port)
        # 100 KB of headers: more than one read takes, so the head is still incomplete past its bound
        big = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 1000) for i in range(100))
        try:
            await raw.send_raw(_request(_path(dev), big))
        except trio.BrokenResourceError:  # refused before all of it was sent
            pass
        status = await _http_status(raw)
        assert status is None or status >= 400, status
        await raw.aclose()
        await still_served()


async def test_clients_leaving_mid_handshake_leave_nothing_behind(ws_server: ServerProcess, dev: int) -> None:
    async with bystander(ws_server, dev) as still_served:
        request = _request(_path(dev))
        for cut in (0, 10, len(request) - 3):  # nothing sent, a few bytes, all but the last blank line
            raw = await _connect(ws_server.ws_port)
            if cut:
                await raw.send_raw(request[:cut])
            await raw.aclose()
        raw = await _connect(ws_server.ws_port)  # a full request, gone before the reply is read
        await raw.send_raw(_request(_path(dev)))
        await raw.aclose()
        await still_served()
        # the port still upgrades, and the sessions above are not counted anywhere
        raw = await _connect(ws_server.ws_port)
        await raw.send_raw(_request(_path(dev)))
        await _hello(raw)
        await raw.send_raw(client_frame(b"subscription\nweb_mid"))
        await _subscribed(ws_server, dev, "web_mid", 1)
        await raw.aclose()
        await _subscribed(ws_server, dev, "web_mid", 0)


async def test_a_burst_of_1000_connects_all_open_subscribe_and_leave(ws_server: ServerProcess, dev: int) -> None:
    n = 1000
    channel = "web_burst"
    sessions: list[RawWebSocket] = []

    async def one(i: int) -> None:
        raw = await _connect(ws_server.ws_port)
        await raw.send_raw(_request(_path(dev, "ack,offset,hb" if i % 2 else "")))
        hello = await _hello(raw)
        assert ("caps" in hello) == bool(i % 2)
        await raw.send_raw(client_frame(b"subscription\n" + channel.encode()))
        sessions.append(raw)

    with trio.fail_after(BURST_GUARD):
        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(one, i)
    await _subscribed(ws_server, dev, channel, n)
    _publish(ws_server, dev, channel, "all")
    with trio.fail_after(BURST_GUARD):
        for raw in sessions:  # exactly the publish, once each (nothing else is sent in between)
            opcode, payload = await raw.recv_frame(BURST_GUARD)
            assert opcode == 0x1 and b'"data":"all"' in payload, payload
    for raw in sessions:
        await raw.aclose()
    await _subscribed(ws_server, dev, channel, 0)
