"""LangChain's human-in-the-loop interrupts, read as tool calls and answered with decisions.

Pure translation, no framework import: `read_interrupt(value)` says which tool calls an
interrupt asks about and which answers it allows; `resume_value(request, decisions)` is what
to resume it with. `bot.adapters.langgraph.run_with_approvals` uses both; they serve interrupts
read from a LangGraph server as well. Three shapes:

    HumanInTheLoopMiddleware            {"action_requests": [...], "review_configs": [...]}
      (batched, the default)            → {"decisions": [{"type": "approve" | "edit" | "reject"}]}
                                        (pre-1.0 `arguments` and `description` spellings too)
    HumanInTheLoopMiddleware            {"type": "tool_approval", "tool_call_id", "name", "args"}
      (interrupt_mode="per_call")       → one decision of the shape above
    agent-inbox HumanInterrupt          [{"action_request": {"action", "args"}, "config": {...}}]
                                        → [{"type": "accept" | "edit" | "response" | "ignore"}]

What the interrupt allows is the card's buttons: approve ↔ approve/accept, edit ↔ edit
(with `approvedArgs`, the complete arguments: they replace the call's, as LangChain does),
reject ↔ reject/ignore (or a `respond`/`response` saying so when only that is allowed),
feedback ↔ reject with the feedback as its message (or `respond` when only that is allowed)
and agent-inbox `response`. A card always offers Reject (the bot refuses one that does not:
a reviewer can always say no), so an interrupt with no way to refuse is `UnsupportedInterrupt`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.models import Action, Decision, DecisionKind
from bot.sdk.errors import ApprovalError, refusal

__all__ = [
    "InterruptKind",
    "ReviewRequest",
    "ToolReview",
    "UnsupportedInterrupt",
    "read_interrupt",
    "resume_value",
]

#: what `HumanInTheLoopMiddleware` allows for `interrupt_on={"tool": True}`
_HITL_ALL = ("approve", "edit", "reject", "respond")
_INBOX_ALL = ("accept", "edit", "respond", "ignore")


class InterruptKind(StrEnum):
    """The interrupt shapes `read_interrupt` understands."""

    #: `HumanInTheLoopMiddleware`, batched: every gated call of one model turn
    HITL = "hitl"
    #: `HumanInTheLoopMiddleware(interrupt_mode="per_call")`: one gated call
    TOOL_APPROVAL = "tool_approval"
    #: agent-inbox `HumanInterrupt` (a list, or one on its own)
    AGENT_INBOX = "agent_inbox"


class UnsupportedInterrupt(ValueError):
    """An interrupt value that is not a tool review this module can answer."""


@dataclass(frozen=True)
class ToolReview:
    """One tool call an interrupt asks about."""

    name: str
    args: dict[str, Any]
    #: what the interrupt allows, in its own words (`approve`, `accept`, `respond`, …)
    allowed: tuple[str, ...]
    #: the same as the card's buttons
    allowed_decisions: tuple[DecisionKind, ...]
    description: str | None = None
    tool_call_id: str | None = None
    args_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class ReviewRequest:
    """An interrupt value read as the tool calls it asks about."""

    kind: InterruptKind
    reviews: tuple[ToolReview, ...]
    #: an agent-inbox interrupt given as one dict rather than a list: answer with one dict
    single: bool = False


# -- reading interrupts ------------------------------------------------------------------------


def read_interrupt(value: Any, response_schema: Any = None) -> ReviewRequest:
    """The tool calls an interrupt value asks about; `UnsupportedInterrupt` for other values.

    `response_schema` is the interrupt's own (`Interrupt.response_schema`): in per-call mode it
    says which decisions the tool allows and gives the edit form the tool's argument schema.
    """
    if isinstance(value, Mapping):
        if "action_requests" in value:
            return ReviewRequest(InterruptKind.HITL, _read_hitl(value))
        if value.get("type") == "tool_approval":
            review = _read_tool_approval(value, response_schema)
            return ReviewRequest(InterruptKind.TOOL_APPROVAL, (review,))
        if "action_request" in value:
            return ReviewRequest(InterruptKind.AGENT_INBOX, (_read_inbox(value),), single=True)
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str | bytes)
        and value
        and all(isinstance(item, Mapping) and "action_request" in item for item in value)
    ):
        return ReviewRequest(InterruptKind.AGENT_INBOX, tuple(_read_inbox(v) for v in value))
    raise UnsupportedInterrupt(
        f"not a tool review interrupt (HumanInTheLoopMiddleware or agent-inbox): {value!r:.200}"
    )


def _read_hitl(value: Mapping[str, Any]) -> tuple[ToolReview, ...]:
    requests = value.get("action_requests")
    configs = value.get("review_configs") or []
    if not isinstance(requests, Sequence) or not isinstance(configs, Sequence):
        raise UnsupportedInterrupt("action_requests and review_configs must be lists")
    # One config per request today; one per tool name in builds before 1.0.
    by_name = {
        config.get("action_name"): config for config in configs if isinstance(config, Mapping)
    }
    reviews = []
    for request in requests:
        if not isinstance(request, Mapping):
            raise UnsupportedInterrupt(f"an action request must be an object: {request!r:.200}")
        name = _name(request.get("name"))
        config = by_name.get(name, {})
        allowed = _words(config.get("allowed_decisions"), _HITL_ALL)
        reviews.append(
            ToolReview(
                name=name,
                args=_args(request.get("args", request.get("arguments")), name),
                allowed=allowed,
                allowed_decisions=_hitl_buttons(allowed, name),
                description=_text(request.get("description") or config.get("description")),
                args_schema=_schema(config.get("args_schema")),
            )
        )
    return tuple(reviews)


def _read_tool_approval(value: Mapping[str, Any], response_schema: Any) -> ToolReview:
    name = _name(value.get("name"))
    allowed = _schema_decisions(response_schema) or _HITL_ALL
    call_id = value.get("tool_call_id")
    return ToolReview(
        name=name,
        args=_args(value.get("args"), name),
        allowed=allowed,
        allowed_decisions=_hitl_buttons(allowed, name),
        description=_text(value.get("description")),
        tool_call_id=str(call_id) if call_id else None,
        args_schema=_edit_args_schema(response_schema),
    )


def _read_inbox(value: Mapping[str, Any]) -> ToolReview:
    request = value.get("action_request")
    if not isinstance(request, Mapping):
        raise UnsupportedInterrupt(f"action_request must be an object: {request!r:.200}")
    name = _name(request.get("action"))
    config = value.get("config")
    if isinstance(config, Mapping):
        allowed = tuple(word for word in _INBOX_ALL if config.get(f"allow_{word}"))
    else:
        allowed = _INBOX_ALL
    buttons = {
        "accept": (DecisionKind.APPROVE,),
        "edit": (DecisionKind.EDIT,),
        "ignore": (DecisionKind.REJECT,),
        "respond": (DecisionKind.REJECT, DecisionKind.FEEDBACK),
    }
    return ToolReview(
        name=name,
        args=_args(request.get("args"), name),
        allowed=allowed,
        allowed_decisions=_buttons([kind for word in allowed for kind in buttons[word]], name),
        description=_text(value.get("description")),
    )


def _hitl_buttons(allowed: Sequence[str], name: str) -> tuple[DecisionKind, ...]:
    buttons = {
        "approve": (DecisionKind.APPROVE,),
        "edit": (DecisionKind.EDIT,),
        "reject": (DecisionKind.REJECT, DecisionKind.FEEDBACK),
        "respond": (DecisionKind.REJECT, DecisionKind.FEEDBACK),
    }
    return _buttons([kind for word in allowed for kind in buttons.get(word, ())], name)


def _buttons(kinds: Sequence[DecisionKind], name: str) -> tuple[DecisionKind, ...]:
    """The card's buttons in their usual order; an interrupt that cannot refuse is refused."""
    chosen = tuple(kind for kind in DecisionKind if kind in kinds)
    if DecisionKind.REJECT not in chosen:
        raise UnsupportedInterrupt(
            f"the interrupt for {name} allows no way to refuse the call (reject, respond or "
            "ignore), and the approval bot always lets a reviewer say no"
        )
    return chosen


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise UnsupportedInterrupt(f"a tool review needs the tool's name, not {value!r:.100}")
    return value


def _args(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UnsupportedInterrupt(f"the arguments of {name} must be an object: {value!r:.200}")
    return dict(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _schema(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) and value else None


def _words(value: Any, default: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(str(word) for word in value)
    return tuple(default)


def _schema_decisions(schema: Any) -> tuple[str, ...] | None:
    """The decision types a per-call `response_schema` (JSON Schema) accepts."""
    if not isinstance(schema, Mapping):
        return None
    try:
        mapping = schema.get("discriminator", {}).get("mapping")
        if isinstance(mapping, Mapping) and mapping:
            return tuple(str(word) for word in mapping)
        words = []
        for branch in schema.get("oneOf") or schema.get("anyOf") or [schema]:
            kind = _resolve(schema, branch).get("properties", {}).get("type", {}).get("const")
            if isinstance(kind, str):
                words.append(kind)
    except (KeyError, TypeError, AttributeError):
        return None
    return tuple(words) or None


def _edit_args_schema(schema: Any) -> dict[str, Any] | None:
    """The tool's argument schema inside a per-call `response_schema`'s edit branch."""
    if not isinstance(schema, Mapping):
        return None
    try:
        mapping = schema.get("discriminator", {}).get("mapping", {})
        edit = _resolve(schema, {"$ref": mapping["edit"]} if "edit" in mapping else schema)
        action = _resolve(schema, edit["properties"]["edited_action"])
        args = _resolve(schema, action["properties"]["args"])
    except (KeyError, TypeError, AttributeError):
        return None
    if args.get("type") != "object" or not isinstance(args.get("properties"), Mapping):
        return None
    found = dict(args)
    if "$ref" in json.dumps(found) and isinstance(schema.get("$defs"), Mapping):
        found["$defs"] = schema["$defs"]
    return found


def _resolve(root: Mapping[str, Any], node: Any) -> Mapping[str, Any]:
    """`node`, or what its local `$ref` (`#/$defs/Name`) points at."""
    if not isinstance(node, Mapping):
        raise TypeError("not a schema")
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"))
        if not isinstance(target, Mapping):
            raise KeyError(ref)
        return target
    return node


# -- answering them ----------------------------------------------------------------------------


def resume_value(request: ReviewRequest, decisions: Sequence[Decision]) -> Any:
    """The value to resume `request`'s interrupt with, one decision per review, in order."""
    if len(decisions) != len(request.reviews):
        raise ValueError(
            f"{len(request.reviews)} tool call(s) to answer, {len(decisions)} decision(s) given"
        )
    pairs = zip(request.reviews, decisions, strict=True)
    if request.kind is InterruptKind.AGENT_INBOX:
        responses = [_inbox_response(review, decision) for review, decision in pairs]
        return responses[0] if request.single else responses
    answers = [_hitl_decision(review, decision) for review, decision in pairs]
    if request.kind is InterruptKind.TOOL_APPROVAL:
        return answers[0]
    return {"decisions": answers}


def _hitl_decision(review: ToolReview, decision: Decision) -> dict[str, Any]:
    """A `HumanInTheLoopMiddleware` decision: approve, edit, reject or respond."""
    allowed = review.allowed
    if decision.approved:
        args = _approved_args(review, decision)
        if args == review.args and "approve" in allowed:
            return {"type": "approve"}
        if "edit" in allowed:
            return {"type": "edit", "edited_action": {"name": review.name, "args": args}}
        raise _cannot(review, decision)
    message = _message(review, decision)
    if "reject" in allowed:
        return {"type": "reject", "message": message} if message else {"type": "reject"}
    if "respond" in allowed:
        return {"type": "respond", "message": message or refusal(decision, review.name)}
    raise _cannot(review, decision)


def _inbox_response(review: ToolReview, decision: Decision) -> dict[str, Any]:
    """An agent-inbox `HumanResponse`: accept, edit, response or ignore."""
    allowed = review.allowed
    if decision.approved:
        args = _approved_args(review, decision)
        if args == review.args and "accept" in allowed:
            return {"type": "accept", "args": None}
        if "edit" in allowed:
            return {"type": "edit", "args": {"action": review.name, "args": args}}
        raise _cannot(review, decision)
    feedback = decision.action is Action.FEEDBACK
    if "respond" in allowed and (feedback or "ignore" not in allowed):
        text = _message(review, decision) or refusal(decision, review.name)
        return {"type": "response", "args": text}
    if "ignore" in allowed:
        return {"type": "ignore", "args": None}
    raise _cannot(review, decision)


def _approved_args(review: ToolReview, decision: Decision) -> dict[str, Any]:
    return review.args if decision.approved_args is None else decision.approved_args


def _message(review: ToolReview, decision: Decision) -> str | None:
    """What the model is told: the reviewer's words, or why nobody decided."""
    if decision.action in (Action.REJECT, Action.FEEDBACK):
        return decision.comment
    return refusal(decision, review.name)


def _cannot(review: ToolReview, decision: Decision) -> ApprovalError:
    return ApprovalError(
        None,
        "unsupported_decision",
        f"{review.name}: the interrupt allows {', '.join(review.allowed)}, "
        f"which cannot express a {decision.action} decision",
    )
