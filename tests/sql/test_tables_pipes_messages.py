"""pipes_messages over the wire (cometql-wire.md §2.1): publish, history, errors.

History is kept only for ``trust_*`` channels or channels with a pipes_settings
length, newest N by insertion order, and each row carries a 36-char uuid id, the
unix time, a running index and the event ('' stored as 'undefined').
"""

from __future__ import annotations

import time
import uuid

import pytest
from pymysql.cursors import Cursor

from ._cases import (
    BAD_COLUMN,
    CHANNEL_CHARS,
    CHANNEL_LONG,
    CHANNEL_SHORT,
    COLUMNS_LIST,
    EVENT_LONG,
    NO_KEY,
    KeyedTableTests,
    TableSpec,
    columns,
    err,
    error_cases_test,
    expect_ok,
    required,
    rows,
)

COLUMNS = ("id", "time", "name", "index", "event", "message", "user_id")


class TestPipesMessagesForms(KeyedTableTests):
    spec = TableSpec(
        name="pipes_messages",
        columns=COLUMNS,
        key="name",
        rows=tuple({"name": f"'trust_{k}'", "event": "'ev'", "message": f"'m_{k}'"} for k in "abc"),
        shown=("name", "message"),
        expected=tuple((f"trust_{k}", f"m_{k}") for k in "abc"),
        oks=((0, 0),) * 3,
        positional=("('ignored', 5, 'trust_d', 9, 'ev', 'm_d', 7)", ("trust_d", "m_d")),
    )


def publish(db: Cursor, channel: str, message: str, event: str = "ev") -> tuple[int, int]:
    sql = f"INSERT INTO pipes_messages (name, event, message) VALUES ('{channel}', '{event}', '{message}')"
    return expect_ok(db, sql)


def messages(db: Cursor, *channels: str) -> list[str]:
    names = ", ".join(f"'{c}'" for c in channels)
    return [r[0] for r in rows(db, f"SELECT message FROM pipes_messages WHERE name IN ({names})")]


ERRORS = [
    err("INSERT INTO pipes_messages (event, message) VALUES ('e', 'm')", required("name"), "name-required"),
    err("INSERT INTO pipes_messages (name, message) VALUES ('p10', 'm')", required("event"), "event-required"),
    err("INSERT INTO pipes_messages (name, event) VALUES ('p10', 'e')", required("message"), "message-required"),
    err("INSERT INTO pipes_messages (name, event) VALUES ('ab', 'e')", required("message"),
        "required-checked-before-values"),
    err(f"INSERT INTO pipes_messages (name, event, message) VALUES ('{'a' * 65}', 'e', 'm')", CHANNEL_LONG,
        "name-65-chars"),
    err("INSERT INTO pipes_messages (name, event, message) VALUES ('ab', 'e', 'm')", CHANNEL_SHORT, "name-2-chars"),
    err("INSERT INTO pipes_messages (name, event, message) VALUES ('', 'e', 'm')", CHANNEL_SHORT, "name-empty"),
    err("INSERT INTO pipes_messages (name, event, message) VALUES ('bad name!', 'e', 'm')", CHANNEL_CHARS,
        "name-bad-chars"),
    err("INSERT INTO pipes_messages (name, event, message) VALUES ('p.10', 'e', 'm')", CHANNEL_CHARS, "name-dot"),
    err("INSERT INTO pipes_messages (name, event, message) VALUES ('ab', 'bad ev', 'm')", CHANNEL_SHORT,
        "name-checked-before-event"),
    err(f"INSERT INTO pipes_messages (name, event, message) VALUES ('p10', '{'e' * 65}', 'm')", EVENT_LONG,
        "event-65-chars"),
    err("INSERT INTO pipes_messages (name, event, message) VALUES ('p10', 'bad ev', 'm')", CHANNEL_CHARS,
        "event-bad-chars"),
    err("INSERT INTO pipes_messages (name, evnt, message) VALUES ('p10', 'e', 'm')", BAD_COLUMN, "unknown-column"),
    err("INSERT INTO pipes_messages (name, event, message) VALUES ('p10', 'e')", COLUMNS_LIST, "count-mismatch"),
    err("INSERT INTO pipes_messages VALUES ('p10', 'e', 'm')", COLUMNS_LIST, "positional-needs-all-columns"),
    err("SELECT * FROM pipes_messages", NO_KEY, "select-no-where"),
    err("SELECT * FROM pipes_messages WHERE event = 'e'", NO_KEY, "select-no-key"),
    err("DELETE FROM pipes_messages WHERE event = 'e'", NO_KEY, "delete-no-key"),
]


test_error = error_cases_test(ERRORS)


@pytest.mark.parametrize("event", ["", "e", "a-b_C9", "x" * 64], ids=["empty", "short", "all-chars", "64-chars"])
def test_valid_events_publish(db: Cursor, event: str) -> None:
    assert publish(db, "trust_ev", "m", event) == (0, 0)
    assert messages(db, "trust_ev") == ["m"]


def test_64_char_channel_name_is_valid(db: Cursor) -> None:
    name = "trust_" + "n" * 58
    assert publish(db, name, "m") == (0, 0)
    assert messages(db, name) == ["m"]


def test_extra_columns_in_the_list_are_ignored(db: Cursor) -> None:
    sql = "INSERT INTO pipes_messages (name, event, message, user_id, `index`) VALUES ('trust_x', 'e', 'm', 55, 3)"
    assert expect_ok(db, sql) == (0, 0)
    assert rows(db, "SELECT `index`, message, user_id FROM pipes_messages WHERE name = 'trust_x'") == [("0", "m", "0")]


# ------------------------------------------------------------------ history


def test_no_history_without_settings(db: Cursor) -> None:
    publish(db, "plain_chan", "m1")
    assert messages(db, "plain_chan") == []


def test_trust_channel_keeps_history_without_settings(db: Cursor) -> None:
    for m in ("m1", "m2", "m3"):
        publish(db, "trust_chan", m)
    assert messages(db, "trust_chan") == ["m1", "m2", "m3"]


@pytest.mark.parametrize("length, sent, kept", [
    (1, 3, ["m3"]),
    (2, 3, ["m2", "m3"]),
    (3, 3, ["m1", "m2", "m3"]),
    (5, 7, ["m3", "m4", "m5", "m6", "m7"]),
], ids=["keep-1", "keep-2", "keep-all", "keep-5-of-7"])
def test_settings_length_keeps_newest_by_insertion(db: Cursor, length: int, sent: int, kept: list[str]) -> None:
    expect_ok(db, f"INSERT INTO pipes_settings (name, length) VALUES ('hist', {length})")
    for i in range(1, sent + 1):
        publish(db, "hist", f"m{i}")  # all within the same second: order must still be insertion order
    assert messages(db, "hist") == kept


def test_shorter_length_trims_on_next_publish(db: Cursor) -> None:
    expect_ok(db, "INSERT INTO pipes_settings (name, length) VALUES ('hist', 5)")
    for m in ("m1", "m2", "m3", "m4"):
        publish(db, "hist", m)
    expect_ok(db, "INSERT INTO pipes_settings (name, length) VALUES ('hist', 2)")
    publish(db, "hist", "m5")
    assert messages(db, "hist") == ["m4", "m5"]


def test_settings_length_zero_keeps_nothing(db: Cursor) -> None:
    expect_ok(db, "INSERT INTO pipes_settings (name, length) VALUES ('hist', 0)")
    publish(db, "hist", "m1")
    assert messages(db, "hist") == []


def test_delete_pipes_settings_clears_history(db: Cursor) -> None:
    expect_ok(db, "INSERT INTO pipes_settings (name, length) VALUES ('hist', 10)")
    publish(db, "hist", "m1")
    assert expect_ok(db, "DELETE FROM pipes_settings WHERE name = 'hist'") == (0, 0)
    assert messages(db, "hist") == []
    publish(db, "hist", "m2")  # and the setting itself is gone
    assert messages(db, "hist") == []


def test_row_values(db: Cursor) -> None:
    before = int(time.time())
    publish(db, "trust_a", "first", event="")
    publish(db, "trust_b", "second", event="named")
    publish(db, "trust_a", "third")
    after = int(time.time())
    got = rows(db, "SELECT * FROM pipes_messages WHERE name IN ('trust_a', 'trust_b')")
    assert [(r[2], r[3], r[4], r[5], r[6]) for r in got] == [
        ("trust_a", "0", "undefined", "first", "0"),
        ("trust_a", "1", "ev", "third", "0"),
        ("trust_b", "2", "named", "second", "0"),
    ]
    ids = [r[0] for r in got]
    assert all(len(i) == 36 and str(uuid.UUID(i)) == i for i in ids)
    assert len(set(ids)) == 3
    assert all(before <= int(r[1]) <= after for r in got)


def test_positional_insert_ignores_given_id_time_index_user(db: Cursor) -> None:
    expect_ok(db, "INSERT INTO pipes_messages VALUES ('my-id', 5, 'trust_p', 9, 'ev', 'msg', 7)")
    [row] = rows(db, "SELECT * FROM pipes_messages WHERE name = 'trust_p'")
    mid, sent, name, index, event, message, user_id = row
    assert (name, index, event, message, user_id) == ("trust_p", "0", "ev", "msg", "0")
    assert mid != "my-id" and len(mid) == 36
    assert int(sent) > 5


def test_invalid_names_in_where_are_skipped(db: Cursor) -> None:
    publish(db, "trust_a", "m")
    assert messages(db, "ab", "bad name", "trust_a", "x" * 65) == ["m"]


def test_channel_without_history_gives_no_rows(db: Cursor) -> None:
    assert rows(db, "SELECT * FROM pipes_messages WHERE name = 'trust_never'") == []


@pytest.mark.parametrize("literal, stored", [
    ("'it''s'", "it's"),
    ("'it\\'s'", "it's"),
    ('"say ""hi"""', 'say "hi"'),
    ("'line1\\nline2'", "line1\nline2"),
    ("'back\\\\slash'", "back\\slash"),
    ("'{\"text\":\"x\"}'", '{"text":"x"}'),
    ("'юникод ✓'", "юникод ✓"),
], ids=["doubled-quote", "backslash-quote", "double-quoted", "newline-escape", "backslash", "json", "unicode"])
def test_message_literals_are_decoded(db: Cursor, literal: str, stored: str) -> None:
    expect_ok(db, f"INSERT INTO pipes_messages (name, event, message) VALUES ('trust_lit', 'e', {literal})")
    assert messages(db, "trust_lit") == [stored]


# ------------------------------------------------------------ delete by id


def ids_of(db: Cursor, channel: str) -> list[str]:
    return [r[0] for r in rows(db, f"SELECT id FROM pipes_messages WHERE name = '{channel}'")]


def test_delete_one_message_by_id(db: Cursor) -> None:
    for m in ("m1", "m2", "m3"):
        publish(db, "trust_del", m)
    first, second, third = ids_of(db, "trust_del")
    assert expect_ok(db, f"DELETE FROM pipes_messages WHERE id = '{second}'") == (0, 0)
    assert messages(db, "trust_del") == ["m1", "m3"]
    assert ids_of(db, "trust_del") == [first, third]


def test_delete_messages_by_id_list(db: Cursor) -> None:
    for m in ("m1", "m2", "m3"):
        publish(db, "trust_del", m)
    first, _, third = ids_of(db, "trust_del")
    assert expect_ok(db, f"DELETE FROM pipes_messages WHERE id IN ('{first}', '{third}')") == (0, 0)
    assert messages(db, "trust_del") == ["m2"]


def test_delete_unknown_id_is_ok(db: Cursor) -> None:
    publish(db, "trust_del", "m1")
    assert expect_ok(db, "DELETE FROM pipes_messages WHERE id = 'no-such-id'") == (0, 0)
    assert messages(db, "trust_del") == ["m1"]


def test_delete_by_name_clears_only_that_channel(db: Cursor) -> None:
    publish(db, "trust_a", "a")
    publish(db, "trust_b", "b")
    expect_ok(db, "DELETE FROM pipes_messages WHERE name = 'trust_a'")
    assert messages(db, "trust_a", "trust_b") == ["b"]


def test_offset_is_a_column_only_when_named(db: Cursor) -> None:
    """Channel recovery's offsets (issue 13): ``SELECT offset`` reads them; ``SELECT *`` stays CppComet's."""
    channel = f"trust_off_{uuid.uuid4().hex[:8]}"
    for i in range(4):
        publish(db, channel, f"m{i}")
    assert rows(db, f"SELECT offset, message FROM pipes_messages WHERE name = '{channel}'") == [
        (str(i + 1), f"m{i}") for i in range(4)]  # values travel as text, as every column
    assert columns(db, f"SELECT * FROM pipes_messages WHERE name = '{channel}'") == list(COLUMNS)
    assert columns(db, f"SELECT *, offset FROM pipes_messages WHERE name = '{channel}'") == [*COLUMNS, "offset"]
    newest = rows(db, f"SELECT message, offset FROM pipes_messages WHERE name = '{channel}' AND offset > 2"
                      " ORDER BY offset DESC")
    assert [r[0] for r in newest] == ["m3", "m2"]
    assert columns(db, f"SELECT * FROM pipes_messages WHERE name = '{channel}' ORDER BY time") == list(COLUMNS)
    expect_ok(db, f"DELETE FROM pipes_messages WHERE name = '{channel}'")
    publish(db, channel, "after")  # a new epoch starts counting again
    assert rows(db, f"SELECT offset FROM pipes_messages WHERE name = '{channel}'") == [("1",)]
