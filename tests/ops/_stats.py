"""stats_history over the wire: the dashboard checks shared by the SQLite server and the two-node cluster."""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy
from pymysql.constants import FIELD_TYPE

from ..servers import ServerProcess
from ..sql._history_data import (
    PEAKS,
    PEAKS_ROWS,
    PER_CHANNEL,
    PER_CHANNEL_FIRST,
    PER_CHANNEL_ROWS,
    TOTALS,
    TOTALS_FIRST,
    TOTALS_LAST,
    TOTALS_ROWS,
)

LIVE_TIMEOUT = 30.0  # samples come every second; generous for a loaded machine


def query(server: ServerProcess, dev: int, sql: str) -> tuple[list[tuple[str, int]], list[tuple[object, ...]]]:
    """(column name, MySQL type code) pairs and the rows, as PyMySQL decodes them."""
    conn = server.connect(dev)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [(d[0], d[1]) for d in cur.description], list(cur.fetchall())
    finally:
        conn.close()


def engine(server: ServerProcess, dev: int) -> sqlalchemy.Engine:
    url = f"mysql+pymysql://{dev}:{server.password}@{server.host}:{server.port}/CometQL_v1"
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)


def check_dashboard_queries(server: ServerProcess, dev: int) -> None:
    """The three queries from PyMySQL: values, and types a chart takes (times, numbers)."""
    columns, rows = query(server, dev, PER_CHANNEL)
    assert columns == [("time", FIELD_TYPE.LONGLONG), ("metric", FIELD_TYPE.VAR_STRING),
                       ("value", FIELD_TYPE.LONGLONG)]
    assert (rows[:4], len(rows)) == (PER_CHANNEL_FIRST, PER_CHANNEL_ROWS)
    columns, rows = query(server, dev, TOTALS)
    assert columns == [("time", FIELD_TYPE.DATETIME), ("users", FIELD_TYPE.LONGLONG),
                       ("sessions", FIELD_TYPE.LONGLONG)]
    assert (rows[0], rows[-1], len(rows)) == (TOTALS_FIRST, TOTALS_LAST, TOTALS_ROWS)
    columns, rows = query(server, dev, PEAKS)
    assert columns == [("day", FIELD_TYPE.DATE), ("peak", FIELD_TYPE.LONGLONG)]
    assert sorted(rows) == PEAKS_ROWS  # type: ignore[type-var]


def check_dashboard_frames(server: ServerProcess, dev: int) -> None:
    """The same queries through pandas ``read_sql`` over SQLAlchemy: datetime and integer columns."""
    db = engine(server, dev)
    try:
        per_channel = pd.read_sql(PER_CHANNEL, db)
        assert list(per_channel.columns) == ["time", "metric", "value"]
        assert pd.api.types.is_integer_dtype(per_channel["time"]) and pd.api.types.is_integer_dtype(
            per_channel["value"])
        assert len(per_channel) == PER_CHANNEL_ROWS
        totals = pd.read_sql(TOTALS, db)
        assert pd.api.types.is_datetime64_any_dtype(totals["time"])
        assert pd.api.types.is_integer_dtype(totals["users"]) and pd.api.types.is_integer_dtype(totals["sessions"])
        assert totals["time"].iloc[0] == pd.Timestamp(TOTALS_FIRST[0])
        assert int(totals["users"].max()) == TOTALS_LAST[1]
        peaks = pd.read_sql(PEAKS, db)
        assert sorted(zip(peaks["day"], peaks["peak"], strict=True)) == PEAKS_ROWS
        assert all(type(d) is date for d in peaks["day"]) and pd.api.types.is_integer_dtype(peaks["peak"])
    finally:
        db.dispose()
