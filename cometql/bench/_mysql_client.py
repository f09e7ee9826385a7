"""A minimal blocking MySQL-protocol client for the benchmark.

Why not PyMySQL: it is a test extra (not installed with the package), and at
~15k INSERT/s on a two-core machine its per-statement Python overhead takes CPU
the server needs. This client logs in with ``mysql_native_password``, sends
pre-built ``COM_QUERY`` packets and reads replies with as little parsing as
possible: an INSERT's reply is one OK/ERR packet, a SELECT's is a text result
set (no ``CLIENT_DEPRECATE_EOF``, so EOF packets delimit it).
"""

from __future__ import annotations

import hashlib
import socket
import struct

__all__ = ["MySQLClient", "MySQLError", "com_query", "sql_quote"]

_CAPS = (
    0x00000001  # CLIENT_LONG_PASSWORD
    | 0x00000008  # CLIENT_CONNECT_WITH_DB
    | 0x00000200  # CLIENT_PROTOCOL_41
    | 0x00002000  # CLIENT_TRANSACTIONS
    | 0x00008000  # CLIENT_SECURE_CONNECTION
    | 0x00020000  # CLIENT_MULTI_RESULTS
    | 0x00080000  # CLIENT_PLUGIN_AUTH
)
_UTF8MB4 = 45


class MySQLError(Exception):
    """An ERR packet from the server: args are (code, message)."""


def sql_quote(text: str) -> str:
    """A single-quoted SQL string literal (backslash and quote escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def com_query(sql: str) -> bytes:
    """The complete wire packet (header + COM_QUERY) for one statement, ready to send."""
    body = b"\x03" + sql.encode()
    return struct.pack("<I", len(body))[:3] + b"\x00" + body


def _scramble(password: str, salt: bytes) -> bytes:
    if not password:
        return b""
    p1 = hashlib.sha1(password.encode()).digest()
    p2 = hashlib.sha1(p1).digest()
    p3 = hashlib.sha1(salt + p2).digest()
    return bytes(a ^ b for a, b in zip(p1, p3, strict=True))


def _lenenc(data: bytes, pos: int) -> tuple[int | None, int]:
    """A length-encoded integer at ``pos``: (value or None for NULL, next position)."""
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFB:
        return None, pos + 1
    if first == 0xFC:
        return int.from_bytes(data[pos + 1:pos + 3], "little"), pos + 3
    if first == 0xFD:
        return int.from_bytes(data[pos + 1:pos + 4], "little"), pos + 4
    return int.from_bytes(data[pos + 1:pos + 9], "little"), pos + 9


def _error(packet: bytes) -> MySQLError:
    code = int.from_bytes(packet[1:3], "little")
    message = packet[9:] if packet[3:4] == b"#" else packet[3:]
    return MySQLError(code, message.decode("utf-8", "replace"))


class MySQLClient:
    """One logged-in connection. ``execute`` for statements, ``query`` for rows."""

    def __init__(self, host: str, port: int, user: str, password: str, database: str = "CometQL_v1",
                 timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self._login(user, password, database)

    # ------------------------------------------------------------ framing

    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("MySQL server closed the connection")
        self._buf += chunk

    def _packet(self) -> bytes:
        """The next packet's payload (multi-packet payloads of 16 MiB are not needed here)."""
        while len(self._buf) < 4:
            self._recv()
        size = int.from_bytes(self._buf[:3], "little")
        while len(self._buf) < 4 + size:
            self._recv()
        payload = bytes(self._buf[4:4 + size])
        del self._buf[:4 + size]
        return payload

    def _send(self, payload: bytes, seq: int) -> None:
        self.sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload)

    # ------------------------------------------------------------ login

    def _login(self, user: str, password: str, database: str) -> None:
        greeting = self._packet()
        if greeting[0] == 0xFF:
            raise _error(greeting)
        pos = greeting.index(b"\x00", 1) + 1 + 4  # protocol byte, version string, connection id
        salt = greeting[pos:pos + 8]
        pos += 8 + 1 + 2 + 1 + 2 + 2  # salt 1, filler, caps low, charset, status, caps high
        salt_len = greeting[pos]
        pos += 1 + 10
        salt += greeting[pos:pos + max(13, salt_len - 8) - 1]
        auth = _scramble(password, salt)
        response = (struct.pack("<IIB", _CAPS, 1 << 24, _UTF8MB4) + b"\x00" * 23 + user.encode() + b"\x00"
                    + bytes([len(auth)]) + auth + database.encode() + b"\x00" + b"mysql_native_password\x00")
        self._send(response, 1)
        seq = 2
        while True:
            reply = self._packet()
            seq += 1
            if reply[0] == 0x00:
                return
            if reply[0] == 0xFF:
                raise _error(reply)
            if reply[0] == 0xFE:  # AuthSwitchRequest: plugin name, then a new salt
                end = reply.index(b"\x00", 1)
                new_salt = reply[end + 1:].rstrip(b"\x00")
                self._send(_scramble(password, new_salt), seq)
                seq += 1
                continue
            raise MySQLError(0, f"unexpected login reply 0x{reply[0]:02x}")

    # ------------------------------------------------------------ statements

    def execute_packet(self, packet: bytes) -> None:
        """Send a pre-built COM_QUERY (see ``com_query``) whose reply is OK or ERR; raise on ERR."""
        self.sock.sendall(packet)
        buf = self._buf
        while len(buf) < 5:
            self._recv()
        size = int.from_bytes(buf[:3], "little")
        while len(buf) < 4 + size:
            self._recv()
        kind = buf[4]
        if kind != 0x00:
            packet = bytes(buf[4:4 + size])
            del buf[:4 + size]
            raise _error(packet) if kind == 0xFF else MySQLError(0, "statement returned rows")
        del buf[:4 + size]

    def execute(self, sql: str) -> None:
        self.execute_packet(com_query(sql))

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Rows of a text result set as tuples of strings (an OK reply gives no rows)."""
        self.sock.sendall(com_query(sql))
        first = self._packet()
        if first[0] == 0x00:
            return []
        if first[0] == 0xFF:
            raise _error(first)
        columns, _ = _lenenc(first, 0)
        for _ in range(columns or 0):
            self._packet()
        self._packet()  # EOF after the column definitions
        rows: list[tuple[str | None, ...]] = []
        while True:
            packet = self._packet()
            if packet[0] == 0xFE and len(packet) < 9:
                return rows
            if packet[0] == 0xFF:
                raise _error(packet)
            row: list[str | None] = []
            pos = 0
            while pos < len(packet):
                size, pos = _lenenc(packet, pos)
                if size is None:
                    row.append(None)
                else:
                    row.append(packet[pos:pos + size].decode("utf-8", "replace"))
                    pos += size
            rows.append(tuple(row))

    def status(self) -> dict[str, str]:
        """SHOW GLOBAL STATUS as a dict."""
        return {str(k): str(v) for k, v in self.query("SHOW GLOBAL STATUS")}

    def subscribers(self, channel: str) -> int:
        """How many sessions are subscribed to ``channel`` (0 when it has none)."""
        rows = self.query(f"SELECT users FROM pipes WHERE name = {sql_quote(channel)}")
        return int(rows[0][0] or 0) if rows else 0

    def close(self) -> None:
        try:
            self._send(b"\x01", 0)  # COM_QUIT
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> MySQLClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
