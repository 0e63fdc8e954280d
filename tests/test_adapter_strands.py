"""The Strands adapter: a scripted model, the real Agent and hooks, decisions in the local Slack."""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
from collections.abc import AsyncGenerator
from typing import Any

import pytest

pytest.importorskip("strands")

from strands import Agent, tool
from strands.hooks import BeforeToolCallEvent, HookProvider, HookRegistry
from strands.models.model import Model
from strands.types.exceptions import EventLoopException

from bot.adapters.strands import SlackApproval
from bot.sdk import ApprovalClient, ApprovalError
from tests.adapter_support import (
    answer_modal,
    approve_the_card,
    modules_the_core_imports,
    pending,
    use_the_rig,
)
from tests.conftest import AGENT_TOKEN, SlackRig
from tests.test_sdk_refusals import DATA, REFUSALS, check_refusal, hostile_bot


class ScriptedModel(Model):
    """Streams the scripted tool calls on its first turn, then the tool results it was given."""

    def __init__(self, *calls: tuple[str, str, dict[str, Any]]) -> None:
        self.calls = calls
        self.seen: list[Any] = []

    def update_config(self, **model_config: Any) -> None:
        pass

    def get_config(self) -> Any:
        return {}

    async def structured_output(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        raise NotImplementedError("the tests ask for no structured output")
        yield

    async def stream(  # type: ignore[override]
        self, messages: Any, *args: Any, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        self.seen.append(json.loads(json.dumps(messages, default=str)))
        results = [part["toolResult"] for part in messages[-1]["content"] if "toolResult" in part]
        yield {"messageStart": {"role": "assistant"}}
        if results:
            text = " | ".join(
                block["text"]
                for result in results
                for block in result["content"]
                if "text" in block
            )
            yield {"contentBlockDelta": {"delta": {"text": text}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
            return
        for call_id, name, args in self.calls:
            yield {
                "contentBlockStart": {"start": {"toolUse": {"toolUseId": call_id, "name": name}}}
            }
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(args)}}}}
            yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": "tool_use"}}

    def results_told(self) -> list[dict[str, Any]]:
        """The tool results the model read on its last turn."""
        last = self.seen[-1][-1]["content"]
        return [part["toolResult"] for part in last if "toolResult" in part]


ran: list[tuple[str, str]] = []


@tool
def deploy(version: str, region: str = "us") -> str:
    """Send a build to a region."""
    ran.append((version, region))
    return f"deployed {version} to {region}"


@tool
def status() -> str:
    """Say what runs in production."""
    ran.append(("status", ""))
    return "1.4.1 everywhere"


@pytest.fixture(autouse=True)
def clear_ran() -> None:
    ran.clear()


def release_bot(model: ScriptedModel, *hooks: HookProvider) -> Agent:
    return Agent(
        name="release-bot",
        model=model,
        tools=[deploy, status],
        hooks=list(hooks),
        callback_handler=None,
    )


def deploy_call(call_id: str, **args: Any) -> ScriptedModel:
    return ScriptedModel((call_id, "deploy", {"version": "1.4.2", **args}))


async def test_an_approved_call_runs_as_proposed(rig: SlackRig, client: ApprovalClient) -> None:
    gate = SlackApproval(
        client, channel="C0DEPLOY", prompt="Run {tool_name} with {tool_arguments}?"
    )
    task = asyncio.create_task(release_bot(deploy_call("tu_1"), gate).invoke_async("Ship 1.4.2"))

    record, buttons = await approve_the_card(rig, task, ran)
    result = await asyncio.wait_for(task, 10)

    assert ran == [("1.4.2", "us")]
    assert str(result).strip() == "deployed 1.4.2 to us"
    assert (record["toolName"], record["toolCallId"]) == ("deploy", "tu_1")
    assert record["prompt"] == 'Run deploy with {"version": "1.4.2"}?'
    assert (record["channel"], record["requester"]["agent"]) == ("C0DEPLOY", "release-bot")
    assert record["argsSchema"]["required"] == ["version"]
    assert record["argsSchema"]["additionalProperties"] is False
    assert buttons == ["approve", "edit", "reject", "feedback"]


async def test_edited_arguments_are_the_input_the_tool_runs_with(
    rig: SlackRig, client: ApprovalClient
) -> None:
    agent = release_bot(deploy_call("tu_2", region="us"), SlackApproval(client))
    task = asyncio.create_task(agent.invoke_async("Ship 1.4.2"))

    [record] = await pending(rig)
    await answer_modal(
        rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3", "arg:region": "eu"}
    )
    result = await asyncio.wait_for(task, 10)

    assert ran == [("1.4.3", "eu")]
    assert str(result).strip() == "deployed 1.4.3 to eu"
    [call] = [part["toolUse"] for part in agent.messages[1]["content"]]
    assert call["input"] == {"version": "1.4.3", "region": "eu"}  # the call as it ran


async def test_approved_args_replace_the_input_whole_and_are_checked_first(
    rig: SlackRig, client: ApprovalClient
) -> None:
    """An admin decision adding an argument the tool lacks is refused (422) with nothing
    stored; one leaving out `region` runs the tool without it (its default), never with the
    model's `eu`."""
    agent = release_bot(deploy_call("tu_3", region="eu"), SlackApproval(client))
    task = asyncio.create_task(agent.invoke_async("Ship"))

    [record] = await pending(rig)
    status, answer = await rig.bot.decide(
        record["id"], approvedArgs={"version": "1.4.3", "force": True}
    )
    assert (status, answer["error"]) == (422, "invalid"), answer
    status, _ = await rig.bot.decide(record["id"], approvedArgs={"version": "1.4.3"})
    await asyncio.wait_for(task, 10)

    assert status == 200
    assert ran == [("1.4.3", "us")]


async def test_a_rejection_cancels_the_call_with_its_reason(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model = deploy_call("tu_4")
    task = asyncio.create_task(release_bot(model, SlackApproval(client)).invoke_async("Ship"))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "reject", "U0BOB", {"reason": "not during the freeze"})
    result = await asyncio.wait_for(task, 10)

    assert ran == []
    [told] = model.results_told()
    assert told["status"] == "error"
    assert told["content"] == [
        {"text": "The user rejected this tool call (deploy): not during the freeze"}
    ]
    assert "not during the freeze" in str(result)


async def test_every_call_of_a_turn_is_asked_at_once_and_other_tools_run_unasked(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model = ScriptedModel(
        ("tu_a", "deploy", {"version": "2.0.0"}),
        ("tu_b", "deploy", {"version": "1.4.2", "region": "eu"}),
        ("tu_c", "status", {}),
    )
    gate = SlackApproval(client, tools=["deploy"])
    task = asyncio.create_task(release_bot(model, gate).invoke_async("Ship both"))

    records = {r["toolCallId"]: r for r in await pending(rig, 2)}
    await answer_modal(rig, records["tu_a"]["id"], "feedback", "U0BOB", {"feedback": "too new"})
    await rig.click(records["tu_b"]["id"], "approve", "U0ALICE")
    await asyncio.wait_for(task, 10)

    assert sorted(ran) == [("1.4.2", "eu"), ("status", "")]
    told = {result["toolUseId"]: result for result in model.results_told()}
    assert told["tu_a"]["status"] == "error" and "too new" in told["tu_a"]["content"][0]["text"]
    assert told["tu_b"]["content"] == [{"text": "deployed 1.4.2 to eu"}]
    assert set(records) == {"tu_a", "tu_b"}


async def test_a_timeout_withdraws_the_card_and_cancels_the_call(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model = deploy_call("tu_5")
    await release_bot(model, SlackApproval(client, timeout=0.3)).invoke_async("Ship")

    [record] = (await rig.bot.call("GET", "/v1/approvals"))[1]["items"]
    assert (record["status"], record["decision"]["action"]) == ("cancelled", "cancel")
    assert "strands stopped waiting after 0.3s" in record["decision"]["comment"]
    assert ran == []
    [told] = model.results_told()
    assert told["content"] == [
        {
            "text": "Nobody decided on this tool call (deploy) in Slack within 0.3s, "
            "so it did not run."
        }
    ]


async def test_a_stopped_run_withdraws_its_card(rig: SlackRig, client: ApprovalClient) -> None:
    task = asyncio.create_task(
        release_bot(deploy_call("tu_6"), SlackApproval(client)).invoke_async("Ship")
    )
    [record] = await pending(rig)
    task.cancel()

    decided = await rig.decided(record["id"])
    assert (decided["status"], decided["decision"]["decidedBy"]) == ("cancelled", "strands")
    assert ran == []


class CancelsEverything(HookProvider):
    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        registry.add_callback(BeforeToolCallEvent, self.cancel)

    def cancel(self, event: BeforeToolCallEvent) -> None:
        event.cancel_tool = "not today"


async def test_a_call_another_hook_cancelled_is_not_asked_about(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model = deploy_call("tu_7")
    await release_bot(model, CancelsEverything(), SlackApproval(client)).invoke_async("Ship")

    assert (await rig.bot.call("GET", "/v1/approvals"))[1]["items"] == []
    assert model.results_told()[0]["content"] == [{"text": "not today"}]


async def test_an_unreachable_bot_ends_the_invocation_and_runs_nothing() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with ApprovalClient(f"http://127.0.0.1:{port}", AGENT_TOKEN) as nowhere:
        agent = release_bot(deploy_call("tu_8"), SlackApproval(nowhere, timeout=0.5))
        with pytest.raises(EventLoopException) as caught:
            await agent.invoke_async("Ship")

    assert isinstance(caught.value.original_exception, ApprovalError)
    assert "cannot reach" in str(caught.value.original_exception)
    assert ran == []


@pytest.mark.parametrize("answer", REFUSALS)
async def test_a_refusal_ends_the_invocation_and_nothing_runs(answer: Any) -> None:
    """`hostile_bot` holds approved read_file as call_0; the model calls delete_file as call_0.

    Strands wraps what a hook raises in its `EventLoopException`: the SDK's error is its
    `original_exception`."""
    deleted: list[str] = []

    @tool
    def delete_file(path: str) -> str:
        """Delete a file."""
        deleted.append(path)
        return "deleted"

    model = ScriptedModel(("call_0", "delete_file", DATA))
    async with hostile_bot(answer) as bot, ApprovalClient(bot.url, AGENT_TOKEN) as approvals:
        agent = Agent(
            model=model,
            tools=[delete_file],
            hooks=[SlackApproval(approvals)],
            callback_handler=None,
        )
        with pytest.raises(EventLoopException) as caught:
            await agent.invoke_async("clean up")

    check_refusal(caught.value.original_exception, answer)
    assert deleted == [] and len(model.seen) == 1


def test_an_unknown_placeholder_fails_when_the_hook_is_built() -> None:
    with pytest.raises(ValueError, match="may use"):
        SlackApproval(ApprovalClient("http://127.0.0.1:9"), prompt="Ship {version}?")


async def test_the_example_runs_end_to_end(rig: SlackRig, monkeypatch: pytest.MonkeyPatch) -> None:
    use_the_rig(rig, monkeypatch)
    example = importlib.import_module("examples.strands_example")
    monkeypatch.setattr(
        example.agent, "model", ScriptedModel(("tu_ex", "deploy_service", {"version": "1.4.2"}))
    )

    run = asyncio.create_task(example.main())
    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    output = await asyncio.wait_for(run, 10)

    assert (record["priority"], record["channel"]) == ("high", "C0OPS")
    assert output == "deployed 1.4.2"


def test_the_core_never_imports_strands() -> None:
    assert "strands" not in modules_the_core_imports()
