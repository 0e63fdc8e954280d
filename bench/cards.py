"""Measure 5: cards through a Slack that enforces ≈1 message a second per channel.

The emulator answers `chat.postMessage` beyond `rate` a second per channel (after a small
burst) with 429 and `Retry-After`, as Slack does. Cards are submitted at once, spread over a
few channels; the measure reports whether every card was posted exactly once (the successful
`chat.postMessage` calls carrying each approval's id, checked against its stored `slack.ts`),
how long posting them all took against the least the limit allows, and how many 429s the bot
drew on itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from bench.agents import records, submit_many
from bench.rig import Rig, open_rig
from bot.devslack import ApiCall

__all__ = ["Cards", "measure_cards", "minimum_seconds"]


@dataclass(frozen=True)
class Cards:
    cards: int
    channels: int
    rate_per_channel: float
    burst: int
    #: every card posted exactly once, at the ts the bot stored
    posted_once: bool
    #: approvals by how many successful chat.postMessage calls carried their card
    times_posted: dict[str, int]
    #: cards whose stored slack.ts is not the ts Slack returned for them
    ts_mismatches: int
    #: submission of the first card → the last card's successful chat.postMessage
    seconds: float
    #: the least the per-channel limit allows
    minimum_seconds: float
    #: chat.postMessage calls answered 429, and all chat.postMessage calls made
    ratelimited: int
    post_calls: int


def minimum_seconds(cards: int, channels: int, rate: float, burst: int) -> float:
    """Seconds the fullest channel needs: its burst at once, then one card per 1/rate."""
    per_channel = -(-cards // channels)
    return max(0.0, (per_channel - burst) / rate)


def _card_id(call: ApiCall) -> str | None:
    """The approval a chat.postMessage call was for: cards carry it in their metadata."""
    metadata = call.params.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != "approval_card":
        return None
    payload = metadata.get("event_payload") or {}
    return str(payload.get("id")) if payload.get("id") else None


async def _all_posted(rig: Rig, ids: list[str], timeout: float) -> dict[str, str | None]:
    """Each approval's stored slack.ts, once all have one or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        stored = await records(rig)
        ts = {i: stored[i]["slack"].get("ts") for i in ids}
        if all(ts.values()) or time.monotonic() > deadline:
            return ts
        await asyncio.sleep(0.2)


async def measure_cards(cards: int, channels: int, rate: float, burst: int) -> Cards:
    """Submit `cards` approvals over `channels` channels to a bot whose Slack limits each
    channel to `rate` messages a second after `burst`."""
    least = minimum_seconds(cards, channels, rate, burst)
    rig_with_limit = open_rig(
        channels=channels, rate_limit_per_channel=rate, rate_limit_burst=burst
    )
    async with rig_with_limit as rig:
        started = time.time()
        ids, _ = await submit_many(rig, cards, channels=rig.channels)
        stored_ts = await _all_posted(rig, ids, timeout=4 * least + 60)
        await asyncio.sleep(min(2.0, least / 4 + 0.5))  # late duplicates would show up here
        posts = rig.workspace.calls_to("chat.postMessage")
    delivered = [c for c in posts if c.ok and _card_id(c) is not None]
    counts = Counter(_card_id(c) for c in delivered)
    returned_ts = {_card_id(c): c.response.get("ts") for c in delivered}
    histogram = Counter(str(counts.get(i, 0)) for i in ids)
    mismatches = sum(1 for i in ids if stored_ts[i] != returned_ts.get(i))
    last = max((c.at for c in delivered), default=started)
    return Cards(
        cards=cards,
        channels=channels,
        rate_per_channel=rate,
        burst=burst,
        posted_once=histogram == Counter({"1": cards}) and mismatches == 0,
        times_posted=dict(sorted(histogram.items())),
        ts_mismatches=mismatches,
        seconds=round(last - started, 2),
        minimum_seconds=round(least, 2),
        ratelimited=sum(1 for c in posts if c.status == 429),
        post_calls=len(posts),
    )
