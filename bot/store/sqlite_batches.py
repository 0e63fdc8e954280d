"""The SQLite statements of batches (`bot.batches`), run by `SQLiteStore` on its threads: a
batch's approvals (by `approvals.batch_key`), the summary message posted for it, and the
drawings its buttons name."""

from __future__ import annotations

import json
import sqlite3

from bot.batches import BatchView
from bot.errors import NotFound
from bot.models import Approval
from bot.store.rows import Rows

__all__ = ["members", "save_view", "set_summary", "summary", "view"]


def members(
    conn: sqlite3.Connection, select: str, channel: str, key: str, limit: int, rows: Rows
) -> list[Approval]:
    """The approvals with batch key `key` routed to `channel`, the oldest first (`select` is
    the engine's approval `SELECT`)."""
    found = conn.execute(
        f"{select} WHERE a.batch_key = ? AND json_extract(a.request, '$.channel') = ?"
        " ORDER BY a.seq LIMIT ?",
        (key, channel, limit),
    ).fetchall()
    return [rows.approval(row) for row in found]


def summary(conn: sqlite3.Connection, channel: str, key: str) -> tuple[str, str] | None:
    """Where the batch's summary message is, once posted: (channel, ts)."""
    row = conn.execute(
        "SELECT summary_channel, ts FROM batch_summaries WHERE channel = ? AND batch_key = ?",
        (channel, key),
    ).fetchone()
    return (str(row[0]), str(row[1])) if row else None


def set_summary(
    conn: sqlite3.Connection, channel: str, key: str, summary_channel: str, ts: str
) -> tuple[str, str]:
    """Remember the batch's summary message; the first one remembered stays (returned)."""
    conn.execute(
        "INSERT OR IGNORE INTO batch_summaries (channel, batch_key, summary_channel, ts)"
        " VALUES (?, ?, ?, ?)",
        (channel, key, summary_channel, ts),
    )
    kept = summary(conn, channel, key)
    assert kept is not None
    return kept


def save_view(conn: sqlite3.Connection, view: BatchView, now: float, kept: float) -> None:
    """Keep a drawing (drawn again: its time is renewed); forget those older than `kept`."""
    conn.execute("DELETE FROM batch_views WHERE drawn_at < ?", (now - kept,))
    conn.execute(
        "INSERT INTO batch_views (id, channel, batch_key, items, drawn_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET drawn_at = excluded.drawn_at",
        (
            view.id,
            view.ref.channel,
            view.ref.key,
            json.dumps(view.stored_items(), separators=(",", ":")),
            now,
        ),
    )


def view(conn: sqlite3.Connection, view_id: str) -> BatchView:
    """A drawing by id, or `NotFound`."""
    row = conn.execute(
        "SELECT channel, batch_key, items FROM batch_views WHERE id = ?", (view_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no batch summary {view_id!r}: it is older than the bot keeps them")
    return BatchView.from_json(view_id, row[0], row[1], row[2])
