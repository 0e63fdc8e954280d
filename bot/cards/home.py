"""App Home and `/approvals`: compact lists of approvals, each with a link to its card.

The App Home entries carry the same buttons as the cards (same action ids, same values), so
a decision there goes through the same listeners.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.cards.card import decision_buttons, outcome_line
from bot.cards.ids import block_id
from bot.cards.text import (
    Block,
    Message,
    View,
    context,
    date_markup,
    plain,
    section,
    truncate,
    user_markup,
)
from bot.models import Approval

__all__ = ["MAX_LISTED", "render_approval_list", "render_home", "summary_line"]

#: Entries per list: App Home allows 100 blocks, a message 50.
MAX_LISTED = 15
_PRIORITY_MARK = {"low": "", "normal": "", "high": ":warning: ", "critical": ":rotating_light: "}


def summary_line(approval: Approval) -> str:
    """`*deploy_service* — Send build 1.4.2? · high · by release-bot`, linked to the card."""
    tool = truncate(approval.tool_name, 150)
    if approval.slack.permalink:
        tool = f"<{approval.slack.permalink}|{tool}>"
    parts = [f"{_PRIORITY_MARK[approval.priority.value]}*{tool}*"]
    if approval.prompt:
        parts.append(f"— {truncate(approval.prompt, 300)}")
    who = approval.requester.agent or approval.requester.slack_user
    meta = [approval.priority.value, f"`{approval.id}`"]
    if who:
        meta.append(f"by {user_markup(who, 80)}")
    if approval.expires_at and approval.is_pending:
        meta.append(f"expires {date_markup(approval.expires_at)}")
    return " ".join(parts) + "\n" + " · ".join(meta)


def _entry(approval: Approval, *, buttons: bool) -> list[Block]:
    blocks = [section(summary_line(approval), block_id=block_id("entry", approval.id))]
    if buttons and approval.is_pending:
        actions = decision_buttons(approval, view_args=False)
        if actions is not None:
            blocks.append(actions)
    elif not approval.is_pending:
        blocks.append(context([outcome_line(approval)], block_id=block_id("done", approval.id)))
    return blocks


def render_home(
    pending: Sequence[Approval], recent: Sequence[Approval], *, notes: Sequence[str] = ()
) -> View:
    """The App Home tab: what the viewer can act on, with buttons, then their recent decisions.

    `notes` are trusted mrkdwn lines shown under the first header (e.g. a channel's backlog).
    """
    blocks: list[Block] = [
        {"type": "header", "text": plain("Waiting for you", 150)},
    ]
    if notes:
        blocks.append(context(list(notes)))
    if not pending:
        blocks.append(section("Nothing waits for your decision. :tada:"))
    for approval in pending[:MAX_LISTED]:
        blocks.extend(_entry(approval, buttons=True))
        blocks.append({"type": "divider"})
    if len(pending) > MAX_LISTED:
        blocks.append(context([f"… and {len(pending) - MAX_LISTED} more: `/approvals`"]))
    blocks.append({"type": "header", "text": plain("Your recent decisions", 150)})
    if not recent:
        blocks.append(section("You have not decided anything yet."))
    for approval in recent[:MAX_LISTED]:
        blocks.extend(_entry(approval, buttons=False))
    return {"type": "home", "blocks": blocks}


def render_approval_list(title: str, approvals: Sequence[Approval], *, empty: str) -> Message:
    """An ephemeral `/approvals` answer: one line per approval, linked to its card."""
    blocks: list[Block] = [section(f"*{truncate(title, 200)}*")]
    if not approvals:
        blocks.append(section(empty))
    for approval in approvals[:MAX_LISTED]:
        blocks.extend(_entry(approval, buttons=False))
    if len(approvals) > MAX_LISTED:
        blocks.append(context([f"… and {len(approvals) - MAX_LISTED} more"]))
    return {"text": title, "blocks": blocks}
