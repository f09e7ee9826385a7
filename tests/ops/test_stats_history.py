"""stats_history over the wire, on the embedded SQLite store: PyMySQL, pandas (SQLAlchemy), live sampling.

One server samples every second (``[stats] interval = 1``) and keeps every row
(``keep_days = 0``, so the 2025 rows written into its ``stats.sqlite3`` before
it starts are not pruned). The three dashboard queries run over those rows
through PyMySQL and pandas ``read_sql``, with the column types a chart needs;
browsers connected through the real WebSocket port show up in the samples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pymysql
import pytest
import sqlalchemy
import trio
from pymysql.constants import FIELD_TYPE

from cometql.store import open_sqlite_stats

from ..clients._run import Settings, mysql_cli
from ..servers import ServerProcess
from ..sql._history_data import FROM, PEAKS, PER_CHANNEL, TO, TOTALS, sample_day
from ..web._wire import eventually, mysql_rows, open_browser
from ..web.conftest import wait_for_port
from ._stats import LIVE_TIMEOUT, check_dashboard_frames, check_dashboard_queries, engine, query

HISTORY_DEV = 3001  # the dev whose 2025 history is written before the server starts


async def _prefill(path: Path) -> None:
    async with open_sqlite_stats(path) as stats:
        await stats.append_stats(sample_day(HISTORY_DEV))


@pytest.fixture(scope="module")
def stats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("cometql-stats")
    trio.run(_prefill, data / "stats.sqlite3")
    srv = ServerProcess(data, env={"COMETQL_STATS_INTERVAL": "1", "COMETQL_STATS_KEEP_DAYS": "0"}).start()
    wait_for_port(srv.ws_port)
    yield srv
    if srv.alive:
        srv.stop()


def test_the_dashboard_queries_from_pymysql(stats_server: ServerProcess) -> None:
    check_dashboard_queries(stats_server, HISTORY_DEV)


def test_the_dashboard_queries_from_pandas(stats_server: ServerProcess) -> None:
    check_dashboard_frames(stats_server, HISTORY_DEV)


def test_each_dev_sees_only_its_own_history(stats_server: ServerProcess, dev: int) -> None:
    assert query(stats_server, dev, PEAKS)[1] == []
    assert query(stats_server, dev, "SELECT COUNT(*) FROM stats_history WHERE time < '2026-01-01'")[1] == [(0,)]


def test_bi_schema_discovery(stats_server: ServerProcess, dev: int) -> None:
    columns, rows = query(stats_server, dev, "SELECT DATABASE()")
    assert (columns, rows) == ([("DATABASE()", FIELD_TYPE.VAR_STRING)], [("CometQL_v1",)])
    _, rows = query(stats_server, dev, "SHOW CREATE TABLE stats_history")
    assert rows == [("stats_history", "CREATE TABLE `stats_history` (\n  `time` datetime NOT NULL,\n"
                     "  `channel` varchar(64) NOT NULL,\n  `sessions` bigint(20) NOT NULL,\n"
                     "  `users` bigint(20) NOT NULL,\n  `published` bigint(20) NOT NULL,\n"
                     "  `delivered` bigint(20) NOT NULL,\n  PRIMARY KEY (`time`,`channel`)\n"
                     ") ENGINE=CometQL DEFAULT CHARSET=utf8mb4")]
    _, rows = query(stats_server, dev, "SHOW CREATE TABLE pipes")
    assert rows[0][0] == "pipes" and "`users` int(11) NOT NULL" in str(rows[0][1])
    _, rows = query(stats_server, dev, "SELECT table_name, column_name, data_type FROM information_schema.columns "
                                       "WHERE table_schema=DATABASE() AND table_name = 'stats_history'")
    assert rows == [("stats_history", "time", "DATETIME"), ("stats_history", "channel", "VARCHAR"),
                    *(("stats_history", c, "BIGINT") for c in ("sessions", "users", "published", "delivered"))]
    _, rows = query(stats_server, dev, "SELECT DISTINCT table_name FROM information_schema.columns "
                                       "WHERE table_schema=DATABASE()")
    assert {r[0] for r in rows} >= {"pipes", "users_in_pipes", "users_time", "stats_history"}
    db = engine(stats_server, dev)
    try:  # what a BI tool reads through SQLAlchemy's inspector
        assert "stats_history" in sqlalchemy.inspect(db).get_table_names()
    finally:
        db.dispose()


def test_the_table_is_read_only_over_the_wire(stats_server: ServerProcess, dev: int) -> None:
    for sql in ("INSERT INTO stats_history (channel) VALUES ('x')", "DELETE FROM stats_history WHERE time = 1"):
        with pytest.raises(pymysql.MySQLError) as caught:
            query(stats_server, dev, sql)
        assert caught.value.args == (10, "Table `stats_history` is read only")


async def test_live_sessions_users_and_messages_are_sampled(stats_server: ServerProcess, dev: int) -> None:
    for user in (1, 2):
        mysql_rows(stats_server, dev, f"INSERT INTO users_auth (id, hash) VALUES ({user}, 'h{user}')")
    async with (open_browser(stats_server, dev, user_id=1, key="h1") as tab1,
                open_browser(stats_server, dev, user_id=1, key="h1") as tab2,
                open_browser(stats_server, dev, user_id=2, key="h2") as other,
                open_browser(stats_server, dev) as anonymous):
        browsers = (tab1, tab2, other, anonymous)
        for browser in browsers:
            await browser.subscribe("chat")
        for n in range(3):
            mysql_rows(stats_server, dev, f"INSERT INTO pipes_messages (name, event, message) VALUES "
                                          f"('chat', 'e', 'm{n}')")
        for browser in browsers:
            await browser.recv_many(3)

        def sampled() -> bool:
            _, rows = query(stats_server, dev, "SELECT channel, sessions, users FROM stats_history "
                                               "WHERE time = (SELECT MAX(time) FROM stats_history)")
            assert sorted(rows) == [("", 4, 2), ("chat", 4, 2)]  # user 1's two tabs are one user
            _, sums = query(stats_server, dev, "SELECT SUM(published), SUM(delivered) FROM stats_history "
                                               "WHERE channel = 'chat'")
            assert sums == [(3, 12)]
            return True

        await eventually(sampled, timeout=LIVE_TIMEOUT)
    # the same dashboard query over the last minutes, as Grafana would send it now
    recent = ('SELECT time AS "time", users, sessions FROM stats_history WHERE channel = \'\' '
              "AND time BETWEEN FROM_UNIXTIME(UNIX_TIMESTAMP() - 600) AND FROM_UNIXTIME(UNIX_TIMESTAMP() + 60) "
              "ORDER BY time")
    columns, rows = query(stats_server, dev, recent)
    assert columns[0] == ("time", FIELD_TYPE.DATETIME)
    assert (2, 4) in [(users, sessions) for _, users, sessions in rows]
    assert all(isinstance(t, datetime) for t, _, _ in rows)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def grafana_expand(sql: str, start: int = FROM, end: int = TO) -> str:
    """What Grafana's MySQL data source sends for the macros the dashboard uses."""
    sql = re.sub(r"\$__timeGroupAlias\((\w+), (\d+)m\)",
                 lambda m: f'UNIX_TIMESTAMP({m[1]}) DIV {int(m[2]) * 60} * {int(m[2]) * 60} AS "time"', sql)
    between = f"BETWEEN FROM_UNIXTIME({start}) AND FROM_UNIXTIME({end})"
    sql = re.sub(r"\$__timeFilter\((\w+)\)", lambda m: f"{m[1]} {between}", sql)
    assert "$__" not in sql, sql
    return sql


def _words(sql: str) -> str:
    return " ".join(sql.replace("\n", " ").rstrip(";").split())


def test_the_grafana_example_dashboard_runs_the_issue_queries(stats_server: ServerProcess) -> None:
    dashboard = json.loads((EXAMPLES / "grafana" / "cometql-dashboard.json").read_text())
    sent = [grafana_expand(t["rawSql"]) for p in dashboard["panels"] for t in p["targets"]]
    assert {_words(s) for s in sent} >= {_words(TOTALS), _words(PER_CHANNEL), _words(PEAKS)}
    for sql in sent:
        columns, rows = query(stats_server, HISTORY_DEV, sql)
        assert rows, sql
        if columns[0][0] == "time":  # Grafana's time column: a DATETIME or a unix time
            assert columns[0][1] in (FIELD_TYPE.DATETIME, FIELD_TYPE.LONGLONG)
        assert all(code in (FIELD_TYPE.LONGLONG, FIELD_TYPE.DOUBLE, FIELD_TYPE.DATETIME, FIELD_TYPE.DATE)
                   for name, code in columns if name not in ("metric",))


def test_the_history_example_for_the_mysql_cli(stats_server: ServerProcess) -> None:
    script = (EXAMPLES / "sql" / "history.sql").read_text()
    out = mysql_cli(Settings.for_dev(stats_server, HISTORY_DEV), input=script).stdout
    assert [line.split("\t") for line in out.splitlines()] == [
        ["day", "peak_users", "peak_sessions"], ["2025-11-30", "11", "14"], ["2025-12-01", "34", "37"],
        ["day", "published", "delivered"], ["2025-11-30", "360", "900"], ["2025-12-01", "2760", "6900"],
        # the last 24 hours: nothing in 2025's history (an empty result prints nothing)
    ]
