"""``eventually`` (``_wire.py``): a falsy return is "not yet", so a check that cannot fail cannot pass.

The trap it closes: ``eventually(lambda: cond or None)`` returned at once when "not yet" meant only an
AssertionError, and several tests waited for and checked nothing.
"""

from __future__ import annotations

import pytest

from ._wire import eventually


async def test_a_predicate_is_retried_until_it_holds_and_its_value_returned() -> None:
    calls: list[int] = []

    def third_time() -> list[int] | None:
        calls.append(1)
        return list(calls) if len(calls) >= 3 else None

    assert await eventually(third_time) == [1, 1, 1]


async def test_an_assertion_is_retried_until_it_passes() -> None:
    calls: list[int] = []

    def asserts() -> bool:
        calls.append(1)
        assert len(calls) >= 3, len(calls)
        return True

    assert await eventually(asserts) is True and len(calls) == 3


@pytest.mark.parametrize("value", [False, None, [], 0, ""])
async def test_a_check_that_stays_falsy_fails_naming_what_was_awaited(value: object) -> None:
    with pytest.raises(AssertionError, match=r"not within 0\.2 s: .*the queue to empty.*returned"):
        await eventually(lambda: value, timeout=0.2, what="the queue to empty")


async def test_the_timeout_names_a_lambdas_source_and_the_last_assertion() -> None:
    def never() -> bool:
        raise AssertionError("rows left: 3")

    with pytest.raises(AssertionError, match=r"never \(AssertionError: rows left: 3\)"):
        await eventually(never, timeout=0.2)
    rows = [("x",)]
    with pytest.raises(AssertionError, match=r"lambda: rows == \[\]"):
        await eventually(lambda: rows == [], timeout=0.2)
