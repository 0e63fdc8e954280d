"""Block Kit validation against Slack's published limits.

Every block, element and composition object type has a schema: a tuple of rules (``rules.py``),
each checking one field. ``validate_message_blocks`` and ``validate_view`` walk a payload and
return readable problems such as ``blocks[3].text.text: 3012 > 3000``; an empty list means Slack
would accept it.
Message text is never an error: past 40,000 characters Slack truncates it
(``truncate_message_text``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.devslack.rules import (
    AnyOf,
    Check,
    Choice,
    Element,
    Elements,
    Flag,
    Int,
    Items,
    Nested,
    NestedList,
    Problems,
    Schema,
    Str,
    Text,
    TextList,
    run,
    typed,
)

__all__ = [
    "MAX_BLOCKS_TEXT",
    "MAX_MESSAGE_BLOCKS",
    "MAX_MESSAGE_TEXT",
    "MAX_UPDATE_TEXT",
    "MAX_VIEW_BLOCKS",
    "MAX_VIEW_BYTES",
    "blocks_text_length",
    "truncate_message_text",
    "validate_blocks",
    "validate_message_blocks",
    "validate_view",
]

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
MAX_UPDATE_TEXT = 4_000
MAX_VIEW_BYTES = 250_000
MAX_ID = 255
#: the text a message's blocks may carry in all: Slack publishes no figure, but refuses a
#: message well below the per-block limits with ``msg_blocks_too_long`` (reports put it near
#: 12-13k characters); the bot's cards budget for 12,000 (bot/slack/cards/card.py)
MAX_BLOCKS_TEXT = 12_000

# -- cross-field checks ------------------------------------------------------------------------


def _option_values(obj: Mapping[str, Any]) -> set[str]:
    options = obj.get("options")
    if not isinstance(options, list):
        groups = obj.get("option_groups")
        options = [
            option
            for group in (groups if isinstance(groups, list) else [])
            if isinstance(group, Mapping)
            for option in (group.get("options") or [])
        ]
    return {str(o.get("value")) for o in options if isinstance(o, Mapping)}


def _initial_among_options(obj: Mapping[str, Any], path: str) -> Problems:
    known = _option_values(obj)
    initial = obj.get("initial_option")
    if isinstance(initial, Mapping) and str(initial.get("value")) not in known:
        yield f"{path}.initial_option: value {initial.get('value')!r} is not among the options"
    initials = obj.get("initial_options")
    for i, option in enumerate(initials if isinstance(initials, list) else []):
        if isinstance(option, Mapping) and str(option.get("value")) not in known:
            where = f"{path}.initial_options[{i}]"
            yield f"{where}: value {option.get('value')!r} is not among the options"


def _initial_fits_length(obj: Mapping[str, Any], path: str) -> Problems:
    initial, low, high = obj.get("initial_value"), obj.get("min_length"), obj.get("max_length")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        yield f"{path}.min_length: {low} > max_length {high}"
    if isinstance(initial, str) and isinstance(high, int) and len(initial) > high:
        yield f"{path}.initial_value: {len(initial)} > max_length {high}"


def _number_bounds(obj: Mapping[str, Any], path: str) -> Problems:
    decimal_allowed = obj.get("is_decimal_allowed") is True
    numbers: dict[str, Decimal] = {}
    for name in ("min_value", "max_value", "initial_value"):
        raw = obj.get(name)
        if raw is None:
            continue
        try:
            number = Decimal(str(raw))
        except InvalidOperation:
            yield f"{path}.{name}: {raw!r} is not a number"
            continue
        if not number.is_finite():
            yield f"{path}.{name}: {raw!r} is not a number"
        elif not decimal_allowed and number != number.to_integral_value():
            yield f"{path}.{name}: {raw!r} is not an integer (is_decimal_allowed is false)"
        else:
            numbers[name] = number
    low, high, initial = (numbers.get(n) for n in ("min_value", "max_value", "initial_value"))
    if low is not None and high is not None and low > high:
        yield f"{path}.min_value: {low} > max_value {high}"
    if initial is not None and low is not None and initial < low:
        yield f"{path}.initial_value: {initial} < min_value {low}"
    if initial is not None and high is not None and initial > high:
        yield f"{path}.initial_value: {initial} > max_value {high}"


def _modal_submit(obj: Mapping[str, Any], path: str) -> Problems:
    blocks = obj.get("blocks")
    has_input = isinstance(blocks, list) and any(
        isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
    )
    if has_input and obj.get("submit") is None:
        yield f"{path}.submit: required when the modal has input blocks"


# -- schemas -----------------------------------------------------------------------------------

BLOCK_ID = Str("block_id", MAX_ID)
ACTION_ID = Str("action_id", MAX_ID)
PLACEHOLDER = Text("placeholder", 150, plain_only=True)


CONFIRM_SCHEMA: Schema = (
    Text("title", 100, plain_only=True, required=True),
    Text("text", 300, required=True),
    Text("confirm", 30, plain_only=True, required=True),
    Text("deny", 30, plain_only=True, required=True),
    Choice("style", ("primary", "danger")),
)


PLAIN_OPTION: Schema = (
    Text("text", 75, plain_only=True, required=True),
    Str("value", 150, required=True),
    Text("description", 75, plain_only=True),
    Str("url", 3000),
)


RICH_OPTION: Schema = (
    Text("text", 75, required=True),
    Str("value", 150, required=True),
    Text("description", 75),
)


CONFIRM = Nested("confirm", CONFIRM_SCHEMA)

ELEMENTS: dict[str, Schema] = {
    "button": (
        Text("text", 75, plain_only=True, required=True),
        Str("action_id", MAX_ID, required=True),
        Str("value", 2000),
        Str("url", 3000),
        Choice("style", ("primary", "danger")),
        Str("accessibility_label", 75),
        CONFIRM,
    ),
    "image": (
        Str("image_url", 3000),
        Str("alt_text", 2000, required=True),
        AnyOf(("image_url", "slack_file")),
    ),
    "plain_text": (Str("text", required=True),),
    "mrkdwn": (Str("text", required=True),),
    "plain_text_input": (
        ACTION_ID,
        Str("initial_value", 3000),
        Flag("multiline"),
        Int("min_length", 0, 3000),
        Int("max_length", 1, 3000),
        PLACEHOLDER,
        Check(_initial_fits_length),
    ),
    "number_input": (
        ACTION_ID,
        Flag("is_decimal_allowed", required=True),
        Str("initial_value"),
        Str("min_value"),
        Str("max_value"),
        PLACEHOLDER,
        Check(_number_bounds),
    ),
    "static_select": (
        ACTION_ID,
        PLACEHOLDER,
        NestedList("options", PLAIN_OPTION, 100),
        Items("option_groups", 100),
        AnyOf(("options", "option_groups")),
        Nested("initial_option", PLAIN_OPTION),
        CONFIRM,
        Check(_initial_among_options),
    ),
    "multi_static_select": (
        ACTION_ID,
        PLACEHOLDER,
        NestedList("options", PLAIN_OPTION, 100),
        Items("option_groups", 100),
        AnyOf(("options", "option_groups")),
        NestedList("initial_options", PLAIN_OPTION, 100),
        Int("max_selected_items", 1, 100),
        CONFIRM,
        Check(_initial_among_options),
    ),
    "checkboxes": (
        ACTION_ID,
        NestedList("options", RICH_OPTION, 10, required=True),
        NestedList("initial_options", RICH_OPTION, 10),
        CONFIRM,
        Check(_initial_among_options),
    ),
    "radio_buttons": (
        ACTION_ID,
        NestedList("options", RICH_OPTION, 10, required=True),
        Nested("initial_option", RICH_OPTION),
        CONFIRM,
        Check(_initial_among_options),
    ),
    "overflow": (ACTION_ID, NestedList("options", PLAIN_OPTION, 5, required=True), CONFIRM),
    "datepicker": (ACTION_ID, Str("initial_date"), PLACEHOLDER, CONFIRM),
    "timepicker": (ACTION_ID, Str("initial_time"), PLACEHOLDER, CONFIRM),
    "users_select": (ACTION_ID, Str("initial_user"), PLACEHOLDER, CONFIRM),
    "multi_users_select": (ACTION_ID, Items("initial_users"), PLACEHOLDER, CONFIRM),
    "conversations_select": (ACTION_ID, Str("initial_conversation"), PLACEHOLDER, CONFIRM),
    "channels_select": (ACTION_ID, Str("initial_channel"), PLACEHOLDER, CONFIRM),
    "email_text_input": (ACTION_ID, Str("initial_value"), PLACEHOLDER),
    "url_text_input": (ACTION_ID, Str("initial_value"), PLACEHOLDER),
}

_SELECTS = frozenset(
    {
        "static_select",
        "multi_static_select",
        "users_select",
        "multi_users_select",
        "conversations_select",
        "channels_select",
    }
)
_CHOICES = _SELECTS | {"checkboxes", "radio_buttons", "datepicker", "timepicker"}
ACTIONS_ELEMENTS = _CHOICES | {"button", "overflow"}
ACCESSORY_ELEMENTS = ACTIONS_ELEMENTS | {"image"}
CONTEXT_ELEMENTS = frozenset({"image", "plain_text", "mrkdwn"})
INPUT_ELEMENTS = _CHOICES | {
    "plain_text_input",
    "number_input",
    "email_text_input",
    "url_text_input",
}

BLOCKS: dict[str, Schema] = {
    "header": (BLOCK_ID, Text("text", 150, plain_only=True, required=True)),
    "section": (
        BLOCK_ID,
        Text("text", 3000),
        TextList("fields", 10, 2000),
        AnyOf(("text", "fields")),
        Element("accessory", ELEMENTS, ACCESSORY_ELEMENTS),
    ),
    "divider": (BLOCK_ID,),
    "context": (BLOCK_ID, Elements("elements", ELEMENTS, CONTEXT_ELEMENTS, 10)),
    "actions": (BLOCK_ID, Elements("elements", ELEMENTS, ACTIONS_ELEMENTS, 25)),
    "input": (
        BLOCK_ID,
        Text("label", 2000, plain_only=True, required=True),
        Text("hint", 2000, plain_only=True),
        Element("element", ELEMENTS, INPUT_ELEMENTS, required=True),
        Flag("optional"),
        Flag("dispatch_action"),
    ),
    "rich_text": (BLOCK_ID, Items("elements", required=True)),
    "image": (
        BLOCK_ID,
        Str("image_url", 3000),
        Str("alt_text", 2000, required=True),
        Text("title", 2000, plain_only=True),
        AnyOf(("image_url", "slack_file")),
    ),
}
_ALL_BLOCKS = frozenset(BLOCKS)

VIEWS: dict[str, Schema] = {
    "modal": (
        Text("title", 24, plain_only=True, required=True),
        Text("submit", 24, plain_only=True),
        Text("close", 24, plain_only=True),
        Str("private_metadata", 3000),
        Str("callback_id", MAX_ID),
        Str("external_id", MAX_ID),
        Flag("clear_on_close"),
        Flag("notify_on_close"),
        Check(_modal_submit),
    ),
    "home": (Str("private_metadata", 3000), Str("callback_id", MAX_ID), Str("external_id", MAX_ID)),
}


# -- entry points ------------------------------------------------------------------------------


def validate_blocks(blocks: object, *, max_blocks: int, path: str = "blocks") -> list[str]:
    """Problems with a list of blocks; ``block_id`` must be unique across the list."""
    if not isinstance(blocks, list):
        return [f"{path}: must be a list"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"{path}: {len(blocks)} blocks > {max_blocks}")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"{path}[{i}]"
        problems.extend(typed(block, BLOCKS, _ALL_BLOCKS, where, "block"))
        block_id = block.get("block_id") if isinstance(block, Mapping) else None
        if isinstance(block_id, str):
            if block_id in seen:
                problems.append(f"{where}.block_id: duplicate {block_id!r}")
            seen.add(block_id)
    return problems


def validate_message_blocks(blocks: object) -> list[str]:
    """Problems with a message's ``blocks`` (at most 50)."""
    return validate_blocks(blocks, max_blocks=MAX_MESSAGE_BLOCKS)


def validate_view(view: object, path: str = "view") -> list[str]:
    """Problems with a modal or App Home view, its blocks (at most 100) and its size."""
    if not isinstance(view, Mapping):
        return [f"{path}: must be an object"]
    kind = view.get("type")
    if kind not in VIEWS:
        return [f"{path}.type: must be modal or home, not {kind!r}"]
    problems = list(run(VIEWS[kind], view, path))
    blocks = view.get("blocks")
    if blocks is None:
        problems.append(f"{path}.blocks: required")
    else:
        problems.extend(validate_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS, path=f"{path}.blocks"))
    size = len(json.dumps(view, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_VIEW_BYTES:
        problems.append(f"{path}: {size} bytes > {MAX_VIEW_BYTES}")
    return problems


def blocks_text_length(value: object) -> int:
    """Characters of text in blocks: every string under a ``text`` key, however deep."""
    if isinstance(value, list):
        return sum(blocks_text_length(item) for item in value)
    if not isinstance(value, Mapping):
        return 0
    total = 0
    for key, item in value.items():
        if key == "text" and isinstance(item, str):
            total += len(item)
        else:
            total += blocks_text_length(item)
    return total


def truncate_message_text(text: str) -> str:
    """Message text as Slack stores it: cut past 40,000 characters."""
    return text[:MAX_MESSAGE_TEXT]
