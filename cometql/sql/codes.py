"""CometQL's error codes and exact messages (CppComet's, SQLSTATE HY000).

Only the codes CometQL sends are here. CppComet's 2 (not implemented) has no
case left; its 16 and 403 (failed or missing login) are MySQL's own 1045 here,
sent by the handshake, which every driver already understands.
"""

from __future__ import annotations

from ..errors import SQLError

__all__ = [
    "ERR_COLUMNS",
    "ERR_EMPTY",
    "ERR_INTERNAL",
    "ERR_INVALID",
    "ERR_NOT_EXIST",
    "ERR_OVERFLOW",
    "ERR_QUEUE_FULL",
    "ERR_READ_ONLY",
    "ERR_SYNTAX",
    "ERR_WHERE",
    "bad_column",
    "columns_list",
    "no_key",
    "no_table",
    "queue_full",
    "read_only",
    "required",
    "syntax",
]

ERR_SYNTAX = 3
ERR_READ_ONLY = 10
ERR_OVERFLOW = 11
ERR_INVALID = 12
ERR_WHERE = 13
ERR_COLUMNS = 14
ERR_NOT_EXIST = 15
ERR_EMPTY = 17
#: CometQL's own (not CppComet's): a user's message queue is at its bound (``[queue]`` settings).
ERR_QUEUE_FULL = 429
ERR_INTERNAL = 500

CHANNEL_CHARS = "The channel name can contain only the characters A-Za-z0-9_-"


def syntax() -> SQLError:
    return SQLError(ERR_SYNTAX, "Syntax error in query")


def no_table() -> SQLError:
    return SQLError(ERR_NOT_EXIST, "Table doesn't exist")


def read_only(table: str) -> SQLError:
    return SQLError(ERR_READ_ONLY, f"Table `{table}` is read only")


def bad_column() -> SQLError:
    return SQLError(ERR_COLUMNS, "Not a specific column")


def columns_list() -> SQLError:
    return SQLError(ERR_COLUMNS, "Error in columns list")


def required(column: str) -> SQLError:
    return SQLError(ERR_INVALID, f"field `{column}` is required")


def no_key(delete: bool = False) -> SQLError:
    verb = "Deleting" if delete else "Selection"
    return SQLError(ERR_WHERE, f"{verb} without transferring the requested values of the primary key is not supported")


def queue_full(detail: str) -> SQLError:
    return SQLError(ERR_QUEUE_FULL, f"Queue is full: {detail}")
