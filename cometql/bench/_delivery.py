"""How fast a publish reaches the browsers: one burst to many (fanout), a steady stream (latency).

The two ask different questions of the same path. ``fanout`` times a single
INSERT to N subscribers of one channel: whether the INSERT's OK comes back
before the frames go out, and how long until the first and the last
subscriber have it; it repeats a few rounds and reports medians, because one
round on a shared machine is noise. Its clock starts just before the INSERT
leaves this process and the clients stamp each frame when their event loop
reads it (CLOCK_MONOTONIC, shared by all processes), so a client's own
scheduling is part of "first"; they are told to wait before the INSERT goes
out, so nothing of the benchmark's own runs in the window. ``latency`` publishes at a steady rate
from its own process (the message is the send time, so every delivery is
measured, not a sample) and reports percentiles; the publisher notes when it
could not keep the rate, since a late publisher flatters the latencies.

Both check that every subscriber got exactly what was published: a fast
number with a lost or duplicated frame is not a result.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from multiprocessing.connection import Connection

from ._context import BUSY, Context, cpu_notes, insert_sql, merge, ms, percentile, require_open, share
from ._loadgen import BenchError
from ._mysql_client import MySQLClient, com_query, sql_quote
from ._procfs import CpuMeter
from ._results import Result, Target

__all__ = ["fanout", "latency"]

FANOUT_TARGETS = {1000: Target("<=", 15), 5000: Target("<=", 60)}


def fanout(ctx: Context, ns: Sequence[int] = (1000, 5000), rounds: int = 3) -> list[Result]:
    """N subscribers on one channel, one INSERT: its round trip, first and last delivery (median of rounds)."""
    results = []
    for n in ns:
        notes: list[str] = []
        n = ctx.cap(n, notes)
        name = ctx.channel("fan", n)
        result = Result("fanout", f"fanout N={n:,}", {"n": n, "rounds": rounds}, notes=notes)
        base = ctx.online()
        with ctx.pool(n) as pool:
            require_open(ctx.open(pool, [name] * n, f"fanout: {n:,} subscribers"), n)
            ctx.wait_subscribed(Counter({name: n}))
            rows = []
            with ctx.reporter.phase(f"fanout: {rounds} publishes to {n:,}", total=rounds) as phase:
                for r in range(rounds):
                    event = f"f{r}"
                    pool.broadcast(("reset", f'"event":"{event}"'.encode(), False), 10)
                    packet = com_query(insert_sql(name, event, "fanout"))
                    # the clients wait before the INSERT leaves: sending them "wait" after its OK put this
                    # process's work (and theirs) on the two cores just as the first frames went out
                    waiting = pool.post([("wait", {name: 1}, 30.0, 0.1)] * len(pool))
                    time.sleep(0.05)
                    meter = ctx.server_meter()
                    t0 = time.monotonic_ns()
                    ctx.admin.execute_packet(packet)
                    t1 = time.monotonic_ns()
                    seen = merge(pool.collect(waiting, "wait", 40))
                    window = max(1, seen["first_max_ns"] - t0)
                    rows.append({
                        "rtt_ms": ms(t1 - t0),
                        "first_ms": ms(seen["first_min_ns"] - t0) if seen["first_min_ns"] else None,
                        "last_ms": ms(window),
                        "exactly_once": seen["counts"].get(1, 0),
                        "missing": seen["counts"].get(0, 0),
                        "duplicated": sum(v for c, v in seen["counts"].items() if c > 1),
                        "other_frames": seen["other"],
                        "client_cpu_in_window": seen["client_busy_cpu_s"] * 1e9 / window,
                        "server_cpu": share(meter),
                    })
                    phase.advance()
                    time.sleep(0.2)
            pool.broadcast(("close",), 30)
        med = {key: statistics.median(row[key] for row in rows) for key in ("rtt_ms", "last_ms")}
        firsts = [row["first_ms"] for row in rows if row["first_ms"] is not None]
        result.add("INSERT round trip", med["rtt_ms"], "ms", Target("<=", 2) if n == 1000 else None)
        result.add("first subscriber has it", statistics.median(firsts) if firsts else None, "ms")
        result.add("last subscriber has it", med["last_ms"], "ms", FANOUT_TARGETS.get(n))
        result.add("deliveries/s", n / (med["last_ms"] / 1000), "/s")
        result.add("subscribers with exactly one frame", 100 * min(r["exactly_once"] for r in rows) / n, "%",
                   Target(">=", 100))
        result.details["rounds"] = rows
        client_cpu = statistics.median(r["client_cpu_in_window"] for r in rows)
        result.details["client_cpu_cores_in_window"] = round(client_cpu, 3)
        if client_cpu >= BUSY * (os.cpu_count() or 1) - 1:
            result.notes.append(f"the load clients used {client_cpu:.1f} cores while the frames arrived: "
                                "on this machine they compete with the server, so 'last' includes client time")
        ctx.wait_online(base)
        results.append(result)
    return results


def _steady_publisher(server: tuple[str, int, str, str], channels: list[str], rate: float, total: int,
                      conn: Connection) -> None:
    """Publish ``total`` INSERTs at ``rate``/s round-robin over ``channels``; the message is the send time."""
    host, port, user, password = server
    client = MySQLClient(host, port, user, password)
    interval = 1e9 / rate
    conn.send(("ready", None))
    cpu = CpuMeter()
    rtts = array("q")
    start = time.monotonic_ns() + 20_000_000
    late_max = 0
    prefix = [f"INSERT INTO pipes_messages (name, event, message) VALUES ({sql_quote(c)}, 'lat', '"
              for c in channels]
    for i in range(total):
        due = start + int(i * interval)
        now = time.monotonic_ns()
        if due > now:
            time.sleep((due - now) / 1e9)
        sent = time.monotonic_ns()
        late_max = max(late_max, sent - due)
        client.execute_packet(com_query(f"{prefix[i % len(channels)]}{sent}')"))
        rtts.append(time.monotonic_ns() - sent)
        if i % 50 == 0:
            conn.send(("progress", i))
    elapsed = time.monotonic_ns() - start
    client.close()
    conn.send(("done", {"elapsed_s": elapsed / 1e9, "late_max_ms": late_max / 1e6, "cpu_share": cpu.share(),
                        "rtts": rtts.tobytes()}))


def _run_publisher(ctx: Context, channels: list[str], rate: float, total: int) -> dict:
    mpc = mp.get_context("spawn")
    parent, child = mpc.Pipe()
    srv = ctx.server
    proc = mpc.Process(target=_steady_publisher, daemon=True, name="cometql-bench-publisher",
                       args=((srv.host, srv.mysql_port, str(ctx.dev_id), srv.password), channels, rate, total, child))
    proc.start()
    child.close()
    try:
        with ctx.reporter.phase(f"latency: publishing {total:,} at {rate:g}/s", total=total) as phase:
            deadline = time.monotonic() + 30 + 3 * total / rate
            while time.monotonic() < deadline:
                if not parent.poll(0.5):
                    if not proc.is_alive():
                        raise BenchError("the publisher process died")
                    continue
                kind, body = parent.recv()
                if kind == "progress":
                    phase.update(body)
                elif kind == "done":
                    phase.update(total)
                    return body
            raise BenchError("the publisher did not finish in time")
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()


def latency(ctx: Context, rate: float = 100, duration: float = 10, channels: int = 10,
            subscribers: int = 1000) -> Result:
    """INSERT-to-receive latency at a steady publish rate, over every delivery."""
    notes: list[str] = []
    subscribers = ctx.cap(subscribers, notes)
    names = [ctx.channel("lat", m) for m in range(channels)]
    assigned = [names[i % channels] for i in range(subscribers)]
    total = max(1, round(rate * duration))
    per_channel = Counter(names[i % channels] for i in range(total))
    subs = Counter(assigned)
    expected_deliveries = sum(per_channel[c] * subs[c] for c in names)
    result = Result("latency", f"latency {subscribers:,} subs, {rate:g}/s",
                    {"rate": rate, "duration": duration, "channels": channels, "subscribers": subscribers},
                    notes=notes)
    with ctx.pool(subscribers) as pool:
        base = ctx.online()
        require_open(ctx.open(pool, assigned, f"latency: {subscribers:,} subscribers"), subscribers)
        ctx.wait_subscribed(subs)
        pool.broadcast(("reset", b'"event":"lat"', True), 10)
        meter = ctx.server_meter()
        pub = _run_publisher(ctx, names, rate, total)
        server_cpu = share(meter)
        seen = merge(replies := pool.broadcast(("wait", dict(per_channel), 30.0, 0.2), 40))
        pool.broadcast(("close",), 30)
    lat = array("q")
    for reply in replies:
        lat.frombytes(reply["latencies"])
    ordered = sorted(lat)
    rtts = sorted(array("q", pub["rtts"]))
    default = rate == 100 and subscribers == 1000
    result.add("p50", ms(statistics.median(ordered)) if ordered else None, "ms")
    result.add("p99", ms(percentile(ordered, 0.99)) if ordered else None, "ms", Target("<=", 10) if default else None)
    result.add("max", ms(ordered[-1]) if ordered else None, "ms")
    result.add("deliveries received", 100 * len(ordered) / expected_deliveries, "%", Target(">=", 100))
    result.add("INSERT round trip p99", ms(percentile(rtts, 0.99)), "ms")
    result.details.update({"published": total, "expected_deliveries": expected_deliveries,
                           "received": len(ordered), "short_sessions": seen["short"], "lost": seen["lost"],
                           "publisher": {k: v for k, v in pub.items() if k != "rtts"},
                           "min_ms": ms(ordered[0]) if ordered else None})
    if pub["elapsed_s"] > duration * 1.05 + 0.1 or pub["late_max_ms"] > 2 * 1000 / rate:
        result.notes.append(f"the publisher could not keep the rate: {total} INSERTs took {pub['elapsed_s']:.2f} s, "
                            f"up to {pub['late_max_ms']:.1f} ms late")
    cpu_notes(result, [*seen["client_cpu"], pub["cpu_share"]], server_cpu)
    ctx.wait_online(base)
    return result
