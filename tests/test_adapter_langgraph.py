"""LangChain and LangGraph against the real bot and local Slack, with scripted offline models."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver, MemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, interrupt
from pydantic import Field

from bot.adapters.langchain import (
    InterruptKind,
    ReviewRequest,
    ToolReview,
    UnsupportedInterrupt,
    read_interrupt,
    resume_value,
)
from bot.adapters.langgraph import (
    REVIEW_TOOL_CALLS,
    TOOL_PARAMETERS,
    InterruptMapping,
    run_with_approvals,
    run_with_approvals_sync,
    tool_parameters,
)
from bot.models import Action, Decision, DecisionKind
from bot.sdk import ApprovalClient, ApprovalError, ApprovalTimeout, SyncApprovalClient
from bot.sdk import requires_approval as gate
from tests.adapter_support import answer_modal, pending, use_the_rig
from tests.conftest import AGENT_TOKEN, SlackRig
from tests.slack_support import actions_of
from tests.test_sdk_refusals import DATA, REFUSALS, check_refusal, hostile_bot

EXAMPLE = Path(__file__).parent.parent / "examples" / "langgraph_example.py"
ALL = ["approve", "edit", "reject", "feedback"]

# -- a scripted chat model and a human with a mouse ------------------------------------------


class ScriptedModel(GenericFakeChatModel):
    """Answers with the scripted messages in turn and remembers what it was shown."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"id": f"call_{uuid.uuid4().hex[:12]}", "name": name, "args": args}


def model_calling(*calls: dict[str, Any]) -> ScriptedModel:
    return ScriptedModel(messages=iter([AIMessage("", tool_calls=list(calls)), AIMessage("Done.")]))


def told(model: ScriptedModel) -> dict[str, str]:
    """What the model read back from each tool call on its second turn, by tool call id."""
    return {m.tool_call_id: str(m.content) for m in model.seen[-1] if isinstance(m, ToolMessage)}


async def all_approvals(rig: SlackRig) -> list[dict[str, Any]]:
    _, body = await rig.bot.call("GET", "/v1/approvals")
    return list(body["items"])


async def decide(rig: SlackRig, record: dict[str, Any], how: str, text: str = "") -> None:
    """Decide from the card as a person would: a click, and a modal where there is one."""
    if how == "approve":
        await rig.click(record["id"], how, "U0ALICE")
        return
    if how == "edit":
        values = {"arg:version": text, "comment": "use the fix"}
    else:
        values = {"reason" if how == "reject" else how: text}
    await answer_modal(rig, record["id"], how, "U0ALICE", values)
    await rig.decided(record["id"])


@pytest.fixture
async def client(rig: SlackRig) -> AsyncIterator[ApprovalClient]:
    async with ApprovalClient(rig.bot.url, token=AGENT_TOKEN) as approvals:
        yield approvals


def thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


# -- @tool over @requires_approval -----------------------------------------------------------


def gated_deploy(client: ApprovalClient, ran: list[dict[str, Any]]) -> Any:
    @tool
    @gate(client, prompt="Deploy {version}?", on_reject="message")
    async def deploy(
        version: str, tool_call_id: Annotated[str, InjectedToolCallId], replicas: int = 2
    ) -> str:
        """Deploy a build to production."""
        ran.append({"version": version, "replicas": replicas})
        return f"deployed {version} x{replicas}"

    return deploy


async def test_tool_over_requires_approval_keeps_the_tools_schema(
    client: ApprovalClient,
) -> None:
    deploy = gated_deploy(client, [])

    schema = deploy.tool_call_schema.model_json_schema()

    assert deploy.name == "deploy" and deploy.description == "Deploy a build to production."
    assert schema["properties"].keys() == {"version", "replicas"}  # the call id is injected
    assert schema["required"] == ["version"]
    assert schema["properties"]["replicas"]["type"] == "integer"


@pytest.mark.parametrize(
    ("how", "text", "ran", "answer"),
    [
        pytest.param(
            "approve", "", [{"version": "1.4.2", "replicas": 2}], "deployed 1.4.2 x2", id="approve"
        ),
        pytest.param(
            "edit", "1.4.3", [{"version": "1.4.3", "replicas": 2}], "deployed 1.4.3 x2", id="edit"
        ),
        pytest.param(
            "reject",
            "not during the freeze",
            [],
            "The user rejected this tool call (deploy): not during the freeze",
            id="reject",
        ),
    ],
)
async def test_a_gated_langchain_tool_runs_as_slack_decides(
    rig: SlackRig,
    client: ApprovalClient,
    how: str,
    text: str,
    ran: list[dict[str, Any]],
    answer: str,
) -> None:
    calls: list[dict[str, Any]] = []
    model_call = call("deploy", version="1.4.2")
    model = model_calling(model_call)
    agent = create_agent(model, tools=[gated_deploy(client, calls)])

    run = asyncio.create_task(agent.ainvoke({"messages": [{"role": "user", "content": "ship"}]}))
    [record] = await pending(rig)
    await decide(rig, record, how, text)
    result = await asyncio.wait_for(run, 5)

    assert record["toolCallId"] == model_call["id"]  # the model's call id, injected
    assert record["prompt"] == "Deploy 1.4.2?"
    assert record["args"] == {"version": "1.4.2", "replicas": 2}
    assert calls == ran
    assert told(model) == {model_call["id"]: answer}
    assert result["messages"][-1].content == "Done."


async def test_a_plain_function_tool_gated_with_the_sync_client(rig: SlackRig) -> None:
    model_call = call("restart", service="api")
    model = model_calling(model_call)
    with SyncApprovalClient(rig.bot.url, token=AGENT_TOKEN) as sync_client:

        @tool
        @gate(sync_client, on_reject="message")
        def restart(service: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
            """Restart a service."""
            return f"restarted {service}"

        agent = create_agent(model, tools=[restart])
        run = asyncio.create_task(agent.ainvoke({"messages": []}))
        [record] = await pending(rig)
        await decide(rig, record, "feedback", "drain it first")
        await asyncio.wait_for(run, 5)

    assert record["toolCallId"] == model_call["id"] and record["args"] == {"service": "api"}
    assert told(model) == {
        model_call["id"]: "The user did not run this tool call (restart) and gave feedback "
        "instead: drain it first"
    }


# -- HumanInTheLoopMiddleware through run_with_approvals -------------------------------------


def hitl_agent(model: ScriptedModel, interrupt_on: Any, mode: str = "batched") -> Any:
    @tool
    def deploy(version: str) -> str:
        """Deploy a build to production."""
        return f"deployed {version}"

    middleware = HumanInTheLoopMiddleware(
        interrupt_on={"deploy": interrupt_on}, interrupt_mode=mode
    )
    return create_agent(
        model, tools=[deploy], middleware=[middleware], checkpointer=InMemorySaver()
    )


@pytest.mark.parametrize("mode", ["batched", "per_call"])
async def test_every_gated_call_of_a_turn_gets_a_card_and_its_own_decision(
    rig: SlackRig, client: ApprovalClient, mode: str
) -> None:
    first, second, third = (call("deploy", version=v) for v in ("1.0", "2.0", "3.0"))
    model = model_calling(first, second, third)
    agent = hitl_agent(model, True, mode)
    messages = {"messages": [{"role": "user", "content": "ship all three"}]}

    run = asyncio.create_task(run_with_approvals(agent, messages, thread(), client))
    records = {r["args"]["version"]: r for r in await pending(rig, 3)}
    await decide(rig, records["1.0"], "approve")
    await decide(rig, records["2.0"], "edit", "2.1")
    await decide(rig, records["3.0"], "reject", "not on a Friday")
    result = await asyncio.wait_for(run, 5)

    assert {r["toolCallId"] for r in records.values()} == {first["id"], second["id"], third["id"]}
    answers = told(model)
    assert answers[first["id"]] == "deployed 1.0"
    assert answers[second["id"]].endswith("deployed 2.1")  # after the middleware's edit note
    assert 'with arguments {"version": "2.1"}' in answers[second["id"]]
    assert answers[third["id"]] == (
        "User rejected the tool call for `deploy` with reason: not on a Friday"
    )
    assert result["messages"][-1].content == "Done."
    assert len(await all_approvals(rig)) == 3


async def test_feedback_reaches_the_model_as_the_rejection_message(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model_call = call("deploy", version="1.0")
    model = model_calling(model_call)
    agent = hitl_agent(model, True)

    run = asyncio.create_task(run_with_approvals(agent, {"messages": []}, thread(), client))
    [record] = await pending(rig)
    await decide(rig, record, "feedback", "Deploy to staging first.")
    await asyncio.wait_for(run, 5)

    assert told(model) == {
        model_call["id"]: "User rejected the tool call for `deploy` with reason: "
        "Deploy to staging first."
    }


@pytest.mark.parametrize(
    ("allowed", "buttons"),
    [
        pytest.param(["approve", "reject"], ["approve", "reject", "feedback"], id="no-edit"),
        pytest.param(["edit", "reject"], ["edit", "reject", "feedback"], id="no-approve"),
        pytest.param(["approve", "respond"], ["approve", "reject", "feedback"], id="respond"),
    ],
)
async def test_the_allowed_decisions_are_the_cards_buttons(
    rig: SlackRig, client: ApprovalClient, allowed: list[str], buttons: list[str]
) -> None:
    model_call = call("deploy", version="1.0")
    model = model_calling(model_call)
    agent = hitl_agent(model, {"allowed_decisions": allowed})

    run = asyncio.create_task(run_with_approvals(agent, {"messages": []}, thread(), client))
    [record] = await pending(rig)
    shown = actions_of(await rig.card(record["id"]))
    await decide(rig, record, "reject", "not now")  # the one button every card has
    await asyncio.wait_for(run, 5)

    assert record["allowedDecisions"] == buttons
    assert shown == buttons
    assert told(model)[model_call["id"]].endswith("not now")


async def test_per_call_interrupts_bring_the_tools_argument_schema_to_the_edit_form(
    rig: SlackRig, client: ApprovalClient
) -> None:
    agent = hitl_agent(model_calling(call("deploy", version="1.0")), True, "per_call")

    run = asyncio.create_task(run_with_approvals(agent, {"messages": []}, thread(), client))
    [record] = await pending(rig)
    await decide(rig, record, "approve")
    await asyncio.wait_for(run, 5)

    schema = record["argsSchema"]
    assert schema["type"] == "object" and schema["required"] == ["version"]
    assert schema["properties"]["version"]["type"] == "string"
    assert record["metadata"]["langgraph"]["interruptId"]


def region_agent(model: ScriptedModel, ran: list[dict[str, str]], mode: str = "batched") -> Any:
    @tool
    def deploy(version: str, region: str) -> str:
        """Deploy a build to a region."""
        ran.append({"version": version, "region": region})
        return f"deployed {version} to {region}"

    middleware = HumanInTheLoopMiddleware(interrupt_on={"deploy": True}, interrupt_mode=mode)
    return create_agent(
        model, tools=[deploy], middleware=[middleware], checkpointer=InMemorySaver()
    )


async def refused_then_run(
    rig: SlackRig, run: asyncio.Task[Any], incomplete: dict[str, Any], complete: dict[str, Any]
) -> dict[str, Any]:
    """Approve the one card over the API with `incomplete` (422, nothing stored), then with
    `complete`; the record as first shown."""
    [record] = await pending(rig)
    status, answer = await rig.bot.decide(record["id"], approvedArgs=incomplete)
    assert (status, answer["error"]) == (422, "invalid"), answer
    assert answer["path"].startswith("approvedArgs")
    assert (await rig.bot.call("GET", f"/v1/approvals/{record['id']}"))[1]["status"] == "pending"
    status, _ = await rig.bot.decide(record["id"], approvedArgs=complete)
    assert status == 200
    await asyncio.wait_for(run, 5)
    return record


@pytest.mark.parametrize(
    "refused",
    [
        pytest.param({"version": "1.4.3"}, id="leaves-out-region"),
        pytest.param({"version": "1.4.3", "region": "eu", "force": True}, id="adds-force"),
    ],
)
@pytest.mark.parametrize("mode", ["batched", "per_call"])
async def test_approved_args_are_the_complete_arguments_and_checked_before_they_are_stored(
    rig: SlackRig, client: ApprovalClient, mode: str, refused: dict[str, Any]
) -> None:
    """The tool's schema goes with each card (from the graph's ToolNode, or the per-call
    interrupt's): an admin decision the tool cannot take is refused; a complete one runs the
    tool with exactly those arguments."""
    ran: list[dict[str, str]] = []
    model_call = call("deploy", version="1.4.2", region="us")
    model = model_calling(model_call)
    agent = region_agent(model, ran, mode)

    run = asyncio.create_task(run_with_approvals(agent, {"messages": []}, thread(), client))
    complete = {"version": "1.4.3", "region": "eu"}
    record = await refused_then_run(rig, run, refused, complete)

    assert ran == [complete]
    assert told(model)[model_call["id"]].endswith("deployed 1.4.3 to eu")
    assert record["argsSchema"]["required"] == ["version", "region"]
    assert record["argsSchema"]["additionalProperties"] is False


async def test_a_run_that_timed_out_resumes_the_same_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    model_call = call("deploy", version="1.0")
    model = model_calling(model_call)
    agent, config = hitl_agent(model, True), thread()

    with pytest.raises(ApprovalTimeout):
        await run_with_approvals(agent, {"messages": []}, config, client, timeout=0.3)
    [record] = await pending(rig)
    await decide(rig, record, "approve")
    result = await asyncio.wait_for(run_with_approvals(agent, None, config, client), 5)

    assert [r["id"] for r in await all_approvals(rig)] == [record["id"]]
    assert len(rig.workspace.history("C0OPS")) == 1  # one card, no second one
    assert told(model) == {model_call["id"]: "deployed 1.0"}
    assert result["messages"][-1].content == "Done."


async def test_the_sync_runner_gets_the_same_answers(rig: SlackRig) -> None:
    model_call = call("deploy", version="1.0")
    model = model_calling(model_call)
    agent = hitl_agent(model, True)

    def work() -> Any:
        with SyncApprovalClient(rig.bot.url, token=AGENT_TOKEN) as sync_client:
            return run_with_approvals_sync(agent, {"messages": []}, thread(), sync_client)

    run = asyncio.create_task(asyncio.to_thread(work))
    [record] = await pending(rig)
    await decide(rig, record, "edit", "1.1")
    result = await asyncio.wait_for(run, 5)

    assert told(model)[model_call["id"]].endswith("deployed 1.1")
    assert result["messages"][-1].content == "Done."


async def test_an_interrupt_that_is_no_tool_review_is_refused_before_any_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    class State(TypedDict):
        answer: str

    def ask(state: State) -> dict[str, Any]:
        return {"answer": interrupt("What is your name?")}

    graph = StateGraph(State).add_node("ask", ask).add_edge(START, "ask")
    compiled = graph.compile(checkpointer=InMemorySaver())

    with pytest.raises(UnsupportedInterrupt, match="What is your name"):
        await run_with_approvals(compiled, {"answer": ""}, thread(), client)
    assert await all_approvals(rig) == []


async def test_an_interrupt_that_cannot_refuse_is_refused_before_any_card(
    rig: SlackRig, client: ApprovalClient
) -> None:
    agent = hitl_agent(
        model_calling(call("deploy", version="1.0")), {"allowed_decisions": ["approve", "edit"]}
    )

    with pytest.raises(UnsupportedInterrupt, match="no way to refuse"):
        await run_with_approvals(agent, {"messages": []}, thread(), client)
    assert await all_approvals(rig) == []


def test_unknown_card_fields_and_prompt_placeholders_are_refused() -> None:
    with pytest.raises(TypeError, match="allowed_decisions"):
        asyncio.run(run_with_approvals(None, {}, {}, None, allowed_decisions=["approve"]))
    with pytest.raises(ValueError, match="version"):
        asyncio.run(run_with_approvals(None, {}, {}, None, prompt="Deploy {version}?"))


# -- agent-inbox HumanInterrupt in a hand-built graph ----------------------------------------


class InboxState(TypedDict):
    version: str
    outcome: str


def inbox_graph(config: dict[str, bool] | None = None) -> Any:
    """One node that asks with an agent-inbox `HumanInterrupt` and does what it is told."""

    def review(state: InboxState) -> dict[str, Any]:
        request = {
            "action_request": {"action": "deploy", "args": {"version": state["version"]}},
            "config": config
            or {
                "allow_accept": True,
                "allow_edit": True,
                "allow_respond": True,
                "allow_ignore": True,
            },
            "description": "Ship it?",
        }
        response = interrupt([request])[0]
        if response["type"] == "accept":
            return {"outcome": f"deployed {state['version']}"}
        if response["type"] == "edit":
            return {"outcome": f"deployed {response['args']['args']['version']}"}
        if response["type"] == "response":
            return {"outcome": f"told: {response['args']}"}
        return {"outcome": "ignored"}

    graph = StateGraph(InboxState).add_node("review", review).add_edge(START, "review")
    return graph.compile(checkpointer=InMemorySaver())


@pytest.mark.parametrize(
    ("how", "text", "outcome"),
    [
        pytest.param("approve", "", "deployed 1.0", id="accept"),
        pytest.param("edit", "1.2", "deployed 1.2", id="edit"),
        pytest.param("feedback", "wait for QA", "told: wait for QA", id="response"),
        pytest.param("reject", "no", "ignored", id="ignore"),
    ],
)
async def test_agent_inbox_interrupts_are_answered_with_human_responses(
    rig: SlackRig, client: ApprovalClient, how: str, text: str, outcome: str
) -> None:
    run = asyncio.create_task(
        run_with_approvals(inbox_graph(), {"version": "1.0", "outcome": ""}, thread(), client)
    )
    [record] = await pending(rig)
    await decide(rig, record, how, text)
    result = await asyncio.wait_for(run, 5)

    assert result["outcome"] == outcome
    assert record["context"] == "Ship it?"
    assert record["toolCallId"] == f"lg_{record['metadata']['langgraph']['interruptId']}_0"


# -- a bot answering about another call, or refusing the request ---------------------------
# `hostile_bot` holds an approved read_file("/srv/data") as call_0; the model calls delete_file
# with the same id. Nothing may run, and the model is never told anything: the error ends the run.


def delete_call() -> dict[str, Any]:
    return {"id": "call_0", "name": "delete_file", "args": DATA}


@pytest.mark.parametrize("answer", REFUSALS)
async def test_a_gated_tool_never_runs_on_a_refusal(answer: Any) -> None:
    deleted: list[str] = []
    model = model_calling(delete_call())
    async with hostile_bot(answer) as bot, ApprovalClient(bot.url, AGENT_TOKEN) as approvals:

        @tool
        @gate(approvals, on_reject="message")
        async def delete_file(path: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
            """Delete a file."""
            deleted.append(path)
            return "deleted"

        agent = create_agent(model, tools=[delete_file])
        with pytest.raises(ApprovalError) as caught:
            await agent.ainvoke({"messages": [{"role": "user", "content": "clean up"}]})

    check_refusal(caught.value, answer)
    assert deleted == [] and len(model.seen) == 1


def deleting_agent(model: ScriptedModel, deleted: list[str], mode: str) -> Any:
    @tool
    def delete_file(path: str) -> str:
        """Delete a file."""
        deleted.append(path)
        return "deleted"

    middleware = HumanInTheLoopMiddleware(interrupt_on={"delete_file": True}, interrupt_mode=mode)
    return create_agent(
        model, tools=[delete_file], middleware=[middleware], checkpointer=InMemorySaver()
    )


@pytest.mark.parametrize("mode", ["batched", "per_call"])
@pytest.mark.parametrize("answer", REFUSALS)
async def test_run_with_approvals_never_resumes_on_a_refusal(answer: Any, mode: str) -> None:
    deleted: list[str] = []
    model = model_calling(delete_call())
    agent = deleting_agent(model, deleted, mode)
    async with hostile_bot(answer) as bot, ApprovalClient(bot.url, AGENT_TOKEN) as approvals:
        with pytest.raises(ApprovalError) as caught:
            await run_with_approvals(agent, {"messages": []}, thread(), approvals)

    check_refusal(caught.value, answer)
    assert deleted == [] and len(model.seen) == 1


async def test_the_sync_runner_never_resumes_on_another_calls_record() -> None:
    deleted: list[str] = []
    model = model_calling(delete_call())
    agent = deleting_agent(model, deleted, "batched")

    async with hostile_bot() as bot:

        def work() -> Any:
            with SyncApprovalClient(bot.url, token=AGENT_TOKEN) as sync_client:
                return run_with_approvals_sync(agent, {"messages": []}, thread(), sync_client)

        with pytest.raises(ApprovalError) as caught:
            await asyncio.to_thread(work)

    check_refusal(caught.value, None)
    assert deleted == []


# -- the example -----------------------------------------------------------------------------


async def test_the_example_runs_end_to_end(
    rig: SlackRig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_the_rig(rig, monkeypatch)
    spec = importlib.util.spec_from_file_location("langgraph_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    run = asyncio.create_task(example.main())
    [record] = await pending(rig)
    await decide(rig, record, "edit", "1.4.3")
    await asyncio.wait_for(run, 5)

    assert record["toolName"] == "deploy_service" and record["priority"] == "high"
    assert "deployed 1.4.3" in capsys.readouterr().out


# -- translation, without a graph ------------------------------------------------------------


def decision(action: str, *, args: dict[str, Any] | None = None, comment: str | None = None) -> Any:
    approved = action in ("approve", "edit") or (action == "timeout" and args is not None)
    return Decision(
        approved=approved,
        action=Action(action),
        approved_args=args,
        decided_by="U0ALICE",
        comment=comment,
        decided_at=datetime.now(UTC),
    )


HITL = {
    "action_requests": [
        {"name": "deploy", "args": {"version": "1.0"}, "description": "Ship 1.0?"},
        {"name": "rollback", "args": {}, "description": "Roll back?"},
    ],
    "review_configs": [
        {"action_name": "deploy", "allowed_decisions": ["approve", "edit", "reject"]},
        {"action_name": "rollback", "allowed_decisions": ["approve", "respond"]},
    ],
}
PRE_1_0 = {
    "action_requests": [
        {"name": "deploy", "arguments": {"version": "1.0"}},
        {"name": "deploy", "arguments": {"version": "2.0"}},
    ],
    "review_configs": [
        {
            "action_name": "deploy",
            "allowed_decisions": ["approve", "reject"],
            "description": "Ship?",
        }
    ],
}
PER_CALL_SCHEMA = {
    "$defs": {
        "ApproveDecision": {"properties": {"type": {"const": "approve"}}, "type": "object"},
        "RejectDecision": {"properties": {"type": {"const": "reject"}}, "type": "object"},
        "EditDecision": {
            "properties": {
                "type": {"const": "edit"},
                "edited_action": {"$ref": "#/$defs/EditedAction"},
            },
            "type": "object",
        },
        "EditedAction": {
            "properties": {"name": {"const": "deploy"}, "args": {"$ref": "#/$defs/deploy"}},
            "type": "object",
        },
        "deploy": {
            "properties": {"version": {"type": "string"}},
            "required": ["version"],
            "type": "object",
        },
    },
    "discriminator": {
        "mapping": {"edit": "#/$defs/EditDecision", "reject": "#/$defs/RejectDecision"},
        "propertyName": "type",
    },
    "oneOf": [{"$ref": "#/$defs/EditDecision"}, {"$ref": "#/$defs/RejectDecision"}],
}
#: the same tool's schema where only approve and edit are allowed: nobody could say no
PER_CALL_WITHOUT_REJECT = {
    **PER_CALL_SCHEMA,
    "discriminator": {
        "mapping": {"approve": "#/$defs/ApproveDecision", "edit": "#/$defs/EditDecision"},
        "propertyName": "type",
    },
    "oneOf": [{"$ref": "#/$defs/ApproveDecision"}, {"$ref": "#/$defs/EditDecision"}],
}
INBOX = {
    "action_request": {"action": "deploy", "args": {"version": "1.0"}},
    "config": {
        "allow_accept": True,
        "allow_edit": False,
        "allow_respond": True,
        "allow_ignore": True,
    },
    "description": "Ship it?",
}


def test_a_batched_request_reads_each_call_with_its_own_buttons() -> None:
    request = read_interrupt(HITL)

    assert request.kind is InterruptKind.HITL
    deploy, rollback = request.reviews
    assert (deploy.name, deploy.args, deploy.description) == (
        "deploy",
        {"version": "1.0"},
        "Ship 1.0?",
    )
    assert list(deploy.allowed_decisions) == ["approve", "edit", "reject", "feedback"]
    assert (rollback.name, rollback.args) == ("rollback", {})
    assert list(rollback.allowed_decisions) == ["approve", "reject", "feedback"]
    assert deploy.tool_call_id is None


def test_the_pre_1_0_spelling_reads_the_same() -> None:
    request = read_interrupt(PRE_1_0)

    assert [r.args for r in request.reviews] == [{"version": "1.0"}, {"version": "2.0"}]
    assert [r.description for r in request.reviews] == ["Ship?", "Ship?"]
    assert [list(r.allowed_decisions) for r in request.reviews] == [
        ["approve", "reject", "feedback"]
    ] * 2


def test_a_per_call_request_reads_its_call_id_buttons_and_argument_schema() -> None:
    value = {
        "type": "tool_approval",
        "tool_call_id": "call_9",
        "name": "deploy",
        "args": {"version": "1.0"},
        "description": "Ship?",
    }

    request = read_interrupt(value, PER_CALL_SCHEMA)
    without_schema = read_interrupt(value)

    [review] = request.reviews
    assert request.kind is InterruptKind.TOOL_APPROVAL and review.tool_call_id == "call_9"
    assert list(review.allowed_decisions) == ["edit", "reject", "feedback"]
    assert review.args_schema == PER_CALL_SCHEMA["$defs"]["deploy"]
    assert list(without_schema.reviews[0].allowed_decisions) == ALL
    assert without_schema.reviews[0].args_schema is None
    with pytest.raises(UnsupportedInterrupt, match="no way to refuse"):
        read_interrupt(value, PER_CALL_WITHOUT_REJECT)


@pytest.mark.parametrize(
    ("value", "single"),
    [pytest.param([INBOX], False, id="list"), pytest.param(INBOX, True, id="one")],
)
def test_an_agent_inbox_request_maps_its_config_to_buttons(value: Any, single: bool) -> None:
    request = read_interrupt(value)

    [review] = request.reviews
    assert (request.kind, request.single) == (InterruptKind.AGENT_INBOX, single)
    assert (review.name, review.args, review.description) == (
        "deploy",
        {"version": "1.0"},
        "Ship it?",
    )
    assert list(review.allowed_decisions) == ["approve", "reject", "feedback"]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("What is your name?", id="text"),
        pytest.param({"question": "why"}, id="other-dict"),
        pytest.param([], id="empty-list"),
        pytest.param([{"question": "why"}], id="other-list"),
        pytest.param({"action_requests": [{"args": {}}]}, id="no-name"),
        pytest.param({"action_requests": [{"name": "x", "args": "rm -rf"}]}, id="args-not-object"),
        pytest.param(
            {"action_request": {"action": "x", "args": {}}, "config": {"allow_accept": False}},
            id="nothing-allowed",
        ),
        pytest.param(
            {"action_request": {"action": "x", "args": {}}, "config": {"allow_accept": True}},
            id="no-refusal",
        ),
        pytest.param(
            {
                "action_requests": [{"name": "x", "args": {}}],
                "review_configs": [{"action_name": "x", "allowed_decisions": ["approve"]}],
            },
            id="approve-only",
        ),
    ],
)
def test_values_that_are_no_tool_review_are_refused(value: Any) -> None:
    with pytest.raises(UnsupportedInterrupt):
        read_interrupt(value)


def review(allowed: Sequence[str], kind: InterruptKind = InterruptKind.HITL) -> ReviewRequest:
    buttons = tuple(DecisionKind)  # what the card offered does not change the translation
    one = ToolReview("deploy", {"version": "1.0"}, tuple(allowed), buttons)
    return ReviewRequest(kind, (one,))


HITL_ALL = ["approve", "edit", "reject", "respond"]


@pytest.mark.parametrize(
    ("allowed", "made", "expected"),
    [
        pytest.param(HITL_ALL, decision("approve"), {"type": "approve"}, id="approve"),
        pytest.param(
            HITL_ALL,
            decision("approve", args={"version": "1.0"}),
            {"type": "approve"},
            id="approve-same-args",
        ),
        pytest.param(
            HITL_ALL,
            decision("edit", args={"version": "1.1"}),
            {"type": "edit", "edited_action": {"name": "deploy", "args": {"version": "1.1"}}},
            id="edit",
        ),
        pytest.param(
            ["edit", "reject"],
            decision("approve", args={"version": "1.0"}),
            {"type": "edit", "edited_action": {"name": "deploy", "args": {"version": "1.0"}}},
            id="approve-without-approve",
        ),
        pytest.param(HITL_ALL, decision("reject"), {"type": "reject"}, id="reject"),
        pytest.param(
            HITL_ALL,
            decision("reject", comment="freeze"),
            {"type": "reject", "message": "freeze"},
            id="reject-with-reason",
        ),
        pytest.param(
            HITL_ALL,
            decision("feedback", comment="staging first"),
            {"type": "reject", "message": "staging first"},
            id="feedback",
        ),
        pytest.param(
            ["approve", "respond"],
            decision("feedback", comment="staging first"),
            {"type": "respond", "message": "staging first"},
            id="feedback-as-respond",
        ),
        pytest.param(
            HITL_ALL,
            decision("timeout"),
            {
                "type": "reject",
                "message": "Nobody approved this tool call (deploy) in time, so it did not run.",
            },
            id="timeout",
        ),
    ],
)
def test_decisions_become_middleware_decisions(
    allowed: list[str], made: Decision, expected: dict[str, Any]
) -> None:
    assert resume_value(review(allowed), [made]) == {"decisions": [expected]}
    assert resume_value(review(allowed, InterruptKind.TOOL_APPROVAL), [made]) == expected


INBOX_ALL = ["accept", "edit", "respond", "ignore"]


@pytest.mark.parametrize(
    ("allowed", "made", "expected"),
    [
        pytest.param(INBOX_ALL, decision("approve"), {"type": "accept", "args": None}, id="accept"),
        pytest.param(
            INBOX_ALL,
            decision("edit", args={"version": "1.1"}),
            {"type": "edit", "args": {"action": "deploy", "args": {"version": "1.1"}}},
            id="edit",
        ),
        pytest.param(
            INBOX_ALL,
            decision("feedback", comment="wait"),
            {"type": "response", "args": "wait"},
            id="response",
        ),
        pytest.param(
            INBOX_ALL,
            decision("reject", comment="no"),
            {"type": "ignore", "args": None},
            id="ignore",
        ),
        pytest.param(
            ["accept", "respond"],
            decision("reject", comment="no"),
            {"type": "response", "args": "no"},
            id="reject-without-ignore",
        ),
        pytest.param(
            ["accept", "respond"],
            decision("cancel"),
            {"type": "response", "args": "This tool call (deploy) was cancelled and did not run."},
            id="cancel",
        ),
    ],
)
def test_decisions_become_human_responses(
    allowed: list[str], made: Decision, expected: dict[str, Any]
) -> None:
    request = review(allowed, InterruptKind.AGENT_INBOX)
    single = ReviewRequest(request.kind, request.reviews, single=True)

    assert resume_value(request, [made]) == [expected]
    assert resume_value(single, [made]) == expected


@pytest.mark.parametrize(
    ("allowed", "made"),
    [
        pytest.param(["approve", "reject"], decision("edit", args={"version": "9"}), id="edit"),
        pytest.param(["approve", "edit"], decision("reject"), id="reject"),
    ],
)
def test_a_decision_the_interrupt_cannot_carry_is_an_error(
    allowed: list[str], made: Decision
) -> None:
    with pytest.raises(ApprovalError, match="cannot express"):
        resume_value(review(allowed), [made])


def test_one_decision_per_call() -> None:
    with pytest.raises(ValueError, match="1 tool call"):
        resume_value(review(HITL_ALL), [decision("approve"), decision("approve")])


# -- the shapes of LangGraph's documents, through `interrupts=` ------------------------------
# The graphs below are the documents' own code; only the chat model is a scripted one.

REVIEW_EXAMPLE = Path(__file__).parent.parent / "examples" / "langgraph_review_example.py"


def review_tool_calls_graph(model: Any) -> Any:
    """LangGraph's "How to Review Tool Calls" guide, as written (`weather_search` prints)."""

    @tool
    def weather_search(city: str):  # type: ignore[no-untyped-def]
        """Search for the weather"""
        print("----")
        print(f"Searching for: {city}")
        print("----")
        return "Sunny!"

    class State(MessagesState):
        """Simple state."""

    def call_llm(state):  # type: ignore[no-untyped-def]
        return {"messages": [model.invoke(state["messages"])]}

    def human_review_node(state) -> Command[Literal["call_llm", "run_tool"]]:  # type: ignore[no-untyped-def]
        last_message = state["messages"][-1]
        tool_call = last_message.tool_calls[-1]

        # this is the value we'll be providing via Command(resume=<human_review>)
        human_review = interrupt(
            {
                "question": "Is this correct?",
                # Surface tool calls for review
                "tool_call": tool_call,
            }
        )

        review_action = human_review["action"]
        review_data = human_review.get("data")

        # if approved, call the tool
        if review_action == "continue":
            return Command(goto="run_tool")

        # update the AI message AND call tools
        elif review_action == "update":
            updated_message = {
                "role": "ai",
                "content": last_message.content,
                "tool_calls": [
                    {
                        "id": tool_call["id"],
                        "name": tool_call["name"],
                        # This the update provided by the human
                        "args": review_data,
                    }
                ],
                # This is important - this needs to be the same as the message you replacing!
                # Otherwise, it will show up as a separate message
                "id": last_message.id,
            }
            return Command(goto="run_tool", update={"messages": [updated_message]})

        # provide feedback to LLM
        elif review_action == "feedback":
            # NOTE: we're adding feedback message as a ToolMessage
            # to preserve the correct order in the message history
            # (AI messages with tool calls need to be followed by tool call messages)
            tool_message = {
                "role": "tool",
                # This is our natural language feedback
                "content": review_data,
                "name": tool_call["name"],
                "tool_call_id": tool_call["id"],
            }
            return Command(goto="call_llm", update={"messages": [tool_message]})

    def run_tool(state):  # type: ignore[no-untyped-def]
        new_messages = []
        tools = {"weather_search": weather_search}
        tool_calls = state["messages"][-1].tool_calls
        for tool_call in tool_calls:
            tool = tools[tool_call["name"]]
            result = tool.invoke(tool_call["args"])
            new_messages.append(
                {
                    "role": "tool",
                    "name": tool_call["name"],
                    "content": result,
                    "tool_call_id": tool_call["id"],
                }
            )
        return {"messages": new_messages}

    def route_after_llm(state) -> Literal[END, "human_review_node"]:  # type: ignore[no-untyped-def, valid-type]
        if len(state["messages"][-1].tool_calls) == 0:
            return END
        else:
            return "human_review_node"

    builder = StateGraph(State)
    builder.add_node(call_llm)
    builder.add_node(run_tool)
    builder.add_node(human_review_node)
    builder.add_edge(START, "call_llm")
    builder.add_conditional_edges("call_llm", route_after_llm)
    builder.add_edge("run_tool", "call_llm")

    # Set up memory
    memory = MemorySaver()

    # Add
    return builder.compile(checkpointer=memory)


def searched(out: str) -> list[str]:
    """The cities `weather_search` ran for, from what it printed."""
    return [
        line.removeprefix("Searching for: ") for line in out.splitlines() if "Searching" in line
    ]


SF = {"messages": [{"role": "user", "content": "what's the weather in sf?"}]}


@pytest.mark.parametrize(
    ("how", "text", "ran", "tool_says"),
    [
        pytest.param("approve", "", ["sf"], "Sunny!", id="continue"),
        pytest.param("edit", "San Francisco, USA", ["San Francisco, USA"], "Sunny!", id="update"),
        pytest.param(
            "feedback",
            "User requested changes: use <city, country> format for location",
            [],
            "User requested changes: use <city, country> format for location",
            id="feedback",
        ),
        pytest.param(
            "reject",
            "not today",
            [],
            "The user rejected this tool call (weather_search): not today",
            id="reject-as-feedback",
        ),
    ],
)
async def test_the_review_tool_calls_guide_runs_on_slack_decisions(
    rig: SlackRig,
    client: ApprovalClient,
    capsys: pytest.CaptureFixture[str],
    how: str,
    text: str,
    ran: list[str],
    tool_says: str,
) -> None:
    model_call = call("weather_search", city="sf")
    model = model_calling(model_call)
    graph = review_tool_calls_graph(model)

    run = asyncio.create_task(
        run_with_approvals(graph, SF, thread(), client, interrupts=REVIEW_TOOL_CALLS)
    )
    [record] = await pending(rig)
    buttons = actions_of(await rig.card(record["id"]))
    if how == "edit":
        values = {"arg:city": text, "comment": ""}
        await answer_modal(rig, record["id"], "edit", "U0ALICE", values)
    else:
        await decide(rig, record, how, text)
    result = await asyncio.wait_for(run, 5)

    assert (record["toolName"], record["args"]) == ("weather_search", {"city": "sf"})
    assert record["toolCallId"] == model_call["id"]  # the tool call's own id
    assert record["context"] == "Is this correct?"
    assert buttons == ALL
    assert searched(capsys.readouterr().out) == ran
    assert told(model) == {model_call["id"]: tool_says}
    assert result["messages"][-1].content == "Done."


async def test_the_review_example_runs_end_to_end(
    rig: SlackRig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_the_rig(rig, monkeypatch)
    spec = importlib.util.spec_from_file_location("langgraph_review_example", REVIEW_EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    run = asyncio.create_task(example.main())
    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:city": "San Francisco"})
    await asyncio.wait_for(run, 5)

    assert record["context"] == "Is this correct?" and record["args"] == {"city": "sf"}
    assert "tool: Sunny in San Francisco!" in capsys.readouterr().out


# The tool-level approval page: an `interrupt()` inside the tool, before its side effect.


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email to the specified recipient."""
    # Pause for human review before sending
    decision = interrupt(
        {
            "tool": "send_email",
            "message": "Review this email before sending:",
            "parameters": {"to": to, "subject": subject, "body": body},
        }
    )

    # Handle human response
    if isinstance(decision, dict):
        # Human modified parameters
        to = decision.get("to", to)
        subject = decision.get("subject", subject)
        body = decision.get("body", body)
    elif decision is False or decision == "reject":
        return "Email cancelled by human reviewer."

    # Execute the side effect only after approval
    # email_client.send(to=to, subject=subject, body=body)
    return f"Email sent to {to}: {subject}"


@tool
def delete_contact(email: str) -> str:
    """Delete a contact. Requires human approval."""
    decision = interrupt(
        {
            "tool": "delete_contact",
            "message": f"Confirm deletion of contact: {email}",
            "parameters": {"email": email},
        }
    )
    if decision != "yes":
        return f"Deletion of {email} cancelled."
    # perform_deletion(email)
    return f"Contact {email} deleted."


def tool_level_agent(model: ScriptedModel, *tools: Any) -> Any:
    return create_agent(model, tools=list(tools), checkpointer=InMemorySaver())


EMAIL = {"to": "alice@co.com", "subject": "Q1 Report", "body": "Attached."}


@pytest.mark.parametrize(
    ("how", "values", "answer"),
    [
        pytest.param("approve", {}, "Email sent to alice@co.com: Q1 Report", id="approve"),
        pytest.param(
            "edit",
            {"arg:subject": "Q1 Report - Final", "comment": ""},
            "Email sent to alice@co.com: Q1 Report - Final",
            id="modify",
        ),
        pytest.param(
            "reject", {"reason": "wrong list"}, "Email cancelled by human reviewer.", id="reject"
        ),
    ],
)
async def test_a_tool_that_asks_with_its_parameters_runs_as_slack_decides(
    rig: SlackRig, client: ApprovalClient, how: str, values: dict[str, str], answer: str
) -> None:
    model_call = call("send_email", **EMAIL)
    model = model_calling(model_call)
    agent = tool_level_agent(model, send_email)
    messages = {"messages": [{"role": "user", "content": "Email Alice the Q1 report"}]}

    run = asyncio.create_task(
        run_with_approvals(agent, messages, thread(), client, interrupts=TOOL_PARAMETERS)
    )
    [record] = await pending(rig)
    buttons = actions_of(await rig.card(record["id"]))
    if how == "approve":
        await rig.click(record["id"], "approve", "U0ALICE")
    else:
        await answer_modal(rig, record["id"], how, "U0ALICE", values)
    result = await asyncio.wait_for(run, 5)

    assert (record["toolName"], record["args"]) == ("send_email", EMAIL)
    assert record["toolCallId"] == model_call["id"]  # found among the model's tool calls
    assert record["context"] == "Review this email before sending:"
    assert buttons == ["approve", "edit", "reject"]  # "reject" carries no reason: no Feedback
    assert told(model) == {model_call["id"]: answer}
    assert result["messages"][-1].content == "Done."


async def test_tool_parameters_approved_are_all_of_them_and_checked_before_they_are_stored(
    rig: SlackRig, client: ApprovalClient
) -> None:
    """`send_email` merges what it is given over its own parameters; an approval is of the
    complete parameters, so one of `to` alone is refused before it is stored."""
    model_call = call("send_email", **EMAIL)
    model = model_calling(model_call)
    agent = tool_level_agent(model, send_email)

    run = asyncio.create_task(
        run_with_approvals(agent, {"messages": []}, thread(), client, interrupts=TOOL_PARAMETERS)
    )
    complete = {**EMAIL, "to": "bob@co.com", "subject": "Q1"}
    await refused_then_run(rig, run, {"to": "bob@co.com"}, complete)

    assert told(model) == {model_call["id"]: "Email sent to bob@co.com: Q1"}


@tool("weather_search")
def weather_search_schema(city: str) -> str:
    """The guide's `weather_search`, for its schema: the guide's graph calls it by hand."""
    raise AssertionError("never run")


async def test_a_graph_calling_its_tools_by_hand_is_given_them_for_their_schemas(
    rig: SlackRig, client: ApprovalClient, capsys: pytest.CaptureFixture[str]
) -> None:
    model_call = call("weather_search", city="sf")
    model = model_calling(model_call)
    graph = review_tool_calls_graph(model)

    run = asyncio.create_task(
        run_with_approvals(
            graph,
            SF,
            thread(),
            client,
            interrupts=REVIEW_TOOL_CALLS,
            tools=[weather_search_schema],
        )
    )
    await refused_then_run(rig, run, {"town": "Paris"}, {"city": "Paris"})

    assert searched(capsys.readouterr().out) == ["Paris"]


@pytest.mark.parametrize(
    ("how", "answer"),
    [
        pytest.param("approve", "Contact bob@co.com deleted.", id="yes"),
        pytest.param("reject", "Deletion of bob@co.com cancelled.", id="no"),
    ],
)
async def test_a_tool_that_wants_other_words_gets_them(
    rig: SlackRig, client: ApprovalClient, how: str, answer: str
) -> None:
    model_call = call("delete_contact", email="bob@co.com")
    model = model_calling(model_call)
    agent = tool_level_agent(model, delete_contact)
    words = tool_parameters(approve="yes")

    run = asyncio.create_task(
        run_with_approvals(agent, {"messages": []}, thread(), client, interrupts=[words])
    )
    [record] = await pending(rig)
    await decide(rig, record, how, "keep him")
    await asyncio.wait_for(run, 5)

    assert record["context"] == "Confirm deletion of contact: bob@co.com"
    assert told(model) == {model_call["id"]: answer}


async def test_the_sync_runner_takes_the_same_mappings(rig: SlackRig) -> None:
    model_call = call("send_email", **EMAIL)
    model = model_calling(model_call)
    agent = tool_level_agent(model, send_email)

    def work() -> Any:
        with SyncApprovalClient(rig.bot.url, token=AGENT_TOKEN) as sync_client:
            return run_with_approvals_sync(
                agent, {"messages": []}, thread(), sync_client, interrupts=TOOL_PARAMETERS
            )

    run = asyncio.create_task(asyncio.to_thread(work))
    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    await asyncio.wait_for(run, 5)

    assert told(model) == {model_call["id"]: "Email sent to alice@co.com: Q1 Report"}


async def test_a_mapping_of_your_own(rig: SlackRig, client: ApprovalClient) -> None:
    class State(TypedDict):
        outcome: str

    def ship(state: State) -> dict[str, Any]:
        answer = interrupt({"confirm": "deploy", "with": {"version": "1.0"}})
        return {"outcome": f"deployed {answer}" if answer else "held"}

    graph = StateGraph(State).add_node("ship", ship).add_edge(START, "ship")
    compiled = graph.compile(checkpointer=InMemorySaver())

    def read(value: Any) -> ToolReview | None:
        if not (isinstance(value, dict) and "confirm" in value):
            return None
        buttons = (DecisionKind.APPROVE, DecisionKind.EDIT, DecisionKind.REJECT)
        return ToolReview(value["confirm"], value["with"], ("yes", "no"), buttons)

    def resume(review: ToolReview, made: Decision) -> Any:
        return (made.approved_args or review.args)["version"] if made.approved else None

    mapping = InterruptMapping("CONFIRM", read, resume)
    run = asyncio.create_task(
        run_with_approvals(compiled, {"outcome": ""}, thread(), client, interrupts=mapping)
    )
    [record] = await pending(rig)
    await decide(rig, record, "edit", "1.1")
    result = await asyncio.wait_for(run, 5)

    assert (record["toolName"], record["args"]) == ("deploy", {"version": "1.0"})
    assert record["allowedDecisions"] == ["approve", "edit", "reject"]
    assert result["outcome"] == "deployed 1.1"


@pytest.mark.parametrize(
    ("value", "mapping"),
    [
        pytest.param(
            {"question": "Is this correct?", "tool_call": {"name": "x", "args": {}, "id": "c1"}},
            "REVIEW_TOOL_CALLS",
            id="review",
        ),
        pytest.param(
            {"tool": "send_email", "message": "Review:", "parameters": {"to": "a"}},
            "TOOL_PARAMETERS",
            id="tool-parameters",
        ),
    ],
)
async def test_without_its_mapping_a_documented_shape_names_it_before_any_card(
    rig: SlackRig, client: ApprovalClient, value: dict[str, Any], mapping: str
) -> None:
    class State(TypedDict):
        answer: Any

    def ask(state: State) -> dict[str, Any]:
        return {"answer": interrupt(value)}

    compiled = StateGraph(State).add_node("ask", ask).add_edge(START, "ask")
    graph = compiled.compile(checkpointer=InMemorySaver())

    with pytest.raises(UnsupportedInterrupt, match=f"pass interrupts={mapping}"):
        await run_with_approvals(graph, {"answer": None}, thread(), client)
    assert await all_approvals(rig) == []


@pytest.mark.parametrize(
    ("value", "mapping"),
    [
        pytest.param(
            {"question": "?", "tool_call": "weather_search"}, REVIEW_TOOL_CALLS, id="call"
        ),
        pytest.param({"question": "?", "tool_call": {"args": {}}}, REVIEW_TOOL_CALLS, id="no-name"),
        pytest.param(
            {"question": "?", "tool_call": {"name": "x", "args": "sf"}},
            REVIEW_TOOL_CALLS,
            id="args",
        ),
        pytest.param({"tool": "", "parameters": {}}, TOOL_PARAMETERS, id="no-tool"),
        pytest.param({"tool": "x", "parameters": ["a"]}, TOOL_PARAMETERS, id="parameters"),
    ],
)
def test_a_malformed_value_of_a_mapped_shape_is_refused(
    value: dict[str, Any], mapping: InterruptMapping
) -> None:
    with pytest.raises(UnsupportedInterrupt):
        mapping.read(value)


def test_other_values_are_not_read_by_the_documented_mappings() -> None:
    for value in ("approve?", {"action_requests": []}, {"question": "why"}, {"tool": "x"}, []):
        assert REVIEW_TOOL_CALLS.read(value) is None
        assert TOOL_PARAMETERS.read(value) is None


@pytest.mark.parametrize(
    "given",
    [
        pytest.param([{"tool": "x"}], id="list-of-dicts"),
        pytest.param({"tool": "x"}, id="dict"),
        pytest.param("REVIEW_TOOL_CALLS", id="name"),
        pytest.param(read_interrupt, id="function"),
    ],
)
def test_interrupts_must_be_mappings(given: Any) -> None:
    with pytest.raises(TypeError, match="InterruptMapping"):
        asyncio.run(run_with_approvals(None, {}, {}, None, interrupts=given))


WEATHER = ToolReview("weather_search", {"city": "sf"}, (), tuple(DecisionKind))


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        pytest.param(decision("approve"), {"action": "continue"}, id="approve"),
        pytest.param(
            decision("approve", args={"city": "sf"}), {"action": "continue"}, id="same-args"
        ),
        pytest.param(
            decision("edit", args={"city": "San Francisco, USA"}),
            {"action": "update", "data": {"city": "San Francisco, USA"}},
            id="edit",
        ),
        pytest.param(
            decision("feedback", comment="use <city, country>"),
            {"action": "feedback", "data": "use <city, country>"},
            id="feedback",
        ),
        pytest.param(
            decision("reject"),
            {"action": "feedback", "data": "The user rejected this tool call (weather_search)."},
            id="reject",
        ),
        pytest.param(
            decision("timeout"),
            {
                "action": "feedback",
                "data": "Nobody approved this tool call (weather_search) in time, so it did "
                "not run.",
            },
            id="timeout",
        ),
        pytest.param(
            decision("timeout", args={"city": "sf"}),
            {"action": "continue"},
            id="approved-by-timeout",
        ),
    ],
)
def test_decisions_become_review_actions(made: Decision, expected: dict[str, Any]) -> None:
    assert REVIEW_TOOL_CALLS.resume(WEATHER, made) == expected


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        pytest.param(decision("approve"), "approve", id="approve"),
        pytest.param(decision("edit", args={"city": "Paris"}), {"city": "Paris"}, id="modify-all"),
        pytest.param(decision("reject", comment="no"), "reject", id="reject"),
        pytest.param(decision("feedback", comment="no"), "reject", id="feedback"),
        pytest.param(decision("cancel"), "reject", id="cancel"),
    ],
)
def test_decisions_become_tool_parameter_answers(made: Decision, expected: Any) -> None:
    assert TOOL_PARAMETERS.resume(WEATHER, made) == expected
    words = tool_parameters(approve=True, reject=False)
    assert words.resume(WEATHER, made) == (
        expected if isinstance(expected, dict) else expected == "approve"
    )
