"""users_messages (cometql-wire.md §2.5, README improvements): send to a user id.

No browser is online over the wire, so every INSERT queues; SELECT returns every
queued message (not just ten) oldest first with the message uuid in ``index``;
DELETE drops the whole queue. Live delivery is checked in-process.
"""

from __future__ import annotations

import json
import uuid

from pymysql.cursors import Cursor

from ._cases import (
    BAD_COLUMN,
    CHANNEL_CHARS,
    COLUMNS_LIST,
    EVENT_LONG,
    NEGATIVE_ID,
    NO_KEY,
    KeyedTableTests,
    Local,
    TableSpec,
    err,
    error_cases_test,
    expect_error,
    expect_ok,
    required,
    rows,
)


class TestUsersMessagesForms(KeyedTableTests):
    spec = TableSpec(
        name="users_messages",
        columns=("id", "index", "event", "message"),
        key="id",
        rows=tuple({"id": str(u), "event": "'ev'", "message": f"'m{u}'"} for u in (11, 12, 13)),
        shown=("id", "message"),
        expected=tuple((str(u), f"m{u}") for u in (11, 12, 13)),
        oks=tuple((0, u) for u in (11, 12, 13)),
        positional=("(14, 'ignored', 'ev', 'm14')", ("14", "m14")),
    )


ERRORS = [
    err("INSERT INTO users_messages (event, message) VALUES ('e', 'm')", required("id"), "id-required"),
    err("INSERT INTO users_messages (id, message) VALUES (2, 'm')", required("event"), "event-required"),
    err("INSERT INTO users_messages (id, event) VALUES (2, 'e')", required("message"), "message-required"),
    err("INSERT INTO users_messages (id, event) VALUES (-2, 'e')", required("message"),
        "required-checked-before-values"),
    err("INSERT INTO users_messages (id, event, message) VALUES (-5, 'e', 'm')", NEGATIVE_ID, "negative-id"),
    err("INSERT INTO users_messages (id, event, message) VALUES ('-5', 'e', 'm')", NEGATIVE_ID, "negative-id-string"),
    err(f"INSERT INTO users_messages (id, event, message) VALUES (2, '{'e' * 65}', 'm')", EVENT_LONG, "event-too-long"),
    err("INSERT INTO users_messages (id, event, message) VALUES (2, 'e e', 'm')", CHANNEL_CHARS, "event-bad-chars"),
    err("INSERT INTO users_messages (id, evnt, message) VALUES (2, 'e', 'm')", BAD_COLUMN, "unknown-column"),
    err("INSERT INTO users_messages (id, event, message) VALUES (2, 'e')", COLUMNS_LIST, "count-mismatch"),
    err("INSERT INTO users_messages VALUES (2, 'e', 'm')", COLUMNS_LIST, "positional-needs-all-columns"),
    err("SELECT * FROM users_messages", NO_KEY, "select-no-where"),
    err("SELECT * FROM users_messages WHERE event = 'e'", NO_KEY, "select-no-key"),
]


test_error = error_cases_test(ERRORS)


def queued(db: Cursor, user: int) -> list[tuple[str, ...]]:
    return rows(db, f"SELECT * FROM users_messages WHERE id = {user}")


def test_id_zero_is_accepted(db: Cursor) -> None:
    assert expect_ok(db, "INSERT INTO users_messages (id, event, message) VALUES (0, 'e', 'to zero')") == (0, 0)
    assert [r[3] for r in queued(db, 0)] == ["to zero"]


def test_string_id_keeps_leading_digits(db: Cursor) -> None:
    assert expect_ok(db, "INSERT INTO users_messages (id, event, message) VALUES ('7abc', 'e', 'm')") == (0, 7)
    assert [r[3] for r in queued(db, 7)] == ["m"]


def test_index_column_is_the_message_uuid_unless_the_backend_gives_a_key(db: Cursor) -> None:
    for m in ("a", "b"):
        expect_ok(db, f"INSERT INTO users_messages (id, event, message) VALUES (5, 'ev', '{m}')")
    got = queued(db, 5)
    assert [(r[0], r[2], r[3]) for r in got] == [("5", "ev", "a"), ("5", "ev", "b")]
    indexes = [r[1] for r in got]
    assert all(str(uuid.UUID(i)) == i for i in indexes) and len(set(indexes)) == 2


def test_a_retried_insert_with_the_same_index_key_is_not_queued_twice(db: Cursor) -> None:
    """``index`` is an idempotency key (CppComet ignored the column): a retry after a lost OK is
    answered OK again and stores nothing; another key is another message."""
    for m in ("a", "a again", "b"):
        key = "order-2" if m == "b" else "order-1"
        assert expect_ok(db, f"INSERT INTO users_messages (id, `index`, event, message) "
                             f"VALUES (5, '{key}', 'ev', '{m}')") == (0, 5)
    assert [(r[1], r[3]) for r in queued(db, 5)] == [("order-1", "a"), ("order-2", "b")]


def test_an_index_key_with_other_characters_is_refused(db: Cursor) -> None:
    expect_error(db, "INSERT INTO users_messages (id, `index`, event, message) VALUES (5, 'a b', 'ev', 'm')",
                 (12, "The index field (idempotency key) can contain only 1-64 characters A-Za-z0-9_-"))
    assert queued(db, 5) == []


def test_every_queued_message_is_listed_oldest_first(db: Cursor) -> None:
    for i in range(25):  # more than CppComet's 10, all in the same second
        expect_ok(db, f"INSERT INTO users_messages (id, event, message) VALUES (3, 'e', 'm{i}')")
    assert [r[3] for r in queued(db, 3)] == [f"m{i}" for i in range(25)]


def test_delete_drops_the_whole_queue_even_this_second(db: Cursor) -> None:
    for i in range(3):
        expect_ok(db, f"INSERT INTO users_messages (id, event, message) VALUES (3, 'e', 'm{i}')")
    assert expect_ok(db, "DELETE FROM users_messages WHERE id = 3") == (0, 0)
    assert queued(db, 3) == []


def test_negative_ids_in_where_are_skipped(db: Cursor) -> None:
    expect_ok(db, "INSERT INTO users_messages (id, event, message) VALUES (2, 'e', 'm')")
    assert rows(db, "SELECT message FROM users_messages WHERE id IN (-2, 2)") == [("m",)]


def test_multi_row_insert_queues_each_row(db: Cursor) -> None:
    sql = "INSERT INTO users_messages (id, event, message) VALUES (4, 'e', 'x'), (4, 'e', 'y'), (6, 'e', 'z')"
    assert expect_ok(db, sql) == (0, 6)
    assert rows(db, "SELECT id, message FROM users_messages WHERE id IN (4, 6)") == [("4", "x"), ("4", "y"), ("6", "z")]


def test_multi_row_insert_with_a_bad_row_queues_nothing(db: Cursor) -> None:
    sql = "INSERT INTO users_messages (id, event, message) VALUES (4, 'e', 'x'), (-4, 'e', 'y')"
    expect_error(db, sql, NEGATIVE_ID)
    assert queued(db, 4) == []


# ------------------------------------------------------------ in-process


def test_online_user_gets_the_message_on_every_tab_and_nothing_is_queued() -> None:
    local = Local()
    tab1, tab2 = local.join([], user_id=8), local.join([], user_id=8)
    ok = local.ok("INSERT INTO users_messages (id, event, message) VALUES (8, 'hello', 'it''s me')")
    assert (ok.affected_rows, ok.insert_id) == (0, 8)
    for tab in (tab1, tab2):
        assert [json.loads(f) for f in tab.frames] == [{"data": "it's me", "event": "hello", "pipe": "msg"}]
    assert local.rows("SELECT * FROM users_messages WHERE id = 8") == []


def test_queue_is_delivered_and_emptied_when_the_user_connects() -> None:
    local = Local()
    for i in range(12):
        local.run(f"INSERT INTO users_messages (id, event, message) VALUES (9, 'e', 'q{i}')")
    tab = local.join([], user_id=9)
    frames = [json.loads(f) for f in tab.frames]
    assert [(f["data"], f["fromQueue"], f["pipe"]) for f in frames] == [(f"q{i}", True, "msg") for i in range(12)]
    assert local.rows("SELECT * FROM users_messages WHERE id = 9") == []
