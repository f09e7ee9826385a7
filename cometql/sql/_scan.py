"""A lexical pass over a COM_QUERY text: split it, measure it, lift out its literal lists.

sqlglot is pure Python (~6-12 µs a token) and the server runs it on its one
event loop, so what it is handed must be small. Before any of it is parsed,
``split`` walks the whole text once with a C regex, token by token:

* it splits the text into statements at ``;`` (not inside strings, quoted
  names or comments: the same split sqlglot and MySQL make);
* it measures each statement (tokens, ``(`` nesting, AND/OR/XOR) and refuses
  the query, with one of CometQL's codes, as soon as a measure passes its
  bound (``Limits``), so huge or deep inputs cost O(n) regex time and no
  sqlglot time at all;
* it lifts long lists of plain literals (the rows of ``INSERT ... VALUES``,
  the values of ``IN (...)``) out of the text: their values are read here with
  the fast path's literal regex and the text sqlglot parses gets a placeholder
  (``:cq0``) instead, so a 10,000-row INSERT is a few dozen tokens for sqlglot.

``split`` is a generator: it yields (None) after every slice of work so the
caller can let other tasks run, and fills the list of ``Piece`` it is given.
Nothing here does I/O. Must not import sqlglot (the point is to run before it).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from ..errors import SQLError
from . import codes
from ._values import DOUBLE_QUOTED, SINGLE_QUOTED, Value, unescape

__all__ = ["EXTRACT_MIN", "Limits", "Piece", "split"]

#: Lists of literals shorter than this stay in the text sqlglot parses (it is cheap for them).
EXTRACT_MIN = 16
#: Tokens (or list items) between two pauses: about a millisecond of work.
_SLICE = 512


@dataclass(frozen=True, slots=True)
class Limits:
    """What one COM_QUERY may ask for; each bound has its error (see ``codes``)."""

    #: Statements in one query (PHP ``multi_query``, a script piped to ``mysql``).
    statements: int = 1000
    #: Rows in one ``INSERT ... VALUES``.
    rows: int = 10_000
    #: Values in one ``IN (...)`` list.
    values: int = 10_000
    #: ``(`` nesting: sqlglot and the executor recurse once (or more) per level.
    depth: int = 32
    #: AND / OR / XOR (``&&``, ``||``) in one statement: sqlglot's optimizer is super-linear in them.
    conditions: int = 64
    #: Tokens sqlglot parses for one statement, lifted literal lists not counted (~6-12 ms at the bound).
    tokens: int = 1000


@dataclass(slots=True)
class Piece:
    """One statement: the text sqlglot parses, and the literal lists lifted out of it by placeholder name."""

    sql: str
    #: ``IN (...)`` values, by placeholder name (``cq0``...).
    values: dict[str, tuple[Value, ...]] = field(default_factory=dict)
    #: ``VALUES (...), (...)`` rows, by placeholder name.
    rows: dict[str, tuple[tuple[Value, ...], ...]] = field(default_factory=dict)
    #: Tokens of ``sql`` (what sqlglot parses) plus the lifted items: a measure of the work it takes.
    cost: int = 0


_TOKEN = re.compile(
    r"""
      (?P<s>'(?:[^'\\]++|\\.|'')*+'|"(?:[^"\\]++|\\.|"")*+")   # a string
    | (?P<c>/\*.*?(?:\*/|\Z)|\#[^\n]*|--(?=\s|\Z)[^\n]*)   # a comment (MySQL: '--' then a space)
    | (?P<q>`(?:[^`]|``)*+`)                               # a quoted name
    | (?P<w>[A-Za-z_]\w*)                                  # a word (keyword or name)
    | (?P<p>[;(),])
    | (?P<o>&&|\|\||[\d.$@]+\w*|['"`]|\S)                  # numbers, variables, operators; a lone quote
    """,
    re.X | re.S,
)
_CONDITIONS = {"AND", "OR", "XOR", "&&", "||"}
#: Characters that would clash with the placeholders: a statement with them keeps its lists in the text.
_PLACEHOLDER_CHARS = {":", "?"}

#: One literal of a lifted list, then the separator after it. The same literal forms as the fast path,
#: plus floats, signs and NULL/TRUE/FALSE; anything else (functions, hex, _charset'x') is left to sqlglot.
_ITEM = re.compile(
    rf"""\s*(?:
      {SINGLE_QUOTED}
    | {DOUBLE_QUOTED}
    | ([-+]?\d+)(?![\w.])
    | ([-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)(?![\w.])
    | (NULL|TRUE|FALSE)(?!\w)
    )\s*([,)])""",
    re.X | re.S | re.I,
)
_OPEN = re.compile(r"\s*\(")
_IN = re.compile(r"\s+IN(?!\w)", re.I)
_NEXT_ROW = re.compile(r"\s*,\s*(?=\()")
_WORDS = {"NULL": None, "TRUE": 1, "FALSE": 0}


def _item(m: re.Match[str]) -> Value:
    single, double, integer, number, word = m.group(1, 2, 3, 4, 5)
    if single is not None:
        return unescape(single, "'")
    if double is not None:
        return unescape(double, '"')
    if integer is not None:
        return int(integer)
    if number is not None:
        return float(number)
    return _WORDS[word.upper()]


class _Statement:
    """The measures and the rewritten text of the statement being scanned."""

    __slots__ = ("start", "parts", "tokens", "conditions", "depth", "lists", "items", "piece", "plain")

    def __init__(self, start: int) -> None:
        self.start = start  # where the text not yet copied into ``parts`` begins
        self.parts: list[str] = []
        self.tokens = 0
        self.conditions = 0
        self.depth = 0
        self.lists = 0
        self.items = 0  # literal items lifted out
        self.piece = Piece("")
        self.plain = True  # no ':' or '?' seen: placeholders cannot clash


class _Scanner:
    def __init__(self, sql: str, limits: Limits, out: list[Piece]) -> None:
        self.sql = sql
        self.limits = limits
        self.out = out
        self.work = 0

    def run(self) -> Iterator[None]:
        sql, limits = self.sql, self.limits
        stmt = _Statement(0)
        pos, end = 0, len(sql)
        last_word = ""
        while True:
            m = _TOKEN.search(sql, pos)
            if m is None:
                break
            pos = m.end()
            kind = m.lastgroup
            self.work += 1
            if self.work >= _SLICE:
                self.work = 0
                yield
            if kind == "c":
                continue
            text = m.group()
            if kind == "p" and text == ";":
                self._finish(stmt, m.start())
                stmt = _Statement(pos)
                last_word = ""
                continue
            stmt.tokens += 1
            if stmt.tokens > limits.tokens:
                raise codes.too_complex(limits.tokens)
            if kind == "w":
                word = text.upper()
                if word in _CONDITIONS:
                    self._condition(stmt)
                elif stmt.plain and (word == "NOT" or (word == "IN" and last_word != "NOT")
                                     or (word in ("VALUES", "VALUE") and stmt.depth == 0)):
                    lifted = yield from self._lift(stmt, word, pos)
                    if lifted:
                        pos = lifted
                        continue
                last_word = word
                continue
            last_word = ""
            if kind == "p":
                if text == "(":
                    stmt.depth += 1
                    if stmt.depth > limits.depth:
                        raise codes.too_deep(limits.depth)
                elif text == ")":
                    stmt.depth = max(0, stmt.depth - 1)
            elif kind == "o":
                if text in _CONDITIONS:
                    self._condition(stmt)
                elif text in _PLACEHOLDER_CHARS:
                    if stmt.lists:  # it could name a lifted list; CometQL takes no placeholders anyway
                        raise codes.syntax()
                    stmt.plain = False
                elif text in "'\"`":
                    raise codes.syntax()  # a string or quoted name that never ends
        self._finish(stmt, end)

    def _condition(self, stmt: _Statement) -> None:
        stmt.conditions += 1
        if stmt.conditions > self.limits.conditions:
            raise codes.too_many_conditions(self.limits.conditions)

    def _lift(self, stmt: _Statement, word: str, pos: int) -> Generator[None, None, int]:
        """Lift the literal list that follows ``IN`` / ``NOT IN`` / ``VALUES`` at ``pos``; its end, or 0 to scan it.

        A list is lifted only when every item is a plain literal and there are
        at least ``EXTRACT_MIN``; otherwise it stays text and its tokens count.
        """
        sql = self.sql
        if word == "NOT":  # NOT IN (...): the list belongs to the IN
            m = _IN.match(sql, pos)
            if m is None:
                return 0
            pos = m.end()
        opened = _OPEN.match(sql, pos)
        if opened is None:
            return 0
        rows: list[tuple[Value, ...]] = []
        values: list[Value] = []
        at = opened.end()
        many = word in ("VALUES", "VALUE")
        bound = self.limits.rows if many else self.limits.values
        while True:
            m = _ITEM.match(sql, at)
            if m is None:
                return 0
            values.append(_item(m))
            if not many and len(values) > bound:
                raise codes.too_many_values(bound)
            at = m.end()
            self.work += 1
            if self.work >= _SLICE:
                self.work = 0
                yield
            if m.group(6) == ",":
                continue
            if not many:
                break
            rows.append(tuple(values))
            values = []
            if len(rows) > bound:
                raise codes.too_many_rows(bound)
            more = _NEXT_ROW.match(sql, at)
            if more is None:
                break
            opened = _OPEN.match(sql, more.end())
            assert opened is not None  # _NEXT_ROW looked ahead for it
            at = opened.end()
        if (len(rows) if many else len(values)) < EXTRACT_MIN:
            return 0
        name = f"cq{stmt.lists}"
        stmt.lists += 1
        stmt.parts.append(sql[stmt.start : pos if many else opened.start()])
        stmt.parts.append(f" (:{name})")
        if many:
            stmt.piece.rows[name] = tuple(rows)
        else:
            stmt.piece.values[name] = tuple(values)
        stmt.start = at
        stmt.tokens += 3
        stmt.items += sum(map(len, rows)) if many else len(values)
        return at

    def _finish(self, stmt: _Statement, end: int) -> None:
        """Close the statement that ends at ``end``; statements of only blanks and comments are dropped."""
        if stmt.tokens == 0:
            return
        if len(self.out) >= self.limits.statements:
            raise codes.too_many_statements(self.limits.statements)
        stmt.parts.append(self.sql[stmt.start : end])
        stmt.piece.sql = "".join(stmt.parts)
        stmt.piece.cost = stmt.tokens + stmt.items
        self.out.append(stmt.piece)


def split(sql: str, limits: Limits, out: list[Piece]) -> Iterator[None]:
    """Scan ``sql`` into ``out`` (one ``Piece`` per statement), yielding between slices of work.

    Raises ``SQLError`` (CometQL's bound codes, or 3 for an unterminated string)
    before anything of the query has been parsed or run.
    """
    try:
        yield from _Scanner(sql, limits, out).run()
    except SQLError:
        out.clear()
        raise
