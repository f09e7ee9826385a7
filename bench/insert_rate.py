"""INSERT INTO pipes_messages per second with C concurrent PyMySQL clients.

Starts a server in a subprocess (or uses --port of a running one), runs each
client in its own process, and prints the rate, p50/p99 latency per INSERT and
whether every statement reached the hub (from SHOW GLOBAL STATUS).

    python bench/insert_rate.py --clients 8 --inserts 20000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import pymysql

PASSWORD = "CometQLPassword"
SQL = "INSERT INTO pipes_messages (name, event, message) VALUES ('bench', 'tick', 'hello from the benchmark')"


def _connect(port: int) -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=port, user="1", password=PASSWORD, database="CometQL_v1",
                           autocommit=True)


def _client(port: int, n: int, start: mp.Event, out: mp.Queue) -> None:
    conn = _connect(port)
    cur = conn.cursor()
    lat = []
    start.wait()
    perf = time.perf_counter
    for _ in range(n):
        t0 = perf()
        cur.execute(SQL)
        lat.append(perf() - t0)
    conn.close()
    out.put(lat)


def _published(port: int) -> int:
    conn = _connect(port)
    cur = conn.cursor()
    cur.execute("SHOW GLOBAL STATUS")
    rows = dict(cur.fetchall())
    conn.close()
    return int(rows["messages_published"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server did not start on port {port}")


def run(port: int, clients: int, inserts: int) -> dict[str, float]:
    before = _published(port)
    start, out = mp.Event(), mp.Queue()
    procs = [mp.Process(target=_client, args=(port, inserts, start, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    time.sleep(0.5)  # let every client connect
    t0 = time.perf_counter()
    start.set()
    lat: list[float] = []
    for _ in procs:
        lat.extend(out.get())
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    lat.sort()
    total = clients * inserts
    reached = _published(port) - before
    return {
        "clients": clients,
        "inserts": total,
        "seconds": wall,
        "rate": total / wall,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
        "reached_hub": reached,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, help="use a running server instead of starting one")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--inserts", type=int, default=20000, help="per client")
    args = ap.parse_args()
    server = None
    port = args.port
    if port is None:
        port = _free_port()
        data = tempfile.mkdtemp(prefix="cometql-bench-")
        server = subprocess.Popen([sys.executable, "-m", "cometql.cli", "serve", "--mysql-port", str(port),
                                   "--ws-port", str(_free_port()), "--data-dir", data, "--log-level", "warning"],
                                  stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        _wait_port(port)
    try:
        print(f"{'clients':>7} {'INSERTs':>8} {'INSERT/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'reached hub':>11}")
        for c in args.clients:
            r = run(port, c, args.inserts)
            ok = "all" if r["reached_hub"] == r["inserts"] else f"{r['reached_hub']:.0f}"
            print(f"{c:>7} {r['inserts']:>8} {r['rate']:>9,.0f} {r['p50_ms']:>7.3f} {r['p99_ms']:>7.3f} {ok:>11}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
