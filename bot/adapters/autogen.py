"""AutoGen (ag2): a tool middleware that asks Slack, where `approval_required` asks a terminal.

`approval_required(client, message=…, denied_message=…, timeout=…)` has the signature and
defaults of `ag2.middleware.approval_required` after the client: pass it in
`@tool(middleware=[…])`. Each call of the tool becomes one approval whose `toolCallId` is the
call's id. Approve runs the call, Edit runs it with the edited arguments (all of them: they
replace the call's), Reject or Feedback returns `denied_message` to the model as the tool's
result — as written, as ag2 does, unless it names a placeholder such as `{comment}` (the
reviewer's reason). The request
carries the tool's own JSON schema as `argsSchema`, so the bot refuses an edit or an API
decision the tool could not be called with before anything is stored.
As in ag2, a wait that outlives `timeout` ends the turn with `HumanInputTimeoutError` (the card
is withdrawn), and a bot that cannot be reached ends it with `HumanInputFailedError`: an approval
nobody could give denies nothing and runs nothing. So does every other `ApprovalError` (a refused
field, a reused `toolCallId`, a record of another call), kept as the error's `cause`: ag2 would
hand any other exception to the model as the tool's result.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from copy import copy
from typing import Any, Self, Unpack

from ag2 import Context
from ag2.events import ToolCallEvent, ToolResultEvent
from ag2.exceptions import HumanInputFailedError, HumanInputTimeoutError
from ag2.middleware import ToolExecution, ToolResultType

from bot.adapters._common import TOOL_PLACEHOLDERS, check_template, fill_prompt
from bot.models import Decision, Priority
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import ApprovalError, ApprovalTimeout
from bot.sdk.schema import tool_schema
from bot.sdk.wire import GateFields, ToolCall, decision_of

__all__ = ["DENIED_MESSAGE", "SlackApprovalRequired", "approval_required"]

_DENIAL_PLACEHOLDERS = (*TOOL_PLACEHOLDERS, "comment")
#: ag2's own default `denied_message`
DENIED_MESSAGE = "User denied the tool call request"
#: how deep `_tool_schema` looks through ag2's middleware wrappers for the tool
_MAX_WRAPPERS = 32


class SlackApprovalRequired:
    """Tool middleware that runs a call only once a human approves it in Slack.

    `message` is the card's headline and may use `{tool_name}` and `{tool_arguments}`.
    `denied_message` is what the model is told on a refusal, as written (ag2's default
    unless given); it may use those and `{comment}`, the reviewer's reason. `timeout` is how
    many seconds to wait for a decision (None: as long as it takes). `allow_always` is
    taken for ag2's signature and changes nothing: a card has no "always" answer, so every
    call is asked. Other keywords are the card's fields, as for `ApprovalClient.request`;
    without `args_schema`, the tool's own schema is sent. One instance may gate many tools.
    """

    def __init__(
        self,
        client: ApprovalClient,
        message: str | None = None,
        denied_message: str = DENIED_MESSAGE,
        *,
        timeout: float | None = None,
        allow_always: bool = True,
        channel: str | None = None,
        priority: Priority | str | None = None,
        **fields: Unpack[GateFields],
    ) -> None:
        check_template("message", message)
        check_template("denied_message", denied_message, _DENIAL_PLACEHOLDERS)
        self.client = client
        self.message = message
        self.denied_message = denied_message
        self.timeout = timeout
        self.fields: dict[str, Any] = {**fields, "channel": channel, "priority": priority}

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        # ag2 deep-copies tools with their middleware; a copy must share the client and its
        # HTTP session, which belong to the caller, not to the copy
        return self

    async def __call__(
        self, call_next: ToolExecution, event: ToolCallEvent, context: Context
    ) -> ToolResultType:
        """Ask, wait, then run the call (edited if so decided) or return the denial."""
        args = _arguments(event)
        fields = dict(self.fields)
        if fields.get("args_schema") is None:
            fields["args_schema"] = tool_schema(_tool_schema(call_next, event.name), args)
        decision = await self._decide(event, args, fields)
        if not decision.approved:
            return ToolResultEvent.from_call(event, result=self._denial(event, decision))
        if decision.approved_args is not None and decision.approved_args != args:
            event = _with_arguments(event, decision.approved_args)
        return await call_next(event, context)

    async def _decide(
        self, event: ToolCallEvent, args: dict[str, Any], fields: dict[str, Any]
    ) -> Decision:
        try:
            try:
                return await self.client.request(
                    event.name,
                    args,
                    timeout=self.timeout,
                    tool_call_id=event.id,
                    prompt=fill_prompt(self.message, event.name, event.arguments),
                    **fields,
                )
            except ApprovalTimeout as exc:
                return await self._give_up(exc)
        except ApprovalError as exc:
            raise HumanInputFailedError(exc) from exc

    async def _give_up(self, timed_out: ApprovalTimeout) -> Decision:
        """Withdraw the card; a decision that won the race to it still counts, if of this call."""
        approval = timed_out.approval
        waited = self.timeout if self.timeout is not None else self.client.timeout or 0.0
        try:
            await self.client.cancel(approval.id, f"the agent stopped waiting after {waited:g}s")
        except ApprovalError as exc:
            if exc.status != 409:
                raise
            return decision_of(ToolCall.of(approval).check(await self.client.get(approval.id)))
        raise HumanInputTimeoutError(waited)

    def _denial(self, event: ToolCallEvent, decision: Decision) -> str:
        """`denied_message` as written, or filled in when it names a placeholder."""
        if not any(field for _, field, _, _ in string.Formatter().parse(self.denied_message)):
            return self.denied_message
        return self.denied_message.format(
            tool_name=event.name, tool_arguments=event.arguments, comment=decision.comment or ""
        )


def _arguments(event: ToolCallEvent) -> dict[str, Any]:
    """The call's arguments as a JSON object; anything else is shown whole under `arguments`."""
    try:
        parsed = event.serialized_arguments
    except ValueError:
        return {"arguments": event.arguments}
    return dict(parsed) if isinstance(parsed, dict) else {"arguments": parsed}


def _tool_schema(call_next: ToolExecution, name: str) -> Any:
    """The JSON schema of the tool `call_next` runs: ag2 hands the innermost middleware the
    `FunctionTool` itself, and the others a wrapper holding the next step as `inner`."""
    step: Any = call_next
    for _ in range(_MAX_WRAPPERS):
        function = getattr(getattr(step, "schema", None), "function", None)
        if function is not None:
            return function.parameters if getattr(function, "name", None) == name else None
        code = getattr(step, "__code__", None)
        cells = dict(
            zip(
                getattr(code, "co_freevars", ()),
                getattr(step, "__closure__", None) or (),
                strict=False,  # both empty for anything but a closure
            )
        )
        if "inner" not in cells:
            return None
        try:
            step = cells["inner"].cell_contents
        except ValueError:  # an empty cell
            return None
    return None


def _with_arguments(event: ToolCallEvent, args: Mapping[str, Any]) -> ToolCallEvent:
    """A copy of the call that runs with `args`; the tool reads them from the event it is given."""
    edited = copy(event)
    edited.arguments = json.dumps(dict(args))
    edited.serialized_arguments = dict(args)
    return edited


#: ag2's name for its own approval middleware: `@tool(middleware=[approval_required(client)])`
approval_required = SlackApprovalRequired
