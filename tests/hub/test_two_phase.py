"""Two-phase statements in the hub: records change memory only once stored, in commit order.

The hub returns records in ``Persist`` effects without applying them; ``Hub.settle``
applies one statement's records when the store has them, or forgets them when it
refused them. These tests play the store by hand (no trio): what a refused statement
leaves behind (nothing), what a concurrent statement decides meanwhile, and that a
refused message is never handed to anyone.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from cometql.hub import ConnInfo, Deliver, Effect, Hub, ListSubscriber, LoadQueue, Persist, Record
from cometql.hub._auth import jwt_secret
from cometql.hub.records import AppendHistory, DeleteQueued, SetAuth

from ._helpers import NOW, PASSWORD, apply, decoded, make_hub, open_as, queued, queues
from .test_auth import token

_conn_ids = itertools.count(1000)


def session(user: int = 0) -> ListSubscriber:
    return ListSubscriber(next(_conn_ids), 1, user, ConnInfo(uuid=f"u{user}"))


def records(effects: list[Effect]) -> list[Record]:
    return [r for e in effects if isinstance(e, Persist) for r in e.records]


def durable(hub: Hub) -> dict[str, Any]:
    """Everything durable the hub shows, for the users and channels these tests use."""
    s = hub.state
    return {
        "auth": [s.auth_hash(1, u) for u in range(1, 6)],
        "data": [s.user_data(1, u) for u in range(1, 6)],
        "revoked": s.revoked_tokens(1),
        "settings": [s.pipe_settings(1, c) for c in ("chan", "trust_t")],
        "history": [s.history(1, c) for c in ("chan", "trust_t")],
        "queues": [s.queue_size(1, u) for u in range(1, 6)],
        "time": [hub.user_time(1, u) for u in range(1, 6)],
        "queued_messages": hub.statistics().queued_messages,
    }


def statements(hub: Hub) -> list[list[Effect]]:
    """One of each statement that writes records (the offline user 5 has one queued message)."""
    tab = session(user=4)
    apply(hub, hub.connect(tab, NOW))
    return [
        hub.set_auth(1, 1, "new"),
        hub.delete_auth(1, [2]),
        hub.set_user_data(1, 1, "data"),
        hub.delete_user_data(1, [2]),
        hub.revoke_token(1, "tok", NOW),
        hub.unrevoke_tokens(1, ["old"]),
        hub.set_pipe_settings(1, "chan", 2),
        hub.delete_pipe_settings(1, ["trust_t"]),
        hub.publish(1, "trust_t", "e", "refused", NOW),
        hub.clear_history(1, ["trust_t"]),
        hub.delete_history_ids(1, ["id-1"]),
        hub.send_to_user(1, 3, "e", "refused", NOW),
        hub.delete_queued(1, [5]),
        hub.disconnect(tab, NOW + 1),
    ]


def seeded() -> Hub:
    hub = make_hub()
    apply(hub, hub.set_auth(1, 2, "old"))
    apply(hub, hub.set_user_data(1, 2, "old"))
    apply(hub, hub.revoke_token(1, "old", NOW))
    apply(hub, hub.publish(1, "trust_t", "e", "kept", NOW))
    apply(hub, hub.send_to_user(1, 5, "e", "queued", NOW))
    return hub


def test_a_refused_statement_leaves_no_trace_in_memory() -> None:
    hub = seeded()
    before = durable(hub)
    *decided, leaving = statements(hub)
    meanwhile = before | {"time": [-1, -1, -1, 0, -1]}  # user 4 is leaving: online till that is settled
    for effects in decided:
        assert records(effects), effects
        assert durable(hub) == meanwhile  # decided, not stored: nothing changed yet
        assert hub.settle(records(effects), False) == []
        assert durable(hub) == meanwhile
    hub.settle(records(leaving), False)  # user 4 came and went: a last-seen time that was never stored
    assert durable(hub) == before


def test_stored_statements_change_memory_as_before() -> None:
    refused, stored = seeded(), seeded()
    for effects in statements(stored):
        apply(stored, effects)
    changed = durable(stored)
    assert changed != durable(refused)
    assert changed["auth"][:2] == ["new", None] and changed["queues"][2] == (1, len("refused"))
    assert changed["time"][3] == NOW + 1


def test_a_refused_queued_message_is_never_handed_out() -> None:
    hub = make_hub()
    kept, refused = hub.send_to_user(1, 7, "e", "kept", NOW), hub.send_to_user(1, 7, "e", "refused", NOW)
    hub.settle(records(refused), False)
    hub.settle(records(kept), True)
    queues(hub).store(*records(kept))
    tab = session(user=7)
    apply(hub, hub.connect(tab, NOW))
    assert [f["data"] for f in decoded(tab)] == ["kept"]
    assert queued(hub, 1, 7) == []


def test_a_message_stored_after_its_user_connected_is_handed_out_then() -> None:
    hub = make_hub()
    pending = hub.send_to_user(1, 7, "e", "late", NOW)  # user offline: queued, not stored yet
    tab = session(user=7)
    apply(hub, hub.connect(tab, NOW))  # the flush cannot see it
    assert tab.frames == []
    queues(hub).store(*records(pending))
    follow = hub.settle(records(pending), True)
    assert [type(e) for e in follow] == [Deliver, Persist]  # live, then deleted (no ack session)
    apply(hub, follow)
    assert decoded(tab) == [{"data": "late", "event": "e", "pipe": "msg"}]
    assert queued(hub, 1, 7) == []


def test_queued_messages_being_handed_out_are_not_handed_out_twice() -> None:
    hub = make_hub()
    for i in range(3):
        apply(hub, hub.send_to_user(1, 7, "e", f"q{i}", NOW))
    first, second = session(user=7), session(user=7)
    [load] = [e for e in hub.connect(first, NOW) if isinstance(e, LoadQueue)]
    assert not any(isinstance(e, LoadQueue) for e in hub.connect(second, NOW))  # one page read at a time
    page = hub.personal.page(load, queues(hub).page(load), NOW)
    [delete] = records(page)
    assert isinstance(delete, DeleteQueued) and len(delete.ids or ()) == 3
    apply(hub, page)
    assert [f["data"] for f in decoded(first)] == [f["data"] for f in decoded(second)] == ["q0", "q1", "q2"]
    assert queued(hub, 1, 7) == []


def test_a_refused_queue_deletion_leaves_the_messages_for_the_next_session() -> None:
    hub = make_hub()
    apply(hub, hub.send_to_user(1, 7, "e", "q", NOW))
    first = session(user=7)
    [load] = [e for e in hub.connect(first, NOW) if isinstance(e, LoadQueue)]
    flush = hub.personal.page(load, queues(hub).page(load), NOW)
    [delete] = records(flush)
    hub.settle([delete], False)
    apply(hub, hub.disconnect(first, NOW))
    again = session(user=7)
    apply(hub, hub.connect(again, NOW + 1))
    assert [f["data"] for f in decoded(again)] == ["q"]


def test_history_trimming_follows_commit_order_around_a_refused_append() -> None:
    """Concurrent appends decide on the same state; each record says "append, keep n", so the
    memory applied in commit order equals what the store kept, whichever of them failed."""
    hub = make_hub()
    apply(hub, hub.set_pipe_settings(1, "chan", 2))
    apply(hub, hub.publish(1, "chan", "e", "m0", NOW))
    apply(hub, hub.publish(1, "chan", "e", "m1", NOW))
    inflight = [hub.publish(1, "chan", "e", f"m{i}", NOW) for i in (2, 3, 4)]
    assert all(isinstance(records(e)[0], AppendHistory) for e in inflight)
    hub.settle(records(inflight[0]), True)
    hub.settle(records(inflight[1]), False)
    hub.settle(records(inflight[2]), True)
    assert [e.message for e in hub.state.history(1, "chan")] == ["m2", "m4"]


def test_a_refused_publish_with_history_delivers_nothing_before_its_record() -> None:
    """The record comes first: the engine hands out the frame only once it is stored."""
    hub = make_hub()
    tab = session()
    apply(hub, hub.connect(tab, NOW))
    apply(hub, hub.subscribe(tab, ["trust_t"], NOW))
    effects = hub.publish(1, "trust_t", "e", "m", NOW)
    assert [type(e) for e in effects] == [Persist]  # fanned out by settle, once stored, with its offset
    assert hub.settle(records(effects), False) == []
    assert hub.state.position(1, "trust_t") is None
    again = hub.publish(1, "trust_t", "e", "m2", NOW)
    [deliver] = hub.settle(records(again), True)
    assert isinstance(deliver, Deliver) and deliver.targets == (tab,)
    assert hub.state.position(1, "trust_t") == (records(again)[0].entry.id, 1)  # the refused one left no hole


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_first_jwt_login_greets_with_the_hash_it_is_storing() -> None:
    hub = make_hub()
    tab = session()
    effects = open_as(hub, tab, 9, token({"user_id": 9, "exp": NOW + 60}, jwt_secret(PASSWORD, 1)), NOW, "S")
    [rec] = records(effects)
    assert isinstance(rec, SetAuth) and hub.state.auth_hash(1, 9) is None
    apply(hub, effects)
    assert decoded(tab)[0]["data"] == rec.hash == hub.state.auth_hash(1, 9)


def test_a_user_stays_online_until_their_last_seen_time_is_stored() -> None:
    """users_time never says "unknown" (-1) between the last session closing and its time being stored."""
    hub = make_hub()
    for stored, after in ((True, NOW + 5), (False, NOW + 5)):
        tab = session(user=7)
        apply(hub, hub.connect(tab, NOW))
        leaving = hub.disconnect(tab, NOW + 5 if stored else NOW + 9)
        assert (hub.user_time(1, 7), hub.known_users(1)) == (0, [7])
        hub.settle(records(leaving), stored)
        assert hub.user_time(1, 7) == after  # a refused time leaves the one stored before
