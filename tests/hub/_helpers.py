"""Helpers for the sans-IO hub tests: a deterministic hub and an engine-like effect applier."""

from __future__ import annotations

import itertools
import json
from typing import Any

from cometql.hub import Deliver, Disconnect, Effect, Hub, ListSubscriber, Persist, Record, Subscriber

PASSWORD = "CometQLPassword"
NOW = 1_700_000_000


def make_hub(**kw: Any) -> Hub:
    """A hub whose message ids (id-1, id-2, ...) and first-JWT-login hashes (32 characters) are predictable."""
    ids, secrets = itertools.count(1), itertools.count(1)
    return Hub(password=PASSWORD, new_id=lambda: f"id-{next(ids)}", new_secret=lambda: f"secret-{next(secrets):025d}",
               **kw)


def subscriptions(hub: Hub, sub: Subscriber) -> list[str]:
    """The channels ``sub`` is subscribed to, read through the queries the server uses (``pipes``,
    ``users_in_pipes``)."""
    return sorted(c for c in hub.channels(sub.dev_id) if any(m is sub for m in hub.channel_members(sub.dev_id, c)))


def apply(hub: Hub, effects: list[Effect]) -> list[Record]:
    """Do what the engine does with effects, with a store that takes everything: deliveries decided
    before the first record at once, then the records stored and applied (``Hub.settle``), then the
    rest. Returns the records stored (those of what ``settle`` caused too)."""
    records: list[Record] = []
    held: list[Effect] = []
    for effect in effects:
        if isinstance(effect, Persist):
            records.extend(effect.records)
        elif records:
            held.append(effect)
        else:
            _hand_out(effect)
    if records:
        follow = hub.settle(records, True)
        for effect in held:
            _hand_out(effect)
        records += apply(hub, follow)
    return records


def _hand_out(effect: Effect) -> None:
    if isinstance(effect, Deliver):
        for target in effect.targets:
            target.send(effect.frame_for(target))
    elif isinstance(effect, Disconnect):
        for target in effect.targets:
            target.close(effect.reason)


def decoded(sub: ListSubscriber) -> list[dict[str, Any]]:
    return [json.loads(f) for f in sub.frames]
