"""examples/nginx/cometql.conf in Debian's nginx, with headless Chromium on the other side.

nginx terminates TLS (a trustme certificate; this Chromium ignores certificate
errors) and proxies to a CometQL server that trusts nginx's address
(``[ws] trusted_proxies``). The page is loaded through nginx, so it uses
``wss://`` and ``https://`` long-poll on nginx's port, as a production page
would. nginx reaches CometQL from 127.0.0.2 (``proxy_bind``), the browser
reaches nginx from 127.0.0.1: ``users_in_pipes`` must show the browser's.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket
from selenium import webdriver

from cometql.config import Config

from ..nginx_server import EXAMPLE, NginxProcess
from ..servers import PASSWORD, ServerProcess
from .conftest import make_driver
from .helpers import PAGES, TRANSPORT_PARAMS, Browser, Query, wait_online, wait_subscribed, wait_until

PROXY_ADDRESS = "127.0.0.2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """This module's CometQL: serves the test pages, trusts nginx's address (and no other)."""
    srv = ServerProcess(tmp_path_factory.mktemp("cometql-nginx"), extra_args=("--base-dir", str(PAGES)),
                        env={"COMETQL_TRUSTED_PROXIES": PROXY_ADDRESS}).start()

    def ws_port_open() -> bool:
        try:
            socket.create_connection(("127.0.0.1", srv.ws_port), timeout=0.5).close()
            return True
        except OSError:
            return False
    wait_until(ws_port_open, what="the browser port")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def nginx(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxProcess]:
    proc = NginxProcess(tmp_path_factory.mktemp("nginx"), upstream_port=server.ws_port,
                        proxy_bind=PROXY_ADDRESS).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def tls_driver() -> Iterator[webdriver.Chrome]:
    with tempfile.TemporaryDirectory(prefix="cometql-chromium-nginx-") as profile:
        driver = make_driver(profile, ("--ignore-certificate-errors",))
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture
def page(tls_driver: webdriver.Chrome, nginx: NginxProcess) -> Iterator[Browser]:
    b = Browser(tls_driver, f"https://127.0.0.1:{nginx.port}")
    yield b
    b.reset()


def _tls(nginx: NginxProcess) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    nginx.ca.configure_trust(ctx)
    return ctx


def _get(nginx: NginxProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    req = urllib.request.Request(f"https://127.0.0.1:{nginx.port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=_tls(nginx), timeout=10) as resp:
            return resp.status, resp.read(), resp.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("content-type", "")


def test_channel_and_personal_messages_arrive_through_nginx(
        page: Browser, transport: str, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'secret7')")
    page.open(dev_id=dev, user_id=7, user_key="secret7", subs="news.update,msg.notice",
              **TRANSPORT_PARAMS[transport])
    assert page.wait_connected() is True
    assert page.transport == transport
    assert page.js("return location.protocol") == "https:"
    wait_subscribed(query, "news", page.uuid)
    wait_online(query, 7)

    query("INSERT INTO pipes_messages (name, event, message) VALUES ('news', 'update', '{\"n\":1}')")
    query("INSERT INTO users_messages (id, event, message) VALUES (7, 'notice', 'it''s for you')")
    assert [e["data"] for e in page.wait_events("news.update")] == [{"n": 1}]
    assert [e["data"] for e in page.wait_events("msg.notice")] == ["it's for you"]

    # CometQL saw nginx's connection from 127.0.0.2 and believed its X-Forwarded-For: the browser's address
    assert query(f"SELECT ip FROM users_in_pipes WHERE name = 'news' AND user_uuid = '{page.uuid}'") == [
        ("127.0.0.1",)]


def test_a_forged_forwarded_header_does_not_pass_nginx(nginx: NginxProcess, dev: int, query: Query) -> None:
    """nginx appends the address it saw; CometQL reads from the right, so the browser cannot pick its address."""
    req = urllib.request.Request(
        f"https://127.0.0.1:{nginx.port}/lp/connect", method="POST",
        data=f"sesion=&myid=0&devid={dev}&v=4.08&uuid=&api=js".encode(),
        headers={"X-Forwarded-For": "198.51.100.66", "X-Real-IP": "198.51.100.66", "Content-Type": "text/plain"})
    with urllib.request.urlopen(req, context=_tls(nginx), timeout=10) as resp:
        sid = json.loads(resp.read())["sid"]
    send = urllib.request.Request(f"https://127.0.0.1:{nginx.port}/lp/send?sid={sid}", method="POST",
                                  data=b"subscription\nweb_forged", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(send, context=_tls(nginx), timeout=10) as resp:
        assert resp.status == 204
    wait_until(lambda: query("SELECT ip FROM users_in_pipes WHERE name = 'web_forged'"), what="the subscription")
    assert query("SELECT ip FROM users_in_pipes WHERE name = 'web_forged'") == [("127.0.0.1",)]


def test_library_admin_and_metrics_through_nginx(nginx: NginxProcess) -> None:
    status, body, ctype = _get(nginx, "/cometql.js")
    assert (status, ctype) == (200, "application/javascript; charset=utf-8")
    assert b"CometServer" in body
    assert _get(nginx, "/info")[0] == 200
    assert _get(nginx, "/admin")[0] == 401
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
    status, body, _ = _get(nginx, "/admin", auth)
    assert status == 200 and b"<html" in body.lower()
    assert _get(nginx, "/metrics")[0] == 200  # allowed from 127.0.0.1 only

    # the dashboard's live feed is a WebSocket under /admin
    token = json.loads(_get(nginx, "/admin/token", auth)[1])["token"]
    ws = websocket.create_connection(f"wss://127.0.0.1:{nginx.port}/admin/live?token={token}", timeout=10,
                                     sslopt={"context": _tls(nginx)})
    try:
        assert "online" in json.loads(ws.recv())
    finally:
        ws.close()


def _timeouts(text: str) -> dict[str, int]:
    """proxy_read_timeout (seconds) of each ``location`` of the example."""
    found = {}
    for m in re.finditer(r"location\s+([^{]+?)\s*\{([^}]*)\}", text):
        read = re.search(r"proxy_read_timeout\s+(\d+)s;", m.group(2))
        found[m.group(1)] = int(read.group(1)) if read else 60  # nginx's default
    return found


def test_read_timeouts_outlast_the_servers_pings_and_long_poll_hold() -> None:
    timeouts = _timeouts(Path(EXAMPLE).read_text())
    ws = next(v for k, v in timeouts.items() if "ws/" in k)
    lp = next(v for k, v in timeouts.items() if "lp/" in k)
    defaults = Config()
    # the server's WebSocket ping interval (``[ws] ping_interval``, 25 s where the setting exists)
    ping = float(getattr(defaults, "ping_interval", 25.0))
    assert ws >= 2 * ping, "an idle WebSocket must outlive a late pong"
    assert lp >= defaults.longpoll_timeout + 10, "a held long-poll must be answered before nginx gives up"
    assert all(v >= 60 for v in timeouts.values())
