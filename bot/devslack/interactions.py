"""Play the user's side: send interactions, events and slash commands to the bot.

``Deliverer`` builds each request from the workspace exactly as Slack does, hands it to a
``Transport`` and applies what Slack would to the answer: a ``view_submission`` answer opens,
updates, pushes, clears or keeps the view. Two transports exist:

* ``HttpTransport`` posts to the bot's request URL (``…/slack/events``) — interactivity as
  form-encoded ``payload=<json>``, events as JSON, slash commands as form fields — signed with
  the signing secret; the answer is the HTTP response.
* ``SocketModeTransport`` (``bot.devslack.socket_mode``) sends envelopes over the app's
  websocket; the answer is the ack's ``payload``.

Events are redelivered as Slack does (https://api.slack.com/apis/events-api#retries): an event
not answered with a 2xx within 3 seconds (the transport's ``timeout``), answered with another
status, or not reached at all, is sent again "up to three times", with the same ``event_id`` and
``X-Slack-Retry-Num: 1..3`` / ``X-Slack-Retry-Reason`` (``http_timeout``, ``http_error``,
``connection_failed``); over Socket Mode an envelope not acked in time comes again with
``retry_attempt`` / ``retry_reason``. An answer carrying ``X-Slack-No-Retry: 1`` is not retried.
Slack spaces its retries ("nearly immediately, 1 minute, 5 minutes": ``SLACK_RETRY_DELAYS``);
``Deliverer.retry_delays`` compresses them to nothing unless a test asks for more, and
``Deliverer.event_retries = 0`` turns retries off. Interactions and slash commands are never
retried: a late answer is an error the user sees.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

import aiohttp

from bot.devslack import payloads
from bot.devslack.errors import ApiFailure, DeliveryFailed, InteractionError
from bot.devslack.limits import validate_view
from bot.devslack.methods import check_blocks
from bot.devslack.model import Ephemeral, View
from bot.devslack.signing import signed_headers
from bot.devslack.workspace import Workspace

__all__ = [
    "EVENT_RETRIES",
    "SLACK_RETRY_DELAYS",
    "Deliverer",
    "Delivery",
    "HttpTransport",
    "RequestKind",
    "RetryNum",
    "Transport",
    "retry_reason",
]

JSON = dict[str, Any]

#: what Slack sends an app, named as Socket Mode names its envelope types
RequestKind = Literal["interactive", "events_api", "slash_commands"]

#: how many times Slack sends a failed event again, and after how long each time
EVENT_RETRIES = 3
SLACK_RETRY_DELAYS = (0.0, 60.0, 300.0)


class RetryNum(int):
    """An Events API retry's number (1-3) that also carries Slack's reason for it, so any
    ``Transport`` passing ``retry_num`` along passes the reason too."""

    reason: str

    def __new__(cls, num: int, reason: str) -> RetryNum:
        retry = super().__new__(cls, num)
        retry.reason = reason
        return retry


def retry_reason(retry_num: int | None, default: str) -> str:
    """The reason a retry was sent: its own, or ``default`` for a bare number."""
    return retry_num.reason if isinstance(retry_num, RetryNum) else default


@dataclass
class Delivery:
    """What was sent and how the bot answered.

    Over HTTP, ``status``, ``body`` and ``headers`` are the response's. Over Socket Mode an ack
    reads as status 200 with the ack's ``payload`` as the JSON body (empty when it had none).
    """

    status: int
    body: str
    payload: JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    #: why the answer to a view_submission could not be applied (Slack shows an error)
    problems: list[str] = field(default_factory=list)
    #: the Socket Mode envelope that carried the payload; ``None`` over HTTP
    envelope_id: str | None = None
    #: for an event: why each earlier attempt failed, one reason per retry before this answer
    #: (``["http_timeout"]``: this is the first retry, sent after a timeout)
    retries: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == 200

    def json(self) -> Any:
        """The answer's JSON, or ``None`` for an empty body."""
        return json.loads(self.body) if self.body.strip() else None


class Transport(Protocol):
    """Carries one request to the bot and brings back its answer."""

    async def send(
        self, kind: RequestKind, payload: JSON, *, retry_num: int | None = None
    ) -> Delivery:
        """Deliver ``payload``; ``retry_num`` marks an Events API retry (a ``RetryNum`` also
        says why). Raises ``DeliveryFailed``, with Slack's retry ``reason``, when no answer
        comes."""
        ...

    async def close(self) -> None:
        """Release what the transport holds open."""
        ...


class HttpTransport:
    """Signed HTTP POSTs to the bot's request URL, as Slack sends them without Socket Mode."""

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 3.0,
    ) -> None:
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None

    async def send(
        self, kind: RequestKind, payload: JSON, *, retry_num: int | None = None
    ) -> Delivery:
        """POST ``payload`` encoded as Slack encodes ``kind``; the HTTP answer is the delivery."""
        extra: dict[str, str] = {}
        if kind == "interactive":
            body = urlencode({"payload": json.dumps(payload)}).encode()
            content_type = "application/x-www-form-urlencoded"
        elif kind == "slash_commands":
            body = urlencode(payload).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(payload).encode()
            content_type = "application/json"
            if retry_num is not None:
                extra = {
                    "X-Slack-Retry-Num": str(retry_num),
                    "X-Slack-Retry-Reason": retry_reason(retry_num, "http_timeout"),
                }
        return await self._post(body, content_type, payload, extra)

    async def _post(
        self, body: bytes, content_type: str, payload: JSON, extra: Mapping[str, str]
    ) -> Delivery:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = signed_headers(self.signing_secret, body, content_type=content_type)
        headers.update(extra)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self._session.post(
                self.bot_url, data=body, headers=headers, timeout=timeout
            ) as response:
                text = await response.text()
                return Delivery(response.status, text, payload, dict(response.headers))
        except TimeoutError as exc:
            message = f"{self.bot_url} did not answer within {self.timeout}s"
            raise DeliveryFailed(message, reason="http_timeout") from exc
        except aiohttp.ClientError as exc:
            message = f"{self.bot_url} did not answer: {exc!r}"
            raise DeliveryFailed(message, reason="connection_failed") from exc

    async def close(self) -> None:
        """Close the HTTP session when this transport opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None


class Deliverer:
    """Sends what a workspace member does to the bot.

    ``Deliverer(ws, bot_url, signing_secret)`` posts signed HTTP requests to ``bot_url``;
    ``Deliverer(ws, transport=...)`` uses any other ``Transport``, e.g. Socket Mode.
    """

    def __init__(
        self,
        workspace: Workspace,
        bot_url: str | None = None,
        signing_secret: str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 3.0,
        transport: Transport | None = None,
    ) -> None:
        self.ws = workspace
        if transport is None:
            if bot_url is None or signing_secret is None:
                raise TypeError("pass bot_url and signing_secret, or transport=")
            transport = HttpTransport(bot_url, signing_secret, session=session, timeout=timeout)
        elif bot_url is not None or signing_secret is not None or session is not None:
            raise TypeError("bot_url, signing_secret and session are for HTTP; not with transport=")
        self.transport = transport
        #: times a failed event is sent again (Slack: 3); 0 sends each event once
        self.event_retries = EVENT_RETRIES
        #: seconds before each retry; Slack waits ``SLACK_RETRY_DELAYS``, tests need not
        self.retry_delays: tuple[float, ...] = (0.0,)

    async def __aenter__(self) -> Deliverer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the transport."""
        await self.transport.close()

    # -- sending -----------------------------------------------------------------------------

    async def send_interaction(self, payload: JSON) -> Delivery:
        """Send an interactivity payload (``block_actions``, ``view_submission``…) as it is."""
        return await self.transport.send("interactive", payload)

    async def send_event(
        self,
        event: JSON,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        reason: str = "http_timeout",
    ) -> Delivery:
        """Send an Events API callback, retried as Slack retries it (see the module doc).

        The answer is the last attempt's; when no attempt was answered at all, the last
        ``DeliveryFailed`` is raised. Passing ``retry_num`` (and its ``reason``) sends one
        hand-made retry of ``event_id`` instead, and nothing more."""
        envelope = payloads.event_callback(
            self.ws,
            event,
            event_id=event_id or f"Ev{secrets.token_hex(5).upper()}",
            event_time=int(self.ws.clock()),
        )
        if retry_num is not None:
            retry = RetryNum(retry_num, reason)
            return await self.transport.send("events_api", envelope, retry_num=retry)
        return await self._deliver_event(envelope)

    async def _deliver_event(self, envelope: JSON) -> Delivery:
        """Send an event until it is answered with a 2xx, or Slack would give up on it."""
        reasons: list[str] = []
        while True:
            attempt: RetryNum | None = None
            if reasons:
                delays = self.retry_delays or (0.0,)
                await asyncio.sleep(delays[min(len(reasons), len(delays)) - 1])
                attempt = RetryNum(len(reasons), reasons[-1])
            try:
                delivery = await self.transport.send("events_api", envelope, retry_num=attempt)
            except DeliveryFailed as failed:
                if failed.reason is None or len(reasons) >= self.event_retries:
                    raise
                reasons.append(failed.reason)
                continue
            delivery.retries = list(reasons)
            why = _retry_reason(delivery)
            if why is None or len(reasons) >= self.event_retries:
                return delivery
            reasons.append(why)

    # -- clicks ------------------------------------------------------------------------------

    async def click(
        self, channel: str, ts: str, action_id: str, *, user: str, block_id: str | None = None
    ) -> Delivery:
        """``user`` clicks the button ``action_id`` on the message ``ts`` of a channel they
        are in."""
        try:
            message = self.ws.message(channel, ts)
        except ApiFailure as exc:
            raise InteractionError(f"no message {ts!r} in {channel!r}: {exc.code}") from exc
        # checked before a trigger or response_url is handed out for a click Slack never sends
        payloads.require_member(self.ws, message.channel, user)
        payloads.find_button(message.blocks, action_id, block_id)
        target = self.ws.new_response_target(user, message.channel, message.ts)
        payload = payloads.block_actions_payload(
            self.ws,
            user=user,
            message=message,
            action_id=action_id,
            block_id=block_id,
            trigger_id=self.ws.new_trigger(user).id,
            response_url=self.ws.response_url(target),
            action_ts=_action_ts(),
        )
        return await self.send_interaction(payload)

    async def click_ephemeral(
        self, note: Ephemeral, action_id: str, *, block_id: str | None = None
    ) -> Delivery:
        """The one user who sees an ephemeral message clicks its button ``action_id``."""
        payloads.require_member(self.ws, note.channel, note.user)
        target = self.ws.new_response_target(note.user, note.channel, None, note.thread_ts)
        payload = payloads.ephemeral_block_actions_payload(
            self.ws,
            note=note,
            action_id=action_id,
            block_id=block_id,
            trigger_id=self.ws.new_trigger(note.user).id,
            response_url=self.ws.response_url(target),
            action_ts=_action_ts(),
        )
        return await self.send_interaction(payload)

    async def click_in_view(
        self,
        view_id: str,
        action_id: str,
        *,
        user: str | None = None,
        block_id: str | None = None,
    ) -> Delivery:
        """Click a button inside a modal or an App Home."""
        view = self._open_view(view_id)
        who = self._viewer(view, user)
        payload = payloads.view_block_actions_payload(
            self.ws,
            user=who,
            view=view,
            action_id=action_id,
            block_id=block_id,
            trigger_id=self.ws.new_trigger(who).id,
            action_ts=_action_ts(),
        )
        return await self.send_interaction(payload)

    # -- modals ------------------------------------------------------------------------------

    async def submit_view(
        self,
        view_id: str,
        values: Mapping[str, object] | None = None,
        *,
        user: str | None = None,
        state: JSON | None = None,
    ) -> Delivery:
        """Press Submit: ``values`` are plain (see ``payloads.state_values``), or pass ``state``."""
        view = self._open_view(view_id)
        who = self._viewer(view, user)
        submitted = state if state is not None else payloads.state_values(view, values or {})
        view.state = submitted
        payload = payloads.view_submission_payload(
            self.ws, user=who, view=view, values=submitted, trigger_id=self.ws.new_trigger(who).id
        )
        delivery = await self.send_interaction(payload)
        self._apply_submission_answer(view, delivery)
        return delivery

    def _apply_submission_answer(self, view: View, delivery: Delivery) -> None:
        if delivery.status != 200:
            delivery.problems.append(f"bot answered HTTP {delivery.status}; the view stays open")
            return
        try:
            answer = delivery.json()
        except json.JSONDecodeError:
            delivery.problems.append("answer is not JSON; the view stays open")
            return
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if action is None:
            self.ws.close_view(view.id)
        elif action == "errors":
            self.ws.set_view_errors(view, dict(answer.get("errors") or {}))
        elif action == "clear":
            self.ws.close_view(view.id, clear=True)
        elif action in ("update", "push"):
            new_view = answer.get("view")
            delivery.problems.extend(validate_view(new_view))
            if delivery.problems or not isinstance(new_view, dict):
                return
            if action == "update":
                self.ws.update_view(view, new_view)
            else:
                self.ws.push_view(new_view, user=view.user)
        else:
            delivery.problems.append(f"unknown response_action {action!r}; the view stays open")

    async def close_view(self, view_id: str, *, user: str | None = None) -> Delivery | None:
        """Dismiss a modal; ``view_closed`` is sent only when it asked for ``notify_on_close``."""
        view = self._open_view(view_id)
        who = self._viewer(view, user)
        self.ws.close_view(view.id)
        if not view.spec.get("notify_on_close"):
            return None
        payload = payloads.view_closed_payload(self.ws, user=who, view=view)
        return await self.send_interaction(payload)

    # -- messages, App Home and commands -----------------------------------------------------

    async def post_as_user(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> Delivery | None:
        """Store a member's message (a thread reply with ``thread_ts``, also shown in the
        channel with ``broadcast``) and send its event; ``None`` when Slack sends none, as
        from a channel the bot is not in (``Workspace.hears_messages_in``)."""
        self._require_member(channel, user)
        message = self.ws.post_message(
            channel, text=text, user=user, thread_ts=thread_ts, reply_broadcast=broadcast
        )
        if not self.ws.hears_messages_in(message.channel):
            return None
        return await self.send_event(payloads.message_event(self.ws, message))

    async def reply_in_thread(
        self, channel: str, thread_ts: str, text: str, *, user: str, broadcast: bool = False
    ) -> Delivery | None:
        """A user's reply in the thread of ``thread_ts``."""
        return await self.post_as_user(
            channel, text, user=user, thread_ts=thread_ts, broadcast=broadcast
        )

    async def open_home(self, user: str) -> Delivery | None:
        """The user opens the bot's App Home tab; ``None`` when the app did not subscribe to
        ``app_home_opened`` (Slack then sends nothing)."""
        event = payloads.app_home_opened_event(self.ws, user, _action_ts())
        if "app_home_opened" not in self.ws.bot_events:
            return None
        return await self.send_event(event)

    async def slash_command(
        self, command: str, text: str = "", *, user: str, channel: str
    ) -> Delivery:
        """Run ``/command text`` in ``channel``, as a member; its response_url points at the
        emulator. The bot's immediate answer is shown as Slack shows it: a note only ``user``
        sees (``response_type: in_channel`` posts it in the channel instead)."""
        self._require_member(channel, user)
        channel_id = self.ws.channel(channel).id
        target = self.ws.new_response_target(user, channel_id, None)
        fields = payloads.slash_command_fields(
            self.ws,
            command=command,
            text=text,
            user=user,
            channel=channel_id,
            trigger_id=self.ws.new_trigger(user).id,
            response_url=self.ws.response_url(target),
        )
        delivery = await self.transport.send("slash_commands", dict(fields))
        self._apply_command_answer(fields["command"], channel_id, user, delivery)
        return delivery

    def _apply_command_answer(
        self, command: str, channel: str, user: str, delivery: Delivery
    ) -> None:
        """Show a slash command's immediate answer: nothing for an empty 200, the text of a
        plain one, the message of a JSON one; any other status is the error Slack shows."""
        if delivery.status != 200:
            delivery.problems.append(f"{command} failed: the bot answered HTTP {delivery.status}")
            return
        try:
            answer = delivery.json()
        except json.JSONDecodeError:
            answer = {"text": delivery.body}
        if not isinstance(answer, dict) or not (answer.get("text") or answer.get("blocks")):
            return
        text = str(answer.get("text") or "")
        try:
            blocks = check_blocks(answer.get("blocks"))
        except ApiFailure as failure:
            delivery.problems.append(f"the answer's blocks: {failure.code}")
            return
        if answer.get("response_type") == "in_channel":
            self.ws.post_message(channel, text=text, blocks=blocks)
        else:
            self.ws.post_ephemeral(channel, user, text=text, blocks=blocks)

    # -- helpers -----------------------------------------------------------------------------

    def _require_member(self, channel: str, user: str) -> None:
        try:
            payloads.require_member(self.ws, channel, user)
        except ApiFailure as exc:
            raise InteractionError(f"no channel {channel!r}: {exc.code}") from exc

    def _open_view(self, view_id: str) -> View:
        view = self.ws.views.get(view_id)
        if view is None or view.closed:
            raise InteractionError(f"no open view {view_id!r}")
        return view

    @staticmethod
    def _viewer(view: View, user: str | None) -> str:
        who = user or view.user
        if who is None:
            raise InteractionError(f"view {view.id} has no user; pass user=")
        return who


def _retry_reason(delivery: Delivery) -> str | None:
    """Why Slack would send an answered event again: any status but 2xx (``http_error``),
    unless the app said ``X-Slack-No-Retry: 1``."""
    if 200 <= delivery.status < 300:
        return None
    headers = {name.lower(): value for name, value in delivery.headers.items()}
    if headers.get("x-slack-no-retry") == "1":
        return None
    return "http_error"


def _action_ts() -> str:
    return f"{time.time():.6f}"
