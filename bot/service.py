"""The decision state machine and the async correlation map. No Slack, no HTTP.

    pending ──approve/edit──▶ approved      ──reject/feedback──▶ rejected
            ──cancel───────▶ cancelled      ──timeout─────────▶ expired | approved
            ──escalate─────▶ pending (expiry extended once, then expired)
            ──undeliverable▶ rejected (Slack refused the card, and no fallback took it)

Every waiter of an approval holds a future in `_waiters[approval_id]`; the moment a decision
commits, they are all resolved with the decided record. Nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from bot.errors import (
    AlreadyDecided,
    AlreadyVoted,
    BotError,
    Invalid,
    InvalidEdit,
    NotAllowed,
    StaleVote,
    Unavailable,
)
from bot.grants import Proposal, StandingTerms, check_terms, may_stand
from bot.models import (
    Action,
    Approval,
    ApprovalRequest,
    Decision,
    DecisionKind,
    OnTimeout,
    Priority,
    SlackRef,
    Status,
    args_fingerprint,
    new_approval_id,
    new_tool_call_id,
    utcnow,
)
from bot.policy import NotAnApprover, Route, Router, Routing
from bot.schemas import check_plain_json, compile_schema
from bot.store import Page, PolicyOutcome, Store

__all__ = [
    "SLACK_ACTOR",
    "TIMEOUT_ACTOR",
    "ApprovalService",
    "ChannelMembers",
    "GroupMembers",
    "Observer",
    "Route",
    "Router",
    "Wait",
    "validate_args",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: an agent's wait for a decision (`ApprovalService.watch`)
Wait = asyncio.Future[Approval | None]

TIMEOUT_ACTOR = "system:timeout"
#: who ends an approval whose card Slack refused for good
SLACK_ACTOR = "system:slack"


class GroupMembers(Protocol):
    """Who is in a Slack user group (the Slack side implements this with a cache)."""

    async def members(self, group: str) -> set[str]: ...

    def cached(self, group: str) -> frozenset[str] | None:
        """The members as cached now, without asking Slack; None when not cached."""


class ChannelMembers(Protocol):
    """Who is in a Slack channel (the Slack side asks `conversations.members`, cached)."""

    async def members(self, channel: str) -> set[str]: ...

    def cached(self, channel: str) -> frozenset[str] | None:
        """The members as cached now, without asking Slack; None when not cached."""


class Nobody:
    """No Slack to ask: no group or channel has members, so only named users may decide."""

    async def members(self, group_or_channel: str) -> set[str]:
        return set()

    def cached(self, group_or_channel: str) -> frozenset[str]:
        return frozenset()


class Unresolved(Exception):
    """A check needs the members of a group or channel that no cache holds (`Members`)."""

    def __init__(self, source: GroupMembers | ChannelMembers, name: str) -> None:
        super().__init__(name)
        self.source, self.name = source, name


@dataclass
class Members:
    """The members of groups and channels, for checks that cannot wait on Slack: a check
    inside a store's transaction, run on the record as it is there. What no cache holds
    raises `Unresolved`; `settle` then asks Slack for it, outside the transaction, and runs
    the attempt again, until it needs nothing more (each round learns a name for good)."""

    groups: GroupMembers
    channels: ChannelMembers
    _asked: dict[tuple[int, str], frozenset[str]] = field(default_factory=dict)

    def group(self, group: str) -> frozenset[str]:
        return self._of(self.groups, group)

    def channel(self, channel: str) -> frozenset[str]:
        return self._of(self.channels, channel)

    def _of(self, source: GroupMembers | ChannelMembers, name: str) -> frozenset[str]:
        members = self._asked.get((id(source), name))
        if members is None:
            members = source.cached(name)
        if members is None:
            raise Unresolved(source, name)
        return members

    async def settle(self, attempt: Callable[[Members], Awaitable[T]]) -> T:
        while True:
            try:
                return await attempt(self)
            except Unresolved as missing:
                asked = await missing.source.members(missing.name)
                self._asked[id(missing.source), missing.name] = frozenset(asked)


class Observer(Protocol):
    """Told after every committed change; must return at once (schedule real work)."""

    def approval_changed(self, approval: Approval, kind: str) -> None: ...


#: how much of a schema error's message an answer carries (it may quote a 1 MiB argument)
MAX_ERROR_MESSAGE = 500


async def validate_args(
    approval: Approval, args: dict[str, Any], path: str = "approvedArgs"
) -> None:
    """Raise `InvalidEdit` when `args` break the approval's `argsSchema`, or are not plain JSON
    (an edit typed in Slack is checked here, not by a model).

    The check runs in a worker thread when it is not quick (`bot.schemas`); one past its budget
    is refused. At submission (`path` "args") the agent's own schema is at fault for that, so
    the error names `argsSchema`; on an edit it names the edit."""
    if path != "args":  # submitted args were checked by `ApprovalRequest` already
        try:
            check_plain_json(args)
        except ValueError as exc:
            raise InvalidEdit(str(exc), path=path) from None
    if approval.args_schema is None:
        return
    try:
        errors = await compile_schema(approval.args_schema).errors(args)
    except ValueError as exc:  # SchemaRefused (stored before the rules), Uncheckable
        raise InvalidEdit(str(exc), path="argsSchema" if path == "args" else path) from None
    if errors:
        error = errors[0]
        where = ".".join([path, *(str(part) for part in error.absolute_path)])
        message = error.message
        if len(message) > MAX_ERROR_MESSAGE:
            message = message[: MAX_ERROR_MESSAGE - 1] + "…"
        raise InvalidEdit(message, path=where)


@dataclass
class ApprovalService:
    """Submit, decide, cancel, expire and wait — the whole life of an approval."""

    store: Store
    default_channel: str | None = None
    router: Router = field(default_factory=Routing)
    groups: GroupMembers = field(default_factory=Nobody)
    channels: ChannelMembers = field(default_factory=Nobody)
    clock: Callable[[], datetime] = utcnow
    observers: list[Observer] = field(default_factory=list)
    _waiters: defaultdict[str, set[Wait]] = field(
        default_factory=lambda: defaultdict(set), init=False
    )
    _timer_wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    # -- reading ----------------------------------------------------------------------------

    async def get(self, approval_id: str) -> Approval:
        """The approval record, or `NotFound`."""
        return await self.store.get(approval_id)

    async def find(
        self,
        *,
        status: Status | None = None,
        tool_name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Approvals newest first, one page at a time."""
        return await self.store.find(status=status, tool_name=tool_name, limit=limit, cursor=cursor)

    # -- submitting -------------------------------------------------------------------------

    async def submit(self, request: ApprovalRequest) -> tuple[Approval, bool]:
        """Store a gated tool call; returns (record, created). Idempotent per toolCallId: the
        same call again returns its record, another call with the same id is a `Conflict`.

        The routing rule sets the policy; the request may only make it stricter (`Invalid`
        names the field that tried to loosen it)."""
        route = self.router.route(request)
        channel = route.channel or self.default_channel
        if not channel:
            raise Invalid(
                "no channel: name one, or set APPROVAL_CHANNEL or a routing file default_channel",
                path="channel",
            )
        timeout = route.timeout_seconds
        now = self.clock()
        approval = Approval(
            id=new_approval_id(),
            status=Status.PENDING,
            tool_name=request.tool_name,
            tool_call_id=request.tool_call_id or new_tool_call_id(),
            args=request.args,
            args_schema=request.args_schema,
            prompt=request.prompt,
            channel=channel,
            priority=route.priority or Priority.NORMAL,
            requester=request.requester,
            batch_id=request.batch_id,
            context=request.context,
            preview=request.preview,
            thread_ts=request.thread_ts,
            timeout_seconds=timeout,
            on_timeout=route.on_timeout,
            allowed_decisions=route.allowed_decisions,
            policy=route.policy,
            metadata=request.metadata,
            created_at=now,
            expires_at=now + timedelta(seconds=timeout) if timeout else None,
        )
        await validate_args(approval, approval.args, path="args")
        policy = _policy_outcome(route, approval)
        fingerprint = args_fingerprint(request.args)
        stored, created = await self.store.insert(
            approval.fingerprinted(fingerprint), fingerprint, policy
        )
        if created:
            self._notify(stored, "submitted")
            if not stored.is_pending:  # the routing file decided it
                self._resolve(stored)
            elif stored.expires_at is not None:
                self._timer_wake.set()
        return stored, created

    # -- deciding ---------------------------------------------------------------------------

    async def decide(
        self,
        approval_id: str,
        *,
        approved: bool,
        decided_by: str,
        decided_by_name: str | None = None,
        comment: str | None = None,
        approved_args: dict[str, Any] | None = None,
        action: Action | None = None,
        approvers: list[str] | None = None,
    ) -> Approval:
        """Decide once. Raises `AlreadyDecided` (with the winner) when someone was first."""
        approval = await self.store.get(approval_id)
        if not approval.is_pending:
            raise AlreadyDecided(approval)
        if approved:
            run_with = approval.current_args if approved_args is None else approved_args
            await validate_args(approval, run_with)
            action = action or (Action.APPROVE if run_with == approval.args else Action.EDIT)
            status = Status.APPROVED
        else:
            run_with = None
            action = action or Action.REJECT
            status = Status.REJECTED
        decision = Decision(
            approved=approved,
            action=action,
            approved_args=run_with,
            decided_by=decided_by,
            decided_by_name=decided_by_name,
            approvers=approvers if approvers is not None else ([decided_by] if approved else []),
            comment=comment or None,
            decided_at=self.clock(),
        )
        decided, _ = await self.store.decide(approval_id, status, decision)
        self._resolve(decided)
        return decided

    async def approve(
        self,
        approval_id: str,
        *,
        user: str,
        name: str | None = None,
        seen: str | None = None,
        typed_at: datetime | None = None,
        approved_args: dict[str, Any] | None = None,
        comment: str | None = None,
        allow: StandingTerms | None = None,
    ) -> Approval:
        """A person's approval, with edited args (an Edit) or of the current ones.

        `seen` is the version of the arguments the person was shown (`Approval.args_version`),
        `typed_at` when they typed `approve` in the card's thread: a vote on arguments edited
        since counts for nothing (`StaleVote`). With `required_approvals = N` it counts until N
        distinct people approved the same arguments; an edit restarts the count with the
        editor first. Returns the record, still pending until the count is reached.

        `allow` ("Approve & allow…") also proposes a standing approval on these arguments; it
        is granted with the decision when every approver counted proposed one (`bot.grants`).
        """
        kind = DecisionKind.APPROVE if approved_args is None else DecisionKind.EDIT
        if approved_args is not None:
            # an edit is checked before its arguments are validated (which may take a thread)
            approval = await self.store.get(approval_id)
            await self.check(approval, user, kind, seen=seen, typed_at=typed_at)
            await validate_args(approval, approved_args)

        def counted(members: Members, current: Approval) -> Proposal | None:
            """The check, in the vote's transaction: on the record the vote counts on."""
            self.verdict(current, user, kind, members, seen=seen, typed_at=typed_at)
            if approved_args is None and user in current.progress.approved_by:
                raise AlreadyVoted(current)  # the same person twice counts once
            if allow is None:
                return None
            check_terms(current, allow, edited=approved_args is not None)
            return Proposal(user, name, allow, current.args_version)

        def decision(current: Approval) -> Decision:
            run_with = current.current_args
            return Decision(
                approved=True,
                action=Action.APPROVE if run_with == current.args else Action.EDIT,
                approved_args=run_with,
                decided_by=user,
                decided_by_name=name,
                approvers=current.progress.approved_by,
                comment=comment or None,
                decided_at=self.clock(),
            )

        updated, decided = await self._checked(
            approval_id,
            user,
            kind,
            lambda members: self.store.vote(
                approval_id, user, approved_args, decision, partial(counted, members)
            ),
        )
        if decided:
            self._resolve(updated)
        else:
            self._notify(updated, "voted")
        return updated

    async def reject(
        self,
        approval_id: str,
        *,
        user: str,
        name: str | None = None,
        action: Action = Action.REJECT,
        comment: str | None = None,
    ) -> Approval:
        """A person's rejection (`action` reject, or feedback for the model), checked in its
        transaction as a vote is."""
        kind = DecisionKind.FEEDBACK if action is Action.FEEDBACK else DecisionKind.REJECT
        decision = Decision(
            approved=False,
            action=action,
            decided_by=user,
            decided_by_name=name,
            approvers=[],
            comment=comment or None,
            decided_at=self.clock(),
        )
        decided, _ = await self._checked(
            approval_id,
            user,
            kind,
            lambda members: self.store.decide(
                approval_id,
                Status.REJECTED,
                decision,
                partial(self.verdict, user=user, kind=kind, members=members),
            ),
        )
        self._resolve(decided)
        return decided

    async def cancel(
        self, approval_id: str, *, reason: str | None = None, cancelled_by: str | None = None
    ) -> Approval:
        """The agent withdraws its request."""
        approval = await self.store.get(approval_id)
        decision = Decision(
            approved=False,
            action=Action.CANCEL,
            decided_by=cancelled_by or approval.requester.agent or "agent",
            comment=reason or None,
            decided_at=self.clock(),
        )
        decided, _ = await self.store.decide(approval_id, Status.CANCELLED, decision)
        self._resolve(decided)
        return decided

    async def expire(self, approval: Approval) -> Approval:
        """Apply `onTimeout` to an overdue approval."""
        if (
            approval.on_timeout is OnTimeout.ESCALATE
            and not approval.progress.escalated
            and approval.timeout_seconds
        ):
            extended = await self.store.extend(
                approval.id,
                self.clock() + timedelta(seconds=approval.timeout_seconds),
                TIMEOUT_ACTOR,
            )
            self._notify(extended, "escalated")
            return extended
        approve = approval.on_timeout is OnTimeout.APPROVE
        decision = Decision(
            approved=approve,
            action=Action.TIMEOUT,
            approved_args=approval.args if approve else None,
            decided_by=TIMEOUT_ACTOR,
            decided_at=self.clock(),
        )
        status = Status.APPROVED if approve else Status.EXPIRED
        decided, _ = await self.store.decide(approval.id, status, decision)
        self._resolve(decided)
        return decided

    async def expire_due(self) -> list[Approval]:
        """Expire every approval whose time has come; returns what changed."""
        changed = []
        for approval in await self.store.due(self.clock()):
            try:
                changed.append(await self.expire(approval))
            except AlreadyDecided:
                continue  # decided in the meantime: the human was just in time
        return changed

    async def run_timers(self) -> None:
        """Sleep until the next expiry (or a new one), expire, repeat. Runs for the bot's life."""
        while True:
            self._timer_wake.clear()
            try:
                await self.expire_due()
                next_at = await self.store.next_expiry()
            except BotError as exc:
                log.warning("expiry check failed: %s", exc.message)
                next_at = self.clock() + timedelta(seconds=5)
            delay = None if next_at is None else (next_at - self.clock()).total_seconds()
            if delay is not None and delay <= 0:
                continue
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel at shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._timer_wake.wait()

    # -- who may decide: the one place every edge (buttons, modals, threads, App Home,
    # -- /approvals) asks -----------------------------------------------------------------

    async def may_decide(self, approval: Approval, user: str) -> bool:
        """True when the policy gives `user` a say: a named approver or a member of a named
        group, or, where the rule names nobody, a member of the card's channel."""

        async def attempt(members: Members) -> bool:
            return _may_decide(approval, user, members)

        return await self._members().settle(attempt)

    async def can_act(self, approval: Approval, user: str) -> bool:
        """True when `user` may decide `approval` or requested it: what App Home and
        `/approvals` show them."""
        return user == approval.requester.slack_user or await self.may_decide(approval, user)

    async def is_theirs(self, approval: Approval, user: str) -> bool:
        """True when `user` asked for it or is named as an approver (`/approvals mine`)."""
        if user == approval.requester.slack_user or user in approval.policy.approvers:
            return True
        return bool(approval.policy.approvers) and await self.may_decide(approval, user)

    async def check(
        self,
        approval: Approval,
        user: str,
        kind: DecisionKind,
        *,
        seen: str | None = None,
        typed_at: datetime | None = None,
    ) -> Approval:
        """`approval` when `user` may make decision `kind` on it now (`verdict`); refusals
        are audited."""

        async def attempt(members: Members) -> Approval:
            self.verdict(approval, user, kind, members, seen=seen, typed_at=typed_at)
            return approval

        return await self._checked(approval.id, user, kind, attempt)

    def verdict(
        self,
        approval: Approval,
        user: str,
        kind: DecisionKind,
        members: Members,
        *,
        seen: str | None = None,
        typed_at: datetime | None = None,
    ) -> None:
        """Raise `AlreadyDecided`, `NotAllowed` or `StaleVote` unless `user` may make decision
        `kind` on `approval` now. It waits for nothing (`Members`), so a vote runs it in its
        transaction.

        Saying no needs no version: a rejection is never stale. Saying yes counts only for
        the arguments the person was shown: `seen` names their version, `typed_at` is when a
        thread reply was typed.
        """
        if not approval.is_pending:
            raise AlreadyDecided(approval)
        own = user == approval.requester.slack_user
        if kind not in approval.allowed_decisions:
            raise NotAllowed(f"{kind.value} is not offered for {approval.tool_name}")
        if own and kind in (DecisionKind.APPROVE, DecisionKind.EDIT):
            raise NotAllowed(
                f"you requested this {approval.tool_name} call, so you cannot {kind.value} it"
            )
        if not own and not _may_decide(approval, user, members):
            approvers, channels = approval.policy.approvers, _card_channels(approval)
            raise NotAnApprover(approval.tool_name, kind, approvers, channels)
        if kind in (DecisionKind.APPROVE, DecisionKind.EDIT) and _stale(approval, seen, typed_at):
            raise StaleVote(approval)

    def _members(self) -> Members:
        return Members(self.groups, self.channels)

    async def _checked(
        self,
        approval_id: str,
        user: str,
        kind: DecisionKind,
        attempt: Callable[[Members], Awaitable[T]],
    ) -> T:
        """`attempt`, with the members it needs (`Members.settle`); a refusal is audited."""
        try:
            return await self._members().settle(attempt)
        except StaleVote:
            await self.audit(approval_id, "refused", user, decision=kind.value, reason="stale")
            raise
        except NotAllowed as refused:
            reason = refused.message
            await self.audit(approval_id, "refused", user, decision=kind.value, reason=reason)
            raise

    # -- slack bookkeeping ------------------------------------------------------------------

    async def set_slack_ref(self, approval_id: str, ref: SlackRef) -> Approval:
        """Remember the card's channel, ts and permalink."""
        return await self.store.set_slack_ref(approval_id, ref)

    @property
    def fallback_channel(self) -> str | None:
        """Where a card goes when its own channel refuses it for good (the routing file's,
        read each time: a SIGHUP may change it)."""
        return self.router.fallback_channel

    async def mark_posting(self, approval_id: str, channel: str | None) -> None:
        """A card is about to be posted in `channel`: a retry looks for it there first (None:
        Slack answered that it did not post it)."""
        await self.store.set_slack_posting(approval_id, channel)

    async def set_slack_error(self, approval_id: str, error: str | None) -> Approval:
        """Slack refused the card for good (`slack.error`; None: it took the card after all).
        SSE streams and webhooks see it at once, while the approval is still pending."""
        approval = await self.store.set_slack_error(approval_id, error, SLACK_ACTOR)
        self._notify(approval, "slack_error")
        return approval

    async def undeliverable(self, approval_id: str, error: str) -> Approval:
        """No card could be posted anywhere: reject, so the agent stops waiting on a card
        nobody can see. A decision like any other (waiters, SSE, webhooks); `AlreadyDecided`
        when someone was first."""
        return await self.decide(
            approval_id,
            approved=False,
            decided_by=SLACK_ACTOR,
            action=Action.UNDELIVERABLE,
            comment=error,
        )

    async def audit(self, approval_id: str, kind: str, actor: str | None, **detail: Any) -> None:
        """Append an audit event that changes nothing (a refused click, a posted card…)."""
        await self.store.record(approval_id, kind, actor, detail)

    # -- waiting ----------------------------------------------------------------------------

    async def watch(self, approval_id: str, timeout: float) -> Approval | Wait:
        """The record when it is no longer pending; else the wait, parked: a future done with
        the decided record, with None after `timeout` (the record is still pending), or with
        `Unavailable` when the bot shuts down. Cancel it to stop waiting.

        A parked wait is its future, a timer and the callback that forgets both, and no task of
        its own: thousands may be parked, and each task or `asyncio.wait` costs a few kB more.
        """
        loop = asyncio.get_running_loop()
        wait: Wait = loop.create_future()
        self._waiters[approval_id].add(wait)  # before reading: a decision in between is seen
        try:
            approval = await self.store.get(approval_id)
        except BaseException:
            self._forget(approval_id, None, wait)
            raise
        if not approval.is_pending:
            self._forget(approval_id, None, wait)
            return approval
        timer = loop.call_later(timeout, _time_up, wait)
        wait.add_done_callback(partial(self._forget, approval_id, timer))
        return wait

    async def wait(
        self, approval_id: str, timeout: float, hangup: asyncio.Future[None] | None = None
    ) -> Approval | None:
        """The record once it is no longer pending, or the pending record after `timeout`;
        None as soon as `hangup` is done (the agent hung up). `watch`, awaited."""
        wait = await self.watch(approval_id, timeout)
        if isinstance(wait, Approval):
            return wait
        hung_up = partial(_hung_up, wait)
        if hangup is not None:
            hangup.add_done_callback(hung_up)
        try:
            decided = await wait
        except asyncio.CancelledError:
            if hangup is None or not hangup.done() or not wait.cancelled():
                raise
            return None
        finally:
            if hangup is not None:
                hangup.remove_done_callback(hung_up)
        return decided if decided is not None else await self.store.get(approval_id)

    def _forget(self, approval_id: str, timer: asyncio.TimerHandle | None, wait: Wait) -> None:
        """A wait has ended: its timer and its place among the approval's waiters go."""
        if timer is not None:
            timer.cancel()
        waiters = self._waiters.get(approval_id)
        if waiters is not None:
            waiters.discard(wait)
            if not waiters:
                del self._waiters[approval_id]

    @property
    def topics(self) -> list[str]:
        """The outbox topics the store queues work for."""
        return [*self.store.outbox_topics, *self.store.update_topics]

    @property
    def waiting(self) -> int:
        """How many waits are open right now."""
        return sum(len(futures) for futures in self._waiters.values())

    def waits(self) -> dict[str, int]:
        """How many waits are open right now per approval id (a copy: read, never changed)."""
        return {
            approval_id: len(futures) for approval_id, futures in self._waiters.items() if futures
        }

    def release_waiters(self) -> None:
        """Shutting down: answer every open wait now, so agents reconnect instead of hanging."""
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(Unavailable("the bot is restarting; wait again"))

    def _resolve(self, approval: Approval) -> None:
        for future in self._waiters.pop(approval.id, ()):
            if not future.done():
                future.set_result(approval)
        self._notify(approval, "decided")

    def _notify(self, approval: Approval, kind: str) -> None:
        for observer in self.observers:
            try:
                observer.approval_changed(approval, kind)
            except Exception:  # one broken observer must not undo a committed decision
                log.exception("observer %r failed on %s", observer, approval.id)

    async def changed_elsewhere(self, approval_id: str) -> None:
        """Another process (the CLI, another replica) changed this approval: wake its waiters
        from the store, and the timers, SSE streams and outbox workers of this one."""
        try:
            approval = await self.store.get(approval_id)
        except BotError:
            return
        if approval.is_pending:
            self._timer_wake.set()
            self._notify(approval, "changed")
        else:
            self._resolve(approval)

    async def recheck(self) -> None:
        """Reports of changes elsewhere may have been missed: re-read what is waited for here."""
        self._timer_wake.set()
        for approval_id in list(self._waiters):
            await self.changed_elsewhere(approval_id)

    async def start(self) -> None:
        """Listen for changes made by other processes on the same store."""
        tasks: set[asyncio.Task[None]] = set()

        def spawn(work: Coroutine[Any, Any, None]) -> None:
            task = asyncio.get_running_loop().create_task(work)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        await self.store.watch(
            lambda approval_id: spawn(self.changed_elsewhere(approval_id)),
            on_reconnect=lambda: spawn(self.recheck()),
        )


def _time_up(wait: Wait) -> None:
    """A wait's timeout: it ends with no decision (None), unless one came first."""
    if not wait.done():
        wait.set_result(None)


def _hung_up(wait: Wait, _: asyncio.Future[None]) -> None:
    """A wait's agent hung up: the wait ends at once."""
    wait.cancel()


def _may_decide(approval: Approval, user: str, members: Members) -> bool:
    approvers = approval.policy.approvers
    if approvers:
        groups = (a for a in approvers if a.startswith("S"))
        return user in approvers or any(user in members.group(g) for g in groups)
    return any(user in members.channel(c) for c in _card_channels(approval))


def _card_channels(approval: Approval) -> list[str]:
    """Where the approval's cards are: its channel, and the escalation channel once escalated."""
    channels = [approval.slack.channel or approval.channel]
    escalate_to = approval.policy.escalate_to
    if approval.progress.escalated and escalate_to and not escalate_to.startswith("S"):
        channels.append(escalate_to)
    return channels


def _stale(approval: Approval, seen: str | None, typed_at: datetime | None) -> bool:
    """True when a vote was cast on other arguments than the ones being approved now.

    With neither a version nor a time (a card posted before votes carried versions), the
    person saw the arguments as first submitted.
    """
    if seen is not None:
        return seen != approval.args_version
    if typed_at is not None:
        edited_at = approval.progress.edited_at
        return edited_at is not None and typed_at < edited_at
    return approval.progress.args is not None


def _policy_outcome(route: Route, approval: Approval) -> PolicyOutcome | None:
    """What the routing file did besides routing: decided the call itself (no card with
    buttons: a card without them only with `notify`), or skipped rules whose `when` failed."""
    detail = {"skipped": list(route.skipped)} if route.skipped else {}
    if route.decision is None:
        standing = may_stand(approval)  # a standing approval may decide it (`bot.grants`)
        return PolicyOutcome(detail=detail, standing=standing) if detail or standing else None
    policy = route.decision
    decision = Decision(
        approved=policy.approved,
        action=Action.APPROVE if policy.approved else Action.REJECT,
        approved_args=approval.args if policy.approved else None,
        decided_by=policy.decided_by,
        approvers=[],
        comment=policy.reason,
        decided_at=approval.created_at,
    )
    return PolicyOutcome(decision, cards=policy.notify, detail=detail)
