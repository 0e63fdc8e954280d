"""kill -9 the bot: acknowledged work survives, and cards posted before still work after."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.devslack import Deliverer
from tests.conftest import AGENT_TOKEN, BOT_TOKEN, SIGNING_SECRET, until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    """`approval-bot serve` as a real process that can be killed without warning."""

    def __init__(self, db_path: Path, api_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "APPROVAL_DB": str(db_path),
            "APPROVAL_API_TOKEN": AGENT_TOKEN,
            "APPROVAL_CHANNEL": "C0OPS",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": api_url,
        }
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=Path(self.env["APPROVAL_DB"]).parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        async def healthy() -> bool:
            try:
                async with http.get(self.url + "/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await until(healthy, timeout=20, interval=0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


async def card_posted(http: aiohttp.ClientSession, url: str, approval_id: str) -> Any:
    """The record once its card is posted, else None."""
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with http.get(f"{url}/v1/approvals/{approval_id}", headers=headers) as response:
        record = await response.json()
    return record if record["slack"]["ts"] else None


@pytest.fixture
async def bot_process(db_path: Path, workspace: Any) -> AsyncIterator[BotProcess]:
    bot = BotProcess(db_path, workspace.base_url)
    yield bot
    if bot.process is not None and bot.process.poll() is None:
        bot.kill()


async def test_after_kill_9_old_cards_still_work_and_waiters_get_their_decision(
    bot_process: BotProcess, workspace: Any
) -> None:
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        await bot_process.start(http)
        body = {"toolName": "deploy_service", "args": {"version": "1.4.2"}, "toolCallId": "c1"}
        async with http.post(bot_process.url + "/v1/approvals", json=body, headers=headers) as r:
            record = await r.json()

        async def posted() -> Any:
            return await card_posted(http, bot_process.url, record["id"])

        card = await until(posted, timeout=10)
        bot_process.kill()

        await bot_process.start(http)
        wait_url = f"{bot_process.url}/v1/approvals/{record['id']}/wait?timeout=20"
        waiter = asyncio.create_task(http.get(wait_url, headers=headers))
        async with Deliverer(workspace, bot_process.url + "/slack/events", SIGNING_SECRET) as hands:
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
    bot_process: BotProcess, workspace: Any
) -> None:
    workspace.fail_next("chat.postMessage", status=503, times=100)
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        await bot_process.start(http)
        body = {"toolName": "send_email", "args": {"to": "ceo@example.com"}}
        async with http.post(bot_process.url + "/v1/approvals", json=body, headers=headers) as r:
            record = await r.json()
        await until(lambda: _tried(workspace), timeout=10)
        bot_process.kill()

        workspace.faults.clear()
        await bot_process.start(http)

        async def posted() -> Any:
            return await card_posted(http, bot_process.url, record["id"])

        await until(posted, timeout=20)

    assert len(workspace.calls_to("chat.postMessage", ok=True)) == 1


async def _tried(workspace: Any) -> bool:
    return bool(workspace.calls_to("chat.postMessage", ok=False))
