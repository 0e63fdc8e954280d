"""Conditions on a call, in CEL: the routing file's `when`.

CEL (the Common Expression Language) is the policy language of Kubernetes admission and Google
IAM: no side effects, no loops of its own, typed. The bot runs it with
`common-expression-language`, bindings to the Rust implementation (`cel-rust`): an expression
compiles once when the file loads and evaluates in a few microseconds, with no Python `eval`
anywhere. Its evaluation holds the event loop while it runs, so what an expression may do is
bounded when it compiles:

* at most `MAX_CHARS` characters, and names only from `NAMES` (a typo such as `arg.amount`
  refuses the file instead of never matching);
* at most one list macro (`all`, `exists`, `exists_one`, `map`, `filter`): one pass over a
  list of the arguments, whose size the request's own limits bound. Two, nested, would be
  quadratic in an agent's arguments.

An expression that fails while evaluating (a missing key, a type mismatch, a result that is not
a bool) does not hold: `ConditionFailed` says why, and the rule is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bot.models import ApprovalRequest

if TYPE_CHECKING:
    import cel

__all__ = [
    "MAX_CHARS",
    "NAMES",
    "Condition",
    "ConditionError",
    "ConditionFailed",
    "call_context",
    "compile_condition",
]

#: what an expression sees of a call
NAMES = frozenset({"args", "toolName", "requester", "priority", "channel", "metadata", "now"})
MAX_CHARS = 1_000
#: list macros: each is one pass over a list
_MACRO = re.compile(r"\.\s*(?:all|exists_one|exists|map|filter)\s*\(\s*([A-Za-z_]\w*)")
#: string literals (their text is not code): quoted, maybe raw or bytes, maybe triple-quoted
_STRING = re.compile(
    r"""[rRbB]{0,2}(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""", re.S
)
#: where the parser says a problem is: `<input>:LINE:COLUMN: message`
_WHERE = re.compile(r"<input>:(\d+):(\d+): ([^\n]*)")


class ConditionError(ValueError):
    """An expression that cannot be used, with where in it (1-based line and column)."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


class ConditionFailed(Exception):
    """An expression that could not be evaluated for this call: it does not hold."""


@dataclass(frozen=True)
class Condition:
    """A compiled `when`."""

    source: str
    program: Any

    def holds(self, context: cel.Context) -> bool:
        """True when the expression is true for this call (`call_context`); `ConditionFailed`
        when it cannot be evaluated (never True by accident)."""
        try:
            result = self.program.execute(context)
        except Exception as exc:  # the library raises KeyError, TypeError, ValueError…
            raise ConditionFailed(_said(exc)) from None
        if not isinstance(result, bool):
            raise ConditionFailed(f"gave {type(result).__name__}, not true or false")
        return result


def _cel() -> ModuleType:
    """The CEL library, imported when a routing file first has a `when`: its package loads
    its own command line too (typer, prompt_toolkit…), about 30 MB that a bot without
    conditions does not carry."""
    import cel

    return cel


def compile_condition(source: str) -> Condition:
    """Compile a `when`; `ConditionError` says what is wrong and where."""
    if len(source) > MAX_CHARS:
        raise ConditionError(f"longer than {MAX_CHARS:,} characters")
    if not source.strip():
        raise ConditionError("empty")
    code = _STRING.sub(lambda m: " " * len(m.group(0)), source)
    macros = list(_MACRO.finditer(code))
    if len(macros) > 1:
        line, column = _position(source, macros[1].start() + 1)
        raise ConditionError(
            "at most one list macro (all, exists, exists_one, map, filter) per expression",
            line,
            column,
        )
    try:
        program = _cel().compile(source)
    except Exception as exc:  # a parse error: ValueError naming `<input>:line:column`
        where = _WHERE.search(str(exc))
        if where is None:
            raise ConditionError(_said(exc)) from None
        raise ConditionError(where[3], int(where[1]), int(where[2])) from None
    bound = {m[1] for m in macros}
    unknown = sorted(set(program.references()["variables"]) - NAMES - bound)
    if unknown:
        at = re.search(rf"\b{re.escape(unknown[0])}\b", code)
        line, column = _position(source, at.start() if at else 0)
        known = ", ".join(sorted(NAMES))
        raise ConditionError(f"unknown name {unknown[0]!r} (known: {known})", line, column)
    return Condition(source, program)


def call_context(request: ApprovalRequest, now: datetime) -> cel.Context:
    """What an expression sees of a request: its own fields, as the agent sent them.

    Converted to CEL's values once, for every rule a request meets (13 µs for a small call,
    then about 0.2 µs a condition, where a plain dict would be converted again each time)."""
    context: cel.Context = _cel().Context()
    context.update(
        {
            "args": request.args,
            "toolName": request.tool_name,
            "requester": request.requester.to_wire(),
            "priority": request.priority.value if request.priority else "normal",
            "channel": request.channel or "",
            "metadata": request.metadata or {},
            "now": now,
        }
    )
    return context


def _position(source: str, offset: int) -> tuple[int, int]:
    before = source[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _said(exc: Exception) -> str:
    """The library's message, on one line and short (an expression's error ends up in the
    audit trail)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, KeyError):
        text = f"no such key {text!r}"
    return " ".join(text.split())[:200]
