"""The Slack surface: Bolt listeners that parse a payload, call the service, and answer.

Every click is read, then acknowledged (Slack allows 3 s), then decided through the service,
which alone says who may decide what: a click that is not allowed, comes late, or was cast on
arguments edited since gets an ephemeral note and changes nothing. A payload without what its
listener needs (a Slack user, a button value…) is answered 400 and never acted on.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import suppress
from contextvars import copy_context
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import AlreadyDecided, BotError, InvalidEdit, NotFound, StaleVote
from bot.models import Action, Approval, DecisionKind, Priority, Status
from bot.policy import NotAnApprover
from bot.service import ApprovalService
from bot.slack.batches import BatchListeners
from bot.slack.cards import (
    ALLOW_ACTION,
    ALLOW_MODAL,
    APPROVE_ACTION,
    ARGS_MODAL,
    ARGS_PAGE_ACTION,
    EDIT_ACTION,
    EDIT_MODAL,
    FEEDBACK_ACTION,
    FEEDBACK_MODAL,
    PREVIEW_PAGE_ACTION,
    REJECT_ACTION,
    REJECT_MODAL,
    REVOKE_GRANT_ACTION,
    VIEW_ARGS_ACTION,
    VIEW_PREVIEW_ACTION,
    EditErrors,
    Unreadable,
    edit_errors,
    is_user_id,
    parse_edit_submission,
    parse_feedback_submission,
    parse_reject_submission,
    read_args_page,
    read_click,
    read_modal_vote,
    read_text,
    read_user,
    read_vote,
    refusal_note,
    render_allow_modal,
    render_approval_list,
    render_args_modal,
    render_decided_notice,
    render_edit_modal,
    render_feedback_modal,
    render_home,
    render_notice_modal,
    render_preview_modal,
    render_reject_modal,
    render_thread_confirmation,
)
from bot.slack.cards.card import diff_lines, outcome_line
from bot.slack.cards.ids import BATCH_APPROVE_ACTION, BATCH_REJECT_ACTION, BATCH_REJECT_MODAL
from bot.slack.cards.text import Block, code_block, escape_mrkdwn
from bot.slack.grants import GrantListeners
from bot.slack.lookups import UserNames, answer_by
from bot.slack.pacing import backlog_lines

__all__ = ["Listeners", "register_listeners", "thread_command"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_REJECT = re.compile(r"reject(?:[\s:]+(?P<reason>.*))?", re.I | re.S)


def thread_command(text: str, bot_user: str | None = None) -> tuple[bool, str | None] | None:
    """`(approved, reason)` for a decision typed in a card's thread, or None for chatter.

    Only the whole message `approve`, or `reject` with an optional reason, decides, after an
    optional @-mention of the bot: "yes" to a colleague or "no idea, ask Bob" decides nothing.
    """
    cleaned = text.strip()
    if bot_user:
        cleaned = re.sub(rf"^<@{re.escape(bot_user)}(?:\|[^>]*)?>\s*", "", cleaned)
    if cleaned.lower() == "approve":
        return True, None
    if match := _REJECT.fullmatch(cleaned):
        return False, (match["reason"] or "").strip() or None
    return None


def _typed_at(ts: object) -> datetime | None:
    """When a message with Slack timestamp `ts` ("1700000000.000100") was posted."""
    try:
        return datetime.fromtimestamp(float(str(ts)), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def stale_note(approval: Approval) -> str:
    """What a person whose vote was on arguments edited since is told: the current ones."""
    editor = approval.progress.edited_by
    by = f" by <@{editor}>" if editor and is_user_id(editor) else ""
    card = approval.slack.permalink
    where = f"<{card}|on the card>" if card else "on the card"
    changes = diff_lines(approval.args, approval.current_args)
    lines, _ = code_block("\n".join(changes) or "(no changes)", 1500)
    return (
        f"Nothing changed: the arguments were edited{by} after you saw them, so your vote was "
        f"not counted. Review the current arguments {where} and decide again.\n"
        f"Changed from the request:\n{lines}"
    )


def _where(body: dict[str, Any]) -> str | None:
    container, channel = body.get("container"), body.get("channel")
    found = (container.get("channel_id") if isinstance(container, dict) else None) or (
        channel.get("id") if isinstance(channel, dict) else None
    )
    return found if isinstance(found, str) and found else None


#: seconds before the answer deadline by which a modal is opened, whatever is still looked up
OPEN_MARGIN = 0.5
#: the paged modals, by the buttons that open them or turn their pages
_FULL_VIEWS: dict[str, Callable[..., dict[str, Any]]] = {
    VIEW_ARGS_ACTION: render_args_modal,
    ARGS_PAGE_ACTION: render_args_modal,
    VIEW_PREVIEW_ACTION: render_preview_modal,
    PREVIEW_PAGE_ACTION: render_preview_modal,
}


def _time_left(margin: float = 0.0) -> float | None:
    """Seconds until the Slack request being handled must be answered, less `margin`; None
    when it has no deadline (an event)."""
    deadline = answer_by.get()
    if deadline is None:
        return None
    return max(0.0, deadline - margin - asyncio.get_running_loop().time())


def without_deadline(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """`work` as a task that may take as long as it needs (its lookups wait out Slack)."""
    context = copy_context()
    context.run(answer_by.set, None)
    return asyncio.create_task(work, context=context)


@dataclass
class Listeners:
    """The handlers, holding what they share."""

    service: ApprovalService
    names: UserNames
    client: AsyncWebClient
    #: card posts queued per channel (shared with the poster), for App Home
    backlog: Mapping[str, int] = field(default_factory=dict)
    #: what was registered, by kind ("action", "view", "event", "command")
    registered: dict[str, list[str]] = field(default_factory=dict)
    #: App Home sections of their own, by viewer, shown after what waits for them (the
    #: standing approvals they may revoke…)
    home_sections: list[Callable[[str], Awaitable[list[Block]]]] = field(default_factory=list)

    async def tell(self, client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
        """An ephemeral note to the person who acted (a DM when there is no channel)."""
        user = body["user"]["id"]
        channel = _where(body)
        try:
            if channel:
                await client.chat_postEphemeral(channel=channel, user=user, text=text)
            else:
                await client.chat_postMessage(channel=user, text=text)
        except SlackApiError as exc:
            log.warning("could not tell %s: %s", user, exc.response.get("error"))

    async def explain(self, client: AsyncWebClient, body: dict[str, Any], exc: BotError) -> None:
        """Turn a refused decision into words for the person who tried it."""
        if isinstance(exc, AlreadyDecided):
            text = (
                f"Nothing changed: this request was already decided. {outcome_line(exc.approval)}"
            )
        elif isinstance(exc, StaleVote):
            text = stale_note(exc.approval)
        elif isinstance(exc, NotFound):
            text = "Nothing changed: this approval no longer exists."
        elif isinstance(exc, NotAnApprover):
            text = refusal_note(exc)
        else:
            text = f"Nothing changed: {escape_mrkdwn(exc.message.rstrip('.'))}."
        await self.tell(client, body, text)

    # -- buttons ----------------------------------------------------------------------------

    async def approve(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Approve: acknowledged once the vote is committed (or refused), then told."""
        user, value = read_click(body)
        approval_id, seen = read_vote(value)
        try:
            counted = await self.service.approve(
                approval_id, user=user, name=self.names.name_now(user, body), seen=seen
            )
        except BotError as exc:
            await ack()
            await self.explain(client, body, exc)
            return
        await ack()
        await self.after_vote(client, body, counted)
        await self.refresh_home(client, body)

    async def after_vote(
        self, client: AsyncWebClient, body: dict[str, Any], approval: Approval
    ) -> None:
        """Tell an approver whose approval was counted but did not decide yet."""
        if approval.is_pending:
            done, required = len(approval.progress.approved_by), approval.policy.required_approvals
            text = f"Your approval is counted: {done} of {required}; it waits for others."
            await self.tell(client, body, text)

    async def refresh_home(self, client: AsyncWebClient, body: dict[str, Any]) -> None:
        """After a click in App Home, show the viewer their updated list."""
        view = body.get("view")
        if isinstance(view, dict) and view.get("type") == "home":
            await self.publish_home(client, body["user"]["id"])

    async def visible_to(self, user: str, *, mine: bool = False) -> list[Approval]:
        """Pending approvals `user` may decide or requested (`mine`: named in or requested)."""
        page = await self.service.find(status=Status.PENDING, limit=200)
        shown = self.service.is_theirs if mine else self.service.can_act
        # at once: the lookups behind them are shared per group and paced by the cache
        allowed = await asyncio.gather(*(shown(a, user) for a in page.items))
        return [a for a, ok in zip(page.items, allowed, strict=True) if ok]

    async def publish_home(self, client: AsyncWebClient, user: str) -> None:
        """Publish the App Home of `user`: what they can act on, and what they decided."""
        pending = await self.visible_to(user)
        recent = await self.service.store.decided_by(user, 10)
        more = [block for section in self.home_sections for block in await section(user)]
        try:
            notes = backlog_lines(self.backlog)  # channels whose cards queue behind Slack's limit
            view = render_home(pending, recent, notes=notes, more=more, viewer=user)
            await client.views_publish(user_id=user, view=view)
        except SlackApiError as exc:
            log.warning("App Home for %s not published: %s", user, exc.response.get("error"))

    async def home_opened(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") == "home":
            await self.publish_home(client, str(event["user"]))

    async def approvals_command(
        self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """`/approvals`, `/approvals mine`, `/approvals <id>`: an ephemeral list of what the
        person may decide or requested; nothing else, not even whether it exists.

        Answered within Slack's 3 s: when Slack is slow to say who may decide (user group
        lookups), the answer says it is looking, and the list follows on `response_url`."""
        user, text = str(command["user_id"]), str(command.get("text") or "").strip()
        if not (text.startswith("apr_") or text in ("", "mine")):
            await ack(
                text="Usage: `/approvals` (all pending), `/approvals mine`, `/approvals apr_…`"
            )
            return
        listing = without_deadline(self._approvals_message(user, text))
        await asyncio.wait({listing}, timeout=_time_left())
        if listing.done():
            await ack(**listing.result(), response_type="ephemeral")
            return
        await ack(text="Looking up the approvals you may decide…", response_type="ephemeral")
        await respond(**await listing, response_type="ephemeral")

    async def _approvals_message(self, user: str, text: str) -> dict[str, Any]:
        if text.startswith("apr_"):
            wanted = text.split()[0]
            try:
                approval = await self.service.get(wanted)
            except NotFound:
                approval = None
            if approval is None or not await self.service.can_act(approval, user):
                return {"text": f"No approval with id {escape_mrkdwn(wanted)} for you."}
            message = render_approval_list("Approval", [approval], empty="")
        else:
            approvals = await self.visible_to(user, mine=text == "mine")
            title = "Pending approvals for you" if text == "mine" else "Pending approvals"
            message = render_approval_list(title, approvals, empty="Nothing is pending. :tada:")
        return {"text": message["text"], "blocks": message["blocks"]}

    async def open_modal(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Edit…, Reject…, Feedback…, Approve & allow…: open the modal, if this person may decide.

        Slack's trigger id opens a modal for 3 s. When Slack is slow to say who may decide
        (a user group or channel lookup), the modal opens anyway before the trigger expires,
        and is turned into the refusal if the answer is no; its submit is checked again."""
        user, value = read_click(body)
        approval_id, seen = read_vote(value)
        trigger_id = read_text(body, "trigger_id")
        await ack()
        action = body["actions"][0]["action_id"]
        kind, render = {
            EDIT_ACTION: (DecisionKind.EDIT, render_edit_modal),
            REJECT_ACTION: (DecisionKind.REJECT, render_reject_modal),
            FEEDBACK_ACTION: (DecisionKind.FEEDBACK, render_feedback_modal),
            ALLOW_ACTION: (DecisionKind.APPROVE, render_allow_modal),
        }[action]
        try:
            approval = await self.service.get(approval_id)
        except BotError as exc:
            await self.explain(client, body, exc)
            return
        checking = without_deadline(self.service.check(approval, user, kind, seen=seen))
        await asyncio.wait({checking}, timeout=_time_left(OPEN_MARGIN))
        if checking.done():
            if (refused := checking.exception()) is not None:
                await self.explain(client, body, cast(BotError, refused))
                return
            await self.open_view(client, body, trigger_id, render(approval))
            return
        view_id = await self.open_view(client, body, trigger_id, render(approval))
        try:
            await checking
        except BotError as exc:
            if view_id is None:
                return
            notice = render_notice_modal("Not changed", f"Nothing changed: {exc.message}")
            with suppress(SlackApiError):
                await client.views_update(view_id=view_id, view=notice)

    async def open_view(
        self, client: AsyncWebClient, body: dict[str, Any], trigger_id: str, view: Any
    ) -> str | None:
        """Open a modal, returning its id; when Slack refuses (a trigger is good for 3 s and one
        view), say so to the person who clicked instead of leaving them with a button that did
        nothing."""
        try:
            opened = await client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("views.open refused: %s", error)
            await self.tell(
                client, body, "That took too long to open and nothing changed; click again."
            )
            return None
        return str((opened.get("view") or {}).get("id") or "") or None

    async def view_full(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Open the paged modal of "View full arguments" or "View full preview"."""
        _, value = read_click(body)
        approval_id, _ = read_vote(value)
        trigger_id = read_text(body, "trigger_id")
        await ack()
        render = _FULL_VIEWS[body["actions"][0]["action_id"]]
        try:
            approval = await self.service.get(approval_id)
        except BotError as exc:
            await self.explain(client, body, exc)
            return
        await self.open_view(client, body, trigger_id, render(approval))

    async def turn_page(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Previous / Next in a paged modal: the page replaces the view in place."""
        _, value = read_click(body)
        view = body.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("id"), str):
            raise Unreadable("the click comes from no view")
        await ack()
        render = _FULL_VIEWS[body["actions"][0]["action_id"]]
        try:
            approval_id, page = read_args_page(value)
            approval = await self.service.get(approval_id)
        except (ValueError, BotError):
            return
        await client.views_update(
            view_id=view["id"], hash=view.get("hash"), view=render(approval, page)
        )

    # -- modals -----------------------------------------------------------------------------

    async def refused_in_modal(self, ack: AsyncAck, exc: BotError | ValueError) -> None:
        """Answer a modal whose decision was refused with a notice in its place."""
        if isinstance(exc, AlreadyDecided):
            await ack(response_action="update", view=render_decided_notice(exc.approval))
        elif isinstance(exc, StaleVote):
            text = (
                "The arguments were edited after you opened this, so nothing was decided. "
                "Open the card again to see the current arguments."
            )
            await ack(response_action="update", view=render_notice_modal("Arguments changed", text))
        else:
            text = exc.message if isinstance(exc, BotError) else "This request cannot be found."
            await ack(response_action="update", view=render_notice_modal("Not changed", text))

    async def _reject_from_modal(
        self, ack: AsyncAck, body: dict[str, Any], action: Action, text: str | None
    ) -> None:
        user = read_user(body)
        try:
            approval_id, _ = read_modal_vote(body["view"]["private_metadata"])
            await self.service.reject(
                approval_id,
                user=user,
                action=action,
                comment=text,
                name=self.names.name_now(user, body),
            )
        except (BotError, ValueError) as exc:
            await self.refused_in_modal(ack, exc)
            return
        await ack()

    async def reject_submitted(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        reason = parse_reject_submission(body["view"]["state"]["values"])
        await self._reject_from_modal(ack, body, Action.REJECT, reason)

    async def feedback_submitted(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            text = parse_feedback_submission(body["view"]["state"]["values"])
        except EditErrors as exc:
            await ack(response_action="errors", errors=exc.errors)
            return
        await self._reject_from_modal(ack, body, Action.FEEDBACK, text)

    async def modal_vote(
        self, ack: AsyncAck, body: dict[str, Any]
    ) -> tuple[str, Approval, str | None] | None:
        """Who submitted a vote's modal, its approval and the arguments version it showed;
        None once the modal is told why not (unreadable, or the approval is gone)."""
        try:
            approval_id, seen = read_modal_vote(body["view"]["private_metadata"])
            return read_user(body), await self.service.get(approval_id), seen
        except (BotError, ValueError) as exc:
            await self.refused_in_modal(ack, exc)
            return None

    async def edit_submitted(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        if (vote := await self.modal_vote(ack, body)) is None:
            return
        user, approval, seen = vote
        try:
            edit = parse_edit_submission(approval, body["view"]["state"]["values"])
        except EditErrors as exc:
            await ack(response_action="errors", errors=exc.errors)
            return
        try:
            counted = await self.service.approve(
                approval.id,
                user=user,
                name=self.names.name_now(user, body),
                seen=seen,
                approved_args=edit.args,
                comment=edit.comment,
            )
        except InvalidEdit as exc:
            refused = edit_errors(approval, exc.path, exc.message)
            await ack(response_action="errors", errors=refused.errors)
            return
        except BotError as exc:
            await self.refused_in_modal(ack, exc)
            return
        await ack()
        await self.after_vote(self.client, {"user": {"id": user}}, counted)

    async def args_closed(self, ack: AsyncAck) -> None:
        await ack()

    # -- thread replies ---------------------------------------------------------------------

    async def thread_reply(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        """`approve` or `reject <reason>` typed in a card's thread (also sent to the channel)."""
        if event.get("bot_id") or event.get("subtype") not in (None, "thread_broadcast"):
            return
        user, channel, thread_ts = event.get("user"), event.get("channel"), event.get("thread_ts")
        if not is_user_id(user):
            return  # only a person's reply can decide
        if not (isinstance(channel, str) and isinstance(thread_ts, str) and thread_ts):
            return
        if not await self._first_delivery(body, event):
            return
        text = event.get("text")
        command = thread_command(text, context.bot_user_id) if isinstance(text, str) else None
        if command is None:
            return
        approved, reason = command
        note = {"user": {"id": user}, "container": {"channel_id": channel}}
        try:
            card = await self.service.store.find_by_card(channel, thread_ts)
            typed_at = _typed_at(event.get("ts"))
            if approved and card.priority is Priority.CRITICAL:
                # the card's button asks for a confirmation; typing must not skip it
                await self.service.check(card, user, DecisionKind.APPROVE, typed_at=typed_at)
                await self.confirm_in_thread(client, card, user, channel, thread_ts)
                return
            name = await self.names.name(user)
            if approved:
                await self.service.approve(card.id, user=user, name=name, typed_at=typed_at)
            else:
                await self.service.reject(card.id, user=user, name=name, comment=reason)
        except NotFound:
            return  # a thread that is not a card's: ordinary conversation
        except BotError as exc:
            await self.explain(client, note, exc)
            return
        try:
            await client.reactions_add(
                channel=channel,
                timestamp=str(event["ts"]),
                name="white_check_mark" if approved else "x",
            )
        except SlackApiError as exc:
            log.warning("could not react to %s: %s", event["ts"], exc.response.get("error"))

    async def confirm_in_thread(
        self, client: AsyncWebClient, approval: Approval, user: str, channel: str, thread_ts: str
    ) -> None:
        """Answer a typed `approve` of a critical call with the card's own confirmation."""
        message = render_thread_confirmation(approval)
        try:
            await client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, **message
            )
        except SlackApiError as exc:
            log.warning("could not ask %s to confirm: %s", user, exc.response.get("error"))

    async def refuse(self, error: Exception, response: BoltResponse | None) -> BoltResponse | None:
        """Bolt's error hook: an unreadable payload is a 400, not a 500 with a traceback."""
        if response is None:  # acknowledged already; only the log can tell
            log.error("a Slack listener failed after its ack", exc_info=error)
            return None
        if isinstance(error, BotError):
            status = error.status
        elif isinstance(error, LookupError | TypeError | ValueError | AttributeError):
            status = 400
        else:
            log.error("a Slack request failed", exc_info=error)
            return None
        log.warning("Slack request refused with %d: %.200r", status, error)
        return BoltResponse(status=status, body="")

    async def _first_delivery(self, body: dict[str, Any], event: dict[str, Any]) -> bool:
        """Slack redelivers an event it thinks was missed (`X-Slack-Retry-Num`), maybe to
        another replica: act on each once, whichever replica gets it. The ids are in the
        store, so a redelivery after a restart is known too."""
        event_id = body.get("event_id") or f"{event.get('channel')}/{event.get('ts')}"
        try:
            return await self.service.store.first_delivery(str(event_id)[:200])
        except BotError as exc:  # the store is down: so is deciding, which will say so
            log.warning("cannot note Slack event %.60s: %s", event_id, exc.message)
            return True


def register_listeners(app: AsyncApp, service: ApprovalService) -> Listeners:
    """Attach every action, view, event and command handler; `manifest.yml` declares them."""
    listeners = Listeners(service, UserNames(app.client), app.client)
    grants = GrantListeners(listeners)
    batches = BatchListeners(listeners)
    listeners.home_sections.append(batches.home_section)
    listeners.home_sections.append(grants.home_section)
    app.error(listeners.refuse)
    handlers: dict[str, dict[str, Any]] = {
        "action": {
            APPROVE_ACTION: listeners.approve,
            EDIT_ACTION: listeners.open_modal,
            REJECT_ACTION: listeners.open_modal,
            FEEDBACK_ACTION: listeners.open_modal,
            VIEW_ARGS_ACTION: listeners.view_full,
            ARGS_PAGE_ACTION: listeners.turn_page,
            VIEW_PREVIEW_ACTION: listeners.view_full,
            PREVIEW_PAGE_ACTION: listeners.turn_page,
            ALLOW_ACTION: listeners.open_modal,
            REVOKE_GRANT_ACTION: grants.revoke_clicked,
            BATCH_APPROVE_ACTION: batches.approve_all,
            BATCH_REJECT_ACTION: batches.open_reject,
        },
        "view": {
            REJECT_MODAL: listeners.reject_submitted,
            FEEDBACK_MODAL: listeners.feedback_submitted,
            EDIT_MODAL: listeners.edit_submitted,
            ARGS_MODAL: listeners.args_closed,
            ALLOW_MODAL: grants.allow_submitted,
            BATCH_REJECT_MODAL: batches.reject_submitted,
        },
        "event": {"message": listeners.thread_reply, "app_home_opened": listeners.home_opened},
        "command": {"/approvals": listeners.approvals_command},
    }
    for kind, table in handlers.items():
        register = getattr(app, kind)
        for name, handler in table.items():
            register(name)(handler)
            listeners.registered.setdefault(kind, []).append(name)
    return listeners
