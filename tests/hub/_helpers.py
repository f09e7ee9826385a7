"""Helpers for the sans-IO hub tests: a deterministic hub and an engine-like effect applier."""

from __future__ import annotations

import itertools
import json
import weakref
from typing import Any

from cometql.hub import (
    Deliver,
    Disconnect,
    Effect,
    Hub,
    ListSubscriber,
    LoadQueue,
    Persist,
    QueuedMessage,
    Record,
    Subscriber,
    browser_login,
    open_session,
)
from cometql.hub import records as r

PASSWORD = "CometQLPassword"
NOW = 1_700_000_000


def make_hub(**kw: Any) -> Hub:
    """A hub whose message ids (id-1, id-2, ...) and first-JWT-login hashes (32 characters) are predictable."""
    ids, secrets = itertools.count(1), itertools.count(1)
    return Hub(password=PASSWORD, new_id=lambda: f"id-{next(ids)}", new_secret=lambda: f"secret-{next(secrets):025d}",
               **kw)


def open_as(hub: Hub, sub: ListSubscriber, user_id: int, key: str, now: int, server: str,
            **kw: Any) -> list[Effect]:
    """Open ``sub`` as the transports do: the hub answers the login, the session takes the user id it
    decided, then the hub greets and links it. Returns ``open_session``'s effects (not applied)."""
    login = browser_login(hub, sub.dev_id, user_id, key, now)
    sub.user_id = login.user_id
    return open_session(hub, sub, login, now, server, **kw)


def subscriptions(hub: Hub, sub: Subscriber) -> list[str]:
    """The channels ``sub`` is subscribed to, read through the queries the server uses (``pipes``,
    ``users_in_pipes``)."""
    return sorted(c for c in hub.channels(sub.dev_id) if any(m is sub for m in hub.channel_members(sub.dev_id, c)))


class Queues:
    """The users' queues a store keeps (what ``LoadQueue`` reads), for one hub."""

    def __init__(self) -> None:
        self.queues: dict[tuple[int, int], dict[str, tuple[int, QueuedMessage]]] = {}
        self.seq = 0
        self.loads: list[LoadQueue] = []  # pages asked for and left unread (``apply(..., load=False)``)

    def store(self, rec: Record) -> None:
        if isinstance(rec, r.QueueMessage):
            self.seq += 1
            self.queues.setdefault((rec.dev_id, rec.user_id), {})[rec.entry.id] = (self.seq, rec.entry)
        elif isinstance(rec, r.DeleteQueued):
            queue = self.queues.get((rec.dev_id, rec.user_id), {})
            for mid in list(queue) if rec.ids is None else rec.ids:
                queue.pop(mid, None)

    def page(self, load: LoadQueue) -> list[tuple[int, QueuedMessage]]:
        items = self.queues.get((load.dev_id, load.user_id), {}).values()
        return [item for item in items if item[0] > load.after][:load.limit]

    def ids(self, dev_id: int, user_id: int) -> list[str]:
        return list(self.queues.get((dev_id, user_id), {}))


_QUEUES: weakref.WeakKeyDictionary[Hub, Queues] = weakref.WeakKeyDictionary()


def queues(hub: Hub) -> Queues:
    """The queue store ``apply`` keeps for ``hub``."""
    found = _QUEUES.get(hub)
    if found is None:
        found = _QUEUES[hub] = Queues()
    return found


def share(*hubs: Hub) -> None:
    """Give ``hubs`` one queue store (the nodes of a cluster share Redis)."""
    shared = Queues()
    for hub in hubs:
        _QUEUES[hub] = shared


def apply(hub: Hub, effects: list[Effect], *, load: bool = True) -> list[Record]:
    """Do what the engine does with effects, with a store that takes everything: deliveries decided
    before the first record at once, then the records stored and applied (``Hub.settle``), then the
    rest; a page of a queue is read at once (``load=False``: pages asked for are left unread, in
    ``queues(hub).loads``). Returns the records stored (those of what ``settle`` caused too)."""
    records: list[Record] = []
    done: list[Record] = []  # stored by what a page read caused
    held: list[Effect] = []
    for effect in effects:
        if isinstance(effect, Persist):
            records.extend(effect.records)
        elif records:
            held.append(effect)
        else:
            done += _hand_out(hub, effect, load)
    if records:
        for rec in records:
            queues(hub).store(rec)
        follow = hub.settle(records, True)
        for effect in held:
            done += _hand_out(hub, effect, load)
        done += apply(hub, follow, load=load)
    return records + done


def _hand_out(hub: Hub, effect: Effect, load: bool) -> list[Record]:
    if isinstance(effect, LoadQueue):
        if not load:
            queues(hub).loads.append(effect)
            return []
        return apply(hub, hub.personal.page(effect, queues(hub).page(effect), NOW))
    if isinstance(effect, Deliver):
        for target in effect.targets:
            target.send(effect.frame_for(target))
    elif isinstance(effect, Disconnect):
        for target in effect.targets:
            target.close(effect.reason)
    return []


def decoded(sub: ListSubscriber) -> list[dict[str, Any]]:
    return [json.loads(f) for f in sub.frames]


def queued(hub: Hub, dev_id: int, user_id: int) -> list[QueuedMessage]:
    """A user's queue as ``apply``'s store for ``hub`` holds it, oldest first."""
    return [entry for _, entry in queues(hub).queues.get((dev_id, user_id), {}).values()]
