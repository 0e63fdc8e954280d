"""Measure 7: a click on one replica wakes an agent waiting on another (PostgreSQL).

Starts `replicas` × `approval-bot serve` on one fresh PostgreSQL database, with the local
Slack emulator as their shared Web API. The server is `APPROVAL_TEST_PG_URL` when set (as
`.ci/run` sets it), else a throwaway cluster from `scripts/pg-test-server`; with neither, the
measure says why it was skipped. Requests are submitted through replica B (spread over
channels, so Slack's per-channel pace does not hold the cards back), one agent per approval
waits on replica C (`GET /v1/approvals/{id}/wait`), and Approve is clicked on each card through
replica A, `concurrency` at a time — or, with `rate`, sent at that many a second whatever the
answers, spread over every replica in turn (the load a busy team puts on a deployment), with
the samples of clicks on the agents' own replica left out. One sample per cross-replica click:
from sending it to the agent's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import aiohttp
import psycopg

from bench.rig import (
    AGENT_TOKEN,
    SIGNING_SECRET,
    SLACK_TOKEN,
    START_SECONDS,
    bot_environment,
    free_port,
)
from bench.stats import Latency
from bot.devslack import Deliverer, Workspace, start_slack_api
from bot.slack.cards import APPROVE_ACTION

__all__ = ["Replicas", "measure_replicas"]

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = ROOT / "scripts" / "pg-test-server"
AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}


@dataclass(frozen=True)
class Replicas:
    replicas: int
    approvals: int
    #: clicks in flight at once (each holds its slot until its agent woke)
    concurrency: int
    #: click on replica A → agent on replica C answered; None when not measured
    ms: Latency | None
    seconds: float = 0.0
    #: why it was not measured (no PostgreSQL here)
    skipped: str | None = None
    #: clicks a second, sent whatever the answers and spread over the replicas (None: sent
    #: `concurrency` at a time, all on replica A)
    rate: float | None = None


class NoPostgres(Exception):
    """No PostgreSQL server to measure on."""


def _start_cluster() -> tuple[str, str]:
    """(URL, directory) of a throwaway cluster, or NoPostgres saying why there is none."""
    try:
        started = subprocess.run(
            [str(PG_SERVER), "start"], capture_output=True, text=True, check=True, timeout=300
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise NoPostgres(f"no PostgreSQL: {detail.strip().splitlines()[-1]}") from exc
    exported = dict(
        line.removeprefix("export ").split("=", 1)
        for line in started.stdout.splitlines()
        if line.startswith("export ")
    )
    return exported["APPROVAL_TEST_PG_URL"], exported["APPROVAL_TEST_PG_DIR"]


@asynccontextmanager
async def _database() -> AsyncIterator[str]:
    """A fresh database on the test server (or on a throwaway cluster), dropped afterwards."""
    server, cluster = os.environ.get("APPROVAL_TEST_PG_URL", ""), None
    if not server:
        server, cluster = await asyncio.to_thread(_start_cluster)
    name = f"bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}".encode())
        try:
            yield urlparse(server)._replace(path=f"/{name}").geturl()
        finally:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())
    finally:
        if cluster is not None:
            subprocess.run([str(PG_SERVER), "stop", cluster], check=False)


@asynccontextmanager
async def _replicas(
    count: int, db_url: str, slack_api_url: str, http: aiohttp.ClientSession
) -> AsyncIterator[list[str]]:
    """`count` serve processes on one database; their base URLs once all are healthy."""
    ports = [free_port() for _ in range(count)]
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        env = {**bot_environment(Path(tmp), slack_api_url), "APPROVAL_DB": db_url}
        command = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port"]
        processes = [
            subprocess.Popen(
                [*command, str(port)],
                env=env,
                cwd=tmp,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            for url in urls:
                await _healthy(http, url)
            yield urls
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


async def _healthy(http: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            async with http.get(url + "/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"replica {url} did not start")


async def measure_replicas(
    replicas: int = 3,
    approvals: int = 200,
    concurrency: int = 1,
    channels: int = 50,
    rate: float | None = None,
) -> Replicas:
    """Click on replica A → agent waiting on replica C: the latency of each approval."""
    if replicas < 2:
        raise ValueError("a cross-replica wake-up needs at least two replicas")
    workspace = Workspace()
    names = [workspace.add_channel(f"C0BENCH{i:05d}", f"bench-{i}").id for i in range(channels)]
    slack, api_url = await start_slack_api(workspace, bot_token=SLACK_TOKEN)
    try:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),  # every agent holds a connection
                timeout=aiohttp.ClientTimeout(total=120),
            ) as http,
            _database() as db_url,
            _replicas(replicas, db_url, api_url, http) as urls,
        ):
            run = _Run(http, workspace, urls, names)
            return await run.measure(approvals, concurrency, rate)
    except NoPostgres as exc:
        return Replicas(replicas, approvals, concurrency, None, skipped=str(exc), rate=rate)
    finally:
        await slack.cleanup()


@dataclass
class _Run:
    http: aiohttp.ClientSession
    workspace: Workspace
    urls: list[str]
    channels: list[str]

    async def submit(self, i: int) -> str:
        body = {
            "toolName": "deploy_service",
            "toolCallId": f"bench_replicas_{i}",
            "args": {"n": i},
            "channel": self.channels[i % len(self.channels)],
        }
        url = self.urls[1] + "/v1/approvals"
        async with self.http.post(url, json=body, headers=AGENT) as response:
            answer = await response.json()
        assert "id" in answer, answer
        return str(answer["id"])

    async def card(self, approval_id: str) -> tuple[str, str]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            url = f"{self.urls[1]}/v1/approvals/{approval_id}"
            async with self.http.get(url, headers=AGENT) as response:
                slack = (await response.json())["slack"]
            if slack["ts"]:
                return str(slack["channel"]), str(slack["ts"])
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no card for {approval_id}")

    async def parked(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            async with self.http.get(self.urls[-1] + "/healthz") as response:
                if int((await response.json())["waiting"]) >= count:
                    return
            await asyncio.sleep(0.05)
        raise TimeoutError("the agents did not park on the waiting replica")

    async def measure(self, approvals: int, concurrency: int, rate: float | None) -> Replicas:
        ids = await asyncio.gather(*(self.submit(i) for i in range(approvals)))
        cards = await asyncio.gather(*(self.card(approval_id) for approval_id in ids))
        woken: dict[str, asyncio.Future[float]] = {
            approval_id: asyncio.get_running_loop().create_future() for approval_id in ids
        }

        async def agent(approval_id: str) -> None:
            url = f"{self.urls[-1]}/v1/approvals/{approval_id}/wait?timeout=60"
            async with self.http.get(url, headers=AGENT) as response:
                record = await response.json()
            woken[approval_id].set_result(time.perf_counter())
            if record["status"] != "approved":
                raise AssertionError(f"{approval_id} came back {record['status']}")

        agents = [asyncio.create_task(agent(approval_id)) for approval_id in ids]
        await self.parked(approvals)
        gate = asyncio.Semaphore(approvals if rate else concurrency)  # a rate: never held back
        samples: list[float] = []
        # with a rate, the clicks go to every replica in turn; the waiting one's are left out
        targets = self.urls if rate else self.urls[:1]
        async with contextlib.AsyncExitStack() as stack:
            hands = [
                await stack.enter_async_context(
                    Deliverer(self.workspace, url + "/slack/events", SIGNING_SECRET)
                )
                for url in targets
            ]

            async def click(n: int, approval_id: str, channel: str, ts: str) -> None:
                replica = n % len(targets)
                async with gate:  # the slot is held until the agent woke
                    sent = time.perf_counter()
                    await hands[replica].click(channel, ts, APPROVE_ACTION, user="U0ALICE")
                    if targets[replica] != self.urls[-1]:
                        samples.append(await woken[approval_id] - sent)

            started = time.perf_counter()
            clicks = []
            for n, (approval_id, ref) in enumerate(zip(ids, cards, strict=True)):
                if rate:
                    await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
                clicks.append(asyncio.create_task(click(n, approval_id, *ref)))
            await asyncio.gather(*clicks)
            await asyncio.gather(*agents)
            elapsed = time.perf_counter() - started
        return Replicas(
            replicas=len(self.urls),
            approvals=approvals,
            concurrency=concurrency,
            ms=Latency.of_seconds(samples),
            seconds=round(elapsed, 2),
            rate=rate,
        )
