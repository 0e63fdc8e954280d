"""Durable delivery: a worker drains one outbox topic, retrying failures with backoff.

The store writes an outbox row in the same transaction as the event it delivers, so work
survives a crash between commit and delivery; the worker is woken on commit and otherwise
sleeps until the next retry falls due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from bot.errors import BotError
from bot.models import Approval, utcnow
from bot.store import OutboxItem, Store

__all__ = ["OutboxWorker", "Retry"]

log = logging.getLogger(__name__)


class Retry(Exception):
    """Raised by a handler: this item failed and may be tried again."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


@dataclass
class OutboxWorker:
    """Delivers the items of one topic; `wake()` after a commit, `run()` for the bot's life."""

    store: Store
    topic: str
    handle: Callable[[OutboxItem], Awaitable[None]]
    base_delay: float = 1.0
    max_delay: float = 600.0
    batch: int = 50
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def wake(self) -> None:
        """New work may be due."""
        self._wake.set()

    def approval_changed(self, approval: Approval, kind: str) -> None:
        """Observer hook: every committed state change may have queued an item."""
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before try number `attempts + 1`: exponential, capped."""
        return float(min(self.max_delay, self.base_delay * 2 ** min(attempts, 20)))

    async def drain(self) -> int:
        """Deliver everything due now; returns how many items were handled."""
        handled = 0
        while items := await self.store.outbox_claim(self.topic, utcnow(), self.batch):
            for item in items:
                try:
                    await self.handle(item)
                except Exception as exc:  # any failure is retried; the item is never dropped
                    retry = exc if isinstance(exc, Retry) else Retry(f"{type(exc).__name__}: {exc}")
                    delay = retry.after if retry.after is not None else self.backoff(item.attempts)
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
                else:
                    await self.store.outbox_done(item.id)
                    handled += 1
            if len(items) < self.batch:
                break
        return handled

    async def run(self) -> None:
        """Drain, then sleep until woken or the next retry is due."""
        while True:
            self._wake.clear()
            try:
                await self.drain()
                next_due = await self.store.outbox_next_due(self.topic)
            except BotError as exc:
                log.warning("%s outbox unavailable: %s", self.topic, exc.message)
                next_due = utcnow() + timedelta(seconds=5)
            delay = None if next_due is None else (next_due - utcnow()).total_seconds()
            if delay is not None and delay <= 0:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
