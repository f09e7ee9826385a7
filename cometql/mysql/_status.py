"""SHOW [SESSION | GLOBAL] STATUS: CppComet's rows, formatted from one statistics snapshot.

The MySQL session answers these itself: the rows are about the server and
its connections, which the statement layer (``cometql.sql``) knows nothing of.
"""

from __future__ import annotations

import sys

from .._version import SERVER_VERSION
from ..observe import Statistics

__all__ = ["global_status", "session_status"]

Rows = list[tuple[str, str | int]]


def session_status(dev_id: int, browser_sessions: int, mysql_connections: int, statements: int) -> Rows:
    """``SHOW STATUS``: the login's dev_id, its browser sessions and CometQL connections."""
    return [
        ("flag", "session"),
        ("id", dev_id),
        ("user_online", browser_sessions),
        ("server_online", mysql_connections),
        ("messages", statements),
    ]


def global_status(stats: Statistics) -> Rows:
    """``SHOW GLOBAL STATUS``: CppComet's names (its per-second rates, from totals over the uptime)."""
    uptime = stats.uptime
    statements = stats.mysql_statements

    def per_second(total: int) -> str:
        return f"{total / uptime if uptime else 0:.2f}"

    return [
        ("flag", "global"),
        ("uptime", int(uptime)),
        ("uptime_in_hours", f"{uptime / 3600:.2f}"),
        ("uptime_in_days", f"{uptime / 86400:.2f}"),
        ("frontend_name", "ws"),
        ("backend_name", "cometql"),
        ("frontend_stat_interval", 0),
        ("backend_stat_interval", 0),
        ("frontend_online", stats.sessions),
        ("backend_online", stats.mysql_connections),
        ("frontend_messages", stats.delivered),
        ("backend_messages", statements),
        ("frontend_add_client", 0),
        ("backend_add_client", stats.mysql_opened),
        ("frontend_delete_client", 0),
        ("backend_delete_client", stats.mysql_closed),
        ("frontend_messages_ps", f"{0:.2f}"),
        ("backend_messages_ps", per_second(statements)),
        ("frontend_add_client_ps", f"{0:.2f}"),
        ("backend_add_client_ps", per_second(stats.mysql_opened)),
        ("frontend_delete_client_ps", f"{0:.2f}"),
        ("backend_delete_client_ps", per_second(stats.mysql_closed)),
        ("network_events", statements + stats.delivered),
        ("messages_published", stats.published),
        ("messages_queued", stats.queued),
        ("queue_depth", stats.queued_messages),  # personal messages stored, not yet delivered / acknowledged
        # browser sessions on every node of a cluster (= frontend_online without a cluster)
        ("cluster_frontend_online", stats.cluster_sessions),
        ("cluster_nodes", stats.cluster_nodes),
        ("server_version", SERVER_VERSION),
        ("python", sys.version.split()[0]),
    ]
