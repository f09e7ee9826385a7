"""Server CPU and wall time per MySQL login: connect, one statement or none, quit (as a PHP page does).

Starts ``cometql serve`` and opens N connections one after the other from one
client, for each client kind:

- ``pymysql``: PyMySQL with ``ssl_disabled=True`` (it sends ``SET NAMES`` and
  ``SET AUTOCOMMIT = 0`` after the login);
- ``pymysql-default``: PyMySQL's defaults, whose "preferred TLS" builds
  ``ssl.create_default_context()`` (the system CA bundle) in every ``connect()``:
  client time, not the server's;
- ``php``: PHP's mysqli (no session statements), N connections in one PHP process;
- ``cli``: the ``mysql`` command, one process per connection.

The statement is ``INSERT INTO pipes_messages`` or nothing (``--statement none``).
Server CPU comes from /proc (utime + stime over the window), the figure to
compare on a shared machine; wall time is the client's median per connection
and swings with the load, printed with each line. Median of ``--runs``.

    python bench/mysql_logins.py -n 500 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import pymysql

from cometql.bench._procfs import CpuMeter
from cometql.bench._server import Server, start_server

INSERT = "INSERT INTO pipes_messages (name, event, message) VALUES ('pipe_bench', 'e', 'hi')"
_PHP = """
mysqli_report(MYSQLI_REPORT_OFF);
[$port, $n, $password, $sql] = [(int)$argv[1], (int)$argv[2], $argv[3], $argv[4]];
for ($i = 0; $i < $n; $i++) {
    $t = microtime(true);
    $m = new mysqli("127.0.0.1", "root", $password, "CometQL_v1", $port);
    if ($sql !== "") $m->query($sql);
    $m->close();
    echo microtime(true) - $t, "\\n";
}
"""


def _pymysql(server: Server, n: int, sql: str, tls_default: bool) -> list[float]:
    walls = []
    for _ in range(n):
        start = time.perf_counter()
        conn = pymysql.connect(host="127.0.0.1", port=server.mysql_port, user="root", password=server.password,
                               database="CometQL_v1", ssl_disabled=None if tls_default else True)
        if sql:
            with conn.cursor() as cur:
                cur.execute(sql)
        conn.close()
        walls.append(time.perf_counter() - start)
    return walls


def _php(server: Server, n: int, sql: str) -> list[float]:
    out = subprocess.run(["php", "-r", _PHP, "--", str(server.mysql_port), str(n), server.password, sql],
                         check=True, capture_output=True, text=True).stdout
    return [float(line) for line in out.split()]


def _cli(server: Server, n: int, sql: str) -> list[float]:
    walls = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(["mysql", "-h127.0.0.1", f"-P{server.mysql_port}", "-uroot", f"-p{server.password}",
                        "--skip-ssl", "-DCometQL_v1", "-e", sql], check=True)
        walls.append(time.perf_counter() - start)
    return walls


def run(server: Server, client: str, n: int, sql: str) -> tuple[float, float]:
    """(server CPU µs per connection, median wall ms per connection)."""
    meter = CpuMeter(server.pid)  # type: ignore[arg-type]
    if client == "php":
        walls = _php(server, n, sql)
    elif client == "cli":
        walls = _cli(server, n, sql)
    else:
        walls = _pymysql(server, n, sql, client == "pymysql-default")
    cpu, _ = meter.seconds()
    return cpu * 1e6 / n, statistics.median(walls) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=500, help="connections per run (500)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure; the median is shown (3)")
    ap.add_argument("--client", choices=("pymysql", "pymysql-default", "php", "cli"), nargs="+",
                    default=["pymysql", "pymysql-default", "php", "cli"])
    ap.add_argument("--statement", choices=("insert", "none"), nargs="+", default=["none", "insert"])
    args = ap.parse_args()
    server = start_server()
    try:
        for client in args.client:
            for statement in args.statement:
                sql = INSERT if statement == "insert" else ""
                run(server, client, 20, sql)  # warm up
                figures = [run(server, client, args.n, sql) for _ in range(args.runs)]
                load = open("/proc/loadavg").read().split()[:3]
                cpus = [c for c, _ in figures]
                print(f"{client:16s} {statement:6s} server CPU {statistics.median(cpus):5.0f} µs/connection "
                      f"(runs: {', '.join(f'{c:.0f}' for c in cpus)}), wall "
                      f"{statistics.median(w for _, w in figures):6.2f} ms; load {' '.join(load)}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
