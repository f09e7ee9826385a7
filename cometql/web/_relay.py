"""Long-poll across workers and machines: a request for another node's session goes to that node.

Workers share the browser port (SO_REUSEPORT), so each new TCP connection
lands on any of them, while a long-poll session lives in the worker that
created it. Long-poll session ids therefore start with the owner's node id,
and every worker also listens on a Unix socket named after its node id in
the data directory (which workers share). A worker that gets ``/lp/poll``,
``/lp/send`` or ``/lp/close`` for a session it does not hold passes the
request over that socket and returns the answer, as a reverse proxy would.

Across machines (``[ws] advertise`` set on every node of a cluster, so that a
plain round-robin balancer will do): the session id also carries the address
at which its node's browser port is reached, signed with a key derived from
the CometQL password that all nodes share (``cluster_sid``). A node relays a
request for a foreign session over TCP to that address, only if the
signature holds (no client can make a node connect anywhere else), and only
once (a relayed request carries ``RELAYED`` and is never relayed again over
TCP, so a wrong address cannot loop). Nothing crosses Redis; a session of a
node that is gone is simply unknown (404), as before.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import socket as stdsocket
from collections.abc import Awaitable, Callable
from pathlib import Path

import h11
import trio

from ._http import Request, Response

__all__ = ["RELAYED", "cluster_sid", "open_relay_listener", "relay", "relay_path", "relay_secret", "relay_tcp",
           "sid_address"]

_HOP_HEADERS = {b"connection", b"content-length", b"transfer-encoding", b"keep-alive", b"upgrade"}
_CONNECT_TIMEOUT = 5.0  # a node that does not accept within this is taken for gone (the client retries)
#: Header of a request one node relayed to another over TCP (never relayed over TCP again).
RELAYED = "x-cometql-relayed"


def relay_secret(password: str) -> bytes:
    """The key that signs the owner address in session ids; every node of a cluster derives the same."""
    return hashlib.sha256(b"cometql long-poll relay\0" + password.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _signature(secret: bytes, signed: str) -> str:
    return _b64(hmac.new(secret, signed.encode(), hashlib.sha256).digest()[:16])


def cluster_sid(node_id: str, token: str, address: str, secret: bytes) -> str:
    """``node.token.address.signature``: a session id any node of the cluster can route to its owner."""
    signed = f"{node_id}.{token}.{_b64(address.encode())}"
    return f"{signed}.{_signature(secret, signed)}"


def sid_address(sid: str, secret: bytes) -> tuple[str, int] | None:
    """The owner's (host, port) from a ``cluster_sid``; None if it is not one or its signature is wrong."""
    signed, _, signature = sid.rpartition(".")
    parts = signed.split(".")
    if len(parts) != 3 or not hmac.compare_digest(signature, _signature(secret, signed)):
        return None
    try:
        host, _, port = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4)).decode().rpartition(":")
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def relay_path(data_dir: str | Path, node_id: str) -> Path:
    return Path(data_dir) / f"lp-{node_id}.sock"


async def open_relay_listener(path: Path) -> trio.SocketListener:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a killed worker with the same id: ids are random, so only by chance
    sock = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    await sock.bind(str(path))
    sock.listen(256)
    return trio.SocketListener(sock)


async def relay(path: Path, request: Request, timeout: float) -> Response | None:
    """The owner's answer to ``request``; None when no worker of that id runs on this machine."""
    return await _relay(lambda: trio.open_unix_socket(str(path)), request, timeout, [])


async def relay_tcp(address: tuple[str, int], request: Request, timeout: float) -> Response | None:
    """The owner node's answer to ``request`` (marked ``RELAYED``); None when it cannot be reached."""
    host, port = address
    return await _relay(lambda: trio.open_tcp_stream(host, port), request, timeout, [(RELAYED.encode(), b"1")])


async def _relay(connect: Callable[[], Awaitable[trio.abc.Stream]], request: Request, timeout: float,
                 extra: list[tuple[bytes, bytes]]) -> Response | None:
    try:
        with trio.fail_after(min(timeout, _CONNECT_TIMEOUT)):
            stream = await connect()
    except (OSError, trio.TooSlowError):
        return None
    async with stream:
        conn = h11.Connection(h11.CLIENT)
        headers = [(k, v) for k, v in request.raw_headers if k.lower() not in _HOP_HEADERS]
        headers += [(b"content-length", str(len(request.body)).encode()), (b"connection", b"close"), *extra]
        data = conn.send(h11.Request(method=request.method, target=request.target, headers=headers))
        data += conn.send(h11.Data(data=request.body)) if request.body else b""
        data += conn.send(h11.EndOfMessage())
        with trio.fail_after(timeout):
            await stream.send_all(data)
            status, content_type, body = 502, "application/json", b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(bytes(await stream.receive_some(65536)))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    content_type = dict(event.headers).get(b"content-type", b"application/json").decode("latin-1")
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return Response(status, body, content_type)
