"""Measure 3: how fast the bot acknowledges Slack under a steady stream of clicks.

Clicks on Approve are sent open-loop — on a fixed schedule, whether or not earlier ones were
answered, as Slack sends them — each on a different pending approval, and the HTTP response
time of `/slack/events` is recorded. A click not answered within Slack's 3 s counts as failed.
Afterwards every clicked approval must be decided.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from bench.agents import card_refs, decided, drained, submit_many
from bench.clicks import Clicker, Exchange
from bench.proc import CpuMeter
from bench.rig import channels_for, open_rig
from bench.stats import Latency

__all__ = ["Ack", "measure_ack"]


@dataclass(frozen=True)
class Ack:
    #: clicks a second asked for, and achieved (sending is never held back by answers)
    rate_per_s: float
    achieved_per_s: float
    seconds: float
    sent: int
    #: answered 200 within 3 s
    ok: int
    ms: Latency
    #: clicked approvals decided once the stream ended (all of them, or clicks were lost)
    decided: int
    #: the bot's CPU over the stream, % of one core; and this process's (the emulator and
    #: clients), to show the figures are not bounded by the bench itself
    bot_cpu_percent: float
    bench_cpu_percent: float
    #: the bot's CPU over the stream divided by its clicks: the decision path and whatever of
    #: Slack's follow-ups (rewrites, thread replies) ran meanwhile, in ms a click
    cpu_ms_per_click: float


async def measure_ack(rate: float, seconds: float) -> Ack:
    """Click Approve on `rate × seconds` cards at `rate` a second; the ack latencies."""
    count = round(rate * seconds)
    async with open_rig(channels=channels_for(count)) as rig:
        ids, _ = await submit_many(rig, count, channels=rig.channels)
        await drained(rig)
        cards = await card_refs(rig, ids)
        clicker = Clicker(rig)
        bot_cpu, bench_cpu = CpuMeter(rig.pid), CpuMeter(os.getpid())
        bot_cpu.start()
        bench_cpu.start()
        loop = asyncio.get_running_loop()
        start = loop.time()
        clicks: list[asyncio.Task[Exchange]] = []
        for n, approval_id in enumerate(ids):
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            clicks.append(asyncio.create_task(clicker.approve(cards[approval_id])))
        sending = loop.time() - start
        exchanges = await asyncio.gather(*clicks)
        bot_percent, bench_percent = bot_cpu.percent(), bench_cpu.percent()
        bot_cpu_ms = 10 * bot_percent * bot_cpu.seconds()  # % of a core × s → ms
        settled = await decided(rig, ids, timeout=30 + seconds)
    answered = [e for e in exchanges if e.status == 200]
    return Ack(
        rate_per_s=rate,
        achieved_per_s=round((count - 1) / sending if sending > 0 else rate, 1),
        seconds=seconds,
        sent=count,
        ok=len(answered),
        ms=Latency.of_seconds(e.seconds for e in answered),
        decided=settled,
        bot_cpu_percent=round(bot_percent, 1),
        bench_cpu_percent=round(bench_percent, 1),
        cpu_ms_per_click=round(bot_cpu_ms / count, 2),
    )
