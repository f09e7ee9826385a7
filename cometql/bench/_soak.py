"""The chaos soak (issue 13): pages of our library behind a proxy that keeps breaking the network.

Channel and personal messages are mixed, and in the end every page must have
every message exactly once, in order. One copy serves both sizes: the test
suite's (tests/browser/test_chaos_soak.py, 10 pages for 30 s) and
``cometql bench soak`` (50 pages for as long as asked), which also reports the
faults injected and the delivery latency (page arrival minus the time the
INSERT was sent: one wall clock, the machine's), faults included.

Each page is an iframe of ``soak.html`` loading ``client.html`` (both in
``PAGES``, shipped with the package and served by the server under test with
``--base-dir``). The first ``LONGPOLL`` pages use long-poll (Chromium allows six
HTTP/1.1 connections per host, and a long-poll page holds one or two), the
others WebSocket. The faults are random but seeded: a cut resets every
connection; a black-hole silences the network for 0.5–2.5 s, after which the
dead connections are either reset or left for the pings and heartbeats (1 s +
1 s: ``SERVER_ARGS``) to find. The channel keeps history, so recovery by offset
covers what a page missed; personal messages are acknowledged by the library,
so what a dead connection swallowed is sent again.

Selenium is imported only by ``chromium`` (it is a test dependency, needed
only when a soak runs).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ._faultproxy import FaultProxy
from ._results import Result, Target

__all__ = ["CHANNEL", "LONGPOLL", "PAGES", "SERVER_ARGS", "SoakOutcome", "chromium", "prepare", "run_soak", "soak"]

#: The pages the soak (and the browser tests) load, served with ``--base-dir``.
PAGES = Path(__file__).parent / "pages"
CHANNEL = "soak"
LONGPOLL = 2
#: The soak's server: short pings and heartbeats, so a black-holed connection is found within ~2 s.
SERVER_ARGS = ("--ping-interval", "1", "--ping-timeout", "1")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--window-size=1280,800",
)

Query = Callable[[str], Sequence[Sequence[Any]]]

#: Per frame: [[n, t_sent, t_arrived], ...] of the events tagged arguments[0].
_RECEIVED_JS = (
    "var tag = arguments[0];"
    "return Array.prototype.map.call(document.querySelectorAll('iframe'), function (f) {"
    "  var r = f.contentWindow.results; if (!r) { return []; }"
    "  return r.events.filter(function (e) { return e.tag === tag; })"
    "                 .map(function (e) { return [e.data && e.data.n, e.data && e.data.t, e.at]; }); });")
#: Per frame: how many events tagged arguments[0] and arguments[1] it has (cheap to poll).
_COUNTS_JS = (
    "var a = arguments[0], b = arguments[1];"
    "return Array.prototype.map.call(document.querySelectorAll('iframe'), function (f) {"
    "  var r = f.contentWindow.results; if (!r) { return [0, 0]; }"
    "  var x = 0, y = 0; r.events.forEach(function (e) { if (e.tag === a) { x++; } else if (e.tag === b) { y++; } });"
    "  return [x, y]; });")


def chromium(profile: str, extra_flags: tuple[str, ...] = ()) -> Any:
    """A headless Debian Chromium under chromedriver (paths given, so Selenium Manager never goes online)."""
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, *extra_flags):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(10)
    driver.set_page_load_timeout(10)
    return driver


@contextmanager
def chromium_session() -> Iterator[Any]:
    """``chromium`` with a throw-away profile, quit at the end."""
    with tempfile.TemporaryDirectory(prefix="cometql-chromium-") as profile:
        driver = chromium(profile)
        try:
            yield driver
        finally:
            driver.quit()


def prepare(query: Query, pages: int) -> None:
    """Users 1..pages with key ``soak<id>``, and the channel's history (recovery by offset needs it)."""
    for uid in range(1, pages + 1):
        query(f"INSERT INTO users_auth (id, hash) VALUES ({uid}, 'soak{uid}')")
    query(f"INSERT INTO pipes_settings (name, length) VALUES ('{CHANNEL}', 1000)")


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


@dataclass
class SoakOutcome:
    """What was sent, what each page got (``n`` in arrival order) and when."""

    pages: int
    seconds: float
    seed: int
    faults: list[str] = field(default_factory=list)
    sent_channel: int = 0
    sent_user: dict[int, int] = field(default_factory=dict)
    channel: list[list[int]] = field(default_factory=list)
    user: list[list[int]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    catch_up_s: float | None = None  # from the network healed to every page complete (None: never)

    def page_results(self) -> list[dict[str, Any]]:
        """Per page: exactly once and in order, for the channel and for its user's messages."""
        rows = []
        want_channel = list(range(self.sent_channel))
        for uid, (got_c, got_u) in enumerate(zip(self.channel, self.user, strict=True), 1):
            want_u = list(range(self.sent_user.get(uid, 0)))
            rows.append({
                "page": uid, "exact": got_c == want_channel and got_u == want_u,
                "channel": _check(got_c, want_channel), "user": _check(got_u, want_u),
            })
        return rows

    @property
    def ok(self) -> bool:
        return len(self.channel) == self.pages and all(row["exact"] for row in self.page_results())

    def report(self) -> str:
        """The failure report: seed, faults, and what each page is short of."""
        return json.dumps({"seed": self.seed, "faults": self.faults, "sent_channel": self.sent_channel,
                           "sent_user": self.sent_user, "pages": self.page_results()}, indent=1)


def _check(got: list[int], want: list[int]) -> dict[str, Any]:
    return {"count": len(got), "want": len(want), "missing": sorted(set(want) - set(got))[:20],
            "dupes": len(got) - len(set(got)), "in_order": got == sorted(got)}


def run_soak(driver: Any, base_url: str, proxy: FaultProxy, query: Query, dev_id: int, pages: int,
             seconds: float, catch_up: float = 90.0, seed: int | None = None,
             progress: Callable[[str], None] = lambda _: None) -> SoakOutcome:
    """Open ``pages`` pages through ``proxy`` (``base_url`` is the proxy's), publish for ``seconds``
    under random faults, heal, and wait up to ``catch_up`` s for every page to have everything.
    ``prepare`` must have run. The page is left (about:blank) at the end."""
    seed = random.randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    outcome = SoakOutcome(pages, seconds, seed, sent_user={uid: 0 for uid in range(1, pages + 1)})
    params = urlencode({"dev_id": dev_id, "n": pages, "longpoll": min(LONGPOLL, pages), "subs": f"{CHANNEL},msg"})
    driver.get(f"{base_url}/soak.html?{params}")
    try:
        _wait(lambda: driver.execute_script("return window.results && window.results.ready"), 10, "page ready")
        _wait(lambda: len(query(f"SELECT user_id FROM users_in_pipes WHERE name = '{CHANNEL}'")) == pages,
              60 + pages, "every page subscribed")
        progress(f"{pages} pages subscribed; faults for {seconds:g} s")
        stop = threading.Event()
        chaos = threading.Thread(target=_chaos, args=(proxy, rng, stop, outcome.faults), daemon=True)
        chaos.start()
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                query(f"INSERT INTO pipes_messages (name, event, message) VALUES "
                      f"('{CHANNEL}', 'tick', '{{\"n\":{outcome.sent_channel},\"t\":{time.time() * 1000:.3f}}}')")
                outcome.sent_channel += 1
                uid = rng.randint(1, pages)
                query(f"INSERT INTO users_messages (id, event, message) VALUES "
                      f"({uid}, 'note', '{{\"n\":{outcome.sent_user[uid]},\"t\":{time.time() * 1000:.3f}}}')")
                outcome.sent_user[uid] += 1
                time.sleep(0.05)
        finally:
            stop.set()
            chaos.join(10)
        proxy.heal()
        proxy.cut()  # nothing left black-holed: the pages reconnect now rather than at their next heartbeat
        healed = time.monotonic()
        progress(f"healed; waiting up to {catch_up:g} s for every page to catch up")
        want = [[outcome.sent_channel, outcome.sent_user[uid]] for uid in range(1, pages + 1)]
        while time.monotonic() - healed < catch_up:
            if driver.execute_script(_COUNTS_JS, CHANNEL, "msg") == want:
                outcome.catch_up_s = time.monotonic() - healed
                break
            time.sleep(0.25)
        time.sleep(0.5)  # a duplicate arriving late still counts
        for tag, into in ((CHANNEL, outcome.channel), ("msg", outcome.user)):
            for frame in driver.execute_script(_RECEIVED_JS, tag):
                into.append([row[0] for row in frame])
                outcome.latencies_ms.extend(row[2] - row[1] for row in frame if row[1] is not None)
    finally:
        driver.get("about:blank")
    return outcome


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def soak(reporter: Any, pages: int = 50, seconds: float = 60.0, dev_id: int = 77, catch_up: float = 120.0) -> Result:
    """``bench soak``: its own server and Chromium; the soak at ``pages`` × ``seconds``, and its figures."""
    from ._context import percentile
    from ._server import start_server

    result = Result("soak", f"soak {pages} pages × {seconds:g} s", {"pages": pages, "seconds": seconds})
    server = start_server(extra_args=("--base-dir", str(PAGES), *SERVER_ARGS))
    try:
        admin = server.mysql(dev_id)
        prepare(admin.query, pages)
        with FaultProxy((server.host, server.ws_port)) as proxy, chromium_session() as driver, \
                reporter.phase(f"soak: {pages} pages", total=None):
            outcome = run_soak(driver, f"http://127.0.0.1:{proxy.port}", proxy, admin.query, dev_id, pages,
                               seconds, catch_up=catch_up, progress=reporter.log)
        admin.close()
    finally:
        server.stop()
    rows = outcome.page_results()
    ordered = sorted(outcome.latencies_ms)
    kinds = {"cut": 0, "blackhole": 0, "reset the dead ones": 0}
    for fault in outcome.faults:
        kinds[fault.split(" ")[0] if fault.startswith("blackhole") else fault] += 1
    result.add("faults injected", len(outcome.faults), "")
    result.add("channel messages sent", outcome.sent_channel, "")
    result.add("personal messages sent", sum(outcome.sent_user.values()), "")
    result.add("pages exactly once, in order", sum(row["exact"] for row in rows), "", Target(">=", pages))
    result.add("delivery p50", percentile(ordered, 0.5) if ordered else None, "ms")
    result.add("delivery p99", percentile(ordered, 0.99) if ordered else None, "ms")
    result.add("caught up after healing", outcome.catch_up_s, "s")
    result.details.update({"seed": outcome.seed, "faults": kinds, "pages": rows if not outcome.ok else [],
                           "deliveries": len(ordered)})
    if not outcome.ok:
        result.notes.append("not every page got every message once in order:\n" + outcome.report()[:4000])
    return result
