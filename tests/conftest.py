"""Shared fixtures.

``server`` is one real `cometql serve` subprocess for the whole test session.
Tests isolate their state by logging in as their own dev_id (the ``dev``
fixture hands out a fresh one per test): every channel, user, queue and hash
is scoped by dev_id, so tests cannot see each other's data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pymysql
import pytest

from .redis_server import RedisServer
from .servers import ServerProcess

_devs = itertools.count(1000)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # many tests send wrong /admin passwords from 127.0.0.1: the guess limit has its own test and server
    srv = ServerProcess(tmp_path_factory.mktemp("cometql-data"), env={"COMETQL_ADMIN_LOGIN_ATTEMPTS": "0"}).start()
    yield srv
    if srv.alive:
        srv.stop()


@pytest.fixture(scope="session")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session (cluster nodes use db 0, store tests their own dbs)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def dev() -> int:
    """A dev_id no other test uses."""
    return next(_devs)


@pytest.fixture
def db(server: ServerProcess, dev: int) -> Iterator[pymysql.cursors.Cursor]:
    """A PyMySQL cursor logged in as this test's dev_id."""
    conn = server.connect(dev)
    try:
        yield conn.cursor()
    finally:
        conn.close()


@pytest.fixture
def query(db: pymysql.cursors.Cursor) -> Callable[[str], list[tuple[str, ...]]]:
    """Run one statement and return its rows as tuples of strings."""

    def run(sql: str) -> list[tuple[str, ...]]:
        db.execute(sql)
        return [tuple(r) for r in db.fetchall()]

    return run
