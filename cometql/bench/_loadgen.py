"""Load-generating client processes and the parent's handle on them.

Each worker is a separate process (spawned, so it inherits no threads or
sockets of the parent) running one asyncio loop (uvloop when installed) that
holds many ``WsClient`` sessions. Several processes are needed anyway: the
open-files limit (20,000 here) caps one process's sockets, and each worker
connects from its own loopback source address (127.0.0.2, .3, …) so tens of
thousands of sessions do not exhaust one address's ephemeral ports.

The parent drives workers with commands over a pipe and gets one reply per
command (plus ``progress`` messages while opening). Every reply carries the
worker's CPU share since the command (or the last ``reset``) began, read from
/proc/self/stat, so a scenario can say when the clients were the bottleneck.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import ssl
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar, cast

from ._procfs import CpuMeter
from ._ws_client import LIBRARY_CAPS, Tally, WsClient, client_frame, handshake_request, open_socket

__all__ = ["BenchError", "ClientPool", "WorkerSpec", "split"]

T = TypeVar("T")

#: Sessions per worker process at most: well below the per-process open-files limit.
MAX_PER_WORKER = 6000
#: Loopback source addresses the workers connect from, in turn.
LOOPBACK_SOURCES = tuple(f"127.0.0.{i}" for i in range(2, 10))


class BenchError(RuntimeError):
    """A scenario could not be run (a worker failed, or the server did not answer in time)."""


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    host: str
    ws_port: int
    dev_id: int
    source: str | None
    #: Capabilities the sessions announce (``ack,offset,hb`` as the library does; "" as CppComet's);
    #: None: the worker class's own.
    caps: str | None = None
    tls: bool = False


def split(items: Sequence[T], parts: int) -> list[list[T]]:
    """``items`` dealt round-robin into ``parts`` lists (so channels spread evenly over workers)."""
    return [list(items[i::parts]) for i in range(parts)]


# ---------------------------------------------------------------------------------------- worker side


class _Worker:
    """A worker's sessions and the commands the parent sends it (``do_<command>``); a scenario with
    other sessions subclasses it (``client_class``, ``caps``) and adds its own commands."""

    client_class: type[WsClient] = WsClient
    #: the capabilities the sessions announce (``caps=``): the library's, so figures hold with the
    #: reliable-delivery defaults on (``--caps ""`` gives CppComet's client)
    caps = LIBRARY_CAPS

    def __init__(self, conn: Connection, spec: WorkerSpec) -> None:
        self.conn = conn
        self.spec = spec
        self.clients: list[WsClient] = []
        self.tally = Tally()
        self.latencies: array[int] | None = None
        self.cpu = CpuMeter()
        self.opened = 0  # sessions ever opened (numbers the uuids)

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue[tuple] = asyncio.Queue()
        loop.add_reader(self.conn.fileno(), lambda: commands.put_nowait(self.conn.recv()))
        # uvloop's add_reader makes the fd non-blocking, and a large reply (latencies) would then
        # fail with EAGAIN; blocking is fine: the parent always sends and reads whole messages
        os.set_blocking(self.conn.fileno(), True)
        while True:
            command = await commands.get()
            name, *args = command
            if name == "exit":
                self._close()
                return
            try:
                reply = await getattr(self, f"do_{name}")(*args)
            except Exception:  # reported to the parent, which raises BenchError
                reply = {"error": traceback.format_exc()}
            cpu, wall = self.cpu.seconds()
            reply["cpu_s"] = cpu
            reply["cpu_share"] = cpu / wall if wall > 0 else 0.0
            self.conn.send(("reply", reply))

    async def do_open(self, channels: list[str], concurrency: int, timeout: float) -> dict:
        """Open one session per entry of ``channels``; subscribe each to its channel ("" = none)."""
        self.cpu.restart()
        loop = asyncio.get_running_loop()
        spec = self.spec
        done = 0
        errors: list[str] = []
        first = self.opened
        self.opened += len(channels)
        tls = _client_tls() if spec.tls else None
        todo = iter(enumerate(channels, first))

        async def runner() -> None:
            """Open sessions one after another; ``concurrency`` runners share the list (no task each)."""
            nonlocal done
            for number, channel in todo:
                uuid = f"bench{spec.index:03d}x{number:024d}"[-32:]
                request = handshake_request(spec.host, spec.ws_port, spec.dev_id, uuid,
                                            caps=self.caps if spec.caps is None else spec.caps)
                sock = open_socket(spec.source)
                ready: asyncio.Future[None] = loop.create_future()
                client = self.client_class(request, channel, ready, self.tally)
                try:
                    await loop.sock_connect(sock, (spec.host, spec.ws_port))
                    await loop.create_connection(lambda: client, sock=sock, ssl=tls,  # noqa: B023 (used at once)
                                                 server_hostname="localhost" if tls else None)
                    timer = loop.call_later(timeout, _expire, ready)  # cheaper than asyncio.wait_for
                    try:
                        await ready
                    finally:
                        timer.cancel()
                except (TimeoutError, OSError) as exc:
                    client.close()
                    sock.close()
                    if len(errors) < 3:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if channel:
                    client.send(client_frame("subscription\n" + channel))
                self.clients.append(client)
                done += 1

        async def report() -> None:
            sent = 0
            while True:
                await asyncio.sleep(0.1)
                if done > sent:
                    self.conn.send(("progress", done - sent))
                    sent = done

        reporter = asyncio.create_task(report())
        start = time.monotonic_ns()
        await asyncio.gather(*(runner() for _ in range(min(concurrency, len(channels)))))
        end = time.monotonic_ns()
        reporter.cancel()
        return {"ok": done, "failed": len(channels) - done, "errors": errors, "start_ns": start, "end_ns": end}

    async def do_reset(self, match: bytes, latency: bool) -> dict:
        """Start counting frames that contain ``match`` from zero (and CPU from now)."""
        self.latencies = array("q") if latency else None
        self.tally.frames = 0
        for client in self.clients:
            client.reset(match, self.latencies)
        self.cpu.restart()
        return {}

    async def do_wait(self, expected: dict[str, int], timeout: float, grace: float) -> dict:
        """Wait until every live session has its channel's expected count of matching frames
        (or ``timeout``), then ``grace`` seconds more to catch duplicates; report what arrived."""
        clients = [c for c in self.clients if not c.lost]
        want = sum(expected.get(c.channel, 0) for c in clients)
        deadline = time.monotonic() + timeout
        while self.tally.frames < want and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        busy_cpu_s = self.cpu.seconds()[0]  # CPU from the reset until everything had arrived
        if grace:
            await asyncio.sleep(grace)
        firsts = [c.first_ns for c in self.clients if c.first_ns]
        return {
            "sessions": len(self.clients),
            "lost": sum(c.lost for c in self.clients),
            "short": sum(c.count < expected.get(c.channel, 0) for c in self.clients),
            "counts": dict(Counter(c.count for c in self.clients if expected.get(c.channel, 0))),
            "frames": self.tally.frames,
            "other": sum(c.other for c in self.clients),
            "first_min_ns": min(firsts, default=0),
            "first_max_ns": max(firsts, default=0),
            "last_max_ns": max((c.last_ns for c in self.clients), default=0),
            "latencies": self.latencies.tobytes() if self.latencies is not None else b"",
            "busy_cpu_s": busy_cpu_s,
        }

    async def do_status(self) -> dict:
        return {"sessions": len(self.clients), "lost": sum(c.lost for c in self.clients)}

    async def do_close(self) -> dict:
        closed = self._close()
        await asyncio.sleep(0)  # let the transports go
        return {"closed": closed}

    def _close(self) -> int:
        for client in self.clients:
            client.close()
        closed = len(self.clients)
        self.clients.clear()
        return closed


def _client_tls() -> ssl.SSLContext:
    """wss:// without checking the certificate: the run's own self-signed one (the server's work is measured)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _expire(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_exception(TimeoutError("no serverInfo in time"))


def _worker_main(conn: Connection, spec: WorkerSpec, worker: type[_Worker] = _Worker) -> None:
    if uvloop_available():
        import uvloop

        uvloop.install()
    try:
        asyncio.run(worker(conn, spec).serve())
    except (EOFError, KeyboardInterrupt):  # the parent went away
        pass


# ---------------------------------------------------------------------------------------- parent side


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


class ClientPool:
    """``procs`` worker processes, all sending to one server's browser port. ``worker`` is the class
    the processes run (a subclass adds commands: ``do_<name>`` methods), importable by name."""

    def __init__(self, host: str, ws_port: int, dev_id: int, procs: int, worker: type[_Worker] = _Worker,
                 caps: str | None = None, tls: bool = False) -> None:
        ctx = mp.get_context("spawn")
        loopback = host.startswith("127.")
        self.conns: list[Connection] = []
        self.procs: list[mp.process.BaseProcess] = []
        for i in range(procs):
            source = LOOPBACK_SOURCES[i % len(LOOPBACK_SOURCES)] if loopback else None
            parent, child = ctx.Pipe()
            spec = WorkerSpec(i, host, ws_port, dev_id, source, caps, tls)
            proc = ctx.Process(target=_worker_main, args=(child, spec, worker),
                               daemon=True, name=f"cometql-bench-client-{i}")
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    def __len__(self) -> int:
        return len(self.procs)

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def command(self, commands: Sequence[tuple], timeout: float,
                progress: Callable[[int], None] | None = None) -> list[dict]:
        """Send ``commands[i]`` to worker i (a shorter list leaves the rest out); return their replies."""
        return self.collect(self.post(commands), commands[0][0], timeout, progress)

    def post(self, commands: Sequence[tuple]) -> dict[Any, int]:
        """Send ``commands[i]`` to worker i without waiting; ``collect`` takes the replies.

        A measurement that must not have the load clients' parent working in its window
        (``bench fanout``: the first delivery) posts the workers' ``wait`` before it starts."""
        pending: dict[Any, int] = {}
        for index, (conn, cmd) in enumerate(zip(self.conns, commands, strict=False)):
            conn.send(cmd)
            pending[conn] = index
        return pending

    def collect(self, pending: dict[Any, int], name: str, timeout: float,
                progress: Callable[[int], None] | None = None) -> list[dict]:
        """The replies of the workers ``post`` sent a command to, in worker order."""
        replies: dict[int, dict] = {}
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"client processes did not answer {name!r} within {timeout:.0f} s")
            for ready in wait(list(pending), timeout=min(left, 0.5)):
                try:
                    kind, body = cast(Connection, ready).recv()
                except EOFError as exc:
                    raise BenchError("a client process died") from exc
                if kind == "progress":
                    if progress is not None:
                        progress(body)
                    continue
                if "error" in body:
                    raise BenchError(f"client process failed:\n{body['error']}")
                replies[pending.pop(ready)] = body
        return [replies[i] for i in sorted(replies)]

    def broadcast(self, command: tuple, timeout: float) -> list[dict]:
        return self.command([command] * len(self.conns), timeout)

    def open(self, channels: Sequence[str], timeout: float, concurrency: int = 64,
             progress: Callable[[int], None] | None = None) -> list[dict]:
        """Open one session per channel name, spread over the workers."""
        parts = split(channels, len(self.conns))
        return self.command([("open", part, concurrency, 15.0) for part in parts], timeout, progress)

    def shutdown(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("exit",))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self.conns:
            conn.close()
        self.conns.clear()
        self.procs.clear()
