"""The decision buttons, shared by the card, App Home and the thread confirmation.

Each one carries the version of the arguments it was drawn beside (`vote_value`), so a click on
arguments edited since counts for nothing.
"""

from __future__ import annotations

from typing import Any

from bot.grants import may_stand
from bot.models import Approval, DecisionKind, Priority
from bot.slack.cards.args import preview_args
from bot.slack.cards.ids import (
    ALLOW_ACTION,
    APPROVE_ACTION,
    EDIT_ACTION,
    FEEDBACK_ACTION,
    REJECT_ACTION,
    VIEW_ARGS_ACTION,
    VIEW_PREVIEW_ACTION,
    block_id,
    vote_value,
)
from bot.slack.cards.text import Block, clip, measure, plain

__all__ = ["CONFIRM_CHARS", "decision_buttons"]

#: Slack's limit on a confirm dialog's text
CONFIRM_CHARS = 300
_CONFIRM_LINES = 8
#: room kept for the line saying what was cut, and the line breaks
_SUMMARY_CHARS = 85
_BUTTONS = (
    (DecisionKind.APPROVE, APPROVE_ACTION, "Approve", "primary"),
    (DecisionKind.EDIT, EDIT_ACTION, "Edit…", None),
    (DecisionKind.REJECT, REJECT_ACTION, "Reject…", "danger"),
    (DecisionKind.FEEDBACK, FEEDBACK_ACTION, "Feedback…", None),
)


def decision_buttons(
    approval: Approval,
    *,
    view_args: bool,
    view_preview: bool = False,
    only: DecisionKind | None = None,
    requester: bool = False,
) -> Block | None:
    """The allowed decisions (or just `only`), "Approve & allow…" after Approve where the
    rule allows standing approvals, then "View full arguments" when `view_args`
    and "View full preview" when `view_preview`; None when there is no button to show.
    Shown to the `requester` themselves (App Home), no Approve or Edit: they may not."""
    value = vote_value(approval.id, approval.args_version)
    allowed = set(approval.allowed_decisions)
    if requester:
        allowed -= {DecisionKind.APPROVE, DecisionKind.EDIT}
    elements = []
    for kind, action_id, label, style in _BUTTONS:
        if kind not in allowed or only not in (None, kind):
            continue
        button = _button(action_id, label, value, style)
        if kind is DecisionKind.APPROVE and approval.priority is Priority.CRITICAL:
            button["confirm"] = _confirm(approval)
        elements.append(button)
        if kind is DecisionKind.APPROVE and only is None and may_stand(approval):
            # the rule allows standing approvals (never on a critical call): `bot.grants`
            elements.append(_button(ALLOW_ACTION, "Approve & allow…", value, None))
    if view_args:
        elements.append(_button(VIEW_ARGS_ACTION, "View full arguments", value, None))
    if view_preview:
        elements.append(_button(VIEW_PREVIEW_ACTION, "View full preview", value, None))
    if not elements:
        return None
    return {"type": "actions", "block_id": block_id("actions", approval.id), "elements": elements}


def _button(action_id: str, label: str, value: str, style: str | None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": plain(label, 75),
        "value": value,
    }
    if style is not None:
        button["style"] = style
    return button


def _confirm(approval: Approval) -> dict[str, Any]:
    """The dialog a critical Approve opens: it names the tool and shows the arguments itself
    (App Home has no card to point at), cut to Slack's 300 characters and saying so."""
    question = f"Run {clip(approval.tool_name, 60)} with these arguments?"
    room = CONFIRM_CHARS - measure(question) - _SUMMARY_CHARS
    preview = preview_args(approval.current_args, chars=room, lines=_CONFIRM_LINES, pretty=False)
    lines = [question, *(preview.lines or ["(no arguments)"])]
    summary = preview.summary()
    if summary is not None:
        lines.append(summary)
    return {
        "title": plain("Approve a critical action?", 100),
        "text": plain("\n".join(lines), CONFIRM_CHARS, emoji=False),
        "confirm": plain("Approve", 30),
        "deny": plain("Cancel", 30),
        "style": "primary",
    }
