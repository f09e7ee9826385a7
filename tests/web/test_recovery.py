"""Channel recovery over the wire (issue 13, item 4; docs/delivery.md "Channel recovery").

A session with the ``offset`` capability learns where each history channel's stream is when it
subscribes, gets every message of such a channel with its ``epoch`` and ``offset``, and after a
reconnect asks ``pipe_log`` for what came after its offset: exactly the missed messages, in order,
then a ``recovery`` frame; or that frame alone with ``recovered`` false when the history was reset.
CppComet's library (no ``caps``) sees none of this.
"""

from __future__ import annotations

import uuid

import orjson

from cometql.hub import _frames as frames

from ..servers import ServerProcess
from ._wire import mysql_rows, open_browser


def channel() -> str:
    return f"trust_rec_{uuid.uuid4().hex[:8]}"


def publish(server: ServerProcess, dev: int, name: str, *messages: str) -> None:
    conn = server.connect(dev)
    try:
        with conn.cursor() as cur:
            for m in messages:
                cur.execute(f"INSERT INTO pipes_messages (name, event, message) VALUES ('{name}', 'ev', '{m}')")
    finally:
        conn.close()


async def test_offsets_reach_capable_sessions_and_recovery_gives_the_missed_ones(ws_server: ServerProcess,
                                                                                dev: int) -> None:
    name = channel()
    async with open_browser(ws_server, dev, caps="offset") as ours, open_browser(ws_server, dev) as stock:
        await ours.send("subscription", name)
        position = orjson.loads(await ours.recv())
        assert position["event"] == "position" and position["data"] == {
            "epoch": "", "history": True, "offset": 0, "pipe": name}  # nothing yet
        await stock.subscribe(name)
        publish(ws_server, dev, name, "a", "b")
        got = [orjson.loads(f) for f in await ours.recv_many(2)]
        epoch = got[0]["epoch"]
        assert [(f["data"], f["offset"], f["epoch"]) for f in got] == [("a", 1, epoch), ("b", 2, epoch)]
        legacy = await stock.recv_many(2)
        assert [orjson.loads(f)["data"] for f in legacy] == ["a", "b"]
        assert all(b'"offset"' not in f.encode() for f in legacy)  # CppComet's bytes
        sent_at = orjson.loads(legacy[0])["message_send_time"]
        assert legacy[0].encode() == frames.pipe_frame(name, "ev", "a", sent_at)
    publish(ws_server, dev, name, *(f"missed {i}" for i in range(5)))
    async with open_browser(ws_server, dev, caps="offset") as back:
        await back.send("subscription", name)
        assert orjson.loads(await back.recv())["data"]["offset"] == 7
        await back.send("pipe_log", name, "mk", epoch, "2")
        replay = [orjson.loads(f) for f in await back.recv_many(6)]
        assert [(f["data"], f["offset"], f["history"]) for f in replay[:5]] == [
            (f"missed {i}", i + 3, True) for i in range(5)]
        assert replay[5]["event"] == "recovery" and replay[5]["marker"] == "mk"
        assert replay[5]["data"] == {"epoch": epoch, "history": True, "offset": 7, "pipe": name, "recovered": True}
        await back.send("pipe_log", name, "mk2", epoch, "7")  # nothing missed: the position alone
        assert orjson.loads(await back.recv())["data"]["recovered"] is True
        await back.silence()


async def test_history_deleted_while_away_is_a_gap(ws_server: ServerProcess, dev: int) -> None:
    name = channel()
    publish(ws_server, dev, name, "old")
    [(epoch,)] = mysql_rows(ws_server, dev, f"SELECT id FROM pipes_messages WHERE name = '{name}'")
    async with open_browser(ws_server, dev, caps="offset") as before:  # the epoch is named after its first message
        await before.send("pipe_log", name, "mk", epoch, "1")
        assert orjson.loads(await before.recv())["data"]["recovered"] is True
    mysql_rows(ws_server, dev, f"DELETE FROM pipes_messages WHERE name = '{name}'")
    publish(ws_server, dev, name, "new")
    async with open_browser(ws_server, dev, caps="offset") as back:
        await back.send("pipe_log", name, "mk", epoch, "1")
        end = orjson.loads(await back.recv())
        assert end["event"] == "recovery" and end["data"]["recovered"] is False
        assert end["data"]["epoch"] not in ("", epoch) and end["data"]["offset"] == 1
        await back.silence()


async def test_a_channel_without_history_says_so(ws_server: ServerProcess, dev: int) -> None:
    async with open_browser(ws_server, dev, caps="offset") as back:
        await back.subscribe("plain_channel")  # no position frame: the sync answer comes first
        await back.send("pipe_log", "plain_channel", "mk", "", "0")
        end = orjson.loads(await back.recv())
        assert end["data"] == {"epoch": "", "history": False, "offset": 0, "pipe": "plain_channel",
                               "recovered": False}
