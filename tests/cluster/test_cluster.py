"""Three nodes, one Redis: any node is as good as any other.

Each node is a separate `cometql serve` process with its own ports; browsers
and backends talk to whichever node, and must not be able to tell.
"""

from __future__ import annotations

import json

import pytest

from cometql.redisurl import RedisAddress
from cometql.store.resp import RedisConnection

from ..servers import ServerProcess
from ..web._wire import eventually, mysql_rows, open_browser

pytestmark = pytest.mark.trio


def insert(node: ServerProcess, dev: int, sql: str) -> None:
    assert mysql_rows(node, dev, sql) == []


def publish(node: ServerProcess, dev: int, channel: str, message: str, event: str = "ev") -> None:
    insert(node, dev, f"INSERT INTO pipes_messages (name, event, message) VALUES ('{channel}', '{event}', '{message}')")


def frame(text: str) -> dict[str, object]:
    return json.loads(text)


async def test_a_publish_on_one_node_reaches_subscribers_on_every_node_once(nodes: list[ServerProcess],
                                                                           dev: int) -> None:
    a, b, c = nodes
    async with open_browser(a, dev) as on_a, open_browser(b, dev) as on_b, open_browser(c, dev) as on_c:
        for browser in (on_a, on_b, on_c):
            await browser.subscribe("chat")
        publish(a, dev, "chat", "from A")
        publish(c, dev, "chat", "from C")
        for browser in (on_a, on_b, on_c):
            got = [frame(f) for f in await browser.recv_many(2)]
            assert [(f["pipe"], f["event"], f["data"]) for f in got] == [("chat", "ev", "from A"),
                                                                         ("chat", "ev", "from C")]
            await browser.silence(0.3)  # exactly once: no copy through another node


async def test_users_messages_reach_the_user_on_another_node_and_are_not_queued(nodes: list[ServerProcess],
                                                                                 dev: int) -> None:
    a, b, c = nodes
    insert(c, dev, "INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with open_browser(b, dev, user_id=7, key="h7") as user:
        assert frame(user.hello)["authorized"] is True
        await user.sync()
        insert(a, dev, "INSERT INTO users_messages (id, event, message) VALUES (7, 'note', 'hello 7')")
        got = frame(await user.recv())
        assert (got["event"], got["data"]) == ("note", "hello 7")
        assert "fromQueue" not in got
        for node in nodes:
            assert mysql_rows(node, dev, "SELECT * FROM users_messages WHERE id = 7") == []


async def test_a_message_queued_via_one_node_is_delivered_when_the_user_connects_to_another(
        nodes: list[ServerProcess], dev: int) -> None:
    a, b, c = nodes
    insert(a, dev, "INSERT INTO users_auth (id, hash) VALUES (8, 'h8')")
    insert(a, dev, "INSERT INTO users_messages (id, event, message) VALUES (8, 'q', 'while away')")
    await eventually(lambda: _queued(c, dev, 8, expect=1))
    async with open_browser(c, dev, user_id=8, key="h8") as user:
        got = frame(await user.recv())
        assert (got["event"], got["data"], got["fromQueue"]) == ("q", "while away", True)
        await user.silence(0.3)
        for node in nodes:  # delivered once, gone everywhere
            await eventually(lambda node=node: _queued(node, dev, 8, expect=0))


def _queued(node: ServerProcess, dev: int, user: int, *, expect: int) -> bool:
    rows = mysql_rows(node, dev, f"SELECT * FROM users_messages WHERE id = {user}")
    assert len(rows) == expect, rows
    return True


async def test_selects_answer_for_the_whole_cluster_on_any_node(nodes: list[ServerProcess], dev: int) -> None:
    a, b, c = nodes
    insert(a, dev, "INSERT INTO users_auth (id, hash) VALUES (5, 'h5')")
    async with open_browser(a, dev) as anon, open_browser(b, dev, user_id=5, key="h5", uuid="u-b") as on_b, \
            open_browser(c, dev) as on_c:
        await anon.subscribe("room")
        await on_b.subscribe("room")
        await on_c.subscribe("room", "other")

        def counts_everywhere() -> bool:
            for node in nodes:
                assert mysql_rows(node, dev, "SELECT name, users FROM pipes WHERE name = 'room'") == [("room", "3")]
                assert mysql_rows(node, dev, "SELECT name, users FROM pipes WHERE name = 'other'") == [("other", "1")]
                users = mysql_rows(node, dev, "SELECT user_id, user_uuid FROM users_in_pipes WHERE name = 'room'")
                assert sorted(users)[-1] == ("5", "u-b") and len(users) == 3
                assert mysql_rows(node, dev, "SELECT * FROM users_time WHERE id = 5") == [("5", "0")]
            return True

        await eventually(counts_everywhere)
    for node in nodes:  # after the user left: a last-seen time, on every node
        await eventually(lambda node=node: _offline(node, dev, 5))


def _offline(node: ServerProcess, dev: int, user: int) -> bool:
    (row,) = mysql_rows(node, dev, f"SELECT * FROM users_time WHERE id = {user}")
    assert int(row[1]) > 0, row
    return True


async def test_online_offline_and_track_events_cross_nodes(nodes: list[ServerProcess], dev: int) -> None:
    a, b, _ = nodes
    insert(a, dev, "INSERT INTO users_auth (id, hash) VALUES (9, 'h9')")
    async with open_browser(a, dev) as watcher:
        await watcher.subscribe("user_status_9", "track_room")
        async with open_browser(b, dev, user_id=9, key="h9", uuid="nine") as user:
            got = frame(await watcher.recv())
            assert (got["pipe"], got["event"]) == ("user_status_9", "online")
            await user.subscribe("track_room")
            got = frame(await watcher.recv())
            assert (got["pipe"], got["event"]) == ("track_room", "subscription")
            assert got["data"] == {"user_id": 9, "uuid": "nine"}
        events = [frame(f) for f in await watcher.recv_many(2)]
        assert {(f["pipe"], f["event"]) for f in events} == {("track_room", "unsubscription"),
                                                            ("user_status_9", "offline")}


async def test_web_pipe_send_from_a_browser_reaches_browsers_on_other_nodes(nodes: list[ServerProcess],
                                                                           dev: int) -> None:
    a, b, c = nodes
    async with open_browser(a, dev) as sender, open_browser(b, dev) as on_b, open_browser(c, dev) as on_c:
        await sender.subscribe("web_room")
        await on_b.subscribe("web_room")
        await on_c.subscribe("web_room")
        await eventually(lambda: _count(a, dev, "web_room", 3))
        await sender.send("web_pipe2", "web_room", "say", "*", "hi all")
        report = frame(await sender.recv())
        assert report["event"] == "answer" and report["data"]["number_messages"] == 2
        for browser in (on_b, on_c):
            got = frame(await browser.recv())
            assert (got["pipe"], got["event"], got["data"]) == ("web_room", "say", "hi all")
        await sender.silence(0.3)  # the sender does not get its own message back from another node


def _count(node: ServerProcess, dev: int, channel: str, n: int) -> bool:
    assert mysql_rows(node, dev, f"SELECT users FROM pipes WHERE name = '{channel}'") == [(str(n),)]
    return True


async def test_deleting_a_users_auth_on_one_node_closes_the_users_sessions_on_another(
        nodes: list[ServerProcess], dev: int) -> None:
    a, _, c = nodes
    insert(a, dev, "INSERT INTO users_auth (id, hash) VALUES (4, 'h4')")
    async with open_browser(c, dev, user_id=4, key="h4") as user:
        await user.sync()
        await eventually(lambda: _online(a, dev, 4))
        insert(a, dev, "DELETE FROM users_auth WHERE id = 4")
        assert await user.closed() is not None


def _online(node: ServerProcess, dev: int, user: int) -> bool:
    assert mysql_rows(node, dev, f"SELECT * FROM users_time WHERE id = {user}") == [(str(user), "0")]
    return True


async def test_settings_history_and_user_data_are_shared(nodes: list[ServerProcess], dev: int) -> None:
    a, b, c = nodes
    insert(a, dev, "INSERT INTO pipes_settings (name, length) VALUES ('logged', 5)")
    await eventually(lambda: _settings(b, dev))
    publish(b, dev, "logged", "one")
    publish(c, dev, "logged", "two")
    insert(c, dev, "INSERT INTO users_data (id, data) VALUES (3, 'profile')")

    def shared() -> bool:
        for node in nodes:
            rows = mysql_rows(node, dev, "SELECT message FROM pipes_messages WHERE name = 'logged'")
            assert [r[0] for r in rows] == ["one", "two"], rows
            assert mysql_rows(node, dev, "SELECT * FROM users_data WHERE id = 3") == [("3", "profile")]
        return True

    await eventually(shared)


def _settings(node: ServerProcess, dev: int) -> bool:
    assert mysql_rows(node, dev, "SELECT * FROM pipes_settings WHERE name = 'logged'") == [("logged", "5")]
    return True


async def test_a_new_node_learns_the_sessions_already_in_the_cluster(nodes: list[ServerProcess], dev: int,
                                                                     redis, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .conftest import start_node

    a = nodes[0]
    async with open_browser(a, dev) as on_a:
        await on_a.subscribe("early")
        late = start_node(redis, tmp_path)
        try:
            assert mysql_rows(late, dev, "SELECT users FROM pipes WHERE name = 'early'") == [("1",)]
            publish(late, dev, "early", "from the new node")
            got = frame(await on_a.recv())
            assert got["data"] == "from the new node"
        finally:
            late.stop()


async def test_foreign_entries_on_the_bus_are_skipped_and_the_cluster_keeps_working(
        nodes: list[ServerProcess], dev: int, redis) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = nodes
    conn = await RedisConnection.open(RedisAddress.parse(redis.url))
    try:
        for junk in (["x", "1"],                                   # no node id
                     ["n", "intruder", "d", "not json"],
                     ["n", "intruder", "d", '[["DropTables", 1]]'],  # JSON, but nothing a node writes
                     ["n", "intruder"]):                            # no data
            await conn.call("XADD", "cq:bus", "*", *junk)
    finally:
        await conn.aclose()
    async with open_browser(b, dev) as on_b:
        await on_b.subscribe("after_junk")
        publish(a, dev, "after_junk", "still fine")
        assert frame(await on_b.recv())["data"] == "still fine"
    for node in nodes:
        assert node.alive


async def test_show_global_status_counts_the_cluster(nodes: list[ServerProcess], dev: int) -> None:
    a, b, c = nodes
    async with open_browser(b, dev) as on_b, open_browser(c, dev) as on_c:
        await on_b.sync()
        await on_c.sync()

        def counted() -> bool:
            status = dict(mysql_rows(a, dev, "SHOW GLOBAL STATUS"))
            assert int(status["cluster_nodes"]) >= 3  # (an intruder of another test may still be heard)
            assert int(status["cluster_frontend_online"]) >= int(status["frontend_online"]) + 2
            return True

        await eventually(counted)
