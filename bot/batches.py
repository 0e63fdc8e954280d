"""Batches: "Approve all N" / "Reject all N…" (issue 16, part 3). No Slack, no SQL.

Pending approvals of one channel that share a batch key — the request's `batchId`, else
`requester.runId` (`Approval.batch_key`) — form a batch. A person decides a batch from a
drawing of it (`BatchView`): the approvals it listed, each with the version of the arguments
it showed and whether it showed them whole. Each is then decided through the same service
calls as a click on its card, so the same checks hold, one approval at a time:

    a drawing's approval     already decided            → refused, saying how it ended
    Approve all              critical                   → refused: it asks its own confirmation
                             arguments shown cut         → refused: approve it on its card
                             `ApprovalService.approve`   → decided, counted (N-of-M), or refused
                                                           (not an approver, the requester's
                                                           own call, not offered, stale…)
    Reject all               `ApprovalService.reject`    → decided or refused

Approvals added after the drawing are not in it, so a click on an old drawing never decides
them; arguments edited since make that approval's vote stale (`StaleVote`), as on its card.
One at a time, each committed before the next: when the time to answer runs out (`stop`), the
rest are left untried, and a second click decides them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.errors import AlreadyDecided, AlreadyVoted, BotError, NotFound, StaleVote
from bot.models import Approval, Priority

if TYPE_CHECKING:
    from bot.service import ApprovalService

__all__ = [
    "MAX_MEMBERS",
    "VIEWS_KEPT",
    "BatchRef",
    "BatchResult",
    "BatchService",
    "BatchView",
    "ItemResult",
    "Outcome",
    "Shown",
    "left_for_its_card",
]

#: approvals of one batch read for a drawing (the oldest first); a batch past that is drawn
#: in part, and its later approvals are decided on their cards
MAX_MEMBERS = 500
#: seconds a drawing is kept for the buttons that name it (a redraw keeps it fresh)
VIEWS_KEPT = 30 * 86_400


class Outcome(StrEnum):
    """What a batch decision did with one approval."""

    #: the approval was decided (approved, or rejected)
    DECIDED = "decided"
    #: the approval counted, and waits for more approvers (`required_approvals`)
    COUNTED = "counted"
    #: nothing changed for this approval; `ItemResult.reason` says why
    REFUSED = "refused"
    #: not tried: the time to answer ran out first (`decide_batch`'s `stop`)
    UNTRIED = "untried"


@dataclass(frozen=True, slots=True)
class BatchRef:
    """A batch: the channel its approvals were routed to, and their batch key."""

    channel: str
    key: str

    @classmethod
    def of(cls, approval: Approval) -> BatchRef | None:
        """The batch of `approval`, or None when it names none."""
        key = approval.batch_key
        return cls(approval.channel, key) if key else None


@dataclass(frozen=True, slots=True)
class Shown:
    """One approval as a drawing showed it: the arguments version, and whether the arguments
    were shown whole (only then may "Approve all" approve it)."""

    approval_id: str
    version: str
    whole: bool = True

    @classmethod
    def of(cls, approval: Approval, *, whole: bool = True) -> Shown:
        return cls(approval.id, approval.args_version, whole)


@dataclass(frozen=True, slots=True)
class BatchView:
    """A drawing of a batch that its buttons name (`id`, a digest of what it lists): the
    approvals a click on it decides, never any other."""

    id: str
    ref: BatchRef
    items: tuple[Shown, ...]

    @classmethod
    def of(cls, ref: BatchRef, items: Iterable[Shown]) -> BatchView:
        """The drawing listing `items`; the same list always gets the same id."""
        shown = tuple(items)
        canonical = json.dumps(
            [ref.channel, ref.key, [[s.approval_id, s.version, s.whole] for s in shown]],
            separators=(",", ":"),
            ensure_ascii=False,
        )
        digest = hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16)
        return cls("bv_" + digest.hexdigest(), ref, shown)

    def stored_items(self) -> list[list[str | bool]]:
        """The listed approvals as stored (JSON): `[[id, version, whole], …]`."""
        return [[s.approval_id, s.version, s.whole] for s in self.items]

    @classmethod
    def from_json(cls, view_id: str, channel: str, key: str, items: object) -> BatchView:
        """A stored drawing (`items` as `stored_items` gave them, as JSON text or decoded)."""
        rows = json.loads(items) if isinstance(items, str) else items
        assert isinstance(rows, list)
        shown = tuple(Shown(str(r[0]), str(r[1]), bool(r[2])) for r in rows)
        return cls(view_id, BatchRef(channel, key), shown)


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What happened to one approval of a batch decision."""

    approval_id: str
    tool_name: str
    outcome: Outcome
    #: why nothing changed (REFUSED), in the words of the refusal; None otherwise
    reason: str | None = None
    #: the record afterwards, when it could be read
    approval: Approval | None = None
    #: the refusal itself, for an edge that words it its own way (`NotAnApprover`)
    error: BotError | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """A batch decision, approval by approval, in the drawing's order."""

    approve: bool
    items: tuple[ItemResult, ...]
    comment: str | None = None

    def _with(self, outcome: Outcome) -> list[ItemResult]:
        return [item for item in self.items if item.outcome is outcome]

    @property
    def decided(self) -> list[ItemResult]:
        return self._with(Outcome.DECIDED)

    @property
    def counted(self) -> list[ItemResult]:
        return self._with(Outcome.COUNTED)

    @property
    def refused(self) -> list[ItemResult]:
        return self._with(Outcome.REFUSED)

    @property
    def untried(self) -> list[ItemResult]:
        return self._with(Outcome.UNTRIED)


#: the reasons a batch itself gives (the others are the service's refusals)
CRITICAL_REASON = (
    "critical: it asks for its own confirmation, so approve it on its card, not all at once"
)
CUT_REASON = (
    "its arguments did not fit in the summary, so approve it on its card, where they are "
    "shown in full"
)
LATE_REASON = "not tried: Slack's time to answer ran out first; click again for the rest"


@dataclass
class BatchService:
    """Reads batches, keeps their drawings, and decides them through `ApprovalService`."""

    service: ApprovalService
    #: drawings are kept this long after they were last drawn
    views_kept: float = VIEWS_KEPT
    #: approvals of a batch read at most
    limit: int = MAX_MEMBERS

    async def members(self, ref: BatchRef) -> list[Approval]:
        """The approvals of a batch, pending or not, the oldest first."""
        return await self.service.store.batch(ref.channel, ref.key, self.limit)

    async def keep(self, view: BatchView) -> BatchView:
        """Store a drawing before its buttons are shown, so a click on them can name it."""
        await self.service.store.save_batch_view(view, self.service.clock(), self.views_kept)
        return view

    async def view(self, view_id: str) -> BatchView:
        """A stored drawing, or `NotFound` (never drawn, or older than `views_kept`)."""
        return await self.service.store.batch_view(view_id)

    async def current(self, ref: BatchRef) -> BatchView:
        """The batch's pending approvals as they are now, for a caller that drew nothing
        (the arguments count as seen whole)."""
        pending = [a for a in await self.members(ref) if a.is_pending]
        return BatchView.of(ref, (Shown.of(a) for a in pending))

    async def decide_batch(
        self,
        batch: BatchView | BatchRef,
        user: str,
        *,
        approve: bool,
        comment: str | None = None,
        name: str | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> BatchResult:
        """Approve or reject each approval `batch` lists as `user`, through the same service
        calls as a click on its card; never one it does not list. `stop()` true: leave the
        rest untried (Slack's time to answer is running out)."""
        view = batch if isinstance(batch, BatchView) else await self.current(batch)
        results: list[ItemResult] = []
        for shown in view.items:
            if stop is not None and stop():  # nothing read: the answer is due
                results.append(ItemResult(shown.approval_id, "", Outcome.UNTRIED, LATE_REASON))
                continue
            results.append(await self._decide_one(shown, user, approve, comment, name))
        return BatchResult(approve, tuple(results), comment)

    async def _decide_one(
        self, shown: Shown, user: str, approve: bool, comment: str | None, name: str | None
    ) -> ItemResult:
        try:
            approval = await self.service.get(shown.approval_id)
        except NotFound:
            return ItemResult(
                shown.approval_id, "?", Outcome.REFUSED, "this approval no longer exists"
            )
        except BotError as exc:
            return ItemResult(shown.approval_id, "?", Outcome.REFUSED, exc.message, error=exc)
        tool = approval.tool_name
        if not approval.is_pending:
            refused = AlreadyDecided(approval)
            return ItemResult(
                approval.id, tool, Outcome.REFUSED, refused.message, approval, refused
            )
        if approve and (reason := left_for_its_card(approval, shown)) is not None:
            await self.service.audit(
                approval.id, "refused", user, decision="approve", reason=reason, batch=True
            )
            return ItemResult(approval.id, tool, Outcome.REFUSED, reason, approval)
        try:
            if approve:
                after = await self.service.approve(
                    approval.id, user=user, name=name, seen=shown.version
                )
            else:
                after = await self.service.reject(
                    approval.id, user=user, name=name, comment=comment
                )
        except (AlreadyDecided, StaleVote, AlreadyVoted) as exc:
            return ItemResult(approval.id, tool, Outcome.REFUSED, exc.message, exc.approval, exc)
        except BotError as exc:  # NotAllowed, NotAnApprover, Unavailable, SlackTooSlow…
            return ItemResult(approval.id, tool, Outcome.REFUSED, exc.message, approval, exc)
        outcome = Outcome.COUNTED if after.is_pending else Outcome.DECIDED
        return ItemResult(approval.id, tool, outcome, None, after)


def left_for_its_card(approval: Approval, shown: Shown) -> str | None:
    """Why "Approve all" leaves this approval to its card, or None: a critical call asks for
    its own confirmation, and nobody approves arguments they were shown cut."""
    if approval.priority is Priority.CRITICAL:
        return CRITICAL_REASON
    if not shown.whole:
        return CUT_REASON
    return None
