"""Parsed CometQL statements: what to do, independent of how it was written.

Both the regex fast path and the sqlglot path produce these, so execution has
one entry point. Statements are frozen values and carry no connection state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._tables import Table
from ._values import Value

if TYPE_CHECKING:
    from sqlglot import expressions as exp

__all__ = [
    "Delete",
    "Describe",
    "HistoryQuery",
    "Insert",
    "Passthrough",
    "Select",
    "ShowCreateTable",
    "ShowDatabases",
    "ShowStatus",
    "ShowTables",
    "Statement",
]


@dataclass(frozen=True, slots=True)
class Insert:
    table: Table
    columns: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...]


@dataclass(frozen=True, slots=True)
class Select:
    table: Table
    #: Output column names (``*`` already expanded) for the simple path.
    columns: tuple[str, ...]
    #: Key values to look up, or None to list every row (scan tables only).
    keys: tuple[Value, ...] | None
    #: The full query when it needs more than a key lookup (filters, COUNT, ORDER BY...).
    query: exp.Select | None = None
    offset: int = 0
    limit: int | None = None
    #: IN lists lifted out of ``query`` by the scanner, by placeholder name (``expand`` puts them back).
    lifted: Mapping[str, tuple[Value, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delete:
    table: Table
    column: str
    keys: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class ShowTables:
    #: ``SHOW FULL TABLES`` (what SQLAlchemy's inspector and BI tools send): with a ``Table_type`` column.
    full: bool = False


@dataclass(frozen=True, slots=True)
class ShowDatabases:
    pass


@dataclass(frozen=True, slots=True)
class ShowStatus:
    global_: bool


@dataclass(frozen=True, slots=True)
class Describe:
    table: Table


@dataclass(frozen=True, slots=True)
class ShowCreateTable:
    table: Table


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """A SELECT on ``stats_history``: the MySQL front loads the dev's rows from the stats store, then
    ``cometql.sql.evaluate`` runs it (see ``_history``)."""

    table: Table
    query: exp.Select


@dataclass(frozen=True, slots=True)
class Passthrough:
    """Anything that is not about our tables (SET, SELECT @@var, USE, ...): mysql-mimic answers it."""

    expression: exp.Expression


Statement = (Insert | Select | Delete | ShowTables | ShowDatabases | ShowStatus | Describe | ShowCreateTable
             | HistoryQuery | Passthrough)
