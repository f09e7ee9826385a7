"""The MySQL port's slice of the configuration, frozen when the front is built."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ..config import Config
from ..listen import open_files_limit, port_budget
from ..sql import Limits
from ..tls import server_context

__all__ = ["MysqlOptions"]


@dataclass(frozen=True, slots=True)
class MysqlOptions:
    host: str
    port: int
    password: str
    dev_index_size: int
    max_query_size: int
    max_message_size: int
    #: None: CLIENT_SSL is not advertised.
    tls: ssl.SSLContext | None = None
    #: Share the port with sibling worker processes (``--workers``).
    reuse_port: bool = False
    #: A connection acts only for its login's dev: ``USE db_N`` of another dev is refused (1044).
    pin_dev: bool = False
    #: Seconds from connecting to logged in; then the connection is closed.
    login_timeout: float = 10.0
    #: Connections at once, and of them not logged in yet (``listen.Admission``).
    max_connections: int = 1000
    max_unauthenticated: int = 256
    #: What one query may ask for (statements, rows, IN values, nesting, tokens).
    limits: Limits = Limits()

    @classmethod
    def from_config(cls, config: Config, *, reuse_port: bool = False) -> MysqlOptions:
        return cls(config.mysql_host, config.mysql_port, config.password, config.dev_index_size,
                   config.max_query_size, config.max_message_size, server_context(config), reuse_port,
                   config.pin_dev, config.login_timeout,
                   config.mysql_max_connections or port_budget(open_files_limit()), config.max_unauthenticated,
                   Limits(statements=config.max_statements, rows=config.max_insert_rows, values=config.max_in_values))
