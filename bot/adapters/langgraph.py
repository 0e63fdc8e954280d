"""LangGraph: run a graph and answer its human-in-the-loop interrupts with decisions in Slack.

    result = await run_with_approvals(agent, {"messages": [...]}, config, client)

`run_with_approvals` invokes the graph, turns every pending interrupt into approvals (one card
per tool call, all posted at once) and resumes with `Command(resume={interrupt_id: value})`
until the graph finishes. It answers LangChain's `HumanInTheLoopMiddleware` (batched and
per-call) and agent-inbox `HumanInterrupt`s, read and answered by `bot.adapters.langchain`.
Each tool call keeps one `toolCallId` — the model's tool call id when the interrupt or the
graph's last message has it, else one derived from the interrupt id — so running this again
after a crash or an `ApprovalTimeout` resumes the same cards.

Any other shape is answered through `interrupts=`: an `InterruptMapping` reads an interrupt
value as the tool call it asks about and turns the decision into the resume value. Two ship,
for shapes of LangGraph's documents (`bot.adapters.langgraph_interrupts`, re-exported here):
`REVIEW_TOOL_CALLS` ({"question", "tool_call"}, answered continue / update / feedback) and
`TOOL_PARAMETERS` ({"tool", "message", "parameters"}, answered approve / the edited
parameters / reject).

Tools gated with `requires_approval` need none of this: put `@tool` above
`@requires_approval(..., on_reject="message")`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, Unpack

from bot.adapters._common import ToolRequest, check_template, decide_all, fill_prompt
from bot.adapters.langchain import ToolReview, UnsupportedInterrupt, read_interrupt, resume_value
from bot.adapters.langgraph_interrupts import (
    REVIEW_TOOL_CALLS,
    TOOL_PARAMETERS,
    InterruptMapping,
    hint,
    tool_parameters,
)
from bot.models import Decision, OnTimeout, Priority, Requester
from bot.sdk.client import ApprovalClient
from bot.sdk.schema import tool_schema
from bot.sdk.sync import SyncApprovalClient

__all__ = [
    "REVIEW_TOOL_CALLS",
    "TOOL_PARAMETERS",
    "AsyncGraph",
    "CardFields",
    "GraphState",
    "InterruptMapping",
    "PendingInterrupt",
    "SyncGraph",
    "run_with_approvals",
    "run_with_approvals_sync",
    "tool_parameters",
]

_MAX_CONTEXT = 10_000


class CardFields(TypedDict, total=False):
    """Request fields every card of a run shares (the rest come from the interrupt)."""

    thread_ts: str | None
    requester: Requester | Mapping[str, Any] | None
    context: str | None
    timeout_seconds: int | None
    on_timeout: OnTimeout | str | None
    metadata: Mapping[str, Any] | None


class PendingInterrupt(Protocol):
    """`langgraph.types.Interrupt` as far as this module reads it."""

    @property
    def value(self) -> Any: ...

    @property
    def id(self) -> str: ...


class GraphState(Protocol):
    """`langgraph.types.StateSnapshot` as far as this module reads it."""

    @property
    def values(self) -> Any: ...

    @property
    def interrupts(self) -> Sequence[PendingInterrupt]: ...


class AsyncGraph(Protocol):
    """A compiled graph (or `RemoteGraph`) with a checkpointer."""

    async def ainvoke(self, input: Any, config: Any) -> Any: ...

    async def aget_state(self, config: Any) -> GraphState: ...


class SyncGraph(Protocol):
    """A compiled graph (or `RemoteGraph`) with a checkpointer, called without an event loop."""

    def invoke(self, input: Any, config: Any) -> Any: ...

    def get_state(self, config: Any) -> GraphState: ...


async def run_with_approvals(
    graph: AsyncGraph,
    input: Any,
    config: Mapping[str, Any],
    client: ApprovalClient,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    interrupts: InterruptMapping | Sequence[InterruptMapping] | None = None,
    tools: Sequence[Any] = (),
    **fields: Unpack[CardFields],
) -> Any:
    """`graph.ainvoke(input, config)`, resumed after each round of Slack decisions until done.

    `config` needs a `thread_id`. With `input=None` on a thread that is waiting, the waiting
    interrupts are answered first: after a crash or an `ApprovalTimeout`, this resumes the
    same cards. `prompt` may use `{tool_name}` and `{tool_arguments}`; the interrupt's
    description goes on the card as context. `interrupts` are tried in order on each
    interrupt value before the shapes `bot.adapters.langchain` knows (`REVIEW_TOOL_CALLS`,
    `TOOL_PARAMETERS` or your own). Returns the graph's last result.

    Each card carries its tool's JSON schema as `argsSchema` (the interrupt's own, else that of
    the tool of that name among `tools` or the graph's `ToolNode`s), so the bot refuses an edit
    or an API decision the tool could not be called with before anything is stored. Pass
    `tools` when a graph calls its tools by hand rather than through a `ToolNode`.
    """
    check_template("prompt", prompt)
    card = _card_fields(fields, channel, priority, prompt)
    mappings = _mappings(interrupts)
    answered: set[str] = set()
    result: Any = None
    state = await graph.aget_state(config) if input is None else None
    if state is None or not state.interrupts:
        result = await graph.ainvoke(input, config)
        state = await graph.aget_state(config)
    schemas = _tool_schemas(graph, tools)
    while state.interrupts:
        readings, asks = _plan(state, config, card, answered, mappings, schemas)
        decisions = await _decide_round(client, asks, timeout)
        result = await graph.ainvoke(_command(readings, decisions), config)
        state = await graph.aget_state(config)
    return result


def run_with_approvals_sync(
    graph: SyncGraph,
    input: Any,
    config: Mapping[str, Any],
    client: SyncApprovalClient,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    timeout: float | None = None,
    interrupts: InterruptMapping | Sequence[InterruptMapping] | None = None,
    tools: Sequence[Any] = (),
    **fields: Unpack[CardFields],
) -> Any:
    """`run_with_approvals` for code without an event loop: `graph.invoke`, a sync client."""
    check_template("prompt", prompt)
    card = _card_fields(fields, channel, priority, prompt)
    mappings = _mappings(interrupts)
    answered: set[str] = set()
    result: Any = None
    state = graph.get_state(config) if input is None else None
    if state is None or not state.interrupts:
        result = graph.invoke(input, config)
        state = graph.get_state(config)
    schemas = _tool_schemas(graph, tools)
    while state.interrupts:
        readings, asks = _plan(state, config, card, answered, mappings, schemas)
        decisions = client._call(_decide_round(client._client, asks, timeout))
        result = graph.invoke(_command(readings, decisions), config)
        state = graph.get_state(config)
    return result


def _card_fields(
    fields: Mapping[str, Any],
    channel: str | None,
    priority: Priority | str | None,
    prompt: str | None,
) -> dict[str, Any]:
    unknown = set(fields) - CardFields.__annotations__.keys()
    if unknown:
        raise TypeError(
            f"unknown card field(s): {', '.join(sorted(unknown))}; the tool name, arguments, "
            "allowed decisions and schema come from the interrupt"
        )
    return {**fields, "channel": channel, "priority": priority, "prompt": prompt}


@dataclass(frozen=True)
class _Reading:
    """A pending interrupt read: the tool calls it asks about, and how to answer them."""

    interrupt_id: str
    reviews: tuple[ToolReview, ...]
    #: the resume value, given one decision per review
    resume: Callable[[Sequence[Decision]], Any]


def _mappings(
    interrupts: InterruptMapping | Sequence[InterruptMapping] | None,
) -> tuple[InterruptMapping, ...]:
    """`interrupts` as a tuple, checked before anything runs."""
    if interrupts is None:
        return ()
    if isinstance(interrupts, InterruptMapping):
        return (interrupts,)
    if isinstance(interrupts, str | bytes | Mapping) or not isinstance(interrupts, Sequence):
        interrupts = [interrupts]  # type: ignore[list-item]  # refused below, by its type
    given = tuple(interrupts)
    for mapping in given:
        if not isinstance(mapping, InterruptMapping):
            raise TypeError(
                f"interrupts takes InterruptMapping values (REVIEW_TOOL_CALLS, "
                f"TOOL_PARAMETERS or your own), not {type(mapping).__name__}"
            )
    return given


def _read(pending: PendingInterrupt, mappings: Sequence[InterruptMapping]) -> _Reading:
    """The tool calls `pending` asks about: the first mapping that reads it, else LangChain's."""
    value = pending.value
    for mapping in mappings:
        review = mapping.read(value)
        if review is not None:
            return _Reading(pending.id, (review,), functools.partial(_resume_one, mapping, review))
    try:
        request = read_interrupt(value, getattr(pending, "response_schema", None))
    except UnsupportedInterrupt as exc:
        raise UnsupportedInterrupt(f"{exc}{hint(value, mappings)}") from None
    return _Reading(pending.id, request.reviews, functools.partial(resume_value, request))


def _resume_one(
    mapping: InterruptMapping, review: ToolReview, decisions: Sequence[Decision]
) -> Any:
    [decision] = decisions
    return mapping.resume(review, decision)


def _plan(
    state: GraphState,
    config: Mapping[str, Any],
    card: Mapping[str, Any],
    answered: set[str],
    mappings: Sequence[InterruptMapping] = (),
    schemas: Mapping[str, Any] | None = None,
) -> tuple[list[_Reading], list[list[ToolRequest]]]:
    """The interrupts to answer and, for each, the approvals to ask for."""
    thread_id = (config.get("configurable") or {}).get("thread_id")
    readings: list[_Reading] = []
    asks: list[list[ToolRequest]] = []
    for pending in state.interrupts:
        if pending.id in answered:
            raise RuntimeError(
                f"interrupt {pending.id} is still waiting after it was answered; "
                "the graph did not accept the answer"
            )
        answered.add(pending.id)
        reading = _read(pending, mappings)
        call_ids = _tool_call_ids(reading.reviews, state.values, pending.id)
        readings.append(reading)
        asks.append(
            [
                _tool_request(review, call_id, card, pending.id, thread_id, schemas or {})
                for review, call_id in zip(reading.reviews, call_ids, strict=True)
            ]
        )
    return readings, asks


def _tool_request(
    review: ToolReview,
    tool_call_id: str,
    card: Mapping[str, Any],
    interrupt_id: str,
    thread_id: Any,
    schemas: Mapping[str, Any],
) -> ToolRequest:
    """The approval to ask for about one review: the card's fields filled in for this call."""
    arguments = json.dumps(review.args, ensure_ascii=False, default=str)
    where = {"interruptId": interrupt_id}
    if thread_id is not None:
        where["threadId"] = str(thread_id)
    fields = {
        **card,
        "tool_call_id": tool_call_id,
        "prompt": fill_prompt(card.get("prompt") or None, review.name, arguments),
        "context": _context(card.get("context"), review.description),
        "allowed_decisions": list(review.allowed_decisions),
        "args_schema": tool_schema(review.args_schema or schemas.get(review.name), review.args),
        "metadata": {**(card.get("metadata") or {}), "langgraph": where},
    }
    return ToolRequest(review.name, review.args, fields)


def _tool_schemas(graph: Any, tools: Sequence[Any]) -> dict[str, Any]:
    """The JSON schemas of tools by name: those in `tools`, then the graph's `ToolNode`s'."""
    found = list(tools)
    nodes = getattr(graph, "nodes", None)
    if isinstance(nodes, Mapping):  # a compiled graph here, not a RemoteGraph
        for node in nodes.values():
            by_name = getattr(getattr(node, "bound", None), "tools_by_name", None)
            if isinstance(by_name, Mapping):
                found += by_name.values()
    schemas: dict[str, Any] = {}
    for tool in found:
        name = getattr(tool, "name", None)
        if isinstance(name, str) and name not in schemas:
            schemas[name] = _schema_of(tool)
    return schemas


def _schema_of(tool: Any) -> Any:
    """A LangChain tool's schema of what the model passes (`tool_call_schema`), as JSON."""
    schema = getattr(tool, "tool_call_schema", None)
    if isinstance(schema, Mapping):
        return schema
    dump = getattr(schema, "model_json_schema", None)
    try:
        return dump() if callable(dump) else None
    except (TypeError, ValueError):  # a type pydantic cannot put in a JSON schema
        return None


def _context(given: str | None, description: str | None) -> str | None:
    """The caller's context, then the interrupt's description, within the API's 10,000 chars."""
    text = "\n\n".join(part for part in (given, description) if part)
    return text[:_MAX_CONTEXT] if text else None


def _tool_call_ids(reviews: Sequence[ToolReview], values: Any, interrupt_id: str) -> list[str]:
    """A stable `toolCallId` per review: the model's call id when known, else from the interrupt.

    Batched and agent-inbox interrupts carry no call id; the calls they review are, in order,
    among the tool calls of the graph's last AI message, matched by name and arguments.
    """
    calls = _last_tool_calls(values)
    ids: list[str] = []
    position = 0
    for index, review in enumerate(reviews):
        found = review.tool_call_id
        for offset, call in enumerate(calls[position:]):
            if found is None and call[1] == review.name and call[2] == review.args:
                found, position = call[0], position + offset + 1
                break
        ids.append(found or f"lg_{interrupt_id}_{index}")
    return ids


def _last_tool_calls(values: Any) -> list[tuple[str, str, Any]]:
    """(id, name, args) of the tool calls of the last message that has any."""
    messages = values.get("messages") if isinstance(values, Mapping) else None
    if not isinstance(messages, Sequence):
        return []
    for message in reversed(messages):
        calls = _field(message, "tool_calls")
        if calls:
            return [
                (str(_field(call, "id")), _field(call, "name"), _field(call, "args"))
                for call in calls
                if _field(call, "id")
            ]
    return []


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


async def _decide_round(
    client: ApprovalClient, asks: Sequence[Sequence[ToolRequest]], timeout: float | None
) -> list[list[Decision]]:
    """Every decision of a round, asked for at once, in rows like `asks` (one per interrupt)."""
    decisions = iter(await decide_all(client, [ask for row in asks for ask in row], timeout))
    return [[next(decisions) for _ in row] for row in asks]


def _command(readings: Sequence[_Reading], decisions: Sequence[Sequence[Decision]]) -> Any:
    """`Command(resume={interrupt_id: value})` answering every interrupt of this round."""
    from langgraph.types import Command

    resume = {
        reading.interrupt_id: reading.resume(row)
        for reading, row in zip(readings, decisions, strict=True)
    }
    return Command(resume=resume)
