"""The sampler that writes stats_history, in-process: a hub, a stats store, a clock that tests control.

``Sampler.sample(at)`` is one boundary; ``run`` is tested on trio's autojump
clock (a minute passes in no time). The cluster case runs two hubs, each with
its own ``RedisStats`` on a real redis-server, as two nodes would: each node's
hub sees the other's sessions (through ``sync_node``, as the follower feeds it).
"""

from __future__ import annotations

import itertools
import logging
import socket
from collections.abc import Sequence

import pytest
import trio

from cometql.errors import StoreError
from cometql.hub import Hub, ListSubscriber, Published, SessionOpened, StatsRow
from cometql.redisurl import RedisAddress
from cometql.sampler import Sampler, Sampling
from cometql.store import MemoryStats, open_redis_stats

from ..hub._helpers import NOW, apply, make_hub
from ..redis_server import RedisServer

MINUTE = 60
AT = NOW - NOW % MINUTE + MINUTE
_conn_ids = itertools.count(1)


def online(hub: Hub, dev: int, user: int, *channels: str) -> ListSubscriber:
    sub = ListSubscriber(next(_conn_ids), dev_id=dev, user_id=user)
    apply(hub, hub.connect(sub, NOW))
    apply(hub, hub.subscribe(sub, channels, NOW))
    return sub


def sampler(hub: Hub, stats: MemoryStats | None = None, **settings: float) -> Sampler:
    sampling = Sampling(**{"interval": MINUTE, "channels": 2, **settings})  # type: ignore[arg-type]
    return Sampler(hub, stats or MemoryStats(), sampling)


async def test_a_sample_has_the_totals_and_the_busiest_channels_with_their_traffic() -> None:
    hub = make_hub(count_traffic=True)
    online(hub, 5, 1, "chat", "news", "misc")
    online(hub, 5, 1, "chat")  # user 1's second tab
    online(hub, 5, 0, "chat", "news")
    apply(hub, hub.publish(5, "chat", "e", "m", NOW))
    apply(hub, hub.publish(5, "misc", "e", "m", NOW))
    s = sampler(hub)
    rows = await s.sample(AT)
    assert rows == [
        StatsRow(5, AT, "", 3, 1, 2, 4),  # totals count every channel, "misc" too
        StatsRow(5, AT, "chat", 3, 1, 1, 3),
        StatsRow(5, AT, "news", 2, 1, 0, 0),  # two channels per sample: "misc" did not make the cut
    ]
    assert await s.stats.read_stats(5) == rows
    # the next minute starts from zero traffic
    assert [r.published for r in await s.sample(AT + MINUTE)] == [0, 0, 0]


async def test_a_dev_that_went_quiet_gets_one_row_of_zeros_then_none() -> None:
    hub = make_hub(count_traffic=True)
    sub = online(hub, 5, 1, "chat")
    s = sampler(hub)
    assert len(await s.sample(AT)) == 2
    apply(hub, hub.disconnect(sub, NOW))
    assert await s.sample(AT + MINUTE) == [StatsRow(5, AT + MINUTE, "", 0, 0, 0, 0)]
    assert await s.sample(AT + 2 * MINUTE) == []


async def test_old_rows_are_pruned() -> None:
    hub = make_hub(count_traffic=True)
    online(hub, 5, 1, "chat")
    s = sampler(hub, keep_days=1)
    await s.sample(AT)
    await s.sample(AT + 86400)
    assert {r.time for r in await s.stats.read_stats(5)} == {AT, AT + 86400}  # a day ago: still kept
    await s.sample(AT + 86400 + MINUTE)
    assert {r.time for r in await s.stats.read_stats(5)} == {AT + 86400, AT + 86400 + MINUTE}


class BrokenStats(MemoryStats):
    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    async def append_stats(self, rows: Sequence[StatsRow]) -> None:
        if self.broken:
            raise StoreError("disk full")
        await super().append_stats(rows)


async def test_a_failing_store_skips_the_sample_and_sampling_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    hub = make_hub(count_traffic=True)
    online(hub, 5, 1, "chat")
    stats = BrokenStats()
    s = sampler(hub, stats)
    with caplog.at_level(logging.WARNING, "cometql.stats"):
        assert await s.sample(AT) == []
    assert "disk full" in caplog.text
    stats.broken = False
    assert len(await s.sample(AT + MINUTE)) == 2


async def test_run_samples_on_every_boundary(autojump_clock: trio.testing.MockClock) -> None:
    hub = make_hub(count_traffic=True)
    online(hub, 5, 1, "chat")
    stats = MemoryStats()
    start = AT + 17.5  # in the middle of a minute
    s = Sampler(hub, stats, Sampling(interval=MINUTE), clock=lambda: start + trio.current_time())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(s.run)
        while s.samples < 3:
            await trio.sleep(1)
        nursery.cancel_scope.cancel()
    times = sorted({r.time for r in await stats.read_stats(5)})
    assert times == [AT + MINUTE, AT + 2 * MINUTE, AT + 3 * MINUTE]


async def test_sampling_off_counts_nothing_and_returns_at_once() -> None:
    hub = make_hub()
    s = sampler(hub, interval=0)
    with trio.fail_after(5):
        await s.run()
    assert s.samples == 0


def _flush(redis: RedisServer, db: int) -> None:
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as s:
        s.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
        s.recv(100)


async def test_a_cluster_writes_one_row_per_channel_and_counts_each_user_once(redis: RedisServer) -> None:
    _flush(redis, 13)
    address = RedisAddress.parse(f"redis://127.0.0.1:{redis.port}/13")
    a, b = make_hub(node_id="A", count_traffic=True), make_hub(node_id="B", count_traffic=True)
    on_a = [online(a, 5, 1, "chat"), online(a, 5, 2, "chat")]
    on_b = [online(b, 5, 1, "chat"), online(b, 5, 3, "news")]  # user 1 is on both nodes

    def opened(subs: list[ListSubscriber], channels: Sequence[tuple[str, ...]]) -> list[SessionOpened]:
        return [SessionOpened(s.conn_id, s.dev_id, s.user_id, channels=c) for s, c in zip(subs, channels, strict=True)]

    apply(a, a.sync_node("B", opened(on_b, [("chat",), ("news",)]), NOW))
    apply(b, b.sync_node("A", opened(on_a, [("chat",), ("chat",)]), NOW))
    apply(a, a.publish(5, "chat", "e", "m", NOW))  # delivered to 2 sessions on A ...
    apply(b, b.remote_changes("A", [Published(5, "chat", "e", "m", NOW, None)], NOW))  # ... and 1 on B
    async with open_redis_stats(address, "A") as stats_a, open_redis_stats(address, "B") as stats_b:
        # the grace lets the node that claims the minute wait for the other's counts, as in production
        sampling = Sampling(MINUTE, keep_days=7, channels=20, grace=0.5)
        both = [Sampler(a, stats_a, sampling), Sampler(b, stats_b, sampling)]
        written: list[list[StatsRow]] = []
        async with trio.open_nursery() as nursery:
            for s in both:
                nursery.start_soon(lambda s=s: _sample(s, AT, written))
        assert sorted(len(w) for w in written) == [0, 3]  # one node wrote the minute
        rows = await stats_a.read_stats(5)
    assert rows == [
        StatsRow(5, AT, "", 4, 3, 1, 3),  # users 1, 2, 3: user 1 counted once
        StatsRow(5, AT, "chat", 3, 2, 1, 3),
        StatsRow(5, AT, "news", 1, 1, 0, 0),
    ]


async def _sample(s: Sampler, at: int, written: list[list[StatsRow]]) -> None:
    written.append(await s.sample(at))
