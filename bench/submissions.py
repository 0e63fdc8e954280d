"""Measure 4: approvals/s into the store and outbox (each submission is a committed approval,
its audit event and its outbox row), agents submitting concurrently.

The approvals go to the workspace's four channels, as a burst from agents would; the bot then
posts their cards at Slack's pace of about one a second per channel, so what is measured is the
store and the outbox, not Slack.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.agents import submit_many
from bench.rig import open_rig

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


async def measure_submissions(count: int, concurrency: int, *, all_at_once: bool) -> Submissions:
    """Submit `count` approvals, `concurrency` at a time, to a fresh bot; with `all_at_once`,
    then `count` more all at once."""
    async with open_rig(channels=CHANNELS) as rig:
        _, rate = await submit_many(rig, count, concurrency=concurrency, channels=rig.channels)
        burst = None
        if all_at_once:
            _, burst = await submit_many(rig, count, concurrency=count, channels=rig.channels)
    return Submissions(
        count=count,
        concurrency=concurrency,
        channels=CHANNELS,
        per_s=round(rate, 1),
        all_at_once_per_s=round(burst, 1) if burst is not None else None,
    )
