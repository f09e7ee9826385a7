"""``RemoteSessions``, the compact view of other nodes' sessions, against a naive model of it.

The view keeps one shared record per session and counts per channel instead of
an object per session and per-channel member sets (``_remote``, rule 1). The
model below is the old design, a full ``SessionOpened`` per session: whatever
sequence of bus events arrives (replays and snapshots included), both must give
the same counts, members, users per node, and the view must hold nothing once
every session is gone.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cometql.hub import SessionOpened
from cometql.hub._remote import ChannelsChanged, RemoteSessions, tracks

NODES = ("B", "C")
CHANNELS = ("room", "side", "track_t", "track_u")

ops = st.lists(st.one_of(
    st.tuples(st.just("open"), st.sampled_from(NODES), st.integers(1, 6), st.integers(1, 2), st.integers(0, 3),
              st.lists(st.sampled_from(CHANNELS), max_size=3, unique=True).map(tuple)),
    st.tuples(st.just("subscribe"), st.sampled_from(NODES), st.integers(1, 6),
              st.lists(st.sampled_from(CHANNELS), max_size=3, unique=True).map(tuple)),
    st.tuples(st.just("close"), st.sampled_from(NODES), st.integers(1, 6)),
    st.tuples(st.just("sync"), st.sampled_from(NODES)),
    st.tuples(st.just("drop"), st.sampled_from(NODES)),
), max_size=40)


def _opened(conn_id: int, dev: int, user: int, channels: tuple[str, ...]) -> SessionOpened:
    return SessionOpened(conn_id, dev, user, f"uuid-{conn_id}-{user}", "agent", "10.0.0.1", "o", "en", channels)


def _apply(view: RemoteSessions, model: dict[str, dict[int, SessionOpened]], op: tuple[Any, ...]) -> list[Any]:
    kind, node = op[0], op[1]
    held = model.setdefault(node, {})
    if kind == "open":
        ev = _opened(op[2], op[3], op[4], op[5])
        held[ev.conn_id] = ev
        return view.open(node, ev)
    if kind == "subscribe":
        known = held.get(op[2])
        if known is None:
            return view.subscribe(node, op[2], op[3])  # a session the view never saw: nothing happens
        held[op[2]] = _opened(op[2], known.dev_id, known.user_id, op[3])
        if tracks(op[3]):  # as ``Hub.subscribe`` sends it: who joins a track_ channel
            return view.open(node, held[op[2]])
        return view.subscribe(node, op[2], op[3])
    if kind == "close":
        held.pop(op[2], None)
        return view.close(node, op[2])
    if kind == "sync":  # the node's hash as it is now: a replay of what the view has seen
        return view.sync(node, list(held.values()))
    model.pop(node, None)
    return view.drop(node)


def _check(view: RemoteSessions, model: dict[str, dict[int, SessionOpened]]) -> None:
    sessions = [(node, ev) for node, held in model.items() for ev in held.values()]
    counts = Counter((ev.dev_id, c) for _, ev in sessions for c in ev.channels)
    assert view.channels == dict(counts)
    users: dict[tuple[int, int], Counter[str]] = {}
    for node, ev in sessions:
        if ev.user_id > 0:
            users.setdefault((ev.dev_id, ev.user_id), Counter())[node] += 1
    assert view.users == {k: dict(v) for k, v in users.items()}
    assert view.dev_sessions() == Counter(ev.dev_id for _, ev in sessions)
    for dev in (1, 2):
        members = view.members(dev, CHANNELS)
        for channel in CHANNELS:
            want = sorted((node, ev.conn_id, ev.user_id) for node, ev in sessions
                          if ev.dev_id == dev and channel in ev.channels)
            got = members.get(channel, [])
            alone = view.members(dev, (channel,)).get(channel, [])  # track_ channels alone: the short walk
            assert sorted((s.node, s.conn_id, s.user_id) for s in alone) == want
            assert sorted((s.node, s.conn_id, s.user_id) for s in got) == want
            for s in got:  # who a session is: held while it is in a track_ channel, else read from Redis
                if channel.startswith("track_"):
                    assert s.described and s.info.uuid == f"uuid-{s.conn_id}-{s.user_id}"
                elif not any(c.startswith("track_") for c in s.channels):
                    assert not s.described and s.info.uuid == ""


@settings(max_examples=300, deadline=None)
@given(ops)
def test_the_compact_view_agrees_with_a_session_per_object_model(steps: list[tuple[Any, ...]]) -> None:
    view = RemoteSessions()
    model: dict[str, dict[int, SessionOpened]] = {}
    for op in steps:
        _apply(view, model, op)
        _check(view, model)
    for node in NODES:
        view.drop(node)
    assert (view.channels, view.users, view.nodes(), len(view._shared), view._info) == ({}, {}, {}, 0, {})


def test_sessions_alike_share_one_record() -> None:
    view = RemoteSessions()
    for i in range(1000):
        view.open("B", _opened(i, 1, 0, ("room",)))
    assert len(view._shared) == 1 and view.channels == {(1, "room"): 1000}


def test_track_channel_members_are_told_with_the_uuid_when_they_leave() -> None:
    view = RemoteSessions()
    view.open("B", _opened(7, 1, 3, ()))
    joined = view.open("B", _opened(7, 1, 3, ("track_t",)))  # what a node sends when one joins a track_ channel
    left = view.subscribe("B", 7, ("room",))
    assert [(c.session.info.uuid, c.left, c.joined) for c in joined + left if isinstance(c, ChannelsChanged)] == [
        ("uuid-7-3", (), ("track_t",)), ("uuid-7-3", ("track_t",), ("room",))]
    assert view.subscribe("B", 7, ("side",)) == []  # no track_ channel on either side: nobody to tell
