"""``cometql bench``: argument parsing and the run loop.

With no scenario (or ``all``) the standard set runs: idle, fanout, latency,
connect, insert with their default sizes. Against a server it starts itself
unless ``--mysql-port`` (and ``--ws-port`` for browser scenarios) name a
running one; ``--pid`` then enables the memory and server-CPU figures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from ._loadgen import BenchError, uvloop_available
from ._report import Reporter, print_json, print_table, write_performance_md
from ._results import Result
from ._scale import scale
from ._scenarios import Context, connect, fanout, idle, insert, latency
from ._server import DEFAULT_PASSWORD, Server, start_server

__all__ = ["add_arguments", "add_parser", "main", "run"]

SCENARIOS = ("idle", "fanout", "latency", "connect", "insert")
#: Run only when named: it starts its own redis-server and servers.
EXTRA_SCENARIOS = ("scale",)
DESCRIPTION = """\
Benchmark a CometQL server with browser-like WebSocket sessions and CometQL INSERTs.

scenarios (default: all of them, the standard set):
  idle     server RSS per idle subscribed session at N sessions     (-n, default 1000,10000; --channels)
  fanout   N subscribers on one channel, one INSERT: round trip,
           first and last delivery                                   (-n, default 1000,5000; --rounds)
  latency  INSERT-to-receive p50/p99/max at a steady publish rate   (--rate, --duration, --channels, --subscribers)
  connect  new sessions per second until N                          (-n, default 5000)
  insert   CometQL INSERT/s with C concurrent clients               (--clients, --inserts, --subscribers)

only when named:
  scale    one redis-server, 1/2/4 workers: fan-out deliveries/s and
           INSERT/s; then cross-node vs local publish latency       (--workers, --subscribers, --clients)
"""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive numbers")
    return values


def _scenario(text: str) -> str:
    if text not in ("all", *SCENARIOS, *EXTRA_SCENARIOS):
        names = ", ".join((*SCENARIOS, *EXTRA_SCENARIOS))
        raise argparse.ArgumentTypeError(f"unknown scenario {text!r} (choose from all, {names})")
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    # a type check rather than choices=: argparse rejects an empty "*" list against choices
    p.add_argument("scenarios", nargs="*", metavar="scenario", type=_scenario,
                   help="all (default), " + ", ".join(SCENARIOS))
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the results as JSON on stdout (no table)")
    out.add_argument("--write-docs", metavar="FILE",
                     help="write the table into FILE between <!-- bench:start --> and <!-- bench:end -->")
    out.add_argument("--quiet", action="store_true", help="no progress display")
    out.add_argument("--check", action="store_true", help="exit with status 3 when a target was missed")
    srv = p.add_argument_group("server (default: start one on free loopback ports)")
    srv.add_argument("--host", default="127.0.0.1", help="address of a running server")
    srv.add_argument("--mysql-port", type=int, help="CometQL port of a running server")
    srv.add_argument("--ws-port", type=int, help="browser (WebSocket) port of a running server")
    srv.add_argument("--password", default=DEFAULT_PASSWORD, help="CometQL password")
    srv.add_argument("--pid", type=int, help="pid of the running server, for RSS and server CPU")
    srv.add_argument("--dev", type=int, default=77, help="dev_id the benchmark logs in as (default 77)")
    load = p.add_argument_group("load")
    load.add_argument("-n", "--n", type=_int_list, metavar="N[,N…]",
                      help="sessions for idle/fanout/connect (idle and fanout take a list)")
    load.add_argument("--channels", type=int, help="channels (idle 100, latency 10, insert with subscribers 100)")
    load.add_argument("--subscribers", type=int, help="subscribers (latency 1000, insert 0)")
    load.add_argument("--rate", type=float, default=100, help="latency: INSERTs per second (100)")
    load.add_argument("--duration", type=float, default=10, help="latency: seconds (10)")
    load.add_argument("--rounds", type=int, default=3, help="fanout: publishes per N, median reported (3)")
    load.add_argument("--clients", type=int, default=8, help="insert: concurrent CometQL clients (8)")
    load.add_argument("--inserts", type=int, default=10000, help="insert: INSERTs per client (10000)")
    load.add_argument("--workers", type=_int_list, metavar="W[,W…]", help="scale: worker counts (1,2,4)")
    load.add_argument("--client-procs", type=int, help="WebSocket client processes per scenario (default: "
                      "at least 2, more when the open-files limit needs it)")


def add_parser(subparsers: Any) -> None:
    """Register ``bench`` on ``cometql``'s subcommands (``func=run``)."""
    p = subparsers.add_parser("bench", help="benchmark a server (idle, fanout, latency, connect, insert)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def _plan(args: argparse.Namespace) -> list[tuple[str, Callable[[Context], Result | list[Result]]]]:
    chosen = [s for s in (*SCENARIOS, *EXTRA_SCENARIOS) if s in args.scenarios] \
        if args.scenarios and "all" not in args.scenarios else list(SCENARIOS)
    ns = args.n
    steps: dict[str, Callable[[Context], Result | list[Result]]] = {
        "idle": lambda c: idle(c, ns or (1000, 10000), channels=args.channels or 100),
        "fanout": lambda c: fanout(c, ns or (1000, 5000), rounds=args.rounds),
        "latency": lambda c: latency(c, rate=args.rate, duration=args.duration, channels=args.channels or 10,
                                     subscribers=1000 if args.subscribers is None else args.subscribers),
        "connect": lambda c: connect(c, (ns or [5000])[0]),
        "insert": lambda c: insert(c, clients=args.clients, inserts=args.inserts,
                                   subscribers=args.subscribers or 0, channels=args.channels or 100),
        "scale": lambda c: scale(c.reporter, workers=args.workers or (1, 2, 4), subscribers=args.subscribers or 2000,
                                 clients=args.clients, dev_id=args.dev),
    }
    return [(name, steps[name]) for name in chosen]


def _server(args: argparse.Namespace, plan: Sequence[str]) -> Server | None:
    if all(name in EXTRA_SCENARIOS for name in plan):
        return None  # they start their own servers
    if args.mysql_port is None:
        return start_server(password=args.password)
    needs_ws = any(name != "insert" for name in plan) or bool(args.subscribers)
    if needs_ws and args.ws_port is None:
        raise BenchError("--ws-port is needed with --mysql-port for the browser scenarios")
    return Server(args.host, args.mysql_port, args.ws_port or 0, args.password, pid=args.pid)


def run(args: argparse.Namespace) -> int:
    """Run the chosen scenarios and show the results; 0 when all ran, 1 when one failed."""
    reporter = Reporter(quiet=args.quiet or not sys.stderr.isatty() and args.json)
    plan = _plan(args)
    results: list[Result] = []
    failed = False
    try:
        server = _server(args, [name for name, _ in plan])
    except (BenchError, RuntimeError) as exc:
        print(f"cometql bench: {exc}", file=sys.stderr)
        return 1
    if not uvloop_available():
        reporter.log("uvloop is not installed: the WebSocket clients use the default asyncio loop")
    ctx = Context(server, reporter, dev_id=args.dev, client_procs=args.client_procs)  # type: ignore[arg-type]
    try:
        with reporter.running():
            for name, step in plan:
                try:
                    outcome = step(ctx)
                except (BenchError, OSError, RuntimeError) as exc:
                    failed = True
                    results.append(Result(name, name, {}, notes=[f"failed: {exc}"]))
                    reporter.log(f"[red]{name} failed:[/] {exc}")
                    if server is not None and server.proc is not None and server.proc.poll() is not None:
                        results[-1].notes.append(f"the server exited ({server.proc.returncode}):\n{server.log_tail()}")
                        break
                    continue
                results.extend(outcome if isinstance(outcome, list) else [outcome])
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cometql bench", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
