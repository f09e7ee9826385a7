"""``cometql bench``'s command line, cheap to register: no load generator is imported here.

``cometql serve`` builds the same argument parser as ``cometql bench``, so
everything this module imports is paid by every server start; the scenarios,
the client processes and rich are imported only when ``run`` is called
(``_runner``). With no scenario (or ``all``) the standard set runs: idle,
fanout, latency, connect, insert, heavy, ack, room with their default sizes. Against a server it
starts itself unless ``--mysql-port`` (and ``--ws-port`` for browser scenarios)
name a running one; ``--pid`` then enables the memory and server-CPU figures.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..config import EXAMPLE_PASSWORD

__all__ = ["EXTRA_SCENARIOS", "SCENARIOS", "add_arguments", "add_parser", "chosen", "main", "run"]

SCENARIOS = ("idle", "fanout", "latency", "connect", "insert", "heavy", "ack", "room")
#: Run only when named: it starts its own redis-server and servers.
EXTRA_SCENARIOS = ("scale", "storm", "soak")
DESCRIPTION = """\
Benchmark a CometQL server with browser-like WebSocket sessions and CometQL INSERTs.

scenarios (default: all of them, the standard set):
  idle     server RSS per idle subscribed session at N sessions     (-n, default 1000,10000; --channels)
  fanout   N subscribers on one channel, one INSERT: round trip,
           first and last delivery                                   (-n, default 1000,5000; --rounds)
  latency  INSERT-to-receive p50/p99/max at a steady publish rate   (--rate, --duration, --channels, --subscribers)
  connect  new sessions per second until N                          (-n, default 5000)
  insert   CometQL INSERT/s with C concurrent clients               (--clients, --inserts, --subscribers)
  heavy    other clients' SELECT 1 / WebSocket ping round trips
           while 2 clients run the heaviest accepted statements      (--duration)
  ack      personal messages to N online users who acknowledge them
           (caps=ack): delivered and acknowledged per second          (-n, default 1000; --clients 32,
                                                                       --rows, 20,000 messages in all
                                                                       or --inserts per backend)
  room     N sessions in one web_ channel, each sending R messages/s
           with web_pipe2: browser-to-browser p50/p99, server CPU per
           relayed delivery, every message once in one order          (-n 50, --rate 10 [,R…: a sweep that
                                                                       stops where p99 passes 20 ms], --duration 30)

only when named:
  scale    one redis-server, 1/2/4 workers: fan-out deliveries/s and
           INSERT/s; then cross-node vs local publish latency       (--workers, --subscribers, --clients)
           with -n N: N subscribed sessions on W workers (--workers,
           default 7), then one INSERT to all of them: workers' RSS
           growth per session, connect time, last delivery           (e.g. scale -n 100000)
  storm    N subscribed sessions (half logged in), the server restarted:
           all back with the library's backoff, CPU, peak RSS,
           refusals by reason (a running server: --pid, its
           supervisor must start it again)                          (-n, default 19000; --channels 100)
  soak     N pages of cometql.js in Chromium behind a fault proxy
           (cuts, black-holes), channel + personal messages: exactly
           once and in order per page, delivery p50/p99             (-n pages, default 50; --duration 60)
"""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive numbers")
    return values


def _float_list(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from exc
    if not values or min(values) <= 0:
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
    srv.add_argument("--password", default=EXAMPLE_PASSWORD, help="CometQL password")
    srv.add_argument("--pid", type=int, help="pid of the running server, for RSS and server CPU")
    srv.add_argument("--restart-signal", default="TERM", choices=("TERM", "INT", "KILL"),
                     help="storm: how the server is stopped (KILL for one that ignores SIGTERM, e.g. CppComet)")
    srv.add_argument("--dev", type=int, default=77, help="dev_id the benchmark logs in as (default 77)")
    srv.add_argument("--tls", action="store_true", help="browser sessions over wss:// (a started server gets a "
                     "self-signed certificate made with openssl; a running one must serve TLS on --ws-port)")
    load = p.add_argument_group("load")
    load.add_argument("-n", "--n", type=_int_list, metavar="N[,N…]",
                      help="sessions for idle/fanout/connect (idle and fanout take a list)")
    load.add_argument("--channels", type=int, help="channels (idle 100, latency 10, insert with subscribers 100)")
    load.add_argument("--subscribers", type=int, help="subscribers (latency 1000, insert 0)")
    load.add_argument("--rate", type=_float_list, metavar="R[,R…]", help="latency: INSERTs per second (100); "
                      "room: messages per session per second (10; several: a sweep)")
    load.add_argument("--duration", type=float, help="latency, heavy: seconds (10); room: seconds per rate (30); "
                      "soak (60)")
    load.add_argument("--rounds", type=int, default=3, help="fanout: publishes per N, median reported (3)")
    load.add_argument("--clients", type=int, help="insert, scale: concurrent CometQL clients (8); ack: (32)")
    load.add_argument("--inserts", type=int, default=None,
                      help="insert: INSERTs per client (10000); ack: messages per backend (20,000 in all)")
    load.add_argument("--rows", type=int, default=1, help="ack: rows (users) per INSERT (1)")
    load.add_argument("--workers", type=_int_list, metavar="W[,W…]", help="scale: worker counts (1,2,4)")
    load.add_argument("--client-procs", type=int, help="WebSocket client processes per scenario (default: "
                      "at least 2, more when the open-files limit needs it)")
    load.add_argument("--caps", help="capabilities the load clients' sessions announce (default: "
                      "ack,offset,hb as the library does; \"\" as CppComet's library)")


def add_parser(subparsers: Any) -> None:
    """Register ``bench`` on ``cometql``'s subcommands (``func=run``)."""
    p = subparsers.add_parser("bench", help="benchmark a server (" + ", ".join(SCENARIOS) + ")",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def chosen(args: argparse.Namespace) -> list[str]:
    """The scenarios to run, in the standard order; none named (or ``all``) is the standard set."""
    if args.scenarios and "all" not in args.scenarios:
        return [s for s in (*SCENARIOS, *EXTRA_SCENARIOS) if s in args.scenarios]
    return list(SCENARIOS)


def run(args: argparse.Namespace) -> int:
    """Run the chosen scenarios and show the results; 0 when all ran, 1 when one failed."""
    from ._runner import execute  # the load generator, only when a benchmark runs

    return execute(args, chosen(args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cometql bench", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
