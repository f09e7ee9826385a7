"""Soak: 2,000 browser sessions, 1,000 publishes (200,000 deliveries), twice, on one server.

Every message must reach every subscriber of its channel exactly once, and the
server's memory must not grow from one round to the next (nothing is kept per
delivered message). Sized to stay well inside CI's time budget (~15 s).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cometql.bench import Context, Server, latency, start_server
from cometql.bench._results import Result


@pytest.fixture(scope="module")
def soak_server() -> Iterator[Server]:
    server = start_server()
    yield server
    server.stop()


def _round(server: Server, dev: int) -> Result:
    ctx = Context(server, dev_id=dev)
    try:
        return latency(ctx, rate=200, duration=5, channels=10, subscribers=2000)
    finally:
        ctx.close()


def test_soak_exactly_once_and_stable_memory(soak_server: Server) -> None:
    first = _round(soak_server, 990_01)
    rss_after_first = soak_server.rss_kb()
    second = _round(soak_server, 990_02)
    rss_after_second = soak_server.rss_kb()
    for result in (first, second):
        # 1,000 publishes x 200 subscribers per channel: any loss or duplicate moves this off 100 %
        assert result.figure("deliveries received").value == pytest.approx(100.0)
    assert rss_after_first is not None and rss_after_second is not None
    assert rss_after_second - rss_after_first < 8 * 1024, (rss_after_first, rss_after_second)
