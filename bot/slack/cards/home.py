"""App Home and `/approvals`: compact lists of approvals, each with a link to its card.

The App Home entries carry the same buttons as the cards (same action ids, same values), so
a decision there goes through the same listeners; and the arguments those buttons decide on,
since nobody may approve without seeing them (and the request's preview, when it has one).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import Approval
from bot.slack.cards.args import args_blocks
from bot.slack.cards.buttons import decision_buttons
from bot.slack.cards.card import args_title, outcome_line
from bot.slack.cards.ids import block_id
from bot.slack.cards.preview import compact_preview_block
from bot.slack.cards.text import (
    Block,
    Message,
    View,
    context,
    date_markup,
    inert,
    mrkdwn,
    plain,
    section,
    truncate,
    verbatim,
)

__all__ = ["MAX_LISTED", "MAX_WAITING", "render_approval_list", "render_home", "summary_line"]

#: Entries per `/approvals` list (a message allows 50 blocks; an entry takes up to 3)
MAX_LISTED = 15
#: "Waiting for you" entries in App Home (100 blocks in all; an entry with its arguments,
#: preview and buttons takes up to 7, a recent decision 3): fewer when they do not fit
MAX_WAITING = 10
MAX_RECENT = 10
MAX_HOME_BLOCKS = 100
PROMPT_CHARS = 150
HOME_ARGS_CHARS = 800
HOME_ARGS_LINES = 12
HOME_PREVIEW_CHARS = 600
HOME_PREVIEW_LINES = 10
_PRIORITY_MARK = {"low": "", "normal": "", "high": ":warning: ", "critical": ":rotating_light: "}


def summary_line(approval: Approval) -> str:
    """`*deploy_service* (linked to the card)` then `high · apr_… · by release-bot · expires …`.

    Only the bot's words and escaped names: the agent's prompt goes in its own plain block
    (`_prompt_block`), and an agent-given requester is shown, never mentioned."""
    tool = truncate(approval.tool_name, 150)
    if approval.slack.permalink:
        tool = f"<{approval.slack.permalink}|{tool}>"
    who = approval.requester.agent or approval.requester.slack_user
    meta = [approval.priority.value, f"`{approval.id}`"]
    if who:
        meta.append(f"by {inert(who, 80)}")
    if approval.expires_at and approval.is_pending:
        meta.append(f"expires {date_markup(approval.expires_at)}")
    return f"{_PRIORITY_MARK[approval.priority.value]}*{tool}*\n" + " · ".join(meta)


def _prompt_block(approval: Approval) -> list[Block]:
    """The agent's prompt, labelled as the agent's and in plain text (see `card._agent_blocks`)."""
    if approval.prompt is None or not approval.prompt.strip():
        return []
    elements = [mrkdwn("*From the agent:*"), verbatim(approval.prompt, PROMPT_CHARS)]
    return [{"type": "context", "block_id": block_id("prompt", approval.id), "elements": elements}]


def _entry(approval: Approval, *, buttons: bool, viewer: str | None = None) -> list[Block]:
    blocks = [section(summary_line(approval), block_id=block_id("entry", approval.id))]
    blocks.extend(_prompt_block(approval))
    if buttons and approval.is_pending:
        args, cut = args_blocks(
            approval.id,
            approval.current_args,
            args_title(approval),
            chars=HOME_ARGS_CHARS,
            lines=HOME_ARGS_LINES,
        )
        blocks.extend(args)
        preview_cut = False
        if approval.preview is not None:
            preview, preview_cut = compact_preview_block(
                approval, chars=HOME_PREVIEW_CHARS, lines=HOME_PREVIEW_LINES
            )
            blocks.append(preview)
        own = viewer is not None and viewer == approval.requester.slack_user
        actions = decision_buttons(approval, view_args=cut, view_preview=preview_cut, requester=own)
        if actions is not None:
            blocks.append(actions)
    elif not approval.is_pending:
        blocks.append(context([outcome_line(approval)], block_id=block_id("done", approval.id)))
    return blocks


def render_home(
    pending: Sequence[Approval],
    recent: Sequence[Approval],
    *,
    notes: Sequence[str] = (),
    more: Sequence[Block] = (),
    viewer: str | None = None,
) -> View:
    """The App Home tab: what the viewer can act on, with its arguments and buttons, then
    `more` (sections of their own, such as active standing approvals), then their recent
    decisions.

    `notes` are trusted mrkdwn lines shown under the first header (e.g. a channel's backlog).
    The `viewer`'s own requests offer no Approve or Edit.
    """
    blocks: list[Block] = [
        {"type": "header", "text": plain("Waiting for you", 150)},
    ]
    if notes:
        blocks.append(context(list(notes)))
    if not pending:
        blocks.append(section("Nothing waits for your decision. :tada:"))
    decided: list[Block] = [{"type": "header", "text": plain("Your recent decisions", 150)}]
    if not recent:
        decided.append(section("You have not decided anything yet."))
    for approval in recent[:MAX_RECENT]:
        decided.extend(_entry(approval, buttons=False))
    # the room left for waiting entries, keeping one block for "… and N more"
    room = MAX_HOME_BLOCKS - len(blocks) - len(more) - len(decided) - 1
    shown = 0
    for approval in pending[:MAX_WAITING]:
        entry = [*_entry(approval, buttons=True, viewer=viewer), {"type": "divider"}]
        if len(entry) > room:
            break
        blocks.extend(entry)
        room -= len(entry)
        shown += 1
    if len(pending) > shown:
        blocks.append(context([f"… and {len(pending) - shown} more: `/approvals`"]))
    return {"type": "home", "blocks": [*blocks, *more, *decided]}


def render_approval_list(title: str, approvals: Sequence[Approval], *, empty: str) -> Message:
    """An ephemeral `/approvals` answer: one entry per approval, linked to its card."""
    blocks: list[Block] = [section(f"*{truncate(title, 200)}*")]
    if not approvals:
        blocks.append(section(empty))
    for approval in approvals[:MAX_LISTED]:
        blocks.extend(_entry(approval, buttons=False))
    if len(approvals) > MAX_LISTED:
        blocks.append(context([f"… and {len(approvals) - MAX_LISTED} more"]))
    return {"text": title, "blocks": blocks}
