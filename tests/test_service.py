from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import (
    AlreadyDecided,
    AlreadyVoted,
    Invalid,
    InvalidEdit,
    NotAllowed,
    StaleVote,
)
from bot.models import (
    Action,
    Approval,
    ApprovalRequest,
    OnTimeout,
    Status,
    args_version,
    utcnow,
)
from bot.policy import Routing, Rule
from bot.service import TIMEOUT_ACTOR, ApprovalService
from bot.slack.lookups import SlackGroups, TtlCache
from bot.store import SQLiteStore, open_store
from tests.conftest import BOT_TOKEN

SCHEMA = {
    "type": "object",
    "properties": {"version": {"type": "string"}, "replicas": {"type": "integer", "maximum": 10}},
    "required": ["version"],
}


def request(**fields: Any) -> ApprovalRequest:
    return ApprovalRequest.model_validate(
        {"toolName": "deploy_service", "args": {"version": "1.4.2"}, **fields}
    )


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Status]] = []

    def approval_changed(self, approval: Approval, kind: str) -> None:
        self.seen.append((approval.id, kind, approval.status))


async def test_submit_applies_defaults_and_notifies(service: ApprovalService) -> None:
    recorder = Recorder()
    service.observers.append(recorder)

    approval, created = await service.submit(request(timeoutSeconds=60))

    assert created
    assert approval.channel == "C0OPS"
    assert approval.priority.value == "normal"
    assert approval.on_timeout.value == "reject"
    assert [d.value for d in approval.allowed_decisions] == [
        "approve",
        "edit",
        "reject",
        "feedback",
    ]
    assert approval.expires_at == approval.created_at + timedelta(seconds=60)
    assert approval.tool_call_id.startswith("call_")
    assert recorder.seen == [(approval.id, "submitted", Status.PENDING)]


async def test_submit_without_any_channel_is_invalid(store: SQLiteStore) -> None:
    service = ApprovalService(store)
    with pytest.raises(Invalid, match="channel"):
        await service.submit(request())


async def test_submit_refuses_args_that_break_their_own_schema(service: ApprovalService) -> None:
    with pytest.raises(InvalidEdit, match=r"args\.replicas"):
        await service.submit(request(args={"version": "1", "replicas": 99}, argsSchema=SCHEMA))


async def test_waiter_is_woken_the_moment_a_decision_commits(service: ApprovalService) -> None:
    approval, _ = await service.submit(request())
    waiters = [asyncio.create_task(service.wait(approval.id, 30)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert service.waiting == 3

    await service.decide(approval.id, approved=True, decided_by="U0ALICE", comment="go")
    results = await asyncio.wait_for(asyncio.gather(*waiters), 1)

    assert {r.status for r in results} == {Status.APPROVED}
    assert results[0].decision is not None and results[0].decision.comment == "go"
    assert service.waiting == 0


async def test_wait_on_a_decided_approval_returns_at_once(service: ApprovalService) -> None:
    approval, _ = await service.submit(request())
    await service.decide(approval.id, approved=False, decided_by="U0BOB", comment="not today")

    decided = await asyncio.wait_for(service.wait(approval.id, 30), 0.5)

    assert decided.status is Status.REJECTED
    assert decided.decision is not None and decided.decision.action is Action.REJECT


async def test_wait_times_out_with_the_pending_record(service: ApprovalService) -> None:
    approval, _ = await service.submit(request())
    still = await service.wait(approval.id, 0.05)
    assert still.status is Status.PENDING
    assert service.waiting == 0


@pytest.mark.parametrize(
    ("approved_args", "action", "run_with"),
    [
        pytest.param(None, Action.APPROVE, {"version": "1.4.2"}, id="original-args"),
        pytest.param({"version": "1.4.2"}, Action.APPROVE, {"version": "1.4.2"}, id="same-args"),
        pytest.param({"version": "1.4.3"}, Action.EDIT, {"version": "1.4.3"}, id="edited"),
    ],
)
async def test_approve_records_the_args_to_run_with(
    service: ApprovalService,
    approved_args: dict[str, Any] | None,
    action: Action,
    run_with: dict[str, Any],
) -> None:
    approval, _ = await service.submit(request(argsSchema=SCHEMA))
    decided = await service.decide(
        approval.id, approved=True, decided_by="U0ALICE", approved_args=approved_args
    )
    assert decided.decision is not None
    assert (decided.decision.action, decided.decision.approved_args) == (action, run_with)
    assert decided.decision.approvers == ["U0ALICE"]


async def test_edits_are_validated_against_args_schema(service: ApprovalService) -> None:
    approval, _ = await service.submit(request(argsSchema=SCHEMA))
    with pytest.raises(InvalidEdit, match=r"approvedArgs\.replicas"):
        await service.decide(
            approval.id,
            approved=True,
            decided_by="U0ALICE",
            approved_args={"version": "2", "replicas": 50},
        )
    assert (await service.get(approval.id)).status is Status.PENDING


async def test_cancel_then_decide_conflicts(service: ApprovalService) -> None:
    approval, _ = await service.submit(request(requester={"agent": "release-bot"}))
    cancelled = await service.cancel(approval.id, reason="superseded")
    assert cancelled.status is Status.CANCELLED
    assert cancelled.decision is not None
    assert (cancelled.decision.action, cancelled.decision.decided_by) == (
        Action.CANCEL,
        "release-bot",
    )
    with pytest.raises(AlreadyDecided, match="cancelled"):
        await service.decide(approval.id, approved=True, decided_by="U0ALICE")


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("on_timeout", "status", "approved_args"),
    [
        pytest.param("reject", Status.EXPIRED, None, id="reject"),
        pytest.param("approve", Status.APPROVED, {"version": "1.4.2"}, id="approve"),
    ],
)
async def test_expiry_applies_on_timeout(
    store: SQLiteStore, on_timeout: str, status: Status, approved_args: Any
) -> None:
    clock = Clock()
    # only the routing file may approve at timeout; the request may then ask for it too
    rule = Rule(tools=["*"], on_timeout=OnTimeout(on_timeout), timeout_seconds=60)
    service = ApprovalService(
        store, default_channel="C0OPS", clock=clock, router=Routing(rules=[rule])
    )
    approval, _ = await service.submit(request(timeoutSeconds=60, onTimeout=on_timeout))
    assert await service.expire_due() == []

    clock.advance(61)
    [expired] = await service.expire_due()

    assert expired.id == approval.id and expired.status is status
    assert expired.decision is not None
    assert expired.decision.action is Action.TIMEOUT
    assert expired.decision.decided_by == TIMEOUT_ACTOR
    assert expired.decision.approved_args == approved_args


async def test_escalate_extends_once_then_expires(store: SQLiteStore) -> None:
    clock = Clock()
    recorder = Recorder()
    service = ApprovalService(store, default_channel="C0OPS", clock=clock, observers=[recorder])
    approval, _ = await service.submit(request(timeoutSeconds=60, onTimeout="escalate"))

    clock.advance(61)
    [escalated] = await service.expire_due()
    assert escalated.status is Status.PENDING
    assert escalated.expires_at == clock.now + timedelta(seconds=60)
    assert (approval.id, "escalated", Status.PENDING) in recorder.seen

    clock.advance(61)
    [expired] = await service.expire_due()
    assert expired.status is Status.EXPIRED


async def test_timer_loop_expires_without_being_asked(service: ApprovalService) -> None:
    timers = asyncio.create_task(service.run_timers())
    try:
        approval, _ = await service.submit(request(timeoutSeconds=1))
        expired = await asyncio.wait_for(service.wait(approval.id, 5), 5)
        assert expired.status is Status.EXPIRED
    finally:
        timers.cancel()


async def test_a_reconnecting_agent_gets_a_decision_made_before_a_restart(store_url: str) -> None:
    first = open_store(store_url)
    await first.open()
    service = ApprovalService(first, default_channel="C0OPS")
    approval, _ = await service.submit(request())
    await service.decide(approval.id, approved=True, decided_by="U0ALICE")
    await first.close()

    second = open_store(store_url)
    await second.open()
    try:
        restarted = ApprovalService(second)
        decided = await asyncio.wait_for(restarted.wait(approval.id, 30), 1)
        assert decided.status is Status.APPROVED
    finally:
        await second.close()


async def test_a_decision_from_another_process_wakes_waiters(
    service: ApprovalService, store_url: str
) -> None:
    await service.start()
    approval, _ = await service.submit(request())
    waiter = asyncio.create_task(service.wait(approval.id, 30))
    await asyncio.sleep(0.05)

    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "decide",
        approval.id,
        "--approve",
        "--as",
        "oncall",
        env={"APPROVAL_DB": store_url, "PATH": ""},
    )
    assert await cli.wait() == 0

    decided = await asyncio.wait_for(waiter, 5)
    assert decided.decision is not None and decided.decision.decided_by == "oncall"


async def test_observer_failure_does_not_undo_a_decision(service: ApprovalService) -> None:
    class Broken:
        def approval_changed(self, approval: Approval, kind: str) -> None:
            raise RuntimeError("boom")

    service.observers.append(Broken())
    approval, _ = await service.submit(request())
    decided = await service.decide(approval.id, approved=True, decided_by="U0ALICE")
    assert decided.status is Status.APPROVED


@pytest.mark.parametrize(
    "votes",
    [
        pytest.param([("U0ALICE", None)], id="one-of-one"),
        pytest.param([("U0ALICE", {"version": "2"})], id="edited-one-of-one"),
        pytest.param([("U0ALICE", None), ("U0BOB", None)], id="two-of-two"),
        pytest.param([("U0ALICE", {"version": "2"}), ("U0BOB", None)], id="edited-then-approved"),
    ],
)
async def test_the_deciding_vote_answers_the_record_as_stored(
    store: SQLiteStore, votes: list[tuple[str, dict[str, Any] | None]]
) -> None:
    """The vote that decides answers its record without reading it back: it must be exactly
    what the store then holds, on each engine, edits and progress included."""
    rule = Rule(tools=["*"], approvers=["U0ALICE", "U0BOB"], required_approvals=len(votes))
    service = ApprovalService(store, default_channel="C0OPS", router=Routing(rules=[rule]))
    approval, _ = await service.submit(request())
    for user, args in votes:
        seen = (await store.get(approval.id)).args_version  # what the voter was shown
        answered = await service.approve(approval.id, user=user, approved_args=args, seen=seen)
    assert answered.status is Status.APPROVED
    stored = await store.get(approval.id)
    assert answered.to_wire() == stored.to_wire()
    assert answered.progress == stored.progress and answered.policy == stored.policy


async def test_the_version_a_vote_names_follows_the_current_arguments(
    store: SQLiteStore,
) -> None:
    """The version of the arguments a vote must name is known from the stored fingerprint
    while they are the ones submitted, and is the edited ones' once someone edits: a vote
    naming the submitted version then counts for nothing."""
    rule = Rule(tools=["*"], approvers=["U0ALICE", "U0BOB"], required_approvals=2)
    service = ApprovalService(store, default_channel="C0OPS", router=Routing(rules=[rule]))
    approval, _ = await service.submit(request(args={"version": "1.4.2", "rows": [1, 2]}))
    submitted = args_version({"version": "1.4.2", "rows": [1, 2]})
    assert approval.args_version == (await store.get(approval.id)).args_version == submitted

    edited = {"version": "1.4.3", "rows": [1, 2]}
    await service.approve(approval.id, user="U0ALICE", approved_args=edited, seen=submitted)
    assert (await store.get(approval.id)).args_version == args_version(edited) != submitted
    with pytest.raises(StaleVote):
        await service.approve(approval.id, user="U0BOB", seen=submitted)
    decided = await service.approve(approval.id, user="U0BOB", seen=args_version(edited))
    assert decided.status is Status.APPROVED
    assert decided.decision is not None and decided.decision.approved_args == edited


async def test_a_vote_is_checked_on_the_record_it_is_counted_on(store: SQLiteStore) -> None:
    """The check runs in the vote's transaction: two clicks of one approver at once count
    once (the second is refused as already counted, nothing written for it), and a refusal
    leaves no vote behind."""
    rule = Rule(tools=["*"], approvers=["U0ALICE", "U0BOB"], required_approvals=2)
    service = ApprovalService(store, default_channel="C0OPS", router=Routing(rules=[rule]))
    approval, _ = await service.submit(request())
    seen = approval.args_version
    twice = await asyncio.gather(
        *(service.approve(approval.id, user="U0ALICE", seen=seen) for _ in range(2)),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in twice) == ["AlreadyVoted", "Approval"]
    refused = next(outcome for outcome in twice if isinstance(outcome, AlreadyVoted))
    assert refused.approval.progress.approved_by == ["U0ALICE"]
    with pytest.raises(NotAllowed):
        await service.approve(approval.id, user="U0MALLORY", seen=seen)
    events = [e for e in await store.events_since(0) if e.approval_id == approval.id]
    assert [e.kind for e in events if e.kind in ("voted", "refused")] == ["voted", "refused"]
    assert events[-1].actor == "U0MALLORY"
    current = await store.get(approval.id)
    assert current.is_pending and current.progress.approved_by == ["U0ALICE"]


@pytest.mark.parametrize("action", [Action.REJECT, Action.FEEDBACK])
async def test_a_rejection_is_checked_in_its_transaction_and_answers_the_record_as_stored(
    store: SQLiteStore, action: Action
) -> None:
    """A rejection is checked on the record it decides, as a vote is: a refusal writes
    nothing but its audit line, and the rejection answers exactly what the store holds."""
    rule = Rule(tools=["*"], approvers=["U0ALICE"])
    service = ApprovalService(store, default_channel="C0OPS", router=Routing(rules=[rule]))
    approval, _ = await service.submit(request())
    with pytest.raises(NotAllowed):
        await service.reject(approval.id, user="U0MALLORY", action=action, comment="no")
    assert (await store.get(approval.id)).is_pending
    answered = await service.reject(approval.id, user="U0ALICE", action=action, comment="why")
    stored = await store.get(approval.id)
    assert answered.status is Status.REJECTED and answered.to_wire() == stored.to_wire()
    assert stored.decision is not None and stored.decision.action is action
    kinds = [e.kind for e in await store.events_since(0) if e.approval_id == approval.id]
    assert kinds == ["submitted", "refused", "rejected"]
    with pytest.raises(AlreadyDecided):
        await service.reject(approval.id, user="U0ALICE")


async def test_a_vote_asks_slack_for_a_group_it_needs_once_then_counts(
    store: SQLiteStore, workspace: Any
) -> None:
    """The check in the vote's transaction waits on nothing: a group no cache holds is asked
    of Slack outside the transaction, once, and the vote runs again with the answer, even
    when the cache keeps nothing (ttl 0). A non-member is refused after the same one call."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=workspace.base_url)
    groups = SlackGroups(client, cache=TtlCache(ttl=0.0))
    rule = Rule(tools=["*"], approvers=["S0SRE"])  # the seeded group: alice and bob
    service = ApprovalService(
        store, default_channel="C0OPS", router=Routing(rules=[rule]), groups=groups
    )
    approval, _ = await service.submit(request())
    with pytest.raises(NotAllowed):
        await service.approve(approval.id, user="U0CAROL", seen=approval.args_version)
    assert len(workspace.calls_to("usergroups.users.list")) == 1
    decided = await service.approve(approval.id, user="U0BOB", seen=approval.args_version)
    assert decided.status is Status.APPROVED and decided.decision is not None
    assert decided.decision.decided_by == "U0BOB"
    assert len(workspace.calls_to("usergroups.users.list")) == 2
