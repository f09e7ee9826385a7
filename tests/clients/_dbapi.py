"""Python's MySQL drivers, run through one DB-API loop so one contract checks all of them.

Each driver is used the way its users use it: the connection's defaults (no
``autocommit`` unless the driver turns it on: statements are committed as a
backend would; PyMySQL's tests have always used ``autocommit=True``), the
driver's own placeholders (``%s``, or ``?`` for mysql-connector's prepared
cursor, which sends COM_STMT_PREPARE/EXECUTE), and its own escaping. The asyncio
drivers (aiomysql, asyncmy) run the same loop, each call awaited on an
``asyncio.Runner``; SQLAlchemy runs it through ``text()`` with named parameters.
Most run in the test process; mysql-connector with its C extension runs in a
process of its own (``mysql_connector_c.py`` says why), through ``main``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ._run import Result, Session, Settings, SqlError, Step
from ._served import ServedDriver

#: What a driver's exception says: (code, message, SQLSTATE or None).
ErrorOf = Callable[[BaseException], SqlError]


def _args_error(exc: BaseException) -> SqlError:
    """PyMySQL, mysqlclient, aiomysql and asyncmy: ``exc.args == (errno, message)``; no SQLSTATE."""
    return SqlError(int(exc.args[0]), str(exc.args[1]), None)


def _connector_error(exc: BaseException) -> SqlError:
    return SqlError(int(exc.errno), str(exc.msg), exc.sqlstate)  # type: ignore[attr-defined]


def format_style(sql: str) -> str:
    """``?`` placeholders as ``%s`` (and a literal ``%`` doubled), for the pyformat drivers."""
    return sql.replace("%", "%%").replace("?", "%s")


@dataclass(frozen=True)
class DbApiDriver:
    """A PEP 249 driver (or an asyncio one shaped like it): ``connect(settings)`` gives a connection."""

    name: str
    connect: Callable[[Settings], Any]
    errors: Callable[[], tuple[type[BaseException], ...]]
    error_of: ErrorOf = _args_error
    placeholders: Callable[[str], str] = format_style
    cursor_kwargs: dict[str, Any] = field(default_factory=dict)
    is_async: bool = False
    #: Commit after each statement, as a backend does when the driver leaves autocommit off.
    commit: bool = True
    exposes_sqlstate: bool = False

    @contextmanager
    def _awaiter(self) -> Iterator[Callable[[Any], Any]]:
        """A function that returns a call's value, awaiting it on one event loop if it is awaitable."""
        if not self.is_async:
            yield lambda value: value
            return

        async def awaited(value: Any) -> Any:
            return await value

        with asyncio.Runner() as runner:
            yield lambda value: runner.run(awaited(value)) if inspect.isawaitable(value) else value

    def session(self, settings: Settings, plan: Sequence[Step]) -> Session:
        errors = self.errors()
        with self._awaiter() as wait:
            try:
                conn = wait(self.connect(settings))
            except errors as exc:
                return Session(self.error_of(exc))
            try:
                results = [self._step(wait, conn, s, errors) for s in plan]
            finally:  # the asyncio drivers say goodbye (COM_QUIT) with ensure_closed()
                wait(conn.ensure_closed() if self.is_async else conn.close())
        return Session(None, results)

    def _step(self, wait: Callable[[Any], Any], conn: Any, s: Step, errors: tuple[type[BaseException], ...]) -> Result:
        """One statement on a cursor of its own (mysql-connector's prepared cursor keeps a stale description)."""
        params = s.get("params")
        sql = self.placeholders(s["sql"]) if params else s["sql"]
        cur = wait(conn.cursor(**self.cursor_kwargs))
        try:
            wait(cur.execute(sql, params) if params else cur.execute(sql))
            columns = [d[0] for d in cur.description] if cur.description else None
            rows = [list(r) for r in wait(cur.fetchall())] if columns is not None else None
            result = Result(affected=cur.rowcount, insert_id=cur.lastrowid or 0, columns=columns, rows=rows)
            if self.commit:
                wait(conn.commit())
        except errors as exc:
            return Result(error=self.error_of(exc))
        finally:
            wait(cur.close())
        return result


@dataclass(frozen=True)
class SqlAlchemyDriver:
    """SQLAlchemy 2 on its default MySQL driver (mysqlclient): ``text()`` with ``:name`` parameters."""

    name: str = "SQLAlchemy (mysqlclient)"
    exposes_sqlstate: bool = False

    def session(self, settings: Settings, plan: Sequence[Step]) -> Session:
        import sqlalchemy as sa

        engine = sa.create_engine(sqlalchemy_url(settings), poolclass=sa.pool.NullPool)
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            return Session(_args_error(exc.orig))
        results = []
        with conn:
            for s in plan:
                sql, params = s["sql"], s.get("params") or []
                for i in range(len(params)):
                    sql = sql.replace("?", f":p{i}", 1)
                try:
                    res = conn.execute(sa.text(sql), {f"p{i}": p for i, p in enumerate(params)})
                    rows = [list(r) for r in res.fetchall()] if res.returns_rows else None
                    columns = list(res.keys()) if res.returns_rows else None
                    conn.commit()
                except sa.exc.DBAPIError as exc:
                    conn.rollback()
                    results.append(Result(error=_args_error(exc.orig)))
                    continue
                results.append(Result(affected=res.rowcount, insert_id=getattr(res, "lastrowid", 0) or 0,
                                      columns=columns, rows=rows))
        return Session(None, results)


def sqlalchemy_url(settings: Settings) -> str:
    """The URL from SQLAlchemy's documentation: ``mysql://`` is mysqlclient; utf8mb4 as it recommends."""
    return (f"mysql://{settings.user}:{settings.password}@{settings.host}:{settings.port}/{settings.database}"
            "?charset=utf8mb4")


# ------------------------------------------------------------------ drivers


def _pymysql(settings: Settings) -> Any:
    import pymysql

    return pymysql.connect(host=settings.host, port=settings.port, user=settings.user, password=settings.password,
                           database=settings.database, autocommit=True, connect_timeout=5, read_timeout=10,
                           write_timeout=10)


def _mysqlclient(settings: Settings) -> Any:
    import MySQLdb

    return MySQLdb.connect(host=settings.host, port=settings.port, user=settings.user, password=settings.password,
                           database=settings.database, charset="utf8mb4", connect_timeout=5)


def _connector(*, use_pure: bool) -> Callable[[Settings], Any]:
    def connect(settings: Settings) -> Any:
        import mysql.connector

        conn = mysql.connector.connect(host=settings.host, port=settings.port, user=settings.user,
                                       password=settings.password, database=settings.database,
                                       use_pure=use_pure, connection_timeout=5)
        kind = type(conn).__name__
        assert kind == ("MySQLConnection" if use_pure else "CMySQLConnection"), kind
        return conn

    return connect


def _aiomysql(settings: Settings) -> Any:
    import aiomysql

    return aiomysql.connect(host=settings.host, port=settings.port, user=settings.user, password=settings.password,
                            db=settings.database, connect_timeout=5)


def _asyncmy(settings: Settings) -> Any:
    import asyncmy

    return asyncmy.connect(host=settings.host, port=settings.port, user=settings.user, password=settings.password,
                           database=settings.database, connect_timeout=5)


def _errors(module: str, attr: str = "Error") -> Callable[[], tuple[type[BaseException], ...]]:
    def get() -> tuple[type[BaseException], ...]:
        return (getattr(__import__(module, fromlist=[attr]), attr),)

    return get


PYMYSQL = DbApiDriver("PyMySQL", _pymysql, _errors("pymysql", "MySQLError"), commit=False)
MYSQLCLIENT = DbApiDriver("mysqlclient", _mysqlclient, _errors("MySQLdb", "MySQLError"))
CONNECTOR_PURE = DbApiDriver("mysql-connector-python (pure)", _connector(use_pure=True),
                             _errors("mysql.connector"), _connector_error, exposes_sqlstate=True)
CONNECTOR_PURE_PREPARED = DbApiDriver("mysql-connector-python (pure, prepared)", _connector(use_pure=True),
                                      _errors("mysql.connector"), _connector_error, placeholders=str,
                                      cursor_kwargs={"prepared": True}, exposes_sqlstate=True)
AIOMYSQL = DbApiDriver("aiomysql", _aiomysql, _errors("pymysql", "MySQLError"), is_async=True)
ASYNCMY = DbApiDriver("asyncmy", _asyncmy, _errors("asyncmy.errors", "MySQLError"), is_async=True)
SQLALCHEMY = SqlAlchemyDriver()

#: Run in a process of their own, started once per test run, by ``mysql_connector_c.py``
#: (COMETQL_CONNECTOR_CURSOR picks the cursor).
CONNECTOR_C = DbApiDriver("mysql-connector-python (C extension)", _connector(use_pure=False),
                          _errors("mysql.connector"), _connector_error, exposes_sqlstate=True)
CONNECTOR_C_PREPARED = DbApiDriver("mysql-connector-python (C extension, prepared)", _connector(use_pure=False),
                                   _errors("mysql.connector"), _connector_error, placeholders=str,
                                   cursor_kwargs={"prepared": True}, exposes_sqlstate=True)
_IN_CHILD = {"default": CONNECTOR_C, "prepared": CONNECTOR_C_PREPARED}


def _child(cursor: str) -> ServedDriver:
    return ServedDriver(_IN_CHILD[cursor].name, lambda: (sys.executable, "-m", "tests.clients.mysql_connector_c"),
                        {"COMETQL_CONNECTOR_CURSOR": cursor}, exposes_sqlstate=True)


CONNECTOR_C_SCRIPT = _child("default")
CONNECTOR_C_PREPARED_SCRIPT = _child("prepared")


def main(cursor: str, serve: bool) -> None:
    """Run plans as the script drivers do: one from stdin with COMETQL_* settings, or ``--serve`` (_served.py)."""
    driver = _IN_CHILD[cursor]
    if not serve:
        print(json.dumps(session_json(driver.session(_settings(os.environ), json.load(sys.stdin)))), flush=True)
        return
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = session_json(driver.session(_settings(request["env"]), request["plan"]))
        except Exception:  # the program's own failure, reported to the test instead of ending the process
            answer = {"failure": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


def _settings(env: Mapping[str, str]) -> Settings:
    return Settings(env["COMETQL_HOST"], int(env["COMETQL_PORT"]), env["COMETQL_USER"], env["COMETQL_PASSWORD"],
                    env["COMETQL_DB"])


def session_json(session: Session) -> dict[str, Any]:
    def error(e: SqlError) -> dict[str, Any]:
        return {"code": e.code, "message": e.message, "sqlstate": e.sqlstate}

    def result(r: Result) -> dict[str, Any]:
        if r.error is not None:
            return {"error": error(r.error)}
        return {"affected": r.affected, "insert_id": r.insert_id, "columns": r.columns, "rows": r.rows}

    return {"connect_error": error(session.connect_error) if session.connect_error else None,
            "results": [result(r) for r in session.results]}
