"""``cometql bench scale -n N``: N subscribed sessions on W workers of one machine, one INSERT to all.

What one machine holds when the sessions are spread over several worker
processes on one Redis (issue 16, target 4): the growth of the workers' total
RSS over the idle cluster, per session; the time to connect them all (until
the cluster counts every subscription); and one INSERT reaching every session
exactly once, timed to the last delivery.

The machine's limits decide the shape of the run, so they are checked first
and the run refuses rather than failing half-way: each worker may hold at most
its open-files limit (20,000 here, not raisable) minus a reserve for the
listeners, Redis connections and CometQL connections, and SO_REUSEPORT spreads
connections by a hash, not evenly, so the average per worker keeps a margin.
The client processes (``_loadgen``) hold at most ``MAX_PER_WORKER`` sessions
each and connect from several loopback addresses, each with its own ephemeral
port range. Every worker's open descriptors are read from /proc after the
connect: the spread is reported.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter

from ._context import Context, insert_sql, merge, require_open
from ._loadgen import LOOPBACK_SOURCES, MAX_PER_WORKER, BenchError, ClientPool
from ._procfs import child_pids, nofile_limit, rss_kb
from ._report import Reporter
from ._results import Result, Target
from ._scale import cluster_ready, redis_server, wait_until
from ._server import start_server

__all__ = ["DEFAULT_WORKERS", "scale_sessions", "workers_needed"]

#: The issue's figure of at least 7 workers for 100,000 sessions on this machine.
DEFAULT_WORKERS = 7
#: Descriptors a worker keeps for itself: listeners, Redis, CometQL connections, epoll, logs.
RESERVE = 300
#: SO_REUSEPORT hashes connections to workers: the busiest one gets more than the average.
SPREAD_MARGIN = 1.15
PER_SESSION_TARGET_KB = 2.0
LAST_DELIVERY_TARGET_MS = 2000.0


def workers_needed(sessions: int, limit: int) -> int:
    """Workers that hold ``sessions`` under an open-files ``limit`` each, with the reserve and the margin."""
    return max(1, math.ceil(sessions * SPREAD_MARGIN / max(1, limit - RESERVE)))


def _loadavg() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def _open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _port_range() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            low, high = (int(x) for x in f.read().split())
        return high - low + 1
    except (OSError, ValueError):
        return 28_232  # Linux's default range


def _check_limits(sessions: int, workers: int, limit: int) -> list[str]:
    """Refuse a run the machine cannot hold; notes about the limits that apply."""
    need = workers_needed(sessions, limit)
    if workers < need:
        raise BenchError(f"{sessions:,} sessions need at least {need} workers here: each may hold about "
                         f"{limit - RESERVE:,} (open-files limit {limit:,} minus {RESERVE} reserved) and "
                         f"SO_REUSEPORT spreads unevenly (margin {SPREAD_MARGIN}x)")
    ports = _port_range()
    per_source = math.ceil(sessions / len(LOOPBACK_SOURCES))
    if per_source > ports:
        raise BenchError(f"{sessions:,} sessions from {len(LOOPBACK_SOURCES)} loopback addresses need "
                         f"{per_source:,} ephemeral ports each; the range has {ports:,}")
    return [f"open-files limit {limit:,} per process; {sessions / workers:,.0f} sessions per worker on average "
            f"(at most about {limit - RESERVE:,})"]


def scale_sessions(reporter: Reporter, sessions: int = 100_000, workers: int = DEFAULT_WORKERS,
                   dev_id: int = 77, client_procs: int | None = None) -> Result:
    limit = nofile_limit()  # the workers inherit this process's limit
    notes = _check_limits(sessions, workers, limit)
    procs = max(2, math.ceil(sessions / MAX_PER_WORKER), client_procs or 0)
    result = Result("scale", f"scale {sessions:,} sessions on {workers} workers",
                    {"sessions": sessions, "workers": workers, "client_procs": procs}, notes=notes)
    with redis_server() as redis:
        server = start_server(extra_args=("--store", redis.url, "--workers", str(workers)))
        supervisor, server.pid = server.pid, None  # the workers' memory, not the supervisor's
        ctx = Context(server, reporter, dev_id=dev_id)
        try:
            wait_until(lambda: cluster_ready(ctx, workers), f"{workers} workers did not all join", 60)
            assert supervisor is not None
            pids = child_pids(supervisor) or [supervisor]  # one worker: `serve --workers 1` is the server itself
            if len(pids) != workers:
                raise BenchError(f"expected {workers} worker processes, found {len(pids)}")
            _run(ctx, result, sessions, procs, pids, redis.pid)
        finally:
            ctx.close()
            server.stop()
    return result


def _run(ctx: Context, result: Result, n: int, procs: int, pids: list[int], redis_pid: int) -> None:
    channel = ctx.channel("many", n)
    loads = [_loadavg()]
    with ClientPool(ctx.server.host, ctx.server.ws_port, ctx.dev_id, procs) as pool:
        # warm-up: a few sessions on every worker, then gone, so that the baseline is an idle cluster that
        # has served sessions (the first ones allocate what every later one reuses)
        warm = 20 * len(pids)
        require_open(ctx.open(pool, [ctx.channel("warm", 0)] * warm, "scale: warm-up"), warm)
        pool.broadcast(("close",), 60)
        ctx.wait_online(0, timeout=60)
        time.sleep(2.0)
        rss0 = [rss_kb(p) for p in pids]
        redis0 = rss_kb(redis_pid)
        fds0 = [_open_fds(p) for p in pids]
        start = time.monotonic()
        summary = ctx.open(pool, [channel] * n, f"scale: {n:,} sessions", concurrency=32)
        require_open(summary, n)
        connected_s = (summary["end_ns"] - summary["start_ns"]) / 1e9
        ctx.wait_subscribed(Counter({channel: n}), timeout=120)
        subscribed_s = time.monotonic() - start
        loads.append(_loadavg())
        per_worker = [_open_fds(p) - f for p, f in zip(pids, fds0, strict=True)]
        time.sleep(3.0)  # let every worker apply the others' bus entries before reading memory
        rss = [rss_kb(p) for p in pids]
        growth_kb = sum(rss) - sum(rss0)
        result.add("sessions online (cluster)", ctx.online(), "", Target(">=", n))
        result.add("connect: clients done", connected_s, "s")
        result.add("connect: all subscribed cluster-wide", subscribed_s, "s")
        result.add("workers' RSS growth per session", growth_kb / n, "KB", Target("<=", PER_SESSION_TARGET_KB))
        result.add("workers' RSS, idle cluster", sum(rss0) / 1024, "MB")
        result.add("workers' RSS with the sessions", sum(rss) / 1024, "MB")
        result.add("Redis RSS growth per session", (rss_kb(redis_pid) - redis0) / n, "KB")
        result.add("sessions on the busiest worker", max(per_worker), "")
        result.add("sessions on the least busy worker", min(per_worker), "")
        event = "many"
        pool.broadcast(("reset", f'"event":"{event}"'.encode(), False), 30)
        loads.append(_loadavg())
        t0 = time.monotonic_ns()
        ctx.admin.execute(insert_sql(channel, event, "to all"))
        t1 = time.monotonic_ns()
        seen = merge(pool.broadcast(("wait", {channel: 1}, 30.0, 2.0), 60))
        counts = seen["counts"]
        result.add("INSERT round trip", (t1 - t0) / 1e6, "ms")
        result.add("first delivery", (seen["first_min_ns"] - t0) / 1e6 if seen["first_min_ns"] else None, "ms")
        result.add("last delivery", (seen["last_max_ns"] - t0) / 1e6 if seen["last_max_ns"] else None, "ms",
                   Target("<=", LAST_DELIVERY_TARGET_MS))
        result.add("received exactly once", 100 * counts.get(1, 0) / n, "%", Target(">=", 100))
        result.add("duplicates", sum(v for k, v in counts.items() if k > 1), "", Target("<=", 0))
        result.details.update({
            "rss0_kb": rss0, "rss_kb": rss, "sessions_per_worker": per_worker, "counts": dict(counts),
            "lost": seen["lost"], "client_cpu": [round(c, 3) for c in summary["client_cpu"]],
            "loadavg": loads,
        })
        result.notes.append(f"load average (1, 5, 15 min) before / connected / publish: {' | '.join(loads)}")
        pool.broadcast(("close",), 120)
