"""serverInfo tells a session with the ``hb`` capability how long the server may stay silent."""

from __future__ import annotations

import json

from cometql.hub import ListSubscriber

from ._helpers import NOW, apply, make_hub, open_as

TIMING = {"interval": 25.0, "timeout": 10.0}


def hello(caps: frozenset[str]) -> dict[str, object]:
    hub = make_hub()
    sub = ListSubscriber(1, 3)
    sub.caps = caps
    apply(hub, open_as(hub, sub, 0, "", NOW, "S", heartbeat=TIMING))
    return dict(json.loads(sub.frames[0]))


def test_hb_sessions_are_told_the_heartbeat_timing() -> None:
    assert hello(frozenset({"hb", "ack"}))["heartbeat"] == TIMING


def test_sessions_without_hb_are_not() -> None:
    assert "heartbeat" not in hello(frozenset({"ack"}))
    assert set(hello(frozenset())) == {"authorized", "data", "event", "message_send_time", "pipe", "server"}
