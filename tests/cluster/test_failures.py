"""Things going wrong: a node killed with -9 under load, Redis restarting, and workers.

Each test has its own redis-server, so restarting it disturbs nobody else.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import trio

from ..redis_server import RedisServer
from ..servers import ServerProcess, free_port
from ..web._wire import eventually, mysql_rows, open_browser
from .conftest import NODE_TIMEOUT, start_node

pytestmark = pytest.mark.trio

DEV = 77


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.dir.mkdir()
    server.start()
    yield server
    server.stop()


Pair = tuple[ServerProcess, ServerProcess]


@pytest.fixture
def pair(own_redis: RedisServer, tmp_path: Path) -> Iterator[Pair]:
    """Two nodes on this test's Redis; whichever is still running at the end is stopped."""
    nodes = (start_node(own_redis, tmp_path / "a"), start_node(own_redis, tmp_path / "b"))
    yield nodes
    for node in nodes:
        if node.alive:
            node.stop()


def _at_least(items: list[int], count: int) -> bool:
    assert len(items) >= count, f"{len(items)} of {count}"
    return True


def metric(node: ServerProcess, name: str, labels: str = "") -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{node.ws_port}/metrics", timeout=5).read().decode()
    match = re.search(rf"^{re.escape(name + labels)} ([0-9.e+]+)$", text, re.M)
    assert match, f"{name}{labels} not in /metrics"
    return float(match.group(1))


async def test_kill_9_under_load_loses_no_queued_message_and_its_sessions_leave(pair: Pair) -> None:
    a, b = pair
    mysql_rows(a, DEV, "INSERT INTO users_auth (id, hash) VALUES (11, 'h11'), (12, 'h12')")
    acknowledged: list[int] = []
    stop = threading.Event()

    def backend() -> None:  # queues messages for offline user 12 through B, as fast as B takes them
        conn = b.connect(DEV)
        try:
            for i in range(100_000):
                if stop.is_set():
                    return
                conn.cursor().execute(
                    f"INSERT INTO users_messages (id, event, message) VALUES (12, 'load', 'm{i}')")
                acknowledged.append(i)
        except pymysql.MySQLError:
            return  # the node died under us: what it acknowledged must survive

    async with open_browser(b, DEV, user_id=11, key="h11") as on_b, open_browser(b, DEV) as anon:
        await on_b.subscribe("busy")
        await anon.subscribe("busy")
        await eventually(lambda: _rows(a, "SELECT users FROM pipes WHERE name = 'busy'", [("2",)]))
        assert mysql_rows(a, DEV, "SELECT * FROM users_time WHERE id = 11") == [("11", "0")]
        thread = threading.Thread(target=backend)
        thread.start()
        # kill B once it is under load: after a number of acknowledged INSERTs, not a time
        # (on a loaded machine a second may hold only a few dozen)
        await eventually(lambda: _at_least(acknowledged, 150), timeout=60)
        b.kill()
        killed = time.monotonic()
        thread.join(10)
        stop.set()
    assert len(acknowledged) > 100, "the load did not run"

    def gone() -> bool:
        assert mysql_rows(a, DEV, "SELECT users FROM pipes WHERE name = 'busy'") in ([], [("0",)])
        (row,) = mysql_rows(a, DEV, "SELECT * FROM users_time WHERE id = 11")
        assert int(row[1]) > 0, row
        return True

    await eventually(gone, timeout=NODE_TIMEOUT + 5)
    assert time.monotonic() - killed <= 10

    queued = mysql_rows(a, DEV, "SELECT message FROM users_messages WHERE id = 12")
    kept = {int(m[1:]) for (m,) in queued}
    assert set(acknowledged) <= kept, f"lost {sorted(set(acknowledged) - kept)[:10]}"
    async with open_browser(a, DEV, user_id=12, key="h12") as user:  # and they are delivered, in order
        frames = await user.recv_many(len(kept), timeout=20)
        assert [int(re.search(r'"data":"m(\d+)"', f).group(1)) for f in frames] == sorted(kept)


async def test_nodes_recover_by_themselves_when_redis_restarts(own_redis: RedisServer, pair: Pair) -> None:
    a, b = pair
    async with open_browser(b, DEV) as on_b:
        await on_b.subscribe("news")
        publish(a, "before")
        assert '"data":"before"' in await on_b.recv()

        own_redis.stop()
        during: list[object] = []

        def publish_during_outage() -> None:  # waits for Redis to come back, then succeeds
            try:
                publish(a, "during")
                during.append("ok")
            except pymysql.MySQLError as exc:
                during.append(exc)

        thread = threading.Thread(target=publish_during_outage)
        thread.start()
        await trio.sleep(1.5)
        own_redis.start()
        thread.join(15)
        assert during == ["ok"]
        assert '"data":"during"' in await on_b.recv(timeout=10)  # not silently dropped

        publish(a, "after")
        assert '"data":"after"' in await on_b.recv(timeout=10)
        await on_b.silence(0.3)
    for node in (a, b):
        assert metric(node, "cometql_redis_outages_total", '{connection="follower"}') >= 1
        await eventually(lambda node=node: _up(node))


def publish(node: ServerProcess, message: str) -> None:
    mysql_rows(node, DEV, f"INSERT INTO pipes_messages (name, event, message) VALUES ('news', 'e', '{message}')")


def _up(node: ServerProcess) -> bool:
    assert metric(node, "cometql_redis_up", '{connection="writer"}') == 1
    assert metric(node, "cometql_redis_up", '{connection="follower"}') == 1
    return True


def _workers(redis: RedisServer, count: int) -> list[str]:
    workers = redis.lines("ZRANGE", "cq:nodes", "0", "-1")
    assert len(workers) == count, workers
    return workers


def _rows(node: ServerProcess, sql: str, want: list[tuple[str, ...]]) -> bool:
    assert mysql_rows(node, DEV, sql) == want
    return True


async def test_workers_share_the_ports_and_act_as_one_server(own_redis: RedisServer, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, extra_args=("--store", own_redis.url, "--workers", "2")).start()
    try:
        await eventually(lambda: _workers(own_redis, 2), timeout=15)  # both workers are up and registered
        async with contextlib.AsyncExitStack() as stack:
            browsers = [await stack.enter_async_context(open_browser(server, DEV)) for _ in range(16)]
            for browser in browsers:
                await browser.subscribe("all")
            # two worker processes, both holding some of the sessions (the kernel spread the connections)
            workers = _workers(own_redis, 2)
            held = [int(own_redis.lines("HLEN", f"cq:node:{w}")[0]) for w in workers]
            assert sum(held) == 16 and min(held) > 0, held
            await eventually(lambda: _rows(server, "SELECT users FROM pipes WHERE name = 'all'", [("16",)]))
            mysql_rows(server, DEV, "INSERT INTO pipes_messages (name, event, message) VALUES ('all', 'e', 'x')")
            for browser in browsers:
                assert '"data":"x"' in await browser.recv()
                await browser.silence(0.05)
    finally:
        assert server.stop() == 0
    assert "restarting" not in server.output  # no worker died on the way


async def test_long_poll_works_whichever_worker_each_request_lands_on(own_redis: RedisServer,
                                                                       tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, extra_args=("--store", own_redis.url, "--workers", "2")).start()
    try:
        await eventually(lambda: _workers(own_redis, 2), timeout=15)
        # every request on a new connection: the kernel picks a worker each time
        status, body = await trio.to_thread.run_sync(
            lp, server, "POST", "/lp/connect", f"sesion=&myid=0&devid={DEV}&v=4.08&uuid=lp1&api=js")
        assert status == 200, body
        sid = json.loads(body)["sid"]
        cursor = json.loads(body)["cursor"]
        assert sid.split(".")[0] in _workers(own_redis, 2)  # the owner's node id
        statuses = [(await trio.to_thread.run_sync(lp, server, "POST", f"/lp/send?sid={sid}",
                                                    "subscription\nlp_chan"))[0] for _ in range(6)]
        assert statuses == [204] * 6
        await eventually(lambda: _rows(server, "SELECT users FROM pipes WHERE name = 'lp_chan'", [("1",)]))
        got: list[str] = []
        with trio.fail_after(60):
            await _poll_four(server, sid, cursor, got)
        assert got == ["m0", "m1", "m2", "m3"]
        assert (await trio.to_thread.run_sync(lp, server, "POST", f"/lp/close?sid={sid}", ""))[0] == 204
        assert (await trio.to_thread.run_sync(lp, server, "GET", f"/lp/poll?sid={sid}&cursor=0", ""))[0] == 404
    finally:
        assert server.stop() == 0
    assert not list(tmp_path.glob("lp-*.sock"))  # the workers removed their relay sockets


async def _poll_four(server: ServerProcess, sid: str, cursor: int, got: list[str]) -> None:
    """Publish m0..m3 one at a time and long-poll each in (every poll on a new connection)."""
    for i in range(4):
        mysql_rows(server, DEV,
                   f"INSERT INTO pipes_messages (name, event, message) VALUES ('lp_chan', 'e', 'm{i}')")
        while len(got) <= i:
            target = f"/lp/poll?sid={sid}&cursor={cursor}"
            status, body = await trio.to_thread.run_sync(lp, server, "GET", target, "")
            assert status == 200, body
            reply = json.loads(body)
            cursor = reply["cursor"]
            got += [f["data"] for f in reply["frames"] if f.get("pipe") == "lp_chan"]


def lp(server: ServerProcess, method: str, target: str, body: str) -> tuple[int, str]:
    """One request on a fresh connection (so it may reach either worker)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.ws_port, timeout=40)
    try:
        conn.request(method, target, body=body.encode(), headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


async def test_an_unreachable_redis_at_start_is_a_clear_error(tmp_path: Path) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    srv = ServerProcess(tmp_path, extra_args=("--store", nobody))
    with pytest.raises(RuntimeError, match="exited early") as exc:
        srv.start()
    assert srv.proc is not None and srv.proc.returncode == 2
    assert f"cannot use Redis at {nobody}" in str(exc.value)


async def test_a_node_stopped_with_sigterm_leaves_at_once_and_stores_last_seen(own_redis: RedisServer, pair: Pair,
                                                                              tmp_path: Path) -> None:
    a, b = pair
    mysql_rows(a, DEV, "INSERT INTO users_auth (id, hash) VALUES (21, 'h21')")
    async with open_browser(a, DEV) as watcher:
        await watcher.subscribe("user_status_21")
        async with open_browser(b, DEV, user_id=21, key="h21") as user:
            await user.sync()
            assert '"event":"online"' in await watcher.recv()
            stopped = time.monotonic()
            assert b.stop() == 0
        assert '"event":"offline"' in await watcher.recv()
        assert time.monotonic() - stopped < NODE_TIMEOUT  # told by the node itself, not by its expiry
    (row,) = mysql_rows(a, DEV, "SELECT * FROM users_time WHERE id = 21")
    assert int(row[1]) > 0
    a.stop()
    again = start_node(own_redis, tmp_path / "again")  # a fresh node reads it from Redis
    try:
        assert mysql_rows(again, DEV, "SELECT * FROM users_time WHERE id = 21") == [row]
    finally:
        again.stop()


async def test_a_lone_node_stores_its_users_last_seen_on_sigterm(own_redis: RedisServer, tmp_path: Path) -> None:
    """Nobody else is there to notice: the node writes its sessions' leaving itself while it stops."""
    node = start_node(own_redis, tmp_path / "solo")
    try:
        mysql_rows(node, DEV, "INSERT INTO users_auth (id, hash) VALUES (22, 'h22')")
        async with open_browser(node, DEV, user_id=22, key="h22") as user:
            await user.sync()
            assert mysql_rows(node, DEV, "SELECT * FROM users_time WHERE id = 22") == [("22", "0")]
            assert node.stop() == 0
    finally:
        if node.alive:
            node.stop()
    again = start_node(own_redis, tmp_path / "again")
    try:
        (row,) = mysql_rows(again, DEV, "SELECT * FROM users_time WHERE id = 22")
        assert int(row[1]) > 0
    finally:
        again.stop()


async def test_a_redis_with_a_password_needs_the_right_one_in_the_url(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis", password="s3cret-pass").start()
    try:
        good = start_node(redis, tmp_path / "good")  # redis://:s3cret-pass@127.0.0.1:port/0
        try:
            mysql_rows(good, DEV, "INSERT INTO users_data (id, data) VALUES (1, 'stored')")
            assert mysql_rows(good, DEV, "SELECT * FROM users_data WHERE id = 1") == [("1", "stored")]
        finally:
            good.stop()
        bad = ServerProcess(tmp_path / "bad", extra_args=("--store", f"redis://:wrong@127.0.0.1:{redis.port}/0"))
        with pytest.raises(RuntimeError, match="exited early") as exc:
            bad.start()
        assert "refused the connection set-up" in str(exc.value) and "wrong" not in str(exc.value)
    finally:
        redis.stop()



async def test_a_node_paused_past_its_timeout_and_resumed_rejoins_both_ways(pair: Pair) -> None:
    """SIGSTOP one node for longer than the node timeout and its hash's TTL, then SIGCONT: each node
    dropped the other (the paused one on resume), and both must re-learn all of the other's sessions."""
    a, b = pair
    users = [(a, range(21, 25)), (b, range(31, 35))]
    every = [u for _node, us in users for u in us]
    mysql_rows(a, DEV, "INSERT INTO users_auth (id, hash) VALUES " + ", ".join(f"({u}, 'h{u}')" for u in every))
    sql = f"SELECT * FROM users_time WHERE id IN ({', '.join(map(str, every))})"

    def all_online(node: ServerProcess) -> bool:
        rows = mysql_rows(node, DEV, sql)
        online = sorted(int(u) for u, t in rows if t == "0")
        assert online == every, f"{len(online)} of {len(every)} online: {online}"
        return True

    async with contextlib.AsyncExitStack() as stack:
        for node, us in users:
            for u in us:
                await stack.enter_async_context(open_browser(node, DEV, user_id=u, key=f"h{u}"))
        for node in (a, b):
            await eventually(lambda node=node: all_online(node))
        os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            await trio.sleep(NODE_TIMEOUT + 4 + 3)  # past the timeout and the session hash's TTL
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        for node in (a, b):
            await eventually(lambda node=node: all_online(node), timeout=30)
        await trio.sleep(NODE_TIMEOUT + 1)  # and it stays that way
        for node in (a, b):
            all_online(node)
    for side in ("writer", "follower"):  # B noticed its pause (A did not: it ran all along)
        assert metric(b, "cometql_cluster_pauses_total", f'{{connection="{side}"}}') >= 1
        assert metric(a, "cometql_cluster_pauses_total", f'{{connection="{side}"}}') == 0
