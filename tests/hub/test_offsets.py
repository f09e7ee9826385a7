"""Channel offsets and epochs (issue 13, item 4): every message kept in a channel's history gets the
channel's next offset, once stored; frames to sessions with the ``offset`` capability carry it; a
``pipe_log`` after an offset gives exactly the missed messages, or a gap when the stream was reset or
trimmed past it. CppComet's library keeps CppComet's bytes."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

from cometql.hub import NO_CAPS, ConnInfo, Deliver, Hub, ListSubscriber, Persist, handle_command
from cometql.hub import _frames as frames
from cometql.hub.records import AppendHistory, Record

from ._helpers import NOW, apply, decoded, make_hub

_conn_ids = itertools.count(1)
OFFSET = frozenset({"offset"})


def session(caps: frozenset[str] = OFFSET, user: int = 0) -> ListSubscriber:
    return ListSubscriber(next(_conn_ids), 1, user, ConnInfo(uuid=f"u{user}"), caps=caps)


def joined(hub: Hub, channels: list[str], caps: frozenset[str] = OFFSET, user: int = 0) -> ListSubscriber:
    sub = session(caps, user)
    apply(hub, hub.connect(sub, NOW) + hub.subscribe(sub, channels, NOW))
    sub.frames.clear()
    return sub


def history_hub(channel: str = "chat", length: int = 5) -> Hub:
    hub = make_hub()
    apply(hub, hub.set_pipe_settings(1, channel, length))
    return hub


def publish(hub: Hub, n: int, channel: str = "chat") -> None:
    for i in range(n):
        apply(hub, hub.publish(1, channel, "ev", f"m{i}", NOW))


def command(hub: Hub, sub: ListSubscriber, text: str) -> list[dict[str, Any]]:
    sub.frames.clear()
    apply(hub, handle_command(hub, sub, text, NOW))
    return decoded(sub)


def test_offsets_count_stored_messages_and_capable_frames_carry_them() -> None:
    hub = history_hub()
    capable, legacy = joined(hub, ["chat"]), joined(hub, ["chat"], NO_CAPS)
    publish(hub, 3)
    epoch = hub.state.position(1, "chat")[0]  # type: ignore[index]
    assert [(f["offset"], f["epoch"], f["data"]) for f in decoded(capable)] == [
        (1, epoch, "m0"), (2, epoch, "m1"), (3, epoch, "m2")]
    assert legacy.frames == [frames.pipe_frame("chat", "ev", f"m{i}", NOW) for i in range(3)]  # CppComet's bytes
    assert [e.offset for e in hub.state.history(1, "chat")] == [1, 2, 3]
    assert epoch == hub.state.history(1, "chat")[0].id  # the first message names the epoch


def test_channels_without_history_have_no_offsets() -> None:
    hub = make_hub()
    sub = joined(hub, ["plain"])
    [deliver] = hub.publish(1, "plain", "ev", "m", NOW)
    assert isinstance(deliver, Deliver) and type(deliver.frame) is bytes
    apply(hub, [deliver])
    assert "offset" not in decoded(sub)[0] and hub.state.position(1, "plain") is None


def test_the_offset_is_assigned_when_stored_so_a_refused_message_leaves_no_hole() -> None:
    hub = history_hub()
    sub = joined(hub, ["chat"])
    first = hub.publish(1, "chat", "ev", "refused", NOW)
    second = hub.publish(1, "chat", "ev", "kept", NOW)
    assert [type(e) for e in first] == [Persist]  # nothing to hand out before it is stored
    records = [r for e in first + second if isinstance(e, Persist) for r in e.records]
    assert hub.settle(records[:1], False) == []
    apply(hub, hub.settle(records[1:], True))
    assert [(f["data"], f["offset"]) for f in decoded(sub)] == [("kept", 1)]


def test_trimming_keeps_counting() -> None:
    hub = history_hub(length=3)
    publish(hub, 7)
    assert [e.offset for e in hub.state.history(1, "chat")] == [5, 6, 7]
    assert hub.state.position(1, "chat")[1] == 7  # type: ignore[index]


def test_a_subscription_tells_a_capable_session_where_each_history_stream_is() -> None:
    hub = history_hub()
    publish(hub, 2)
    sub = session()
    apply(hub, hub.connect(sub, NOW))
    sub.frames.clear()
    apply(hub, hub.subscribe(sub, ["chat", "plain", "trust_x"], NOW))
    epoch = hub.state.position(1, "chat")[0]  # type: ignore[index]
    assert [(f["event"], f["pipe"], f["data"]) for f in decoded(sub)] == [
        ("position", "sys", {"pipe": "chat", "epoch": epoch, "offset": 2, "history": True}),
        ("position", "sys", {"pipe": "trust_x", "epoch": "", "offset": 0, "history": True}),  # empty so far
    ]
    apply(hub, hub.subscribe(sub, ["chat", "plain", "trust_x", "trust_y"], NOW))  # only the new channel
    assert [f["data"]["pipe"] for f in decoded(sub)[2:]] == ["trust_y"]
    legacy = session(NO_CAPS)
    apply(hub, hub.connect(legacy, NOW))
    legacy.frames.clear()
    apply(hub, hub.subscribe(legacy, ["chat"], NOW))
    assert legacy.frames == []  # CppComet's library gets nothing new


def test_recovery_gives_exactly_the_missed_messages_then_the_position() -> None:
    hub = history_hub(length=10)
    sub = joined(hub, ["chat"])
    publish(hub, 2)
    epoch = decoded(sub)[-1]["epoch"]
    publish(hub, 4)  # missed: offsets 3..6
    got = command(hub, sub, f"pipe_log\nchat\nmk1\n{epoch}\n2")
    assert [(f["data"], f["offset"], f["epoch"], f["history"]) for f in got[:-1]] == [
        (f"m{i}", i + 3, epoch, True) for i in range(4)]  # publish() numbers messages from m0 each call
    assert got[-1] == {"data": {"epoch": epoch, "history": True, "offset": 6, "pipe": "chat", "recovered": True},
                       "event": "recovery", "marker": "mk1", "message_send_time": NOW, "pipe": "sys"}
    nothing = command(hub, sub, f"pipe_log\nchat\nmk2\n{epoch}\n6")
    assert [f["event"] for f in nothing] == ["recovery"] and nothing[0]["data"]["recovered"] is True


def test_recovery_when_nothing_was_received_before() -> None:
    hub = history_hub()
    sub = joined(hub, ["chat"])  # position: epoch "" offset 0 (no message yet)
    publish(hub, 3)
    got = command(hub, sub, "pipe_log\nchat\nmk\n\n0")
    assert [f.get("offset") for f in got] == [1, 2, 3, None] and got[-1]["data"]["recovered"] is True


def test_a_reset_or_trimmed_stream_is_a_gap() -> None:
    hub = history_hub(length=3)
    publish(hub, 2)
    old_epoch = hub.state.position(1, "chat")[0]  # type: ignore[index]
    sub = joined(hub, ["chat"])
    publish(hub, 3)  # offsets 3..5; 1 and 2 trimmed away
    assert command(hub, sub, f"pipe_log\nchat\nm\n{old_epoch}\n1")[-1]["data"]["recovered"] is False
    assert [f["offset"] for f in command(hub, sub, f"pipe_log\nchat\nm\n{old_epoch}\n2")[:-1]] == [3, 4, 5]
    for reset in (hub.clear_history(1, ["chat"]), hub.delete_pipe_settings(1, ["chat"])):
        apply(hub, reset)
        assert hub.state.position(1, "chat") is None
        gap = command(hub, sub, f"pipe_log\nchat\nm\n{old_epoch}\n5")
        assert len(gap) == 1 and gap[0]["data"]["recovered"] is False
        apply(hub, hub.set_pipe_settings(1, "chat", 3))
        publish(hub, 1)
        new_epoch, offset = hub.state.position(1, "chat")  # type: ignore[misc]
        assert new_epoch != old_epoch and offset == 1
        old_epoch = new_epoch
        publish(hub, 1)


def test_a_channel_without_history_answers_that_it_has_none() -> None:
    hub = make_hub()
    sub = joined(hub, ["plain"])
    [end] = command(hub, sub, "pipe_log\nplain\nm\n\n0")
    assert end["data"] == {"epoch": "", "history": False, "offset": 0, "pipe": "plain", "recovered": False}


def test_pipe_log_without_an_offset_or_capability_is_cppcomets() -> None:
    hub = history_hub()
    publish(hub, 2)
    for sub, text in ((joined(hub, ["chat"]), "pipe_log\nchat\nm\n"), (joined(hub, ["chat"], NO_CAPS),
                                                                      "pipe_log\nchat\nm\n\n0")):
        got = command(hub, sub, text)
        assert [f["data"] for f in got] == ["m0", "m1"] and all("offset" not in f for f in got)
    assert command(hub, joined(hub, []), "pipe_log\nchat\nm\nbad epoch\n1")[0]["event"] == "error"


def test_a_browser_publish_to_a_history_channel_skips_the_sender() -> None:
    hub = history_hub("web_chat")
    sender, other = joined(hub, ["web_chat"], user=0), joined(hub, ["web_chat"], NO_CAPS)
    got = command(hub, sender, "web_pipe2\nweb_chat\nev\n*\nhello")
    assert [f["pipe"] for f in got] == ["_answer_to_web_chat"] and got[0]["data"]["number_messages"] == 1
    assert other.frames == [frames.pipe_frame("web_chat", "ev", "hello", NOW, 0)]


def _assigned(rec: Record, epoch: str, offset: int) -> AppendHistory:
    assert isinstance(rec, AppendHistory)
    return replace(rec, epoch=epoch, entry=replace(rec.entry, offset=offset))


def test_in_a_cluster_offsets_come_from_the_authority_and_frames_follow_the_stream() -> None:
    a, b = make_hub(node_id="A"), make_hub(node_id="B")
    for hub in (a, b):
        apply(hub, hub.set_pipe_settings(1, "chat", 5))
    on_a, on_b = joined(a, ["chat"]), joined(b, ["chat"])
    effects = a.publish(1, "chat", "ev", "hi", NOW)
    [rec] = [r for e in effects if isinstance(e, Persist) for r in e.records]
    assert a.settle([rec], True, [("E1", 41)]) == []  # stored; fanned out when the bus entry is read back
    assert a.state.position(1, "chat") == ("E1", 41) and on_a.frames == []
    entry = [_assigned(rec, "E1", 41), *(ev for e in effects if not isinstance(e, Persist)
                                         for ev in getattr(e, "events", ()))]
    apply(a, a.own_stored(entry))
    apply(b, b.remote_changes("A", entry, NOW))
    for sub in (on_a, on_b):
        assert [(f["data"], f["epoch"], f["offset"]) for f in decoded(sub)] == [("hi", "E1", 41)]
    assert [e.offset for e in b.state.history(1, "chat")] == [41]


def test_a_node_that_applied_its_own_message_first_keeps_history_in_offset_order() -> None:
    hub = make_hub(node_id="A")
    apply(hub, hub.set_pipe_settings(1, "chat", 5))
    mine = hub.publish(1, "chat", "ev", "mine", NOW)
    hub.settle([r for e in mine if isinstance(e, Persist) for r in e.records], True, [("E", 2)])
    theirs = AppendHistory(1, "chat", replace(hub.state.history(1, "chat")[0], id="x", offset=1), 5, "E")
    hub.remote_records([theirs])
    assert [e.offset for e in hub.state.history(1, "chat")] == [1, 2] and hub.state.position(1, "chat") == ("E", 2)
    lost = AppendHistory(1, "chat", replace(theirs.entry, id="y", offset=1), 5, "E2")  # Redis lost its data
    hub.remote_records([lost])
    assert [e.id for e in hub.state.history(1, "chat")] == ["y"] and hub.state.position(1, "chat") == ("E2", 1)


def test_position_frame_shape() -> None:
    frame = json.loads(frames.position_frame("position", "c", "e", 3, True, NOW))
    assert frame == {"data": {"epoch": "e", "history": True, "offset": 3, "pipe": "c"}, "event": "position",
                     "message_send_time": NOW, "pipe": "sys"}


def test_a_node_may_read_its_own_bus_entry_before_the_writer_settles_it() -> None:
    hub = make_hub(node_id="A")
    apply(hub, hub.set_pipe_settings(1, "chat", 5))
    sub = joined(hub, ["chat"])
    effects = hub.publish(1, "chat", "ev", "hi", NOW)
    [rec] = [r for e in effects if isinstance(e, Persist) for r in e.records]
    apply(hub, hub.own_stored([_assigned(rec, "E", 7)]))  # the follower was faster than the writer
    assert [(f["data"], f["offset"]) for f in decoded(sub)] == [("hi", 7)]
    assert hub.settle([rec], True, [("E", 7)]) == []  # applied to memory, not fanned out twice
    assert hub.state.position(1, "chat") == ("E", 7)


def test_a_subscriber_joining_before_the_bus_entry_is_read_back_gets_the_message_live() -> None:
    """Stored (in memory) but not fanned out yet: the new subscriber's position is before it."""
    hub = make_hub(node_id="A")
    apply(hub, hub.set_pipe_settings(1, "chat", 5))
    effects = hub.publish(1, "chat", "ev", "hi", NOW)
    [rec] = [r for e in effects if isinstance(e, Persist) for r in e.records]
    hub.settle([rec], True, [("E", 3)])
    late = session()
    apply(hub, hub.connect(late, NOW) + hub.subscribe(late, ["chat"], NOW))
    assert decoded(late)[-1]["data"] == {"pipe": "chat", "epoch": "E", "offset": 2, "history": True}
    apply(hub, hub.own_stored([_assigned(rec, "E", 3)]))
    assert decoded(late)[-1]["offset"] == 3
