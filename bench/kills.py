"""Measure: answered clicks survive `kill -9`.

Clicks on Approve stream in at a fixed rate, as Slack sends them, each on its own card; midway
through each round the bot is killed with SIGKILL, with no shutdown of any kind, then started
again on the same database before the next round. A click the bot answered 200 must be
decided after the restart: the bot answers only once the decision is committed. Clicks sent
while it is down get no answer, which Slack shows the person as a failure to try again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bench.agents import card_refs, drained, records, submit_many
from bench.clicks import Clicker, Exchange
from bench.rig import channels_for, open_rig

__all__ = ["Kills", "measure_kills"]


@dataclass(frozen=True)
class Kills:
    rounds: int
    rate_per_s: float
    seconds_per_round: float
    sent: int
    #: answered 200 (before a kill, or by the restarted bot)
    answered: int
    #: answered 200 yet not decided after the restart: must be 0
    lost: int
    #: the seconds from SIGKILL to the restarted bot's first 200 on /healthz, the slowest
    restart_seconds: float


async def measure_kills(rounds: int, rate: float, seconds: float) -> Kills:
    """`rounds` × (`rate` clicks a second for `seconds`, with a `kill -9` halfway)."""
    per_round = round(rate * seconds)
    count = rounds * per_round
    async with open_rig(channels=channels_for(count)) as rig:
        ids, _ = await submit_many(rig, count, channels=rig.channels)
        await drained(rig)
        cards = await card_refs(rig, ids)
        clicker = Clicker(rig)
        loop = asyncio.get_running_loop()
        answered: list[str] = []
        slowest_restart = 0.0
        for r in range(rounds):
            batch = ids[r * per_round : (r + 1) * per_round]
            start = loop.time()
            clicks: list[asyncio.Task[Exchange]] = []
            killed_at: float | None = None
            for n, approval_id in enumerate(batch):
                await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
                if killed_at is None and n >= len(batch) // 2:
                    rig.kill()
                    killed_at = loop.time()
                clicks.append(asyncio.create_task(clicker.approve(cards[approval_id])))
            exchanges = await asyncio.gather(*clicks)
            answered += [a for a, e in zip(batch, exchanges, strict=True) if e.status == 200]
            if rig.process.poll() is not None:
                await rig.restart()
                slowest_restart = max(slowest_restart, loop.time() - (killed_at or start))
        stored = await records(rig)
        lost = sum(1 for approval_id in answered if stored[approval_id]["status"] == "pending")
    return Kills(
        rounds=rounds,
        rate_per_s=rate,
        seconds_per_round=seconds,
        sent=count,
        answered=len(answered),
        lost=lost,
        restart_seconds=round(slowest_restart, 2),
    )
