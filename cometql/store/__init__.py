"""Durable state behind one small interface: records <-> SQLite (the default) or Redis keys.

``Store`` is what the engine holds; ``MemoryStore`` and ``SQLiteStore`` serve a
single node. With Redis, the store the engine holds is the cluster's bus writer
(``cometql.cluster``), which uses ``store.redis`` for the record keys,
``store.resp`` for the connection and ``store.codec`` for the wire format.
This package imports only ``hub``, ``errors`` and ``redisurl`` of CometQL.
"""

from ._base import MemoryStore, QueueSize, Settle, Store, no_settle, records_only
from .sqlite import SQLiteStore, open_sqlite_store

__all__ = ["MemoryStore", "QueueSize", "SQLiteStore", "Settle", "Store", "no_settle", "open_sqlite_store",
           "records_only"]
