"""Small HTTP/1.1 plumbing on h11 for the browser port: read a request, send a response.

Kept apart from the routes so the handlers only deal in (status, headers,
body). ``quick_upgrade`` parses a plain WebSocket handshake without h11.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h11
import trio

__all__ = ["HttpError", "Request", "Response", "quick_upgrade", "read_request", "send_response"]

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    @property
    def is_websocket(self) -> bool:
        return self.headers.get("upgrade", "").lower() == "websocket"


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


async def _next_event(conn: h11.Connection, stream: trio.abc.ReceiveStream) -> h11.Event | type[h11.PAUSED]:
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Event):
            return event
        if event is h11.PAUSED:
            return h11.PAUSED
        data = await stream.receive_some(65536)
        conn.receive_data(bytes(data))  # no copy: a socket gives bytes (bytearray only in theory)


async def read_request(conn: h11.Connection, stream: trio.abc.ReceiveStream) -> Request | None:
    """The next request on a keep-alive connection, or None when the client is done."""
    event = await _next_event(conn, stream)
    if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
        return None
    if not isinstance(event, h11.Request):
        raise HttpError(400, "expected a request")
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
    request = Request(event.method.decode(), event.target.decode("latin-1"), headers, list(event.headers))
    if request.is_websocket:
        return request
    body = bytearray()
    while True:
        event = await _next_event(conn, stream)
        if isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                raise HttpError(413, f"request body over {MAX_BODY} bytes")
        elif isinstance(event, h11.EndOfMessage):
            break
        else:
            raise HttpError(400, "malformed request body")
    request.body = bytes(body)
    return request


def quick_upgrade(received: bytes | bytearray) -> Request | None:
    """A WebSocket upgrade request parsed without h11, or None to let h11 handle the bytes.

    Browsers open one connection per session and send just the handshake, so
    this covers nearly every connection of a busy server at a fraction of
    h11's cost; anything unusual (partial, pipelined, malformed) returns None.
    """
    data = bytes(received)  # no copy: a socket gives bytes (a trio stream may in theory give a bytearray)
    if len(data) > MAX_HEAD or not data.startswith(b"GET ") or not data.endswith(b"\r\n\r\n"):
        return None
    lines = data[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1":
        return None
    raw_headers: list[tuple[bytes, bytes]] = []
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            return None
        value = value.strip()
        raw_headers.append((name, value))
        headers[name.decode("latin-1").lower()] = value.decode("latin-1")
    if headers.get("upgrade", "").lower() != "websocket":
        return None
    return Request("GET", parts[1].decode("latin-1"), headers, raw_headers)


def cors_headers(origin: str | None) -> list[tuple[str, str]]:
    return [
        ("Access-Control-Allow-Origin", origin or "*"),
        ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
        ("Access-Control-Allow-Headers", "origin, content-type, accept"),
        ("Vary", "Origin"),
    ]


async def send_response(conn: h11.Connection, stream: trio.abc.SendStream, response: Response,
                        origin: str | None, allow_cors: bool = True) -> None:
    headers = [
        ("Content-Type", response.content_type),
        ("Content-Length", str(len(response.body))),
        ("Server", "CometQL"),
        ("Cache-Control", "no-store"),
        *(cors_headers(origin) if allow_cors else []),
        *response.headers,
    ]
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    data += conn.send(h11.Data(data=response.body)) if response.body else b""
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)
