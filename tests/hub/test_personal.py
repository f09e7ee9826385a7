"""Personal messages as a state machine: ids, acks, resends, pages and flow control, bounds, keys.

The store is ``_helpers.apply``'s in-memory queue store; ``apply(..., load=False)``
leaves the pages the hub asks for unread (``queues(hub).loads``), so a test can
read them when it chooses (``read``).
"""

from __future__ import annotations

from typing import Any

import pytest

from cometql.hub import (
    PAGE,
    PAGE_BYTES,
    ConnInfo,
    Deliver,
    Hub,
    ListSubscriber,
    Persist,
    QueueFull,
    _frames,
    handle_command,
)
from cometql.hub.records import DeleteQueued, QueueMessage

from ._helpers import NOW, apply, decoded, make_hub, queued, queues

ACKS = frozenset({"ack"})
_ids = iter(range(1, 10**9))


def session(user: int, caps: frozenset[str] = frozenset()) -> ListSubscriber:
    return ListSubscriber(next(_ids), 1, user, ConnInfo(), caps=caps)


def online(hub: Hub, sub: ListSubscriber, *, load: bool = True) -> ListSubscriber:
    apply(hub, hub.connect(sub, NOW), load=load)
    return sub


def messages(sub: ListSubscriber) -> list[dict[str, Any]]:
    return [f for f in decoded(sub) if f.get("pipe") == "msg"]


def ack(hub: Hub, sub: ListSubscriber, ids: list[str], *, load: bool = True) -> None:
    apply(hub, handle_command(hub, sub, "ack\n" + ",".join(ids), NOW), load=load)


def read(hub: Hub) -> None:
    """Read every page the hub asked for (in order), and what those reads ask for next."""
    q = queues(hub)
    while q.loads:
        load = q.loads.pop(0)
        apply(hub, hub.personal.page(load, q.page(load), NOW), load=False)


def test_an_ack_session_gets_the_id_and_the_message_stays_until_acknowledged() -> None:
    hub = make_hub()
    tab = online(hub, session(4, ACKS))
    assert hub.personal.feeds == {}  # an online user with nothing queued costs nothing here
    apply(hub, hub.send_to_user(1, 4, "ev", "hello", NOW))
    [frame] = messages(tab)
    assert frame == {"data": "hello", "event": "ev", "id": "id-1", "pipe": "msg"}
    assert [m.id for m in queued(hub, 1, 4)] == ["id-1"] and hub.state.queue_size(1, 4) == (1, 5)
    ack(hub, tab, ["nonsense", "id-1"])
    assert queued(hub, 1, 4) == [] and hub.state.queue_size(1, 4) == (0, 0)
    assert hub.personal.feeds == {}  # nothing in flight: no per-user state is kept
    ack(hub, tab, ["id-1"])  # again: nothing left to delete, nothing stored
    assert hub.state.queue_size(1, 4) == (0, 0)


def test_a_session_without_the_capability_cannot_acknowledge() -> None:
    hub = make_hub()
    tab = online(hub, session(4))
    effects = handle_command(hub, tab, "ack\nid-1", NOW)
    [error] = effects
    assert isinstance(error, Deliver) and isinstance(error.frame, bytes) and b"Unknown command" in error.frame


def test_an_unacknowledged_message_is_sent_again_on_the_next_connection_only() -> None:
    hub = make_hub()
    first = online(hub, session(4, ACKS))
    apply(hub, hub.send_to_user(1, 4, "ev", "m1", NOW))
    second = online(hub, session(4, ACKS))  # a second tab: gets what the first did not acknowledge
    assert [f["id"] for f in messages(second)] == ["id-1"] and messages(second)[0]["fromQueue"] is True
    assert len(messages(first)) == 1  # never twice to one session
    apply(hub, hub.disconnect(first, NOW))
    apply(hub, hub.disconnect(second, NOW))
    assert [m.id for m in queued(hub, 1, 4)] == ["id-1"]  # still queued: the next page load gets it
    third = online(hub, session(4, ACKS))
    assert [f["id"] for f in messages(third)] == ["id-1"]
    ack(hub, third, ["id-1"])
    fourth = online(hub, session(4, ACKS))
    assert messages(fourth) == [] and queued(hub, 1, 4) == []


def test_one_ack_of_one_session_is_enough_for_all_sessions_of_the_user() -> None:
    hub = make_hub()
    tabs = [online(hub, session(4, ACKS)) for _ in range(2)]
    legacy = online(hub, session(4))
    apply(hub, hub.send_to_user(1, 4, "ev", "it's", NOW))
    assert all(len(messages(t)) == 1 for t in tabs)
    assert legacy.frames[-1] == _frames.user_frame("ev", "it's")  # CppComet's frame, byte for byte
    ack(hub, tabs[1], ["id-1"])
    assert hub.personal.ack(tabs[0], ["id-1"]) == []  # the other tab's ack of the same id: deleted once
    assert queued(hub, 1, 4) == [] and hub.state.queue_size(1, 4) == (0, 0)


def test_a_user_with_sessions_without_acks_only_behaves_as_before() -> None:
    """Nothing queued: the frame goes out at once, unstored (CppComet's cost and frame)."""
    hub = make_hub()
    tab = online(hub, session(4))
    effects = hub.send_to_user(1, 4, "ev", "hi", NOW)
    assert [type(e) for e in effects] == [Deliver]
    apply(hub, effects)
    assert tab.frames == [_frames.user_frame("ev", "hi")]


def test_messages_written_to_sessions_without_acks_leave_the_queue() -> None:
    hub = make_hub()
    for i in range(3):
        apply(hub, hub.send_to_user(1, 4, "ev", f"q{i}", NOW))
    tab = online(hub, session(4))
    assert [f["data"] for f in messages(tab)] == ["q0", "q1", "q2"]
    assert tab.frames[0] == _frames.queued_user_frame("ev", "q0", NOW)
    assert queued(hub, 1, 4) == [] and hub.state.queue_size(1, 4) == (0, 0)


def test_when_the_last_ack_session_leaves_what_the_others_got_is_delivered() -> None:
    hub = make_hub()
    capable, legacy = online(hub, session(4, ACKS)), online(hub, session(4))
    apply(hub, hub.send_to_user(1, 4, "ev", "m", NOW))
    assert len(queued(hub, 1, 4)) == 1
    apply(hub, hub.disconnect(capable, NOW))
    assert queued(hub, 1, 4) == [] and len(messages(legacy)) == 1


def test_a_backlog_goes_out_a_page_at_a_time_as_acks_come() -> None:
    hub = make_hub()
    total = 2 * PAGE + 50
    for i in range(total):
        apply(hub, hub.send_to_user(1, 4, "ev", f"m{i}", NOW))
    tab = online(hub, session(4, ACKS), load=False)
    read(hub)
    assert len(messages(tab)) == PAGE  # one page in flight, then nothing until acks
    assert queues(hub).loads == []
    while len(messages(tab)) < total:
        sent = [f["id"] for f in messages(tab)]
        ack(hub, tab, sent[-PAGE:], load=False)
        read(hub)
    got = messages(tab)
    assert [f["data"] for f in got] == [f"m{i}" for i in range(total)]  # in order, each once
    ack(hub, tab, [f["id"] for f in got[-PAGE:]])
    assert queued(hub, 1, 4) == []


def test_a_backlog_to_sessions_without_acks_waits_for_their_outboxes_to_drain() -> None:
    hub = make_hub()
    for i in range(PAGE + 10):
        apply(hub, hub.send_to_user(1, 4, "ev", f"m{i}", NOW))
    tab = online(hub, session(4), load=False)
    [first] = queues(hub).loads
    assert first.drain == (tab,)  # the engine reads the page once this session has sent its frames
    read(hub)
    assert len(messages(tab)) == PAGE + 10 and queued(hub, 1, 4) == []


def test_a_message_stored_while_a_page_is_read_comes_after_the_page() -> None:
    hub = make_hub()
    apply(hub, hub.send_to_user(1, 4, "ev", "old", NOW))
    tab = online(hub, session(4, ACKS), load=False)  # the page is asked for, not read yet
    apply(hub, hub.send_to_user(1, 4, "ev", "new", NOW), load=False)
    assert messages(tab) == []  # not ahead of the page
    read(hub)
    assert [f["data"] for f in messages(tab)] == ["old", "new"]


def test_a_refused_ack_leaves_the_message_queued_for_the_next_session() -> None:
    hub = make_hub()
    tab = online(hub, session(4, ACKS))
    apply(hub, hub.send_to_user(1, 4, "ev", "m", NOW))
    [persist] = hub.personal.ack(tab, ["id-1"])
    assert isinstance(persist, Persist) and isinstance(persist.records[0], DeleteQueued)
    hub.settle(persist.records, False)
    apply(hub, hub.disconnect(tab, NOW))
    again = online(hub, session(4, ACKS))
    assert [f["data"] for f in messages(again)] == ["m"]


def test_the_queue_bound_counts_stored_and_in_flight_messages() -> None:
    hub = make_hub(max_queue_messages=3, max_queue_bytes=1000)
    apply(hub, hub.send_to_user(1, 4, "ev", "a", NOW))
    in_flight = hub.send_to_user(1, 4, "ev", "b", NOW) + hub.send_to_user(1, 4, "ev", "c", NOW)
    with pytest.raises(QueueFull, match="user 4 is full"):
        hub.send_to_user(1, 4, "ev", "d", NOW)
    hub.settle([r for e in in_flight if isinstance(e, Persist) for r in e.records], False)  # refused: room again
    apply(hub, hub.send_to_user(1, 4, "ev", "e", NOW))
    with pytest.raises(QueueFull):
        hub.send_to_user(1, 4, "ev", "x" * 999, NOW)  # bytes: 2 stored + 999 > 1000
    apply(hub, hub.send_to_user(1, 5, "ev", "x" * 1000, NOW))  # another user's queue is its own


def test_a_retried_message_with_the_same_key_is_dropped() -> None:
    hub = make_hub()
    assert [type(e) for e in hub.send_to_user(1, 4, "ev", "m", NOW, key="k1")] == [Persist]
    apply(hub, [])
    assert hub.send_to_user(1, 4, "ev", "m", NOW, key="k1") == []
    records = apply(hub, hub.send_to_user(1, 4, "ev", "m", NOW, key="k2"))
    assert [r.entry.id for r in records if isinstance(r, QueueMessage)] == ["k2"]


def test_expired_messages_are_deleted_unsent() -> None:
    hub = make_hub(queue_ttl=60)
    apply(hub, hub.send_to_user(1, 4, "ev", "stale", NOW - 61))
    apply(hub, hub.send_to_user(1, 4, "ev", "fresh", NOW - 59))
    tab = online(hub, session(4, ACKS))
    assert [f["data"] for f in messages(tab)] == ["fresh"]
    assert [m.message for m in queued(hub, 1, 4)] == ["fresh"]


def test_a_page_for_a_user_who_left_is_dropped() -> None:
    hub = make_hub()
    apply(hub, hub.send_to_user(1, 4, "ev", "m", NOW))
    tab = online(hub, session(4, ACKS), load=False)
    [load] = queues(hub).loads
    apply(hub, hub.disconnect(tab, NOW))
    assert hub.personal.page(load, queues(hub).page(load), NOW) == []
    assert len(queued(hub, 1, 4)) == 1


def test_a_key_whose_message_was_refused_may_be_retried() -> None:
    """Disk full: the backend's retry with the same key must be stored, not dropped as a duplicate."""
    hub = make_hub()
    first = hub.send_to_user(1, 4, "ev", "m", NOW, key="k1")
    assert hub.send_to_user(1, 4, "ev", "m", NOW, key="k1") == []  # a concurrent retry: still in flight
    hub.settle([r for e in first if isinstance(e, Persist) for r in e.records], False)
    records = apply(hub, hub.send_to_user(1, 4, "ev", "m", NOW, key="k1"))
    assert [r.entry.id for r in records if isinstance(r, QueueMessage)] == ["k1"]
    assert hub.send_to_user(1, 4, "ev", "m", NOW, key="k1") == []  # stored: remembered


def test_a_page_of_large_messages_is_cut_to_fit_a_sessions_send_bound() -> None:
    hub = make_hub()
    big = "x" * (PAGE_BYTES // 3 - 1)  # with its digit: three fill a page
    for i in range(10):
        apply(hub, hub.send_to_user(1, 4, "ev", f"{i}{big}", NOW))
    tab = online(hub, session(4, ACKS), load=False)
    read(hub)
    assert len(messages(tab)) == 3  # at most PAGE_BYTES of text per page
    while len(messages(tab)) < 10:
        ack(hub, tab, [f["id"] for f in messages(tab)][-3:], load=False)
        read(hub)
    assert [f["data"][0] for f in messages(tab)] == [str(i) for i in range(10)]


def test_a_cluster_node_reads_a_page_at_every_login() -> None:
    """Two nodes may both delete a message both wrote to sessions without acks: the count every node
    keeps can be low, so a login there reads the store rather than trust a count of zero."""
    single, node = make_hub(), make_hub(node_id="A")
    online(single, session(4), load=False)
    online(node, session(4), load=False)
    assert queues(single).loads == [] and [load.after for load in queues(node).loads] == [0]


def test_a_keyed_message_to_a_stock_library_user_is_stored_so_a_retry_is_dropped() -> None:
    hub = make_hub()
    tab = online(hub, session(4))
    unkeyed = hub.send_to_user(1, 4, "ev", "m", NOW)
    assert [type(e) for e in unkeyed] == [Deliver]  # straight out, unstored
    apply(hub, unkeyed)
    records = apply(hub, hub.send_to_user(1, 4, "ev", "k", NOW, key="k1"))
    assert [type(r).__name__ for r in records] == ["QueueMessage", "DeleteQueued"]
    assert hub.send_to_user(1, 4, "ev", "k", NOW, key="k1") == []
    assert [f.get("data") for f in decoded(tab)] == ["m", "k"]
