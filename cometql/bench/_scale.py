"""``cometql bench scale``: one Redis, 1, 2 and 4 worker processes, and cross-node latency.

Not part of the standard set: it starts its own ``redis-server`` (Debian's
package) and its own servers (``cometql serve --store redis://… --workers W``),
and runs, for each W, two loads that already exist as scenarios:

* fan-out throughput: one INSERT client publishing back to back to one channel
  with ``subscribers`` sessions, deliveries per second until the last frame;
* INSERT/s: ``clients`` concurrent CometQL clients, no subscribers.

Then cross-node latency: two separate nodes A and B; the same steady-rate
latency load with subscribers on B, published once through B (local) and once
through A (every frame crosses Redis). The difference of the p99s is the cost
of the cluster hop.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ._context import Context
from ._delivery import latency
from ._insert import insert
from ._loadgen import BenchError
from ._procfs import CpuMeter, child_pids
from ._report import Reporter
from ._results import Result, Target
from ._server import Server, free_port, start_server

__all__ = ["RedisProcess", "cluster_ready", "redis_server", "scale", "wait_until"]

#: What the issue asks of 2 workers, relative to 1, and of a cross-node hop.
SPEEDUP_TARGET = 1.6
HOP_TARGET_MS = 2.0


@dataclass(frozen=True)
class RedisProcess:
    url: str
    pid: int


@contextmanager
def redis_server() -> Iterator[RedisProcess]:
    """A throw-away redis-server on a free loopback port (no persistence: speed is measured, not safety)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("the scale scenario needs redis-server (Debian package redis-server)")
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="cometql-bench-redis-"))
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _redis_ping(port), "redis-server did not start")
        yield RedisProcess(f"redis://127.0.0.1:{port}/0", proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def _redis_ping(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_until(check: Callable[[], bool], message: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(message)
        time.sleep(0.05)


def _nodes(ctx: Context) -> int:
    return int(ctx.admin.status().get("cluster_nodes", 1))


def cluster_ready(ctx: Context, nodes: int) -> bool:
    try:
        return _nodes(ctx) >= nodes
    except (OSError, BenchError):
        return False


def scale(reporter: Reporter, workers: Sequence[int] = (1, 2, 4), subscribers: int = 2000, messages: int = 200,
          clients: int = 8, inserts: int = 3000, dev_id: int = 77) -> list[Result]:
    results: list[Result] = []
    with redis_server() as redis:
        url = redis.url
        fanout_by_workers: dict[int, float] = {}
        for w in workers:
            server = start_server(extra_args=("--store", url, "--workers", str(w)))
            supervisor, server.pid = server.pid, None  # the supervisor's memory and CPU are not the workers'
            ctx = Context(server, reporter, dev_id=dev_id)
            try:
                wait_until(partial(cluster_ready, ctx, w), f"{w} workers did not all join")
                assert supervisor is not None
                # one worker: `serve --workers 1` is the server itself, no supervisor
                workers_cpu = CpuMeter(*(child_pids(supervisor) or [supervisor]))
                result = Result("scale", f"scale {w} worker{'s' if w > 1 else ''}",
                                {"workers": w, "subscribers": subscribers, "messages": messages,
                                 "clients": clients, "inserts_per_client": inserts})
                workers_cpu.restart()
                fan = insert(ctx, clients=1, inserts=messages, subscribers=subscribers, channels=1)
                cpu_s, _ = workers_cpu.seconds()
                rate = fan.figure("deliveries/s").value or 0.0
                fanout_by_workers[w] = rate
                result.add("fan-out deliveries/s", rate, "/s")
                result.add("fan-out deliveries received", fan.figure("deliveries received").value, "%",
                           Target(">=", 100))
                # the server's own efficiency, whatever the load clients take: the whole run, opening the
                # sessions included (the same for every W), divided into the frames delivered
                delivered = fan.details.get("deliveries", 0)
                result.add("deliveries per worker CPU-second", delivered / cpu_s if cpu_s else None, "/s")
                if w > 1 and 1 in fanout_by_workers:
                    result.add("fan-out vs 1 worker", rate / fanout_by_workers[1], "x",
                               Target(">=", SPEEDUP_TARGET) if w == 2 else None)
                ins = insert(ctx, clients=clients, inserts=inserts)
                result.add("INSERT/s", ins.figure("INSERT/s").value, "/s")
                result.add("INSERT p99", ins.figure("INSERT p99").value, "ms")
                result.notes += fan.notes + ins.notes
                results.append(result)
            finally:
                ctx.close()
                server.stop()
        results.append(_cross_node(reporter, url, dev_id))
    return results


def _cross_node(reporter: Reporter, url: str, dev_id: int) -> Result:
    """Subscribers on node B; the same latency load published through B, then through A."""
    a = start_server(extra_args=("--store", url))
    b = start_server(extra_args=("--store", url))
    result = Result("scale", "cross-node publish (2 nodes)", {"rate": 100, "duration": 5, "subscribers": 1000})
    try:
        p99 = {}
        for label, via in (("local", b), ("cross-node", a)):
            target = Server(b.host, via.mysql_port, b.ws_port, b.password)  # publish via ``via``, browsers on B
            ctx = Context(target, reporter, dev_id=dev_id)
            try:
                wait_until(partial(cluster_ready, ctx, 2), "the two nodes did not see each other")
                run = latency(ctx, rate=100, duration=5, channels=10, subscribers=1000)
            finally:
                ctx.close()
            p99[label] = run.figure("p99").value or 0.0
            result.add(f"p99 published {label}", p99[label], "ms")
            result.add(f"received ({label})", run.figure("deliveries received").value, "%", Target(">=", 100))
        result.add("cross-node p99 minus local p99", p99["cross-node"] - p99["local"], "ms",
                   Target("<=", HOP_TARGET_MS))
    finally:
        a.stop()
        b.stop()
    return result
