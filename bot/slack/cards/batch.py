"""Batches in Block Kit (`bot.batches`): the summary of a batch (in its first card's thread, and
per viewer in App Home) with "Approve all N" and "Reject all N…", the reason modal, and what a
batch decision did.

A summary lists each approval in two fields: the tool (linked to its card) with its status, and
its arguments as plain text, cut to share the message's room. Its buttons name the drawing
(`BatchView`, stored by the caller before the summary is shown): the approvals listed, the
arguments version each showed, and whether they were shown whole. Agent text (tool names,
arguments, the batch key, the agent's name) is plain text or inert, never the bot's words.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.batches import BatchRef, BatchResult, BatchView, ItemResult, Shown, left_for_its_card
from bot.errors import AlreadyDecided
from bot.models import Approval, DecisionKind, Priority, Status
from bot.policy import NotAnApprover, verb_for
from bot.slack.cards.approvers import who_markup
from bot.slack.cards.card import outcome_line
from bot.slack.cards.ids import (
    BATCH_APPROVE_ACTION,
    BATCH_REJECT_ACTION,
    BATCH_REJECT_MODAL,
    REASON_BLOCK,
    Unreadable,
    private_metadata,
    read_private_metadata,
)
from bot.slack.cards.modals import parse_reject_submission
from bot.slack.cards.text import (
    Block,
    Message,
    View,
    clip,
    context,
    escape_mrkdwn,
    inert,
    measure,
    mrkdwn,
    plain,
    section,
    shorten,
    text_input,
    truncate,
    verbatim,
)

__all__ = [
    "BatchDrawing",
    "parse_batch_reject",
    "read_batch_metadata",
    "read_batch_value",
    "render_batch_reject_modal",
    "render_batch_result",
    "render_batch_result_view",
    "render_batch_summary",
]

#: the text a summary carries in all (Slack refuses a message past about 12,000 characters
#: of text, `msg_blocks_too_long`): what its listed approvals share
SUMMARY_TEXT = 11_000
#: text kept for the header, the notes and the buttons (their confirm dialog)
SUMMARY_FIXED = 1_300
#: approvals listed at most (two fields each, ten fields a section: 20 sections)
MAX_LISTED = 100
#: in App Home, where every section shares 100 blocks: fewer, in less room
HOME_LISTED = 40
HOME_TEXT = 6_000
#: characters of one approval's arguments: at least (else fewer approvals are listed), at most
MIN_ARGS = 40
MAX_ARGS = 600
#: characters of a decided approval's arguments (its outcome matters more)
DECIDED_ARGS = 60
TOOL_CHARS = 80
FIELDS_PER_SECTION = 10
#: what a batch decision's report lists at most
RESULT_TEXT = 8_000
REASON_CHARS = 400
SECTION_CHARS = 2_900
CONFIRM_CHARS = 300

_VIEW_ID = re.compile(r"bv_[0-9a-f]{32}")
_CUT_MARK = "✂"
_CUT_STATUS = f"{_CUT_MARK} cut: approve it on its card"
#: what a pending approval's status grows by when its arguments are cut
_CUT_COST = len(_CUT_STATUS) + 3


@dataclass(frozen=True)
class BatchDrawing:
    """A summary as drawn: its message, and the drawing its buttons name (keep it first)."""

    message: Message
    view: BatchView


def batch_value(view: BatchView) -> str:
    """The value of a batch button: the drawing's id (`bv_…`, 35 characters)."""
    return view.id


def read_batch_value(value: object) -> str:
    """The drawing id in a batch button's value, or `Unreadable`."""
    if not isinstance(value, str) or not _VIEW_ID.fullmatch(value):
        raise Unreadable("not a batch button")
    return value


def _compact(args: Mapping[str, Any]) -> str:
    return json.dumps(args, ensure_ascii=False, separators=(",", ":"), default=str)


def _tool(approval: Approval) -> str:
    tool = truncate(approval.tool_name, TOOL_CHARS)
    link = approval.slack.permalink
    return f"<{link}|{tool}>" if link else f"*{tool}*"


def _status(approval: Approval, whole: bool) -> str:
    if not approval.is_pending:
        return outcome_line(approval)
    parts = ["⏳ pending"]
    required = approval.policy.required_approvals
    if required > 1:
        parts.append(f"{len(approval.progress.approved_by)} of {required} approved")
    if approval.priority is Priority.CRITICAL:
        parts.append(":rotating_light: critical: approve it on its card")
    elif DecisionKind.APPROVE not in approval.allowed_decisions:
        parts.append("approve is not offered")
    elif not whole:
        parts.append(_CUT_STATUS)
    return " · ".join(parts)


def _share(sizes: Sequence[int], room: int) -> int | None:
    """The most characters of arguments each pending approval may show (between `MIN_ARGS`
    and `MAX_ARGS`) for all of them to fit `room`, counting the longer status of those cut;
    None when even `MIN_ARGS` each does not fit."""

    def fits(share: int) -> bool:
        cost = sum(min(size, share) + (_CUT_COST if size > share else 0) for size in sizes)
        return cost <= room

    if not fits(MIN_ARGS):
        return None
    low, high = MIN_ARGS, MAX_ARGS  # `low` always fits
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


def _title(ref: BatchRef, approvals: Sequence[Approval]) -> str:
    if not approvals:
        return f":package: No approvals left in {inert(ref.key, 80)}"
    first = approvals[0]
    kind = "batch" if first.batch_id else "run"
    agent = first.requester.agent
    by = f" of {inert(agent, 80)}" if agent else ""
    counts = Counter(a.status for a in approvals)
    order = [Status.PENDING, Status.APPROVED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED]
    tally = " · ".join(f"{counts[s]} {s.value}" for s in order if counts[s])
    return f":package: *{len(approvals)} approvals* in {kind} {inert(ref.key, 80)}{by}\n{tally}"


def render_batch_summary(
    ref: BatchRef, approvals: Sequence[Approval], *, home: bool = False
) -> BatchDrawing:
    """The summary of a batch (its approvals the oldest first): pending ones listed first,
    each with its arguments, then decided ones with their outcome; "Approve all N" and
    "Reject all N…" over the pending ones listed, when there are two or more.

    `home`: App Home's, which lists fewer in less room (its view shares 100 blocks)."""
    limit, budget = (HOME_LISTED, HOME_TEXT) if home else (MAX_LISTED, SUMMARY_TEXT)
    pending = [a for a in approvals if a.is_pending]
    decided = [a for a in approvals if not a.is_pending]
    candidates = [*pending, *decided][:limit]
    texts = {a.id: _compact(a.current_args) for a in candidates}
    # fewer listed until each pending one gets at least `MIN_ARGS` of its arguments
    while True:
        used = sum(measure(_tool(a)) + measure(_status(a, True)) + 8 for a in candidates)
        used += DECIDED_ARGS * sum(1 for a in candidates if not a.is_pending)
        sizes = [measure(texts[a.id]) for a in candidates if a.is_pending]
        share = _share(sizes, budget - SUMMARY_FIXED - used)
        if share is not None or len(candidates) <= 1:
            break
        candidates.pop()
    share = share or MIN_ARGS
    fields: list[dict[str, Any]] = []
    shown: list[Shown] = []
    for approval in candidates:
        text = _compact(approval.current_args)
        if approval.is_pending:
            whole = measure(text) <= share
            shown.append(Shown.of(approval, whole=whole))
            args = verbatim(text, share)
        else:
            whole, args = True, verbatim(text, DECIDED_ARGS)
        fields.append(mrkdwn(shorten(f"{_tool(approval)}\n{_status(approval, whole)}", 2000)))
        fields.append(args)
    view = BatchView.of(ref, shown)
    blocks: list[Block] = [section(_title(ref, approvals), block_id=f"batch:{view.id}")]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append(
            {
                "type": "section",
                "block_id": f"batch_{start // FIELDS_PER_SECTION}:{view.id}",
                "fields": fields[start : start + FIELDS_PER_SECTION],
            }
        )
    notes = _notes(approvals, candidates, shown)
    if notes:
        blocks.append(context(notes, block_id=f"batch_notes:{view.id}"))
    actions = _actions(view, candidates) if len(shown) >= 2 else None
    if actions is not None:
        blocks.append(actions)
    text = f"{len(approvals)} approvals in this batch, {len(pending)} pending"
    return BatchDrawing({"text": text, "blocks": blocks}, view)


def _notes(
    approvals: Sequence[Approval], listed: Sequence[Approval], shown: Sequence[Shown]
) -> list[str]:
    notes = []
    left_out = len(approvals) - len(listed)
    pending_left = sum(1 for a in approvals if a.is_pending) - len(shown)
    if left_out:
        notes.append(
            f"{left_out} more not listed here ({pending_left} pending): decide them on their "
            "cards. The buttons decide only the approvals listed."
        )
    if len(shown) >= 2:
        notes.append(
            "*Approve all* and *Reject all* decide each listed pending approval as a click on "
            "its card would: who may decide, how many approvers it needs and the decisions it "
            "offers are checked one by one, and you are told what was refused and why. "
            f"Critical calls, and calls whose arguments are cut here ({_CUT_MARK}), are left "
            "to their cards by Approve all."
        )
    return notes


def _tools_text(approvals: Sequence[Approval]) -> str:
    counts = Counter(a.tool_name for a in approvals)
    return ", ".join(f"{tool} ×{n}" if n > 1 else tool for tool, n in counts.most_common())


def _actions(view: BatchView, listed: Sequence[Approval]) -> Block:
    value = batch_value(view)
    by_id = {a.id: a for a in listed}
    pending = [by_id[s.approval_id] for s in view.items]
    approvable = [
        by_id[s.approval_id]
        for s in view.items
        if left_for_its_card(by_id[s.approval_id], s) is None
        and DecisionKind.APPROVE in by_id[s.approval_id].allowed_decisions
    ]
    n = len(pending)
    elements = []
    if approvable:
        left = n - len(approvable)
        calls = "call" if len(approvable) == 1 else "calls"
        question = f"Approve {len(approvable)} {calls}: {_tools_text(approvable)}."
        tail = " Each is checked as a click on its card would be."
        if left:
            tail = f" {left} left to their cards (critical, or arguments cut here)." + tail
        room = CONFIRM_CHARS - measure(tail)
        elements.append(
            {
                "type": "button",
                "action_id": BATCH_APPROVE_ACTION,
                "text": plain(f"Approve all {n}", 75),
                "value": value,
                "style": "primary",
                "confirm": {
                    "title": plain(f"Approve all {n}?", 100),
                    "text": plain(clip(question, room) + tail, CONFIRM_CHARS, emoji=False),
                    "confirm": plain("Approve all", 30),
                    "deny": plain("Cancel", 30),
                    "style": "primary",
                },
            }
        )
    elements.append(
        {
            "type": "button",
            "action_id": BATCH_REJECT_ACTION,
            "text": plain(f"Reject all {n}…", 75),
            "value": value,
            "style": "danger",
        }
    )
    return {"type": "actions", "block_id": f"batch_actions:{view.id}", "elements": elements}


# -- Reject all N… ---------------------------------------------------------------------------


def render_batch_reject_modal(view: BatchView, *, home: bool = False) -> View:
    """Ask for the reason before rejecting every approval the drawing listed; `home`: opened
    from App Home, which is drawn again once they are rejected."""
    n = len(view.items)
    intro = (
        f"Reject the {n} pending calls the summary listed? The agent will not run them. "
        "Each is rejected only where you may decide it; you will see which were refused "
        "and why."
    )
    blocks = [
        {"type": "section", "text": plain(intro, 3000)},
        text_input(REASON_BLOCK, "Reason", "Shown on each card and sent to the agent."),
    ]
    return {
        "type": "modal",
        "callback_id": BATCH_REJECT_MODAL,
        "private_metadata": private_metadata(view.id, home=home),
        "title": plain(f"Reject all {n}", 24),
        "submit": plain("Reject all", 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }


def read_batch_metadata(text: object) -> tuple[str, bool]:
    """`(drawing id, opened from App Home)` from the reject-all modal, or `Unreadable`."""
    try:
        data = read_private_metadata(text)
    except ValueError as exc:
        raise Unreadable(str(exc)) from None
    return read_batch_value(data["id"]), data.get("home") is True


def parse_batch_reject(state_values: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The reason typed in the reject-all modal, or None."""
    return parse_reject_submission(state_values)


# -- what a batch decision did ---------------------------------------------------------------


def _item_tool(item: ItemResult) -> str:
    if item.approval is not None:
        return _tool(item.approval)
    return f"*{truncate(item.tool_name, TOOL_CHARS)}*"


def _reason(item: ItemResult) -> str:
    error = item.error
    if isinstance(error, AlreadyDecided):
        return f"already decided: {outcome_line(error.approval)}"
    if isinstance(error, NotAnApprover):
        who = who_markup(error.approvers, error.channels)
        return f"only {who} can {verb_for(error.kind)} it"
    return escape_mrkdwn(shorten(item.reason or "refused", REASON_CHARS))


def _counted(item: ItemResult) -> str:
    approval = item.approval
    if approval is None:
        return _item_tool(item)
    done, required = len(approval.progress.approved_by), approval.policy.required_approvals
    return f"{_item_tool(item)} ({done} of {required})"


def _result_lines(result: BatchResult) -> tuple[str, list[str]]:
    verb = "Approve all" if result.approve else "Reject all"
    decided, counted, refused = result.decided, result.counted, result.refused
    untried = result.untried
    parts = []
    if decided:
        parts.append(f"{len(decided)} {'approved' if result.approve else 'rejected'}")
    if counted:
        parts.append(f"{len(counted)} counted, waiting for other approvers")
    if refused:
        parts.append(f"{len(refused)} refused")
    if untried:
        parts.append(f"{len(untried)} not tried")
    headline = f"*{verb}:* " + (", ".join(parts) if parts else "nothing to decide") + "."
    lines = []
    if decided:
        emoji, word = (":white_check_mark:", "Approved") if result.approve else (":x:", "Rejected")
        lines.append(f"{emoji} *{word}:* " + ", ".join(_item_tool(i) for i in decided))
    if counted:
        lines.append(
            ":ballot_box_with_check: *Your approval counted, waiting for others:* "
            + ", ".join(_counted(i) for i in counted)
        )
    if refused:
        lines.append(":no_entry_sign: *Refused, nothing changed:*")
        lines.extend(f"• {_item_tool(i)}: {_reason(i)}" for i in refused)
    if untried:
        lines.append(
            f":hourglass: *{len(untried)} not tried:* Slack's time to answer ran out first; "
            f"click {verb} again for the rest."
        )
    return headline, lines


def _result_blocks(result: BatchResult) -> tuple[str, list[Block]]:
    headline, lines = _result_lines(result)
    blocks: list[Block] = [section(headline)]
    chunk: list[str] = []
    used = measure(headline)
    listed = 0
    for line in lines:
        line = shorten(line, SECTION_CHARS)
        cost = measure(line) + 1
        if used + cost > RESULT_TEXT:
            break
        if chunk and measure("\n".join(chunk)) + cost > SECTION_CHARS:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
        used += cost
        listed += 1
    if chunk:
        blocks.append(section("\n".join(chunk)))
    if listed < len(lines):
        blocks.append(context([f"… and {len(lines) - listed} more lines not shown"]))
    if result.comment and not result.approve:
        blocks.append(
            {
                "type": "context",
                "elements": [mrkdwn("*Reason:*"), verbatim(result.comment, 1500)],
            }
        )
    return headline, blocks


def render_batch_result(result: BatchResult) -> Message:
    """What a batch decision did, for the person who clicked: what was decided, what counted
    and waits for others, and what was refused and why."""
    headline, blocks = _result_blocks(result)
    return {"text": headline, "blocks": blocks}


def render_batch_result_view(result: BatchResult) -> View:
    """The same, in place of the reject-all modal once submitted."""
    _, blocks = _result_blocks(result)
    title = "Approve all" if result.approve else "Reject all"
    return {
        "type": "modal",
        "title": plain(title, 24),
        "close": plain("Done", 24),
        "blocks": blocks,
    }
