"""The kept parse of passthrough statements (``cometql.sql._parse``): the answer is the fresh parse's.

Drivers send the same session statements on every connect (``SET NAMES``, ``SET AUTOCOMMIT``,
``SELECT @@version_comment``...); ``parse_piece`` keeps their trees and hands out copies. These
pin down that a kept statement is equal to what sqlglot parses from the text, that no two callers
share a tree (mysql-mimic's middlewares rewrite the tree they get), and what is never kept.
"""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import expressions as exp

from cometql.sql import Passthrough, parse_piece
from cometql.sql import _parse as parse_module
from cometql.sql._scan import Limits, Piece, split

LIMITS = Limits()

#: What PyMySQL, mysqlclient, the mysql CLI, PHP's mysqli/PDO and Node's mysql send around a login.
SESSION_STATEMENTS = [
    "SET NAMES utf8mb4",
    "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
    "SET NAMES 'utf8'",
    "SET AUTOCOMMIT = 0",
    "SET autocommit=1",
    "SET SESSION sql_mode = 'TRADITIONAL'",
    "SET @@session.time_zone = '+00:00'",
    "SET character_set_results = NULL",
    "SELECT 1",
    "select @@version_comment limit 1",
    "SELECT @@max_allowed_packet, @@session.autocommit",
    "SELECT DATABASE()",
    "SELECT CONNECTION_ID()",
    "SELECT /*+ SET_VAR(sql_mode='') */ @@sql_mode",
    "SHOW VARIABLES LIKE 'sql_mode'",
    "USE CometQL_v1",
]


def piece_of(sql: str) -> Piece:
    pieces: list[Piece] = []
    for _ in split(sql, LIMITS, pieces):
        pass
    assert len(pieces) == 1
    return pieces[0]


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    parse_module._passthrough_cache.clear()


@pytest.mark.parametrize("sql", SESSION_STATEMENTS)
def test_kept_statement_equals_a_fresh_parse(sql: str) -> None:
    fresh = sqlglot.parse_one(piece_of(sql).sql, read="mysql")
    first = parse_piece(piece_of(sql), LIMITS)
    assert piece_of(sql).sql in parse_module._passthrough_cache
    second = parse_piece(piece_of(sql), LIMITS)
    assert isinstance(first, Passthrough) and isinstance(second, Passthrough)
    assert first.expression == fresh and second.expression == fresh
    assert second.expression.sql(dialect="mysql") == fresh.sql(dialect="mysql")


@pytest.mark.parametrize("sql", SESSION_STATEMENTS)
def test_every_caller_gets_its_own_tree(sql: str) -> None:
    first = parse_piece(piece_of(sql), LIMITS)
    assert isinstance(first, Passthrough)
    first.expression.set("expressions", [exp.Literal.string("changed")])  # as a middleware may do
    second = parse_piece(piece_of(sql), LIMITS)
    third = parse_piece(piece_of(sql), LIMITS)
    assert isinstance(second, Passthrough) and isinstance(third, Passthrough)
    assert second.expression == sqlglot.parse_one(piece_of(sql).sql, read="mysql")
    assert second.expression is not third.expression


@pytest.mark.parametrize("sql", [
    "SELECT * FROM users_auth WHERE id = 1",  # about CometQL's tables: not a passthrough
    "INSERT INTO pipes_messages (name, event, message) VALUES ('pipe_one', 'e', 'hi')",
    "SELECT 1 IN (" + ", ".join(str(i) for i in range(300)) + ")",  # a lifted list; over PASSTHROUGH_CACHE_TEXT
    "SELECT '" + "x" * 300 + "'",  # over PASSTHROUGH_CACHE_TEXT
])
def test_not_kept(sql: str) -> None:
    parse_piece(piece_of(sql), LIMITS)
    assert not parse_module._passthrough_cache


def test_cache_is_bounded() -> None:
    for i in range(parse_module.PASSTHROUGH_CACHE_SIZE + 10):
        parse_piece(piece_of(f"SELECT {i}"), LIMITS)
    assert len(parse_module._passthrough_cache) == parse_module.PASSTHROUGH_CACHE_SIZE
    assert "SELECT 0" not in parse_module._passthrough_cache  # the least recently used left first
