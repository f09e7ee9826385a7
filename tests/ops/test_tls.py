"""TLS on both ports (certificates from trustme): real clients over wss://, https:// and MySQL SSL."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pymysql
import pytest
import trio
from trio_websocket import open_websocket_url

from cometql.bench._faultproxy import FaultProxy

from ..mysql._raw import RawClient
from ..servers import PASSWORD, ServerProcess
from ..web._wire import TIMEOUT, eventually, mysql_rows, new_uuid
from ..web.conftest import wait_for_port
from ..web.test_longpoll import split_poll
from .conftest import Certs

CLIENT_SSL = 0x800
TIMEOUT_S = 20


def _client_context(certs: Certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca))


def test_greeting_advertises_ssl_only_when_configured(tls_server: ServerProcess, server: ServerProcess) -> None:
    with RawClient(tls_server.host, tls_server.port, timeout=5) as c:
        assert c.greeting().capabilities & CLIENT_SSL
    with RawClient(server.host, server.port, timeout=5) as c:
        assert not c.greeting().capabilities & CLIENT_SSL


def test_pymysql_with_ssl_ca_publishes(tls_server: ServerProcess, certs: Certs, dev: int) -> None:
    conn = tls_server.connect(dev, ssl={"ca": str(certs.ca)})
    try:
        assert isinstance(conn._sock, ssl.SSLSocket)  # the session really runs over TLS
        assert users_data_round_trip(conn, "over tls") == "over tls"
    finally:
        conn.close()


def test_pymysql_rejects_the_server_without_the_ca(tls_server: ServerProcess, dev: int) -> None:
    """Verification is real: a client that trusts only the system CAs refuses our certificate."""
    with pytest.raises(pymysql.err.OperationalError):
        tls_server.connect(dev, ssl={"ca": certifi_or_system()})


def users_data_round_trip(conn: pymysql.Connection, data: str) -> str:
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users_data (id, data) VALUES (3, %s)", (data,))
        cur.execute("SELECT data FROM users_data WHERE id = 3")
        return str(cur.fetchall()[0][0])


def certifi_or_system() -> str:
    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.openssl_cafile


def test_pymysql_without_ssl_still_works_on_a_tls_server(tls_server: ServerProcess, dev: int) -> None:
    conn = tls_server.connect(dev, ssl_disabled=True)
    try:
        assert not isinstance(conn._sock, ssl.SSLSocket)  # TLS is offered, not required
        assert users_data_round_trip(conn, "plain") == "plain"
    finally:
        conn.close()


def _mysql_cli(tls_server: ServerProcess, dev: int, *ssl_args: str, sql: str) -> subprocess.CompletedProcess[str]:
    mysql = shutil.which("mysql")
    assert mysql, "the mysql client is installed by `make system-deps`"
    return subprocess.run(
        [mysql, "-h", "127.0.0.1", "-P", str(tls_server.port), "-u", str(dev), f"-p{PASSWORD}", *ssl_args,
         "-e", sql, "CometQL_v1"], capture_output=True, text=True, timeout=TIMEOUT_S)


def test_mysql_cli_with_ssl_and_ca(tls_server: ServerProcess, certs: Certs, dev: int) -> None:
    run = _mysql_cli(tls_server, dev, "--ssl", f"--ssl-ca={certs.ca}", "--ssl-verify-server-cert",
                     sql="SHOW STATUS; \\s")
    assert run.returncode == 0, run.stderr
    assert "Cipher in use is TLS" in run.stdout, run.stdout


def test_mysql_cli_ssl_without_verification(tls_server: ServerProcess, dev: int) -> None:
    run = _mysql_cli(tls_server, dev, "--ssl", "--ssl-verify-server-cert=0",
                     sql="INSERT INTO users_auth (id, hash) VALUES (5, 'h5'); "
                         "SELECT id FROM users_auth WHERE id = 5; \\s")
    assert run.returncode == 0, run.stderr
    assert "Cipher in use is TLS" in run.stdout
    assert "\n5\n" in run.stdout, run.stdout


PHP = r"""
$m = mysqli_init();
$m->ssl_set(NULL, NULL, getenv('CA'), NULL, NULL);
$m->options(MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
$m->real_connect('127.0.0.1', getenv('DEV'), getenv('PW'), 'CometQL_v1', (int)getenv('PORT'), NULL, MYSQLI_CLIENT_SSL);
$m->query("INSERT INTO users_data (id, data) VALUES (7, 'php over tls')");
$row = $m->query("SELECT data FROM users_data WHERE id = 7")->fetch_row();
$cipher = $m->query("SHOW STATUS LIKE 'Ssl_cipher'");
echo json_encode(['data' => $row[0], 'host' => $m->host_info]);
"""


def test_php_mysqli_with_client_ssl(tls_server: ServerProcess, certs: Certs, dev: int, tmp_path: Path) -> None:
    php = shutil.which("php")
    assert php, "php-cli and php-mysql are installed by `make system-deps`"
    script = tmp_path / "tls.php"
    script.write_text("<?php\nmysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);\n" + PHP)
    env = {"CA": str(certs.ca), "DEV": str(dev), "PW": PASSWORD, "PORT": str(tls_server.port), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([php, str(script)], capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["data"] == "php over tls"


def test_php_mysqli_refuses_a_server_it_cannot_verify(tls_server: ServerProcess, dev: int, tmp_path: Path) -> None:
    """The same script with the system CAs only: the TLS verification fails, so PHP really used TLS."""
    php = shutil.which("php")
    assert php
    script = tmp_path / "tls.php"
    script.write_text("<?php\nmysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);\n" + PHP)
    env = {"CA": certifi_or_system(), "DEV": str(dev), "PW": PASSWORD, "PORT": str(tls_server.port),
           "PATH": "/usr/bin:/bin"}
    run = subprocess.run([php, str(script)], capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert run.returncode != 0
    assert "php over tls" not in run.stdout


async def test_https_info(tls_server: ServerProcess, certs: Certs) -> None:
    ctx = _client_context(certs)

    def get() -> bytes:
        url = f"https://127.0.0.1:{tls_server.ws_port}/info"
        with urllib.request.urlopen(url, context=ctx, timeout=TIMEOUT) as resp:
            return resp.read()

    body = await trio.to_thread.run_sync(get)
    assert json.loads(body)["status"] == "ok"


async def test_wss_session_receives_a_publish(tls_server: ServerProcess, certs: Certs, dev: int) -> None:
    url = (f"wss://127.0.0.1:{tls_server.ws_port}/ws/sesion=&myid=0&devid={dev}&v=4.08"
           f"&uuid={new_uuid()}&api=js")
    async with open_websocket_url(url, ssl_context=_client_context(certs), connect_timeout=TIMEOUT,
                                  disconnect_timeout=TIMEOUT) as ws:
        with trio.fail_after(TIMEOUT):
            hello = json.loads(await ws.get_message())
            assert hello["event"] == "serverInfo"
            await ws.send_message("subscription\nweb_tls")
            await ws.send_message("pipe_count\nweb_tls\nsync")  # a round trip: the subscription is applied
            assert '"marker":"sync"' in await ws.get_message()
            conn = tls_server.connect(dev)
            try:
                conn.cursor().execute(
                    "INSERT INTO pipes_messages (name, event, message) VALUES ('web_tls', 'ev', 'secure hello')")
            finally:
                conn.close()
            frame = json.loads(await ws.get_message())
    assert (frame["pipe"], frame["event"], frame["data"]) == ("web_tls", "ev", "secure hello")


async def test_plain_ws_to_the_tls_port_does_not_take_it_down(tls_server: ServerProcess, certs: Certs) -> None:
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream("127.0.0.1", tls_server.ws_port)
        await stream.send_all(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
        await stream.aclose()
    await test_https_info(tls_server, certs)


@pytest.mark.parametrize("which", ["cert", "key"])
def test_bad_certificate_path_is_a_clear_startup_error(tmp_path: Path, certs: Certs, which: str) -> None:
    paths = {"cert": str(certs.cert), "key": str(certs.key), which: str(tmp_path / "missing.pem")}
    run = subprocess.run(
        [sys.executable, "-m", "cometql.cli", "serve", "--mysql-port", "0", "--ws-port", "0",
         "--data-dir", str(tmp_path / "d"), "--tls-cert", paths["cert"], "--tls-key", paths["key"]],
        capture_output=True, text=True, timeout=TIMEOUT_S)
    assert run.returncode == 2
    assert run.stderr.strip() == f"cometql: tls_{which}: {tmp_path / 'missing.pem'} is not a readable file"
    assert "Traceback" not in run.stderr + run.stdout


def test_a_key_that_is_not_a_key_is_a_clear_startup_error(tmp_path: Path, certs: Certs) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "cometql.cli", "serve", "--mysql-port", "0", "--ws-port", "0",
         "--data-dir", str(tmp_path / "d"), "--tls-cert", str(certs.cert), "--tls-key", str(certs.ca)],
        capture_output=True, text=True, timeout=TIMEOUT_S)
    assert run.returncode == 2
    assert run.stderr.startswith("cometql: tls_cert/tls_key: cannot load"), run.stderr
    assert "Traceback" not in run.stderr + run.stdout


async def test_wss_session_answers_pings_and_echoes_the_close(tls_server: ServerProcess, certs: Certs,
                                                             dev: int) -> None:
    url = (f"wss://127.0.0.1:{tls_server.ws_port}/ws/sesion=&myid=0&devid={dev}&v=4.08"
           f"&uuid={new_uuid()}&api=js")
    async with open_websocket_url(url, ssl_context=_client_context(certs), connect_timeout=TIMEOUT,
                                  disconnect_timeout=TIMEOUT) as ws:
        with trio.fail_after(TIMEOUT):
            assert json.loads(await ws.get_message())["event"] == "serverInfo"
            for n in range(3):
                await ws.ping(b"ping %d" % n)  # returns once the matching pong arrived
            await ws.aclose(code=4001)
    assert ws.closed is not None and ws.closed.code == 4001  # the server echoed the browser's code


async def test_a_blackholed_wss_session_is_closed_by_pings(tmp_path: Path, certs: Certs, dev: int) -> None:
    """wss:// sessions are pinged like plain ones: a silent peer's session ends and its user goes offline."""
    srv = ServerProcess(tmp_path, env={"COMETQL_PING_INTERVAL": "1", "COMETQL_PING_TIMEOUT": "1"},
                        extra_args=("--tls-cert", str(certs.cert), "--tls-key", str(certs.key))).start()
    try:
        wait_for_port(srv.ws_port)
        mysql_rows(srv, dev, "INSERT INTO users_auth (id, hash) VALUES (9, 'k9')")
        with FaultProxy(("127.0.0.1", srv.ws_port)) as proxy:
            url = f"wss://127.0.0.1:{proxy.port}/ws/sesion=k9&myid=9&devid={dev}&v=4.08&uuid={new_uuid()}&api=js"
            async with open_websocket_url(url, ssl_context=_client_context(certs), connect_timeout=TIMEOUT,
                                          disconnect_timeout=1) as ws:
                with trio.fail_after(TIMEOUT):
                    assert json.loads(await ws.get_message())["authorized"] is True
                await eventually(lambda: _assert_users_time(srv, dev, 9, online=True))
                proxy.blackhole()
                await eventually(lambda: _assert_users_time(srv, dev, 9, online=False), timeout=TIMEOUT_S)
                proxy.cut()
    finally:
        srv.stop()


def _assert_users_time(srv: ServerProcess, dev: int, user_id: int, *, online: bool) -> bool:
    [(_, seen)] = mysql_rows(srv, dev, f"SELECT * FROM users_time WHERE id = {user_id}")
    assert (seen == "0") is online, seen
    return True


def _wss_url(server: ServerProcess, dev: int) -> str:
    return (f"wss://127.0.0.1:{server.ws_port}/ws/sesion=&myid=0&devid={dev}&v=4.08"
            f"&uuid={new_uuid()}&api=js")


async def test_idle_wss_sessions_all_get_a_fan_out_larger_than_a_tls_record(tls_server: ServerProcess, certs: Certs,
                                                                             dev: int) -> None:
    """Idle wss:// sessions live in the idle poller: a publish reaches each, a 40 KB one in several records."""
    big = "".join(chr(ord("a") + i % 26) for i in range(40000))
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for _ in range(5):
            ws = await stack.enter_async_context(open_websocket_url(
                _wss_url(tls_server, dev), ssl_context=_client_context(certs), connect_timeout=TIMEOUT,
                disconnect_timeout=TIMEOUT))
            sockets.append(ws)
        with trio.fail_after(TIMEOUT):
            for ws in sockets:
                assert json.loads(await ws.get_message())["event"] == "serverInfo"
                await ws.send_message("subscription\nweb_tls_fan")
                await ws.send_message("pipe_count\nweb_tls_fan\nsync")
                assert '"marker":"sync"' in await ws.get_message()
            await trio.sleep(0.5)  # every session idle in the poller (no bytes in flight)
            for message in ("small", big):
                mysql_rows(tls_server, dev, "INSERT INTO pipes_messages (name, event, message) "
                                            f"VALUES ('web_tls_fan', 'ev', '{message}')")
                for ws in sockets:
                    frame = json.loads(await ws.get_message())
                    assert (frame["pipe"], frame["event"], frame["data"]) == ("web_tls_fan", "ev", message)


async def test_a_wss_command_across_several_records_is_answered(tls_server: ServerProcess, certs: Certs,
                                                                 dev: int) -> None:
    """A 40 KB browser message (three TLS records) is one command; its answer comes back over TLS."""
    async with open_websocket_url(_wss_url(tls_server, dev), ssl_context=_client_context(certs),
                                  connect_timeout=TIMEOUT, disconnect_timeout=TIMEOUT) as ws:
        with trio.fail_after(TIMEOUT):
            assert json.loads(await ws.get_message())["event"] == "serverInfo"
            await ws.send_message("pipe_count\nweb_tls_big\n" + "m" * 40000)
            answer = await ws.get_message()
    assert "m" * 40000 in answer


def _https(server: ServerProcess, certs: Certs) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", server.ws_port, context=_client_context(certs), timeout=TIMEOUT)


async def test_long_poll_over_https_on_one_kept_alive_connection(tls_server: ServerProcess, certs: Certs,
                                                                 dev: int) -> None:
    def run() -> list[str]:
        conn = _https(tls_server, certs)
        try:
            body = f"sesion=&myid=0&devid={dev}&v=4.08&uuid={new_uuid()}&api=js"
            conn.request("POST", "/lp/connect", body, {"Content-Type": "text/plain"})
            sid = json.loads(conn.getresponse().read())["sid"]
            conn.request("POST", f"/lp/send?sid={sid}", "pipe_count\nweb_tls_lp\nlp-sync")
            response = conn.getresponse()
            assert (response.status, response.read()) == (204, b"")
            frames: list[str] = []
            cursor = 0
            while not any("lp-sync" in f for f in frames):
                conn.request("GET", f"/lp/poll?sid={sid}&cursor={cursor}")
                answer = conn.getresponse().read().decode()
                cursor, more = split_poll(answer)
                frames += more
            return frames
        finally:
            conn.close()

    frames = await trio.to_thread.run_sync(run)
    assert json.loads(frames[0])["event"] == "serverInfo"


async def test_admin_over_https_asks_for_the_password_and_answers_with_it(tls_server: ServerProcess,
                                                                         certs: Certs) -> None:
    def get(password: str | None) -> int:
        conn = _https(tls_server, certs)
        headers = {}
        if password is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        try:
            conn.request("GET", "/admin", headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    assert await trio.to_thread.run_sync(get, None) == 401
    assert await trio.to_thread.run_sync(get, PASSWORD) == 200
