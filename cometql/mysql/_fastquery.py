"""The hot command answered at the packet: a COM_QUERY holding one plain INSERT of literal rows.

mysql-mimic's way to an INSERT's OK goes through the command loop's dispatch,
``handle_query`` (``parse_com_query``'s reader objects), ``run_query`` with its
answer callback and the status-flag bookkeeping for multi-statement answers;
that is a sizeable share of the server's CPU per message. A COM_QUERY whose
text ``fast_insert`` accepts is a single statement (never multi-statement, so no
SERVER_MORE_RESULTS_EXISTS), so it is run here, with the session's own
counters, bounds and statement path (``CometSession.run_insert``), and its OK
or ERR packet is built by the connection's ``ok``/``error`` (so the bytes and
the error accounting are those of the normal path; a test compares them).
Any other packet, or a text the fast path does not accept, goes on to
mysql-mimic unchanged. ``CQL_PACKET_FAST_INSERT=off`` in the environment turns
it off (for the test that compares both paths' bytes; not a setting).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

from mysql_mimic.charset import CharacterSet
from mysql_mimic.errors import MysqlError
from mysql_mimic.types import Capabilities, Commands

from ..sql import fast_insert
from ._session import CometSession

__all__ = ["COM_QUERY", "ENABLED", "answer_fast_insert"]

log = logging.getLogger("cometql.mysql")

COM_QUERY = bytes((Commands.COM_QUERY,))
#: Off only in the test that compares the answers of both paths.
ENABLED = os.environ.get("CQL_PACKET_FAST_INSERT", "on") != "off"
#: With CLIENT_QUERY_ATTRIBUTES, a COM_QUERY starts with parameter_count 0 and parameter_set_count 1.
_NO_ATTRIBUTES = b"\x00\x01"


class _Connection(Protocol):
    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def client_charset(self) -> CharacterSet: ...

    @property
    def session(self) -> CometSession: ...

    def ok(self, **kwargs: Any) -> bytes: ...

    def error(self, **kwargs: Any) -> bytes: ...


def _text(data: bytes, capabilities: Capabilities, charset: CharacterSet) -> str | None:
    """The statement of a COM_QUERY packet (command byte included), or None when it is not for this path."""
    start = 1
    if Capabilities.CLIENT_QUERY_ATTRIBUTES in capabilities:
        if data[1:3] != _NO_ATTRIBUTES:
            return None
        start = 3
    try:
        return data[start:].decode(charset.codec)
    except UnicodeDecodeError:  # the normal path has its own error for it
        return None


async def answer_fast_insert(connection: _Connection, stream: Any, data: bytes) -> bool:
    """Answer ``data`` (a COM_QUERY packet) on ``stream`` if it is a plain INSERT of literals; False: not done.

    Errors are answered as mysql-mimic's command loop answers them (an ERR packet, the connection
    stays); the caller resets the packet sequence afterwards in both cases.
    """
    if not ENABLED:
        return False
    sql = _text(data, connection.capabilities, connection.client_charset)
    stmt = None if sql is None else fast_insert(sql, connection.session.options.limits.rows)
    if stmt is None:
        return False
    assert sql is not None
    try:
        ok = await connection.session.run_insert(stmt, sql)
        packet = connection.ok(affected_rows=ok.affected_rows, last_insert_id=ok.insert_id)
    except MysqlError as exc:
        packet = connection.error(msg=exc.msg, code=exc.code)
    except Exception as exc:  # as mysql-mimic's loop: a bug of ours is an ERR, not a lost connection
        log.exception("statement failed: %s", exc)
        packet = connection.error(msg=exc)
    await stream.write(packet)
    return True
