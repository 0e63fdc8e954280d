"""The SQLite schema, as numbered migrations. Append new ones; never edit one that shipped."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["MIGRATIONS", "database"]


def database(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite-utils over `conn`, for the migrations. It is imported only when one is pending,
    and without numpy: sqlite-utils imports numpy whenever it is installed (as it often is
    beside agent stacks) only to store numpy values, which the bot never has — 17 MB that a
    bot process need not carry."""
    blocked = "numpy" not in sys.modules
    if blocked:
        sys.modules["numpy"] = None  # type: ignore[assignment]  # "not installed", for now
    try:
        import sqlite_utils
    finally:
        if blocked and sys.modules.get("numpy", ...) is None:
            del sys.modules["numpy"]
    return sqlite_utils.Database(conn)


def _migration_1(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE approvals (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            tool_call_id TEXT NOT NULL UNIQUE,
            fingerprint TEXT NOT NULL,
            status TEXT NOT NULL,
            tool_name TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL,
            escalations INTEGER NOT NULL DEFAULT 0,
            slack_channel TEXT,
            slack_ts TEXT,
            slack_permalink TEXT,
            request TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX approvals_status ON approvals (status, seq)")
    db.execute("CREATE INDEX approvals_expiry ON approvals (expires_at) WHERE status = 'pending'")
    db.execute(
        """
        CREATE TABLE decisions (
            approval_id TEXT PRIMARY KEY REFERENCES approvals (id),
            approved INTEGER NOT NULL,
            action TEXT NOT NULL,
            approved_args TEXT,
            decided_by TEXT NOT NULL,
            decided_by_name TEXT,
            approvers TEXT NOT NULL,
            comment TEXT,
            decided_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            approval_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT,
            actor TEXT,
            at REAL NOT NULL,
            args_before TEXT,
            args_after TEXT,
            detail TEXT NOT NULL DEFAULT '{}',
            record TEXT
        )"""
    )
    db.execute("CREATE INDEX events_at ON events (at)")
    db.execute(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            topic TEXT NOT NULL,
            approval_id TEXT NOT NULL,
            event_id INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            due_at REAL NOT NULL,
            last_error TEXT
        )"""
    )
    db.execute("CREATE INDEX outbox_due ON outbox (topic, due_at)")
    # Append-only: the audit trail cannot be rewritten through SQL either.
    db.execute(
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    # Cards are found again by their message (thread replies) and runs share one thread.
    db.execute("CREATE INDEX approvals_card ON approvals (slack_channel, slack_ts)")
    db.execute(
        """
        CREATE TABLE run_threads (
            channel TEXT NOT NULL,
            run_id TEXT NOT NULL,
            ts TEXT NOT NULL,
            PRIMARY KEY (channel, run_id)
        )"""
    )


def _migration_3(db: sqlite_utils.Database) -> None:
    # N-of-M: approvals counted so far, on the arguments being approved now (after an edit).
    db.execute("ALTER TABLE approvals ADD COLUMN current_args TEXT")
    db.execute("ALTER TABLE approvals ADD COLUMN edited_by TEXT")
    db.execute(
        """
        CREATE TABLE votes (
            approval_id TEXT NOT NULL REFERENCES approvals (id),
            user TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (approval_id, user)
        )"""
    )
    # Copies of a card posted elsewhere (escalation), rewritten with the original.
    db.execute(
        """
        CREATE TABLE card_copies (
            approval_id TEXT NOT NULL REFERENCES approvals (id),
            channel TEXT NOT NULL,
            ts TEXT NOT NULL,
            PRIMARY KEY (approval_id, channel)
        )"""
    )


def _migration_4(db: sqlite_utils.Database) -> None:
    # When the arguments were last edited: a vote typed in the thread before then is stale.
    db.execute("ALTER TABLE approvals ADD COLUMN edited_at REAL")


def _migration_5(db: sqlite_utils.Database) -> None:
    # One row `/healthz` rewrites: a store that can read but not write is not healthy.
    db.execute("CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at REAL)")
    db.execute("INSERT INTO health VALUES (1, NULL)")


def _migration_6(db: sqlite_utils.Database) -> None:
    # Why Slack refused a card for good, and where a post went before its ts was known (so a
    # retry looks for it there before posting again).
    db.execute("ALTER TABLE approvals ADD COLUMN slack_error TEXT")
    db.execute("ALTER TABLE approvals ADD COLUMN slack_posting TEXT")


def _migration_7(db: sqlite_utils.Database) -> None:
    # Slack events acted on (by event id), so a redelivery is not acted on again after a
    # restart; rows older than a day are pruned as new ones come.
    db.execute("CREATE TABLE slack_deliveries (id TEXT PRIMARY KEY, seen_at REAL NOT NULL)")
    db.execute("CREATE INDEX slack_deliveries_seen ON slack_deliveries (seen_at)")


def _migration_8(db: sqlite_utils.Database) -> None:
    # Standing approvals (`bot.grants`): what each approver proposed with "Approve & allow…"
    # while the approval waits for its votes, and the grants its decision made. Revocation
    # and expiry are read here at each match, so they apply at once.
    db.execute(
        """
        CREATE TABLE grant_proposals (
            approval_id TEXT NOT NULL REFERENCES approvals (id),
            user TEXT NOT NULL,
            name TEXT,
            seconds INTEGER NOT NULL,
            keys TEXT NOT NULL,
            version TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (approval_id, user)
        )"""
    )
    db.execute(
        """
        CREATE TABLE grants (
            id TEXT PRIMARY KEY,
            approval_id TEXT NOT NULL UNIQUE REFERENCES approvals (id),
            tool_name TEXT NOT NULL,
            agent TEXT NOT NULL,
            channel TEXT NOT NULL,
            rule TEXT NOT NULL,
            keys TEXT NOT NULL,
            kept TEXT NOT NULL,
            seconds INTEGER NOT NULL,
            granted_by TEXT NOT NULL,
            names TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            revoked_by TEXT,
            revoked_at REAL,
            uses INTEGER NOT NULL DEFAULT 0,
            used_at REAL
        )"""
    )
    db.execute(
        "CREATE INDEX grants_match ON grants (tool_name, agent, expires_at)"
        " WHERE revoked_at IS NULL"
    )


def _migration_9(db: sqlite_utils.Database) -> None:
    # Batches (`bot.batches`): the batch key of each approval (its batchId, else its runId),
    # filled in for the approvals pending at the upgrade; the summary message posted in each
    # batch's thread; and the drawings whose buttons decide a batch ("Approve all N").
    db.execute("ALTER TABLE approvals ADD COLUMN batch_key TEXT")
    db.execute(
        "UPDATE approvals SET batch_key = nullif(coalesce(json_extract(request, '$.batchId'),"
        " json_extract(request, '$.requester.runId')), '') WHERE status = 'pending'"
    )
    db.execute(
        "CREATE INDEX approvals_batch ON approvals (batch_key, seq) WHERE batch_key IS NOT NULL"
    )
    db.execute(
        """
        CREATE TABLE batch_summaries (
            channel TEXT NOT NULL,
            batch_key TEXT NOT NULL,
            summary_channel TEXT NOT NULL,
            ts TEXT NOT NULL,
            PRIMARY KEY (channel, batch_key)
        )"""
    )
    db.execute(
        """
        CREATE TABLE batch_views (
            id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            batch_key TEXT NOT NULL,
            items TEXT NOT NULL,
            drawn_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX batch_views_drawn ON batch_views (drawn_at)")


#: Numbered migrations; `migrations` records which ran. Append, never edit.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
    _migration_8,
    _migration_9,
]
