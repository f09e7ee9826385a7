"""Packets that mysql-mimic builds differently from MySQL, in ways real drivers trip over.

Each override here puts on the wire what MySQL 8 and MariaDB send, because some
widely used driver reads the difference as a broken connection:

- The packet that ends a result set (an OK packet with the EOF header under
  CLIENT_DEPRECATE_EOF) carries 0 affected rows and 0 insert id. mysql-mimic put
  the number of rows returned there; MariaDB Connector/J 2.x then misreads the
  packet (``ArrayIndexOutOfBoundsException`` in ``SelectResultSet``) and cannot
  even log in, since its own login query returns a row.
- The answer to COM_STMT_PREPARE ends its parameter definitions with an EOF
  packet only when CLIENT_DEPRECATE_EOF was *not* agreed. mysql-mimic always sent
  one; libmysqlclient (mysql-connector-python's C extension) then read it as the
  answer to its next command and dropped the connection (2013).

Kept apart from ``_server`` so the deviations from mysql-mimic are listed in one
place (and can go once mysql-mimic sends the same bytes).
"""

from __future__ import annotations

from collections.abc import Iterator

import mysql_mimic.packets
from mysql_mimic.connection import Connection
from mysql_mimic.prepared import PreparedStatement

__all__ = ["MysqlConformance"]


class MysqlConformance(Connection):
    """mysql-mimic's connection with MySQL's bytes for the end of a result set and a prepare's answer."""

    def ok_or_eof(self, affected_rows: int = 0, last_insert_id: int = 0, warnings: int = 0, flags: int = 0) -> bytes:
        """The packet that ends rows (or a cursor's batch): its counts are always 0, as MySQL sends them.

        Statements that change something answer with ``ok()``, never with this packet, so
        nothing is lost: the rows' count is what the client has just read.
        """
        return super().ok_or_eof(warnings=warnings, flags=flags)

    def com_stmt_prepare_response(self, statement: PreparedStatement) -> Iterator[bytes]:
        """COM_STMT_PREPARE_OK, one definition per ``?``, then EOF unless the client deprecated EOF."""
        packets = mysql_mimic.packets
        yield packets.make_com_stmt_prepare_ok(statement)
        if statement.num_params:
            for _ in range(statement.num_params):
                yield packets.make_column_definition_41(server_charset=self.server_charset, name="?")
            if not self.deprecate_eof():
                yield self.eof()
