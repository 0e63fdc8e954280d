"""The wire format: request fields to the JSON body the bot takes, its answers to our models."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from pydantic import BaseModel, ValidationError

from bot.models import (
    Approval,
    Decision,
    DecisionKind,
    OnTimeout,
    Priority,
    Requester,
    new_tool_call_id,
)
from bot.sdk.errors import ApprovalError

__all__ = [
    "GateFields",
    "SubmitFields",
    "decision_of",
    "json_object",
    "new_tool_call_id",
    "parse_approval",
    "request_body",
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


class SubmitFields(GateFields, total=False):
    """The optional fields of `POST /v1/approvals`, in snake_case."""

    tool_call_id: str | None
    prompt: str | None
    channel: str | None
    priority: Priority | str | None


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
