"""Text for Block Kit: escaping agent strings, measuring and cutting them to Slack's limits.

Agent text reaches mrkdwn only through `escape_mrkdwn` (or `truncate`, which escapes first), so
it can never ping, link or close a code block early. Plain text is cut with `clip`.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any, TypedDict

from bot.slack.cards.ids import INPUT_ACTION

__all__ = [
    "ELLIPSIS",
    "Block",
    "Message",
    "View",
    "clip",
    "code_block",
    "code_cost",
    "code_prefix",
    "code_safe",
    "context",
    "date_markup",
    "escape_mrkdwn",
    "fit",
    "inert",
    "is_user_id",
    "measure",
    "mention_markup",
    "mrkdwn",
    "plain",
    "pretty_json",
    "section",
    "shorten",
    "text_input",
    "text_units",
    "truncate",
    "user_markup",
    "verbatim",
]

Block = dict[str, Any]
View = dict[str, Any]


class Message(TypedDict):
    """A message body ready for `chat.postMessage` / `chat.update` (`**message`)."""

    #: the notification fallback (mrkdwn, escaped)
    text: str
    blocks: list[Block]


ELLIPSIS = "…"
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
_SPECIAL_MENTIONS = ("here", "channel", "everyone")
#: a backtick followed by two more: breaking every such run keeps "```" out of agent text
_FENCE = re.compile(r"`(?=``)")
_ZWSP = "\u200b"


def escape_mrkdwn(text: str) -> str:
    """Escape `&`, `<` and `>` (and nothing else) so the text cannot ping or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def measure(text: str) -> int:
    """Length in UTF-16 code units: never less than `len`, and safe whichever Slack counts."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def fit(text: str, budget: int) -> str:
    """The prefix of `text` that fits `budget` units (astral characters count twice)."""
    head = text[:budget]
    while (excess := measure(head) - budget) > 0:
        head = head[: len(head) - excess]
    return head


def shorten(escaped: str, limit: int) -> str:
    """Cut already-escaped mrkdwn to `limit`, never inside an entity, ending with "…" when
    something was cut."""
    if measure(escaped) <= limit:
        return escaped
    head = fit(escaped, limit - 1)
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + ELLIPSIS


def text_units(node: Any) -> int:
    """The text a message or view carries in all (every string under a `text` key, in UTF-16
    units): what Slack weighs for `msg_blocks_too_long`."""
    if isinstance(node, dict):
        own = measure(node["text"]) if isinstance(node.get("text"), str) else 0
        return own + sum(text_units(value) for value in node.values())
    if isinstance(node, list):
        return sum(text_units(value) for value in node)
    return 0


def truncate(text: str, limit: int) -> str:
    """Escape `text` for mrkdwn, then cut it to `limit` characters ending with "…"."""
    # Escaping only lengthens text, so a prefix one longer than the limit decides the result.
    return shorten(escape_mrkdwn(text[: limit + 1]), limit)


def inert(text: str, limit: int) -> str:
    """Agent-given words inside the bot's own lines (a requester, `cancelledBy`): an inline
    code span, escaped and on one line, so they format nothing, draw no emoji and ping nobody:
    `*Approved* by @alice` reads as the agent's words, never as the bot's."""
    flat = " ".join(text.replace("`", "\u02cb").split()) or "?"
    return f"`{truncate(flat, limit)}`"


def clip(text: str, limit: int) -> str:
    """Cut plain text to `limit` characters, ending with "…" when something was cut."""
    head = text[: limit + 1]
    if measure(head) <= limit:
        return head
    return fit(head, limit - 1) + ELLIPSIS


def code_safe(text: str) -> str:
    """Escape text for a code block and break up any "```" so it cannot close the block."""
    return _FENCE.sub("`" + _ZWSP, escape_mrkdwn(text))


def code_cost(text: str) -> int:
    """An upper bound of `measure(code_safe(text))`, cheap to compute."""
    escapes = 4 * text.count("&") + 3 * (text.count("<") + text.count(">"))
    return measure(text) + escapes + text.count("`")


def code_prefix(text: str, budget: int) -> str:
    """The longest prefix of `text` (roughly) whose `code_cost` fits `budget`."""
    if budget <= 0:
        return ""
    piece = text[:budget]
    while (excess := code_cost(piece) - budget) > 0:
        # a character costs at most 5 (`&` → `&amp;`): drop just enough characters to cover it
        piece = piece[: len(piece) - math.ceil(excess / 5)]
    return piece


def code_block(text: str, limit: int) -> tuple[str, bool]:
    """A fenced code block of at most `limit` characters, and whether `text` was cut."""
    inner = limit - len("```\n\n```")
    safe = code_safe(text[: inner + 1])
    body = shorten(safe, inner)
    return f"```\n{body}\n```", body != safe


def pretty_json(value: Any) -> str:
    """Indented JSON as agents sent it (unicode kept, key order kept)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def is_user_id(value: str) -> bool:
    """True for strings shaped like a Slack user id (`U…` or `W…`)."""
    return _USER_ID.fullmatch(value) is not None


def user_markup(value: str, limit: int = 200) -> str:
    """`<@U…>` for something shaped like a Slack user id, else the value escaped and cut."""
    if is_user_id(value):
        return f"<@{value}>"
    return truncate(value, limit)


def mention_markup(mention: str) -> str:
    """Markup for a configured mention: "here"/"channel", a user group `S…` or a user `U…`."""
    name = mention.strip().lstrip("@!")
    if name in _SPECIAL_MENTIONS:
        return f"<!{name}>"
    if _GROUP_ID.fullmatch(name):
        return f"<!subteam^{name}>"
    return user_markup(name)


def date_markup(value: datetime) -> str:
    """A Slack date token shown in the reader's time zone, with a UTC fallback."""
    fallback = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(value.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def plain(text: str, limit: int, *, emoji: bool = True) -> dict[str, Any]:
    """A plain_text object cut to `limit`; blank text is shown quoted so Slack accepts it."""
    shown = text if text.strip() else json.dumps(text)
    return {"type": "plain_text", "text": clip(shown, limit), "emoji": emoji}


def verbatim(text: str, limit: int) -> dict[str, Any]:
    """Someone else's words as plain text with emoji codes left as typed: they can neither
    format (`*Approved*`), ping, link nor draw `:white_check_mark:`, so they never pass for the
    bot's own lines."""
    return plain(text, limit, emoji=False)


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn object; the caller has escaped every agent string in `text`."""
    return {"type": "mrkdwn", "text": text}


def section(text: str, *, block_id: str | None = None) -> Block:
    """A section of trusted mrkdwn, cut to the 3000-character section limit."""
    block: Block = {"type": "section", "text": mrkdwn(shorten(text, 3000))}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def context(texts: list[str], *, block_id: str | None = None) -> Block:
    """A context block of up to ten mrkdwn lines (each already escaped)."""
    block: Block = {
        "type": "context",
        "elements": [mrkdwn(shorten(text, 2000)) for text in texts[:10]],
    }
    if block_id is not None:
        block["block_id"] = block_id
    return block


def text_input(block_id: str, label: str, hint: str, *, optional: bool = True) -> Block:
    """A multiline text input block (at most 3000 characters)."""
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": plain(label, 100),
        "hint": plain(hint, 300),
        "element": {
            "type": "plain_text_input",
            "action_id": INPUT_ACTION,
            "multiline": True,
            "max_length": 3000,
        },
    }
