"""The OpenAI Agents SDK adapter: a scripted model, the real Runner, decisions in local Slack."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from bot.adapters.openai_agents import EDIT_NOTE, resolve_interruptions, run_with_approvals
from bot.sdk import ApprovalClient, ApprovalError, ApprovalTimeout
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
    """Calls the scripted tools on its first turn, then reports every tool output it was given."""

    def __init__(self, *calls: tuple[str, str, dict[str, Any]]) -> None:
        self.calls = calls
        self.inputs: list[Any] = []

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        given = kwargs.get("input", args[1] if len(args) > 1 else None)
        self.inputs.append(given)
        outputs = [
            item["output"]
            for item in (given if isinstance(given, list) else [])
            if isinstance(item, dict) and item.get("type") == "function_call_output"
        ]
        if outputs:
            text = " | ".join(str(output) for output in outputs)
            message = ResponseOutputMessage(
                id="msg_1",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
            )
            return ModelResponse(output=[message], usage=Usage(), response_id=None)
        calls = [
            ResponseFunctionToolCall(
                id=f"fc_{call_id}",
                call_id=call_id,
                type="function_call",
                name=name,
                arguments=json.dumps(arguments),
            )
            for call_id, name, arguments in self.calls
        ]
        return ModelResponse(output=list(calls), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the tests do not stream")


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


ran: list[dict[str, Any]] = []


@function_tool(needs_approval=True)
def deploy_service(version: str) -> str:
    """Send a build to production."""
    ran.append({"version": version})
    return f"deployed {version}"


@function_tool(needs_approval=True)
def rollback(to: str) -> str:
    """Go back to an earlier build."""
    ran.append({"to": to})
    return f"rolled back to {to}"


@pytest.fixture(autouse=True)
def clear_ran() -> None:
    ran.clear()


def release_bot(model: Model) -> Agent[Any]:
    return Agent("release-bot", model=model, tools=[deploy_service, rollback])


async def reject(rig: SlackRig, approval_id: str, reason: str) -> None:
    await answer_modal(rig, approval_id, "reject", "U0BOB", {"reason": reason})


async def test_an_approved_call_runs_and_the_card_offers_no_edit(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model = ScriptedModel(("call_dep1", "deploy_service", {"version": "1.4.2"}))
    run = asyncio.create_task(
        run_with_approvals(release_bot(model), "Ship 1.4.2", client, channel="C0DEPLOY")
    )

    record, buttons = await approve_the_card(rig, run, ran)
    result = await asyncio.wait_for(run, 10)

    assert ran == [{"version": "1.4.2"}]
    assert result.final_output == "deployed 1.4.2"
    assert (record["toolName"], record["toolCallId"]) == ("deploy_service", "call_dep1")
    assert record["args"] == {"version": "1.4.2"}
    assert record["channel"] == "C0DEPLOY"
    assert record["requester"]["agent"] == "release-bot"
    assert record["allowedDecisions"] == ["approve", "reject", "feedback"]
    assert EDIT_NOTE in record["context"]
    assert buttons == ["approve", "reject", "feedback"]


async def test_a_rejection_reaches_the_model_with_its_reason(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model = ScriptedModel(("call_dep2", "deploy_service", {"version": "1.4.2"}))
    run = asyncio.create_task(run_with_approvals(release_bot(model), "Ship it", client))

    [record] = await pending(rig)
    await reject(rig, record["id"], "not during the freeze")
    result = await asyncio.wait_for(run, 10)

    assert ran == []
    assert "not during the freeze" in result.final_output
    assert "rejected" in result.final_output and "deploy_service" in result.final_output
    last_input = json.dumps(model.inputs[-1])
    assert "not during the freeze" in last_input


async def test_every_call_of_a_turn_gets_its_own_card_and_decision(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model = ScriptedModel(
        ("call_a", "deploy_service", {"version": "2.0.0"}),
        ("call_b", "rollback", {"to": "1.4.1"}),
    )
    run = asyncio.create_task(run_with_approvals(release_bot(model), "Ship or undo", client))

    records = {r["toolCallId"]: r for r in await pending(rig, 2)}
    await reject(rig, records["call_a"]["id"], "wrong version")
    await rig.decided(records["call_a"]["id"])
    assert not run.done()
    await rig.click(records["call_b"]["id"], "approve", "U0ALICE")
    result = await asyncio.wait_for(run, 10)

    assert ran == [{"to": "1.4.1"}]
    outputs = result.final_output.split(" | ")
    assert len(outputs) == 2 and "rolled back to 1.4.1" in outputs
    [refused] = [text for text in outputs if "deploy_service" in text]
    assert "wrong version" in refused


@function_tool(needs_approval=True)
def deploy(version: str, region: str) -> str:
    """Send a build to a region."""
    ran.append({"version": version, "region": region})
    return f"deployed {version} to {region}"


@pytest.mark.parametrize(
    "approved_args",
    [
        pytest.param({"version": "1.4.3"}, id="incomplete"),
        pytest.param({"version": "1.4.3", "region": "us"}, id="complete-but-other"),
    ],
)
async def test_arguments_other_than_proposed_are_refused_before_they_are_stored(
    rig: SlackRig, client: ApprovalClient, approved_args: dict[str, Any]
) -> None:
    """The SDK runs a call as proposed or not at all: an approval of any other arguments
    would be a record saying approved for a call that cannot run."""
    model = ScriptedModel(("call_api", "deploy", {"version": "1.4.2", "region": "eu"}))
    agent = Agent("release-bot", model=model, tools=[deploy])
    run = asyncio.create_task(run_with_approvals(agent, "Ship it", client))

    [record] = await pending(rig)
    status, answer = await rig.bot.decide(record["id"], approvedArgs=approved_args)
    assert (status, answer["error"]) == (422, "invalid"), answer
    assert answer["path"].startswith("approvedArgs")
    assert (await rig.bot.call("GET", f"/v1/approvals/{record['id']}"))[1]["status"] == "pending"

    status, _ = await rig.bot.decide(record["id"], approvedArgs=record["args"])
    result = await asyncio.wait_for(run, 10)

    assert status == 200
    assert ran == [{"version": "1.4.2", "region": "eu"}]
    assert result.final_output == "deployed 1.4.2 to eu"


async def test_other_arguments_approved_anyway_are_refused_not_run(
    rig: SlackRig, client: ApprovalClient
) -> None:
    """With a schema of the caller's own the bot may store them; the tool still does not run."""
    model = ScriptedModel(("call_own", "deploy_service", {"version": "1.4.2"}))
    loose = {"type": "object"}
    run = asyncio.create_task(
        run_with_approvals(release_bot(model), "Ship it", client, args_schema=loose)
    )

    [record] = await pending(rig)
    status, _ = await rig.bot.decide(record["id"], approvedArgs={"version": "1.4.3"})
    result = await asyncio.wait_for(run, 10)

    assert status == 200 and record["argsSchema"] == loose
    assert ran == []
    assert '{"version": "1.4.3"}' in result.final_output
    assert "did not run" in result.final_output


async def test_a_timeout_leaves_the_run_paused_and_a_retry_resumes_the_same_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    agent = release_bot(ScriptedModel(("call_slow", "deploy_service", {"version": "1.4.2"})))
    paused = await Runner.run(agent, "Ship it")

    with pytest.raises(ApprovalTimeout):
        await resolve_interruptions(client, paused, timeout=0.2)
    retry = asyncio.create_task(resolve_interruptions(client, paused))
    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    state = await asyncio.wait_for(retry, 10)
    result = await Runner.run(agent, state)

    _, page = await rig.bot.call("GET", "/v1/approvals")
    assert [item["id"] for item in page["items"]] == [record["id"]]
    assert result.final_output == "deployed 1.4.2"


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"allowed_decisions": ["approve", "edit"]}, id="edit-offered"),
        pytest.param({"prompt": "Run {tool} now?"}, id="unknown-placeholder"),
    ],
)
async def test_impossible_requests_fail_before_any_card(
    rig: SlackRig, client: ApprovalClient, kwargs: dict[str, Any]
) -> None:
    agent = release_bot(ScriptedModel(("call_x", "deploy_service", {"version": "1.4.2"})))

    with pytest.raises(ValueError):
        await run_with_approvals(agent, "Ship it", client, **kwargs)

    _, page = await rig.bot.call("GET", "/v1/approvals")
    assert page["items"] == []


async def test_the_prompt_template_names_the_call(rig: SlackRig, client: ApprovalClient) -> None:
    agent = release_bot(ScriptedModel(("call_p", "rollback", {"to": "1.4.1"})))
    run = asyncio.create_task(
        run_with_approvals(agent, "Undo", client, prompt="Run {tool_name} with {tool_arguments}?")
    )

    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    await asyncio.wait_for(run, 10)

    assert record["prompt"] == 'Run rollback with {"to": "1.4.1"}?'


class OldRunState:
    """A run state of releases whose `reject` takes no message."""

    def __init__(self) -> None:
        self.rejected: list[Any] = []

    def reject(self, item: Any, always_reject: bool = False) -> None:
        self.rejected.append(item)


def test_releases_without_rejection_messages_still_reject() -> None:
    from bot.adapters.openai_agents import _apply
    from bot.models import Action, Decision

    class Item:
        name = "deploy_service"
        arguments = '{"version": "1.4.2"}'
        call_id = "call_old"

    state = OldRunState()
    decision = Decision(
        approved=False, action=Action.REJECT, decided_by="U0BOB", decided_at="2026-01-01T00:00:00Z"
    )
    _apply(state, Item(), decision)  # type: ignore[arg-type]

    assert len(state.rejected) == 1


@pytest.mark.parametrize("answer", REFUSALS)
async def test_a_refusal_ends_the_run_and_nothing_runs(answer: Any) -> None:
    """`hostile_bot` holds approved read_file as call_0; the model calls delete_file as call_0."""
    deleted: list[str] = []

    @function_tool(needs_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        deleted.append(path)
        return "deleted"

    model = ScriptedModel(("call_0", "delete_file", DATA))
    agent = Agent("cleaner", model=model, tools=[delete_file])
    async with hostile_bot(answer) as bot, ApprovalClient(bot.url, AGENT_TOKEN) as approvals:
        with pytest.raises(ApprovalError) as caught:
            await run_with_approvals(agent, "clean up", approvals)

    check_refusal(caught.value, answer)
    assert deleted == [] and len(model.inputs) == 1


async def test_the_example_runs_end_to_end(rig: SlackRig, monkeypatch: pytest.MonkeyPatch) -> None:
    use_the_rig(rig, monkeypatch)
    example = importlib.import_module("examples.openai_agents_example")
    model = ScriptedModel(("call_ex", "deploy_service", {"version": "1.4.2"}))
    monkeypatch.setattr(example.agent, "model", model)

    run = asyncio.create_task(example.main())
    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    output = await asyncio.wait_for(run, 10)

    assert record["channel"] == "C0OPS"
    assert output == "deployed 1.4.2"


def test_the_core_never_imports_the_openai_agents_sdk() -> None:
    assert "agents" not in modules_the_core_imports()
