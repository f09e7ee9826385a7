"""stats_history test data: the three dashboard queries of issue 15 and a day of rows they run over.

Grafana's MySQL data source expands ``$__timeGroupAlias(time, 5m)`` to
``UNIX_TIMESTAMP(time) DIV 300 * 300 AS "time"`` and ``$__timeFilter(time)`` to
``time BETWEEN FROM_UNIXTIME(a) AND FROM_UNIXTIME(b)``: the queries are the text it sends.
"""

from __future__ import annotations

from datetime import date, datetime

from cometql.hub import StatsRow

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

#: What the three queries answer over ``sample_day`` (first rows, row counts).
PER_CHANNEL_FIRST = [(FROM, "chat", 4), (FROM, "news", 1), (FROM + 300, "chat", 4), (FROM + 300, "news", 1)]
PER_CHANNEL_ROWS = 2 * (288 + 1)  # every 5 minutes of the day and the closing minute, two channels
TOTALS_FIRST, TOTALS_LAST = (datetime(2025, 11, 30, 22, 0), 10, 13), (datetime(2025, 12, 1, 22, 0), 34, 37)
TOTALS_ROWS = 24 * 60 + 1
PEAKS_ROWS = [(date(2025, 11, 30), 11), (date(2025, 12, 1), 34)]  # days in UTC


def sample_day(dev: int = 7) -> list[StatsRow]:
    """One row per minute from an hour before FROM to an hour after TO: totals, 'chat' and 'news'."""
    rows = []
    for minute in range(-60, 24 * 60 + 60):
        t = FROM + minute * 60
        users = 10 + minute // 60  # rises by one an hour
        rows += [StatsRow(dev, t, "", users + 3, users, 2, 5), StatsRow(dev, t, "chat", 3, minute % 5, 1, 3),
                 StatsRow(dev, t, "news", 1, 1, 1, 2)]
    return rows
