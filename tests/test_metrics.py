"""Prometheus /metrics and the admin JSON endpoint, against a real server with real clients.

The module runs its own server (a small send-queue bound for the slow-consumer
test), so every counter checked here moves only because of these tests; each
test still compares before/after values rather than absolutes.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pymysql
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from cometql.web._admin import issue_token

from .metrics_helpers import admin_stats, basic_auth, get, metric_families, sample, scrape
from .servers import ServerProcess
from .web._wire import RawWebSocket, client_frame, eventually, http_request, mysql_rows, new_uuid, open_browser
from .web.conftest import wait_for_port

MAX_QUEUED_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """This module's own server (overrides the session one, so ``dev``/``db`` talk to it)."""
    srv = ServerProcess(tmp_path_factory.mktemp("cometql-metrics"),
                        env={"COMETQL_MAX_QUEUED_BYTES": str(MAX_QUEUED_BYTES),
                             # the admin tests here send dozens of wrong passwords (the guess limit: tests/ops)
                             "COMETQL_ADMIN_LOGIN_ATTEMPTS": "0"}).start()
    wait_for_port(srv.ws_port)
    yield srv
    if srv.alive:
        srv.stop()


def insert_pipe(channel: str, message: str) -> str:
    return f"INSERT INTO pipes_messages (name, event, message) VALUES ('{channel}', 'ev', '{message}')"


# --------------------------------------------------------------- /metrics


def test_every_metric_is_exposed_with_prometheus_names(server: ServerProcess) -> None:
    mysql_rows(server, 1, "SELECT 1")  # a statement, so the labelled statement counter has a series
    families = metric_families(server)
    expected = {
        "cometql_sessions": "gauge",
        "cometql_authorized_users": "gauge",
        "cometql_subscriptions": "gauge",
        "cometql_channels": "gauge",
        "cometql_mysql_connections": "gauge",
        "cometql_queue_depth": "gauge",
        "cometql_statements": "counter",
        "cometql_errors": "counter",
        "cometql_messages_published": "counter",
        "cometql_messages_delivered": "counter",
        "cometql_messages_queued": "counter",
        "cometql_messages_dropped": "counter",
        "cometql_slow_consumer_disconnects": "counter",
        "cometql_insert_duration_seconds": "histogram",
        "cometql_publish_to_delivery_seconds": "histogram",
    }
    for name, kind in expected.items():
        assert name in families, f"{name} missing from /metrics"
        assert families[name].type == kind, (name, families[name].type)
        for s in families[name].samples:
            if kind == "counter":
                assert s.name == name + "_total", s.name
            for label in s.labels:
                assert label.islower() and label.replace("_", "").isalpha(), label
    transports = {s.labels["transport"] for s in families["cometql_sessions"].samples}
    assert transports == {"websocket", "longpoll"}
    slow = {s.labels["transport"] for s in families["cometql_slow_consumer_disconnects"].samples}
    assert slow == {"websocket", "longpoll"}
    statements = {(s.labels["table"], s.labels["verb"]) for s in families["cometql_statements"].samples}
    assert ("none", "select") in statements
    buckets = [s for s in families["cometql_insert_duration_seconds"].samples if s.name.endswith("_bucket")]
    assert buckets and buckets[-1].labels["le"] == "+Inf"


def test_metrics_is_plain_get_without_auth(server: ServerProcess) -> None:
    status, _, body = get(server, "/metrics")
    assert status == 200 and b"# TYPE cometql_sessions gauge" in body


async def test_websocket_session_and_publish_move_the_counters(server: ServerProcess, dev: int) -> None:
    before = scrape(server)
    async with open_browser(server, dev) as browser:
        await browser.subscribe("metrics_live")

        def online() -> bool:
            now = scrape(server)
            assert sample(now, "cometql_sessions", transport="websocket") == \
                sample(before, "cometql_sessions", transport="websocket") + 1
            assert sample(now, "cometql_subscriptions") == sample(before, "cometql_subscriptions") + 1
            assert sample(now, "cometql_channels") == sample(before, "cometql_channels") + 1
            return True

        await eventually(online)
        before = scrape(server)  # the subscription's own frames are deliveries too: count from here
        mysql_rows(server, dev, insert_pipe("metrics_live", "hello"))
        frame = await browser.recv()
        assert '"data":"hello"' in frame
        after = scrape(server)
    for name, labels in [
        ("cometql_messages_published_total", {}),
        ("cometql_messages_delivered_total", {}),
        ("cometql_statements_total", {"table": "pipes_messages", "verb": "insert"}),
        ("cometql_insert_duration_seconds_count", {}),
        ("cometql_publish_to_delivery_seconds_count", {}),
        ("cometql_publish_to_delivery_seconds_bucket", {"le": "+Inf"}),
    ]:
        assert sample(after, name, **labels) == sample(before, name, **labels) + 1, name
    latency = sample(after, "cometql_publish_to_delivery_seconds_sum") - \
        sample(before, "cometql_publish_to_delivery_seconds_sum")
    assert 0 < latency < 5
    assert sample(after, "cometql_insert_duration_seconds_sum") > sample(before, "cometql_insert_duration_seconds_sum")

    def offline() -> bool:
        now = scrape(server)
        assert sample(now, "cometql_sessions", transport="websocket") == \
            sample(before, "cometql_sessions", transport="websocket") - 1
        assert sample(now, "cometql_subscriptions") == sample(before, "cometql_subscriptions") - 1
        return True

    await eventually(offline)


async def test_longpoll_session_is_counted_by_transport(server: ServerProcess, dev: int) -> None:
    before = sample(scrape(server), "cometql_sessions", transport="longpoll")
    tail = f"sesion=&myid=0&devid={dev}&v=4.08&uuid={new_uuid()}&api=js"
    reply = await http_request(server.ws_port, "POST", "/lp/connect", tail.encode())
    assert reply.status == 200, reply.body
    sid = orjson.loads(reply.body)["sid"]
    assert sample(scrape(server), "cometql_sessions", transport="longpoll") == before + 1
    assert (await http_request(server.ws_port, "POST", f"/lp/close?sid={sid}")).status == 204
    assert sample(scrape(server), "cometql_sessions", transport="longpoll") == before


def test_errors_are_counted_by_cometql_code(server: ServerProcess, db: pymysql.cursors.Cursor) -> None:
    before = scrape(server)
    for sql, code in [("SELECT * FROM no_such_table", 15), ("xyzzy plugh frobnicate", 3),
                      ("SELECT * FROM users_messages", 13)]:
        with pytest.raises(pymysql.MySQLError) as info:
            db.execute(sql)
        assert info.value.args[0] == code
    after = scrape(server)
    for code in ("15", "3", "13"):
        assert sample(after, "cometql_errors_total", code=code) == sample(before, "cometql_errors_total", code=code) + 1


def test_queued_user_messages_and_queue_depth(server: ServerProcess, db: pymysql.cursors.Cursor) -> None:
    before = scrape(server)
    db.execute("INSERT INTO users_messages (id, event, message) VALUES (42, 'e', 'one')")
    db.execute("INSERT INTO users_messages (id, event, message) VALUES (42, 'e', 'two')")
    after = scrape(server)
    assert sample(after, "cometql_messages_queued_total") == sample(before, "cometql_messages_queued_total") + 2
    assert sample(after, "cometql_queue_depth") == sample(before, "cometql_queue_depth") + 2
    assert sample(after, "cometql_statements_total", table="users_messages", verb="insert") == \
        sample(before, "cometql_statements_total", table="users_messages", verb="insert") + 2
    db.execute("DELETE FROM users_messages WHERE id = 42")
    assert sample(scrape(server), "cometql_queue_depth") == sample(before, "cometql_queue_depth")


async def test_authorized_users_and_mysql_connections(server: ServerProcess, dev: int) -> None:
    mysql_rows(server, dev, "INSERT INTO users_auth (id, hash) VALUES (7, 'metrics_key')")
    # The server notices a closed connection (this one, and earlier tests') asynchronously: start from none.
    await eventually(lambda: sample(scrape(server), "cometql_mysql_connections") == 0,
                     what="every earlier MySQL connection to be counted out")
    before = scrape(server)
    conn = server.connect(dev)
    try:
        assert sample(scrape(server), "cometql_mysql_connections") == sample(before, "cometql_mysql_connections") + 1
        async with open_browser(server, dev, user_id=7, key="metrics_key"):
            async with open_browser(server, dev, user_id=7, key="metrics_key"):  # same user: one user, two sessions

                def counted() -> bool:
                    now = scrape(server)
                    assert sample(now, "cometql_authorized_users") == sample(before, "cometql_authorized_users") + 1
                    assert sample(now, "cometql_sessions", transport="websocket") == \
                        sample(before, "cometql_sessions", transport="websocket") + 2
                    return True

                await eventually(counted)
    finally:
        conn.close()

    def gone() -> bool:
        now = scrape(server)
        assert sample(now, "cometql_authorized_users") == sample(before, "cometql_authorized_users")
        assert sample(now, "cometql_mysql_connections") == sample(before, "cometql_mysql_connections")
        return True

    await eventually(gone)


async def test_slow_consumer_disconnect_is_counted(server: ServerProcess, dev: int) -> None:
    before = scrape(server)
    raw = await RawWebSocket.connect(server.ws_port, f"/ws/sesion=&myid=0&devid={dev}&v=4.08", rcvbuf=4096)
    conn = server.connect(dev)
    cur = conn.cursor()
    try:
        await raw.recv_frame()  # serverInfo
        await raw.send_raw(client_frame(b"subscription\nweb_slow_metrics"))
        await raw.send_raw(client_frame(b"pipe_count\nweb_slow_metrics\nready\n"))
        assert b'"marker":"ready"' in (await raw.recv_frame())[1]
        insert = insert_pipe("web_slow_metrics", os.urandom(16_000).hex())  # 32 KB frames, never read
        with trio.fail_after(30):
            for _ in range(400):
                await trio.to_thread.run_sync(cur.execute, insert)
                cur.execute("SELECT * FROM pipes WHERE name = 'web_slow_metrics'")
                if cur.fetchall() == (("web_slow_metrics", "0"),):
                    break
            else:
                raise AssertionError("the reader that never reads was not disconnected")

        def counted() -> bool:
            now = scrape(server)
            assert sample(now, "cometql_slow_consumer_disconnects_total", transport="websocket") == \
                sample(before, "cometql_slow_consumer_disconnects_total", transport="websocket") + 1
            assert sample(now, "cometql_messages_dropped_total") > sample(before, "cometql_messages_dropped_total")
            return True

        await eventually(counted)
    finally:
        await raw.aclose()
        conn.close()


# ------------------------------------------------------------------ /admin


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/stats", "/admin/token", "/admin/live",
                                  "/admin/admin.js", "/admin/admin.css"])
def test_admin_refuses_requests_without_the_password(server: ServerProcess, path: str) -> None:
    for headers in [{}, basic_auth("wrong password"), basic_auth(server.password + "x"),
                    {"Authorization": "Bearer " + server.password}, {"Authorization": "Basic !!not-base64!!"}]:
        status, reply_headers, _ = get(server, path, headers)
        assert status == 401, (path, headers)
        assert reply_headers["www-authenticate"].startswith('Basic realm="CometQL admin"')


def test_admin_serves_the_dashboard_with_the_password(server: ServerProcess) -> None:
    for user in ("admin", "anyone"):  # any user name
        status, headers, body = get(server, "/admin", basic_auth(server.password, user))
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b"/admin/admin.js" in body and b"<svg" in body
    status, headers, body = get(server, "/admin/admin.js", basic_auth(server.password))
    assert status == 200 and "javascript" in headers["content-type"]
    assert b"/admin/stats" in body and b"/admin/token" in body and b"/admin/live" in body
    status, headers, _ = get(server, "/admin/admin.css", basic_auth(server.password))
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert get(server, "/admin/nothing-here", basic_auth(server.password))[0] == 404


async def test_admin_stats_after_activity(server: ServerProcess, dev: int) -> None:
    mysql_rows(server, dev, "INSERT INTO users_auth (id, hash) VALUES (5, 'stats_key')")
    base = admin_stats(server)
    async with open_browser(server, dev, user_id=5, key="stats_key") as a, open_browser(server, dev) as b:
        await a.subscribe("admin_busiest", "admin_quiet")
        await b.subscribe("admin_busiest")
        for i in range(3):
            mysql_rows(server, dev, insert_pipe("admin_busiest", f"m{i}"))
        with pytest.raises(pymysql.MySQLError):
            mysql_rows(server, dev, "SELECT * FROM admin_no_such_table")
        await a.recv_many(3)

        def shown() -> dict[str, object]:
            s = admin_stats(server)
            assert s["online"]["users"] == base["online"]["users"] + 1
            assert s["online"]["sessions"] == base["online"]["sessions"] + 2
            assert s["online"]["transports"].get("websocket", 0) == base["online"]["transports"].get("websocket", 0) + 2
            return s

        stats = await eventually(shown)
    channels = stats["channels"]
    assert {"dev_id": dev, "channel": "admin_busiest", "subscribers": 2} in channels
    assert {"dev_id": dev, "channel": "admin_quiet", "subscribers": 1} in channels
    counts = [c["subscribers"] for c in channels]
    assert counts == sorted(counts, reverse=True) and len(channels) <= 20
    messages = stats["messages"]
    assert messages["published"] >= base["messages"]["published"] + 3
    assert messages["delivered"] >= base["messages"]["delivered"] + 6
    assert messages["published_per_second"] > 0
    history = stats["online_history"]
    assert 1 <= len(history) <= 361
    assert history[-1]["users"] == stats["online"]["users"] and history[-1]["sessions"] == stats["online"]["sessions"]
    latest = stats["errors"][0]
    assert latest["code"] == 15 and latest["message"] == "Table doesn't exist"
    assert abs(latest["time"] - time.time()) < 60
    assert len(stats["errors"]) <= 50


def test_separate_admin_password_replaces_the_cometql_password_for_admin(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """With ``[admin] password`` set (here COMETQL_ADMIN_PASSWORD), /admin takes it and only it."""
    admin_password = "dashboard-only secret"
    srv = ServerProcess(tmp_path_factory.mktemp("cometql-admin-password"),
                        env={"COMETQL_ADMIN_PASSWORD": admin_password}).start()
    try:
        wait_for_port(srv.ws_port)
        for path in ("/admin", "/admin/stats", "/admin/token"):
            assert get(srv, path, basic_auth(admin_password))[0] == 200, path
            status, headers, _ = get(srv, path, basic_auth(srv.password))
            assert status == 401, path
            assert headers["www-authenticate"].startswith('Basic realm="CometQL admin"')
        assert get(srv, "/metrics")[0] == 200  # /metrics stays open
        mysql_rows(srv, 1, "SELECT 1")  # the CometQL password still logs MySQL clients in
    finally:
        srv.stop()


# ------------------------------------------------------------- /admin/live


ADMIN_STATS_KEYS = {"time", "uptime", "online", "channels", "channel_count", "subscriptions", "messages",
                    "online_history", "errors"}


def admin_token(srv: ServerProcess) -> str:
    """A live-socket token, fetched the way the dashboard page does (Basic auth on /admin/token)."""
    status, headers, body = get(srv, "/admin/token", basic_auth(srv.password))
    assert status == 200 and headers["content-type"] == "application/json", body
    reply = orjson.loads(body)
    assert reply["expires_in"] == 60 and reply["url"] == "/admin/live"
    return str(reply["token"])


def live_url(srv: ServerProcess, query: str) -> str:
    return f"ws://127.0.0.1:{srv.ws_port}/admin/live{query}"


async def next_stats(ws: WebSocketConnection, timeout: float = 3.0) -> dict[str, Any]:
    """The next pushed frame, which must be the /admin/stats JSON."""
    with trio.fail_after(timeout):
        message = await ws.get_message()
    assert isinstance(message, str), message
    stats = orjson.loads(message)
    assert set(stats) == ADMIN_STATS_KEYS, sorted(stats)
    return stats  # type: ignore[no-any-return]



async def test_admin_live_pushes_stats_every_second_and_follows_sessions(server: ServerProcess, dev: int) -> None:
    before = admin_stats(server)
    async with open_websocket_url(live_url(server, "?token=" + admin_token(server)), connect_timeout=5) as ws:
        opened = trio.current_time()
        first = await next_stats(ws, timeout=0.8)  # at once, not after the first interval
        assert trio.current_time() - opened < 0.8
        # the admin socket is not a browser session: neither the hub nor /admin/stats count it
        assert first["online"]["sessions"] == before["online"]["sessions"]
        assert admin_stats(server)["online"]["sessions"] == before["online"]["sessions"]
        second = await next_stats(ws)
        assert 0.5 < trio.current_time() - opened < 1.8  # then once a second
        assert second["uptime"] > first["uptime"]

        async with open_browser(server, dev) as browser:
            await browser.subscribe("admin_live_chan")
            while True:  # frames keep coming; one of the next few shows the new session and its channel
                pushed = await next_stats(ws)
                if pushed["online"]["sessions"] == first["online"]["sessions"] + 1:
                    break
            pushed = await next_stats(ws)
            assert {"dev_id": dev, "channel": "admin_live_chan", "subscribers": 1} in pushed["channels"]
            assert pushed["online"]["transports"]["websocket"] == first["online"]["transports"].get("websocket", 0) + 1
        while pushed["online"]["sessions"] != first["online"]["sessions"]:  # and the session leaving
            pushed = await next_stats(ws)


async def test_admin_live_ends_when_the_client_closes(server: ServerProcess) -> None:
    raw = await RawWebSocket.connect(server.ws_port, "/admin/live?token=" + admin_token(server))
    try:
        opcode, payload = await raw.recv_frame()
        assert opcode == 0x1 and orjson.loads(payload)["online"]["sessions"] >= 0
        await raw.send_raw(client_frame(b"are you there", opcode=0x9))
        opcode, payload = await raw.recv_frame()
        while opcode == 0x1:  # a stats frame may come first
            opcode, payload = await raw.recv_frame()
        assert (opcode, payload) == (0xA, b"are you there")
        await raw.send_raw(client_frame(struct.pack("!H", 1000), opcode=0x8))
        assert await raw.close_code() == 1000  # the close is echoed...
        assert await raw.recv_frame(timeout=2) == (-1, b"")  # ...and the connection's task ends: EOF, no more stats
    finally:
        await raw.aclose()


@pytest.mark.parametrize(("case", "reason"), [
    ("missing", "admin token missing"),
    ("empty", "admin token missing"),
    ("garbage", "admin token malformed"),
    ("tampered", "admin token invalid"),
    ("other-password", "admin token invalid"),
    ("expired", "admin token expired"),
])
async def test_admin_live_refuses_a_bad_token(server: ServerProcess, case: str, reason: str) -> None:
    good = admin_token(server)
    body, _, signature = good.rpartition(".")
    version, expiry, nonce = body.split(".")
    query = {
        "missing": "",
        "empty": "?token=",
        "garbage": "?token=not-a-token",
        "tampered": f"?token={version}.{int(expiry) + 3600}.{nonce}.{signature}",  # a later expiry, old signature
        "other-password": "?token=" + issue_token(server.password + "x"),
        "expired": "?token=" + issue_token(server.password, now=time.time() - 61),  # signed right, a minute old
    }[case]
    async with open_websocket_url(live_url(server, query), connect_timeout=5) as ws:
        with trio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
            message = await ws.get_message()
            raise AssertionError(f"a refused socket got {message!r}")
    assert (closed.value.reason.code, closed.value.reason.reason) == (1008, reason)


def test_admin_live_is_a_websocket_only_path(server: ServerProcess) -> None:
    status, _, body = get(server, "/admin/live", basic_auth(server.password))
    assert status == 426 and b"WebSocket" in body
