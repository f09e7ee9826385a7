"""CometQL: SQL text -> statements -> hub calls, with CppComet's error codes."""

from ._execute import Context, Ok, Result, Rows, execute, queued_users
from ._fastpath import fast_insert
from ._parse import parse
from ._statements import (
    Delete,
    Describe,
    Insert,
    Passthrough,
    Select,
    ShowDatabases,
    ShowStatus,
    ShowTables,
    Statement,
)
from ._tables import DATABASE, LISTED_TABLES, TABLES, Table

__all__ = [
    "queued_users",
    "DATABASE",
    "LISTED_TABLES",
    "TABLES",
    "Context",
    "Delete",
    "Describe",
    "Insert",
    "Ok",
    "Passthrough",
    "Result",
    "Rows",
    "Select",
    "ShowDatabases",
    "ShowStatus",
    "ShowTables",
    "Statement",
    "Table",
    "execute",
    "fast_insert",
    "parse",
]
