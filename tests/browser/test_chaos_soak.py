"""Chaos soak: ten pages of our library behind a proxy that keeps breaking the network, channel and personal
messages mixed, and in the end every page has every message exactly once, in order (issue 13's soak).

The soak itself (pages, faults, the check) is ``cometql.bench._soak``, which ``cometql bench soak``
runs at 50 pages; this is CI's size, on one SQLite server and on a two-node cluster on Redis. The
faults are random but seeded (the seed is in the failure message).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from cometql.bench._faultproxy import FaultProxy
from cometql.bench._soak import PAGES, SERVER_ARGS, prepare, run_soak

from ..servers import ServerProcess
from .helpers import STORES, make_query, page_and_backend

#: CI's size; the long version is `cometql bench soak` (docs/delivery.md)
PAGES_N = int(os.environ.get("COMETQL_SOAK_PAGES", "10"))
SOAK_SECONDS = float(os.environ.get("COMETQL_SOAK_SECONDS", "30"))
#: A bound on how long the pages may take to catch up once the network is healed: a hang guard.
CATCH_UP = 90.0


@pytest.fixture(params=STORES)
def soak_servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """(the pages' node, the publishing backend's node); on a cluster Redis assigns the channel's offsets."""

    def make_dir(name: str) -> Path:
        (tmp_path / name).mkdir()
        return tmp_path / name

    with page_and_backend(request, make_dir, "--base-dir", str(PAGES), *SERVER_ARGS) as pair:
        yield pair


def test_ten_pages_through_random_faults_get_every_message_once_in_order(
        driver: webdriver.Chrome, soak_servers: tuple[ServerProcess, ServerProcess]) -> None:
    dev = 7
    pages_node, backend_node = soak_servers
    query = make_query(backend_node.connect(dev))
    prepare(query, PAGES_N)
    with FaultProxy((pages_node.host, pages_node.ws_port)) as proxy:
        outcome = run_soak(driver, f"http://127.0.0.1:{proxy.port}", proxy, query, dev, PAGES_N, SOAK_SECONDS,
                           catch_up=CATCH_UP)
    assert outcome.ok, outcome.report()
    assert outcome.sent_channel > 100 and sum(outcome.sent_user.values()) > 100, "the soak sent too little"
    print(f"soak: {PAGES_N} pages, {SOAK_SECONDS:g} s, {len(outcome.faults)} faults, {outcome.sent_channel} channel "
          f"and {sum(outcome.sent_user.values())} personal messages: every page got each once, in order")
