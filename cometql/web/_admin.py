"""The admin dashboard behind HTTP Basic: ``/admin`` (page, script, style), ``/admin/stats``, ``/admin/token``.

Everything the page needs is served from ``static/admin/`` (no CDN: an
operator's network may have no way out). The page updates live: it fetches a
short-lived token from ``/admin/token`` and opens the WebSocket
``/admin/live`` (``_adminlive.py``), which pushes the JSON of ``stats()`` once
a second. Polling ``/admin/stats`` every 2 s is its fallback while the socket
cannot be opened, and the endpoint stays for operators' tools. The numbers
come from the node's statistics snapshot and the observer's dashboard memory. Any user name
is accepted; the password is ``[admin] password`` (``COMETQL_ADMIN_PASSWORD``)
if set, else the CometQL password, compared in constant time.

Tokens are ``v1.<expiry>.<nonce>.<signature>``, HMAC-SHA256 under a key derived
from the admin password: no server-side state, and a changed password voids
them all. They are valid for ``TOKEN_TTL`` seconds and checked once, when the
socket opens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson

from ..node import Node
from ..observe import OnlineSample
from ._http import HttpError, Request, Response

__all__ = ["LIVE_PATH", "REALM", "TOKEN_TTL", "admin_response", "authorized", "check_token", "is_admin_path",
           "issue_token", "stats", "token_of"]

ADMIN_STATIC = Path(__file__).parent / "static" / "admin"
TOP_CHANNELS = 20
REALM = 'Basic realm="CometQL admin", charset="UTF-8"'
LIVE_PATH = "/admin/live"
TOKEN_TTL = 60  # seconds to open the socket with a token: ample for a page, short if one leaks into a log
_TOKEN_VERSION = "v1"
_KEY_LABEL = b"cometql admin live token v1"
_EXPIRY = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
_FILES = {
    "/admin": ("index.html", "text/html; charset=utf-8"),
    "/admin/": ("index.html", "text/html; charset=utf-8"),
    "/admin/admin.js": ("admin.js", "application/javascript; charset=utf-8"),
    "/admin/admin.css": ("admin.css", "text/css; charset=utf-8"),
}


def is_admin_path(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


def authorized(request: Request, password: str) -> bool:
    """True if the request carries HTTP Basic credentials with this password (any user name)."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    _, sep, given = decoded.partition(":")
    return bool(sep) and hmac.compare_digest(given.encode(), password.encode())


# ------------------------------------------------------------------ live-socket tokens


def _sign(password: str, body: str) -> bytes:
    """HMAC of ``body`` under a key derived from the password (the password itself never signs)."""
    key = hmac.new(password.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest().encode("ascii")


def issue_token(password: str, now: float | None = None, ttl: int = TOKEN_TTL) -> str:
    """A token that opens ``/admin/live`` until ``now + ttl`` (unix seconds)."""
    expires = int(time.time() if now is None else now) + ttl
    body = f"{_TOKEN_VERSION}.{expires}.{os.urandom(8).hex()}"
    return f"{body}.{_sign(password, body).decode('ascii')}"


def check_token(password: str, token: str, now: float | None = None) -> str | None:
    """None if ``token`` is valid now; else why it is refused (the text of the socket's close frame)."""
    if not token:
        return "admin token missing"
    body, _, signature = token.rpartition(".")
    parts = body.split(".")
    if len(parts) != 3 or parts[0] != _TOKEN_VERSION or not _EXPIRY.fullmatch(parts[1]):
        return "admin token malformed"
    if not hmac.compare_digest(signature.encode("utf-8"), _sign(password, body)):
        return "admin token invalid"
    if int(parts[1]) < (time.time() if now is None else now):
        return "admin token expired"
    return None


def token_of(request: Request) -> str:
    """The ``token`` query parameter of a request ("" when absent)."""
    return parse_qs(request.query).get("token", [""])[0]


# ------------------------------------------------------------------------------ routes


def admin_response(node: Node, password: str, request: Request) -> Response:
    """An /admin route for a request whose password the front has checked (``WebFront._check_login``, which
    also limits guesses per address): the one gate, so the password is compared once per request."""
    if request.path == "/admin/stats":
        return Response(200, orjson.dumps(stats(node)))
    if request.path == "/admin/token":
        return Response(200, orjson.dumps({"token": issue_token(password), "expires_in": TOKEN_TTL,
                                           "url": LIVE_PATH}))
    if request.path == LIVE_PATH:
        raise HttpError(426, "this path expects a WebSocket upgrade")
    entry = _FILES.get(request.path)
    if entry is None:
        raise HttpError(404, "not found")
    name, ctype = entry
    return Response(200, (ADMIN_STATIC / name).read_bytes(), ctype)


def stats(node: Node) -> dict[str, Any]:
    """What the dashboard shows, as one JSON object (answered by /admin/stats, pushed by /admin/live)."""
    snapshot = node.statistics()
    dashboard = node.observer.dashboard()
    history = [*dashboard.online_history, OnlineSample(snapshot.time, snapshot.authorized_users, snapshot.sessions)]
    return {
        "time": snapshot.time,
        "uptime": snapshot.uptime,
        "online": {
            "users": snapshot.authorized_users,
            "sessions": snapshot.sessions,
            "transports": snapshot.sessions_by_transport,
            "mysql_connections": snapshot.mysql_connections,
        },
        "channels": [{"dev_id": dev, "channel": channel, "subscribers": count}
                     for dev, channel, count in node.hub.busiest_channels(TOP_CHANNELS)],
        "channel_count": snapshot.channels,
        "subscriptions": snapshot.subscriptions,
        "messages": {
            "published": snapshot.published,
            "delivered": snapshot.delivered,
            "queued": snapshot.queued,
            "queue_depth": snapshot.queued_messages,
            "published_per_second": round(dashboard.published_per_second, 2),
            "delivered_per_second": round(dashboard.delivered_per_second, 2),
        },
        "online_history": [{"time": s.time, "users": s.users, "sessions": s.sessions} for s in history],
        "errors": [{"time": e.time, "code": e.code, "message": e.message} for e in dashboard.recent_errors],
    }
