"""The workspace page's endpoints for issue 15: every waiting agent in the agent panel, slash
commands typed in the composer, a click's note under its card, and no modal after a reload.

All through the real dev app on a real port: the agent API, signed Slack requests to the bot,
and `/dev/state` as the page reads it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.sdk import ApprovalClient
from tests.conftest import until
from tests.test_dev import Dev, running_dev


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[Dev]:
    async with running_dev(tmp_path) as running:
        yield running


async def _waiting(dev: Dev) -> list[dict[str, Any]]:
    return list((await dev.state())["waiting"])


async def test_an_agent_waiting_over_the_api_is_in_the_agent_panel(dev: Dev) -> None:
    """Agents that came in over the API (curl, `approval-bot demo`, an SDK script) never
    appeared on the page, even while blocked in `/wait`."""
    async with ApprovalClient(dev.url, token=dev.settings.api_token) as client:
        approval = await client.submit(
            "rotate_keys",
            {"key": "root"},
            channel="#ops",
            requester={"agent": "<b>key-bot</b>"},
        )
        assert await _waiting(dev) == []  # submitted, not waiting yet: nobody is shown
        waiter = asyncio.create_task(client.wait(approval.id, timeout=30))

        [agent] = await until(lambda: _waiting(dev))
        card = await dev.card(approval.id)
        assert agent["approvalId"] == approval.id
        assert (agent["toolName"], agent["agent"]) == ("rotate_keys", "<b>key-bot</b>")
        assert agent["channel"] == card["channel"] == "C0OPS"  # where the card is, by id
        assert agent["waits"] == 1
        assert 0 <= time.time() - agent["since"] < 10  # waiting since it asked

        status, _ = await dev.click(card, "approve", "U0ALICE")
        assert status == 200
        decided = await asyncio.wait_for(waiter, 10)
        assert decided.status.value == "approved"
    assert (await dev.state())["waiting"] == []  # decided: nobody waits on it any more


async def test_the_pages_own_runs_are_not_listed_twice(dev: Dev) -> None:
    run = await dev.simulate("deploy")
    assert run["state"] == "waiting"
    await asyncio.sleep(0.6)  # the panel's watcher has seen the run's wait
    assert (await dev.state())["waiting"] == []


async def test_a_state_request_wakes_when_an_agent_starts_waiting(dev: Dev) -> None:
    async with ApprovalClient(dev.url, token=dev.settings.api_token) as client:
        approval = await client.submit("send_email", {"to": "x@example.com"})
        await dev.card(approval.id)
        seq = (await dev.state())["seq"]
        asking = asyncio.create_task(dev.state(since=str(seq), wait="20"))
        await asyncio.sleep(0.3)
        assert not asking.done()  # nothing changed yet

        waiter = asyncio.create_task(client.wait(approval.id, timeout=30))
        state = await asyncio.wait_for(asking, 5)
        assert [agent["approvalId"] for agent in state["waiting"]] == [approval.id]
        waiter.cancel()


async def test_a_slash_command_typed_in_the_page_is_sent_and_answered(dev: Dev) -> None:
    """`/approvals` typed on the page was posted as a message; it is a slash command, sent
    signed as Slack sends it, and its answer is shown to its user only."""
    run = await dev.simulate("email")
    assert "/approvals" in (await dev.state())["commands"]

    status, answer = await dev.post(
        "/dev/command",
        {"user": "U0BOB", "channel": "C0OPS", "command": "/approvals", "text": ""},
    )

    assert status == 200 and answer["ok"], answer
    bobs = await until(lambda: _ephemerals(dev, "U0BOB"))
    assert any(run["approvalId"] in str(note) for note in bobs)
    assert all(note["channel"] == "C0OPS" for note in bobs)
    assert await _ephemerals(dev, "U0ALICE") == []
    messages = (await dev.state())["messages"]["C0OPS"]
    assert not any("/approvals" in m.get("text", "") for m in messages)  # nothing posted


async def test_an_unknown_command_is_refused_and_posts_nothing(dev: Dev) -> None:
    before = (await dev.state())["messages"]["C0OPS"]
    status, answer = await dev.post(
        "/dev/command", {"user": "U0BOB", "channel": "C0OPS", "command": "/deploy"}
    )
    assert (status, answer["message"]) == (404, "/deploy is not a valid command")
    assert (await dev.state())["messages"]["C0OPS"] == before
    assert await _ephemerals(dev, "U0BOB") == []


async def _ephemerals(dev: Dev, user: str) -> list[dict[str, Any]]:
    return list((await dev.state(user))["ephemerals"])


async def test_a_refused_clicks_note_is_placed_under_the_card_clicked(dev: Dev) -> None:
    """A refusal landed at the bottom of the channel; it belongs under the card clicked."""
    run = await dev.simulate("transfer")  # requested for dave: dave may not approve it
    card = await dev.card(run["approvalId"])
    status, _ = await dev.click(card, "approve", "U0DAVE")
    assert status == 200

    [note] = await until(lambda: _ephemerals(dev, "U0DAVE"))
    assert "cannot approve" in note["text"]
    assert note["under"] == card["ts"]


async def test_a_reload_closes_the_modals_left_open(dev: Dev) -> None:
    """Slack closes a client's modals when it reloads; the page's came back."""
    run = await dev.simulate("deploy")
    card = await dev.card(run["approvalId"])
    await dev.click(card, "reject", "U0ALICE")
    await dev.modal("U0ALICE")
    bobs = dev.ws.open_view(
        {"type": "modal", "title": {"type": "plain_text", "text": "B"}}, user="U0BOB"
    )

    status, answer = await dev.post("/dev/opened", {"user": "U0ALICE"})

    assert status == 200 and len(answer["closed"]) == 1
    assert (await dev.state("U0ALICE"))["modals"] == []
    assert [m["id"] for m in (await dev.state("U0BOB"))["modals"]] == [bobs.id]
    assert not dev.ws.calls_to("views.update")
