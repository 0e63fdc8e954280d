"""Block Kit rendering: pure functions from approvals to message blocks and modal views.

No I/O and no Slack client. Every agent string is escaped (`escape_mrkdwn`) or shown as plain
text, and cut to Slack's limits on the way out; the approval itself is never changed.
"""

from __future__ import annotations

from bot.cards.card import (
    Progress,
    describe_outcome,
    outcome_line,
    render_card,
    render_decided_card,
    render_decision_reply,
)
from bot.cards.edit import EditErrors, EditResult, parse_edit_submission, render_edit_modal
from bot.cards.home import render_approval_list, render_home, summary_line
from bot.cards.ids import (
    ACTION_IDS,
    APPROVE_ACTION,
    ARGS_MODAL,
    ARGS_PAGE_ACTION,
    CALLBACK_IDS,
    COMMENT_BLOCK,
    EDIT_ACTION,
    EDIT_MODAL,
    FEEDBACK_ACTION,
    FEEDBACK_BLOCK,
    FEEDBACK_MODAL,
    INPUT_ACTION,
    NOTICE_MODAL,
    REASON_BLOCK,
    REJECT_ACTION,
    REJECT_MODAL,
    VIEW_ARGS_ACTION,
    read_approval_id,
    read_args_page,
    read_private_metadata,
)
from bot.cards.inputs import arg_block_id
from bot.cards.modals import (
    parse_feedback_submission,
    parse_reject_submission,
    render_args_modal,
    render_decided_notice,
    render_feedback_modal,
    render_notice_modal,
    render_reject_modal,
)
from bot.cards.text import Message, View, clip, escape_mrkdwn, truncate

__all__ = [
    "ACTION_IDS",
    "APPROVE_ACTION",
    "ARGS_MODAL",
    "ARGS_PAGE_ACTION",
    "CALLBACK_IDS",
    "COMMENT_BLOCK",
    "EDIT_ACTION",
    "EDIT_MODAL",
    "FEEDBACK_ACTION",
    "FEEDBACK_BLOCK",
    "FEEDBACK_MODAL",
    "INPUT_ACTION",
    "NOTICE_MODAL",
    "REASON_BLOCK",
    "REJECT_ACTION",
    "REJECT_MODAL",
    "VIEW_ARGS_ACTION",
    "EditErrors",
    "EditResult",
    "Message",
    "Progress",
    "View",
    "arg_block_id",
    "clip",
    "describe_outcome",
    "escape_mrkdwn",
    "outcome_line",
    "parse_edit_submission",
    "parse_feedback_submission",
    "parse_reject_submission",
    "read_approval_id",
    "read_args_page",
    "read_private_metadata",
    "render_approval_list",
    "render_args_modal",
    "render_card",
    "render_decided_card",
    "render_decided_notice",
    "render_decision_reply",
    "render_edit_modal",
    "render_feedback_modal",
    "render_home",
    "render_notice_modal",
    "render_reject_modal",
    "summary_line",
    "truncate",
]
