"""The pinger's rule (cometql/web/_pinger.py), sans-IO: when a session is pinged, when it is given up."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import pytest

from cometql.config import load_config
from cometql.errors import ConfigError
from cometql.hub import NO_CAPS, ConnInfo
from cometql.web._pinger import NO_ANSWER, PING_FRAME, heartbeat_frame, visit
from cometql.web._wsconn import WsSession
from cometql.wsframes import PONG, TEXT, close_frame

from .test_wsframes_unit import masked

INTERVAL, TIMEOUT, HB = 25.0, 10.0, b"<heartbeat>"


@dataclass
class FakeSession:
    pinged_at: float = 0.0
    heard: bool = True
    caps: frozenset[str] = NO_CAPS
    closing: str | None = None
    sent: list[bytes] = field(default_factory=list)

    def ping(self, extra: bytes) -> None:
        self.sent.append(extra)

    def abort(self, reason: str) -> None:
        self.closing = reason


def test_pinged_once_the_interval_has_passed_and_kept_while_it_answers() -> None:
    s = FakeSession()
    assert not visit(s, INTERVAL - 0.1, INTERVAL, TIMEOUT, HB) and s.sent == []
    assert not visit(s, INTERVAL, INTERVAL, TIMEOUT, HB)
    assert s.sent == [b""] and s.pinged_at == INTERVAL and not s.heard  # no heartbeat without hb
    s.heard = True  # the pong
    assert not visit(s, INTERVAL + TIMEOUT + 1, INTERVAL, TIMEOUT, HB)
    assert s.closing is None and s.sent == [b""]  # answered, next ping one interval after the last
    assert not visit(s, 2 * INTERVAL, INTERVAL, TIMEOUT, HB) and s.sent == [b"", b""]


def test_given_up_timeout_after_an_unanswered_ping() -> None:
    s = FakeSession()
    visit(s, INTERVAL, INTERVAL, TIMEOUT, HB)
    assert not visit(s, INTERVAL + TIMEOUT - 0.1, INTERVAL, TIMEOUT, HB) and s.closing is None
    assert visit(s, INTERVAL + TIMEOUT, INTERVAL, TIMEOUT, HB)
    assert s.closing == NO_ANSWER and s.sent == [b""]


def test_a_timeout_longer_than_the_interval_still_ends_a_silent_session() -> None:
    """No second ping while the first is unanswered: the timeout counts from the first."""
    s = FakeSession()
    visit(s, 1.0, 1.0, 5.0, HB)
    for t in (2.0, 3.0, 4.0, 5.9):
        assert not visit(s, t, 1.0, 5.0, HB)
    assert s.sent == [b""]
    assert visit(s, 6.0, 1.0, 5.0, HB)


def test_hb_sessions_get_the_heartbeat_with_the_ping() -> None:
    s = FakeSession(caps=frozenset({"hb", "ack"}))
    visit(s, INTERVAL, INTERVAL, TIMEOUT, HB)
    assert s.sent == [HB]


def test_heartbeat_frame_is_a_sys_text_frame() -> None:
    frame = heartbeat_frame(1700000000)
    payload = b'{"data":"","event":"heartbeat","message_send_time":1700000000,"pipe":"sys"}'
    assert frame == bytes([0x81, len(payload)]) + payload


@pytest.mark.parametrize(("env", "message"), [
    ({"COMETQL_PING_INTERVAL": "-1"}, "ping_interval"),
    ({"COMETQL_PING_TIMEOUT": "0"}, "ping_timeout"),
])
def test_ping_settings_are_checked(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env=env)


def test_ping_settings_defaults_and_off() -> None:
    config = load_config(env={})
    assert (config.ping_interval, config.ping_timeout) == (25.0, 10.0)
    assert load_config(env={"COMETQL_PING_INTERVAL": "0"}).ping_interval == 0  # no pings


# ---------------------------------------------------------------- the sessions' side


def _session() -> tuple[WsSession, socket.socket]:
    server_side, client_side = socket.socketpair()
    server_side.setblocking(False)
    client_side.settimeout(2)
    return WsSession(1, 0, ConnInfo(), server_side, _no_task, max_queued_bytes=64 * 1024), client_side


def _no_task(fn: object) -> None:
    raise AssertionError(f"a task was started: {fn}")


async def test_a_plain_session_is_pinged_and_any_answer_counts_as_heard() -> None:
    session, client = _session()
    session.caps = frozenset({"hb"})
    session.ping(b"<hb>")
    assert client.recv(100) == PING_FRAME + b"<hb>"  # one write: the ping and the heartbeat
    session.heard = False
    client.sendall(masked(PONG, b""))  # the browser's answer, alone: taken without a parser
    assert session.read() == [] and session.heard and session._ws is None
    session.heard = False
    client.sendall(masked(TEXT, b"pipe_count\nx"))  # any frame will do
    assert session.read() == [b"pipe_count\nx"] and session.heard
    session.release()
    client.close()


async def test_abort_sends_a_close_and_shuts_a_plain_session() -> None:
    session, client = _session()
    session.abort(NO_ANSWER)
    assert session.closing == NO_ANSWER
    assert client.recv(100) == close_frame(1001, NO_ANSWER)
    assert session.read() is None  # the socket is shut: the poller ends the session
    session.ping(b"")  # nothing after the close
    session.release()
    client.close()
