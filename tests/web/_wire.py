"""Shared helpers for the browser-face tests: clients that speak the wire byte by byte.

Three kinds of client, all bounded in time (every read has a timeout, so a
server that hangs fails the test instead of blocking the suite):

- ``open_browser``: a trio-websocket client on CppComet's URL, already past
  ``serverInfo``, with ``send``/``recv``/``silence`` in the browser's terms;
- ``RawWebSocket``: a hand-made RFC 6455 client over a trio socket, for input
  no library will produce (invalid UTF-8, fragments, a reader that never reads);
- ``http``: one plain HTTP request through ``http.client`` in a worker thread.

``assert_frame`` compares a received frame with a literal template in which
``{T}`` stands for a unix time: the frame must match byte for byte elsewhere.
"""

from __future__ import annotations

import base64
import http.client
import inspect
import os
import re
import struct
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jwt
import trio
from jwt.warnings import InsecureKeyLengthWarning
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from cometql._version import __version__

from ..servers import PASSWORD, ServerProcess

#: A hang guard for waits on the server (frames, closes, state changes), not a speed requirement: a frame
#: that crosses two nodes and Redis on a 2-core CI machine running other work can take seconds.
TIMEOUT = 15.0
#: trio-websocket's own handshake timeouts (a close handshake with a black-holed server waits this long).
HANDSHAKE_TIMEOUT = 5.0
SERVER_NAME = f"CometQL {__version__}"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
T = TypeVar("T")


# --------------------------------------------------------------------- frames


def frame_pattern(template: str) -> re.Pattern[str]:
    """A regex matching ``template`` literally, with each ``{T}`` standing for an integer."""
    return re.compile(re.escape(template).replace(re.escape("{T}"), r"(-?\d+)"))


def assert_frame(got: str, template: str, *, since: int | None = None) -> list[int]:
    """Assert ``got`` equals ``template`` byte for byte except the ``{T}`` times; return those times.

    With ``since``, every time must lie between ``since`` and now (+1 s for rounding).
    """
    match = frame_pattern(template).fullmatch(got)
    assert match is not None, f"frame differs from the template:\n got: {got}\nwant: {template}"
    times = [int(t) for t in match.groups()]
    if since is not None:
        for t in times:
            assert since <= t <= int(time.time()) + 1, f"time {t} not in [{since}, now] in {got}"
    return times


def make_jwt(dev: int, user_id: Any, *, ttl: int = 600, password: str = PASSWORD) -> str:
    """A CppComet browser JWT: HS256 with secret password + decimal dev_id (short keys are the rule here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode({"user_id": user_id, "exp": int(time.time()) + ttl}, f"{password}{dev}", algorithm="HS256")


def ws_url(server: ServerProcess, dev: int, *, user_id: int | str = 0, key: str = "", uuid: str = "",
           prefix: str = "/ws/", query: bool = False, caps: str = "", port: int | None = None) -> str:
    """The URL CppComet's client builds (no ``?`` and no URL-encoding unless ``query``); ``caps``
    adds the capabilities parameter our library sends; ``port`` replaces the server's (a proxy's)."""
    tail = f"sesion={key}&myid={user_id}&devid={dev}&v=4.08&uuid={uuid}&api=js" + (f"&caps={caps}" if caps else "")
    return f"ws://127.0.0.1:{port or server.ws_port}{prefix}{'?' if query else ''}{tail}"


# ------------------------------------------------------------ browser client


@dataclass
class Browser:
    """One WebSocket session past its handshake: ``hello`` is the serverInfo frame."""

    ws: WebSocketConnection
    hello: str
    uuid: str

    async def send(self, *lines: str) -> None:
        """One command: the lines joined by ``\\n``, as the stock client sends them."""
        await self.ws.send_message("\n".join(lines))

    async def recv(self, timeout: float = TIMEOUT) -> str:
        with trio.fail_after(timeout):
            message = await self.ws.get_message()
        assert isinstance(message, str), f"binary frame from the server: {message!r}"
        return message

    async def recv_many(self, count: int, timeout: float = TIMEOUT) -> list[str]:
        with trio.fail_after(timeout):
            return [await self.recv() for _ in range(count)]

    async def silence(self, seconds: float = 0.3) -> None:
        """Assert that nothing arrives for ``seconds``."""
        with trio.move_on_after(seconds):
            message = await self.ws.get_message()
            raise AssertionError(f"unexpected frame: {message!r}")

    async def closed(self, timeout: float = TIMEOUT) -> int | None:
        """Wait until the server closes the session; return the close code."""
        with trio.fail_after(timeout):
            try:
                while True:
                    await self.ws.get_message()
            except ConnectionClosed as exc:
                return exc.reason.code
        raise AssertionError("unreachable")  # pragma: no cover

    async def subscribe(self, *channels: str) -> None:
        """Subscribe and wait until the server has processed it (a pipe_count round trip)."""
        await self.send("subscription", *channels)
        await self.sync()

    async def sync(self) -> None:
        """A round trip: every earlier command of this session has been applied."""
        await self.send("pipe_count", "web_sync", "sync", "")
        frame = await self.recv()
        assert '"marker":"sync"' in frame, frame


_uuids = iter(range(10**9))


def new_uuid() -> str:
    """A 32-char uuid from the stock client's alphabet, unique in this test run."""
    return f"u{os.getpid():08d}x{next(_uuids):022d}"


@asynccontextmanager
async def open_browser(server: ServerProcess, dev: int, *, user_id: int = 0, key: str = "", uuid: str | None = None,
                       headers: Sequence[tuple[str, str]] = (), prefix: str = "/ws/",
                       query: bool = False, caps: str = "", port: int | None = None) -> AsyncIterator[Browser]:
    """Open a session like the stock client (like our library with ``caps``) and read its serverInfo frame.

    ``port``: connect there instead of the server's browser port (a ``FaultProxy`` in front of it).
    """
    uuid = new_uuid() if uuid is None else uuid
    url = ws_url(server, dev, user_id=user_id, key=key, uuid=uuid, prefix=prefix, query=query, caps=caps, port=port)
    extra = [(k.encode(), v.encode()) for k, v in headers]
    async with open_websocket_url(url, extra_headers=extra, connect_timeout=HANDSHAKE_TIMEOUT,
                                  disconnect_timeout=HANDSHAKE_TIMEOUT) as ws:
        browser = Browser(ws, "", uuid)
        browser.hello = await browser.recv()
        yield browser


def mysql_rows(server: ServerProcess, dev: int, sql: str) -> list[tuple[str, ...]]:
    """Run one statement on a fresh CometQL connection (short: fine from an async test)."""
    conn = server.connect(dev)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


async def eventually(check: Callable[[], T], timeout: float = TIMEOUT, *, what: str | None = None) -> T:
    """Call ``check`` until it returns a truthy value, and return that value (state changes are asynchronous).

    "Not yet" is a falsy return (False, None, [], 0, "") or an AssertionError, so both a predicate
    (``lambda: rows() == []``) and an assertion helper work -- but an assertion helper must end with
    ``return True`` (or return the truthy value it checked). Why a falsy return cannot mean "done": a check
    that returns nothing, or a predicate written ``cond or None``, used to pass at once and check nothing;
    now it waits and fails loudly instead. ``timeout`` is a hang guard, not a speed requirement; when it
    runs out this fails with an AssertionError naming ``what`` (by default the check's source) and the
    last falsy value or assertion message.
    """
    last: object = "never called"
    with trio.move_on_after(timeout):
        while True:
            try:
                value = check()
            except AssertionError as exc:
                last = exc
            else:
                if value:
                    return value
                last = f"returned {value!r}"
            await trio.sleep(0.05)
    cause = last if isinstance(last, AssertionError) else None
    why = f"AssertionError: {last}" if cause else last
    raise AssertionError(f"not within {timeout} s: {what or _describe(check)} ({why})") from cause


def _describe(check: Callable[[], object]) -> str:
    """The check's name, or a lambda's source line(s): what ``eventually`` was waiting for."""
    name = getattr(check, "__qualname__", repr(check))
    if not name.endswith("<lambda>"):
        return name
    try:
        return " ".join(line.strip() for line in inspect.getsource(check).splitlines())
    except (OSError, TypeError):
        return name


@asynccontextmanager
async def bystander(server: ServerProcess, dev: int) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A session opened before some abuse; calling the yielded check proves it still gets publishes."""
    async with open_browser(server, dev) as watcher:
        await watcher.subscribe("web_bystander")

        async def still_served() -> None:
            mysql_rows(server, dev,
                       "INSERT INTO pipes_messages (name, event, message) VALUES ('web_bystander', 'e', 'ok')")
            frame = await watcher.recv()
            assert_frame(frame, '{"data":"ok","event":"e","message_send_time":{T},"pipe":"web_bystander"}')

        yield still_served


# ------------------------------------------------------------ raw websocket


def client_frame(payload: bytes, *, opcode: int = 0x1, fin: bool = True, mask: bytes | None = None) -> bytes:
    """One masked client frame, built by hand (any opcode, FIN bit and payload)."""
    mask = os.urandom(4) if mask is None else mask
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@dataclass
class RawWebSocket:
    """A WebSocket client with no library in between: it sends exactly the bytes it is given."""

    stream: trio.SocketStream
    buffer: bytearray = field(default_factory=bytearray)

    @classmethod
    async def connect(cls, port: int, path: str, *, rcvbuf: int | None = None) -> RawWebSocket:
        with trio.fail_after(TIMEOUT):
            sock = trio.socket.socket()
            if rcvbuf is not None:
                sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, rcvbuf)
            await sock.connect(("127.0.0.1", port))
            raw = cls(trio.SocketStream(sock))
            key = base64.b64encode(os.urandom(16))
            await raw.stream.send_all(
                b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            head = await raw._read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return raw

    async def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError(bytes(self.buffer))
            self.buffer += data
        end = self.buffer.index(marker) + len(marker)
        head = bytes(self.buffer[:end])
        del self.buffer[:end]
        return head

    async def _read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError(bytes(self.buffer))
            self.buffer += data
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def recv_frame(self, timeout: float = TIMEOUT) -> tuple[int, bytes]:
        """The next server frame as (opcode, payload); (-1, b"") on EOF."""
        with trio.fail_after(timeout):
            try:
                b0, b1 = await self._read_exactly(2)
                n = b1 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await self._read_exactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await self._read_exactly(8))
                assert not b1 & 0x80, "server frames must not be masked"
                return b0 & 0x0F, await self._read_exactly(n)
            except (EOFError, trio.BrokenResourceError):
                return -1, b""

    async def close_code(self, timeout: float = TIMEOUT) -> int | None:
        """Skip data frames until a close frame (its code) or EOF (None)."""
        while True:
            opcode, payload = await self.recv_frame(timeout)
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            if opcode == -1:
                return None

    async def aclose(self) -> None:
        await self.stream.aclose()


# ----------------------------------------------------------------------- http


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def _http_sync(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str],
               timeout: float) -> HttpReply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return HttpReply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


async def http_request(port: int, method: str, path: str, body: bytes | None = None, *,
               headers: dict[str, str] | None = None, timeout: float = TIMEOUT) -> HttpReply:
    """One HTTP request to the browser port, run in a thread so the trio loop keeps going."""
    return await trio.to_thread.run_sync(_http_sync, port, method, path, body, headers or {}, timeout,
                                         abandon_on_cancel=True)
