"""The dashboard's live-socket tokens, in-process: who can open /admin/live, and for how long.

The wire behaviour (a 1008 close with these reasons) is tested against a real
server in tests/test_metrics.py; here the clock is given explicitly, so expiry
is checked to the second without waiting a minute.
"""

from __future__ import annotations

from cometql.web._admin import TOKEN_TTL, check_token, issue_token

PASSWORD = "dashboard secret"
NOW = 1_700_000_000.0


def test_a_fresh_token_is_valid_until_it_expires() -> None:
    token = issue_token(PASSWORD, now=NOW)
    assert check_token(PASSWORD, token, now=NOW) is None
    assert check_token(PASSWORD, token, now=NOW + TOKEN_TTL) is None
    assert check_token(PASSWORD, token, now=NOW + TOKEN_TTL + 1) == "admin token expired"


def test_tokens_are_unique_and_do_not_contain_the_password() -> None:
    tokens = {issue_token(PASSWORD, now=NOW) for _ in range(100)}
    assert len(tokens) == 100
    assert not any(PASSWORD in t or PASSWORD.encode().hex() in t for t in tokens)


def test_another_password_or_an_edited_token_is_refused() -> None:
    token = issue_token(PASSWORD, now=NOW)
    assert check_token(PASSWORD + "!", token, now=NOW) == "admin token invalid"  # a changed password voids it
    version, expiry, nonce, signature = token.split(".")
    assert check_token(PASSWORD, f"{version}.{int(expiry) + 600}.{nonce}.{signature}", now=NOW) == "admin token invalid"
    assert check_token(PASSWORD, f"{version}.{expiry}.{nonce}x.{signature}", now=NOW) == "admin token invalid"
    assert check_token(PASSWORD, f"{version}.{expiry}.{nonce}.{signature[:-1]}", now=NOW) == "admin token invalid"


def test_missing_and_malformed_tokens_are_refused() -> None:
    assert check_token(PASSWORD, "", now=NOW) == "admin token missing"
    for bad in ("x", "v1.x.y.z", "v2.1.2.3", "v1..n.s", "v1.-5.n.s", "v1.9999999999999.n.s", "...", "v1.1.2.3.4",
                "v1.\u00e9.n.s", "v1.\u00b2.n.s", "v1.\u0661.n.s"):
        assert check_token(PASSWORD, bad, now=NOW) == "admin token malformed", bad
    version, expiry, nonce, signature = issue_token(PASSWORD, now=NOW).split(".")
    assert check_token(PASSWORD, f"{version}.{expiry}.{nonce}.{signature}\u00e9", now=NOW) == "admin token invalid"
