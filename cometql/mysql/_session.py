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
from ..sql import (
    DATABASE,
    TABLES,
    Context,
    Insert,
    Ok,
    Passthrough,
    ShowStatus,
    Statement,
    codes,
    execute,
    parse,
    queued_users,
)
from ._options import MysqlOptions
from ._status import global_status, session_status

if TYPE_CHECKING:
    from mysql_mimic.results import AllowedResult

__all__ = ["CometSession", "dev_id_for_login", "make_global_variables"]

log = logging.getLogger("cometql.mysql")

#: MySQL's ER_DBACCESS_DENIED_ERROR: ``USE db_N`` of another dev while ``pin_dev`` is on.
DB_ACCESS_DENIED = 1044


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
        self.global_variables = global_variables
        self.login_dev = 0  # the login name's dev: what ``CometQL_v1`` (or no database) acts for
        self.dev_id = 0  # the dev statements act for: login_dev, or N after ``USE db_N``
        self.opened = False  # counted in node.mysql.online_by_dev (from init() on)

    # ------------------------------------------------------------ lifecycle

    async def init(self, connection: Any) -> None:
        await super().init(connection)
        self.login_dev = self._login_dev(self.username)
        # a database named at login was checked by CometConnection.authenticate (dev_for)
        self.dev_id = self.dev_for(self.database, self.login_dev) if self.database else self.login_dev
        self.node.mysql.session_opened(self.dev_id)
        self.opened = True

    async def close(self) -> None:
        self.node.mysql.session_closed(self.dev_id)
        await super().close()

    def _login_dev(self, username: str | None) -> int:
        dev = dev_id_for_login(username, self.options.dev_index_size)
        return dev if dev is not None else 0  # a login that is not a dev_id is refused before this

    def dev_for(self, database: str, login_dev: int | None) -> int:
        """The dev ``database`` stands for when ``login_dev`` uses it: ``CometQL_v1`` the login's own, ``db_N`` N.

        Anything else is ERR 15; with ``pin_dev``, ``db_N`` of another dev is 1044 (as MySQL's access
        denied to a database). ``login_dev`` None (a name that will not log in) skips the pin check.
        """
        if database == DATABASE:
            return login_dev or 0
        number = database[3:]
        if database.startswith("db_") and number.isascii() and number.isdigit() and len(number) <= 18:
            dev = int(number)
            if dev < self.options.dev_index_size:
                if self.options.pin_dev and login_dev is not None and dev != login_dev:
                    raise MysqlError(f"Access denied to database '{database}' (pin_dev: login {login_dev} acts "
                                     f"for dev {login_dev} only)", DB_ACCESS_DENIED)  # type: ignore[arg-type]
                return dev
        raise MysqlError("Select database failure", codes.ERR_NOT_EXIST)  # type: ignore[arg-type]

    def _act_for(self, dev: int) -> None:
        """Statements act for ``dev`` from now on (the per-dev connection count follows)."""
        if self.opened and dev != self.dev_id:  # at login, init() counts the session once the dev_id is final
            self.node.mysql.session_closed(self.dev_id)
            self.node.mysql.session_opened(dev)
        self.dev_id = dev

    async def use(self, database: str) -> None:
        """``USE`` / COM_INIT_DB: ``CometQL_v1`` (the login's own dev) or ``db_N`` (dev N); else ERR 15."""
        self._act_for(self.dev_for(database, self.login_dev))
        self.database = database

    async def change_user(self, username: str, database: str | None, client_charset: str | None) -> None:
        """After an accepted COM_CHANGE_USER: the new login's dev and database, session variables reset.

        ``database`` was checked with ``dev_for`` before the password was.
        """
        charset = client_charset or str(self.variables.get("character_set_client"))
        self.variables = SessionVariables(self.global_variables)
        self.variables.set("character_set_client", charset)
        self.variables.set("external_user", username, force=True)
        self.login_dev = self._login_dev(username)
        self._act_for(self.dev_for(database, self.login_dev) if database else self.login_dev)
        self.database = database

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
            for uid in queued_users(stmt):  # memory holds no queued message: read them from the store
                ctx.queued[uid] = await node.queued(self.dev_id, uid)
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
