"""Storage. The service sees `Store`; `open_store(APPROVAL_DB)` picks the engine.

base.py           the Store protocol and its records (Event, OutboxItem, Page)
rows.py           what both engines write and read back, without SQL (rows → records, events)
sqlite.py         SQLite in WAL mode behind one writer thread: one bot process per file
migrations.py     the SQLite schema, as numbered migrations
postgres.py       PostgreSQL through a connection pool: any number of replicas on one database
pg_migrations.py  the PostgreSQL schema, as numbered migrations
sqlite_grants.py  standing approvals' statements, per engine (run in the engines' transactions)
pg_grants.py
sqlite_batches.py batches' statements, per engine: a batch's approvals, summaries, drawings
pg_batches.py
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

from bot.store.base import Event, OutboxItem, Page, Store
from bot.store.rows import PolicyOutcome
from bot.store.sqlite import SQLiteStore

__all__ = [
    "Event",
    "OutboxItem",
    "Page",
    "PolicyOutcome",
    "SQLiteStore",
    "Store",
    "is_postgres_url",
    "open_store",
]


def is_postgres_url(location: str | Path) -> bool:
    """True for `postgresql://…` and `postgres://…`; anything else is a SQLite file path."""
    return urlparse(str(location)).scheme in ("postgresql", "postgres")


def open_store(
    location: str | Path,
    *,
    outbox_topics: Iterable[str] = (),
    update_topics: Iterable[str] = (),
) -> Store:
    """The store `APPROVAL_DB` names: a PostgreSQL URL, else a SQLite file. Call `open()` next."""
    if is_postgres_url(location):
        from bot.store.postgres import PostgresStore  # psycopg is imported only when used

        return PostgresStore(
            str(location), outbox_topics=outbox_topics, update_topics=update_topics
        )
    return SQLiteStore(location, outbox_topics=outbox_topics, update_topics=update_topics)
