"""Browser login checks: a users_auth hash or a JWT.

JWTs are HS256, signed with the CometQL password followed by the decimal dev_id
(CppComet's rule), carry a numeric ``user_id`` and a required ``exp``. Expiry is
checked against the ``now`` the caller passes, so this module reads no clock.
"""

from __future__ import annotations

import hmac
import warnings

import jwt

# CppComet's secret (password + dev_id) is often shorter than PyJWT's recommended HMAC key;
# existing backends sign with it, so the warning would only repeat on every login.
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)

__all__ = ["jwt_secret", "jwt_user_id", "hash_matches"]


def jwt_secret(password: str, dev_id: int) -> str:
    return f"{password}{dev_id}"


def jwt_user_id(token: str, secret: str, now: float) -> int | None:
    """Return the token's ``user_id`` if it is a valid, unexpired HS256 JWT, else None."""
    if len(token) > 4096 or token.count(".") != 2:
        return None
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"verify_exp": False, "require": ["exp", "user_id"]},
        )
    except jwt.PyJWTError:
        return None
    exp, user_id = claims.get("exp"), claims.get("user_id")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp <= now:
        return None
    if isinstance(user_id, str) and user_id.isdigit():
        user_id = int(user_id)
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        return None
    return user_id


def hash_matches(stored: str | None, offered: str) -> bool:
    """Constant-time comparison; an unknown user, or an empty hash (stored by an older version), never matches."""
    return stored is not None and stored != "" and hmac.compare_digest(stored.encode(), offered.encode())
