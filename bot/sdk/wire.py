"""The wire format: request fields to the JSON body the bot takes, its answers to our models."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from pydantic import BaseModel, ValidationError

from bot.models import (
    Approval,
    Decision,
    DecisionKind,
    OnTimeout,
    Preview,
    Priority,
    Requester,
    new_tool_call_id,
)
from bot.sdk.errors import ApprovalError, ApprovalMismatch

__all__ = [
    "GateFields",
    "SubmitFields",
    "ToolCall",
    "decision_of",
    "json_object",
    "new_tool_call_id",
    "parse_approval",
    "request_body",
    "same_json",
]


class GateFields(TypedDict, total=False):
    """Request fields `requires_approval` passes through unchanged."""

    args_schema: Mapping[str, Any] | None
    thread_ts: str | None
    requester: Requester | Mapping[str, Any] | None
    context: str | None
    timeout_seconds: int | None
    on_timeout: OnTimeout | str | None
    allowed_decisions: Sequence[DecisionKind | str] | None
    metadata: Mapping[str, Any] | None
    #: groups approvals for "Approve all" / "Reject all" (else `requester.runId` does)
    batch_id: str | None


class SubmitFields(GateFields, total=False):
    """The optional fields of `POST /v1/approvals`, in snake_case."""

    tool_call_id: str | None
    prompt: str | None
    channel: str | None
    priority: Priority | str | None
    #: what the call will change, shown on the card: `{"kind": "diff" | "text" | "markdown",
    #: "body": "…"}` (≤ 64 KiB), or a `Preview`
    preview: Preview | Mapping[str, Any] | None


_WIRE_NAMES = {
    "tool_call_id": "toolCallId",
    "args_schema": "argsSchema",
    "prompt": "prompt",
    "channel": "channel",
    "thread_ts": "threadTs",
    "priority": "priority",
    "requester": "requester",
    "context": "context",
    "timeout_seconds": "timeoutSeconds",
    "on_timeout": "onTimeout",
    "allowed_decisions": "allowedDecisions",
    "metadata": "metadata",
    "preview": "preview",
    "batch_id": "batchId",
}


def json_object(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`values` as plain JSON (tuples become lists); a clear TypeError names what is not JSON."""
    try:
        return dict(json.loads(json.dumps(dict(values), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        for key, value in values.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                kind = type(value).__name__
                raise TypeError(
                    f"{where}: argument {key!r} ({kind}) is not JSON-serializable; "
                    "approvals carry plain JSON arguments only"
                ) from exc
        raise TypeError(f"{where}: the arguments are not JSON-serializable: {exc}") from exc


def request_body(tool_name: str, args: Mapping[str, Any], fields: Mapping[str, Any]) -> bytes:
    """The JSON body of `POST /v1/approvals`; a TypeError names an unknown field or non-JSON."""
    unknown = sorted(set(fields) - _WIRE_NAMES.keys())
    if unknown:
        raise TypeError(
            f"unknown approval field(s): {', '.join(unknown)}; "
            f"expected some of {', '.join(_WIRE_NAMES)}"
        )
    if not isinstance(args, Mapping):
        raise TypeError(f"{tool_name}: args must be a mapping of names to JSON values")
    body: dict[str, Any] = {"toolName": tool_name, "args": json_object(args, tool_name)}
    for name, value in fields.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        if value is not None:
            body[_WIRE_NAMES[name]] = value
    try:
        return json.dumps(body, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{tool_name}: the request fields are not plain JSON: {exc}") from exc


def parse_approval(body: Any) -> Approval:
    """The approval record in an answer of the bot; `ApprovalError` when it is not one."""
    try:
        return Approval.model_validate(body)
    except ValidationError as exc:
        raise ApprovalError(
            None, "bad_response", f"the bot did not answer with an approval record: {exc}"
        ) from exc


def decision_of(approval: Approval) -> Decision:
    """The decision of a decided approval; `ApprovalError` when it has none."""
    if approval.decision is None:
        raise ApprovalError(
            None, "bad_response", f"approval {approval.id} is {approval.status}, with no decision"
        )
    return approval.decision


@dataclass(frozen=True)
class ToolCall:
    """One tool call as sent for approval: every record the bot answers must be of this call.

    The bot's idempotency (`toolCallId`) makes this necessary: a bot that answers a reused
    `toolCallId` with the record of another call (an old bot, or a compromised one) would
    otherwise hand this call a decision somebody made about another. `check` is the one place
    the SDK, the MCP gate and every adapter refuse such an answer.
    """

    tool_name: str
    #: the arguments as sent: plain JSON
    args: dict[str, Any]
    #: None when the bot was left to generate one
    tool_call_id: str | None = None

    @classmethod
    def sent(
        cls, tool_name: str, args: Mapping[str, Any], tool_call_id: str | None = None
    ) -> ToolCall:
        """The call as the bot receives it: the arguments after a JSON round trip."""
        return cls(tool_name, json_object(args, tool_name), tool_call_id)

    @classmethod
    def of(cls, approval: Approval) -> ToolCall:
        """The call a record (already checked) is about, to check later answers against."""
        return cls.sent(approval.tool_name, approval.args, approval.tool_call_id)

    def check(self, approval: Approval) -> Approval:
        """`approval` when it is a record of this call; else `ApprovalMismatch`.

        Only the record's own `toolName`, `args` and `toolCallId` must match: its decision's
        `approvedArgs` may differ, as an edit. The message names what differs, never the
        argument values (they may be secrets, and a compromised bot chose them).
        """
        differences = []
        if approval.tool_name != self.tool_name:
            differences.append(f"toolName {approval.tool_name!r:.80}, not {self.tool_name!r}")
        answered = json_object(approval.args, approval.tool_name)
        keys = sorted(
            key
            for key in answered.keys() | self.args.keys()
            if not same_json(answered.get(key, _ABSENT), self.args.get(key, _ABSENT))
        )
        if keys:
            shown = ", ".join(f"{key!r:.40}" for key in keys[:5])
            more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
            differences.append(f"other arguments (at {shown}{more})")
        if self.tool_call_id is not None and approval.tool_call_id != self.tool_call_id:
            differences.append(
                f"toolCallId {approval.tool_call_id!r:.80}, not {self.tool_call_id!r}"
            )
        if differences:
            raise ApprovalMismatch(approval, self.tool_name, differences)
        return approval


#: an argument one side lacks: unequal to anything, `null` included
_ABSENT = object()


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values: `1` is `1.0`, but `true` is not `1` (Python says it is)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same_json, a, b))
    return isinstance(a, bool) is isinstance(b, bool) and bool(a == b)
