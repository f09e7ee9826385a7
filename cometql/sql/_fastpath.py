"""A regex fast path for the hot statement: a plain INSERT of literal rows.

sqlglot needs ~200 µs for a one-row INSERT and over a millisecond for ten rows
(a backend notifying many users at once); this needs a few µs per row. It
accepts only the plain ``INSERT INTO <table> (cols) VALUES (literals)[, (...)]``
form on the two message tables, every row of a multi-row INSERT as long as the
column list, at most ``max_rows`` rows (and at most ``MOST_ROWS``: a longer
INSERT is parsed in slices by the scanner, so it cannot hold the event loop for
long). It returns None for anything else, which then goes to the scanner and
sqlglot (and their errors); property tests check both paths agree.
"""

from __future__ import annotations

import functools
import re

from ._statements import Insert
from ._tables import TABLES
from ._values import DOUBLE_QUOTED, SINGLE_QUOTED, Value, unescape

__all__ = ["fast_insert"]

_HEAD = re.compile(
    r"\s*(?i:insert)\s+(?i:into)\s+`?(pipes_messages|users_messages)`?\s*"
    r"\(\s*`?([a-z_]+)`?\s*((?:,\s*`?[a-z_]+`?\s*){0,5})\)\s*(?i:values)\s*\(\s*"
)
_COLUMN = re.compile(r"[a-z_]+")
_VALUE = re.compile(rf"{SINGLE_QUOTED}|{DOUBLE_QUOTED}|(-?\d{{1,18}})(?![\w.])", re.S)
_SEP = re.compile(r"\s*(,|\))\s*")
_NEXT_ROW = re.compile(r",\s*\(\s*")
_TAIL = re.compile(r";?\s*\Z")
#: ~5 ms of parsing at most in one go.
MOST_ROWS = 1000


def fast_insert(sql: str, max_rows: int = 10_000) -> Insert | None:
    head = _HEAD.match(sql)
    if head is None:
        return None
    columns = (head.group(2), *_COLUMN.findall(head.group(3)))
    rows: list[tuple[Value, ...]] = []
    max_rows = min(max_rows, MOST_ROWS)
    pos = head.end()
    while True:
        row = _row(sql, pos, len(columns))
        if row is None:
            return None
        values, pos = row
        rows.append(values)
        more = _NEXT_ROW.match(sql, pos)
        if more is None:
            break
        if len(rows) >= max_rows:  # the scanner takes it (and answers the bound's error)
            return None
        pos = more.end()
    if len(rows) > 1 and any(len(r) != len(columns) for r in rows):
        return None  # a ragged multi-row INSERT: the executor's error, by the slow path
    if _TAIL.match(sql, pos) is None:
        return None
    return Insert(TABLES[head.group(1)], columns, tuple(rows))


def _row(sql: str, pos: int, width: int) -> tuple[tuple[Value, ...], int] | None:
    """The literals of one ``(...)`` whose ``(`` ends before ``pos``, and the position after its ``)``.

    A row as long as the column list is one match of a regex made for that width; any other
    row is read value by value (a one-row INSERT with a missing or extra value is still an
    INSERT the executor answers with its error).
    """
    m = _row_pattern(width).match(sql, pos)
    if m is not None:
        groups = m.groups()
        return tuple(_decode(*groups[i:i + 3]) for i in range(0, 3 * width, 3)), m.end()
    values: list[Value] = []
    while True:
        v = _VALUE.match(sql, pos)
        if v is None:
            return None
        values.append(_decode(*v.groups()))
        sep = _SEP.match(sql, v.end())
        if sep is None:
            return None
        pos = sep.end()
        if sep.group(1) == ")":
            return tuple(values), pos
        if len(values) > width:
            return None


def _decode(single: str | None, double: str | None, number: str | None) -> Value:
    if single is not None:
        return unescape(single, "'")
    if double is not None:
        return unescape(double, '"')
    return int(number)  # type: ignore[arg-type]


@functools.cache
def _row_pattern(width: int) -> re.Pattern[str]:
    """``v, v, …)`` for ``width`` values and the space after the ``)``."""
    return re.compile(r"\s*,\s*".join([f"(?:{_VALUE.pattern})"] * width) + r"\s*\)\s*", re.S)
