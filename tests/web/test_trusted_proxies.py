"""``[ws] trusted_proxies``: the browser's address comes from X-Forwarded-For / X-Real-IP only via a trusted peer.

The rules are checked on the pure function; then end to end on a server that
trusts 127.0.0.2 (a "proxy": the test binds its client sockets there) and not
127.0.0.1 (a browser forging the headers): ``users_in_pipes.ip`` and the
sessions-per-IP limit see the forwarded address from the proxy only.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest
import websocket

from cometql.config import load_config, trusted_networks
from cometql.errors import ConfigError
from cometql.web._forwarded import client_address

from ..servers import ServerProcess
from .conftest import wait_for_port

PROXY = "127.0.0.2"  # trusted by the server below
BROWSER = "127.0.0.1"  # not trusted
TRUSTED = trusted_networks("127.0.0.2, 10.0.0.0/8 ::1")


def _headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()]


@pytest.mark.parametrize(("peer", "headers", "expected"), [
    pytest.param("203.0.113.5", _headers(X_Forwarded_For="198.51.100.1"), "203.0.113.5", id="untrusted-peer-forges"),
    pytest.param("203.0.113.5", _headers(X_Real_IP="198.51.100.1"), "203.0.113.5", id="untrusted-peer-real-ip"),
    pytest.param("127.0.0.2", [], "127.0.0.2", id="trusted-peer-no-header"),
    pytest.param("127.0.0.2", _headers(X_Forwarded_For="198.51.100.1"), "198.51.100.1", id="trusted-peer-xff"),
    pytest.param("127.0.0.2", _headers(X_Real_IP="198.51.100.1"), "198.51.100.1", id="trusted-peer-real-ip"),
    pytest.param("127.0.0.2", _headers(X_Forwarded_For="198.51.100.1", X_Real_IP="192.0.2.9"), "198.51.100.1",
                 id="xff-wins-over-real-ip"),
    # nginx appends the address it saw: what the client wrote on the left is not believed
    pytest.param("127.0.0.2", _headers(X_Forwarded_For="6.6.6.6, 198.51.100.1"), "198.51.100.1",
                 id="forged-left-part-ignored"),
    # a chain of trusted proxies is walked from the right
    pytest.param("127.0.0.2", _headers(X_Forwarded_For="198.51.100.1, 10.1.2.3"), "198.51.100.1", id="chain"),
    pytest.param("127.0.0.2", [(b"X-Forwarded-For", b"198.51.100.1"), (b"x-forwarded-for", b"10.1.2.3")],
                 "198.51.100.1", id="two-headers-joined"),
    pytest.param("127.0.0.2", _headers(X_Forwarded_For="10.1.2.3, 10.9.9.9"), "10.1.2.3", id="all-trusted"),
    pytest.param("127.0.0.2", _headers(X_Forwarded_For="garbage"), "127.0.0.2", id="garbage"),
    pytest.param("127.0.0.2", _headers(X_Forwarded_For="198.51.100.1, junk, 10.1.2.3"), "10.1.2.3",
                 id="garbage-in-chain"),
    pytest.param("127.0.0.2", _headers(X_Forwarded_For="198.51.100.1:5000"), "198.51.100.1", id="ipv4-port"),
    pytest.param("::1", _headers(X_Forwarded_For="[2001:db8::1]:443"), "2001:db8::1", id="ipv6"),
    pytest.param("::ffff:127.0.0.2", _headers(X_Real_IP="198.51.100.1"), "198.51.100.1", id="v4-mapped-peer"),
    pytest.param("", _headers(X_Real_IP="198.51.100.1"), "", id="unix-socket-peer"),
])
def test_client_address(peer: str, headers: list[tuple[bytes, bytes]], expected: str) -> None:
    assert client_address(peer, headers, TRUSTED) == expected


def test_no_trusted_proxies_means_every_header_is_ignored() -> None:
    assert client_address("127.0.0.1", _headers(X_Forwarded_For="198.51.100.1"), ()) == "127.0.0.1"


def test_a_bad_trusted_proxies_entry_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError, match="trusted_proxies: 'nginx.local' is not an IP address"):
        load_config(env={"COMETQL_TRUSTED_PROXIES": "127.0.0.1, nginx.local"})
    assert load_config(env={"COMETQL_TRUSTED_PROXIES": "127.0.0.1 ::1, 10.0.0.0/8"}).trusted_proxies


# ------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("cometql-proxied"), env={
        "COMETQL_TRUSTED_PROXIES": PROXY, "COMETQL_MAX_SESSIONS_PER_IP": "1"}).start()
    wait_for_port(srv.ws_port)
    yield srv
    srv.stop()


class LongPollClient:
    """A long-poll session opened from ``source`` with extra headers (http.client, bounded in time)."""

    def __init__(self, server: ServerProcess, source: str, headers: dict[str, str]) -> None:
        self.server, self.source, self.headers = server, source, headers
        self.sid = ""

    def request(self, method: str, path: str, body: str = "") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.ws_port, timeout=10,
                                          source_address=(self.source, 0))
        try:
            conn.request(method, path, body=body.encode(), headers={"Content-Type": "text/plain", **self.headers})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def connect(self, dev: int) -> int:
        status, body = self.request("POST", "/lp/connect", f"sesion=&myid=0&devid={dev}&v=4.08&uuid=&api=js")
        if status == 200:
            self.sid = json.loads(body)["sid"]
        return status

    def subscribe(self, channel: str) -> None:
        assert self.request("POST", f"/lp/send?sid={self.sid}", f"subscription\n{channel}")[0] == 204

    def close(self) -> None:
        if self.sid:
            self.request("POST", f"/lp/close?sid={self.sid}")


def _ips(server: ServerProcess, dev: int, channel: str) -> list[str]:
    conn = server.connect(dev)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT ip FROM users_in_pipes WHERE name = '{channel}' ORDER BY ip")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_long_poll_sessions_count_and_show_the_forwarded_address_only_from_the_proxy(
        proxied_server: ServerProcess, dev: int) -> None:
    via_proxy_a = LongPollClient(proxied_server, PROXY, {"X-Forwarded-For": "198.51.100.1"})
    via_proxy_b = LongPollClient(proxied_server, PROXY, {"X-Real-IP": "198.51.100.2"})
    via_proxy_a_again = LongPollClient(proxied_server, PROXY, {"X-Forwarded-For": "6.6.6.6, 198.51.100.1"})
    forger = LongPollClient(proxied_server, BROWSER, {"X-Forwarded-For": "198.51.100.3"})
    forger_again = LongPollClient(proxied_server, BROWSER, {"X-Forwarded-For": "198.51.100.4",
                                                           "X-Real-IP": "198.51.100.5"})
    clients = [via_proxy_a, via_proxy_b, via_proxy_a_again, forger, forger_again]
    try:
        # one session per address: two browsers behind the proxy are two addresses, not one
        assert [c.connect(dev) for c in clients] == [200, 200, 429, 200, 429]
        for client in (via_proxy_a, via_proxy_b, forger):
            client.subscribe("web_where")
        assert _ips(proxied_server, dev, "web_where") == ["127.0.0.1", "198.51.100.1", "198.51.100.2"]
    finally:
        for client in clients:
            client.close()


def _websocket(server: ServerProcess, dev: int, source: str, headers: list[str]) -> websocket.WebSocket:
    sock = socket.create_connection(("127.0.0.1", server.ws_port), timeout=10, source_address=(source, 0))
    url = f"ws://127.0.0.1:{server.ws_port}/ws/sesion=&myid=0&devid={dev}&v=4.08&uuid=&api=js"
    ws = websocket.create_connection(url, socket=sock, header=headers, timeout=10)
    assert '"serverInfo"' in ws.recv()
    return ws


def test_websocket_sessions_show_the_forwarded_address_only_from_the_proxy(
        proxied_server: ServerProcess, dev: int) -> None:
    proxied = _websocket(proxied_server, dev, PROXY, ["X-Forwarded-For: 203.0.113.7", "X-Real-IP: 203.0.113.7"])
    forged = _websocket(proxied_server, dev, BROWSER, ["X-Forwarded-For: 203.0.113.8", "X-Real-IP: 203.0.113.8"])
    try:
        for ws in (proxied, forged):
            ws.send("subscription\nweb_where")
        deadline = time.monotonic() + 10  # hang guard: the subscriptions are applied after the sends return
        while (ips := _ips(proxied_server, dev, "web_where")) != ["127.0.0.1", "203.0.113.7"]:
            assert time.monotonic() < deadline, ips
            time.sleep(0.05)
    finally:
        proxied.close()
        forged.close()
