"""COM_SET_OPTION, which mysql-mimic does not know: multi-statements on and off.

PHP's mysqlnd sends it around every ``multi_query`` (ON before, OFF after) when
the connection did not ask for CLIENT_MULTI_STATEMENTS at login; mysql-mimic
answered "Unsupported Command", so PHP received only the last result set.
mysql-mimic's command loop cannot be extended, so ``SetOptionFilter`` sits
between it and the packet stream: it answers COM_SET_OPTION itself (as MySQL
does: EOF, or OK with CLIENT_DEPRECATE_EOF) and hands every other command on.
It is also where a COM_QUERY may be answered before mysql-mimic sees it
(``fast``: a plain INSERT of literal rows, see ``_fastquery``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from mysql_mimic.errors import ErrorCode
from mysql_mimic.types import Capabilities

from ._fastquery import COM_QUERY

__all__ = ["COM_SET_OPTION", "SetOptionFilter"]

COM_SET_OPTION = 0x1B
_COMMAND = bytes((COM_SET_OPTION,))
_MULTI_STATEMENTS_ON, _MULTI_STATEMENTS_OFF = 0, 1


class _Connection(Protocol):
    capabilities: Capabilities

    def ok_or_eof(self) -> bytes: ...

    def error(self, **kwargs: Any) -> bytes: ...


class SetOptionFilter:
    """The connection's packet stream, minus the COM_SET_OPTION commands it answers itself."""

    def __init__(self, stream: Any, connection: _Connection,
                 fast: Callable[[bytes], Awaitable[bool]] | None = None) -> None:
        self._stream = stream
        self._connection = connection
        self._fast = fast
        # bound once: these run for every statement
        self.write, self.write_many, self.write_text_rows = stream.write, stream.write_many, stream.write_text_rows
        self.drain, self.reset_seq = stream.drain, stream.reset_seq

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def read(self) -> bytes:
        while True:
            data: bytes = await self._stream.read()
            command = data[:1]
            if command == COM_QUERY:
                if self._fast is None or not await self._fast(data):
                    return data
                self._stream.reset_seq()  # as mysql-mimic's command loop does after every command
                continue
            if command != _COMMAND:
                return data
            await self._stream.write(self._answer(data[1:3]))
            self._stream.reset_seq()

    def _answer(self, option: bytes) -> bytes:
        conn = self._connection
        value = int.from_bytes(option, "little") if len(option) == 2 else -1
        if value == _MULTI_STATEMENTS_ON:
            conn.capabilities |= Capabilities.CLIENT_MULTI_STATEMENTS
        elif value == _MULTI_STATEMENTS_OFF:
            conn.capabilities &= ~Capabilities.CLIENT_MULTI_STATEMENTS
        else:
            return conn.error(msg="Unknown command", code=ErrorCode.UNKNOWN_COM_ERROR)
        return conn.ok_or_eof()
