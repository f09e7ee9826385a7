"""pipes_settings, users_data and revoked_tokens (cometql-wire.md §2.4, §2.8, §2.9).

pipes_settings upserts a history length clamped to 0..1000 with OK(1, 0);
users_data upserts opaque text with OK(1, id); revoked_tokens stores tokens
with OK(1, 1), lists them all without a WHERE, and revoking a valid JWT of the
dev deletes that user's users_auth hash and closes their sessions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest
from pymysql.cursors import Cursor

from ..servers import ServerProcess
from ._cases import (
    BAD_COLUMN,
    CHANNEL_CHARS,
    CHANNEL_LONG,
    CHANNEL_SHORT,
    NEGATIVE_ID,
    NO_KEY,
    NO_KEY_DELETE,
    PASSWORD,
    KeyedTableTests,
    Local,
    TableSpec,
    connection_as,
    err,
    error_cases_test,
    expect_ok,
    other_dev,
    required,
    rows,
)

# CppComet's JWT secret is the password + dev_id: short HMAC keys are part of the contract.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


class TestPipesSettingsForms(KeyedTableTests):
    spec = TableSpec(
        name="pipes_settings",
        columns=("name", "length"),
        key="name",
        rows=tuple({"name": f"'set_{k}'", "length": str(n)} for k, n in zip("abc", (5, 6, 7), strict=True)),
        shown=("name", "length"),
        expected=tuple((f"set_{k}", str(n)) for k, n in zip("abc", (5, 6, 7), strict=True)),
        oks=((1, 0),) * 3,
        positional=("('set_d', 8)", ("set_d", "8")),
    )


class TestUsersDataForms(KeyedTableTests):
    spec = TableSpec(
        name="users_data",
        columns=("id", "data"),
        key="id",
        rows=tuple({"id": str(u), "data": f"'d{u}'"} for u in (31, 32, 33)),
        shown=("id", "data"),
        expected=tuple((str(u), f"d{u}") for u in (31, 32, 33)),
        oks=tuple((1, u) for u in (31, 32, 33)),
        positional=("(34, 'd34')", ("34", "d34")),
    )


class TestRevokedTokensForms(KeyedTableTests):
    spec = TableSpec(
        name="revoked_tokens",
        columns=("token",),
        key="token",
        rows=tuple({"token": f"'tok_{k}'"} for k in "abc"),
        shown=("token",),
        expected=tuple((f"tok_{k}",) for k in "abc"),
        oks=((1, 1),) * 3,
        positional=("('tok_d')", ("tok_d",)),
        scan=True,
        delete_no_key=NO_KEY_DELETE,
    )


ERRORS = [
    err("INSERT INTO pipes_settings (length) VALUES (10)", required("name"), "settings-name-required"),
    err("INSERT INTO pipes_settings (name, LENGTH) VALUES ('p10', 10)", BAD_COLUMN, "settings-LENGTH-column"),
    err("INSERT INTO pipes_settings (name, length) VALUES ('ab', 3)", CHANNEL_SHORT, "settings-name-short"),
    err(f"INSERT INTO pipes_settings (name, length) VALUES ('{'p' * 65}', 3)", CHANNEL_LONG, "settings-name-long"),
    err("INSERT INTO pipes_settings (name, length) VALUES ('p 10', 3)", CHANNEL_CHARS, "settings-name-chars"),
    err("SELECT * FROM pipes_settings", NO_KEY, "settings-select-no-key"),
    err("DELETE FROM pipes_settings WHERE length = 3", NO_KEY, "settings-delete-no-key"),
    err("INSERT INTO users_data (data) VALUES ('x')", required("id"), "data-id-required"),
    err("INSERT INTO users_data (id) VALUES (4)", required("data"), "data-data-required"),
    err("INSERT INTO users_data (id, data) VALUES (0, 'x')", NEGATIVE_ID, "data-id-zero"),
    err("INSERT INTO users_data (id, data) VALUES (-4, 'x')", NEGATIVE_ID, "data-id-negative"),
    err("SELECT * FROM users_data", NO_KEY, "data-select-no-key"),
    err("DELETE FROM users_data", NO_KEY, "data-delete-no-key"),
    err("INSERT INTO revoked_tokens (token) VALUES (NULL)", required("token"), "token-null"),
    err("INSERT INTO revoked_tokens (x) VALUES ('t')", BAD_COLUMN, "token-unknown-column"),
    err("DELETE FROM revoked_tokens", NO_KEY_DELETE, "token-delete-no-where"),
    err("DELETE FROM revoked_tokens WHERE token LIKE 'a%'", NO_KEY_DELETE, "token-delete-like"),
]


test_error = error_cases_test(ERRORS)


# ----------------------------------------------------------- pipes_settings


@pytest.mark.parametrize("value, stored", [("", "0"), ("5000", "1000"), ("1000", "1000"), ("-3", "0"), ("99", "99")],
                         ids=["default-0", "clamped-high", "max", "clamped-low", "plain"])
def test_settings_length_is_clamped(db: Cursor, value: str, stored: str) -> None:
    sql = ("INSERT INTO pipes_settings (name) VALUES ('chan')" if value == ""
           else f"INSERT INTO pipes_settings (name, length) VALUES ('chan', {value})")
    assert expect_ok(db, sql) == (1, 0)
    assert rows(db, "SELECT * FROM pipes_settings WHERE name = 'chan'") == [("chan", stored)]


def test_settings_upsert_and_unset_channels(db: Cursor) -> None:
    expect_ok(db, "INSERT INTO pipes_settings (name, length) VALUES ('p10', 10)")
    expect_ok(db, "INSERT INTO pipes_settings (name, length) VALUES ('p10', 20)")
    assert rows(db, "SELECT * FROM pipes_settings WHERE name IN ('p10', 'never_set', 'ab')") == [("p10", "20")]


# ---------------------------------------------------------------- users_data


@pytest.mark.parametrize("data", ['{"nick":"x","age":3}', "ключ ✓", "it's", ""],
                         ids=["json", "unicode", "quote", "empty"])
def test_user_data_is_stored_verbatim(db: Cursor, data: str) -> None:
    literal = "'" + data.replace("'", "''") + "'"
    assert expect_ok(db, f"INSERT INTO users_data (id, data) VALUES (9, {literal})") == (1, 9)
    assert rows(db, "SELECT data FROM users_data WHERE id = 9") == [(data,)]


def test_user_data_upserts(db: Cursor) -> None:
    expect_ok(db, "INSERT INTO users_data (id, data) VALUES (9, 'a')")
    expect_ok(db, "INSERT INTO users_data (id, data) VALUES (9, 'b')")
    assert rows(db, "SELECT * FROM users_data WHERE id IN (9, 0, -9)") == [("9", "b")]


# ------------------------------------------------------------ revoked_tokens


def test_select_without_where_lists_every_token_of_the_dev(server: ServerProcess, db: Cursor, dev: int) -> None:
    for t in ("t1", "t2", "t2"):
        assert expect_ok(db, f"INSERT INTO revoked_tokens (token) VALUES ('{t}')") == (1, 1)
    assert rows(db, "SELECT * FROM revoked_tokens") == [("t1",), ("t2",)]
    with connection_as(server, other_dev(dev)) as other:
        assert rows(other, "SELECT * FROM revoked_tokens") == []


def make_jwt(dev: int, user_id: int, *, exp_in: int = 3600, secret: str | None = None) -> str:
    secret = f"{PASSWORD}{dev}" if secret is None else secret
    return jwt.encode({"user_id": user_id, "exp": int(time.time()) + exp_in}, secret, algorithm="HS256")


@pytest.mark.parametrize("token_for, hash_kept", [
    (lambda dev: make_jwt(dev, 5), False),
    (lambda dev: make_jwt(dev, 6), True),
    (lambda dev: make_jwt(dev + 1, 5), True),
    (lambda dev: make_jwt(dev, 5, exp_in=-60), True),
    (lambda dev: "not-a-jwt", True),
], ids=["valid-jwt-of-user", "jwt-of-other-user", "jwt-of-other-dev", "expired-jwt", "plain-string"])
def test_revoking_a_valid_jwt_deletes_the_users_hash(
    db: Cursor, dev: int, token_for: Callable[[int], str], hash_kept: bool
) -> None:
    expect_ok(db, "INSERT INTO users_auth (id, hash) VALUES (5, 'h5')")
    token = token_for(dev)
    assert expect_ok(db, f"INSERT INTO revoked_tokens (token) VALUES ('{token}')") == (1, 1)
    assert rows(db, "SELECT * FROM users_auth WHERE id = 5") == ([("5", "h5")] if hash_kept else [])
    assert rows(db, f"SELECT * FROM revoked_tokens WHERE token = '{token}'") == [(token,)]


def test_revoking_a_jwt_closes_the_users_sessions() -> None:
    local = Local()
    tab, other = local.join([], user_id=5), local.join([], user_id=6)
    token = make_jwt(local.dev, 5)
    local.now = int(time.time())
    local.run(f"INSERT INTO revoked_tokens (token) VALUES ('{token}')")
    assert tab.closed is not None and other.closed is None
    assert local.hub.authorize(local.dev, 5, token, local.now) == (False, [])
