"""The engine's delivery of per-capability frames: each target gets its form, each form encoded once."""

from __future__ import annotations

import itertools

import trio
import trio.testing

from cometql.engine import Engine
from cometql.hub import ConnInfo, Deliver, Disconnect, Hub, ListSubscriber
from cometql.hub._frames import queued_user_frame, queued_user_frames
from cometql.store import MemoryStore

CAPS = frozenset({"ack", "offset"})


def make_engine() -> Engine:
    ids = itertools.count(1)
    hub = Hub(password="p", new_id=lambda: f"id-{next(ids)}", new_secret=lambda: "s")
    return Engine(hub, MemoryStore())


def test_the_engine_hands_each_target_its_form_encoded_once() -> None:
    legacy = [ListSubscriber(i, 1, 3, ConnInfo()) for i in range(3)]
    capable = [ListSubscriber(10 + i, 1, 3, ConnInfo(), caps=CAPS) for i in range(2)]
    frames = queued_user_frames("ev", "m", 5, "q-9")
    engine = make_engine()
    trio.run(engine.apply, [Deliver((legacy[0], capable[0], legacy[1], capable[1], legacy[2]), frames)])
    assert [s.frames for s in legacy] == [[queued_user_frame("ev", "m", 5)]] * 3
    assert len({id(s.frames[0]) for s in legacy}) == 1 and len({id(s.frames[0]) for s in capable}) == 1
    assert capable[0].frames[0] == frames.capable and b'"id":"q-9"' in frames.capable
    assert engine.delivered == 5


async def test_deferred_deliveries_keep_their_forms() -> None:
    engine = make_engine()
    legacy, capable = ListSubscriber(1), ListSubscriber(2, caps=CAPS)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.run_deliveries)
        await trio.testing.wait_all_tasks_blocked()
        await engine.apply([Deliver((legacy, capable), queued_user_frames("e", "m", 1, "q-1")),
                            Deliver((legacy, capable), b"plain")])
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert legacy.frames == [queued_user_frame("e", "m", 1), b"plain"]
    assert capable.frames[1] == b"plain" and b'"id":"q-1"' in capable.frames[0]


async def test_without_a_loader_task_a_long_backlog_is_read_page_after_page() -> None:
    """Tools and tests run no delivery task: the engine reads the pages itself, one after the other
    (never nested: 100 pages must not grow the stack), and every message arrives once, in order."""
    engine = make_engine()
    hub = engine.hub
    for i in range(10_000):  # the default queue bound
        await engine.apply(hub.send_to_user(1, 4, "ev", f"m{i}", 0))
    tab = ListSubscriber(1, 1, 4, ConnInfo())
    await engine.apply(hub.connect(tab, 0))
    assert [f.split(b'"data":"')[1].split(b'"')[0].decode() for f in tab.frames] == [f"m{i}" for i in range(10_000)]
    assert hub.state.queue_size(1, 4) == (0, 0)


async def test_apply_nowait_applies_what_needs_no_store_and_refuses_the_rest_untouched() -> None:
    """The browser port's hot paths: effects without a record or a queue read to load are applied at once,
    exactly as ``apply`` would; anything that needs the store is left whole for ``apply``."""
    engine = make_engine()
    hub = engine.hub
    tab = ListSubscriber(1, 1, 0, ConnInfo())
    assert engine.apply_nowait(hub.connect(tab, 0) + [Deliver((tab,), b"hello")])
    assert tab.frames == [b"hello"]
    stored = hub.send_to_user(1, 4, "ev", "m", 0)  # a queued personal message: a record
    assert not engine.apply_nowait(stored)
    assert hub.state.queue_size(1, 4) == (0, 0)  # nothing of it was applied
    await engine.apply(stored)
    assert hub.state.queue_size(1, 4)[0] == 1
class _Log:
    """A subscriber that logs frames and its close in one list, to see their order."""

    def __init__(self, conn_id: int) -> None:
        self.conn_id, self.dev_id, self.user_id, self.info, self.caps = conn_id, 1, 0, ConnInfo(), frozenset[str]()
        self.events: list[bytes | str] = []

    def send(self, frame: bytes) -> None:
        self.events.append(frame)

    def close(self, reason: str) -> None:
        self.events.append(f"close: {reason}")


async def test_deliveries_waiting_together_keep_their_order_around_a_disconnect() -> None:
    """Coalesced deliveries are written before a Disconnect queued after them, and later ones after it."""
    engine = make_engine()
    a, b = _Log(1), _Log(2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.run_deliveries)
        await trio.testing.wait_all_tasks_blocked()
        await engine.apply([Deliver((a, b), b"1")])
        await engine.apply([Deliver((a,), b"2"), Disconnect((a,), "bye"), Deliver((b,), b"3")])
        await engine.apply([Deliver((a, b), b"4")])
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert a.events == [b"1", b"2", "close: bye", b"4"]
    assert b.events == [b"1", b"3", b"4"]
    assert engine.delivered == 6
