"""Unit and stateful tests of the sans-IO Hub: fan-out, presence, queues, history, auth, restore.

The hub returns effects instead of doing I/O; these tests apply them like the
engine does (``_helpers.apply``) and look at what each ListSubscriber received.
The stateful test drives random connect/subscribe/publish/send/disconnect
sequences against a simple model: every subscriber of a channel gets each
publish exactly once and in order, presence counts and users_time match.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from cometql.hub import MAX_HISTORY, MAX_USER_CONNECTIONS, ConnInfo, Deliver, Disconnect, ListSubscriber, Persist

from ._helpers import NOW, apply, decoded, make_hub, queued, subscriptions

_conn_ids = itertools.count(1)


def session(dev: int = 1, user: int = 0, uuid: str = "") -> ListSubscriber:
    return ListSubscriber(next(_conn_ids), dev, user, ConnInfo(uuid=uuid))


def online(hub, sub: ListSubscriber, *channels: str) -> ListSubscriber:
    apply(hub, hub.connect(sub, NOW))
    apply(hub, hub.subscribe(sub, channels, NOW))
    return sub


# ---------------------------------------------------------------- publishing


def test_publish_reaches_each_subscriber_of_the_channel_once() -> None:
    hub = make_hub()
    a, b = online(hub, session(), "chat", "news"), online(hub, session(), "chat")
    other_channel, other_dev = online(hub, session(), "news"), online(hub, session(dev=2), "chat")
    effects = hub.publish(1, "chat", "ev", "hello", NOW)
    assert [type(e) for e in effects] == [Deliver]
    assert set(effects[0].targets) == {a, b}
    apply(hub, effects)
    frame = {"data": "hello", "event": "ev", "message_send_time": NOW, "pipe": "chat"}
    assert decoded(a) == decoded(b) == [frame]
    assert other_channel.frames == other_dev.frames == []


def test_publish_without_subscribers_or_history_has_no_effect() -> None:
    assert make_hub().publish(1, "nobody", "e", "m", NOW) == []


def test_subscribe_replaces_the_channel_set() -> None:
    hub = make_hub()
    sub = online(hub, session(), "a_chan", "b_chan")
    apply(hub, hub.subscribe(sub, ["b_chan", "c_chan", "c_chan"], NOW))
    assert subscriptions(hub, sub) == ["b_chan", "c_chan"]
    assert [hub.channel_count(1, c) for c in ("a_chan", "b_chan", "c_chan")] == [0, 1, 1]
    assert sorted(hub.channels(1)) == ["b_chan", "c_chan"]


def test_private_channels_are_skipped_for_anonymous_sessions() -> None:
    hub = make_hub()
    anon, user = online(hub, session(), "private_x", "open"), online(hub, session(user=3), "private_x")
    assert subscriptions(hub, anon) == ["open"]
    assert subscriptions(hub, user) == ["private_x"]


def test_track_channels_announce_joins_and_leaves() -> None:
    hub = make_hub()
    watcher = online(hub, session(user=1, uuid="w"), "track_room")
    joiner = online(hub, session(user=2, uuid="j"), "track_room")
    apply(hub, hub.disconnect(joiner, NOW + 5))
    events = [(f["event"], f["data"]) for f in decoded(watcher)]
    member = {"user_id": 2, "uuid": "j"}
    assert events[-2:] == [("subscription", member), ("unsubscription", member)]


# ------------------------------------------------------------------- history


def test_trust_channels_keep_history_up_to_the_maximum() -> None:
    hub = make_hub()
    assert hub.state.history_keep(1, "trust_x") == MAX_HISTORY
    assert hub.state.history_keep(1, "plain") == 0
    apply(hub, hub.publish(1, "trust_x", "", "m", NOW))
    [entry] = hub.state.history(1, "trust_x")
    assert (entry.id, entry.time, entry.event, entry.message, entry.user_id) == ("id-1", NOW, "undefined", "m", 0)


@pytest.mark.parametrize("length, stored", [(3, 3), (5000, MAX_HISTORY), (-1, 0), (0, 0)])
def test_pipe_settings_are_clamped(length: int, stored: int) -> None:
    hub = make_hub()
    apply(hub, hub.set_pipe_settings(1, "chan", length))
    assert hub.state.pipe_settings(1, "chan") == stored


def test_history_keeps_newest_n_in_insertion_order() -> None:
    hub = make_hub()
    apply(hub, hub.set_pipe_settings(1, "chan", 3))
    for i in range(7):
        apply(hub, hub.publish(1, "chan", "e", f"m{i}", NOW))  # same second throughout
    assert [e.message for e in hub.state.history(1, "chan")] == ["m4", "m5", "m6"]


def test_deleting_settings_clears_history_and_ids_delete_single_messages() -> None:
    hub = make_hub()
    apply(hub, hub.set_pipe_settings(1, "chan", 10))
    for i in range(3):
        apply(hub, hub.publish(1, "chan", "e", f"m{i}", NOW))
    apply(hub, hub.delete_history_ids(1, ["id-2"]))
    assert [e.message for e in hub.state.history(1, "chan")] == ["m0", "m2"]
    apply(hub, hub.delete_pipe_settings(1, ["chan"]))
    assert (hub.state.history(1, "chan"), hub.state.pipe_settings(1, "chan")) == ([], None)


# ------------------------------------------------------------- user messages


def test_send_to_online_user_reaches_every_session() -> None:
    hub = make_hub()
    tabs = [online(hub, session(user=4)) for _ in range(3)]
    stranger = online(hub, session(user=5))
    apply(hub, hub.send_to_user(1, 4, "ev", "hi", NOW))
    assert all(decoded(t)[-1] == {"data": "hi", "event": "ev", "pipe": "msg"} for t in tabs)
    assert stranger.frames == []
    assert queued(hub, 1, 4) == []


def test_offline_user_gets_the_whole_queue_on_connect_and_it_is_emptied() -> None:
    hub = make_hub()
    for i in range(15):
        records = apply(hub, hub.send_to_user(1, 4, "ev", f"q{i}", NOW + i))
        assert len(records) == 1  # queued durably
    tab = session(user=4)
    records = apply(hub, hub.connect(tab, NOW + 100))
    got = [f for f in decoded(tab) if f["pipe"] == "msg"]
    assert [(f["data"], f["fromQueue"], f["message_send_time"]) for f in got] == [
        (f"q{i}", True, NOW + i) for i in range(15)
    ]
    assert queued(hub, 1, 4) == []
    [delete] = [r for r in records if type(r).__name__ == "DeleteQueued"]
    assert delete.ids == tuple(f"id-{i + 1}" for i in range(15))


def test_session_limit_per_user() -> None:
    hub = make_hub()
    tabs = [online(hub, session(user=6)) for _ in range(MAX_USER_CONNECTIONS)]
    extra = session(user=6)
    effects = hub.connect(extra, NOW)
    assert [type(e) for e in effects] == [Disconnect] and effects[0].targets == (extra,)
    assert all(t.closed is None for t in tabs)
    [deliver] = hub.send_to_user(1, 6, "e", "m", NOW)  # the user's sessions: the first 16 only
    assert isinstance(deliver, Deliver) and deliver.targets == tuple(tabs)


# ----------------------------------------------------------------- presence


def test_users_time_rules() -> None:
    hub = make_hub()
    assert hub.user_time(1, 7) == -1
    a, b = online(hub, session(user=7)), online(hub, session(user=7))
    online(hub, session())  # anonymous: no users_time
    assert hub.user_time(1, 7) == 0
    apply(hub, hub.disconnect(a, NOW + 10))
    assert hub.user_time(1, 7) == 0
    apply(hub, hub.disconnect(b, NOW + 20))
    assert hub.user_time(1, 7) == NOW + 20
    assert hub.user_time(2, 7) == -1
    assert hub.known_users(1) == [7]


def test_status_events_on_first_connect_and_last_disconnect() -> None:
    hub = make_hub()
    watcher = online(hub, session(), "user_status_8")
    a = online(hub, session(user=8))
    b = online(hub, session(user=8))
    apply(hub, hub.disconnect(a, NOW))
    apply(hub, hub.disconnect(b, NOW))
    assert [(f["event"], f["data"]) for f in decoded(watcher)] == [("online", "online"), ("offline", "offline")]


def test_status_events_can_be_switched_off() -> None:
    hub = make_hub(send_user_online_events=False, send_user_offline_events=False)
    watcher = online(hub, session(), "user_status_8")
    apply(hub, hub.disconnect(online(hub, session(user=8)), NOW))
    assert watcher.frames == []


def test_disconnect_is_idempotent() -> None:
    hub = make_hub()
    sub = online(hub, session(user=9), "chan")
    apply(hub, hub.disconnect(sub, NOW))
    assert hub.disconnect(sub, NOW) == []
    assert (hub.sessions(1), hub.channel_count(1, "chan")) == (0, 0)


# --------------------------------------------------------------------- auth


def test_delete_auth_removes_the_hash_and_closes_the_users_sessions() -> None:
    hub = make_hub()
    apply(hub, hub.set_auth(1, 3, "h"))
    tab, other = online(hub, session(user=3)), online(hub, session(user=4))
    apply(hub, hub.delete_auth(1, [3]))
    assert hub.state.auth_hash(1, 3) is None
    assert tab.closed is not None and other.closed is None


def test_authorize_with_hash() -> None:
    hub = make_hub()
    apply(hub, hub.set_auth(1, 3, "h"))
    assert hub.authorize(1, 3, "h", NOW) == (True, [])
    assert hub.authorize(1, 3, "x", NOW)[0] is False
    assert hub.authorize(2, 3, "h", NOW)[0] is False
    assert hub.authorize(1, 0, "h", NOW)[0] is False


# ------------------------------------------------------------------ restore


def test_restore_from_persisted_records_rebuilds_durable_state() -> None:
    hub = make_hub()
    records = []
    records += apply(hub, hub.set_auth(1, 3, "h"))
    records += apply(hub, hub.set_user_data(1, 3, "data"))
    records += apply(hub, hub.revoke_token(1, "tok", NOW))
    records += apply(hub, hub.set_pipe_settings(1, "chan", 2))
    for i in range(3):
        records += apply(hub, hub.publish(1, "chan", "e", f"m{i}", NOW))
    records += apply(hub, hub.send_to_user(1, 5, "e", "queued", NOW))
    tab = session(user=6)
    records += apply(hub, hub.connect(tab, NOW))
    records += apply(hub, hub.disconnect(tab, NOW + 3))
    fresh = make_hub()
    fresh.restore(records)
    assert fresh.state.auth_hash(1, 3) == "h"
    assert fresh.state.user_data(1, 3) == "data"
    assert fresh.state.revoked_tokens(1) == ["tok"]
    assert fresh.state.pipe_settings(1, "chan") == 2
    assert fresh.state.history(1, "chan") == hub.state.history(1, "chan")
    assert fresh.state.queue_size(1, 5) == hub.state.queue_size(1, 5) == (1, len("queued"))
    assert fresh.user_time(1, 6) == NOW + 3


def test_a_persist_effect_is_applied_in_memory_only_once_stored() -> None:
    hub = make_hub()
    effects = hub.set_auth(1, 3, "h")
    assert [type(e) for e in effects] == [Persist]
    assert hub.state.auth_hash(1, 3) is None
    hub.settle(effects[0].records, True)
    assert hub.state.auth_hash(1, 3) == "h"


# ---------------------------------------------------------------- stateful

CHANNELS = ["ch_a", "ch_b", "ch_c", "private_p"]
DEVS = [1, 2]
USERS = [0, 1, 2, 3]


class HubMachine(RuleBasedStateMachine):
    """Random sessions against a model of who should receive what."""

    @initialize()
    def setup(self) -> None:
        self.hub = make_hub()
        self.now = NOW
        self.live: list[ListSubscriber] = []
        self.closed: list[ListSubscriber] = []
        self.subs: dict[int, set[str]] = {}
        self.expected: dict[int, list[tuple[str, str, bool]]] = defaultdict(list)
        self.queues: dict[tuple[int, int], list[str]] = defaultdict(list)
        self.last_seen: dict[tuple[int, int], int] = {}
        self.counter = itertools.count()

    def sessions_of(self, dev: int, user: int) -> list[ListSubscriber]:
        return [s for s in self.live if (s.dev_id, s.user_id) == (dev, user)]

    @rule()
    def tick(self) -> None:
        self.now += 1

    @precondition(lambda self: len(self.live) < 12)
    @rule(dev=st.sampled_from(DEVS), user=st.sampled_from(USERS))
    def connect(self, dev: int, user: int) -> None:
        sub = session(dev, user)
        apply(self.hub, self.hub.connect(sub, self.now))
        self.live.append(sub)
        self.subs[sub.conn_id] = set()
        if user > 0:
            self.expected[sub.conn_id] += [("msg", m, True) for m in self.queues.pop((dev, user), [])]

    @precondition(lambda self: self.live)
    @rule(data=st.data(), channels=st.lists(st.sampled_from(CHANNELS), max_size=4))
    def subscribe(self, data: st.DataObject, channels: list[str]) -> None:
        sub = data.draw(st.sampled_from(self.live))
        apply(self.hub, self.hub.subscribe(sub, channels, self.now))
        self.subs[sub.conn_id] = {c for c in channels if sub.user_id > 0 or not c.startswith("private_")}

    @rule(dev=st.sampled_from(DEVS), channel=st.sampled_from(CHANNELS))
    def publish(self, dev: int, channel: str) -> None:
        message = f"p{next(self.counter)}"
        apply(self.hub, self.hub.publish(dev, channel, "ev", message, self.now))
        for s in self.live:
            if s.dev_id == dev and channel in self.subs[s.conn_id]:
                self.expected[s.conn_id].append((channel, message, False))

    @rule(dev=st.sampled_from(DEVS), user=st.sampled_from(USERS[1:]))
    def send_to_user(self, dev: int, user: int) -> None:
        message = f"u{next(self.counter)}"
        apply(self.hub, self.hub.send_to_user(dev, user, "ev", message, self.now))
        targets = self.sessions_of(dev, user)
        for s in targets:
            self.expected[s.conn_id].append(("msg", message, False))
        if not targets:
            self.queues[(dev, user)].append(message)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        sub = data.draw(st.sampled_from(self.live))
        apply(self.hub, self.hub.disconnect(sub, self.now))
        self.live.remove(sub)
        self.closed.append(sub)
        if sub.user_id > 0 and not self.sessions_of(sub.dev_id, sub.user_id):
            self.last_seen[(sub.dev_id, sub.user_id)] = self.now

    @invariant()
    def each_session_got_exactly_its_messages_in_order(self) -> None:
        for s in self.live + self.closed:
            got = [(f["pipe"], f["data"], f.get("fromQueue", False)) for f in decoded(s)
                   if f["pipe"] in CHANNELS or f["pipe"] == "msg"]
            assert got == self.expected[s.conn_id]

    @invariant()
    def presence_counts_match(self) -> None:
        for dev in DEVS:
            for channel in CHANNELS:
                want = sum(1 for s in self.live if s.dev_id == dev and channel in self.subs[s.conn_id])
                assert self.hub.channel_count(dev, channel) == want
                assert len(self.hub.channel_members(dev, channel)) == want
            assert self.hub.sessions(dev) == sum(1 for s in self.live if s.dev_id == dev)

    @invariant()
    def users_time_matches(self) -> None:
        for dev in DEVS:
            for user in USERS[1:]:
                if self.sessions_of(dev, user):
                    want = 0
                else:
                    want = self.last_seen.get((dev, user), -1)
                assert self.hub.user_time(dev, user) == want

    @invariant()
    def queues_match(self) -> None:
        for dev in DEVS:
            for user in USERS[1:]:
                assert [m.message for m in queued(self.hub, dev, user)] == self.queues.get((dev, user), [])


TestHubMachine = HubMachine.TestCase
TestHubMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
