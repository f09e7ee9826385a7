"""Exactly-once queue hand-off in a cluster: one node at a time hands out a user's backlog.

Two sessions of one offline user connect to two nodes at the same moment. A
page of the queue is read only under the user's lease in Redis (taken and
renewed by the node reading pages, ``store/redis.py``); the other node waits
for it, then finds what is left. Sessions without acks: each message counts as
delivered once written to one of them, so across both sessions every message
arrives exactly once (before, both nodes flushed the whole queue).
"""

from __future__ import annotations

import orjson
import trio

from ..servers import ServerProcess
from ..web._wire import Browser, eventually, mysql_rows, open_browser

COUNT = 600


async def _collect(b: Browser, into: list[str], done: trio.Event) -> None:
    while not done.is_set():
        with trio.move_on_after(0.2):
            frame = orjson.loads(await b.recv(timeout=60))
            if frame["pipe"] == "msg":
                into.append(frame["data"])


async def test_two_nodes_never_both_hand_out_a_backlog(nodes: list[ServerProcess], dev: int) -> None:
    a, b = nodes[0], nodes[1]
    mysql_rows(a, dev, "INSERT INTO users_auth (id, hash) VALUES (21, 'h21')")
    for start in range(0, COUNT, 200):
        rows = ", ".join(f"(21, 'ev', 'm{i:04d}')" for i in range(start, start + 200))
        mysql_rows(a, dev, f"INSERT INTO users_messages (id, event, message) VALUES {rows}")
    got_a: list[str] = []
    got_b: list[str] = []
    done = trio.Event()
    async with open_browser(a, dev, user_id=21, key="h21") as on_a, \
            open_browser(b, dev, user_id=21, key="h21") as on_b:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_collect, on_a, got_a, done)
            nursery.start_soon(_collect, on_b, got_b, done)
            await eventually(lambda: len(got_a) + len(got_b) >= COUNT, timeout=60)
            await eventually(lambda: mysql_rows(a, dev, "SELECT COUNT(*) FROM users_messages WHERE id = 21")
                             == [("0",)])
            await trio.sleep(3)  # past the lease (2 s): a node still waiting would read now, and find nothing
            done.set()
    assert sorted(got_a + got_b) == [f"m{i:04d}" for i in range(COUNT)]  # each exactly once, in total
    assert got_a == sorted(got_a) and got_b == sorted(got_b)  # and in order on each session
