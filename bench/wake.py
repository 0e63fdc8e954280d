"""Measure 1: a decision wakes its waiting agent at once, with many agents waiting.

Every agent holds an open `GET /v1/approvals/{id}/wait`. Each approval is then decided in
turn — first by a click on its card (a signed `block_actions` POSTed to `/slack/events`), then,
for a second set, over the admin API — and the time from sending the decision to that agent's
wait returning is recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.agents import card_refs, decide, drained, parked, submit_many, wait_for
from bench.clicks import Clicker
from bench.rig import Rig, channels_for, open_rig
from bench.stats import Latency

__all__ = ["Wake", "measure_wake"]


@dataclass(frozen=True)
class Wake:
    waiters: int
    #: click sent → agent woken
    click_ms: Latency
    #: API decision sent → agent woken
    api_ms: Latency


async def _wake_each(
    rig: Rig, ids: list[str], decide_one: Callable[[str], Awaitable[float]]
) -> list[float]:
    """Park one wait per id, then decide them one by one; seconds from decision to wake."""
    waits = {i: asyncio.create_task(wait_for(rig, i)) for i in ids}
    try:
        await parked(rig, len(ids))
        latencies = []
        for approval_id in ids:
            sent = await decide_one(approval_id)
            latencies.append(await waits[approval_id] - sent)
        return latencies
    finally:
        for task in waits.values():
            task.cancel()
        await asyncio.gather(*waits.values(), return_exceptions=True)


async def measure_wake(waiters: int) -> Wake:
    """With `waiters` agents waiting, wake each by a click; then another set by API decisions."""
    async with open_rig(channels=channels_for(2 * waiters)) as rig:
        ids, _ = await submit_many(rig, 2 * waiters, channels=rig.channels)
        await drained(rig)  # every card posted, so each can be clicked
        cards = await card_refs(rig, ids[:waiters])
        clicker = Clicker(rig)

        async def click(approval_id: str) -> float:
            exchange = await clicker.approve(cards[approval_id])
            if exchange.status != 200:
                raise RuntimeError(f"the click on {approval_id} got HTTP {exchange.status}")
            return exchange.sent

        async def api(approval_id: str) -> float:
            sent = time.perf_counter()
            await decide(rig, approval_id)
            return sent

        clicked = await _wake_each(rig, ids[:waiters], click)
        decided = await _wake_each(rig, ids[waiters:], api)
    return Wake(
        waiters=waiters, click_ms=Latency.of_seconds(clicked), api_ms=Latency.of_seconds(decided)
    )
