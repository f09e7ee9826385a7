"""Python's other drivers, as their users run them (PyMySQL has test_pymysql.py).

mysqlclient (MySQLdb), mysql-connector-python pure and with its C extension, each
with its default cursor (client-side ``%s``) and its prepared cursor
(COM_STMT_PREPARE/EXECUTE: the C extension lost the connection there before
CometQL stopped sending an EOF the client had deprecated), the asyncio drivers
aiomysql and asyncmy, and SQLAlchemy with pandas ``read_sql``, the way a
dashboard script reads statistics.
"""

from __future__ import annotations

import pytest

from ..servers import ServerProcess
from ._browser import browser
from ._contract import UNICODE, ClientContract
from ._dbapi import (
    AIOMYSQL,
    ASYNCMY,
    CONNECTOR_C_PREPARED_SCRIPT,
    CONNECTOR_C_SCRIPT,
    CONNECTOR_PURE,
    CONNECTOR_PURE_PREPARED,
    MYSQLCLIENT,
    SQLALCHEMY,
    sqlalchemy_url,
)
from ._run import Settings

pytestmark = pytest.mark.clients


class TestMysqlclient(ClientContract):
    driver = MYSQLCLIENT


class TestConnectorPure(ClientContract):
    driver = CONNECTOR_PURE


class TestConnectorPurePrepared(ClientContract):
    driver = CONNECTOR_PURE_PREPARED


class TestConnectorC(ClientContract):
    driver = CONNECTOR_C_SCRIPT


class TestConnectorCPrepared(ClientContract):
    driver = CONNECTOR_C_PREPARED_SCRIPT


class TestAiomysql(ClientContract):
    driver = AIOMYSQL


class TestAsyncmy(ClientContract):
    driver = ASYNCMY


class TestSqlAlchemy(ClientContract):
    driver = SQLALCHEMY


def test_pandas_read_sql_reads_statistics_into_data_frames(server: ServerProcess, dev: int) -> None:
    """A dashboard script: publish through SQLAlchemy, then read the statistics with pandas."""
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(sqlalchemy_url(Settings.for_dev(server, dev)), poolclass=sa.pool.NullPool)
    try:
        with browser(server, dev, "drivers") as tab:
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO pipes_messages (name, event, message) VALUES (:name, 'say', :text)"),
                             {"name": "drivers", "text": UNICODE})
            pipes = pd.read_sql("SELECT name, users FROM pipes WHERE name = %(name)s", engine,
                                params={"name": "drivers"})
            members = pd.read_sql(sa.text("SELECT name, COUNT(*) AS n FROM users_in_pipes GROUP BY name"), engine)
            frame = tab.frame("drivers")
    finally:
        engine.dispose()
    assert frame["data"] == UNICODE
    assert pipes.to_dict("records") == [{"name": "drivers", "users": "1"}]
    assert members.to_dict("records") == [{"name": "drivers", "n": "1"}]
