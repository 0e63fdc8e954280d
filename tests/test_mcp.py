"""The MCP approval gate: real MCP client sessions, decisions in local Slack."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from bot.mcp_server import approval_result, create_server, main
from bot.models import Action, Approval, Decision, Status
from tests.adapter_support import answer_modal, pending
from tests.conftest import AGENT_TOKEN, SlackRig, until
from tests.processes import free_port

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "mcp_example.py"
DEPLOY = {"toolName": "deploy_service", "args": {"version": "1.4.2"}}


def env_for(rig: SlackRig) -> dict[str, str]:
    return {"APPROVAL_URL": rig.bot.url, "APPROVAL_API_TOKEN": AGENT_TOKEN}


@pytest.fixture
def errlog(tmp_path: Path) -> Any:
    """The server's stderr, kept in a file to show when a test fails."""
    with open(tmp_path / "server.log", "w+") as log:
        yield log


@contextlib.asynccontextmanager
async def stdio_session(
    rig: SlackRig, errlog: IO[str], *flags: str
) -> AsyncIterator[ClientSession]:
    """A client session with `python -m bot.mcp_server` as a subprocess on stdio."""
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "bot.mcp_server", *flags], env=env_for(rig), cwd=ROOT
    )
    async with (
        stdio_client(server, errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: Any, **arguments: Any) -> dict[str, Any]:
    """Call `request_approval`; its JSON answer, checked to be the same as text and structured."""
    result = await session.call_tool("request_approval", {**DEPLOY, **arguments})
    assert not result.is_error, result.content
    answer = result.structured_content
    assert json.loads(result.content[0].text) == answer
    return dict(answer)


async def decide(rig: SlackRig, how: str, text: str = "") -> dict[str, Any]:
    """Decide the pending approval from its card, as alice."""
    [record] = await pending(rig)
    if how == "approve":
        await rig.click(record["id"], how, "U0ALICE")
    else:
        values = {"arg:version": text, "comment": "hotfix"} if how == "edit" else {"reason": text}
        await answer_modal(rig, record["id"], how, "U0ALICE", values)
    return await rig.decided(record["id"])


async def test_a_stdio_client_gets_the_decision_made_in_slack(
    rig: SlackRig, errlog: IO[str]
) -> None:
    async with stdio_session(rig, errlog) as session:
        tools = await session.list_tools()
        ask = asyncio.create_task(
            call(session, prompt="Ship 1.4.2?", priority="high", channel="C0OPS")
        )
        record = await decide(rig, "edit", "1.4.3")
        approved = await asyncio.wait_for(ask, 5)
        refuse = asyncio.create_task(call(session, args={"version": "2.0.0"}))
        await decide(rig, "reject", "not during the freeze")
        rejected = await asyncio.wait_for(refuse, 5)

    [tool] = tools.tools
    assert tool.name == "request_approval"
    assert {"toolName", "args", "prompt", "channel", "priority", "toolCallId"} <= set(
        tool.input_schema["properties"]
    )
    assert tool.input_schema["required"] == ["toolName", "args"]
    assert approved["approved"] is True and approved["status"] == "approved"
    assert approved["approvedArgs"] == {"version": "1.4.3"}
    assert (approved["decidedBy"], approved["comment"]) == ("U0ALICE", "hotfix")
    assert approved["id"] == record["id"] and approved["decision"]["action"] == "edit"
    assert (approved["prompt"], approved["priority"]) == ("Ship 1.4.2?", "high")
    assert "with edited arguments" in approved["note"]
    assert rejected["approved"] is False and rejected["approvedArgs"] is None
    assert rejected["comment"] == "not during the freeze"
    assert rejected["note"] == (
        "The user rejected this tool call (deploy_service): not during the freeze Do not run it."
    )


async def test_still_pending_answers_in_time_and_the_same_tool_call_id_resumes(
    rig: SlackRig, errlog: IO[str]
) -> None:
    async with stdio_session(rig, errlog, "--wait", "0.3") as session:
        first = await call(session)
        await decide(rig, "approve")
        again = await call(session, toolCallId=first["toolCallId"])

    assert (first["status"], first["approved"], first["decision"]) == ("pending", None, None)
    assert first["toolCallId"] in first["note"] and "do not run deploy_service" in first["note"]
    assert again["id"] == first["id"] and again["toolCallId"] == first["toolCallId"]
    assert (again["status"], again["approved"]) == ("approved", True)
    assert again["approvedArgs"] == {"version": "1.4.2"} and again["decidedBy"] == "U0ALICE"
    _, listing = await rig.bot.call("GET", "/v1/approvals")
    assert len(listing["items"]) == 1


async def test_a_streamable_http_client_gets_the_decision(rig: SlackRig, errlog: IO[str]) -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "bot.mcp_server", "--http", "--port", str(port)],
        env={**env_for(rig), "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        stderr=errlog,
    )
    try:
        await until(lambda: _accepts(port), timeout=4)
        async with (
            streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            ask = asyncio.create_task(call(session))
            await decide(rig, "approve")
            answer = await asyncio.wait_for(ask, 5)
    finally:
        server.terminate()
        await server.wait()

    assert (answer["approved"], answer["decidedBy"], answer["comment"]) == (True, "U0ALICE", None)
    assert answer["approvedArgs"] == {"version": "1.4.2"}
    assert answer["note"] == "Approved by alice: run deploy_service with approvedArgs."


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def test_errors_come_back_as_tool_errors_with_the_reason(rig: SlackRig) -> None:
    gate = create_server(url=rig.bot.url, token=AGENT_TOKEN, wait=0)
    away = create_server(url="http://127.0.0.1:9", token=AGENT_TOKEN, wait=0)

    async with Client(gate) as client:
        await client.call_tool("request_approval", {**DEPLOY, "toolCallId": "call_1"})
        conflict = await client.call_tool(
            "request_approval", {**DEPLOY, "toolCallId": "call_1", "args": {"version": "9"}}
        )
        invalid = await client.call_tool("request_approval", {**DEPLOY, "channel": ""})
    async with Client(away) as client:
        unreachable = await client.call_tool("request_approval", DEPLOY)

    assert conflict.is_error and "conflict" in conflict.content[0].text
    assert invalid.is_error and "channel" in invalid.content[0].text
    assert unreachable.is_error and "cannot reach the approval bot" in unreachable.content[0].text


def record(decision: Decision | None) -> Approval:
    return Approval(
        id="apr_1",
        status=Status.PENDING if decision is None else Status.APPROVED,
        tool_name="deploy_service",
        tool_call_id="call_1",
        args={"version": "1.4.2"},
        channel="C0OPS",
        created_at=datetime.now(UTC),
        decision=decision,
    )


def made(action: Action, approved: bool = True, comment: str | None = None) -> Decision:
    return Decision(
        approved=approved,
        action=action,
        approved_args={"version": "1.4.2"} if approved else None,
        decided_by="system:timeout" if action is Action.TIMEOUT else "U0ALICE",
        decided_by_name=None if action is Action.TIMEOUT else "alice",
        comment=comment,
        decided_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("decision", "note"),
    [
        pytest.param(
            made(Action.APPROVE, comment="go"),
            "Approved by alice: run deploy_service with approvedArgs. Their comment: go",
            id="approve",
        ),
        pytest.param(
            made(Action.TIMEOUT),
            "Approved automatically when nobody decided in time: run deploy_service with "
            "approvedArgs.",
            id="timeout-approve",
        ),
        pytest.param(
            made(Action.FEEDBACK, approved=False, comment="staging first"),
            "The user did not run this tool call (deploy_service) and gave feedback instead: "
            "staging first Do not run it.",
            id="feedback",
        ),
        pytest.param(
            None,
            "No decision yet after 50s: do not run deploy_service yet. Call request_approval "
            'again with the same toolName, args and toolCallId "call_1" to keep waiting for '
            "this approval.",
            id="pending",
        ),
    ],
)
def test_the_note_tells_the_model_what_to_do(decision: Decision | None, note: str) -> None:
    answer = approval_result(record(decision), 50)

    assert answer["note"] == note
    assert answer["approved"] == (None if decision is None else decision.approved)
    assert answer["toolCallId"] == "call_1" and answer["args"] == {"version": "1.4.2"}


def test_a_bad_bot_url_is_refused_at_start(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "ftp://bot.example"]) == 2
    assert "http(s)://host" in capsys.readouterr().err
    with pytest.raises(ValueError, match="wait"):
        create_server(wait=-1)


async def test_the_example_runs_end_to_end(
    rig: SlackRig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env_for(rig).items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("mcp_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    run = asyncio.create_task(example.main())
    decided = await decide(rig, "edit", "1.4.3")
    await asyncio.wait_for(run, 5)

    assert decided["priority"] == "high" and decided["prompt"] == "Ship 1.4.2 to production?"
    out = capsys.readouterr().out
    assert "Approved by alice with edited arguments" in out
    assert "deploying with {'version': '1.4.3'}" in out
