"""Acknowledged personal messages: N online users of our library, backends sending to them.

Every ``users_messages`` INSERT to a user with an ``ack`` session is stored,
delivered with its id, acknowledged by the session and then deleted: two
durable writes per message. This scenario measures that whole loop: N users
each hold one session announcing ``caps=ack`` (one client process, asyncio),
which acknowledges what it receives the way our library does (a batch per
session at most every ``ACK_MS`` ms); C backend clients send ``M`` INSERTs each,
round-robin over the users. The rate is messages delivered *and* acknowledged
(the server's ``queue_depth`` back at zero) per second, from the first INSERT;
every message must arrive exactly once.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
import time
from multiprocessing.connection import Connection

import orjson

from ._context import Context
from ._loadgen import BenchError
from ._mysql_client import MySQLClient, com_query
from ._procfs import CpuMeter
from ._results import Result, Target
from ._ws_client import client_frame

__all__ = ["ack"]

ACK_MS = 20
KEY = "benchkey"


def _request(host: str, port: int, dev_id: int, user: int) -> bytes:
    path = f"/ws/sesion={KEY}&myid={user}&devid={dev_id}&v=4.08&uuid=ackbench{user:024d}&api=js&caps=ack"
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


class _AckClient(asyncio.Protocol):
    """One user's session: counts personal messages by id, acknowledges them in batches."""

    def __init__(self, request: bytes, ready: asyncio.Future[None], seen: dict[str, int]) -> None:
        self.request = request
        self.ready = ready
        self.seen = seen  # message id -> times received, shared by the process's clients
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.pending: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed: {exc}"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.upgraded = True
            del buf[:end + 4]
        pos = 0
        while len(buf) - pos >= 2:
            size, head = buf[pos + 1] & 0x7F, 2
            if size == 126:
                if len(buf) - pos < 4:
                    break
                size, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif size == 127:
                if len(buf) - pos < 10:
                    break
                size, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if len(buf) - pos < head + size:
                break
            payload = bytes(buf[pos + head:pos + head + size])
            pos += head + size
            if not self.ready.done():
                self.ready.set_result(None)  # serverInfo
            elif b'"pipe":"msg"' in payload:
                mid = orjson.loads(payload)["id"]
                self.seen[mid] = self.seen.get(mid, 0) + 1
                self.pending.append(mid)
        del buf[:pos]

    def flush(self) -> None:
        if self.pending and self.transport is not None:
            self.transport.write(client_frame("ack\n" + ",".join(self.pending)))
            self.pending = []


async def _sessions(host: str, port: int, dev_id: int, users: range, total: int, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    seen: dict[str, int] = {}
    clients: list[_AckClient] = []
    limit = asyncio.Semaphore(64)

    async def one(user: int) -> None:
        async with limit:
            ready = loop.create_future()
            client = _AckClient(_request(host, port, dev_id, user), ready, seen)
            await loop.create_connection(lambda: client, host, port)
            await asyncio.wait_for(ready, 30)
            clients.append(client)

    await asyncio.gather(*(one(u) for u in users))
    conn.send(("ready", None))
    cpu = CpuMeter()
    first = last = 0
    deadline = time.monotonic() + 120 + total / 500
    while len(seen) < total and time.monotonic() < deadline:
        await asyncio.sleep(ACK_MS / 1000)
        if seen and not first:
            first = time.monotonic_ns()
        for client in clients:
            client.flush()
        last = time.monotonic_ns()
    for client in clients:
        client.flush()
    await asyncio.sleep(0.2)
    conn.send(("done", {"received": sum(seen.values()), "distinct": len(seen), "last_ns": last,
                        "cpu_share": cpu.share()}))
    for client in clients:
        if client.transport is not None:
            client.transport.close()


def _session_process(host: str, port: int, dev_id: int, users: range, total: int, conn: Connection) -> None:
    asyncio.run(_sessions(host, port, dev_id, users, total, conn))


def _inserters(server: tuple[str, int, str, str], users: list[str], clients: int, count: int, rows: int,
               start: mp.synchronize.Event, conn: Connection) -> None:
    """``clients`` backend connections (a thread each: they wait on the server, not on Python),
    ``count`` INSERTs of ``rows`` rows each, round-robin over the users from a different offset."""
    host, port, user, password = server
    packets = [com_query("INSERT INTO users_messages (id, event, message) VALUES "
                         + ", ".join(f"({users[(k + r) % len(users)]}, 'ack', 'hello')" for r in range(rows)))
               for k in range(0, len(users), rows)]
    conns = [MySQLClient(host, port, user, password) for _ in range(clients)]
    errors: list[str] = []

    def run(i: int) -> None:
        try:
            for j in range(count):
                conns[i].execute_packet(packets[(i * 7 + j) % len(packets)])
        except Exception as exc:  # reported, the parent fails the scenario
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    conn.send(("ready", None))
    start.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    conn.send(("done", errors))


def ack(ctx: Context, users: int = 1000, clients: int = 8, inserts: int = 2500, rows: int = 1) -> Result:
    """``users`` online users with ``ack`` sessions; ``clients`` backends × ``inserts`` personal messages,
    ``rows`` per INSERT (a backend notifying many users at once sends one multi-row INSERT)."""
    if users % rows:
        raise BenchError(f"--rows {rows} must divide the number of users ({users:,})")
    inserts -= inserts % rows
    total = clients * inserts
    label = f"ack N={users:,}" + (f", {rows} rows/INSERT" if rows > 1 else "")
    result = Result("ack", label, {"users": users, "clients": clients, "inserts": inserts, "rows": rows})
    srv = ctx.server
    base = ctx.online()
    ids = range(1, users + 1)
    ctx.admin.execute("INSERT INTO users_auth (id, hash) VALUES " + ", ".join(f"({u}, '{KEY}')" for u in ids))
    mpc = mp.get_context("spawn")
    parent, child = mpc.Pipe()
    sessions = mpc.Process(target=_session_process, daemon=True, name="cometql-bench-ack-sessions",
                           args=(srv.host, srv.ws_port, ctx.dev_id, ids, total, child))
    sessions.start()
    start = mpc.Event()
    login = (srv.host, srv.mysql_port, str(ctx.dev_id), srv.password)
    mine, theirs = mpc.Pipe()
    inserters = mpc.Process(target=_inserters, daemon=True, name="cometql-bench-ack-inserts",
                            args=(login, [str(u) for u in ids], clients, inserts // rows, rows, start, theirs))
    procs = [sessions, inserters]
    try:
        with ctx.reporter.phase(f"ack: {users:,} sessions", total=1):
            if not parent.poll(120):
                raise BenchError("the ack sessions did not open")
            parent.recv()
        ctx.wait_online(None if base is None else base + users)
        inserters.start()
        if not mine.poll(60):
            raise BenchError("the INSERT clients did not log in")
        mine.recv()
        meter = ctx.server_meter()
        t0 = time.monotonic_ns()
        start.set()
        with ctx.reporter.phase(f"ack: {total:,} messages to {users:,} users", total=total) as phase:
            if not parent.poll(180 + total / 500):
                raise BenchError("the sessions did not receive every message in time")
            body = parent.recv()[1]
            phase.update(total)
        if mine.poll(30) and (errors := mine.recv()[1]):
            raise BenchError(f"an INSERT client failed: {errors[0]}")
        while int(ctx.admin.status()["queue_depth"]) > 0:  # every ack stored
            if time.monotonic_ns() - t0 > (180 + total / 500) * 1e9:
                raise BenchError("messages were still queued (not acknowledged) at the end")
            time.sleep(0.005)
        t_end = time.monotonic_ns()
        server_cpu = meter.seconds()[0] if meter is not None else None
    finally:
        for proc in procs:
            if proc.pid is not None:
                proc.join(2)
                if proc.is_alive():
                    proc.kill()
    ctx.wait_online(base)
    seconds = (t_end - t0) / 1e9
    result.add("delivered and acknowledged/s", total / seconds, "/s", Target(">=", 5000))
    result.add("delivered (last frame)", (body["last_ns"] - t0) / 1e6, "ms")
    result.add("messages received exactly once", 100 * min(body["distinct"], body["received"]) / total
               if body["received"] == total else 0.0, "%", Target(">=", 100))
    if server_cpu is not None:
        result.add("server CPU per message", server_cpu / total * 1e6, "µs")
    return result
