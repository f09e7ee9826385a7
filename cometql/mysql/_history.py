"""``stats_history`` over the MySQL port: load the dev's rows, run the query off the loop, typed columns.

The one table whose SELECTs need I/O (the stats store) and more than a few
microseconds (SQLite over up to days of rows), so the session hands it here
instead of to ``cometql.sql.execute``. Its columns are typed as MySQL types
them (``DATETIME``, ``DATE``, ``BIGINT``, ``DOUBLE``), as the contract allows
for new tables, so charts and BI tools get times and numbers, not text.
"""

from __future__ import annotations

from typing import Any

import trio
from mysql_mimic import ResultColumn, ResultSet
from mysql_mimic.charset import CharacterSet
from mysql_mimic.types import ColumnType

from ..node import Node
from ..sql import HistoryQuery, bounds, evaluate

__all__ = ["history_result"]

_TYPES = {
    "DATETIME": ColumnType.DATETIME,
    "DATE": ColumnType.DATE,
    "BIGINT": ColumnType.LONGLONG,
    "DOUBLE": ColumnType.DOUBLE,
    "TEXT": ColumnType.VAR_STRING,
}

#: At most two analytic queries at once per process: each may hold days of rows in memory for a moment.
_limiter = trio.CapacityLimiter(2)


def _ascii(column: ResultColumn, value: Any) -> bytes:
    return str(value).encode()


def _column(name: str, kind: str) -> ResultColumn:
    if kind == "TEXT":
        return ResultColumn(name, ColumnType.VAR_STRING)
    # as MySQL sends numbers and times: the binary character set (which has no Python codec: our own encoder)
    return ResultColumn(name, _TYPES[kind], character_set=CharacterSet.binary, text_encoder=_ascii)


async def history_result(node: Node, stmt: HistoryQuery, dev_id: int) -> ResultSet:
    """Raises ``SQLError`` (a bad query) or ``StoreError`` (the stats store failed)."""
    now = node.now()
    span = await trio.to_thread.run_sync(bounds, stmt, now, limiter=_limiter)
    rows = await node.stats.read_stats(dev_id, span.since, span.until, span.channel)
    result = await trio.to_thread.run_sync(evaluate, stmt, rows, now, limiter=_limiter)
    return ResultSet(rows=result.rows, columns=[_column(n, k) for n, k in zip(result.columns, result.kinds,
                                                                                 strict=True)])
