"""Validation rules for names and values shared by every face of the server.

CppComet's rules (channel names of 3..64 characters from ``[A-Za-z0-9_-]``,
event names of 0..64 such characters, auth hashes of 0..32 characters from
``[0-9A-Za-z=+/_]``) live here so the SQL layer and the browser layer agree.
Pure functions only.
"""

from __future__ import annotations

import re

__all__ = [
    "CHANNEL_MAX",
    "CHANNEL_MIN",
    "EVENT_MAX",
    "HASH_MAX",
    "channel_problem",
    "event_problem",
    "hash_problem",
    "is_valid_channel",
]

CHANNEL_MIN = 3
CHANNEL_MAX = 64
EVENT_MAX = 64
HASH_MAX = 32

_NAME_CHARS = re.compile(r"[A-Za-z0-9_\-]*\Z")
_HASH_CHARS = re.compile(r"[0-9A-Za-z=+/_]*\Z")


def channel_problem(name: str) -> str | None:
    """Return which rule a channel name breaks ("long", "short", "chars"), or None.

    The order of the checks is CppComet's, so the first error reported matches.
    """
    if len(name) > CHANNEL_MAX:
        return "long"
    if len(name) < CHANNEL_MIN:
        return "short"
    if not _NAME_CHARS.match(name):
        return "chars"
    return None


def is_valid_channel(name: str) -> bool:
    return CHANNEL_MIN <= len(name) <= CHANNEL_MAX and _NAME_CHARS.match(name) is not None


def event_problem(event: str) -> str | None:
    """Return "long" or "chars" for a bad event name; the empty event is allowed."""
    if len(event) > EVENT_MAX:
        return "long"
    if not _NAME_CHARS.match(event):
        return "chars"
    return None


def hash_problem(value: str) -> str | None:
    """Return "empty", "chars" or "long" for a bad users_auth hash (characters are checked first)."""
    if not value.strip():
        return "empty"  # CppComet stores it, and then anyone who sends an empty key logs in as that user
    if not _HASH_CHARS.match(value):
        return "chars"
    if len(value) > HASH_MAX:
        return "long"
    return None
