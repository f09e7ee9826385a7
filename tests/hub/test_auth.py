"""Browser login checks (cometql-wire.md §2.7, README): users_auth hash or HS256 JWT.

The JWT secret is the password followed by the decimal dev_id; ``user_id`` and
``exp`` are required, expiry is checked against the ``now`` the caller passes,
and a revoked token never logs in.
"""

from __future__ import annotations

import jwt
import pytest

from cometql.hub._auth import hash_matches, jwt_secret, jwt_user_id

from ._helpers import NOW, PASSWORD, apply, make_hub

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

SECRET = jwt_secret(PASSWORD, 7)


def token(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def test_secret_is_password_then_dev_id() -> None:
    assert jwt_secret("pw", 12) == "pw12"


@pytest.mark.parametrize("claims, secret, algorithm, user", [
    ({"user_id": 5, "exp": NOW + 60}, SECRET, "HS256", 5),
    ({"user_id": "5", "exp": NOW + 60}, SECRET, "HS256", 5),
    ({"user_id": 5, "exp": NOW - 1}, SECRET, "HS256", None),
    ({"user_id": 5, "exp": NOW}, SECRET, "HS256", None),
    ({"user_id": 5}, SECRET, "HS256", None),
    ({"exp": NOW + 60}, SECRET, "HS256", None),
    ({"user_id": 0, "exp": NOW + 60}, SECRET, "HS256", None),
    ({"user_id": -5, "exp": NOW + 60}, SECRET, "HS256", None),
    ({"user_id": "x5", "exp": NOW + 60}, SECRET, "HS256", None),
    ({"user_id": True, "exp": NOW + 60}, SECRET, "HS256", None),
    ({"user_id": 5, "exp": NOW + 60}, jwt_secret(PASSWORD, 8), "HS256", None),
    ({"user_id": 5, "exp": NOW + 60}, SECRET, "HS512", None),
], ids=["valid", "string-user-id", "expired", "expires-now", "no-exp", "no-user-id", "user-zero", "user-negative",
        "user-not-a-number", "user-bool", "other-dev-secret", "other-algorithm"])
def test_jwt_user_id(claims: dict[str, object], secret: str, algorithm: str, user: int | None) -> None:
    assert jwt_user_id(token(claims, secret, algorithm), SECRET, NOW) == user


@pytest.mark.parametrize("value", ["", "a.b", "a.b.c", "x" * 5000, "not a token"])
def test_garbage_is_not_a_jwt(value: str) -> None:
    assert jwt_user_id(value, SECRET, NOW) is None


def test_hash_matches() -> None:
    assert hash_matches("abc", "abc")
    assert not hash_matches("abc", "abd")
    assert not hash_matches(None, "")
    assert not hash_matches("", "")  # an empty stored hash (an older version's) lets nobody in


def test_authorize_with_jwt_stores_a_hash_once() -> None:
    hub = make_hub()
    good = token({"user_id": 5, "exp": NOW + 60})
    ok, effects = hub.authorize(7, 5, good, NOW)
    apply(hub, effects)
    assert ok and len(effects) == 1
    stored = hub.state.auth_hash(7, 5)
    assert stored is not None and len(stored) <= 32
    assert hub.authorize(7, 5, good, NOW) == (True, [])
    assert hub.state.auth_hash(7, 5) == stored


@pytest.mark.parametrize("user, dev, at", [(6, 7, NOW), (5, 8, NOW), (5, 7, NOW + 61)],
                         ids=["other-user", "other-dev", "after-expiry"])
def test_authorize_rejects_mismatched_jwt(user: int, dev: int, at: int) -> None:
    hub = make_hub()
    assert hub.authorize(dev, user, token({"user_id": 5, "exp": NOW + 60}), at) == (False, [])


def test_revoked_jwt_never_logs_in_and_logs_the_user_out() -> None:
    hub = make_hub()
    good = token({"user_id": 5, "exp": NOW + 60})
    apply(hub, hub.set_auth(7, 5, "h"))
    apply(hub, hub.revoke_token(7, good, NOW))
    assert hub.state.is_revoked(7, good)
    assert hub.state.auth_hash(7, 5) is None
    assert hub.authorize(7, 5, good, NOW) == (False, [])
    apply(hub, hub.unrevoke_tokens(7, [good]))
    assert hub.authorize(7, 5, good, NOW)[0] is True
