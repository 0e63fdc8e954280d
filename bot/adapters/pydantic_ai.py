"""Pydantic AI: decide deferred tool approvals (`DeferredToolRequests`) in Slack.

A tool declared with `requires_approval=True` (or raising `ApprovalRequired`) ends the run with
`DeferredToolRequests`. Each call in `.approvals` becomes one approval whose `toolCallId` is the
model's call id, so asking again after a crash or a timeout resumes the same cards. Approve runs
the call as proposed, Edit runs it with the edited arguments (`ToolApproved(override_args=…)`,
which replace the call's whole), and Reject or Feedback hands the model the reviewer's reason
(`ToolDenied(message=…)`). Each request carries its tool's JSON schema as `argsSchema` where the
agent's tools are known, so the bot refuses an edit or an API decision the tool could not be
called with before anything is stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Unpack

from pydantic_ai import (
    DeferredToolRequests,
    DeferredToolResults,
    RunContext,
    ToolApproved,
    ToolDenied,
)
from pydantic_ai.agent import AbstractAgent, AgentRunResult
from pydantic_ai.messages import ToolCallPart

from bot.adapters._common import ToolRequest, check_template, decide_all, fill_prompt
from bot.models import Decision, Priority
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import refusal
from bot.sdk.schema import tool_schema
from bot.sdk.wire import GateFields

__all__ = ["DeferredHandler", "approval_handler", "resolve_deferred", "run_with_approvals"]

#: what `HandleDeferredToolCalls(handler=…)` takes
DeferredHandler = Callable[
    [RunContext[Any], DeferredToolRequests], Awaitable[DeferredToolResults | None]
]


async def resolve_deferred(
    client: ApprovalClient,
    requests: DeferredToolRequests,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    tool_schemas: Mapping[str, Any] | None = None,
    **fields: Unpack[GateFields],
) -> DeferredToolResults:
    """Ask Slack about every call in `requests.approvals`; the results to resume the run with.

    All cards are posted at once and decided in any order. `prompt` may use `{tool_name}` and
    `{tool_arguments}`. `ApprovalTimeout` leaves the run paused: call this again to resume.
    Calls waiting for external results (`requests.calls`) are left to the caller.
    `tool_schemas` maps tool names to their JSON schemas (`ToolDefinition.parameters_json_
    schema`); each call's goes with it as `argsSchema` unless `args_schema` is given.
    """
    check_template("prompt", prompt)
    parts = list(requests.approvals)
    card = {**fields, "channel": channel, "priority": priority}
    schemas = tool_schemas or {}
    submits = [_request(part, prompt, card, schemas.get(part.tool_name)) for part in parts]
    decisions = await decide_all(client, submits, timeout)
    results = DeferredToolResults(
        approvals={
            part.tool_call_id: _result(part, decision)
            for part, decision in zip(parts, decisions, strict=True)
        }
    )
    answered_by = getattr(results, "answered_by", None)  # newer releases record who decided
    if isinstance(answered_by, dict):
        for part, decision in zip(parts, decisions, strict=True):
            answered_by[part.tool_call_id] = decision.decided_by
    return results


def approval_handler(
    client: ApprovalClient,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    **fields: Unpack[GateFields],
) -> DeferredHandler:
    """A handler for `HandleDeferredToolCalls`: approvals are decided in Slack inside the run."""
    check_template("prompt", prompt)

    async def handle(
        ctx: RunContext[Any], requests: DeferredToolRequests
    ) -> DeferredToolResults | None:
        if not requests.approvals:
            return None
        return await resolve_deferred(
            client,
            requests,
            channel=channel,
            priority=priority,
            prompt=prompt,
            timeout=timeout,
            tool_schemas=_run_schemas(ctx, requests),
            **fields,
        )

    return handle


async def run_with_approvals(
    agent: AbstractAgent[Any, Any],
    user_prompt: str | None,
    client: ApprovalClient,
    *,
    run_options: Mapping[str, Any] | None = None,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    **fields: Unpack[GateFields],
) -> AgentRunResult[Any]:
    """`agent.run(user_prompt)`, re-run with each round of Slack decisions until it is done.

    The agent's output type must include `DeferredToolRequests`. `run_options` go to every
    `agent.run` (`deps`, `model`, `usage_limits`, …). The loop stops when no approval is pending,
    or when calls wait for external results, which it returns for the caller to supply.
    """
    check_template("prompt", prompt)
    options = dict(run_options or {})
    if fields.get("requester") is None and agent.name:
        fields["requester"] = {"agent": agent.name}
    result = await agent.run(user_prompt, **options)
    while (
        isinstance(result.output, DeferredToolRequests)
        and result.output.approvals
        and not result.output.calls
    ):
        decided = await resolve_deferred(
            client,
            result.output,
            channel=channel,
            priority=priority,
            prompt=prompt,
            timeout=timeout,
            tool_schemas=_agent_schemas(agent),
            **fields,
        )
        result = await agent.run(
            message_history=result.all_messages(), deferred_tool_results=decided, **options
        )
    return result


# -- one deferred call ------------------------------------------------------------------------


def _request(
    part: ToolCallPart, prompt: str | None, card: Mapping[str, Any], schema: Any
) -> ToolRequest:
    """The tool name, arguments and submit fields of one call."""
    args = part.args_as_dict()
    submit = {
        **card,
        "tool_call_id": part.tool_call_id,
        "prompt": fill_prompt(prompt, part.tool_name, part.args_as_json_str()),
        "args_schema": card.get("args_schema") or tool_schema(schema, args),
    }
    return ToolRequest(part.tool_name, args, submit)


def _agent_schemas(agent: AbstractAgent[Any, Any]) -> dict[str, Any]:
    """The JSON schemas of the agent's own tools (its function toolsets), by name."""
    schemas: dict[str, Any] = {}
    for toolset in getattr(agent, "toolsets", None) or ():
        tools = getattr(toolset, "tools", None)
        if not isinstance(tools, Mapping):
            continue
        for name, tool in tools.items():
            definition = getattr(tool, "tool_def", None)
            schemas.setdefault(str(name), getattr(definition, "parameters_json_schema", None))
    return schemas


def _run_schemas(ctx: RunContext[Any], requests: DeferredToolRequests) -> dict[str, Any]:
    """The JSON schemas of the tools `requests` ask about, as the running step knows them."""
    manager = getattr(ctx, "tool_manager", None)
    schemas: dict[str, Any] = {}
    for part in requests.approvals:
        try:
            definition = manager.get_tool_def(part.tool_name) if manager is not None else None
        except ValueError:  # a manager not prepared for this step
            definition = None
        schemas[part.tool_name] = getattr(definition, "parameters_json_schema", None)
    return schemas


def _result(part: ToolCallPart, decision: Decision) -> bool | ToolApproved | ToolDenied:
    """Approve as proposed, approve with the edited arguments, or deny with the reason."""
    if not decision.approved:
        return ToolDenied(refusal(decision, part.tool_name))
    if decision.approved_args is None or decision.approved_args == part.args_as_dict():
        return True
    return ToolApproved(override_args=decision.approved_args)
