"""JSON frames pushed to browsers (README: sorted keys, no whitespace, ' written as \\u0027)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from cometql.hub import encode_frame
from cometql.hub._frames import pipe_frame, queued_user_frame, status_frame, user_frame


def test_keys_sorted_and_no_whitespace() -> None:
    assert encode_frame({"pipe": "p", "data": "d", "event": "e"}) == b'{"data":"d","event":"e","pipe":"p"}'


def test_single_quote_is_escaped_as_unicode() -> None:
    frame = encode_frame({"data": "it's"})
    assert frame == b'{"data":"it\\u0027s"}'
    assert b"'" not in frame and b"\\'" not in frame
    assert json.loads(frame) == {"data": "it's"}


def test_pipe_frame() -> None:
    assert pipe_frame("chat", "ev", "hi", 1700000000) == (
        b'{"data":"hi","event":"ev","message_send_time":1700000000,"pipe":"chat"}'
    )
    assert json.loads(pipe_frame("web_x", "ev", "hi", 5, user_id=3))["user_id"] == 3


def test_user_frames() -> None:
    assert user_frame("ev", "m") == b'{"data":"m","event":"ev","pipe":"msg"}'
    assert queued_user_frame("ev", "m", 7) == (
        b'{"data":"m","event":"ev","fromQueue":true,"message_send_time":7,"pipe":"msg"}'
    )


def test_status_frame() -> None:
    assert status_frame(4, "online") == b'{"data":"online","event":"online","pipe":"user_status_4"}'


@given(st.text(), st.text(), st.text())
def test_any_text_round_trips_sorted_and_without_a_quote(channel: str, event: str, message: str) -> None:
    frame = pipe_frame(channel, event, message, 1)
    obj = json.loads(frame)
    assert obj == {"data": message, "event": event, "message_send_time": 1, "pipe": channel}
    assert list(obj) == sorted(obj)
    assert b"'" not in frame
    assert frame.startswith(b'{"data":') and b'","event":' in frame  # compact separators
