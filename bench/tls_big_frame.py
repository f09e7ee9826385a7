"""What an idle wss:// session keeps after one large frame: RSS growth per session (issue 16).

Starts ``cometql serve`` with TLS (as ``cometql bench --tls``), opens 1,000
wss:// sessions subscribed to one channel, then publishes one 60 KB message to
all of them and reads the server's RSS before and after (each session idle
again). A TLS layer that keeps its largest buffer per connection shows here:
trio's ``SSLStream`` over memory BIOs kept about 125 KB per session.

    python bench/tls_big_frame.py
"""

from __future__ import annotations

import asyncio
import ssl

from cometql.bench._procfs import rss_kb
from cometql.bench._server import Server, start_server
from cometql.bench._ws_client import client_frame, handshake_request

N = 1000


async def measure(srv: Server) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the run's own self-signed certificate
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", srv.ws_port, ssl=ctx, server_hostname="localhost")
            w.write(handshake_request("127.0.0.1", srv.ws_port, 77, f"big{i:029d}"))
            await r.readuntil(b"serverInfo")
            await r.readuntil(b"}")
            w.write(client_frame("subscription\nweb_big"))
            conns.append((r, w))
    await asyncio.gather(*(one(i) for i in range(N)))
    await asyncio.sleep(2)
    a = rss_kb(srv.pid)  # type: ignore[arg-type]
    m = srv.mysql(77)
    m.execute("INSERT INTO pipes_messages (name, event, message) VALUES ('web_big', 'ev', '" + "z" * 60000 + "')")

    async def drain(r: asyncio.StreamReader) -> None:
        got = 0
        while got < 60000:
            got += len(await r.read(65536))
    await asyncio.wait_for(asyncio.gather(*(drain(r) for r, w in conns)), 120)
    await asyncio.sleep(2)
    b = rss_kb(srv.pid)  # type: ignore[arg-type]
    print(f"{N} idle wss sessions; RSS growth per session after each got a 60 KB frame: {(b - a) / N:.1f} KB")


def main() -> None:
    srv = start_server(tls=True)
    try:
        asyncio.run(measure(srv))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
