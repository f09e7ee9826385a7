"""What a browser session costs the server by itself: memory while idle, work to open one.

These are the figures that decide how many users one machine holds and how
fast it takes them back after a restart, independent of any traffic: ``idle``
grows the session count in steps on one pool (sessions are added, not
reopened, so each step measures only the new ones against a baseline taken
after a warm-up), and ``connect`` opens sessions as fast as the clients can.
Both check the server's own count rather than trusting the clients, and leave
no session behind for the next scenario.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from ._context import Context, cpu_notes, insert_sql, merge, require_open, share
from ._results import Result, Target

__all__ = ["connect", "idle"]


def idle(ctx: Context, ns: Sequence[int] = (1000, 10000), channels: int = 100, warmup: int = 20) -> list[Result]:
    """Server RSS per idle subscribed session at each N (sessions are added, not reopened)."""
    notes: list[str] = []
    if not ctx.server.started_here:
        notes.append("a server that held sessions before reuses the memory they freed: "
                     "a freshly started server gives the true cost")
    steps = sorted({ctx.cap(n, notes) for n in ns})
    k = max(1, channels)
    names = [ctx.channel("idle", i) for i in range(k)]
    results: list[Result] = []
    with ctx.pool(steps[-1]) as pool:
        base = ctx.online()
        summary = ctx.open(pool, [ctx.channel("warm", 0)] * warmup, "idle: warm-up sessions")
        require_open(summary, warmup)
        pool.broadcast(("close",), 30)
        ctx.wait_online(base)
        time.sleep(0.5)
        rss0 = ctx.server.rss_kb()
        opened = 0
        for n in steps:
            assigned = [names[i % k] for i in range(opened, n)]
            summary = ctx.open(pool, assigned, f"idle: opening sessions to N={n:,}")
            require_open(summary, len(assigned))
            opened = n
            ctx.wait_subscribed(Counter(names[i % k] for i in range(n)))
            result = Result("idle", f"idle N={n:,}", {"n": n, "channels": k})
            result.notes.extend(notes)
            # a publish on a few channels must reach every session subscribed to them
            sample = names[:min(k, 4)]
            event = f"alive{n}"
            pool.broadcast(("reset", f'"event":"{event}"'.encode(), False), 10)
            for name in sample:
                ctx.admin.execute(insert_sql(name, event, "ping"))
            seen = merge(pool.broadcast(("wait", dict.fromkeys(sample, 1), 20.0, 0.05), 30))
            sampled = sum(seen["counts"].values())
            time.sleep(1.0)  # let the server settle before reading its memory
            rss = ctx.server.rss_kb()
            online = ctx.online_since(base)
            per_session = None if rss is None or rss0 is None else (rss - rss0) / n
            result.add("server RSS per session", per_session, "KB", Target("<=", 5))
            result.add("server RSS", None if rss is None else rss / 1024, "MB")
            result.add("sessions online", online, "", Target(">=", n))
            result.add("sample reached by a publish", 100 * seen["counts"].get(1, 0) / max(1, sampled), "%",
                       Target(">=", 100))
            result.details.update({"rss0_kb": rss0, "rss_kb": rss, "sampled": sampled, "lost": seen["lost"],
                                   "open_s": (summary["end_ns"] - summary["start_ns"]) / 1e9})
            if rss is None:
                result.notes.append("memory not measured: pass --pid of the server")
            results.append(result)
        pool.broadcast(("close",), 60)
    ctx.wait_online(base, timeout=60)
    return results


def connect(ctx: Context, n: int = 5000, concurrency: int = 64) -> Result:
    """New sessions per second: handshake until serverInfo, N in all, as fast as the clients can."""
    notes: list[str] = []
    n = ctx.cap(n, notes)
    result = Result("connect", f"connect N={n:,}", {"n": n, "concurrency": concurrency}, notes=notes)
    with ctx.pool(n) as pool:
        base = ctx.online()
        meter = ctx.server_meter()
        summary = ctx.open(pool, [""] * n, f"connect: {n:,} new sessions", concurrency=concurrency)
        server_cpu = share(meter)
        server_seconds = None if meter is None else meter.seconds()[0]
        online = ctx.online_since(base)
        seconds = (summary["end_ns"] - summary["start_ns"]) / 1e9
        result.add("sessions/s", summary["ok"] / seconds, "/s", Target(">=", 5000))
        result.add("sessions opened", summary["ok"], "", Target(">=", n))
        # the server's own cost, robust to a loaded machine (the rate is not): /proc ticks over the window
        result.add("server CPU per session opened", None if server_seconds is None
                   else 1e6 * server_seconds / max(1, summary["ok"]), "µs")
        result.add("sessions online", online, "", Target(">=", n))
        pool.broadcast(("close",), 30)
    result.add("all closed sessions gone after", ctx.wait_online(base, timeout=60), "s")
    result.details.update({"failed": summary["failed"], "errors": summary["errors"], "seconds": seconds})
    cpu_notes(result, summary["client_cpu"], server_cpu)
    return result
