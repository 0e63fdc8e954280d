"""The PostgreSQL statements of standing approvals (`bot.grants`), run by `PostgresStore` inside
its own transactions: the match in the insert's, the proposal and the grant in the vote's.

Replicas share one table, read at every match: a grant revoked or expired on one replica is
never used by another. A use counts itself with a compare-and-set on the grant's row, which
waits for a revocation being committed and then sees it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Json

from bot.errors import NotFound
from bot.grants import Grant, Proposal, may_stand
from bot.models import Approval
from bot.store.rows import GRANT_COLUMNS, Rows

__all__ = ["active", "create", "matching", "one", "proposals", "propose", "revoke"]

Connection = psycopg.AsyncConnection[TupleRow]

_SELECT = f"SELECT {GRANT_COLUMNS} FROM grants"  # noqa: S608 (constant column names)


async def matching(conn: Connection, approval: Approval, rows: Rows) -> Grant | None:
    """The oldest active grant that covers `approval` (at its creation time), counted as used;
    None when none does. Runs in the insert's transaction."""
    if not may_stand(approval):
        return None
    now = approval.created_at
    cursor = await conn.execute(
        f"{_SELECT} WHERE tool_name = %s AND agent = %s AND revoked_at IS NULL"
        " AND expires_at > %s ORDER BY created_at, id",
        (approval.tool_name, approval.requester.agent, now),
    )
    for row in await cursor.fetchall():
        grant = rows.grant(row)
        if not grant.covers(approval):
            continue
        # Still standing once any revocation in flight commits (the row lock waits for it).
        used = await conn.execute(
            "UPDATE grants SET uses = uses + 1, used_at = %s"
            " WHERE id = %s AND revoked_at IS NULL AND expires_at > %s RETURNING uses",
            (datetime.now(UTC), grant.id, now),
        )
        counted = await used.fetchone()
        if counted is not None:
            return replace(grant, uses=int(counted[0]))
    return None


async def propose(conn: Connection, approval_id: str, proposal: Proposal) -> None:
    """Keep an approver's "Approve & allow…" (their latest one) until the approval is decided."""
    await conn.execute(
        'INSERT INTO grant_proposals (approval_id, "user", name, seconds, keys, version, at)'
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        ' ON CONFLICT (approval_id, "user") DO UPDATE SET name = excluded.name,'
        " seconds = excluded.seconds, keys = excluded.keys, version = excluded.version,"
        " at = excluded.at",
        (
            approval_id,
            proposal.user,
            proposal.name,
            proposal.terms.seconds,
            Json(list(proposal.terms.keys)),
            proposal.version,
            datetime.now(UTC),
        ),
    )


async def proposals(conn: Connection, approval_id: str, rows: Rows) -> list[Proposal]:
    """Every approver's proposal on the approval."""
    cursor = await conn.execute(
        'SELECT "user", name, seconds, keys, version FROM grant_proposals'
        " WHERE approval_id = %s ORDER BY at",
        (approval_id,),
    )
    return [rows.proposal(row) for row in await cursor.fetchall()]


async def create(conn: Connection, grant: Grant) -> None:
    """Store a grant its approval's decision made."""
    await conn.execute(
        f"INSERT INTO grants ({GRANT_COLUMNS}) VALUES"  # noqa: S608 (constant column names)
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            grant.id,
            grant.approval_id,
            grant.tool_name,
            grant.agent,
            grant.channel,
            grant.rule,
            Json(list(grant.keys)),
            Json(grant.values),
            grant.seconds,
            Json(list(grant.granted_by)),
            Json(grant.names),
            grant.created_at,
            grant.expires_at,
            None,
            None,
            0,
        ),
    )


async def one(conn: Connection, grant_id: str, rows: Rows) -> Grant:
    """The grant, or `NotFound`."""
    row = await (await conn.execute(f"{_SELECT} WHERE id = %s", (grant_id,))).fetchone()
    if row is None:
        raise NotFound(f"no standing approval with id {grant_id!r}")
    return rows.grant(row)


async def active(
    conn: Connection, now: datetime, approval_id: str | None, limit: int, rows: Rows
) -> list[Grant]:
    """Grants neither revoked nor expired at `now`, soonest to expire first."""
    cursor = await conn.execute(
        f"{_SELECT} WHERE revoked_at IS NULL AND expires_at > %s"
        " AND (%s::text IS NULL OR approval_id = %s) ORDER BY expires_at, id LIMIT %s",
        (now, approval_id, approval_id, limit),
    )
    return [rows.grant(row) for row in await cursor.fetchall()]


async def revoke(conn: Connection, grant_id: str, user: str, now: datetime) -> bool:
    """Revoke a grant that still stands; False when it was revoked or expired already."""
    cursor = await conn.execute(
        "UPDATE grants SET revoked_by = %s, revoked_at = %s"
        " WHERE id = %s AND revoked_at IS NULL AND expires_at > %s RETURNING id",
        (user, now, grant_id, now),
    )
    return await cursor.fetchone() is not None
