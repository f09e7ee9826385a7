#!/usr/bin/env python3
"""Publish-to-delivery latency on a channel with history vs one without (issue 13: channel offsets).

    PYTHONPATH=. .venv/bin/python bench/history_latency.py [-n 300]

Starts a redis-server and two CometQL nodes on it (a cluster), plus one node on SQLite. For each
setup a WebSocket session with the ``offset`` capability subscribes to two channels: ``plain``
(no history: delivered as soon as the INSERT is decided) and ``trust_kept`` (history: its offset
is assigned where the message is stored, so delivery waits for that: on SQLite the group commit,
in a cluster the Redis MULTI and the node reading its own bus entry back). Messages are published
on the node that holds the session (and, in the cluster, on the other node), one at a time; the
latency is from just before the INSERT is sent to the frame's arrival. Prints median / p90 / p99
in milliseconds. The two channels alternate message by message, so both see the same load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.redis_server import RedisServer  # noqa: E402
from tests.servers import ServerProcess  # noqa: E402
from tests.web.conftest import wait_for_port  # noqa: E402

DEV = 1
CHANNELS = ("plain", "trust_kept")


async def measure(session_node: ServerProcess, publish_node: ServerProcess, n: int) -> dict[str, list[float]]:
    """Alternate one message on each channel, n of each (after 20 of each to warm up)."""
    url = (f"ws://{session_node.host}:{session_node.ws_port}/ws/sesion=&myid=0&devid={DEV}&v=4.08"
           f"&uuid=bench{session_node.port}x{publish_node.port}&api=js&caps=offset")
    conn = publish_node.connect(DEV)
    cur = conn.cursor()
    samples: dict[str, list[float]] = {c: [] for c in CHANNELS}
    async with open_websocket_url(url) as ws:
        await ws.get_message()  # serverInfo
        await ws.send_message("subscription\n" + "\n".join(CHANNELS))
        await ws.send_message("pipe_count\nweb_sync\nsync\n")
        while '"marker":"sync"' not in str(await ws.get_message()):
            pass
        for i in range(n + 20):
            for channel in CHANNELS:
                started = time.perf_counter()
                cur.execute(f"INSERT INTO pipes_messages (name, event, message) VALUES ('{channel}', 'ev', 'm{i}')")
                while f'"m{i}"' not in str(await ws.get_message()):
                    pass
                if i >= 20:
                    samples[channel].append((time.perf_counter() - started) * 1000)
    conn.close()
    return samples


def report(label: str, samples: list[float]) -> None:
    q = statistics.quantiles(samples, n=100)
    print(f"{label:<46} n={len(samples):4d}  median {statistics.median(samples):6.2f} ms"
          f"  p90 {q[89]:6.2f} ms  p99 {q[98]:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=300, help="samples per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "redis").mkdir()
        redis = RedisServer(base / "redis").start()
        nodes = [ServerProcess(base / f"node{i}", extra_args=("--store", redis.url)).start() for i in range(2)]
        single = ServerProcess(base / "sqlite").start()
        try:
            for node in (*nodes, single):
                wait_for_port(node.ws_port)
            a, b = nodes
            for label, session_node, publish_node in (("SQLite", single, single), ("cluster, same node", a, a),
                                                      ("cluster, published on the other node", a, b)):
                samples = trio.run(measure, session_node, publish_node, args.n)
                for channel in CHANNELS:
                    report(f"{label}: {channel}", samples[channel])
        finally:
            for node in (*nodes, single):
                node.stop()
            redis.stop()


if __name__ == "__main__":
    main()
