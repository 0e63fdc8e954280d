"""Agents for the workspace page: pretend ones, each run submitting an example call through
the SDK, waiting on `/wait` like a real agent and reporting what it received; and every agent
the bot knows is waiting now, however it came in (curl, `approval-bot demo`, an SDK script)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.dev.examples import Example
from bot.devslack import ChangeFeed
from bot.errors import NotFound
from bot.models import Approval
from bot.sdk import ApprovalClient, ApprovalError
from bot.service import ApprovalService

__all__ = [
    "AGENT_CHANGE",
    "WAITING_CHANGE",
    "AgentRun",
    "AgentRuns",
    "RunState",
    "WaitingAgent",
    "waiting_agents",
    "watch_waiting",
]

log = logging.getLogger(__name__)

#: the workspace change published whenever a run moves on
AGENT_CHANGE = "agent.updated"
#: the workspace change published whenever the set of approvals waited on changes
WAITING_CHANGE = "agents.waiting"
#: runs kept for the page; older ones are forgotten
MAX_RUNS = 30
#: waiting agents shown on the page, newest first
MAX_WAITING = 30
#: how often the bot's waits are looked at for the page (a dict read, in this process)
WATCH_INTERVAL = 0.25


class RunState(StrEnum):
    """Where a pretend agent stands."""

    #: sending `POST /v1/approvals`
    SUBMITTING = "submitting"
    #: blocked in `GET /v1/approvals/{id}/wait`
    WAITING = "waiting"
    #: the decision arrived
    DECIDED = "decided"
    #: the API refused or could not be reached
    FAILED = "failed"


@dataclass
class AgentRun:
    """One pretend agent's call and what came back to it."""

    id: str
    example: Example
    started_at: float
    state: RunState = RunState.SUBMITTING
    approval_id: str | None = None
    channel: str | None = None
    status: str | None = None
    decision: dict[str, Any] | None = None
    error: str | None = None
    finished_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """How the page shows it."""
        return {
            "id": self.id,
            "example": self.example.key,
            "toolName": self.example.tool_name,
            "args": dict(self.example.args),
            "state": self.state.value,
            "approvalId": self.approval_id,
            "channel": self.channel,
            "status": self.status,
            "decision": self.decision,
            "error": self.error,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }


@dataclass
class AgentRuns:
    """The runs started from the page, newest first, announced on the workspace feed."""

    feed: ChangeFeed
    #: builds the SDK client a run talks through (the bot's own URL and agent token)
    client: Callable[[], ApprovalClient]
    runs: list[AgentRun] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def start(self, example: Example) -> AgentRun:
        """Begin a run in the background and return it, still submitting."""
        run = AgentRun(id=f"run-{next(self._ids)}", example=example, started_at=time.time())
        self.runs.insert(0, run)
        del self.runs[MAX_RUNS:]
        task = asyncio.get_running_loop().create_task(self._run(run), name=run.id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._announce(run)
        return run

    async def _run(self, run: AgentRun) -> None:
        example = run.example
        try:
            async with self.client() as client:
                approval = await client.submit(example.tool_name, example.args, **example.fields)
                run.approval_id, run.channel = approval.id, approval.channel
                run.state, run.status = RunState.WAITING, approval.status.value
                self._announce(run)
                decided = await client.wait(approval.id)
        except ApprovalError as exc:
            run.state, run.error = RunState.FAILED, f"{exc.code}: {exc.message}"
        except Exception as exc:  # shown on the page rather than lost in a task
            log.exception("pretend agent %s failed", run.id)
            run.state, run.error = RunState.FAILED, f"{type(exc).__name__}: {exc}"
        else:
            run.state, run.status = RunState.DECIDED, decided.status.value
            if decided.decision is not None:
                run.decision = decided.decision.to_wire()
        run.finished_at = time.time()
        self._announce(run)

    def _announce(self, run: AgentRun) -> None:
        self.feed.publish(AGENT_CHANGE, run=run.id, state=run.state.value)

    async def stop(self) -> None:
        """Cancel the runs still waiting (the bot is shutting down)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True)
class WaitingAgent:
    """An agent blocked in `GET /v1/approvals/{id}/wait`, as the bot knows it: the approval it
    waits on and how many waits are open on it."""

    approval: Approval
    waits: int

    def to_json(self) -> dict[str, Any]:
        """How the page shows it; the agent's name is its own word, shown as text."""
        approval = self.approval
        return {
            "approvalId": approval.id,
            "toolName": approval.tool_name,
            "agent": approval.requester.agent,
            "channel": approval.slack.channel or approval.channel,
            "priority": approval.priority.value,
            "since": approval.created_at.timestamp(),
            "waits": self.waits,
        }


async def waiting_agents(
    service: ApprovalService, *, besides: Collection[str] = ()
) -> list[WaitingAgent]:
    """Every agent waiting on a decision now, newest request first, except those waiting on
    the approvals in `besides` (the page's own runs). Reads the service's waits and the store;
    changes nothing."""
    waiting = []
    for approval_id, waits in service.waits().items():
        if approval_id in besides:
            continue
        try:
            approval = await service.get(approval_id)
        except NotFound:
            continue
        if approval.is_pending:
            waiting.append(WaitingAgent(approval, waits))
    waiting.sort(key=lambda agent: agent.approval.created_at, reverse=True)
    return waiting[:MAX_WAITING]


async def watch_waiting(service: ApprovalService, feed: ChangeFeed) -> None:
    """Announce on the feed each time the approvals waited on change, so the page redraws
    (the service keeps its waits to itself; they are read, never touched). Runs until
    cancelled."""
    seen: dict[str, int] = {}
    while True:
        now = service.waits()
        if now != seen:
            seen = now
            feed.publish(WAITING_CHANGE, waiting=len(now))
        await asyncio.sleep(WATCH_INTERVAL)
