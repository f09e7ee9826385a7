"""TLS handshakes per second and the server's CPU per handshake, on both ports (issue 16).

Starts ``cometql serve`` with a self-signed ECDSA P-256 certificate (as
``cometql bench --tls`` does) and opens N connections in turn from P client
processes, each one closed after its first answer:

- ``mysql``: PyMySQL logs in (with ``ssl``: the SSLRequest upgrade, then the
  login), runs ``SELECT 1`` and quits;
- ``wss``: a WebSocket session over TLS until its serverInfo (the browser
  port's full handshake: TLS, the upgrade, the session in the hub), then closed.

Each mode runs with and without TLS, so the difference is what TLS costs. The
server's CPU comes from /proc (utime + stime over exactly the window), the
figure to compare on a shared machine; the rate is wall-clock and swings with
the machine's load, which is printed with each line. Median of ``--runs``.

    python bench/tls_handshakes.py -n 1000 --runs 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import ssl
import statistics
import time

import pymysql

from cometql.bench._procfs import CpuMeter
from cometql.bench._server import Server, start_server
from cometql.bench._ws_client import handshake_request

DEV = 77


def _client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the run's own self-signed certificate
    return context


def _mysql(port: int, password: str, n: int, tls: bool) -> None:
    for _ in range(n):
        conn = pymysql.connect(host="127.0.0.1", port=port, user=str(DEV), password=password,
                               database="CometQL_v1", ssl=_client_tls() if tls else None)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.close()


def _wss(port: int, n: int, tls: bool) -> None:
    context = _client_tls() if tls else None
    for i in range(n):
        raw = socket.create_connection(("127.0.0.1", port))
        sock = context.wrap_socket(raw, server_hostname="localhost") if context else raw
        sock.sendall(handshake_request("127.0.0.1", port, DEV, f"tlsbench{time.monotonic_ns()}{i}"[-32:]))
        got = b""
        while b"serverInfo" not in got:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before serverInfo: {got[:200]!r}")
            got += chunk
        sock.close()


def run(server: Server, mode: str, tls: bool, n: int, procs: int) -> tuple[float, float]:
    """(handshakes/s, server CPU µs per handshake) for ``n`` connections from ``procs`` processes."""
    ctx = mp.get_context("spawn")
    if mode == "mysql":
        jobs = [ctx.Process(target=_mysql, args=(server.mysql_port, server.password, n // procs, tls))
                for _ in range(procs)]
    else:
        jobs = [ctx.Process(target=_wss, args=(server.ws_port, n // procs, tls)) for _ in range(procs)]
    meter = CpuMeter(server.pid)  # type: ignore[arg-type]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
        if job.exitcode:
            raise RuntimeError(f"a client process failed ({job.exitcode})")
    cpu, wall = meter.seconds()
    done = n // procs * procs
    return done / wall, cpu * 1e6 / done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1000, help="connections per run (1000)")
    ap.add_argument("--procs", type=int, default=2, help="client processes (2)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure; the median is shown (3)")
    ap.add_argument("--mode", choices=("mysql", "wss"), nargs="+", default=["mysql", "wss"])
    args = ap.parse_args()
    server = start_server(tls=True)
    try:
        plain_ws = start_server()  # the plain browser port to compare with (the TLS one serves only TLS)
        try:
            for mode in args.mode:
                for tls in (False, True):
                    target = plain_ws if mode == "wss" and not tls else server
                    rates, cpus = [], []
                    for _ in range(args.runs):
                        rate, cpu = run(target, mode, tls, args.n, args.procs)
                        rates.append(rate)
                        cpus.append(cpu)
                    load = open("/proc/loadavg").read().split()[:3]
                    name = {"mysql": "MySQL", "wss": "WebSocket"}[mode] + (" over TLS" if tls else ", plain")
                    print(f"{name:22s} {statistics.median(rates):7.0f} handshakes/s, server CPU "
                          f"{statistics.median(cpus):6.0f} µs per handshake (runs: "
                          f"{', '.join(f'{c:.0f}' for c in cpus)}); load {' '.join(load)}", flush=True)
        finally:
            plain_ws.stop()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
