"""The lexical pass before sqlglot (``cometql.sql.split``): where it splits, what it refuses, what it lifts.

Every bound of ``Limits`` answers its own CometQL code at one past the bound
and passes at the bound; huge and deep inputs are refused without sqlglot
ever seeing them; lists lifted out of the text give exactly the statement
sqlglot would have built from the same text; long work yields pauses.
"""

from __future__ import annotations

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from cometql.errors import SQLError
from cometql.sql import Delete, Insert, Limits, Piece, Select, parse, split
from cometql.sql._parse import parse_expression

SMALL = Limits(statements=5, rows=20, values=20, depth=4, conditions=3, tokens=40)
DEFAULT = Limits()


def pieces(sql: str, limits: Limits = DEFAULT) -> list[Piece]:
    out: list[Piece] = []
    for _ in split(sql, limits, out):
        pass
    return out


def code_of(sql: str, limits: Limits = DEFAULT) -> int:
    with pytest.raises(SQLError) as caught:
        parse(sql, limits)
    return caught.value.errno


# ------------------------------------------------------------------ splitting


@pytest.mark.parametrize("sql, texts", [
    ("SELECT 1; SELECT 2", ["SELECT 1", " SELECT 2"]),
    ("SELECT ';' ; SELECT \"a;b\"", ["SELECT ';' ", " SELECT \"a;b\""]),
    ("SELECT 'it''s;' ; SELECT 'a\\';b'", ["SELECT 'it''s;' ", " SELECT 'a\\';b'"]),
    ("SELECT `a;b` FROM t", ["SELECT `a;b` FROM t"]),
    ("SELECT 1 -- ; no\n; SELECT 2", ["SELECT 1 -- ; no\n", " SELECT 2"]),
    ("SELECT 1 # ; no\n; SELECT 2", ["SELECT 1 # ; no\n", " SELECT 2"]),
    ("SELECT 1 /* ; */; SELECT 2", ["SELECT 1 /* ; */", " SELECT 2"]),
    ("SELECT 1--1; SELECT 2", ["SELECT 1--1", " SELECT 2"]),  # MySQL: '--' needs a space to start a comment
    ("SELECT 1;;  ; /* only a comment */ ;", ["SELECT 1"]),
    ("", []),
], ids=["plain", "strings", "escapes", "quoted-name", "dash-comment", "hash-comment", "block-comment",
        "minus-minus", "empty-statements", "empty"])
def test_split_at_semicolons_outside_strings_names_and_comments(sql: str, texts: list[str]) -> None:
    assert [p.sql for p in pieces(sql)] == texts


def test_split_agrees_with_sqlglot_on_the_statements() -> None:
    sql = "SELECT 'x;y' AS a; SELECT 2 -- c;\n; SHOW TABLES; DESCRIBE pipes"
    ours = [sqlglot.parse_one(p.sql, read="mysql").sql("mysql") for p in pieces(sql)]
    theirs = [e.sql("mysql") for e in sqlglot.parse(sql, read="mysql") if e is not None]
    assert ours == theirs


def test_unterminated_string_is_a_syntax_error() -> None:
    assert code_of("SELECT 'abc") == 3
    assert code_of("SELECT `abc") == 3


# ------------------------------------------------------------------ bounds


def _statements(n: int) -> str:
    return ";".join(["SELECT 1"] * n)


def _rows(n: int) -> str:
    return "INSERT INTO users_data (id, data) VALUES " + ", ".join(f"({i + 1}, 'd')" for i in range(n))


def _values(n: int) -> str:
    return "SELECT * FROM users_time WHERE id IN (" + ", ".join(str(i) for i in range(n)) + ")"


def _depth(n: int) -> str:
    return "SELECT * FROM users_time WHERE " + "(" * n + "id = 1" + ")" * n


def _conditions(n: int) -> str:
    return "SELECT * FROM users_time WHERE " + " OR ".join(f"id = {i}" for i in range(n + 1))


def _tokens(n: int) -> str:
    return "SELECT 1" + " + 1" * ((n - 2) // 2) + (" + " if n % 2 else "")  # n tokens (odd: a dangling +)


@pytest.mark.parametrize("make, bound, code", [
    (_statements, SMALL.statements, 22),
    (_rows, SMALL.rows, 19),
    (_values, SMALL.values, 19),
    (_depth, SMALL.depth, 23),
    (_conditions, SMALL.conditions, 18),
    (_tokens, SMALL.tokens, 24),
], ids=["statements", "rows", "values", "depth", "conditions", "tokens"])
def test_each_bound_passes_at_the_bound_and_answers_its_code_past_it(make, bound: int, code: int) -> None:
    assert pieces(make(bound), SMALL)  # at the bound: accepted by the scan
    out: list[Piece] = []
    with pytest.raises(SQLError) as caught:
        for _ in split(make(bound + 1), SMALL, out):
            pass
    assert caught.value.errno == code
    assert str(bound) in caught.value.message  # the message names the bound
    assert out == []  # nothing of a refused query is left to run


def test_the_default_bounds_are_far_above_the_shapes_that_must_work() -> None:
    limits = Limits()
    assert limits.statements >= 10 * 100  # PHP multi_query of 100 INSERTs
    assert limits.rows >= 10 * 1000  # a 1,000-row INSERT
    assert limits.values >= 10 * 1000  # an IN list of 1,000 ids
    (insert,) = parse(_rows(1000))
    assert isinstance(insert, Insert) and len(insert.rows) == 1000
    (select,) = parse(_values(1000))
    assert isinstance(select, Select) and select.keys == tuple(range(1000))
    assert len(parse(";".join(["INSERT INTO users_data (id, data) VALUES (1, 'x')"] * 100))) == 100


@pytest.mark.parametrize("sql, code", [
    ("SELECT " + "(" * 200_000 + "1" + ")" * 200_000, 23),
    ("SELECT * FROM users_time WHERE " + " OR ".join(["id = 1"] * 100_000), 18),
    (";".join(["SELECT 1"] * 100_000), 22),
    ("SELECT 1" + " + 1" * 200_000, 24),
    ("SELECT * FROM users_time WHERE id IN (" + ", ".join(["1"] * 120_000) + ")", 19),
    ("SELECT " + "NOT " * 100_000 + "1", 24),
], ids=["deep", "or-chain", "statements", "tokens", "in-list", "not-chain"])
def test_huge_inputs_are_refused_without_sqlglot(monkeypatch: pytest.MonkeyPatch, sql: str, code: int) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("sqlglot was handed the text")

    monkeypatch.setattr(sqlglot, "parse", refuse)
    assert code_of(sql) == code


@pytest.mark.parametrize("sql", [
    "SELECT " + "NOT " * 600 + "1",
    "SELECT " + "- " * 600 + "1",
    "SELECT " + "CASE WHEN 1 THEN " * 150 + "1" + " END" * 150,
], ids=["not", "minus", "case"])
def test_deep_nesting_without_parentheses_is_a_clear_error_not_a_recursion_error(sql: str) -> None:
    try:
        parse(sql)
    except SQLError as exc:
        assert exc.errno in (23, 24), exc
    except RecursionError:  # pragma: no cover - the bug this guards against
        pytest.fail("RecursionError escaped")


def test_32_levels_of_parentheses_parse() -> None:
    (select,) = parse(_depth(32))
    assert isinstance(select, Select) and select.keys == (1,)


# ------------------------------------------------------------------ lifting


def test_long_lists_are_lifted_out_of_the_text_sqlglot_parses() -> None:
    (piece,) = pieces(_rows(100))
    assert piece.sql == "INSERT INTO users_data (id, data) VALUES (:cq0)"
    assert len(piece.rows["cq0"]) == 100
    (piece,) = pieces(_values(100) + " AND id NOT IN (" + ", ".join(["'a'"] * 20) + ")")
    assert piece.sql == "SELECT * FROM users_time WHERE id IN (:cq0) AND id NOT IN (:cq1)"
    assert piece.values == {"cq0": tuple(range(100)), "cq1": ("a",) * 20}


def test_short_lists_and_lists_of_expressions_stay_in_the_text() -> None:
    assert pieces(_values(3))[0].sql == _values(3)
    computed = "SELECT * FROM users_time WHERE id IN (" + ", ".join(["1 + 1"] * 20) + ")"
    assert pieces(computed)[0].sql == computed


def test_a_placeholder_after_a_lifted_list_is_refused_and_before_it_nothing_is_lifted() -> None:
    assert code_of(_values(20) + " AND id = ?") == 3
    before = "SELECT * FROM users_time WHERE id = ? OR id IN (" + ", ".join(["1"] * 20) + ")"
    assert pieces(before)[0].values == {}


def test_long_work_is_cut_into_slices() -> None:
    pauses = sum(1 for _ in split(_rows(10_000), Limits(), []))
    assert pauses >= 10


literal = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr).filter(lambda t: "e" not in t or "." in t),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8).map(
        lambda s: "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"),
    st.text(st.sampled_from("ab\"'\\n"), max_size=5).map(
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(["NULL", "TRUE", "false", "-0", "+7", "1.", "2.5e3", "-1.5E-2"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(literal, min_size=2, max_size=2), min_size=16, max_size=40))
def test_lifted_rows_equal_what_sqlglot_builds(rows: list[list[str]]) -> None:
    sql = "INSERT INTO users_data (id, data) VALUES " + ", ".join(f"({a}, {b})" for a, b in rows)
    (lifted,) = parse(sql)
    assert pieces(sql)[0].rows  # the rows were lifted
    assert lifted == parse_expression(sqlglot.parse_one(sql, read="mysql"))


@settings(max_examples=60, deadline=None)
@given(st.lists(literal, min_size=16, max_size=40))
def test_lifted_in_values_equal_what_sqlglot_builds(values: list[str]) -> None:
    sql = f"DELETE FROM users_auth WHERE id IN ({', '.join(values)})"
    (lifted,) = parse(sql)
    assert isinstance(lifted, Delete)
    assert lifted == parse_expression(sqlglot.parse_one(sql, read="mysql"))
