"""CometQL: SQL text -> statements -> hub calls, with CppComet's error codes."""

from ._execute import BATCH, Context, Ok, Result, Rows, Steps, execute, query_rows, queued_users, run_query, steps
from ._fastpath import fast_insert
from ._history import Bounds, TypedRows, bounds, evaluate
from ._parse import parse, parse_piece
from ._scan import Limits, Piece, split
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
    "BATCH",
    "queued_users",
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
    "Limits",
    "Ok",
    "Passthrough",
    "Piece",
    "Result",
    "Rows",
    "Select",
    "ShowCreateTable",
    "ShowDatabases",
    "ShowStatus",
    "ShowTables",
    "Statement",
    "Steps",
    "Table",
    "TypedRows",
    "bounds",
    "evaluate",
    "execute",
    "fast_insert",
    "parse",
    "parse_piece",
    "query_rows",
    "run_query",
    "split",
    "steps",
]
