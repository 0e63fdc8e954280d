"""Shared fixtures: a real SQLite file, the real service, and the real bot on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import BOT, create_app
from bot.config import Settings
from bot.service import ApprovalService
from bot.store import SQLiteStore

AGENT_TOKEN = "agent-token"
ADMIN_TOKEN = "admin-token"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "approvals.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(db_path)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def service(store: SQLiteStore) -> ApprovalService:
    return ApprovalService(store, default_channel="C0OPS")


@dataclass
class Running:
    """A bot listening on 127.0.0.1 and an HTTP client for it."""

    server: TestServer
    http: aiohttp.ClientSession
    settings: Settings

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def service(self) -> ApprovalService:
        return self.server.app[BOT].service

    async def call(
        self, method: str, path: str, *, token: str | None = AGENT_TOKEN, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(
            method, self.url + path, headers=headers, **kwargs
        ) as response:
            body = await response.json(content_type=None)
            return response.status, body

    async def submit(self, **fields: Any) -> dict[str, Any]:
        body = {"toolName": "deploy_service", "args": {"version": "1.4.2"}, **fields}
        status, record = await self.call("POST", "/v1/approvals", json=body)
        assert status in (200, 201), record
        return record

    async def decide(self, approval_id: str, **body: Any) -> tuple[int, Any]:
        body = {"approved": True, "decidedBy": "alice", **body}
        return await self.call(
            "POST", f"/v1/approvals/{approval_id}/decision", token=ADMIN_TOKEN, json=body
        )


def bot_settings(db_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db": str(db_path),
        "api_token": AGENT_TOKEN,
        "admin_token": ADMIN_TOKEN,
        "channel": "C0OPS",
        **overrides,
    }
    return Settings(**values)


async def start_bot(settings: Settings, port: int | None = None) -> TestServer:
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    return server


@pytest.fixture
async def bot(db_path: Path) -> AsyncIterator[Running]:
    settings = bot_settings(db_path)
    server = await start_bot(settings)
    async with aiohttp.ClientSession() as http:
        yield Running(server, http, settings)
    await server.close()


def app_of(server: TestServer) -> web.Application:
    return server.app


# -- Slack: the devslack emulator as the fake Web API, interactions signed for real ----------

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"


@dataclass
class SlackRig:
    """The bot wired to a real fake Slack, plus a person's hands to click with."""

    bot: Running
    workspace: Any
    slack: Any

    async def card(self, approval_id: str, timeout: float = 5) -> Any:
        """The card message once it is posted and stored on the approval."""
        record = await until(
            lambda: self.record_if(approval_id, lambda r: r["slack"]["ts"]), timeout
        )
        return self.workspace.message(record["slack"]["channel"], record["slack"]["ts"])

    async def record_if(self, approval_id: str, test: Any) -> Any:
        _, record = await self.bot.call("GET", f"/v1/approvals/{approval_id}")
        return record if test(record) else None

    async def decided(self, approval_id: str, timeout: float = 5) -> dict[str, Any]:
        return await until(
            lambda: self.record_if(approval_id, lambda r: r["status"] != "pending"), timeout
        )

    async def click(self, approval_id: str, action: str, user: str) -> Any:
        card = await self.card(approval_id)
        return await self.slack.click(card.channel, card.ts, action, user=user)


async def until(probe: Any, timeout: float = 5, interval: float = 0.02) -> Any:
    """The first truthy result of `await probe()` within `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def slack_settings(db_path: Path, api_url: str, **overrides: Any) -> Settings:
    return bot_settings(
        db_path,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=api_url,
        **overrides,
    )


async def start_slack_bot(settings: Settings, port: int | None = None) -> TestServer:
    from bot.slack_setup import SlackSurface

    server = TestServer(
        create_app(settings, extensions=[SlackSurface(settings)]), host="127.0.0.1", port=port
    )
    await server.start_server()
    return server


@pytest.fixture
async def workspace() -> AsyncIterator[Any]:
    from bot.devslack import Workspace, start_slack_api

    ws = Workspace()
    runner, base_url = await start_slack_api(ws, bot_token=BOT_TOKEN)
    ws.base_url = base_url
    yield ws
    await runner.cleanup()


@pytest.fixture
async def rig(db_path: Path, workspace: Any) -> AsyncIterator[SlackRig]:
    from bot.devslack import Deliverer

    settings = slack_settings(db_path, workspace.base_url)
    server = await start_slack_bot(settings)
    async with aiohttp.ClientSession() as http:
        running = Running(server, http, settings)
        async with Deliverer(workspace, running.url + "/slack/events", SIGNING_SECRET) as hands:
            yield SlackRig(running, workspace, hands)
    await server.close()
