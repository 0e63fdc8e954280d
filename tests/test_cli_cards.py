"""`approval-bot decide` updates the card wherever the bot runs: the CLI queues the card's
rewrite in the database (it needs no Slack token), and the running bot delivers it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.service import ApprovalService
from bot.slack.poster import SLACK_TOPIC
from bot.store import open_store
from tests.conftest import AGENT_TOKEN, until
from tests.dev_process import DevProcess, wait_for_exit
from tests.processes import ServeProcess
from tests.slack_support import actions_of, text_of
from tests.test_cli import run_cli
from tests.test_service import request


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[DevProcess]:
    async with aiohttp.ClientSession() as http:
        process = DevProcess(tmp_path, http)
        await process.start()
        try:
            yield process
        finally:
            await wait_for_exit(process)


async def test_a_cli_decision_rewrites_the_card_in_the_local_workspace(
    dev: DevProcess, tmp_path: Path
) -> None:
    submitted = await dev.submit(toolName="deploy_service", args={"version": "1.4.2"})
    card = (await dev.posted(submitted["id"]))["slack"]
    assert actions_of(await dev.message(card["channel"], card["ts"]))

    decided = run_cli(
        "decide", submitted["id"], "--approve", "--comment", "ship it", "--as", "carol",
        db_path=tmp_path / "approvals.db",
    )  # fmt: skip

    assert decided.returncode == 0, decided.stderr

    async def rewritten() -> dict[str, Any] | None:
        message = await dev.message(card["channel"], card["ts"])
        done = message is not None and not actions_of(message) and message["replies"]
        return message if done else None

    message = await until(rewritten, timeout=10)
    shown = json.dumps(message["blocks"])
    assert "Approved" in shown and "carol" in shown and "ship it" in shown
    (reply,) = message["replies"]
    assert "Approved" in reply["text"] and "ship it" in reply["text"]


async def test_a_cli_decision_made_while_the_bot_is_stopped_shows_once_it_is_back(
    dev: DevProcess, tmp_path: Path
) -> None:
    submitted = await dev.submit(toolName="deploy_service", args={"version": "1.4.2"})
    card = (await dev.posted(submitted["id"]))["slack"]
    assert await wait_for_exit(dev) == 0

    decided = run_cli("decide", submitted["id"], "--reject", db_path=tmp_path / "approvals.db")
    assert decided.returncode == 0, decided.stderr
    await dev.start()

    async def rewritten() -> dict[str, Any] | None:
        message = await dev.message(card["channel"], card["ts"])
        return message if message and not actions_of(message) and message["replies"] else None

    assert "Rejected" in json.dumps((await until(rewritten, timeout=10))["blocks"])


async def test_a_cli_decision_rewrites_the_card_of_serve(
    serve: ServeProcess, workspace: Any, db_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        await serve.start(http)
        body = {"toolName": "send_email", "args": {"to": "ceo@example.com"}}
        async with http.post(serve.url + "/v1/approvals", json=body, headers=headers) as r:
            approval_id = (await r.json())["id"]

        async def posted() -> Any:
            async with http.get(f"{serve.url}/v1/approvals/{approval_id}", headers=headers) as r:
                record = await r.json()
            return record["slack"] if record["slack"]["ts"] else None

        card = await until(posted, timeout=10)
        decided = run_cli("decide", approval_id, "--reject", "--comment", "no", db_path=db_path)
        assert decided.returncode == 0, decided.stderr

        async def rewritten() -> Any:
            message = workspace.message(card["channel"], card["ts"])
            return message if not actions_of(message) and message.replies else None

        message = await until(rewritten, timeout=10)
    assert "Rejected" in text_of(message)
    assert len(workspace.calls_to("chat.postMessage", ok=True)) == 2  # the card, the reply


async def test_no_card_work_is_queued_where_no_bot_ever_posted_a_card(
    service: ApprovalService, store_url: str
) -> None:
    """A database no Slack bot serves gets no Slack work from the CLI: nothing would ever
    deliver it."""
    approval, _ = await service.submit(request())

    decided = run_cli("decide", approval.id, "--approve", db_path=store_url)

    assert decided.returncode == 0, decided.stderr
    store = open_store(store_url)
    await store.open()
    try:
        assert await store.outbox_pending(SLACK_TOPIC) == 0
    finally:
        await store.close()
