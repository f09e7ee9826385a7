"""Long-poll across ``--workers``: a request for another worker's session goes to that worker.

Workers share the browser port (SO_REUSEPORT), so each new TCP connection
lands on any of them, while a long-poll session lives in the worker that
created it. Long-poll session ids therefore start with the owner's node id,
and every worker also listens on a Unix socket named after its node id in
the data directory (which workers share). A worker that gets ``/lp/poll``,
``/lp/send`` or ``/lp/close`` for a session it does not hold passes the
request over that socket and returns the answer, as a reverse proxy would.
Nothing crosses Redis; a session of a worker that is gone is simply unknown
(404), as before.
"""

from __future__ import annotations

import contextlib
import socket as stdsocket
from pathlib import Path

import h11
import trio

from ._http import Request, Response

__all__ = ["open_relay_listener", "relay", "relay_path"]

_HOP_HEADERS = {b"connection", b"content-length", b"transfer-encoding", b"keep-alive", b"upgrade"}


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
    try:
        stream = await trio.open_unix_socket(str(path))
    except OSError:
        return None
    async with stream:
        conn = h11.Connection(h11.CLIENT)
        headers = [(k, v) for k, v in request.raw_headers if k.lower() not in _HOP_HEADERS]
        headers += [(b"content-length", str(len(request.body)).encode()), (b"connection", b"close")]
        data = conn.send(h11.Request(method=request.method, target=request.target, headers=headers))
        data += conn.send(h11.Data(data=request.body)) if request.body else b""
        data += conn.send(h11.EndOfMessage())
        with trio.fail_after(timeout):
            await stream.send_all(data)
            status, content_type, body = 502, "application/json", b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    content_type = dict(event.headers).get(b"content-type", b"application/json").decode("latin-1")
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return Response(status, body, content_type)
