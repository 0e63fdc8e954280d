"""Cards out: the Slack outbox handler that posts each approval's card once and rewrites it
when the approval is decided.

The approval is stored first; posting happens from the durable outbox, so a 429, a Slack
outage or a restart delays a card but never loses or doubles it. Each item is replayed against
the approval's current state: a card already posted is never posted again, and a card posted
after its decision shows the decision.

Exactly one card: the channel a card goes to is saved before `chat.postMessage`
(`slack.posting`) and its `ts` as soon as Slack answers, the permalink after. A post Slack
never answered (the client's timeout, a 5xx, a crash before the `ts` was saved) may still
have made a card, so the next try looks for it first (`CardFinder`) and adopts it; copies
beyond the first are rewritten to point at it, without buttons.

A card Slack refuses for good (`channel_not_found`, `is_archived`…) sets `slack.error` at
once, goes to the routing file's `fallback_channel` when one is set, and otherwise ends the
approval `rejected`/`undeliverable`: an agent never waits on a card nobody can see. A refused
bot token (`invalid_auth`…) refuses every card alike and may soon be fixed, so those cards are
tried again until `CardPoster.token_window` after their approval was created.

The outbox gives each channel its own lane (`CardPoster.lane`), and every `chat.postMessage`
waits for its channel's turn in a `ChannelPacer`, so posts stay under Slack's per-channel
limit; a 429 holds only the channel that got it. A card posted while many more wait for its
channel says so. Once a card is posted, its rewrites move to the channel's update lane, so
they never hold up new cards: `chat.update` is Tier 3, about 50 calls a minute for the whole
workspace, and every rewrite waits for its turn (`UPDATE_RATE`). Rewrites of one card
coalesce: the card is drawn when its turn comes, from the approval as it is then, and a card
that already shows that is not sent again, so a vote, an edit and the decision landing
together cost one call. Replicas share the turns through the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import AlreadyDecided
from bot.grants import GRANT_NOTES
from bot.models import Action, Approval, Priority, SlackRef, utcnow
from bot.outbox import Retry, seconds_after
from bot.service import ApprovalService
from bot.slack.cards import (
    Message,
    Progress,
    render_card,
    render_decided_card,
    render_decision_reply,
    render_grant_note,
)
from bot.slack.cards.text import escape_mrkdwn, inert, section
from bot.slack.pacing import BACKLOG_NOTE_AT, UPDATE_LANE, ChannelPacer, backlog_note
from bot.slack.recovery import DUPLICATE_EVENT, CardFinder, card_metadata
from bot.slack.summaries import BatchSummaries
from bot.store import OutboxItem

__all__ = [
    "SLACK_TOPIC",
    "TOKEN_REFUSED",
    "CardPoster",
    "default_mention",
    "retry_after",
    "translate_slack_error",
]

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

#: refusals of the bot's token or the app's install, not of one card: every call fails alike
#: until someone fixes the token or the scopes
TOKEN_REFUSED = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
        "not_allowed_token_type",
        "ekm_access_denied",
        "team_access_not_granted",
        "org_login_required",
    }
)

#: seconds after its creation an approval waits for a refused token to be fixed
TOKEN_WINDOW = 300.0

#: `chat.update` is Tier 3 ("50+ per minute", https://api.slack.com/methods/chat.update): a
#: burst of `UPDATE_BURST` then `UPDATE_RATE` a second keeps any minute within 50 calls
UPDATE_METHOD = "chat.update"
UPDATE_RATE = 45 / 60
UPDATE_BURST = 5
#: cards whose last drawing this process remembers (to skip redrawing what they show)
SHOWN_KEPT = 10_000


def update_pacer() -> ChannelPacer:
    """The workspace's `chat.update` pace (one key, the method)."""
    return ChannelPacer(rate=UPDATE_RATE, burst=UPDATE_BURST)


def _digest(text: str, blocks: Any, fields: Mapping[str, Any]) -> str:
    """What a card shows, in a few bytes: a redraw that would show the same is skipped."""
    drawn = json.dumps([text, blocks, fields], sort_keys=True, default=str)
    return hashlib.blake2b(drawn.encode(), digest_size=16).hexdigest()


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


def slack_error(exc: Exception) -> str | None:
    """Slack's error code (`channel_not_found`…) when `exc` is Slack's answer."""
    if isinstance(exc, SlackApiError):
        error = exc.response.get("error")
        return str(error) if error else None
    return None


def refused_outright(exc: SlackApiError) -> bool:
    """True when Slack's answer says it posted nothing (a refusal, a 429); False when it may
    have (a 5xx; `internal_error`: "it's possible some aspect of the operation succeeded").
    https://api.slack.com/methods/chat.postMessage#errors"""
    status, error = exc.response.status_code, slack_error(exc)
    return status == 429 or error == "ratelimited" or (status < 500 and error not in TRANSIENT)


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


def _undeliverable(approval: Approval) -> bool:
    """True when the approval ended because no card could be posted: nothing left to post."""
    return approval.decision is not None and approval.decision.action is Action.UNDELIVERABLE


@dataclass
class CardPoster:
    """Outbox handler for the `slack` topic."""

    service: ApprovalService
    client: AsyncWebClient
    mention_for: Callable[[Approval], str | None] = default_mention
    pacer: ChannelPacer = field(default_factory=ChannelPacer)
    #: the workspace's `chat.update` turns
    updates: ChannelPacer = field(default_factory=update_pacer)
    #: outbox items queued per channel (the worker's `backlog`), for the note on busy channels
    backlog: Mapping[str, int] = field(default_factory=dict)
    #: queued items behind a card from which the card mentions the backlog
    note_backlog_at: int = BACKLOG_NOTE_AT
    #: seconds after its creation an approval whose card meets a refused token (`invalid_auth`)
    #: is tried again before it ends undeliverable
    token_window: float = TOKEN_WINDOW
    #: an approval's lane once its card is posted (by this process, or read once)
    _lanes: dict[str, str] = field(default_factory=dict, init=False)
    #: the channel of each approval submitted to this process whose card is not queued yet
    _submitted: dict[str, str] = field(default_factory=dict, init=False)
    #: what each card (channel, ts) was last drawn as by this process
    _shown: OrderedDict[tuple[str, str], str] = field(default_factory=OrderedDict, init=False)
    #: a card being redrawn: one drawing at a time, so the last one sent shows the latest
    _drawing: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict, init=False)
    #: public channels joined (or tried) by this process
    _joined: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.finder = CardFinder(self.client, self.join)
        #: the summaries of batches (`bot.batches`), in their first card's thread
        self.summaries = BatchSummaries(self)

    async def lane(self, item: OutboxItem) -> str:
        """The outbox lane of an item: its approval's channel until the card is posted, so
        each channel's cards keep their order; then the channel's update lane, so rewrites
        waiting for `chat.update`'s turn never hold up the channel's new cards."""
        lane = self._lanes.get(item.approval_id)
        if lane is not None:
            return lane
        if item.kind == "submitted" and item.approval_id in self._submitted:
            return self._submitted.pop(item.approval_id)  # its card: the channel, not read
        approval = await self.service.get(item.approval_id)
        if approval.slack.ts is None:
            return approval.channel
        return self._posted(approval)

    def _posted(self, approval: Approval) -> str:
        """The approval's card is posted: from now on its items go to the update lane."""
        if len(self._lanes) >= 10_000:
            self._lanes.clear()
        lane = self._lanes[approval.id] = UPDATE_LANE + approval.channel
        return lane

    def approval_changed(self, approval: Approval, kind: str) -> None:
        """Observer hook: a submission's card goes to its channel's lane, known from here."""
        if kind == "submitted" and approval.is_pending:
            # What stays here (cards of approvals decided meanwhile, or another replica's) is
            # dropped now and then; new cards in flight are far fewer (at 10,000, a burst of
            # 10,000 submissions cleared it, and each card's lane was then read from the store)
            if len(self._submitted) >= 100_000:
                self._submitted.clear()
            self._submitted[approval.id] = approval.channel

    async def __call__(self, item: OutboxItem) -> None:
        approval = await self.service.get(item.approval_id)
        if item.kind in GRANT_NOTES:
            await self.note_grant(approval, item)
            return
        await self.handle(item, approval)
        self.summaries.changed(approval)  # its batch's summary, if it is in one

    async def handle(self, item: OutboxItem, approval: Approval) -> None:
        """Post the approval's card, or show on it what `item` changed."""
        if approval.slack.ts is None:
            if not _undeliverable(approval):
                await self.deliver(approval)
            return
        try:
            if item.kind == "escalated" and approval.is_pending:
                await self.escalate(approval)
            elif item.kind in ("voted", "edited") and approval.is_pending:
                await self.show(approval)
            elif item.status is not None and item.kind != "submitted":
                await self.rewrite(approval)
            elif approval.slack.permalink is None:  # the post's try ended before its permalink
                await self.save_permalink(approval)
        except Exception as exc:
            await self.failed(approval, exc)

    async def note_grant(self, approval: Approval, item: OutboxItem) -> None:
        """A standing approval made on this card was granted, used or revoked: a line in the
        card's thread says so (`bot.grants`)."""
        if approval.slack.channel is None or approval.slack.ts is None:
            raise Retry("the card of this standing approval is not posted yet")
        event = await self.service.store.event(item.event_id)
        grant = await self.service.store.grant(str(event.detail["grant"]))
        used_on = None
        if item.kind == "grant_used":
            used_on = await self.service.get(str(event.detail["approval"]))
        note = render_grant_note(item.kind, grant, actor=event.actor, used_on=used_on)
        try:
            await self.post_message(
                channel=approval.slack.channel,
                thread_ts=approval.slack.ts,
                text=note["text"],
                blocks=note["blocks"],
            )
        except Exception as exc:
            await self.failed(approval, exc)

    async def failed(self, approval: Approval, exc: Exception) -> None:
        """A rewrite, reply or escalation failed: again later if that may pass, else audited."""
        retry = translate_slack_error(exc)
        if retry is not None:
            raise retry from exc
        error = slack_error(exc)
        if error in TOKEN_REFUSED:  # the card is there; it waits for the token to be fixed
            raise Retry(f"Slack refused the bot token: {error}") from exc
        # A permanent refusal (message_not_found, cant_update_message…): retrying cannot help.
        reason = error or repr(exc)
        log.error("Slack refused the card of %s: %s", approval.id, reason)
        await self.service.audit(approval.id, "card_failed", None, error=reason)

    # -- posting the card once ---------------------------------------------------------------

    async def deliver(self, approval: Approval) -> None:
        """Post the card where Slack takes it, once; end the approval when nowhere does.

        A post that may have reached Slack unanswered is looked for first. Then the card's
        channel is tried, and on a refusal for good the fallback channel; what may pass (a
        429, a 5xx, a refused token within `token_window`) raises `Retry`."""
        if approval.slack.posting is not None and await self.adopt(approval):
            return
        refused: tuple[str, str] | None = None
        for channel in self.targets(approval):
            error = await self.try_post(approval, channel)
            if error is None:
                return
            refused = (channel, error)
            if error in TOKEN_REFUSED:
                await self.await_token(approval, error)
                break
            log.warning("Slack refused the card of %s in %s: %s", approval.id, channel, error)
            if approval.slack.error is None:
                approval = await self.service.set_slack_error(approval.id, error)
        await self.give_up(approval, refused)

    def targets(self, approval: Approval) -> list[str]:
        """The channels to try, in order: the card's own, unless it refused the card for good
        already, then the routing file's `fallback_channel`."""
        fallback = self.service.fallback_channel
        targets = []
        if approval.slack.error is None or approval.slack.error in TOKEN_REFUSED:
            targets.append(approval.channel)
        if fallback and fallback != approval.channel and approval.is_pending:
            targets.append(fallback)
        return targets

    async def try_post(self, approval: Approval, channel: str) -> str | None:
        """Post the card in `channel`: None once posted, else Slack's refusal for good; raises
        `Retry` for what may pass."""
        try:
            await self.post(approval, channel)
        except SlackApiError as exc:
            retry = translate_slack_error(exc)
            if retry is not None:
                raise retry from exc
            return slack_error(exc) or f"HTTP {exc.response.status_code}"
        return None

    async def await_token(self, approval: Approval, error: str) -> None:
        """Slack refused the bot token: say so on the record at once, and try again (`Retry`)
        until `token_window` after the approval was created; returns when that is past."""
        if approval.slack.error != error:
            approval = await self.service.set_slack_error(approval.id, error)
        left = self.token_window - (utcnow() - approval.created_at).total_seconds()
        if left > 0:
            raise Retry(f"Slack refused the bot token: {error}", within=left)

    async def give_up(self, approval: Approval, refused: tuple[str, str] | None) -> None:
        """No channel took the card: the approval ends `rejected`/`undeliverable`, with
        Slack's error as its comment, so whoever waits on it hears at once."""
        comment = approval.slack.error or (refused[1] if refused else "no channel to post in")
        if refused is not None and refused[0] != approval.channel:
            comment += f"; the fallback channel {refused[0]} refused it too: {refused[1]}"
        if not approval.is_pending:  # decided meanwhile: its card has nowhere to go
            await self.service.audit(approval.id, "card_failed", None, error=comment)
            return
        log.error("no card for %s in any channel: %s", approval.id, comment)
        try:
            await self.service.undeliverable(approval.id, comment)
        except AlreadyDecided:
            return

    async def adopt(self, approval: Approval) -> bool:
        """Look for the cards an unanswered post may have left; keep the first (shown as the
        approval stands now), rewrite the others as pointers to it. True when one was found."""
        channel = approval.slack.posting
        assert channel is not None
        thread_ts = None
        if channel == approval.channel:
            thread_ts = approval.thread_ts or await self._known_run_thread(approval)
        try:
            found = await self.finder.find(approval.id, channel, thread_ts, approval.created_at)
        except SlackApiError as exc:
            retry = translate_slack_error(exc)
            if retry is not None:
                raise retry from exc
            log.warning("cannot look for the card of %s in %s: %s", approval.id, channel, exc)
            return False
        if found is None or not found[1]:
            return False
        channel_id, (keep, *copies) = found
        permalink = await self.permalink(channel_id, keep)
        # All before the ts is saved: a crash here leaves the search to redo it.
        for ts in copies:
            await self.mark_duplicate(approval, channel_id, ts, permalink)
        await self.update(channel_id, keep, self._drawer(approval.id))
        await self.service.set_slack_ref(
            approval.id, SlackRef(channel=channel_id, ts=keep, permalink=permalink)
        )
        await self.service.audit(
            approval.id, "card_adopted", None, channel=channel_id, ts=keep, copies=len(copies)
        )
        return True

    async def mark_duplicate(
        self, approval: Approval, channel: str, ts: str, permalink: str | None
    ) -> None:
        """Rewrite a second copy of a card: no buttons, a pointer to the card kept."""
        where = f"<{permalink}|the card above>" if permalink else "the card above"
        text = f"Duplicate: this approval was posted twice. Decide it on {where}."
        message: Message = {"text": text, "blocks": [section(text)]}

        async def duplicate() -> Message:
            return message

        await self.update(
            channel, ts, duplicate, metadata=card_metadata(approval.id, DUPLICATE_EVENT)
        )

    async def permalink(self, channel: str, ts: str) -> str | None:
        """The message's permalink, or None when Slack does not give it now."""
        try:
            link = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("no permalink for %s/%s: %s", channel, ts, exc)
            return None
        return str(link["permalink"])

    async def save_permalink(self, approval: Approval) -> None:
        """Add the card's permalink to the record, when Slack gives it."""
        assert approval.slack.channel and approval.slack.ts
        permalink = await self.permalink(approval.slack.channel, approval.slack.ts)
        if permalink is not None:
            ref = approval.slack.model_copy(update={"permalink": permalink})
            await self.service.set_slack_ref(approval.id, ref)

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

    async def show(self, approval: Approval) -> None:
        """Show the approval as it stands on each of its cards (a vote was counted, the
        arguments were edited, it was decided), each drawn when its `chat.update` turn comes.

        A pending card is drawn at once too: when it shows that already (a vote it counted),
        nothing waits for a turn. A decision is news to its card, so it is drawn only then."""
        draw = self._drawer(approval.id)
        drawn = self.render(approval) if approval.is_pending else None
        for channel, ts in await self.cards(approval):
            await self.update(channel, ts, draw, drawn=drawn)

    def _drawer(self, approval_id: str) -> Callable[[], Awaitable[Message]]:
        """Draws the approval's card as the approval is when called."""

        async def draw() -> Message:
            return self.render(await self.service.get(approval_id))

        return draw

    async def update(
        self,
        channel: str,
        ts: str,
        draw: Callable[[], Awaitable[Message]],
        *,
        drawn: Message | None = None,
        **fields: Any,
    ) -> None:
        """`chat.update` of one card in the workspace's turn, with `draw()` as it is then.

        Nothing is sent when the card already shows it: `drawn` (what it would show now)
        skips even the wait. A 429 holds every update for its `Retry-After`."""
        card = (channel, ts)
        async with self._drawing_lock(card):
            if drawn is not None and self._shows(card, drawn, fields):
                return
            await self.updates.wait(UPDATE_METHOD)
            message = await draw()
            if self._shows(card, message, fields):
                return
            try:
                await self.client.chat_update(
                    channel=channel, ts=ts, text=message["text"], blocks=message["blocks"], **fields
                )
            except SlackApiError as exc:
                if exc.response.status_code == 429:
                    after = retry_after(exc)
                    await self.updates.hold(UPDATE_METHOD, after or self.updates.interval)
                raise
            finally:
                await self.updates.sent(UPDATE_METHOD)
            self.remember(card, message, fields)

    def _shows(self, card: tuple[str, str], message: Message, fields: Mapping[str, Any]) -> bool:
        return self._shown.get(card) == _digest(message["text"], message["blocks"], fields)

    def remember(
        self, card: tuple[str, str], message: Message, fields: Mapping[str, Any] | None = None
    ) -> None:
        """`card` shows `message` now (posted or updated by this process)."""
        self._shown[card] = _digest(message["text"], message["blocks"], fields or {})
        self._shown.move_to_end(card)
        while len(self._shown) > SHOWN_KEPT:
            self._shown.popitem(last=False)

    @asynccontextmanager
    async def _drawing_lock(self, card: tuple[str, str]) -> AsyncIterator[None]:
        lock = self._drawing.setdefault(card, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._drawing.get(card) is lock:
                del self._drawing[card]

    async def escalate(self, approval: Approval) -> None:
        """Nobody decided in time: mention the escalation group, or re-post to its channel."""
        target = approval.policy.escalate_to
        await self.show(approval)
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
            await self.pacer.sent(channel)
            if exc.response.status_code == 429:
                after = retry_after(exc)
                await self.pacer.hold(channel, self.pacer.interval if after is None else after)
            raise
        await self.pacer.sent(channel)
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

    async def post(self, approval: Approval, channel: str) -> None:
        """Post the card in `channel` (in its thread, if any) and save its `ts` at once.

        The channel is saved first (`slack.posting`): a crash or a lost answer between the
        post and the save leaves the next try a place to look for the card."""
        thread_ts = None
        if channel == approval.channel:
            thread_ts = approval.thread_ts or await self._run_thread(approval)
        if approval.slack.posting != channel:
            await self.service.mark_posting(approval.id, channel)
        await self.pacer.wait(channel)
        # Drawn once it is this card's turn: a decision taken meanwhile shows right away, and
        # the backlog note counts what still waits behind it.
        approval = await self.service.get(approval.id)
        message = self.render(approval, self.backlog_notes(approval))
        fields: dict[str, Any] = {
            "text": message["text"],
            "blocks": message["blocks"],
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": card_metadata(approval.id),
        }
        if thread_ts:
            fields["thread_ts"] = thread_ts
        try:
            response = await self._send(channel, fields)
        except SlackApiError as exc:
            if refused_outright(exc):  # nothing to look for next time
                await self.service.mark_posting(approval.id, None)
            raise
        posted, ts = str(response["channel"]), str(response["ts"])
        self.remember((posted, ts), message)
        self.finder.learn(channel, posted)
        if approval.slack.error in TOKEN_REFUSED:  # the token works again: cleared before the
            await self.service.set_slack_error(approval.id, None)  # card shows on the record
        approval = await self.service.set_slack_ref(approval.id, SlackRef(channel=posted, ts=ts))
        self._posted(approval)  # its decision's rewrite then needs no read to find its lane
        await self.service.audit(approval.id, "card_posted", None, channel=posted, ts=ts)
        await self.save_permalink(approval)

    async def rewrite(self, approval: Approval) -> None:
        """Show the outcome on the card, without buttons, and say it in the thread."""
        await self.show(approval)
        assert approval.slack.channel and approval.slack.ts
        reply = render_decision_reply(approval)
        await self.post_message(
            channel=approval.slack.channel,
            thread_ts=approval.slack.ts,
            text=reply["text"],
            blocks=reply["blocks"],
        )

    async def _known_run_thread(self, approval: Approval) -> str | None:
        """The thread of the approval's agent run in its channel, if one was posted."""
        run_id = approval.requester.run_id
        if not run_id:
            return None
        return await self.service.store.run_thread(approval.channel, run_id)

    async def _run_thread(self, approval: Approval) -> str | None:
        """The thread of the approval's agent run, posted first when it is the run's first."""
        run_id = approval.requester.run_id
        if not run_id:
            return None
        store = self.service.store
        if (ts := await store.run_thread(approval.channel, run_id)) is not None:
            return ts
        agent = inert(approval.requester.agent, 80) if approval.requester.agent else "an agent"
        text = f":robot_face: Approvals for run {inert(run_id, 80)} of {agent}"
        response = await self.post_message(channel=approval.channel, text=text)
        await store.set_run_thread(approval.channel, run_id, str(response["ts"]))
        return await store.run_thread(approval.channel, run_id)
