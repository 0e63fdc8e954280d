"""Measure what the product promises: a decision wakes its agent at once, idle waits cost nothing.

Starts `approval-bot serve` as a separate process on a fresh database, with the local Slack
emulator as its Web API, then drives it over HTTP:
  1. submissions/s into the store (10,000 requests, 50 at a time);
  2. API decision → waiting agent woken, with 1,000 agents waiting at once (p50/p99/max);
  3. CPU and RSS of the bot while 10,000 agents wait idle.
Prints a table and writes bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bot.devslack import Workspace, start_slack_api

AGENT = "bench-agent-token"
ADMIN = "bench-admin-token"
SLACK_TOKEN = "xoxb-bench"
RESULTS = Path(__file__).parent / "results.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Bot:
    """`approval-bot serve` in its own process."""

    def __init__(self, workdir: Path, slack_api_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "APPROVAL_DB": str(workdir / "bench.db"),
            "APPROVAL_API_TOKEN": AGENT,
            "APPROVAL_ADMIN_TOKEN": ADMIN,
            "APPROVAL_CHANNEL": "C0OPS",
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "SLACK_SIGNING_SECRET": "bench-signing-secret",
            "SLACK_API_URL": slack_api_url,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def ready(self, http: aiohttp.ClientSession) -> None:
        for _ in range(200):
            try:
                async with http.get(self.url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("the bot did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def submit_many(http: aiohttp.ClientSession, url: str, count: int) -> tuple[list[str], float]:
    headers = {"Authorization": f"Bearer {AGENT}"}
    ids: list[str] = []
    gate = asyncio.Semaphore(50)

    async def one(i: int) -> None:
        body = {"toolName": "deploy_service", "args": {"version": f"1.{i}"}, "priority": "high"}
        async with gate, http.post(url + "/v1/approvals", json=body, headers=headers) as response:
            ids.append((await response.json())["id"])

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return ids, count / (time.perf_counter() - started)


async def wait_call(http: aiohttp.ClientSession, url: str, approval_id: str) -> float:
    headers = {"Authorization": f"Bearer {AGENT}"}
    async with http.get(f"{url}/v1/approvals/{approval_id}/wait?timeout=60", headers=headers) as r:
        body = await r.json()
    if body["status"] == "pending":
        raise RuntimeError("a wait timed out")
    return time.perf_counter()


async def parked(http: aiohttp.ClientSession, url: str, count: int) -> None:
    """Until the bot reports `count` open waits."""
    for _ in range(1200):
        async with http.get(url + "/healthz") as response:
            if (await response.json())["waiting"] >= count:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the bot never held {count} waits")


async def drained(http: aiohttp.ClientSession, url: str) -> None:
    """Until the bot has no card or webhook left to deliver."""
    for _ in range(3000):
        async with http.get(url + "/healthz") as response:
            if not any((await response.json())["backlog"].values()):
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the bot never caught up with its outbox")


async def wake_latency(http: aiohttp.ClientSession, url: str, waiters: int) -> list[float]:
    ids, _ = await submit_many(http, url, waiters)
    woken = {i: asyncio.create_task(wait_call(http, url, i)) for i in ids}
    await parked(http, url, waiters)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    latencies = []
    for approval_id in ids:
        sent = time.perf_counter()
        body = {"approved": True, "decidedBy": "bench"}
        async with http.post(
            f"{url}/v1/approvals/{approval_id}/decision", json=body, headers=headers
        ) as response:
            assert response.status == 200
        latencies.append((await woken[approval_id]) - sent)
    return [s * 1000 for s in latencies]


async def idle_cost(
    http: aiohttp.ClientSession, bot: Bot, waiters: int, seconds: float
) -> dict[str, float]:
    ids, _ = await submit_many(http, bot.url, waiters)
    tasks = [asyncio.create_task(wait_call(http, bot.url, i)) for i in ids]
    await parked(http, bot.url, waiters)
    await drained(http, bot.url)  # every card posted: from here on the bot only waits
    pid = bot.process.pid
    cpu_before, wall_before = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = cpu_seconds(pid) - cpu_before
    wall = time.perf_counter() - wall_before
    rss = rss_mb(pid)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "waiters": waiters,
        "seconds": round(wall, 1),
        "cpu_percent": 100 * cpu / wall,
        "rss_mb": rss,
    }


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} cores, {model}, {memory:.0f} GiB, Python {platform.python_version()}"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    # The local Slack runs in this process: its work is the bench's, not the bot's.
    workspace = Workspace()
    slack, slack_api_url = await start_slack_api(workspace, bot_token=SLACK_TOKEN)
    with tempfile.TemporaryDirectory() as tmp:
        bot = Bot(Path(tmp), slack_api_url)
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                await bot.ready(http)
                _, rate = await submit_many(http, bot.url, args.submissions)
                wake = await wake_latency(http, bot.url, args.waiters)
                idle = await idle_cost(http, bot, args.idle, args.idle_seconds)
        finally:
            bot.stop()
            await slack.cleanup()
    return {
        "machine": machine(),
        "submissions_per_s": round(rate),
        "wake_ms": {
            "waiters": args.waiters,
            "p50": round(statistics.median(wake), 2),
            "p99": round(percentile(wake, 99), 2),
            "max": round(max(wake), 2),
        },
        "idle": {k: round(v, 2) for k, v in idle.items()},
    }


def report(results: dict[str, Any]) -> str:
    wake, idle = results["wake_ms"], results["idle"]
    rows = [
        ("submissions into the store", f"{results['submissions_per_s']}/s", "≥ 500/s"),
        (f"decision → agent woken, {wake['waiters']} waiting, p50", f"{wake['p50']} ms", ""),
        (f"decision → agent woken, {wake['waiters']} waiting, p99", f"{wake['p99']} ms", "≤ 20 ms"),
        (f"decision → agent woken, {wake['waiters']} waiting, max", f"{wake['max']} ms", ""),
        (f"{idle['waiters']} idle waiters: bot CPU", f"{idle['cpu_percent']} % of a core", "≤ 2 %"),
        (f"{idle['waiters']} idle waiters: bot RSS", f"{idle['rss_mb']} MB", "≤ 300 MB"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"machine: {results['machine']}", ""]
    lines += [f"{name.ljust(width)}  {value.rjust(18)}  {target}" for name, value, target in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--waiters", type=int, default=1_000)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=30)
    results = asyncio.run(main(parser.parse_args()))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
