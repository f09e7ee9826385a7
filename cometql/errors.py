"""CometQL's exceptions.

::

    CometQLError
    ├── SQLError          a statement failed: carries the CometQL errno and message
    ├── ConfigError       a setting is missing or wrong (message names the setting)
    └── StoreError        the durable store failed (disk full, Redis gone, ...)
        └── QueueClaimed  another cluster node is handing out this user's queue (retry later)

The layers above the dependency seams only ever catch these.
"""

from __future__ import annotations

__all__ = ["CometQLError", "ConfigError", "QueueClaimed", "SQLError", "StoreError"]


class CometQLError(Exception):
    """Base of every error CometQL raises on purpose."""


class SQLError(CometQLError):
    """An ERR packet to send: ``errno`` is CometQL's code, SQLSTATE is always HY000."""

    sqlstate = "HY000"

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(f"{errno}: {message}")
        self.errno = errno
        self.message = message


class ConfigError(CometQLError):
    pass


class StoreError(CometQLError):
    pass


class QueueClaimed(StoreError):
    """A page of a user's queue was not read: another node holds the user's lease (``retry_after`` s)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"another node is handing out this queue (lease ends in {retry_after:.2f} s)")
        self.retry_after = retry_after
