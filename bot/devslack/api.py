"""The emulated Slack Web API as an aiohttp application.

Routes: ``/{method}`` and ``/api/{method}`` (any HTTP verb), ``/response/{id}`` for the
``response_url`` links handed out with interactions, and ``/link/`` for Socket Mode
websockets (see ``socket_mode.py``; ``apps.connections.open`` hands out their URLs).
Served standalone, point ``AsyncWebClient(base_url="http://127.0.0.1:PORT/api/")`` at it;
mounted with ``app.add_subapp("/slack/api", create_slack_api(ws))``, use ``…/slack/api/`` and
set ``ws.api_url`` to that URL so response_url links point back at it.

Each call passes, in order: token check (the bot token when ``bot_token`` is set, and not
while ``Workspace.refuse_token`` refuses it; the app token for ``apps.connections.open``, and
app tokens are refused elsewhere), the scope check (``Workspace.scopes``, ``missing_scope``;
see ``scopes.py``), a queued fault (``Workspace.fail_next``; ``Workspace.answer_late`` does
the work and answers late), the rate limits (``Workspace.rate_limits``, per tier and per
channel for ``chat.postMessage``; see ``tiers.py``), then the method itself. Every call is
recorded in ``Workspace.calls``, refused or not. Answers to the bot token carry
``X-OAuth-Scopes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from bot.devslack.errors import ApiFailure
from bot.devslack.limits import truncate_message_text
from bot.devslack.methods import METHODS, CallContext, check_blocks
from bot.devslack.model import ApiCall, ResponseTarget
from bot.devslack.scopes import check_scope
from bot.devslack.socket_mode import (
    CONNECTIONS_OPEN,
    LINK_PATH,
    SOCKET_MODE_KEY,
    SocketModeGateway,
)
from bot.devslack.workspace import Workspace

__all__ = ["SOCKET_MODE_KEY", "WORKSPACE_KEY", "create_slack_api"]

JSON = dict[str, Any]

#: the workspace an application serves: ``app[WORKSPACE_KEY]``
WORKSPACE_KEY = web.AppKey("devslack_workspace", Workspace)

#: a response_url answers these with HTTP 404: expired (or never issued), or used five times
_GONE_URL_ERRORS = frozenset({"expired_url", "used_url"})

#: parameters that arrive as JSON strings in form-encoded or query-string calls
_JSON_PARAMS = frozenset({"blocks", "attachments", "view", "metadata"})


class _Answer:
    def __init__(
        self,
        body: JSON,
        status: int = 200,
        headers: dict[str, str] | None = None,
        faulted: bool = False,
    ) -> None:
        self.body = body
        self.status = status
        self.headers = headers or {}
        self.faulted = faulted


async def _read_params(request: web.Request) -> tuple[JSON, str | None]:
    """Query string, then JSON or form body; the token from ``Authorization`` or ``token``."""
    params: JSON = dict(request.query)
    if request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                raise ApiFailure("invalid_json") from None
            if not isinstance(body, dict):
                raise ApiFailure("invalid_json")
            params.update(body)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    token = params.pop("token", None)
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        token = authorization.removeprefix("Bearer ").strip()
    for name in _JSON_PARAMS & params.keys():
        value = params[name]
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                params[name] = json.loads(value)
            except json.JSONDecodeError:
                raise ApiFailure("invalid_arguments", errors=[f"{name}: invalid JSON"]) from None
    return params, token if isinstance(token, str) else None


class _SlackApi:
    def __init__(
        self, workspace: Workspace, bot_token: str | None, socket_mode: SocketModeGateway
    ) -> None:
        self.ws = workspace
        self.bot_token = bot_token
        self.socket_mode = socket_mode
        self.methods = {**METHODS, CONNECTIONS_OPEN: socket_mode.connections_open}

    async def handle_method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: JSON = {}
        token: str | None = None
        try:
            params, token = await _read_params(request)
            answer = await self._answer(method, params, token, request)
        except ApiFailure as failure:
            answer = _Answer(failure.to_response())
        if method != CONNECTIONS_OPEN:
            answer.headers.setdefault("X-OAuth-Scopes", ",".join(sorted(self.ws.scopes)))
        self.ws.record_call(
            ApiCall(
                method=method,
                params=params,
                response=answer.body,
                status=answer.status,
                at=self.ws.clock(),
                token=token,
                faulted=answer.faulted,
            )
        )
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)

    async def _answer(
        self, method: str, params: JSON, token: str | None, request: web.Request
    ) -> _Answer:
        handler = self.methods.get(method)
        if handler is None:
            raise ApiFailure("unknown_method")
        self._check_token(method, token)
        if method != CONNECTIONS_OPEN:
            check_scope(self.ws, method, params, self.ws.scopes)
        fault = self.ws.faults.take(method)
        if fault is not None and not fault.late:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            return _Answer(fault.response(), fault.status, fault.headers(), faulted=True)
        limited = self._rate_limited(method, params)
        if limited is not None:
            return limited
        host_url = f"{request.scheme}://{request.host}"
        api_url = str(request.url.with_query(None)).removesuffix(method)
        context = CallContext(host_url=host_url, api_url=api_url)
        answer = _Answer(handler(self.ws, params, context))
        if fault is not None:  # done; the answer is what comes late
            await asyncio.sleep(fault.delay)
        return answer

    def _check_token(self, method: str, token: str | None) -> None:
        if method == CONNECTIONS_OPEN:
            self.socket_mode.check_app_token(token)
        elif self.bot_token is not None and token != self.bot_token:
            raise ApiFailure("invalid_auth")
        elif token is not None and token.startswith("xapp-"):
            raise ApiFailure("not_allowed_token_type")
        elif self.ws.token_refused is not None:
            raise ApiFailure(self.ws.token_refused)

    def _rate_limited(self, method: str, params: JSON) -> _Answer | None:
        channel: str | None = None
        if method == "chat.postMessage":
            # an unknown channel is let through: the method answers channel_not_found
            with contextlib.suppress(ApiFailure):
                channel = self.ws.channel(str(params.get("channel", ""))).id
        wait = self.ws.rate_limits.acquire(method, channel, self.ws.clock())
        if wait is None:
            return None
        body = {"ok": False, "error": "ratelimited"}
        return _Answer(body, 429, {"Retry-After": str(wait)}, faulted=True)

    async def handle_response_url(self, request: web.Request) -> web.Response:
        body: JSON = {}
        try:
            target = self.ws.use_response_target(request.match_info["target"])
            body = await _read_response_body(request)
            answer: JSON = {"ok": True}
            _apply_response(self.ws, target, body)
        except ApiFailure as failure:
            answer = failure.to_response()
        status = 404 if answer.get("error") in _GONE_URL_ERRORS else 200
        call = ApiCall("response_url", body, answer, status, self.ws.clock(), faulted=False)
        self.ws.record_call(call)
        return web.json_response(answer, status=status)


async def _read_response_body(request: web.Request) -> JSON:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise ApiFailure("invalid_json") from None
    else:
        form = await request.post()
        payload = form.get("payload")
        body = json.loads(payload) if isinstance(payload, str) else dict(form)
    if not isinstance(body, dict):
        raise ApiFailure("invalid_json")
    return body


def _apply_response(ws: Workspace, target: ResponseTarget, body: JSON) -> None:
    """Do what a ``response_url`` POST asks: delete, replace, post or whisper."""
    text = body.get("text")
    text = truncate_message_text(text) if isinstance(text, str) else None
    blocks = check_blocks(body.get("blocks"))
    if target.channel is None:
        raise ApiFailure("channel_not_found")
    if body.get("delete_original") and target.message_ts is not None:
        ws.delete_message(target.channel, target.message_ts)
    elif body.get("replace_original") and target.message_ts is not None:
        # the new message replaces the old in its entirety
        ws.update_message(target.channel, target.message_ts, text=text or "", blocks=blocks or [])
    elif body.get("response_type") == "in_channel":
        thread_ts = target.thread_ts if body.get("thread_ts") is None else str(body["thread_ts"])
        ws.post_message(target.channel, text=text or "", blocks=blocks, thread_ts=thread_ts)
    else:  # shown under the message clicked, when a click handed out this response_url
        ws.post_ephemeral(
            target.channel,
            target.user,
            text=text or "",
            blocks=blocks,
            thread_ts=target.thread_ts,
            under=target.message_ts,
        )


def create_slack_api(
    workspace: Workspace, *, bot_token: str | None = None, app_token: str | None = None
) -> web.Application:
    """The Web API over ``workspace``; with ``bot_token`` set, other tokens get ``invalid_auth``.

    ``app_token`` is the one ``xapp-`` token ``apps.connections.open`` accepts (any when unset);
    the Socket Mode gateway is ``app[SOCKET_MODE_KEY]``.
    """
    socket_mode = SocketModeGateway(workspace, app_token=app_token)
    api = _SlackApi(workspace, bot_token, socket_mode)
    app = web.Application()
    app[WORKSPACE_KEY] = workspace
    app[SOCKET_MODE_KEY] = socket_mode
    app.on_shutdown.append(socket_mode.on_shutdown)
    for prefix in ("", "/api"):
        app.router.add_get(f"{prefix}/{LINK_PATH}", socket_mode.handle_link)
        app.router.add_post(prefix + "/response/{target}", api.handle_response_url)
        app.router.add_route("*", prefix + "/{method}", api.handle_method)
    return app
