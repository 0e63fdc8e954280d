"""Google ADK: answer tool confirmations (`adk_request_confirmation`) with decisions from Slack.

ADK pauses a run when a tool asks for confirmation — `FunctionTool(require_confirmation=…)`,
or a tool calling `tool_context.request_confirmation(...)` — with one `adk_request_confirmation`
function call per tool call; the run resumes with a function response of that name, carrying
`{"confirmed": bool, "payload": ...}` and that call's id. `run_with_approvals` answers every
one from Slack: `confirmed` is whether the call was approved, and `payload` the decision
itself (`Decision` as JSON: `approvedArgs`, `comment`, `decidedBy`…). Each call becomes one
approval whose `toolCallId` is the model's call id, so asking again after a crash or a
timeout resumes the same cards.

ADK runs a confirmed call with the arguments the model gave and tells the model only "This
tool call is rejected." otherwise. A tool wrapped in `ApprovalTool` reads the payload
instead: Edit runs it with the edited arguments (the complete arguments: they replace the
call's), and Reject, Feedback or an expiry hands the model the reviewer's reason. Its request
carries the tool's JSON schema, sent as `argsSchema`, so the bot refuses an edit the tool could
not run before anything is stored. Other tools' cards offer no Edit, and admit only the proposed
arguments.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from google.adk.tools.function_tool import FunctionTool
from google.genai import types
from pydantic import ValidationError

from bot.adapters._common import ToolRequest, check_template, decide_all, fill_prompt
from bot.models import Decision, DecisionKind, Priority
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import refusal
from bot.sdk.schema import pinned_schema, signature_schema, tool_schema
from bot.sdk.wire import GateFields

if TYPE_CHECKING:
    from google.adk.agents.run_config import RunConfig
    from google.adk.events import Event
    from google.adk.runners import Runner
    from google.adk.tools.tool_confirmation import ToolConfirmation
    from google.adk.tools.tool_context import ToolContext

__all__ = [
    "CONFIRMATION",
    "EDIT_NOTE",
    "ApprovalTool",
    "resolve_confirmations",
    "run_with_approvals",
]

#: the function ADK pauses a run with, and resumes it by
CONFIRMATION = "adk_request_confirmation"
#: added to the card of a tool that runs a call as proposed or not at all
EDIT_NOTE = (
    "Edits are not possible for this tool (Google ADK runs it as proposed): "
    "approve or reject the call. Wrap it in ApprovalTool to allow edits."
)
#: what an `ApprovalTool` asks with: the bot's decision is the payload it reads
_EXPECTS = "approval-bot decision"
_HINT = "Decided in Slack: the payload of the answer is the approval bot's decision."
#: the hint `FunctionTool(require_confirmation=…)` asks with, which says nothing to a reviewer
_STOCK_HINT = "Please approve or reject the tool call"


class ApprovalTool(FunctionTool):
    """A `FunctionTool` whose confirmation is a Slack decision: it runs with the approved
    arguments, and a refusal hands the model the reviewer's reason.

    `require_confirmation` is `FunctionTool`'s: True (the default), or a callable given the
    call's arguments. A function that calls `tool_context.request_confirmation()` itself may
    set it False; it then sees the confirmation (`confirmed`, and the decision as `payload`)
    only when the call was approved, and runs with the approved arguments.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        require_confirmation: bool | Callable[..., bool] = True,
    ) -> None:
        super().__init__(func, require_confirmation=require_confirmation)

    async def check_require_confirmation(
        self, args: dict[str, Any], tool_context: ToolContext
    ) -> bool:
        # `run_async` asks, so the request carries what the answer may contain; ADK still
        # accepts the answer, as for any tool that asked during its call.
        return False

    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        confirmation = tool_context.tool_confirmation
        if confirmation is None:
            if await super().check_require_confirmation(args, tool_context):
                tool_context.request_confirmation(hint=_HINT, payload=self._expects())
                tool_context.actions.skip_summarization = True  # a pause, not a result
                return {"error": "This tool call waits for a decision in Slack."}
            result = await super().run_async(args=args, tool_context=tool_context)
            self._mark_own_request(tool_context)
            return result
        decision = _decision_in(confirmation)
        if decision is None:  # answered by someone else (ADK's web UI): as FunctionTool does
            if not confirmation.confirmed:
                return {"error": "This tool call is rejected."}
            return await super().run_async(args=args, tool_context=tool_context)
        if not (confirmation.confirmed and decision.approved):
            return {"error": refusal(decision, self.name)}
        approved = args if decision.approved_args is None else decision.approved_args
        return await super().run_async(args=dict(approved), tool_context=tool_context)

    def _expects(self) -> dict[str, Any]:
        """The payload to ask with: it names the answer this tool reads, and its arguments."""
        declaration = self._get_declaration()
        schema = getattr(declaration, "parameters_json_schema", None)
        if schema is None:
            schema = signature_schema(inspect.signature(self.func), skip=self._ignore_params)
        return {"expects": _EXPECTS, "argsSchema": schema}

    def _mark_own_request(self, tool_context: ToolContext) -> None:
        """A function that asked with no payload of its own asked for the bot's decision."""
        asked = tool_context.actions.requested_tool_confirmations.get(
            tool_context.function_call_id or ""
        )
        if asked is not None and asked.payload is None:
            asked.payload = self._expects()


def _decision_in(confirmation: ToolConfirmation) -> Decision | None:
    try:
        return Decision.model_validate(confirmation.payload)
    except ValidationError:
        return None


async def resolve_confirmations(
    client: ApprovalClient,
    events: Sequence[Event],
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    **fields: Unpack[GateFields],
) -> types.Content | None:
    """Ask Slack about every unanswered confirmation in `events`; the message answering them.

    `events` are a run's events or a session's (`session.events`); None when no confirmation
    waits. All cards are posted at once and decided in any order. `prompt` may use
    `{tool_name}` and `{tool_arguments}`. `ApprovalTimeout` leaves the run paused: call this
    again to resume.
    """
    check_template("prompt", prompt)
    waiting = _waiting(events)
    if not waiting:
        return None
    card = {**fields, "channel": channel, "priority": priority}
    requests = [_request(event, call, prompt, card) for event, call in waiting]
    decisions = await decide_all(client, requests, timeout)
    parts = [
        types.Part(function_response=_answer(call, request, decision))
        for (_, call), request, decision in zip(waiting, requests, decisions, strict=True)
    ]
    return types.Content(role="user", parts=parts)


async def run_with_approvals(
    runner: Runner,
    new_message: types.Content | str | None,
    client: ApprovalClient,
    *,
    user_id: str,
    session_id: str,
    run_config: RunConfig | None = None,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    **fields: Unpack[GateFields],
) -> list[Event]:
    """`runner.run_async(...)`, resumed after each round of Slack decisions until done.

    Returns the events of every round, in order. `new_message=None` answers the confirmations
    the session already waits on (after a crash or `ApprovalTimeout`) and goes on from there.
    The other keywords are the cards' fields, as in `resolve_confirmations`.
    """
    check_template("prompt", prompt)
    card: dict[str, Any] = {
        **fields,
        "channel": channel,
        "priority": priority,
        "prompt": prompt,
        "timeout": timeout,
    }
    if new_message is None:
        session = await runner.session_service.get_session(
            app_name=runner.app_name, user_id=user_id, session_id=session_id
        )
        if session is None:
            raise ValueError(f"no session {session_id!r} for user {user_id!r} to resume")
        message = await resolve_confirmations(client, session.events, **card)
        if message is None:
            raise ValueError(f"session {session_id!r} waits for no confirmation")
    else:
        message = _content(new_message)
    events: list[Event] = []
    while message is not None:
        round_ = [
            event
            async for event in runner.run_async(
                user_id=user_id, session_id=session_id, new_message=message, run_config=run_config
            )
        ]
        events.extend(round_)
        message = await resolve_confirmations(client, round_, **card)
    return events


# -- one confirmation -------------------------------------------------------------------------


def _waiting(events: Sequence[Event]) -> list[tuple[Event, types.FunctionCall]]:
    """The confirmation calls in `events` that no function response answers yet."""
    answered = {
        response.id
        for event in events
        if event.author == "user"
        for response in event.get_function_responses()
        if response.name == CONFIRMATION
    }
    return [
        (event, call)
        for event in events
        for call in event.get_function_calls()
        if call.name == CONFIRMATION and call.id and call.id not in answered
    ]


def _request(
    event: Event, call: types.FunctionCall, prompt: str | None, card: Mapping[str, Any]
) -> ToolRequest:
    """The tool name, arguments and submit fields of one confirmation call."""
    asked = call.args or {}
    original = asked.get("originalFunctionCall") or {}
    confirmation = asked.get("toolConfirmation") or {}
    name = str(original.get("name") or "unnamed_tool")
    args = dict(original.get("args") or {})
    hint = confirmation.get("hint") or ""
    notes = [card.get("context")]
    if hint and hint != _HINT and not hint.startswith(_STOCK_HINT):
        notes.append(hint)
    submit: dict[str, Any] = {
        **card,
        "tool_call_id": original.get("id") or call.id,
        "prompt": fill_prompt(prompt, name, json.dumps(args, ensure_ascii=False)),
    }
    if _reads_decision(call):
        schema = confirmation["payload"].get("argsSchema")
        submit["args_schema"] = card.get("args_schema") or tool_schema(schema, args)
    else:
        submit["args_schema"] = card.get("args_schema") or pinned_schema(args)
        submit["allowed_decisions"] = [
            kind
            for kind in card.get("allowed_decisions") or list(DecisionKind)
            if DecisionKind(kind) is not DecisionKind.EDIT
        ]
        notes.append(EDIT_NOTE)
    submit["context"] = "\n\n".join(filter(None, notes)) or None
    if card.get("requester") is None and event.author:
        submit["requester"] = {"agent": event.author}
    return ToolRequest(name, args, submit)


def _reads_decision(call: types.FunctionCall) -> bool:
    """Whether the tool asked as an `ApprovalTool` does: it runs what the decision says."""
    confirmation = (call.args or {}).get("toolConfirmation") or {}
    payload = confirmation.get("payload")
    return isinstance(payload, Mapping) and payload.get("expects") == _EXPECTS


def _answer(
    call: types.FunctionCall, request: ToolRequest, decision: Decision
) -> types.FunctionResponse:
    """The `adk_request_confirmation` response: confirmed or not, the decision as payload.

    A tool that runs a call only as proposed is never told "confirmed" for other arguments.
    """
    as_proposed = decision.approved_args in (None, request.args)
    confirmed = decision.approved and (_reads_decision(call) or as_proposed)
    return types.FunctionResponse(
        name=CONFIRMATION,
        id=call.id,
        response={
            "confirmed": confirmed,
            "payload": decision.model_dump(mode="json", by_alias=True),
        },
    )


def _content(message: types.Content | str) -> types.Content:
    if isinstance(message, str):
        return types.Content(role="user", parts=[types.Part(text=message)])
    return message
