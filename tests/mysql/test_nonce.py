"""The login nonce CometQL gives mysql-mimic (``_server._nonce``): one ``os.urandom`` call, same alphabet."""

from __future__ import annotations

from collections import Counter

import mysql_mimic.utils

from cometql.mysql import _server


def test_nonce_is_installed() -> None:
    assert mysql_mimic.utils.nonce is _server._nonce


def test_nonce_length_and_alphabet() -> None:
    for n in (1, 8, 20, 64):
        value = _server._nonce(n)
        assert len(value) == n
        assert set(value) <= set(mysql_mimic.utils.SAFE_NONCE_CHARS)


def test_nonce_uses_every_character() -> None:
    counts = Counter(b"".join(_server._nonce(20) for _ in range(2000)))
    assert set(counts) == set(mysql_mimic.utils.SAFE_NONCE_CHARS)  # 40,000 draws over 62 characters
