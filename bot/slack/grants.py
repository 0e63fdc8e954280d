"""Standing approvals on Slack (`bot.grants`): the "Approve & allow…" modal's submit, Revoke in
App Home, and App Home's list of the active grants a person may revoke.

The modal is opened by the card's listeners like Edit… (`Listeners.open_modal`): the same
check of who may approve, within Slack's 3 s. Its submit approves through the same path as
Approve — who may decide, the arguments version the person saw, N-of-M — and proposes the
grant in the vote's transaction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError, Invalid, NotFound
from bot.grants import GrantGone, may_revoke, revoke
from bot.models import Approval
from bot.service import ApprovalService
from bot.slack.cards import (
    EditErrors,
    parse_allow_submission,
    read_click,
    render_grants_section,
)
from bot.slack.cards.grants import SPAN_BLOCK
from bot.slack.cards.text import Block

if TYPE_CHECKING:
    from bot.slack.listeners import Listeners

__all__ = ["GrantListeners"]

log = logging.getLogger(__name__)

#: active grants looked at for one person's App Home
HOME_GRANTS = 100


@dataclass
class GrantListeners:
    """The standing-approval handlers, beside the card's (`listeners`)."""

    listeners: Listeners

    @property
    def service(self) -> ApprovalService:
        return self.listeners.service

    async def allow_submitted(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """ "Approve & allow": approve (answered once committed), and propose the grant."""
        if (vote := await self.listeners.modal_vote(ack, body)) is None:
            return
        user, approval, seen = vote
        try:
            terms = parse_allow_submission(approval, body["view"]["state"]["values"])
        except EditErrors as exc:
            await ack(response_action="errors", errors=exc.errors)
            return
        try:
            counted = await self.service.approve(
                approval.id,
                user=user,
                name=self.listeners.names.name_now(user, body),
                seen=seen,
                allow=terms,
            )
        except Invalid as exc:
            if exc.path == "duration":
                await ack(response_action="errors", errors={SPAN_BLOCK: exc.message})
            else:
                await self.listeners.refused_in_modal(ack, exc)
            return
        except BotError as exc:
            await self.listeners.refused_in_modal(ack, exc)
            return
        await ack()
        await self.after_allow(user, counted)

    async def after_allow(self, user: str, approval: Approval) -> None:
        """Tell the approver what their choice did when it is not on the card for all to see:
        it waits for others, or the call was approved without a standing approval."""
        required = approval.policy.required_approvals
        if approval.is_pending:
            done = len(approval.progress.approved_by)
            text = (
                f"Your approval is counted: {done} of {required}. The standing approval starts "
                f"once {required} approvers chose Approve & allow on these arguments."
            )
        else:
            made = await self.service.store.grants(self.service.clock(), approval_id=approval.id)
            if made:
                return  # the card's thread says so
            text = (
                "Approved, without a standing approval: not every approver counted chose "
                "Approve & allow."
            )
        await self.listeners.tell(self.listeners.client, {"user": {"id": user}}, text)

    async def revoke_clicked(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """Revoke in App Home: answered once the revocation is committed, then the Home is
        drawn again without it."""
        user, grant_id = read_click(body)
        try:
            await revoke(self.service, grant_id, user)
        except (NotFound, GrantGone):
            await ack()
            await self.listeners.refresh_home(client, body)
            await self.listeners.tell(
                client, body, "Nothing changed: that standing approval no longer stands."
            )
            return
        except BotError as exc:
            await ack()
            await self.listeners.explain(client, body, exc)
            return
        await ack()
        await self.listeners.refresh_home(client, body)

    async def home_section(self, user: str) -> list[Block]:
        """App Home's active grants that `user` may revoke."""
        try:
            grants = await self.service.store.grants(self.service.clock(), limit=HOME_GRANTS)
            allowed = await asyncio.gather(*(may_revoke(self.service, g, user) for g in grants))
        except BotError as exc:
            log.warning("standing approvals left out of App Home: %s", exc.message)
            return []
        return render_grants_section([g for g, ok in zip(grants, allowed, strict=True) if ok])
