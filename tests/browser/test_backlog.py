"""A large backlog of personal messages reaches our library whole, in order, exactly once.

20,000 queued messages × 1 KB for one user (this module's servers allow that
many), on one SQLite server and on a two-node cluster on Redis. The library
announces ``ack``: the server sends a window of messages, the next page as
acknowledgements come back, and deletes only what was acknowledged; a second
page load gets nothing again. Before paged queues the whole queue was written
at once, the session was closed as a slow consumer and the queue was already
gone (5,000 queued: 66 arrived).
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest

from ..servers import ServerProcess
from .helpers import PAGES, STORES, Browser, Query, page_and_backend, wait_until

COUNT = 20_000
ROWS_PER_INSERT = 250


LIMITS = {"COMETQL_QUEUE_MAX_MESSAGES": str(COUNT), "COMETQL_QUEUE_MAX_BYTES": str(64 * 1024 * 1024)}


@pytest.fixture(scope="module", params=STORES)
def nodes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[ServerProcess, ServerProcess]]:
    """(the page's node, the backend's node), with room for the backlog in a user's queue."""
    with page_and_backend(request, tmp_path_factory.mktemp, "--base-dir", str(PAGES), env=LIMITS) as pair:
        yield pair


@pytest.fixture(scope="module")
def server(nodes: tuple[ServerProcess, ServerProcess]) -> ServerProcess:
    """This module's browser server (the page's node)."""
    return nodes[0]


@pytest.fixture
def db(nodes: tuple[ServerProcess, ServerProcess], dev: int) -> Iterator[pymysql.cursors.Cursor]:
    """The backend's statements (``query``) go to the other node of a cluster."""
    conn = nodes[1].connect(dev)
    try:
        yield conn.cursor()
    finally:
        conn.close()


def _start(browser: Browser, dev: int, user: int) -> None:
    """Open the page, record each personal message's first 6 characters (not 20 MB of events), start."""
    browser.open(nostart="1")
    browser.js("""
        window.got = [];
        cometApi.subscription("msg", function (e) { got.push(String(e.data).slice(0, 6)); });
        cometApi.start({dev_id: arguments[0], user_id: arguments[1], user_key: arguments[2]});
    """, str(dev), str(user), f"key{user}")


def test_twenty_thousand_queued_messages_arrive_in_order_once(browser: Browser, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (11, 'key11')")
    pad = "x" * 1018
    for start in range(0, COUNT, ROWS_PER_INSERT):
        rows = ", ".join(f"(11, 'ev', 'm{i:05d}{pad}')" for i in range(start, start + ROWS_PER_INSERT))
        query(f"INSERT INTO users_messages (id, event, message) VALUES {rows}")
    assert query("SELECT COUNT(*) FROM users_messages WHERE id = 11") == [(str(COUNT),)]

    _start(browser, dev, 11)
    browser.wait_for(f"window.got.length >= {COUNT}", timeout=300, what=f"{COUNT} personal messages")
    got = browser.js("return window.got")
    assert got == [f"m{i:05d}" for i in range(COUNT)]  # every one, in order, none twice
    wait_until(lambda: query("SELECT COUNT(*) FROM users_messages WHERE id = 11") == [("0",)], timeout=30,
               what="every message acknowledged")

    _start(browser, dev, 11)  # a second page load
    browser.wait_connected()
    browser.js("cometApi.count_users_in_pipe('web_sync', function () { window.synced = true; })")
    browser.wait_for("window.synced === true", what="a round trip after connecting")
    assert browser.js("return window.got") == []
