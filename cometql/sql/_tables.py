"""CometQL's virtual tables: names, columns in declared order, keys, rules.

This literal table drives parsing, ``SHOW TABLES``, ``DESCRIBE``, the
information_schema answers and the docs, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATABASE", "LISTED_TABLES", "STATS_HISTORY", "TABLES", "Table"]

DATABASE = "CometQL_v1"
#: Online statistics over time (not in CppComet): typed columns, analytic SELECTs (``_history``).
STATS_HISTORY = "stats_history"


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: str
    #: SQL types shown by DESCRIBE (values always travel as text).
    types: tuple[str, ...]
    read_only: bool = False
    #: A SELECT without key values lists every row (statistics tables).
    scan: bool = False
    #: Extra columns a DELETE may use as its key (pipes_messages by message id).
    delete_keys: tuple[str, ...] = ()
    #: Columns holding integers (compared and sorted as numbers).
    int_columns: tuple[str, ...] = ()
    #: Values travel with their SQL types (the tables CometQL adds); CppComet's send text.
    typed: bool = False
    #: The primary key's columns, when more than ``key``.
    primary: tuple[str, ...] = ()
    #: Columns returned only when named (``SELECT *`` keeps CppComet's columns): pipes_messages' offset.
    hidden: tuple[str, ...] = ()

    @property
    def all_columns(self) -> tuple[str, ...]:
        """``columns`` then ``hidden``: the order of the rows a SELECT reads."""
        return self.columns + self.hidden

    def column_index(self, name: str) -> int:
        return self.all_columns.index(name)

    @property
    def primary_key(self) -> tuple[str, ...]:
        return self.primary or (self.key,)

    def create_sql(self) -> str:
        """``SHOW CREATE TABLE``'s text, from the columns and types DESCRIBE shows."""
        lines = [f"  `{c}` {t} NOT NULL" for c, t in zip(self.columns, self.types, strict=True)]
        lines.append("  PRIMARY KEY (" + ",".join(f"`{c}`" for c in self.primary_key) + ")")
        return f"CREATE TABLE `{self.name}` (\n" + ",\n".join(lines) + "\n) ENGINE=CometQL DEFAULT CHARSET=utf8mb4"


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("users_auth", ("id", "hash"), "id", ("int(11)", "varchar(32)"), int_columns=("id",)),
        Table("users_time", ("id", "time"), "id", ("int(11)", "int(11)"), read_only=True, scan=True,
              int_columns=("id", "time")),
        Table("users_messages", ("id", "index", "event", "message"), "id",
              ("int(11)", "varchar(36)", "varchar(64)", "text"), int_columns=("id",)),
        Table("pipes_messages", ("id", "time", "name", "index", "event", "message", "user_id"), "name",
              ("varchar(36)", "int(11)", "varchar(64)", "int(11)", "varchar(64)", "text", "int(11)"),
              delete_keys=("id",), int_columns=("time", "index", "user_id", "offset"), hidden=("offset",)),
        Table("users_in_pipes", ("name", "user_id", "user_uuid", "user_agent", "ip", "origin", "language"), "name",
              ("varchar(64)", "int(11)", "varchar(32)", "varchar(255)", "varchar(45)", "varchar(255)",
               "varchar(32)"), read_only=True, scan=True, int_columns=("user_id",)),
        Table("pipes", ("name", "users"), "name", ("varchar(64)", "int(11)"), read_only=True, scan=True,
              int_columns=("users",)),
        Table("pipes_settings", ("name", "length"), "name", ("varchar(64)", "int(11)"), int_columns=("length",)),
        Table("users_data", ("id", "data"), "id", ("int(11)", "text"), int_columns=("id",)),
        Table("revoked_tokens", ("token",), "token", ("varchar(600)",), scan=True),
        Table(STATS_HISTORY, ("time", "channel", "sessions", "users", "published", "delivered"), "time",
              ("datetime", "varchar(64)", "bigint(20)", "bigint(20)", "bigint(20)", "bigint(20)"), read_only=True,
              scan=True, int_columns=("sessions", "users", "published", "delivered"), typed=True,
              primary=("time", "channel")),
    )
}

#: SHOW TABLES lists these: CppComet's seven in its order (users_data and revoked_tokens are usable but
#: unlisted), then the tables CometQL adds.
LISTED_TABLES = ("users_auth", "users_time", "users_messages", "pipes_messages", "users_in_pipes", "pipes",
                 "pipes_settings", STATS_HISTORY)
