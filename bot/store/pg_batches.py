"""The PostgreSQL statements of batches (`bot.batches`), run by `PostgresStore`: a batch's
approvals (by `approvals.batch_key`), the summary message posted for it, and the drawings its
buttons name. Replicas share all three: a summary is posted once (the first one remembered
stays), and a drawing made on one replica is clicked on any."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Json

from bot.batches import BatchView
from bot.errors import NotFound
from bot.models import Approval
from bot.store.rows import Rows

__all__ = ["members", "save_view", "set_summary", "summary", "view"]

Connection = psycopg.AsyncConnection[TupleRow]


async def members(
    conn: Connection, select: str, channel: str, key: str, limit: int, rows: Rows
) -> list[Approval]:
    """The approvals with batch key `key` routed to `channel`, the oldest first (`select` is
    the engine's approval `SELECT`)."""
    cursor = await conn.execute(
        f"{select} WHERE a.batch_key = %s AND a.request->>'channel' = %s ORDER BY a.seq LIMIT %s",
        (key, channel, limit),
    )
    return [rows.approval(row) for row in await cursor.fetchall()]


async def summary(conn: Connection, channel: str, key: str) -> tuple[str, str] | None:
    """Where the batch's summary message is, once posted: (channel, ts)."""
    cursor = await conn.execute(
        "SELECT summary_channel, ts FROM batch_summaries WHERE channel = %s AND batch_key = %s",
        (channel, key),
    )
    row = await cursor.fetchone()
    return (str(row[0]), str(row[1])) if row else None


async def set_summary(
    conn: Connection, channel: str, key: str, summary_channel: str, ts: str
) -> tuple[str, str]:
    """Remember the batch's summary message; the first one remembered stays (returned)."""
    await conn.execute(
        "INSERT INTO batch_summaries (channel, batch_key, summary_channel, ts)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (channel, key, summary_channel, ts),
    )
    kept = await summary(conn, channel, key)
    assert kept is not None
    return kept


async def save_view(conn: Connection, view: BatchView, now: datetime, kept: float) -> None:
    """Keep a drawing (drawn again: its time is renewed); forget those older than `kept`."""
    await conn.execute(
        "DELETE FROM batch_views WHERE drawn_at < %s", (now - timedelta(seconds=kept),)
    )
    await conn.execute(
        "INSERT INTO batch_views (id, channel, batch_key, items, drawn_at)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET drawn_at = excluded.drawn_at",
        (view.id, view.ref.channel, view.ref.key, Json(view.stored_items()), now),
    )


async def view(conn: Connection, view_id: str) -> BatchView:
    """A drawing by id, or `NotFound`."""
    cursor = await conn.execute(
        "SELECT channel, batch_key, items FROM batch_views WHERE id = %s", (view_id,)
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"no batch summary {view_id!r}: it is older than the bot keeps them")
    return BatchView.from_json(view_id, row[0], row[1], row[2])
