"""What both engines write and read back, without SQL: the request JSON kept per approval, the
audit event each step appends, and rows turned back into `Approval`, `Event` and `Page`.

The engines differ only in how values travel: PostgreSQL hands JSON and timestamps back
decoded, SQLite keeps JSON text and epoch seconds and passes its decoders to `Rows`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.errors import AlreadyDecided, Conflict
from bot.grants import Grant, Proposal, StandingTerms
from bot.models import Approval, Decision, Status
from bot.store.base import Event, OutboxItem, Page, read_cursor

__all__ = [
    "GRANT_COLUMNS",
    "NewEvent",
    "PolicyOutcome",
    "Rows",
    "listing",
    "request_of",
    "resubmitted",
    "tally",
]

#: the columns of a `grants` row, in the order `Rows.grant` reads them
GRANT_COLUMNS = (
    "id, approval_id, tool_name, agent, channel, rule, keys, kept, seconds, granted_by,"
    " names, created_at, expires_at, revoked_by, revoked_at, uses"
)


def request_of(approval: Approval) -> str:
    """What `approvals.request` keeps of a new approval, as JSON text: its record as
    submitted, the same text as its audit event's and its answer's (`Approval.wire_json`).
    Its state (status, times, card, decision, progress) is read from the columns instead
    (`Rows.approval`): rows written before kept the request without it."""
    return approval.wire_json()


def resubmitted(approval: Approval, fingerprint: str, row: Sequence[Any]) -> str:
    """The id in `row` (id, fingerprint, tool name) of the approval already stored for this
    toolCallId.

    An approval is for one call: the same toolCallId for another tool or other arguments is
    a `Conflict`, never the earlier call's decision.
    """
    if row[2] != approval.tool_name:
        raise Conflict(
            f"toolCallId {approval.tool_call_id!r} was already used for another tool "
            f"(approval {row[0]}); each call needs its own toolCallId"
        )
    if row[1] != fingerprint:
        raise Conflict(
            f"toolCallId {approval.tool_call_id!r} was already submitted with "
            f"other arguments (approval {row[0]}); each call needs its own toolCallId"
        )
    return str(row[0])


def listing(
    status: Status | None, tool_name: str | None, cursor: str | None, mark: str
) -> tuple[str, list[str | int]]:
    """The filter of a page of approvals: a `WHERE …` (or nothing) with `mark` as each
    placeholder, and its values."""
    clauses: list[str] = []
    params: list[str | int] = []
    if status is not None:
        clauses.append(f"a.status = {mark}")
        params.append(status.value)
    if tool_name is not None:
        clauses.append(f"a.tool_name = {mark}")
        params.append(tool_name)
    if cursor is not None:
        clauses.append(f"a.seq < {mark}")
        params.append(read_cursor(cursor))
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def tally(approval: Approval, user: str, args: dict[str, Any] | None) -> tuple[Approval, bool]:
    """The record once `user` approved `args` (None: the current ones), and whether that was
    an edit: approving other arguments than the current ones restarts the count with `user`.
    The engines call this inside the transaction that writes the vote, after the service's
    check of the voter on the same record (`Store.vote`)."""
    if not approval.is_pending:
        raise AlreadyDecided(approval)
    progress = approval.progress
    edited = args is not None and args != approval.current_args
    if edited:
        progress = progress.model_copy(
            update={"approved_by": [user], "args": args, "edited_by": user}
        )
    elif user not in progress.approved_by:
        progress = progress.model_copy(update={"approved_by": [*progress.approved_by, user]})
    return approval.model_copy(update={"progress": progress}), edited


# -- audit events to append ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """What the routing file did with a call as it was stored: decided it (`decision`), with
    a card or without (`cards`), and the rules whose `when` failed (`detail`)."""

    decision: Decision | None = None
    cards: bool = True
    detail: dict[str, Any] = field(default_factory=dict)
    #: no rule decided it: look for an active standing approval that does (`bot.grants`)
    standing: bool = False

    @property
    def status(self) -> Status:
        assert self.decision is not None
        return Status.APPROVED if self.decision.approved else Status.REJECTED

    def granted(self, grant: Grant, decision: Decision) -> PolicyOutcome:
        """Decided by a standing approval: no card at all, the grant named in the audit."""
        detail = {**self.detail, "grant": grant.id}
        return replace(self, decision=decision, cards=False, detail=detail, standing=False)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An audit event to append, and who hears of it (outbox topics, other replicas)."""

    approval: Approval
    kind: str
    #: set for a state change, which the event snapshots (`record`)
    status: Status | None
    actor: str | None
    args_before: dict[str, Any] | None = None
    args_after: dict[str, Any] | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    #: a change of a pending approval (a vote, an edit, an escalation) that its card shows
    update: bool = False
    #: False for news about the card itself (Slack refused it): the card topics
    #: (`update_topics`) do not get it, the others (webhooks) do
    cards: bool = True

    @property
    def record(self) -> str | None:
        """The approval as it stands after a state change, as JSON text; None for other
        events."""
        return self.approval.wire_json() if self.status else None

    @property
    def announced(self) -> bool:
        """True when other processes act on it: a state change or an update."""
        return self.status is not None or self.update

    def topics(
        self, outbox_topics: tuple[str, ...], update_topics: tuple[str, ...]
    ) -> tuple[str, ...]:
        """The outbox topics that get this event."""
        if self.status is not None:
            return outbox_topics + (update_topics if self.cards else ())
        return update_topics if self.update else ()

    @classmethod
    def submitted(
        cls, stored: Approval, approval: Approval, policy: PolicyOutcome | None = None
    ) -> NewEvent:
        """`stored`, just inserted from the submitted `approval` (and decided at once when the
        routing file's rule decides it: `policy`)."""
        return cls(
            stored,
            "submitted",
            Status.PENDING,
            approval.requester.agent,
            args_after=approval.args,
            detail=policy.detail if policy else {},
            cards=policy.cards if policy else True,
        )

    @classmethod
    def edited(cls, approval: Approval, user: str, args: dict[str, Any]) -> NewEvent:
        """`user` approved other arguments than the current ones: the count restarts."""
        return cls(
            approval,
            "edited",
            None,
            user,
            args_before=approval.current_args,
            args_after=args,
            update=True,
        )

    @classmethod
    def voted(cls, approval: Approval, user: str) -> NewEvent:
        """`user` approved, and more approvers are needed."""
        return cls(approval, "voted", None, user, update=True)

    @classmethod
    def decided(
        cls, approval: Approval, status: Status, decision: Decision, *, cards: bool = True
    ) -> NewEvent:
        """The decision that moved `approval` from pending to `status`."""
        return cls(
            approval,
            status.value,
            status,
            decision.decided_by,
            args_before=approval.args,
            args_after=decision.approved_args,
            detail={"action": decision.action.value, "comment": decision.comment},
            cards=cards,
        )

    @classmethod
    def slack_refused(cls, approval: Approval, error: str | None, actor: str) -> NewEvent:
        """Slack refused the card for good: `slack.error` is set (None: cleared, Slack took
        the card after all).

        The status does not change, yet the event carries it (and the record): SSE streams
        and webhooks show every change an agent waits on, and this one tells it why no card
        came, before the approval ends."""
        return cls(
            approval, "slack_error", approval.status, actor, detail={"error": error}, cards=False
        )

    @classmethod
    def grant_made(cls, approval: Approval, grant: Grant, actor: str) -> NewEvent:
        """A standing approval was granted on `approval`: its card's thread says so."""
        terms = {k: v for k, v in grant.to_wire().items() if k != "id"}
        detail = {"grant": grant.id, **terms}
        return cls(approval, "grant_created", None, actor, detail=detail, update=True)

    @classmethod
    def grant_lapsed(cls, approval: Approval, missing: list[str]) -> NewEvent:
        """`approval` was approved without every approver allowing more: no grant (audit)."""
        detail = {"reason": "not every approver chose Approve & allow", "without": missing}
        return cls(approval, "grant_lapsed", None, None, detail=detail)

    @classmethod
    def grant_used(cls, origin: Approval, grant: Grant, used_on: Approval) -> NewEvent:
        """`grant`, made on `origin`, approved `used_on`: the origin card's thread says so."""
        detail = {"grant": grant.id, "approval": used_on.id, "toolCallId": used_on.tool_call_id}
        return cls(origin, "grant_used", None, f"grant:{grant.id}", detail=detail, update=True)

    @classmethod
    def grant_revoked(cls, origin: Approval, grant: Grant, user: str) -> NewEvent:
        """`user` revoked a grant made on `origin`: its card's thread says so."""
        return cls(origin, "grant_revoked", None, user, detail={"grant": grant.id}, update=True)

    @classmethod
    def escalated(cls, approval: Approval, actor: str) -> NewEvent:
        """The approval's expiry was pushed once."""
        detail = {"expiresAt": approval.to_wire()["expiresAt"]}
        return cls(approval, "escalated", None, actor, detail=detail, update=True)


# -- rows read back --------------------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Rows:
    """Turns the engines' rows into records; `load` decodes JSON, `time` a timestamp.

    Approval rows hold the columns of the engines' `_SELECT`, in its order; event rows those
    of `_EVENT_COLUMNS`.
    """

    load: Callable[[Any], Any] = _same
    time: Callable[[Any], datetime] = _same

    def approval(self, row: Sequence[Any]) -> Approval:
        """The approval in a `_SELECT` row."""
        data = dict(self.load(row[6]))
        data.update(
            id=row[0],
            status=row[1],
            createdAt=self.time(row[16]),
            expiresAt=self.time(row[2]) if row[2] is not None else None,
            slack={
                "channel": row[3],
                "ts": row[4],
                "permalink": row[5],
                "error": row[22],
                "posting": row[23],
            },
            progress={
                "approvedBy": self.load(row[20]),
                "args": self.load(row[17]),
                "editedBy": row[18],
                "editedAt": self.time(row[21]) if row[21] is not None else None,
                "escalated": row[19] > 0,
            },
        )
        if row[8] is not None:
            data["decision"] = {
                "approved": bool(row[7]),
                "action": row[8],
                "approvedArgs": self.load(row[9]),
                "decidedBy": row[10],
                "decidedByName": row[11],
                "approvers": self.load(row[12]),
                "comment": row[13],
                "decidedAt": self.time(row[14]),
            }
        return Approval.model_validate(data).fingerprinted(row[24])

    def page(self, rows: Sequence[Sequence[Any]], limit: int) -> Page:
        """A listing page from up to `limit + 1` `_SELECT` rows: one more means there is more."""
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([self.approval(r) for r in rows], str(rows[-1][15]) if more and rows else None)

    def outbox_item(self, row: Sequence[Any]) -> OutboxItem:
        """The outbox item in a row of (id, topic, approval id, event id, attempts, the
        event's kind and status)."""
        status = Status(row[6]) if row[6] else None
        return OutboxItem(row[0], row[1], row[2], row[3], row[4], row[5], status)

    def grant(self, row: Sequence[Any]) -> Grant:
        """The grant in a `GRANT_COLUMNS` row."""
        return Grant(
            id=row[0],
            approval_id=row[1],
            tool_name=row[2],
            agent=row[3],
            channel=row[4],
            rule=row[5],
            keys=tuple(self.load(row[6])),
            values=self.load(row[7]),
            seconds=int(row[8]),
            granted_by=tuple(self.load(row[9])),
            names=self.load(row[10]),
            created_at=self.time(row[11]),
            expires_at=self.time(row[12]),
            revoked_by=row[13],
            revoked_at=self.time(row[14]) if row[14] is not None else None,
            uses=int(row[15]),
        )

    def proposal(self, row: Sequence[Any]) -> Proposal:
        """A pending grant in a row of (user, name, seconds, keys, version)."""
        terms = StandingTerms(seconds=int(row[2]), keys=tuple(self.load(row[3])))
        return Proposal(user=row[0], name=row[1], terms=terms, version=row[4])

    def event(self, row: Sequence[Any]) -> Event:
        """The audit event in an `_EVENT_COLUMNS` row."""
        return Event(
            id=row[0],
            approval_id=row[1],
            kind=row[2],
            status=Status(row[3]) if row[3] else None,
            actor=row[4],
            at=self.time(row[5]),
            args_before=self.load(row[6]),
            args_after=self.load(row[7]),
            detail=self.load(row[8]),
            record=self.load(row[9]),
        )
