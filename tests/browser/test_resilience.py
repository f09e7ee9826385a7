"""Transport choice and recovery: long-poll fallback, reconnect, resubscription, history catch-up."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from selenium import webdriver

from ..servers import ServerProcess
from .helpers import PAGES, TRANSPORT_PARAMS, Browser, Query, make_query, wait_subscribed
from .proxy import NoWebSocketProxy


def publish(query: Query, channel: str, n: int) -> None:
    query(f"INSERT INTO pipes_messages (name, event, message) VALUES ('{channel}', 'tick', '{{\"n\":{n}}}')")


def test_falls_back_to_longpoll_when_websocket_cannot_open(driver: webdriver.Chrome, server: ServerProcess,
                                                           dev: int, query: Query) -> None:
    with NoWebSocketProxy((server.host, server.ws_port)) as proxy:
        page = Browser(driver, proxy.base_url)
        try:
            page.open(dev_id=dev, subs="fallback")
            assert page.js("return typeof WebSocket") == "function"
            page.wait_for("cometApi.getTransport() === 'longpoll'", what="the switch to long-poll")
            assert proxy.refused_upgrades == 2  # two failed WebSocket opens, then long-poll
            wait_subscribed(query, "fallback", page.uuid)
            publish(query, "fallback", 1)
            assert page.wait_events("fallback")[0]["data"] == {"n": 1}
        finally:
            page.reset()


def test_longpoll_on_request(browser: Browser, dev: int, query: Query) -> None:
    page = browser.open(dev_id=dev, subs="asked", transport="longpoll")
    assert page.js("return typeof WebSocket") == "function"
    page.wait_for("cometApi.getTransport() === 'longpoll'", what="a long-poll connection")
    wait_subscribed(query, "asked", page.uuid)
    publish(query, "asked", 1)
    assert page.wait_events("asked")[0]["data"] == {"n": 1}


def test_reconnect_resubscribes_and_recovers_missed_messages(browser: Browser, transport: str, dev: int,
                                                             query: Query) -> None:
    query("INSERT INTO pipes_settings (name, length) VALUES ('ticker', 10)")
    publish(query, "ticker", 0)  # before the page subscribed: never delivered
    page = browser.open(dev_id=dev, subs="ticker", **TRANSPORT_PARAMS[transport])
    wait_subscribed(query, "ticker", page.uuid)
    publish(query, "ticker", 1)
    page.wait_events("ticker", 1)

    browser.set_offline(True)
    page.wait_for("!cometApi.isConnected()", what="the page to notice it is offline")
    publish(query, "ticker", 2)  # missed while offline
    browser.set_offline(False)

    # WebSocket: a new session catches up from the channel's history. Long-poll: the page resumes
    # the same session (docs/delivery.md, "Long-poll"), which kept the frame: it arrives live.
    resumed = transport == "longpoll"
    recovered = page.wait_events("ticker", 2)
    assert recovered[1]["data"] == {"n": 2}
    assert recovered[1]["server_info"]["history"] is not resumed
    page.wait_for("cometApi.isConnected()", what="connected again")  # a resumed poll may still be retrying
    assert page.transport == transport
    wait_subscribed(query, "ticker", page.uuid)  # the subscription list was resent
    publish(query, "ticker", 3)

    events = page.wait_events("ticker", 3)
    assert [e["data"] for e in events] == [{"n": 1}, {"n": 2}, {"n": 3}]  # n=0 and n=1 not replayed
    assert [e["server_info"]["history"] for e in events] == [False, not resumed, False]


def test_reconnects_after_server_restart(driver: webdriver.Chrome, tmp_path: Path, dev: int) -> None:
    """A server restart is not a reason to leave WebSocket: the page comes back on it and resubscribes."""
    first = ServerProcess(tmp_path, extra_args=("--base-dir", str(PAGES))).start()
    page = Browser(driver, f"http://{first.host}:{first.ws_port}")
    second: ServerProcess | None = None
    try:
        page.open(dev_id=dev, subs="restart")
        page.wait_for("cometApi.getTransport() === 'websocket'", what="a WebSocket connection")
        first.stop()
        page.wait_for("!cometApi.isConnected()", what="the page to notice the server went away")
        second = dataclasses.replace(first, proc=None, output="").start()  # same ports, same data
        page.wait_for("cometApi.getTransport() === 'websocket'", timeout=15, what="the reconnect")
        with second.connect(dev) as conn:
            query = make_query(conn)
            wait_subscribed(query, "restart", page.uuid)
            query("INSERT INTO pipes_messages (name, event, message) VALUES ('restart', 'ev', 'back')")
        assert page.wait_events("restart")[0]["data"] == "back"
    finally:
        page.reset()
        for srv in (first, second):
            if srv is not None and srv.alive:
                srv.stop()
