"""Each abuse limit, when hit over the wire, moves ``cometql_limit_hits_total{limit=...}`` on /metrics.

Uses ``limits_server`` (tight limits, see conftest.py); every test compares the
counter before and after, so the other limit tests on that server do not matter.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack

import pymysql
import pytest
import trio
from pymysql.constants import CLIENT

from ..metrics_helpers import Samples, metric_families, sample, scrape
from ..servers import ServerProcess
from ..web._wire import open_browser
from .conftest import (
    COMMAND_BURST,
    MAX_IN_VALUES,
    MAX_INSERT_ROWS,
    MAX_MESSAGE_SIZE,
    MAX_SESSIONS_PER_IP,
    MAX_STATEMENTS,
    MAX_SUBSCRIPTIONS,
)

LIMITS = ("sessions_per_ip", "command_rate", "message_size", "subscriptions", "login_attempts", "statement_bounds")


def hits(samples: Samples, limit: str) -> float:
    return sample(samples, "cometql_limit_hits_total", limit=limit)


def test_every_limit_has_a_counter_from_the_first_scrape(limits_server: ServerProcess) -> None:
    family = metric_families(limits_server)["cometql_limit_hits"]
    assert family.type == "counter"
    assert {s.labels["limit"] for s in family.samples if s.name == "cometql_limit_hits_total"} == set(LIMITS)


async def test_refused_session_counts_as_sessions_per_ip(limits_server: ServerProcess, dev: int) -> None:
    before = scrape(limits_server)
    refused = 0
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            for _ in range(MAX_SESSIONS_PER_IP + 1):  # sessions a previous test left may still be closing
                browser = await stack.enter_async_context(open_browser(limits_server, dev))
                if json.loads(browser.hello)["event"] == "error":
                    refused += 1
                    break
    assert refused == 1
    after = scrape(limits_server)
    assert hits(after, "sessions_per_ip") == hits(before, "sessions_per_ip") + 1
    for other in ("command_rate", "message_size", "subscriptions"):
        assert hits(after, other) == hits(before, other), other


async def test_rate_limited_commands_count_as_command_rate(limits_server: ServerProcess, dev: int) -> None:
    async with open_browser(limits_server, dev) as browser:
        before = scrape(limits_server)
        count = COMMAND_BURST + 3
        for i in range(count):
            await browser.send("pipe_count", "web_rate_metrics", f"m{i}", "")
        replies = await browser.recv_many(count)
        limited = sum('"rate limit"' in r for r in replies)
        assert limited >= 1, replies
        assert hits(scrape(limits_server), "command_rate") == hits(before, "command_rate") + limited


async def test_oversized_messages_count_as_message_size(limits_server: ServerProcess, dev: int) -> None:
    before = scrape(limits_server)
    async with open_browser(limits_server, dev) as browser:
        await browser.send("web_pipe2", "web_size_metrics", "ev", "*", "x" * (MAX_MESSAGE_SIZE + 1))
        assert '"Data is too long"' in await browser.recv()
    assert hits(scrape(limits_server), "message_size") == hits(before, "message_size") + 1
    conn = limits_server.connect(dev)
    try:
        with conn.cursor() as cur, pytest.raises(pymysql.MySQLError) as caught:
            cur.execute("INSERT INTO pipes_messages (name, event, message) VALUES ('size_metrics', 'e', %s)",
                        ("x" * (MAX_MESSAGE_SIZE + 1),))
        assert caught.value.args == (11, "Data is too long")
    finally:
        conn.close()
    assert hits(scrape(limits_server), "message_size") == hits(before, "message_size") + 2


def test_statements_over_a_bound_count_as_statement_bounds(limits_server: ServerProcess, dev: int) -> None:
    """The bounds come from the settings (``limits_server``'s), answer their codes and are counted."""
    before = scrape(limits_server)
    rows = ", ".join(f"({i}, 'x')" for i in range(1, MAX_INSERT_ROWS + 1))
    ids = ", ".join(str(i) for i in range(MAX_IN_VALUES))
    conn = limits_server.connect(dev, client_flag=CLIENT.MULTI_STATEMENTS)
    try:
        with conn.cursor() as cur:
            for sql, code, bound in (
                (";".join(["SELECT 1"] * (MAX_STATEMENTS + 1)), 22, MAX_STATEMENTS),
                (f"INSERT INTO users_data (id, data) VALUES {rows}, (99, 'x')", 19, MAX_INSERT_ROWS),
                (f"SELECT * FROM users_time WHERE id IN ({ids}, 99)", 19, MAX_IN_VALUES),
            ):
                with pytest.raises(pymysql.MySQLError) as caught:
                    cur.execute(sql)
                assert caught.value.args[0] == code and f"at most {bound}" in caught.value.args[1]
            cur.execute(";".join(["SELECT 1"] * MAX_STATEMENTS))  # at the bounds: accepted
            assert cur.execute(f"INSERT INTO users_data (id, data) VALUES {rows}") == MAX_INSERT_ROWS
            cur.execute(f"SELECT id FROM users_data WHERE id IN ({ids})")
            assert len(cur.fetchall()) == MAX_INSERT_ROWS - 1
    finally:
        conn.close()
    after = scrape(limits_server)
    assert hits(after, "statement_bounds") == hits(before, "statement_bounds") + 3


async def test_refused_subscriptions_count_as_subscriptions(limits_server: ServerProcess, dev: int) -> None:
    async with open_browser(limits_server, dev) as browser:
        before = scrape(limits_server)
        await browser.subscribe(*[f"web_fits{i}" for i in range(MAX_SUBSCRIPTIONS)])  # at the limit: no hit
        assert hits(scrape(limits_server), "subscriptions") == hits(before, "subscriptions")
        await browser.send("subscription", *[f"web_over{i}" for i in range(MAX_SUBSCRIPTIONS + 1)])
        assert '"Too many letters"' in await browser.recv()
        assert hits(scrape(limits_server), "subscriptions") == hits(before, "subscriptions") + 1
