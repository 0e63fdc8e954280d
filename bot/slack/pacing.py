"""Posting within Slack's limits: `chat.postMessage` allows about one message a second per
channel (short bursts tolerated) and answers 429 with `Retry-After` beyond that.

`ChannelPacer` spaces posts per channel so they arrive under the limit instead of bouncing off
it, and holds a channel that got a 429 for its `Retry-After` without touching other channels.
The same pacer, keyed by method, keeps tiered methods (`chat.update` in Tier 3,
`usergroups.users.list` in Tier 2) under their workspace-wide limits. Replicas share the
pacing state through the database, as Slack counts calls per workspace.
The backlog helpers turn the outbox's per-channel queue lengths into words for cards and App Home.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bot.slack.cards.text import escape_mrkdwn

__all__ = [
    "BACKLOG_NOTE_AT",
    "UPDATE_LANE",
    "ChannelPacer",
    "LocalTurns",
    "Turns",
    "backlog_lines",
    "backlog_note",
]

#: Queued items in one channel from which cards and App Home mention the backlog.
BACKLOG_NOTE_AT = 5

#: the outbox lane of a channel's posted cards (rewrites, replies), before the channel id;
#: not a backlog of cards to post
UPDATE_LANE = "updates "


@runtime_checkable
class Turns(Protocol):
    """Where the pacing state lives: this process (`LocalTurns`), or the database that
    replicas share (`PostgresStore`), since Slack counts calls per workspace, not per replica.

    Each key keeps one number, the time its next call is due at the steady rate (the
    "theoretical arrival time" of the generic cell rate algorithm)."""

    async def take_turn(self, key: str, interval: float, window: float) -> float:
        """Reserve `key`'s next call, which may run up to `window` seconds ahead of its due
        time, and move the due time `interval` on; returns the seconds to wait for it."""
        ...

    async def push_turn(self, key: str, seconds: float) -> None:
        """Nothing more for `key` before `seconds` from now at the steady rate."""
        ...


@dataclass
class LocalTurns:
    """Pacing state in this process: enough for one bot, and for limits that are per process."""

    _due: dict[str, float] = field(default_factory=dict)

    async def take_turn(self, key: str, interval: float, window: float) -> float:
        now = asyncio.get_running_loop().time()
        due = max(self._due.get(key, now), now)
        self._due[key] = due + interval
        return max(0.0, due - window - now)

    async def push_turn(self, key: str, seconds: float) -> None:
        now = asyncio.get_running_loop().time()
        self._due[key] = max(self._due.get(key, now), now + seconds)

    def merge(self, old: str, new: str) -> None:
        """Calls counted under `old` count under `new` from now on."""
        if (due := self._due.pop(old, None)) is not None:
            self._due[new] = max(due, self._due.get(new, due))


@dataclass
class ChannelPacer:
    """Pacing of calls per key (a channel, a method): a burst of `burst`, then `rate` a second.

    `wait` takes a turn, `sent` re-anchors it on the answer, and a 429 (`hold`) pushes the
    key's next turn past its `Retry-After`. The state is in `turns`: this process's by default,
    the database's when replicas share one workspace's limits.
    """

    rate: float = 1.0
    burst: int = 3
    #: seconds added to a wait, so timing jitter cannot make a paced post arrive early
    guard: float = 0.05
    turns: Turns = field(default_factory=LocalTurns)
    _aliases: dict[str, str] = field(default_factory=dict, init=False)
    #: keys this process saw a 429 for, and until when (a turn taken before it is not enough)
    _held: dict[str, float] = field(default_factory=dict, init=False)

    @property
    def interval(self) -> float:
        """Seconds between calls for one key once its burst is spent."""
        return 1.0 / self.rate

    def _window(self) -> float:
        return (max(1, self.burst) - 1) * self.interval

    def _key(self, channel: str) -> str:
        return self._aliases.get(channel, channel)

    async def wait(self, channel: str) -> float:
        """Wait until `channel` may take one more call, and count it; returns seconds waited."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            key = self._key(channel)
            delay = await self.turns.take_turn(key, self.interval, self._window())
            if delay > 0:
                await asyncio.sleep(delay + self.guard)
            # A 429 seen meanwhile outlasts the turn taken before it: take another.
            if self._held.get(key, 0.0) <= loop.time():
                return loop.time() - started

    async def sent(self, channel: str) -> None:
        """A call for `channel` came back: count it from now, the latest Slack can have seen it.

        Slack counts a call when it arrives, which may be later than `wait` let it go;
        anchoring here keeps a slow request from making the next ones look early.
        """
        await self.turns.push_turn(self._key(channel), self.interval)

    async def hold(self, channel: str, seconds: float) -> None:
        """Slack answered 429: nothing more for `channel` for `seconds`, then one at a time."""
        key = self._key(channel)
        self._held[key] = asyncio.get_running_loop().time() + seconds
        if len(self._held) > 10_000:
            self._held.clear()
        await self.turns.push_turn(key, seconds + self._window())

    def learn(self, asked: str, channel: str) -> None:
        """A post to `asked` (a name such as `#deploy`) landed in `channel` (its id): one budget."""
        if asked == channel or asked in self._aliases:
            return
        self._aliases[asked] = channel
        if isinstance(self.turns, LocalTurns):
            self.turns.merge(asked, channel)

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
        (
            (count, channel)
            for channel, count in backlog.items()
            if count >= at_least and not channel.startswith(UPDATE_LANE)
        ),
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
