"""Dead connections in Chromium (issue 13, items 1 and 5): our library behind a network that goes silent.

The page is loaded through a ``FaultProxy`` in front of a server with short
timings (pings every 1 s, 1 s to answer; polls held 2 s, long-poll sessions
kept 30 s), so its WebSocket and long-poll requests all cross the proxy. Each
test runs on one SQLite server and on a two-node cluster on Redis (the page on
one node, the backend's INSERTs and SELECTs on the other):

- WebSocket: the network is black-holed. The server notices by its pings (the
  user goes offline), the page by the missing heartbeats (it reconnects as soon
  as the network lets it). Personal messages sent after the server closed the
  dead session are queued and arrive after the reconnect. Messages sent in the
  seconds *before* the server noticed were written to the dead socket: keeping
  those is the job of acknowledgements (issue 13, item 2), not tested here.
- Long-poll: 6 s of black-hole (then the connections either stay silent or are
  reset) while a personal message is pending. The page resumes the same
  session (same sid, same cursor) and gets it, once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from selenium import webdriver

from cometql.bench._faultproxy import FaultProxy

from ..servers import ServerProcess
from .helpers import (
    PAGES,
    STORES,
    TRANSPORT_PARAMS,
    Browser,
    Query,
    make_query,
    page_and_backend,
    wait_online,
    wait_until,
)

PING_INTERVAL = 1.0
PING_TIMEOUT = 1.0
LONGPOLL_TIMEOUT = 2.0
SESSION_TTL = 30.0
#: Generous: noticing a dead peer takes about interval + timeout (2 s) here, plus backoff on a loaded machine.
NOTICE_WITHIN = 20.0


FAST = {
    "COMETQL_PING_INTERVAL": str(PING_INTERVAL),
    "COMETQL_PING_TIMEOUT": str(PING_TIMEOUT),
    "COMETQL_LONGPOLL_TIMEOUT": str(LONGPOLL_TIMEOUT),
    "COMETQL_SESSION_TTL": str(SESSION_TTL),
}


@pytest.fixture(scope="module", params=STORES)
def fast_servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[ServerProcess, ServerProcess]]:
    with page_and_backend(request, tmp_path_factory.mktemp, "--base-dir", str(PAGES), env=FAST) as pair:
        yield pair


@pytest.fixture
def proxy(fast_servers: tuple[ServerProcess, ServerProcess]) -> Iterator[FaultProxy]:
    page_node = fast_servers[0]
    with FaultProxy((page_node.host, page_node.ws_port)) as p:
        yield p


@pytest.fixture
def fast_query(fast_servers: tuple[ServerProcess, ServerProcess], dev: int) -> Iterator[Query]:
    conn = fast_servers[1].connect(dev)
    try:
        yield make_query(conn)
    finally:
        conn.close()


@pytest.fixture
def page(driver: webdriver.Chrome, proxy: FaultProxy) -> Iterator[Browser]:
    b = Browser(driver, f"http://127.0.0.1:{proxy.port}")
    yield b
    b.reset()


def users_time(query: Query, user_id: int) -> str:
    rows = query(f"SELECT * FROM users_time WHERE id = {user_id}")
    return rows[0][1] if rows else "-1"


def test_websocket_blackhole_page_reconnects_and_gets_messages_queued_meanwhile(
        page: Browser, proxy: FaultProxy, fast_query: Query, dev: int) -> None:
    fast_query("INSERT INTO users_auth (id, hash) VALUES (21, 'k21')")
    page.open(dev_id=dev, user_id=21, user_key="k21", subs="msg.n")
    assert page.wait_connected() is True
    assert page.transport == "websocket"
    wait_online(fast_query, 21)
    fast_query("INSERT INTO users_messages (id, event, message) VALUES (21, 'n', 'before')")
    assert [e["data"] for e in page.wait_events("msg.n")] == ["before"]
    accepted = proxy.accepted

    proxy.blackhole()
    # the server notices by its pings alone and takes the user offline ...
    wait_until(lambda: users_time(fast_query, 21) not in ("0", "-1"), timeout=NOTICE_WITHIN,
               what="the server to close the dead session")
    # ... so what is sent now is queued (what was sent before it noticed is item 2's business: acks)
    for n in range(5):
        fast_query(f"INSERT INTO users_messages (id, event, message) VALUES (21, 'n', 'during {n}')")
    # queued: the five, and "before" too if its ack was lost in the black hole (it is then sent again, and
    # the page, which has its id, does not show it twice)
    queued = [row[3] for row in fast_query("SELECT * FROM users_messages WHERE id = 21")]
    assert [m for m in queued if m != "before"] == [f"during {n}" for n in range(5)]
    # the page notices the missing heartbeats and tries again (into the black hole, for now)
    wait_until(lambda: proxy.accepted > accepted, timeout=NOTICE_WITHIN, what="the page to reconnect")
    proxy.heal()

    events = page.wait_events("msg.n", 6, timeout=NOTICE_WITHIN + 15)  # a handshake lost in the hole times out
    assert [e["data"] for e in events] == ["before"] + [f"during {n}" for n in range(5)]
    assert all(e["server_info"]["fromQueue"] for e in events[1:])
    wait_online(fast_query, 21)
    # the page acknowledges what it got (in batches): then nothing is left queued
    wait_until(lambda: fast_query("SELECT * FROM users_messages WHERE id = 21") == [], what="the acks to be stored")


@pytest.mark.parametrize("ending", ["silent", "reset"])
def test_longpoll_outage_resumes_the_same_session_and_loses_nothing(
        page: Browser, proxy: FaultProxy, fast_query: Query, dev: int, ending: str) -> None:
    """``silent``: the network just comes back (requests lost in the hole time out); ``reset``: the
    connections that were in the hole are cut when it comes back (the requests fail at once)."""
    fast_query("INSERT INTO users_auth (id, hash) VALUES (22, 'k22')")
    page.open(dev_id=dev, user_id=22, user_key="k22", subs="msg.n", **TRANSPORT_PARAMS["longpoll"])
    assert page.wait_connected() is True
    assert page.transport == "longpoll"
    wait_online(fast_query, 22)
    sid = page.js("return cometApi.transport.sid")

    proxy.blackhole()
    fast_query("INSERT INTO users_messages (id, event, message) VALUES (22, 'n', 'pending')")  # online: sent live
    time.sleep(6)  # the outage (not an assertion): longer than a held poll and than the old 3 retries
    assert page.events("msg.n") == []
    proxy.heal()
    if ending == "reset":
        proxy.cut()

    [event] = page.wait_events("msg.n", 1, timeout=NOTICE_WITHIN)
    assert event["data"] == "pending" and event["server_info"]["fromQueue"] is False
    assert page.js("return cometApi.transport.sid") == sid  # the same session, resumed with its cursor
    page.wait_for("cometApi.isConnected()", what="connected again")
    fast_query("INSERT INTO users_messages (id, event, message) VALUES (22, 'n', 'after')")
    assert [e["data"] for e in page.wait_events("msg.n", 2)] == ["pending", "after"]  # once each
    assert users_time(fast_query, 22) == "0"  # never went offline


@pytest.fixture(scope="module")
def short_ttl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Long-poll sessions kept only 3 s without a poll: an outage can outlast them."""
    srv = ServerProcess(tmp_path_factory.mktemp("cometql-ttl"), extra_args=("--base-dir", str(PAGES)), env={
        "COMETQL_LONGPOLL_TIMEOUT": "1", "COMETQL_SESSION_TTL": "3"}).start()
    yield srv
    if srv.alive:
        srv.stop()


def test_longpoll_outage_past_the_ttl_starts_a_new_session_and_gets_the_queue(
        driver: webdriver.Chrome, short_ttl_server: ServerProcess, dev: int) -> None:
    """The server reaps the session through the normal path (user offline, later messages queued);
    the library, told 404 or past the TTL, opens a new session, which gets the queue."""
    with FaultProxy((short_ttl_server.host, short_ttl_server.ws_port)) as proxy, \
            short_ttl_server.connect(dev) as conn:
        query = make_query(conn)
        page = Browser(driver, f"http://127.0.0.1:{proxy.port}")
        try:
            query("INSERT INTO users_auth (id, hash) VALUES (23, 'k23')")
            page.open(dev_id=dev, user_id=23, user_key="k23", subs="msg.n", **TRANSPORT_PARAMS["longpoll"])
            assert page.wait_connected() is True
            wait_online(query, 23)
            sid = page.js("return cometApi.transport.sid")
            proxy.blackhole()
            wait_until(lambda: users_time(query, 23) not in ("0", "-1"), timeout=NOTICE_WITHIN,
                       what="the server to reap the session")
            query("INSERT INTO users_messages (id, event, message) VALUES (23, 'n', 'queued')")
            proxy.heal()
            proxy.cut()  # what was in the hole fails at once
            [event] = page.wait_events("msg.n", 1, timeout=NOTICE_WITHIN)
            assert event["data"] == "queued" and event["server_info"]["fromQueue"] is True
            assert page.js("return cometApi.transport.sid") != sid
        finally:
            page.reset()
