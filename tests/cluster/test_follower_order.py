"""The follower applies a bus entry through the hub's ``remote_changes``, in stream order (no Redis needed:
an entry of a node it has heard from already needs no connection)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any, cast

from cometql.cluster._compat import Compat
from cometql.cluster.bus import Bus
from cometql.cluster.follower import Cluster
from cometql.hub import Effect, Hub, ListSubscriber, Published, QueuedMessage
from cometql.hub.records import QueueMessage
from cometql.store import codec

from ..hub._helpers import apply

NOW = 1_700_000_000


class Applier:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def now(self) -> int:
        return NOW

    async def apply(self, effects: Iterable[Effect]) -> None:
        apply(self.hub, list(effects))  # as the engine does, with a store that takes everything


async def test_a_bus_entry_reaches_sessions_in_the_order_its_node_produced_it() -> None:
    ids = itertools.count(1)
    hub = Hub(password="p", new_id=lambda: f"id-{next(ids)}", new_secret=lambda: "s", node_id="B")
    user = ListSubscriber(1, 1, 5)
    apply(hub, hub.connect(user, NOW))  # (its login's page read of the queue, empty)
    hub.subscribe(user, ["news"], NOW)
    follower = Cluster(cast(Bus, SimpleNamespace(node_id="B", compat=Compat())))
    follower.engine = Applier(hub)
    follower.heard["A"] = time.monotonic()
    values: list[Any] = [Published(1, "news", "e", "one", NOW, None),
                         QueueMessage(1, 5, QueuedMessage("q-1", NOW, "e", "two")),
                         Published(1, "news", "e", "three", NOW, None)]
    await follower._entry(None, "1-1", [b"n", b"A", b"d", codec.encode_many(values)])  # type: ignore[arg-type]
    assert [f.split(b'"data":')[1].split(b",")[0] for f in user.frames] == [b'"one"', b'"two"', b'"three"']
    assert follower.last_id == "1-1" and hub.state.queue_size(1, 5) == (0, 0)
