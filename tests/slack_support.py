"""Reading Slack messages the way a person sees them: a card's buttons, its text, a decision."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def actions_of(message: Any) -> list[str]:
    """The action ids of a card's buttons, in order.

    `message` is a devslack message, or a message as JSON (the dev page's state).
    """
    blocks = message.get("blocks", []) if isinstance(message, Mapping) else message.blocks
    return [
        element["action_id"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def text_of(message: Any) -> str:
    """All a devslack message says: its blocks as JSON, then its fallback text."""
    return json.dumps(message.blocks) + message.text


def decided_by(record: Mapping[str, Any]) -> tuple[str, str, str]:
    """A decided record's decision as (action, decidedBy, decidedByName)."""
    decision = record["decision"]
    return decision["action"], decision["decidedBy"], decision["decidedByName"]
