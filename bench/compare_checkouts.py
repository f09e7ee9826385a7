#!/usr/bin/env python3
"""Before/after comparison of CometQL's server CPU per operation (issue 11: "performance unchanged").

    .venv/bin/python bench/compare_checkouts.py BEFORE_DIR AFTER_DIR [-n 3] [--json FILE]

BEFORE_DIR (A) and AFTER_DIR (B) are checkouts of the repository (git
worktrees). Each of the N runs starts a fresh server of each checkout side by
side (``python -m cometql.cli serve`` with cwd and PYTHONPATH = the checkout,
so it imports that checkout's ``cometql``: checked before the first run, and
the server's cwd is checked after it starts; PYTHONHASHSEED=0 for both). Each
measurement then alternates between the two servers in short slices (A, B, A,
B, ... 10 slices each; B first in every other run), so both see the same
background load on this shared machine, and sums the server's CPU (utime +
stime of /proc/<pid>/stat, all threads) over exactly the slices' windows:

  fanout     server CPU per delivery: 1,000 subscribers on one channel, 500
             INSERTs per side and run, one every 20 ms; a window runs from
             just before a slice's first INSERT until every subscriber has
             all its frames (the INSERTs themselves are ~1% of the work).
             --fanout-rows R: R messages per INSERT (R frames per socket
             waiting together; fewer INSERTs pay off with --fanout-publishes).
  handshake  server CPU per session (open + subscribe + close): 20,000
             sessions per side and run, 64 opening at a time per client
             process (as ``cometql bench connect``), each subscribing to one
             of 10 channels; a window runs from before the first connect until
             the subscriptions have landed, all are closed and the server
             counts none (the admin's polls for that, every 0.1 s, are ~1%).
  insert     server CPU per INSERT INTO pipes_messages: 2 clients paced at
             2,000 INSERTs/s in all, 5 s per side and run, rotating over 10
             channels with one subscriber each (one delivery per INSERT); a
             window ends when every subscriber has every frame.
  ack        server CPU per acknowledged personal message: the harness's
             ``cometql bench ack`` scenario (1,000 ``caps=ack`` sessions, 32
             backends, 20,000 messages; not in the default set, name it with
             --only ack), run --ack-slices times per side and run, A and B
             alternating; its window is the scenario's own (first INSERT until
             the queue is empty again). Also reports its delivered-and-acked/s.

Every measurement warms up first (unmeasured publishes, sessions, INSERTs).
The report gives each run's figure per side, the medians, and the B/A ratio
of the medians and per run (paired: both sides of a run shared the machine's
conditions). Noise measured with A = B on this 2-core machine while others
ran tests: single runs within about ±10 %, medians of 3 within about 3 %; use
-n 5 to see smaller differences. The stat ticks are 10 ms; every measurement
sums 3-9 s of server CPU per side and run.

The load clients are the same code for A and B: the load generator of
``cometql bench`` (``_loadgen.ClientPool``, ``_mysql_client``) imported from
the --harness checkout (default: A), so only the server differs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")
PASSWORD = "CometQLPassword"
DEV = 77
HOST = "127.0.0.1"
METRICS = ("fanout", "handshake", "insert", "ack")
DEFAULT_METRICS = ("fanout", "handshake", "insert")
UNITS = {"fanout": "µs/delivery", "handshake": "µs/session", "insert": "µs/INSERT", "ack": "µs/message"}


# ------------------------------------------------------------------------------------------ /proc


def server_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid`` so far, all its threads (fields 14 and 15 of stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


@dataclass
class Window:
    """Server CPU over one measured window."""

    pid: int
    user0: float = 0.0
    sys0: float = 0.0
    wall0: float = 0.0
    user: float = 0.0
    sys: float = 0.0
    wall: float = 0.0

    def __enter__(self) -> Window:
        self.user0, self.sys0 = server_cpu(self.pid)
        self.wall0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        u, s = server_cpu(self.pid)
        self.user, self.sys, self.wall = u - self.user0, s - self.sys0, time.monotonic() - self.wall0


# ------------------------------------------------------------------------------------------ server


@dataclass
class Server:
    checkout: Path
    mysql_port: int
    ws_port: int
    proc: subprocess.Popen[bytes]
    root: Path
    admin: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        if self.proc.poll() is not None:
            log = (self.root / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"server of {self.checkout} exited ({self.proc.returncode}):\n{log}")

    def stop(self) -> None:
        if self.admin is not None:
            try:
                self.admin.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _server_env(checkout: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETQL_") and k != "PYTHONSAFEPATH"}
    env["PYTHONPATH"] = str(checkout)  # cwd comes first anyway (python -m); this makes it explicit
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONHASHSEED"] = "0"  # the same dict and set layouts in every server: less noise between instances
    return env


def check_imports(checkout: Path) -> str:
    """Where ``cometql`` comes from for a server started in ``checkout`` (must be inside it)."""
    out = subprocess.run([sys.executable, "-c", "import cometql.cli, cometql.server; print(cometql.server.__file__)"],
                         cwd=checkout, env=_server_env(checkout), capture_output=True, text=True, check=True)
    where = Path(out.stdout.strip()).resolve()
    if not where.is_relative_to(checkout.resolve()):
        raise SystemExit(f"a server started in {checkout} would import {where}, not the checkout's code")
    return str(where)


def start_server(checkout: Path, harness: Any) -> Server:
    root = Path(tempfile.mkdtemp(prefix="cometql-compare-"))
    mysql_port, ws_port = _free_port(), _free_port()
    cmd = [sys.executable, "-m", "cometql.cli", "serve", "--host", HOST, "--mysql-port", str(mysql_port),
           "--ws-port", str(ws_port), "--password", PASSWORD, "--data-dir", str(root / "data"),
           "--log-level", "warning"]
    with open(root / "server.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=checkout, env=_server_env(checkout), stdout=log, stderr=subprocess.STDOUT)
    server = Server(checkout, mysql_port, ws_port, proc, root)
    deadline = time.monotonic() + 30
    while True:
        server.check()
        try:
            for port in (mysql_port, ws_port):
                socket.create_connection((HOST, port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"the server of {checkout} did not listen within 30 s") from None
            time.sleep(0.05)
    if os.path.realpath(f"/proc/{proc.pid}/cwd") != str(checkout.resolve()):
        raise RuntimeError("the server runs in the wrong directory")
    server.admin = harness.MySQLClient(HOST, mysql_port, str(DEV), PASSWORD)
    return server


# ------------------------------------------------------------------------------------------ helpers


class Harness:
    """The load generator's pieces, imported from the harness checkout (same for A and B)."""

    def __init__(self, checkout: Path) -> None:
        sys.path.insert(0, str(checkout))  # spawned client processes inherit sys.path
        import cometql
        from cometql.bench import _loadgen, _mysql_client
        where = Path(cometql.__file__).resolve()
        if not where.is_relative_to(checkout.resolve()):
            raise SystemExit(f"the harness imports {where}, not {checkout}")
        self.ClientPool = _loadgen.ClientPool
        self.MySQLClient = _mysql_client.MySQLClient
        self.com_query = _mysql_client.com_query
        self.sql_quote = _mysql_client.sql_quote
        from cometql.bench import _ack, _context, _server
        self.ack = _ack.ack
        self.Context = _context.Context
        self.BenchServer = _server.Server


def insert_sql(h: Harness, channel: str, event: str, message: str, rows: int = 1) -> str:
    row = f"({h.sql_quote(channel)}, {h.sql_quote(event)}, {h.sql_quote(message)})"
    return "INSERT INTO pipes_messages (name, event, message) VALUES " + ", ".join([row] * rows)


def online(server: Server) -> int:
    return int(server.admin.status()["frontend_online"])


def wait_online(server: Server, target: int, timeout: float = 60, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while (n := online(server)) != target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server counts {n} sessions, expected {target}")
        time.sleep(every)


def wait_subscribed(h: Harness, server: Server, expected: dict[str, int], timeout: float = 60,
                    every: float = 0.1) -> None:
    """Poll the pipes table until every channel has its subscribers. Each poll costs the server
    about 0.5 ms + 0.05 ms per channel named (SQL parsed by sqlglot): inside a measured window,
    poll few channels and rarely, or the polls become part of the figure."""
    names = sorted(expected)
    batch = ", ".join(h.sql_quote(n) for n in names)
    deadline = time.monotonic() + timeout
    sql = f"SELECT name, users FROM pipes WHERE name IN ({batch})"
    while True:
        seen = {str(n): int(u or 0) for n, u in server.admin.query(sql)}
        if all(seen.get(n, 0) >= expected[n] for n in names):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("subscriptions did not land in time")
        time.sleep(every)


def open_all(pool: Any, channels: list[str], concurrency: int = 64) -> None:
    replies = pool.open(channels, timeout=60 + len(channels) / 100, concurrency=concurrency)
    failed = sum(r["failed"] for r in replies)
    if failed:
        raise RuntimeError(f"{failed} of {len(channels)} sessions failed to open: "
                           f"{[e for r in replies for e in r['errors']][:3]}")


def frames(replies: list[dict]) -> int:
    return sum(r["frames"] for r in replies)


# ------------------------------------------------------------------------------------------ measurements


@dataclass
class Side:
    """One checkout's server in a run, with its own WebSocket client processes."""

    label: str
    server: Server
    pool: Any


@dataclass
class Total:
    """Server CPU and operations summed over one side's slices of a measurement."""

    user: float = 0.0
    sys: float = 0.0
    wall: float = 0.0
    ops: int = 0
    slices: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, w: Window, ops: int) -> None:
        self.user += w.user
        self.sys += w.sys
        self.wall += w.wall
        self.ops += ops
        self.slices.append(round(1e6 * (w.user + w.sys) / ops, 2))

    def result(self) -> dict:
        out = {"us": 1e6 * (self.user + self.sys) / self.ops, "user_us": 1e6 * self.user / self.ops,
               "sys_us": 1e6 * self.sys / self.ops, "cpu_s": self.user + self.sys, "wall_s": self.wall,
               "ops": self.ops, "slices_us": self.slices}
        if self.notes:
            out["note"] = "; ".join(dict.fromkeys(self.notes))
        return out


def _paced(admin: Any, packets: list[bytes], count: int, interval: float) -> None:
    start = time.monotonic()
    for i in range(count):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        admin.execute_packet(packets[i % len(packets)])


def measure_fanout(h: Harness, sides: list[Side], args: argparse.Namespace, tag: str) -> dict[str, dict]:
    n, slices, interval = args.fanout_subscribers, args.slices, args.fanout_interval
    per_slice = max(1, round(args.fanout_publishes / slices))
    channel = f"fo_{tag}"
    base = {side.label: online(side.server) for side in sides}
    for side in sides:
        open_all(side.pool, [channel] * n)
        wait_subscribed(h, side.server, {channel: n})
    warm = [h.com_query(insert_sql(h, channel, "warm", "fanout"))]
    rows = args.fanout_rows  # > 1: several messages per INSERT, waiting for each socket together
    packet = [h.com_query(insert_sql(h, channel, "fo", "fanout", rows))]
    for side in sides:
        side.pool.broadcast(("reset", b'"event":"warm"', False), 10)
        _paced(side.server.admin, warm, max(5, per_slice // 2), interval)
        side.pool.broadcast(("wait", {channel: max(5, per_slice // 2)}, 30.0, 0.0), 40)
    totals = {side.label: Total() for side in sides}
    for _ in range(slices):
        for side in sides:
            side.pool.broadcast(("reset", b'"event":"fo"', False), 10)
            with Window(side.server.pid) as w:
                _paced(side.server.admin, packet, per_slice, interval)
                replies = side.pool.broadcast(("wait", {channel: per_slice * rows}, 60.0, 0.0), 70)
            totals[side.label].add(w, n * per_slice * rows)
            if (got := frames(replies)) != n * per_slice * rows:
                totals[side.label].notes.append(f"a slice had {got} of {n * per_slice * rows} deliveries")
    for side in sides:
        side.pool.broadcast(("close",), 30)
        wait_online(side.server, base[side.label])
    return {label: total.result() for label, total in totals.items()}


def measure_handshake(h: Harness, sides: list[Side], args: argparse.Namespace, tag: str) -> dict[str, dict]:
    k = 10
    per_slice = max(1, round(args.sessions / args.slices))
    base = {side.label: online(side.server) for side in sides}

    def cycle(side: Side, count: int, prefix: str) -> None:
        channels = [f"{prefix}_{i % k}" for i in range(count)]
        open_all(side.pool, channels, args.handshake_concurrency)
        # the subscription frame must be read before the reset-on-close drops it
        wait_subscribed(h, side.server, Counter(channels))
        side.pool.broadcast(("close",), 30)
        wait_online(side.server, base[side.label])

    for side in sides:
        cycle(side, max(200, per_slice // 2), f"hw_{tag}")
    totals = {side.label: Total() for side in sides}
    for _ in range(args.slices):
        for side in sides:
            with Window(side.server.pid) as w:
                cycle(side, per_slice, f"hs_{tag}")
            totals[side.label].add(w, per_slice)
    return {label: total.result() for label, total in totals.items()}


def _inserter(logins: dict[str, tuple[str, int, str, str]], harness: str, channels: list[str], offset: int,
              warm: int, conn: Any) -> None:
    """One CometQL client process connected to every side; runs paced INSERTs on command."""
    sys.path.insert(0, harness)
    from cometql.bench._mysql_client import MySQLClient, com_query, sql_quote

    clients = {label: MySQLClient(*login) for label, login in logins.items()}

    def packets(event: str) -> list[bytes]:
        return [com_query(f"INSERT INTO pipes_messages (name, event, message) VALUES "
                          f"({sql_quote(c)}, {sql_quote(event)}, 'hello from the benchmark')") for c in channels]

    k = len(channels)
    warm_packets, run_packets = packets("warm"), packets("ins")
    for client in clients.values():
        for j in range(warm):
            client.execute_packet(warm_packets[(offset + j) % k])
    conn.send("ready")
    while (command := conn.recv()) is not None:
        label, count, rate = command
        client = clients[label]
        interval = 1.0 / rate
        t0 = time.monotonic()
        late = 0.0
        for j in range(count):
            delay = t0 + j * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                late = max(late, -delay)
            client.execute_packet(run_packets[(offset + j) % k])
        conn.send({"elapsed_s": time.monotonic() - t0, "late_max_s": late})
    for client in clients.values():
        client.close()


def measure_insert(h: Harness, sides: list[Side], args: argparse.Namespace, tag: str) -> dict[str, dict]:
    k, clients = args.insert_channels, args.insert_clients
    seconds = args.insert_seconds / args.slices
    per_client = max(1, round(args.insert_rate * seconds / clients))
    rate = args.insert_rate / clients
    channels = [f"in_{tag}_{i}" for i in range(k)]
    base = {side.label: online(side.server) for side in sides}
    for side in sides:
        open_all(side.pool, channels)
        wait_subscribed(h, side.server, dict.fromkeys(channels, 1))
    expected: Counter[str] = Counter(channels[(i + j) % k] for i in range(clients) for j in range(per_client))
    ctx = mp.get_context("spawn")
    logins = {side.label: (HOST, side.server.mysql_port, str(DEV), PASSWORD) for side in sides}
    pipes, procs = [], []
    for i in range(clients):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_inserter, daemon=True,
                           args=(logins, args.harness_path, channels, i, args.insert_warmup, child))
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)
    totals = {side.label: Total() for side in sides}
    try:
        for parent in pipes:
            if not parent.poll(60):
                raise RuntimeError("an INSERT client did not get ready")
            parent.recv()
        for _ in range(args.slices):
            for side in sides:
                side.pool.broadcast(("reset", b'"event":"ins"', False), 10)
                with Window(side.server.pid) as w:
                    for parent in pipes:
                        parent.send((side.label, per_client, rate))
                    done = []
                    for parent in pipes:
                        if not parent.poll(60 + per_client / 100):
                            raise RuntimeError("an INSERT client did not finish in time")
                        done.append(parent.recv())
                    replies = side.pool.broadcast(("wait", dict(expected), 60.0, 0.0), 70)
                total = totals[side.label]
                total.add(w, clients * per_client)
                if (got := frames(replies)) != clients * per_client:
                    total.notes.append(f"a slice had {got} of {clients * per_client} deliveries")
                if max(d["elapsed_s"] for d in done) > seconds * 1.1:
                    total.notes.append(f"the clients could not keep {args.insert_rate:g}/s")
    finally:
        for parent in pipes:
            try:
                parent.send(None)
            except OSError:
                pass
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
    for side in sides:
        side.pool.broadcast(("close",), 30)
        wait_online(side.server, base[side.label])
    return {label: total.result() for label, total in totals.items()}


def measure_ack(h: Harness, sides: list[Side], args: argparse.Namespace, tag: str) -> dict[str, dict]:
    """The ``ack`` scenario of the harness against each side in turn; the figure is the scenario's own
    server CPU per message (its window: first INSERT until every message is acknowledged)."""
    totals = {side.label: Total() for side in sides}
    rates: dict[str, list[float]] = {side.label: [] for side in sides}
    for _ in range(args.ack_slices):
        for side in sides:
            srv = side.server
            target = h.BenchServer(HOST, srv.mysql_port, srv.ws_port, PASSWORD, pid=srv.pid)
            result = h.ack(h.Context(target, dev_id=DEV), users=args.ack_users, clients=args.ack_clients,
                           inserts=args.ack_inserts)
            total = totals[side.label]
            ops = args.ack_clients * args.ack_inserts
            cpu = result.figure("server CPU per message").value * ops / 1e6
            total.user += cpu  # the scenario's meter gives user + sys together
            total.ops += ops
            total.slices.append(round(1e6 * cpu / ops, 2))
            rates[side.label].append(round(result.figure("delivered and acknowledged/s").value))
            if result.figure("messages received exactly once").value < 100:
                total.notes.append("a slice did not deliver every message exactly once")
    out = {}
    for label, total in totals.items():
        out[label] = total.result() | {"user_us": None, "sys_us": None}  # not split by the scenario
        out[label]["rates_per_s"] = rates[label]
        out[label]["note"] = "; ".join([*dict.fromkeys(total.notes), f"delivered and acknowledged/s {rates[label]}"])
    return out


MEASURE: dict[str, Callable[..., dict[str, dict]]] = {"fanout": measure_fanout, "handshake": measure_handshake,
                                                      "insert": measure_insert, "ack": measure_ack}


def one_run(h: Harness, dirs: dict[str, Path], order: list[str], args: argparse.Namespace,
            tag: str) -> dict[str, dict[str, dict]]:
    """Both servers started fresh; each measurement alternates between them in slices (``order`` first)."""
    sides: list[Side] = []
    out: dict[str, dict[str, dict]] = {label: {} for label in order}
    try:
        for label in order:
            server = start_server(dirs[label], h)
            sides.append(Side(label, server, None))
            sides[-1].pool = h.ClientPool(HOST, server.ws_port, DEV, args.client_procs,
                                          **({"caps": args.caps} if args.caps else {}))
        for name in args.only:
            for label, result in MEASURE[name](h, sides, args, tag).items():
                out[label][name] = result
            for side in sides:
                side.server.check()
    finally:
        for side in sides:
            if side.pool is not None:
                side.pool.shutdown()
            side.server.stop()
    return out


# ------------------------------------------------------------------------------------------ report


def _fmt(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def report(runs: list[dict[str, dict[str, dict]]], metrics: tuple[str, ...]) -> None:
    print("\nserver CPU per operation (user+sys from /proc/<pid>/stat), run by run, then the median:")
    for name in metrics:
        print(f"\n  {name} ({UNITS[name]})")
        medians = {}
        for label in ("A", "B"):
            values = [run[label][name]["us"] for run in runs]
            users = [run[label][name]["user_us"] for run in runs]
            medians[label] = statistics.median(values)
            user = "" if None in users else f"   (user {_fmt(statistics.median(users))})"
            print(f"    {label}: {', '.join(_fmt(v) for v in values):<30} median {_fmt(medians[label]):>6}{user}")
        ratios = [run["B"][name]["us"] / run["A"][name]["us"] for run in runs]
        print(f"    B/A: medians {medians['B'] / medians['A']:.3f}; paired by run "
              f"{', '.join(f'{r:.3f}' for r in ratios)} (median {statistics.median(ratios):.3f})")
    for i, run in enumerate(runs):
        for label in ("A", "B"):
            for name in metrics:
                if "note" in run[label][name]:
                    print(f"  note: run {i + 1} {label} {name}: {run[label][name]['note']}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("a", type=Path, help="checkout A (before)")
    p.add_argument("b", type=Path, help="checkout B (after)")
    p.add_argument("-n", "--runs", type=int, default=3, help="runs (fresh servers A and B each), 3")
    p.add_argument("--slices", type=int, default=10, help="slices per measurement and side, alternating (10)")
    p.add_argument("--only", nargs="+", choices=METRICS, default=list(DEFAULT_METRICS),
                   help="measurements to run (default: fanout handshake insert)")
    p.add_argument("--harness", type=Path, help="checkout whose load clients are used (default: A)")
    p.add_argument("--client-procs", type=int, default=2, help="WebSocket client processes per side (2)")
    p.add_argument("--caps", default="", help="capabilities the sessions announce, e.g. ack,offset,hb (the "
                   "library's); needs a --harness whose load clients know them")
    p.add_argument("--fanout-subscribers", type=int, default=1000)
    p.add_argument("--fanout-publishes", type=int, default=500, help="per side and run (500)")
    p.add_argument("--fanout-interval", type=float, default=0.02, help="seconds between publishes (0.02)")
    p.add_argument("--fanout-rows", type=int, default=1,
                   help="messages per INSERT (rows; 1): with more, several frames wait for each socket together")
    p.add_argument("--sessions", type=int, default=20000, help="handshake: sessions per side and run (20000)")
    p.add_argument("--handshake-concurrency", type=int, default=64,
                   help="handshake: sessions each client process opens at a time (64)")
    p.add_argument("--insert-clients", type=int, default=2)
    p.add_argument("--insert-rate", type=float, default=2000, help="INSERTs/s of all clients together (2000)")
    p.add_argument("--insert-seconds", type=float, default=5, help="per side and run (5)")
    p.add_argument("--insert-channels", type=int, default=10, help="channels, one subscriber each (10)")
    p.add_argument("--insert-warmup", type=int, default=200, help="unmeasured INSERTs per client and side (200)")
    p.add_argument("--ack-users", type=int, default=1000, help="ack: users online, one session each (1000)")
    p.add_argument("--ack-clients", type=int, default=32, help="ack: backend connections (32)")
    p.add_argument("--ack-inserts", type=int, default=625, help="ack: messages per backend (625)")
    p.add_argument("--ack-slices", type=int, default=1, help="ack: scenario runs per side and run (1)")
    p.add_argument("--json", type=Path, help="also write every run's figures to this file")
    args = p.parse_args()
    dirs = {"A": args.a.resolve(), "B": args.b.resolve()}
    harness_dir = (args.harness or args.a).resolve()
    args.harness_path = str(harness_dir)
    h = Harness(harness_dir)
    for checkout in dict.fromkeys(dirs.values()):
        print(f"server code for {checkout}: {check_imports(checkout)}", flush=True)
    print(f"load clients from {harness_dir}", flush=True)
    runs: list[dict[str, dict[str, dict]]] = []
    begin = time.monotonic()
    for i in range(args.runs):
        order = ["A", "B"] if i % 2 == 0 else ["B", "A"]
        t = time.monotonic()
        load = open("/proc/loadavg").read().split()[0]
        run = one_run(h, dirs, order, args, f"r{i}")
        runs.append(run)
        for label in ("A", "B"):
            figures = "  ".join(f"{name} {_fmt(r['us'])} µs ({r['cpu_s']:.2f} s CPU)" for name, r in run[label].items())
            print(f"run {i + 1} {label}: {figures}", flush=True)
        print(f"      ({'/'.join(order)} first in each slice; {time.monotonic() - t:.0f} s, load average {load})",
              flush=True)
    print(f"\nA = {dirs['A']}\nB = {dirs['B']}\n{args.runs} runs, {args.slices} alternating slices per "
          f"measurement; {time.monotonic() - begin:.0f} s in all")
    report(runs, tuple(args.only))
    if args.json:
        args.json.write_text(json.dumps({"a": str(dirs["A"]), "b": str(dirs["B"]), "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
