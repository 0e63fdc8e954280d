"""What the framework adapters share: checking their templates, and asking for decisions at once.

Imports no framework, only `bot.sdk` and the standard library, so every adapter may use it.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Sequence
from typing import Any, NamedTuple

from bot.sdk import ApprovalClient, Decision

__all__ = ["TOOL_PLACEHOLDERS", "ToolRequest", "check_template", "decide_all", "fill_prompt"]

#: what a prompt about one tool call may name: the tool, and its arguments as JSON
TOOL_PLACEHOLDERS = ("tool_name", "tool_arguments")


class ToolRequest(NamedTuple):
    """One approval to ask for: the tool's name, its arguments and the other request fields."""

    name: str
    args: dict[str, Any]
    fields: dict[str, Any]


def check_template(
    name: str, template: str | None, allowed: Sequence[str] = TOOL_PLACEHOLDERS
) -> None:
    """Fail before any card is posted when `template` names a placeholder nothing fills."""
    if template is None:
        return
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None and field not in allowed:
            raise ValueError(f"{name} {template!r} may use {_listing(allowed)}, not {{{field}}}")


def _listing(names: Sequence[str]) -> str:
    """`{a}`, `{a} and {b}`, `{a}, {b} and {c}`."""
    shown = [f"{{{name}}}" for name in names]
    return " and ".join(filter(None, [", ".join(shown[:-1]), shown[-1]]))


def fill_prompt(prompt: str | None, tool_name: str, tool_arguments: str) -> str | None:
    """`prompt` about one call, with its tool's name and its arguments (as JSON) filled in."""
    if prompt is None:
        return None
    return prompt.format(tool_name=tool_name, tool_arguments=tool_arguments)


async def decide_all(
    client: ApprovalClient, requests: Sequence[ToolRequest], timeout: float | None
) -> list[Decision]:
    """Every decision, in order, asked for at once; the first failure cancels the other waits.

    That failure is raised, never turned into a refusal for the model: a refused request
    (`ApprovalInvalid`, a 409 `conflict`) or a record of another call (`ApprovalMismatch`) is
    no decision about these calls, so the run stops with none of them run.
    """
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(client.request(name, args, timeout=timeout, **fields))
                for name, args, fields in requests
            ]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]
