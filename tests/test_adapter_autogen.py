"""The AutoGen (ag2) middleware: a scripted model, the real Agent, decisions in the local Slack."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

pytest.importorskip("ag2")

from ag2 import Agent, tool
from ag2.config import ModelProvider
from ag2.events import (
    BaseEvent,
    ModelMessage,
    ModelResponse,
    TextInput,
    ToolCallEvent,
    ToolCallsEvent,
    ToolResultsEvent,
)
from ag2.exceptions import HumanInputFailedError, HumanInputTimeoutError
from ag2.middleware import approval_required as ag2_approval_required

from bot.adapters.autogen import approval_required
from bot.sdk import ApprovalClient
from tests.adapter_support import (
    answer_modal,
    approve_the_card,
    decide_incomplete_then_complete,
    modules_the_core_imports,
    open_modals,
    pending,
    use_the_rig,
)
from tests.conftest import AGENT_TOKEN, SlackRig, until
from tests.test_sdk_refusals import DATA, REFUSALS, check_refusal, hostile_bot


class ScriptedConfig:
    """A model config whose model calls the scripted tools, then reports what they returned."""

    def __init__(self, *calls: tuple[str, str, dict[str, Any]]) -> None:
        self.calls = calls

    @property
    def provider(self) -> ModelProvider:
        raise NotImplementedError

    @property
    def model(self) -> str:
        return "scripted"

    def copy(self) -> ScriptedConfig:
        return self

    def create_files_client(self) -> Any:
        raise NotImplementedError

    def create(self) -> Any:
        calls = self.calls

        async def respond(messages: Sequence[BaseEvent], context: Any, **_: Any) -> ModelResponse:
            answered = [m for m in messages if isinstance(m, ToolResultsEvent)]
            if answered:
                text = " | ".join(_texts(r.result.parts) for r in answered[-1].results)
                message = ModelMessage(text)
                await context.send(message)
                return ModelResponse(message)
            return ModelResponse(
                tool_calls=ToolCallsEvent(
                    [
                        ToolCallEvent(name, arguments=json.dumps(args), id=i)
                        for i, name, args in calls
                    ]
                )
            )

        return respond


def _texts(parts: Iterable[Any]) -> str:
    return "".join(part.content for part in parts if isinstance(part, TextInput))


def release_bot(config: ScriptedConfig, middleware: Any, ran: list[str]) -> Agent[str]:
    @tool(middleware=[middleware])
    def deploy_service(version: str) -> str:
        """Send a build to production."""
        ran.append(version)
        return f"deployed {version}"

    return Agent("release-bot", config=config, tools=[deploy_service])


def deploy_call(call_id: str, version: str = "1.4.2") -> ScriptedConfig:
    return ScriptedConfig((call_id, "deploy_service", {"version": version}))


async def test_an_approved_call_runs_and_the_message_heads_the_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    ran: list[str] = []
    gate = approval_required(client, "Run {tool_name} with {tool_arguments}?", channel="C0DEPLOY")
    agent = release_bot(deploy_call("call_dep1"), gate, ran)
    run = asyncio.create_task(agent.ask("Ship 1.4.2"))

    record, buttons = await approve_the_card(rig, run, ran)
    reply = await asyncio.wait_for(run, 10)

    assert ran == ["1.4.2"]
    assert reply.body == "deployed 1.4.2"
    assert (record["toolName"], record["toolCallId"]) == ("deploy_service", "call_dep1")
    assert record["prompt"] == 'Run deploy_service with {"version": "1.4.2"}?'
    assert record["channel"] == "C0DEPLOY"
    assert buttons == ["approve", "edit", "reject", "feedback"]


async def test_edited_arguments_reach_the_tool(rig: SlackRig, client: ApprovalClient) -> None:
    ran: list[str] = []
    agent = release_bot(deploy_call("call_dep2"), approval_required(client), ran)
    run = asyncio.create_task(agent.ask("Ship 1.4.2"))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3"})
    reply = await asyncio.wait_for(run, 10)

    assert ran == ["1.4.3"]
    assert reply.body == "deployed 1.4.3"


@pytest.mark.parametrize(
    ("denied", "expected"),
    [
        pytest.param({}, "User denied the tool call request", id="ag2-default"),
        pytest.param({"denied_message": "Not now."}, "Not now.", id="as-written"),
        pytest.param(
            {"denied_message": "Not allowed: {comment}"},
            "Not allowed: not during the freeze",
            id="with-the-reason",
        ),
        pytest.param(
            {"denied_message": "{tool_name} refused"}, "deploy_service refused", id="tool-name"
        ),
    ],
)
async def test_a_rejection_reaches_the_model_as_the_tool_result(
    rig: SlackRig, client: ApprovalClient, denied: dict[str, str], expected: str
) -> None:
    """As with ag2's own middleware, the model gets `denied_message` exactly; the reviewer's
    reason only where it asks for `{comment}`."""
    ran: list[str] = []
    gate = approval_required(client, **denied)
    agent = release_bot(deploy_call("call_dep3"), gate, ran)
    run = asyncio.create_task(agent.ask("Ship 1.4.2"))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "reject", "U0BOB", {"reason": "not during the freeze"})
    reply = await asyncio.wait_for(run, 10)

    assert ran == []
    assert reply.body == expected


def test_the_signature_and_defaults_are_ag2s_own() -> None:
    ours = list(inspect.signature(approval_required).parameters.values())
    theirs = list(inspect.signature(ag2_approval_required).parameters.values())

    assert ours[0].name == "client"
    shared = [(p.name, p.kind, p.default) for p in ours[1 : len(theirs) + 1]]
    assert shared == [(p.name, p.kind, p.default) for p in theirs]


def region_bot(
    config: ScriptedConfig, middleware: Sequence[Any], ran: list[tuple[str, str]]
) -> Agent[str]:
    @tool(middleware=middleware)
    def deploy(version: str, region: str) -> str:
        """Send a build to a region."""
        ran.append((version, region))
        return f"deployed {version} to {region}"

    return Agent("release-bot", config=config, tools=[deploy])


async def passing(call_next: Any, event: ToolCallEvent, context: Any) -> Any:
    """Another tool middleware, run after the gate: the gate finds the tool behind it."""
    return await call_next(event, context)


@pytest.mark.parametrize("others", [[], [passing]], ids=["alone", "before-other-middleware"])
async def test_approved_args_are_the_complete_arguments_and_checked_before_they_are_stored(
    rig: SlackRig, client: ApprovalClient, others: list[Any]
) -> None:
    """An admin decision leaving out `region` is refused (422) with nothing stored; a
    complete one runs the tool with exactly those arguments."""
    ran: list[tuple[str, str]] = []
    config = ScriptedConfig(("call_rg", "deploy", {"version": "1.4.2", "region": "us"}))
    agent = region_bot(config, [approval_required(client), *others], ran)
    run = asyncio.create_task(agent.ask("Ship 1.4.3"))

    [record] = await pending(rig)
    assert record["argsSchema"]["required"] == ["version", "region"]
    assert record["argsSchema"]["additionalProperties"] is False
    status = await decide_incomplete_then_complete(
        rig, record["id"], {"version": "1.4.3", "region": "eu"}
    )
    reply = await asyncio.wait_for(run, 10)

    assert status == 200
    assert ran == [("1.4.3", "eu")]
    assert reply.body == "deployed 1.4.3 to eu"


async def test_a_slack_edit_that_clears_a_required_argument_is_answered_in_the_modal(
    rig: SlackRig, client: ApprovalClient
) -> None:
    ran: list[tuple[str, str]] = []
    config = ScriptedConfig(("call_rg2", "deploy", {"version": "1.4.2", "region": "us"}))
    run = asyncio.create_task(region_bot(config, [approval_required(client)], ran).ask("Ship"))

    [record] = await pending(rig)
    await rig.click(record["id"], "edit", "U0ALICE")
    [modal] = await until(lambda: open_modals(rig, "U0ALICE"))
    answer = await rig.slack.submit_view(modal.id, {"arg:version": "1.4.3", "arg:region": ""})

    assert answer.json()["response_action"] == "errors"
    assert answer.json()["errors"] == {"arg:region": "This field is required."}
    assert (await rig.bot.call("GET", f"/v1/approvals/{record['id']}"))[1]["status"] == "pending"
    await rig.slack.submit_view(modal.id, {"arg:version": "1.4.3", "arg:region": "eu"})
    await asyncio.wait_for(run, 10)
    assert ran == [("1.4.3", "eu")]


async def test_a_timeout_ends_the_turn_and_withdraws_the_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    ran: list[str] = []
    agent = release_bot(deploy_call("call_slow"), approval_required(client, timeout=0.3), ran)

    with pytest.raises(HumanInputTimeoutError):
        await agent.ask("Ship 1.4.2")

    _, page = await rig.bot.call("GET", "/v1/approvals")
    [record] = page["items"]
    assert (record["status"], record["decision"]["action"]) == ("cancelled", "cancel")
    assert "stopped waiting after 0.3s" in record["decision"]["comment"]
    assert ran == []


async def test_an_unreachable_bot_ends_the_turn_and_runs_nothing() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ran: list[str] = []
    async with ApprovalClient(f"http://127.0.0.1:{port}", AGENT_TOKEN) as nowhere:
        agent = release_bot(deploy_call("call_gone"), approval_required(nowhere, timeout=0.5), ran)

        with pytest.raises(HumanInputFailedError):
            await agent.ask("Ship 1.4.2")

    assert ran == []


@pytest.mark.parametrize("answer", REFUSALS)
async def test_a_refusal_ends_the_turn_and_nothing_runs(answer: Any) -> None:
    """`hostile_bot` holds approved read_file as call_0; the model calls delete_file as call_0.

    ag2 hands a tool's exceptions to the model as its result; `HumanInputFailedError` it lets
    through, so that is how the refusal ends the turn, with the SDK's error as its `cause`.
    """
    deleted: list[str] = []
    async with hostile_bot(answer) as bot, ApprovalClient(bot.url, AGENT_TOKEN) as approvals:

        @tool(middleware=[approval_required(approvals)])
        def delete_file(path: str) -> str:
            """Delete a file."""
            deleted.append(path)
            return "deleted"

        config = ScriptedConfig(("call_0", "delete_file", DATA))
        agent = Agent("cleaner", config=config, tools=[delete_file])
        with pytest.raises(HumanInputFailedError) as caught:
            await agent.ask("clean up")

    check_refusal(caught.value.cause, answer)
    assert deleted == []


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"message": "Ship {version}?"}, id="message"),
        pytest.param({"denied_message": "No: {reason}"}, id="denied_message"),
    ],
)
def test_an_unknown_placeholder_fails_when_the_middleware_is_built(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="may use"):
        approval_required(ApprovalClient("http://127.0.0.1:9"), **kwargs)


async def test_the_example_runs_end_to_end(rig: SlackRig, monkeypatch: pytest.MonkeyPatch) -> None:
    use_the_rig(rig, monkeypatch)
    example = importlib.import_module("examples.autogen_example")
    monkeypatch.setattr(example.agent, "config", deploy_call("call_ex"))

    run = asyncio.create_task(example.main())
    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "reject", "U0BOB", {"reason": "wait for QA"})
    output = await asyncio.wait_for(run, 10)

    assert record["prompt"] == 'Run deploy_service with {"version": "1.4.2"}?'
    assert output == "The reviewer refused deploy_service: wait for QA"


def test_the_core_never_imports_ag2() -> None:
    assert "ag2" not in modules_the_core_imports()
