"""OpenAI Agents SDK: decide a run's tool approvals (`result.interruptions`) in Slack.

A tool declared with `@function_tool(needs_approval=True)` pauses the run with one
`ToolApprovalItem` per call. Each becomes one approval whose `toolCallId` is the model's call
id, so running this again after a crash or a timeout resumes the same cards. The SDK can only
approve or reject a call as proposed, so the card offers no Edit button, and the request's
`argsSchema` admits only the proposed arguments: the bot refuses an API decision approving
other ones (422) before anything is stored. Should one come anyway (a caller's own
`args_schema`, an older bot), it reaches the model as a refusal naming those arguments.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from agents import (
    Agent,
    Runner,
    RunResult,
    RunResultStreaming,
    RunState,
    ToolApprovalItem,
    TResponseInputItem,
)

from bot.adapters._common import ToolRequest, check_template, decide_all, fill_prompt
from bot.models import Decision, DecisionKind, Priority
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import refusal
from bot.sdk.schema import pinned_schema
from bot.sdk.wire import GateFields, new_tool_call_id

__all__ = ["EDIT_NOTE", "resolve_interruptions", "run_with_approvals"]

#: added to every card's context: this framework runs a call as proposed or not at all
EDIT_NOTE = (
    "Edits are not possible for this agent (OpenAI Agents SDK): "
    "approve or reject the call as proposed."
)
_DECISIONS = (DecisionKind.APPROVE, DecisionKind.REJECT, DecisionKind.FEEDBACK)


async def resolve_interruptions(
    client: ApprovalClient,
    result: RunResult | RunResultStreaming,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    **fields: Unpack[GateFields],
) -> RunState[Any]:
    """Ask Slack about every interruption of `result`; its run state with each decision applied.

    All cards are posted at once and decided in any order. `prompt` may use `{tool_name}` and
    `{tool_arguments}`. `ApprovalTimeout` leaves the run paused: call this again to resume.
    """
    check_template("prompt", prompt)
    _check_decisions(fields.get("allowed_decisions"))
    state = result.to_state()
    items = list(result.interruptions)
    card = {**fields, "channel": channel, "priority": priority}
    decisions = await decide_all(client, [_request(item, prompt, card) for item in items], timeout)
    for item, decision in zip(items, decisions, strict=True):
        _apply(state, item, decision)
    return state


async def run_with_approvals(
    agent: Agent[Any],
    input: str | list[TResponseInputItem],
    client: ApprovalClient,
    *,
    run_options: Mapping[str, Any] | None = None,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    **fields: Unpack[GateFields],
) -> RunResult:
    """`Runner.run(agent, input)`, resumed after each round of Slack decisions until done.

    `run_options` go to every `Runner.run` (`context`, `max_turns`, `run_config`, …); the other
    keywords are the cards' fields, as in `resolve_interruptions`.
    """
    check_template("prompt", prompt)
    _check_decisions(fields.get("allowed_decisions"))
    options = dict(run_options or {})
    result = await Runner.run(agent, input, **options)
    while result.interruptions:
        state = await resolve_interruptions(
            client,
            result,
            channel=channel,
            priority=priority,
            prompt=prompt,
            timeout=timeout,
            **fields,
        )
        result = await Runner.run(agent, state, **options)
    return result


# -- one approval item ----------------------------------------------------------------------


def _request(item: ToolApprovalItem, prompt: str | None, card: Mapping[str, Any]) -> ToolRequest:
    """The tool name, arguments and submit fields of one interruption."""
    tool_name = _tool_name(item)
    raw = _raw_arguments(item)
    args = _arguments(raw)
    submit: dict[str, Any] = {
        **card,
        "args_schema": card.get("args_schema") or pinned_schema(args),
        "tool_call_id": _call_id(item) or new_tool_call_id(),
        "prompt": fill_prompt(prompt, tool_name, raw),
        "allowed_decisions": card.get("allowed_decisions") or list(_DECISIONS),
        "context": "\n\n".join(filter(None, [card.get("context"), EDIT_NOTE])),
    }
    if card.get("requester") is None:
        agent_name = getattr(getattr(item, "agent", None), "name", None)
        submit["requester"] = {"agent": agent_name} if agent_name else None
    return ToolRequest(tool_name, args, submit)


def _tool_name(item: ToolApprovalItem) -> str:
    name = getattr(item, "name", None) or getattr(item, "tool_name", None)
    if not name:
        name = _raw_field(item, "name")
    return str(name or "unnamed_tool")


def _raw_arguments(item: ToolApprovalItem) -> str:
    """The call's arguments as the model sent them; older releases only have `raw_item`."""
    raw = getattr(item, "arguments", None)
    if raw is None:
        raw = _raw_field(item, "arguments")
    if raw is None:
        return "{}"
    return raw if isinstance(raw, str) else json.dumps(raw, default=str)


def _call_id(item: ToolApprovalItem) -> str | None:
    call_id = (
        getattr(item, "call_id", None) or _raw_field(item, "call_id") or _raw_field(item, "id")
    )
    return str(call_id) if call_id else None


def _raw_field(item: ToolApprovalItem, name: str) -> Any:
    raw = getattr(item, "raw_item", None)
    return raw.get(name) if isinstance(raw, dict) else getattr(raw, name, None)


def _arguments(raw: str) -> dict[str, Any]:
    """The arguments as a JSON object; anything else is shown whole under `arguments`."""
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"arguments": raw}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def _apply(state: RunState[Any], item: ToolApprovalItem, decision: Decision) -> None:
    """Approve or reject `item` in `state`; never run arguments nobody approved."""
    tool_name = _tool_name(item)
    args = _arguments(_raw_arguments(item))
    if decision.approved and decision.approved_args in (None, args):
        state.approve(item)
        return
    if decision.approved:
        edited = json.dumps(decision.approved_args, ensure_ascii=False)
        message = (
            f"The reviewer approved {tool_name} only with these arguments: {edited}. "
            "It did not run; call it again with them if they still serve."
        )
    else:
        message = refusal(decision, tool_name)
    if "rejection_message" in inspect.signature(state.reject).parameters:
        state.reject(item, rejection_message=message)
    else:  # releases before the message argument tell the model their own refusal
        state.reject(item)


# -- shared checks ----------------------------------------------------------------------------


def _check_decisions(allowed: Sequence[DecisionKind | str] | None) -> None:
    if allowed and DecisionKind.EDIT in [DecisionKind(kind) for kind in allowed]:
        raise ValueError("the OpenAI Agents SDK cannot run edited arguments: leave out 'edit'")
