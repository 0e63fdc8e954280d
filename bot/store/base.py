"""What the service needs from storage, engine-agnostic: the `Store` protocol and the plain
records it hands out (audit events, outbox items, pages)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import BadRequest
from bot.models import Approval, Decision, SlackRef, Status

if TYPE_CHECKING:
    from bot.batches import BatchView
    from bot.grants import Grant, Proposal
    from bot.store.rows import PolicyOutcome

__all__ = ["DELIVERIES_KEPT", "LAST_ID", "Event", "OutboxItem", "Page", "Store", "read_cursor"]

#: seconds a Slack event id is remembered: Slack redelivers for minutes, not days
DELIVERIES_KEPT = 86_400.0
#: the largest id either store gives a row (SQLite's rowid, PostgreSQL's bigint)
LAST_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Event:
    """One row of the audit trail."""

    id: int
    approval_id: str
    kind: str
    status: Status | None
    actor: str | None
    at: datetime
    args_before: dict[str, Any] | None
    args_after: dict[str, Any] | None
    detail: dict[str, Any]
    record: dict[str, Any] | None

    @property
    def name(self) -> str:
        """What happened, as SSE and webhooks name it: the new status, else the kind."""
        return self.status.value if self.status else self.kind

    def to_wire(self) -> dict[str, Any]:
        """The audit row as JSON (CLI `audit`)."""
        return {
            "id": self.id,
            "approvalId": self.approval_id,
            "kind": self.kind,
            "status": self.status.value if self.status else None,
            "actor": self.actor,
            "at": self.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "argsBefore": self.args_before,
            "argsAfter": self.args_after,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A unit of durable work: deliver `event_id` (or act on `approval_id`) to `topic`."""

    id: int
    topic: str
    approval_id: str
    event_id: int
    attempts: int
    #: the event's kind and new status (None: not a state change), so a worker that acts on
    #: them need not read the event
    kind: str
    status: Status | None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, newest first."""

    items: list[Approval]
    next: str | None


def read_cursor(cursor: str) -> int:
    """The listing position in a `next` cursor; `BadRequest` for anything this API never sent."""
    # ASCII digits only ("²".isdigit() is true) and within a signed 64-bit integer.
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        raise BadRequest(f"cursor {cursor[:40]!r} is not one this API returned")
    return int(cursor)


class Store(Protocol):
    """What the service needs from storage: SQLite (one process) or PostgreSQL (replicas).

    `watch` reports approvals changed by other processes; `on_reconnect` is called when such
    reports may have been missed. `extend` applies once per approval; `outbox_claim` and `due`
    hand each item to one worker at a time, whichever process asks.
    """

    outbox_topics: tuple[str, ...]
    update_topics: tuple[str, ...]

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def insert(
        self, approval: Approval, fingerprint: str, policy: PolicyOutcome | None = None
    ) -> tuple[Approval, bool]: ...
    async def get(self, approval_id: str) -> Approval: ...
    async def find(
        self, *, status: Status | None, tool_name: str | None, limit: int, cursor: str | None
    ) -> Page: ...
    async def decide(
        self,
        approval_id: str,
        status: Status,
        decision: Decision,
        check: Callable[[Approval], object] | None = None,
    ) -> tuple[Approval, int]:
        """Compare-and-set from pending: the first decision wins, later ones get AlreadyDecided.
        `check`: the service's check of the person deciding, run on the record in this
        transaction before anything is written (it raises to refuse)."""
        ...

    async def vote(
        self,
        approval_id: str,
        user: str,
        args: dict[str, Any] | None,
        decide: Callable[[Approval], Decision],
        check: Callable[[Approval], Proposal | None],
    ) -> tuple[Approval, bool]:
        """Count `user`'s approval of `args` (None: the current ones); decide once the policy's
        `required_approvals` approved the same arguments.

        `check` is the service's check of the voter, run on the record in the vote's
        transaction before anything is written: it raises to refuse the vote, and returns
        the standing approval the voter proposes, if any (the decision makes the grant when
        every approver counted proposed one: `bot.grants.settle`). Approving other arguments
        than the current ones is an edit: it restarts the count with `user` as the first
        approver. `decide` builds the final decision from the record.
        """
        ...

    async def grant(self, grant_id: str) -> Grant: ...
    async def grants(
        self, now: datetime, *, approval_id: str | None = None, limit: int = 100
    ) -> list[Grant]: ...
    async def revoke_grant(self, grant_id: str, user: str, now: datetime) -> Grant: ...
    async def card_copies(self, approval_id: str) -> list[tuple[str, str]]: ...
    async def add_card_copy(self, approval_id: str, channel: str, ts: str) -> None: ...
    async def extend(self, approval_id: str, expires_at: datetime, actor: str) -> Approval: ...
    async def record(
        self, approval_id: str, kind: str, actor: str | None, detail: dict[str, Any]
    ) -> int: ...
    async def set_slack_ref(self, approval_id: str, ref: SlackRef) -> Approval: ...
    async def set_slack_error(
        self, approval_id: str, error: str | None, actor: str
    ) -> Approval: ...
    async def set_slack_posting(self, approval_id: str, channel: str | None) -> None: ...
    async def events_since(
        self, after: int, limit: int = 500, *, states_only: bool = False
    ) -> list[Event]: ...
    async def events_between(
        self, since: datetime, until: datetime | None = None
    ) -> list[Event]: ...
    async def due(self, now: datetime) -> list[Approval]: ...
    async def next_expiry(self) -> datetime | None: ...
    async def check_writable(self, timeout: float) -> None: ...
    async def outbox_claim(
        self,
        topic: str,
        now: datetime,
        limit: int,
        after: int = 0,
        held: Collection[int] = (),
        upto: int = LAST_ID,
    ) -> list[OutboxItem]: ...
    async def outbox_done(self, item_id: int) -> None: ...
    async def outbox_retry(self, item_id: int, due: datetime, error: str) -> None: ...
    async def outbox_next_due(self, topic: str) -> datetime | None: ...
    async def event(self, event_id: int) -> Event: ...
    async def last_event_id(self) -> int: ...
    async def find_by_card(self, channel: str, ts: str) -> Approval: ...
    async def decided_by(self, user: str, limit: int) -> list[Approval]: ...
    async def batch(self, channel: str, key: str, limit: int) -> list[Approval]: ...
    async def batch_summary(self, channel: str, key: str) -> tuple[str, str] | None: ...
    async def set_batch_summary(
        self, channel: str, key: str, summary_channel: str, ts: str
    ) -> tuple[str, str]: ...
    async def save_batch_view(self, view: BatchView, now: datetime, kept: float) -> None: ...
    async def batch_view(self, view_id: str) -> BatchView: ...
    async def run_thread(self, channel: str, run_id: str) -> str | None: ...
    async def set_run_thread(self, channel: str, run_id: str, ts: str) -> None: ...
    async def escalations(self, approval_id: str) -> int: ...
    async def outbox_pending(self, topic: str) -> int: ...
    async def first_delivery(self, key: str) -> bool: ...
    async def watch(
        self, callback: Callable[[str], None], on_reconnect: Callable[[], None] | None = None
    ) -> None: ...
