"""The Google ADK adapter: a scripted model, the real Agent and Runner, the local Slack."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest

pytest.importorskip("google.adk")

from google.adk.agents import Agent
from google.adk.events import Event
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import InMemoryRunner
from google.adk.tools import FunctionTool, ToolContext
from google.genai import types
from pydantic import Field

from bot.adapters.google_adk import (
    EDIT_NOTE,
    ApprovalTool,
    resolve_confirmations,
    run_with_approvals,
)
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

USER = "dave"


class ScriptedModel(BaseLlm):
    """Calls the scripted tools on its first turn, then reports every tool response it got."""

    model: str = "scripted"
    calls: list[tuple[str, str, dict[str, Any]]] = Field(default_factory=list)
    requests: list[LlmRequest] = Field(default_factory=list)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        self.requests.append(llm_request)
        last = llm_request.contents[-1]
        responses = [part.function_response for part in last.parts or [] if part.function_response]
        if responses:
            text = " | ".join(_said(response.response) for response in responses)
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))
            return
        parts = [
            types.Part(function_call=types.FunctionCall(id=call_id, name=name, args=args))
            for call_id, name, args in self.calls
        ]
        yield LlmResponse(content=types.Content(role="model", parts=parts))


def _said(response: dict[str, Any] | None) -> str:
    """What a tool answered: its result, or its error."""
    response = response or {}
    return str(response.get("result", response.get("error", json.dumps(response))))


def scripted(*calls: tuple[str, str, dict[str, Any]]) -> ScriptedModel:
    return ScriptedModel(calls=list(calls))


ran: list[dict[str, Any]] = []


def deploy_service(version: str) -> str:
    """Send a build to production."""
    ran.append({"version": version})
    return f"deployed {version}"


def deploy(version: str, region: str) -> str:
    """Send a build to a region."""
    ran.append({"version": version, "region": region})
    return f"deployed {version} to {region}"


def rollback(to: str) -> str:
    """Go back to an earlier build."""
    ran.append({"to": to})
    return f"rolled back to {to}"


@pytest.fixture(autouse=True)
def clear_ran() -> None:
    ran.clear()


class Release:
    """A release agent on an in-memory runner, with one session for the test's user."""

    def __init__(self, model: BaseLlm, tools: list[Any] | None = None) -> None:
        self.agent = Agent(
            name="release_bot",
            model=model,
            tools=tools
            if tools is not None
            else [ApprovalTool(deploy_service), ApprovalTool(rollback)],
        )
        self.runner = InMemoryRunner(self.agent, app_name="releases")
        self.session_id = ""

    async def start(self) -> Release:
        session = await self.runner.session_service.create_session(
            app_name="releases", user_id=USER
        )
        self.session_id = session.id
        return self

    def run(self, client: ApprovalClient, message: str | None, **kwargs: Any) -> Any:
        return run_with_approvals(
            self.runner, message, client, user_id=USER, session_id=self.session_id, **kwargs
        )

    async def events(self) -> list[Event]:
        session = await self.runner.session_service.get_session(
            app_name="releases", user_id=USER, session_id=self.session_id
        )
        assert session is not None
        return list(session.events)


def final_text(events: list[Event]) -> str:
    content = events[-1].content
    assert content is not None and content.parts
    return content.parts[0].text or ""


async def test_an_approved_call_runs_as_proposed(rig: SlackRig, client: ApprovalClient) -> None:
    release = await Release(scripted(("call_dep1", "deploy_service", {"version": "1.4.2"}))).start()
    run = asyncio.create_task(release.run(client, "Ship 1.4.2", priority="high"))

    record, buttons = await approve_the_card(rig, run, ran)
    events = await asyncio.wait_for(run, 10)

    assert ran == [{"version": "1.4.2"}]
    assert final_text(events) == "deployed 1.4.2"
    assert (record["toolName"], record["toolCallId"]) == ("deploy_service", "call_dep1")
    assert (record["priority"], record["requester"]["agent"]) == ("high", "release_bot")
    assert buttons == ["approve", "edit", "reject", "feedback"]
    assert record["argsSchema"]["required"] == ["version"]


async def test_edited_arguments_reach_the_tool(rig: SlackRig, client: ApprovalClient) -> None:
    release = await Release(scripted(("call_dep2", "deploy_service", {"version": "1.4.2"}))).start()
    run = asyncio.create_task(release.run(client, "Ship 1.4.2"))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3"})
    events = await asyncio.wait_for(run, 10)

    assert ran == [{"version": "1.4.3"}]
    assert final_text(events) == "deployed 1.4.3"


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
    model = scripted(("call_dep3", "deploy_service", {"version": "1.4.2"}))
    release = await Release(model).start()
    run = asyncio.create_task(release.run(client, "Ship it"))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], action, "U0BOB", values)
    events = await asyncio.wait_for(run, 10)

    assert ran == []
    [reason] = values.values()
    told = final_text(events)
    assert reason in told and said in told and "deploy_service" in told
    assert reason in str(model.requests[-1].contents[-1])


async def test_every_call_of_a_turn_is_decided_on_its_own(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model = scripted(
        ("call_a", "deploy_service", {"version": "2.0.0"}),
        ("call_b", "rollback", {"to": "1.4.1"}),
    )
    release = await Release(model).start()
    run = asyncio.create_task(release.run(client, "Ship or undo"))

    records = {r["toolCallId"]: r for r in await pending(rig, 2)}
    await answer_modal(rig, records["call_a"]["id"], "reject", "U0BOB", {"reason": "wrong one"})
    await rig.decided(records["call_a"]["id"])
    assert not run.done()
    await rig.click(records["call_b"]["id"], "approve", "U0ALICE")
    events = await asyncio.wait_for(run, 10)

    assert ran == [{"to": "1.4.1"}]
    outputs = final_text(events).split(" | ")
    assert len(outputs) == 2 and "rolled back to 1.4.1" in outputs
    [refused] = [text for text in outputs if "deploy_service" in text]
    assert "wrong one" in refused


async def test_approved_args_are_the_complete_arguments_and_checked_before_they_are_stored(
    rig: SlackRig, client: ApprovalClient
) -> None:
    """An admin decision leaving out `region` is refused (422) with nothing stored; a
    complete one runs the tool with exactly those arguments."""
    model = scripted(("call_rg", "deploy", {"version": "1.4.2", "region": "us"}))
    release = await Release(model, [ApprovalTool(deploy)]).start()
    run = asyncio.create_task(release.run(client, "go"))

    [record] = await pending(rig)
    complete = {"version": "1.4.3", "region": "eu"}
    status = await decide_incomplete_then_complete(rig, record["id"], complete)
    events = await asyncio.wait_for(run, 10)

    assert status == 200
    assert ran == [complete]
    assert final_text(events) == "deployed 1.4.3 to eu"


async def test_an_expired_approval_tells_the_model_nobody_decided(
    rig: SlackRig, client: ApprovalClient
) -> None:
    release = await Release(scripted(("call_late", "deploy_service", {"version": "1.4.2"}))).start()

    events = await asyncio.wait_for(release.run(client, "Ship it", timeout_seconds=1), 10)

    assert ran == []
    assert "in time" in final_text(events) and "deploy_service" in final_text(events)


async def test_a_timeout_leaves_the_run_paused_and_a_retry_resumes_the_same_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    release = await Release(scripted(("call_slow", "deploy_service", {"version": "1.4.2"}))).start()

    with pytest.raises(ApprovalTimeout):
        await release.run(client, "Ship it", timeout=0.2)
    retry = asyncio.create_task(release.run(client, None))
    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    events = await asyncio.wait_for(retry, 10)

    _, page = await rig.bot.call("GET", "/v1/approvals")
    assert [item["id"] for item in page["items"]] == [record["id"]]
    assert ran == [{"version": "1.4.2"}]
    assert final_text(events) == "deployed 1.4.2"
    assert await resolve_confirmations(client, await release.events()) is None
    with pytest.raises(ValueError, match="waits for no confirmation"):
        await release.run(client, None)


async def test_a_plain_function_tool_is_confirmed_without_edits(
    rig: SlackRig, client: ApprovalClient
) -> None:
    """ADK runs `FunctionTool(require_confirmation=True)` as proposed: its card offers no
    Edit, and only the proposed arguments can be approved."""
    model = scripted(("call_plain", "deploy_service", {"version": "1.4.2"}))
    tools = [FunctionTool(deploy_service, require_confirmation=True)]
    release = await Release(model, tools).start()
    run = asyncio.create_task(release.run(client, "Ship it"))

    record, buttons = await approve_the_card(rig, run, ran)
    events = await asyncio.wait_for(run, 10)

    assert buttons == ["approve", "reject", "feedback"]
    assert EDIT_NOTE in record["context"]
    assert record["argsSchema"]["properties"] == {"version": {"const": "1.4.2"}}
    assert ran == [{"version": "1.4.2"}]
    assert final_text(events) == "deployed 1.4.2"


def time_off(days: int, tool_context: ToolContext) -> dict[str, Any]:
    """Book days off; more than two need a manager."""
    if days > 2 and tool_context.tool_confirmation is None:
        tool_context.request_confirmation(hint=f"Book {days} days off?")
        return {"status": "waiting for a manager"}
    ran.append({"days": days})
    return {"result": f"booked {days} days"}


async def test_a_tool_that_asks_itself_gets_its_hint_on_the_card_and_the_edit(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model = scripted(("call_off", "time_off", {"days": 5}))
    release = await Release(model, [ApprovalTool(time_off, require_confirmation=False)]).start()
    run = asyncio.create_task(release.run(client, "Book a week off"))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:days": "3"})
    events = await asyncio.wait_for(run, 10)

    assert "Book 5 days off?" in record["context"]
    assert record["argsSchema"]["required"] == ["days"]
    assert ran == [{"days": 3}]
    assert final_text(events) == "booked 3 days"


@pytest.mark.parametrize("answer", REFUSALS)
async def test_a_refusal_ends_the_run_and_nothing_runs(answer: Any) -> None:
    """`hostile_bot` holds approved read_file as call_0; the model calls delete_file as call_0."""
    deleted: list[str] = []

    def delete_file(path: str) -> str:
        """Delete a file."""
        deleted.append(path)
        return "deleted"

    release = await Release(
        scripted(("call_0", "delete_file", DATA)), [ApprovalTool(delete_file)]
    ).start()
    async with hostile_bot(answer) as bot, ApprovalClient(bot.url, AGENT_TOKEN) as approvals:
        with pytest.raises(ApprovalError) as caught:
            await release.run(approvals, "clean up")

    check_refusal(caught.value, answer)
    assert deleted == []


async def test_an_unknown_prompt_placeholder_fails_before_any_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    release = await Release(scripted(("call_x", "deploy_service", {"version": "1.4.2"}))).start()

    with pytest.raises(ValueError, match="version"):
        await release.run(client, "Ship it", prompt="Ship {version}?")

    _, page = await rig.bot.call("GET", "/v1/approvals")
    assert page["items"] == []


async def test_the_example_runs_end_to_end(rig: SlackRig, monkeypatch: pytest.MonkeyPatch) -> None:
    use_the_rig(rig, monkeypatch)
    example = importlib.import_module("examples.google_adk_example")
    model = scripted(("call_ex", "deploy_service", {"version": "1.4.2"}))
    monkeypatch.setattr(example.agent, "model", model)

    run = asyncio.create_task(example.main())
    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3"})
    output = await asyncio.wait_for(run, 10)

    assert (record["args"], record["priority"]) == ({"version": "1.4.2"}, "high")
    assert output == "deployed 1.4.3"


def test_the_core_never_imports_google_adk() -> None:
    assert not [name for name in modules_the_core_imports() if name.startswith("google.adk")]
