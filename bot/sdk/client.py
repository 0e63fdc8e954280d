"""The async client: one HTTP exchange per call, retried with backoff while the bot is away.

`request` always sends a `toolCallId`, so a resubmission resumes the same approval: its waits
reconnect after network errors and restarts of the bot (capped exponential backoff with jitter)
until the caller's timeout, and resubmit once when the bot no longer knows the approval.
Every record answered about a call is checked to be of that call (`ToolCall.check`): a
decision about another call raises `ApprovalMismatch`, never reaches the caller.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Self, TypeVar, Unpack
from urllib.parse import quote, urlparse

import aiohttp

from bot.models import Approval, Decision, Status
from bot.sdk.errors import ApprovalError, ApprovalInvalid, ApprovalTimeout, ApprovalUnavailable
from bot.sdk.wire import (
    SubmitFields,
    ToolCall,
    decision_of,
    new_tool_call_id,
    parse_approval,
    request_body,
)

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_FIRST",
    "DEFAULT_URL",
    "HTTP_TIMEOUT",
    "WAIT_GRACE",
    "WAIT_SLICE",
    "ApprovalClient",
]

#: the package's logger, as before the split, so agents configure one name
log = logging.getLogger("bot.sdk")

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


def _backoff(attempt: int) -> float:
    """Capped exponential backoff with jitter: half fixed, half random, never zero."""
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


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
        body = request_body(tool_name, args, fields)
        call = ToolCall.sent(tool_name, args, fields.get("tool_call_id"))
        return await self._submit(call, body, HTTP_TIMEOUT)

    async def get(self, approval_id: str) -> Approval:
        """The approval record as it stands."""
        return parse_approval(await self._send("GET", _path(approval_id)))

    async def wait(self, approval: str | Approval, timeout: float | None = None) -> Approval:
        """The record once decided; `ApprovalTimeout` when `timeout` (or the client's) passes.

        Given the record `submit` answered rather than its id, every answer must be a record of
        that same call (`ApprovalMismatch` otherwise), as in `request`.
        """
        seconds = self.timeout if timeout is None else timeout
        if isinstance(approval, str):
            return await self._wait(approval, None, _deadline(seconds), seconds)
        return await self._wait(approval.id, ToolCall.of(approval), _deadline(seconds), seconds)

    async def cancel(
        self, approval_id: str, reason: str | None = None, *, cancelled_by: str | None = None
    ) -> Approval:
        """Withdraw a pending request; the card says so. 409 when it was already decided."""
        body = {"reason": reason, "cancelledBy": cancelled_by}
        data = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
        return parse_approval(await self._send("POST", _path(approval_id) + "/cancel", data=data))

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
        return decision_of(await self._request(tool_name, args, timeout, fields))

    # -- internals ----------------------------------------------------------------------------

    async def _request(
        self,
        tool_name: str,
        args: Mapping[str, Any],
        timeout: float | None,
        fields: Mapping[str, Any],
    ) -> Approval:
        fields = {**fields, "tool_call_id": fields.get("tool_call_id") or new_tool_call_id()}
        body = request_body(tool_name, args, fields)
        call = ToolCall.sent(tool_name, args, fields["tool_call_id"])
        seconds = self.timeout if timeout is None else timeout
        deadline = _deadline(seconds)

        async def submit() -> Approval:
            return await self._retrying(
                lambda: self._submit(call, body, _within(HTTP_TIMEOUT, deadline)), deadline
            )

        approval = await submit()
        if not approval.is_pending:
            return approval
        return await self._wait(approval.id, call, deadline, seconds, resubmit=submit)

    async def _submit(self, call: ToolCall, body: bytes, timeout: float) -> Approval:
        """`POST /v1/approvals`: the record of `call`, checked; a 409 says the id is taken."""
        try:
            answer = await self._send("POST", "/v1/approvals", data=body, timeout=timeout)
        except ApprovalError as exc:
            if exc.status != 409:
                raise
            which = f" {call.tool_call_id!r}" if call.tool_call_id else ""
            message = f"toolCallId{which} was already used for another call: {exc.message}"
            raise ApprovalError(exc.status, exc.code, message) from exc
        return call.check(parse_approval(answer))

    async def _wait(
        self,
        approval_id: str,
        call: ToolCall | None,
        deadline: float | None,
        seconds: float | None,
        resubmit: Callable[[], Awaitable[Approval]] | None = None,
    ) -> Approval:
        """Wait slices until decided; with `call`, every answer is checked to be of it."""
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
                approval = parse_approval(await self._retrying(wait_once, deadline))
            except ApprovalError as exc:
                if exc.status != 404 or resubmit is None:
                    raise
                log.warning("the bot lost approval %s; submitting it again", approval_id)
                approval, resubmit = await resubmit(), None
                approval_id = approval.id
            if call is not None:
                call.check(approval)
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
        return [parse_approval(item) for item in body["items"]], following or None

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
        if status == 422:
            field = error.get("path")
            raise ApprovalInvalid(status, code, message, str(field) if field else None)
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
