"""A tiny MySQL-protocol client over a plain socket, for tests that must send what no driver would.

PyMySQL always speaks correctly; bad-input, auth-plugin and fuzz tests need to
write arbitrary bytes, pick the auth plugin, and watch exactly what comes back
(an ERR packet, an AuthSwitchRequest, a closed socket). Every read has a
timeout, so a server that hangs fails the test instead of blocking it.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from dataclasses import dataclass

PROTOCOL_41 = 0x0000_0200
CONNECT_WITH_DB = 0x0000_0008
COMPRESS = 0x0000_0020
SSL = 0x0000_0800
SECURE_CONNECTION = 0x0000_8000
MULTI_STATEMENTS = 0x0001_0000
PLUGIN_AUTH = 0x0008_0000
DEPRECATE_EOF = 0x0100_0000
CLIENT_FLAGS = PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | MULTI_STATEMENTS
UTF8MB4 = 45
MORE_RESULTS = 0x0008  # server status: another result follows

COM_QUIT = 0x01
COM_QUERY = 0x03
COM_FIELD_LIST = 0x04
COM_PING = 0x0E
COM_CHANGE_USER = 0x11
COM_STMT_PREPARE = 0x16


class Closed(Exception):
    """The server closed the connection (EOF or reset) instead of answering."""


@dataclass(frozen=True)
class Greeting:
    version: str
    capabilities: int
    scramble: bytes
    plugin: str


@dataclass(frozen=True)
class ErrPacket:
    code: int
    message: str


def native_scramble(password: str, nonce: bytes) -> bytes:
    """mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))); empty password -> b''."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password.encode()).digest()
    mix = hashlib.sha1(nonce + hashlib.sha1(stage1).digest()).digest()
    return bytes(a ^ b for a, b in zip(stage1, mix, strict=True))


def sha256_scramble(password: str, nonce: bytes) -> bytes:
    """caching_sha2_password's 32-byte first response (what a MySQL 8 client sends by default)."""
    p1 = hashlib.sha256(password.encode()).digest()
    p2 = hashlib.sha256(hashlib.sha256(p1).digest() + nonce).digest()
    return bytes(a ^ b for a, b in zip(p1, p2, strict=True))


def _lenenc(data: bytes, pos: int) -> tuple[int, int]:
    n = data[pos]
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(n, 0)
    if not size:
        return n, pos + 1
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def ok_counts(payload: bytes) -> tuple[int, int]:
    """The affected rows and insert id of an OK packet (either header, 0x00 or 0xFE)."""
    affected, pos = _lenenc(payload, 1)
    insert_id, _ = _lenenc(payload, pos)
    return affected, insert_id


def ok_status(payload: bytes) -> int:
    """The status flags of an OK packet (after affected rows and insert id)."""
    _, pos = _lenenc(payload, 1)
    _, pos = _lenenc(payload, pos)
    return int(struct.unpack_from("<H", payload, pos)[0])


def parse_err(payload: bytes) -> ErrPacket | None:
    """The code and message of an ERR packet (0xFF, code, '#', SQLSTATE, message); None if not one."""
    if not payload or payload[0] != 0xFF:
        return None
    code = struct.unpack_from("<H", payload, 1)[0]
    rest = payload[3:]
    if rest[:1] == b"#":
        rest = rest[6:]
    return ErrPacket(code, rest.decode("utf-8", "replace"))


class RawClient:
    """One socket to the server; packets in and out with explicit sequence ids."""

    def __init__(self, host: str, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.scramble = b""  # the greeting's nonce, which COM_CHANGE_USER answers too

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # ------------------------------------------------------------ framing

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_packet(self, payload: bytes, seq: int = 0) -> None:
        self.send_raw(struct.pack("<I", len(payload) | (seq & 0xFF) << 24) + payload)

    def _recv_exactly(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError as exc:
                raise Closed("connection reset") from exc
            if not chunk:
                raise Closed("end of stream")
            buf += chunk
        return buf

    def read_packet(self) -> tuple[int, bytes]:
        """(sequence id, payload) of the next packet; raises Closed or socket.timeout."""
        header = self._recv_exactly(4)
        n = int.from_bytes(header[:3], "little")
        return header[3], self._recv_exactly(n)

    def err_or_close(self) -> ErrPacket | None:
        """Read until an ERR packet (returned) or a clean close (None); other packets are skipped.

        A timeout (socket.timeout) propagates: the server neither answered nor closed.
        """
        while True:
            try:
                _, payload = self.read_packet()
            except Closed:
                return None
            err = parse_err(payload)
            if err is not None:
                return err

    # -------------------------------------------------------- handshake

    def greeting(self) -> Greeting:
        _, p = self.read_packet()
        assert p[0] == 10, f"not a HandshakeV10: {p[:16]!r}"
        end = p.index(b"\0", 1)
        version = p[1:end].decode()
        pos = end + 1 + 4  # connection id
        part1 = p[pos : pos + 8]
        pos += 8 + 1
        caps = struct.unpack_from("<H", p, pos)[0]
        pos += 2 + 1 + 2  # charset, status
        caps |= struct.unpack_from("<H", p, pos)[0] << 16
        pos += 2
        data_len = p[pos]
        pos += 1 + 10
        part2_len = max(13, data_len - 8)
        part2 = p[pos : pos + part2_len]
        pos += part2_len
        plugin = p[pos : p.index(b"\0", pos)].decode() if b"\0" in p[pos:] else p[pos:].decode()
        return Greeting(version, caps, (part1 + part2)[:20], plugin)  # part2 ends with a NUL

    @staticmethod
    def handshake_response(
        user: str, auth: bytes, database: str | None = None, plugin: str = "mysql_native_password",
        extra_flags: int = 0,
    ) -> bytes:
        """A HandshakeResponse41 payload (``extra_flags``: more capabilities, such as DEPRECATE_EOF)."""
        flags = CLIENT_FLAGS | extra_flags | (CONNECT_WITH_DB if database is not None else 0)
        out = struct.pack("<IIB", flags, 1 << 24, UTF8MB4) + b"\0" * 23
        out += user.encode() + b"\0" + bytes([len(auth)]) + auth
        if database is not None:
            out += database.encode() + b"\0"
        return out + plugin.encode() + b"\0"

    def login(self, user: str, password: str, database: str | None = "CometQL_v1", extra_flags: int = 0) -> bytes:
        """Native-password login; returns the server's answer payload (OK starts with 0x00)."""
        g = self.greeting()
        self.scramble = g.scramble
        auth = native_scramble(password, g.scramble)
        self.send_packet(self.handshake_response(user, auth, database, extra_flags=extra_flags), 1)
        return self.read_packet()[1]

    def change_user(self, user: str, password: str, database: str | None = "CometQL_v1") -> bytes:
        """COM_CHANGE_USER after ``login`` (native password on the greeting's nonce); returns the answer payload."""
        auth = native_scramble(password, self.scramble)
        body = user.encode() + b"\0" + bytes([len(auth)]) + auth + (database or "").encode() + b"\0"
        body += struct.pack("<H", UTF8MB4) + b"mysql_native_password\0"
        self.command(COM_CHANGE_USER, body)
        return self.read_packet()[1]

    # ---------------------------------------------------------- commands

    def command(self, command: int, body: bytes = b"") -> None:
        self.send_packet(bytes([command]) + body, 0)

    def query(self, sql: bytes | str) -> bytes:
        """Send a COM_QUERY; return the first response packet's payload (OK, ERR or column count)."""
        self.command(COM_QUERY, sql.encode() if isinstance(sql, str) else sql)
        return self.read_packet()[1]

    def drain_response(self, first: bytes) -> None:
        """Consume the rest of a response whose first packet was ``first``.

        Handles OK, ERR and result sets, and the further results of a multi-statement.
        We never ask for CLIENT_DEPRECATE_EOF, so a result set is: columns, EOF, rows, EOF.
        """
        while True:
            if first[:1] == b"\xff":
                return
            if first[:1] == b"\x00":
                status = ok_status(first)
            else:
                eofs, status = 0, 0
                while eofs < 2:
                    _, p = self.read_packet()
                    if p[:1] == b"\xff":
                        return
                    if p[:1] == b"\xfe" and len(p) < 9:
                        eofs += 1
                        status = struct.unpack_from("<H", p, 3)[0]
            if not status & MORE_RESULTS:
                return
            first = self.read_packet()[1]

    def query_rows(self, sql: str) -> list[tuple[str | None, ...]]:
        """A COM_QUERY's text result set as rows (AssertionError with the ERR if it failed)."""
        first = self.query(sql)
        assert parse_err(first) is None, parse_err(first)
        if first[:1] == b"\x00":
            return []
        columns, _ = _lenenc(first, 0)
        for _ in range(columns + 1):  # column definitions, EOF
            self.read_packet()
        rows: list[tuple[str | None, ...]] = []
        while True:
            _, p = self.read_packet()
            if p[:1] == b"\xfe" and len(p) < 9:
                return rows
            row: list[str | None] = []
            pos = 0
            for _ in range(columns):
                if p[pos] == 0xFB:
                    row.append(None)
                    pos += 1
                    continue
                n, pos = _lenenc(p, pos)
                row.append(p[pos : pos + n].decode())
                pos += n
            rows.append(tuple(row))

    def ping(self) -> bool:
        self.command(COM_PING)
        return self.read_packet()[1][:1] == b"\x00"
