"""Batches on Slack (`bot.batches`): "Approve all N", "Reject all N…" and its reason modal, on a
batch's summary in its thread (`bot.slack.summaries`) and in App Home, where each viewer sees
the batches they can act on.

A click names a drawing of the batch (its button value), and decides exactly the approvals that
drawing listed, each through the service as a click on its card would: it is answered once
those decisions are committed, within Slack's time (what it leaves untried is told), and the
person is told what was decided and what was refused and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.batches import BatchRef, BatchResult, BatchService
from bot.errors import BotError
from bot.models import Approval
from bot.slack.cards import read_click, read_text, read_user, render_notice_modal
from bot.slack.cards.batch import (
    parse_batch_reject,
    read_batch_metadata,
    read_batch_value,
    render_batch_reject_modal,
    render_batch_result,
    render_batch_result_view,
    render_batch_summary,
)
from bot.slack.cards.text import Block, escape_mrkdwn, plain
from bot.slack.lookups import answer_by

if TYPE_CHECKING:
    from bot.slack.listeners import Listeners

__all__ = ["BatchListeners"]

log = logging.getLogger(__name__)

#: batches shown in one person's App Home (each up to a dozen blocks of its 100)
MAX_HOME_BATCHES = 2
#: seconds before the answer deadline at which a batch stops deciding more approvals
STOP_MARGIN = 0.25


def _stop_before_answer() -> Callable[[], bool] | None:
    """True once the Slack request being handled must be answered soon (None: no deadline)."""
    deadline = answer_by.get()
    if deadline is None:
        return None
    loop = asyncio.get_running_loop()
    return lambda: loop.time() >= deadline - STOP_MARGIN


@dataclass
class BatchListeners:
    """The batch handlers, beside the card's (`listeners`)."""

    listeners: Listeners
    batches: BatchService = field(init=False)

    def __post_init__(self) -> None:
        self.batches = BatchService(self.listeners.service)

    async def approve_all(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """Approve all N: acknowledged once the decisions are committed, then told."""
        user, value = read_click(body)
        view_id = read_batch_value(value)
        try:
            view = await self.batches.view(view_id)
            result = await self.batches.decide_batch(
                view,
                user,
                approve=True,
                name=self.listeners.names.name_now(user, body),
                stop=_stop_before_answer(),
            )
        except BotError as exc:
            await ack()
            await self.listeners.tell(client, body, _nothing_changed(exc))
            return
        await ack()
        await self.report(client, body, result)
        await self.listeners.refresh_home(client, body)

    async def open_reject(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """Reject all N…: the reason modal (each rejection is checked on its submit)."""
        _, value = read_click(body)
        view_id = read_batch_value(value)
        trigger_id = read_text(body, "trigger_id")
        await ack()
        try:
            view = await self.batches.view(view_id)
        except BotError as exc:
            await self.listeners.tell(client, body, _nothing_changed(exc))
            return
        source = body.get("view")
        home = isinstance(source, dict) and source.get("type") == "home"
        modal = render_batch_reject_modal(view, home=home)
        await self.listeners.open_view(client, body, trigger_id, modal)

    async def reject_submitted(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """The reason given: reject each approval the drawing listed, then show what was done
        in the modal's place."""
        user = read_user(body)
        view_id, home = read_batch_metadata(body["view"]["private_metadata"])
        reason = parse_batch_reject(body["view"]["state"]["values"])
        try:
            view = await self.batches.view(view_id)
            result = await self.batches.decide_batch(
                view,
                user,
                approve=False,
                comment=reason,
                name=self.listeners.names.name_now(user, body),
                stop=_stop_before_answer(),
            )
        except BotError as exc:
            notice = render_notice_modal("Not changed", f"Nothing changed: {exc.message}")
            await ack(response_action="update", view=notice)
            return
        await ack(response_action="update", view=render_batch_result_view(result))
        if home:
            await self.listeners.publish_home(self.listeners.client, user)

    async def report(
        self, client: AsyncWebClient, body: dict[str, Any], result: BatchResult
    ) -> None:
        """What a batch click did, for the person who clicked: an ephemeral note under the
        summary (in its thread), or a direct message when they clicked in App Home."""
        user = body["user"]["id"]
        message = render_batch_result(result)
        container = body.get("container")
        channel = container.get("channel_id") if isinstance(container, dict) else None
        thread = container.get("thread_ts") if isinstance(container, dict) else None
        try:
            if isinstance(channel, str) and channel:
                await client.chat_postEphemeral(
                    channel=channel,
                    user=user,
                    text=message["text"],
                    blocks=message["blocks"],
                    thread_ts=thread if isinstance(thread, str) and thread else None,
                )
            else:
                await client.chat_postMessage(
                    channel=user, text=message["text"], blocks=message["blocks"]
                )
        except SlackApiError as exc:
            log.warning("could not tell %s what a batch did: %s", user, exc.response.get("error"))

    async def home_section(self, user: str) -> list[Block]:
        """App Home's batches: per batch, the summary of the pending approvals `user` may
        decide or requested, with its buttons, when there are two or more."""
        try:
            visible = await self.listeners.visible_to(user)
        except BotError as exc:
            log.warning("batches left out of App Home: %s", exc.message)
            return []
        groups: dict[BatchRef, list[Approval]] = {}
        for approval in reversed(visible):  # the oldest first, as in a batch
            ref = BatchRef.of(approval)
            if ref is not None:
                groups.setdefault(ref, []).append(approval)
        shown = [(ref, members) for ref, members in groups.items() if len(members) >= 2]
        if not shown:
            return []
        blocks: list[Block] = [{"type": "header", "text": plain("Batches", 150)}]
        for ref, members in shown[:MAX_HOME_BATCHES]:
            drawing = render_batch_summary(ref, members, home=True)
            try:
                await self.batches.keep(drawing.view)
            except BotError as exc:
                log.warning("a batch left out of App Home: %s", exc.message)
                continue
            blocks.extend(drawing.message["blocks"])
            blocks.append({"type": "divider"})
        if len(shown) > MAX_HOME_BATCHES:
            more = len(shown) - MAX_HOME_BATCHES
            blocks.append(
                {
                    "type": "context",
                    "elements": [
                        {"type": "mrkdwn", "text": f"… and {more} more batches: see their threads"}
                    ],
                }
            )
        return blocks


def _nothing_changed(exc: BotError) -> str:
    return f"Nothing changed: {escape_mrkdwn(exc.message.rstrip('.'))}."
