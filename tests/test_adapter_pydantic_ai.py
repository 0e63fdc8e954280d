"""The Pydantic AI adapter: FunctionModel and TestModel, the real agent, local Slack."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.capabilities import HandleDeferredToolCalls
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from bot.adapters.pydantic_ai import approval_handler, resolve_deferred, run_with_approvals
from bot.sdk import ApprovalClient, ApprovalError, ApprovalTimeout
from tests.adapter_support import (
    answer_modal,
    approve_the_card,
    decide_incomplete_then_complete,
    modules_the_core_imports,
    pending,
    use_the_rig,
)
from tests.conftest import AGENT_TOKEN, SlackRig
from tests.test_sdk_refusals import DATA, REFUSALS, check_refusal, hostile_bot


def scripted(*calls: tuple[str, str, dict[str, Any]]) -> FunctionModel:
    """Calls the scripted tools on its first turn, then reports every tool return it was given."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        returns = [
            str(part.content)
            for part in (last.parts if isinstance(last, ModelRequest) else [])
            if isinstance(part, ToolReturnPart)
        ]
        if returns:
            return ModelResponse(parts=[TextPart(" | ".join(returns))])
        return ModelResponse(
            parts=[ToolCallPart(name, args, tool_call_id=call_id) for call_id, name, args in calls]
        )

    return FunctionModel(respond)


ran: list[dict[str, Any]] = []


def release_bot(model: Any, *, inline: Any = None) -> Agent[None, Any]:
    agent: Agent[None, Any] = Agent(
        model,
        name="release-bot",
        output_type=str if inline else [str, DeferredToolRequests],
        capabilities=[HandleDeferredToolCalls(handler=inline)] if inline else None,
    )

    @agent.tool_plain(requires_approval=True)
    def deploy_service(version: str) -> str:
        """Send a build to production."""
        ran.append({"version": version})
        return f"deployed {version}"

    @agent.tool_plain(requires_approval=True)
    def rollback(to: str) -> str:
        """Go back to an earlier build."""
        ran.append({"to": to})
        return f"rolled back to {to}"

    return agent


@pytest.fixture(autouse=True)
def clear_ran() -> None:
    ran.clear()


async def test_an_approved_call_runs_as_proposed(rig: SlackRig, client: ApprovalClient) -> None:
    agent = release_bot(scripted(("call_dep1", "deploy_service", {"version": "1.4.2"})))
    run = asyncio.create_task(run_with_approvals(agent, "Ship 1.4.2", client, priority="high"))

    record, buttons = await approve_the_card(rig, run, ran)
    result = await asyncio.wait_for(run, 10)

    assert ran == [{"version": "1.4.2"}]
    assert result.output == "deployed 1.4.2"
    assert (record["toolName"], record["toolCallId"]) == ("deploy_service", "call_dep1")
    assert (record["priority"], record["requester"]["agent"]) == ("high", "release-bot")
    assert buttons == ["approve", "edit", "reject", "feedback"]


async def test_edited_arguments_reach_the_tool(rig: SlackRig, client: ApprovalClient) -> None:
    agent = release_bot(scripted(("call_dep2", "deploy_service", {"version": "1.4.2"})))
    run = asyncio.create_task(run_with_approvals(agent, "Ship 1.4.2", client))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3"})
    result = await asyncio.wait_for(run, 10)

    assert ran == [{"version": "1.4.3"}]
    assert result.output == "deployed 1.4.3"


@pytest.mark.parametrize(
    ("action", "values", "said"),
    [
        pytest.param("reject", {"reason": "not during the freeze"}, "rejected", id="reject"),
        pytest.param("feedback", {"feedback": "staging first"}, "feedback", id="feedback"),
    ],
)
async def test_a_refusal_reaches_the_model_with_its_reason(
    rig: SlackRig, client: ApprovalClient, action: str, values: dict[str, str], said: str
) -> None:
    agent = release_bot(scripted(("call_dep3", "deploy_service", {"version": "1.4.2"})))
    run = asyncio.create_task(run_with_approvals(agent, "Ship it", client))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], action, "U0BOB", values)
    result = await asyncio.wait_for(run, 10)

    assert ran == []
    [reason] = values.values()
    assert reason in result.output and said in result.output
    assert "deploy_service" in result.output


async def test_every_call_of_a_turn_is_decided_on_its_own(
    rig: SlackRig, client: ApprovalClient
) -> None:
    agent = release_bot(
        scripted(
            ("call_a", "deploy_service", {"version": "2.0.0"}),
            ("call_b", "rollback", {"to": "1.4.1"}),
        )
    )
    paused = await agent.run("Ship or undo")
    assert isinstance(paused.output, DeferredToolRequests)

    deciding = asyncio.create_task(resolve_deferred(client, paused.output))
    records = {r["toolCallId"]: r for r in await pending(rig, 2)}
    await rig.click(records["call_b"]["id"], "approve", "U0ALICE")
    await answer_modal(rig, records["call_a"]["id"], "reject", "U0BOB", {"reason": "wrong one"})
    results = await asyncio.wait_for(deciding, 10)
    finished = await agent.run(message_history=paused.all_messages(), deferred_tool_results=results)

    assert results.approvals["call_b"] is True
    assert ran == [{"to": "1.4.1"}]
    assert "wrong one" in finished.output and "rolled back to 1.4.1" in finished.output
    if hasattr(results, "answered_by"):  # releases since 2.x record who answered
        assert results.answered_by == {"call_a": "U0BOB", "call_b": "U0ALICE"}


async def test_the_handler_decides_inside_the_run(rig: SlackRig, client: ApprovalClient) -> None:
    handler = approval_handler(client, prompt="Let {tool_name} run?")
    agent = release_bot(TestModel(call_tools=["rollback"]), inline=handler)
    run = asyncio.create_task(agent.run("Undo the release"))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:to": "1.3.9"})
    result = await asyncio.wait_for(run, 10)

    assert record["prompt"] == "Let rollback run?"
    assert ran == [{"to": "1.3.9"}]
    assert "rolled back to 1.3.9" in result.output


def region_agent(model: Any, *, inline: Any = None) -> Agent[None, Any]:
    agent: Agent[None, Any] = Agent(
        model,
        output_type=str if inline else [str, DeferredToolRequests],
        capabilities=[HandleDeferredToolCalls(handler=inline)] if inline else None,
    )

    @agent.tool_plain(requires_approval=True)
    def deploy(version: str, region: str) -> str:
        """Send a build to a region."""
        ran.append({"version": version, "region": region})
        return f"deployed {version} to {region}"

    return agent


@pytest.mark.parametrize("inline", [False, True], ids=["run_with_approvals", "handler"])
async def test_approved_args_are_the_complete_arguments_and_checked_before_they_are_stored(
    rig: SlackRig, client: ApprovalClient, inline: bool
) -> None:
    """An admin decision leaving out `region` is refused (422) with nothing stored; a
    complete one runs the tool with exactly those arguments."""
    model = scripted(("call_rg", "deploy", {"version": "1.4.2", "region": "us"}))
    if inline:
        run = asyncio.create_task(region_agent(model, inline=approval_handler(client)).run("go"))
    else:
        run = asyncio.create_task(run_with_approvals(region_agent(model), "go", client))

    [record] = await pending(rig)
    complete = {"version": "1.4.3", "region": "eu"}
    status = await decide_incomplete_then_complete(rig, record["id"], complete)
    result = await asyncio.wait_for(run, 10)

    assert status == 200
    assert ran == [complete]
    assert result.output == "deployed 1.4.3 to eu"


async def test_a_timeout_leaves_the_run_paused_and_a_retry_resumes_the_same_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    agent = release_bot(scripted(("call_slow", "deploy_service", {"version": "1.4.2"})))
    paused = await agent.run("Ship it")
    assert isinstance(paused.output, DeferredToolRequests)

    with pytest.raises(ApprovalTimeout):
        await resolve_deferred(client, paused.output, timeout=0.2)
    retry = asyncio.create_task(resolve_deferred(client, paused.output))
    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    results = await asyncio.wait_for(retry, 10)

    _, page = await rig.bot.call("GET", "/v1/approvals")
    assert [item["id"] for item in page["items"]] == [record["id"]]
    assert results.approvals == {"call_slow": True}


async def test_an_unknown_prompt_placeholder_fails_before_any_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    agent = release_bot(scripted(("call_x", "deploy_service", {"version": "1.4.2"})))

    with pytest.raises(ValueError, match="version"):
        await run_with_approvals(agent, "Ship it", client, prompt="Ship {version}?")

    _, page = await rig.bot.call("GET", "/v1/approvals")
    assert page["items"] == []


def deleting_agent(deleted: list[str], *, inline: Any = None) -> Agent[None, Any]:
    """An agent whose model calls delete_file("/srv/data") as call_0, gated by approval."""
    agent: Agent[None, Any] = Agent(
        scripted(("call_0", "delete_file", DATA)),
        output_type=str if inline else [str, DeferredToolRequests],
        capabilities=[HandleDeferredToolCalls(handler=inline)] if inline else None,
    )

    @agent.tool_plain(requires_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        deleted.append(path)
        return "deleted"

    return agent


@pytest.mark.parametrize("inline", [False, True], ids=["deferred", "handler"])
@pytest.mark.parametrize("answer", REFUSALS)
async def test_a_refusal_ends_the_run_and_nothing_runs(answer: Any, inline: bool) -> None:
    """`hostile_bot` holds approved read_file as call_0; the model calls delete_file as call_0."""
    deleted: list[str] = []
    async with hostile_bot(answer) as bot, ApprovalClient(bot.url, AGENT_TOKEN) as approvals:
        with pytest.raises(ApprovalError) as caught:
            if inline:
                await deleting_agent(deleted, inline=approval_handler(approvals)).run("clean")
            else:
                await run_with_approvals(deleting_agent(deleted), "clean up", approvals)

    check_refusal(caught.value, answer)
    assert deleted == []


async def test_the_example_runs_end_to_end(rig: SlackRig, monkeypatch: pytest.MonkeyPatch) -> None:
    use_the_rig(rig, monkeypatch)
    example = importlib.import_module("examples.pydantic_ai_example")

    model = scripted(("call_ex", "deploy_service", {"version": "1.4.2"}))
    with example.agent.override(model=model):
        run = asyncio.create_task(example.main())
        [record] = await pending(rig)
        await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3"})
        output = await asyncio.wait_for(run, 10)

    assert record["args"] == {"version": "1.4.2"}
    assert output == "deployed 1.4.3"


def test_the_core_never_imports_pydantic_ai() -> None:
    assert "pydantic_ai" not in modules_the_core_imports()
