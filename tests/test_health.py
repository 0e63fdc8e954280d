"""`/healthz` proves the store can write, and nothing the bot says carries a file path or a
secret: not its 503s to agents, not its notes to Slack users, not a configuration error."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from bot.config import ConfigError, Settings
from tests.conftest import Running, SlackRig, bot_settings, pg_database, start_bot, until


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    with pg_database(pg_server) as url:
        yield url


@pytest.fixture
async def pg_bot(pg_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    settings = bot_settings(tmp_path / "unused.db", db=pg_url)
    server = await start_bot(settings)
    async with aiohttp.ClientSession() as http:
        yield Running(server, http, settings)
    await server.close()


async def health(bot: Running) -> tuple[int, Any]:
    return await asyncio.wait_for(bot.call("GET", "/healthz", token=None), 5)


async def test_healthz_fails_while_another_process_holds_the_write_lock(
    bot: Running, db_path: Path
) -> None:
    """It only read before: 200 while nothing could be written."""
    assert (await health(bot))[0] == 200
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        status, body = await health(bot)
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert (status, body["ok"]) == (503, False)
    assert "cannot be written" in body["checks"]["store"] or "locked" in body["checks"]["store"]
    assert str(db_path) not in str(body) and db_path.name not in str(body)
    assert (await until(lambda: _healthy(bot)))["ok"] is True  # and recovers


async def _healthy(bot: Running) -> Any:
    status, body = await health(bot)
    return body if status == 200 else None


async def test_healthz_fails_when_no_file_can_grow(bot: Running, db_path: Path) -> None:
    """A full disk, as the kernel tells it to SQLite: no write may extend a file (the
    process's file-size limit at one byte, SIGXFSZ ignored so the write fails instead)."""
    assert (await health(bot))[0] == 200
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, limits[1]))
    try:
        status, body = await health(bot)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)

    assert (status, body["ok"]) == (503, False)
    assert "cannot be used" in body["checks"]["store"]
    assert str(db_path.parent) not in str(body)


async def test_healthz_fails_when_postgres_cannot_write_in_time(
    pg_bot: Running, pg_url: str
) -> None:
    assert (await health(pg_bot))[0] == 200
    with psycopg.connect(pg_url) as other:  # a transaction that holds the health row
        other.execute("LOCK TABLE health IN ACCESS EXCLUSIVE MODE")
        status, body = await health(pg_bot)
        other.rollback()
    assert (status, body["ok"]) == (503, False)
    assert "password" not in str(body) and "cannot be used" in body["checks"]["store"]
    where = conninfo_to_dict(pg_url)
    for secret in (where["host"], where["dbname"], str(where.get("port", ""))):
        assert secret not in json.dumps(body), secret  # agents are not told where it is


async def test_no_database_path_reaches_agents_or_slack_users(rig: SlackRig, db_path: Path) -> None:
    """The path was in 503 answers to agents and in the ephemeral note to a clicker."""
    record = await rig.bot.submit()
    card = await rig.card(record["id"])
    other = sqlite3.connect(db_path, isolation_level=None)
    rig.bot.service.store.busy_timeout = 0.2  # type: ignore[attr-defined]
    try:
        other.execute("BEGIN EXCLUSIVE")
        status, answer = await rig.bot.call(
            "POST", "/v1/approvals", json={"toolName": "x", "args": {}}
        )
        await rig.slack.click(card.channel, card.ts, "approve", user="U0BOB")
        note = await until(lambda: _note(rig, "U0BOB"))
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert (status, answer["error"]) == (503, "unavailable")
    for said in (answer["message"], note.text):
        assert "locked" in said
        assert str(db_path.parent) not in said and db_path.name not in said


async def _note(rig: SlackRig, user: str) -> Any:
    return next(iter(rig.workspace.ephemerals_for(user)), None)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://hooks:s3cret-pw@example.com/in", id="scheme"),
        pytest.param("https://hooks:s3cret-pw@example.com:99999/in", id="port"),
        pytest.param("https://hooks:s3cret-pw@exa mple.com/in", id="space"),
        pytest.param("hooks:s3cret-pw@example.com", id="no-scheme"),
    ],
)
def test_a_bad_webhook_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.load(environ={"APPROVAL_WEBHOOK_URL": url}, env_file=None)
    assert "APPROVAL_WEBHOOK_URL" in str(refused.value)
    assert "s3cret-pw" not in str(refused.value)
