"""CometQL's error codes and exact messages (CppComet's, SQLSTATE HY000).

Only the codes CometQL sends are here. CppComet's 2 (not implemented) has no
case left; its 16 and 403 (failed or missing login) are MySQL's own 1045 here,
sent by the handshake, which every driver already understands. CppComet
defined 18 and 19 for too many conditions / values but never sent them; CometQL
sends them, and 22-24, for the bounds of ``Limits`` (``_scan.py``): each
message says the bound, so a developer knows what to change.
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
    "ERR_TOO_COMPLEX",
    "ERR_TOO_DEEP",
    "ERR_TOO_MANY_CONDITIONS",
    "ERR_TOO_MANY_STATEMENTS",
    "ERR_TOO_MANY_VALUES",
    "ERR_WHERE",
    "bad_column",
    "columns_list",
    "no_key",
    "no_table",
    "queue_full",
    "read_only",
    "required",
    "syntax",
    "too_complex",
    "too_deep",
    "too_many_conditions",
    "too_many_filter_values",
    "too_many_rows",
    "too_many_statements",
    "too_many_values",
]

ERR_SYNTAX = 3
ERR_READ_ONLY = 10
ERR_OVERFLOW = 11
ERR_INVALID = 12
ERR_WHERE = 13
ERR_COLUMNS = 14
ERR_NOT_EXIST = 15
ERR_EMPTY = 17
ERR_TOO_MANY_CONDITIONS = 18
ERR_TOO_MANY_VALUES = 19
ERR_TOO_MANY_STATEMENTS = 22
ERR_TOO_DEEP = 23
ERR_TOO_COMPLEX = 24
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


def too_many_conditions(bound: int) -> SQLError:
    return SQLError(ERR_TOO_MANY_CONDITIONS, f"Error in expression list, too many conditions "
                                             f"(at most {bound} AND/OR/XOR in a statement; use IN (...) for a list)")


def too_many_values(bound: int) -> SQLError:
    return SQLError(ERR_TOO_MANY_VALUES, f"Error in expression list, too many values (at most {bound} in an IN list)")


def too_many_filter_values(bound: int) -> SQLError:
    return SQLError(ERR_TOO_MANY_VALUES, f"Error in expression list, too many values (at most {bound} in IN lists "
                                         f"that filter rows; the key's own IN list may be longer)")


def too_many_rows(bound: int) -> SQLError:
    return SQLError(ERR_TOO_MANY_VALUES, f"Error in values list, too many rows (at most {bound} in one INSERT)")


def too_many_statements(bound: int) -> SQLError:
    return SQLError(ERR_TOO_MANY_STATEMENTS, f"Too many statements in one query (at most {bound})")


def too_deep(bound: int) -> SQLError:
    return SQLError(ERR_TOO_DEEP, f"Expression nested too deeply (at most {bound} levels)")


def too_complex(bound: int) -> SQLError:
    return SQLError(ERR_TOO_COMPLEX, f"Statement too complex (at most {bound} tokens, "
                                     f"not counting lists of literal values)")
def queue_full(detail: str) -> SQLError:
    return SQLError(ERR_QUEUE_FULL, f"Queue is full: {detail}")
