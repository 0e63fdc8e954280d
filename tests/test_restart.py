"""kill -9 the bot: acknowledged work survives, and cards posted before still work after."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bot.devslack import Deliverer
from tests.conftest import AGENT_TOKEN, SIGNING_SECRET, until
from tests.processes import ServeProcess


async def card_posted(http: aiohttp.ClientSession, url: str, approval_id: str) -> Any:
    """The record once its card is posted, else None."""
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with http.get(f"{url}/v1/approvals/{approval_id}", headers=headers) as response:
        record = await response.json()
    return record if record["slack"]["ts"] else None


async def test_after_kill_9_old_cards_still_work_and_waiters_get_their_decision(
    serve: ServeProcess, workspace: Any
) -> None:
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        await serve.start(http)
        body = {"toolName": "deploy_service", "args": {"version": "1.4.2"}, "toolCallId": "c1"}
        async with http.post(serve.url + "/v1/approvals", json=body, headers=headers) as r:
            record = await r.json()

        async def posted() -> Any:
            return await card_posted(http, serve.url, record["id"])

        card = await until(posted, timeout=10)
        serve.kill()

        await serve.start(http)
        wait_url = f"{serve.url}/v1/approvals/{record['id']}/wait?timeout=20"
        waiter = asyncio.create_task(http.get(wait_url, headers=headers))
        async with Deliverer(workspace, serve.url + "/slack/events", SIGNING_SECRET) as hands:
            delivery = await hands.click(
                card["slack"]["channel"], card["slack"]["ts"], "approve", user="U0ALICE"
            )
        response = await asyncio.wait_for(waiter, 10)
        decided = await response.json()
        response.release()

    assert delivery.status == 200
    assert decided["status"] == "approved"
    assert decided["decision"]["decidedBy"] == "U0ALICE"

    async def rewritten() -> bool:  # the card updated, then a reply in its thread
        return bool(workspace.calls_to("chat.update", ok=True)) and (
            len(workspace.calls_to("chat.postMessage", ok=True)) == 2
        )

    await until(rewritten)


async def test_a_card_not_posted_before_kill_9_is_posted_after_restart(
    serve: ServeProcess, workspace: Any
) -> None:
    workspace.fail_next("chat.postMessage", status=503, times=100)
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        await serve.start(http)
        body = {"toolName": "send_email", "args": {"to": "ceo@example.com"}}
        async with http.post(serve.url + "/v1/approvals", json=body, headers=headers) as r:
            record = await r.json()
        await until(lambda: _tried(workspace), timeout=10)
        serve.kill()

        workspace.faults.clear()
        await serve.start(http)

        async def posted() -> Any:
            return await card_posted(http, serve.url, record["id"])

        await until(posted, timeout=20)

    assert len(workspace.calls_to("chat.postMessage", ok=True)) == 1


async def _tried(workspace: Any) -> bool:
    return bool(workspace.calls_to("chat.postMessage", ok=False))
