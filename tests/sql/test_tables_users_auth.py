"""users_auth (cometql-wire.md §2.7): per-user login hashes.

Hashes are 0..32 characters of ``[0-9A-Za-z=+/_]`` (characters checked before
length), ids must be > 0, INSERT upserts with OK(1, id), DELETE also closes the
user's live browser sessions (checked in-process).
"""

from __future__ import annotations

import pytest
from pymysql.cursors import Cursor

from ._cases import (
    BAD_COLUMN,
    COLUMNS_LIST,
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

BAD_HASH = (12, "Contains an invalid characters in the string hash")
LONG_HASH = (11, "Hash string is too long")
EMPTY_HASH = (17, "The hash is empty: anyone could log in as this user with an empty key; DELETE FROM users_auth "
                  "to log the user out")


class TestUsersAuthForms(KeyedTableTests):
    spec = TableSpec(
        name="users_auth",
        columns=("id", "hash"),
        key="id",
        rows=tuple({"id": str(u), "hash": f"'h{u}'"} for u in (21, 22, 23)),
        shown=("id", "hash"),
        expected=tuple((str(u), f"h{u}") for u in (21, 22, 23)),
        oks=tuple((1, u) for u in (21, 22, 23)),
        positional=("(24, 'h24')", ("24", "h24")),
    )


ERRORS = [
    err("INSERT INTO users_auth (hash) VALUES ('x')", required("id"), "id-required"),
    err("INSERT INTO users_auth (id) VALUES (5)", required("hash"), "hash-required"),
    err("INSERT INTO users_auth (id) VALUES (0)", required("hash"), "required-checked-before-values"),
    err("INSERT INTO users_auth (id, hash) VALUES (0, 'abc')", NEGATIVE_ID, "id-zero"),
    err("INSERT INTO users_auth (id, hash) VALUES (-1, 'abc')", NEGATIVE_ID, "id-negative"),
    err("INSERT INTO users_auth (id, hash) VALUES (0, 'a-b')", NEGATIVE_ID, "id-checked-before-hash"),
    err("INSERT INTO users_auth (id, hash) VALUES (5, 'a-b')", BAD_HASH, "hash-dash"),
    err("INSERT INTO users_auth (id, hash) VALUES (5, 'a b')", BAD_HASH, "hash-space"),
    err("INSERT INTO users_auth (id, hash) VALUES (5, 'ключ')", BAD_HASH, "hash-unicode"),
    err(f"INSERT INTO users_auth (id, hash) VALUES (5, '{'a' * 33}')", LONG_HASH, "hash-33-chars"),
    err("INSERT INTO users_auth (id, hash) VALUES (5, '')", EMPTY_HASH, "hash-empty"),
    err(f"INSERT INTO users_auth (id, hash) VALUES (5, '{'a' * 40}-')", BAD_HASH, "chars-checked-before-length"),
    err("INSERT INTO users_auth (id, LENGTH) VALUES (5, 1)", BAD_COLUMN, "wrong-case-column"),
    err("INSERT INTO users_auth (id, hash) VALUES (5)", COLUMNS_LIST, "count-mismatch"),
    err("INSERT INTO users_auth VALUES (5)", COLUMNS_LIST, "positional-too-few"),
    err("SELECT * FROM users_auth", NO_KEY, "select-no-where"),
    err("SELECT * FROM users_auth WHERE hash = 'a'", NO_KEY, "select-no-key"),
    err("DELETE FROM users_auth WHERE hash = 'a'", NO_KEY, "delete-no-key"),
]


test_error = error_cases_test(ERRORS)


@pytest.mark.parametrize("hash_", ["a", "a" * 32, "AZaz09=+/_", "auth_hash1"],
                         ids=["one-char", "32-chars", "every-char-class", "doc-example"])
def test_valid_hashes(db: Cursor, hash_: str) -> None:
    assert expect_ok(db, f"INSERT INTO users_auth (id, hash) VALUES (1, '{hash_}')") == (1, 1)
    assert rows(db, "SELECT * FROM users_auth WHERE id = 1") == [("1", hash_)]


def test_doc_example_without_spaces_before_values(db: Cursor) -> None:
    assert expect_ok(db, "INSERT INTO users_auth (id, hash )VALUES (1, 'auth_hash1');") == (1, 1)


def test_insert_upserts(db: Cursor) -> None:
    expect_ok(db, "INSERT INTO users_auth (id, hash) VALUES (3, 'old')")
    assert expect_ok(db, "INSERT INTO users_auth (id, hash) VALUES (3, 'new')") == (1, 3)
    assert rows(db, "SELECT hash FROM users_auth WHERE id = 3") == [("new",)]


def test_unknown_and_non_positive_ids_give_no_row(db: Cursor) -> None:
    expect_ok(db, "INSERT INTO users_auth (id, hash) VALUES (3, 'h')")
    assert rows(db, "SELECT * FROM users_auth WHERE id IN (0, -3, 3, 99)") == [("3", "h")]


def test_multi_row_insert(db: Cursor) -> None:
    assert expect_ok(db, "INSERT INTO users_auth (id, hash) VALUES (7, 'a'), (8, 'b')") == (2, 8)
    assert rows(db, "SELECT * FROM users_auth WHERE id IN (7, 8)") == [("7", "a"), ("8", "b")]


def test_multi_row_insert_is_validated_before_any_row_is_applied(db: Cursor) -> None:
    expect_error(db, "INSERT INTO users_auth (id, hash) VALUES (9, 'a'), (10, 'b-')", BAD_HASH)
    assert rows(db, "SELECT * FROM users_auth WHERE id IN (9, 10)") == []


# ------------------------------------------------------------ in-process


def test_delete_closes_every_session_of_that_user_only() -> None:
    local = Local()
    local.run("INSERT INTO users_auth (id, hash) VALUES (3, 'h'), (4, 'h')")
    tabs = [local.join(["chat"], user_id=3) for _ in range(2)]
    other = local.join(["chat"], user_id=4)
    ok = local.ok("DELETE FROM users_auth WHERE id = 3")
    assert (ok.affected_rows, ok.insert_id) == (0, 0)
    assert [t.closed is not None for t in tabs] == [True, True]
    assert other.closed is None
    assert local.rows("SELECT * FROM users_auth WHERE id IN (3, 4)") == [(4, "h")]


def test_delete_closes_sessions_even_without_a_stored_hash() -> None:
    local = Local()
    tab = local.join([], user_id=5)  # e.g. logged in with a JWT
    local.run("DELETE FROM users_auth WHERE id = 5")
    assert tab.closed is not None
