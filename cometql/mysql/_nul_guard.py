"""Refuse packets that would freeze mysql-mimic's parsers.

mysql-mimic (compiled with mypyc) reads NUL-terminated strings with a loop that
never ends when the NUL is missing: one garbage handshake response, COM_CHANGE_USER
or COM_FIELD_LIST froze the whole server (its trio loop) for every client. Its
parsers call that reader directly, so it cannot be replaced; instead each affected
parser is wrapped by a check that walks the same fields in the same order and
raises ``MysqlError`` (an ERR packet, or "Bad handshake") where the original would
spin. Well-formed packets are parsed by mysql-mimic exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mysql_mimic.connection
import mysql_mimic.packets
from mysql_mimic.errors import ErrorCode, MysqlError
from mysql_mimic.types import Capabilities

__all__ = ["install"]

_FIXED_HEADER = 32  # capabilities 4, max packet 4, charset 1, filler 23


def _malformed() -> MysqlError:
    return MysqlError("Malformed packet", ErrorCode.MALFORMED_PACKET)


def _after_nul(data: bytes, pos: int) -> int:
    """Where the NUL-terminated string at ``pos`` ends (just past its NUL)."""
    end = data.find(b"\0", pos)
    if end < 0:
        raise _malformed()
    return end + 1


def _after_counted(data: bytes, pos: int, *, lenenc: bool) -> int:
    """Skip a length-prefixed string, reading the length as mysql-mimic does."""
    if pos >= len(data):
        raise _malformed()
    n, pos = data[pos], pos + 1
    if lenenc and n in (0xFC, 0xFD, 0xFE):
        size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[n]
        n, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
    return pos + n


def check_handshake_response(capabilities: Capabilities, data: bytes) -> None:
    if len(data) <= _FIXED_HEADER:
        return  # an SSLRequest, or short enough that mysql-mimic raises by itself
    caps = capabilities & Capabilities(int.from_bytes(data[:4], "little"))
    pos = _after_nul(data, _FIXED_HEADER)  # user name
    pos = _after_counted(data, pos, lenenc=Capabilities.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA in caps)
    if Capabilities.CLIENT_CONNECT_WITH_DB in caps:
        pos = _after_nul(data, pos)
    if Capabilities.CLIENT_PLUGIN_AUTH in caps:
        _after_nul(data, pos)


def check_com_change_user(capabilities: Capabilities, data: bytes) -> None:
    pos = _after_nul(data, 0)  # user name
    if Capabilities.CLIENT_SECURE_CONNECTION in capabilities:
        pos = _after_counted(data, pos, lenenc=False)
    else:
        pos = _after_nul(data, pos)
    pos = _after_nul(data, pos)  # database
    if pos < len(data):
        if Capabilities.CLIENT_PROTOCOL_41 in capabilities:
            pos += 2  # character set
        if Capabilities.CLIENT_PLUGIN_AUTH in capabilities:
            _after_nul(data, pos)


def _guarded(parse: Callable[..., Any], check: Callable[[Capabilities, bytes], None]) -> Callable[..., Any]:
    def parse_checked(capabilities: Capabilities, *args: Any, data: bytes, **kwargs: Any) -> Any:
        check(capabilities, data)
        return parse(capabilities, *args, data=data, **kwargs)

    return parse_checked


def _parse_com_field_list(client_charset: Any, data: bytes) -> Any:
    _after_nul(data, 0)  # table name
    return _original_field_list(client_charset, data)


_original_field_list = mysql_mimic.packets.parse_com_field_list


def install() -> None:
    """Wrap the parsers where mysql-mimic's connection code looks them up."""
    p = mysql_mimic.packets
    for name, check in (
        ("parse_handshake_response", check_handshake_response),
        ("parse_handshake_response_41", check_handshake_response),
        ("parse_com_change_user", check_com_change_user),
    ):
        setattr(p, name, _guarded(getattr(p, name), check))
    mysql_mimic.connection.parse_com_field_list = _parse_com_field_list
