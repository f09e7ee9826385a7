"""Durable state behind one small interface (SQLite by default)."""

from ._base import MemoryStore, Store
from .sqlite import SQLiteStore, open_sqlite_store

__all__ = ["MemoryStore", "SQLiteStore", "Store", "open_sqlite_store"]
