"""Who may decide, as Slack shows people: the card's "Who may approve" line and the note a
person gets when they may not.

Approvers come from the routing file (`U…` users, `S…` user groups), channels from the routing
file or the request (a channel id, or a `#name` of `[a-z0-9._-]`): none of it is agent prose,
and anything not shaped like an id is escaped as text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.models import Approval
from bot.policy import NotAnApprover, either, verb_for
from bot.slack.cards.ids import block_id
from bot.slack.cards.text import Block, context, escape_mrkdwn, mention_markup, user_markup

__all__ = ["approvers_block", "refusal_note", "who_markup"]

_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
#: people and groups named on one line; more are counted ("or 3 more")
MAX_NAMED = 10


def who_markup(approvers: Sequence[str], channels: Sequence[str] = ()) -> str:
    """Who may decide as mrkdwn: `<@U0ALICE> or members of <!subteam^S0SRE>`; without
    approvers, the members of the channels (`members of <#C0OPS>`)."""
    if not approvers:
        return "members of " + either([channel_markup(c) for c in channels if c][:MAX_NAMED])
    users = [user_markup(a, 40) for a in approvers if not a.startswith("S")]
    groups = [f"members of {mention_markup(a)}" for a in approvers if a.startswith("S")]
    named = [*users, *groups]
    if len(named) > MAX_NAMED:
        named = [*named[: MAX_NAMED - 1], f"{len(named) - MAX_NAMED + 1} more"]
    return either(named)


def channel_markup(channel: str) -> str:
    """`<#C…>` for a channel id (Slack shows its name), else the name as text: `#ops`."""
    if _CHANNEL_ID.fullmatch(channel):
        return f"<#{channel}>"
    return "#" + escape_mrkdwn(channel.removeprefix("#"))


def approvers_block(approval: Approval) -> Block | None:
    """A small context line on a pending card saying who may approve it, when its rule names
    approvers (otherwise anyone in the channel may, and the card needs no line)."""
    approvers = approval.policy.approvers
    if not approvers:
        return None
    line = f":lock: Only {who_markup(approvers)} can approve this"
    return context([line], block_id=block_id("approvers", approval.id))


def refusal_note(refused: NotAnApprover) -> str:
    """The ephemeral note for someone who may not decide, naming who may: "Nothing changed:
    only @alice or @bob can approve deploy_prod." (mentions, the tool in code)."""
    who = who_markup(refused.approvers, refused.channels)
    tool = escape_mrkdwn(refused.tool_name)  # tool names never hold a backtick
    return f"Nothing changed: only {who} can {verb_for(refused.kind)} `{tool}`."
