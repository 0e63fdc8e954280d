"""`requires_approval`: a decorator that runs a tool only once a human approves the call."""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import string
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, Unpack, overload

from bot.models import Approval, Preview, Priority
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import ApprovalError, ApprovalRejected, refusal
from bot.sdk.schema import required_names, signature_schema
from bot.sdk.sync import SyncApprovalClient
from bot.sdk.wire import GateFields, decision_of, json_object, new_tool_call_id, same_json

__all__ = ["OnReject", "requires_approval"]

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

OnReject = Literal["raise", "message"]
#: `requires_approval(..., preview=…)`: called with the call's arguments, returns the
#: preview to show on the card (`{"kind": "diff" | "text" | "markdown", "body": str}`) or None
PreviewOf = Callable[..., Preview | Mapping[str, Any] | None]

_PASS_THROUGH_FIRST = ("self", "cls")
_TOOL_CALL_ID = "tool_call_id"


@dataclass(frozen=True)
class _Call:
    """One call of a gated function, before the decision."""

    values: dict[str, Any]  # the gated arguments as given (Python objects)
    sent: dict[str, Any]  # the same as JSON, as the reviewer sees them
    kept: dict[str, Any]  # arguments passed through untouched (self, tool_call_id)
    tool_call_id: str
    prompt: str | None
    preview: Preview | Mapping[str, Any] | None = None


class _Gate:
    """What `requires_approval` knows about one function: its signature and the card's fields."""

    def __init__(
        self,
        fn: Callable[..., Any],
        tool_name: str | None,
        prompt: str | None,
        on_reject: OnReject,
        fields: dict[str, Any],
        preview: PreviewOf | None = None,
    ) -> None:
        self.fn = fn
        self.preview = preview
        self.signature = inspect.signature(fn)
        self.tool_name = tool_name or fn.__name__
        self.prompt = prompt
        self.on_reject = on_reject
        self.fields = fields
        params = list(self.signature.parameters.values())
        self.kept_names = {_TOOL_CALL_ID} & self.signature.parameters.keys()
        if params and params[0].name in _PASS_THROUGH_FIRST:
            self.kept_names.add(params[0].name)
        self.var_keyword = next(
            (p.name for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None
        )
        if prompt is not None:
            self._check_prompt(prompt)
        self.required = required_names(self.signature, self.kept_names)
        if fields.get("args_schema") is None:
            # the bot refuses an edit or `approvedArgs` this function could not be called with
            self.fields = {
                **fields,
                "args_schema": signature_schema(self.signature, self.kept_names),
            }

    def _check_prompt(self, prompt: str) -> None:
        """Fail at decoration time when the prompt names what no call can supply."""
        try:
            parsed = list(string.Formatter().parse(prompt))
        except ValueError as exc:
            raise ValueError(f"{self.tool_name}: prompt {prompt!r} is malformed: {exc}") from exc
        named = self.signature.parameters.keys() - self.kept_names
        for _, field, _, _ in parsed:
            if field is None:
                continue
            name = re.split(r"[.\[]", field, maxsplit=1)[0]
            if not name or name.isdigit():
                raise ValueError(f"{self.tool_name}: prompt placeholders must be argument names")
            if name not in named and self.var_keyword is None:
                raise ValueError(
                    f"{self.tool_name}: prompt {prompt!r} uses {{{name}}}, which is not one of "
                    f"its arguments ({', '.join(sorted(named)) or 'none'})"
                )

    def prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
        """Bind a call, check it is JSON, fill the prompt; nothing is sent yet."""
        given_id = None
        if _TOOL_CALL_ID not in self.signature.parameters:
            given_id = kwargs.pop(_TOOL_CALL_ID, None)
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values: dict[str, Any] = {}
        kept: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = self.signature.parameters[name].kind
            if name in self.kept_names:
                kept[name] = value
            elif kind is inspect.Parameter.VAR_KEYWORD:
                values.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                values[name] = list(value)
            else:
                values[name] = value
        given_id = kept.get(_TOOL_CALL_ID) or given_id
        prompt = None
        if self.prompt is not None:
            try:
                prompt = self.prompt.format(**values)
            except (KeyError, IndexError, AttributeError, ValueError) as exc:
                raise ValueError(
                    f"{self.tool_name}: prompt {self.prompt!r} cannot be filled: {exc!r}"
                ) from exc
        return _Call(
            values=values,
            sent=json_object(values, self.tool_name),
            kept=kept,
            tool_call_id=str(given_id) if given_id else new_tool_call_id(),
            prompt=prompt,
            preview=self._preview(args, kwargs),
        )

    def _preview(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Preview | Mapping[str, Any] | None:
        """The preview of one call: the `preview` callable given the call's own arguments
        (as the function gets them); what it raises propagates, and the tool does not run."""
        return None if self.preview is None else self.preview(*args, **kwargs)

    def resolve(self, call: _Call, approval: Approval) -> inspect.BoundArguments | str:
        """The arguments to run with, or the refusal text; raises `ApprovalRejected`.

        `approvedArgs` replace the call's arguments whole: a parameter they leave out takes
        its default. A value equal (as JSON) to the one sent is passed as the original object.
        """
        decision = decision_of(approval)
        if not decision.approved:
            if self.on_reject == "message":
                return refusal(decision, self.tool_name)
            raise ApprovalRejected(decision, self.tool_name)
        approved = call.sent if decision.approved_args is None else decision.approved_args
        self._check_approved(approved)

        def pick(key: str) -> Any:
            if key in call.sent and same_json(approved[key], call.sent[key]):
                return call.values[key]  # unedited: the original object, not its JSON copy
            return approved[key]

        named = {  # the names bound to parameters; any other goes to **kwargs
            name
            for name, param in self.signature.parameters.items()
            if param.kind is not inspect.Parameter.VAR_KEYWORD
        }
        arguments: OrderedDict[str, Any] = OrderedDict()
        for name, param in self.signature.parameters.items():
            if name in self.kept_names:
                arguments[name] = call.kept[name]
            elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                items = pick(name) if name in approved else ()
                if not isinstance(items, list | tuple):
                    raise ApprovalError(
                        None, "invalid_edit", f"{self.tool_name}: {name} must stay a list"
                    )
                arguments[name] = tuple(items)
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                arguments[name] = {key: pick(key) for key in approved if key not in named}
            elif name in approved:
                arguments[name] = pick(name)
            else:  # given, so later positional arguments keep their places
                arguments[name] = param.default
        return inspect.BoundArguments(self.signature, arguments)

    def _check_approved(self, approved: Mapping[str, Any]) -> None:
        """`ApprovalError` (`invalid_edit`) when the function cannot be called with `approved`.

        The bot checks them against the schema the gate sends first; this holds where it was
        not asked to (a caller's own `args_schema`, an older bot)."""
        named = self.signature.parameters.keys() - self.kept_names
        added = approved.keys() - named
        if added and (self.var_keyword is None or added & self.kept_names):
            raise ApprovalError(
                None,
                "invalid_edit",
                f"the approved arguments of {self.tool_name} add {', '.join(sorted(added))}, "
                f"which it does not take; it was not run",
            )
        missing = [name for name in self.required if name not in approved]
        if missing:
            raise ApprovalError(
                None,
                "invalid_edit",
                f"the approved arguments of {self.tool_name} leave out {', '.join(missing)}, "
                f"which it needs; it was not run",
            )

    def request_fields(self, call: _Call) -> dict[str, Any]:
        """The submit fields of one call."""
        return {
            **self.fields,
            "tool_call_id": call.tool_call_id,
            "prompt": call.prompt,
            "preview": call.preview,
        }


class _RefusingDecorator(Protocol):
    """`requires_approval(..., on_reject="message")`: the result may be the refusal text."""

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]], /
    ) -> Callable[P, Coroutine[Any, Any, R | str]]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Callable[P, R | str]: ...


@overload
def requires_approval(
    client: ApprovalClient | SyncApprovalClient,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    tool_name: str | None = None,
    on_reject: Literal["raise"] = "raise",
    timeout: float | None = None,
    preview: PreviewOf | None = None,
    **fields: Unpack[GateFields],
) -> Callable[[F], F]: ...


@overload
def requires_approval(
    client: ApprovalClient | SyncApprovalClient,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    tool_name: str | None = None,
    on_reject: Literal["message"],
    timeout: float | None = None,
    preview: PreviewOf | None = None,
    **fields: Unpack[GateFields],
) -> _RefusingDecorator: ...


def requires_approval(
    client: ApprovalClient | SyncApprovalClient,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    prompt: str | None = None,
    tool_name: str | None = None,
    on_reject: OnReject = "raise",
    timeout: float | None = None,
    preview: PreviewOf | None = None,
    **fields: Unpack[GateFields],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated function only once a human approves, with the approved arguments.

    Async functions take either client; sync functions need a `SyncApprovalClient` (an
    `ApprovalClient` belongs to one event loop). The call's arguments, bound by signature,
    are the approval's `args` and fill `prompt`; a leading `self`/`cls` and a `tool_call_id`
    parameter are passed through, not reviewed. Without such a parameter, `tool_call_id=` may
    still be given at call time to resume an earlier approval. The approved arguments
    (`approvedArgs`) replace the call's whole: a parameter they leave out takes its default.
    The request carries an `args_schema` of the signature unless one is given (parameters
    without a default required, no unknown names unless the function takes `**kwargs`), so
    the bot refuses an edit or an API decision the function could not be called with;
    should one come anyway, `ApprovalError` (`invalid_edit`) is raised instead of running
    it. Anything but approval raises `ApprovalRejected`, or with `on_reject="message"`
    returns a refusal for the model. A request the bot refuses
    (`ApprovalInvalid`, a 409 `conflict`) or a record of another call (`ApprovalMismatch`)
    always raises: neither is a decision about this call, so the model is told nothing.

    `preview`, when given, is called with each call's arguments (exactly as the function
    gets them) and returns what the card shows of the call's effect, `{"kind": "diff" |
    "text" | "markdown", "body": str}`, or None for no preview.
    """
    if not isinstance(client, ApprovalClient | SyncApprovalClient):
        raise TypeError(
            f"requires_approval needs an ApprovalClient or a SyncApprovalClient, not {client!r}"
        )
    if on_reject not in ("raise", "message"):
        raise ValueError(f'on_reject must be "raise" or "message", not {on_reject!r}')
    unknown = set(fields) - GateFields.__annotations__.keys()
    if unknown:
        raise TypeError(f"requires_approval got unknown field(s): {', '.join(sorted(unknown))}")
    if preview is not None and not callable(preview):
        raise TypeError(
            f"requires_approval: preview must be a function of the call's arguments, not "
            f"{preview!r}"
        )
    gate_fields: dict[str, Any] = {**fields, "channel": channel, "priority": priority}

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        gate = _Gate(fn, tool_name, prompt, on_reject, gate_fields, preview)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                call = gate.prepare(args, kwargs)
                ask = _ask(client, gate, call, timeout)
                if isinstance(client, SyncApprovalClient):
                    approval = await asyncio.wrap_future(client._start(ask))
                else:
                    approval = await ask
                outcome = gate.resolve(call, approval)
                if isinstance(outcome, str):
                    return outcome
                return await fn(*outcome.args, **outcome.kwargs)

            return run_async

        if not isinstance(client, SyncApprovalClient):
            raise TypeError(
                f"{gate.tool_name} is a plain function: gate it with a SyncApprovalClient "
                "(an ApprovalClient serves async functions)"
            )
        sync_client = client

        @functools.wraps(fn)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            call = gate.prepare(args, kwargs)
            outcome = gate.resolve(call, sync_client._call(_ask(sync_client, gate, call, timeout)))
            if isinstance(outcome, str):
                return outcome
            return fn(*outcome.args, **outcome.kwargs)

        return run_sync

    return decorate


def _ask(
    client: ApprovalClient | SyncApprovalClient, gate: _Gate, call: _Call, timeout: float | None
) -> Coroutine[Any, Any, Approval]:
    """The request of one gated call, on the async client that serves `client`."""
    aio = client._client if isinstance(client, SyncApprovalClient) else client
    return aio._request(gate.tool_name, call.sent, timeout, gate.request_fields(call))
