"""The example tool calls an agent might gate: shared by the workspace's agent panel and
`approval-bot demo`, so both show the same three cards."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.sdk.wire import SubmitFields

__all__ = ["EXAMPLES", "Example", "example"]

TRANSFER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "amount": {
            "type": "number",
            "minimum": 1,
            "maximum": 10000,
            "description": "In the currency below; at most 10,000 without a second sign-off.",
        },
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
        "memo": {"type": "string", "maxLength": 140, "description": "Shown on the statement."},
    },
    "required": ["amount", "currency"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Example:
    """One gated tool call: what the agent asks for and how it is routed."""

    key: str
    #: one line for the agent panel
    summary: str
    tool_name: str
    args: Mapping[str, Any]
    #: the optional request fields, snake_case as `ApprovalClient.submit` takes them
    fields: SubmitFields = field(default_factory=lambda: SubmitFields())

    def to_json(self) -> dict[str, Any]:
        """How the page lists it."""
        return {
            "key": self.key,
            "summary": self.summary,
            "toolName": self.tool_name,
            "channel": self.fields.get("channel"),
            "priority": self.fields.get("priority", "normal"),
            "args": dict(self.args),
            "hasSchema": "args_schema" in self.fields,
        }


EXAMPLES: tuple[Example, ...] = (
    Example(
        key="deploy",
        summary="Roll a release out to production",
        tool_name="deploy_service",
        args={"service": "checkout-api", "version": "1.4.2", "environment": "production"},
        fields={
            "channel": "#ops",
            "priority": "high",
            "prompt": "Roll checkout-api 1.4.2 out to production?",
            "requester": {"agent": "release-bot"},
            "context": "CI green on main · 3 commits since 1.4.1 · canary healthy for 30 min",
        },
    ),
    Example(
        key="email",
        summary="Email every customer",
        tool_name="send_email",
        args={
            "to": "all-customers@example.com",
            "subject": "Scheduled maintenance on Saturday",
            "body": "Hello,\n\nOur service will be read-only on Saturday from 06:00 to 07:00 UTC "
            "while we upgrade the database.\n\nThe Example team",
        },
        fields={
            "priority": "normal",
            "prompt": "Send the maintenance notice to all 12,480 customers?",
            "requester": {"agent": "support-agent"},
        },
    ),
    Example(
        key="transfer",
        summary="Pay a supplier invoice",
        tool_name="transfer_funds",
        args={"amount": 2500, "currency": "EUR", "memo": "Invoice 2024-118, Acme GmbH"},
        fields={
            "channel": "#payments",
            "priority": "critical",
            "prompt": "Pay Acme GmbH's invoice 2024-118?",
            "args_schema": TRANSFER_SCHEMA,
            "requester": {"agent": "finance-agent", "slackUser": "U0DAVE"},
            "context": "Requested for dave · the supplier's bank details were verified last week",
        },
    ),
)


def example(key: str) -> Example:
    """The example named `key` (`deploy`, `email`, `transfer`); KeyError when unknown."""
    for item in EXAMPLES:
        if item.key == key:
            return item
    raise KeyError(key)
