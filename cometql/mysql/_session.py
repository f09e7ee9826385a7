"""One CometQL session on the MySQL port: login rules, USE rules, statements.

Statements about CometQL's tables are parsed by ``cometql.sql`` and executed
against the hub; everything else drivers send (``SET``, ``SELECT @@var``,
``SELECT DATABASE()``, ``USE``, information_schema queries) goes through
mysql-mimic's own middlewares. Errors leave as ``MysqlError`` carrying
CometQL's code, so mysql-mimic sends the ERR packet and the connection stays
usable.

Every connection shares one event loop, so no query may hold it for long: the
text is scanned and bounded first (``cometql.sql.split``, in slices), then each
statement is parsed, run (a long INSERT in batches) and answered before the next
is parsed, with a checkpoint between every slice. sqlglot's executor (queries
with filters or aggregates, mysql-mimic's static SELECTs and information_schema)
cannot be sliced: it runs in a worker thread, one at a time.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio
from mysql_mimic import ResultColumn, ResultSet
from mysql_mimic.errors import MysqlError
from mysql_mimic.schema import INFO_SCHEMA, InfoSchema, ensure_info_schema
from mysql_mimic.session import Query, Session
from mysql_mimic.types import ColumnType
from mysql_mimic.variables import SYSTEM_VARIABLES, GlobalVariables, SessionVariables
from sqlglot import expressions as exp
from sqlglot.executor import execute as sqlglot_execute

from .._version import SERVER_VERSION, VERSION_COMMENT
from ..errors import SQLError, StoreError
from ..limits import insert_message_too_long
from ..node import Node
from ..sql import (
    BATCH,
    DATABASE,
    TABLES,
    Context,
    HistoryQuery,
    Insert,
    Limits,
    Ok,
    Passthrough,
    Piece,
    Select,
    ShowStatus,
    Statement,
    Steps,
    codes,
    described_elsewhere,
    execute,
    fast_insert,
    parse_piece,
    query_rows,
    queued_users,
    run_query,
    split,
    steps,
)
from ._history import history_result
from ._options import MysqlOptions
from ._status import global_status, session_status

if TYPE_CHECKING:
    from mysql_mimic.results import AllowedResult

__all__ = ["CometSession", "dev_id_for_login", "make_global_variables"]

log = logging.getLogger("cometql.mysql")

#: MySQL's ER_DBACCESS_DENIED_ERROR: ``USE db_N`` of another dev while ``pin_dev`` is on.
DB_ACCESS_DENIED = 1044

#: sqlglot's executor holds the GIL: at most two threads run it (one long query does not queue every
#: other), so the event loop competes with two threads at most.
_EXECUTOR = trio.CapacityLimiter(2)
#: Work (tokens, lifted values, rows) up to which sqlglot's executor runs on the event loop (a millisecond
#: or two); above it, in a thread, which costs the loop a GIL hand-over per system call.
_INLINE_COST = 20
#: How long a thread may keep the GIL while the event loop waits for it (Python's default: 5 ms).
_SWITCH_INTERVAL = 0.001

#: Called with each statement's answer and whether more answers follow.
Emit = Callable[["AllowedResult | Ok", bool], Awaitable[None]]


def _sql_error(exc: SQLError) -> MysqlError:
    return MysqlError(exc.message, exc.errno)  # type: ignore[arg-type]


async def _executor(cost: int, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``: sqlglot's executor, in the executor thread when ``cost`` says it is big.

    A RecursionError there is CometQL's 'nested too deeply'.
    """
    try:
        if cost <= _INLINE_COST:
            return fn(*args)
        if sys.getswitchinterval() > _SWITCH_INTERVAL:  # else each socket call of the loop may wait 5 ms
            sys.setswitchinterval(_SWITCH_INTERVAL)
        return await trio.to_thread.run_sync(fn, *args, limiter=_EXECUTOR)
    except RecursionError:
        raise _sql_error(codes.too_deep(Limits().depth)) from None


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


#: What a SELECT may have and still be answered by the static middleware (as in mysql-mimic).
_STATIC_ARGS = {"expressions", "limit", "hint"}


def _constant_select(e: exp.Select) -> tuple[list[tuple[Any, ...]], list[str]] | None:
    """``SELECT 1`` (drivers' pings), ``SELECT 'x' AS y LIMIT 1``: literals only, answered without sqlglot's
    executor (its optimizer takes milliseconds even for these). Names and values are the executor's."""
    names: list[str] = []
    values: list[Any] = []
    for p in e.expressions:
        node = p.this if isinstance(p, exp.Alias) else p
        if not isinstance(node, exp.Literal):
            return None
        text: str = node.this
        if node.is_string:
            values.append(text)
        else:
            try:
                values.append(int(text))
            except ValueError:
                try:
                    values.append(float(text))
                except ValueError:
                    return None
        names.append(p.alias if isinstance(p, exp.Alias) else text)
    limit = e.args.get("limit")
    if limit is not None:
        count = limit.expression
        if not (isinstance(count, exp.Literal) and not count.is_string and count.this.isdigit()):
            return None
        return ([tuple(values)] if int(count.this) > 0 else []), names
    return [tuple(values)], names


def _is_select_database(e: exp.Expression) -> bool:
    return (
        isinstance(e, exp.Select)
        and len(e.expressions) == 1
        and isinstance(e.expressions[0], exp.CurrentSchema)
        and not any(e.args.get(k) for k in ("from_", "where"))
    )


#: The ``verb`` label of a statement class (SHOW TABLES / DATABASES / STATUS are all "show").
_VERBS = {"Insert": "insert", "Select": "select", "Delete": "delete", "Describe": "describe",
          "ShowTables": "show", "ShowDatabases": "show", "ShowStatus": "show", "ShowCreateTable": "show",
          "HistoryQuery": "select"}


def _schema_type(typed: bool, declared: str) -> str:
    """information_schema's DATA_TYPE: the declared type of typed tables, TEXT for CppComet's."""
    return declared.split("(")[0].upper() if typed else "TEXT"


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
        self.cost = 0  # the work measure of the statement being run (Piece.cost)

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
        """mysql-mimic's entry point (COM_STMT_EXECUTE, COM_FIELD_LIST): every statement runs, the last answers."""
        last: list[Any] = [None]

        async def keep(result: AllowedResult | Ok, more: bool) -> None:
            last[0] = result

        await self.run_query(sql, attrs, keep)
        return last[0]

    async def run_query(self, sql: str, attrs: dict[str, str], emit: Emit) -> None:
        """Run one COM_QUERY text, handing each statement's answer to ``emit`` as soon as it has it.

        The whole text is scanned and its bounds checked before anything runs;
        then statement after statement is parsed and run, with checkpoints
        between. An error ends the query (``MysqlError``): the answers before it
        were emitted already, as MySQL does.
        """
        size = self._admit(sql)
        fast = fast_insert(sql, self.options.limits.rows)
        if fast is not None:
            await emit(await self._answer(fast, sql, attrs, size, 0), False)
            return
        limits = self.options.limits
        pieces: list[Piece] = []
        try:
            for _ in split(sql, limits, pieces):
                await trio.lowlevel.checkpoint()
        except SQLError as exc:
            if exc.errno != codes.ERR_SYNTAX:  # over one of the bounds (an unterminated string is a syntax error)
                self.observer.limit_hit("statement_bounds")
            raise _sql_error(exc) from None
        if not pieces:
            await emit(None, False)
            return
        for i, piece in enumerate(pieces):
            try:
                stmt = parse_piece(piece, limits)
            except SQLError as exc:
                raise _sql_error(exc) from None
            result = None if stmt is None else await self._answer(stmt, sql, attrs, size, piece.cost)
            await emit(result, i + 1 < len(pieces))
            await trio.lowlevel.checkpoint()

    def _admit(self, sql: str) -> int:
        """Count a COM_QUERY text and check its length; its size."""
        self.node.mysql.statements += 1
        size = len(sql)
        if size >= self.options.max_query_size:
            raise MysqlError("Data is too long", codes.ERR_OVERFLOW)  # type: ignore[arg-type]
        if size <= 3 and sql.strip(" \t\r\n;"):
            raise MysqlError("Data is too short", codes.ERR_EMPTY)  # type: ignore[arg-type]
        if log.isEnabledFor(logging.DEBUG):  # secrets in it are masked by cometql.logs
            log.debug("dev_id %s statement: %s", self.dev_id, sql)
        return size

    async def run_insert(self, stmt: Insert, sql: str) -> Ok:
        """A COM_QUERY text that is ``stmt`` (``fast_insert(sql, limits.rows)``) alone, as ``run_query`` runs it."""
        result = await self._answer(stmt, sql, {}, self._admit(sql), 0)
        assert isinstance(result, Ok)
        return result

    async def _answer(self, stmt: Statement, sql: str, attrs: dict[str, str], size: int,
                      cost: int) -> AllowedResult | Ok:
        self.cost = cost
        limit = self.options.max_message_size
        # a message is part of the query (``size``: all of it; lifted rows are not in the piece's text): at most
        # 4 bytes per character, so short queries skip the check
        if isinstance(stmt, Insert) and size * 4 > limit and insert_message_too_long(stmt, limit):
            self.observer.limit_hit("message_size")
            raise MysqlError("Data is too long", codes.ERR_OVERFLOW)  # type: ignore[arg-type]
        if isinstance(stmt, Passthrough):
            self.observer.statement("none", stmt.expression.key)
            return await self._passthrough(stmt.expression, sql, attrs)
        return await self._run_counted(stmt)

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
            if type(stmt) is HistoryQuery:  # I/O and seconds of work: not for execute()
                return await history_result(node, stmt, self.dev_id)
            for uid in queued_users(stmt):  # memory holds no queued message: read them from the store
                ctx.queued[uid] = await node.queued(self.dev_id, uid)
            elsewhere = described_elsewhere(stmt, node.hub, self.dev_id)
            if elsewhere:  # the other nodes' sessions: who they are is in their nodes' session hashes
                ctx.sessions = await node.remote_sessions(elsewhere)
            if type(stmt) is Select and stmt.query is not None:
                rows = query_rows(stmt, node.hub, ctx)
                result = await _executor(self.cost + len(rows), run_query, stmt, rows)
            elif type(stmt) is Insert and len(stmt.rows) > BATCH:
                result = await self._drive(steps(stmt, node.hub, ctx))
            else:  # the hot path (a one-row INSERT): no generator to drive
                effects, result = execute(stmt, node.hub, ctx)
                await engine.apply(effects)
        except SQLError as exc:
            raise _sql_error(exc) from None
        except StoreError as exc:
            log.error("store failure: %s", exc)
            raise MysqlError(f"internal server error: {exc}", codes.ERR_INTERNAL) from None  # type: ignore[arg-type]
        if isinstance(result, Ok):
            return result  # type: ignore[return-value]  # CometConnection turns it into the OK packet
        return ResultSet(rows=result.rows, columns=_text_columns(result.columns))

    async def _drive(self, work: Steps) -> Any:
        """Run ``steps``: apply the effects it hands out, pause where it pauses; its result."""
        engine = self.node.engine
        try:
            while True:
                effects = next(work)
                if effects is None:
                    await trio.lowlevel.checkpoint()
                elif effects:
                    await engine.apply(effects)
        except StopIteration as done:
            return done.value

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
        except RecursionError:
            raise _sql_error(codes.too_deep(self.options.limits.depth)) from None
        except Exception as exc:  # mysql-mimic/sqlglot could not evaluate it: an error, not a crash
            log.debug("passthrough failed for %r: %s", sql, exc)
            raise MysqlError("Syntax error in query", codes.ERR_SYNTAX) from None  # type: ignore[arg-type]

    async def _static_query_middleware(self, q: Query) -> AllowedResult:
        """mysql-mimic's (``SELECT 1``, ``SELECT @@x``...), with sqlglot's executor off the event loop."""
        e = q.expression
        if isinstance(e, exp.Select) and not any(e.args.get(a) for a in set(exp.Select.arg_types) - _STATIC_ARGS):
            constant = _constant_select(e)
            if constant is not None:
                return constant
            result = await _executor(self.cost, sqlglot_execute, e)
            return result.rows, result.columns
        return await q.next()

    async def _query_info_schema(self, expression: exp.Expression) -> AllowedResult:
        """mysql-mimic's, with sqlglot's executor off the event loop."""
        info = ensure_info_schema(await self.schema())
        if not isinstance(info, InfoSchema):  # pragma: no cover - schema() returns a mapping
            return await info.query(expression)
        result = await _executor(self.cost, lambda: sqlglot_execute(info._preprocess(expression), schema=INFO_SCHEMA,
                                                                    tables=info.tables))
        return result.rows, result.columns

    async def query(self, expression: exp.Expression, sql: str, attrs: dict[str, str]) -> AllowedResult:
        """The end of mysql-mimic's middleware chain: nothing else understood it."""
        raise MysqlError("Syntax error in query", codes.ERR_SYNTAX)  # type: ignore[arg-type]

    async def schema(self) -> dict[str, dict[str, dict[str, str]]]:
        """For information_schema and SHOW COLUMNS from tools: CppComet's tables send every value as text,
        the tables CometQL adds (``stats_history``) their declared types."""
        return {DATABASE: {t.name: dict(zip(t.columns, (_schema_type(t.typed, ty) for ty in t.types), strict=True))
                           for t in TABLES.values()}}
