"""The gate cannot be talked around: an approval means a person allowed to approve saw exactly
this call and approved it. Each test is a way a hostile agent or a careless Slack user got a
call approved on an earlier version, through the real HTTP API and signed Slack payloads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import (
    Running,
    bot_settings,
    start_bot,
    until,
)


@pytest.fixture
async def api(db_path: Path, tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    """The bot without Slack, with a routing file of the test's own."""
    servers: list[tuple[Any, aiohttp.ClientSession]] = []

    async def make(config: str = "") -> Running:
        path = tmp_path / "approvals.toml"
        path.write_text(config)
        settings = bot_settings(db_path, config=str(path))
        server = await start_bot(settings)
        http = aiohttp.ClientSession()
        servers.append((server, http))
        return Running(server, http, settings)

    yield make
    for server, http in servers:
        await http.close()
        await server.close()


async def refused(bot: Running, **fields: Any) -> tuple[str, str]:
    """Submit, expecting 422: the field at fault and the message."""
    body = {"toolName": "deploy_service", "args": {"version": "1.4.2"}, **fields}
    status, answer = await bot.call("POST", "/v1/approvals", json=body)
    assert (status, answer["error"]) == (422, "invalid"), answer
    return answer["path"], answer["message"]


SEND_EMAIL_APPROVES = """
[[rules]]
tools = ["send_email"]
on_timeout = "approve"
timeout_seconds = 3600
approvers = ["U0ALICE", "U0BOB"]
required_approvals = 2
"""


# -- 1. approved by waiting, with no human -------------------------------------------------


async def test_a_request_cannot_make_itself_approve_at_timeout(api: Any) -> None:
    """1a: no rule matches; `onTimeout: approve` after 1 s would approve with nobody looking."""
    bot = await api()
    path, message = await refused(bot, onTimeout="approve", timeoutSeconds=1)
    assert path == "onTimeout" and "approves itself by waiting" in message
    _, page = await bot.call("GET", "/v1/approvals")
    assert page["items"] == []  # nothing was stored


async def test_a_request_cannot_shorten_a_rule_that_approves_at_timeout(api: Any) -> None:
    """1b: the rule approves after 3600 s with two named approvers; 1 s would skip them."""
    bot = await api(SEND_EMAIL_APPROVES)
    path, message = await refused(bot, toolName="send_email", timeoutSeconds=1)
    assert path == "timeoutSeconds" and "never shorten" in message
    # asking for approve explicitly, shorter, is refused the same way
    path, _ = await refused(bot, toolName="send_email", onTimeout="approve", timeoutSeconds=60)
    assert path == "timeoutSeconds"


async def test_a_request_may_lengthen_a_wait_or_make_it_stricter(api: Any) -> None:
    bot = await api(SEND_EMAIL_APPROVES)
    longer = await bot.submit(toolName="send_email", timeoutSeconds=7200)
    assert (longer["timeoutSeconds"], longer["onTimeout"]) == (7200, "approve")
    stricter = await bot.submit(toolName="send_email", onTimeout="reject", timeoutSeconds=1)
    assert (stricter["timeoutSeconds"], stricter["onTimeout"]) == (1, "reject")
    expired = await until(lambda: _pending_left(bot, stricter["id"]), timeout=5)
    assert (expired["status"], expired["decision"]["action"]) == ("expired", "timeout")
    # with no rule, a shorter wait that ends in a rejection is the agent's own business
    free = await bot.submit(toolName="read_file", timeoutSeconds=5, onTimeout="escalate")
    assert (free["timeoutSeconds"], free["onTimeout"]) == (5, "escalate")


async def _pending_left(bot: Running, approval_id: str) -> Any:
    _, record = await bot.call("GET", f"/v1/approvals/{approval_id}")
    return record if record["status"] != "pending" else None


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("\u200bdeploy_prod", id="zero-width-space"),
        pytest.param("deploy_prod\u200d", id="zero-width-joiner"),
        pytest.param("\u202edorp_yolped", id="bidi-override"),
        pytest.param("d\u0435ploy_prod", id="cyrillic-e"),
        pytest.param("deploy prod", id="space"),
        pytest.param("deploy_prod\n", id="newline"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("<!channel>", id="markup"),
    ],
)
async def test_a_tool_name_that_could_dodge_its_rule_is_refused(api: Any, name: str) -> None:
    """1c: `\\u200bdeploy_prod` looked the same on the card and escaped the `deploy_*` rule."""
    bot = await api('[[rules]]\ntools = ["deploy_*"]\napprovers = ["U0ALICE"]\n')
    path, _ = await refused(bot, toolName=name)
    assert path == "toolName"


async def test_tool_names_of_every_framework_are_accepted(api: Any) -> None:
    bot = await api()
    for name in ("deploy_service", "mcp__github__create_issue", "fs.write", "ns:tool/v2-b"):
        record = await bot.submit(toolName=name)
        assert record["toolName"] == name


# -- 2. the agent picks its approver ---------------------------------------------------------


@pytest.mark.parametrize(
    "channel",
    [
        pytest.param("U0ACCOMPLICE", id="user"),
        pytest.param("W0ACCOMPLICE", id="enterprise-user"),
        pytest.param("D0ACCOMPLICE", id="dm"),
        pytest.param("@accomplice", id="at-name"),
    ],
)
async def test_a_request_cannot_send_its_card_to_a_person(api: Any, channel: str) -> None:
    """2: `channel: U0ACCOMPLICE` put the card in that person's DM, for them alone to approve."""
    bot = await api()
    path, message = await refused(bot, channel=channel)
    assert path == "channel" and "does not pick its approver" in message


async def test_the_rules_channel_wins_over_the_requests(api: Any) -> None:
    bot = await api('[[rules]]\ntools = ["deploy_*"]\nchannel = "C0DEPLOY"\n')
    assert (await bot.submit(channel="C0OPS"))["channel"] == "C0DEPLOY"
    assert (await bot.submit(toolName="read_file", channel="#ops"))["channel"] == "#ops"


# -- 3. the agent removes Reject -------------------------------------------------------------


async def test_a_request_cannot_take_reject_away(api: Any) -> None:
    """3: `allowedDecisions: ["approve"]` left reviewers no way to say no."""
    bot = await api()
    path, message = await refused(bot, allowedDecisions=["approve"])
    assert path == "allowedDecisions" and "always say no" in message
    narrowed = await bot.submit(allowedDecisions=["reject", "approve"])
    assert narrowed["allowedDecisions"] == ["approve", "reject"]


async def test_a_routing_file_cannot_take_reject_away(tmp_path: Path) -> None:
    from bot.config import ConfigError
    from bot.policy import load_routing

    path = tmp_path / "approvals.toml"
    path.write_text('[[rules]]\ntools = ["x"]\nallowed_decisions = ["approve", "edit"]\n')
    with pytest.raises(ConfigError, match=r"allowed_decisions.*always say no"):
        load_routing(path)


# -- 4. a reused toolCallId runs another tool ------------------------------------------------


async def test_a_tool_call_id_is_never_reused_for_another_call(bot: Running) -> None:
    """4: read_file's approved record came back for drop_database with the same id."""
    first = await bot.submit(toolName="read_file", toolCallId="call_0", args={"path": "/srv"})
    status, _ = await bot.decide(first["id"])
    assert status == 200

    for other in (
        {"toolName": "drop_database", "args": {"path": "/srv"}},
        {"toolName": "read_file", "args": {"path": "/etc"}},
    ):
        body = {"toolCallId": "call_0", **other}
        status, answer = await bot.call("POST", "/v1/approvals", json=body)
        assert (status, answer["error"]) == (409, "conflict"), answer
        assert "call_0" in answer["message"] and "approved" not in json.dumps(answer)

    body = {"toolName": "read_file", "toolCallId": "call_0", "args": {"path": "/srv"}}
    status, same = await bot.call("POST", "/v1/approvals", json=body)
    assert (status, same["id"], same["status"]) == (200, first["id"], "approved")
