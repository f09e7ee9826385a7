"""The regex fast path must agree with the sqlglot path, or decline (return None).

For random channel/event/message strings (quotes, backslashes, unicode,
newlines) rendered as MySQL literals in every legal way, ``fast_insert`` must
produce exactly the ``Insert`` that sqlglot + ``parse_expression`` produce, and
decode to the original text. Statements outside its narrow form must give None
so that sqlglot (and its errors) handle them.
"""

from __future__ import annotations

import tracemalloc

import pytest
import sqlglot
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cometql.sql import Insert, fast_insert
from cometql.sql._parse import parse_expression

# ------------------------------------------------------------ literals


def _char_forms(ch: str, quote: str) -> list[str]:
    """Every MySQL spelling of one character inside a ``quote``-quoted string."""
    forms = []
    if ch == quote:
        forms = ["\\" + ch, ch + ch]
    elif ch == "\\":
        forms = ["\\\\"]
    else:
        forms = [ch]
        named = {"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "'": "\\'"}
        if ch in named:
            forms.append(named[ch])
    return forms


@st.composite
def literal(draw: st.DrawFn, text: str) -> str:
    """``text`` as a MySQL string literal: '...' or "...", each character spelled in any legal way."""
    quote = draw(st.sampled_from(["'", '"']))
    body = "".join(draw(st.sampled_from(_char_forms(ch, quote))) for ch in text)
    return quote + body + quote


TRICKY = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("'\"\\\n\r\t ;,()`%_")),
        st.characters(codec="utf-8", exclude_characters="\x00"),
    ),
    max_size=30,
)
SPACE = st.sampled_from(["", " ", "  ", "\n", "\t "])
NEEDED_SPACE = st.sampled_from([" ", "  ", "\n", "\t"])


def sqlglot_insert(sql: str) -> object:
    return parse_expression(sqlglot.parse_one(sql, read="mysql"))


@st.composite
def insert_statement(draw: st.DrawFn) -> tuple[str, tuple[object, ...]]:
    """A plain one-row INSERT on a message table, with the values it must decode to."""
    table = draw(st.sampled_from(["pipes_messages", "users_messages", "`pipes_messages`"]))
    first = "name" if "pipes" in table else "id"
    channel: object = draw(TRICKY) if first == "name" else draw(st.integers(-(10**17), 10**17))
    event, message = draw(TRICKY), draw(TRICKY)
    first_lit = draw(literal(channel)) if isinstance(channel, str) else str(channel)
    kw = [draw(st.sampled_from([k, k.lower(), k.title()])) for k in ("INSERT", "INTO", "VALUES")]
    s = [draw(SPACE) for _ in range(8)]
    sql = (
        f"{s[0]}{kw[0]}{draw(NEEDED_SPACE)}{kw[1]}{draw(NEEDED_SPACE)}{table}{s[1]}"
        f"({s[2]}{first},{s[3]}event, message){s[4]}{kw[2]}{s[5]}"
        f"({first_lit},{s[6]}{draw(literal(event))} ,{draw(literal(message))}){s[7]}{draw(st.sampled_from(['', ';']))}"
    )
    return sql, (channel, event, message)


@settings(max_examples=400, deadline=None)
@given(insert_statement())
@example(("INSERT INTO pipes_messages (name, event, message) VALUES ('it''s', \"a\\\"b\", 'x\\\\')",
          ("it's", 'a"b', "x\\")))
@example(("INSERT INTO users_messages (id, event, message) VALUES (-5, '', '\\n')", (-5, "", "\n")))
def test_fast_path_agrees_with_sqlglot(case: tuple[str, tuple[object, ...]]) -> None:
    sql, values = case
    fast = fast_insert(sql)
    assert isinstance(fast, Insert), sql
    assert fast.rows == (values,)
    assert fast == sqlglot_insert(sql)


@settings(max_examples=300, deadline=None)
@given(insert_statement(), st.text(max_size=15), st.booleans())
def test_fast_path_never_disagrees_on_mangled_statements(
    case: tuple[str, tuple[object, ...]], junk: str, prepend: bool
) -> None:
    """Whatever text is glued on, the fast path either declines or matches sqlglot exactly."""
    sql = junk + case[0] if prepend else case[0] + junk
    fast = fast_insert(sql)
    if fast is None:
        return
    assert fast == sqlglot_insert(sql), sql


DECLINED = {
    "ragged-multi-row": "INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'b', 'c'), ('d', 'e')",
    "row-after-tail": "INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'b', 'c'); ('d', 'e', 'f')",
    "trailing-comma": "INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'b', 'c'),",
    "function": "INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'b', CONCAT('c', 'd'))",
    "now": "INSERT INTO users_messages (id, event, message) VALUES (1, 'e', NOW())",
    "column-value": "INSERT INTO users_messages (id, event, message) VALUES (id, 'e', 'm')",
    "null": "INSERT INTO users_messages (id, event, message) VALUES (1, 'e', NULL)",
    "float": "INSERT INTO users_messages (id, event, message) VALUES (1.5, 'e', 'm')",
    "hex": "INSERT INTO users_messages (id, event, message) VALUES (0x10, 'e', 'm')",
    "other-table": "INSERT INTO users_auth (id, hash) VALUES (1, 'h')",
    "settings-table": "INSERT INTO pipes_settings (name, length) VALUES ('p', 1)",
    "wrong-case-table": "INSERT INTO Pipes_Messages (name, event, message) VALUES ('a', 'b', 'c')",
    "positional": "INSERT INTO pipes_messages VALUES ('i', 1, 'a', 0, 'b', 'c', 0)",
    "trailing-garbage": "INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'b', 'c') garbage",
    "second-statement": "INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'b', 'c'); SELECT 1",
    "on-duplicate": "INSERT INTO users_messages (id, event, message) VALUES (1, 'b', 'c') "
                    "ON DUPLICATE KEY UPDATE event = 'x'",
    "comment-inside": "INSERT INTO pipes_messages (name, event, message) VALUES ('a', /* c */ 'b', 'c')",
    "leading-comment": "/* c */ INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'b', 'c')",
    "unterminated": "INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'b', 'c",
    "select": "SELECT * FROM pipes_messages WHERE name = 'a'",
    "insert-select": "INSERT INTO pipes_messages (name, event, message) SELECT 'a', 'b', 'c'",
    "insert-set": "INSERT INTO pipes_messages SET name = 'a', event = 'b', message = 'c'",
    "qualified-table": "INSERT INTO CometQL_v1.pipes_messages (name, event, message) VALUES ('a', 'b', 'c')",
    "huge-number": "INSERT INTO users_messages (id, event, message) VALUES (1234567890123456789012, 'e', 'm')",
}


@pytest.mark.parametrize("sql", list(DECLINED.values()), ids=list(DECLINED))
def test_fast_path_declines(sql: str) -> None:
    assert fast_insert(sql) is None


def test_rows_over_the_bound_are_left_to_the_scanner() -> None:
    """Past ``max_rows`` the fast path declines, so the scanner answers the bound's error (19)."""
    sql = "INSERT INTO users_messages (id, event, message) VALUES (1, 'e', 'a'), (2, 'e', 'b'), (3, 'e', 'c')"
    assert fast_insert(sql, max_rows=2) is None
    accepted = fast_insert(sql, max_rows=3)
    assert accepted is not None and len(accepted.rows) == 3


@st.composite
def multi_row_insert(draw: st.DrawFn) -> tuple[str, list[tuple[object, ...]]]:
    """A plain INSERT of 2-6 rows, each spelled the way ``insert_statement`` spells one."""
    table = draw(st.sampled_from(["pipes_messages", "users_messages"]))
    first = "name" if table == "pipes_messages" else "id"
    rows: list[tuple[object, ...]] = []
    spelled: list[str] = []
    for _ in range(draw(st.integers(2, 6))):
        key: object = draw(TRICKY) if first == "name" else draw(st.integers(-(10**17), 10**17))
        event, message = draw(TRICKY), draw(TRICKY)
        key_lit = draw(literal(key)) if isinstance(key, str) else str(key)
        s = [draw(SPACE) for _ in range(4)]
        spelled.append(f"({s[0]}{key_lit},{s[1]}{draw(literal(event))}{s[2]},{draw(literal(message))}{s[3]})")
        rows.append((key, event, message))
    between = draw(st.sampled_from([",", ", ", " ,\n"]))
    sql = f"INSERT INTO {table} ({first}, event, message) VALUES " + between.join(spelled)
    return sql, rows


@settings(max_examples=200, deadline=None)
@given(multi_row_insert())
def test_multi_row_fast_path_agrees_with_sqlglot(case: tuple[str, list[tuple[object, ...]]]) -> None:
    sql, rows = case
    fast = fast_insert(sql)
    assert isinstance(fast, Insert), sql
    assert fast.rows == tuple(rows)
    assert fast == sqlglot_insert(sql)


@pytest.mark.parametrize("sql", [
    "INSERT INTO pipes_messages (name, event) VALUES ('a', 'b', 'c')",
    "INSERT INTO pipes_messages (name, event, message) VALUES ('a', 'b')",
], ids=["more-values", "fewer-values"])
def test_count_mismatch_is_left_to_the_executor_on_both_paths(sql: str) -> None:
    """Either path may build the mismatched Insert: execute() answers ERR 14 for both."""
    fast = fast_insert(sql)
    assert fast is None or fast == sqlglot_insert(sql)


@pytest.mark.parametrize(("body", "most"), [("ab" * 500_000, 4), ('{\\"key\\": \\"value\\", ' * 40_000, 32)],
                         ids=["plain", "escaped-json"])
def test_a_long_literal_costs_memory_in_proportion_to_it(body: str, most: int) -> None:
    """A run of plain characters is one regex step: the per-character alternation this replaced took
    ~370 bytes per character of a 1 MB message (a 48 KB message grew the server by 7 MB, kept by malloc).
    Escapes still cost a regex step and a decoded piece each: bounded per escape, not per character."""
    sql = f"INSERT INTO pipes_messages (name, event, message) VALUES ('c', 'e', '{body}')"
    tracemalloc.start()
    try:
        stmt = fast_insert(sql)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stmt is not None and len(stmt.rows[0][2]) > len(body) // 2  # type: ignore[arg-type]
    assert peak < most * len(sql), f"{peak} bytes traced for a {len(sql)}-byte statement"
