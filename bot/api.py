"""The agent API: aiohttp routes under `/v1` that parse, call the service and answer JSON.

Every failure is `{"error", "message"}` with a 4xx status; bad input never yields a 500.
Bodies are read within the edge's deadline (`bot.edge`); without a token (`--insecure-no-auth`)
the API answers only this machine's programs, not web pages (see `_open_request`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from bot import claude_code
from bot.edge import (
    EDGE,
    BrokenBody,
    ClientGone,
    Parked,
    ParkedConnection,
    SlowBody,
    WholeHandler,
    WholeRequest,
    answer_and_close,
    hung_up,
    read_body,
    refuse,
)
from bot.errors import (
    AlreadyDecided,
    BadRequest,
    BotError,
    Conflict,
    Forbidden,
    Invalid,
    PayloadTooLarge,
    Unauthorized,
)
from bot.events import Broadcast, event_body
from bot.models import Approval, ApprovalRequest, CancelInput, DecisionInput, Priority, Status
from bot.sdk.wire import request_body
from bot.service import ApprovalService, Wait

__all__ = [
    "MAX_BODY",
    "ApiSettings",
    "HealthCheck",
    "add_api_routes",
    "answering_whole",
    "error_middleware",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BODY = 1024 * 1024
MAX_WAIT = 60.0
#: bodies larger than this are parsed and validated off the event loop
PARSE_ON_LOOP_BYTES = 64 * 1024
#: `/healthz` writes a row; a store that cannot within this many seconds is not healthy
HEALTH_WRITE_TIMEOUT = 1.0
DEFAULT_WAIT = 30.0
#: how long `POST /v1/hooks/claude-code` waits by default: within the time Claude Code gives an
#: `http` hook when its `timeout` is not set; `?wait=` up to `MAX_HOOK_WAIT` for longer
DEFAULT_HOOK_WAIT = 25.0
MAX_HOOK_WAIT = 3600.0
MAX_LIMIT = 500
SSE_HEARTBEAT = 15.0

#: A health probe for one dependency: returns (name, ok, detail).
HealthCheck = Callable[[], Awaitable[tuple[str, bool, str]]]

_SERVICE: web.AppKey[ApprovalService] = web.AppKey("service", ApprovalService)
_SETTINGS: web.AppKey[ApiSettings] = web.AppKey("api_settings")


@dataclass
class ApiSettings:
    """Tokens and hooks the API needs; `api_token=None` means open (`--insecure-no-auth`)."""

    api_token: str | None
    admin_token: str | None = None
    broadcast: Broadcast = field(default_factory=Broadcast)
    health_checks: list[HealthCheck] = field(default_factory=list)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every error into `{"error", "message"}`; an unexpected one is logged, not leaked."""
    try:
        return await handler(request)
    except (SlowBody, BrokenBody) as exc:  # the rest of the body is not worth waiting for
        return await answer_and_close(request, web.json_response(exc.to_wire(), status=exc.status))
    except BotError as exc:
        return refuse(request, _failure(exc))
    except web.HTTPException as exc:
        if exc.status < 400 or request.path.startswith("/slack/"):
            raise
        code = _HTTP_CODES.get(exc.status, "error")
        return refuse(
            request, _error(exc.status, code, f"{request.method} {request.path}: {exc.reason}")
        )
    except asyncio.CancelledError:
        raise
    except ClientGone:
        return web.Response(status=499)  # the client left mid-request: nobody reads this
    except Exception as exc:
        if isinstance(exc, ConnectionResetError) and hung_up(request):
            return web.Response(status=499)
        return _failure(exc, f"on {request.method} {request.path}")


def _failure(exc: BaseException, where: str = "answering a wait") -> web.Response:
    """The answer to an error: its own for the bot's errors; any other is logged, not leaked."""
    if isinstance(exc, BotError):
        return web.json_response(exc.to_wire(), status=exc.status)
    log.error("unexpected error %s", where, exc_info=exc)
    return _error(500, "internal", "the bot failed unexpectedly; see its log")


def _token(request: web.Request | WholeRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _same(given: str | None, expected: str | None) -> bool:
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _authorize(request: web.Request | WholeRequest, *, admin: bool = False) -> None:
    settings = request.app[_SETTINGS]
    if settings.api_token is None:
        assert isinstance(request, web.Request), "open, the API takes no request whole"
        _open_request(request)
    token = _token(request)
    is_admin = _same(token, settings.admin_token)
    if admin:
        if is_admin:
            return
        if settings.admin_token is None:
            raise Forbidden("deciding over the API is disabled: set APPROVAL_ADMIN_TOKEN")
        if _same(token, settings.api_token):
            raise Forbidden("the agent token cannot decide; use the admin token")
        raise Unauthorized("send the admin token as 'Authorization: Bearer <token>'")
    if settings.api_token is None or is_admin or _same(token, settings.api_token):
        return
    raise Unauthorized("send 'Authorization: Bearer <APPROVAL_API_TOKEN>'")


#: host names that always mean this machine
LOCAL_NAMES = frozenset({"localhost", "localhost."})


def _open_request(request: web.Request) -> None:
    """Without a token the API is open to whatever can reach it, so it answers only programs
    on this machine, not web pages: a page of another site could otherwise post to it (its
    `Origin` or `Sec-Fetch-Site` says so; a JSON post needs CORS, which is not offered), or
    read from it by pointing a name of its own at 127.0.0.1 (DNS rebinding: its `Host` says
    so). `Host` must be localhost or an IP address of this machine's."""
    host = request.headers.get("Host")
    if host is not None and not _local_host(request, host):
        raise Forbidden(
            "without a token the API answers only on localhost or its IP address, "
            f"not {host[:100]!r}"
        )
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in (
        f"http://{host}".lower(),
        f"https://{host}".lower(),
    ):
        raise Forbidden(f"without a token the API does not answer pages of {origin[:100]!r}")
    if request.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin"):
        raise Forbidden("without a token the API does not answer pages of other sites")
    if request.body_exists and request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(reason="send the body as Content-Type: application/json")


def _local_host(request: web.Request, authority: str) -> bool:
    """`Host` names this machine: localhost, a loopback address, or the address the
    connection arrived at (any port: the bot may be reached through a port forward)."""
    if authority.startswith("["):
        name, bracket, port = authority[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return False
        port = port[1:]
    else:
        name, colon, port = authority.partition(":")
    if (port or colon) and not (port.isascii() and port.isdigit()):
        return False
    if name.lower() in LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
        if address.is_loopback:
            return True
        local = request.transport.get_extra_info("sockname") if request.transport else None
        return local is not None and address == ipaddress.ip_address(local[0])
    except ValueError:
        return False


async def _body(request: web.Request, model: type[BaseModel], *, optional: bool = False) -> Any:
    try:
        raw = await read_body(request)  # the app's client_max_size is MAX_BODY
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body is over the limit of {MAX_BODY} bytes") from None
    return await _decoded(raw, model, optional=optional)


async def _decoded(raw: bytes, model: type[BaseModel], *, optional: bool = False) -> Any:
    """The body as `model`, or the 4xx that says what is wrong with it."""
    if not raw.strip():
        if optional:
            return model()
        raise BadRequest("the body is empty; send a JSON object")
    if len(raw) > PARSE_ON_LOOP_BYTES:
        # Parsing and validating a large body takes tens of ms: a worker thread holds the
        # interpreter for 5 ms at a time, so the loop keeps answering meanwhile.
        return await asyncio.to_thread(_parse, raw, model)
    return _parse(raw, model)


def _parse(raw: bytes, model: type[BaseModel]) -> Any:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise BadRequest("the body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: ValidationError) -> Invalid:
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "missing":
        message = "required"
    return Invalid(message, path=path)


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {raw!r}") from None
    if value < low:
        raise BadRequest(f"{name} must be at least {low}")
    return min(value, high)


def _float_query(request: web.Request, name: str, default: float, high: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise BadRequest(f"{name} must be between 0 and {high:g} seconds")
    return min(value, high)


# -- routes -----------------------------------------------------------------------------------


def _record(approval: Approval, status: int = 200) -> web.Response:
    """An approval as the answer (what `web.json_response(approval.to_wire())` sends)."""
    return web.Response(text=approval.wire_json(), status=status, content_type="application/json")


async def submit(request: web.Request) -> web.Response:
    _authorize(request)
    body: ApprovalRequest = await _body(request, ApprovalRequest)
    return await _submitted(request.app[_SERVICE], body)


def answering_whole(handler: WholeHandler) -> WholeHandler:
    """`handler` for a route of `Edge.whole`, its errors answered as `error_middleware`
    answers them: the bot's own as theirs, any other logged and answered 500."""

    async def answer(request: WholeRequest) -> web.Response:
        try:
            return await handler(request)
        except Exception as exc:
            return _failure(exc, f"on {request.method} {request.path}")

    return answer


@answering_whole
async def submit_whole(request: WholeRequest) -> web.Response:
    """`submit`, for a submission the edge received whole (`bot.edge.read_whole`): the same
    checks and answers, errors included, without aiohttp's handling of the request."""
    _authorize(request)
    body: ApprovalRequest = await _decoded(request.body, ApprovalRequest)
    return await _submitted(request.app[_SERVICE], body)


async def _submitted(service: ApprovalService, body: ApprovalRequest) -> web.Response:
    approval, created = await service.submit(body)
    return _record(approval, 201 if created else 200)


async def list_approvals(request: web.Request) -> web.Response:
    _authorize(request)
    status_raw = request.query.get("status")
    try:
        status = Status(status_raw) if status_raw else None
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise BadRequest(f"status must be one of {allowed}, not {status_raw!r}") from None
    page = await request.app[_SERVICE].find(
        status=status,
        tool_name=request.query.get("toolName") or None,
        limit=_int_query(request, "limit", 100, 1, MAX_LIMIT),
        cursor=request.query.get("cursor") or None,
    )
    return web.json_response({"items": [a.to_wire() for a in page.items], "next": page.next})


async def get_approval(request: web.Request) -> web.Response:
    _authorize(request)
    approval = await request.app[_SERVICE].get(request.match_info["id"])
    return _record(approval)


async def wait_approval(request: web.Request) -> web.StreamResponse:
    """Answered once the approval is decided or `timeout` has passed. While it waits, its
    connection is parked outside aiohttp (`Edge.park`) where the server allows it."""
    _authorize(request)
    timeout = _float_query(request, "timeout", DEFAULT_WAIT, MAX_WAIT)
    service = request.app[_SERVICE]
    approval_id = request.match_info["id"]
    edge = request.app.get(EDGE)
    if edge is None or edge.server is None:  # served by another runner: wait in the handler
        approval = await service.wait(approval_id, timeout, _hangup(request))
        if approval is None:
            return web.Response(status=499)  # the agent hung up: its wait is not counted
        return _record(approval)
    wait = await service.watch(approval_id, timeout)
    if isinstance(wait, Approval):
        return _record(wait)
    parked = edge.park(request, wait.cancel)
    if parked is None:  # the agent hung up while the record was read
        wait.cancel()
        return web.Response(status=499)
    wait.add_done_callback(partial(_answer_parked, service, approval_id, parked))
    return Parked()


def _answer_parked(
    service: ApprovalService, approval_id: str, parked: ParkedConnection, wait: Wait
) -> None:
    """A parked wait has ended: answer with the decided record, the pending one after the
    timeout, or the error; nothing when the agent hung up (the wait is cancelled)."""
    if wait.cancelled():
        return
    if (error := wait.exception()) is not None:
        parked.answer(_failure(error))
        return
    if (decided := wait.result()) is not None:
        parked.answer(_record(decided))
        return
    _spawn(_answer_pending(service, approval_id, parked))


#: what answers a parked wait after its timeout, until it has
_answering: set[asyncio.Task[None]] = set()


def _spawn(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _answering.add(task)
    task.add_done_callback(_answering.discard)


async def _answer_pending(
    service: ApprovalService, approval_id: str, parked: ParkedConnection
) -> None:
    try:
        approval = await service.get(approval_id)
    except Exception as exc:
        parked.answer(_failure(exc))
    else:
        parked.answer(_record(approval))


def _hangup(request: web.Request) -> asyncio.Future[None] | None:
    """Done once the client hangs up. Handler cancellation is off (a decision must not stop
    halfway), so a long poll ends by this instead."""
    edge = request.app.get(EDGE)
    return edge.hangup(request) if edge is not None else None


async def decide(request: web.Request) -> web.Response:
    _authorize(request, admin=True)
    body: DecisionInput = await _body(request, DecisionInput)
    approval = await request.app[_SERVICE].decide(
        request.match_info["id"],
        approved=body.approved,
        decided_by=body.decided_by,
        decided_by_name=body.decided_by,
        comment=body.comment,
        approved_args=body.approved_args if body.approved else None,
    )
    return _record(approval)


async def cancel(request: web.Request) -> web.Response:
    _authorize(request)
    body: CancelInput = await _body(request, CancelInput, optional=True)
    approval = await request.app[_SERVICE].cancel(
        request.match_info["id"], reason=body.reason, cancelled_by=body.cancelled_by
    )
    return _record(approval)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events from the audit table: resumable, nothing lost between reconnects."""
    _authorize(request)
    service = request.app[_SERVICE]
    broadcast = request.app[_SETTINGS].broadcast
    raw = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
    if raw is not None:
        # ASCII digits only ("²" is a digit to str.isdigit) and within a 64-bit row id
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) < 2**63):
            raise BadRequest(f"Last-Event-ID must be an event id, not {raw[:40]!r}")
        last = int(raw)
    else:
        last = await service.store.last_event_id()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 1000\n\n")
    with contextlib.suppress(ConnectionResetError):
        while True:
            armed = broadcast.armed()
            batch = await service.store.events_since(last, states_only=True)
            for event in batch:
                status = event.name
                await response.write(
                    b"id: %d\nevent: %s\ndata: %s\n\n"
                    % (event.id, status.encode(), event_body(event))
                )
                last = event.id
            if batch:
                continue
            if broadcast.closed:
                break
            if not await broadcast.wait(SSE_HEARTBEAT, armed):
                await response.write(b": keep-alive\n\n")
    return response


async def claude_code_hook(request: web.Request) -> web.StreamResponse:
    """Claude Code's `http` PreToolUse hook: ask, wait up to `?wait=` seconds, allow or deny.

    The body is the hook input (`bot.claude_code`); `?channel=` and `?priority=` go on the card.
    A request the bot refuses is a deny, as is no decision in time (the card is withdrawn
    then; `?failOpen=true` allows instead). So is a missing or wrong token and input that is no
    `PreToolUse` hook input: Claude Code runs the call when an `http` hook answers anything but
    2xx, so this hook answers every mistake 200 with a deny that says what is wrong.
    """
    try:
        return await _claude_code_hook(request)
    except (Unauthorized, BadRequest, PayloadTooLarge) as exc:
        log.warning("Claude Code hook denied: %s", exc.message)
        return web.json_response(claude_code.refused(exc.message))


async def _claude_code_hook(request: web.Request) -> web.StreamResponse:
    _authorize(request)
    wait = _float_query(request, "wait", DEFAULT_HOOK_WAIT, MAX_HOOK_WAIT)
    priority_raw = request.query.get("priority")
    try:
        priority = Priority(priority_raw) if priority_raw else None
    except ValueError:
        allowed = ", ".join(p.value for p in Priority)
        raise BadRequest(f"priority must be one of {allowed}, not {priority_raw!r}") from None
    fail_open = request.query.get("failOpen", "false").lower() in ("1", "true", "yes")
    try:
        hook = claude_code.read_hook_input(await read_body(request))
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body is over the limit of {MAX_BODY} bytes") from None
    except claude_code.HookInputError as exc:
        raise BadRequest(str(exc)) from None
    fields = hook.request_fields(channel=request.query.get("channel") or None, priority=priority)
    service = request.app[_SERVICE]
    try:
        wire = request_body(hook.tool_name, hook.tool_input, fields)  # as the SDK sends it
        if len(wire) > PARSE_ON_LOOP_BYTES:
            asked = await asyncio.to_thread(_parse, wire, ApprovalRequest)
        else:
            asked = _parse(wire, ApprovalRequest)
        approval, _ = await service.submit(asked)
    except (Invalid, Conflict) as exc:
        return web.json_response(claude_code.refused(exc.message))
    if approval.is_pending:
        decided = await service.wait(approval.id, wait, _hangup(request))
        if decided is None:  # Claude Code gave up (its `timeout`): nobody reads an answer
            await _withdraw(service, approval.id, "Claude Code stopped waiting")
            return web.Response(status=499)
        if decided.is_pending:
            decided = await _withdraw(service, approval.id, f"no decision within {wait:g}s")
            if decided is None:
                return web.json_response(claude_code.undecided(approval, wait, fail_open=fail_open))
        approval = decided
    return web.json_response(claude_code.answer(approval))


async def _withdraw(service: ApprovalService, approval_id: str, reason: str) -> Approval | None:
    """Cancel an approval its hook stopped waiting for: None once withdrawn, else the decision
    that came first."""
    try:
        await service.cancel(approval_id, reason=reason, cancelled_by=claude_code.AGENT)
    except AlreadyDecided as exc:
        return exc.approval
    return None


async def healthz(request: web.Request) -> web.Response:
    service = request.app[_SERVICE]
    checks: dict[str, str] = {}
    ok = True
    try:
        await service.store.check_writable(HEALTH_WRITE_TIMEOUT)
        checks["store"] = "ok"
    except BotError as exc:
        ok, checks["store"] = False, exc.message
    for check in request.app[_SETTINGS].health_checks:
        name, passed, detail = await check()
        ok = ok and passed
        checks[name] = detail
    backlog = {topic: await service.store.outbox_pending(topic) for topic in service.topics}
    body = {"ok": ok, "checks": checks, "waiting": service.waiting, "backlog": backlog}
    return web.json_response(body, status=200 if ok else 503)


def add_api_routes(app: web.Application, service: ApprovalService, settings: ApiSettings) -> None:
    """Mount `/v1/*` and `/healthz` on `app` (which must use `error_middleware`)."""
    app[_SERVICE] = service
    app[_SETTINGS] = settings
    edge = app.get(EDGE)
    if edge is not None and settings.api_token is not None:  # open, it checks more: aiohttp's
        edge.whole["POST", "/v1/approvals"] = submit_whole
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/v1/approvals", submit)
    app.router.add_get("/v1/approvals", list_approvals)
    app.router.add_get("/v1/approvals/{id}", get_approval)
    app.router.add_get("/v1/approvals/{id}/wait", wait_approval)
    app.router.add_post("/v1/approvals/{id}/decision", decide)
    app.router.add_post("/v1/approvals/{id}/cancel", cancel)
    app.router.add_get("/v1/events", events)
    app.router.add_post("/v1/hooks/claude-code", claude_code_hook)
