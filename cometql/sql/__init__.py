"""CometQL: SQL text -> statements -> hub calls, with CppComet's error codes."""

from ._execute import BATCH, Context, Ok, Result, Rows, Steps, execute, query_rows, run_query, steps
from ._fastpath import fast_insert
from ._parse import parse, parse_piece
from ._scan import Limits, Piece, split
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
    "BATCH",
    "DATABASE",
    "LISTED_TABLES",
    "TABLES",
    "Context",
    "Delete",
    "Describe",
    "Insert",
    "Limits",
    "Ok",
    "Passthrough",
    "Piece",
    "Result",
    "Rows",
    "Select",
    "ShowDatabases",
    "ShowStatus",
    "ShowTables",
    "Statement",
    "Steps",
    "Table",
    "execute",
    "fast_insert",
    "parse",
    "parse_piece",
    "query_rows",
    "run_query",
    "split",
    "steps",
]
