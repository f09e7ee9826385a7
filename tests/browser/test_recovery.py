"""Exact channel recovery in Chromium, through a proxy that breaks the network (issue 13, item 4).

The page (our /cometql.js) talks to the server through ``FaultProxy``. Each test black-holes the
network, publishes while the page hears nothing, lets new connections through again and resets the
dead ones, so the page reconnects (or, on long-poll, resumes its session). Every message must then
reach the page exactly once, in order; when that is impossible (the history was deleted meanwhile),
``onRecoveryFailed`` fires; for a channel without history, ``onMayHaveMissed``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from selenium import webdriver

from cometql.bench._faultproxy import FaultProxy

from ..servers import ServerProcess
from .helpers import TRANSPORT_PARAMS, Browser, Query, wait_subscribed


@pytest.fixture
def faulty(driver: webdriver.Chrome, server: ServerProcess) -> Iterator[tuple[FaultProxy, Browser]]:
    """A page served (and connected) through a fault-injecting proxy."""
    with FaultProxy((server.host, server.ws_port)) as proxy:
        page = Browser(driver, f"http://127.0.0.1:{proxy.port}")
        try:
            yield proxy, page
        finally:
            page.reset()


def channel(prefix: str = "rec") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def publish(query: Query, name: str, *ns: int) -> None:
    for n in ns:
        query(f"INSERT INTO pipes_messages (name, event, message) VALUES ('{name}', 'tick', '{{\"n\":{n}}}')")


def with_history(query: Query, *names: str) -> None:
    for name in names:
        query(f"INSERT INTO pipes_settings (name, length) VALUES ('{name}', 100)")


def outage(proxy: FaultProxy, meanwhile: Callable[[], None]) -> None:
    """Silence in both directions while ``meanwhile`` runs, then the dead connections are reset."""
    proxy.blackhole()
    meanwhile()
    proxy.heal()
    proxy.cut()


def numbers(page: Browser, tag: str, count: int) -> list[int]:
    try:
        return [e["data"]["n"] for e in page.wait_events(tag, count, timeout=20)]
    except AssertionError as exc:  # what the library's recovery state was
        state = page.js("return JSON.stringify({connected: cometApi.isConnected(), streams: cometApi.streams,"
                        " recovering: cometApi.recovering, transport: cometApi.getTransport()})")
        raise AssertionError(f"{exc}\nlibrary: {state}") from None


def exactly(page: Browser, query: Query, tag: str, expected: list[int]) -> None:
    """The page got ``expected`` in order, and nothing more: a last live message ends the list."""
    last = max(expected, default=0) + 1000
    wait_subscribed(query, tag, page.uuid)  # the page is back (its resent subscription is in place)
    publish(query, tag, last)
    assert numbers(page, tag, len(expected) + 1) == [*expected, last]
    assert numbers(page, tag, 0) == [*expected, last]


def test_twenty_missed_messages_arrive_exactly_once(faulty: tuple[FaultProxy, Browser], transport: str,
                                                    dev: int, query: Query) -> None:
    proxy, page = faulty
    name = channel()
    with_history(query, name)
    publish(query, name, 0)  # before the page subscribed: never delivered
    page.open(dev_id=dev, subs=name, **TRANSPORT_PARAMS[transport])
    wait_subscribed(query, name, page.uuid)
    publish(query, name, 1)
    assert numbers(page, name, 1) == [1]
    outage(proxy, lambda: publish(query, name, *range(2, 22)))
    exactly(page, query, name, list(range(1, 22)))


def test_last_frame_seen_on_another_channel_in_the_same_second(faulty: tuple[FaultProxy, Browser],
                                                               transport: str, dev: int, query: Query) -> None:
    """The old catch-up kept one whole-second cut-off for the page: A's missed messages, published in the
    second of the last frame seen (on B), were all dropped."""
    proxy, page = faulty
    a, b = channel("reca"), channel("recb")
    with_history(query, a, b)
    page.open(dev_id=dev, subs=f"{a},{b}", **TRANSPORT_PARAMS[transport])
    wait_subscribed(query, a, page.uuid)
    wait_subscribed(query, b, page.uuid)
    publish(query, a, 1)
    publish(query, b, 1)
    assert numbers(page, a, 1) == [1] and numbers(page, b, 1) == [1]
    outage(proxy, lambda: publish(query, a, 2, 3, 4, 5))
    exactly(page, query, a, [1, 2, 3, 4, 5])
    exactly(page, query, b, [1])


def test_recovery_when_nothing_was_received_before_the_drop(faulty: tuple[FaultProxy, Browser], transport: str,
                                                            dev: int, query: Query) -> None:
    proxy, page = faulty
    name = channel()
    with_history(query, name)
    publish(query, name, 0)  # history from before the page: not for it
    page.open(dev_id=dev, subs=name, **TRANSPORT_PARAMS[transport])
    wait_subscribed(query, name, page.uuid)
    page.wait_for(f"cometApi.streams && cometApi.streams['{name}']", what="the channel's position")
    outage(proxy, lambda: publish(query, name, 1, 2, 3))
    exactly(page, query, name, [1, 2, 3])


def test_history_deleted_while_away_fires_recovery_failed(faulty: tuple[FaultProxy, Browser], transport: str,
                                                          dev: int, query: Query) -> None:
    proxy, page = faulty
    name = channel()
    with_history(query, name)
    page.open(dev_id=dev, subs=name, **TRANSPORT_PARAMS[transport])
    wait_subscribed(query, name, page.uuid)
    publish(query, name, 1)
    assert numbers(page, name, 1) == [1]

    def reset_history() -> None:
        publish(query, name, 2)
        query(f"DELETE FROM pipes_messages WHERE name = '{name}'")
        publish(query, name, 3)

    outage(proxy, reset_history)
    [failed] = page.wait_events("recovery_failed", timeout=20)
    assert failed["data"] == name
    assert page.events("may_have_missed") == []


def test_a_channel_without_history_may_have_missed(faulty: tuple[FaultProxy, Browser], dev: int,
                                                   query: Query) -> None:
    """WebSocket only: a long-poll page resumes its session and misses nothing, so nothing fires."""
    proxy, page = faulty
    plain, kept = channel("plain"), channel()
    with_history(query, kept)
    page.open(dev_id=dev, subs=f"{plain},{kept}")
    wait_subscribed(query, plain, page.uuid)
    outage(proxy, lambda: publish(query, plain, 1))
    assert [e["data"] for e in page.wait_events("may_have_missed", timeout=20)] == [plain]
    exactly(page, query, kept, [])
    assert page.events("recovery_failed") == []
