"""Durable delivery: a worker drains one outbox topic, retrying failures with backoff.

The store writes an outbox row in the same transaction as the event it delivers, so work
survives a crash between commit and delivery; the worker is woken on commit and otherwise
sleeps until the next retry falls due.

Items are sorted into lanes (by default one lane for the whole topic; the Slack cards use one
lane per channel). A lane delivers its items one at a time, in order; lanes run side by side,
so a long queue for one channel never delays another. When the other side names a time to
come back (`Retry-After`), the lane waits that long and tries the same item again, keeping
its order. Any other failure sends the item back to the store with a backoff and the lane
moves on; handlers replay each item against the current state, so an item that was
overtaken meanwhile finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.errors import BotError
from bot.models import Approval, utcnow
from bot.store import OutboxItem, Store
from bot.store.base import LAST_ID

__all__ = ["OutboxWorker", "Retry", "seconds_after"]

log = logging.getLogger(__name__)


class Retry(Exception):
    """Raised by a handler: this item failed and may be tried again.

    `after`: the other side named when to come back (`Retry-After`); the lane waits that long.
    `within`: try again at the latest this many seconds from now, however far the backoff has
    grown (a handler that gives up at a deadline must be asked again by then).
    """

    def __init__(
        self, reason: str, after: float | None = None, within: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after
        self.within = within


async def _one_lane(item: OutboxItem) -> str:
    return ""


def seconds_after(value: str | list[str] | None) -> float | None:
    """The seconds of a `Retry-After` header (Slack's or a webhook receiver's), if usable."""
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


@dataclass
class OutboxWorker:
    """Delivers the items of one topic; `wake()` after a commit, `run()` for the bot's life."""

    store: Store
    topic: str
    handle: Callable[[OutboxItem], Awaitable[None]]
    #: the lane of an item: items of one lane are delivered in order, lanes side by side
    lane: Callable[[OutboxItem], Awaitable[str]] = _one_lane
    #: items claimed and not yet delivered, per lane (shared with whoever reports on it)
    backlog: Counter[str] = field(default_factory=Counter)
    base_delay: float = 1.0
    max_delay: float = 600.0
    batch: int = 50
    #: while items are in flight the store cannot tell when the next retry is due: look again
    poll: float = 1.0
    #: with nothing due, look at the store again after this many seconds anyway
    idle: float = 60.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _lanes: dict[str, deque[OutboxItem]] = field(default_factory=dict, init=False)
    _claimed: set[int] = field(default_factory=set, init=False)
    #: items that left their lane since the last claim query: its rows may predate that
    _left: set[int] = field(default_factory=set, init=False)
    #: the newest item claimed so far: a commit only adds items newer than that
    _newest: int = field(default=0, init=False)
    #: read every due item on the next claim, not only new ones (retries, dropped items)
    _sweep: bool = field(default=True, init=False)
    _swept_at: float = field(default=0.0, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def wake(self) -> None:
        """New work may be due."""
        self._wake.set()

    def approval_changed(self, approval: Approval, kind: str) -> None:
        """Observer hook: every committed state change may have queued an item."""
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before try number `attempts + 1`: exponential, capped."""
        return float(min(self.max_delay, self.base_delay * 2 ** min(attempts, 20)))

    async def claim(self) -> int:
        """Queue every item due now in its lane, starting lanes as needed; returns how many.

        A claim reads the items newer than any claimed, all that a commit can add. Then, at
        least every `poll` seconds, a sweep reads every due item but those in flight (the
        store leaves them out: with thousands of cards queued behind Slack's pace, reading
        them each second took 7 % of the interpreter under a burst of submissions), so a retry
        falls due in time however often commits wake the worker. New items come first: a
        sweep that found them instead named every item in flight again for each page of them,
        in the store's writer thread, holding up the commits of a burst of submissions by
        hundreds of milliseconds a second.

        A claim takes what was due when it began: items committed meanwhile wait for the next
        one (under a stream of submissions a claim would otherwise never end). Each further
        read of a sweep asks for twice as many items, as each names every item in flight
        again: a few reads of the queue, not one per `batch`.
        """
        now, clock = utcnow(), asyncio.get_running_loop().time()
        added = await self._claim(now, after=self._newest) if self._newest else 0
        if self._sweep or clock - self._swept_at >= self.poll:
            self._sweep, self._swept_at = False, clock
            added += await self._claim(now, upto=self._newest or LAST_ID)
        return added

    async def _claim(self, now: datetime, *, after: int = 0, upto: int = LAST_ID) -> int:
        """Queue the items due at `now` queued after item `after`; without it, every item due
        but those in flight (a sweep), with `upto` those queued up to that item. Returns how
        many."""
        added, more = 0, self.batch
        while True:
            self._left.clear()
            held = () if after else list(self._claimed)
            items = await self.store.outbox_claim(self.topic, now, more, after, held, upto)
            for item in items:
                if item.id not in self._claimed and item.id not in self._left:
                    await self._enqueue(item)
                    added += 1
                self._newest = max(self._newest, item.id)
            if len(items) < more:
                return added
            if after:
                after = items[-1].id
            else:
                more *= 2

    async def _enqueue(self, item: OutboxItem) -> None:
        try:
            lane = await self.lane(item)
        except Exception as exc:  # the handler meets the same problem and retries it
            log.warning("%s item %d has no lane: %s", self.topic, item.id, exc)
            lane = ""
        self._claimed.add(item.id)
        self.backlog[lane] += 1
        if lane in self._lanes:
            self._lanes[lane].append(item)
            return
        self._lanes[lane] = deque([item])
        task = asyncio.create_task(self._deliver(lane), name=f"{self.topic}-lane")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, lane: str) -> None:
        """Work through one lane until it is empty."""
        queue = self._lanes[lane]
        try:
            while queue:
                try:
                    wait = await self._attempt(queue[0])
                except BotError as exc:  # the store failed: keep the item, try it again soon
                    log.warning("%s outbox unavailable: %s", self.topic, exc.message)
                    await asyncio.sleep(5)
                    continue
                if wait is None:
                    self._release(lane, queue.popleft())
                else:
                    queue[0] = replace(queue[0], attempts=queue[0].attempts + 1)
                    await asyncio.sleep(wait)
        except Exception:
            log.exception("%s lane %r stopped; its items wait for the next claim", self.topic, lane)
        finally:
            if queue:  # still in the store: claimed again by the next sweep
                self._sweep = True
            while queue:
                self._release(lane, queue.popleft())
            del self._lanes[lane]
            self._wake.set()  # with nothing in flight, the store knows the next due time again

    def _release(self, lane: str, item: OutboxItem) -> None:
        self._claimed.discard(item.id)
        self._left.add(item.id)
        self.backlog[lane] -= 1
        if self.backlog[lane] <= 0:
            del self.backlog[lane]

    async def _attempt(self, item: OutboxItem) -> float | None:
        """Deliver `item` once; on failure, record when to try again.

        Returns the seconds the lane waits before trying `item` again when the failure named
        them (`Retry.after`); None when the item leaves the lane (delivered, or due later).
        """
        try:
            await self.handle(item)
        except Exception as exc:  # any failure is retried; the item is never dropped
            retry = exc if isinstance(exc, Retry) else Retry(f"{type(exc).__name__}: {exc}")
            delay = retry.after if retry.after is not None else self.backoff(item.attempts)
            if retry.within is not None:
                delay = max(0.0, min(delay, retry.within))
            log.warning(
                "%s delivery for %s failed (try %d): %s; again in %.1fs",
                self.topic,
                item.approval_id,
                item.attempts + 1,
                retry.reason,
                delay,
            )
            due = utcnow() + timedelta(seconds=delay)
            await self.store.outbox_retry(item.id, due, retry.reason)
            return retry.after
        await self.store.outbox_done(item.id)
        return None

    async def run(self) -> None:
        """Claim due work, then sleep until woken or the next retry is due."""
        try:
            while True:
                self._wake.clear()
                try:
                    await self.claim()
                    # With items in flight the earliest due is one of them, and a retry may
                    # fall due meanwhile: look again after `poll`, without asking the store.
                    in_flight = bool(self._claimed)
                    next_due = None if in_flight else await self.store.outbox_next_due(self.topic)
                except BotError as exc:
                    log.warning("%s outbox unavailable: %s", self.topic, exc.message)
                    in_flight, next_due = False, utcnow() + timedelta(seconds=5)
                # Idle, look again now and then: work another process queued (`approval-bot
                # decide`) wakes this one through the store, and a lost wake costs this much.
                delay = self.idle if next_due is None else (next_due - utcnow()).total_seconds()
                if in_flight:
                    delay = self.poll
                elif delay is not None and delay <= 0:
                    self._sweep = True  # an item fell due and is not claimed yet
                    continue
                # asyncio.timeout, unlike wait_for, never swallows a cancel that races the wake.
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    self._sweep = True  # a retry fell due, or another replica's lease lapsed
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
