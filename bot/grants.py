"""Standing approvals: "Approve & allow for…" (issue 16, part 2). No Slack, no SQL.

Where the routing file's rule sets `allow_standing = "1h"`, an approver may approve a call and
allow, for up to that long, the later calls of the same tool from the same `requester.agent`
whose chosen arguments stay equal. Such a call is decided inside the store's insert
transaction, as a rule's `decision` is: `decidedBy: "grant:<id>"`, no card with buttons, and a
line in the thread of the card where the grant was made.

    an approver's "Approve & allow…"   a vote, and a proposal (`Proposal`) on the approval
    the approval decided by votes       a `Grant` when every counted approver proposed one
    a later call                        matched against the active grants (`Grant.covers`)
    Revoke (App Home), or its expiry    the grant stops matching at once, on every replica

The rule of several approvers: a grant needs as many people as the approval itself
(`required_approvals`). It becomes active when the approval is approved and every approver
counted chose "Approve & allow…" on the arguments approved; its terms are the strictest of
theirs (the shortest span, every argument any of them kept equal). One plain Approve among
them approves the call and makes no grant.

Who never gets or uses one: a `critical` call, a call without `requester.agent`, a call whose
`allowedDecisions` leave out approve, and a call its granter requested (`requester.slackUser`).
A grant matches only calls routed by the same rule (by name, else number) to the same channel,
so a rule that asks more people for larger amounts is never short-cut by a grant from a
smaller one.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.errors import Conflict, Invalid, NotAllowed
from bot.models import Action, Approval, Decision, DecisionKind, Priority, format_time

if TYPE_CHECKING:
    from bot.service import ApprovalService

__all__ = [
    "GRANT_NOTES",
    "MAX_STANDING",
    "Grant",
    "GrantGone",
    "Proposal",
    "StandingTerms",
    "check_terms",
    "describe_span",
    "grant_decision",
    "may_revoke",
    "may_stand",
    "new_grant_id",
    "parse_duration",
    "revoke",
    "same_json",
    "settle",
    "span_choices",
]

#: the longest standing approval a rule may permit: past that it is policy, write a rule
MAX_STANDING = 30 * 86_400
#: audit events of a grant, on the approval it was made on, each told in that card's thread
GRANT_NOTES = ("grant_created", "grant_used", "grant_revoked")

_DURATION = re.compile(r"\s*(\d{1,7})\s*([smhdw])\s*")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
#: the spans the modal offers, up to the rule's limit (which is always offered itself)
_LADDER = (900, 3600, 4 * 3600, 8 * 3600, 86_400, 7 * 86_400, MAX_STANDING)


def parse_duration(text: str) -> int:
    """`90s`, `15m`, `1h`, `1d`, `2w` → seconds (ValueError otherwise): the spans the CLI's
    `--since` takes, between one second and `MAX_STANDING`."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a span like 15m, 1h, 1d or 2w")
    seconds = int(match[1]) * _UNIT[match[2]]
    if not 0 < seconds <= MAX_STANDING:
        raise ValueError(f"must be between 1s and 30d, not {text.strip()}")
    return seconds


def describe_span(seconds: int) -> str:
    """`15 min`, `1 h`, `1 day`, `2 weeks`…: the largest unit that divides it."""
    for unit, one, many in (
        (604_800, "week", "weeks"),
        (86_400, "day", "days"),
        (3600, "h", "h"),
        (60, "min", "min"),
    ):
        if seconds % unit == 0:
            count = seconds // unit
            return f"{count} {one if count == 1 else many}"
    return f"{seconds} s"


def span_choices(limit: int) -> list[int]:
    """The spans offered under a rule's `allow_standing` (seconds), shortest first."""
    return [s for s in _LADDER if s < limit] + [limit]


def new_grant_id() -> str:
    """A fresh `grt_…` id."""
    return "grt_" + secrets.token_hex(10)


def canonical_json(value: Any) -> str:
    """One spelling per JSON value: keys sorted, no spaces. `1` and `1.0`, `true` and `1`
    stay different, so equality is never looser than what the approver saw."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def same_json(a: Any, b: Any) -> bool:
    """True when two JSON values are equal as canonical JSON."""
    return canonical_json(a) == canonical_json(b)


class GrantGone(Conflict):
    """The grant was revoked or has expired already: nothing to revoke."""


@dataclass(frozen=True, slots=True)
class StandingTerms:
    """What one approver allows with "Approve & allow…": for how long, and which top-level
    arguments must stay equal (the others may differ)."""

    seconds: int
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Proposal:
    """An approver's "Approve & allow…" on an approval, waiting for the approval's decision
    (a pending grant): their terms, and the arguments version they approved."""

    user: str
    name: str | None
    terms: StandingTerms
    version: str


@dataclass(frozen=True, slots=True)
class Grant:
    """A standing approval: calls of `tool_name` from `agent`, routed by `rule` to `channel`,
    whose `keys` equal `values`, are approved until `expires_at` unless revoked."""

    id: str
    #: the approval it was granted on: its card's thread hears of every use
    approval_id: str
    tool_name: str
    agent: str
    channel: str
    rule: str
    keys: tuple[str, ...]
    #: the approved value of each key kept equal (a key the call lacked is absent here too)
    values: dict[str, Any]
    seconds: int
    granted_by: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_by: str | None = None
    revoked_at: datetime | None = None
    uses: int = 0

    def active(self, now: datetime) -> bool:
        """True until it is revoked or expires."""
        return self.revoked_at is None and self.expires_at is not None and now < self.expires_at

    def covers(self, approval: Approval) -> bool:
        """True when this grant approves `approval` (as submitted): the same tool, agent, rule
        and channel, every kept argument equal, and not requested by one of its granters."""
        if not may_stand(approval) or approval.requester.slack_user in self.granted_by:
            return False
        same_call = (
            approval.tool_name == self.tool_name
            and approval.requester.agent == self.agent
            and approval.policy.rule_name == self.rule
            and approval.channel == self.channel
        )
        return same_call and all(
            (key in approval.args) == (key in self.values)
            and (key not in self.values or same_json(approval.args[key], self.values[key]))
            for key in self.keys
        )

    def granted_by_text(self) -> str:
        """`alice (U0ALICE) and bob (U0BOB)`: who granted it, for the decision's comment."""
        people = [
            f"{self.names[user]} ({user})" if self.names.get(user) else user
            for user in self.granted_by
        ]
        return " and ".join(people)

    def to_wire(self) -> dict[str, Any]:
        """The grant as JSON (audit details, the CLI)."""
        return {
            "id": self.id,
            "approvalId": self.approval_id,
            "toolName": self.tool_name,
            "agent": self.agent,
            "channel": self.channel,
            "rule": self.rule,
            "keys": list(self.keys),
            "seconds": self.seconds,
            "grantedBy": list(self.granted_by),
            "createdAt": format_time(self.created_at) if self.created_at else None,
            "expiresAt": format_time(self.expires_at) if self.expires_at else None,
            "revokedBy": self.revoked_by,
            "uses": self.uses,
        }


def may_stand(approval: Approval) -> bool:
    """True when a standing approval may be granted on, or used for, this call: its rule
    allows them, it is not critical, it names its agent, and approve is among its decisions."""
    return (
        approval.policy.allow_standing is not None
        and approval.policy.rule_name is not None
        and approval.priority is not Priority.CRITICAL
        and bool(approval.requester.agent)
        and DecisionKind.APPROVE in approval.allowed_decisions
    )


def check_terms(approval: Approval, terms: StandingTerms, *, edited: bool = False) -> None:
    """Refuse terms the approval's rule does not permit: `NotAllowed` where no standing
    approval may be granted at all, `Invalid` for a span past the rule's limit or an argument
    the call does not have."""
    if edited:
        raise NotAllowed("a standing approval is granted on the arguments as they are, not an edit")
    if not may_stand(approval):
        raise NotAllowed(f"standing approvals are not offered for this {approval.tool_name} call")
    limit = approval.policy.allow_standing
    assert limit is not None
    if not 0 < terms.seconds <= limit:
        raise Invalid(f"at most {describe_span(limit)} for this rule", path="duration")
    unknown = [key for key in terms.keys if key not in approval.current_args]
    if unknown:
        raise Invalid(f"the call has no argument {unknown[0]!r}", path="keys")


def may_have_proposals(approval: Approval, proposing: bool) -> bool:
    """Whether a decision by votes on `approval` can have grant proposals to settle: when
    this vote proposes one (`proposing`), or when earlier votes counted (more than one
    approver is required). One approver who proposes nothing leaves nothing to read."""
    return proposing or approval.policy.required_approvals > 1


def settle(
    approval: Approval, proposals: Sequence[Proposal], grant_id: str
) -> tuple[Grant | None, list[str]]:
    """The grant an approval's decision makes, if any, and who among its approvers did not
    propose one on the arguments approved (the reason there is none).

    `approval` is decided by votes; its `decision.approvers` were counted. Every one of them
    must have proposed a grant on the approved version; the terms are the strictest."""
    decision = approval.decision
    assert decision is not None and decision.approved
    version = approval.args_version
    proposed = {p.user: p for p in proposals if p.version == version}
    missing = [user for user in decision.approvers if user not in proposed]
    if missing or not decision.approvers:
        return None, missing
    chosen = [proposed[user] for user in decision.approvers]
    args = decision.approved_args if decision.approved_args is not None else approval.current_args
    wanted = {key for p in chosen for key in p.terms.keys}
    keys = tuple(key for key in args if key in wanted)
    seconds = min(p.terms.seconds for p in chosen)
    granted_at = decision.decided_at
    assert approval.requester.agent and approval.policy.rule_name
    grant = Grant(
        id=grant_id,
        approval_id=approval.id,
        tool_name=approval.tool_name,
        agent=approval.requester.agent,
        channel=approval.channel,
        rule=approval.policy.rule_name,
        keys=keys,
        values={key: args[key] for key in keys},
        seconds=seconds,
        granted_by=tuple(decision.approvers),
        names={p.user: p.name for p in chosen if p.name},
        created_at=granted_at,
        expires_at=granted_at + timedelta(seconds=seconds),
    )
    return grant, []


def grant_decision(grant: Grant, approval: Approval) -> Decision:
    """The decision a grant makes for a call it covers: approved as submitted."""
    until = format_time(grant.expires_at) if grant.expires_at else "revoked"
    return Decision(
        approved=True,
        action=Action.APPROVE,
        approved_args=approval.args,
        decided_by=f"grant:{grant.id}",
        approvers=list(grant.granted_by),
        comment=(
            f"standing approval {grant.id} granted by {grant.granted_by_text()} on "
            f"{grant.approval_id}, until {until}"
        ),
        decided_at=approval.created_at,
    )


async def may_revoke(service: ApprovalService, grant: Grant, user: str) -> bool:
    """True when `user` granted it, or may decide the approvals of its rule (as the policy of
    the approval it was made on says: its approvers, else its channel's members)."""
    if user in grant.granted_by:
        return True
    return await service.may_decide(await service.get(grant.approval_id), user)


async def revoke(service: ApprovalService, grant_id: str, user: str) -> Grant:
    """Revoke a grant for `user` (`may_revoke`); `NotAllowed` (audited) otherwise, `GrantGone`
    when it no longer stands. Every replica stops using it at once: each match reads the
    database."""
    grant = await service.store.grant(grant_id)
    if not await may_revoke(service, grant, user):
        refused = NotAllowed(
            f"only the approvers of {grant.tool_name}, or who granted it, can revoke this "
            "standing approval"
        )
        await service.audit(
            grant.approval_id, "refused", user, decision="revoke", reason=refused.message
        )
        raise refused
    return await service.store.revoke_grant(grant_id, user, service.clock())
