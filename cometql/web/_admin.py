"""The admin dashboard: ``/admin`` (page, script, style) and ``/admin/stats`` (JSON), behind HTTP Basic.

Everything the page needs is served from ``static/admin/`` (no CDN: an
operator's network may have no way out). The page polls ``/admin/stats``
every 2 s; the numbers come from the hub, the fronts and ``Metrics``'
in-memory history. Any user name is accepted; the password is ``[admin] password``
(``COMETQL_ADMIN_PASSWORD``) if set, else the CometQL password, compared in
constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ._http import HttpError, Request, Response

if TYPE_CHECKING:
    from ._server import WebFront

__all__ = ["admin_response", "authorized", "is_admin_path", "stats"]

ADMIN_STATIC = Path(__file__).parent / "static" / "admin"
TOP_CHANNELS = 20
REALM = 'Basic realm="CometQL admin", charset="UTF-8"'
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


def admin_response(front: WebFront, request: Request) -> Response:
    if not authorized(request, front.config.effective_admin_password):
        return Response(401, b'{"error":"authentication required"}', headers=[("WWW-Authenticate", REALM)])
    if request.path == "/admin/stats":
        return Response(200, orjson.dumps(stats(front)))
    entry = _FILES.get(request.path)
    if entry is None:
        raise HttpError(404, "not found")
    name, ctype = entry
    return Response(200, (ADMIN_STATIC / name).read_bytes(), ctype)


def stats(front: WebFront) -> dict[str, Any]:
    """What the dashboard shows, as one JSON object."""
    metrics = front.metrics
    assert metrics is not None
    engine = front.engine
    hub = engine.hub
    hub_stats = hub.statistics()
    mysql = metrics.mysql
    published_ps, delivered_ps = metrics.rates()
    now = metrics.online_now()
    history = [*metrics.online_history, now]
    return {
        "time": now.time,
        "uptime": max(0.0, engine.clock() - engine.started),
        "online": {
            "users": hub_stats.authorized_users,
            "sessions": hub_stats.sessions,
            "transports": hub.sessions_by_transport(),
            "mysql_connections": sum(mysql.online_by_dev.values()) if mysql is not None else 0,
        },
        "channels": [{"dev_id": dev, "channel": channel, "subscribers": count}
                     for dev, channel, count in hub.busiest_channels(TOP_CHANNELS)],
        "channel_count": hub_stats.channels,
        "subscriptions": hub_stats.subscriptions,
        "messages": {
            "published": hub_stats.published,
            "delivered": engine.delivered,
            "queued": hub_stats.queued,
            "queue_depth": hub_stats.queued_messages,
            "published_per_second": round(published_ps, 2),
            "delivered_per_second": round(delivered_ps, 2),
        },
        "online_history": [{"time": s.time, "users": s.users, "sessions": s.sessions} for s in history],
        "errors": [{"time": e.time, "code": e.code, "message": e.message} for e in reversed(metrics.recent_errors)],
    }
