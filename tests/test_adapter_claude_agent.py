"""The Claude Agent SDK adapter: the real SDK, a scripted Claude Code, decisions in the local Slack.

`ScriptedClaude` is a `Transport` (the SDK's own seam for talking to Claude Code) that plays
the CLI and a scripted model: it answers the SDK's `initialize`, asks `PreToolUse` hooks and
`can_use_tool` over the control protocol as Claude Code does, runs SDK MCP tools through
`mcp_message` requests, and ends the turn with a result message saying what the model was told.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

pytest.importorskip("claude_agent_sdk")

from claude_agent_sdk import (
    ClaudeAgentOptions,
    HookMatcher,
    ResultMessage,
    Transport,
    create_sdk_mcp_server,
    query,
    tool,
)

from bot.adapters.claude_agent import slack_hook, slack_permission, wait_for_deferred
from bot.sdk import ApprovalClient
from tests.adapter_support import (
    answer_modal,
    approve_the_card,
    decide_incomplete_then_complete,
    modules_the_core_imports,
    pending,
    use_the_rig,
)
from tests.conftest import AGENT_TOKEN, SlackRig

SESSION = "sess_release_1"


class ScriptedClaude(Transport):
    """Claude Code and a model, scripted: one turn that calls `calls`, then reports the results.

    `resume` plays a resumed session instead: the deferred call is put through `PreToolUse`
    again (Claude Code's "deferred tool resume") before the turn goes on. `permission_timeout`
    makes it withdraw a `can_use_tool` request it waited that long for, as Claude Code does.
    """

    def __init__(
        self,
        *calls: tuple[str, str, dict[str, Any]],
        resume: tuple[str, str, dict[str, Any]] | None = None,
        permission_timeout: float | None = None,
    ) -> None:
        self.calls = [resume] if resume else list(calls)
        self.resumed = resume is not None
        self.permission_timeout = permission_timeout
        self.outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.pre_tool_use: list[tuple[str, list[str]]] = []
        self.asked: list[dict[str, Any]] = []  # every control request sent to the SDK
        self.cancelled: list[str] = []
        self.told: list[str] = []  # the tool results the model read
        self.permissions: list[dict[str, Any]] = []  # the SDK's answers to can_use_tool
        self.ids = itertools.count(1)
        self.mcp_ready: set[str] = set()
        self.turn: asyncio.Task[None] | None = None
        self.turn_over = asyncio.Event()

    # -- Transport ----------------------------------------------------------------------------

    async def connect(self) -> None:
        pass

    def is_ready(self) -> bool:
        return True

    async def write(self, data: str) -> None:
        for line in data.splitlines():
            message = json.loads(line)
            kind = message.get("type")
            if kind == "control_request":
                self._answer_sdk(message)
            elif kind == "control_response":
                response = message["response"]
                future = self.answers.pop(response["request_id"], None)
                if future is not None and not future.done():
                    future.set_result(response)
            elif kind == "user" and self.turn is None:
                self.turn = asyncio.create_task(self._run_turn())
                self.turn.add_done_callback(lambda _: self.turn_over.set())

    async def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        while (message := await self.outbox.get()) is not None:
            yield message

    async def end_input(self) -> None:
        self.outbox.put_nowait(None)

    async def close(self) -> None:
        if self.turn is not None and not self.turn.done():
            self.turn.cancel()
        self.outbox.put_nowait(None)

    # -- the CLI's side of the control protocol -------------------------------------------------

    def _answer_sdk(self, message: dict[str, Any]) -> None:
        request = message["request"]
        if request["subtype"] == "initialize":
            for matcher in (request.get("hooks") or {}).get("PreToolUse", []):
                self.pre_tool_use.append((matcher["matcher"] or ".*", matcher["hookCallbackIds"]))
        self.outbox.put_nowait(
            {
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": message["request_id"],
                    "response": {"commands": [], "hooks_applied": True},
                },
            }
        )

    async def _ask(self, request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send the SDK a control request; its answer (`subtype` success or error)."""
        request_id = f"cli_{next(self.ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.answers[request_id] = future
        self.asked.append(request)
        self.outbox.put_nowait(
            {"type": "control_request", "request_id": request_id, "request": request}
        )
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.answers.pop(request_id, None)
            self.cancelled.append(request_id)
            self.outbox.put_nowait({"type": "control_cancel_request", "request_id": request_id})
            return {"subtype": "error", "error": "the permission request was withdrawn"}

    # -- one turn of the scripted model -------------------------------------------------------

    async def _run_turn(self) -> None:
        self._emit({"type": "system", "subtype": "init", "session_id": SESSION, "tools": []})
        if not self.resumed:
            content = [
                {"type": "tool_use", "id": call_id, "name": name, "input": args}
                for call_id, name, args in self.calls
            ]
            self._emit(_assistant(content))
        for call_id, name, args in self.calls:
            outcome = await self._permission(call_id, name, args)
            if outcome[0] == "defer":
                deferred = {"id": call_id, "name": name, "input": args}
                self._emit(_result("", stop_reason="tool_deferred", deferred_tool_use=deferred))
                return
            if outcome[0] == "allow":
                text, is_error = await self._run_tool(name, outcome[1])
            else:
                text, is_error = outcome[1], True
            self.told.append(text)
            self._emit(
                {
                    "type": "user",
                    "message": {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": call_id,
                                "content": text,
                                "is_error": is_error,
                            }
                        ],
                    },
                    "parent_tool_use_id": None,
                    "session_id": SESSION,
                }
            )
        said = " | ".join(self.told)
        self._emit(_assistant([{"type": "text", "text": said}]))
        self._emit(_result(said))

    async def _permission(self, call_id: str, name: str, args: dict[str, Any]) -> tuple[str, Any]:
        """("allow", input), ("deny", message) or ("defer", None); hooks first, then the SDK."""
        for matcher, callback_ids in self.pre_tool_use:
            if not re.fullmatch(matcher, name):
                continue
            for callback_id in callback_ids:
                answer = await self._ask(
                    {
                        "subtype": "hook_callback",
                        "callback_id": callback_id,
                        "input": {
                            "session_id": SESSION,
                            "transcript_path": "/tmp/transcript.jsonl",
                            "cwd": "/srv/release",
                            "hook_event_name": "PreToolUse",
                            "tool_name": name,
                            "tool_input": args,
                            "tool_use_id": call_id,
                        },
                        "tool_use_id": call_id,
                    }
                )
                output = answer.get("response", {}).get("hookSpecificOutput", {})
                decision = output.get("permissionDecision")
                if decision == "allow":
                    return "allow", output.get("updatedInput", args)
                if decision == "deny":
                    return "deny", output.get("permissionDecisionReason", "denied by a hook")
                if decision == "defer":
                    return "defer", None
        answer = await self._ask(
            {
                "subtype": "can_use_tool",
                "tool_name": name,
                "input": args,
                "tool_use_id": call_id,
                "permission_suggestions": None,
                "blocked_path": None,
                "title": f"Claude wants to use {name}",
            },
            self.permission_timeout,
        )
        if answer["subtype"] != "success":
            return "deny", f"Permission to use {name} was not granted: {answer['error']}"
        response = answer["response"]
        self.permissions.append(response)
        if response["behavior"] == "allow":
            return "allow", response["updatedInput"]
        return "deny", response["message"]

    async def _run_tool(self, name: str, args: dict[str, Any]) -> tuple[str, bool]:
        """Run an SDK MCP tool (`mcp__<server>__<tool>`) in the SDK's process, as the CLI does."""
        _, server, tool_name = name.split("__", 2)
        if server not in self.mcp_ready:
            await self._mcp(
                server,
                "initialize",
                {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "scripted-claude", "version": "0"},
                },
            )
            await self._mcp(server, "notifications/initialized", None)
            self.mcp_ready.add(server)
        reply = await self._mcp(server, "tools/call", {"name": tool_name, "arguments": args})
        result = reply["result"]
        text = "".join(part.get("text", "") for part in result["content"])
        return text, bool(result.get("isError"))

    async def _mcp(self, server: str, method: str, params: dict[str, Any] | None) -> Any:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message |= {"id": next(self.ids), "params": params}
        answer = await self._ask(
            {"subtype": "mcp_message", "server_name": server, "message": message}
        )
        return answer["response"]["mcp_response"]

    def _emit(self, message: dict[str, Any]) -> None:
        self.outbox.put_nowait(message)


def _assistant(content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "assistant",
        "message": {"role": "assistant", "model": "scripted", "content": content},
        "parent_tool_use_id": None,
        "session_id": SESSION,
        "uuid": str(uuid.uuid4()),
    }


def _result(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "result",
        "subtype": "success",
        "duration_ms": 1,
        "duration_api_ms": 1,
        "is_error": False,
        "num_turns": 1,
        "session_id": SESSION,
        "result": text,
        "stop_reason": "end_turn",
        **extra,
    }


# -- the agent under test -------------------------------------------------------------------------

ran: list[dict[str, Any]] = []


@tool("deploy", "Send a build to a region.", {"version": str, "region": str})
async def deploy(args: dict[str, Any]) -> dict[str, Any]:
    ran.append(dict(args))
    return {
        "content": [{"type": "text", "text": f"deployed {args['version']} to {args['region']}"}]
    }


RELEASE = create_sdk_mcp_server("release", tools=[deploy])
DEPLOY = "mcp__release__deploy"


@pytest.fixture(autouse=True)
def clear_ran() -> None:
    ran.clear()


def deploy_call(call_id: str, version: str = "1.4.2") -> tuple[str, str, dict[str, Any]]:
    return call_id, DEPLOY, {"version": version, "region": "us"}


async def run(options: ClaudeAgentOptions, transport: ScriptedClaude) -> ResultMessage:
    """One query through `transport`; its result message."""
    results = [
        message
        async for message in query(prompt="Ship 1.4.2", options=options, transport=transport)
        if isinstance(message, ResultMessage)
    ]
    assert len(results) == 1
    return results[0]


def gated(can_use_tool: Any = None, **options: Any) -> ClaudeAgentOptions:
    return ClaudeAgentOptions(
        mcp_servers={"release": RELEASE}, can_use_tool=can_use_tool, **options
    )


# -- can_use_tool ----------------------------------------------------------------------------------


async def test_an_approved_call_runs_as_proposed(rig: SlackRig, client: ApprovalClient) -> None:
    transport = ScriptedClaude(deploy_call("toolu_01"))
    options = gated(slack_permission(client, channel="C0DEPLOY", priority="high"))
    task = asyncio.create_task(run(options, transport))

    record, buttons = await approve_the_card(rig, task, ran)
    result = await asyncio.wait_for(task, 10)

    assert ran == [{"version": "1.4.2", "region": "us"}]
    assert result.result == "deployed 1.4.2 to us"
    assert (record["toolName"], record["toolCallId"]) == (DEPLOY, "toolu_01")
    assert record["args"] == {"version": "1.4.2", "region": "us"}
    assert (record["channel"], record["priority"]) == ("C0DEPLOY", "high")
    assert record["prompt"] == f"Claude wants to use {DEPLOY}"
    assert record["requester"]["agent"] == "claude-agent-sdk"
    assert record["argsSchema"]["required"] == ["version", "region"]
    assert buttons == ["approve", "edit", "reject", "feedback"]


async def test_edited_arguments_are_the_input_the_tool_runs_with(
    rig: SlackRig, client: ApprovalClient
) -> None:
    transport = ScriptedClaude(deploy_call("toolu_02"))
    task = asyncio.create_task(run(gated(slack_permission(client)), transport))

    [record] = await pending(rig)
    await answer_modal(
        rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3", "arg:region": "eu"}
    )
    result = await asyncio.wait_for(task, 10)

    assert ran == [{"version": "1.4.3", "region": "eu"}]
    assert result.result == "deployed 1.4.3 to eu"
    [permission] = [r for r in transport.asked if r["subtype"] == "can_use_tool"]
    assert permission["tool_use_id"] == "toolu_02"


async def test_approved_args_replace_the_input_whole_and_are_checked_first(
    rig: SlackRig, client: ApprovalClient
) -> None:
    """An admin decision leaving out `region` is refused (422) with nothing stored; a
    complete one is the whole input the tool runs with."""
    task = asyncio.create_task(
        run(gated(slack_permission(client)), ScriptedClaude(deploy_call("toolu_03")))
    )

    [record] = await pending(rig)
    status = await decide_incomplete_then_complete(
        rig, record["id"], {"version": "1.4.3", "region": "ap"}
    )
    result = await asyncio.wait_for(task, 10)

    assert status == 200
    assert ran == [{"version": "1.4.3", "region": "ap"}]
    assert result.result == "deployed 1.4.3 to ap"


async def test_a_rejection_reaches_the_model_with_its_reason(
    rig: SlackRig, client: ApprovalClient
) -> None:
    transport = ScriptedClaude(deploy_call("toolu_04"))
    task = asyncio.create_task(run(gated(slack_permission(client)), transport))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "reject", "U0BOB", {"reason": "not during the freeze"})
    result = await asyncio.wait_for(task, 10)

    assert ran == []
    assert transport.told == [f"The user rejected this tool call ({DEPLOY}): not during the freeze"]
    assert "not during the freeze" in (result.result or "")


async def test_a_timeout_withdraws_the_card_and_denies_the_call(
    rig: SlackRig, client: ApprovalClient
) -> None:
    transport = ScriptedClaude(deploy_call("toolu_05"))
    result = await run(gated(slack_permission(client, timeout=0.3)), transport)

    _, page = await rig.bot.call("GET", "/v1/approvals")
    [record] = page["items"]
    assert (record["status"], record["decision"]["action"]) == ("cancelled", "cancel")
    assert "stopped waiting after 0.3s" in record["decision"]["comment"]
    assert ran == []
    assert transport.told == [
        f"Nobody decided on this {DEPLOY} call in Slack within 0.3s, so it did not run. "
        "Ask again if it is still needed."
    ]
    assert result.result == transport.told[0]


async def test_a_request_claude_code_withdraws_withdraws_the_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    """Claude Code's `control_cancel_request` cancels the callback: nobody waits for the card."""
    transport = ScriptedClaude(deploy_call("toolu_06"), permission_timeout=1.0)
    result = await run(gated(slack_permission(client)), transport)

    [record] = (await rig.bot.call("GET", "/v1/approvals"))[1]["items"]
    decided = await rig.decided(record["id"])
    assert len(transport.cancelled) == 1
    assert (decided["status"], decided["decision"]["decidedBy"]) == (
        "cancelled",
        "claude-agent-sdk",
    )
    assert ran == []
    assert "was not granted" in (result.result or "")


async def test_an_unreachable_bot_denies_and_interrupts() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with ApprovalClient(f"http://127.0.0.1:{port}", AGENT_TOKEN) as nowhere:
        transport = ScriptedClaude(deploy_call("toolu_07"))
        await run(gated(slack_permission(nowhere, timeout=0.5)), transport)

    [permission] = transport.permissions
    assert (permission["behavior"], permission["interrupt"]) == ("deny", True)
    assert permission["message"].startswith("The approval bot failed (cannot reach")
    assert ran == []


def test_an_unknown_placeholder_fails_when_the_callback_is_built() -> None:
    with pytest.raises(ValueError, match="may use"):
        slack_permission(ApprovalClient("http://127.0.0.1:9"), prompt="Ship {version}?")


# -- the PreToolUse hook: decided within the wait, or deferred and resumed ------------------------


def hooked(client: ApprovalClient, wait: float) -> ClaudeAgentOptions:
    hook = slack_hook(client, wait=wait, channel="C0DEPLOY")
    return gated(hooks={"PreToolUse": [HookMatcher(matcher="mcp__release__.*", hooks=[hook])]})


async def test_a_hook_answers_a_decision_made_within_its_wait(
    rig: SlackRig, client: ApprovalClient
) -> None:
    transport = ScriptedClaude(deploy_call("toolu_08"))
    task = asyncio.create_task(run(hooked(client, wait=10), transport))

    [record] = await pending(rig)
    await answer_modal(
        rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3", "arg:region": "us"}
    )
    result = await asyncio.wait_for(task, 10)

    assert ran == [{"version": "1.4.3", "region": "us"}]
    assert result.result == "deployed 1.4.3 to us"
    assert (record["toolCallId"], record["requester"]["runId"]) == ("toolu_08", SESSION)
    assert [r["subtype"] for r in transport.asked if r["subtype"] != "mcp_message"] == [
        "hook_callback"
    ]


async def test_a_hook_rejection_reaches_the_model(rig: SlackRig, client: ApprovalClient) -> None:
    transport = ScriptedClaude(deploy_call("toolu_09"))
    task = asyncio.create_task(run(hooked(client, wait=10), transport))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "reject", "U0BOB", {"reason": "wrong region"})
    await asyncio.wait_for(task, 10)

    assert ran == []
    assert transport.told == [f"The user rejected this tool call ({DEPLOY}): wrong region"]


async def test_a_long_wait_defers_and_the_resumed_session_runs_the_decision(
    rig: SlackRig, client: ApprovalClient
) -> None:
    options = hooked(client, wait=0.2)
    first = await run(options, ScriptedClaude(deploy_call("toolu_10")))

    assert first.stop_reason == "tool_deferred" and first.deferred_tool_use is not None
    assert first.deferred_tool_use.id == "toolu_10"
    [record] = await pending(rig)
    assert record["status"] == "pending"  # the card stays up for the resumed session
    waiting = asyncio.create_task(wait_for_deferred(client, first))
    await answer_modal(
        rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3", "arg:region": "eu"}
    )
    decision = await asyncio.wait_for(waiting, 10)
    assert decision is not None and decision.approved

    resumed = ScriptedClaude(resume=deploy_call("toolu_10"))
    result = await run(replace(options, resume=first.session_id), resumed)

    assert ran == [{"version": "1.4.3", "region": "eu"}]
    assert result.result == "deployed 1.4.3 to eu"
    _, page = await rig.bot.call("GET", "/v1/approvals")
    assert [item["id"] for item in page["items"]] == [record["id"]]


async def test_wait_for_deferred_is_none_for_a_result_that_deferred_nothing(
    client: ApprovalClient,
) -> None:
    done = ResultMessage(
        subtype="success",
        duration_ms=1,
        duration_api_ms=1,
        is_error=False,
        num_turns=1,
        session_id=SESSION,
    )
    assert await wait_for_deferred(client, done) is None


# -- the README's example -----------------------------------------------------------------------


async def test_the_example_runs_end_to_end(rig: SlackRig, monkeypatch: pytest.MonkeyPatch) -> None:
    use_the_rig(rig, monkeypatch)
    example = importlib.import_module("examples.claude_agent_example")
    transport = ScriptedClaude(("toolu_ex", "mcp__release__deploy_service", {"version": "1.4.2"}))

    task = asyncio.create_task(example.main(transport))
    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    output = await asyncio.wait_for(task, 10)

    assert (record["priority"], record["channel"]) == ("high", "C0OPS")
    assert output == "deployed 1.4.2"


async def test_the_deferring_example_resumes_after_the_decision(
    rig: SlackRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_the_rig(rig, monkeypatch)
    example = importlib.import_module("examples.claude_agent_defer_example")
    monkeypatch.setattr(example, "WAIT", 0.2)
    call = ("toolu_dx", "mcp__release__deploy_service", {"version": "1.4.2"})
    first, resumed = ScriptedClaude(call), ScriptedClaude(resume=call)

    task = asyncio.create_task(example.main([first, resumed]))
    [record] = await pending(rig)
    await asyncio.wait_for(first.turn_over.wait(), 5)
    assert not task.done() and resumed.turn is None  # deferred: waiting with no CLI running
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3"})
    output = await asyncio.wait_for(task, 10)

    assert output == "deployed 1.4.3"
    assert [r["subtype"] for r in resumed.asked if r["subtype"] != "mcp_message"] == [
        "hook_callback"
    ]


def test_the_core_never_imports_the_claude_agent_sdk() -> None:
    assert "claude_agent_sdk" not in modules_the_core_imports()


async def test_the_scripted_claude_reports_unknown_tools_as_errors() -> None:
    """The harness itself: a call of no SDK MCP tool fails, so a test cannot pass by accident."""
    transport = ScriptedClaude(("toolu_x", "mcp__release__nothing", {}))

    async def allow_all(name: str, args: dict[str, Any], context: Any) -> Any:
        from claude_agent_sdk import PermissionResultAllow

        return PermissionResultAllow()

    await run(gated(allow_all), transport)
    assert len(transport.told) == 1 and "nothing" in transport.told[0]
