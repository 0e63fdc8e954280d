"""The agent-facing client: ask a human before a tool runs, and wait for the answer.

Imports nothing server-side: aiohttp, pydantic, the standard library and the wire models.

    ApprovalError(status, code, message)   every error raised here on purpose
    ├── ApprovalUnavailable                the bot cannot be reached (network error, 502/503/504)
    ├── ApprovalTimeout                    still pending when the caller's timeout ran out
    └── ApprovalRejected                   `requires_approval`: the call was not approved

`request` always sends a `toolCallId`, so a resubmission resumes the same approval: its waits
reconnect after network errors and restarts of the bot (capped exponential backoff with jitter)
until the caller's timeout, and resubmit once when the bot no longer knows the approval.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import functools
import inspect
import json
import logging
import os
import random
import re
import string
import threading
import uuid
from collections import OrderedDict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, Protocol, Self, TypedDict, TypeVar, Unpack, overload
from urllib.parse import quote, urlparse

import aiohttp
from pydantic import BaseModel, ValidationError

from bot.models import (
    Action,
    Approval,
    Decision,
    DecisionKind,
    OnTimeout,
    Priority,
    Requester,
    Status,
)

__all__ = [
    "Action",
    "Approval",
    "ApprovalClient",
    "ApprovalError",
    "ApprovalRejected",
    "ApprovalTimeout",
    "ApprovalUnavailable",
    "Decision",
    "Priority",
    "Requester",
    "Status",
    "SyncApprovalClient",
    "requires_approval",
]

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:3000"
#: the longest wait the bot holds open; longer waits are repeated slices
WAIT_SLICE = 60.0
#: how long past a wait slice an answer may take before the connection counts as lost
WAIT_GRACE = 10.0
#: the time limit of every other call
HTTP_TIMEOUT = 30.0
BACKOFF_FIRST = 0.2
BACKOFF_CAP = 5.0

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

OnReject = Literal["raise", "message"]


# -- errors -----------------------------------------------------------------------------------


class ApprovalError(Exception):
    """A failure of the approval bot or of the way it was asked; `code` is the wire error code."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{code} (HTTP {status}): {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message


class ApprovalUnavailable(ApprovalError):
    """The bot could not be reached, or answered that it cannot serve right now."""


class ApprovalTimeout(ApprovalError):
    """Nobody decided before the caller's timeout; `.approval` is the still-pending record."""

    def __init__(self, approval: Approval, waited: float) -> None:
        super().__init__(
            None,
            "timeout",
            f"approval {approval.id} ({approval.tool_name}) is still pending after {waited:g}s",
        )
        self.approval = approval


class ApprovalRejected(ApprovalError):
    """The call was rejected, sent back with feedback, expired or cancelled; see `.decision`."""

    def __init__(self, decision: Decision, tool_name: str | None = None) -> None:
        what = tool_name or "the tool call"
        who = decision.decided_by_name or decision.decided_by
        if decision.action is Action.FEEDBACK:
            text = f"{what} was sent back by {who} with feedback"
        elif decision.action is Action.TIMEOUT:
            text = f"{what} was not approved in time"
        elif decision.action is Action.CANCEL:
            text = f"{what} was cancelled by {who}"
        else:
            text = f"{what} was rejected by {who}"
        super().__init__(
            None, "rejected", f"{text}: {decision.comment}" if decision.comment else text
        )
        self.decision = decision
        self.tool_name = tool_name
        #: the same text `on_reject="message"` returns, ready to hand back to the model
        self.refusal = _refusal(decision, tool_name or "unnamed")


def _refusal(decision: Decision, tool_name: str) -> str:
    if decision.action is Action.FEEDBACK:
        text = f"The user did not run this tool call ({tool_name}) and gave feedback instead"
    elif decision.action is Action.TIMEOUT:
        text = f"Nobody approved this tool call ({tool_name}) in time, so it did not run"
    elif decision.action is Action.CANCEL:
        text = f"This tool call ({tool_name}) was cancelled and did not run"
    else:
        text = f"The user rejected this tool call ({tool_name})"
    return f"{text}: {decision.comment}" if decision.comment else f"{text}."


# -- request fields ---------------------------------------------------------------------------


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


def _new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex}"


def _json_object(values: Mapping[str, Any], where: str) -> dict[str, Any]:
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


def _request_body(tool_name: str, args: Mapping[str, Any], fields: Mapping[str, Any]) -> bytes:
    unknown = sorted(set(fields) - _WIRE_NAMES.keys())
    if unknown:
        raise TypeError(
            f"unknown approval field(s): {', '.join(unknown)}; "
            f"expected some of {', '.join(_WIRE_NAMES)}"
        )
    if not isinstance(args, Mapping):
        raise TypeError(f"{tool_name}: args must be a mapping of names to JSON values")
    body: dict[str, Any] = {"toolName": tool_name, "args": _json_object(args, tool_name)}
    for name, value in fields.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        if value is not None:
            body[_WIRE_NAMES[name]] = value
    try:
        return json.dumps(body, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{tool_name}: the request fields are not plain JSON: {exc}") from exc


def _approval(body: Any) -> Approval:
    try:
        return Approval.model_validate(body)
    except ValidationError as exc:
        raise ApprovalError(
            None, "bad_response", f"the bot did not answer with an approval record: {exc}"
        ) from exc


def _decision(approval: Approval) -> Decision:
    if approval.decision is None:
        raise ApprovalError(
            None, "bad_response", f"approval {approval.id} is {approval.status}, with no decision"
        )
    return approval.decision


def _backoff(attempt: int) -> float:
    """Capped exponential backoff with jitter: half fixed, half random, never zero."""
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


# -- the async client -------------------------------------------------------------------------


class ApprovalClient:
    """Async client of the agent API; use it from one event loop."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        url = url or os.environ.get("APPROVAL_URL") or DEFAULT_URL
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"the approval bot URL must be http(s)://host[:port], not {url!r}")
        #: the bot's base URL
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("APPROVAL_API_TOKEN") or None
        #: how long `wait` and `request` wait by default; None waits until decided
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session this client opened; a session passed in stays open."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def submit(
        self, tool_name: str, args: Mapping[str, Any], **fields: Unpack[SubmitFields]
    ) -> Approval:
        """Ask for a decision without waiting; the same `tool_call_id` returns the same record."""
        body = _request_body(tool_name, args, fields)
        return _approval(await self._send("POST", "/v1/approvals", data=body))

    async def get(self, approval_id: str) -> Approval:
        """The approval record as it stands."""
        return _approval(await self._send("GET", _path(approval_id)))

    async def wait(self, approval_id: str, timeout: float | None = None) -> Approval:
        """The record once decided; `ApprovalTimeout` when `timeout` (or the client's) passes."""
        seconds = self.timeout if timeout is None else timeout
        return await self._wait(approval_id, _deadline(seconds), seconds)

    async def cancel(
        self, approval_id: str, reason: str | None = None, *, cancelled_by: str | None = None
    ) -> Approval:
        """Withdraw a pending request; the card says so. 409 when it was already decided."""
        body = {"reason": reason, "cancelledBy": cancelled_by}
        data = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
        return _approval(await self._send("POST", _path(approval_id) + "/cancel", data=data))

    async def list(
        self, status: Status | str | None = None, tool_name: str | None = None, limit: int = 100
    ) -> builtins.list[Approval]:
        """The newest `limit` approvals (at most 500), optionally of one status or tool."""
        items, _ = await self._page(status, tool_name, limit, None)
        return items

    async def pages(
        self,
        status: Status | str | None = None,
        tool_name: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[builtins.list[Approval]]:
        """Every matching approval, newest first, one page at a time."""
        cursor: str | None = None
        while True:
            items, cursor = await self._page(status, tool_name, page_size, cursor)
            yield items
            if cursor is None:
                return

    async def request(
        self,
        tool_name: str,
        args: Mapping[str, Any],
        *,
        timeout: float | None = None,
        **fields: Unpack[SubmitFields],
    ) -> Decision:
        """Submit and wait: the decision once made. A rejection is returned, not raised."""
        return _decision(await self._request(tool_name, args, timeout, fields))

    # -- internals ----------------------------------------------------------------------------

    async def _request(
        self,
        tool_name: str,
        args: Mapping[str, Any],
        timeout: float | None,
        fields: Mapping[str, Any],
    ) -> Approval:
        fields = {**fields, "tool_call_id": fields.get("tool_call_id") or _new_tool_call_id()}
        body = _request_body(tool_name, args, fields)
        seconds = self.timeout if timeout is None else timeout
        deadline = _deadline(seconds)

        async def submit() -> Approval:
            async def post() -> Any:
                limit = _within(HTTP_TIMEOUT, deadline)
                return await self._send("POST", "/v1/approvals", data=body, timeout=limit)

            return _approval(await self._retrying(post, deadline))

        approval = await submit()
        if not approval.is_pending:
            return approval
        return await self._wait(approval.id, deadline, seconds, resubmit=submit)

    async def _wait(
        self,
        approval_id: str,
        deadline: float | None,
        seconds: float | None,
        resubmit: Callable[[], Awaitable[Approval]] | None = None,
    ) -> Approval:
        loop = asyncio.get_running_loop()

        async def wait_once() -> Any:
            remaining = WAIT_SLICE if deadline is None else deadline - loop.time()
            piece = max(0.0, min(WAIT_SLICE, remaining))
            return await self._send(
                "GET",
                _path(approval_id) + "/wait",
                params={"timeout": f"{piece:.3f}"},
                timeout=piece + WAIT_GRACE,
            )

        while True:
            try:
                approval = _approval(await self._retrying(wait_once, deadline))
            except ApprovalError as exc:
                if exc.status != 404 or resubmit is None:
                    raise
                log.warning("the bot lost approval %s; submitting it again", approval_id)
                approval, resubmit = await resubmit(), None
                approval_id = approval.id
            if not approval.is_pending:
                return approval
            if deadline is not None and loop.time() >= deadline:
                raise ApprovalTimeout(approval, seconds or 0.0)

    async def _retrying(self, call: Callable[[], Awaitable[T]], deadline: float | None) -> T:
        """`call()`, repeated while the bot is unreachable, until `deadline` (loop time)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        while True:
            try:
                result = await call()
            except ApprovalUnavailable as exc:
                remaining = float("inf") if deadline is None else deadline - loop.time()
                if remaining <= 0:
                    waited = loop.time() - started
                    raise ApprovalUnavailable(
                        exc.status, exc.code, f"{exc.message} (gave up after {waited:.1f}s)"
                    ) from exc
                delay = min(_backoff(attempt), remaining)
                log.warning("%s; retrying in %.1fs", exc.message, delay)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            if attempt:
                log.info("reached the approval bot at %s again", self.url)
            return result

    async def _page(
        self, status: Status | str | None, tool_name: str | None, limit: int, cursor: str | None
    ) -> tuple[builtins.list[Approval], str | None]:
        params = {"limit": str(limit)}
        if status is not None:
            params["status"] = Status(status).value
        if tool_name is not None:
            params["toolName"] = tool_name
        if cursor is not None:
            params["cursor"] = cursor
        body = await self._send("GET", "/v1/approvals", params=params)
        if not isinstance(body, dict) or not isinstance(body.get("items"), builtins.list):
            raise ApprovalError(None, "bad_response", "the bot did not answer with a page")
        following = body.get("next")
        return [_approval(item) for item in body["items"]], following or None

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this ApprovalClient is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _send(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float = HTTP_TIMEOUT,
    ) -> Any:
        """One HTTP exchange; aiohttp's errors leave here translated into ours."""
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            async with self._http().request(
                method,
                self.url + path,
                data=data,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise ApprovalUnavailable(
                None, "unreachable", f"cannot reach the approval bot at {self.url}: {reason}"
            ) from exc
        except aiohttp.ClientError as exc:
            raise ApprovalError(None, "client_error", f"{method} {path} failed: {exc}") from exc
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if status < 400:
            return body
        error = body if isinstance(body, dict) else {}
        code = str(error.get("error") or f"http_{status}")
        message = str(error.get("message") or raw[:200].decode(errors="replace") or "no detail")
        kind = ApprovalUnavailable if status in (502, 503, 504) else ApprovalError
        raise kind(status, code, message)


def _path(approval_id: str) -> str:
    return "/v1/approvals/" + quote(approval_id, safe="")


def _deadline(seconds: float | None) -> float | None:
    return None if seconds is None else asyncio.get_running_loop().time() + seconds


def _within(limit: float, deadline: float | None) -> float:
    """A per-call time limit that ends near the deadline (but leaves a call a second to try)."""
    if deadline is None:
        return limit
    return max(1.0, min(limit, deadline - asyncio.get_running_loop().time()))


# -- the blocking client ----------------------------------------------------------------------


class SyncApprovalClient:
    """Blocking client: an `ApprovalClient` on a private event loop in a daemon thread.

    Safe from plain scripts, from many threads at once, and from worker threads of a program
    whose own event loop runs elsewhere.
    """

    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float | None = None
    ) -> None:
        self._client = ApprovalClient(url, token, timeout=timeout)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="approval-client", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def url(self) -> str:
        """The bot's base URL."""
        return self._client.url

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Cancel what is still running, close the session and stop the private loop."""
        self._check_thread()
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def submit(
        self, tool_name: str, args: Mapping[str, Any], **fields: Unpack[SubmitFields]
    ) -> Approval:
        """Ask for a decision without waiting; the same `tool_call_id` returns the same record."""
        return self._call(self._client.submit(tool_name, args, **fields))

    def get(self, approval_id: str) -> Approval:
        """The approval record as it stands."""
        return self._call(self._client.get(approval_id))

    def wait(self, approval_id: str, timeout: float | None = None) -> Approval:
        """The record once decided; `ApprovalTimeout` when `timeout` (or the client's) passes."""
        return self._call(self._client.wait(approval_id, timeout))

    def cancel(
        self, approval_id: str, reason: str | None = None, *, cancelled_by: str | None = None
    ) -> Approval:
        """Withdraw a pending request; the card says so. 409 when it was already decided."""
        return self._call(self._client.cancel(approval_id, reason, cancelled_by=cancelled_by))

    def list(
        self, status: Status | str | None = None, tool_name: str | None = None, limit: int = 100
    ) -> builtins.list[Approval]:
        """The newest `limit` approvals (at most 500), optionally of one status or tool."""
        return self._call(self._client.list(status, tool_name, limit))

    def pages(
        self,
        status: Status | str | None = None,
        tool_name: str | None = None,
        page_size: int = 100,
    ) -> Iterator[builtins.list[Approval]]:
        """Every matching approval, newest first, one page at a time."""
        cursor: str | None = None
        while True:
            items, cursor = self._call(self._client._page(status, tool_name, page_size, cursor))
            yield items
            if cursor is None:
                return

    def request(
        self,
        tool_name: str,
        args: Mapping[str, Any],
        *,
        timeout: float | None = None,
        **fields: Unpack[SubmitFields],
    ) -> Decision:
        """Submit and wait: the decision once made. A rejection is returned, not raised."""
        return self._call(self._client.request(tool_name, args, timeout=timeout, **fields))

    # -- internals ----------------------------------------------------------------------------

    def _start(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._closed:
            coro.close()
            raise RuntimeError("this SyncApprovalClient is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            self._check_thread()
        except RuntimeError:
            coro.close()
            raise
        future = self._start(coro)
        try:
            return future.result()
        finally:
            future.cancel()  # a no-op once done; stops the work when the caller was interrupted

    def _check_thread(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a SyncApprovalClient cannot be called from its own event loop")

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self._client.close()


# -- the decorator ----------------------------------------------------------------------------

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


class _Gate:
    """What `requires_approval` knows about one function: its signature and the card's fields."""

    def __init__(
        self,
        fn: Callable[..., Any],
        tool_name: str | None,
        prompt: str | None,
        on_reject: OnReject,
        fields: dict[str, Any],
    ) -> None:
        self.fn = fn
        self.signature = inspect.signature(fn)
        self.tool_name = tool_name or fn.__name__
        self.prompt = prompt
        self.on_reject = on_reject
        self.fields = fields
        params = builtins.list(self.signature.parameters.values())
        self.kept_names = {_TOOL_CALL_ID} & self.signature.parameters.keys()
        if params and params[0].name in _PASS_THROUGH_FIRST:
            self.kept_names.add(params[0].name)
        self.var_keyword = next(
            (p.name for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None
        )
        if prompt is not None:
            self._check_prompt(prompt)

    def _check_prompt(self, prompt: str) -> None:
        """Fail at decoration time when the prompt names what no call can supply."""
        try:
            parsed = builtins.list(string.Formatter().parse(prompt))
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
                values[name] = builtins.list(value)
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
            sent=_json_object(values, self.tool_name),
            kept=kept,
            tool_call_id=str(given_id) if given_id else _new_tool_call_id(),
            prompt=prompt,
        )

    def resolve(self, call: _Call, approval: Approval) -> inspect.BoundArguments | str:
        """The arguments to run with, or the refusal text; raises `ApprovalRejected`."""
        decision = _decision(approval)
        if not decision.approved:
            if self.on_reject == "message":
                return _refusal(decision, self.tool_name)
            raise ApprovalRejected(decision, self.tool_name)
        approved = call.sent if decision.approved_args is None else decision.approved_args
        named = self.signature.parameters.keys() - self.kept_names
        added = approved.keys() - call.sent.keys()
        if added and (self.var_keyword is None or added & self.kept_names):
            raise ApprovalError(
                None,
                "invalid_edit",
                f"the approved arguments of {self.tool_name} add {', '.join(sorted(added))}, "
                f"which it does not take; it was not run",
            )

        def pick(key: str) -> Any:
            if key not in approved or approved[key] == call.sent.get(key):
                return call.values[key]  # unedited: the original object, not its JSON copy
            return approved[key]

        arguments: OrderedDict[str, Any] = OrderedDict()
        for name, param in self.signature.parameters.items():
            if name in self.kept_names:
                arguments[name] = call.kept[name]
            elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                items = pick(name)
                if not isinstance(items, builtins.list | tuple):
                    raise ApprovalError(
                        None, "invalid_edit", f"{self.tool_name}: {name} must stay a list"
                    )
                arguments[name] = tuple(items)
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                extra = (call.values.keys() - named) | added
                arguments[name] = {key: pick(key) for key in sorted(extra)}
            else:
                arguments[name] = pick(name)
        return inspect.BoundArguments(self.signature, arguments)

    def request_fields(self, call: _Call) -> dict[str, Any]:
        """The submit fields of one call."""
        return {**self.fields, "tool_call_id": call.tool_call_id, "prompt": call.prompt}


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
    **fields: Unpack[GateFields],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated function only once a human approves, with the approved arguments.

    Async functions take either client; sync functions need a `SyncApprovalClient` (an
    `ApprovalClient` belongs to one event loop). The call's arguments, bound by signature,
    are the approval's `args` and fill `prompt`; a leading `self`/`cls` and a `tool_call_id`
    parameter are passed through, not reviewed. Without such a parameter, `tool_call_id=` may
    still be given at call time to resume an earlier approval. Edited arguments replace the
    originals; an edit adding arguments the function does not take raises `ApprovalError`
    (`invalid_edit`) instead of running it. Anything but approval raises `ApprovalRejected`,
    or with `on_reject="message"` returns a refusal for the model.
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
    gate_fields: dict[str, Any] = {**fields, "channel": channel, "priority": priority}

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        gate = _Gate(fn, tool_name, prompt, on_reject, gate_fields)

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
    aio = client._client if isinstance(client, SyncApprovalClient) else client
    return aio._request(gate.tool_name, call.sent, timeout, gate.request_fields(call))
