"""Fixtures for the operations tests: trustme certificates and servers with TLS or tight limits.

Each server here is its own `cometql serve` process (settings differ from the
shared one), started once per test session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from ..servers import ServerProcess
from ..web.conftest import wait_for_port

#: Settings of ``limits_server`` (tests derive their expectations from these).
MAX_SESSIONS_PER_IP = 3
COMMAND_RATE = 5.0
COMMAND_BURST = 5
MAX_MESSAGE_SIZE = 100
MAX_SUBSCRIPTIONS = 4
MAX_STATEMENTS = 3
MAX_INSERT_ROWS = 20
MAX_IN_VALUES = 20


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A private CA and a server certificate for 127.0.0.1 and localhost."""
    d = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    out = Certs(d / "ca.pem", d / "cert.pem", d / "key.pem")
    ca.cert_pem.write_to_path(str(out.ca))
    issued.cert_chain_pems[0].write_to_path(str(out.cert))
    issued.private_key_pem.write_to_path(str(out.key))
    return out


def _started(srv: ServerProcess) -> ServerProcess:
    srv.start()
    wait_for_port(srv.ws_port)
    return srv


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[ServerProcess]:
    srv = _started(ServerProcess(tmp_path_factory.mktemp("cometql-tls"),
                                 extra_args=("--tls-cert", str(certs.cert), "--tls-key", str(certs.key))))
    yield srv
    if srv.alive:
        srv.stop()


@pytest.fixture(scope="session")
def limits_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = _started(ServerProcess(tmp_path_factory.mktemp("cometql-limits"), env={
        "COMETQL_MAX_SESSIONS_PER_IP": str(MAX_SESSIONS_PER_IP),
        "COMETQL_COMMAND_RATE": str(COMMAND_RATE),
        "COMETQL_COMMAND_BURST": str(COMMAND_BURST),
        "COMETQL_MAX_MESSAGE_SIZE": str(MAX_MESSAGE_SIZE),
        "COMETQL_MAX_SUBSCRIPTIONS": str(MAX_SUBSCRIPTIONS),
        "COMETQL_MAX_STATEMENTS": str(MAX_STATEMENTS),
        "COMETQL_MAX_INSERT_ROWS": str(MAX_INSERT_ROWS),
        "COMETQL_MAX_IN_VALUES": str(MAX_IN_VALUES),
    }))
    yield srv
    if srv.alive:
        srv.stop()
