"""One CometQL session on the MySQL port: login rules, USE rules, statements.

Statements about CometQL's tables are parsed by ``cometql.sql`` and executed
against the hub; everything else drivers send (``SET``, ``SELECT @@var``,
``SELECT DATABASE()``, ``USE``, information_schema queries) goes through
mysql-mimic's own middlewares. Errors leave as ``MysqlError`` carrying
CometQL's code, so mysql-mimic sends the ERR packet and the connection stays
usable.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from mysql_mimic import ResultColumn, ResultSet
from mysql_mimic.errors import MysqlError
from mysql_mimic.session import Query, Session
from mysql_mimic.types import ColumnType
from mysql_mimic.variables import SYSTEM_VARIABLES, GlobalVariables, SessionVariables
from sqlglot import expressions as exp

from .._version import SERVER_VERSION, VERSION_COMMENT
from ..errors import SQLError, StoreError
from ..limits import insert_message_too_long
from ..node import Node
from ..sql import DATABASE, TABLES, Context, Insert, Ok, Passthrough, ShowStatus, Statement, codes, execute, parse
from ._options import MysqlOptions
from ._status import global_status, session_status

if TYPE_CHECKING:
    from mysql_mimic.results import AllowedResult

__all__ = ["CometSession", "dev_id_for_login", "make_global_variables"]

log = logging.getLogger("cometql.mysql")


def make_global_variables() -> GlobalVariables:
    schema = dict(SYSTEM_VARIABLES)
    schema["version"] = (str, SERVER_VERSION, False)
    schema["version_comment"] = (str, VERSION_COMMENT, False)
    return GlobalVariables(schema)


def dev_id_for_login(name: str | None, dev_index_size: int) -> int | None:
    """CppComet's login rule: ``root`` or ``0`` is dev 0, a decimal number N is dev N."""
    if name is None:
        return None
    if name == "root":
        return 0
    if not name.isdigit() or len(name) > 18 or not name.isascii():
        return None
    dev = int(name)
    return dev if dev < dev_index_size else None


def _is_select_database(e: exp.Expression) -> bool:
    return (
        isinstance(e, exp.Select)
        and len(e.expressions) == 1
        and isinstance(e.expressions[0], exp.CurrentSchema)
        and not any(e.args.get(k) for k in ("from_", "where"))
    )


#: The ``verb`` label of a statement class (SHOW TABLES / DATABASES / STATUS are all "show").
_VERBS = {"Insert": "insert", "Select": "select", "Delete": "delete", "Describe": "describe",
          "ShowTables": "show", "ShowDatabases": "show", "ShowStatus": "show"}


def _text_columns(names: tuple[str, ...]) -> list[ResultColumn]:
    return [ResultColumn(name, ColumnType.VAR_STRING) for name in names]


def _status_result(rows: list[tuple[str, str | int]]) -> ResultSet:
    return ResultSet(rows=rows, columns=_text_columns(("Variable_name", "Value")))


class CometSession(Session):
    def __init__(self, node: Node, options: MysqlOptions, global_variables: GlobalVariables) -> None:
        super().__init__(variables=SessionVariables(global_variables))
        self.node = node
        self.options = options
        self.observer = node.observer
        self.dev_id = 0
        self.opened = False  # counted in node.mysql.online_by_dev (from init() on)

    # ------------------------------------------------------------ lifecycle

    async def init(self, connection: Any) -> None:
        await super().init(connection)
        dev = dev_id_for_login(self.username, self.options.dev_index_size)
        self.dev_id = dev if dev is not None else 0
        if self.database and self.database.startswith("db_"):  # db_N named at login (use() accepted it)
            self.dev_id = int(self.database[3:])
        self.node.mysql.session_opened(self.dev_id)
        self.opened = True

    async def close(self) -> None:
        self.node.mysql.session_closed(self.dev_id)
        await super().close()

    async def use(self, database: str) -> None:
        """``CometQL_v1`` or ``db_N`` (switches dev_id); anything else is ERR 15."""
        if database == DATABASE:
            self.database = database
            return
        if database.startswith("db_") and database[3:].isdigit():
            dev = int(database[3:])
            if dev < self.options.dev_index_size:
                if self.opened:  # at login, init() counts the session once the dev_id is final
                    self.node.mysql.session_closed(self.dev_id)
                self.dev_id = dev
                if self.opened:
                    self.node.mysql.session_opened(self.dev_id)
                self.database = database
                return
        raise MysqlError("Select database failure", codes.ERR_NOT_EXIST)  # type: ignore[arg-type]

    # -------------------------------------------------------------- queries

    async def handle_query(self, sql: str, attrs: dict[str, str]) -> AllowedResult:
        self.node.mysql.statements += 1
        size = len(sql)
        if size >= self.options.max_query_size:
            raise MysqlError("Data is too long", codes.ERR_OVERFLOW)  # type: ignore[arg-type]
        if size <= 3 and sql.strip(" \t\r\n;"):
            raise MysqlError("Data is too short", codes.ERR_EMPTY)  # type: ignore[arg-type]
        if log.isEnabledFor(logging.DEBUG):  # secrets in it are masked by cometql.logs
            log.debug("dev_id %s statement: %s", self.dev_id, sql)
        try:
            statements = parse(sql)
        except SQLError as exc:
            raise MysqlError(exc.message, exc.errno) from None  # type: ignore[arg-type]
        limit = self.options.max_message_size
        # a message is part of the statement: at most 4 bytes per character, so short statements skip the check
        if size * 4 > limit and any(insert_message_too_long(stmt, limit) for stmt in statements):
            self.observer.limit_hit("message_size")
            raise MysqlError("Data is too long", codes.ERR_OVERFLOW)  # type: ignore[arg-type]
        result: AllowedResult = None
        for stmt in statements:
            if isinstance(stmt, Passthrough):
                self.observer.statement("none", stmt.expression.key)
                result = await self._passthrough(stmt.expression, sql, attrs)
            else:
                result = await self._run_counted(stmt)
        return result

    async def _run_counted(self, stmt: Statement) -> AllowedResult:
        """``run`` counted by table and verb; an INSERT's run time is reported too."""
        table = getattr(stmt, "table", None)
        self.observer.statement(table.name if table is not None else "none", _VERBS.get(type(stmt).__name__, "other"))
        if type(stmt) is not Insert:
            return await self.run(stmt)
        start = time.perf_counter()
        try:
            return await self.run(stmt)
        finally:
            self.observer.insert_took(time.perf_counter() - start)

    async def run(self, stmt: Statement) -> AllowedResult:
        if type(stmt) is ShowStatus:
            return _status_result(self._status(stmt.global_))
        node = self.node
        engine = node.engine
        ctx = Context(self.dev_id, engine.now())
        try:
            effects, result = execute(stmt, node.hub, ctx)
            await engine.apply(effects)
        except SQLError as exc:
            raise MysqlError(exc.message, exc.errno) from None  # type: ignore[arg-type]
        except StoreError as exc:
            log.error("store failure: %s", exc)
            raise MysqlError(f"internal server error: {exc}", codes.ERR_INTERNAL) from None  # type: ignore[arg-type]
        if isinstance(result, Ok):
            return result  # type: ignore[return-value]  # CometConnection turns it into the OK packet
        return ResultSet(rows=result.rows, columns=_text_columns(result.columns))

    def _status(self, global_: bool) -> list[tuple[str, str | int]]:
        node = self.node
        if global_:
            return global_status(node.statistics())
        counters = node.mysql
        return session_status(self.dev_id, node.hub.sessions(self.dev_id), counters.online_by_dev.get(self.dev_id, 0),
                              counters.statements)

    async def _passthrough(self, expression: exp.Expression, sql: str, attrs: dict[str, str]) -> AllowedResult:
        if _is_select_database(expression):  # CppComet's column name, and '' rather than NULL
            return ResultSet(rows=[(self.database or "",)], columns=_text_columns(("DATABASE()",)))
        query = Query(expression=expression, sql=sql, attrs=attrs, _middlewares=self.middlewares, _query=self.query)
        try:
            return await query.start()
        except MysqlError:
            if isinstance(expression, exp.Set):
                return None  # any SET is accepted (CppComet answers OK too); unknown variables are ignored
            raise
        except Exception as exc:  # mysql-mimic/sqlglot could not evaluate it: an error, not a crash
            log.debug("passthrough failed for %r: %s", sql, exc)
            raise MysqlError("Syntax error in query", codes.ERR_SYNTAX) from None  # type: ignore[arg-type]

    async def query(self, expression: exp.Expression, sql: str, attrs: dict[str, str]) -> AllowedResult:
        """The end of mysql-mimic's middleware chain: nothing else understood it."""
        raise MysqlError("Syntax error in query", codes.ERR_SYNTAX)  # type: ignore[arg-type]

    async def schema(self) -> dict[str, dict[str, dict[str, str]]]:
        """For information_schema and SHOW COLUMNS from tools (every value is text on the wire)."""
        return {DATABASE: {t.name: {c: "TEXT" for c in t.columns} for t in TABLES.values()}}
