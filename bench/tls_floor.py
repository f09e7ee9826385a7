"""What one idle TLS connection costs a Python server by itself: the floor under a wss:// session.

The server (this process) accepts N TLS connections from a client process and
keeps each in one of three shapes, with no task, coroutine or framework object:

- ``plain``: the socket alone (the baseline: a ws:// session's socket);
- ``sslsocket``: ``ssl.SSLSocket`` (OpenSSL reads and writes the descriptor);
- ``memorybio``: ``ssl.SSLObject`` over two ``ssl.MemoryBIO`` (what trio's
  SSLStream and CometQL's wss:// sessions hold).

It reports the server's RSS growth per connection after the handshakes, and
again after each connection received one small record and sent one (an idle
session that had its serverInfo and a subscription). The difference to
``plain`` is what OpenSSL and Python's ssl wrapper keep per connection: the
floor for an idle wss:// session in this process model. Python's ssl module sets
``SSL_MODE_RELEASE_BUFFERS`` (CPython issue 25672), so the 16 KB read and
write buffers are freed between records; the figure says what remains.

    python bench/tls_floor.py -n 2000 --mode memorybio
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import os
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cometql.bench._procfs import rss_kb

CLIENT = r"""
import asyncio, ssl, sys
async def main(port, n, ca, version):
    ctx = None if version == "plain" else ssl.create_default_context(cafile=ca)
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    loop = asyncio.get_running_loop()
    conns = []
    sem = asyncio.Semaphore(32)
    async def one():
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                server_hostname="localhost" if ctx else None)
            conns.append((r, w))
    await asyncio.gather(*(one() for _ in range(n)))
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "send": one small record each
    for r, w in conns:
        w.write(b"x" * 40)
    for r, w in conns:
        await r.readexactly(100)
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]))
"""


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for localhost (what ``cometql bench --tls`` uses)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-days", "2", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_libc.mallinfo2.restype = _Mallinfo2


def heap_in_use_kb() -> float:
    """Bytes malloc has handed out and not had back (glibc ``mallinfo2``): live C memory, no fragmentation."""
    info = _libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 1024


def context_mode(ctx: ssl.SSLContext) -> int:
    """``SSL_CTX_get_mode`` of Python's context (its ``SSL_CTX *`` is the first field after the object head)."""
    libssl = ctypes.CDLL("libssl.so.3")
    libssl.SSL_CTX_ctrl.restype = ctypes.c_long
    libssl.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    return int(libssl.SSL_CTX_ctrl(pointer, 33, 0, None))  # SSL_CTRL_MODE with 0: read the mode


SSL_MODE_RELEASE_BUFFERS = 0x10


class Conn:
    __slots__ = ("sock", "tls", "inc", "out", "done")

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext | None, mode: str) -> None:
        self.sock = sock
        self.done = mode == "plain"
        self.inc = self.out = None
        self.tls: ssl.SSLObject | ssl.SSLSocket | None = None
        if mode == "memorybio":
            assert ctx is not None
            self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.tls = ctx.wrap_bio(self.inc, self.out, server_side=True)
        elif mode == "sslsocket":
            assert ctx is not None
            self.tls = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            self.sock = self.tls

    def _pump_in(self) -> bool:
        if self.inc is None:
            return True
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.inc.write(data)
        return True

    def _pump_out(self) -> None:
        if self.out is not None and self.out.pending:
            self.sock.sendall(self.out.read())

    def step(self) -> None:
        """Advance the handshake (plain: nothing to do)."""
        if self.done or not self._pump_in():
            return
        try:
            self.tls.do_handshake()  # type: ignore[union-attr]
            self.done = True
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        self._pump_out()

    def echo(self) -> bool:
        """Read the client's small record, answer with 100 bytes; False until it arrived."""
        if not self._pump_in():
            return True
        try:
            data = self.tls.read(65536) if isinstance(self.tls, ssl.SSLObject) else self.sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        if data:
            payload = b"y" * 100
            if isinstance(self.tls, ssl.SSLObject):
                self.tls.write(payload)
                self._pump_out()
            else:
                self.sock.sendall(payload)
        return True


def measure(n: int, mode: str, version: str, tickets: int = 2) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(Path(tmp))
        ctx = None
        if mode != "plain":
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(cert), str(key))
            ctx.num_tickets = tickets
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        conns: dict[int, Conn] = {}
        gc.collect()
        rss0 = rss_kb(os.getpid())
        heap0 = heap_in_use_kb()
        client_ctx_mode = "plain" if mode == "plain" else version
        client = subprocess.Popen([sys.executable, "-c", CLIENT, str(port), str(n),
                                   str(cert), client_ctx_mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        poll = select.epoll()
        poll.register(listener.fileno(), select.EPOLLIN)
        poll.register(client.stdout.fileno(), select.EPOLLIN)  # type: ignore[union-attr]
        cpu0 = time.process_time()
        phase = 0
        rss: list[int] = []
        heap: list[float] = []
        pending_echo: set[int] = set()
        while phase < 2:
            for fd, _ in poll.poll(30):
                if fd == listener.fileno():
                    while True:
                        try:
                            sock, _ = listener.accept()
                        except BlockingIOError:
                            break
                        sock.setblocking(False)
                        conn = Conn(sock, ctx, mode)
                        conns[conn.sock.fileno()] = conn
                        poll.register(conn.sock.fileno(), select.EPOLLIN)
                        conn.step()
                elif fd == client.stdout.fileno():  # type: ignore[union-attr]
                    client.stdout.readline()  # type: ignore[union-attr]
                    gc.collect()
                    time.sleep(0.2)
                    rss.append(rss_kb(os.getpid()) or 0)
                    heap.append(heap_in_use_kb())
                    if phase == 0:
                        cpu = time.process_time() - cpu0
                        pending_echo = set(conns)
                        client.stdin.write("go\n")  # type: ignore[union-attr]
                        client.stdin.flush()  # type: ignore[union-attr]
                    phase += 1
                else:
                    conn = conns[fd]
                    if not conn.done:
                        conn.step()
                    elif fd in pending_echo and conn.echo():
                        pending_echo.discard(fd)
        client.stdin.write("bye\n")  # type: ignore[union-attr]
        client.stdin.flush()  # type: ignore[union-attr]
        client.wait(30)
        stats = ctx.session_stats() if ctx is not None else {}
        return {"after_handshake_kb": (rss[0] - (rss0 or 0)) / n, "after_one_record_kb": (rss[1] - (rss0 or 0)) / n,
                "server_cpu_per_handshake_us": cpu * 1e6 / n, "session_cache": stats.get("number", 0),
                "heap_kb": (heap[1] - heap0) / n,
                "release_buffers": bool(ctx is not None and context_mode(ctx) & SSL_MODE_RELEASE_BUFFERS)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--mode", choices=("plain", "sslsocket", "memorybio"), nargs="+",
                    default=["plain", "sslsocket", "memorybio"])
    ap.add_argument("--tls", choices=("1.2", "1.3"), default="1.3", help="highest version the client offers")
    ap.add_argument("--tickets", type=int, default=2, help="TLS 1.3 session tickets sent per handshake (2)")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}, load {open('/proc/loadavg').read().strip()}")
    for mode in args.mode:
        r = measure(args.n, mode, args.tls, args.tickets)
        print(f"{mode:10s} TLS {args.tls}, {args.tickets} tickets, n={args.n}: "
              f"{r['after_handshake_kb']:.2f} KB/conn after the handshake, "
              f"{r['after_one_record_kb']:.2f} KB after one record each way; "
              f"malloc'd and live {r['heap_kb']:.2f} KB/conn; "
              f"server CPU {r['server_cpu_per_handshake_us']:.0f} µs/handshake; session cache {r['session_cache']}; "
              f"SSL_MODE_RELEASE_BUFFERS {r['release_buffers']}")


if __name__ == "__main__":
    main()
