"""``cometql.sql.steps``: a long INSERT is validated, then applied, in slices (``execute`` in one go).

The server pauses where ``steps`` yields None and applies each list of effects
it yields before asking for more, so other clients run between slices.
"""

from __future__ import annotations

import pytest

from cometql.errors import SQLError
from cometql.hub import Persist
from cometql.sql import BATCH, Context, Insert, Ok, execute, parse, steps

from ..hub._helpers import make_hub

NOW = 1_700_000_000


def _insert(rows: int, *, bad_last: bool = False) -> Insert:
    values = [f"({i + 1}, 'data {i}')" for i in range(rows)]
    if bad_last:
        values[-1] = "(-1, 'negative id')"
    (stmt,) = parse("INSERT INTO users_data (id, data) VALUES " + ", ".join(values))
    assert isinstance(stmt, Insert)
    return stmt


def _drive(stmt: Insert) -> tuple[list[object], Ok]:
    """What the server does with ``steps``: the slices it yields, and the result it returns."""
    hub, out = make_hub(), []
    work = steps(stmt, hub, Context(7, NOW))
    try:
        while True:
            out.append(next(work))
    except StopIteration as done:
        return out, done.value


def test_a_long_insert_is_applied_in_batches_with_pauses_between() -> None:
    stmt = _insert(1000)
    sliced, result = _drive(stmt)
    batches = [s for s in sliced if s]
    assert len(batches) == -(-1000 // BATCH)
    assert sliced.count(None) >= 2 * len(batches) - 1  # validation slices, then a pause after each batch
    stored = [r for batch in batches for e in batch if isinstance(e, Persist) for r in e.records]
    assert len(stored) == 1000
    assert result == Ok(1000, 1000)
    assert execute(stmt, make_hub(), Context(7, NOW))[1] == result  # the same answer as in one go


def test_a_bad_row_anywhere_applies_nothing() -> None:
    sliced: list[object] = []
    with pytest.raises(SQLError) as caught:
        for item in steps(_insert(1000, bad_last=True), make_hub(), Context(7, NOW)):
            sliced.append(item)
    assert caught.value.errno == 12
    assert sliced and all(item is None for item in sliced)  # paused while validating, applied nothing


def test_a_short_statement_is_one_step() -> None:
    sliced, result = _drive(_insert(3))
    assert len(sliced) == 1 and sliced[0]
    assert result == Ok(3, 3)
