"""CometQL: SQL text -> statements -> hub calls, with CppComet's error codes."""

from ._execute import Context, Ok, Result, Rows, execute
from ._fastpath import fast_insert
from ._history import Bounds, TypedRows, bounds, evaluate
from ._parse import parse
from ._statements import (
    Delete,
    Describe,
    HistoryQuery,
    Insert,
    Passthrough,
    Select,
    ShowCreateTable,
    ShowDatabases,
    ShowStatus,
    ShowTables,
    Statement,
)
from ._tables import DATABASE, LISTED_TABLES, STATS_HISTORY, TABLES, Table

__all__ = [
    "DATABASE",
    "LISTED_TABLES",
    "STATS_HISTORY",
    "TABLES",
    "Bounds",
    "Context",
    "Delete",
    "Describe",
    "HistoryQuery",
    "Insert",
    "Ok",
    "Passthrough",
    "Result",
    "Rows",
    "Select",
    "ShowCreateTable",
    "ShowDatabases",
    "ShowStatus",
    "ShowTables",
    "Statement",
    "Table",
    "TypedRows",
    "bounds",
    "evaluate",
    "execute",
    "fast_insert",
    "parse",
]
