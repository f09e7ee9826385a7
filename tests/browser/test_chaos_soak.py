"""Chaos soak: ten pages of our library behind a proxy that keeps breaking the network, channel and personal
messages mixed, and in the end every page has every message exactly once, in order (issue 13's soak).

Eight pages use WebSocket, two long-poll (Chromium allows six HTTP/1.1 connections per host, and a
long-poll page holds one or two). The faults are random but seeded (the seed is in the failure
message): a cut resets every connection; a black-hole silences the network for 0.5–2.5 s, after which
the dead connections are either reset or left for the pings and heartbeats (1 s + 1 s here) to find.
The channel keeps history, so recovery by offset covers what a page missed; personal messages are
acknowledged by the library, so what a dead connection swallowed is sent again.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from ..faultproxy import FaultProxy
from ..servers import ServerProcess
from .helpers import PAGES, Browser, make_query, wait_until

#: CI's size; the long version: COMETQL_SOAK_PAGES=50 COMETQL_SOAK_SECONDS=120 (docs/delivery.md)
PAGES_N = int(os.environ.get("COMETQL_SOAK_PAGES", "10"))
LONGPOLL = 2
SOAK_SECONDS = float(os.environ.get("COMETQL_SOAK_SECONDS", "30"))
CHANNEL = "soak"
#: A bound on how long the pages may take to catch up once the network is healed: a hang guard.
CATCH_UP = 90.0


@pytest.fixture
def soak_server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path, extra_args=("--base-dir", str(PAGES)),
                        env={"COMETQL_PING_INTERVAL": "1", "COMETQL_PING_TIMEOUT": "1"}).start()
    yield srv
    srv.stop()


def _chaos(proxy: FaultProxy, rng: random.Random, stop: threading.Event, log: list[str]) -> None:
    while not stop.wait(rng.uniform(1.0, 3.0)):
        if rng.random() < 0.4:
            log.append("cut")
            proxy.cut()
            continue
        quiet = rng.uniform(0.5, 2.5)
        log.append(f"blackhole {quiet:.1f}s")
        proxy.blackhole()
        stop.wait(quiet)
        proxy.heal()
        if rng.random() < 0.5:
            log.append("reset the dead ones")
            proxy.cut()


def _received(page: Browser, tag: str) -> list[list[int]]:
    """The ``n`` of every message tagged ``tag`` each frame's callbacks got, in arrival order."""
    return page.js(
        "var tag = arguments[0];"
        "return Array.prototype.map.call(document.querySelectorAll('iframe'), function (f) {"
        "  var r = f.contentWindow.results; if (!r) { return []; }"
        "  return r.events.filter(function (e) { return e.tag === tag; })"
        "                 .map(function (e) { return e.data && e.data.n; }); });", tag)


def test_ten_pages_through_random_faults_get_every_message_once_in_order(
        driver: webdriver.Chrome, soak_server: ServerProcess) -> None:
    dev = 7
    conn = soak_server.connect(dev)
    query = make_query(conn)
    for uid in range(1, PAGES_N + 1):
        query(f"INSERT INTO users_auth (id, hash) VALUES ({uid}, 'soak{uid}')")
    query(f"INSERT INTO pipes_settings (name, length) VALUES ('{CHANNEL}', 1000)")
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    with FaultProxy((soak_server.host, soak_server.ws_port)) as proxy:
        page = Browser(driver, f"http://127.0.0.1:{proxy.port}")
        try:
            page.open("soak.html", dev_id=dev, n=PAGES_N, longpoll=LONGPOLL, subs=f"{CHANNEL},msg")
            wait_until(lambda: len(query(f"SELECT user_id FROM users_in_pipes WHERE name = '{CHANNEL}'")) == PAGES_N,
                       timeout=60 + PAGES_N, what="every page subscribed")
            stop = threading.Event()
            faults: list[str] = []
            chaos = threading.Thread(target=_chaos, args=(proxy, rng, stop, faults), daemon=True)
            chaos.start()
            sent_channel = 0
            sent_user = {uid: 0 for uid in range(1, PAGES_N + 1)}
            deadline = time.monotonic() + SOAK_SECONDS
            try:
                while time.monotonic() < deadline:
                    query(f"INSERT INTO pipes_messages (name, event, message) VALUES "
                          f"('{CHANNEL}', 'tick', '{{\"n\":{sent_channel}}}')")
                    sent_channel += 1
                    uid = rng.randint(1, PAGES_N)
                    query(f"INSERT INTO users_messages (id, event, message) VALUES "
                          f"({uid}, 'note', '{{\"n\":{sent_user[uid]}}}')")
                    sent_user[uid] += 1
                    time.sleep(0.05)
            finally:
                stop.set()
                chaos.join(10)
            proxy.heal()
            proxy.cut()  # nothing left black-holed: the pages reconnect now rather than at their next heartbeat
            want_channel = list(range(sent_channel))
            want_user = [list(range(sent_user[uid])) for uid in range(1, PAGES_N + 1)]

            def caught_up() -> bool:
                return _received(page, CHANNEL) == [want_channel] * PAGES_N and _received(page, "msg") == want_user

            try:
                wait_until(caught_up, timeout=CATCH_UP, what="every page has every message")
            except AssertionError:
                got_channel, got_user = _received(page, CHANNEL), _received(page, "msg")
                report = {
                    "seed": seed, "faults": faults, "sent_channel": sent_channel, "sent_user": sent_user,
                    "channel": [{"count": len(g), "missing": sorted(set(want_channel) - set(g))[:20],
                                 "dupes": len(g) - len(set(g)), "in_order": g == sorted(g)} for g in got_channel],
                    "user": [{"count": len(g), "want": len(w), "missing": sorted(set(w) - set(g))[:20],
                              "dupes": len(g) - len(set(g)), "in_order": g == sorted(g)}
                             for g, w in zip(got_user, want_user, strict=True)],
                }
                raise AssertionError(json.dumps(report, indent=1)) from None
            assert sent_channel > 100 and sum(sent_user.values()) > 100, "the soak sent too little to mean much"
            print(f"soak: {PAGES_N} pages, {SOAK_SECONDS:g} s, {len(faults)} faults, {sent_channel} channel and "
                  f"{sum(sent_user.values())} personal messages: every page got each once, in order")
        finally:
            page.reset()
