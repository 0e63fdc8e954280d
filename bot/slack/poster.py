"""Cards out: the Slack outbox handler that posts each approval's card once and rewrites it
when the approval is decided.

The approval is stored first; posting happens from the durable outbox, so a 429, a Slack
outage or a restart delays a card but never loses or doubles it. Each item is replayed against
the approval's current state: a card already posted is never posted again, and a card posted
after its decision shows the decision.

The outbox gives each channel its own lane (`CardPoster.lane`), and every `chat.postMessage`
waits for its channel's turn in a `ChannelPacer`, so posts stay under Slack's per-channel
limit; a 429 holds only the channel that got it. `chat.update` is another, wider limit and is
not paced. A card posted while many more wait for its channel says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.models import Approval, Priority, SlackRef
from bot.outbox import Retry, seconds_after
from bot.service import ApprovalService
from bot.slack.cards import (
    Message,
    Progress,
    render_card,
    render_decided_card,
    render_decision_reply,
)
from bot.slack.cards.text import escape_mrkdwn
from bot.slack.pacing import BACKLOG_NOTE_AT, ChannelPacer, backlog_note
from bot.store import OutboxItem

__all__ = ["SLACK_TOPIC", "CardPoster", "default_mention", "retry_after", "translate_slack_error"]

log = logging.getLogger(__name__)

SLACK_TOPIC = "slack"

#: Slack errors worth trying again; any other `ok: false` is a permanent refusal.
TRANSIENT = {
    "ratelimited",
    "fatal_error",
    "internal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
}


def default_mention(approval: Approval) -> str | None:
    """The rule's `mention`, else `<!here>` for high and critical requests."""
    if approval.policy.mention:
        return approval.policy.mention
    return "here" if approval.priority in (Priority.HIGH, Priority.CRITICAL) else None


def card_progress(approval: Approval) -> Progress | None:
    """The N-of-M line for the card, when the policy asks for more than one approver."""
    if approval.policy.required_approvals <= 1:
        return None
    return Progress(
        required=approval.policy.required_approvals,
        approvers=approval.progress.approved_by,
        edited=approval.progress.args is not None,
    )


def retry_after(exc: SlackApiError) -> float | None:
    """The seconds of a `Retry-After` header, if Slack sent one."""
    headers = exc.response.headers
    return seconds_after(headers.get("Retry-After") or headers.get("retry-after"))


def translate_slack_error(exc: Exception) -> Retry | None:
    """A Retry for failures that may pass (429, 5xx, network); None for a permanent refusal."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        error = str(exc.response.get("error", ""))
        if status == 429 or status >= 500 or error in TRANSIENT:
            return Retry(f"Slack answered {status} {error}".strip(), after=retry_after(exc))
        return None
    if isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
        return Retry(f"{type(exc).__name__}: {exc}")
    return None


@dataclass
class CardPoster:
    """Outbox handler for the `slack` topic."""

    service: ApprovalService
    client: AsyncWebClient
    mention_for: Callable[[Approval], str | None] = default_mention
    pacer: ChannelPacer = field(default_factory=ChannelPacer)
    #: outbox items queued per channel (the worker's `backlog`), for the note on busy channels
    backlog: Mapping[str, int] = field(default_factory=dict)
    #: queued items behind a card from which the card mentions the backlog
    note_backlog_at: int = BACKLOG_NOTE_AT
    _channels: dict[str, str] = field(default_factory=dict, init=False)
    #: public channels joined (or tried) by this process
    _joined: set[str] = field(default_factory=set, init=False)

    async def lane(self, item: OutboxItem) -> str:
        """The outbox lane of an item: its approval's channel, so each channel keeps its order."""
        channel = self._channels.get(item.approval_id)
        if channel is None:  # an approval's channel never changes: read it once
            channel = (await self.service.get(item.approval_id)).channel
            if len(self._channels) >= 10_000:
                self._channels.clear()
            self._channels[item.approval_id] = channel
        return channel

    async def __call__(self, item: OutboxItem) -> None:
        approval = await self.service.get(item.approval_id)
        try:
            if approval.slack.ts is None:
                await self.post(approval)
            elif item.kind == "escalated" and approval.is_pending:
                await self.escalate(approval)
            elif item.kind in ("voted", "edited") and approval.is_pending:
                await self.refresh(approval)
            elif item.status is not None and item.kind != "submitted":
                await self.rewrite(approval)
        except Exception as exc:
            retry = translate_slack_error(exc)
            if retry is not None:
                raise retry from exc
            # A permanent refusal (channel_not_found, not_in_channel…): retrying cannot help.
            reason = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
            log.error("Slack refused the card of %s: %s", approval.id, reason)
            await self.service.audit(approval.id, "card_failed", None, error=str(reason))

    def render(self, approval: Approval, notes: tuple[str, ...] = ()) -> Message:
        """The card as it should look now; `notes` go under a pending card's own notes."""
        if approval.is_pending:
            return render_card(
                approval,
                mention=self.mention_for(approval),
                progress=card_progress(approval),
                notes=(*self.notes(approval), *notes),
            )
        return render_decided_card(approval)

    def notes(self, approval: Approval) -> tuple[str, ...]:
        """Lines under a pending card: an escalation."""
        notes = []
        if approval.progress.escalated:
            notes.append("Escalated: nobody decided in time.")
        return tuple(notes)

    async def cards(self, approval: Approval) -> list[tuple[str, str]]:
        """Every message showing this approval: the card, then copies (escalation)."""
        assert approval.slack.channel and approval.slack.ts
        card = (approval.slack.channel, approval.slack.ts)
        if not approval.progress.escalated:  # copies are posted by escalation only
            return [card]
        return [card, *await self.service.store.card_copies(approval.id)]

    async def refresh(self, approval: Approval) -> None:
        """Redraw a pending card (a vote was counted, the arguments were edited)."""
        message = self.render(approval)
        for channel, ts in await self.cards(approval):
            await self.client.chat_update(
                channel=channel, ts=ts, text=message["text"], blocks=message["blocks"]
            )

    async def escalate(self, approval: Approval) -> None:
        """Nobody decided in time: mention the escalation group, or re-post to its channel."""
        target = approval.policy.escalate_to
        await self.refresh(approval)
        if not target:
            return
        assert approval.slack.channel and approval.slack.ts
        if target[0] == "S":
            text = (
                f"<!subteam^{target}> no decision yet on {escape_mrkdwn(approval.tool_name)}; "
                "please take a look."
            )
            await self.post_message(
                channel=approval.slack.channel, thread_ts=approval.slack.ts, text=text
            )
            return
        if any(channel == target for channel, _ in await self.cards(approval)):
            return
        message = self.render(approval)
        response = await self.post_message(
            channel=target, text=message["text"], blocks=message["blocks"], unfurl_links=False
        )
        await self.service.store.add_card_copy(
            approval.id, str(response["channel"]), str(response["ts"])
        )

    async def post_message(self, *, channel: str, **fields: Any) -> Any:
        """`chat.postMessage` in `channel`'s turn."""
        await self.pacer.wait(channel)
        return await self._send(channel, fields)

    async def _send(self, channel: str, fields: dict[str, Any]) -> Any:
        """`chat.postMessage` now, its turn taken; a 429 holds the channel for `Retry-After`."""
        try:
            response = await self.client.chat_postMessage(channel=channel, **fields)
        except SlackApiError as exc:
            self.pacer.sent(channel)
            if exc.response.status_code == 429:
                after = retry_after(exc)
                self.pacer.hold(channel, self.pacer.interval if after is None else after)
            raise
        self.pacer.sent(channel)
        self.pacer.learn(channel, str(response["channel"]))
        await self.join(str(response["channel"]))
        return response

    async def join(self, channel: str) -> None:
        """Join a public channel the bot posted in without being a member (`chat:write.public`):
        Slack sends message events only from channels the bot is in, so without this, an
        `approve` typed under its card would never reach it. Once per channel."""
        if channel in self._joined or not channel.startswith("C"):
            return
        self._joined.add(channel)
        try:
            await self.client.conversations_join(channel=channel)
        except SlackApiError as exc:  # a private channel (already a member), no scope…
            error = exc.response.get("error")
            if error != "method_not_supported_for_channel_type":
                log.warning("could not join %s: %s", channel, error)

    def backlog_notes(self, approval: Approval) -> tuple[str, ...]:
        """A note when many more items queue behind this card in its channel."""
        waiting = self.backlog.get(approval.channel, 0) - 1  # the card itself is counted
        if waiting < self.note_backlog_at:
            return ()
        return (backlog_note(waiting, self.pacer),)

    async def post(self, approval: Approval) -> None:
        """Post the card (in its thread, if any) and remember where it went."""
        thread_ts = approval.thread_ts or await self._run_thread(approval)
        await self.pacer.wait(approval.channel)
        # Drawn once it is this card's turn: a decision taken meanwhile shows right away, and
        # the backlog note counts what still waits behind it.
        approval = await self.service.get(approval.id)
        message = self.render(approval, self.backlog_notes(approval))
        fields: dict[str, Any] = {
            "text": message["text"],
            "blocks": message["blocks"],
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {"event_type": "approval_card", "event_payload": {"id": approval.id}},
        }
        if thread_ts:
            fields["thread_ts"] = thread_ts
        response = await self._send(approval.channel, fields)
        channel, ts = str(response["channel"]), str(response["ts"])
        permalink = None
        try:
            link = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
            permalink = str(link["permalink"])
        except (SlackApiError, aiohttp.ClientError) as exc:
            log.warning("no permalink for %s: %s", approval.id, exc)
        await self.service.set_slack_ref(
            approval.id, SlackRef(channel=channel, ts=ts, permalink=permalink)
        )
        await self.service.audit(approval.id, "card_posted", None, channel=channel, ts=ts)

    async def rewrite(self, approval: Approval) -> None:
        """Show the outcome on the card, without buttons, and say it in the thread."""
        message = render_decided_card(approval)
        for channel, ts in await self.cards(approval):
            await self.client.chat_update(
                channel=channel, ts=ts, text=message["text"], blocks=message["blocks"]
            )
        assert approval.slack.channel and approval.slack.ts
        reply = render_decision_reply(approval)
        await self.post_message(
            channel=approval.slack.channel,
            thread_ts=approval.slack.ts,
            text=reply["text"],
            blocks=reply["blocks"],
        )

    async def _run_thread(self, approval: Approval) -> str | None:
        run_id = approval.requester.run_id
        if not run_id:
            return None
        store = self.service.store
        if (ts := await store.run_thread(approval.channel, run_id)) is not None:
            return ts
        agent = approval.requester.agent or "an agent"
        text = f":robot_face: Approvals for run `{escape_mrkdwn(run_id)}` of {escape_mrkdwn(agent)}"
        response = await self.post_message(channel=approval.channel, text=text)
        await store.set_run_thread(approval.channel, run_id, str(response["ts"]))
        return await store.run_thread(approval.channel, run_id)
