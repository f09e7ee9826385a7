"""INSERT INTO pipes_messages per second with C concurrent CometQL clients.

A thin wrapper over ``cometql bench insert`` (cometql/bench/): starts a server in
a subprocess (or uses --port of a running one), runs each client in its own
process with a raw MySQL-protocol client, and prints the rate, p50/p99 latency
per INSERT and whether every statement reached the hub (SHOW GLOBAL STATUS).

    python bench/insert_rate.py --clients 1 8 --inserts 20000
"""

from __future__ import annotations

import argparse

from cometql.bench import Context, insert, start_server
from cometql.bench._report import Reporter, print_table
from cometql.bench._server import DEFAULT_PASSWORD, Server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, help="CometQL port of a running server instead of starting one")
    ap.add_argument("--password", default=DEFAULT_PASSWORD)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--inserts", type=int, default=20000, help="per client")
    args = ap.parse_args()
    server = start_server() if args.port is None else Server("127.0.0.1", args.port, 0, args.password)
    reporter = Reporter()
    ctx = Context(server, reporter)
    try:
        with reporter.running():
            results = [insert(ctx, clients=c, inserts=args.inserts) for c in args.clients]
    finally:
        ctx.close()
        server.stop()
    print_table(results)


if __name__ == "__main__":
    main()
