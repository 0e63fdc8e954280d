"""The SQLite statements of standing approvals (`bot.grants`), run by `SQLiteStore` inside its
own transactions: the match in the insert's, the proposal and the grant in the vote's."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.errors import NotFound
from bot.grants import Grant, Proposal, may_stand
from bot.models import Approval
from bot.store.rows import GRANT_COLUMNS, Rows

__all__ = ["active", "create", "matching", "one", "proposals", "propose", "revoke"]

_SELECT = f"SELECT {GRANT_COLUMNS} FROM grants"  # noqa: S608 (constant column names)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def matching(conn: sqlite3.Connection, approval: Approval, rows: Rows) -> Grant | None:
    """The oldest active grant that covers `approval` (at its creation time), counted as used;
    None when none does. Runs in the insert's transaction, behind the one writer."""
    if not may_stand(approval):
        return None
    candidates = conn.execute(
        f"{_SELECT} WHERE tool_name = ? AND agent = ? AND revoked_at IS NULL AND expires_at > ?"
        " ORDER BY created_at, id",
        (approval.tool_name, approval.requester.agent, approval.created_at.timestamp()),
    ).fetchall()
    for row in candidates:
        grant = rows.grant(row)
        if grant.covers(approval):
            conn.execute(
                "UPDATE grants SET uses = uses + 1, used_at = ? WHERE id = ?",
                (time.time(), grant.id),
            )
            return replace(grant, uses=grant.uses + 1)
    return None


def propose(conn: sqlite3.Connection, approval_id: str, proposal: Proposal) -> None:
    """Keep an approver's "Approve & allow…" (their latest one) until the approval is decided."""
    conn.execute(
        "INSERT OR REPLACE INTO grant_proposals (approval_id, user, name, seconds, keys,"
        " version, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            approval_id,
            proposal.user,
            proposal.name,
            proposal.terms.seconds,
            _json(list(proposal.terms.keys)),
            proposal.version,
            time.time(),
        ),
    )


def proposals(conn: sqlite3.Connection, approval_id: str, rows: Rows) -> list[Proposal]:
    """Every approver's proposal on the approval."""
    cursor = conn.execute(
        "SELECT user, name, seconds, keys, version FROM grant_proposals WHERE approval_id = ?"
        " ORDER BY at",
        (approval_id,),
    )
    return [rows.proposal(row) for row in cursor]


def create(conn: sqlite3.Connection, grant: Grant) -> None:
    """Store a grant its approval's decision made."""
    assert grant.created_at is not None and grant.expires_at is not None
    conn.execute(
        f"INSERT INTO grants ({GRANT_COLUMNS}) VALUES"  # noqa: S608 (constant column names)
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            grant.id,
            grant.approval_id,
            grant.tool_name,
            grant.agent,
            grant.channel,
            grant.rule,
            _json(list(grant.keys)),
            _json(grant.values),
            grant.seconds,
            _json(list(grant.granted_by)),
            _json(grant.names),
            grant.created_at.timestamp(),
            grant.expires_at.timestamp(),
            None,
            None,
            0,
        ),
    )


def one(conn: sqlite3.Connection, grant_id: str, rows: Rows) -> Grant:
    """The grant, or `NotFound`."""
    row = conn.execute(f"{_SELECT} WHERE id = ?", (grant_id,)).fetchone()
    if row is None:
        raise NotFound(f"no standing approval with id {grant_id!r}")
    return rows.grant(row)


def active(
    conn: sqlite3.Connection, now: datetime, approval_id: str | None, limit: int, rows: Rows
) -> list[Grant]:
    """Grants neither revoked nor expired at `now`, soonest to expire first."""
    where = ""
    params: list[float | str] = [now.timestamp()]
    if approval_id is not None:
        where = " AND approval_id = ?"
        params.append(approval_id)
    cursor = conn.execute(
        f"{_SELECT} WHERE revoked_at IS NULL AND expires_at > ?{where}"
        " ORDER BY expires_at, id LIMIT ?",
        (*params, limit),
    )
    return [rows.grant(row) for row in cursor]


def revoke(conn: sqlite3.Connection, grant_id: str, user: str, now: datetime) -> bool:
    """Revoke a grant that still stands; False when it was revoked or expired already."""
    changed = conn.execute(
        "UPDATE grants SET revoked_by = ?, revoked_at = ?"
        " WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
        (user, now.timestamp(), grant_id, now.timestamp()),
    ).rowcount
    return changed == 1
