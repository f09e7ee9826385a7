"""Dead connections (issue 13, item 1): the server pings every WebSocket session and closes silent ones.

Runs on its own server with ``ping_interval`` and ``ping_timeout`` of 1 s, so a
dead peer is noticed in about 2 s. Every wait is bounded generously (a loaded
CI machine), and every test checks what the peer or the backend sees: ping
frames, a close, ``users_time``, the personal-message queue.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from cometql.bench._faultproxy import FaultProxy
from cometql.web._admin import issue_token

from ..servers import PASSWORD, ServerProcess
from ._wire import (
    RawWebSocket,
    assert_frame,
    client_frame,
    eventually,
    http_request,
    mysql_rows,
    new_uuid,
    open_browser,
)
from .conftest import wait_for_port

PING_INTERVAL = 1.0
PING_TIMEOUT = 1.0
#: Generous bound on "noticed dead": interval + timeout + two sweeps, times a CI slowness factor.
DEAD_WITHIN = 15.0
PING, PONG, CLOSE, TEXT = 0x9, 0xA, 0x8, 0x1


@pytest.fixture(scope="module")
def ping_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("cometql-ping"), env={
        "COMETQL_PING_INTERVAL": str(PING_INTERVAL),
        "COMETQL_PING_TIMEOUT": str(PING_TIMEOUT),
    }).start()
    wait_for_port(srv.ws_port)
    yield srv
    if srv.alive:
        srv.stop()


def user_path(dev: int, user_id: int, key: str, caps: str = "") -> str:
    return (f"/ws/sesion={key}&myid={user_id}&devid={dev}&v=4.08&uuid={new_uuid()}&api=js"
            + (f"&caps={caps}" if caps else ""))


async def next_control(ws: RawWebSocket, timeout: float = DEAD_WITHIN) -> tuple[int, bytes]:
    """The next frame that is not a text frame (a ping, a close; (-1, b"") on EOF)."""
    with trio.fail_after(timeout):
        while True:
            opcode, payload = await ws.recv_frame(timeout)
            if opcode != TEXT:
                return opcode, payload


def users_time(server: ServerProcess, dev: int, user_id: int) -> str:
    rows = mysql_rows(server, dev, f"SELECT * FROM users_time WHERE id = {user_id}")
    assert rows, f"no users_time row for {user_id}"
    return rows[0][1]


def assert_offline(server: ServerProcess, dev: int, user_id: int) -> bool:
    """``users_time`` holds a last-seen time: the user's last session has left the hub."""
    seen = users_time(server, dev, user_id)
    assert seen not in ("0", "-1"), seen
    return True


def assert_online(server: ServerProcess, dev: int, user_id: int) -> bool:
    assert users_time(server, dev, user_id) == "0"
    return True


def auth(server: ServerProcess, dev: int, user_id: int) -> str:
    key = f"key{user_id}"
    mysql_rows(server, dev, f"INSERT INTO users_auth (id, hash) VALUES ({user_id}, '{key}')")
    return key


@pytest.fixture
async def raw_user(ping_server: ServerProcess, dev: int) -> AsyncIterator[RawWebSocket]:
    """User 5 of ``dev`` on a hand-made client that answers nothing unless told to."""
    ws = await RawWebSocket.connect(ping_server.ws_port, user_path(dev, 5, auth(ping_server, dev, 5)))
    try:
        yield ws
    finally:
        await ws.aclose()


async def test_an_answering_session_is_pinged_and_kept(ping_server: ServerProcess, dev: int,
                                                       raw_user: RawWebSocket) -> None:
    for _ in range(3):
        opcode, payload = await next_control(raw_user)
        assert (opcode, payload) == (PING, b"")
        await raw_user.send_raw(client_frame(b"", opcode=PONG))
    # three intervals later the session still works and the user is still online
    await raw_user.send_raw(client_frame(b"pipe_count\nweb_sync\nsync\n"))
    while True:
        opcode, payload = await raw_user.recv_frame()
        assert opcode in (TEXT, PING), (opcode, payload)
        if opcode == TEXT and b'"marker":"sync"' in payload:
            break
    assert users_time(ping_server, dev, 5) == "0"


async def test_a_silent_session_is_closed_and_its_user_goes_offline(ping_server: ServerProcess, dev: int,
                                                                     raw_user: RawWebSocket) -> None:
    assert (await next_control(raw_user)) == (PING, b"")  # never answered
    opcode, payload = await next_control(raw_user)
    assert opcode == CLOSE and int.from_bytes(payload[:2], "big") == 1001, (opcode, payload)
    assert b"no answer to ping" in payload
    await eventually(lambda: assert_offline(ping_server, dev, 5), timeout=DEAD_WITHIN)
    mysql_rows(ping_server, dev, "INSERT INTO users_messages (id, event, message) VALUES (5, 'n', 'later')")
    rows = mysql_rows(ping_server, dev, "SELECT * FROM users_messages WHERE id = 5")
    assert len(rows) == 1 and "later" in rows[0], rows  # queued, not written to the dead session


async def test_blackholed_cppcomet_session_is_closed_and_messages_queue(ping_server: ServerProcess,
                                                                          dev: int) -> None:
    """CppComet's library (no caps; trio-websocket answers pings like a browser) behind a network that
    goes silent: the server notices by pings alone, the user goes offline, new messages are queued."""
    key = auth(ping_server, dev, 6)
    with FaultProxy(("127.0.0.1", ping_server.ws_port)) as proxy:
        async with open_browser(ping_server, dev) as watcher, \
                open_browser(ping_server, dev, user_id=6, key=key, port=proxy.port) as browser:
            await watcher.subscribe("user_status_6")
            assert "heartbeat" not in browser.hello
            await eventually(lambda: assert_online(ping_server, dev, 6))
            with trio.move_on_after(PING_INTERVAL * 2.5):  # answered pings keep it online
                await browser.ws.get_message()
                raise AssertionError("a frame for a session without caps")
            assert users_time(ping_server, dev, 6) == "0"
            proxy.blackhole()
            await eventually(lambda: assert_offline(ping_server, dev, 6), timeout=DEAD_WITHIN)
            assert_frame(await watcher.recv(), '{"data":"offline","event":"offline","pipe":"user_status_6"}')
            mysql_rows(ping_server, dev, "INSERT INTO users_messages (id, event, message) VALUES (6, 'n', 'queued')")
            assert len(mysql_rows(ping_server, dev, "SELECT * FROM users_messages WHERE id = 6")) == 1
            proxy.cut()  # let the client's side end at once
    async with open_browser(ping_server, dev, user_id=6, key=key) as again:  # delivered on the next connection
        assert_frame(await again.recv(),
                     '{"data":"queued","event":"n","fromQueue":true,"message_send_time":{T},"pipe":"msg"}')


async def test_hb_sessions_get_heartbeats_and_others_none(ping_server: ServerProcess, dev: int) -> None:
    async with open_browser(ping_server, dev, caps="hb") as hb, open_browser(ping_server, dev) as plain:
        hello = json.loads(hb.hello)
        assert hello["heartbeat"] == {"interval": PING_INTERVAL, "timeout": PING_TIMEOUT}
        assert "heartbeat" not in plain.hello
        for _ in range(2):
            assert_frame(await hb.recv(timeout=DEAD_WITHIN),
                         '{"data":"","event":"heartbeat","message_send_time":{T},"pipe":"sys"}')
        await plain.silence(PING_INTERVAL * 2.5)  # pinged, but never sent a frame it does not know


async def test_longpoll_connect_tells_hb_sessions_timeout_and_ttl(ping_server: ServerProcess, dev: int) -> None:
    tail = f"sesion=&myid=0&devid={dev}&v=4.08&uuid={new_uuid()}&api=js"
    plain = await http_request(ping_server.ws_port, "POST", "/lp/connect", tail.encode())
    assert set(json.loads(plain.body)) == {"cursor", "sid"}
    hb = await http_request(ping_server.ws_port, "POST", "/lp/connect", (tail + "&caps=hb").encode())
    reply = json.loads(hb.body)
    assert (reply["timeout"], reply["ttl"]) == (25.0, 60.0)  # the defaults of longpoll_timeout and session_ttl


async def test_longpoll_probe_is_answered_at_once(ping_server: ServerProcess, dev: int) -> None:
    """``wait=0``: the library's first poll after an outage learns at once whether its session lives."""
    tail = f"sesion=&myid=0&devid={dev}&v=4.08&uuid={new_uuid()}&api=js&caps=hb"
    sid = json.loads((await http_request(ping_server.ws_port, "POST", "/lp/connect", tail.encode())).body)["sid"]
    first = await http_request(ping_server.ws_port, "GET", f"/lp/poll?sid={sid}&cursor=0")  # serverInfo
    cursor = json.loads(first.body)["cursor"]
    # nothing pending: held 25 s without wait=0 (longer than http_request's 5 s bound), answered at once with it
    probe = await http_request(ping_server.ws_port, "GET", f"/lp/poll?sid={sid}&cursor={cursor}&wait=0")
    assert (probe.status, json.loads(probe.body)) == (200, {"cursor": cursor, "frames": []})
    gone = await http_request(ping_server.ws_port, "GET", "/lp/poll?sid=nosuchsession&cursor=0&wait=0")
    assert gone.status == 404  # the library starts a new session only on this answer


async def test_a_silent_admin_live_socket_is_dropped(ping_server: ServerProcess) -> None:
    """The dashboard's feed is pinged too: a client gone without a word does not keep its task."""
    ws = await RawWebSocket.connect(ping_server.ws_port, f"/admin/live?token={issue_token(PASSWORD)}")
    try:
        seen: list[int] = []
        with trio.fail_after(DEAD_WITHIN):
            while (opcode := (await ws.recv_frame(DEAD_WITHIN))[0]) != -1:
                seen.append(opcode)
        assert TEXT in seen and PING in seen  # stats frames, then a ping nobody answered, then the end
    finally:
        await ws.aclose()
