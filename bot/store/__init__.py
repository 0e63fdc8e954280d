"""Storage. The service sees `Store`; `SQLiteStore` is the embedded engine.

base.py        the Store protocol and its records (Event, OutboxItem, Page)
sqlite.py      SQLite in WAL mode behind one writer thread
migrations.py  the SQLite schema, as numbered migrations
"""

from bot.store.base import Event, OutboxItem, Page, Store
from bot.store.sqlite import SQLiteStore

__all__ = ["Event", "OutboxItem", "Page", "SQLiteStore", "Store"]
