"""Strands Agents: a hook provider that asks Slack before each tool call runs.

`Agent(hooks=[SlackApproval(client, …)])` registers one `BeforeToolCallEvent` callback. Each
call (of every tool, or of those named in `tools=`) becomes one approval whose `toolCallId` is
the model's `toolUseId`, and the tool waits for the decision: Approve runs it; Edit runs it with
the edited arguments, written whole into `event.tool_use["input"]` (so the conversation shows
the call as it ran); Reject or Feedback cancels it (`event.cancel_tool`) with the reviewer's
reason, which the model reads as the tool's error result. The request carries the tool's own
JSON schema as `argsSchema`, so the bot refuses an edit the tool could not be called with.

Strands has no approval timeout of its own: with `timeout=`, a card nobody decided on in time
is withdrawn and the call cancelled with a message saying so. A stopped run (its task
cancelled) withdraws its cards too. A failure to ask (the bot unreachable, a refused field, a
record of another call) raises, ending the invocation with nothing run: Strands wraps it in its
`EventLoopException`, whose `original_exception` is the `ApprovalError`.

Calls of one turn are asked about at once under Strands' default concurrent executor. Run the
agent with `await agent.invoke_async(…)` or `agent.stream_async(…)`, so the client stays on the
one event loop it may be used from (`agent(…)` starts a new loop per call).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Unpack

from strands.hooks import BeforeToolCallEvent, HookProvider, HookRegistry

from bot.adapters._common import check_template, fill_prompt
from bot.adapters._waiting import decide_or_withdraw
from bot.models import Priority
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import refusal
from bot.sdk.schema import pinned_schema, tool_schema
from bot.sdk.wire import GateFields, new_tool_call_id

__all__ = ["AGENT", "SlackApproval"]

#: who withdraws a card nobody waits for any more
AGENT = "strands"


class SlackApproval(HookProvider):
    """Strands hook provider: a tool call runs only once a human approves it in Slack.

    `tools` names the tools to ask about (None: every tool). `prompt` is the card's headline
    and may use `{tool_name}` and `{tool_arguments}`. `timeout` is how many seconds to wait
    for a decision (None: as long as it takes). Other keywords are the card's fields, as for
    `ApprovalClient.request`; without `args_schema`, the tool's own schema is sent. The agent's
    name is the card's `requester.agent` unless `requester` is given.
    """

    def __init__(
        self,
        client: ApprovalClient,
        *,
        tools: Collection[str] | None = None,
        channel: str | None = None,
        priority: Priority | str | None = None,
        prompt: str | None = None,
        timeout: float | None = None,
        **fields: Unpack[GateFields],
    ) -> None:
        check_template("prompt", prompt)
        self.client = client
        self.tools = None if tools is None else frozenset(tools)
        self.prompt = prompt
        self.timeout = timeout
        self.fields: dict[str, Any] = {**fields, "channel": channel, "priority": priority}

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Ask before every tool call."""
        registry.add_callback(BeforeToolCallEvent, self.before_tool_call)

    async def before_tool_call(self, event: BeforeToolCallEvent) -> None:
        """Wait for the decision; then run the call as approved, or cancel it with the reason."""
        tool_use = event.tool_use
        name = tool_use["name"]
        if event.cancel_tool or event.selected_tool is None:
            return  # cancelled by another hook, or a tool the agent lacks: it will not run
        if self.tools is not None and name not in self.tools:
            return
        raw = tool_use.get("input")
        args = dict(raw) if isinstance(raw, Mapping) else {"arguments": raw}
        decision = await decide_or_withdraw(
            self.client,
            name,
            args,
            self._request_fields(event, args, raw),
            timeout=self.timeout,
            cancelled_by=AGENT,
        )
        if decision is None:
            event.cancel_tool = (
                f"Nobody decided on this tool call ({name}) in Slack within "
                f"{self.timeout or 0:g}s, so it did not run."
            )
        elif not decision.approved:
            event.cancel_tool = refusal(decision, name)
        elif decision.approved_args is not None and isinstance(raw, Mapping):
            tool_use["input"] = dict(decision.approved_args)

    def _request_fields(
        self, event: BeforeToolCallEvent, args: dict[str, Any], raw: Any
    ) -> dict[str, Any]:
        name = event.tool_use["name"]
        submit: dict[str, Any] = {
            **self.fields,
            "tool_call_id": event.tool_use.get("toolUseId") or new_tool_call_id(),
            "prompt": fill_prompt(self.prompt, name, json.dumps(args, ensure_ascii=False)),
        }
        if submit.get("args_schema") is None:
            # input that is no JSON object cannot be edited: only the call as proposed runs
            submit["args_schema"] = (
                tool_schema(_input_schema(event), args)
                if isinstance(raw, Mapping)
                else pinned_schema(args)
            )
        if submit.get("requester") is None:
            agent_name = getattr(event.agent, "name", None)
            submit["requester"] = {"agent": agent_name} if agent_name else None
        return submit


def _input_schema(event: BeforeToolCallEvent) -> Any:
    """The JSON schema the model was shown for the tool's input, if any."""
    tool = event.selected_tool
    spec = getattr(tool, "tool_spec", None) if tool is not None else None
    schema = spec.get("inputSchema") if isinstance(spec, Mapping) else None
    return schema.get("json") if isinstance(schema, Mapping) else None
