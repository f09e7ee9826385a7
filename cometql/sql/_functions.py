"""MySQL's date and time functions for SQLite: how ``stats_history`` queries are translated.

sqlglot translates most of a MySQL query to SQLite by itself; MySQL's date
functions it cannot (SQLite has no ``FROM_UNIXTIME``, ``UNIX_TIMESTAMP``,
``HOUR()``, ``DATE_ADD``...). ``to_sqlite`` rewrites those nodes into calls of
``cq_*`` functions, which ``register`` defines on a connection as Python
functions with MySQL's meaning. Times are ``'YYYY-MM-DD HH:MM:SS'`` text in UTC
(which SQLite compares and sorts correctly); ``now`` is passed in, never read.
``UNIX_TIMESTAMP(time)`` of the table's own column becomes a column of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlglot import expressions as exp

__all__ = ["UNIX_COLUMN", "for_typing", "register", "to_sqlite", "utc_text"]

_FORMAT = "%Y-%m-%d %H:%M:%S"
#: A hidden column of the loaded rows: ``UNIX_TIMESTAMP(time)`` (Grafana groups by it) reads it directly.
UNIX_COLUMN = "cq_time_unix"


def utc_text(unix: float) -> str:
    """A unix time as SQLite's (and MySQL's) ``DATETIME`` text, in UTC."""
    moment = datetime.fromtimestamp(unix, UTC)
    return moment.strftime(_FORMAT) if not moment.microsecond else moment.strftime(_FORMAT + ".%f")


def _moment(value: Any) -> datetime | None:
    """A DATETIME or DATE value (text) as a naive UTC datetime; None for anything else."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _text(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime(_FORMAT) if not moment.microsecond else moment.strftime(_FORMAT + ".%f")


def _from_unixtime(value: Any) -> str | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if seconds < 0 or seconds > 32536771199:  # MySQL's range
        return None
    return utc_text(seconds)


def _unix_timestamp(value: Any) -> int | float | None:
    moment = _moment(value)
    if moment is None:
        return None
    seconds = (moment - datetime(1970, 1, 1)).total_seconds()
    return int(seconds) if seconds.is_integer() else seconds


def _date(value: Any) -> str | None:
    moment = _moment(value)
    return None if moment is None else moment.date().isoformat()


def _strftime(value: Any, fmt: Any) -> str | None:
    moment = _moment(value)
    return None if moment is None or not isinstance(fmt, str) else moment.strftime(fmt)


def _strptime(value: Any, fmt: Any) -> str | None:
    try:
        return _text(datetime.strptime(str(value), str(fmt)))
    except ValueError:
        return None


_PARTS: dict[str, Callable[[datetime], int]] = {
    "YEAR": lambda m: m.year,
    "QUARTER": lambda m: (m.month - 1) // 3 + 1,
    "MONTH": lambda m: m.month,
    "WEEK": lambda m: int(m.strftime("%U")),  # MySQL's default mode 0: weeks start on Sunday
    "DAY": lambda m: m.day,
    "DAYOFMONTH": lambda m: m.day,
    "DAYOFWEEK": lambda m: m.isoweekday() % 7 + 1,  # 1 = Sunday
    "DAYOFYEAR": lambda m: m.timetuple().tm_yday,
    "HOUR": lambda m: m.hour,
    "MINUTE": lambda m: m.minute,
    "SECOND": lambda m: m.second,
}


def _part(unit: Any, value: Any) -> int | None:
    moment = _moment(value)
    part = _PARTS.get(str(unit).upper())
    return None if moment is None or part is None else part(moment)


_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400, "WEEK": 604800}
_MONTHS = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}


def _date_add(value: Any, amount: Any, unit: Any) -> str | None:
    moment = _moment(value)
    unit = str(unit).upper()
    try:
        n = float(amount)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    if unit in _SECONDS:
        moment += timedelta(seconds=n * _SECONDS[unit])
    elif unit in _MONTHS:
        months = moment.month - 1 + int(n) * _MONTHS[unit]
        year, month = moment.year + months // 12, months % 12 + 1
        days = (date(year + month // 12, month % 12 + 1, 1) - date(year, month, 1)).days
        moment = moment.replace(year=year, month=month, day=min(moment.day, days))
    else:
        return None
    date_only = isinstance(value, str) and len(value.strip()) == 10 and unit not in ("SECOND", "MINUTE", "HOUR")
    return moment.date().isoformat() if date_only else _text(moment)


def register(db: sqlite3.Connection, now: int) -> None:
    """Define the ``cq_*`` functions on ``db``; ``NOW()`` and friends answer ``now``."""
    functions: list[tuple[str, int, Callable[..., Any]]] = [
        ("cq_from_unixtime", 1, _from_unixtime),
        ("cq_unix_timestamp", 1, _unix_timestamp),
        ("cq_now", 0, lambda: utc_text(now)),
        ("cq_date", 1, _date),
        ("cq_datetime", 1, lambda v: _text(_moment(v))),
        ("cq_strftime", 2, _strftime),
        ("cq_strptime", 2, _strptime),
        ("cq_part", 2, _part),
        ("cq_date_add", 3, _date_add),
    ]
    for name, arity, fn in functions:
        db.create_function(name, arity, fn, deterministic=name != "cq_now")


def _call(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _unit(node: exp.Expr | None, default: str = "DAY") -> exp.Literal:
    return exp.Literal.string(node.name.upper() if node is not None else default)


_NOW = ("NOW", "SYSDATE", "LOCALTIME", "LOCALTIMESTAMP", "UTC_TIMESTAMP", "CURRENT_TIMESTAMP")
_PART_NODES: dict[type[exp.Expr], str] = {
    exp.Year: "YEAR", exp.Quarter: "QUARTER", exp.Month: "MONTH", exp.Week: "WEEK", exp.Day: "DAY",
    exp.DayOfMonth: "DAYOFMONTH", exp.DayOfWeek: "DAYOFWEEK", exp.DayOfYear: "DAYOFYEAR", exp.Hour: "HOUR",
    exp.Minute: "MINUTE", exp.Second: "SECOND",
}


def _interval_arithmetic(node: exp.Add | exp.Sub) -> exp.Expr | None:
    left, right = node.this, node.expression
    if isinstance(left, exp.Interval) and isinstance(node, exp.Add):
        left, right = right, left
    if not isinstance(right, exp.Interval):
        return None
    amount = right.this if isinstance(node, exp.Add) else exp.Neg(this=right.this)
    return _call("cq_date_add", left, amount, _unit(right.args.get("unit")))


def _is_time_column(node: exp.Expr) -> bool:
    return isinstance(node, exp.Column) and node.name == "time"  # the query reads one table


def _rewrite(node: exp.Expr) -> exp.Expr:
    """One node of a MySQL query as SQLite understands it (children are rewritten first)."""
    if isinstance(node, exp.UnixToTime):
        moment = _call("cq_from_unixtime", node.this)
        fmt = node.args.get("format")
        return _call("cq_strftime", moment, fmt) if fmt is not None else moment
    if isinstance(node, exp.UnixToStr):
        return _call("cq_strftime", _call("cq_from_unixtime", node.this), node.args["format"])
    if isinstance(node, (exp.StrToUnix, exp.TimeToUnix, exp.TimeStrToUnix)):
        return _call("cq_unix_timestamp", node.this)
    if isinstance(node, (exp.CurrentTimestamp, exp.CurrentDatetime, exp.UtcTimestamp)):
        return _call("cq_now")
    if isinstance(node, exp.CurrentDate):
        return _call("cq_date", _call("cq_now"))
    if isinstance(node, exp.Anonymous):
        name = str(node.this).upper()
        if name in _NOW and not node.expressions:
            return _call("cq_now")
        if name in ("CURDATE", "UTC_DATE") and not node.expressions:
            return _call("cq_date", _call("cq_now"))
        if name == "UNIX_TIMESTAMP":
            if len(node.expressions) == 1 and _is_time_column(node.expressions[0]):
                return exp.column(UNIX_COLUMN)  # the loaded rows carry it: no conversion per row
            return _call("cq_unix_timestamp", *(node.expressions or [_call("cq_now")]))
        return node
    if isinstance(node, (exp.TsOrDsToDate, exp.Date)) and not node.args.get("format"):
        return _call("cq_date", node.this)
    if isinstance(node, (exp.TsOrDsToTimestamp, exp.Timestamp)):
        return _call("cq_datetime", node.this)
    if isinstance(node, exp.TimeToStr):
        return _call("cq_strftime", node.this, node.args["format"])
    if isinstance(node, (exp.StrToTime, exp.StrToDate)):
        return _call("cq_strptime", node.this, node.args["format"])
    if type(node) in _PART_NODES:
        return _call("cq_part", exp.Literal.string(_PART_NODES[type(node)]), node.this)
    if isinstance(node, exp.Extract):
        return _call("cq_part", exp.Literal.string(node.name.upper()), node.expression)
    if isinstance(node, (exp.DateAdd, exp.DateSub)):
        amount = node.expression if isinstance(node, exp.DateAdd) else exp.Neg(this=node.expression)
        return _call("cq_date_add", node.this, amount, _unit(node.args.get("unit")))
    if isinstance(node, (exp.Add, exp.Sub)):
        return _interval_arithmetic(node) or node
    if isinstance(node, exp.Cast) and node.to.this in (exp.DataType.Type.DATETIME, exp.DataType.Type.TIMESTAMP):
        return _call("cq_datetime", node.this)
    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.DATE:
        return _call("cq_date", node.this)
    return node


def _rewrite_tree(node: exp.Expr) -> exp.Expr:
    """Children first, so that functions nested in functions are rewritten too."""
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expr):
            node.set(key, _rewrite_tree(value))
        elif isinstance(value, list):
            node.set(key, [_rewrite_tree(v) if isinstance(v, exp.Expr) else v for v in value])
    return _rewrite(node)


def for_typing(query: exp.Expr) -> exp.Expr:
    """A copy in which the functions sqlglot does not know by name (``NOW()``...) are ones it can type."""

    def known(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and str(node.this).upper() in _NOW and not node.expressions:
            return exp.CurrentTimestamp()
        return node

    return query.copy().transform(known)


def to_sqlite(query: exp.Expr) -> str:
    """The SQLite text of a MySQL expression or query."""
    return _rewrite_tree(query.copy()).sql(dialect="sqlite")
