"""Where Redis is: ``redis://`` urls parsed into an address, with errors that name the problem.

Its own small module so that ``config`` can check a store url without
importing the store (trio, hiredis); the RESP connection (``store.resp``)
opens the address. Imports nothing of CometQL but ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import ConfigError

__all__ = ["RedisAddress"]


@dataclass(frozen=True, slots=True)
class RedisAddress:
    host: str
    port: int
    db: int
    password: str | None
    username: str | None

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """``redis://[[user]:password@]host[:port][/db]``; the error names what is wrong."""
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ConfigError(f"store url {url!r}: only redis://host:port/db is supported")
        try:
            port = parts.port or 6379
        except ValueError:
            raise ConfigError(f"store url {url!r}: the port is not a number") from None
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ConfigError(f"store url {url!r}: the database after / must be a number")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            db=int(path or 0),
            password=unquote(parts.password) if parts.password else None,
            username=unquote(parts.username) if parts.username else None,
        )

    def __str__(self) -> str:  # never shows the password
        return f"redis://{self.host}:{self.port}/{self.db}"
