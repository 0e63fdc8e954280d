"""Microsoft Agent Framework: decide a run's tool approvals (`user_input_requests`) in Slack.

A tool declared with `@tool(approval_mode="always_require")` pauses the run with one
`function_approval_request` per call. `run_with_approvals` makes each one approval whose
`toolCallId` is the model's call id, so resuming after a crash or a timeout finds the same
cards, and answers it with `request.to_function_approval_response(approved)` in the next run.

That answer is a bool, and the framework binds it to the call it asked about: an approval
response built from a changed function call still runs the call as first proposed. So edits
and reasons go through two middlewares the adapter adds to each run, reading what it recorded
in the session's state (`STATE_KEY`):

- Edit: the call is approved, and a function middleware gives it the edited arguments (the
  complete arguments: they replace the call's). The framework sees arguments changed after
  approval and asks again, for those (a replacement `function_approval_request`); that is
  answered approved without a second card, since they are what the reviewer approved, and the
  tool runs with them.
- Reject, Feedback or an expiry: the call is rejected, and a chat middleware puts the
  reviewer's reason in place of the framework's "Error: Tool call invocation was rejected by
  user." before the model reads it (and so in the session's history too). A chat client
  without `ChatMiddlewareLayer` runs no chat middleware: its model reads the framework's words.

Each request carries the tool's JSON schema as `argsSchema` where the agent's tools are known,
so the bot refuses an edit or an API decision the tool could not run before it is stored.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Unpack

from agent_framework import (
    Agent,
    AgentResponse,
    AgentSession,
    ChatContext,
    ChatMiddleware,
    Content,
    FunctionInvocationContext,
    FunctionMiddleware,
    Message,
)

from bot.adapters._common import ToolRequest, check_template, decide_all, fill_prompt
from bot.models import Decision, Priority
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import refusal
from bot.sdk.schema import tool_schema
from bot.sdk.wire import GateFields

__all__ = ["STATE_KEY", "run_with_approvals"]

#: where in `AgentSession.state` this adapter keeps what its middleware must apply
STATE_KEY = "approval_bot"


async def run_with_approvals(
    agent: Agent[Any],
    messages: Any,
    client: ApprovalClient,
    *,
    session: AgentSession | None = None,
    run_options: Mapping[str, Any] | None = None,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    **fields: Unpack[GateFields],
) -> AgentResponse[Any]:
    """`agent.run(messages, session=…)`, re-run with each round of Slack decisions until done.

    Approvals resume in a session: `session`, else a new one. `messages=None` answers the
    requests `session` still waits on (after a crash or `ApprovalTimeout`, which leaves the
    run paused) and goes on from there. All cards of a round are posted at once and decided in
    any order; `prompt` may use `{tool_name}` and `{tool_arguments}`; the other keywords are
    the cards' fields. `run_options` go to every `agent.run` (`options`, `tools`, `middleware`…;
    this adapter's middleware runs first). The loop stops when no function approval is
    pending, returning the last response; its other input requests are the caller's.
    """
    check_template("prompt", prompt)
    if messages is None and session is None:
        raise ValueError("messages=None resumes a session: pass the one the run paused in")
    options = dict(run_options or {})
    middleware = [_EditedArguments(), _RefusalReasons(), *(options.pop("middleware", None) or ())]
    session = session or agent.create_session()
    if fields.get("requester") is None and agent.name:
        fields["requester"] = {"agent": agent.name}
    card = {**fields, "channel": channel, "priority": priority}
    schemas = _tool_schemas([*(agent.default_options.get("tools") or ()), *_run_tools(options)])

    async def answer(requests: list[Content]) -> Message:
        return await _answer(client, requests, session, card, prompt, timeout, schemas)

    if messages is None:
        waiting = _recorded(session)
        if not waiting:
            raise ValueError("the session waits for no approval")
        messages = await answer(waiting)
    response: AgentResponse[Any] = await agent.run(
        messages, session=session, middleware=middleware, **options
    )
    while requests := _approval_requests(response):
        response = await agent.run(
            await answer(requests), session=session, middleware=middleware, **options
        )
    _state(session)["waiting"] = []
    return response


async def _answer(
    client: ApprovalClient,
    requests: list[Content],
    session: AgentSession,
    card: Mapping[str, Any],
    prompt: str | None,
    timeout: float | None,
    schemas: Mapping[str, Any],
) -> Message:
    """Ask Slack about `requests`; the message answering each one, approved or not.

    What the middleware must do (edited arguments, reasons) goes into the session's state
    first, and so do the requests, so a run paused here can be resumed from the session.
    """
    state = _state(session)
    state["waiting"] = [request.to_dict() for request in requests]
    answered = {
        request.id: True for request in requests if _approved_before(request, state)
    }  # the framework asking again for arguments a reviewer approved
    asking = [request for request in requests if request.id not in answered]
    submits = [_request(request, prompt, card, schemas) for request in asking]
    decisions = await decide_all(client, submits, timeout)
    for request, submit, decision in zip(asking, submits, decisions, strict=True):
        answered[request.id] = decision.approved
        _record(state, request, submit, decision)
    return Message(
        role="user",
        contents=[
            request.to_function_approval_response(answered[request.id]) for request in requests
        ],
    )


def _approval_requests(response: AgentResponse[Any]) -> list[Content]:
    """The function approval requests of `response`; hosted tools' and other kinds are not."""
    return [
        content
        for content in response.user_input_requests
        if content.type == "function_approval_request"
        and content.function_call is not None
        and content.function_call.type == "function_call"
    ]


def _recorded(session: AgentSession) -> list[Content]:
    """The requests the session's run paused on, as `_answer` recorded them."""
    return [Content.from_dict(request) for request in _state(session)["waiting"]]


# -- one approval request ---------------------------------------------------------------------


def _request(
    request: Content, prompt: str | None, card: Mapping[str, Any], schemas: Mapping[str, Any]
) -> ToolRequest:
    """The tool name, arguments and submit fields of one approval request."""
    call = _call(request)
    name = str(call.name or "unnamed_tool")
    args = _arguments(call)
    notes = [card.get("context"), request.additional_properties.get("reason")]
    submit: dict[str, Any] = {
        **card,
        "tool_call_id": _tool_call_id(request),
        "prompt": fill_prompt(prompt, name, json.dumps(args, ensure_ascii=False, default=str)),
        "args_schema": card.get("args_schema") or tool_schema(schemas.get(name), args),
        "context": "\n\n".join(str(note) for note in notes if note) or None,
    }
    return ToolRequest(name, args, submit)


def _call(request: Content) -> Content:
    call = request.function_call
    assert call is not None  # only such requests are asked about
    return call


def _arguments(call: Content) -> dict[str, Any]:
    return dict(call.parse_arguments() or {})


def _occurrence(call: Content) -> str:
    """The framework's id of this call's occurrence (its `Content.id`), else the model's id."""
    return str(call.id or call.call_id)


def _tool_call_id(request: Content) -> str:
    """The model's call id; a replacement request (arguments changed by someone's middleware
    after approval) is a new question about the same call, so it gets its own."""
    call = _call(request)
    if request.id in (None, call.id, call.call_id):
        return str(call.call_id or request.id)
    return str(request.id)


def _state(session: AgentSession) -> dict[str, Any]:
    """This adapter's part of the session state: edited arguments and reasons by call
    occurrence, and the requests a paused run waits on (all JSON, as sessions are saved)."""
    state: dict[str, Any] = session.state.setdefault(STATE_KEY, {})
    state.setdefault("edits", {})
    state.setdefault("reasons", {})
    state.setdefault("waiting", [])
    return state


def _approved_before(request: Content, state: Mapping[str, Any]) -> bool:
    call = _call(request)
    edited = state["edits"].get(_occurrence(call))
    return edited is not None and edited == _arguments(call)


def _record(
    state: dict[str, Any], request: Content, submit: ToolRequest, decision: Decision
) -> None:
    """What the middleware must do for this call: run it with other arguments, or tell the
    model why it did not run."""
    occurrence = _occurrence(_call(request))
    if not decision.approved:
        state["reasons"][occurrence] = refusal(decision, submit.name)
    elif decision.approved_args is not None and decision.approved_args != submit.args:
        state["edits"][occurrence] = dict(decision.approved_args)


def _tool_schemas(tools: Sequence[Any]) -> dict[str, Any]:
    """The JSON schemas of the function tools among `tools`, by name."""
    schemas: dict[str, Any] = {}
    for tool in tools:
        parameters = getattr(tool, "parameters", None)
        name = getattr(tool, "name", None)
        if callable(parameters) and isinstance(name, str):
            schemas.setdefault(name, parameters())
    return schemas


def _run_tools(options: Mapping[str, Any]) -> list[Any]:
    tools = options.get("tools")
    if tools is None:
        return []
    return list(tools) if isinstance(tools, Sequence) else [tools]


# -- the middleware ---------------------------------------------------------------------------


class _EditedArguments(FunctionMiddleware):
    """An approved call a reviewer edited runs with the edited arguments.

    The framework sees the change and asks again for them; `_answer` answers that
    without a card, and this middleware then finds the arguments already as approved.
    """

    async def process(
        self, context: FunctionInvocationContext, call_next: Callable[[], Awaitable[None]]
    ) -> None:
        if "approval_response" in context.metadata and context.session is not None:
            key = context.metadata.get("function_call_occurrence_id") or context.metadata.get(
                "call_id"
            )
            edited = _state(context.session)["edits"].get(str(key))
            if edited is not None:
                context.arguments = dict(edited)
        await call_next()


class _RefusalReasons(ChatMiddleware):
    """The model reads the reviewer's reason where the framework says only "rejected".

    The result is rewritten where it is, so the session's history says the same afterwards.
    """

    async def process(self, context: ChatContext, call_next: Callable[[], Awaitable[None]]) -> None:
        reasons = _state(context.session)["reasons"] if context.session is not None else {}
        for message in context.messages if reasons else ():
            for content in message.contents:
                _give_reason(content, reasons)
        await call_next()


def _give_reason(content: Content, reasons: Mapping[str, str]) -> None:
    """A rejected call's result, made to say why (as `Content.from_function_result` would)."""
    if content.type != "function_result" or content.call_id is None:
        return
    reason = reasons.get(str(content.id or content.call_id))
    if reason is not None and content.result != reason:
        content.result = reason
        content.items = [Content.from_text(reason)]
