"""The MySQL-protocol front: mysql-mimic connections as trio tasks.

mysql-mimic normally owns an asyncio server; we accept sockets with trio and
run its ``Connection`` on them through the small stream adapter, so statements
reach the hub in the same thread and loop, with no hand-off. Only three
behaviours are changed by subclassing: OK packets carry CometQL's affected-rows
and insert-id values, the database named at login is checked with CometQL's
rules, a failed login ends the connection, and COM_CHANGE_USER is a new login
(its dev_id, a fresh session; refused: the connection is closed).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import types
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import mysql_mimic.connection
import mysql_mimic.packets
import mysql_mimic.utils
import trio
from mysql_mimic.auth import IdentityProvider, NativePasswordAuthPlugin, User
from mysql_mimic.constants import DEFAULT_SERVER_CAPABILITIES
from mysql_mimic.control import LocalControl
from mysql_mimic.errors import ErrorCode, MysqlError
from mysql_mimic.prepared import REGEX_PARAM, PreparedStatement
from mysql_mimic.results import ResultSet, ensure_result_set
from mysql_mimic.stream import ConnectionClosed
from mysql_mimic.types import Capabilities, ServerStatus, read_uint_4, read_uint_len, uint_len
from mysql_mimic.utils import aiterate, cooperative_iterate

from ..listen import AcceptFailures, Admission, Ticket, open_listeners, serve
from ..node import Node
from ..observe import Observer
from ..sql import Ok
from . import _nul_guard
from ._adapter import PacketTooLarge
from ._conformance import MysqlConformance
from ._fastquery import answer_fast_insert
from ._options import MysqlOptions
from ._session import CometSession, dev_id_for_login, make_global_variables
from ._setoption import SetOptionFilter
from ._tls import TlsUpgrade

__all__ = ["MysqlFront"]

log = logging.getLogger("cometql.mysql")

#: One statement may span several 16 MiB packets in MySQL; we take a single packet at most.
MAX_PACKET = 0xFFFFFE
ER_NET_PACKET_TOO_LARGE = 1153
_TOO_LARGE = "Got a packet bigger than 'max_allowed_packet' bytes"
#: Until the login succeeds: a handshake response is well under 1 KiB (connect attributes included).
LOGIN_MAX_PACKET = 64 * 1024


def max_packet(options: MysqlOptions) -> int:
    """The packet cap once logged in: room for the longest statement or message (4 bytes a character)."""
    return min(MAX_PACKET, 4 * max(options.max_query_size, options.max_message_size) + 64 * 1024)


def _install_trio_shim() -> None:
    """mysql-mimic yields with ``asyncio.sleep(0)`` while streaming big results; make that a trio checkpoint."""
    shim = types.SimpleNamespace(**{k: getattr(asyncio, k) for k in ("CancelledError", "create_task")})

    async def sleep(delay: float, result: Any = None) -> Any:
        await trio.sleep(delay)
        return result

    shim.sleep = sleep
    mysql_mimic.utils.asyncio = shim  # type: ignore[assignment]
    mysql_mimic.connection.asyncio = shim  # type: ignore[assignment]


def _nonce(nbytes: int) -> bytes:
    """mysql-mimic's login nonce (letters and digits), from one ``os.urandom`` call instead of one per character.

    The original draws each character with ``SystemRandom().choice``: about 40 getrandom system calls a
    login. Bytes at or above the largest multiple of the alphabet's size are dropped, so every character
    stays equally likely.
    """
    chars = mysql_mimic.utils.SAFE_NONCE_CHARS
    bound = 256 - 256 % len(chars)
    out = bytearray()
    while len(out) < nbytes:
        out += bytes(chars[b % len(chars)] for b in os.urandom(2 * nbytes) if b < bound)
    return bytes(out[:nbytes])


mysql_mimic.utils.nonce = _nonce
_install_trio_shim()
_nul_guard.install()  # garbage packets must not freeze the server (see the module)

_SQL_STRING_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"})


def _param_as_sql(value: Any) -> str:
    """A COM_STMT_EXECUTE parameter as a SQL literal (strings escaped as MySQL string literals)."""
    if isinstance(value, str):
        return "'" + value.translate(_SQL_STRING_ESCAPES) + "'"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _parse_com_stmt_execute(
    capabilities: Capabilities, client_charset: Any, data: bytes, get_stmt: Callable[[int], PreparedStatement]
) -> Any:
    """mysql-mimic's COM_STMT_EXECUTE parser, with the parameters spliced in safely.

    The original pastes string parameters between quotes unescaped (so ``it's`` from
    PDO with native prepares was a syntax error, and a parameter could inject SQL)
    and re-scans the text after each splice. Here every ``?`` is found in the prepared
    text once and replaced by an escaped literal. (packets is compiled, so the module
    attribute used by ``Connection.handle_stmt_execute`` is the only hook.)
    """
    packets = mysql_mimic.packets
    r = io.BytesIO(data)
    stmt = get_stmt(read_uint_4(r))
    use_cursor, param_count_available = packets._read_cursor_flags(r)
    read_uint_4(r)  # iteration count, always 1
    count = stmt.num_params
    if Capabilities.CLIENT_QUERY_ATTRIBUTES in capabilities and (count > 0 or param_count_available):
        count = read_uint_len(r)
    sql, attrs = stmt.sql, {}
    if count > 0:
        params = packets._read_params(capabilities, client_charset, r, count, stmt.param_buffers)
        literals = iter([_param_as_sql(value) for _, value in params[: stmt.num_params]])
        sql = REGEX_PARAM.sub(lambda _m: next(literals), sql, count=stmt.num_params)
        attrs = {k: v for k, v in params[stmt.num_params :] if k is not None}
    return packets.ComStmtExecute(sql=sql, query_attrs=attrs, stmt=stmt, use_cursor=use_cursor)


mysql_mimic.packets.parse_com_stmt_execute = _parse_com_stmt_execute


class PasswordIdentity(IdentityProvider):
    """One password for every login name; names that are not a dev_id can never log in (1045)."""

    def __init__(self, password: str, dev_index_size: int) -> None:
        self._auth_string = NativePasswordAuthPlugin.create_auth_string(password)
        self._unmatchable = hashlib.sha1(os.urandom(32)).hexdigest()
        self._dev_index_size = dev_index_size
        self._plugins = [NativePasswordAuthPlugin()]

    def get_plugins(self) -> list[NativePasswordAuthPlugin]:
        return self._plugins

    async def get_user(self, username: str) -> User:
        valid = dev_id_for_login(username, self._dev_index_size) is not None
        return User(
            name=username,
            auth_string=self._auth_string if valid else self._unmatchable,
            auth_plugin="mysql_native_password",
        )


class CometConnection(MysqlConformance):
    """mysql-mimic's connection with CometQL's OK values, error accounting and login rules."""

    session: CometSession

    def __init__(self, *args: Any, observer: Observer, tls_upgrade: TlsUpgrade,
                 logged_in: Callable[[], None] = lambda: None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.status_flags = ServerStatus.SERVER_STATUS_AUTOCOMMIT
        self.observer = observer
        self.tls_upgrade = tls_upgrade
        #: Told once the login succeeded (the port's ``Admission`` stops counting it as unauthenticated).
        self.logged_in = logged_in

    def error(self, **kwargs: Any) -> bytes:
        """Every ERR packet is built here: count it by code and keep it for the admin dashboard."""
        self.observer.error(int(kwargs.get("code", ErrorCode.UNKNOWN_ERROR)), str(kwargs.get("msg", "")))
        return super().error(**kwargs)

    async def _run(self, sql: str, attrs: dict[str, str]) -> Ok | ResultSet:
        """The session's answer: CometQL's ``Ok`` (with its affected rows and insert id) or a result set."""
        result = await self.session.handle_query(sql, attrs)
        if isinstance(result, Ok):
            return result
        return await ensure_result_set(result)

    def _ok_for(self, result: Ok | ResultSet) -> bytes:
        if isinstance(result, Ok):
            return self.ok(affected_rows=result.affected_rows, last_insert_id=result.insert_id)
        return self.ok()

    async def handle_query(self, data: bytes) -> None:
        """COM_QUERY: every statement's answer as soon as it is known, as MySQL sends several result sets.

        Each answer but the last carries SERVER_MORE_RESULTS_EXISTS. A client that did not ask for
        CLIENT_MULTI_STATEMENTS (nor turned it on with COM_SET_OPTION) gets only the last answer.
        """
        try:
            com_query = mysql_mimic.packets.parse_com_query(
                capabilities=self.capabilities, client_charset=self.client_charset, data=data
            )
        except UnicodeDecodeError:  # a clear CometQL error instead of 1105 with Python's text
            raise MysqlError("Syntax error in query (the statement is not valid UTF-8)", 3) from None  # type: ignore[arg-type]
        multi = Capabilities.CLIENT_MULTI_STATEMENTS in self.capabilities

        async def emit(result: Any, more: bool) -> None:
            if multi or not more:
                await self._write_answer(result if isinstance(result, Ok) else await ensure_result_set(result), more)

        await self.session.run_query(com_query.sql, com_query.query_attrs, emit)

    async def _write_answer(self, result: Ok | ResultSet, more: bool) -> None:
        flags = self.status_flags
        if more:
            self.status_flags = flags | ServerStatus.SERVER_MORE_RESULTS_EXISTS
        try:
            if isinstance(result, Ok) or not result:
                await self.stream.write(self._ok_for(result))
            else:
                await self.write_text_resultset(result)
        finally:
            self.status_flags = flags

    async def command_phase(self) -> None:
        """mysql-mimic's, with COM_SET_OPTION answered (PHP's multi_query sends it) and plain INSERTs
        answered at the packet (``_fastquery``)."""
        real = self.stream
        self.stream = SetOptionFilter(real, self, partial(answer_fast_insert, self, real))  # type: ignore[assignment]
        try:
            await super().command_phase()
        finally:
            self.stream = real

    async def handle_stmt_execute(self, data: bytes) -> None:
        """COM_STMT_EXECUTE, as mysql-mimic answers it, with the OK's values taken from the result."""
        execute = mysql_mimic.packets.parse_com_stmt_execute(
            capabilities=self.capabilities, client_charset=self.client_charset, data=data, get_stmt=self.get_stmt
        )
        execute.stmt.param_buffers = None
        result = await self._run(execute.sql, execute.query_attrs)
        if isinstance(result, Ok) or not result:
            await self.stream.write(self._ok_for(result))
            return
        await self._write_binary_resultset(result, execute)

    async def _write_binary_resultset(self, result: ResultSet, execute: Any) -> None:
        packets = mysql_mimic.packets
        await self.stream.write(uint_len(len(result.columns)))
        for column in result.columns:
            await self.stream.write(packets.make_column_definition_41(
                server_charset=self.server_charset, name=column.name, column_type=column.type,
                character_set=column.character_set,
            ))

        async def rows() -> AsyncIterator[bytes]:
            async for row in cooperative_iterate(aiterate(result.rows)):
                yield packets.make_binary_resultrow(row, result.columns)

        if execute.use_cursor:
            execute.stmt.cursor = rows()
            await self.stream.write(self.ok_or_eof(flags=ServerStatus.SERVER_STATUS_CURSOR_EXISTS))
            return
        if not self.deprecate_eof():
            await self.stream.write(self.eof())
        async for packet in rows():
            await self.stream.write(packet)
        await self.stream.write(self.ok_or_eof())

    async def authenticate(self, username: str, *args: Any, **kwargs: Any) -> None:
        """The login: a database it names must exist for its dev (checked before the password, as before)."""
        database = self.session.database
        if database:
            try:
                self.session.dev_for(database, dev_id_for_login(username, self.session.options.dev_index_size))
            except MysqlError as exc:
                await self.stream.write(self.error(msg=exc.msg, code=exc.code))
                raise ConnectionClosed("bad database at login") from None
        await super().authenticate(username, *args, **kwargs)

    async def handle_change_user(self, data: bytes) -> None:
        """COM_CHANGE_USER: a new login on this connection, with its own dev_id and a fresh session.

        mysql-mimic's version kept the old dev_id and, after a wrong password (1045), left the
        connection logged in as before; MySQL closes it, and so do we, after any refused change.
        """
        packet = mysql_mimic.packets.parse_com_change_user(
            capabilities=self.capabilities, client_charset=self.client_charset, data=data
        )
        session = self.session
        database = packet.database or None
        if database:
            try:
                session.dev_for(database, dev_id_for_login(packet.username, session.options.dev_index_size))
            except MysqlError as exc:
                await self.stream.write(self.error(msg=exc.msg, code=exc.code))
                await self._hang_up()
                return
        session.username = None  # set again by a successful authenticate()
        await super().authenticate(
            username=packet.username,
            auth_response=packet.auth_response,
            client_plugin_name=packet.client_plugin,
            connect_attrs=packet.connect_attrs,
        )
        if session.username is None:  # refused: the ERR packet has been sent
            await self._hang_up()
            return
        if packet.connect_attrs:
            self.client_connect_attrs = packet.connect_attrs
        self.prepared_stmts.clear()  # MySQL drops a session's prepared statements on a change of user
        await session.change_user(packet.username, database,
                                  packet.client_charset.name if packet.client_charset else None)

    async def _refuse(self, msg: str, code: int) -> None:
        """A last ERR packet before the connection ends (the peer may be gone or not reading: not waited for long)."""
        with trio.move_on_after(1):
            try:
                await self.stream.write(self.error(msg=msg, code=code))
            except ConnectionClosed:
                pass

    async def _hang_up(self) -> None:
        """Close the socket: the command loop's next read ends the connection (``run`` then closes the session)."""
        with trio.move_on_after(1) as scope:
            scope.shield = True
            await self.tls_upgrade.stream.aclose()

    async def run(self) -> None:
        """Handshake, then commands until the client leaves. Never raises for client faults."""
        real_stream = self.stream
        if self.ssl is not None:
            self.stream = self.tls_upgrade.handshake_proxy()  # type: ignore[assignment]  # adds start_tls on trio
        options = self.session.options
        try:
            with trio.move_on_after(options.login_timeout) as login:
                await self.connection_phase()
            if login.cancelled_caught:  # silent or slow: it must not hold a descriptor for ever
                log.debug("connection %s: no login within %g s", self.connection_id, options.login_timeout)
                return
        except PacketTooLarge as exc:  # over LOGIN_MAX_PACKET: say why (as MySQL does), read no more of it
            log.debug("connection %s: %s", self.connection_id, exc)
            await self._refuse(_TOO_LARGE, ER_NET_PACKET_TOO_LARGE)
            return
        except ConnectionClosed:
            return
        except Exception as exc:  # garbage instead of a handshake response
            log.debug("handshake failed: %r", exc)
            await self._refuse("Bad handshake", ErrorCode.HANDSHAKE_ERROR)
            return
        finally:
            self.stream = real_stream
        if self.session.username is None:  # login refused; the ERR packet has been sent
            return
        self.logged_in()
        self.tls_upgrade.reader.max_payload = max_packet(options)
        await self.session.init(self)
        try:
            await self.command_phase()
        except PacketTooLarge as exc:
            log.debug("connection %s ended: %s", self.connection_id, exc)
            await self._refuse(_TOO_LARGE, ER_NET_PACKET_TOO_LARGE)
        except (ConnectionClosed, MysqlError) as exc:
            log.debug("connection %s ended: %s", self.connection_id, exc)
        finally:
            await self.session.close()


class MysqlFront:
    """Accepts MySQL clients; each connection runs as a trio task of ``serve``'s nursery."""

    capabilities = (
        DEFAULT_SERVER_CAPABILITIES
        | Capabilities.CLIENT_MULTI_STATEMENTS
        | Capabilities.CLIENT_FOUND_ROWS
        | Capabilities.CLIENT_TRANSACTIONS
    )

    def __init__(self, node: Node, options: MysqlOptions) -> None:
        self.node = node
        self.options = options
        self.global_variables = make_global_variables()
        self.identity = PasswordIdentity(options.password, options.dev_index_size)
        self.control = LocalControl()
        self.accept_failures = AcceptFailures(log, "MySQL")
        self.admission = Admission(log, "MySQL", max_open=options.max_connections,
                                   max_pending=options.max_unauthenticated)

    async def handle(self, stream: trio.SocketStream, ticket: Ticket) -> None:
        counters = self.node.mysql
        counters.opened += 1
        trio_side = TlsUpgrade(stream, max_payload=LOGIN_MAX_PACKET)
        trio_side.writer.after_send = self.node.engine.answered  # the OK first, its fan-out right after
        connection = CometConnection(
            stream=trio_side.mysql_stream,
            session=CometSession(self.node, self.options, self.global_variables),
            control=self.control,
            identity_provider=self.identity,
            server_capabilities=self.capabilities,
            ssl=self.options.tls,  # None: CLIENT_SSL is not advertised
            observer=self.node.observer,
            tls_upgrade=trio_side,
            logged_in=ticket.settle,
        )
        connection_id = await self.control.add(connection)
        connection.connection_id = connection_id
        try:
            await connection.run()
        except Exception:  # a bug of ours must not take the server down with it
            log.exception("MySQL connection %s failed", connection_id)
        finally:
            counters.closed += 1
            ticket.close()
            await self.control.remove(connection_id)
            with trio.move_on_after(1) as scope:
                scope.shield = True
                await trio_side.stream.aclose()

    async def serve(
        self, *, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        options = self.options
        listeners = await open_listeners(options.port, options.host, reuse_port=options.reuse_port)
        task_status.started(listeners)
        await serve(self.handle, listeners, self.accept_failures, self.admission)
