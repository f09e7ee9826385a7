"""The statistics tables pipes, users_in_pipes, users_time (cometql-wire.md §2.2, §2.3, §2.6).

They are read-only (ERR 10 on INSERT/DELETE). Over the wire no browser is
online, so only the empty answers are checked there; the live numbers need
browser sessions, which are ListSubscribers on an in-process hub.
"""

from __future__ import annotations

import pytest
from pymysql.cursors import Cursor

from ._cases import (
    BAD_COLUMN,
    DUP_SELECT,
    NO_TABLE,
    Local,
    columns,
    err,
    error_cases_test,
    read_only,
    rows,
)

ERRORS = [
    err("INSERT INTO pipes (name, users) VALUES ('abc', 1)", read_only("pipes"), "pipes-insert"),
    err("INSERT INTO pipes VALUES ('abc', 1)", read_only("pipes"), "pipes-positional-insert"),
    err("DELETE FROM pipes WHERE name = 'abc'", read_only("pipes"), "pipes-delete"),
    err("INSERT INTO users_in_pipes (name) VALUES ('abc')", read_only("users_in_pipes"), "users_in_pipes-insert"),
    err("DELETE FROM users_in_pipes WHERE name = 'abc'", read_only("users_in_pipes"), "users_in_pipes-delete"),
    err("INSERT INTO users_time (id, time) VALUES (1, 1)", read_only("users_time"), "users_time-insert"),
    err("DELETE FROM users_time WHERE id = 1", read_only("users_time"), "users_time-delete"),
    err("SELECT nosuch FROM pipes WHERE name = 'web_admins'", BAD_COLUMN, "pipes-unknown-column"),
    err("SELECT Users FROM pipes WHERE name = 'web_admins'", BAD_COLUMN, "pipes-wrong-case-column"),
    err("SELECT * FROM pipes WHERE Name = 'web_admins'", BAD_COLUMN, "pipes-wrong-case-where"),
    err("SELECT users, users FROM pipes WHERE name = 'abc'", DUP_SELECT, "pipes-duplicate-column"),
    err("SELECT ip FROM users_in_pipes WHERE name = 'abc' ORDER BY nosuch", BAD_COLUMN, "uip-unknown-order-column"),
    err("SELECT id, TIME FROM users_time WHERE id = 1", BAD_COLUMN, "users_time-wrong-case-column"),
    err("SELECT * FROM Pipes WHERE name = 'abc'", NO_TABLE, "pipes-wrong-case-table"),
    err("SELECT * FROM USERS_TIME WHERE id = 1", NO_TABLE, "users_time-upper-case-table"),
]


test_error = error_cases_test(ERRORS)


@pytest.mark.parametrize("sql, expected", [
    ("SELECT * FROM pipes WHERE name IN ('web_admins', 'web_php_chat')", [("web_admins", "0"), ("web_php_chat", "0")]),
    ("SELECT users FROM pipes WHERE name = 'web_admins'", [("0",)]),
    ("SELECT * FROM pipes WHERE name = 'ab'", []),
    ("SELECT * FROM pipes", []),
    ("SELECT * FROM users_in_pipes WHERE name = 'web_admins'", []),
    ("SELECT * FROM users_in_pipes", []),
    ("SELECT COUNT(*) FROM users_in_pipes WHERE name = 'web_admins'", [("0",)]),
    ("SELECT * FROM users_time WHERE id IN (2, 3, 145)", [("2", "-1"), ("3", "-1"), ("145", "-1")]),
    ("SELECT * FROM users_time WHERE id IN (-2, 0)", [("0", "-1")]),
    ("SELECT time, id FROM users_time WHERE id = 7", [("-1", "7")]),
    ("SELECT * FROM users_time WHERE id = 1 OR id = 2", [("1", "-1"), ("2", "-1")]),
    ("SELECT * FROM users_time WHERE id IN (1, 2, 3) LIMIT 2", [("1", "-1"), ("2", "-1")]),
    ("SELECT * FROM users_time WHERE id IN (1, 2, 3) LIMIT 1, 5", [("2", "-1"), ("3", "-1")]),
    ("SELECT * FROM users_time WHERE id IN (1, 3, 2) ORDER BY id DESC", [("3", "-1"), ("2", "-1"), ("1", "-1")]),
    ("SELECT COUNT(*) FROM users_time WHERE id IN (1, 2, 3)", [("3",)]),
    ("SELECT * FROM users_time", []),
    ("SELECT * FROM users_time WHERE time > 5", []),
    ("SELECT COUNT(*) FROM pipes WHERE users > 0", [("0",)]),
    ("SELECT name, COUNT(*) FROM users_in_pipes GROUP BY name", []),
], ids=[
    "pipes-in-list", "pipes-users-column", "pipes-invalid-name-skipped", "pipes-full-listing",
    "uip-named", "uip-full-listing", "uip-count", "users_time-unknown", "users_time-negative-skipped",
    "users_time-column-order", "users_time-or", "users_time-limit", "users_time-limit-offset",
    "users_time-order-by", "users_time-count", "users_time-full-listing", "users_time-filter-nothing-known",
    "pipes-count-filter-nothing-online", "uip-group-by-nothing-online",
])
def test_with_nobody_online(db: Cursor, sql: str, expected: list[tuple[str, ...]]) -> None:
    assert rows(db, sql) == expected


@pytest.mark.parametrize("table, declared", [
    ("pipes", ["name", "users"]),
    ("users_in_pipes", ["name", "user_id", "user_uuid", "user_agent", "ip", "origin", "language"]),
    ("users_time", ["id", "time"]),
])
def test_select_star_declared_columns(db: Cursor, table: str, declared: list[str]) -> None:
    key = "id = 1" if table == "users_time" else "name = 'abc'"
    assert columns(db, f"SELECT * FROM {table} WHERE {key}") == declared


# ------------------------------------------------------------ in-process


@pytest.fixture
def local() -> Local:
    """room_a has 3 sessions (users 1, 2 and an anonymous one), room_b has 1, room_c has 2."""
    local = Local()
    local.join(["room_a", "room_c"], user_id=1,
               uuid="u1", user_agent="UA1", ip="10.0.0.1", origin="http://x", language="en")
    local.join(["room_a"], user_id=2, uuid="u2", user_agent="UA2", ip="10.0.0.2", origin="http://y", language="ru")
    local.join(["room_a", "room_b", "room_c"],
               uuid="anon", user_agent="UA3", ip="10.0.0.3", origin="http://z", language="de")
    local.join(["room_a", "room_b", "room_c"], user_id=1, dev=2)  # another dev: never counted for dev 1
    return local


def test_pipes_ordered_by_users(local: Local) -> None:
    got = local.rows("SELECT name, users FROM pipes ORDER BY users DESC")
    assert got == [("room_a", 3), ("room_c", 2), ("room_b", 1)]


def test_pipes_explicit_names_include_empty_channels(local: Local) -> None:
    assert local.rows("SELECT * FROM pipes WHERE name IN ('room_a', 'nobody', 'ab')") == [("room_a", 3), ("nobody", 0)]


def test_pipes_full_listing_has_only_channels_someone_is_in(local: Local) -> None:
    assert sorted(local.rows("SELECT * FROM pipes")) == [("room_a", 3), ("room_b", 1), ("room_c", 2)]


def test_pipes_filters_and_aggregates(local: Local) -> None:
    assert local.rows("SELECT name FROM pipes WHERE users >= 2 ORDER BY name") == [("room_a",), ("room_c",)]
    assert local.rows("SELECT COUNT(*) FROM pipes WHERE users > 1") == [(2,)]
    assert local.rows("SELECT name FROM pipes ORDER BY users DESC LIMIT 1, 1") == [("room_c",)]


def test_left_channel_disappears_from_listing(local: Local) -> None:
    sub = local.join(["solo"])
    assert ("solo", 1) in local.rows("SELECT * FROM pipes")
    local.leave(sub)
    assert ("solo", 1) not in local.rows("SELECT * FROM pipes")
    assert local.rows("SELECT * FROM pipes WHERE name = 'solo'") == [("solo", 0)]


def test_users_in_pipes_count(local: Local) -> None:
    assert local.rows("SELECT COUNT(*) FROM users_in_pipes WHERE name = 'room_a'") == [(3,)]


def test_users_in_pipes_rows_in_declared_column_order(local: Local) -> None:
    result = local.run("SELECT * FROM users_in_pipes WHERE name = 'room_b'")
    assert result.columns == ("name", "user_id", "user_uuid", "user_agent", "ip", "origin", "language")
    assert result.rows == [("room_b", 0, "anon", "UA3", "10.0.0.3", "http://z", "de")]


def test_users_in_pipes_lists_anonymous_and_authorized(local: Local) -> None:
    got = local.rows("SELECT user_id, user_uuid FROM users_in_pipes WHERE name = 'room_a' ORDER BY user_uuid")
    assert got == [(0, "anon"), (1, "u1"), (2, "u2")]


def test_users_in_pipes_skips_invalid_names(local: Local) -> None:
    got = local.rows("SELECT name, user_id FROM users_in_pipes WHERE name IN ('ab', 'room_b', 'bad name', '')")
    assert got == [("room_b", 0)]


def test_users_in_pipes_nobody_in_channel(local: Local) -> None:
    assert local.rows("SELECT * FROM users_in_pipes WHERE name = 'nobody'") == []


def test_users_in_pipes_group_by(local: Local) -> None:
    got = local.rows("SELECT name, COUNT(*) FROM users_in_pipes GROUP BY name ORDER BY name")
    assert got == [("room_a", 3), ("room_b", 1), ("room_c", 2)]


def test_users_in_pipes_filter_by_user(local: Local) -> None:
    assert local.rows("SELECT name FROM users_in_pipes WHERE user_id = 1 ORDER BY name") == [("room_a",), ("room_c",)]


def test_private_channel_skipped_for_anonymous() -> None:
    local = Local()
    local.join(["private_room", "open_room"])
    local.join(["private_room"], user_id=4)
    assert local.rows("SELECT * FROM pipes WHERE name IN ('private_room', 'open_room')") == [
        ("private_room", 1), ("open_room", 1),
    ]


def test_users_time_online_offline_unknown() -> None:
    local = Local()
    tab1, tab2 = local.join([], user_id=3), local.join([], user_id=3)
    local.join([])  # anonymous sessions have no users_time
    assert local.rows("SELECT * FROM users_time WHERE id IN (3, 99996)") == [(3, 0), (99996, -1)]
    local.now += 10
    local.leave(tab1)
    assert local.rows("SELECT time FROM users_time WHERE id = 3") == [(0,)]  # a tab is still open
    local.now += 10
    local.leave(tab2)
    assert local.rows("SELECT time FROM users_time WHERE id = 3") == [(local.now,)]
    local.now += 10
    local.join([], user_id=3)
    assert local.rows("SELECT time FROM users_time WHERE id = 3") == [(0,)]


def test_users_time_full_listing_and_filter() -> None:
    local = Local()
    gone = local.join([], user_id=5)
    local.leave(gone)
    local.join([], user_id=6)
    local.join([], user_id=7, dev=2)
    assert local.rows("SELECT * FROM users_time") == [(5, local.now), (6, 0)]
    assert local.rows("SELECT id FROM users_time WHERE time = 0") == [(6,)]
    assert local.rows("SELECT COUNT(*) FROM users_time WHERE time > 0") == [(1,)]


@pytest.mark.parametrize("sql, expected", [
    ("SELECT * FROM pipes WHERE name = 'room_a' OR name = 'room_b'", [("room_a", 3), ("room_b", 1)]),
    ("SELECT users, name FROM pipes WHERE name IN ('room_c', 'room_b')", [(2, "room_c"), (1, "room_b")]),
    ("SELECT name FROM pipes WHERE name IN ('room_a', 'room_b', 'room_c') ORDER BY name LIMIT 1, 2",
     [("room_b",), ("room_c",)]),
    ("SELECT COUNT(*) FROM pipes WHERE name IN ('room_a', 'room_b', 'nobody')", [(3,)]),
    ("SELECT ip, user_id FROM users_in_pipes WHERE name = 'room_c' OR name = 'room_b' ORDER BY ip",
     [("10.0.0.1", 1), ("10.0.0.3", 0), ("10.0.0.3", 0)]),
    ("SELECT name, language FROM users_in_pipes WHERE name IN ('room_b', 'room_b')", [("room_b", "de")]),
], ids=["pipes-or", "pipes-reordered-in", "pipes-limit-offset", "pipes-count-names", "uip-or-order",
        "uip-duplicate-keys"])
def test_statement_forms_on_live_tables(local: Local, sql: str, expected: list[tuple[object, ...]]) -> None:
    assert local.rows(sql) == expected
