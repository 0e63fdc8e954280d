"""Posting within Slack's limits: `chat.postMessage` allows about one message a second per
channel (short bursts tolerated) and answers 429 with `Retry-After` beyond that.

`ChannelPacer` spaces posts per channel so they arrive under the limit instead of bouncing off
it, and holds a channel that got a 429 for its `Retry-After` without touching other channels.
The backlog helpers turn the outbox's per-channel queue lengths into words for cards and App Home.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.slack.cards.text import escape_mrkdwn

__all__ = ["BACKLOG_NOTE_AT", "ChannelPacer", "backlog_lines", "backlog_note"]

#: Queued items in one channel from which cards and App Home mention the backlog.
BACKLOG_NOTE_AT = 5


@dataclass
class ChannelPacer:
    """Per-channel pacing of posts: a burst of `burst`, then `rate` posts a second.

    Each channel keeps one number, the time its next post would be due at the steady rate
    (the "theoretical arrival time" of the generic cell rate algorithm); a post may run up to
    `burst - 1` intervals ahead of it. `wait` takes a turn, `sent` re-anchors it on the answer,
    and a 429 pushes the time past the channel's `Retry-After`.
    """

    rate: float = 1.0
    burst: int = 3
    #: seconds added to a wait, so timing jitter cannot make a paced post arrive early
    guard: float = 0.05
    _due: dict[str, float] = field(default_factory=dict, init=False)
    _aliases: dict[str, str] = field(default_factory=dict, init=False)

    @property
    def interval(self) -> float:
        """Seconds between posts to one channel once its burst is spent."""
        return 1.0 / self.rate

    def _window(self) -> float:
        return (max(1, self.burst) - 1) * self.interval

    def _key(self, channel: str) -> str:
        return self._aliases.get(channel, channel)

    async def wait(self, channel: str) -> float:
        """Wait until `channel` may take one more post, and count it; returns seconds waited."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            # Re-read after every sleep: a 429 seen meanwhile may have pushed the time back.
            now, key = loop.time(), self._key(channel)
            due = self._due.get(key, now)
            send_at = max(now, due - self._window())
            if send_at <= now:
                self._due[key] = max(due, now) + self.interval
                return now - started
            await asyncio.sleep(send_at - now + self.guard)

    def sent(self, channel: str) -> None:
        """A post to `channel` came back: count it from now, the latest Slack can have seen it.

        Slack counts a post when it arrives, which may be later than `wait` let it go; anchoring
        here keeps a slow request from making the next ones look early.
        """
        key, now = self._key(channel), asyncio.get_running_loop().time()
        self._due[key] = max(self._due.get(key, now), now + self.interval)

    def hold(self, channel: str, seconds: float) -> None:
        """Slack answered 429: post nothing more to `channel` for `seconds`, then one at a time."""
        key, now = self._key(channel), asyncio.get_running_loop().time()
        self._due[key] = max(self._due.get(key, now), now + seconds + self._window())

    def learn(self, asked: str, channel: str) -> None:
        """A post to `asked` (a name such as `#deploy`) landed in `channel` (its id): one budget."""
        if asked == channel or asked in self._aliases:
            return
        self._aliases[asked] = channel
        if (due := self._due.pop(asked, None)) is not None:
            self._due[channel] = max(due, self._due.get(channel, due))

    def pace_words(self) -> str:
        """`about one per second`, for notes that explain a wait."""
        if self.rate == 1:
            return "about one per second"
        if self.rate > 1:
            return f"about {self.rate:g} per second"
        return f"about one every {self.interval:g} seconds"


def backlog_note(waiting: int, pacer: ChannelPacer) -> str:
    """The plain line under a card posted while `waiting` more items queue for its channel."""
    requests = "request was" if waiting == 1 else "requests were"
    return (
        f"{waiting} more {requests} queued for this channel when this card was posted; "
        f"cards are posted {pacer.pace_words()}."
    )


def backlog_lines(
    backlog: Mapping[str, int],
    pacer: ChannelPacer | None = None,
    *,
    at_least: int = BACKLOG_NOTE_AT,
) -> list[str]:
    """Mrkdwn lines (busiest channel first) for channels with `at_least` items queued.

    `backlog` maps a channel (id or name, as the requests gave it) to its queued items; an
    empty list means nothing worth mentioning.
    """
    pace = (pacer or ChannelPacer()).pace_words()
    busy = sorted(
        ((count, channel) for channel, count in backlog.items() if count >= at_least),
        key=lambda entry: (-entry[0], entry[1]),
    )
    return [
        f":hourglass_flowing_sand: {count} requests queued for {_channel_markup(channel)}; "
        f"cards are posted {pace}."
        for count, channel in busy[:10]
    ]


def _channel_markup(channel: str) -> str:
    """`<#C0DEPLOY>` for a channel id, `#deploy` (escaped) for a name."""
    if channel[:1] in ("C", "G") and channel.isalnum() and channel.isupper():
        return f"<#{channel}>"
    return escape_mrkdwn(channel if channel.startswith("#") else f"#{channel}")
