"""Measure 2: what idle waiters cost. Many agents wait; every card is already posted, so the
bot has nothing to do, and its CPU (all threads, from /proc) and RSS are read over a stretch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bench.agents import drained, health, parked, submit_many, wait_for
from bench.proc import CpuMeter, rss_mb
from bench.rig import channels_for, open_rig

__all__ = ["Idle", "measure_idle"]

#: the longest wait the API grants; the watch must end before the waits do
MAX_WAIT = 60.0


@dataclass(frozen=True)
class Idle:
    waiters: int
    seconds: float
    #: % of one core
    cpu_percent: float
    rss_mb: float
    #: waits the bot still held when the watch ended (all of them, or the figure is void)
    waiting_at_end: int


async def measure_idle(waiters: int, seconds: float) -> Idle:
    """Submit `waiters` approvals to a fresh bot, let its outbox drain, park a wait on each,
    then watch the bot for `seconds`."""
    if seconds > MAX_WAIT - 15:
        raise ValueError(f"watch at most {MAX_WAIT - 15:g}s: waits last {MAX_WAIT:g}s")
    async with open_rig(channels=channels_for(waiters)) as rig:
        ids, _ = await submit_many(rig, waiters, channels=rig.channels)
        await drained(rig)  # every card posted: from here on the bot only waits
        waits = [asyncio.create_task(wait_for(rig, i, timeout=MAX_WAIT)) for i in ids]
        try:
            await parked(rig, waiters, timeout=MAX_WAIT - seconds - 5)
            await drained(rig)
            meter = CpuMeter(rig.pid)
            meter.start()
            await asyncio.sleep(seconds)
            cpu, watched, rss = meter.percent(), meter.seconds(), rss_mb(rig.pid)
            waiting = (await health(rig))["waiting"]
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
    return Idle(
        waiters=waiters,
        seconds=round(watched, 1),
        cpu_percent=round(cpu, 3),
        rss_mb=round(rss, 1),
        waiting_at_end=waiting,
    )
