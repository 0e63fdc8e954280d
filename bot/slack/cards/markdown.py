"""Markdown as Slack mrkdwn that can neither ping, link nor break out of its line.

Converted line by line: headings turn bold, lists get bullets, code spans and fenced blocks
stay code, and a link shows its label then its URL as text, never as `<url|label>`. Every piece
of text is escaped (`&`, `<`, `>`), runs of three backticks are broken wherever the pieces
meet so no line can open a code block, and emoji codes are broken so they show as typed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.slack.cards.text import escape_mrkdwn

__all__ = ["Row", "markdown_rows"]

_ZWSP = "\u200b"


@dataclass(frozen=True, slots=True)
class Row:
    """One line as shown: a line of code (raw, made code-safe when rendered) or a line of
    escaped mrkdwn (quoted when rendered); `line` is the body's line it comes from (from 0)."""

    text: str
    code: bool
    line: int


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_RULE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_BULLET = re.compile(r"([ \t]*)[-*+][ \t]+(.*)")
_ORDERED = re.compile(r"([ \t]*)(\d{1,9})[.)][ \t]+(.*)")
_QUOTED = re.compile(r" {0,3}>[ \t]?(.*)")
_TASK = re.compile(r"\[([ xX])\][ \t]+(.*)")
#: one token of inline Markdown. Every part is a class that stops at the characters that
#: could start another token (or close this one), so a line without a closer fails fast at
#: each position: matching stays linear in the line (`.*?` here let a 64 KiB `[[[…` take 10 s)
_INLINE = re.compile(
    r"(?P<esc>\\[!-/:-@\[-`{-~])"
    r"|(?P<code>(?P<ticks>`{1,3})(?P<code_text>[^`]+)(?P=ticks))"
    r"|(?P<image>!\[(?P<alt>[^\[\]]*)\]\((?P<src>[^()\[\]<>\s]*)(?:[ \t]+\"[^\"]*\")?\))"
    r"|(?P<link>\[(?P<label>[^\[\]]+)\]\((?P<href>[^()\[\]<>\s]*)(?:[ \t]+\"[^\"]*\")?\))"
    r"|(?P<auto><(?P<url>(?:https?|mailto|ftp):[^<>\s]+)>)"
    r"|\*\*(?P<strong>[^\s*](?:[^*]*[^\s*])?)\*\*"
    r"|__(?P<strong2>[^\s_](?:[^_]*[^\s_])?)__"
    r"|~~(?P<strike>[^\s~](?:[^~]*[^\s~])?)~~"
    r"|\*(?P<em>[^\s*](?:[^*]*[^\s*])?)\*"
    r"|(?<![A-Za-z0-9])_(?P<em2>[^\s_](?:[^_]*[^\s_])?)_(?![A-Za-z0-9])"
)
#: `:name:` would draw an emoji (`:white_check_mark:`): a zero-width space after the colon
#: shows the code as typed
_EMOJI = re.compile(r":(?=[A-Za-z0-9_+'-]{1,100}:)")
_RULE_TEXT = "─" * 20
_TICKS = re.compile(r"`(?=``)")


def _plain(text: str) -> str:
    """Agent text as mrkdwn that shows as typed: escaped, no emoji codes."""
    return _EMOJI.sub(":" + _ZWSP, escape_mrkdwn(text))


def _unfenced(row: str) -> str:
    """A converted line with every run of three backticks broken, wherever its pieces met:
    it cannot open a code block that would swallow the lines after it."""
    return _TICKS.sub("`" + _ZWSP, row)


def inline(text: str) -> str:
    """One line of Markdown as escaped mrkdwn: emphasis, code spans, links as `label (url)`."""
    out: list[str] = []
    at = 0
    for match in _INLINE.finditer(text):
        out.append(_plain(text[at : match.start()]))
        at = match.end()
        out.append(_token(match))
    out.append(_plain(text[at:]))
    return "".join(out)


def _token(match: re.Match[str]) -> str:
    group = match.group
    if group("esc"):
        return _plain(group("esc")[1])
    if group("code"):
        code = group("code_text").strip()
        return f"`{escape_mrkdwn(code)}`" if code else ""
    if group("image"):
        alt = _plain(group("alt")) or "image"
        return f"{alt} (image: {_plain(group('src'))})"
    if group("link"):
        label, href = group("label"), group("href")
        if not href or href == label:
            return inline(label)
        return f"{inline(label)} ({_plain(href)})"
    if group("auto"):
        return _plain(group("url"))
    for name, mark in (("strong", "*"), ("strong2", "*"), ("strike", "~"), ("em", "_")):
        if group(name):
            return f"{mark}{inline(group(name))}{mark}"
    return f"_{inline(group('em2'))}_"


def markdown_rows(lines: Sequence[str]) -> list[Row]:
    """Markdown lines as rows of escaped mrkdwn and code."""
    rows: list[Row] = []
    fence: str | None = None
    paragraph: str | None = None  # the previous line, when a setext underline may follow
    for i, line in enumerate(lines):
        if fence is not None:
            if _closes(_FENCE.fullmatch(line), fence):
                fence = None
                continue
            rows.append(Row(line, True, i))
            continue
        opening = _FENCE.fullmatch(line)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence = opening.group(1)
            paragraph = None
            continue
        setext = _SETEXT.fullmatch(line)
        if setext and paragraph is not None and rows and not rows[-1].code:
            rows[-1] = Row(_unfenced(f"*{inline(paragraph.strip())}*"), False, rows[-1].line)
            paragraph = None
            continue
        row, paragraph = _block_line(line), None
        if row is None:
            if rows and rows[-1].text == "" and not rows[-1].code:
                continue  # one blank line between blocks is enough
            rows.append(Row("", False, i))
            continue
        rows.append(Row(_unfenced(row), False, i))
        if _is_paragraph(line):
            paragraph = line
    while rows and rows[-1].text == "" and not rows[-1].code:
        rows.pop()
    return rows


def _closes(match: re.Match[str] | None, fence: str) -> bool:
    """True when a line (its `_FENCE` match) closes the code block `fence` opened."""
    if match is None or match.group(2).strip():
        return False
    return match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)


def _is_paragraph(line: str) -> bool:
    return not any(
        pattern.fullmatch(line) for pattern in (_HEADING, _RULE, _BULLET, _ORDERED, _QUOTED)
    )


def _block_line(line: str) -> str | None:
    """One line outside code as mrkdwn; None for a blank line."""
    if not line.strip():
        return None
    if heading := _HEADING.fullmatch(line):
        return f"*{inline(heading.group(2) or '')}*" if heading.group(2) else _RULE_TEXT
    if _RULE.fullmatch(line):
        return _RULE_TEXT
    if quoted := _QUOTED.fullmatch(line):
        return "┃ " + inline(quoted.group(1))
    if bullet := _BULLET.fullmatch(line):
        return _indent(bullet.group(1)) + _item("•", bullet.group(2))
    if ordered := _ORDERED.fullmatch(line):
        return _indent(ordered.group(1)) + f"{ordered.group(2)}. " + inline(ordered.group(3))
    return inline(line.strip())


def _indent(spaces: str) -> str:
    return "\u2003" * (len(spaces.expandtabs(4)) // 2)


def _item(mark: str, text: str) -> str:
    if task := _TASK.fullmatch(text):
        box = "☐" if task.group(1) == " " else "☑"
        return f"{mark} {box} {inline(task.group(2))}"
    return f"{mark} {inline(text)}"
