"""Per-capability frames: CppComet's library gets CppComet's bytes, a session with capabilities the
capable form, each form encoded at most once per fan-out and only when some target takes it."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any

import pytest

from cometql.hub import NO_CAPS, ConnInfo, Deliver, Frames, ListSubscriber, _frames
from cometql.hub.records import QueuedMessage, QueueMessage

from ._helpers import NOW, apply, decoded, make_hub, queued

_conn_ids = itertools.count(1)
CAPS = frozenset({"ack", "offset", "hb"})


def session(user: int = 0, caps: frozenset[str] = NO_CAPS) -> ListSubscriber:
    return ListSubscriber(next(_conn_ids), 1, user, ConnInfo(uuid=f"u{user}"), caps=caps)


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each kind of frame was encoded (keyed by the frame's pipe, "+id" for the capable form)."""
    counts: Counter[str] = Counter()
    real = _frames.encode_frame

    def counting(obj: dict[str, Any]) -> bytes:
        counts[obj.get("pipe", "?") + ("+id" if "id" in obj else "")] += 1
        return real(obj)

    monkeypatch.setattr(_frames, "encode_frame", counting)
    return counts


def test_sessions_default_to_cppcomets_library() -> None:
    assert ListSubscriber(1).caps == NO_CAPS == frozenset()


def test_a_frame_whose_forms_do_not_differ_is_one_bytes_object() -> None:
    hub = make_hub()
    subs = [session(), session(caps=CAPS)]
    for sub in subs:
        apply(hub, hub.connect(sub, NOW) + hub.subscribe(sub, ["chat"], NOW))
    [deliver] = hub.publish(1, "chat", "ev", "hi", NOW)
    assert isinstance(deliver, Deliver) and type(deliver.frame) is bytes
    apply(hub, [deliver])
    assert subs[0].frames == subs[1].frames and subs[0].frames[0] is subs[1].frames[0]


def test_frames_encode_each_form_once_and_only_when_asked(encodes: Counter[str]) -> None:
    frames = _frames.queued_user_frames("ev", "m", 7, "id-1")
    assert not encodes  # nothing encoded before a target needs it
    legacy = _frames.queued_user_frame("ev", "m", 7)
    encodes.clear()
    assert [frames.form(NO_CAPS) for _ in range(3)] == [legacy] * 3
    assert encodes == {"msg": 1}
    capable = frames.form(CAPS)
    assert frames.form(frozenset({"hb"})) is capable
    assert encodes == {"msg": 1, "msg+id": 1}
    assert json.loads(capable) == {**json.loads(legacy), "id": "id-1"}
    assert list(json.loads(capable)) == sorted(json.loads(capable))  # still key-sorted, as every frame


def test_queued_messages_reach_a_capable_session_with_ids_and_cppcomets_library_unchanged() -> None:
    hub = make_hub()
    apply(hub, hub.send_to_user(1, 4, "ev", "first", NOW) + hub.send_to_user(1, 4, "ev", "it's", NOW + 1))
    ids = [q.id for q in queued(hub, 1, 4)]
    capable = session(4, CAPS)
    apply(hub, hub.connect(capable, NOW + 2))
    assert [(f["data"], f["id"], f["fromQueue"]) for f in decoded(capable)] == [
        ("first", ids[0], True), ("it's", ids[1], True)]
    apply(hub, hub.send_to_user(1, 5, "ev", "it's", NOW))
    legacy = session(5)
    apply(hub, hub.connect(legacy, NOW + 2))
    assert legacy.frames == [_frames.queued_user_frame("ev", "it's", NOW)]  # CppComet's bytes exactly
    assert b"\\u0027" in legacy.frames[0] and b'"id"' not in legacy.frames[0]


def test_a_fan_out_to_mixed_sessions_encodes_each_form_once(encodes: Counter[str]) -> None:
    """A message queued by another node for a user who has just connected here on several sessions
    (the race in ``remote_records``): one Deliver to all of them, two forms, each encoded once."""
    hub = make_hub(node_id="B")
    legacy = [session(6) for _ in range(3)]
    capable = [session(6, CAPS) for _ in range(2)]
    for sub in legacy + capable:
        apply(hub, hub.connect(sub, NOW))
    encodes.clear()
    effects = hub.remote_records([QueueMessage(1, 6, QueuedMessage("q-1", NOW, "ev", "m"))])
    [deliver] = [e for e in effects if isinstance(e, Deliver)]
    assert isinstance(deliver.frame, Frames) and len(deliver.targets) == 5
    apply(hub, effects)
    assert encodes == {"msg": 1, "msg+id": 1}
    assert all(s.frames == [_frames.user_frame("ev", "m")] for s in legacy)  # live: CppComet's frame
    assert all(s.frames[0] is legacy[0].frames[0] for s in legacy)  # the same bytes object
    assert all(decoded(s) == [{**json.loads(legacy[0].frames[0]), "id": "q-1"}] for s in capable)
    assert all(s.frames[0] is capable[0].frames[0] for s in capable)


def test_a_fan_out_without_capable_sessions_never_encodes_the_capable_form(encodes: Counter[str]) -> None:
    hub = make_hub(node_id="B")
    subs = [session(7) for _ in range(3)]
    for sub in subs:
        apply(hub, hub.connect(sub, NOW))
    encodes.clear()
    apply(hub, hub.remote_records([QueueMessage(1, 7, QueuedMessage("q-2", NOW, "ev", "m"))]))
    assert encodes == {"msg": 1}
    assert all(len(s.frames) == 1 for s in subs)
