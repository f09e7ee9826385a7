"""The benchmark scenarios: idle, fanout, latency, connect, insert.

Each takes a ``Context`` (the server, a CometQL admin connection, a reporter)
and returns ``Result``s. Browser sessions live in ``ClientPool`` worker
processes; CometQL statements go through the raw ``MySQLClient``. Every time is
CLOCK_MONOTONIC (``time.monotonic_ns``), which all processes on Linux share, so
a publisher's send time and a worker's receive time can be subtracted.

Channel names carry a per-run token, so runs against a shared server (the
tests' session server, a developer's running one) do not see each other.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import secrets
import statistics
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from ._loadgen import MAX_PER_WORKER, BenchError, ClientPool
from ._mysql_client import MySQLClient, com_query, sql_quote
from ._procfs import CpuMeter
from ._report import Reporter
from ._results import Result, Target
from ._server import Server

__all__ = ["Context", "connect", "fanout", "idle", "insert", "latency"]

INSERT_MESSAGE = "hello from the benchmark"
BUSY = 0.9  # a process at this share of one core or more counts as saturated


def insert_sql(channel: str, event: str, message: str) -> str:
    return (f"INSERT INTO pipes_messages (name, event, message) VALUES "
            f"({sql_quote(channel)}, {sql_quote(event)}, {sql_quote(message)})")


@dataclass
class Context:
    server: Server
    reporter: Reporter = field(default_factory=lambda: Reporter(quiet=True))
    dev_id: int = 77
    #: worker processes per pool (None: enough for the open-files limit, at least 2)
    client_procs: int | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    _admin: MySQLClient | None = None

    @property
    def admin(self) -> MySQLClient:
        """One CometQL connection for control statements and timed single INSERTs."""
        if self._admin is None:
            self._admin = self.server.mysql(self.dev_id)
        return self._admin

    def channel(self, kind: str, index: int | str) -> str:
        return f"{kind}_{self.token}_{index}"

    def pool(self, sessions: int) -> ClientPool:
        needed = max(1, math.ceil(sessions / MAX_PER_WORKER))
        return ClientPool(self.server.host, self.server.ws_port, self.dev_id, max(needed, self.client_procs or 2))

    def online(self) -> int:
        status = self.admin.status()  # a cluster node also counts the other nodes' sessions
        return int(status.get("cluster_frontend_online", status["frontend_online"]))

    def published(self) -> int:
        return int(self.admin.status()["messages_published"])

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


# ------------------------------------------------------------------------------------------- helpers


def _cap(ctx: Context, n: int, result_notes: list[str]) -> int:
    """``n`` limited to what the server's open-files limit allows (noted when it bites)."""
    cap = ctx.server.max_sessions()
    if cap is not None and n > cap:
        result_notes.append(f"N capped at {cap:,}: the server's open-files limit is {cap + 100:,} "
                            "(it cannot be raised on this machine)")
        return cap
    return n


def _open(ctx: Context, pool: ClientPool, channels: Sequence[str], what: str, concurrency: int = 64) -> dict:
    """Open one session per channel entry, with a progress bar; fail unless all opened."""
    with ctx.reporter.phase(what, total=len(channels)) as phase:
        replies = pool.open(channels, timeout=60 + len(channels) / 100, concurrency=concurrency,
                            progress=phase.advance)
        phase.update(sum(r["ok"] for r in replies))
    failed = sum(r["failed"] for r in replies)
    summary = {
        "ok": sum(r["ok"] for r in replies),
        "failed": failed,
        "start_ns": min(r["start_ns"] for r in replies),
        "end_ns": max(r["end_ns"] for r in replies),
        "client_cpu": [r["cpu_share"] for r in replies],
        "errors": [e for r in replies for e in r["errors"]][:3],
    }
    return summary


def _require_open(summary: dict, wanted: int) -> None:
    if summary["failed"]:
        raise BenchError(f"{summary['failed']} of {wanted} sessions failed to open: {summary['errors']}")


def _wait_subscribed(ctx: Context, expected: Counter[str], timeout: float = 30.0) -> None:
    """Poll the ``pipes`` table until every channel has its expected subscriber count."""
    names = sorted(expected)
    deadline = time.monotonic() + timeout
    while True:
        seen: dict[str, int] = {}
        for i in range(0, len(names), 200):
            batch = ", ".join(sql_quote(n) for n in names[i:i + 200])
            for name, users in ctx.admin.query(f"SELECT name, users FROM pipes WHERE name IN ({batch})"):
                seen[str(name)] = int(users or 0)
        if all(seen.get(n, 0) >= expected[n] for n in names):
            return
        if time.monotonic() > deadline:
            short = sum(max(0, expected[n] - seen.get(n, 0)) for n in names)
            raise BenchError(f"{short} subscriptions had not landed after {timeout:.0f} s")
        time.sleep(0.05)


def _wait_online(ctx: Context, target: int, timeout: float = 30.0) -> float:
    """Seconds until the server counts ``target`` browser sessions (closed ones have left)."""
    start = time.monotonic()
    while ctx.online() != target:
        if time.monotonic() - start > timeout:
            raise BenchError(f"the server still counts {ctx.online()} sessions, expected {target}")
        time.sleep(0.05)
    return time.monotonic() - start


def _merge(replies: Iterable[dict]) -> dict:
    """One view of several workers' ``wait`` replies."""
    replies = list(replies)
    counts: Counter[int] = Counter()
    for r in replies:
        counts.update({int(k): v for k, v in r["counts"].items()})
    firsts = [r["first_min_ns"] for r in replies if r["first_min_ns"]]
    return {
        "counts": counts,
        "lost": sum(r["lost"] for r in replies),
        "short": sum(r["short"] for r in replies),
        "frames": sum(r["frames"] for r in replies),
        "other": sum(r["other"] for r in replies),
        "first_min_ns": min(firsts, default=0),
        "first_max_ns": max((r["first_max_ns"] for r in replies), default=0),
        "last_max_ns": max((r["last_max_ns"] for r in replies), default=0),
        "client_cpu": [r["cpu_share"] for r in replies],
        "client_busy_cpu_s": sum(r["busy_cpu_s"] for r in replies),
    }


def _cpu_notes(result: Result, client_cpu: Sequence[float], server_cpu: float | None) -> None:
    """Record CPU shares and say who was the bottleneck."""
    result.details["client_cpu"] = [round(c, 3) for c in client_cpu]
    result.details["server_cpu"] = None if server_cpu is None else round(server_cpu, 3)
    busiest = max(client_cpu, default=0.0)
    if server_cpu is not None:
        result.add("server CPU (of one core)", 100 * server_cpu, "%")
    result.add("busiest client process CPU", 100 * busiest, "%")
    if busiest >= BUSY:
        result.notes.append(f"a load client process ran at {busiest:.0%} of a core: the clients may have "
                            "limited this figure")
    if server_cpu is not None and server_cpu >= BUSY:
        result.notes.append(f"the server ran at {server_cpu:.0%} of a core (server-bound)")
    cores = os.cpu_count() or 1
    total = sum(client_cpu) + (server_cpu or 0.0)
    if total >= BUSY * cores and busiest < BUSY:
        result.notes.append(f"the machine's {cores} cores were busy ({total:.0%} of a core in all): clients and "
                            "server competed for CPU")


def _ms(ns: float) -> float:
    return ns / 1e6


def _percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _server_meter(ctx: Context) -> CpuMeter | None:
    return ctx.server.cpu_meter()


def _share(meter: CpuMeter | None) -> float | None:
    return None if meter is None else meter.share()


# ------------------------------------------------------------------------------------------- idle


def idle(ctx: Context, ns: Sequence[int] = (1000, 10000), channels: int = 100, warmup: int = 20) -> list[Result]:
    """Server RSS per idle subscribed session at each N (sessions are added, not reopened)."""
    notes: list[str] = []
    if not ctx.server.started_here:
        notes.append("a server that held sessions before reuses the memory they freed: "
                     "a freshly started server gives the true cost")
    steps = sorted({_cap(ctx, n, notes) for n in ns})
    k = max(1, channels)
    names = [ctx.channel("idle", i) for i in range(k)]
    results: list[Result] = []
    with ctx.pool(steps[-1]) as pool:
        base = ctx.online()
        summary = _open(ctx, pool, [ctx.channel("warm", 0)] * warmup, "idle: warm-up sessions")
        _require_open(summary, warmup)
        pool.broadcast(("close",), 30)
        _wait_online(ctx, base)
        time.sleep(0.5)
        rss0 = ctx.server.rss_kb()
        opened = 0
        for n in steps:
            assigned = [names[i % k] for i in range(opened, n)]
            summary = _open(ctx, pool, assigned, f"idle: opening sessions to N={n:,}")
            _require_open(summary, len(assigned))
            opened = n
            _wait_subscribed(ctx, Counter(names[i % k] for i in range(n)))
            result = Result("idle", f"idle N={n:,}", {"n": n, "channels": k})
            result.notes.extend(notes)
            # a publish on a few channels must reach every session subscribed to them
            sample = names[:min(k, 4)]
            event = f"alive{n}"
            pool.broadcast(("reset", f'"event":"{event}"'.encode(), False), 10)
            for name in sample:
                ctx.admin.execute(insert_sql(name, event, "ping"))
            seen = _merge(pool.broadcast(("wait", dict.fromkeys(sample, 1), 20.0, 0.05), 30))
            sampled = sum(seen["counts"].values())
            time.sleep(1.0)  # let the server settle before reading its memory
            rss = ctx.server.rss_kb()
            online = ctx.online() - base
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
    _wait_online(ctx, base, timeout=60)
    return results


# ------------------------------------------------------------------------------------------- fanout

FANOUT_TARGETS = {1000: Target("<=", 15), 5000: Target("<=", 60)}


def fanout(ctx: Context, ns: Sequence[int] = (1000, 5000), rounds: int = 3) -> list[Result]:
    """N subscribers on one channel, one INSERT: its round trip, first and last delivery (median of rounds)."""
    results = []
    for n in ns:
        notes: list[str] = []
        n = _cap(ctx, n, notes)
        name = ctx.channel("fan", n)
        result = Result("fanout", f"fanout N={n:,}", {"n": n, "rounds": rounds}, notes=notes)
        base = ctx.online()
        with ctx.pool(n) as pool:
            _require_open(_open(ctx, pool, [name] * n, f"fanout: {n:,} subscribers"), n)
            _wait_subscribed(ctx, Counter({name: n}))
            rows = []
            with ctx.reporter.phase(f"fanout: {rounds} publishes to {n:,}", total=rounds) as phase:
                for r in range(rounds):
                    event = f"f{r}"
                    pool.broadcast(("reset", f'"event":"{event}"'.encode(), False), 10)
                    packet = com_query(insert_sql(name, event, "fanout"))
                    meter = _server_meter(ctx)
                    t0 = time.monotonic_ns()
                    ctx.admin.execute_packet(packet)
                    t1 = time.monotonic_ns()
                    seen = _merge(pool.broadcast(("wait", {name: 1}, 30.0, 0.1), 40))
                    window = max(1, seen["first_max_ns"] - t0)
                    rows.append({
                        "rtt_ms": _ms(t1 - t0),
                        "first_ms": _ms(seen["first_min_ns"] - t0) if seen["first_min_ns"] else None,
                        "last_ms": _ms(window),
                        "exactly_once": seen["counts"].get(1, 0),
                        "missing": seen["counts"].get(0, 0),
                        "duplicated": sum(v for c, v in seen["counts"].items() if c > 1),
                        "other_frames": seen["other"],
                        "client_cpu_in_window": seen["client_busy_cpu_s"] * 1e9 / window,
                        "server_cpu": _share(meter),
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
        _wait_online(ctx, base)
        results.append(result)
    return results


# ------------------------------------------------------------------------------------------- latency


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
    subscribers = _cap(ctx, subscribers, notes)
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
        _require_open(_open(ctx, pool, assigned, f"latency: {subscribers:,} subscribers"), subscribers)
        _wait_subscribed(ctx, subs)
        pool.broadcast(("reset", b'"event":"lat"', True), 10)
        meter = _server_meter(ctx)
        pub = _run_publisher(ctx, names, rate, total)
        server_cpu = _share(meter)
        seen = _merge(replies := pool.broadcast(("wait", dict(per_channel), 30.0, 0.2), 40))
        pool.broadcast(("close",), 30)
    lat = array("q")
    for reply in replies:
        lat.frombytes(reply["latencies"])
    ordered = sorted(lat)
    rtts = sorted(array("q", pub["rtts"]))
    default = rate == 100 and subscribers == 1000
    result.add("p50", _ms(statistics.median(ordered)) if ordered else None, "ms")
    result.add("p99", _ms(_percentile(ordered, 0.99)) if ordered else None, "ms", Target("<=", 10) if default else None)
    result.add("max", _ms(ordered[-1]) if ordered else None, "ms")
    result.add("deliveries received", 100 * len(ordered) / expected_deliveries, "%", Target(">=", 100))
    result.add("INSERT round trip p99", _ms(_percentile(rtts, 0.99)), "ms")
    result.details.update({"published": total, "expected_deliveries": expected_deliveries,
                           "received": len(ordered), "short_sessions": seen["short"], "lost": seen["lost"],
                           "publisher": {k: v for k, v in pub.items() if k != "rtts"},
                           "min_ms": _ms(ordered[0]) if ordered else None})
    if pub["elapsed_s"] > duration * 1.05 + 0.1 or pub["late_max_ms"] > 2 * 1000 / rate:
        result.notes.append(f"the publisher could not keep the rate: {total} INSERTs took {pub['elapsed_s']:.2f} s, "
                            f"up to {pub['late_max_ms']:.1f} ms late")
    _cpu_notes(result, [*seen["client_cpu"], pub["cpu_share"]], server_cpu)
    _wait_online(ctx, base)
    return result


# ------------------------------------------------------------------------------------------- connect


def connect(ctx: Context, n: int = 5000, concurrency: int = 64) -> Result:
    """New sessions per second: handshake until serverInfo, N in all, as fast as the clients can."""
    notes: list[str] = []
    n = _cap(ctx, n, notes)
    result = Result("connect", f"connect N={n:,}", {"n": n, "concurrency": concurrency}, notes=notes)
    with ctx.pool(n) as pool:
        base = ctx.online()
        meter = _server_meter(ctx)
        summary = _open(ctx, pool, [""] * n, f"connect: {n:,} new sessions", concurrency=concurrency)
        server_cpu = _share(meter)
        online = ctx.online() - base
        seconds = (summary["end_ns"] - summary["start_ns"]) / 1e9
        result.add("sessions/s", summary["ok"] / seconds, "/s", Target(">=", 5000))
        result.add("sessions opened", summary["ok"], "", Target(">=", n))
        result.add("sessions online", online, "", Target(">=", n))
        pool.broadcast(("close",), 30)
    result.add("all closed sessions gone after", _wait_online(ctx, base, timeout=60), "s")
    result.details.update({"failed": summary["failed"], "errors": summary["errors"], "seconds": seconds})
    _cpu_notes(result, summary["client_cpu"], server_cpu)
    return result


# ------------------------------------------------------------------------------------------- insert


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
    t_start = clock()
    try:
        for j in range(count):
            t = clock()
            client.execute_packet(packets[(offset + j) % k])
            lat.append(clock() - t)
    except Exception as exc:  # reported, the parent fails the scenario
        conn.send(("done", {"error": repr(exc)}))
        return
    t_end = clock()
    client.close()
    conn.send(("done", {"start_ns": t_start, "end_ns": t_end, "latencies": lat.tobytes(), "cpu_share": cpu.share()}))


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
    pool = None
    try:
        if subscribers:
            subscribers = _cap(ctx, subscribers, notes)
            k = max(1, min(channels, subscribers))
            names = [ctx.channel("ins", i) for i in range(k)]
            assigned = [names[i % k] for i in range(subscribers)]
            pool = ctx.pool(subscribers)
            base = ctx.online()
            _require_open(_open(ctx, pool, assigned, f"insert: {subscribers:,} subscribers"), subscribers)
            _wait_subscribed(ctx, Counter(assigned))
            pool.broadcast(("reset", b'"event":"ins"', False), 10)
        else:
            names = [ctx.channel("ins", 0)]
        before = ctx.published()
        meter = _server_meter(ctx)
        replies = _run_inserters(ctx, names, clients, inserts)
        server_cpu = _share(meter)
        start = min(r["start_ns"] for r in replies)
        wall = (max(r["end_ns"] for r in replies) - start) / 1e9
        total = clients * inserts
        lat = array("q")
        for r in replies:
            lat.frombytes(r["latencies"])
        ordered = sorted(lat)
        reached = ctx.published() - before
        result.add("INSERT/s", total / wall, "/s", Target(">=", 12000) if clients == 8 and not subscribers else None)
        result.add("INSERT p50", _ms(statistics.median(ordered)), "ms")
        result.add("INSERT p99", _ms(_percentile(ordered, 0.99)), "ms")
        result.add("reached the hub", 100 * reached / total, "%", Target(">=", 100))
        result.details.update({"inserts": total, "seconds": wall, "reached_hub": reached})
        client_cpu = [r["cpu_share"] for r in replies]
        if pool is not None:
            expected = _expected_per_channel(names, clients, inserts)
            seen = _merge(pool.broadcast(("wait", dict(expected), 60.0, 0.1), 90))
            wanted = sum(expected[c] * Counter(assigned)[c] for c in names)
            result.add("deliveries/s", seen["frames"] / ((seen["last_max_ns"] - start) / 1e9), "/s")
            result.add("deliveries received", 100 * seen["frames"] / wanted, "%", Target(">=", 100))
            result.details.update({"deliveries": seen["frames"], "expected_deliveries": wanted})
            client_cpu += seen["client_cpu"]
            pool.broadcast(("close",), 30)
            pool.shutdown()
            pool = None
            _wait_online(ctx, base)
        _cpu_notes(result, client_cpu, server_cpu)
    finally:
        if pool is not None:
            pool.shutdown()
    return result
