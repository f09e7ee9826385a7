"""Personal messages over the wire: ids and acks (``caps=ack``), resends, at most once without acks,
backlogs larger than a session's send bound, the queue bound (docs/delivery.md, "Personal messages").
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pymysql
import pytest

from ..servers import ServerProcess
from ._wire import Browser, eventually, mysql_rows, open_browser
from .conftest import MAX_QUEUED_BYTES, wait_for_port

TIMEOUT = 30


def _auth(server: ServerProcess, dev: int, user: int) -> None:
    mysql_rows(server, dev, f"INSERT INTO users_auth (id, hash) VALUES ({user}, 'h{user}')")


def _send(server: ServerProcess, dev: int, user: int, message: str) -> None:
    mysql_rows(server, dev, f"INSERT INTO users_messages (id, event, message) VALUES ({user}, 'ev', '{message}')")


def _unacked(server: ServerProcess, dev: int, user: int) -> list[str]:
    return [row[3] for row in mysql_rows(server, dev, f"SELECT * FROM users_messages WHERE id = {user}")]


async def _message(b: Browser) -> dict[str, object]:
    while True:
        frame = orjson.loads(await b.recv())
        if frame["pipe"] == "msg":
            return dict(frame)


async def test_an_acknowledged_message_leaves_the_queue(ws_server: ServerProcess, dev: int) -> None:
    _auth(ws_server, dev, 5)
    async with open_browser(ws_server, dev, user_id=5, key="h5", caps="ack") as b:
        await b.sync()
        _send(ws_server, dev, 5, "hello")
        frame = await _message(b)
        assert frame["data"] == "hello" and isinstance(frame["id"], str)
        assert _unacked(ws_server, dev, 5) == ["hello"]  # SELECT shows what is not acknowledged yet
        await b.send("ack", str(frame["id"]))
        await eventually(lambda: _unacked(ws_server, dev, 5) == [])


async def test_an_unacknowledged_message_comes_again_on_the_next_connection(ws_server: ServerProcess,
                                                                             dev: int) -> None:
    _auth(ws_server, dev, 6)
    async with open_browser(ws_server, dev, user_id=6, key="h6", caps="ack") as b:
        await b.sync()
        _send(ws_server, dev, 6, "once more")
        first = await _message(b)  # the page is closed before acknowledging it
    async with open_browser(ws_server, dev, user_id=6, key="h6", caps="ack") as b:
        again = await _message(b)
        assert (again["id"], again["data"], again["fromQueue"]) == (first["id"], "once more", True)
        await b.send("ack", str(again["id"]))
        await eventually(lambda: _unacked(ws_server, dev, 6) == [])
    async with open_browser(ws_server, dev, user_id=6, key="h6", caps="ack") as b:
        await b.sync()
        await b.silence()


async def test_without_acks_a_message_is_delivered_at_most_once_in_cppcomets_frame(ws_server: ServerProcess,
                                                                                     dev: int) -> None:
    _auth(ws_server, dev, 7)
    _send(ws_server, dev, 7, "queued")
    async with open_browser(ws_server, dev, user_id=7, key="h7") as b:
        frame = await b.recv()
        assert frame.startswith('{"data":"queued","event":"ev","fromQueue":true,"message_send_time":')
        assert frame.endswith(',"pipe":"msg"}')
        await b.sync()
        _send(ws_server, dev, 7, "live")
        assert await b.recv() == '{"data":"live","event":"ev","pipe":"msg"}'  # byte for byte
        await b.send("ack", "anything")  # not announced: not a command for this session
        assert '"error":"Unknown command"' in await b.recv()
    assert _unacked(ws_server, dev, 7) == []


async def test_a_backlog_larger_than_the_send_bound_arrives_whole_and_in_order(tuned_server: ServerProcess,
                                                                              dev: int) -> None:
    """5,000 × 1 KB queued, a send bound of 256 KB, a session without acks: it used to get a few dozen
    messages, be closed as a slow consumer, and lose the rest (already deleted)."""
    srv = tuned_server
    _auth(srv, dev, 8)
    count = 5_000
    assert count * 1024 > 10 * MAX_QUEUED_BYTES
    conn = srv.connect(dev)
    try:
        cur = conn.cursor()
        for i in range(count):
            cur.execute(f"INSERT INTO users_messages (id, event, message) VALUES (8, 'ev', '{i:05d}{'x' * 1019}')")
    finally:
        conn.close()
    async with open_browser(srv, dev, user_id=8, key="h8") as b:
        got = [orjson.loads(f)["data"][:5] for f in await b.recv_many(count, timeout=120)]
        assert got == [f"{i:05d}" for i in range(count)]
    assert _unacked(srv, dev, 8) == []


@pytest.fixture(scope="module")
def bounded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("cometql-bounded"), env={
        "COMETQL_QUEUE_MAX_MESSAGES": "3", "COMETQL_QUEUE_MAX_BYTES": "1000"}).start()
    wait_for_port(srv.ws_port)
    yield srv
    srv.stop()


def test_a_full_queue_refuses_inserts_with_a_clear_error(bounded_server: ServerProcess, dev: int) -> None:
    conn = bounded_server.connect(dev)
    try:
        cur = conn.cursor()
        for i in range(3):
            cur.execute(f"INSERT INTO users_messages (id, event, message) VALUES (9, 'ev', 'm{i}')")
        with pytest.raises(pymysql.MySQLError) as caught:
            cur.execute("INSERT INTO users_messages (id, event, message) VALUES (9, 'ev', 'one too many')")
        code, text = caught.value.args
        assert code == 429 and text.startswith("Queue is full: the message queue of user 9 is full")
        cur.execute("INSERT INTO users_messages (id, event, message) VALUES (10, 'ev', 'another user')")
        cur.execute("DELETE FROM users_messages WHERE id = 9")
        cur.execute("INSERT INTO users_messages (id, event, message) VALUES (9, 'ev', 'room again')")
        cur.execute("SELECT message FROM users_messages WHERE id = 9")
        assert cur.fetchall() == (("room again",),)
        cur.execute("INSERT INTO users_messages (id, event, message) VALUES (12, 'ev', 'a'), (12, 'ev', 'b')")
        with pytest.raises(pymysql.MySQLError):  # a statement over the bound stores none of its rows
            cur.execute("INSERT INTO users_messages (id, event, message) VALUES (12, 'ev', 'c'), (12, 'ev', 'd')")
        cur.execute("INSERT INTO users_messages (id, event, message) VALUES (12, 'ev', 'e')")
        cur.execute("SELECT message FROM users_messages WHERE id = 12")
        assert cur.fetchall() == (("a",), ("b",), ("e",))
    finally:
        conn.close()


async def test_acknowledgements_are_not_rate_limited(ws_server: ServerProcess, dev: int) -> None:
    """A backlog's acks come as fast as its pages; past the command burst (200) they still count."""
    _auth(ws_server, dev, 13)
    async with open_browser(ws_server, dev, user_id=13, key="h13", caps="ack") as b:
        for i in range(300):
            await b.send("ack", f"unknown-{i}")
        await b.sync()  # answered, and nothing before it: no rate-limit error frame, not closed
