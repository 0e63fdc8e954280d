"""Claude Agent SDK: tool permissions asked in Slack, by `can_use_tool` or a `PreToolUse` hook.

`slack_permission(client, …)` is a `can_use_tool` callback:
`ClaudeAgentOptions(can_use_tool=slack_permission(client, channel=…, priority=…))`. Each call
Claude Code would ask about becomes one approval whose `toolCallId` is the tool use id. Approve
answers `PermissionResultAllow(updated_input=approvedArgs)` (the complete input to run with, a
reviewer's edit included); Reject or Feedback answers `PermissionResultDeny(message=…)` with the
reviewer's reason, which the model reads. The card's headline is the call's command, file path
or URL (else Claude Code's own "Claude wants to …"), an Edit's change is shown as a diff, and
`argsSchema` admits the call's own argument names only, so an edit changes values, never which
arguments there are.

How long a permission callback may take is not the SDK's to say: the installed SDK (0.2.190)
awaits it without a time limit. Claude Code may withdraw the request (`control_cancel_request`:
an interrupt, or its own deadline); the SDK then cancels the callback, which withdraws the card
(`cancelled`), and the call does not run. `timeout=` bounds the wait here: the card is withdrawn
and the call denied with a message saying nobody decided in time.

For waits longer than the process should hold a call open, `slack_hook(client, wait=…)` is a
`PreToolUse` hook callback (`HookMatcher(hooks=[…])`): a decision made within `wait` seconds is
answered at once (`allow` with `updatedInput`, or `deny` with the reason); otherwise it answers
`defer`, which ends the run with `ResultMessage.deferred_tool_use`. `wait_for_deferred` waits
for that card's decision; resuming the session (`ClaudeAgentOptions(resume=session_id)`) has
Claude Code put the same call through `PreToolUse` again, and the hook answers from the card.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Unpack, cast

from claude_agent_sdk import (
    CanUseTool,
    HookCallback,
    HookContext,
    HookInput,
    HookJSONOutput,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    ToolPermissionContext,
)
from pydantic import ValidationError

from bot import claude_code
from bot.adapters._common import check_template, fill_prompt
from bot.adapters._waiting import decide_or_withdraw
from bot.models import Decision, Priority, Requester
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import ApprovalError, ApprovalTimeout, refusal
from bot.sdk.schema import tool_schema
from bot.sdk.wire import GateFields, new_tool_call_id

__all__ = [
    "AGENT",
    "DEFAULT_HOOK_WAIT",
    "slack_hook",
    "slack_permission",
    "wait_for_deferred",
]

log = logging.getLogger(__name__)

#: `requester.agent` on the cards, unless a `requester` is given
AGENT = "claude-agent-sdk"
#: seconds `slack_hook` waits before deferring: under the 60 s Claude Code gives a hook
#: callback unless its `HookMatcher(timeout=…)` says otherwise
DEFAULT_HOOK_WAIT = 45.0

PermissionResult = PermissionResultAllow | PermissionResultDeny


def slack_permission(
    client: ApprovalClient,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    **fields: Unpack[GateFields],
) -> CanUseTool:
    """A `can_use_tool` callback that asks Slack about every call Claude Code would ask about.

    `prompt` is the card's headline and may use `{tool_name}` and `{tool_arguments}`;
    `timeout` is how many seconds to wait (None: as long as Claude Code waits). Other
    keywords are the card's fields, as for `ApprovalClient.request`.
    """
    check_template("prompt", prompt)
    card: dict[str, Any] = {**fields, "channel": channel, "priority": priority}

    async def can_use_tool(
        tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        args = dict(tool_input)
        submit = _request_fields(tool_name, args, card, prompt, context)
        try:
            decision = await decide_or_withdraw(
                client, tool_name, args, submit, timeout=timeout, cancelled_by=AGENT
            )
        except ApprovalError as exc:
            log.warning("no decision for %s: %s", tool_name, exc.message)
            message = f"The approval bot failed ({exc.message}), so this call was not approved."
            return PermissionResultDeny(message=message, interrupt=True)
        if decision is None:
            return PermissionResultDeny(
                message=f"Nobody decided on this {tool_name} call in Slack within "
                f"{timeout or 0:g}s, so it did not run. Ask again if it is still needed."
            )
        if not decision.approved:
            return PermissionResultDeny(message=refusal(decision, tool_name))
        run_with = args if decision.approved_args is None else decision.approved_args
        return PermissionResultAllow(updated_input=dict(run_with))

    return can_use_tool


def slack_hook(
    client: ApprovalClient,
    *,
    wait: float = DEFAULT_HOOK_WAIT,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    **fields: Unpack[GateFields],
) -> HookCallback:
    """A `PreToolUse` hook callback: the decision if made within `wait` seconds, else `defer`.

    Keep `wait` under the `HookMatcher`'s `timeout` (60 s by default). A deferred call's card
    stays up; the run ends with `ResultMessage.deferred_tool_use`, and resuming the session
    asks this hook again about the same call, which it answers from the same card.
    """
    check_template("prompt", prompt)
    card: dict[str, Any] = {**fields, "channel": channel, "priority": priority}

    async def pre_tool_use(
        input: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        data: Mapping[str, Any] = cast(Mapping[str, Any], input)
        if data.get("hook_event_name") != claude_code.EVENT:
            return {}
        try:
            hook = claude_code.HookInput.model_validate(
                {**data, "tool_use_id": data.get("tool_use_id") or tool_use_id}
            )
        except ValidationError as exc:
            return _output(claude_code.deny(f"The approval hook could not read the call: {exc}"))
        return _output(await _decide_hook(client, hook, card, prompt, wait))

    return pre_tool_use


async def wait_for_deferred(
    client: ApprovalClient, result: ResultMessage, timeout: float | None = None
) -> Decision | None:
    """The decision on the call `result` deferred, once made; None when it deferred none.

    Asks about the same call again (same tool use id: the same card, never a second one), so
    it also works after a restart. `ApprovalTimeout` when `timeout` passes first.
    """
    deferred = result.deferred_tool_use
    if deferred is None:
        return None
    return await client.request(
        deferred.name, deferred.input, timeout=timeout, tool_call_id=deferred.id
    )


# -- the two paths' requests and answers ------------------------------------------------------


def _request_fields(
    tool_name: str,
    args: dict[str, Any],
    card: Mapping[str, Any],
    prompt: str | None,
    context: ToolPermissionContext,
) -> dict[str, Any]:
    """The submit fields of a `can_use_tool` request."""
    call = claude_code.HookInput(tool_name=tool_name, tool_input=args)
    why = [
        context.decision_reason,
        f"Path: {context.blocked_path}" if context.blocked_path else None,
        f"Asked by sub-agent {context.agent_id}" if context.agent_id else None,
    ]
    return {
        **card,
        "tool_call_id": context.tool_use_id or new_tool_call_id(),
        "prompt": _prompt(prompt, tool_name, args) or call.prompt() or context.title,
        "context": "\n".join(filter(None, [card.get("context"), *why])) or None,
        "requester": card.get("requester") or Requester(agent=AGENT),
        "args_schema": card.get("args_schema") or _names_only(args),
        "preview": call.preview(),
    }


async def _decide_hook(
    client: ApprovalClient,
    hook: claude_code.HookInput,
    card: Mapping[str, Any],
    prompt: str | None,
    wait: float,
) -> dict[str, Any]:
    """Claude Code's answer to one `PreToolUse` call: allow, deny, or defer past `wait`."""
    fields = hook.request_fields()
    fields.pop("channel")
    fields.pop("priority")
    fields.update(
        {
            **card,
            "tool_call_id": hook.tool_use_id or new_tool_call_id(),
            "prompt": _prompt(prompt, hook.tool_name, hook.tool_input) or fields["prompt"],
            "requester": card.get("requester") or Requester(agent=AGENT, run_id=hook.session_id),
            "args_schema": card.get("args_schema") or _names_only(hook.tool_input),
        }
    )
    try:
        approval = await client.submit(hook.tool_name, hook.tool_input, **fields)
        if approval.is_pending:
            approval = await client.wait(approval, timeout=wait)
    except ApprovalTimeout as exc:
        return _defer(exc.approval.id, hook.tool_name, wait)
    except ApprovalError as exc:
        return claude_code.deny(
            f"The approval bot failed ({exc.message}), so this call was not approved."
        )
    return claude_code.answer(approval)


def _defer(approval_id: str, tool_name: str, wait: float) -> dict[str, Any]:
    return {
        "hookSpecificOutput": {
            "hookEventName": claude_code.EVENT,
            "permissionDecision": "defer",
            "permissionDecisionReason": (
                f"Nobody decided on this {tool_name} call in Slack within {wait:g}s; "
                f"it waits for a decision (approval {approval_id})."
            ),
        }
    }


def _prompt(template: str | None, tool_name: str, args: Mapping[str, Any]) -> str | None:
    return fill_prompt(template, tool_name, json.dumps(args, ensure_ascii=False))


def _names_only(args: Mapping[str, Any]) -> dict[str, Any] | None:
    """A schema of the call's own argument names: an edit changes values, not which names."""
    shape = {"type": "object", "properties": {name: {} for name in args}, "required": list(args)}
    return tool_schema(shape, args)


def _output(answer: dict[str, Any]) -> HookJSONOutput:
    """Our hook answers as the SDK types them (the same JSON)."""
    return cast(HookJSONOutput, answer)
