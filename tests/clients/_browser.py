"""A stand-in for a browser tab: a WebSocket subscriber on the server's browser port.

The examples publish and read online statistics; with a real subscriber connected
the tests can check that a publish actually reaches a browser and that the
statistics count it. Speaks CppComet's URL and `subscription` command
(browser-wire.md) through websocket-client (installed with selenium, a test
dependency). Every wait is bounded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
import websocket

from ..servers import ServerProcess

UUID = "cometqlClientTestsBrowser0000000"  # 32 chars of [A-Za-z0-9_-], as the JS library sends
TIMEOUT = 5.0


class Browser:
    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws

    def frame(self, pipe: str) -> dict[str, Any]:
        """The next JSON frame on ``pipe`` (others, such as serverInfo, are skipped)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            self.ws.settimeout(max(deadline - time.monotonic(), 0.01))
            data = json.loads(self.ws.recv())
            if data.get("pipe") == pipe:
                return data
        raise AssertionError(f"no frame on {pipe!r} within {TIMEOUT}s")


def _wait_subscribed(server: ServerProcess, dev: int, channel: str) -> None:
    """Subscribing is not acknowledged, so poll the pipes table until the server counts us."""
    conn = server.connect(dev)
    try:
        with conn.cursor() as cur:
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                cur.execute("SELECT users FROM pipes WHERE name = %s", (channel,))
                if int(cur.fetchone()[0]) > 0:
                    return
                time.sleep(0.02)
    finally:
        conn.close()
    raise AssertionError(f"subscription to {channel!r} not counted within {TIMEOUT}s")


@contextmanager
def browser(server: ServerProcess, dev: int, channel: str, *, user_id: int = 0, key: str = "") -> Iterator[Browser]:
    """A connected tab subscribed to ``channel``; logged in as ``user_id`` when ``key`` is its users_auth hash."""
    url = (f"ws://{server.host}:{server.ws_port}/ws/sesion={key}&myid={user_id}&devid={dev}"
           f"&v=4.08&uuid={UUID}&api=js")
    ws = websocket.create_connection(url, timeout=TIMEOUT)
    try:
        ws.send(f"subscription\n{channel}")
        _wait_subscribed(server, dev, channel)
        yield Browser(ws)
    finally:
        ws.close()


def log_in_user(server: ServerProcess, dev: int, user_id: int) -> str:
    """Give ``user_id`` a users_auth hash, as a backend does before the page opens; returns the hash."""
    key = f"key{user_id}"
    conn: pymysql.Connection = server.connect(dev)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO users_auth (id, hash) VALUES (%s, %s)", (user_id, key))
    finally:
        conn.close()
    return key
