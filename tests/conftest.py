"""Shared fixtures: a real store (SQLite file, PostgreSQL database), the real service, and the
real bot on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import aiohttp
import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import BOT, create_app
from bot.config import Settings
from bot.edge import BotRunner, loop_factory
from bot.sdk import ApprovalClient
from bot.service import ApprovalService
from bot.store import SQLiteStore, Store, open_store

if TYPE_CHECKING:
    from tests.processes import ServeProcess

AGENT_TOKEN = "agent-token"
ADMIN_TOKEN = "admin-token"


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Any:
    """Every test runs on the event loop `approval-bot serve` runs on (uvloop's where it is
    installed): what the tests see is what the bot does in production."""
    factory = loop_factory()
    return None if factory is None else {"serve-loop": factory}


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collecting built (every framework the adapters import) leaves the collector's
    full passes, and so does each test module's survivors once it ends: a full pass walks
    every tracked object, and over a million of them held this process 0.3-1.5 s a pass on
    two busy cores, long enough to fail a test that allows a call one second."""
    gc.collect()
    gc.freeze()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if getattr(nextitem, "module", None) is not getattr(item, "module", None):
        gc.collect()
        gc.freeze()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "approvals.db"


# -- the store, on each engine: a SQLite file, and a fresh database on a PostgreSQL server ----

PG_SCRIPT = Path(__file__).parent.parent / "scripts" / "pg-test-server"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server's URL: `APPROVAL_TEST_PG_URL`, else a throwaway cluster for the
    session (`scripts/pg-test-server`). Fails, never skips, when there is none."""
    if url := os.environ.get("APPROVAL_TEST_PG_URL"):
        yield url
        return
    started = subprocess.run(
        [str(PG_SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False
    )
    if started.returncode != 0:
        pytest.fail(
            "the PostgreSQL tests need a server: scripts/pg-test-server start failed "
            f"({started.stderr.strip() or started.returncode}); install Debian's postgresql "
            "package or set APPROVAL_TEST_PG_URL",
            pytrace=False,
        )
    exported = dict(
        line.removeprefix("export ").split("=", 1)
        for line in started.stdout.splitlines()
        if line.startswith("export ")
    )
    try:
        yield exported["APPROVAL_TEST_PG_URL"]
    finally:
        subprocess.run(
            [str(PG_SCRIPT), "stop", exported["APPROVAL_TEST_PG_DIR"]], timeout=60, check=False
        )


@contextlib.contextmanager
def pg_database(server: str) -> Iterator[str]:
    """A new, empty database on `server` (its URL), dropped afterwards."""
    name = f"test_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f"CREATE DATABASE {name}".encode())
    except psycopg.OperationalError as exc:
        pytest.fail(f"the PostgreSQL test server is unreachable: {exc}", pytrace=False)
    try:
        yield urlparse(server)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())


@pytest.fixture(
    params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres")]
)
def store_url(request: pytest.FixtureRequest, db_path: Path) -> Iterator[str]:
    """`APPROVAL_DB` for one test, on each engine in turn."""
    if request.param == "sqlite":
        yield str(db_path)
        return
    with pg_database(request.getfixturevalue("pg_server")) as url:
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    store = open_store(store_url)
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


class BotServer(TestServer):
    """aiohttp's test server on the runner `serve` uses (`BotRunner`: the edge's connection
    handling, long polls parked outside aiohttp)."""

    async def _make_runner(self, **kwargs: Any) -> BotRunner:
        return BotRunner(self.app, **kwargs)


async def start_bot(settings: Settings, port: int | None = None) -> TestServer:
    server = BotServer(create_app(settings), host="127.0.0.1", port=port)
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


# -- Slack: the devslack emulator as the Web API, interactions signed for real -----------

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"


@dataclass
class SlackRig:
    """The bot wired to the local Slack emulator, plus a person's hands to click with."""

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
    from bot.slack.surface import SlackSurface

    server = BotServer(
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


@pytest.fixture
async def client(rig: SlackRig) -> AsyncIterator[ApprovalClient]:
    """An agent's SDK client on the rig's bot (files about other clients name their own)."""
    async with ApprovalClient(rig.bot.url, AGENT_TOKEN) as agent_client:
        yield agent_client


@contextlib.asynccontextmanager
async def slack_replicas(
    pg_server: str, workspace: Any, config: Path, count: int = 2
) -> AsyncIterator[list[SlackRig]]:
    """`count` bots on one throwaway PostgreSQL database and one Slack, routed by `config`,
    each with its own Slack hands."""
    from bot.devslack import Deliverer

    with pg_database(pg_server) as url:
        async with contextlib.AsyncExitStack() as stack:
            rigs = []
            for _ in range(count):
                settings = slack_settings(url, workspace.base_url, config=str(config))  # type: ignore[arg-type]
                server = await start_slack_bot(settings)
                stack.push_async_callback(server.close)
                http = await stack.enter_async_context(aiohttp.ClientSession())
                events = str(server.make_url("/slack/events"))
                hands = await stack.enter_async_context(
                    Deliverer(workspace, events, SIGNING_SECRET)
                )
                rigs.append(SlackRig(Running(server, http, settings), workspace, hands))
            yield rigs


RigFactory = Callable[..., Awaitable[SlackRig]]


@pytest.fixture
async def make_rig(db_path: Path, workspace: Any, tmp_path: Path) -> AsyncIterator[RigFactory]:
    """`await make_rig(toml)`: the bot on the local Slack with a routing file of the test's own."""
    from bot.devslack import Deliverer

    started: list[tuple[TestServer, aiohttp.ClientSession, Deliverer]] = []

    async def make(config: str = "") -> SlackRig:
        path = tmp_path / "approvals.toml"
        path.write_text(config)
        settings = slack_settings(db_path, workspace.base_url, config=str(path))
        server = await start_slack_bot(settings)
        http = aiohttp.ClientSession()
        hands = Deliverer(workspace, str(server.make_url("/slack/events")), SIGNING_SECRET)
        started.append((server, http, hands))
        return SlackRig(Running(server, http, settings), workspace, hands)

    yield make
    for server, http, hands in started:
        await hands.close()
        await http.close()
        await server.close()


@pytest.fixture
def serve(db_path: Path, workspace: Any) -> Iterator[ServeProcess]:
    """`python -m bot serve` as a real process (not started yet) on the test's SQLite file and
    the devslack Web API; stopped afterwards if it still runs."""
    from tests.processes import ServeProcess

    process = ServeProcess(db_path, workspace.base_url, db_path.parent)
    yield process
    process.stop()
