"""Socket Mode: the app dials Slack over a websocket and receives every request as an envelope.

The exchange, as Slack runs it:

1. The app calls ``apps.connections.open`` with its ``xapp-`` app token and gets
   ``{"ok": true, "url": "ws://…/link/?ticket=…&app_id=…"}``; each ticket opens one connection.
2. It connects, and hears ``{"type": "hello", "num_connections": n, "connection_info": …}``.
3. Each request arrives as ``{"envelope_id", "type": "interactive" | "events_api" |
   "slash_commands", "payload", "accepts_response_payload"}``. The app acks with
   ``{"envelope_id", "payload"?}``; the ack's payload stands in for the HTTP response body
   (``response_action`` for a view submission, a message for a slash command).
4. ``{"type": "disconnect", "reason": …}`` asks the app to open a fresh connection.

``create_slack_api`` serves a ``SocketModeGateway`` at ``app[SOCKET_MODE_KEY]``;
``gateway.deliverer()`` is a ``Deliverer`` whose user actions travel as envelopes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSCloseCode, WSMsgType, web

from bot.devslack.errors import ApiFailure, DeliveryFailed
from bot.devslack.interactions import Deliverer, Delivery, RequestKind, retry_reason
from bot.devslack.methods import CallContext
from bot.devslack.workspace import Workspace

__all__ = [
    "CONNECTIONS_OPEN",
    "LINK_PATH",
    "SOCKET_MODE_KEY",
    "SocketConnection",
    "SocketModeGateway",
    "SocketModeTransport",
]

JSON = dict[str, Any]

#: the Web API method that issues a websocket URL; it takes the app token, not the bot token
CONNECTIONS_OPEN = "apps.connections.open"
#: where the websocket is served, relative to the Web API root
LINK_PATH = "link/"
#: interactions whose ack payload Slack reads (the rest are acked empty)
_ANSWERED_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})
_DEBUG_HOST = "devslack-link"


@dataclass(eq=False)
class SocketConnection:
    """One websocket an app opened."""

    id: str
    socket: web.WebSocketResponse
    opened_at: float
    closed_at: float | None = None
    #: text frames that acked no envelope sent on this connection (parsed JSON, or raw text)
    unexpected: list[Any] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None and not self.socket.closed


@dataclass(eq=False)
class _Pending:
    connection: SocketConnection
    ack: asyncio.Future[JSON]


class SocketModeGateway:
    """Issues websocket URLs, holds the app's connections, sends envelopes and awaits acks."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        app_token: str | None = None,
        heartbeat: float | None = None,
    ) -> None:
        self.ws = workspace
        #: the one app token accepted; ``None`` accepts any ``xapp-`` token
        self.app_token = app_token
        #: seconds between pings the gateway sends; the app's own pings are answered regardless
        self.heartbeat = heartbeat
        #: every connection accepted, oldest first; closed ones stay with ``closed_at`` set
        self.connections: list[SocketConnection] = []
        #: every envelope sent, in order
        self.envelopes: list[JSON] = []
        self._tickets: set[str] = set()
        self._pending: dict[str, _Pending] = {}
        self._numbers = itertools.count(1)
        # Replaced on every change, so a waiter only ever sees its own generation set.
        self._changed = asyncio.Event()

    @property
    def open_connections(self) -> list[SocketConnection]:
        """Connections still open, oldest first."""
        return [c for c in self.connections if c.is_open]

    # -- apps.connections.open ---------------------------------------------------------------

    def check_app_token(self, token: str | None) -> None:
        """Refuse what Slack refuses: no token, a bot or user token, or another app's token."""
        if not token:
            raise ApiFailure("not_authed")
        if not token.startswith("xapp-"):
            raise ApiFailure("not_allowed_token_type")
        if self.app_token is not None and token != self.app_token:
            raise ApiFailure("invalid_auth")

    def connections_open(self, ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
        """``apps.connections.open`` once the token passed: a URL good for one connection."""
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        root = ctx.api_url or f"{ctx.host_url}/api/"
        scheme, _, rest = root.partition("://")
        query = urlencode({"ticket": ticket, "app_id": ws.app_id})
        socket_scheme = "wss" if scheme == "https" else "ws"
        return {"ok": True, "url": f"{socket_scheme}://{rest}{LINK_PATH}?{query}"}

    # -- the websocket -----------------------------------------------------------------------

    async def handle_link(self, request: web.Request) -> web.StreamResponse:
        """``GET …/link/?ticket=…``: accept the app, say hello, then read its acks until it goes."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        self._tickets.discard(ticket)
        socket = web.WebSocketResponse(heartbeat=self.heartbeat)
        await socket.prepare(request)
        connection = SocketConnection(f"conn-{next(self._numbers)}", socket, self.ws.clock())
        await socket.send_json(self._hello(len(self.open_connections) + 1))
        self.connections.append(connection)
        self.ws.feed.publish("app.connected", connection=connection.id)
        self._notify()
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self._receive(connection, message.data)
                elif message.type == WSMsgType.BINARY:
                    connection.unexpected.append(message.data)
        finally:
            self._closed(connection)
        return socket

    def _hello(self, num_connections: int) -> JSON:
        return {
            "type": "hello",
            "num_connections": num_connections,
            "debug_info": {
                "host": _DEBUG_HOST,
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.ws.app_id},
        }

    def _receive(self, connection: SocketConnection, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            connection.unexpected.append(text)
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        pending = self._pending.get(envelope_id) if isinstance(envelope_id, str) else None
        if pending is None or pending.connection is not connection or pending.ack.done():
            connection.unexpected.append(message)
            return
        pending.ack.set_result(message)

    def _closed(self, connection: SocketConnection) -> None:
        connection.closed_at = self.ws.clock()
        for envelope_id, pending in self._pending.items():
            if pending.connection is connection and not pending.ack.done():
                gone = DeliveryFailed(f"{connection.id} closed before acking {envelope_id}")
                pending.ack.set_exception(gone)
        self.ws.feed.publish("app.disconnected", connection=connection.id)
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for_connection(
        self, timeout: float = 3.0, *, newer_than: SocketConnection | None = None
    ) -> SocketConnection:
        """The newest open connection (opened after ``newer_than``), waiting up to ``timeout``."""
        floor = -1 if newer_than is None else self.connections.index(newer_than)

        def newest() -> SocketConnection | None:
            fresh = [c for c in self.connections[floor + 1 :] if c.is_open]
            return fresh[-1] if fresh else None

        try:
            async with asyncio.timeout(timeout):
                while (found := newest()) is None:
                    await self._changed.wait()
        except TimeoutError:
            raise DeliveryFailed(f"no app connected over Socket Mode within {timeout}s") from None
        return found

    # -- envelopes ---------------------------------------------------------------------------

    async def send(
        self,
        kind: RequestKind,
        payload: JSON,
        *,
        retry_num: int | None = None,
        timeout: float = 3.0,
    ) -> Delivery:
        """Send ``payload`` to the newest connection and wait for its ack, all within ``timeout``.

        Raises ``DeliveryFailed`` when no app is connected, the connection drops, or no ack
        comes in time (Bolt sends none when no listener matched, as Slack then retries: the
        failure's ``reason`` is then ``timeout``).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        connection = await self.wait_for_connection(timeout)
        envelope_id = str(uuid.uuid4())
        envelope: JSON = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": _accepts_response_payload(kind, payload),
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_num or 0
            envelope["retry_reason"] = retry_reason(retry_num, "timeout") if retry_num else ""
        pending = _Pending(connection, loop.create_future())
        self._pending[envelope_id] = pending
        self.envelopes.append(envelope)
        try:
            try:
                await connection.socket.send_json(envelope)
            except (ConnectionError, RuntimeError) as exc:
                raise DeliveryFailed(f"{connection.id} is closing: {exc!r}") from exc
            try:
                async with asyncio.timeout(max(deadline - loop.time(), 0.0)):
                    ack = await pending.ack
            except TimeoutError:
                raise DeliveryFailed(
                    f"no ack for {kind} envelope {envelope_id} within {timeout}s",
                    reason="timeout",
                ) from None
        finally:
            self._pending.pop(envelope_id, None)
        answer = ack.get("payload")
        body = "" if answer is None else json.dumps(answer)
        return Delivery(200, body, payload, envelope_id=envelope_id)

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every open connection to reconnect, as Slack does before it retires a link."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": _DEBUG_HOST}}
        for connection in self.open_connections:
            await connection.socket.send_json(message)

    async def close(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Close every open connection from Slack's side."""
        for connection in self.open_connections:
            await connection.socket.close(code=code, message=b"server shutdown")

    async def on_shutdown(self, app: web.Application) -> None:
        """aiohttp shutdown hook: open websockets would otherwise hold the server up."""
        await self.close()

    def deliverer(self, *, timeout: float = 3.0) -> Deliverer:
        """A ``Deliverer`` whose user actions reach the connected app as envelopes."""
        return Deliverer(self.ws, transport=SocketModeTransport(self, timeout=timeout))


class SocketModeTransport:
    """The ``Transport`` over Socket Mode: requests go as envelopes, acks come back as answers."""

    def __init__(self, gateway: SocketModeGateway, *, timeout: float = 3.0) -> None:
        self.gateway = gateway
        self.timeout = timeout

    async def send(
        self, kind: RequestKind, payload: JSON, *, retry_num: int | None = None
    ) -> Delivery:
        """Send one envelope and wait for its ack."""
        return await self.gateway.send(kind, payload, retry_num=retry_num, timeout=self.timeout)

    async def close(self) -> None:
        """Nothing to release: the connections belong to the gateway."""


def _accepts_response_payload(kind: RequestKind, payload: JSON) -> bool:
    if kind == "slash_commands":
        return True
    return kind == "interactive" and payload.get("type") in _ANSWERED_INTERACTIONS


#: the gateway an emulator application serves: ``app[SOCKET_MODE_KEY]``
SOCKET_MODE_KEY = web.AppKey("devslack_socket_mode", SocketModeGateway)
