"""``bench storm``: every browser reconnects at once after a server restart, as our library does it.

N subscribed sessions (half logged in with a ``users_auth`` key, half
anonymous) are held by client processes; the server gets SIGTERM and is
started again on the same ports and data directory (a running server's own
supervisor brings it back). Every session then reconnects with the library's
policy, read from ``/cometql.js`` itself so the two cannot drift: jittered
exponential backoff ("equal jitter", base and cap from the file), reset once a
connection lived ``STABLE_CONNECTION_MS``, a handshake given up after the
connect timeout. A session is back when it is subscribed again: on a server
that accepted the ``offset`` capability that is when the ``recovery`` answer
to its ``pipe_log`` arrives (what the library asks after a reconnect; the
server answers it after the subscription), elsewhere when serverInfo came
and the subscription was sent.

Every refusal is counted by its reason (HTTP status, close frame, reset before
serverInfo, timeout, connection refused after the server listened again), and
split into configured limits (429, 503) and the rest, which should be none.
"""

from __future__ import annotations

import asyncio
import errno
import re
import signal
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from random import Random
from typing import Any

import orjson

from ._context import Context, cpu_notes, percentile
from ._loadgen import BenchError, _Worker, split
from ._mysql_client import MySQLError
from ._procfs import cpu_seconds, peak_rss_kb
from ._results import Result, Target
from ._ws_client import LINGER_RESET, client_frame, complete_frames, handshake_request

__all__ = ["LIBRARY_CAPS", "Policy", "StormWorker", "library_policy", "storm"]

#: What our library announces on connect (``CAPS`` in cometql.js).
LIBRARY_CAPS = "ack,offset,hb"
#: Refusals that a configured limit explains: per-address sessions (429), connections at once (503).
LIMIT_STATUSES = ("HTTP 429", "HTTP 503")


@dataclass(frozen=True)
class Policy:
    """The library's reconnect policy, in milliseconds."""

    base_ms: int
    cap_ms: int
    stable_ms: int
    connect_timeout_ms: int

    def delay(self, attempt: int, rng: Random) -> float:
        """Seconds before reconnect ``attempt`` (0 first): cometql.js's ``backoffDelay``, equal jitter."""
        ceiling = min(self.cap_ms, self.base_ms * 2 ** min(attempt, 10))
        return round(ceiling * (0.5 + rng.random() * 0.5)) / 1000


def library_policy() -> Policy:
    """The constants of the shipped ``cometql.js`` (so the load client follows the library as it is)."""
    text = resources.files("cometql.web").joinpath("static/cometql.js").read_text(encoding="utf-8")

    def const(name: str) -> int:
        found = re.search(rf"var {name} = (\d+);", text)
        if found is None:
            raise BenchError(f"cometql.js has no {name}: the storm client cannot follow the library")
        return int(found.group(1))

    return Policy(const("BACKOFF_BASE_MS"), const("BACKOFF_CAP_MS"), const("STABLE_CONNECTION_MS"),
                  const("CONNECT_TIMEOUT_MS"))


# ---------------------------------------------------------------------------------------- worker side


class StormSession(asyncio.Protocol):
    """One page's connection, across reconnects: the protocol object of each new connection."""

    def __init__(self, owner: StormWorker, request: bytes, channel: str, marker: str) -> None:
        self.owner = owner
        self.request = request
        self.channel = channel
        self.marker = marker
        self.transport: asyncio.Transport | None = None
        self.attempt = 0
        self.opened_at = 0.0
        self.back = False
        self.back_ns = 0
        self.reconnects = 0
        self.first: asyncio.Future[None] | None = None
        self.timeout_ms = owner.policy.connect_timeout_ms
        self._timer: asyncio.TimerHandle | None = None
        self._buf = bytearray()
        self._upgraded = self._hello = self._refused = False

    def start(self) -> None:
        task = self.owner.loop.create_task(self._connect())
        self.owner.tasks.add(task)
        task.add_done_callback(self.owner.tasks.discard)

    async def _connect(self) -> None:
        # the loop makes the socket itself: a socket handed over after ``sock_connect`` was seen to be
        # closed twice under reconnect churn (a later connection's descriptor went with it)
        owner = self.owner
        tried = time.monotonic_ns()
        source = owner.spec.source
        try:
            transport, _ = await owner.loop.create_connection(
                lambda: self, owner.spec.host, owner.spec.ws_port, local_addr=(source, 0) if source else None)
        except OSError as exc:
            owner.event("connect", errno.errorcode.get(exc.errno or 0, type(exc).__name__), tried)
            self._schedule()
            return
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)  # no TIME_WAIT left behind
        self._timer = owner.loop.call_later(self.timeout_ms / 1000, self._give_up)

    def _give_up(self) -> None:
        """No serverInfo within the connect timeout: the library closes and retries."""
        self._timer = None
        if not self._hello and self.transport is not None:
            self._refuse("timeout before serverInfo")

    def _refuse(self, reason: str) -> None:
        self._refused = True
        self.owner.event("refused", reason)
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._buf.clear()
        self._upgraded = self._hello = self._refused = False
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._hello and not self._refused:
            self.owner.event("refused", "closed before serverInfo")
        if self._upgraded and time.monotonic() - self.opened_at >= self.owner.policy.stable_ms / 1000:
            self.attempt = 0  # the library: a connection that lived this long resets the backoff
        self.transport = None
        self.back = False
        self._schedule()

    def _schedule(self) -> None:
        if self.owner.stopping:
            return
        delay = self.owner.policy.delay(self.attempt, self.owner.rng)
        self.attempt += 1
        self.reconnects += 1
        self.owner.loop.call_later(delay, self.start)

    def _send(self, payload: str) -> None:
        if self.transport is not None:
            self.transport.write(client_frame(payload))

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                status = bytes(buf[9:12]).decode("latin-1")
                self._refuse(f"HTTP {status}")
                return
            self._upgraded = True
            self.opened_at = time.monotonic()
            del buf[:end + 4]
            self._send("subscription\n" + self.channel)  # the library's onOpen: subscriptions first
        pos = 0
        for opcode, payload, end in complete_frames(buf):
            self._frame(opcode, payload)
            pos = end
            if self.transport is None:
                return
        if pos:
            del buf[:pos]

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x1:
            if not self._hello:
                self._server_info(payload)
            elif b'"recovery"' in payload and self.marker.encode() in payload:
                self._is_back()
        elif opcode == 0x9 and self.transport is not None:
            self.transport.write(client_frame(payload, opcode=0xA))
        elif opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            reason = f"close {code} {payload[2:].decode('utf-8', 'replace')}".rstrip()
            if self._hello:
                self.owner.event("closed", reason)
            else:
                self._refuse(reason)
            if self.transport is not None:
                self.transport.write(client_frame(payload[:2], opcode=0x8))
                self.transport.abort()

    def _server_info(self, payload: bytes) -> None:
        try:
            info = orjson.loads(payload)
        except orjson.JSONDecodeError:
            info = None
        if not isinstance(info, dict) or info.get("event") != "serverInfo":
            self._refuse(f"first frame is not serverInfo: {payload[:80]!r}")
            return
        self._hello = True
        self.owner.authorized += bool(info.get("authorized"))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        beat = info.get("heartbeat")  # serverInfo's own keys, as the library reads them
        if isinstance(beat, dict):  # the library's connect timeout becomes interval + timeout
            self.timeout_ms = int((float(beat.get("interval", 0)) + float(beat.get("timeout", 0))) * 1000)
        caps = info.get("caps") or []
        if "offset" in caps:  # the library's requestRecovery, nothing received before: epoch "", offset 0
            self._send(f"pipe_log\n{self.channel}\n{self.marker}\n\n0")
        else:
            self.owner.offset = False
            self._is_back()

    def _is_back(self) -> None:
        if self.back:
            return
        self.back = True
        self.back_ns = time.monotonic_ns()
        if self.first is not None and not self.first.done():
            self.first.set_result(None)


class StormWorker(_Worker):
    """A client process of the storm: sessions that reconnect by themselves, with the library's policy."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.loop: asyncio.AbstractEventLoop  # set by the first command, inside the running loop
        self.policy = library_policy()
        self.rng = Random()
        self.sessions: list[StormSession] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.events: list[tuple[int, str, str]] = []
        self.stopping = False
        self.offset = True  # every server hello so far accepted the offset capability
        self.authorized = 0  # serverInfo frames that said the user's key was accepted

    def event(self, kind: str, reason: str, at: int | None = None) -> None:
        self.events.append((at or time.monotonic_ns(), kind, reason))

    async def do_storm_open(self, entries: list[tuple[str, int, str]], concurrency: int, timeout: float) -> dict:
        """Open one session per (channel, user id, key) and wait until each is subscribed."""
        self.cpu.restart()
        self.loop = asyncio.get_running_loop()
        spec = self.spec
        todo = iter(enumerate(entries, len(self.sessions)))
        ok = 0

        async def runner() -> None:
            nonlocal ok
            for number, (channel, user_id, key) in todo:
                uuid = f"storm{spec.index:03d}x{number:024d}"[-32:]
                request = handshake_request(spec.host, spec.ws_port, spec.dev_id, uuid, str(user_id), key,
                                            caps=LIBRARY_CAPS)
                session = StormSession(self, request, channel, f"m{number:09d}")
                session.first = self.loop.create_future()
                self.sessions.append(session)
                session.start()
                try:
                    await asyncio.wait_for(session.first, timeout)
                    ok += 1
                except TimeoutError:
                    pass

        start = time.monotonic_ns()
        await asyncio.gather(*(runner() for _ in range(min(concurrency, len(entries)))))
        return {"ok": ok, "failed": len(entries) - ok, "start_ns": start, "end_ns": time.monotonic_ns(),
                "errors": Counter(reason for _, _, reason in self.events).most_common(3)}

    async def do_storm_mark(self) -> dict:
        """From now on count reconnects, events and CPU afresh (just before the restart)."""
        self.events.clear()
        self.authorized = 0
        for session in self.sessions:
            session.reconnects = 0
        self.cpu.restart()
        return {}

    async def do_storm_status(self) -> dict:
        return {"back": sum(s.back for s in self.sessions), "sessions": len(self.sessions)}

    async def do_storm_report(self, listening_ns: int) -> dict:
        """Per-session back times and every event, split at the moment the server listened again."""
        before: Counter[str] = Counter()
        after: Counter[str] = Counter()
        last: dict[str, float] = {}
        for at, kind, reason in self.events:
            key = f"{kind}: {reason}"
            (after if at >= listening_ns else before)[key] += 1
            if at >= listening_ns:
                last[key] = max(last.get(key, 0.0), (at - listening_ns) / 1e9)
        return {"last_after": last, "back_ns": [s.back_ns for s in self.sessions if s.back], "before": dict(before),
                "after": dict(after), "reconnects": dict(Counter(s.reconnects for s in self.sessions)),
                "offset": self.offset, "authorized": self.authorized}

    def _close(self) -> int:
        self.stopping = True
        for session in self.sessions:
            if session.transport is not None:
                session.transport.abort()
        closed = len(self.sessions)
        self.sessions.clear()
        return closed + super()._close()


# ---------------------------------------------------------------------------------------- parent side


def _users(ctx: Context, count: int) -> list[tuple[int, str]]:
    """``count`` logged-in users, their ``users_auth`` keys inserted by SQL (many rows per INSERT where
    the server takes them, one by one where it does not)."""
    base = (int(ctx.token, 16) % 20_000) * 100_000  # runs on a shared server stay apart (ids < 2^31)
    users = [(base + i + 1, f"storm{ctx.token}k{i}") for i in range(count)]
    with ctx.reporter.phase("storm: users_auth keys", total=count) as phase:
        for i in range(0, count, 500):
            batch = users[i:i + 500]
            try:
                ctx.admin.execute("INSERT INTO users_auth (id, hash) VALUES " +
                                  ", ".join(f"({uid}, '{key}')" for uid, key in batch))
            except MySQLError:
                for uid, key in batch:
                    ctx.admin.execute(f"INSERT INTO users_auth (id, hash) VALUES ({uid}, '{key}')")
            phase.advance(len(batch))
    return users


def _poll_back(ctx: Context, pool: Any, n: int, timeout: float) -> tuple[int, float]:
    """Poll the clients until all ``n`` are back (or ``timeout``); (sessions back, server CPU s then)."""
    deadline = time.monotonic() + timeout
    pid = ctx.server.pid
    with ctx.reporter.phase("storm: sessions back", total=n) as phase:
        while True:
            back = sum(r["back"] for r in pool.broadcast(("storm_status",), 30))
            cpu = cpu_seconds(pid) if pid else float("nan")
            phase.update(back)
            if back >= n or time.monotonic() > deadline:
                return back, cpu
            time.sleep(0.05)


def storm(ctx: Context, n: int = 19_000, channels: int = 100, timeout: float = 120.0,
          sig: signal.Signals = signal.SIGTERM) -> Result:
    """Restart the server under N subscribed sessions; time until all are back, what it cost, what was refused."""
    notes: list[str] = []
    n = ctx.cap(n, notes)
    result = Result("storm", f"storm N={n:,}", {"n": n, "channels": channels, "logged_in": n // 2}, notes=notes)
    if ctx.server.proc is None and ctx.server.pid is None:
        raise BenchError("storm restarts the server: start it here, or pass --pid of one whose supervisor "
                         "starts it again")
    users = _users(ctx, n // 2)
    names = [ctx.channel("storm", i) for i in range(max(1, channels))]
    entries = [(names[i % len(names)], *(users[i // 2] if i % 2 == 0 and i // 2 < len(users) else (0, "")))
               for i in range(n)]
    with ctx.pool(n, worker=StormWorker) as pool:
        with ctx.reporter.phase(f"storm: {n:,} sessions", total=n):
            opened = pool.command([("storm_open", part, 64, 60.0) for part in split(entries, len(pool))],
                                  timeout=120 + n / 100)
        failed = sum(r["failed"] for r in opened)
        if failed:
            raise BenchError(f"{failed} of {n} sessions did not subscribe: {[r['errors'] for r in opened]}")
        expected = Counter(e[0] for e in entries)
        _server_view(ctx, expected, notes, "before the restart")
        stable = library_policy().stable_ms / 1000  # long enough to reset the backoff, as on a page
        time.sleep(max(0.0, stable - (time.monotonic_ns() - max(r["end_ns"] for r in opened)) / 1e9) + 0.5)
        rss_before = ctx.server.rss_kb()
        pool.broadcast(("storm_mark",), 30)
        ctx.close()  # the admin connection dies with the server
        restart = ctx.server.restart(timeout=60, sig=sig)
        listening_ns = restart.listening_ns
        cpu_listen = cpu_seconds(ctx.server.pid) if ctx.server.pid else None
        back, cpu_back = _poll_back(ctx, pool, n, timeout)
        replies = pool.broadcast(("storm_report", listening_ns), 60)
        if back >= n:
            _server_view(ctx, expected, notes, "after the restart")
        pool.broadcast(("close",), 60)
    pid = ctx.server.pid
    back_s = sorted((t - listening_ns) / 1e9 for r in replies for t in r["back_ns"])
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    reconnects: Counter[int] = Counter()
    last: dict[str, float] = {}
    for r in replies:
        for key, at in r["last_after"].items():
            last[key] = round(max(last.get(key, 0.0), at), 3)
        before.update(r["before"])
        after.update(r["after"])
        reconnects.update({int(k): v for k, v in r["reconnects"].items()})
    refusals = {k: v for k, v in after.items() if k.startswith("refused") or k == "connect: ECONNREFUSED"}
    unexplained = sum(v for k, v in refusals.items() if not any(s in k for s in LIMIT_STATUSES))
    if sig != signal.SIGTERM:
        notes.append(f"the server was stopped with {sig.name}, not SIGTERM")
    result.add("old server's shutdown (SIGTERM to exit)", (restart.exited_ns - restart.sigterm_ns) / 1e9, "s")
    result.add("old server's CPU to shut down", restart.shutdown_cpu, "s")
    result.add("new server's start (exec to listening)", (listening_ns - restart.exited_ns) / 1e9, "s")
    result.add("all back and subscribed after listening", back_s[-1] if back_s else None, "s", Target("<=", 15))
    result.add("p50 back after listening", percentile(back_s, 0.5) if back_s else None, "s")
    result.add("sessions back", back, "", Target(">=", n))
    result.add("logged-in sessions authorized again", sum(r["authorized"] for r in replies), "",
               Target(">=", n // 2))
    result.add("refused, not by a configured limit", unexplained, "", Target("<=", 0))
    result.add("peak server RSS (VmHWM)", peak_rss_kb(pid) / 1024 if pid else None, "MB")
    result.add("server RSS before the restart", None if rss_before is None else rss_before / 1024, "MB")
    if cpu_listen is not None:
        result.add("server CPU: start to listening", cpu_listen, "s")
        result.add("server CPU: listening to all back", cpu_back - cpu_listen, "s")
        result.add("server CPU per reconnected session", 1e6 * (cpu_back - cpu_listen) / max(1, back), "µs")
    else:
        notes.append("server CPU and memory not measured: the restarted server's pid is unknown")
    if not all(r["offset"] for r in replies):
        notes.append("the server did not accept the offset capability: a session counts as back once "
                     "serverInfo came and its subscription was sent (not confirmed by a recovery answer)")
    result.details.update({"refusals_by_reason": refusals, "events_after_listening": dict(after),
                           "events_before_listening": dict(before),
                           "last_event_after_listening_s": last,
                           "server_log_warnings": [line for line in ctx.server.log_tail(400).splitlines()
                                                   if "WARNING" in line or "ERROR" in line][-20:],
                           "reconnect_attempts": dict(sorted(reconnects.items())),
                           "policy": library_policy().__dict__})
    if refusals:
        notes.append("refused after listening: " + ", ".join(f"{k} ×{v}" for k, v in sorted(refusals.items())))
    cpu_notes(result, [r["cpu_share"] for r in replies], None)
    return result


def _server_view(ctx: Context, expected: Counter[str], notes: list[str], when: str) -> None:
    """The server agrees: every subscription landed and every session is online (where it can say)."""
    try:
        ctx.wait_subscribed(expected, timeout=60)
        online = ctx.online()
    except (KeyError, MySQLError, BenchError) as exc:  # a peer without the pipes table or the status counter
        notes.append(f"the server's view not checked {when} ({type(exc).__name__}: {exc})")
        return
    if online is not None and online < sum(expected.values()):
        raise BenchError(f"{when}: the server counts {online} sessions online, expected {sum(expected.values())}")
