"""Running a parsed statement against the hub: synchronous, no I/O.

``execute`` returns the effects the engine must apply (persist, deliver,
disconnect) and the result to send back: ``Rows`` or ``Ok`` with CppComet's
affected-rows / insert-id values for that table. Validation order and error
texts follow CppComet (column list, then required fields, then values).

``steps`` does the same in slices, for a server that must keep answering
others meanwhile: a long INSERT is validated a slice of rows at a time, then
applied a batch at a time (each batch's effects handed out before the next),
and a query that needs sqlglot's executor is left for the caller to run off
the event loop (``query_rows`` + ``run_query``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import expressions as exp
from sqlglot.errors import SqlglotError
from sqlglot.executor import execute as sqlglot_execute
from sqlglot.executor.table import Table as DataTable

from ..errors import SQLError
from ..hub import (
    ConnInfo,
    Effect,
    Hub,
    Persist,
    QueuedMessage,
    QueueFull,
    RemoteSession,
    channel_problem,
    event_problem,
    hash_problem,
    is_valid_channel,
)
from . import codes
from ._parse import expand
from ._scan import Limits
from ._statements import (
    Delete,
    Describe,
    HistoryQuery,
    Insert,
    Passthrough,
    Select,
    ShowCreateTable,
    ShowDatabases,
    ShowStatus,
    ShowTables,
    Statement,
)
from ._tables import DATABASE, LISTED_TABLES, Table
from ._values import Value, as_int, as_text

__all__ = ["BATCH", "Context", "Ok", "Result", "Rows", "Steps", "described_elsewhere", "execute", "query_rows",
           "queued_users", "run_query", "steps"]

Row = tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Rows:
    columns: tuple[str, ...]
    rows: list[Row]


@dataclass(frozen=True, slots=True)
class Ok:
    affected_rows: int = 0
    insert_id: int = 0


Result = Rows | Ok


@dataclass(slots=True)
class Context:
    """What a statement may know about the session that runs it."""

    dev_id: int
    now: int
    #: users_messages rows read from the store before the statement ran (``queued_users`` says whose).
    queued: dict[int, list[QueuedMessage]] = field(default_factory=dict)
    #: Other nodes' sessions read from their session hashes (``described_elsewhere`` says which).
    sessions: dict[tuple[str, int], ConnInfo] = field(default_factory=dict)


def queued_users(stmt: Statement) -> list[int]:
    """Whose queues a statement reads (a SELECT on users_messages): the caller reads them from the
    store into ``Context.queued``, since memory holds no queued message."""
    if isinstance(stmt, Select) and stmt.table.name == "users_messages":
        return _ids(stmt.keys or (), allow_zero=True)
    return []


def described_elsewhere(stmt: Statement, hub: Hub, dev_id: int) -> list[tuple[str, int]]:
    """The other nodes' sessions (node, conn id) a statement lists whose ``ConnInfo`` this node does not hold
    (a SELECT on users_in_pipes): the caller reads them from their nodes' session hashes into
    ``Context.sessions``; one gone meanwhile is left out."""
    if not (isinstance(stmt, Select) and stmt.table.name == "users_in_pipes"):
        return []
    channels = hub.channels(dev_id) if stmt.keys is None else _names(stmt.keys)
    return [s.key for c in channels for s in hub.channel_members(dev_id, c)
            if isinstance(s, RemoteSession) and not s.described]


#: Rows of an INSERT validated, or applied, between two pauses of ``steps``.
BATCH = 256

#: What ``steps`` yields: None (a pause: let others run), or effects to apply before going on; it returns the result.
Steps = Generator[list[Effect] | None, None, Result]


def steps(stmt: Statement, hub: Hub, ctx: Context) -> Steps:
    """``execute`` in slices; a long INSERT's rows are applied in batches of ``BATCH``.

    Every row is validated before any is applied (a bad row applies nothing, as
    with ``execute``). Each batch is a statement of its own for the store: if
    the store refuses one, the batches before it stay stored.
    """
    if not isinstance(stmt, Insert) or len(stmt.rows) <= BATCH:
        effects, result = execute(stmt, hub, ctx)
        yield effects
        return result
    appliers: list[Apply] = []
    for start in range(0, len(stmt.rows), BATCH):
        appliers.extend(_prepare_rows(stmt, stmt.rows[start : start + BATCH], hub, ctx))
        yield None
    affected = insert_id = 0
    for start in range(0, len(appliers), BATCH):
        effects, ok = _apply_rows(appliers[start : start + BATCH], hub)
        affected += ok.affected_rows
        insert_id = ok.insert_id
        yield effects
        yield None  # applying may not have waited (nothing to store): a pause before the next batch
    return Ok(affected, insert_id)


def execute(stmt: Statement, hub: Hub, ctx: Context) -> tuple[list[Effect], Result]:
    if isinstance(stmt, Insert):
        return _insert(stmt, hub, ctx)
    if isinstance(stmt, Select):
        return [], _select(stmt, hub, ctx)
    if isinstance(stmt, Delete):
        return _delete(stmt, hub, ctx), Ok()
    if isinstance(stmt, ShowTables):
        if stmt.full:
            return [], Rows(("Tables", "Table_type"), [(name, "BASE TABLE") for name in LISTED_TABLES])
        return [], Rows(("Tables",), [(name,) for name in LISTED_TABLES])
    if isinstance(stmt, ShowDatabases):
        return [], Rows(("Database",), [(DATABASE,)])
    if isinstance(stmt, Describe):
        t = stmt.table
        return [], Rows(
            ("Field", "Type", "Null", "Key", "Default", "Extra"),
            [(c, ty, "NO", "PRI" if c in t.primary_key else "", "", "")
             for c, ty in zip(t.columns, t.types, strict=True)],
        )
    if isinstance(stmt, ShowCreateTable):
        return [], Rows(("Table", "Create Table"), [(stmt.table.name, stmt.table.create_sql())])
    if isinstance(stmt, (Passthrough, ShowStatus, HistoryQuery)):  # pragma: no cover - the MySQL session runs these
        raise codes.syntax()
    raise TypeError(f"not a statement: {stmt!r}")


# ------------------------------------------------------------------- INSERT

_CHANNEL_ERRORS = {
    "long": SQLError(codes.ERR_OVERFLOW, "Channel name is too long"),
    "short": SQLError(codes.ERR_EMPTY, "Channel name is too short"),
    "chars": SQLError(codes.ERR_INVALID, codes.CHANNEL_CHARS),
}
_EVENT_ERRORS = {
    "long": SQLError(codes.ERR_OVERFLOW, "Channel event_name is too long"),
    "chars": SQLError(codes.ERR_INVALID, codes.CHANNEL_CHARS),
}
_NEGATIVE_ID = SQLError(codes.ERR_INVALID, "The id field must be non-negative")
_MAX_ID = 2**63 - 1  # the store keeps ids as signed 64-bit integers
_ID_TOO_LARGE = SQLError(codes.ERR_OVERFLOW, "The id field is too large")


def _need(values: dict[str, Value], *columns: str) -> None:
    for c in columns:
        if values.get(c) is None:
            raise codes.required(c)


def _channel(value: Value) -> str:
    name = as_text(value)
    problem = channel_problem(name)
    if problem:
        raise _CHANNEL_ERRORS[problem]
    return name


def _event(value: Value) -> str:
    event = as_text(value)
    problem = event_problem(event)
    if problem:
        raise _EVENT_ERRORS[problem]
    return event


def _user_id(value: Value, *, allow_zero: bool) -> int:
    uid = as_int(value)
    if uid < 0 or (uid == 0 and not allow_zero):
        raise _NEGATIVE_ID
    if uid > _MAX_ID:
        raise _ID_TOO_LARGE
    return uid


Apply = Callable[[], tuple[list[Effect], Ok]]


def _prepare_insert(table: Table, v: dict[str, Value], hub: Hub, ctx: Context) -> Apply:
    """Validate one row and return the call that applies it (so a bad row applies nothing)."""
    dev, now = ctx.dev_id, ctx.now
    name, dev = table.name, ctx.dev_id
    if name == "pipes_messages":
        _need(v, "name", "event", "message")
        channel, event, message = _channel(v["name"]), _event(v["event"]), as_text(v["message"])
        return lambda: (hub.publish(dev, channel, event, message, now), Ok(0, 0))
    if name == "users_messages":
        _need(v, "id", "event", "message")
        uid = _user_id(v["id"], allow_zero=True)
        event, message = _event(v["event"]), as_text(v["message"])
        key = _queue_key(v.get("index"))
        return lambda: (_send_to_user(hub, dev, uid, event, message, now, key), Ok(0, uid))
    if name == "users_auth":
        _need(v, "id", "hash")
        uid = _user_id(v["id"], allow_zero=False)
        hash_ = as_text(v["hash"])
        problem = hash_problem(hash_)
        if problem == "empty":
            raise SQLError(codes.ERR_EMPTY, "The hash is empty: anyone could log in as this user with an empty "
                           "key; DELETE FROM users_auth to log the user out")
        if problem == "chars":
            raise SQLError(codes.ERR_INVALID, "Contains an invalid characters in the string hash")
        if problem == "long":
            raise SQLError(codes.ERR_OVERFLOW, "Hash string is too long")
        return lambda: (hub.set_auth(dev, uid, hash_), Ok(1, uid))
    if name == "users_data":
        _need(v, "id", "data")
        uid = _user_id(v["id"], allow_zero=False)
        data = as_text(v["data"])
        return lambda: (hub.set_user_data(dev, uid, data), Ok(1, uid))
    if name == "revoked_tokens":
        _need(v, "token")
        token = as_text(v["token"])
        return lambda: (hub.revoke_token(dev, token, now), Ok(1, 1))
    if name == "pipes_settings":
        _need(v, "name")
        channel = _channel(v["name"])
        length = as_int(v.get("length"))
        return lambda: (hub.set_pipe_settings(dev, channel, length), Ok(1, 0))
    raise codes.read_only(name)  # pragma: no cover - read-only tables are rejected earlier


def _queue_key(value: Value) -> str | None:
    """``users_messages.index``: the backend's idempotency key (CppComet ignores the column)."""
    if value is None or value == "":
        return None
    key = as_text(value)
    if len(key) > 64 or not is_valid_channel(key):
        raise SQLError(codes.ERR_INVALID, "The index field (idempotency key) can contain only 1-64 characters "
                       "A-Za-z0-9_-")
    return key


def _send_to_user(hub: Hub, dev: int, uid: int, event: str, message: str, now: int, key: str | None) -> list[Effect]:
    try:
        return hub.send_to_user(dev, uid, event, message, now, key=key)
    except QueueFull as exc:
        raise codes.queue_full(str(exc)) from None


def _prepare_rows(stmt: Insert, rows: Iterable[tuple[Value, ...]], hub: Hub, ctx: Context) -> list[Apply]:
    """Check the statement's columns and validate ``rows``; the calls that apply them."""
    table = stmt.table
    if table.read_only:
        raise codes.read_only(table.name)
    seen: set[str] = set()
    for c in stmt.columns:
        if c not in table.columns:
            raise codes.bad_column()
        if c in seen:
            raise SQLError(codes.ERR_WHERE, "Each column in the insert used only once")
        seen.add(c)
    rows = list(rows)
    if any(len(row) != len(stmt.columns) for row in rows):
        raise codes.columns_list()
    return [_prepare_insert(table, dict(zip(stmt.columns, row, strict=True)), hub, ctx) for row in rows]


def _apply_rows(appliers: Iterable[Apply], hub: Hub) -> tuple[list[Effect], Ok]:
    effects: list[Effect] = []
    affected = insert_id = 0
    try:
        for apply in appliers:
            row_effects, ok = apply()
            effects.extend(row_effects)
            affected += ok.affected_rows
            insert_id = ok.insert_id
    except SQLError:  # a later row refused (a full queue): the statement stores nothing
        hub.settle([rec for e in effects if isinstance(e, Persist) for rec in e.records], False)
        raise
    return effects, Ok(affected, insert_id)


def _insert(stmt: Insert, hub: Hub, ctx: Context) -> tuple[list[Effect], Result]:
    return _apply_rows(_prepare_rows(stmt, stmt.rows, hub, ctx), hub)


# ------------------------------------------------------------------- SELECT


def _ids(keys: Iterable[Value], *, allow_zero: bool) -> list[int]:
    out: dict[int, None] = {}
    for k in keys:
        uid = as_int(k)
        if uid > 0 or (uid == 0 and allow_zero):
            out[uid] = None
    return list(out)


def _names(keys: Iterable[Value]) -> list[str]:
    out: dict[str, None] = {}
    for k in keys:
        name = as_text(k)
        if is_valid_channel(name):
            out[name] = None
    return list(out)


def _table_rows(table: Table, hub: Hub, ctx: Context, keys: tuple[Value, ...] | None) -> list[Row]:
    """Rows in declared column order for the given key values (None = every row)."""
    name, dev = table.name, ctx.dev_id
    if name == "pipes_messages":
        rows: list[Row] = []
        for channel in _names(keys or ()):
            for e in hub.state.history(dev, channel):
                rows.append((e.id, e.time, channel, len(rows), e.event, e.message, e.user_id, e.offset))
        return rows
    if name == "pipes":
        channels = hub.channels(dev) if keys is None else _names(keys)
        return [(c, hub.channel_count(dev, c)) for c in channels]
    if name == "users_in_pipes":
        channels = hub.channels(dev) if keys is None else _names(keys)
        rows = []
        for c in channels:
            for s in hub.channel_members(dev, c):
                info = ctx.sessions.get(s.key) if isinstance(s, RemoteSession) and not s.described else s.info
                if info is not None:
                    rows.append((c, s.user_id, info.uuid, info.user_agent, info.ip, info.origin, info.language))
        return rows
    if name == "pipes_settings":
        settings = ((c, hub.state.pipe_settings(dev, c)) for c in _names(keys or ()))
        return [(c, n) for c, n in settings if n is not None]
    if name == "users_messages":
        users = _ids(keys or (), allow_zero=True)
        return [(u, m.id, m.event, m.message) for u in users for m in ctx.queued.get(u, ())]
    if name == "users_time":
        ids = hub.known_users(dev) if keys is None else _ids(keys, allow_zero=True)
        return [(u, hub.user_time(dev, u)) for u in ids]
    if name == "users_auth":
        found = ((u, hub.state.auth_hash(dev, u)) for u in _ids(keys or (), allow_zero=False))
        return [(u, h) for u, h in found if h is not None]
    if name == "users_data":
        found = ((u, hub.state.user_data(dev, u)) for u in _ids(keys or (), allow_zero=False))
        return [(u, d) for u, d in found if d is not None]
    if name == "revoked_tokens":
        tokens = hub.state.revoked_tokens(dev)
        if keys is not None:
            wanted = {as_text(k) for k in keys}
            tokens = [t for t in tokens if t in wanted]
        return [(t,) for t in tokens]
    raise codes.no_table()  # pragma: no cover - every table is handled above


def query_rows(stmt: Select, hub: Hub, ctx: Context) -> list[Row]:
    """The rows a SELECT reads, in declared column order (its query then runs over them: ``run_query``)."""
    return _table_rows(stmt.table, hub, ctx, stmt.keys)


def _select(stmt: Select, hub: Hub, ctx: Context) -> Rows:
    table = stmt.table
    rows = _table_rows(table, hub, ctx, stmt.keys)
    if stmt.query is not None:
        return run_query(stmt, rows)
    if stmt.columns != table.all_columns:
        idx = [table.column_index(c) for c in stmt.columns]
        rows = [tuple(r[i] for i in idx) for r in rows]
    end = None if stmt.limit is None else stmt.offset + stmt.limit
    if stmt.offset or end is not None:
        rows = rows[stmt.offset : end]
    return Rows(stmt.columns, rows)


def _output_name(projection: exp.Expr) -> str:
    if isinstance(projection, exp.Alias):
        return projection.alias
    if isinstance(projection, exp.Column):
        return projection.name
    return projection.sql(dialect="mysql")


def run_query(stmt: Select, rows: list[Row]) -> Rows:
    """Filters, aggregates, ORDER BY and LIMIT over the table's rows (sqlglot's executor).

    Reads nothing but its arguments, so it may run in a worker thread (the server runs it there).
    """
    assert stmt.query is not None
    table = stmt.table
    query = expand(stmt.query.copy(), stmt.lifted)
    source = query.args["from_"].this
    source.set("db", None)
    source.set("catalog", None)
    # An explicit schema and column list: inferring them from the first row fails on an empty table.
    schema = {table.name: {c: "BIGINT" if c in table.int_columns else "TEXT" for c in table.all_columns}}
    data = DataTable(table.all_columns, rows)
    if table.hidden:  # ``*`` means CppComet's columns, not the hidden ones
        query.set("expressions", [col for p in query.expressions for col in (
            [exp.column(c, quoted=True) for c in table.columns] if _is_star(p) else [p])])
    try:
        result = sqlglot_execute(query, schema=schema, dialect="mysql", tables={table.name: data})
    except RecursionError:
        raise codes.too_deep(Limits().depth) from None
    except (SqlglotError, ValueError, TypeError, KeyError, ArithmeticError, NotImplementedError) as exc:
        raise SQLError(codes.ERR_SYNTAX, f"Syntax error in query ({exc})") from exc
    names: list[str] = []
    for p in query.expressions:
        if _is_star(p):
            names.extend(table.columns)
        else:
            names.append(_output_name(p))
    columns = tuple(names) if len(names) == len(result.columns) else tuple(result.columns)
    return Rows(columns, [tuple(_plain(v) for v in r) for r in result.rows])


def _is_star(p: exp.Expr) -> bool:
    return isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))


def _plain(value: Any) -> Value:
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)


# ------------------------------------------------------------------- DELETE


def _delete(stmt: Delete, hub: Hub, ctx: Context) -> list[Effect]:
    dev, name = ctx.dev_id, stmt.table.name
    if name == "pipes_messages":
        if stmt.column == "id":
            ids = [as_text(k) for k in stmt.keys if is_valid_channel(as_text(k))]
            return hub.delete_history_ids(dev, ids) if ids else []
        return hub.clear_history(dev, _names(stmt.keys))
    if name == "pipes_settings":
        return hub.delete_pipe_settings(dev, _names(stmt.keys))
    if name == "users_messages":
        return hub.delete_queued(dev, _ids(stmt.keys, allow_zero=True))
    if name == "users_auth":
        return hub.delete_auth(dev, _ids(stmt.keys, allow_zero=False))
    if name == "users_data":
        return hub.delete_user_data(dev, _ids(stmt.keys, allow_zero=False))
    if name == "revoked_tokens":
        return hub.unrevoke_tokens(dev, [as_text(k) for k in stmt.keys])
    raise codes.read_only(name)  # pragma: no cover - rejected while parsing
