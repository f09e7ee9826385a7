"""The backend's side: how many INSERTs per second CometQL takes from concurrent clients.

Each client is its own process with a raw MySQL-protocol client and its
statements pre-built, and all start on one event, so the figure is the
server's rate and not Python building SQL or processes starting at different
times. Every OK is counted (what any CppComet-compatible server answers); on
CometQL ``messages_published`` before and after cross-checks that each INSERT
reached the hub, and with subscribers attached every delivery is counted
too: an INSERT's OK alone does not prove the message went anywhere. ``scale``
reuses this scenario for its fan-out and INSERT loads on a cluster.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from multiprocessing.connection import Connection

from ._context import Context, cpu_notes, insert_sql, merge, ms, percentile, require_open, share
from ._loadgen import BenchError, ClientPool
from ._mysql_client import MySQLClient, MySQLError, com_query
from ._procfs import CpuMeter
from ._results import Result, Target

__all__ = ["insert"]

INSERT_MESSAGE = "hello from the benchmark"


def _insert_worker(server: tuple[str, int, str, str], channels: list[str], offset: int, count: int,
                   start: mp.synchronize.Event, conn: Connection) -> None:
    """One CometQL client: ``count`` pre-built INSERTs back to back, each timed."""
    host, port, user, password = server
    client = MySQLClient(host, port, user, password)
    packets = [com_query(insert_sql(c, "ins", INSERT_MESSAGE)) for c in channels]
    k = len(packets)
    conn.send(("ready", None))
    start.wait()
    cpu = CpuMeter()
    lat = array("q")
    clock = time.monotonic_ns
    errors: Counter[str] = Counter()
    t_start = clock()
    try:
        for j in range(count):
            t = clock()
            try:
                client.execute_packet(packets[(offset + j) % k])
            except MySQLError as exc:  # an ERR reply: counted, the connection goes on
                errors[str(exc)[:120]] += 1
            lat.append(clock() - t)
    except Exception as exc:  # reported, the parent fails the scenario
        conn.send(("done", {"error": repr(exc)}))
        return
    t_end = clock()
    client.close()
    conn.send(("done", {"start_ns": t_start, "end_ns": t_end, "latencies": lat.tobytes(), "cpu_share": cpu.share(),
                        "ok": count - sum(errors.values()), "errors": dict(errors)}))


def _expected_per_channel(channels: Sequence[str], clients: int, count: int) -> Counter[str]:
    k = len(channels)
    expected: Counter[str] = Counter({c: clients * (count // k) for c in channels})
    for i in range(clients):
        for j in range(count % k):
            expected[channels[(i + j) % k]] += 1
    return expected


def _run_inserters(ctx: Context, channels: list[str], clients: int, count: int) -> list[dict]:
    mpc = mp.get_context("spawn")
    start = mpc.Event()
    srv = ctx.server
    login = (srv.host, srv.mysql_port, str(ctx.dev_id), srv.password)
    pipes, procs = [], []
    for i in range(clients):
        parent, child = mpc.Pipe()
        proc = mpc.Process(target=_insert_worker, args=(login, channels, i, count, start, child), daemon=True,
                           name=f"cometql-bench-insert-{i}")
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)
    try:
        for parent in pipes:
            if not parent.poll(30):
                raise BenchError("an INSERT client did not log in")
            parent.recv()
        start.set()
        replies = []
        with ctx.reporter.phase(f"insert: {clients} clients × {count:,}", total=clients) as phase:
            for parent in pipes:
                if not parent.poll(60 + count / 100):
                    raise BenchError("an INSERT client did not finish in time")
                body = parent.recv()[1]
                if "error" in body:
                    raise BenchError(f"an INSERT client failed: {body['error']}")
                replies.append(body)
                phase.advance()
        return replies
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def insert(ctx: Context, clients: int = 8, inserts: int = 10000, subscribers: int = 0,
           channels: int = 100) -> Result:
    """CometQL INSERT/s with ``clients`` concurrent connections, ``inserts`` each; optionally with
    subscribers spread over ``channels`` channels that the INSERTs rotate over."""
    notes: list[str] = []
    label = f"insert {clients} clients" + (f", {subscribers:,} subs" if subscribers else "")
    result = Result("insert", label, {"clients": clients, "inserts_per_client": inserts,
                                      "subscribers": subscribers, "channels": channels}, notes=notes)
    pool: ClientPool | None = None
    try:
        if subscribers:
            subscribers = ctx.cap(subscribers, notes)
            k = max(1, min(channels, subscribers))
            names = [ctx.channel("ins", i) for i in range(k)]
            assigned = [names[i % k] for i in range(subscribers)]
            pool = ctx.pool(subscribers)
            base = ctx.online()
            require_open(ctx.open(pool, assigned, f"insert: {subscribers:,} subscribers"), subscribers)
            ctx.wait_subscribed(Counter(assigned))
            pool.broadcast(("reset", b'"event":"ins"', False), 10)
        else:
            names = [ctx.channel("ins", 0)]
        before = ctx.published()
        meter = ctx.server_meter()
        replies = _run_inserters(ctx, names, clients, inserts)
        server_cpu = share(meter)
        start = min(r["start_ns"] for r in replies)
        wall = (max(r["end_ns"] for r in replies) - start) / 1e9
        total = clients * inserts
        lat = array("q")
        for r in replies:
            lat.frombytes(r["latencies"])
        ordered = sorted(lat)
        after = ctx.published()
        oks = sum(r["ok"] for r in replies)
        errors: Counter[str] = Counter()
        for r in replies:
            errors.update(r["errors"])
        result.add("INSERT/s", oks / wall, "/s", Target(">=", 12000) if clients == 8 and not subscribers else None)
        result.add("INSERT p50", ms(statistics.median(ordered)), "ms")
        result.add("INSERT p99", ms(percentile(ordered, 0.99)), "ms")
        result.add("answered OK", 100 * oks / total, "%", Target(">=", 100))
        reached = None if before is None or after is None else after - before
        if reached is None:
            ctx.peer_note("INSERTs counted by their OKs only: the server has no SHOW STATUS messages_published")
        else:
            result.add("reached the hub", 100 * reached / total, "%", Target(">=", 100))
        if errors:
            notes.append("ERR replies: " + ", ".join(f"{k} ×{v}" for k, v in errors.most_common(3)))
        result.details.update({"inserts": total, "ok": oks, "seconds": wall, "reached_hub": reached,
                               "errors": dict(errors)})
        client_cpu = [r["cpu_share"] for r in replies]
        if pool is not None:
            expected = _expected_per_channel(names, clients, inserts)
            seen = merge(pool.broadcast(("wait", dict(expected), 60.0, 0.1), 90))
            wanted = sum(expected[c] * Counter(assigned)[c] for c in names)
            result.add("deliveries/s", seen["frames"] / ((seen["last_max_ns"] - start) / 1e9), "/s")
            result.add("deliveries received", 100 * seen["frames"] / wanted, "%", Target(">=", 100))
            result.details.update({"deliveries": seen["frames"], "expected_deliveries": wanted})
            client_cpu += seen["client_cpu"]
            pool.broadcast(("close",), 30)
            pool.shutdown()
            pool = None
            ctx.wait_online(base)
        cpu_notes(result, client_cpu, server_cpu)
    finally:
        if pool is not None:
            pool.shutdown()
    return result
