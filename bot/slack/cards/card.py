"""The approval card: pending (with buttons), decided (without), and the thread reply."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from bot.models import Action, Approval, Decision, DecisionKind, OnTimeout, Priority, Status
from bot.slack.cards.approvers import approvers_block
from bot.slack.cards.args import args_blocks
from bot.slack.cards.buttons import decision_buttons
from bot.slack.cards.ids import block_id
from bot.slack.cards.preview import preview_blocks
from bot.slack.cards.text import (
    Block,
    Message,
    clip,
    code_block,
    context,
    date_markup,
    inert,
    is_user_id,
    mention_markup,
    mrkdwn,
    plain,
    section,
    text_units,
    truncate,
    user_markup,
    verbatim,
)

__all__ = [
    "Progress",
    "args_title",
    "describe_outcome",
    "diff_lines",
    "outcome_line",
    "render_card",
    "render_decided_card",
    "render_decision_reply",
    "render_thread_confirmation",
]

# Slack refuses a message whose blocks carry more than about 12,000 characters of text in all
# (`msg_blocks_too_long`), long before any per-block limit. These budgets keep a card under
# 10,000 characters however much the agent sends.
PROMPT_CHARS = 1500
#: how much of the arguments a pending card shows before offering "View full arguments"
ARGS_PREVIEW_CHARS = 2000
ARGS_PREVIEW_LINES = 40
DECIDED_ARGS_CHARS = 1200
DIFF_CHARS = 1000
MAX_DIFF_LINES = 20
COMMENT_CHARS = 1500
CONTEXT_CHARS = 1000
NOTE_CHARS = 200
MAX_NOTES = 5
#: agent names, run ids, tool call ids, decider names
NAME_CHARS = 150
MAX_LISTED_USERS = 10
#: the notification text stays short; Slack shows it in push notifications
NOTIFICATION_CHARS = 300
#: all the text a card may carry: Slack refuses past about 12,000 (`msg_blocks_too_long`)
CARD_TEXT_BUDGET = 10_000
#: the most of a preview a card shows (less when the rest of the card is large), and the
#: least, which the budgets above always leave room for
PREVIEW_CHARS = 2500
MIN_PREVIEW_CHARS = 300
PREVIEW_LINES = 40
#: the preview's label, its note and its button
PREVIEW_OVERHEAD = 400

_PRIORITY = {
    Priority.LOW: (":white_circle:", "Low"),
    Priority.NORMAL: (":large_blue_circle:", "Normal"),
    Priority.HIGH: (":large_orange_circle:", "High"),
    Priority.CRITICAL: (":red_circle:", "Critical"),
}
_LOUD = (Priority.HIGH, Priority.CRITICAL)
_AFTER_EXPIRY = {
    OnTimeout.REJECT: "then rejected automatically",
    OnTimeout.APPROVE: "then approved automatically",
    OnTimeout.ESCALATE: "then escalated",
}
_OUTCOMES = {
    (Action.APPROVE, True): (":white_check_mark:", "Approved"),
    (Action.EDIT, True): (":pencil2:", "Approved with edits"),
    (Action.REJECT, False): (":x:", "Rejected"),
    (Action.FEEDBACK, False): (":speech_balloon:", "Feedback sent to the agent"),
    (Action.TIMEOUT, False): (":hourglass:", "Expired — rejected automatically"),
    (Action.TIMEOUT, True): (":hourglass:", "Approved automatically at timeout"),
    (Action.CANCEL, False): (":no_entry_sign:", "Cancelled by the agent"),
}
_STATUS_OUTCOMES = {
    Status.APPROVED: (Action.APPROVE, True),
    Status.REJECTED: (Action.REJECT, False),
    Status.EXPIRED: (Action.TIMEOUT, False),
    Status.CANCELLED: (Action.CANCEL, False),
}
_COMMENT_LABELS = {
    Action.REJECT: "Reason",
    Action.FEEDBACK: "Feedback for the agent",
    Action.CANCEL: "Reason given by the agent",
}


@dataclass(frozen=True)
class Progress:
    """Where an N-of-M approval stands: who has approved so far, out of how many."""

    required: int
    #: Slack user ids of the approvals counted so far
    approvers: Sequence[str] = ()
    #: the arguments were edited, so the count started again
    edited: bool = False


def render_card(
    approval: Approval,
    *,
    mention: str | None = None,
    progress: Progress | None = None,
    notes: Sequence[str] = (),
) -> Message:
    """The pending card, with a button for each allowed decision (and, above them, who may
    approve when the rule names approvers).

    It shows the arguments being approved now (`current_args`): after an edit, the edited
    ones, who edited them and what changed. `mention` is trusted configuration ("here", a user
    group `S…` or a user `U…`); it leads the notification and a top section. `notes` are plain
    lines (escaped) shown under the card.
    """
    ping = mention_markup(mention) if mention else ""
    blocks: list[Block] = []
    if ping or approval.priority in _LOUD:
        blocks.append(
            section(_attention(approval, ping), block_id=block_id("attention", approval.id))
        )
    blocks.append(_header(approval))
    blocks.extend(_agent_blocks(approval))
    blocks.extend(_fields(approval, expiry=True))
    args, cut = _current_args(approval)
    blocks.extend(args)
    if approval.progress.args is not None:
        blocks.append(_diff_section(approval.args, approval.current_args, approval.id))
    at = len(blocks)
    blocks.extend(_notes_block(approval, notes))
    if progress is not None:
        line = _progress_line(progress)
        blocks.append(context([line], block_id=block_id("progress", approval.id)))
    who = approvers_block(approval)
    if who is not None:
        blocks.append(who)
    preview_cut = _insert_preview(approval, blocks, at, view_args=cut)
    actions = decision_buttons(approval, view_args=cut, view_preview=preview_cut)
    if actions is not None:
        blocks.append(actions)
    summary = f"Approval needed ({approval.priority.value}): {approval.tool_name}"
    if _shown(approval.prompt):
        summary += f" — {approval.prompt}"
    text = truncate(summary, NOTIFICATION_CHARS)
    return {"text": f"{ping} {text}" if ping else text, "blocks": blocks}


def render_thread_confirmation(approval: Approval) -> Message:
    """The ephemeral answer to `approve` typed in a critical card's thread: typing cannot
    confirm, so it shows the arguments being approved now and an Approve button that asks for
    the same confirmation as the card's (its vote bound to these arguments)."""
    line = (
        ":lock: Approving a critical call needs the confirmation: check its arguments, "
        "then press *Approve* and confirm."
    )
    args, cut = _current_args(approval)
    blocks = [section(line, block_id=block_id("confirm", approval.id)), _header(approval), *args]
    preview_cut = _insert_preview(approval, blocks, len(blocks), view_args=cut)
    actions = decision_buttons(
        approval, view_args=cut, view_preview=preview_cut, only=DecisionKind.APPROVE
    )
    if actions is not None:
        blocks.append(actions)
    text = truncate(f"Approving a critical call needs the confirmation: {approval.tool_name}", 300)
    return {"text": text, "blocks": blocks}


def render_decided_card(approval: Approval, *, notes: Sequence[str] = ()) -> Message:
    """The card rewritten once decided, expired or cancelled: the outcome, what was decided on
    (the arguments, the request's preview), and no buttons."""
    _, headline = describe_outcome(approval)
    decision = approval.decision
    outcome = outcome_line(approval)
    if decision is not None:
        outcome += f" · {date_markup(decision.decided_at)}"
    blocks = [_header(approval), section(outcome, block_id=block_id("outcome", approval.id))]
    blocks.extend(_agent_blocks(approval))
    blocks.extend(_fields(approval, expiry=False))
    edited = _edited_args(decision)
    if edited is None:
        shown, title = approval.args, "*Arguments*"
    else:
        shown, title = edited, "*Arguments (edited)*"
    args, _ = args_blocks(
        approval.id, shown, title, chars=DECIDED_ARGS_CHARS, lines=ARGS_PREVIEW_LINES
    )
    blocks.extend(args)
    if edited is not None:
        blocks.append(_diff_section(approval.args, edited, approval.id))
    at = len(blocks)
    blocks.extend(_comment_blocks(approval))
    blocks.extend(_notes_block(approval, notes))
    _insert_preview(approval, blocks, at, decided=True)
    text = truncate(f"{headline}: {approval.tool_name}", NOTIFICATION_CHARS)
    return {"text": text, "blocks": blocks}


def render_decision_reply(approval: Approval) -> Message:
    """The thread reply under the card: what was decided, by whom, and why."""
    decision = approval.decision
    line = outcome_line(approval)
    text = line
    if decision is not None and _shown(decision.comment):
        text += f"\n{_comment_label(decision)}: {truncate(decision.comment, COMMENT_CHARS)}"
    blocks = [section(line, block_id=block_id("reply", approval.id)), *_comment_blocks(approval)]
    edited = _edited_args(decision)
    if edited is not None:
        blocks.append(_diff_section(approval.args, edited, approval.id))
    return {"text": text, "blocks": blocks}


def describe_outcome(approval: Approval) -> tuple[str, str]:
    """`(emoji, headline)` for a decided approval, e.g. `(":x:", "Rejected")`."""
    if approval.decision is not None:
        key = (approval.decision.action, approval.decision.approved)
    elif approval.status in _STATUS_OUTCOMES:
        key = _STATUS_OUTCOMES[approval.status]
    else:
        raise ValueError(f"approval {approval.id} is still pending")
    fallback = (":white_check_mark:", "Approved") if key[1] else (":x:", "Rejected")
    return _OUTCOMES.get(key, fallback)


def outcome_line(approval: Approval) -> str:
    """The outcome as mrkdwn, e.g. ":x: *Rejected* by <@U0ALICE>"."""
    emoji, headline = describe_outcome(approval)
    return f"{emoji} *{headline}*{_byline(approval.decision)}"


def args_title(approval: Approval) -> str:
    """`*Arguments*`, naming who edited them when they are an edit's (the editor clicked in
    Slack, so they are a person, mentioned like any decider)."""
    if approval.progress.args is None:
        return "*Arguments*"
    editor = approval.progress.edited_by
    if editor is None:
        return "*Arguments* (edited)"
    return f"*Arguments* (edited by {user_markup(editor, NAME_CHARS)})"


def _current_args(approval: Approval) -> tuple[list[Block], bool]:
    """The arguments a vote now approves, and whether they had to be cut."""
    title = args_title(approval)
    return args_blocks(
        approval.id,
        approval.current_args,
        title,
        chars=ARGS_PREVIEW_CHARS,
        lines=ARGS_PREVIEW_LINES,
    )


def _insert_preview(
    approval: Approval,
    blocks: list[Block],
    at: int,
    *,
    view_args: bool = False,
    decided: bool = False,
) -> bool:
    """Put the request's preview into `blocks` at `at`, in the room the rest of the card
    leaves; returns whether it was cut (offer "View full preview"). On a `decided` card,
    which has no buttons, its note offers none."""
    if approval.preview is None:
        return False
    buttons = (
        None if decided else decision_buttons(approval, view_args=view_args, view_preview=True)
    )
    used = text_units(blocks) + text_units(buttons)
    room = min(PREVIEW_CHARS, CARD_TEXT_BUDGET - used - PREVIEW_OVERHEAD)
    shown, cut = preview_blocks(
        approval,
        chars=max(room, MIN_PREVIEW_CHARS),
        lines=PREVIEW_LINES,
        viewable=not decided,
    )
    blocks[at:at] = shown
    return cut


def _byline(decision: Decision | None) -> str:
    if decision is None or decision.action is Action.TIMEOUT:
        return ""
    if decision.action is Action.CANCEL:
        # the agent named itself (`cancelledBy`): shown as text, never as a mention
        return f" ({inert(decision.decided_by_name or decision.decided_by, NAME_CHARS)})"
    if decision.action in (Action.APPROVE, Action.EDIT) and len(decision.approvers) > 1:
        who = _user_list(decision.approvers)
    elif decision.decided_by.startswith("system:"):
        return ""
    elif is_user_id(decision.decided_by):
        who = user_markup(decision.decided_by)
    else:
        who = truncate(decision.decided_by_name or decision.decided_by, NAME_CHARS)
    return f" by {who}"


def _attention(approval: Approval, ping: str) -> str:
    if approval.priority in _LOUD:
        emoji, label = _PRIORITY[approval.priority]
        line = f"{emoji} *{label} priority* — approval needed"
    else:
        line = "Approval needed"
    return f"{ping} {line}" if ping else line


def _header(approval: Approval) -> Block:
    return {
        "type": "header",
        "block_id": block_id("header", approval.id),
        "text": plain(approval.tool_name, 150),
    }


def _agent_blocks(approval: Approval) -> list[Block]:
    """The prompt and context, under a label saying they are the agent's, as plain text: a
    prompt reading `:white_check_mark: *Approved* by @alice` shows just those characters,
    below the bot's own lines and never styled like them."""
    blocks: list[Block] = []
    if _shown(approval.prompt):
        prompt = verbatim(approval.prompt, PROMPT_CHARS)
        blocks.append(
            {"type": "section", "block_id": block_id("prompt", approval.id), "text": prompt}
        )
    if _shown(approval.context):
        element = verbatim(approval.context, CONTEXT_CHARS)
        blocks.append(
            {"type": "context", "block_id": block_id("context", approval.id), "elements": [element]}
        )
    if blocks:
        label = context(["*From the agent:*"], block_id=block_id("agent", approval.id))
        blocks.insert(0, label)
    return blocks


def _fields(approval: Approval, *, expiry: bool) -> list[Block]:
    """Who asks, how urgent, until when; then the tool call's id on a context line of its own
    (an id, not something to read). A field with nothing to say is left out: no
    "Requested by unknown" for a call made without a requester, no "Expires never"."""
    emoji, label = _PRIORITY[approval.priority]
    fields = []
    requester = _requester(approval)
    if requester:
        fields.append(mrkdwn(f"*Requested by*\n{requester}"))
    fields.append(mrkdwn(f"*Priority*\n{emoji} {label}"))
    if expiry and approval.expires_at is not None:
        after = _AFTER_EXPIRY[approval.on_timeout]
        fields.append(mrkdwn(f"*Expires*\n{date_markup(approval.expires_at)}\n{after}"))
    call = verbatim(f"Tool call {clip(approval.tool_call_id, NAME_CHARS)}", NAME_CHARS + 20)
    return [
        {"type": "section", "block_id": block_id("fields", approval.id), "fields": fields},
        {"type": "context", "block_id": block_id("call", approval.id), "elements": [call]},
    ]


def _requester(approval: Approval) -> str:
    """Who asks, as the agent said (empty when it said nothing): an agent-given Slack id is
    shown, never mentioned."""
    requester = approval.requester
    parts = []
    if requester.agent:
        parts.append(inert(requester.agent, NAME_CHARS))
    if requester.slack_user:
        parts.append(("for " if parts else "") + inert(requester.slack_user, NAME_CHARS))
    if requester.run_id:
        run = f"run {inert(requester.run_id, NAME_CHARS)}"
        parts.append(f"({run})" if parts else run)
    return " ".join(parts)


def _diff_section(old: Mapping[str, Any], new: Mapping[str, Any], approval_id: str) -> Block:
    lines = diff_lines(old, new)
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"… and {len(lines) - MAX_DIFF_LINES} more changes"]
    code, _ = code_block("\n".join(lines) or "(no changes)", DIFF_CHARS)
    return section(f"*Changed arguments*\n{code}", block_id=block_id("diff", approval_id))


def diff_lines(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """One plain line per changed top-level argument: `key: old → new`."""
    lines = []
    for key in dict.fromkeys([*old, *new]):
        before = _compact(old[key]) if key in old else "(absent)"
        after = _compact(new[key]) if key in new else "(removed)"
        if before != after:
            name = key if key.strip() else json.dumps(key)
            lines.append(f"{clip(name, 80)}: {clip(before, 150)} → {clip(after, 150)}")
    return lines


def _compact(value: Any) -> str:
    # sort_keys: a reordered object is not a change; JSON text tells 1 from true from 1.0
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _shown(text: str | None) -> TypeGuard[str]:
    """Slack refuses blank text objects, so blank agent text is left out."""
    return text is not None and text.strip() != ""


def _edited_args(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None or decision.action is not Action.EDIT:
        return None
    return decision.approved_args


def _comment_label(decision: Decision) -> str:
    return _COMMENT_LABELS.get(decision.action, "Comment")


def _comment_blocks(approval: Approval) -> list[Block]:
    """The decision's comment under its label, as plain text: a cancellation's reason is the
    agent's, and nobody's words should look like the bot's outcome line."""
    decision = approval.decision
    if decision is None or not _shown(decision.comment):
        return []
    label = context(
        [f"*{_comment_label(decision)}:*"], block_id=block_id("comment_label", approval.id)
    )
    words = verbatim(decision.comment, COMMENT_CHARS)
    return [label, {"type": "section", "block_id": block_id("comment", approval.id), "text": words}]


def _notes_block(approval: Approval, notes: Sequence[str]) -> list[Block]:
    lines = [truncate(note, NOTE_CHARS) for note in notes if _shown(note)]
    if not lines:
        return []
    if len(lines) > MAX_NOTES:
        lines = [*lines[:MAX_NOTES], f"… and {len(lines) - MAX_NOTES} more notes"]
    return [context(lines, block_id=block_id("notes", approval.id))]


def _progress_line(progress: Progress) -> str:
    line = f":busts_in_silhouette: {len(progress.approvers)} of {progress.required}"
    if progress.approvers:
        line += f" — approved by {_user_list(progress.approvers)}"
    else:
        line += " approvals so far"
    if progress.edited:
        line += " · :pencil2: arguments were edited; approvals restart"
    return line


def _user_list(users: Sequence[str]) -> str:
    shown = ", ".join(user_markup(user, 40) for user in users[:MAX_LISTED_USERS])
    if len(users) > MAX_LISTED_USERS:
        shown += f" and {len(users) - MAX_LISTED_USERS} more"
    return shown
