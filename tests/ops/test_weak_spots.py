"""The weaker spots of issue 14 (item 6), each closed: empty hashes, user_data readers, /admin guesses,
/metrics auth, a damaged SQLite file."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pymysql
import pytest

from cometql.hub._auth import hash_matches
from cometql.limits import FailedLogins

from ..servers import PASSWORD, ServerProcess
from ..web._wire import open_browser
from ..web.conftest import wait_for_port

Query = Callable[[str], list[tuple[str, ...]]]


# ------------------------------------------------------------------ empty users_auth hash


def test_an_empty_hash_is_refused_with_a_clear_error(query: Query) -> None:
    for value in ("", "   "):
        with pytest.raises(pymysql.err.MySQLError) as info:
            query(f"INSERT INTO users_auth (id, hash) VALUES (5, '{value}')")
        code, message = info.value.args
        assert code == 17 and "empty" in message, info.value.args
    assert query("SELECT * FROM users_auth WHERE id = 5") == []


def test_an_empty_stored_hash_never_matches() -> None:
    """A file written by an older version may hold one: an empty key must not log in with it."""
    assert not hash_matches("", "")
    assert hash_matches("abc", "abc") and not hash_matches(None, "") and not hash_matches("abc", "")


# ------------------------------------------------------------------ who may read users_data


@pytest.fixture(scope="module")
def self_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("user-data-self"),
                        env={"COMETQL_USER_DATA_ACCESS": "self", "COMETQL_METRICS_PASSWORD": "scrape-me"}).start()
    wait_for_port(srv.ws_port)
    yield srv
    srv.stop()


def _user_data_answer(frame: str) -> dict[str, object]:
    obj = orjson.loads(frame)
    assert isinstance(obj, dict)
    return obj


async def test_user_data_is_readable_by_anyone_by_default_as_in_cppcomet(server: ServerProcess, dev: int,
                                                                         query: Query) -> None:
    query("INSERT INTO users_data (id, data) VALUES (31, 'public profile')")
    wait_for_port(server.ws_port)
    async with open_browser(server, dev) as anonymous:
        await anonymous.send("user_data", "m1", "31")
        answer = _user_data_answer(await anonymous.recv())
        assert answer["data"] == {"user_data": "public profile", "user_id": 31}


async def test_user_data_access_self_lets_a_user_read_only_their_own(self_only_server: ServerProcess) -> None:
    dev = 3
    conn = self_only_server.connect(dev)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users_auth (id, hash) VALUES (41, 'key41')")
        cur.execute("INSERT INTO users_data (id, data) VALUES (41, 'mine'), (42, 'theirs')")
    conn.close()
    async with open_browser(self_only_server, dev) as anonymous:
        await anonymous.send("user_data", "m1", "41")
        answer = _user_data_answer(await anonymous.recv())
        assert answer["event"] == "error" and "user_data_access = self" in str(answer["data"]), answer
    async with open_browser(self_only_server, dev, user_id=41, key="key41") as user:
        await user.send("user_data", "m2", "41")
        assert _user_data_answer(await user.recv())["data"] == {"user_data": "mine", "user_id": 41}
        await user.send("user_data", "m3", "42")
        refused = _user_data_answer(await user.recv())
        assert refused["event"] == "error" and "theirs" not in str(refused), refused


# ------------------------------------------------------------------ /admin guesses and /metrics auth


def _get(server: ServerProcess, path: str, password: str | None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.ws_port}{path}")
    if password is not None:
        token = base64.b64encode(f"admin:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def test_metrics_password_guards_metrics(self_only_server: ServerProcess) -> None:
    assert _get(self_only_server, "/metrics", None)[0] == 401
    assert _get(self_only_server, "/metrics", "wrong")[0] == 401
    assert _get(self_only_server, "/metrics", "scrape-me")[0] == 200


def test_admin_password_guesses_are_limited_per_address(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path).start()
    try:
        wait_for_port(srv.ws_port)
        assert _get(srv, "/admin/stats", PASSWORD)[0] == 200
        codes = [_get(srv, "/admin/stats", f"guess{i}")[0] for i in range(10)]
        assert codes == [401] * 10
        status, headers = _get(srv, "/admin/stats", "guess10")
        assert status == 429 and int(headers["Retry-After"]) >= 1
        # blocked means blocked: the right password waits too (the guesser may have found it)
        assert _get(srv, "/admin/stats", PASSWORD)[0] == 429
        assert _get(srv, "/metrics", None)[0] == 200  # /metrics without a metrics password stays open
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.ws_port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        assert 'cometql_limit_hits_total{limit="login_attempts"} 2.0' in text
    finally:
        srv.stop()


def test_failed_logins_refill_over_time() -> None:
    guesses = FailedLogins(allowed=3, refill=6.0, max_tracked=2)
    for _ in range(3):
        assert guesses.blocked("a", 100.0) == 0
        guesses.failed("a", 100.0)
    assert guesses.blocked("a", 100.0) == pytest.approx(6.0)
    assert guesses.blocked("a", 103.0) == pytest.approx(3.0)
    assert guesses.blocked("a", 106.0) == 0  # one more try every 6 s
    assert guesses.blocked("b", 100.0) == 0  # other addresses are not affected
    guesses.failed("b", 100.0)
    guesses.failed("c", 100.0)
    assert guesses.blocked("a", 100.0) == 0  # only max_tracked addresses are remembered: "a" was the oldest


# ------------------------------------------------------------------ a damaged SQLite store


def test_a_damaged_store_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "cometql.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users_data (dev INTEGER, uid INTEGER, data TEXT)")
    db.executemany("INSERT INTO users_data VALUES (0, ?, ?)", [(i, "x" * 3000) for i in range(100)])
    db.commit()
    db.close()
    size = path.stat().st_size
    with path.open("r+b") as f:  # damage the middle of the file, as a bad disk block would
        f.seek(size // 2)
        f.write(b"\xff" * 8192)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETQL_")}
    proc = subprocess.run(
        [sys.executable, "-m", "cometql.cli", "serve", "--data-dir", str(tmp_path), "--password", PASSWORD,
         "--mysql-port", "0", "--ws-port", "0", "--log-level", "warning"],
        capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "is damaged" in lines[0] and str(path) in lines[0] and ".recover" in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
