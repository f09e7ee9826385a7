"""Durable state behind one small interface: records <-> SQLite (the default) or Redis keys.

``Store`` is what the engine holds; ``MemoryStore`` and ``SQLiteStore`` serve a
single node. With Redis, the store the engine holds is the cluster's bus writer
(``cometql.cluster``), which uses ``store.redis`` for the record keys,
``store.resp`` for the connection and ``store.codec`` for the wire format.
``stats`` / ``stats_redis`` keep ``stats_history``'s samples (not records: see there).
This package imports only ``hub``, ``errors`` and ``redisurl`` of CometQL.
"""

from ._base import MemoryStore, QueueSize, Settle, Store, no_settle, records_only
from .sqlite import SQLiteStore, open_sqlite_store
from .stats import MemoryStats, SQLiteStats, StatsStore, open_sqlite_stats
from .stats_redis import RedisStats, open_redis_stats

__all__ = ["MemoryStats", "MemoryStore", "QueueSize", "RedisStats", "SQLiteStats", "SQLiteStore", "Settle",
           "StatsStore", "Store", "no_settle", "open_redis_stats", "open_sqlite_stats", "open_sqlite_store",
           "records_only"]
