"""awaithumans 0.1.12 from PyPI, run as its users run it: `awaithumans serve` (FastAPI on
uvicorn, SQLite) in its own process, and agents calling its SDK's `await_human()`.

Its SDK long-polls `GET /api/tasks/{id}/poll`; the server answers that by re-reading the task
from its database once a second until it is terminal, so an agent resumes up to a second after
the decision. The person's decision is `POST /api/tasks/{id}/complete` with the admin token.

The server needs `awaithumans[server]`, whose dependencies (FastAPI, SQLAlchemy, asyncpg…) are
best kept out of the bot's environment: point `--awaithumans` at the `awaithumans` script of
an environment that has it. The SDK (`pip install awaithumans==0.1.12`: httpx and pydantic
only) runs in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import BaseModel

from bench.loops import Loop
from bench.rig import free_port

__all__ = [
    "VERSION",
    "AwaitHumans",
    "Unavailable",
    "check_client",
    "find_server",
    "open_awaithumans",
]

VERSION = "0.1.12"
TOKEN = "bench-awaithumans-admin"
START_SECONDS = 60.0


class Unavailable(Exception):
    """awaithumans cannot run here; the message says exactly why."""


class Deploy(BaseModel):
    version: str


class Verdict(BaseModel):
    approved: bool


def find_server(explicit: str | None) -> Path:
    """The `awaithumans` script to serve with: `explicit`, `$AWAITHUMANS_BIN`, the one beside
    this Python, or the one on PATH."""
    for candidate in (
        explicit,
        os.environ.get("AWAITHUMANS_BIN"),
        str(Path(sys.executable).with_name("awaithumans")),
        shutil.which("awaithumans"),
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate).absolute()  # it is run from a temporary directory
    raise Unavailable(
        f"no `awaithumans` script found; pip install 'awaithumans[server]=={VERSION}'"
    )


def check_client() -> str:
    """The SDK's installed version, which must be the one compared."""
    try:
        version = importlib.metadata.version("awaithumans")
    except importlib.metadata.PackageNotFoundError:
        raise Unavailable(
            f"the awaithumans SDK is not installed here (pip install awaithumans=={VERSION})"
        ) from None
    if version != VERSION:
        raise Unavailable(f"awaithumans {version} is installed; the comparison is with {VERSION}")
    return version


@dataclass
class AwaitHumans:
    """A running awaithumans server and an HTTP session for the person deciding."""

    url: str
    http: aiohttp.ClientSession

    async def task_id(self, key: str, timeout: float = 10) -> str:
        """The id of the task created under idempotency key `key`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.http.get(
                f"{self.url}/api/tasks?limit=200", headers=_admin()
            ) as response:
                tasks: list[dict[str, Any]] = await response.json()
            for task in tasks:
                if task["idempotency_key"] == key:
                    return str(task["id"])
            await asyncio.sleep(0.05)
        raise RuntimeError(f"awaithumans never created the task {key}")

    async def complete(self, task_id: str) -> None:
        """The person's decision: approve."""
        body = {"response": {"approved": True}, "completed_by_email": "bench@example.com"}
        url = f"{self.url}/api/tasks/{task_id}/complete"
        async with self.http.post(url, json=body, headers=_admin()) as response:
            if response.status != 200:
                raise RuntimeError(f"complete answered {response.status}: {await response.text()}")

    def loop(self) -> Loop:
        """An agent calling `await_human()`; a person completing its task after `think` s."""
        await_human = importlib.import_module("awaithumans").await_human

        async def loop(index: int, think: float) -> float:
            key = f"bench-{secrets.token_hex(4)}-{index}"
            agent = asyncio.create_task(
                await_human(
                    task=f"Deploy build {index}?",
                    payload_schema=Deploy,
                    payload=Deploy(version=f"1.{index}"),
                    response_schema=Verdict,
                    timeout_seconds=600,
                    idempotency_key=key,
                    server_url=self.url,
                    api_key=TOKEN,
                )
            )
            started = time.perf_counter()
            task_id = await self.task_id(key)
            await asyncio.sleep(max(0.0, think - (time.perf_counter() - started)))
            sent = time.perf_counter()
            await self.complete(task_id)
            verdict = await agent
            resumed = time.perf_counter()
            if not verdict.approved:
                raise RuntimeError(f"awaithumans returned {verdict}")
            return resumed - sent

        return loop


def _admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def open_awaithumans(server: Path) -> AsyncIterator[AwaitHumans]:
    """Serve awaithumans on 127.0.0.1 from a fresh SQLite file; stop it on the way out."""
    check_client()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="awaithumans-bench-") as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWAITHUMANS_")},
            "HOME": tmp,  # anything it writes for its users stays in here
            "AWAITHUMANS_DB_PATH": str(Path(tmp) / "awaithumans.db"),
            "AWAITHUMANS_PAYLOAD_KEY": secrets.token_urlsafe(32),
            "AWAITHUMANS_ADMIN_API_TOKEN": TOKEN,
            "AWAITHUMANS_PUBLIC_URL": url,
        }
        log = Path(tmp) / "server.log"
        with log.open("wb") as out:
            command = [str(server), "serve", "--host", "127.0.0.1", "--port", str(port)]
            process = subprocess.Popen(
                [*command, "--log-level", "warning"],
                env=env,
                cwd=tmp,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            async with aiohttp.ClientSession() as http:
                await _ready(process, url, http, log)
                # the SDK prints a banner per task on stderr; keep the report readable
                with contextlib.redirect_stderr(io.StringIO()):
                    yield AwaitHumans(url, http)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


async def _ready(
    process: subprocess.Popen[bytes], url: str, http: aiohttp.ClientSession, log: Path
) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url + "/api/health") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    lines = log.read_text(errors="replace").strip().splitlines()
    why = next((line for line in lines if line.strip()), "no output")
    if process.poll() is None:
        raise Unavailable(f"`awaithumans serve` did not answer within {START_SECONDS:g}s: {why}")
    raise Unavailable(f"`awaithumans serve` exited with {process.returncode}: {why}")
