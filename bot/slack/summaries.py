"""The summary message of each batch (`bot.batches`), in its first card's thread: posted once
the batch has two pending approvals, then redrawn as its approvals come, are voted on and are
decided.

The card poster tells this module of every change it handled (`BatchSummaries.changed`); the
work happens beside the outbox, one task per batch, so a batch's summary never holds up its
channel's cards. Changes coalesce: the summary is drawn when its turn comes, from the batch
as it is then, through the poster's `chat.update` pacing (a redraw that would show the same is
not sent). A summary is posted once across replicas: the first one remembered stays, a
second copy is deleted. Summaries are a convenience over the cards, not a record: a change
lost to a crash is shown by the next one.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.batches import BatchRef, BatchService
from bot.models import Approval
from bot.slack.cards.batch import render_batch_summary
from bot.slack.cards.text import Message

if TYPE_CHECKING:
    from bot.slack.poster import CardPoster

__all__ = ["BatchSummaries"]

log = logging.getLogger(__name__)

#: tries of one redraw that Slack answered with something that may pass (429, 5xx)
MAX_TRIES = 5
#: seconds between those tries, times the try's number (unless Slack names a `Retry-After`)
RETRY_DELAY = 2.0


@dataclass
class BatchSummaries:
    """Posts and redraws the batch summaries of the cards `poster` posts."""

    poster: CardPoster
    #: seconds a change waits for the ones that come with it before the summary is drawn
    debounce: float = 0.3
    _dirty: set[BatchRef] = field(default_factory=set, init=False)
    _tasks: dict[BatchRef, asyncio.Task[None]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.batches = BatchService(self.poster.service)

    def changed(self, approval: Approval) -> None:
        """`approval` changed (submitted, its card posted, voted on, decided): draw the
        summary of its batch again soon, if it has one."""
        ref = BatchRef.of(approval)
        if ref is None:
            return
        self._dirty.add(ref)
        if ref not in self._tasks:
            self._tasks[ref] = asyncio.get_running_loop().create_task(self._redraw(ref))

    async def settled(self) -> None:
        """Wait until no summary is waiting to be drawn (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks.values()))

    async def close(self) -> None:
        """Shutting down: stop drawing (the next change after a restart draws again)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task

    async def _redraw(self, ref: BatchRef) -> None:
        tries = 0
        try:
            while ref in self._dirty:
                await asyncio.sleep(self.debounce)
                self._dirty.discard(ref)
                try:
                    await self.refresh(ref)
                    tries = 0
                except Exception as exc:
                    tries += 1
                    delay = self._retry_in(exc, tries)
                    if delay is None:
                        log.warning("batch summary of %s not drawn: %r", ref.key[:80], exc)
                        continue
                    self._dirty.add(ref)
                    await asyncio.sleep(delay)
        finally:
            self._tasks.pop(ref, None)

    @staticmethod
    def _retry_in(exc: Exception, tries: int) -> float | None:
        from bot.slack.poster import translate_slack_error

        retry = translate_slack_error(exc)
        if retry is None or tries >= MAX_TRIES:
            return None
        return retry.after if retry.after is not None else RETRY_DELAY * tries

    async def refresh(self, ref: BatchRef) -> None:
        """Post the batch's summary, or redraw the one posted."""
        where = await self.poster.service.store.batch_summary(ref.channel, ref.key)
        if where is None:
            await self.post(ref)
            return
        channel, ts = where

        async def draw() -> Message:
            return await self.draw(ref)

        await self.poster.update(channel, ts, draw)

    async def draw(self, ref: BatchRef) -> Message:
        """The summary as the batch is now; its drawing is kept before it can be clicked."""
        drawing = render_batch_summary(ref, await self.batches.members(ref))
        await self.batches.keep(drawing.view)
        return drawing.message

    async def post(self, ref: BatchRef) -> None:
        """Post the summary in the thread of the batch's first card, once it has a card and two
        pending approvals."""
        members = await self.batches.members(ref)
        first = next((a for a in members if a.slack.ts and a.slack.channel), None)
        if first is None or sum(1 for a in members if a.is_pending) < 2:
            return
        assert first.slack.channel and first.slack.ts
        drawing = render_batch_summary(ref, members)
        await self.batches.keep(drawing.view)
        response = await self.poster.post_message(
            channel=first.slack.channel,
            thread_ts=await self._thread_of(first),
            text=drawing.message["text"],
            blocks=drawing.message["blocks"],
            unfurl_links=False,
            unfurl_media=False,
        )
        posted = (str(response["channel"]), str(response["ts"]))
        store = self.poster.service.store
        kept = await store.set_batch_summary(ref.channel, ref.key, *posted)
        if kept != posted:  # another replica posted one first: keep that one only
            with suppress(SlackApiError):
                await self.poster.client.chat_delete(channel=posted[0], ts=posted[1])
            return
        self.poster.remember(posted, drawing.message)

    async def _thread_of(self, card: Approval) -> str:
        """The thread `card`'s card is in: the agent's thread, or its run's thread, else its own
        (a card Slack refused in its channel went top-level to the fallback channel)."""
        assert card.slack.ts
        if card.slack.error is not None:
            return card.slack.ts
        if card.thread_ts:
            return card.thread_ts
        run_id = card.requester.run_id
        if run_id:
            run_thread = await self.poster.service.store.run_thread(card.channel, run_id)
            if run_thread:
                return run_thread
        return card.slack.ts
