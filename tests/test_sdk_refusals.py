"""The agent side refuses what it must never act on, against a bot it cannot trust.

`HostileBot` is a real aiohttp server on 127.0.0.1 standing in for an old or compromised bot: it
answers a `toolCallId` it already holds with the record it holds, whatever tool or arguments
were asked for (the bug that once ran `delete_file` on `read_file`'s approval), and it can
answer 409s and 422s. The SDK, `requires_approval` and the MCP gate are tested here; each
adapter's test module runs its framework against the same `hostile_bot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from mcp import Client

from bot.mcp_server import create_server
from bot.sdk import (
    ApprovalClient,
    ApprovalError,
    ApprovalInvalid,
    ApprovalMismatch,
    SyncApprovalClient,
    requires_approval,
)

TOKEN = "agent-token"
WHEN = "2026-11-21T05:30:00Z"
DATA = {"path": "/srv/data"}


def record(
    tool_name: str,
    args: dict[str, Any],
    tool_call_id: str,
    *,
    status: str = "approved",
    approved_args: dict[str, Any] | None = None,
    approval_id: str = "apr_old",
) -> dict[str, Any]:
    """An approval record as the bot's JSON carries it; decided unless `status` is pending."""
    decision = None
    if status != "pending":
        decision = {
            "approved": status == "approved",
            "action": "approve" if status == "approved" else "reject",
            "approvedArgs": (approved_args or args) if status == "approved" else None,
            "decidedBy": "U0ALICE",
            "decidedAt": WHEN,
        }
    return {
        "id": approval_id,
        "status": status,
        "toolName": tool_name,
        "toolCallId": tool_call_id,
        "args": args,
        "channel": "C0OPS",
        "createdAt": WHEN,
        "decision": decision,
    }


#: what the scenario's first call left behind: `read_file("/srv/data")`, approved, as call_0
READ_APPROVED = record("read_file", DATA, "call_0")

#: the refusals every entry point must let through as errors, by what the bot answers
INVALID = (422, {"error": "invalid", "message": "channel: a user id", "path": "channel"})
CONFLICT = (409, {"error": "conflict", "message": "toolCallId 'call_0' is taken"})


class HostileBot:
    """The agent API as an old or compromised bot answers it; see the module docstring."""

    def __init__(self) -> None:
        #: records by toolCallId: a submission of one of these ids is answered with it
        self.held: dict[str, dict[str, Any]] = {}
        #: the status of a record made for a new toolCallId ("approved": a human was quick)
        self.new_status = "approved"
        #: when set, every wait and read answers this record, whichever approval was asked for
        self.answer_waits_with: dict[str, Any] | None = None
        #: when set, every submission is answered with this (status, error body)
        self.error: tuple[int, dict[str, Any]] | None = None
        #: every body submitted
        self.submitted: list[dict[str, Any]] = []
        self.url = ""
        self._ids = itertools.count(1)

    def hold(self, answer: dict[str, Any]) -> None:
        """Answer every submission of `answer`'s toolCallId with `answer`."""
        self.held[answer["toolCallId"]] = answer

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/approvals", self._submit)
        app.router.add_get("/v1/approvals/{id}/wait", self._read)
        app.router.add_get("/v1/approvals/{id}", self._read)
        return app

    async def _submit(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.submitted.append(body)
        if self.error is not None:
            status, error = self.error
            return web.json_response(error, status=status)
        if body["toolCallId"] in self.held:
            return web.json_response(self.held[body["toolCallId"]])
        made = record(
            body["toolName"],
            body["args"],
            body["toolCallId"],
            status=self.new_status,
            approval_id=f"apr_{next(self._ids)}",
        )
        self.hold(made)
        return web.json_response(made, status=201)

    async def _read(self, request: web.Request) -> web.Response:
        if self.answer_waits_with is not None:
            return web.json_response(self.answer_waits_with)
        for held in self.held.values():
            if held["id"] == request.match_info["id"]:
                return web.json_response(held)
        return web.json_response({"error": "not_found", "message": "unknown"}, status=404)


@contextlib.asynccontextmanager
async def hostile_bot(error: tuple[int, dict[str, Any]] | None = None) -> AsyncIterator[HostileBot]:
    """A `HostileBot` serving on 127.0.0.1 that holds `READ_APPROVED` (or answers `error`)."""
    bot = HostileBot()
    bot.hold(READ_APPROVED)
    bot.error = error
    runner = web.AppRunner(bot.app(), shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    bot.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield bot
    finally:
        await runner.cleanup()


def check_refusal(error: BaseException, answer: tuple[int, dict[str, Any]] | None) -> None:
    """`error` is what an agent must get for `answer` (None: `READ_APPROVED` for delete_file)."""
    assert isinstance(error, ApprovalError)
    if answer is None:
        assert isinstance(error, ApprovalMismatch) and error.code == "mismatch"
        assert "toolName 'read_file', not 'delete_file'" in error.message
    elif answer[0] == 422:
        assert isinstance(error, ApprovalInvalid) and error.path == "channel"
        assert (error.status, error.code) == (422, "invalid")
    else:
        assert (error.status, error.code) == (409, "conflict")
        assert "toolCallId 'call_0' was already used for another call" in error.message


#: the bot's answers every entry point must refuse, for `pytest.mark.parametrize("answer", …)`
REFUSALS = [
    pytest.param(None, id="record-of-another-call"),
    pytest.param(INVALID, id="422-invalid"),
    pytest.param(CONFLICT, id="409-conflict"),
]


@pytest.fixture
async def bot() -> AsyncIterator[HostileBot]:
    async with hostile_bot() as serving:
        yield serving


@pytest.fixture
async def client(bot: HostileBot) -> AsyncIterator[ApprovalClient]:
    async with ApprovalClient(bot.url, TOKEN) as agent:
        yield agent


# -- the SDK client ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "differs"),
    [
        pytest.param(READ_APPROVED, "toolName 'read_file', not 'delete_file'", id="other-tool"),
        pytest.param(
            record("delete_file", {"path": "/srv/other"}, "call_0"),
            "other arguments (at 'path')",
            id="other-args",
        ),
        pytest.param(
            record("delete_file", {"path": "/srv/data", "force": True}, "call_0"),
            "other arguments (at 'force')",
            id="an-added-arg",
        ),
        pytest.param(
            record("delete_file", {"path": "/srv/data", "recurse": 1}, "call_0"),
            "other arguments (at 'recurse')",
            id="1-is-not-true",
        ),
        pytest.param(
            record("delete_file", DATA, "call_9"),
            "toolCallId 'call_9', not 'call_0'",
            id="other-tool-call-id",
        ),
    ],
)
async def test_a_record_of_another_call_raises_instead_of_deciding(
    bot: HostileBot, client: ApprovalClient, held: dict[str, Any], differs: str
) -> None:
    bot.held["call_0"] = held
    args = {"path": "/srv/data", "recurse": True} if "recurse" in held["args"] else DATA

    with pytest.raises(ApprovalMismatch) as caught:
        await client.request("delete_file", args, tool_call_id="call_0")

    assert caught.value.code == "mismatch" and caught.value.status is None
    assert differs in caught.value.message and caught.value.differences
    assert "delete_file must not run" in str(caught.value)
    assert caught.value.approval.id == "apr_old"
    assert "/srv/data" not in str(caught.value) and "/srv/other" not in str(caught.value)


async def test_submit_and_a_wait_given_the_record_check_every_answer(
    bot: HostileBot, client: ApprovalClient
) -> None:
    bot.new_status = "pending"
    submitted = await client.submit("delete_file", DATA, tool_call_id="call_1")
    bot.answer_waits_with = READ_APPROVED

    with pytest.raises(ApprovalMismatch, match="toolName 'read_file', not 'delete_file'"):
        await client.wait(submitted, timeout=1)
    with pytest.raises(ApprovalMismatch, match="toolCallId 'call_0', not 'call_1'"):
        await client.request("delete_file", DATA, tool_call_id="call_1", timeout=1)
    with pytest.raises(ApprovalMismatch, match="toolName 'read_file'"):
        await client.submit("delete_file", DATA, tool_call_id="call_0")
    # by id alone a wait knows no call to hold the answer to
    assert (await client.wait(submitted.id, timeout=1)).tool_name == "read_file"


async def test_json_equal_arguments_and_an_edit_are_the_same_call(
    bot: HostileBot, client: ApprovalClient
) -> None:
    sent = {"paths": ("/a", "/b"), "limit": 1.0, "options": {"b": 2, "a": True}}
    stored = {"options": {"a": True, "b": 2.0}, "limit": 1, "paths": ["/a", "/b"]}
    edit = {"paths": ["/a"], "limit": 1, "options": {}}
    bot.hold(record("delete_files", stored, "call_eq", approved_args=edit))

    decision = await client.request("delete_files", sent, tool_call_id="call_eq")

    assert decision.approved and decision.approved_args == edit


async def test_the_sync_client_raises_the_same(bot: HostileBot) -> None:
    def ask() -> Any:
        with SyncApprovalClient(bot.url, TOKEN) as sync_client:
            return sync_client.request("delete_file", DATA, tool_call_id="call_0")

    with pytest.raises(ApprovalMismatch, match="toolName 'read_file', not 'delete_file'"):
        await asyncio.to_thread(ask)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param("channel", "a user id: an agent does not pick its approver", id="channel"),
        pytest.param("onTimeout", "approve is not allowed for this tool", id="onTimeout"),
        pytest.param("allowedDecisions", "must include reject", id="allowedDecisions"),
        pytest.param("toolName", "toolName: must match ^[A-Za-z0-9_.:/-]+$", id="toolName"),
    ],
)
async def test_a_422_names_the_field_at_fault(
    bot: HostileBot, client: ApprovalClient, path: str, message: str
) -> None:
    bot.error = (422, {"error": "invalid", "message": message, "path": path})

    with pytest.raises(ApprovalInvalid) as caught:
        await client.request("delete_file", DATA, timeout=1)

    assert caught.value.path == path and caught.value.status == 422
    assert str(caught.value) == f"invalid (HTTP 422): {path}: {message.removeprefix(path + ': ')}"
    assert len(bot.submitted) == 1  # refused for good: not retried


async def test_a_422_without_a_path_is_still_invalid(
    bot: HostileBot, client: ApprovalClient
) -> None:
    bot.error = (422, {"error": "invalid", "message": "no good"})

    with pytest.raises(ApprovalInvalid) as caught:
        await client.submit("delete_file", DATA)

    assert caught.value.path is None and caught.value.message == "no good"


async def test_a_409_says_the_tool_call_id_was_used_for_another_call(
    bot: HostileBot, client: ApprovalClient
) -> None:
    bot.error = CONFLICT

    with pytest.raises(ApprovalError) as caught:
        await client.request("delete_file", DATA, tool_call_id="call_0")

    check_refusal(caught.value, CONFLICT)
    assert "is taken" in caught.value.message  # the bot's own words are kept
    assert len(bot.submitted) == 1


# -- requires_approval ------------------------------------------------------------------------


@pytest.mark.parametrize("answer", REFUSALS)
@pytest.mark.parametrize("on_reject", ["raise", "message"])
async def test_a_gated_function_never_runs_on_a_refusal(
    answer: tuple[int, dict[str, Any]] | None, on_reject: Any
) -> None:
    deleted: list[str] = []
    async with hostile_bot(answer) as serving, ApprovalClient(serving.url, TOKEN) as agent:

        @requires_approval(agent, on_reject=on_reject)
        async def delete_file(path: str) -> str:
            deleted.append(path)
            return "deleted"

        with pytest.raises(ApprovalError) as caught:
            await delete_file("/srv/data", tool_call_id="call_0")

    check_refusal(caught.value, answer)
    assert deleted == []


async def test_a_gated_sync_function_never_runs_on_another_calls_record(bot: HostileBot) -> None:
    deleted: list[str] = []

    def run() -> Any:
        with SyncApprovalClient(bot.url, TOKEN) as sync_client:

            @requires_approval(sync_client, on_reject="message")
            def delete_file(path: str, tool_call_id: str) -> str:
                deleted.append(path)
                return "deleted"

            return delete_file("/srv/data", "call_0")

    with pytest.raises(ApprovalMismatch, match="toolName 'read_file', not 'delete_file'"):
        await asyncio.to_thread(run)
    assert deleted == []


# -- the MCP gate -----------------------------------------------------------------------------


async def call_gate(bot: HostileBot, wait: float = 0, **arguments: Any) -> Any:
    gate = create_server(url=bot.url, token=TOKEN, wait=wait)
    async with Client(gate) as mcp:
        return await mcp.call_tool(
            "request_approval",
            {"toolName": "delete_file", "args": DATA, "toolCallId": "call_0", **arguments},
        )


async def test_the_mcp_gate_answers_another_calls_record_with_an_error(bot: HostileBot) -> None:
    result = await call_gate(bot)

    assert result.is_error and result.structured_content is None
    [text] = [part.text for part in result.content]
    assert "toolName 'read_file', not 'delete_file'" in text
    assert "delete_file must not run" in text and "approved" not in text


async def test_the_mcp_gate_checks_what_its_wait_answers(bot: HostileBot) -> None:
    bot.new_status = "pending"
    bot.answer_waits_with = READ_APPROVED

    result = await call_gate(bot, wait=1, toolCallId="call_2")

    assert result.is_error
    assert "toolName 'read_file', not 'delete_file'" in result.content[0].text


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        pytest.param(INVALID, "invalid (HTTP 422): channel: a user id", id="422-invalid"),
        pytest.param(CONFLICT, "toolCallId 'call_0' was already used", id="409-conflict"),
    ],
)
async def test_the_mcp_gate_names_the_field_a_bot_refused(
    bot: HostileBot, answer: tuple[int, dict[str, Any]], named: str
) -> None:
    bot.error = answer

    result = await call_gate(bot, channel="U0ACCOMPLICE")

    assert result.is_error and named in result.content[0].text
