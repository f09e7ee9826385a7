"""Fixtures for the browser tests: real headless Chromium driving real pages.

One `cometql serve --base-dir cometql/bench/pages` subprocess serves the test
pages, the library (/cometql.js) and the WebSocket / long-poll endpoints on one
origin. It overrides the session ``server`` fixture, so the ``dev`` / ``db`` /
``query`` fixtures of tests/conftest.py talk to it. Chromium is Debian's
(/usr/bin/chromium + /usr/bin/chromedriver, given explicitly so Selenium
Manager never goes to the network); one browser for the session, a second one
only for tests that need two independent clients (its own profile, so its own
localStorage uuid).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("SE_OFFLINE", "true")

from selenium import webdriver  # noqa: E402

from cometql.bench._soak import chromium, chromium_session  # noqa: E402

from ..servers import ServerProcess  # noqa: E402
from .helpers import PAGES, Browser  # noqa: E402


def make_driver(profile: str, extra_flags: tuple[str, ...] = ()) -> webdriver.Chrome:
    """Debian's headless Chromium (``cometql bench soak`` drives the same one)."""
    return chromium(profile, extra_flags)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The CometQL server of the browser tests, also serving the test pages (cometql/bench/pages)."""
    srv = ServerProcess(tmp_path_factory.mktemp("cometql-browser"), extra_args=("--base-dir", str(PAGES))).start()
    yield srv
    if srv.alive:
        srv.stop()


def _driver_fixture() -> Iterator[webdriver.Chrome]:
    with chromium_session() as driver:
        yield driver


@pytest.fixture(scope="session")
def driver() -> Iterator[webdriver.Chrome]:
    yield from _driver_fixture()


@pytest.fixture(scope="session")
def driver2() -> Iterator[webdriver.Chrome]:
    """A second, independent browser (own profile: own uuid, own connection)."""
    yield from _driver_fixture()


@pytest.fixture
def base_url(server: ServerProcess) -> str:
    return f"http://{server.host}:{server.ws_port}"


@pytest.fixture(params=["websocket", "longpoll"])
def transport(request: pytest.FixtureRequest) -> str:
    """The core tests run twice: over WebSocket, and with WebSocket deleted from the page (long-poll)."""
    return str(request.param)


@pytest.fixture
def browser(driver: webdriver.Chrome, base_url: str) -> Iterator[Browser]:
    b = Browser(driver, base_url)
    yield b
    b.reset()


@pytest.fixture
def browser2(driver2: webdriver.Chrome, base_url: str) -> Iterator[Browser]:
    b = Browser(driver2, base_url)
    yield b
    b.reset()
