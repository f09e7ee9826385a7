"""The MySQL port's slice of the configuration, frozen when the front is built."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ..config import Config
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
    #: What one query may ask for (statements, rows, IN values, nesting, tokens).
    limits: Limits = Limits()

    @classmethod
    def from_config(cls, config: Config, *, reuse_port: bool = False) -> MysqlOptions:
        return cls(config.mysql_host, config.mysql_port, config.password, config.dev_index_size,
                   config.max_query_size, config.max_message_size, server_context(config), reuse_port,
                   config.pin_dev, config.login_timeout,
                   Limits(statements=config.max_statements, rows=config.max_insert_rows, values=config.max_in_values))
