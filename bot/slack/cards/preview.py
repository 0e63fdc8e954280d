"""A request's preview where a person decides: a diff or a text as a code block, Markdown as
escaped mrkdwn, cut to fit, and the whole of it in pages for the modal.

The body is the agent's, so it is trusted with nothing. A diff or a text only ever sits in a
code block (`code_safe`); Markdown becomes escaped mrkdwn (`markdown`), and every line of it but
code sits behind Slack's quote bar under a label naming the agent: `**Approved** by @alice` in
a preview reads as a quote of the agent, never as the bot's outcome line, and pings nobody.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.models import Approval, Preview, PreviewKind
from bot.slack.cards.ids import block_id
from bot.slack.cards.markdown import Row, markdown_rows
from bot.slack.cards.text import (
    Block,
    code_prefix,
    code_safe,
    context,
    fit,
    measure,
    shorten,
)

__all__ = ["compact_preview_block", "preview_blocks", "preview_label", "preview_sections"]

SECTION_CHARS = 3000
#: a cut row shows at least this much of itself, else it is left for the modal
MIN_PART_CHARS = 40
_FENCES = len("```\n\n```")
#: how a quoted line of converted Markdown starts (Slack's quote bar)
QUOTE = "> "


@dataclass(frozen=True, slots=True)
class PreviewCut:
    """What a preview shows in a tight place (mrkdwn), and what it leaves out."""

    text: str
    #: lines of the body shown, the last one maybe in part (`partial`), and in all
    lines_shown: int
    lines_total: int
    partial: bool
    cut: bool

    def note(self, *, viewable: bool = True) -> str | None:
        """What is not shown, in the bot's words, or None; `viewable`: the message offers
        "View full preview"."""
        if not self.cut:
            return None
        part = ", the last in part" if self.partial else ""
        said = f"Cut to fit: {self.lines_shown:,} of {self.lines_total:,} lines shown{part}."
        return f"{said} *View full preview* shows all of it." if viewable else said


# -- the body as rows ------------------------------------------------------------------------

#: control characters a code block cannot show: drawn as their Unicode pictures (␛, ␀…); and
#: the line separators some renderers break at, which would start a line outside the quote bar
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")


def _visible(char: re.Match[str]) -> str:
    code = ord(char.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\u2424"


def display_lines(body: str) -> list[str]:
    """The body's lines as shown: CRLF read as a line break, control characters visible."""
    lines = _CONTROL.sub(_visible, body.replace("\r\n", "\n")).split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # the final line break of a text ending with one
    return lines


def rows_of(preview: Preview, lines: list[str]) -> list[Row]:
    """The rows of `lines` (the preview's display lines, or the first of them); never none."""
    if not preview.body.strip():
        return [Row("(empty)", False, 0)]
    if preview.kind is PreviewKind.MARKDOWN:
        return markdown_rows(lines) or [Row("(empty)", False, 0)]
    return [Row(line, True, i) for i, line in enumerate(lines)]


def diff_stats(body: str) -> tuple[int, int]:
    """Lines added and removed by a unified diff (file headers not counted)."""
    added = removed = 0
    for line in body.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def preview_label(approval: Approval) -> str:
    """The bot's line above a preview: whose it is, what kind, how big; and, once the
    arguments were edited, that it shows the call as the agent sent it."""
    preview = approval.preview
    assert preview is not None
    lines = len(display_lines(preview.body))
    label = f"*Preview from the agent* · {preview.kind.value}"
    if preview.kind is PreviewKind.DIFF:
        added, removed = diff_stats(preview.body)
        label += f" · +{added:,} −{removed:,}"
    label += f" · {lines:,} line{'' if lines == 1 else 's'}"
    if approval.progress.args is not None:
        label += " · of the arguments as sent, before the edit"
    return label


# -- rendering and cutting ---------------------------------------------------------------------


def _row_cost(row: Row) -> int:
    return measure(code_safe(row.text)) if row.code else measure(QUOTE + row.text)


def render_rows(rows: Sequence[Row]) -> str:
    """Runs of code rows as fenced code blocks, the other rows quoted, one per line."""
    pieces: list[str] = []
    run: list[str] = []
    for i, row in enumerate(rows):
        if row.code:
            run.append(code_safe(row.text))
            if i + 1 == len(rows) or not rows[i + 1].code:
                pieces.append("```\n" + "\n".join(run) + "\n```")
                run = []
        else:
            pieces.append(QUOTE + row.text)
    return "\n".join(pieces)


class _Meter:
    """The length of `render_rows` of rows added one by one, without rendering them."""

    def __init__(self) -> None:
        self.used = 0
        self.last_code: bool | None = None

    def cost(self, row: Row, text_cost: int) -> int:
        joint = 0 if self.last_code is None else 1
        fences = _FENCES if row.code and not self.last_code else 0
        return joint + fences + text_cost

    def add(self, row: Row, cost: int) -> None:
        self.used += cost
        self.last_code = row.code


def _part(row: Row, room: int) -> Row | None:
    """The head of `row` within `room` units (as rendered), ending with "…"; None when too
    little of it would show."""
    if room < MIN_PART_CHARS:
        return None
    if row.code:
        head = code_prefix(row.text, room - 1)
        return Row(head + "…", True, row.line) if head else None
    head = shorten(row.text, room - len(QUOTE))
    return Row(head, False, row.line) if head.strip("…") else None


def cut_preview(preview: Preview, *, chars: int, lines: int) -> PreviewCut:
    """The first rows of the preview within `chars` (rendered) and `lines`."""
    body = display_lines(preview.body)
    # `lines` rows come from not many more lines: converting a long Markdown body whole
    # would take ~100 ms each time a card or App Home is drawn
    head = body[: lines * 4]
    rows = rows_of(preview, head)
    meter = _Meter()
    shown: list[Row] = []
    partial = False
    for row in rows[:lines]:
        cost = meter.cost(row, _row_cost(row))
        if meter.used + cost > chars:
            part = _part(row, chars - meter.used - meter.cost(row, 0))
            if part is not None:
                shown.append(part)
                partial = True
            break
        shown.append(row)
        meter.add(row, cost)
    text = render_rows(shown) if shown else QUOTE + "…"
    lines_shown = shown[-1].line + 1 if shown else 0
    cut = partial or len(shown) < len(rows) or len(head) < len(body)
    return PreviewCut(text, lines_shown, len(body), partial, cut)


def preview_blocks(
    approval: Approval, *, chars: int, lines: int, viewable: bool = True
) -> tuple[list[Block], bool]:
    """The approval's preview under its label, within `chars` and `lines`, then a note saying
    what is not shown (and, when `viewable`, that "View full preview" shows it); and whether
    anything was left out."""
    assert approval.preview is not None
    shown = cut_preview(approval.preview, chars=min(chars, SECTION_CHARS), lines=lines)
    blocks = [
        context([preview_label(approval)], block_id=block_id("preview_label", approval.id)),
        {
            "type": "section",
            "block_id": block_id("preview", approval.id),
            "text": {"type": "mrkdwn", "text": shown.text},
        },
    ]
    note = shown.note(viewable=viewable)
    if note is not None:
        blocks.append(context([note], block_id=block_id("preview_note", approval.id)))
    return blocks, shown.cut


def compact_preview_block(approval: Approval, *, chars: int, lines: int) -> tuple[Block, bool]:
    """The preview as one block (App Home counts its blocks): the label, the rows, and what
    is not shown, in one section."""
    assert approval.preview is not None
    label = preview_label(approval)
    room = min(chars, SECTION_CHARS - measure(label) - 200)
    shown = cut_preview(approval.preview, chars=room, lines=lines)
    text = f"{label}\n{shown.text}"
    if (note := shown.note()) is not None:
        text += f"\n_{note.replace('*', '')}_"
    block = {
        "type": "section",
        "block_id": block_id("preview", approval.id),
        "text": {"type": "mrkdwn", "text": text},
    }
    return block, shown.cut


def preview_sections(preview: Preview) -> list[str]:
    """The whole preview as section texts of at most 3000 characters each, in order."""
    sections: list[str] = []
    shown: list[Row] = []
    meter = _Meter()
    for whole in rows_of(preview, display_lines(preview.body)):
        for row in _pieces(whole):
            cost = meter.cost(row, _row_cost(row))
            if shown and meter.used + cost > SECTION_CHARS:
                sections.append(render_rows(shown))
                shown, meter = [], _Meter()
                cost = meter.cost(row, _row_cost(row))
            shown.append(row)
            meter.add(row, cost)
    sections.append(render_rows(shown))
    return sections


def _pieces(row: Row) -> list[Row]:
    """`row` split so that each piece fits a section on its own."""
    room = SECTION_CHARS - _FENCES - len(QUOTE) - 1
    if _row_cost(row) <= room:
        return [row]
    pieces = []
    text = row.text
    while text:
        head = code_prefix(text, room) if row.code else _fit_escaped(text, room)
        pieces.append(Row(head, row.code, row.line))
        text = text[len(head) :]
    return pieces


def _fit_escaped(text: str, room: int) -> str:
    """The longest head of escaped mrkdwn within `room` units, never inside an entity."""
    head = fit(text, room)
    amp = head.rfind("&")
    if amp > 0 and ";" not in head[amp:]:
        head = head[:amp]
    return head or text[:1]
