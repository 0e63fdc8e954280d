"""Measure 4: approvals/s into the store and outbox (each submission is a committed approval,
its audit event and its outbox row), agents submitting concurrently.

The approvals go to the workspace's four channels, as a burst from agents would; the bot then
posts their cards at Slack's pace of about one a second per channel, so what is measured is the
store and the outbox, not Slack. All at once, the same requests also go to a bare aiohttp app
(`bench.bare`): what serving them costs on this machine and harness before any work is done.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.agents import submit_all_at_once, submit_many
from bench.bare import LISTENING
from bench.proc import cpu_seconds
from bench.rig import START_SECONDS, free_port, open_rig

__all__ = ["Submissions", "measure_submissions"]

CHANNELS = 4


@dataclass(frozen=True)
class Submissions:
    count: int
    concurrency: int
    channels: int
    per_s: float
    #: then all `count` at once, each agent on a connection of its own (opened meanwhile)
    all_at_once_per_s: float | None = None
    #: CPU a submission all at once: the bot's (all its threads), and the bench's own (the
    #: agents' raw HTTP client, `submit_all_at_once`, and the emulated Slack), on the same cores
    all_at_once_bot_cpu_ms: float | None = None
    all_at_once_client_cpu_ms: float | None = None
    #: the same requests all at once to a bare aiohttp app (`bench.bare`)
    bare_all_at_once_per_s: float | None = None


async def measure_submissions(count: int, concurrency: int, *, all_at_once: bool) -> Submissions:
    """Submit `count` approvals, `concurrency` at a time, to a fresh bot; with `all_at_once`,
    then `count` more all at once."""
    async with open_rig(channels=CHANNELS) as rig:
        _, rate = await submit_many(rig, count, concurrency=concurrency, channels=rig.channels)
        if not all_at_once:
            return Submissions(count, concurrency, CHANNELS, round(rate, 1))
        bot, client = cpu_seconds(rig.pid), cpu_seconds(os.getpid())
        _, burst = await submit_all_at_once(rig.url, count, channels=rig.channels)
        bot, client = cpu_seconds(rig.pid) - bot, cpu_seconds(os.getpid()) - client
        channels = rig.channels
    bare = await _bare_rate(count, channels)
    return Submissions(
        count=count,
        concurrency=concurrency,
        channels=CHANNELS,
        per_s=round(rate, 1),
        all_at_once_per_s=round(burst, 1),
        all_at_once_bot_cpu_ms=round(1000 * bot / count, 2),
        all_at_once_client_cpu_ms=round(1000 * client / count, 2),
        bare_all_at_once_per_s=round(bare, 1),
    )


async def _bare_rate(count: int, channels: tuple[str, ...]) -> float:
    """Submissions/s of `count` all at once to a bare aiohttp app in its own process."""
    port = free_port()
    command = (sys.executable, "-m", "bench.bare", str(port))
    root = Path(__file__).resolve().parent.parent
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            first = asyncio.to_thread(process.stdout.readline)
            line = await asyncio.wait_for(first, START_SECONDS)
            if line.strip() != LISTENING:
                raise RuntimeError(f"the bare app did not start (exit {process.poll()})")
            url = f"http://127.0.0.1:{port}"
            _, rate = await submit_all_at_once(url, count, channels=channels)
            return rate
        finally:
            process.kill()  # leaving `with` closes its pipe and waits for it
