"""Abuse limits: the pure policies, then each limit hit over the wire on a server with tight settings.

``limits_server`` allows 3 sessions per IP, 5 commands/s (burst 5), 100-byte
messages and 4 subscriptions per session (see conftest.py).
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack

import pymysql
import pytest
import trio
from trio_websocket import ConnectionClosed

from cometql.limits import IpSessions, RateLimiter, Verdict, insert_message_too_long, web_message_size
from cometql.sql import parse

from ..servers import ServerProcess
from ..web._wire import Browser, http_request, open_browser
from .conftest import COMMAND_BURST, MAX_MESSAGE_SIZE, MAX_SESSIONS_PER_IP, MAX_SUBSCRIPTIONS

CLOSE_POLICY = 1008


def error_of(frame: str) -> dict[str, object]:
    obj = json.loads(frame)
    assert (obj["pipe"], obj["event"]) == ("sys", "error"), frame
    return obj["data"]  # type: ignore[no-any-return]


# ----------------------------------------------------------------- policies


def test_rate_limiter_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=2, burst=3, abuse_after=4)
    assert [limiter.take(0.0) for _ in range(3)] == [Verdict.OK] * 3
    assert limiter.take(0.0) is Verdict.LIMITED
    assert limiter.take(0.5) is Verdict.OK  # 0.5 s at 2/s refills one token
    assert limiter.take(0.5) is Verdict.LIMITED


def test_rate_limiter_reports_abuse_when_refusals_outweigh_passes() -> None:
    limiter = RateLimiter(rate=1, burst=1, abuse_after=3)
    assert limiter.take(0.0) is Verdict.OK
    assert [limiter.take(0.0) for _ in range(2)] == [Verdict.LIMITED, Verdict.LIMITED]  # 2 strikes
    assert limiter.take(1.0) is Verdict.OK  # one pass takes one strike away: 1 left
    assert limiter.take(1.0) is Verdict.LIMITED  # 2
    assert limiter.take(1.0) is Verdict.ABUSE  # 3


def test_rate_limiter_forgives_a_client_that_slows_down() -> None:
    limiter = RateLimiter(rate=1, burst=1, abuse_after=3)
    assert [limiter.take(0.0) for _ in range(3)] == [Verdict.OK, Verdict.LIMITED, Verdict.LIMITED]
    assert [limiter.take(float(t)) for t in range(1, 4)] == [Verdict.OK] * 3
    assert [limiter.take(3.0) for _ in range(2)] == [Verdict.LIMITED, Verdict.LIMITED]  # strikes were cleared


def test_rate_zero_means_no_limit() -> None:
    limiter = RateLimiter(rate=0, burst=1)
    assert all(limiter.take(0.0) is Verdict.OK for _ in range(10_000))


def test_ip_sessions_counts_per_address() -> None:
    ips = IpSessions(2)
    assert ips.acquire("a") and ips.acquire("a") and ips.acquire("b")
    assert not ips.acquire("a")
    assert ips.count("a") == 2  # a refusal is not counted
    ips.release("a")
    assert ips.acquire("a")
    assert IpSessions(0).acquire("a")  # 0: no limit


def test_web_message_size_measures_the_web_pipe2_message_in_bytes() -> None:
    assert web_message_size("web_pipe2\nweb_a\nev\n*\nhéllo\nworld") == len("héllo\nworld".encode())
    assert web_message_size("subscription\nweb_a\n" + "x" * 500) == 0
    assert web_message_size("web_pipe2\nweb_a") == 0


def test_insert_message_too_long_looks_at_the_message_column_of_message_tables() -> None:
    (stmt,) = parse("INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'e', 'abcd'), ('a', 'e', 'ab')")
    assert insert_message_too_long(stmt, 3)
    assert not insert_message_too_long(stmt, 4)
    (data,) = parse("INSERT INTO users_data (id, data) VALUES (1, 'abcdefgh')")
    assert not insert_message_too_long(data, 3)


# ------------------------------------------------------------- over the wire


async def test_sessions_per_ip_over_the_limit_get_an_error_frame_and_1008(limits_server: ServerProcess,
                                                                           dev: int) -> None:
    async with AsyncExitStack() as stack:
        for _ in range(MAX_SESSIONS_PER_IP):
            browser = await stack.enter_async_context(open_browser(limits_server, dev))
            assert json.loads(browser.hello)["event"] == "serverInfo"
        async with open_browser(limits_server, dev) as refused:
            data = error_of(refused.hello)
            assert data["error_code"] == 429
            assert data["error"] == "Error code 429(Too many sessions from this address.)"
            assert await refused.closed() == CLOSE_POLICY
        reply = await http_request(limits_server.ws_port, "POST", "/lp/connect",
                                   f"sesion=&myid=0&devid={dev}&v=4.08&uuid=&api=js".encode())
        assert reply.status == 429
    # all closed: the address may open sessions again (the count drops as the server sees the closes)
    with trio.fail_after(5):
        while True:
            async with open_browser(limits_server, dev) as again:
                if json.loads(again.hello)["event"] == "serverInfo":
                    break
            await trio.sleep(0.05)


async def _commands_until_limited(browser: Browser, count: int) -> list[str]:
    for i in range(count):
        await browser.send("pipe_count", "web_rate", f"m{i}", "")
    return [await browser.recv() for _ in range(count)]


async def test_command_rate_over_the_burst_gets_rate_limit_error_frames(limits_server: ServerProcess,
                                                                       dev: int) -> None:
    async with open_browser(limits_server, dev) as browser:
        replies = await _commands_until_limited(browser, COMMAND_BURST + 3)
        assert all('"marker":"m' in r for r in replies[:COMMAND_BURST]), replies
        for frame in replies[COMMAND_BURST:]:
            assert error_of(frame)["error"] == "rate limit"
        await trio.sleep(1.0)  # the bucket refills at 5/s: the session keeps working
        await browser.send("pipe_count", "web_rate", "after", "")
        assert '"marker":"after"' in await browser.recv()


async def test_persistent_abuse_closes_the_session_with_1008(limits_server: ServerProcess, dev: int) -> None:
    """A client that ignores the "rate limit" frames and keeps sending, one command per reply."""
    errors = 0
    async with open_browser(limits_server, dev) as browser:
        with trio.fail_after(10):
            try:
                for i in range(500):
                    await browser.send("pipe_count", "web_rate", f"m{i}", "")
                    if '"rate limit"' in await browser.recv():
                        errors += 1
            except ConnectionClosed as exc:
                assert exc.reason.code == CLOSE_POLICY
            else:
                raise AssertionError("the flooding session was never closed")
    assert errors >= 50  # it was warned first


async def test_web_pipe2_message_over_max_message_size_gets_an_error_frame(limits_server: ServerProcess,
                                                                           dev: int) -> None:
    async with open_browser(limits_server, dev) as sender, open_browser(limits_server, dev) as watcher:
        await watcher.subscribe("web_size")
        await sender.send("web_pipe2", "web_size", "ev", "*", "x" * (MAX_MESSAGE_SIZE + 1))
        data = error_of(await sender.recv())
        assert data["error"] == "Data is too long"
        assert data["max_message_size"] == MAX_MESSAGE_SIZE
        await watcher.silence(0.3)
        await sender.send("web_pipe2", "web_size", "ev", "*", "y" * MAX_MESSAGE_SIZE)
        assert json.loads(await watcher.recv())["data"] == "y" * MAX_MESSAGE_SIZE


def test_insert_message_over_max_message_size_is_err_11(limits_server: ServerProcess, dev: int) -> None:
    conn = limits_server.connect(dev)
    try:
        with conn.cursor() as cur:
            with pytest.raises(pymysql.MySQLError) as caught:
                cur.execute("INSERT INTO pipes_messages (name, event, message) VALUES ('chan_size', 'e', %s)",
                            ("x" * (MAX_MESSAGE_SIZE + 1),))
            assert caught.value.args == (11, "Data is too long")
            with pytest.raises(pymysql.MySQLError) as caught:
                cur.execute("INSERT INTO users_messages (id, event, message) VALUES (1, 'e', %s)",
                            ("x" * (MAX_MESSAGE_SIZE + 1),))
            assert caught.value.args == (11, "Data is too long")
            cur.execute("INSERT INTO pipes_messages (name, event, message) VALUES ('chan_size', 'e', %s)",
                        ("x" * MAX_MESSAGE_SIZE,))
            rows = ["('chan_size', 'e', 'short')"] * 19 + [f"('chan_size', 'e', '{'x' * (MAX_MESSAGE_SIZE + 1)}')"]
            with pytest.raises(pymysql.MySQLError) as caught:  # a long INSERT's rows are read apart from its text
                cur.execute("INSERT INTO pipes_messages (name, event, message) VALUES " + ", ".join(rows))
            assert caught.value.args == (11, "Data is too long")
    finally:
        conn.close()


async def test_subscriptions_over_the_limit_are_refused(limits_server: ServerProcess, dev: int) -> None:
    channels = [f"web_sub{i}" for i in range(MAX_SUBSCRIPTIONS + 1)]
    async with open_browser(limits_server, dev) as browser:
        await browser.send("subscription", *channels)
        data = error_of(await browser.recv())
        assert data["error"] == "Too many letters"
        await browser.send("pipe_count", channels[-2], "kept", "")
        assert '"data":["user_in_pipe",1]' in await browser.recv()
        await browser.send("pipe_count", channels[-1], "dropped", "")
        assert '"data":["user_in_pipe",0]' in await browser.recv()
