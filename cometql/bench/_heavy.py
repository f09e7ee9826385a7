"""What other clients feel while the heaviest statements CometQL accepts run.

Every MySQL connection and every browser shares the server's one event loop,
so a statement that held it would stall everyone. Two heavy clients loop over
the heaviest statements the default bounds accept (1,000 statements in one
query, a 10,000-row INSERT, 10,000-value IN lists, 64 ORs, 32 levels of
nesting, 2,000 tokens, ~1 MiB of statements) and over inputs just past the
bounds, which must be refused cheaply. Meanwhile a probe process measures
round trips on another MySQL connection (``SELECT 1``) and on a browser
WebSocket (ping -> pong): first without the heavy clients (the baseline), then
with them. The figure is the probes' p99 and max under load.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import threading
import time
from array import array
from multiprocessing.connection import Connection

from ._context import Context, ms, percentile
from ._loadgen import BenchError
from ._mysql_client import MySQLClient, MySQLError, com_query
from ._results import Result, Target
from ._ws_client import client_frame, handshake_request

__all__ = ["heavy", "heavy_statements"]

#: The probes' pause between two round trips (they measure latency, not throughput).
_PROBE_GAP = 0.002


def heavy_statements(channel: str) -> list[tuple[str, str, int | None]]:
    """(name, SQL, expected error code or None) for the default bounds (``cometql.sql.Limits``)."""
    ids = ", ".join(str(i) for i in range(1, 10_001))
    rows = ", ".join(f"('{channel}', 'heavy', 'row {i} of a 10,000-row INSERT')" for i in range(10_000))
    block = "DELETE FROM users_messages WHERE id IN (" + ", ".join(str(i) for i in range(1, 201)) + ")"
    return [
        ("1,000 statements", ";".join(["SELECT 1"] * 1000), None),
        ("10,000-row INSERT", f"INSERT INTO pipes_messages (name, event, message) VALUES {rows}", None),
        ("IN of 10,000 ids", f"SELECT * FROM users_time WHERE id IN ({ids})", None),
        ("IN of 10,000 + filter", f"SELECT COUNT(*) FROM users_time WHERE time <> 5 AND id IN ({ids})", None),
        ("64 ORs", "SELECT * FROM users_time WHERE " + " OR ".join(f"id = {i}" for i in range(64)), None),
        ("32 levels", "SELECT * FROM users_time WHERE " + "(" * 31 + "id = 1" + ")" * 31, None),
        ("1,000 tokens", "SELECT 1" + " + 1" * 498, None),
        ("~1 MiB of statements", ";".join([block] * 1000), None),
        ("120,000 ids (refused)", "SELECT * FROM users_time WHERE id IN ("
         + ", ".join(str(i) for i in range(120_000)) + ")", 19),
        ("5,000 statements (refused)", ";".join(["SELECT 1"] * 5000), 22),
        ("100,000 levels (refused)", "SELECT " + "(" * 100_000 + "1" + ")" * 100_000, 23),
        ("20,000 ORs (refused)", "SELECT * FROM users_time WHERE " + " OR ".join(["id = 1"] * 20_000), 18),
    ]


def _run_statement(client: MySQLClient, sql: str) -> int | None:
    """The statement's error code, or None when it was answered (rows or OK)."""
    try:
        client.query(sql)
    except MySQLError as exc:
        return int(exc.args[0])
    return None


def _heavy_worker(login: tuple[str, int, str, str], channel: str, clients: int, duration: float,
                  conn: Connection) -> None:
    """``clients`` connections, each looping over the heavy statements for ``duration`` seconds."""
    statements = heavy_statements(channel)
    done: dict[str, int] = {name: 0 for name, _, _ in statements}
    wrong: list[str] = []
    lock = threading.Lock()

    def loop(offset: int) -> None:
        client = MySQLClient(*login, timeout=60)
        deadline = time.monotonic() + duration
        i = offset
        while time.monotonic() < deadline:
            name, sql, expected = statements[i % len(statements)]
            got = _run_statement(client, sql)
            with lock:
                done[name] += 1
                if got != expected:
                    wrong.append(f"{name}: error {got}, expected {expected}")
            i += 1
        client.close()

    threads = [threading.Thread(target=loop, args=(k * 5,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conn.send({"done": done, "wrong": wrong[:5]})


def _ws_open(host: str, port: int, dev_id: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(handshake_request(host, port, dev_id, "heavyprobe0000000000000000000000", caps=""))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("no WebSocket handshake")
        data += chunk
    if b" 101 " not in data.split(b"\r\n", 1)[0]:
        raise ConnectionError(data.split(b"\r\n", 1)[0].decode())
    return sock


def _ws_pong(sock: socket.socket, buf: bytearray) -> None:
    """Read frames until a pong (the server's hello and other frames are skipped)."""
    while True:
        while len(buf) < 2 or len(buf) < _frame_size(buf):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the WebSocket")
            buf += chunk
        size = _frame_size(buf)
        opcode = buf[0] & 0x0F
        del buf[:size]
        if opcode == 0xA:
            return


def _frame_size(buf: bytearray) -> int:
    n = buf[1] & 0x7F
    if n == 126:
        return 4 + int.from_bytes(buf[2:4], "big") if len(buf) >= 4 else 1 << 30
    if n == 127:
        return 10 + int.from_bytes(buf[2:10], "big") if len(buf) >= 10 else 1 << 30
    return 2 + n


def _probe_worker(server: tuple[str, int, int, str, str, int], phases: list[float], conn: Connection) -> None:
    """Round trips on one MySQL connection and one WebSocket, in phases of the given lengths."""
    host, mysql_port, ws_port, user, password, dev_id = server
    client = MySQLClient(host, mysql_port, user, password)
    ws = _ws_open(host, ws_port, dev_id)
    ping = client_frame(b"p", opcode=0x9)
    select = com_query("SELECT 1")
    conn.send("ready")
    for seconds in phases:
        conn.recv()  # the parent says when the phase starts
        out: dict[str, array[int]] = {"mysql": array("q"), "ws": array("q")}

        def mysql_loop(end: float, lat: array[int]) -> None:
            while time.monotonic() < end:
                t = time.monotonic_ns()
                client.sock.sendall(select)
                client._packet()  # column count ... read the whole result set
                while not _is_eof(client._packet()):
                    pass
                while not _is_eof(client._packet()):
                    pass
                lat.append(time.monotonic_ns() - t)
                time.sleep(_PROBE_GAP)

        def ws_loop(end: float, lat: array[int]) -> None:
            buf = bytearray()
            while time.monotonic() < end:
                t = time.monotonic_ns()
                ws.sendall(ping)
                _ws_pong(ws, buf)
                lat.append(time.monotonic_ns() - t)
                time.sleep(_PROBE_GAP)

        end = time.monotonic() + seconds
        threads = [threading.Thread(target=mysql_loop, args=(end, out["mysql"])),
                   threading.Thread(target=ws_loop, args=(end, out["ws"]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        conn.send({k: v.tobytes() for k, v in out.items()})
    client.close()
    ws.close()


def _is_eof(packet: bytes) -> bool:
    return packet[:1] == b"\xfe" and len(packet) < 9


def heavy(ctx: Context, duration: float = 10.0, clients: int = 2, baseline: float = 2.0) -> Result:
    """Probe latency (MySQL ``SELECT 1``, WebSocket ping) without and then with the heavy clients running."""
    srv = ctx.server
    result = Result("heavy", f"heavy statements, {clients} clients",
                    {"duration_s": duration, "clients": clients}, notes=[])
    mpc = mp.get_context("spawn")
    probe_end, probe_child = mpc.Pipe()
    probe = mpc.Process(target=_probe_worker, name="cometql-bench-probe", daemon=True, args=(
        (srv.host, srv.mysql_port, srv.ws_port, str(ctx.dev_id), srv.password, ctx.dev_id), [baseline, duration],
        probe_child))
    heavy_end, heavy_child = mpc.Pipe()
    worker = mpc.Process(target=_heavy_worker, name="cometql-bench-heavy", daemon=True, args=(
        (srv.host, srv.mysql_port, str(ctx.dev_id), srv.password), ctx.channel("heavy", 0), clients, duration,
        heavy_child))
    probe.start()
    try:
        if not probe_end.poll(30):
            raise BenchError("the probe did not connect")
        probe_end.recv()
        with ctx.reporter.phase(f"heavy: baseline {baseline:g} s, then {duration:g} s under load", total=2) as phase:
            probe_end.send("go")
            if not probe_end.poll(baseline + 30):
                raise BenchError("the probe stalled")
            quiet = probe_end.recv()
            phase.advance()
            worker.start()
            probe_end.send("go")
            if not probe_end.poll(duration + 60) or not heavy_end.poll(duration + 120):
                raise BenchError("the probe or the heavy clients stalled")
            loaded, report = probe_end.recv(), heavy_end.recv()
            phase.advance()
    finally:
        for proc in (probe, worker):
            if proc.pid is not None:
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
    for kind, target in (("mysql", "SELECT 1"), ("ws", "WebSocket ping")):
        base = sorted(array("q", quiet[kind]))
        lat = sorted(array("q", loaded[kind]))
        if not lat:
            raise BenchError(f"no {target} round trip completed under load")
        result.add(f"{target} p50 (quiet)", ms(percentile(base, 0.5)), "ms")
        result.add(f"{target} p99 under load", ms(percentile(lat, 0.99)), "ms", Target("<=", 50))
        result.add(f"{target} max under load", ms(lat[-1]), "ms")
        result.details[f"{kind}_round_trips"] = len(lat)
    result.add("heavy statements run", sum(report["done"].values()), "")
    result.details["statements"] = report["done"]
    if report["wrong"]:
        result.notes.append("unexpected answers: " + "; ".join(report["wrong"]))
    return result
