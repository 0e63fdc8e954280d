from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import aiohttp
import pytest

from tests.conftest import ADMIN_TOKEN, Running


async def test_submit_answers_201_with_the_record_then_200_for_the_same_call(bot: Running) -> None:
    body = {
        "toolName": "deploy_service",
        "toolCallId": "call_abc",
        "args": {"version": "1.4.2"},
        "prompt": "Send build 1.4.2 to prod?",
        "priority": "high",
        "requester": {"agent": "release-bot", "slackUser": "U0DAVE", "runId": "run-1"},
        "timeoutSeconds": 900,
        "metadata": {"ticket": "OPS-7"},
    }
    status, first = await bot.call("POST", "/v1/approvals", json=body)
    again_status, again = await bot.call("POST", "/v1/approvals", json=body)

    assert (status, again_status) == (201, 200)
    assert again == first
    assert first["id"].startswith("apr_")
    assert first["status"] == "pending"
    assert first["channel"] == "C0OPS"
    assert first["requester"] == {"agent": "release-bot", "slackUser": "U0DAVE", "runId": "run-1"}
    assert first["slack"] == {"channel": None, "ts": None, "permalink": None, "error": None}
    assert first["decision"] is None
    assert first["createdAt"].endswith("Z") and first["expiresAt"].endswith("Z")


async def test_get_and_list_with_filters_and_cursor(bot: Running) -> None:
    ids = [(await bot.submit(toolName=f"tool_{i % 2}"))["id"] for i in range(4)]
    await bot.decide(ids[0])

    _, one = await bot.call("GET", f"/v1/approvals/{ids[1]}")
    _, pending = await bot.call("GET", "/v1/approvals?status=pending")
    _, tool0 = await bot.call("GET", "/v1/approvals?toolName=tool_0")
    _, page1 = await bot.call("GET", "/v1/approvals?limit=3")
    _, page2 = await bot.call("GET", f"/v1/approvals?limit=3&cursor={page1['next']}")

    assert one["id"] == ids[1]
    assert [a["id"] for a in pending["items"]] == ids[:0:-1]
    assert [a["id"] for a in tool0["items"]] == [ids[2], ids[0]]
    assert [a["id"] for a in page1["items"] + page2["items"]] == ids[::-1]
    assert page2["next"] is None


async def test_wait_returns_the_instant_the_decision_lands(bot: Running) -> None:
    record = await bot.submit()
    waiter = asyncio.create_task(bot.call("GET", f"/v1/approvals/{record['id']}/wait?timeout=30"))
    await asyncio.sleep(0.1)

    started = time.monotonic()
    await bot.decide(record["id"], comment="hotfix only")
    status, decided = await asyncio.wait_for(waiter, 5)

    assert time.monotonic() - started < 1
    assert status == 200 and decided["status"] == "approved"
    assert decided["decision"]["decidedBy"] == "alice"
    assert decided["decision"]["comment"] == "hotfix only"
    assert decided["decision"]["approvedArgs"] == {"version": "1.4.2"}


async def test_wait_gives_back_the_pending_record_after_its_timeout(bot: Running) -> None:
    record = await bot.submit()
    status, body = await bot.call("GET", f"/v1/approvals/{record['id']}/wait?timeout=0.2")
    assert (status, body["status"]) == (200, "pending")


async def test_decision_with_edited_args_and_a_second_decision_409(bot: Running) -> None:
    record = await bot.submit(
        argsSchema={"type": "object", "properties": {"version": {"type": "string"}}}
    )
    status, decided = await bot.decide(record["id"], approvedArgs={"version": "1.4.3"})
    again_status, again = await bot.decide(record["id"], approved=False)

    assert status == 200
    assert decided["decision"]["action"] == "edit"
    assert decided["decision"]["approvedArgs"] == {"version": "1.4.3"}
    assert again_status == 409 and again["error"] == "conflict"
    assert "already approved by alice" in again["message"]


async def test_cancel_then_decide_is_409(bot: Running) -> None:
    record = await bot.submit()
    status, cancelled = await bot.call(
        "POST", f"/v1/approvals/{record['id']}/cancel", json={"reason": "superseded"}
    )
    second, _ = await bot.call("POST", f"/v1/approvals/{record['id']}/cancel")

    assert status == 200 and cancelled["status"] == "cancelled"
    assert cancelled["decision"]["action"] == "cancel"
    assert cancelled["decision"]["comment"] == "superseded"
    assert second == 409


async def test_30_concurrent_api_decisions_yield_one(bot: Running) -> None:
    record = await bot.submit()
    results = await asyncio.gather(
        *(bot.decide(record["id"], decidedBy=f"u{i}", approved=i % 2 == 0) for i in range(30))
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 29


ERRORS = [
    pytest.param("POST", "/v1/approvals", {"data": b"{nope"}, 400, "bad_request", id="bad-json"),
    pytest.param("POST", "/v1/approvals", {"json": [1, 2]}, 400, "bad_request", id="not-object"),
    pytest.param("POST", "/v1/approvals", {"data": b""}, 400, "bad_request", id="empty-body"),
    pytest.param("GET", "/v1/approvals?limit=x", {}, 400, "bad_request", id="bad-limit"),
    pytest.param("GET", "/v1/approvals?status=maybe", {}, 400, "bad_request", id="bad-status"),
    pytest.param("GET", "/v1/approvals?cursor=zz", {}, 400, "bad_request", id="bad-cursor"),
    pytest.param("GET", "/v1/approvals/apr_nope", {}, 404, "not_found", id="unknown-id"),
    pytest.param("GET", "/v1/approvals/apr_nope/wait", {}, 404, "not_found", id="wait-unknown"),
    pytest.param("POST", "/v1/approvals/apr_nope/cancel", {}, 404, "not_found", id="cancel-unk"),
    pytest.param("GET", "/v1/nothing", {}, 404, "not_found", id="no-route"),
    pytest.param(
        "POST",
        "/v1/approvals",
        {"data": io.BytesIO(b"x" * (1024 * 1024 + 1))},
        413,
        "payload_too_large",
        id="too-large",
    ),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), ERRORS)
async def test_bad_input_gets_a_json_4xx(
    bot: Running, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    got, body = await bot.call(method, path, **kwargs)
    assert (got, body["error"]) == (status, code)
    assert body["message"]


INVALID = [
    pytest.param({"args": {}}, "toolName", id="missing-tool"),
    pytest.param({"toolName": "", "args": {}}, "toolName", id="empty-tool"),
    pytest.param({"toolName": "x" * 256, "args": {}}, "toolName", id="long-tool"),
    pytest.param({"toolName": "t", "args": [1]}, "args", id="args-not-object"),
    pytest.param({"toolName": "t", "args": {}, "timeoutSeconds": 0}, "timeoutSeconds", id="t0"),
    pytest.param(
        {"toolName": "t", "args": {}, "timeoutSeconds": 604801}, "timeoutSeconds", id="t-8d"
    ),
    pytest.param({"toolName": "t", "args": {}, "priority": "urgent"}, "priority", id="priority"),
    pytest.param({"toolName": "t", "args": {}, "onTimeout": "panic"}, "onTimeout", id="timeout"),
    pytest.param(
        {"toolName": "t", "args": {}, "argsSchema": {"type": 5}}, "argsSchema", id="bad-schema"
    ),
    pytest.param(
        {"toolName": "t", "args": {}, "allowedDecisions": []}, "allowedDecisions", id="no-choices"
    ),
    pytest.param(
        {"toolName": "t", "args": {}, "allowedDecisions": ["approve", "approve"]},
        "allowedDecisions",
        id="repeated-choice",
    ),
    pytest.param({"toolName": "t", "args": {}, "threadTs": "yesterday"}, "threadTs", id="ts"),
    pytest.param({"toolName": "t", "args": {}, "tool_nam": 1}, "tool_nam", id="unknown-field"),
    pytest.param(
        {"toolName": "t", "args": {}, "requester": {"agent": 5}}, "requester.agent", id="req"
    ),
]


@pytest.mark.parametrize(("body", "path"), INVALID)
async def test_invalid_fields_are_422_with_the_field_path(
    bot: Running, body: dict[str, Any], path: str
) -> None:
    status, answer = await bot.call("POST", "/v1/approvals", json=body)
    assert (status, answer["error"]) == (422, "invalid")
    assert answer["path"] == path and answer["message"].startswith(path)
    _, listing = await bot.call("GET", "/v1/approvals")
    assert listing["items"] == []


async def test_same_tool_call_id_with_other_args_is_409(bot: Running) -> None:
    await bot.submit(toolCallId="call_1")
    status, body = await bot.call(
        "POST", "/v1/approvals", json={"toolName": "t", "toolCallId": "call_1", "args": {"x": 1}}
    )
    assert (status, body["error"]) == (409, "conflict")


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        pytest.param(None, 401, "unauthorized", id="no-token"),
        pytest.param("wrong", 401, "unauthorized", id="wrong-token"),
        pytest.param("agent-token", 403, "forbidden", id="agent-cannot-decide"),
    ],
)
async def test_decision_needs_the_admin_token(
    bot: Running, token: str | None, status: int, code: str
) -> None:
    record = await bot.submit()
    got, body = await bot.call(
        "POST",
        f"/v1/approvals/{record['id']}/decision",
        token=token,
        json={"approved": True, "decidedBy": "agent"},
    )
    assert (got, body["error"]) == (status, code)
    _, still = await bot.call("GET", f"/v1/approvals/{record['id']}")
    assert still["status"] == "pending"


async def test_agent_routes_need_a_token(bot: Running) -> None:
    for token in (None, "wrong"):
        status, body = await bot.call("GET", "/v1/approvals", token=token)
        assert (status, body["error"]) == (401, "unauthorized")
    status, _ = await bot.call("GET", "/v1/approvals", token=ADMIN_TOKEN)
    assert status == 200


async def test_invalid_edit_is_422_and_decides_nothing(bot: Running) -> None:
    record = await bot.submit(
        argsSchema={"type": "object", "properties": {"version": {"type": "string"}}}
    )
    status, body = await bot.decide(record["id"], approvedArgs={"version": 5})
    assert (status, body["error"], body["path"]) == (422, "invalid", "approvedArgs.version")
    _, still = await bot.call("GET", f"/v1/approvals/{record['id']}")
    assert still["status"] == "pending"


async def test_healthz(bot: Running) -> None:
    status, body = await bot.call("GET", "/healthz", token=None)
    assert status == 200 and body["ok"] is True


async def read_sse(response: aiohttp.ClientResponse, count: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    while len(events) < count:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode().rstrip("\n")
        if not line:
            if "data" in current:
                events.append(current)
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = value
    return events


async def test_sse_stream_resumes_after_a_disconnect_without_loss(bot: Running) -> None:
    headers = {"Authorization": "Bearer agent-token"}
    async with bot.http.get(bot.url + "/v1/events", headers=headers) as stream:
        first = await bot.submit(toolCallId="a")
        [submitted] = await read_sse(stream, 1)
    assert submitted["event"] == "pending"
    assert '"id":"' + first["id"] + '"' in submitted["data"]

    # While nobody listens: a decision and a new request.
    await bot.decide(first["id"])
    second = await bot.submit(toolCallId="b")

    resume = {**headers, "Last-Event-ID": submitted["id"]}
    async with bot.http.get(bot.url + "/v1/events", headers=resume) as stream:
        missed = await read_sse(stream, 2)
    assert [e["event"] for e in missed] == ["approved", "pending"]
    assert second["id"] in missed[1]["data"]
    assert int(missed[0]["id"]) > int(submitted["id"])


async def test_concurrent_submissions_are_each_kept_and_a_conflict_undoes_only_itself(
    bot: Running,
) -> None:
    """Writes asked for together are committed together (one transaction, a savepoint each):
    the one that conflicts is refused alone, and every other is kept as answered."""
    first = await bot.submit(toolCallId="call_dup", args={"v": 1})
    bodies: list[dict[str, Any]] = [
        {"toolName": "deploy_service", "args": {"i": i}} for i in range(40)
    ]
    bodies.insert(20, {"toolName": "deploy_service", "toolCallId": "call_dup", "args": {"v": 2}})
    answers = await asyncio.gather(*(bot.call("POST", "/v1/approvals", json=b) for b in bodies))

    assert [status for status, _ in answers].count(201) == 40
    assert answers[20][0] == 409 and answers[20][1]["error"] == "conflict"
    for status, record in answers:
        if status == 201:
            assert await bot.call("GET", f"/v1/approvals/{record['id']}") == (200, record)
    status, kept = await bot.call("GET", f"/v1/approvals/{first['id']}")
    assert (status, kept["args"]) == (200, {"v": 1})
