"""stats_history's SELECTs in-process: what is loaded (bounds), what SQLite answers, how columns are typed.

The three dashboard queries of issue 15 are run here exactly as Grafana's
MySQL data source expands them, over rows made up for one day (``_history_data``);
the wire tests (``tests/ops/test_stats_history.py``, ``tests/cluster/test_stats_cluster.py``)
send the same text through PyMySQL and pandas.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from cometql.errors import SQLError
from cometql.hub import StatsRow
from cometql.sql import LISTED_TABLES, TABLES, Bounds, Context, HistoryQuery, Rows, bounds, evaluate, execute, parse

from ..hub._helpers import make_hub
from ._cases import BAD_COLUMN, read_only
from ._history_data import (
    FROM,
    MIDNIGHT,
    PEAKS,
    PEAKS_ROWS,
    PER_CHANNEL,
    PER_CHANNEL_FIRST,
    PER_CHANNEL_ROWS,
    TO,
    TOTALS,
    TOTALS_FIRST,
    TOTALS_LAST,
    TOTALS_ROWS,
    sample_day,
)


def history(sql: str) -> HistoryQuery:
    (stmt,) = parse(sql)
    assert isinstance(stmt, HistoryQuery)
    return stmt


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
    assert rows[:4] == PER_CHANNEL_FIRST
    assert len(rows) == PER_CHANNEL_ROWS
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)


def test_totals_over_time_are_datetimes_and_counts() -> None:
    span, columns, kinds, rows = run(TOTALS, sample_day())
    assert span == Bounds(FROM, TO, "")
    assert (columns, kinds) == (["time", "users", "sessions"], ["DATETIME", "BIGINT", "BIGINT"])
    assert (rows[0], rows[-1], len(rows)) == (TOTALS_FIRST, TOTALS_LAST, TOTALS_ROWS)


def test_daily_peak_is_a_date_and_a_count() -> None:
    span, columns, kinds, rows = run(PEAKS, sample_day())
    assert span == Bounds(None, None, "")
    assert (columns, kinds) == (["day", "peak"], ["DATE", "BIGINT"])
    assert sorted(rows) == PEAKS_ROWS


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


def test_show_full_tables_has_the_table_type_inspectors_read() -> None:
    (stmt,) = parse("SHOW FULL TABLES FROM `CometQL_v1`")
    _, result = execute(stmt, make_hub(), Context(7, TO))
    assert isinstance(result, Rows) and result.columns == ("Tables", "Table_type")
    assert result.rows == [(name, "BASE TABLE") for name in LISTED_TABLES]


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


def test_a_query_that_runs_too_long_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cometql.sql._history.MAX_SECONDS", 0.2)
    quadratic = history("SELECT (SELECT COUNT(*) FROM stats_history b WHERE b.users < a.users + a.sessions) "
                        "FROM stats_history a")
    with pytest.raises(SQLError) as caught:
        evaluate(quadratic, sample_day() * 5, TO)
    assert (caught.value.errno, caught.value.message) == (3, "Query stopped: it ran longer than 0.2 s")


@pytest.mark.parametrize("expression", ["randomblob(100000000)", "HEX(ZEROBLOB(100000000))"])
def test_a_query_cannot_build_huge_values(expression: str) -> None:
    with pytest.raises(SQLError) as caught:
        evaluate(history(f"SELECT {expression} FROM stats_history"), sample_day()[:1], TO)
    assert "too big" in caught.value.message
    assert bounds(history(f"SELECT * FROM stats_history WHERE time > {expression}"), TO) == Bounds()


def test_common_table_expressions_are_refused() -> None:
    with pytest.raises(SQLError) as caught:
        parse("WITH r AS (SELECT 1 AS n) SELECT * FROM stats_history WHERE users IN (SELECT n FROM r)")
    assert caught.value.errno == 3
