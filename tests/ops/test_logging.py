"""Logging: JSON lines with --log-format json, levels from the flag, no secrets and no forged lines at any level."""

from __future__ import annotations

import json
import logging
import re
from io import StringIO
from pathlib import Path

import pymysql
import pytest
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


#: A whole fake record a statement tries to slip into the log after a newline.
FORGED = "2031-01-01 00:00:00,000 ERROR cometql: forged-record-9Z"
_TEXT_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")
#: What `cometql serve` prints besides log records (its banner and the shutdown note).
_BANNER = ("CometQL ", "  ", "received SIG")


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("level", ["info", "debug"])
def test_log_has_no_secret_and_no_forged_line(tmp_path: Path, fmt: str, level: str) -> None:
    """The default level and debug, both formats: the hash of a REPLACE (which sqlglot warns about with the
    whole statement) never appears, and a statement with a newline cannot add a record of its own."""
    srv = ServerProcess(tmp_path / "data", extra_args=("--log-level", level, "--log-format", fmt)).start()
    try:
        conn = srv.connect()
        try:
            with conn.cursor() as cur:
                for sql in (f"REPLACE INTO users_auth (id, hash) VALUES (1, '{SECRET_HASH}')",
                            f"REPLACE INTO pipes_messages (name, event, message) VALUES ('pipe', 'e', 'x\n{FORGED}')",
                            f"INSERT INTO users_auth (id, hash) VALUES (2, '{SECRET_HASH}\n{FORGED}')"):
                    with pytest.raises(pymysql.err.MySQLError):
                        cur.execute(sql)
                cur.execute("INSERT INTO pipes_messages (name, event, message) VALUES (%s, %s, %s)",
                            ("pipe", "e", f"line one\n{FORGED}\r\u2028{FORGED}\x1b[2J"))
        finally:
            conn.close()
    finally:
        srv.stop()
    out = srv.output
    assert SECRET_HASH not in out
    lines = out.split("\n")
    for line in lines:
        assert not line.startswith(FORGED[:20]), line
        if not line or (fmt == "text" and line.startswith(_BANNER)):  # JSON: the banner is JSON too
            assert "forged" not in line, line
            continue
        if fmt == "json":
            record = json.loads(line)  # one whole record per line
            assert {"time", "level", "logger", "message"} <= record.keys()
        else:
            assert _TEXT_RECORD.match(line), line
            assert "\r" not in line and "\u2028" not in line and "\x1b" not in line, line
    if level == "debug":  # the statements were logged, each on its own single line
        logged = [line for line in lines if "forged-record" in line]
        assert logged, out
        if fmt == "text":
            assert any(f"x\\n{FORGED}" in line for line in logged), logged
            assert any("\\r\\u2028" in line and "\\x1b[2J" in line for line in logged), logged


def test_redact_a_quoted_or_unterminated_statement() -> None:
    warning = ("'REPLACE INTO users_auth (id, hash) VALUES (1, 'TopSecretHashA')' contains unsupported syntax. "
               "Falling back to parsing as a 'Command'.")
    assert "TopSecretHashA" not in redact(warning)
    assert "TopSecretHashA" not in redact("INSERT INTO users_auth (id, hash) VALUES (1, 'x'), (2, 'TopSecretHashA)")
    assert "TopSecretHashA" not in redact("failed for \"INSERT INTO users_auth VALUES (1, 'TopSecretHashA')\": x")
    assert redact("INSERT INTO users_auth (id, hash) VALUES (1, 'TopSecretHashA')") == \
        "INSERT INTO users_auth (id, hash) VALUES (1, '***')"


def test_text_format_escapes_control_characters_and_tracebacks() -> None:
    out = StringIO()
    setup_logging("info", "text", stream=out)
    try:
        log = logging.getLogger("cometql.test")
        log.warning("statement: %s", f"a\n{FORGED}\r\x00\x85\u2029b\tc")
        try:
            raise ValueError(f"bad\n{FORGED}")
        except ValueError:
            log.exception("failed")
    finally:
        setup_logging("info", "text")
    lines = out.getvalue().split("\n")
    assert lines[-1] == "" and len(lines) == 3, lines
    assert lines[0].endswith(f"statement: a\\n{FORGED}\\r\\x00\\x85\\u2029b\tc")
    assert "failed\\nTraceback (most recent call last):" in lines[1] and f"bad\\n{FORGED}" in lines[1]
