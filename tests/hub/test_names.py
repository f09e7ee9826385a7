"""Name rules shared by the SQL and browser faces (cometql-wire.md §5).

Channels: 3..64 chars of [A-Za-z0-9_-], checked long, then short, then chars.
Events: 0..64 such chars. Hashes: 0..32 chars of [0-9A-Za-z=+/_], chars first.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cometql.hub import channel_problem, event_problem, hash_problem, is_valid_channel

NAME_CHARS = string.ascii_letters + string.digits + "_-"
HASH_CHARS = string.ascii_letters + string.digits + "=+/_"


@pytest.mark.parametrize("name, problem", [
    ("abc", None),
    ("a" * 64, None),
    ("web_chat-1", None),
    ("a" * 65, "long"),
    ("a b" * 30, "long"),  # length is checked before characters
    ("ab", "short"),
    ("", "short"),
    ("a!", "short"),  # and before the characters of a short name
    ("a b", "chars"),
    ("chan.1", "chars"),
    ("кан", "chars"),
    ("abc\n", "chars"),
], ids=["min", "max", "all-kinds", "65", "long-and-bad", "2", "empty", "short-and-bad", "space", "dot", "cyrillic",
        "trailing-newline"])
def test_channel_problem(name: str, problem: str | None) -> None:
    assert channel_problem(name) == problem
    assert is_valid_channel(name) == (problem is None)


@pytest.mark.parametrize("event, problem", [
    ("", None), ("e" * 64, None), ("new-message_2", None), ("e" * 65, "long"), ("a b", "chars"), ("ev\n", "chars"),
], ids=["empty", "max", "all-kinds", "65", "space", "trailing-newline"])
def test_event_problem(event: str, problem: str | None) -> None:
    assert event_problem(event) == problem


@pytest.mark.parametrize("value, problem", [
    ("", "empty"), ("a" * 32, None), ("AZaz09=+/_", None), ("a" * 33, "long"), ("a-b", "chars"),
    ("-" + "a" * 40, "chars"), ("a\n", "chars"),
], ids=["empty", "max", "all-kinds", "33", "dash", "chars-before-length", "trailing-newline"])
def test_hash_problem(value: str, problem: str | None) -> None:
    assert hash_problem(value) == problem


@given(st.text(max_size=70))
def test_channel_rule_matches_its_definition(name: str) -> None:
    valid = 3 <= len(name) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]*", name, re.ASCII) is not None
    assert is_valid_channel(name) == valid
    assert (channel_problem(name) is None) == valid


@given(st.text(alphabet=NAME_CHARS, min_size=3, max_size=64))
def test_every_well_formed_channel_is_valid(name: str) -> None:
    assert channel_problem(name) is None and event_problem(name) is None


@given(st.text(alphabet=HASH_CHARS, min_size=1, max_size=32))
def test_every_well_formed_hash_is_valid(value: str) -> None:
    assert hash_problem(value) is None
