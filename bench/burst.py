"""Measure: clicks sent back to back, each on a card an agent is waiting on.

The clicks go over `in_flight` connections, each sending its next click the moment its last
is answered: the bot is kept saturated, as when a team approves a queue together, without
the harness piling up more than the bot could ever answer at once. Each click is timed from
sending to its agent's wait returning. Decisions a second are the clicks over the time from
the first sent to the last agent woken. Each decision's follow-ups (the card's
rewrite, the thread reply) trail behind within Slack's tiers: the measure then waits for the
outbox to drain and checks every card in the workspace was rewritten.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench.agents import card_refs, drained, parked, submit_many, wait_for
from bench.clicks import Clicker, Exchange
from bench.proc import CpuMeter
from bench.rig import channels_for, open_rig, run
from bench.stats import Latency
from bot.slack.cards import APPROVE_ACTION

__all__ = ["Burst", "measure_burst"]

#: chat.update is Tier 3: about 50 a minute for the workspace
REWRITES_PER_MINUTE = 50


@dataclass(frozen=True)
class Burst:
    clicks: int
    in_flight: int
    #: answered 200 within Slack's 3 s
    answered: int
    #: agents whose wait returned decided
    woken: int
    decisions_per_s: float
    #: click sent → its agent woken
    click_ms: Latency
    #: the bot's CPU from the first click to the last agent woken, over the clicks: the
    #: decision path with whatever follow-ups ran meanwhile
    cpu_ms_per_click: float
    #: cards rewritten (no buttons left) once the outbox drained, and the seconds that took
    rewritten: int
    rewrite_seconds: float


def _has_buttons(blocks: list[dict[str, Any]]) -> bool:
    return any(
        element.get("action_id") == APPROVE_ACTION
        for block in blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if isinstance(element, dict)
    )


async def measure_burst(clicks: int, in_flight: int, *, rewrites: bool = True) -> Burst:
    """Park an agent on each of `clicks` approvals, then click Approve on each, `in_flight`
    clicks at a time. `rewrites`: wait for every card's rewrite (minutes: Slack's Tier 3)."""
    async with open_rig(channels=channels_for(clicks)) as rig:
        ids, _ = await submit_many(rig, clicks, channels=rig.channels)
        await drained(rig)
        cards = await card_refs(rig, ids)
        clicker = Clicker(rig)
        waits = {i: asyncio.create_task(wait_for(rig, i)) for i in ids}
        await parked(rig, clicks)
        meter = CpuMeter(rig.pid)
        meter.start()
        queue = iter(ids)
        exchanges: dict[str, Exchange] = {}

        async def connection() -> None:
            for approval_id in queue:
                exchanges[approval_id] = await clicker.approve(cards[approval_id])

        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(in_flight)))
        woken = await asyncio.gather(*waits.values(), return_exceptions=True)
        cpu_ms = 10 * meter.percent() * meter.seconds()
        done = [w for w in woken if isinstance(w, float)]
        last = max(done, default=started)
        latencies = [
            wake - exchanges[approval_id].sent
            for wake, approval_id in zip(woken, ids, strict=True)
            if isinstance(wake, float)
        ]
        timeout = 60 + 60 * clicks / REWRITES_PER_MINUTE
        rewrite_seconds = await drained(rig, timeout=timeout) if rewrites else 0.0
        rewritten = 0
        for channel, ts in cards.values():
            if not _has_buttons(rig.workspace.message(channel, ts).blocks):
                rewritten += 1
    return Burst(
        clicks=clicks,
        in_flight=in_flight,
        answered=sum(1 for e in exchanges.values() if e.status == 200),
        woken=len(done),
        decisions_per_s=round(len(done) / (last - started), 1) if done else 0.0,
        click_ms=Latency.of_seconds(latencies),
        cpu_ms_per_click=round(cpu_ms / clicks, 2),
        rewritten=rewritten,
        rewrite_seconds=round(rewrite_seconds, 1),
    )


if __name__ == "__main__":  # `python -m bench.burst [CLICKS IN_FLIGHT]`: no wait for rewrites
    import sys

    clicks, in_flight = (int(a) for a in (sys.argv[1:] or ["200", "8"]))
    print(run(measure_burst(clicks, in_flight, rewrites=False)))
