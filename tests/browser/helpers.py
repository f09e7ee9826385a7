"""Helpers of the browser tests: drive a test page, wait for what it records, wait on the server.

Pages (cometql/bench/pages/, shipped for ``cometql bench soak``) load the library with
``<script src="/cometql.js">``
and record every callback they get into ``window.results.events`` as
``{tag, data, server_info}``; the tests read them back. Every wait is bounded
(10 s by default) and a timeout fails with the page's results and console log,
so a failure says what the page did see.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pymysql
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

from cometql.bench._soak import PAGES

from ..cluster.conftest import start_node
from ..servers import ServerProcess

__all__ = ["PAGES", "TIMEOUT", "TRANSPORT_PARAMS", "Browser", "Query", "make_query", "wait_online",
           "wait_subscribed", "wait_until"]

TIMEOUT = 10.0
#: ``PAGES`` (cometql/bench/pages/) is served by the server under test (--base-dir).


Query = Callable[[str], list[tuple[str, ...]]]  # the ``query`` fixture: SQL -> rows of strings

# Page parameters per transport: "longpoll" deletes window.WebSocket before the library loads,
# so the library must fall back to long-poll by itself.
TRANSPORT_PARAMS: dict[str, dict[str, str]] = {"websocket": {}, "longpoll": {"nows": "1"}}


def wait_until(predicate: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last value {value!r})")
        time.sleep(0.03)


def make_query(conn: pymysql.Connection) -> Query:
    """A ``query`` function (like the fixture) on a given PyMySQL connection."""
    cursor = conn.cursor()

    def run(sql: str) -> list[tuple[str, ...]]:
        cursor.execute(sql)
        return [tuple(r) for r in cursor.fetchall()]

    return run


def wait_subscribed(query: Query, channel: str, *uuids: str) -> None:
    """Until the server lists a connection of each given browser uuid as subscribed to ``channel``."""
    def subscribed() -> bool:
        rows = query(f"SELECT user_uuid FROM users_in_pipes WHERE name = '{channel}'")
        present = [r[0] for r in rows]
        return all(present.count(u) >= uuids.count(u) for u in uuids)
    wait_until(subscribed, what=f"{uuids} subscribed to {channel}")


def wait_online(query: Query, user_id: int) -> None:
    """Until ``users_time`` says the user is online (0): the connection is linked, messages go live."""
    wait_until(lambda: query(f"SELECT * FROM users_time WHERE id = {user_id}") == [(str(user_id), "0")],
               what=f"user {user_id} online")


class Browser:
    """One Chromium (a Selenium driver) showing one test page of the CometQL server."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url
        self._init_scripts: list[str] = []
        self._network_changed = False

    # ---- page control

    def open(self, page: str = "client.html", **params: object) -> Browser:
        """Load a test page with query parameters (dev_id, user_id, user_key, transport, subs, nows...)."""
        query = urlencode({k: str(v) for k, v in params.items() if v is not None})
        self.driver.get(f"{self.base_url}/{page}" + (f"?{query}" if query else ""))
        self.wait_for("window.results && window.results.ready", what="page ready")
        return self

    def js(self, script: str, *args: object) -> Any:
        return self.driver.execute_script(script, *args)

    def wait_for(self, expression: str, timeout: float = TIMEOUT, what: str | None = None) -> Any:
        """Wait until the JS ``expression`` is truthy and return its value."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.03).until(
                lambda d: d.execute_script(f"return ({expression});"))
        except TimeoutException:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what or expression}\n"
                f"results: {json.dumps(self.results(), default=str)[:4000]}\n"
                f"console: {self.console()}") from None

    def results(self) -> Any:
        try:
            return self.js("return window.results || null")
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            return f"<unavailable: {exc}>"

    def console(self) -> list[str]:
        try:
            return [e["message"] for e in self.driver.get_log("browser")]
        except Exception:  # noqa: BLE001 - diagnostics only
            return []

    # ---- what the page recorded

    def subscribe(self, name: str, tag: str | None = None) -> None:
        """``cometApi.subscription(name, record(tag))`` in the page."""
        self.js("cometApi.subscription(arguments[0], record(arguments[1]))", name, tag or name)

    def events(self, tag: str) -> list[dict[str, Any]]:
        return self.js(
            "var tag = arguments[0]; return results.events.filter(function (e) { return e.tag === tag; });", tag)

    def wait_events(self, tag: str, count: int = 1, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Wait until callbacks tagged ``tag`` ran at least ``count`` times; return those events."""
        self.wait_for(
            f"results.events.filter(function (e) {{ return e.tag === {json.dumps(tag)}; }}).length >= {count}",
            timeout, what=f"{count} event(s) tagged {tag!r}")
        return self.events(tag)

    def wait_connected(self) -> Any:
        """Until the server's serverInfo frame arrived; returns isAuthorized()."""
        self.wait_for("cometApi.isAuthorized() !== undefined", what="serverInfo (connected)")
        return self.js("return cometApi.isAuthorized()")

    @property
    def uuid(self) -> str:
        return str(self.js("return cometApi.getUUID()"))

    @property
    def transport(self) -> str | None:
        return self.js("return cometApi.getTransport()")

    # ---- browser conditions (Chrome DevTools Protocol)

    def before_load(self, source: str) -> None:
        """Run ``source`` in every page before its scripts (e.g. ``delete window.WebSocket``)."""
        ident = self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})
        self._init_scripts.append(ident["identifier"])

    def set_offline(self, offline: bool) -> None:
        """Emulate the network going away (navigator.onLine false, "offline" event) or coming back."""
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        self._network_changed = True

    def reset(self) -> None:
        """Leave the page (closing its connection) and undo every emulation, for the next test."""
        for ident in self._init_scripts:
            self.driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": ident})
        self._init_scripts.clear()
        if self._network_changed:
            self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
                "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
            self._network_changed = False
        self.driver.get("about:blank")


#: The ``params`` of a fixture made with ``page_and_backend``.
STORES = ["sqlite", "cluster"]


@contextmanager
def page_and_backend(request: Any, make_dir: Callable[[str], Path], *args: str,
                     env: dict[str, str] | None = None) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """(the node the page connects to, the node the backend sends to), by the fixture's param: one
    SQLite server for both, or two nodes on Redis, so that every message crosses the cluster's bus."""
    if request.param == "sqlite":
        started = [ServerProcess(make_dir("server"), extra_args=args, env=env or {}).start()]
    else:
        redis = request.getfixturevalue("redis")
        started = [start_node(redis, make_dir(f"node{i}"), *args, env=env) for i in range(2)]
    try:
        yield started[0], started[-1]
    finally:
        for srv in started:
            if srv.alive:
                srv.stop()
