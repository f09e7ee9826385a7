"""Durable state behind one small interface: SQLite by default, Redis (``store.redis``) for a cluster."""

from ._base import MemoryStore, SharedStore, Store
from .sqlite import SQLiteStore, open_sqlite_store

__all__ = ["MemoryStore", "SQLiteStore", "SharedStore", "Store", "open_sqlite_store"]
