"""Measure: clicks sent back to back, each on a card an agent is waiting on.

The clicks go over `in_flight` connections, each sending its next click the moment its last
is answered: the bot is kept saturated, as when a team approves a queue together, without
the harness piling up more than the bot could ever answer at once. Each click is timed from
sending to its agent's wait returning. Decisions a second are the clicks over the time from
the first sent to the last agent woken. Each decision's follow-ups (the card's
rewrite, the thread reply) trail behind within Slack's tiers: the measure then waits until
every card in the workspace is rewritten and answered in its thread, and divides the bot's CPU
from the first click to then by the clicks (a click's whole cost); then for the outbox to drain.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.agents import CardRef, card_refs, drained, parked, submit_many, wait_for
from bench.clicks import Clicker, Exchange
from bench.proc import CpuMeter
from bench.rig import Rig, channels_for, open_rig, run
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
    #: cards rewritten (no buttons left) once the outbox drained, and the seconds until the
    #: last was rewritten and replied in its thread
    rewritten: int
    rewrite_seconds: float
    #: cards with the decision's reply in their thread once the outbox drained
    replied: int = 0
    #: the bot's CPU from the first click until every follow-up was sent, over the clicks:
    #: the decision path with the card's rewrite and thread reply (0 when not waited for)
    cpu_ms_per_click_with_follow_ups: float = 0.0


def _has_buttons(blocks: list[dict[str, Any]]) -> bool:
    return any(
        element.get("action_id") == APPROVE_ACTION
        for block in blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if isinstance(element, dict)
    )


def _rewritten(rig: Rig, card: CardRef) -> bool:
    return not _has_buttons(rig.workspace.message(*card).blocks)


def _replied(rig: Rig, card: CardRef) -> bool:
    return len(rig.workspace.thread(*card)) > 1


async def _followed_up(rig: Rig, cards: Iterable[CardRef], timeout: float) -> float:
    """Until every card is rewritten and replied in its thread; the seconds it took."""
    started = time.monotonic()
    waiting = list(cards)
    while waiting := [c for c in waiting if not (_rewritten(rig, c) and _replied(rig, c))]:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{len(waiting)} cards not rewritten within {timeout:g}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


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
        rewrite_seconds = whole_cpu_ms = 0.0
        if rewrites:  # watched in the workspace: asking the bot would cost it CPU meanwhile
            timeout = 60 + 60 * clicks / REWRITES_PER_MINUTE
            rewrite_seconds = await _followed_up(rig, cards.values(), timeout)
            whole_cpu_ms = 10 * meter.percent() * meter.seconds()
            await drained(rig)
        rewritten = sum(_rewritten(rig, card) for card in cards.values())
        replied = sum(_replied(rig, card) for card in cards.values())
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
        replied=replied,
        cpu_ms_per_click_with_follow_ups=round(whole_cpu_ms / clicks, 2),
    )


if __name__ == "__main__":  # `python -m bench.burst [CLICKS IN_FLIGHT]`: no wait for rewrites
    import sys

    clicks, in_flight = (int(a) for a in (sys.argv[1:] or ["200", "8"]))
    print(run(measure_burst(clicks, in_flight, rewrites=False)))
