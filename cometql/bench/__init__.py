"""``cometql bench``: load scenarios against a CometQL server (idle, fanout, latency, connect, insert, heavy, ack,
room; when named: scale, storm, soak).

``add_parser(subparsers)`` registers the subcommand on ``cometql``'s parser;
``python -m cometql.bench`` runs it on its own. The load clients are separate
processes (raw asyncio WebSocket sessions, a raw MySQL-protocol client), so the
figures measure the server rather than the benchmark.

``cometql serve`` imports this package for ``add_parser``, so only the command
line (``_cli``) is imported here; the scenarios, the server handle and the
results are imported on first use of their names (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._cli import add_parser, main, run

if TYPE_CHECKING:
    from ._ack import ack
    from ._context import Context
    from ._delivery import fanout, latency
    from ._heavy import heavy
    from ._insert import insert
    from ._results import Figure, Result, Target
    from ._room import room
    from ._server import Server, start_server
    from ._sessions import connect, idle

__all__ = ["Context", "Figure", "Result", "Server", "Target", "ack", "add_parser", "connect", "fanout", "heavy",
           "idle", "insert", "latency", "main", "room", "run", "start_server"]

_LAZY = {
    "ack": "_ack", "Context": "_context", "fanout": "_delivery", "latency": "_delivery", "insert": "_insert",
    "heavy": "_heavy", "room": "_room",
    "Figure": "_results", "Result": "_results", "Target": "_results", "Server": "_server",
    "start_server": "_server", "connect": "_sessions", "idle": "_sessions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
