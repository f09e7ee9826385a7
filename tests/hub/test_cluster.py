"""The hub as one node of a cluster, without Redis: three hubs wired by an in-memory bus.

``Cluster`` does here what ``cometql.cluster`` (bus writer and follower) does for real:
every ``Broadcast`` and every persisted record of one hub reaches the other
hubs, in order, through ``remote_changes`` (the follower's own code: records and
events in stream order). That makes the
cluster rules (who delivers, who queues, who is told online/offline) testable
exhaustively and deterministically.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cometql.hub import (
    EVENT_TYPES,
    MAX_USER_CONNECTIONS,
    Broadcast,
    ConnInfo,
    Deliver,
    Effect,
    ListSubscriber,
    Persist,
    Published,
    Record,
    RemoteSession,
    SessionOpened,
    UserMessage,
)
from cometql.hub.records import AppendHistory, HistoryEntry, QueuedMessage, QueueMessage, SetLastSeen
from cometql.store import codec

from ._helpers import NOW, apply, decoded, make_hub, queued, share

_conn_ids = itertools.count(1)


class Cluster:
    """Hubs A, B, C and a FIFO bus between them; ``run`` applies effects like the engine would."""

    def __init__(self, *names: str) -> None:
        self.hubs = {n: make_hub(node_id=n) for n in names}
        share(*self.hubs.values())  # one store (Redis): one set of queues
        self.bus: deque[tuple[str, list[Any]]] = deque()
        self.stored: list[Record] = []
        self.shipped: list[list[Any]] = []  # every bus entry, in stream order
        self._flushing = False

    def run(self, node: str, effects: list[Effect]) -> None:
        stored = apply(self.hubs[node], effects)  # deliveries and closes, as the engine does
        self.stored.extend(stored)
        shared = [v for e in effects if isinstance(e, (Persist, Broadcast))
                  for v in (e.records if isinstance(e, Persist) else e.events)]
        shared += stored[len([v for v in shared if not isinstance(v, tuple(EVENT_TYPES))]):]  # from pages read
        if shared:
            self.bus.append((node, shared))
            self.shipped.append(shared)
        self.flush()

    def flush(self) -> None:
        """Deliver bus entries in one total order (the stream's): every hub sees entry n before n+1."""
        if self._flushing:
            return
        self._flushing = True
        try:
            while self.bus:
                origin, values = self.bus.popleft()
                for name, hub in self.hubs.items():
                    if name != origin:
                        self.run(name, hub.remote_changes(origin, values, NOW))
        finally:
            self._flushing = False

    def browser(self, node: str, dev: int = 1, user: int = 0, *channels: str, uuid: str = "") -> ListSubscriber:
        sub = ListSubscriber(next(_conn_ids), dev, user, ConnInfo(uuid=uuid or f"uuid{user}"))
        hub = self.hubs[node]
        self.run(node, hub.connect(sub, NOW))
        if channels:
            self.run(node, hub.subscribe(sub, channels, NOW))
        return sub

    def leave(self, node: str, sub: ListSubscriber) -> None:
        self.run(node, self.hubs[node].disconnect(sub, NOW + 5))


@pytest.fixture
def c() -> Cluster:
    return Cluster("A", "B", "C")


def pipes(sub: ListSubscriber) -> list[tuple[str, str, Any]]:
    return [(f.get("pipe", ""), f["event"], f["data"]) for f in decoded(sub)]


def test_a_single_node_hub_never_broadcasts() -> None:
    hub = make_hub()
    sub = ListSubscriber(1, 1, 5)
    effects = hub.connect(sub, NOW) + hub.subscribe(sub, ["x"], NOW) + hub.publish(1, "x", "e", "m", NOW)
    effects += hub.send_to_user(1, 6, "e", "m", NOW) + hub.disconnect(sub, NOW)
    assert not [e for e in effects if isinstance(e, Broadcast)]


def test_publish_reaches_every_nodes_subscribers_exactly_once(c: Cluster) -> None:
    subs = [c.browser(n, 1, 0, "chat") for n in ("A", "B", "C", "C")]
    other_dev = c.browser("B", 2, 0, "chat")
    c.run("A", c.hubs["A"].publish(1, "chat", "ev", "hi", NOW))
    for sub in subs:
        assert pipes(sub) == [("chat", "ev", "hi")]
    assert other_dev.frames == []


def test_counts_and_members_are_cluster_wide(c: Cluster) -> None:
    c.browser("A", 1, 0, "room")
    c.browser("B", 1, 4, "room", "side", uuid="u-four")
    for hub in c.hubs.values():
        assert hub.channel_count(1, "room") == 2
        assert sorted(hub.channels(1)) == ["room", "side"]
        members = hub.channel_members(1, "room")
        assert sorted(s.user_id for s in members) == [0, 4]
        for s in members:  # who another node's session is: in its node's session hash (users_in_pipes reads it)
            remote = isinstance(s, RemoteSession)
            assert (s.info.uuid, getattr(s, "described", True)) == (("", False) if remote else
                                                                    ({0: "uuid0", 4: "u-four"}[s.user_id], True))
        assert hub.user_time(1, 4) == 0
        assert 4 in hub.known_users(1)


def test_user_message_is_stored_then_delivered_by_the_nodes_holding_the_user(c: Cluster) -> None:
    on_b = c.browser("B", 1, 7)
    on_c = c.browser("C", 1, 7)
    effects = c.hubs["A"].send_to_user(1, 7, "note", "hello", NOW)
    [persist] = effects
    assert isinstance(persist, Persist) and isinstance(persist.records[0], QueueMessage)
    c.run("A", effects)
    assert decoded(on_b) == decoded(on_c) == [{"data": "hello", "event": "note", "pipe": "msg"}]
    assert queued(c.hubs["A"], 1, 7) == []  # written to sessions without acks: delivered
    assert all(h.state.queue_size(1, 7) == (0, 0) for h in c.hubs.values())


def test_a_user_offline_everywhere_gets_the_message_queued_once_then_delivered_on_any_node(c: Cluster) -> None:
    c.run("A", c.hubs["A"].send_to_user(1, 8, "q", "while away", NOW))
    assert [type(r) for r in c.stored] == [QueueMessage]
    assert all(h.state.queue_size(1, 8) == (1, len("while away")) for h in c.hubs.values())
    user = c.browser("C", 1, 8)
    assert [(f["data"], f["fromQueue"]) for f in decoded(user)] == [("while away", True)]
    assert all(h.state.queue_size(1, 8) == (0, 0) for h in c.hubs.values())
    assert queued(c.hubs["A"], 1, 8) == []


def test_a_user_who_left_the_target_node_meanwhile_gets_the_message_queued(c: Cluster) -> None:
    user = c.browser("B", 1, 9)
    effects = c.hubs["A"].send_to_user(1, 9, "late", "m", NOW)  # A still sees the user on B ...
    c.leave("B", user)  # ... who leaves before the event arrives
    c.run("A", effects)
    assert [q.message for q in queued(c.hubs["A"], 1, 9)] == ["m"]


def test_a_message_queued_while_the_user_was_connecting_is_delivered_at_once(c: Cluster) -> None:
    hub_b = c.hubs["B"]
    user = ListSubscriber(next(_conn_ids), 1, 10)
    apply(hub_b, hub_b.connect(user, NOW))  # B's connect not yet shipped: A believes the user is offline
    c.run("A", c.hubs["A"].send_to_user(1, 10, "e", "race", NOW))
    assert [f["data"] for f in decoded(user)] == ["race"]
    assert hub_b.state.queue_size(1, 10) == c.hubs["C"].state.queue_size(1, 10) == (0, 0)


def test_online_and_offline_events_follow_the_first_and_last_session_in_the_cluster(c: Cluster) -> None:
    watchers = [c.browser(n, 1, 0, "user_status_3") for n in ("A", "B", "C")]
    s1 = c.browser("A", 1, 3)
    s2 = c.browser("B", 1, 3)  # a second session elsewhere: no second "online"
    c.leave("A", s1)  # one session left: still online
    for w in watchers:
        assert [f["event"] for f in decoded(w)] == ["online"]
    c.leave("B", s2)
    for w in watchers:
        assert [f["event"] for f in decoded(w)] == ["online", "offline"]
    assert all(h.user_time(1, 3) == NOW + 5 for h in c.hubs.values())
    assert [r for r in c.stored if isinstance(r, SetLastSeen)] == [SetLastSeen(1, 3, NOW + 5)]  # stored once


def test_track_events_reach_members_on_every_node(c: Cluster) -> None:
    on_a = c.browser("A", 1, 0, "track_t")
    on_c = c.browser("C", 1, 0, "track_t")
    assert [f["data"]["uuid"] for f in decoded(on_a)] == ["uuid0"]  # on_c's arrival, from another node
    on_a.frames.clear()
    joiner = c.browser("B", 1, 6, "track_t", uuid="six")
    c.leave("B", joiner)
    for member in (on_a, on_c):
        assert [(f["event"], f["data"]) for f in decoded(member)] == [
            ("subscription", {"user_id": 6, "uuid": "six"}), ("unsubscription", {"user_id": 6, "uuid": "six"})]


def test_the_session_limit_per_user_counts_every_node(c: Cluster) -> None:
    for i in range(MAX_USER_CONNECTIONS):
        c.browser("ABC"[i % 3], 1, 12)
    extra = c.browser("A", 1, 12)
    assert extra.closed == "too many sessions for this user"


def test_a_refused_session_leaves_no_trace_on_a_node_without_the_users_sessions(c: Cluster) -> None:
    """All 16 of user 14's sessions are on B; one refused on A must not count them as a user of A."""
    for _ in range(MAX_USER_CONNECTIONS):
        c.browser("B", 1, 14)
    users_before = c.hubs["A"].statistics().authorized_users
    extra = c.browser("A", 1, 14)
    assert extra.closed == "too many sessions for this user"
    assert c.hubs["A"].statistics().authorized_users == users_before


def test_web_publish_reports_subscribers_on_every_node_and_skips_the_sender(c: Cluster) -> None:
    sender = c.browser("A", 1, 2, "web_room")
    others = [c.browser(n, 1, 0, "web_room") for n in ("A", "B", "C")]
    delivered, effects = c.hubs["A"].web_publish(sender, "web_room", "say", "hi", 2, NOW)
    assert delivered == 3
    c.run("A", effects)
    assert not any(b'"say"' in f for f in sender.frames)
    for other in others:
        assert pipes(other) == [("web_room", "say", "hi")]


def test_removing_a_users_auth_closes_their_sessions_on_every_node(c: Cluster) -> None:
    c.run("A", c.hubs["A"].set_auth(1, 13, "h"))
    sessions = [c.browser(n, 1, 13) for n in ("A", "B", "C")]
    c.run("C", c.hubs["C"].delete_auth(1, [13]))
    assert [s.closed for s in sessions] == ["authorization removed"] * 3
    assert all(h.state.auth_hash(1, 13) is None for h in c.hubs.values())


def test_a_dropped_node_takes_its_sessions_away_and_its_users_go_offline(c: Cluster) -> None:
    watcher = c.browser("A", 1, 0, "user_status_14", "room")
    c.browser("B", 1, 14, "room")
    c.browser("B", 1, 0, "room")
    c.bus.clear()
    hub = c.hubs["A"]
    assert hub.channel_count(1, "room") == 3
    effects = hub.drop_node("B", NOW + 9)
    assert [r for e in effects if isinstance(e, Persist) for r in e.records] == [SetLastSeen(1, 14, NOW + 9)]
    c.run("A", effects)
    assert hub.channel_count(1, "room") == 1 and hub.user_time(1, 14) == NOW + 9
    assert [f["event"] for f in decoded(watcher)] == ["online", "offline"]
    assert hub.remote_nodes() == {}


def test_sync_node_is_idempotent_and_removes_what_is_gone(c: Cluster) -> None:
    hub = make_hub(node_id="X")
    watcher = ListSubscriber(next(_conn_ids), 1, 0)
    hub.connect(watcher, NOW)
    hub.subscribe(watcher, ["user_status_1", "user_status_2"], NOW)
    snapshot = [SessionOpened(1, 1, 1, "u1", channels=("a",)), SessionOpened(2, 1, 2, "u2")]
    effects = hub.sync_node("Y", snapshot, NOW)
    assert len([e for e in effects if isinstance(e, Deliver)]) == 2  # two users online
    assert hub.sync_node("Y", snapshot, NOW) == []  # the same again: nothing happens
    assert hub.remote_events("Y", snapshot, NOW) == []  # nor when the stream repeats the snapshot
    assert hub.sync_node("Y", snapshot[:1], NOW) != []  # user 2 left meanwhile: offline
    assert hub.remote_nodes() == {"Y": 1} and hub.channel_count(1, "a") == 1


def test_a_history_append_seen_twice_is_kept_once() -> None:
    hub = make_hub(node_id="A")
    entry = HistoryEntry("h1", NOW, "e", "m", 0)
    hub.remote_records([AppendHistory(1, "log", entry, 10)])
    hub.remote_records([AppendHistory(1, "log", entry, 10)])
    assert [e.id for e in hub.state.history(1, "log")] == [entry.id]


def test_remote_publish_is_not_published_back() -> None:
    hub = make_hub(node_id="A")
    sub = ListSubscriber(next(_conn_ids), 1, 0)
    hub.connect(sub, NOW)
    hub.subscribe(sub, ["x"], NOW)
    effects = hub.remote_events("B", [Published(1, "x", "e", "m", NOW, None)], NOW)
    assert [type(e) for e in effects] == [Deliver]


# ----------------------------------------------------------------------- codec

names = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=20)
ints = st.integers(-(2**40), 2**40)


@given(st.one_of(
    st.builds(Published, ints, names, names, names, ints, st.none() | ints),
    st.builds(UserMessage, ints, ints, names, names, ints, st.lists(names, max_size=3).map(tuple)),
    st.builds(SessionOpened, ints, ints, ints, names, names, names, names, names,
              st.lists(names, max_size=4).map(tuple)),
    st.builds(AppendHistory, ints, names, st.builds(HistoryEntry, names, ints, names, names, ints), ints),
))
def test_codec_round_trips_every_value(value: Any) -> None:
    assert codec.decode(codec.encode(value)) == value
    assert codec.decode_many(codec.encode_many([value, value])) == [value, value]


def test_codec_refuses_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="not a CometQL record"):
        codec.decode(b'["DropDatabase", 1]')
    with pytest.raises(ValueError, match="fields"):
        codec.decode(b'["SetAuth", 1, 2]')


def test_a_user_message_follows_a_user_who_moved_to_another_node_meanwhile(c: Cluster) -> None:
    on_b = c.browser("B", 1, 15)
    effects = c.hubs["A"].send_to_user(1, 15, "e", "follow me", NOW)  # A: the user is on B
    c.leave("B", on_b)
    on_c = c.browser("C", 1, 15)  # ... now on C, before A's event is read
    c.run("A", effects)
    assert [f["data"] for f in decoded(on_c)] == ["follow me"]
    assert all(h.state.queue_size(1, 15) == (0, 0) for h in c.hubs.values())


def test_only_the_first_target_node_requeues_a_message_for_a_user_gone_everywhere(c: Cluster) -> None:
    s_b, s_c = c.browser("B", 1, 16), c.browser("C", 1, 16)
    effects = c.hubs["A"].send_to_user(1, 16, "e", "once", NOW)
    c.leave("B", s_b)
    c.leave("C", s_c)
    c.run("A", effects)
    assert [q.message for q in queued(c.hubs["A"], 1, 16)] == ["once"]
    assert all(h.state.queue_size(1, 16) == (1, 4) for h in c.hubs.values())  # its size, known everywhere
    assert len([r for r in c.stored if isinstance(r, QueueMessage)]) == 1


def test_a_bus_entry_is_applied_in_stream_order_records_and_events_interleaved(c: Cluster) -> None:
    """One entry of A (a group commit: publish, a message queued for a user A thinks offline, publish)
    reaches B's session in A's order; applying all records and then all events would put the queued
    message first, and all events and then all records would put it last."""
    hub_b = c.hubs["B"]
    user = ListSubscriber(next(_conn_ids), 1, 17)
    apply(hub_b, hub_b.connect(user, NOW))  # B's connect and subscription not shipped: A thinks the user offline
    hub_b.subscribe(user, ["news"], NOW)
    hub_a = c.hubs["A"]
    entry = hub_a.publish(1, "news", "e", "one", NOW) + hub_a.send_to_user(1, 17, "e", "two", NOW)
    shipped = len(c.shipped)
    c.run("A", entry + hub_a.publish(1, "news", "e", "three", NOW))
    assert [type(v).__name__ for v in c.shipped[shipped]] == ["Published", "QueueMessage", "Published"]
    assert [(f["pipe"], f["data"]) for f in decoded(user)] == [("news", "one"), ("msg", "two"), ("news", "three")]


def test_remote_changes_applies_each_value_in_order() -> None:
    """The same rule without the cluster harness: a history append, a publish that follows it, a clear."""
    hub = make_hub(node_id="B")
    sub = ListSubscriber(next(_conn_ids), 1, 18)
    apply(hub, hub.connect(sub, NOW))  # (its login's page read of the queue, empty)
    hub.subscribe(sub, ["log"], NOW)
    entry = HistoryEntry("h-1", NOW, "e", "kept", 0)
    queued = QueuedMessage("q-1", NOW, "e", "queued")
    changes = [AppendHistory(1, "log", entry, 10), Published(1, "log", "e", "live", NOW, None),
               QueueMessage(1, 18, queued), Published(1, "log", "e", "after", NOW, None)]
    effects = hub.remote_changes("A", changes, NOW)
    apply(hub, effects)
    assert [f["data"] for f in decoded(sub)] == ["live", "queued", "after"]
    assert [e.id for e in hub.state.history(1, "log")] == [entry.id] and hub.state.queue_size(1, 18) == (0, 0)
