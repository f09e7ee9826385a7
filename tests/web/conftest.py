"""Fixtures for the browser face.

``server`` (the shared process from tests/conftest.py) is used wherever the
defaults do; ``tuned_server`` is a second process with short long-poll
timings and a small send-queue bound, for the tests that wait on those.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from ..servers import ServerProcess

#: Settings of ``tuned_server`` (tests derive their waits from these).
LONGPOLL_TIMEOUT = 1.5
SESSION_TTL = 1.0
MAX_QUEUED_BYTES = 256 * 1024


def wait_for_port(port: int, timeout: float = 10) -> None:
    """The browser listener starts just after the MySQL one that ServerProcess.start waits for."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="session")
def ws_server(server: ServerProcess) -> ServerProcess:
    """The shared server, once its browser port accepts connections."""
    wait_for_port(server.ws_port)
    return server


@pytest.fixture(scope="session")
def tuned_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("cometql-tuned"), env={
        "COMETQL_LONGPOLL_TIMEOUT": str(LONGPOLL_TIMEOUT),
        "COMETQL_SESSION_TTL": str(SESSION_TTL),
        "COMETQL_MAX_QUEUED_BYTES": str(MAX_QUEUED_BYTES),
        "COMETQL_COMMAND_RATE": "0",  # no rate limit: the flood test measures fairness without it
    }).start()
    wait_for_port(srv.ws_port)
    yield srv
    if srv.alive:
        srv.stop()
