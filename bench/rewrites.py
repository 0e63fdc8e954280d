"""Measure: a burst of clicks, and the card rewrites Slack's `chat.update` tier lets through.

Cards are posted first; then every card gets its Approve click at once. Decisions must all be
made (and their agents answerable) at once; the rewrites trail within `chat.update`'s Tier 3
(about 50 calls a minute for the workspace), and every card must end up showing its outcome.
The emulator enforces the tier as Slack does, so a bot that ignored it would draw 429s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.agents import card_refs, decided, drained, submit_many
from bench.clicks import Clicker
from bench.rig import Rig, open_rig
from bot.devslack import ApiCall

__all__ = ["Rewrites", "busiest_minute", "measure_rewrites"]

#: Slack's Tier 3: "50+ per minute" (https://api.slack.com/apis/rate-limits)
TIER_3_PER_MINUTE = 50


@dataclass(frozen=True)
class Rewrites:
    clicks: int
    channels: int
    #: clicks answered 200, and approvals decided once they were
    answered: int
    decided: int
    #: first click sent → every approval decided
    decide_seconds: float
    #: chat.update calls Slack took in the busiest 60 s, and the tier's figure
    busiest_minute: int
    tier_per_minute: int
    #: chat.update calls answered 429
    ratelimited: int
    #: cards showing their outcome (no buttons left) at the end
    rewritten: int
    #: first click sent → last card rewritten
    rewrite_seconds: float


def busiest_minute(calls: Sequence[ApiCall]) -> int:
    """The most calls in any 60 s window."""
    times = sorted(c.at for c in calls)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 60:
            start += 1
        most = max(most, end - start + 1)
    return most


def _has_buttons(rig: Rig, channel: str, ts: str) -> bool:
    message = rig.workspace.message(channel, ts)
    return any(block.get("type") == "actions" for block in message.blocks or ())


async def measure_rewrites(clicks: int) -> Rewrites:
    """`clicks` cards, each clicked at once; wait until every card is rewritten."""
    channels = min(10, clicks)
    async with open_rig(channels=channels) as rig:
        ids, _ = await submit_many(rig, clicks, channels=rig.channels)
        await drained(rig)
        cards = await card_refs(rig, ids)
        clicker = Clicker(rig)
        started = time.time()
        exchanges = await asyncio.gather(*(clicker.approve(cards[i]) for i in ids))
        done = await decided(rig, ids, timeout=60)
        decide_seconds = time.time() - started
        # Tier 3 at ~45 a minute: allow twice that before calling it stuck.
        deadline = time.monotonic() + 2 * 60 * clicks / 45 + 30
        waiting = set(ids)
        while waiting and time.monotonic() < deadline:
            waiting = {i for i in waiting if _has_buttons(rig, *cards[i])}
            await asyncio.sleep(0.5)
        updates = rig.workspace.calls_to("chat.update")
        taken = [c for c in updates if c.ok]
    last = max((c.at for c in taken), default=started)
    return Rewrites(
        clicks=clicks,
        channels=channels,
        answered=sum(1 for e in exchanges if e.status == 200),
        decided=done,
        decide_seconds=round(decide_seconds, 2),
        busiest_minute=busiest_minute(taken),
        tier_per_minute=TIER_3_PER_MINUTE,
        ratelimited=sum(1 for c in updates if c.status == 429),
        rewritten=clicks - len(waiting),
        rewrite_seconds=round(last - started, 1),
    )
