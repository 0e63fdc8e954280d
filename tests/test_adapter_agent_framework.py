"""The Microsoft Agent Framework adapter: a scripted chat client, the real Agent, local Slack."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("agent_framework")

from agent_framework import (
    Agent,
    AgentSession,
    BaseChatClient,
    ChatMiddlewareLayer,
    ChatResponse,
    Content,
    FunctionInvocationLayer,
    Message,
    tool,
)

from bot.adapters.agent_framework import run_with_approvals
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


class Script:
    """Calls the scripted tools on its first turn, then reports every tool result it was given."""

    def __init__(self, *calls: tuple[str, str, dict[str, Any]]) -> None:
        super().__init__()
        self.calls = calls
        self.seen: list[list[Message]] = []

    async def _inner_get_response(
        self, *, messages: Sequence[Message], stream: bool, options: Any, **kwargs: Any
    ) -> ChatResponse[Any]:
        self.seen.append(list(messages))
        results = [
            content for content in messages[-1].contents if content.type == "function_result"
        ]
        if results:
            text = " | ".join(str(content.result) for content in results)
            return ChatResponse(messages=[Message(role="assistant", contents=[text])])
        calls = [
            Content.from_function_call(call_id=call_id, name=name, arguments=arguments)
            for call_id, name, arguments in self.calls
        ]
        return ChatResponse(messages=[Message(role="assistant", contents=calls)])


class ScriptedClient(
    Script, FunctionInvocationLayer[Any], ChatMiddlewareLayer[Any], BaseChatClient[Any]
):
    """A scripted model composed as the framework's own clients are: chat middleware runs."""


class BareScriptedClient(Script, FunctionInvocationLayer[Any], BaseChatClient[Any]):
    """A scripted model without `ChatMiddlewareLayer`: chat middleware never runs for it."""


ran: list[dict[str, Any]] = []


@tool(approval_mode="always_require")
def deploy_service(version: str) -> str:
    """Send a build to production."""
    ran.append({"version": version})
    return f"deployed {version}"


@tool(approval_mode="always_require")
def deploy(version: str, region: str) -> str:
    """Send a build to a region."""
    ran.append({"version": version, "region": region})
    return f"deployed {version} to {region}"


@tool(approval_mode="always_require")
def rollback(to: str) -> str:
    """Go back to an earlier build."""
    ran.append({"to": to})
    return f"rolled back to {to}"


@pytest.fixture(autouse=True)
def clear_ran() -> None:
    ran.clear()


def release_bot(chat: Any, tools: list[Any] | None = None) -> Agent[Any]:
    return Agent(client=chat, name="release-bot", tools=tools or [deploy_service, rollback])


async def test_an_approved_call_runs_as_proposed(rig: SlackRig, client: ApprovalClient) -> None:
    agent = release_bot(ScriptedClient(("call_dep1", "deploy_service", {"version": "1.4.2"})))
    run = asyncio.create_task(run_with_approvals(agent, "Ship 1.4.2", client, priority="high"))

    record, buttons = await approve_the_card(rig, run, ran)
    response = await asyncio.wait_for(run, 10)

    assert ran == [{"version": "1.4.2"}]
    assert response.text == "deployed 1.4.2"
    assert (record["toolName"], record["toolCallId"]) == ("deploy_service", "call_dep1")
    assert (record["priority"], record["requester"]["agent"]) == ("high", "release-bot")
    assert buttons == ["approve", "edit", "reject", "feedback"]
    assert record["argsSchema"]["required"] == ["version"]


async def test_edited_arguments_reach_the_tool_through_one_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    """The framework asks again for the edited arguments; that is answered without a card."""
    chat = ScriptedClient(("call_dep2", "deploy_service", {"version": "1.4.2"}))
    run = asyncio.create_task(run_with_approvals(release_bot(chat), "Ship 1.4.2", client))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3"})
    response = await asyncio.wait_for(run, 10)

    assert ran == [{"version": "1.4.3"}]
    assert response.text == "deployed 1.4.3"
    _, page = await rig.bot.call("GET", "/v1/approvals")
    assert [item["id"] for item in page["items"]] == [record["id"]]


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
    chat = ScriptedClient(("call_dep3", "deploy_service", {"version": "1.4.2"}))
    agent = release_bot(chat)
    session = agent.create_session()
    run = asyncio.create_task(run_with_approvals(agent, "Ship it", client, session=session))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], action, "U0BOB", values)
    response = await asyncio.wait_for(run, 10)

    assert ran == []
    [reason] = values.values()
    assert reason in response.text and said in response.text
    assert "deploy_service" in response.text

    await agent.run("And now?", session=session)  # the history keeps what the model was told
    told = [content.result for message in chat.seen[-1] for content in message.contents]
    assert any(reason in str(result) for result in told)


async def test_without_chat_middleware_the_model_reads_the_frameworks_words(
    rig: SlackRig, client: ApprovalClient
) -> None:
    chat = BareScriptedClient(("call_bare", "deploy_service", {"version": "1.4.2"}))
    run = asyncio.create_task(run_with_approvals(release_bot(chat), "Ship it", client))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "reject", "U0BOB", {"reason": "not today"})
    response = await asyncio.wait_for(run, 10)

    assert ran == []
    assert response.text == "Error: Tool call invocation was rejected by user."


async def test_every_call_of_a_turn_is_decided_on_its_own(
    rig: SlackRig, client: ApprovalClient
) -> None:
    chat = ScriptedClient(
        ("call_a", "deploy_service", {"version": "2.0.0"}),
        ("call_b", "rollback", {"to": "1.4.1"}),
    )
    run = asyncio.create_task(run_with_approvals(release_bot(chat), "Ship or undo", client))

    records = {r["toolCallId"]: r for r in await pending(rig, 2)}
    await answer_modal(rig, records["call_a"]["id"], "reject", "U0BOB", {"reason": "wrong one"})
    await rig.decided(records["call_a"]["id"])
    assert not run.done()
    await rig.click(records["call_b"]["id"], "approve", "U0ALICE")
    response = await asyncio.wait_for(run, 10)

    assert ran == [{"to": "1.4.1"}]
    outputs = response.text.split(" | ")
    assert len(outputs) == 2 and "rolled back to 1.4.1" in outputs
    [refused] = [text for text in outputs if "deploy_service" in text]
    assert "wrong one" in refused


async def test_approved_args_are_the_complete_arguments_and_checked_before_they_are_stored(
    rig: SlackRig, client: ApprovalClient
) -> None:
    """An admin decision leaving out `region` is refused (422) with nothing stored; a
    complete one runs the tool with exactly those arguments."""
    chat = ScriptedClient(("call_rg", "deploy", {"version": "1.4.2", "region": "us"}))
    run = asyncio.create_task(run_with_approvals(release_bot(chat, [deploy]), "go", client))

    [record] = await pending(rig)
    complete = {"version": "1.4.3", "region": "eu"}
    status = await decide_incomplete_then_complete(rig, record["id"], complete)
    response = await asyncio.wait_for(run, 10)

    assert status == 200
    assert ran == [complete]
    assert response.text == "deployed 1.4.3 to eu"


async def test_an_expired_approval_tells_the_model_nobody_decided(
    rig: SlackRig, client: ApprovalClient
) -> None:
    agent = release_bot(ScriptedClient(("call_late", "deploy_service", {"version": "1.4.2"})))

    response = await asyncio.wait_for(
        run_with_approvals(agent, "Ship it", client, timeout_seconds=1), 10
    )

    assert ran == []
    assert "in time" in response.text and "deploy_service" in response.text


async def test_a_timeout_leaves_the_run_paused_and_a_retry_resumes_the_same_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    agent = release_bot(ScriptedClient(("call_slow", "deploy_service", {"version": "1.4.2"})))
    session = agent.create_session()

    with pytest.raises(ApprovalTimeout):
        await run_with_approvals(agent, "Ship it", client, session=session, timeout=0.2)
    saved = AgentSession.from_dict(session.to_dict())  # as a restarted process would load it
    retry = asyncio.create_task(run_with_approvals(agent, None, client, session=saved))
    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3"})
    response = await asyncio.wait_for(retry, 10)

    _, page = await rig.bot.call("GET", "/v1/approvals")
    assert [item["id"] for item in page["items"]] == [record["id"]]
    assert ran == [{"version": "1.4.3"}]
    assert response.text == "deployed 1.4.3"
    with pytest.raises(ValueError, match="waits for no approval"):
        await run_with_approvals(agent, None, client, session=saved)


async def test_an_unknown_prompt_placeholder_fails_before_any_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    agent = release_bot(ScriptedClient(("call_x", "deploy_service", {"version": "1.4.2"})))

    with pytest.raises(ValueError, match="version"):
        await run_with_approvals(agent, "Ship it", client, prompt="Ship {version}?")

    _, page = await rig.bot.call("GET", "/v1/approvals")
    assert page["items"] == []


@pytest.mark.parametrize("answer", REFUSALS)
async def test_a_refusal_ends_the_run_and_nothing_runs(answer: Any) -> None:
    """`hostile_bot` holds approved read_file as call_0; the model calls delete_file as call_0."""
    deleted: list[str] = []

    @tool(approval_mode="always_require")
    def delete_file(path: str) -> str:
        """Delete a file."""
        deleted.append(path)
        return "deleted"

    agent = release_bot(ScriptedClient(("call_0", "delete_file", DATA)), [delete_file])
    async with hostile_bot(answer) as bot, ApprovalClient(bot.url, AGENT_TOKEN) as approvals:
        with pytest.raises(ApprovalError) as caught:
            await run_with_approvals(agent, "clean up", approvals)

    check_refusal(caught.value, answer)
    assert deleted == []


async def test_the_example_runs_end_to_end(rig: SlackRig, monkeypatch: pytest.MonkeyPatch) -> None:
    use_the_rig(rig, monkeypatch)
    example = importlib.import_module("examples.agent_framework_example")
    chat = ScriptedClient(("call_ex", "deploy_service", {"version": "1.4.2"}))

    run = asyncio.create_task(example.main(chat))
    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3"})
    output = await asyncio.wait_for(run, 10)

    assert (record["args"], record["priority"]) == ({"version": "1.4.2"}, "high")
    assert output == "deployed 1.4.3"


def test_the_core_never_imports_the_agent_framework() -> None:
    assert "agent_framework" not in modules_the_core_imports()
