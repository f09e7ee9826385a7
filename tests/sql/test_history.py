"""stats_history's SELECTs in-process: what is loaded (bounds), what SQLite answers, how columns are typed.

The three dashboard queries of issue 15 are run here exactly as Grafana's
MySQL data source expands them, over rows made up for one day; the wire tests
(``tests/ops/test_stats_history.py``) send the same text through PyMySQL and pandas.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from cometql.errors import SQLError
from cometql.hub import StatsRow
from cometql.sql import LISTED_TABLES, TABLES, Bounds, Context, HistoryQuery, Rows, bounds, evaluate, execute, parse

from ..hub._helpers import make_hub
from ._cases import BAD_COLUMN, read_only

FROM, TO = 1764540000, 1764626400  # 2025-11-30 22:00 and 2025-12-01 22:00 UTC: one day in UTC+2
MIDNIGHT = FROM + 7200  # 2025-12-01 00:00 UTC
PER_CHANNEL = (
    'SELECT UNIX_TIMESTAMP(time) DIV 300 * 300 AS "time", channel AS metric, MAX(users) AS value '
    "FROM stats_history WHERE time BETWEEN FROM_UNIXTIME(1764540000) AND FROM_UNIXTIME(1764626400) "
    "AND channel <> '' GROUP BY 1, 2 ORDER BY 1;"
)
TOTALS = (
    'SELECT time AS "time", users, sessions FROM stats_history WHERE channel = \'\' '
    "AND time BETWEEN FROM_UNIXTIME(1764540000) AND FROM_UNIXTIME(1764626400) ORDER BY time;"
)
PEAKS = "SELECT DATE(time) AS day, MAX(users) AS peak FROM stats_history WHERE channel = '' GROUP BY DATE(time);"


def history(sql: str) -> HistoryQuery:
    (stmt,) = parse(sql)
    assert isinstance(stmt, HistoryQuery)
    return stmt


def sample_day() -> list[StatsRow]:
    """One row per minute from an hour before FROM to an hour after TO: totals, 'chat' and 'news'."""
    rows = []
    for minute in range(-60, 24 * 60 + 60):
        t = FROM + minute * 60
        users = 10 + minute // 60  # rises by one an hour
        rows += [StatsRow(7, t, "", users + 3, users, 2, 5), StatsRow(7, t, "chat", 3, minute % 5, 1, 3),
                 StatsRow(7, t, "news", 1, 1, 1, 2)]
    return rows


def run(sql: str, rows: list[StatsRow], now: int = TO) -> tuple[Bounds, list[str], list[str], list[tuple[object, ...]]]:
    """What the MySQL front does: bounds -> load (filtered here like the stores) -> evaluate."""
    stmt = history(sql)
    span = bounds(stmt, now)
    loaded = [r for r in rows if (span.since is None or r.time >= span.since)
              and (span.until is None or r.time <= span.until) and (span.channel is None or r.channel == span.channel)]
    result = evaluate(stmt, loaded, now)
    return span, list(result.columns), list(result.kinds), result.rows


def test_per_channel_five_minute_maximum() -> None:
    span, columns, kinds, rows = run(PER_CHANNEL, sample_day())
    assert span == Bounds(FROM, TO, None)
    assert (columns, kinds) == (["time", "metric", "value"], ["BIGINT", "TEXT", "BIGINT"])
    assert rows[:4] == [(FROM, "chat", 4), (FROM, "news", 1), (FROM + 300, "chat", 4), (FROM + 300, "news", 1)]
    assert len(rows) == 2 * (288 + 1)  # every 5 minutes of the day and the closing minute, two channels
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)


def test_totals_over_time_are_datetimes_and_counts() -> None:
    span, columns, kinds, rows = run(TOTALS, sample_day())
    assert span == Bounds(FROM, TO, "")
    assert (columns, kinds) == (["time", "users", "sessions"], ["DATETIME", "BIGINT", "BIGINT"])
    assert rows[0] == (datetime(2025, 11, 30, 22, 0), 10, 13)
    assert rows[-1] == (datetime(2025, 12, 1, 22, 0), 34, 37)
    assert len(rows) == 24 * 60 + 1


def test_daily_peak_is_a_date_and_a_count() -> None:
    span, columns, kinds, rows = run(PEAKS, sample_day())
    assert span == Bounds(None, None, "")
    assert (columns, kinds) == (["day", "peak"], ["DATE", "BIGINT"])
    assert sorted(rows) == [(date(2025, 11, 30), 11), (date(2025, 12, 1), 34)]  # days in UTC


@pytest.mark.parametrize("where, expected", [
    ("time >= '2025-12-01 00:00:00' AND time < '2025-12-02'", Bounds(MIDNIGHT, MIDNIGHT + 86400, None)),
    ("'2025-12-01' <= time", Bounds(MIDNIGHT, None, None)),
    ("time > NOW() - INTERVAL 1 DAY", Bounds(TO - 86400, None, None)),
    ("time = FROM_UNIXTIME(1764540000) AND channel = 'chat'", Bounds(FROM, FROM, "chat")),
    ("time BETWEEN FROM_UNIXTIME(1764540000) AND FROM_UNIXTIME(1764626400) AND time <= '2025-12-01 12:00:00'",
     Bounds(FROM, MIDNIGHT + 43200, None)),
    ("(time > FROM_UNIXTIME(1764540000)) AND users > 3", Bounds(FROM, None, None)),
    ("time > FROM_UNIXTIME(1764540000) OR channel = 'chat'", Bounds()),  # OR: nothing can be pinned
    ("time > 1764540000", Bounds()),  # a number is not a time: load everything, SQLite decides
    ("UNIX_TIMESTAMP(time) > 1764540000", Bounds()),
])
def test_bounds_narrow_what_is_loaded_and_never_exclude_a_match(where: str, expected: Bounds) -> None:
    assert bounds(history(f"SELECT * FROM stats_history WHERE {where}"), TO) == expected


@pytest.mark.parametrize("expression, value, kind", [
    ("FROM_UNIXTIME(1764540000)", datetime(2025, 11, 30, 22), "DATETIME"),
    ("UNIX_TIMESTAMP('2025-12-01 00:00:00')", MIDNIGHT, "BIGINT"),
    ("UNIX_TIMESTAMP()", TO, "BIGINT"),
    ("NOW()", datetime(2025, 12, 1, 22), "DATETIME"),
    ("CURDATE()", date(2025, 12, 1), "DATE"),
    ("DATE_FORMAT(FROM_UNIXTIME(1764545400), '%Y-%m-%d %H:%i')", "2025-11-30 23:30", "TEXT"),
    ("HOUR(FROM_UNIXTIME(1764545400))", 23, "BIGINT"),
    ("MINUTE(FROM_UNIXTIME(1764545400))", 30, "BIGINT"),
    ("DAYOFWEEK('2025-12-01')", 2, "BIGINT"),  # a Monday
    ("DATE_SUB(FROM_UNIXTIME(1764540000), INTERVAL 5 MINUTE)", datetime(2025, 11, 30, 21, 55), "DATETIME"),
    ("FROM_UNIXTIME(1764540000) + INTERVAL 1 MONTH", datetime(2025, 12, 30, 22), "DATETIME"),
    ("'2025-01-31' + INTERVAL 1 MONTH", date(2025, 2, 28), "DATE"),
    ("7 DIV 2", 3, "BIGINT"),
    ("7 / 2", 3.5, "DOUBLE"),
])
def test_mysql_date_functions_keep_their_meaning(expression: str, value: object, kind: str) -> None:
    rows = [StatsRow(7, FROM, "", 1, 1, 0, 0)]
    _, _, kinds, result = run(f"SELECT {expression} AS x FROM stats_history", rows)
    assert (result, kinds) == ([(value,)], [kind])


def test_star_lists_the_declared_columns_and_an_empty_table_keeps_the_types() -> None:
    _, columns, kinds, rows = run("SELECT * FROM stats_history", [])
    assert columns == ["time", "channel", "sessions", "users", "published", "delivered"]
    assert kinds == ["DATETIME", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT"]
    assert rows == []


def test_unnamed_expressions_are_named_by_their_text() -> None:
    _, columns, _, rows = run("SELECT COUNT(*), MAX(users) FROM CometQL_v1.stats_history", sample_day()[:3])
    assert (columns, rows) == (["COUNT(*)", "MAX(users)"], [(3, 9)])


@pytest.mark.parametrize("sql, error", [
    ("SELECT nosuch FROM stats_history", BAD_COLUMN),
    ("SELECT cq_time_unix FROM stats_history", BAD_COLUMN),  # the loaded rows' helper column is not the table's
])
def test_unknown_columns_are_refused_while_parsing(sql: str, error: tuple[int, str]) -> None:
    with pytest.raises(SQLError) as caught:
        parse(sql)
    assert (caught.value.errno, caught.value.message) == error


def test_what_sqlite_cannot_run_is_a_syntax_error_naming_why() -> None:
    with pytest.raises(SQLError) as caught:
        evaluate(history("SELECT NOSUCHFUNCTION(users) FROM stats_history"), [], TO)
    assert caught.value.errno == 3
    assert "nosuchfunction" in caught.value.message.lower()


@pytest.mark.parametrize("sql", ["INSERT INTO stats_history (channel) VALUES ('x')",
                                 "DELETE FROM stats_history WHERE time = 1"])
def test_the_table_is_read_only(sql: str) -> None:
    with pytest.raises(SQLError) as caught:
        stmts = parse(sql)
        execute(stmts[0], make_hub(), Context(7, TO))
    assert (caught.value.errno, caught.value.message) == read_only("stats_history")


def test_show_tables_lists_it_after_cppcomets_seven() -> None:
    assert LISTED_TABLES == ("users_auth", "users_time", "users_messages", "pipes_messages", "users_in_pipes",
                             "pipes", "pipes_settings", "stats_history")


@pytest.mark.parametrize("name", sorted(TABLES))
def test_show_create_table_matches_describe(name: str) -> None:
    (stmt,) = parse(f"SHOW CREATE TABLE `{name}`")
    _, result = execute(stmt, make_hub(), Context(7, TO))
    assert isinstance(result, Rows) and result.columns == ("Table", "Create Table")
    ((table, ddl),) = result.rows
    assert table == name
    assert isinstance(ddl, str) and ddl.startswith(f"CREATE TABLE `{name}` (\n")
    (describe,) = parse(f"DESCRIBE {name}")
    _, described = execute(describe, make_hub(), Context(7, TO))
    assert isinstance(described, Rows)
    for field, type_, *_ in described.rows:
        assert f"  `{field}` {type_} NOT NULL" in ddl


def test_show_create_table_of_an_unknown_table() -> None:
    with pytest.raises(SQLError) as caught:
        parse("SHOW CREATE TABLE nosuch")
    assert caught.value.errno == 15
