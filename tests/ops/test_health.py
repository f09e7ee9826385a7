"""/health proves delivery: green only while the canary's probe goes round the store, the bus and the
delivery queue in time, red with the reason when it does not (issue: "health that proves delivery").

Each failure is real: another process holding SQLite's write lock, a stopped redis-server.
"""

from __future__ import annotations

import signal
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ..redis_server import RedisServer
from ..servers import ServerProcess
from ..web._wire import TIMEOUT
from ..web.conftest import wait_for_port

CANARY = {"COMETQL_CANARY_INTERVAL": "0.3", "COMETQL_CANARY_TIMEOUT": "1"}
#: Generous: a probe every 0.3 s, failing after 1 s; on a loaded machine state changes take a few seconds.
SETTLE = 30.0


def health(server: ServerProcess) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{server.ws_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def wait_health(server: ServerProcess, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + SETTLE
    while True:
        code, body = health(server)
        if code == status:
            return body
        assert time.monotonic() < deadline, f"/health stayed {code} {body}, wanted {status}"
        time.sleep(0.1)


def metric(server: ServerProcess, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.ws_port}/metrics", timeout=TIMEOUT) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path, env=CANARY).start()
    wait_for_port(srv.ws_port)
    yield srv
    if srv.alive:
        srv.stop()


def test_health_is_green_with_probes_and_metrics(sqlite_server: ServerProcess) -> None:
    body = wait_health(sqlite_server, 200)
    assert body["status"] == "ok"
    deadline = time.monotonic() + SETTLE
    while (body := health(sqlite_server)[1])["probes"] < 2 or body["canary_seconds"] is None:
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert body["failures"] == 0
    assert metric(sqlite_server, "cometql_canary_ok") == 1.0
    seconds = metric(sqlite_server, "cometql_canary_seconds")
    assert seconds is not None and seconds > 0


def test_health_turns_red_while_the_store_cannot_take_writes(sqlite_server: ServerProcess) -> None:
    wait_health(sqlite_server, 200)
    db = sqlite3.connect(sqlite_server.data_dir / "cometql.sqlite3", isolation_level=None, timeout=30)
    try:
        db.execute("BEGIN EXCLUSIVE")  # another process holds the write lock: no commit can be made
        body = wait_health(sqlite_server, 503)
        assert body["status"] == "failing" and body["problem"], body
        assert metric(sqlite_server, "cometql_canary_ok") == 0.0
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert wait_health(sqlite_server, 200)["status"] == "ok"


def test_health_turns_red_while_redis_is_stopped(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis.start()
    node = ServerProcess(tmp_path / "node", extra_args=("--store", redis.url), env=CANARY).start()
    try:
        wait_for_port(node.ws_port)
        wait_health(node, 200)
        assert redis.proc is not None
        redis.proc.send_signal(signal.SIGSTOP)  # a hung Redis: connections stay open, nothing answers
        try:
            body = wait_health(node, 503)
            assert body["problem"], body
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        wait_health(node, 200)
    finally:
        node.stop()
        redis.stop()


def test_health_without_canary_says_it_is_off(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, env={"COMETQL_CANARY_INTERVAL": "0"}).start()
    try:
        wait_for_port(srv.ws_port)
        code, body = health(srv)
        assert (code, body["status"], body["canary"]) == (200, "ok", "off")
        assert metric(srv, "cometql_canary_ok") is None
    finally:
        srv.stop()
