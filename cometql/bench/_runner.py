"""The run loop behind ``cometql bench``: one server for the chosen scenarios, results shown at the end.

A scenario that fails does not lose the others' figures: it is reported as a
failed result and the run goes on, unless the server itself exited (then its
log tail is the useful figure). The server is started once and shared, since
starting one per scenario would measure start-up noise; scenarios that need
their own servers (``scale``) get none. Imported only when a benchmark runs
(``_cli.run``), so ``cometql serve`` does not load it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from ._ack import ack
from ._context import Context
from ._delivery import fanout, latency
from ._heavy import heavy
from ._insert import insert
from ._loadgen import BenchError, uvloop_available
from ._mysql_client import MySQLError
from ._report import Reporter, print_json, print_table, write_performance_md
from ._results import Result
from ._room import room
from ._scale import scale
from ._scale_sessions import DEFAULT_WORKERS, scale_sessions
from ._server import Server, start_server
from ._sessions import connect, idle
from ._soak import soak
from ._storm import storm

__all__ = ["execute"]

#: Scenarios that start their own servers: none is started for them.
OWN_SERVERS = frozenset({"scale", "soak"})
#: Scenarios that measure CometQL's own features: against a peer (CppComet) they are skipped, saying why.
COMETQL_ONLY = {
    "heavy": "its statements and their refusals are CometQL's bounds and error codes",
    "ack": "acknowledged personal messages (caps=ack) are CometQL's",
}

Step = Callable[[Context], Result | list[Result]]


def _plan(args: argparse.Namespace, names: Sequence[str]) -> list[tuple[str, Step]]:
    ns = args.n
    steps: dict[str, Step] = {
        "idle": lambda c: idle(c, ns or (1000, 10000), channels=args.channels or 100),
        "fanout": lambda c: fanout(c, ns or (1000, 5000), rounds=args.rounds),
        "latency": lambda c: latency(c, rate=(args.rate or [100])[0], duration=args.duration or 10,
                                     channels=args.channels or 10,
                                     subscribers=1000 if args.subscribers is None else args.subscribers),
        "connect": lambda c: connect(c, (ns or [5000])[0]),
        "insert": lambda c: insert(c, clients=args.clients or 8, inserts=args.inserts or 10_000,
                                   subscribers=args.subscribers or 0, channels=args.channels or 100),
        "heavy": lambda c: heavy(c, duration=args.duration or 10),
        "ack": lambda c: ack(c, users=(ns or [1000])[0], clients=args.clients or 32,
                             inserts=args.inserts or 20_000 // (args.clients or 32), rows=args.rows),
        "room": lambda c: room(c, sessions=(ns or [50])[0], rates=args.rate or [10], duration=args.duration or 30),
        "soak": lambda c: soak(c.reporter, pages=(ns or [50])[0], seconds=args.duration or 60, dev_id=args.dev),
        "storm": lambda c: storm(c, (ns or [19_000])[0], channels=args.channels or 100,
                                 sig=signal.Signals[f"SIG{args.restart_signal.upper()}"]),
        "scale": lambda c: _scale(c, args),
    }
    return [(name, steps[name]) for name in names]


def _scale(ctx: Context, args: argparse.Namespace) -> list[Result]:
    """``scale``: throughput at 1/2/4 workers; with ``-n``, N sessions on W workers (``_scale_sessions``)."""
    if args.n:
        return [scale_sessions(ctx.reporter, sessions=n, workers=(args.workers or [DEFAULT_WORKERS])[0],
                               dev_id=args.dev, client_procs=args.client_procs) for n in args.n]
    return scale(ctx.reporter, workers=args.workers or (1, 2, 4), subscribers=args.subscribers or 2000,
                 clients=args.clients or 8, dev_id=args.dev)


def _server(args: argparse.Namespace, plan: Sequence[str]) -> Server | None:
    if all(name in OWN_SERVERS for name in plan):
        return None  # they start their own servers
    if args.mysql_port is None:
        return start_server(password=args.password, tls=args.tls)
    needs_ws = any(name != "insert" for name in plan) or bool(args.subscribers)
    if needs_ws and args.ws_port is None:
        raise BenchError("--ws-port is needed with --mysql-port for the browser scenarios")
    return Server(args.host, args.mysql_port, args.ws_port or 0, args.password, pid=args.pid, tls=args.tls)


def execute(args: argparse.Namespace, names: Sequence[str]) -> int:
    """Run the scenarios ``names`` and show the results; 0 when all ran, 1 when one failed."""
    reporter = Reporter(quiet=args.quiet or not sys.stderr.isatty() and args.json)
    plan = _plan(args, names)
    results: list[Result] = []
    failed = False
    try:
        server = _server(args, [name for name, _ in plan])
    except (BenchError, RuntimeError) as exc:
        print(f"cometql bench: {exc}", file=sys.stderr)
        return 1
    if not uvloop_available():
        reporter.log("uvloop is not installed: the WebSocket clients use the default asyncio loop")
    ctx = Context(server, reporter, dev_id=args.dev, client_procs=args.client_procs,  # type: ignore[arg-type]
                  caps=args.caps)
    try:
        with reporter.running():
            for name, step in plan:
                if name in COMETQL_ONLY and server is not None and not ctx.is_cometql:
                    results.append(Result(name, name, {}, notes=[f"skipped on this server: {COMETQL_ONLY[name]}"]))
                    continue
                try:
                    outcome = step(ctx)
                except (BenchError, MySQLError, OSError, RuntimeError) as exc:
                    failed = True
                    results.append(Result(name, name, {}, notes=[f"failed: {exc}"]))
                    reporter.log(f"[red]{name} failed:[/] {exc}")
                    if server is not None and server.proc is not None and server.proc.poll() is not None:
                        results[-1].notes.append(f"the server exited ({server.proc.returncode}):\n{server.log_tail()}")
                        break
                    continue
                outcomes = outcome if isinstance(outcome, list) else [outcome]
                for result in outcomes:  # what a peer server could not show
                    result.notes.extend(ctx.peer_notes)
                ctx.peer_notes.clear()
                results.extend(outcomes)
    finally:
        ctx.close()
        if server is not None:
            server.stop()
    if args.json:
        print_json(results)
    else:
        print_table(results, Console() if sys.stdout.isatty() else Console(width=120))
    if args.write_docs:
        write_performance_md(results, args.write_docs)
    if failed:
        return 1
    if args.check and any(r.ok is False for r in results):
        return 3
    return 0
