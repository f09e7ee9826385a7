"""The WebSocket URL forms, CppComet's connection errors, and bad input of every kind.

Each abuse must end with an error frame and/or a proper close code, and the
server must keep serving: a session opened before the abuse (``bystander``)
still receives a publish afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.request
from collections.abc import Callable

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from ..servers import ServerProcess
from ._wire import (
    TIMEOUT,
    RawWebSocket,
    assert_frame,
    bystander,
    client_frame,
    eventually,
    open_browser,
)

Query = Callable[[str], list[tuple[str, ...]]]

#: For waits whose length depends on the machine's load (thousands of frames): they catch a hang only.
HANG_GUARD = 60.0


def _error_frame(text: str, code: int) -> str:
    return (f'{{"data":{{"error":"{text}","error_code":{code},"info":"Closed due to error. See last message."}},'
            '"event":"error","message_send_time":{T},"pipe":"sys"}')


# ----------------------------------------------------------------- URL forms


@pytest.mark.parametrize("prefix", ["/ws/", "//ws/", "/comet-server/ws/", "//comet-server/ws/"])
@pytest.mark.parametrize("query_mark", [False, True], ids=["no-?", "with-?"])
async def test_url_forms_authorize(ws_server: ServerProcess, dev: int, query: Query, prefix: str,
                                   query_mark: bool) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (3, 'key3')")
    async with open_browser(ws_server, dev, user_id=3, key="key3", prefix=prefix, query=query_mark) as b:
        assert '"authorized":true,"data":"key3"' in b.hello
        await b.subscribe("web_form")
        query("INSERT INTO pipes_messages (name, event, message) VALUES ('web_form', 'e', 'm')")
        assert_frame(await b.recv(), '{"data":"m","event":"e","message_send_time":{T},"pipe":"web_form"}')


@pytest.mark.parametrize(("tail", "code", "text"), [
    ("sesion_without_value", 401, "Error code 401(Invalid request, session ID not found)"),
    ("sesion=abc", 401, "Error code 401(Invalid request, the user ID can not be found)"),
    ("sesion=abc&myid=1", 406, "Error code 406(Invalid request, no public key found [1])"),
    ("sesion=abc&myid=1&devid=5&v=x.y&uuid=abc&api=js", 418,
     "Error code 418(Invalid request Not assigned client api version)\\n"),
], ids=["401-no-equals", "401-no-myid", "406-no-devid", "418-bad-v"])
async def test_bad_url_gets_cppcomets_error_frame_then_close(ws_server: ServerProcess, tail: str, code: int,
                                                             text: str) -> None:
    url = f"ws://127.0.0.1:{ws_server.ws_port}/ws/{tail}"
    async with open_websocket_url(url, connect_timeout=TIMEOUT, disconnect_timeout=TIMEOUT) as ws:
        with trio.fail_after(TIMEOUT):
            assert_frame(await ws.get_message(), _error_frame(text, code))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
    assert closed.value.reason.code == 1008


# ----------------------------------------------------------------- bad input


async def test_unknown_command_gets_an_error_frame_and_the_session_stays(ws_server: ServerProcess, dev: int,
                                                                         query: Query) -> None:
    async with bystander(ws_server, dev) as still_served, open_browser(ws_server, dev) as b:
        await b.subscribe("web_after")
        await b.send("no_such_command", "x")
        assert_frame(await b.recv(), '{"data":{"error":"Unknown command","number_messages":-1},"event":"error",'
                                     '"message_send_time":{T},"pipe":"sys"}')
        query("INSERT INTO pipes_messages (name, event, message) VALUES ('web_after', 'e', 'still here')")
        assert_frame(await b.recv(), '{"data":"still here","event":"e","message_send_time":{T},"pipe":"web_after"}')
        await still_served()


async def test_message_over_65535_bytes_closes_with_1009(ws_server: ServerProcess, dev: int) -> None:
    async with bystander(ws_server, dev) as still_served, open_browser(ws_server, dev) as b:
        limit = "statistics\n" + "x" * (65535 - len("statistics\n"))
        await b.ws.send_message(limit)  # exactly the limit: accepted (statistics has no reply)
        await b.sync()
        await b.ws.send_message(limit + "x")
        assert await b.closed() == 1009
        await still_served()


async def test_ping_gets_a_pong(ws_server: ServerProcess, dev: int) -> None:
    async with bystander(ws_server, dev) as still_served, open_browser(ws_server, dev) as b:
        with trio.fail_after(TIMEOUT):
            await b.ws.ping(b"are you there")  # returns when the matching pong arrives
        await b.sync()
        await still_served()


async def test_invalid_utf8_text_frame_closes_with_1007(ws_server: ServerProcess, dev: int) -> None:
    async with bystander(ws_server, dev) as still_served:
        raw = await RawWebSocket.connect(ws_server.ws_port, f"/ws/sesion=&myid=0&devid={dev}&v=4.08")
        try:
            opcode, hello = await raw.recv_frame()
            assert opcode == 0x1 and b'"serverInfo"' in hello
            await raw.send_raw(client_frame(b"subscription\nweb_\xff\xfe\xc3"))
            assert await raw.close_code() == 1007
            assert await raw.recv_frame() == (-1, b"")  # then the server ends the TCP connection
        finally:
            await raw.aclose()
        await still_served()


async def test_fragmented_message_is_reassembled(ws_server: ServerProcess, dev: int) -> None:
    async with bystander(ws_server, dev) as still_served:
        raw = await RawWebSocket.connect(ws_server.ws_port, f"/ws/?sesion=&myid=0&devid={dev}&v=4.08")
        try:
            await raw.recv_frame()  # serverInfo
            await raw.send_raw(client_frame(b"pipe_count\nweb_by", fin=False))
            await raw.send_raw(client_frame(b"ping-in-between", opcode=0x9))  # control frames may interleave
            assert await raw.recv_frame() == (0xA, b"ping-in-between")
            await raw.send_raw(client_frame(b"stander\nfrag", opcode=0x0, fin=False))
            await raw.send_raw(client_frame(b"mented\n", opcode=0x0))
            opcode, payload = await raw.recv_frame()
            assert opcode == 0x1
            assert_frame(payload.decode(), '{"data":["user_in_pipe",1],"event":"user_in_pipe","marker":"fragmented",'
                                           '"message_send_time":{T},"pipe":"_answer_pipe_count"}')
        finally:
            await raw.aclose()
        await still_served()


async def test_ten_thousand_channels_keep_32_and_report_too_many(ws_server: ServerProcess, dev: int,
                                                                 query: Query) -> None:
    names = [f"c{i}" for i in range(10_000)]
    async with bystander(ws_server, dev) as still_served, open_browser(ws_server, dev) as b:
        await b.send("subscription", *names)
        assert_frame(await b.recv(), '{"data":{"code":"403","error":"Too many letters"},"event":"error",'
                                     '"message_send_time":{T},"pipe":"sys"}')
        await b.sync()
        assert set(query("SELECT * FROM pipes")) == {(name, "1") for name in names[:32]} | {("web_bystander", "1")}
        await still_served()


async def test_command_flood_does_not_starve_other_sessions(tuned_server: ServerProcess, dev: int) -> None:
    """With the rate limit off (as on tuned_server), a flood is served in full and in order, and others still are.

    The flooder reads its replies while it sends, as a browser does. (It used to send all 5,000
    commands before reading anything: its ~600 KB of unread replies then depended on the kernel's
    socket buffers growing, and on a loaded machine they did not, so the server rightly closed
    it as a slow consumer.)
    """
    count = 5000
    replies: list[str] = []
    async with bystander(tuned_server, dev) as still_served, open_browser(tuned_server, dev) as flooder:

        async def read_replies() -> None:
            replies.extend(await flooder.recv_many(count, timeout=HANG_GUARD))

        async def flood(numbers: range) -> None:
            with trio.fail_after(HANG_GUARD):  # a hang guard, not a speed requirement: CI may be loaded
                for i in numbers:
                    await flooder.send("pipe_count", "web_flood", f"m{i}", "")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_replies)
            await flood(range(count // 2))
            await still_served()  # in the middle of the flood
            await flood(range(count // 2, count))
            await still_served()
    assert [r.split('"marker":"', 1)[1].split('"', 1)[0] for r in replies] == [f"m{i}" for i in range(count)]


@pytest.mark.parametrize("request_bytes", [
    b"\x00\x01\x02 garbage \xff\r\n\r\n",
    b"GET /ws/sesion=&myid=0&devid=1&v=4.08 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET /ws/sesion=&myid=0&devid=1&v=4.08 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 40_000 + b"\r\n\r\n",
    b"GET /ws/sesion=&myid=0&devid=1&v=4.08 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n",  # then EOF
], ids=["garbage", "missing-key", "huge-header", "truncated"])
async def test_malformed_handshake_gets_http_error_or_close(ws_server: ServerProcess, dev: int,
                                                            request_bytes: bytes) -> None:
    async with bystander(ws_server, dev) as still_served:
        with trio.fail_after(TIMEOUT):
            stream = await trio.open_tcp_stream("127.0.0.1", ws_server.ws_port)
            try:
                await stream.send_all(request_bytes)
                await stream.send_eof()
                reply = b""
                while chunk := await stream.receive_some(65536):
                    reply += chunk
            except trio.BrokenResourceError:
                reply = b""  # reset by the server: a close too
            finally:
                await stream.aclose()
        assert reply == b"" or re.match(rb"HTTP/1\.1 4\d\d ", reply), reply[:200]
        assert b"101 Switching" not in reply
        await still_served()
    assert ws_server.alive


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_slow_consumer_is_disconnected_and_memory_stays_bounded(tuned_server: ServerProcess,
                                                                      dev: int) -> None:
    srv = tuned_server
    assert srv.proc is not None
    conn = srv.connect(dev)
    cur = conn.cursor()
    async with bystander(srv, dev) as still_served:
        raw = await RawWebSocket.connect(srv.ws_port, f"/ws/sesion=&myid=0&devid={dev}&v=4.08", rcvbuf=4096)
        try:
            await raw.recv_frame()  # serverInfo
            await raw.send_raw(client_frame(b"subscription\nweb_slow"))
            await raw.send_raw(client_frame(b"pipe_count\nweb_slow\nready\n"))
            assert b'"marker":"ready"' in (await raw.recv_frame())[1]
            rss_before = _rss_kib(srv.proc.pid)
            payload = os.urandom(24_000).hex()  # 48 KB per frame, 12 MB in all: far over the 256 KiB bound
            insert = f"INSERT INTO pipes_messages (name, event, message) VALUES ('web_slow', 'e', '{payload}')"
            with trio.fail_after(30):
                for _ in range(250):
                    await trio.to_thread.run_sync(cur.execute, insert)

            def gone() -> bool:
                cur.execute("SELECT * FROM pipes WHERE name = 'web_slow'")
                assert cur.fetchall() == (("web_slow", "0"),)
                return True

            await eventually(gone, timeout=10)
            grown = _rss_kib(srv.proc.pid) - rss_before
            assert grown < 8 * 1024, f"server RSS grew by {grown} KiB for a 256 KiB send bound"
        finally:
            await raw.aclose()
            conn.close()
        await still_served()


def _rate_limit_hits(server: ServerProcess) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.ws_port}/metrics", timeout=5).read().decode()
    return float(re.search(r'^cometql_limit_hits_total\{limit="command_rate"\} (\S+)$', text, re.M).group(1))


async def test_by_default_a_flood_is_rate_limited_and_others_are_still_served(ws_server: ServerProcess,
                                                                               dev: int) -> None:
    """The default limit (100 commands/s, bursts of 200): a 1,000-command flood is refused past its
    burst and then closed; other sessions are unaffected. Counted on the server: a socket closed with
    the flood still unread is reset, and the reset drops what the client had not read yet."""
    before = _rate_limit_hits(ws_server)
    async with bystander(ws_server, dev) as still_served, open_browser(ws_server, dev) as flooder:
        with contextlib.suppress(ConnectionClosed), trio.fail_after(15):
            for i in range(1000):
                await flooder.send("pipe_count", "web_flood", f"m{i}", "")
        assert await flooder.closed() in (1008, 1006)  # 1006: the close frame went down with the reset
        await still_served()
    assert _rate_limit_hits(ws_server) - before >= 50  # refused until the strikes closed it
