"""``cometql bench``: load scenarios against a CometQL server (idle, fanout, latency, connect, insert).

``add_parser(subparsers)`` registers the subcommand on ``cometql``'s parser;
``python -m cometql.bench`` runs it on its own. The load clients are separate
processes (raw asyncio WebSocket sessions, a raw MySQL-protocol client), so the
figures measure the server rather than the benchmark.
"""

from __future__ import annotations

from ._cli import add_parser, main, run
from ._results import Figure, Result, Target
from ._scenarios import Context, connect, fanout, idle, insert, latency
from ._server import Server, start_server

__all__ = ["Context", "Figure", "Result", "Server", "Target", "add_parser", "connect", "fanout", "idle", "insert",
           "latency", "main", "run", "start_server"]
