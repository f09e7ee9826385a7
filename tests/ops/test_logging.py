"""Logging: JSON lines with --log-format json, levels from the flag, and no secrets at debug level."""

from __future__ import annotations

import json
import logging
from io import StringIO
from pathlib import Path

import trio

from cometql.logs import RedactFilter, redact, setup_logging

from ..servers import ServerProcess
from ..web._wire import make_jwt, open_browser
from ..web.conftest import wait_for_port

SECRET_PASSWORD = "Pa55-w0rd-never-logged"
SECRET_HASH = "hashNeverLogged42"


async def test_debug_log_of_a_busy_session_contains_no_secrets(tmp_path: Path, dev: int) -> None:
    srv = ServerProcess(tmp_path / "data", password=SECRET_PASSWORD,
                        extra_args=("--log-level", "debug", "--log-format", "json")).start()
    token = make_jwt(dev, 6, password=SECRET_PASSWORD)  # revoking it logs user 6 out; user 5 logs in below
    try:
        conn = srv.connect(dev)
        try:
            with conn.cursor() as cur:
                cur.execute(f"INSERT INTO users_auth (id, hash) VALUES (5, '{SECRET_HASH}')")
                cur.execute("SELECT hash FROM users_auth WHERE id = 5")
                assert cur.fetchall()[0][0] == SECRET_HASH
                cur.execute("INSERT INTO revoked_tokens (token) VALUES (%s)", (token,))
                cur.execute("SELECT @@version_comment")
        finally:
            conn.close()
        wait_for_port(srv.ws_port)
        async with open_browser(srv, dev, user_id=5, key=SECRET_HASH) as browser:
            assert json.loads(browser.hello)["authorized"] is True
        await trio.sleep(0.2)
    finally:
        srv.stop()
    lines = [line for line in srv.output.splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    statements = [r["message"] for r in records if "statement:" in r["message"]]
    assert any("users_auth" in m for m in statements), srv.output  # debug logging really ran
    assert any("revoked_tokens" in m for m in statements), srv.output
    for secret in (SECRET_PASSWORD, SECRET_HASH, token, token.split(".")[1]):
        assert secret not in srv.output
    for r in records:
        assert {"time", "level", "logger", "message"} <= r.keys()
        assert r["level"] in ("debug", "info", "warning", "error", "critical")


def test_text_format_is_one_line_per_event_and_level_applies() -> None:
    out = StringIO()
    setup_logging("warning", "text", stream=out)
    try:
        log = logging.getLogger("cometql.test")
        log.info("hidden")
        log.warning("shown %s", "here")
    finally:
        setup_logging("info", "text")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(" WARNING cometql.test: shown here")


def test_json_format_carries_extra_fields_redacted() -> None:
    out = StringIO()
    setup_logging("info", "json", secrets=("topsecret",), stream=out)
    try:
        logging.getLogger("cometql.test").info("login with %s", "topsecret", extra={"url": "/ws/?user_key=abc"})
    finally:
        setup_logging("info", "text")
    obj = json.loads(out.getvalue())
    assert obj["message"] == "login with ***"
    assert obj["url"] == "/ws/?user_key=***"
    assert obj["logger"] == "cometql.test" and obj["level"] == "info"


def test_redact_rules() -> None:
    assert redact("INSERT INTO users_auth (id, hash) VALUES (1, 'x''y'), (2, 'z')") == \
        "INSERT INTO users_auth (id, hash) VALUES (1, '***'), (2, '***')"
    assert redact("DELETE FROM revoked_tokens WHERE token = \"t\"") == "DELETE FROM revoked_tokens WHERE token = ***"
    assert redact("token eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjo1fQ.abc_-1 seen") == "token *** seen"
    assert redact("INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'e', 'm')") == \
        "INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'e', 'm')"  # ordinary messages stay
    assert RedactFilter(("pw",)).secrets == ("pw",)
