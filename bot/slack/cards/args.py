"""Arguments where a person decides (card, App Home, confirm dialog): as many as fit, and a
plain account of what does not.

Slack caps how much text a message may carry, so large arguments are cut on the way out (never
in the store). A cut never hides an argument silently: the small arguments are always shown
whole, every top-level argument is named (as many as fit, then how many more), and each
shortened value says how much of it is shown, so nobody approves a call whose last argument is
`"query": "UPDATE customers SET plan='free' WHERE 1=1"` without seeing it.

A multi-line text (an email body, a script) reads as text: its lines under its name, each
behind a `│`, not one JSON string full of `\n`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.slack.cards.ids import block_id
from bot.slack.cards.text import (
    Block,
    code_cost,
    code_prefix,
    code_safe,
    pretty_json,
    section,
    verbatim,
)

__all__ = ["ArgsPreview", "Shortened", "args_blocks", "preview_args"]

#: a shortened line shows at least this much (or a quarter of the room, but always its name and
#: some of its value), else fewer arguments get values
MIN_LINE_CHARS = 60
#: an argument's name on a line of the preview
LINE_NAME_CHARS = 40
#: the names of the arguments shown without their values, in the note under the preview
NOTE_NAMES_CHARS = 300
NOTE_CUT_VALUES = 5
NOTE_CHARS = 1000
_FENCES = len("```\n\n```")
#: every line of a multi-line text argument starts with this, under the argument's name, so
#: no line of the text can pass for an argument of its own (`"dry_run": true`)
TEXT_INDENT = "  │ "
#: characters only a JSON escape makes visible (a line break and a tab show as themselves),
#: and the ones some renderers break lines at
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]")


@dataclass(frozen=True)
class Shortened:
    """A value shown cut: `shown` of its `total` characters (of its one-line JSON, or of the
    text for a multi-line text)."""

    name: str
    shown: int
    total: int


@dataclass(frozen=True)
class ArgsPreview:
    """What fits of some arguments: lines of raw text, and what they leave out."""

    #: pretty JSON when it all fits, else one `"name": value` line per argument shown (a
    #: multi-line text: `"name":`, then its lines behind `TEXT_INDENT`)
    lines: Sequence[str]
    #: values shown cut
    shortened: Sequence[Shortened] = ()
    #: arguments shown by name only (in the note), in their order
    unlisted: Sequence[str] = ()

    @property
    def cut(self) -> bool:
        """True when something is not shown whole."""
        return bool(self.shortened or self.unlisted)

    def note(self) -> str | None:
        """Exactly what is not shown, in plain words (names quoted as JSON), or None."""
        if not self.cut:
            return None
        parts = []
        if self.shortened:
            each = [
                f"{_label(item.name)} shows {item.shown:,} of {item.total:,} characters"
                for item in self.shortened[:NOTE_CUT_VALUES]
            ]
            rest = len(self.shortened) - len(each)
            more = f", and {_count(rest, 'more value')}" if rest else ""
            parts.append(f"{_count(len(self.shortened), 'value')} cut: {', '.join(each)}{more}.")
        if self.unlisted:
            names = _fitting([_label(name) for name in self.unlisted], NOTE_NAMES_CHARS)
            rest = len(self.unlisted) - len(names)
            listed = ", ".join(names) + (f" and {rest} more" if rest else "")
            count = _count(len(self.unlisted), "argument")
            parts.append(f"{count} shown by name only (no room for their values): {listed}.")
        return " ".join(parts)

    def summary(self) -> str | None:
        """A short form of `note` for tight places (the confirm dialog), or None."""
        if not self.cut:
            return None
        parts = []
        if self.shortened:
            parts.append(f"{_count(len(self.shortened), 'value')} shortened")
        if self.unlisted:
            parts.append(f"{_count(len(self.unlisted), 'more argument')} not shown")
        return f"(cut to fit: {', '.join(parts)})"


def preview_args(
    args: Mapping[str, Any], *, chars: int, lines: int, pretty: bool = True
) -> ArgsPreview:
    """The arguments within `chars` (as a code block would count them) and `lines`.

    Pretty JSON when it all fits (and `pretty`); else one line per argument, in order: every
    value gets a fair share of the room, so small values show whole and only the large ones
    are cut, and arguments beyond the room are named in the note. With `pretty`, a multi-line
    text argument (an email body, a script) is shown as its lines under its name, not as a
    JSON string full of `\n`.
    """
    # a text longer than `chars` is cut whatever its length: its first `chars + 1` tell how
    texts = [_text_lines(value, chars + 1) if pretty else None for value in args.values()]
    compact = [
        "" if text is not None else _compact(value)
        for value, text in zip(args.values(), texts, strict=True)
    ]
    # Pretty JSON is never shorter than the compact JSON of its values; only texts can be
    # (their lines lose the escapes). Indenting runs in pure Python, the compact form in C:
    # 250 kB of arguments cost 40 ms of the event loop pretty, and little compact.
    if pretty and (sum(map(len, compact)) <= chars or any(t is not None for t in texts)):
        whole = _pretty(args, texts)
        if whole.count("\n") < lines and len(whole) <= chars and code_cost(whole) <= chars:
            return ArgsPreview(whole.split("\n"))
    items = [(name, _label(name), value) for name, value in zip(args, compact, strict=True)]
    # a line longer than `chars` is cut whatever its length, so a prefix tells its cost
    costs = [
        code_cost(f"{label}: {value[: chars + 1]}")
        if text is None
        else code_cost(_text_entry(label, text, chars + 1))
        for (_, label, value), text in zip(items, texts, strict=True)
    ]
    count = min(len(items), lines)
    # fewer lines until each one gets a useful share of the room, and a text its first line
    useful = max(min(MIN_LINE_CHARS, chars // 4), LINE_NAME_CHARS + 10)
    while count > 1 and (_height(texts[:count]) > lines or _share(costs[:count], chars) < useful):
        count -= 1
    cap = _share(costs[:count], chars)
    # the lines left once every argument has its first are shared by the texts
    wants = [len(text) - 1 for text in texts[:count] if text is not None]
    more_lines = _fair(wants, lines - _height(texts[:count]))
    shown: list[str] = []
    shortened = []
    for i, (name, label, value) in enumerate(items[:count]):
        text = texts[i]
        if text is not None:
            most = 1 + int(min(len(text) - 1, more_lines))
            entry, head = _cut_text(label, text, cap, most)
            shown.extend(entry)
            total = _text_length(args[name])
            if head < total:
                shortened.append(Shortened(name, head, total))
            continue
        if costs[i] <= cap:
            shown.append(f"{label}: {value}")
            continue
        head_text = code_prefix(value, int(cap) - code_cost(label) - len(": …"))
        shown.append(f"{label}: {head_text}…")
        shortened.append(Shortened(name, len(head_text), len(value)))
    return ArgsPreview(shown, shortened, [name for name, _, _ in items[count:]])


def _text_lines(value: Any, limit: int) -> list[str] | None:
    """The lines of the first `limit` characters of a multi-line text argument, or None for
    a value JSON shows better: any other value, or text with control characters (which only
    their JSON escapes make visible)."""
    if not isinstance(value, str) or "\n" not in value or not value.strip():
        return None
    if _CONTROL.search(value) or "\r" in value.replace("\r\n", ""):
        return None
    lines = value[:limit].replace("\r\n", "\n").split("\n")
    if lines[-1] == "" and len(value) <= limit:
        lines.pop()  # the final line break of a text ending with one
    return lines


def _text_length(value: str) -> int:
    """The characters of a text as `_text_lines` shows it: a line break counts once."""
    return len(value) - value.count("\r\n") - value.endswith("\n")


def _pretty(args: Mapping[str, Any], texts: Sequence[list[str] | None]) -> str:
    """Pretty JSON; with a multi-line text among the values, one `"name": value` entry per
    argument (values still pretty JSON), the text's lines indented under its name."""
    if all(text is None for text in texts):
        return pretty_json(args)
    entries = []
    for (name, value), text in zip(args.items(), texts, strict=True):
        label = json.dumps(name, ensure_ascii=False)
        if text is None:
            entries.append(f"{label}: {pretty_json(value)}")
        else:
            entries.append(_text_entry(label, text))
    return "\n".join(entries)


def _text_entry(label: str, text: Sequence[str], chars: int | None = None) -> str:
    """`"name":` then the text's lines, indented (only about `chars` of them when given)."""
    entry = [f"{label}:"]
    used = len(label)
    for line in text:
        entry.append(TEXT_INDENT + line)
        used += len(line) + len(TEXT_INDENT) + 1
        if chars is not None and used > chars:
            break
    return "\n".join(entry)


def _cut_text(label: str, text: Sequence[str], cap: float, most: int) -> tuple[list[str], int]:
    """A text argument within `cap` characters (as a code block counts them) and `most` of its
    lines: its entry's lines, and how many characters of the text they show. A cut text ends
    with "…"."""
    entry = [f"{label}:"]
    used = code_cost(label) + 1 + len("…")
    shown = 0
    for i, line in enumerate(text):
        row = TEXT_INDENT + line
        cost = 1 + code_cost(row)
        if i == most or used + cost > cap:
            if i < most:  # the room ends inside this line: as much of it as fits
                head = code_prefix(line, int(cap) - used - 1 - len(TEXT_INDENT))
                if head or len(entry) == 1:
                    entry.append(TEXT_INDENT + head)
                    shown += len(head) + (1 if i else 0)
            entry[-1] += "…"
            return entry, shown
        entry.append(row)
        used += cost
        shown += len(line) + (1 if i else 0)
    return entry, shown


def _height(texts: Sequence[list[str] | None]) -> int:
    """The fewest lines these arguments take: one each, and a text its first line too."""
    return len(texts) + sum(text is not None for text in texts)


def args_blocks(
    approval_id: str, args: Mapping[str, Any], title: str, *, chars: int, lines: int
) -> tuple[list[Block], bool]:
    """The arguments under `title` (trusted mrkdwn) as a code block, then a note saying what
    the block leaves out; and whether anything was left out (offer "View full arguments")."""
    bid = block_id("args", approval_id)
    if not args:
        return [section(f"{title}\n_none_", block_id=bid)], False
    preview = preview_args(args, chars=chars - _FENCES, lines=lines)
    code = "\n".join(code_safe(line) for line in preview.lines)
    blocks = [section(f"{title}\n```\n{code}\n```", block_id=bid)]
    note = preview.note()
    if note is not None:
        # plain text: the note quotes argument names, which are the agent's
        element = verbatim(f"Not all shown. {note}", NOTE_CHARS)
        blocks.append(
            {
                "type": "context",
                "block_id": block_id("args_note", approval_id),
                "elements": [element],
            }
        )
    return blocks, preview.cut


def _share(costs: Sequence[int], chars: int) -> float:
    """The longest a line may be so that lines of these costs fit `chars` (infinite when all
    fit whole): lines shorter than the share are kept whole and leave their room to others."""
    return _fair(costs, chars - len(costs))  # less the newlines


def _fair(wants: Sequence[int], room: int) -> float:
    """The most each may take so that these wants fit `room` (infinite when all fit): smaller
    wants are met in full and leave what they do not use to the others."""
    left = room
    for i, want in enumerate(sorted(wants)):
        fair = left // (len(wants) - i)
        if want > fair:
            return fair
        left -= want
    return math.inf


def _label(name: str) -> str:
    """The name as a JSON string (so `"a: b"` and `""` read unambiguously), cut to fit a line."""
    quoted = json.dumps(name, ensure_ascii=False)
    if code_cost(quoted) <= LINE_NAME_CHARS:
        return quoted
    return code_prefix(quoted, LINE_NAME_CHARS - 1) + "…"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _fitting(texts: Sequence[str], chars: int) -> list[str]:
    """The leading texts whose comma-separated run fits `chars`."""
    kept: list[str] = []
    used = 0
    for text in texts:
        used += len(text) + 2
        if used > chars:
            break
        kept.append(text)
    return kept


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
