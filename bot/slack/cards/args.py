"""Arguments where a person decides (card, App Home, confirm dialog): as many as fit, and a
plain account of what does not.

Slack caps how much text a message may carry, so large arguments are cut on the way out (never
in the store). A cut never hides an argument silently: the small arguments are always shown
whole, every top-level argument is named (as many as fit, then how many more), and each
shortened value says how much of it is shown, so nobody approves a call whose last argument is
`"query": "UPDATE customers SET plan='free' WHERE 1=1"` without seeing it.
"""

from __future__ import annotations

import json
import math
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


@dataclass(frozen=True)
class Shortened:
    """A value shown cut: `shown` of its `total` characters (of its one-line JSON)."""

    name: str
    shown: int
    total: int


@dataclass(frozen=True)
class ArgsPreview:
    """What fits of some arguments: lines of raw text, and what they leave out."""

    #: pretty JSON when it all fits, else one `"name": value` line per argument shown
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
    are cut, and arguments beyond the room are named in the note.
    """
    if pretty:
        text = pretty_json(args)
        if text.count("\n") < lines and len(text) <= chars and code_cost(text) <= chars:
            return ArgsPreview(text.split("\n"))
    items = [(name, _label(name), _compact(value)) for name, value in args.items()]
    # a line longer than `chars` is cut whatever its length, so a prefix tells its cost
    costs = [code_cost(f"{label}: {value[: chars + 1]}") for _, label, value in items]
    count = min(len(items), lines)
    # fewer lines until each one gets a useful share of the room
    useful = max(min(MIN_LINE_CHARS, chars // 4), LINE_NAME_CHARS + 10)
    while count > 1 and _share(costs[:count], chars) < useful:
        count -= 1
    cap = _share(costs[:count], chars)
    shown, shortened = [], []
    for i, (name, label, value) in enumerate(items[:count]):
        if costs[i] <= cap:
            shown.append(f"{label}: {value}")
            continue
        head = code_prefix(value, int(cap) - code_cost(label) - len(": …"))
        shown.append(f"{label}: {head}…")
        shortened.append(Shortened(name, len(head), len(value)))
    return ArgsPreview(shown, shortened, [name for name, _, _ in items[count:]])


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
    left = chars - len(costs)  # newlines
    for i, cost in enumerate(sorted(costs)):
        fair = left // (len(costs) - i)
        if cost > fair:
            return fair
        left -= cost
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
