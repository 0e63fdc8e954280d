"""Interrupt shapes beyond LangChain's, read as tool calls and answered with decisions.

Pure translation, no framework import, like `bot.adapters.langchain`: an `InterruptMapping`
says which tool call an interrupt value asks about and what to resume it with. Two ship, for
the shapes of LangGraph's documents that `read_interrupt` does not know:

    REVIEW_TOOL_CALLS   LangGraph's "How to review tool calls" guide: a node asks
                        {"question": …, "tool_call": {"name", "args", "id"}}
                        → {"action": "continue"}, {"action": "update", "data": args},
                          {"action": "feedback", "data": text} (a rejection's reason too)
    TOOL_PARAMETERS     a tool that asks before its side effect ("tool-level approval"):
                        {"tool", "message", "parameters"}
                        → "approve", the edited parameters (all of them), or "reject";
                          `tool_parameters(approve="yes")` for tools that want other words

`bot.adapters.langgraph.run_with_approvals(..., interrupts=…)` uses them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# the same readers as the built-in shapes: one wording for what a tool review lacks
from bot.adapters.langchain import ToolReview, UnsupportedInterrupt, _name, _text
from bot.adapters.langchain import _args as _arguments
from bot.models import Action, Decision, DecisionKind
from bot.sdk.errors import refusal

__all__ = [
    "REVIEW_TOOL_CALLS",
    "TOOL_PARAMETERS",
    "InterruptMapping",
    "hint",
    "tool_parameters",
]


@dataclass(frozen=True)
class InterruptMapping:
    """One shape of interrupt value: the tool call it asks about, and how to answer it.

    `read(value)` is the `ToolReview` of the call an interrupt value asks about (its name,
    arguments and the card's buttons), or None when the value is not of this shape; it raises
    `UnsupportedInterrupt` for a value of this shape it cannot answer. `resume(review,
    decision)` is the value to resume that interrupt with once Slack decided.
    """

    #: the shape's name, in error messages
    name: str
    read: Callable[[Any], ToolReview | None]
    resume: Callable[[ToolReview, Decision], Any]


def _read_review_tool_call(value: Any) -> ToolReview | None:
    """`{"question", "tool_call"}`: a node reviewing the model's last tool call."""
    if not (isinstance(value, Mapping) and "tool_call" in value and "question" in value):
        return None
    call = value["tool_call"]
    if not isinstance(call, Mapping):
        raise UnsupportedInterrupt(f"tool_call must be a tool call object: {call!r:.200}")
    name = _name(call.get("name"))
    call_id = call.get("id")
    return ToolReview(
        name=name,
        args=_arguments(call.get("args"), name),
        allowed=("continue", "update", "feedback"),
        allowed_decisions=tuple(DecisionKind),
        description=_text(value.get("question")),
        tool_call_id=str(call_id) if call_id else None,
    )


def _resume_review_tool_call(review: ToolReview, decision: Decision) -> dict[str, Any]:
    """continue, update with the arguments to run with, or feedback the model reads."""
    if decision.approved:
        args = review.args if decision.approved_args is None else decision.approved_args
        if args == review.args:
            return {"action": "continue"}
        return {"action": "update", "data": dict(args)}
    if decision.action is Action.FEEDBACK and decision.comment:
        return {"action": "feedback", "data": decision.comment}
    return {"action": "feedback", "data": refusal(decision, review.name)}


#: LangGraph's "review tool calls" guide: `interrupt({"question": …, "tool_call": tool_call})`
#: answered with `{"action": "continue" | "update" | "feedback", "data": …}`. Approve is
#: continue, Edit is update with the edited arguments (all of them), Reject and Feedback are
#: feedback: the reviewer's words, or the refusal with the reason, as the tool's result.
REVIEW_TOOL_CALLS = InterruptMapping(
    "REVIEW_TOOL_CALLS", _read_review_tool_call, _resume_review_tool_call
)


def tool_parameters(*, approve: Any = "approve", reject: Any = "reject") -> InterruptMapping:
    """The mapping for `interrupt({"tool": name, "message": text, "parameters": {...}})` in a
    tool, resumed with `approve`, the edited parameters (a dict of all of them), or `reject`.

    Such a tool cannot hear a reason, so its cards offer Approve, Edit and Reject, and the
    model reads what the tool returns on a rejection. Give the words the tool compares its
    answer with when they differ (`tool_parameters(approve="yes")`).
    """

    def resume(review: ToolReview, decision: Decision) -> Any:
        if not decision.approved:
            return reject
        args = review.args if decision.approved_args is None else decision.approved_args
        return approve if args == review.args else dict(args)

    return InterruptMapping("TOOL_PARAMETERS", _read_tool_parameters, resume)


def _read_tool_parameters(value: Any) -> ToolReview | None:
    """`{"tool", "message", "parameters"}`: a tool asking before its side effect."""
    if not (isinstance(value, Mapping) and "tool" in value and "parameters" in value):
        return None
    name = _name(value["tool"])
    return ToolReview(
        name=name,
        args=_arguments(value["parameters"], name),
        allowed=("approve", "modify", "reject"),
        allowed_decisions=(DecisionKind.APPROVE, DecisionKind.EDIT, DecisionKind.REJECT),
        description=_text(value.get("message")),
    )


#: a tool's `interrupt({"tool", "message", "parameters"})`, answered "approve", with the edited
#: parameters, or "reject" (see `tool_parameters`)
TOOL_PARAMETERS = tool_parameters()

#: the shipped mappings, by name: what they answer, and whether a value looks like it
_SHIPPED: tuple[tuple[str, str, Callable[[Any], bool]], ...] = (
    (
        "REVIEW_TOOL_CALLS",
        '{"question", "tool_call"} review interrupts',
        lambda value: isinstance(value, Mapping) and {"question", "tool_call"} <= value.keys(),
    ),
    (
        "TOOL_PARAMETERS",
        '{"tool", "message", "parameters"} interrupts',
        lambda value: isinstance(value, Mapping) and {"tool", "parameters"} <= value.keys(),
    ),
)


def hint(value: Any, given: Sequence[InterruptMapping]) -> str:
    """ "; pass interrupts=… to answer …" when a shipped mapping not `given` would read `value`."""
    known = {mapping.name for mapping in given}
    for name, what, looks in _SHIPPED:
        if name not in known and looks(value):
            return f"; pass interrupts={name} to answer {what}"
    return ""
