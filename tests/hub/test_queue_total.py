"""``DurableState.queued_messages`` (SHOW STATUS ``queue_depth``, the metric) is a running total: it must
equal the sum of the users' queues after any mix of queueing, acknowledged deletions, whole-queue
deletions and a restore from the store's counts."""

from __future__ import annotations

import random

from cometql.hub._state import DurableState
from cometql.hub.records import DeleteQueued, QueuedMessage, QueueMessage


def _walked(state: DurableState, users: range) -> int:
    return sum(state.queue_size(1, u)[0] for u in users)


def test_the_queued_total_follows_every_change() -> None:
    rng = random.Random(13)
    state = DurableState()
    users = range(1, 9)
    state.restore_queues([(1, 3, 4, 40), (1, 5, 0, 0)])
    ids: dict[int, list[str]] = {u: [f"old{u}-{i}" for i in range(state.queue_size(1, u)[0])] for u in users}
    for step in range(2000):
        user = rng.choice(users)
        roll = rng.random()
        if roll < 0.6:
            mid = f"m{step}"
            state.apply(QueueMessage(1, user, QueuedMessage(mid, 0, "e", "hello")))
            ids[user].append(mid)
        elif roll < 0.95 and ids[user]:
            gone = ids[user][: rng.randint(1, 3)]
            del ids[user][: len(gone)]
            state.apply(DeleteQueued(1, user, tuple(gone), 5 * len(gone)))
        else:
            state.apply(DeleteQueued(1, user, None, 0))
            ids[user].clear()
        assert state.queued_messages() == _walked(state, users) == sum(map(len, ids.values()))
    state.apply(DeleteQueued(1, 99, ("never-queued",), 1))  # a deletion for an empty queue changes nothing
    assert state.queued_messages() == _walked(state, users)
