"""The small modals (reject, feedback, notices) and the paged full-arguments modal."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.models import Approval
from bot.slack.cards.card import outcome_line
from bot.slack.cards.edit import EditErrors
from bot.slack.cards.ids import (
    ARGS_MODAL,
    ARGS_PAGE_ACTION,
    FEEDBACK_BLOCK,
    FEEDBACK_MODAL,
    NOTICE_MODAL,
    PREVIEW_MODAL,
    PREVIEW_PAGE_ACTION,
    REASON_BLOCK,
    REJECT_MODAL,
    args_page_value,
    private_metadata,
)
from bot.slack.cards.inputs import read_input
from bot.slack.cards.preview import preview_label, preview_sections
from bot.slack.cards.text import (
    Block,
    View,
    clip,
    code_cost,
    code_prefix,
    code_safe,
    mrkdwn,
    plain,
    pretty_json,
    section,
    text_input,
    truncate,
)

__all__ = [
    "args_pages",
    "parse_feedback_submission",
    "parse_reject_submission",
    "render_args_modal",
    "render_decided_notice",
    "render_feedback_modal",
    "render_notice_modal",
    "render_preview_modal",
    "render_reject_modal",
]

SECTION_CHARS = 3000
SECTIONS_PER_PAGE = 30
#: bytes of sections per page (as JSON, non-ASCII escaped): well under the 250 kB view limit
PAGE_BUDGET_BYTES = 150_000
_FENCES = len("```\n\n```")


def render_reject_modal(approval: Approval) -> View:
    """Ask for an optional reason before rejecting."""
    intro = f"Reject {approval.tool_name}? The agent will not run it."
    blocks = [
        {"type": "section", "text": plain(intro, 3000)},
        text_input(REASON_BLOCK, "Reason", "Shown on the card and sent to the agent."),
    ]
    metadata = private_metadata(approval.id, v=approval.args_version)
    return _modal(REJECT_MODAL, "Reject request", metadata, blocks, submit="Reject")


def render_feedback_modal(approval: Approval) -> View:
    """Ask for the text the model gets instead of running the tool."""
    intro = (
        f"{approval.tool_name} will not run. The agent gets your text as the answer, "
        "so it can change course."
    )
    blocks = [
        {"type": "section", "text": plain(intro, 3000)},
        text_input(
            FEEDBACK_BLOCK,
            "Feedback for the agent",
            "Sent to the model as the tool's answer.",
            optional=False,
        ),
    ]
    metadata = private_metadata(approval.id, v=approval.args_version)
    return _modal(FEEDBACK_MODAL, "Send feedback", metadata, blocks, submit="Send")


def parse_reject_submission(state_values: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The reason typed in the reject modal, or None."""
    element = read_input(state_values, REASON_BLOCK) or {}
    return (element.get("value") or "").strip() or None


def parse_feedback_submission(state_values: Mapping[str, Mapping[str, Any]]) -> str:
    """The feedback typed in the feedback modal; raises `EditErrors` when it is blank."""
    element = read_input(state_values, FEEDBACK_BLOCK) or {}
    text = (element.get("value") or "").strip()
    if not text:
        raise EditErrors({FEEDBACK_BLOCK: "Write what the agent should know."})
    return text


def render_notice_modal(title: str, text: str, *, approval_id: str | None = None) -> View:
    """A modal that only tells something (its text is escaped); it has no submit button."""
    return _notice(title, truncate(text, 3000), approval_id)


def render_decided_notice(approval: Approval) -> View:
    """Tell someone the approval was decided while they were looking at it."""
    text = f"This approval was already decided: {outcome_line(approval)}"
    return _notice("Already decided", text, approval.id)


def render_args_modal(approval: Approval, page: int = 1) -> View:
    """The arguments being approved now (an edit's, else the original ones) as pretty JSON,
    one page of code blocks at a time (pages from 1)."""
    pages = args_pages(approval.current_args)
    page = min(max(page, 1), len(pages))
    edited = " (edited)" if approval.progress.args is not None else ""
    where = f"{clip(approval.tool_name, 150)}{edited} · page {page} of {len(pages)}"
    blocks: list[Block] = [{"type": "context", "elements": [plain(where, 2000)]}]
    blocks.extend({"type": "section", "text": mrkdwn(text)} for text in pages[page - 1])
    # Two blocks: an action_id must be unique within its block, and both buttons are args_page.
    if page > 1:
        blocks.append(_page_button("args_previous", "◀ Previous", approval.id, page - 1))
    if page < len(pages):
        blocks.append(_page_button("args_next", "Next ▶", approval.id, page + 1))
    metadata = private_metadata(approval.id, page=page)
    return _modal(ARGS_MODAL, "Full arguments", metadata, blocks, close="Close")


def render_preview_modal(approval: Approval, page: int = 1) -> View:
    """The whole preview of the request, as the card shows it but uncut, one page at a time
    (pages from 1); an approval without a preview gets a notice saying so."""
    if approval.preview is None:
        return render_notice_modal("Preview", "This request has no preview.")
    pages = _paged(preview_sections(approval.preview))
    page = min(max(page, 1), len(pages))
    where = f"{clip(approval.tool_name, 150)} · page {page} of {len(pages)}"
    blocks: list[Block] = [
        {
            "type": "context",
            "elements": [plain(where, 2000), mrkdwn(preview_label(approval))],
        }
    ]
    blocks.extend({"type": "section", "text": mrkdwn(text)} for text in pages[page - 1])
    if page > 1:
        blocks.append(
            _page_button(
                "preview_previous", "◀ Previous", approval.id, page - 1, PREVIEW_PAGE_ACTION
            )
        )
    if page < len(pages):
        blocks.append(
            _page_button("preview_next", "Next ▶", approval.id, page + 1, PREVIEW_PAGE_ACTION)
        )
    metadata = private_metadata(approval.id, page=page)
    return _modal(PREVIEW_MODAL, "Full preview", metadata, blocks, close="Close")


def args_pages(args: Mapping[str, Any]) -> list[list[str]]:
    """The pretty JSON of `args` cut into fenced code sections, grouped into pages."""
    return _paged([f"```\n{code_safe(chunk)}\n```" for chunk in _chunks(pretty_json(args))])


def _paged(sections: list[str]) -> list[list[str]]:
    """Sections grouped into modal pages: at most `SECTIONS_PER_PAGE`, and well within the
    view's size limit."""
    pages: list[list[str]] = [[]]
    size = 0
    for text in sections:
        cost = len(json.dumps(text))
        if pages[-1] and (len(pages[-1]) == SECTIONS_PER_PAGE or size + cost > PAGE_BUDGET_BYTES):
            pages.append([])
            size = 0
        pages[-1].append(text)
        size += cost
    return pages


def _chunks(text: str) -> list[str]:
    """Pieces of `text` whose code-safe form fits a section, cut at line ends when possible."""
    budget = SECTION_CHARS - _FENCES
    chunks: list[str] = []
    lines: list[str] = []
    used = 0
    for line in text.splitlines(keepends=True):
        cost = code_cost(line)
        if lines and used + cost > budget:
            chunks.append("".join(lines))
            lines, used = [], 0
        while cost > budget:
            piece = code_prefix(line, budget)
            chunks.append(piece)
            line = line[len(piece) :]
            cost = code_cost(line)
        if line:
            lines.append(line)
            used += cost
    if lines or not chunks:
        chunks.append("".join(lines))
    return chunks


def _page_button(
    block: str, label: str, approval_id: str, page: int, action_id: str = ARGS_PAGE_ACTION
) -> Block:
    button = {
        "type": "button",
        "action_id": action_id,
        "text": plain(label, 75),
        "value": args_page_value(approval_id, page),
    }
    return {"type": "actions", "block_id": block, "elements": [button]}


def _notice(title: str, text: str, approval_id: str | None) -> View:
    metadata = "" if approval_id is None else private_metadata(approval_id)
    return _modal(NOTICE_MODAL, title, metadata, [section(text)], close="OK")


def _modal(
    callback_id: str,
    title: str,
    metadata: str,
    blocks: list[Block],
    *,
    submit: str | None = None,
    close: str = "Cancel",
) -> View:
    view: View = {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata,
        "title": plain(title, 24),
        "close": plain(close, 24),
        "blocks": blocks,
    }
    if submit is not None:
        view["submit"] = plain(submit, 24)
    return view
