"""`#name` or id: one way of printing a channel for `approval-bot demo` and `list` (issue 15:
they printed `C0OPS` for some requests and `#ops` for others)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.channel_names import channel_label, known_names
from bot.models import Approval, SlackRef, Status

NOW = datetime(2026, 11, 21, 5, 30, tzinfo=UTC)


def approval(channel: str, posted_in: str | None = None, error: str | None = None) -> Approval:
    fields: dict[str, Any] = {
        "id": f"apr_{channel.strip('#')}{posted_in or ''}",
        "status": Status.PENDING,
        "tool_name": "t",
        "tool_call_id": "c",
        "args": {},
        "channel": channel,
        "created_at": NOW,
        "slack": SlackRef(channel=posted_in, error=error),
    }
    return Approval(**fields)


def test_demo_and_list_print_every_channel_one_way() -> None:
    """The demo's three requests: `#ops` by name, the default channel `C0OPS` by id (the same
    channel), `#payments` by name, its card not posted yet."""
    deploy = approval("#ops", "C0OPS")
    email = approval("C0OPS", "C0OPS")
    transfer = approval("#payments")
    names = known_names([deploy, email, transfer])

    assert names == {"C0OPS": "#ops"}
    assert [channel_label(a, names) for a in (deploy, email, transfer)] == [
        "#ops",
        "#ops",
        "#payments",
    ]


@pytest.mark.parametrize(
    ("record", "label"),
    [
        pytest.param(approval("#ops", "C0OPS"), "#ops", id="named-and-posted"),
        pytest.param(approval("C0DEPLOY", "C0DEPLOY"), "C0DEPLOY", id="never-named"),
        pytest.param(approval("C0DEPLOY"), "C0DEPLOY", id="not-posted"),
        pytest.param(
            approval("#gone", "C0FALLBACK", error="channel_not_found"),
            "C0FALLBACK",
            id="moved-to-the-fallback",
        ),
    ],
)
def test_a_channel_is_its_name_when_known_else_its_id(record: Approval, label: str) -> None:
    assert channel_label(record) == label
    assert channel_label(record, {"C0ELSE": "#else"}) == label


def test_a_fallback_card_teaches_no_name() -> None:
    moved = approval("#gone", "C0FALLBACK", error="channel_not_found")
    assert known_names([moved]) == {}
