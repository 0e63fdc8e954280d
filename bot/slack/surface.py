"""Plugging Slack into the bot: the Web API client, the Bolt app at `POST /slack/events` (or
Socket Mode), the card outbox worker with its per-channel pacing, and Slack's place in
`/healthz`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from pydantic_core import from_json
from slack_bolt import BoltResponse
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest
from slack_bolt.request import payload_utils
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncServerErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from yarl import URL

from bot.api import answering_whole
from bot.app import Bot
from bot.config import Settings
from bot.edge import EDGE, WholeRequest, read_body, refuse
from bot.errors import Unavailable
from bot.outbox import OutboxWorker
from bot.slack.cards import APPROVE_ACTION, read_click
from bot.slack.listeners import register_listeners
from bot.slack.lookups import SlackChannels, SlackGroups, answer_by
from bot.slack.pacing import ChannelPacer, Turns
from bot.slack.poster import SLACK_TOPIC, CardPoster, update_pacer
from bot.slack.signature import signed_by_slack, signed_in_time

__all__ = ["SlackReachability", "SlackSurface", "make_client"]

log = logging.getLogger(__name__)

#: a listener called for a click without Bolt: `(ack=, body=, client=)`, as Bolt calls it
DirectListener = Callable[..., Awaitable[None]]


#: Bolt reads every payload kind with these for each listener, middleware and error handler
_BOLT_READERS = (
    payload_utils.to_options,
    payload_utils.to_shortcut,
    payload_utils.to_action,
    payload_utils.to_view,
    payload_utils.to_command,
    payload_utils.to_event,
    payload_utils.to_message,
    payload_utils.to_step,
)


def slack_text(body: bytes) -> tuple[str, bool]:
    """The text of a body already checked to be Slack's, and whether it is an interaction's
    JSON payload (else the body as it is: an event's JSON, a slash command's form);
    ValueError when unreadable.

    An interaction is a form whose field `payload` holds JSON. Its value is unquoted here
    with yarl's C unquoter: Bolt would use the standard library's pure-Python one, about 4×
    slower on a click's payload (which holds the whole card).
    """
    text = body.decode()
    if not text.startswith("{") and "payload" in text:
        payload = URL.build(query_string=text, encoded=True).query.get("payload")
        if payload is not None:
            if not payload.lstrip().startswith("{"):
                raise ValueError("the form field payload holds no JSON object")
            return payload, True
    return text, False


def bolt_request_of(text: str, query: str, headers: Mapping[str, str]) -> AsyncBoltRequest:
    """Bolt's request for the text `slack_text` read."""
    return AsyncBoltRequest(body=text, query=query, headers=dict(headers))


def direct_action(payload: Any) -> str | None:
    """The action id of a click on one button (`block_actions` with one action), else None."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        return None
    action_id = actions[0].get("action_id")
    return action_id if isinstance(action_id, str) else None


def bolt_can_read(body: Any) -> bool:
    """False for a payload Bolt would crash on (an empty `actions`, an `event` that is null…)."""
    if not isinstance(body, dict):
        return False
    try:
        for read in _BOLT_READERS:
            read(body)
    except (LookupError, TypeError, AttributeError, ValueError):
        return False
    return True


#: payloads answered as soon as their listener calls `ack()`: Slack ignores what is said back
#: to them (it only needs the 200 within 3 s)
_ANSWER_IGNORED = ("block_actions", "event_callback")

#: seconds after a request arrives by which the lookups it needs must be done: Slack waits 3 s
#: for the answer, and a trigger id opens a modal for 3 s after the click
ANSWER_WITHIN = 2.0


def answered_on_ack(body: dict[str, Any]) -> bool:
    """True for a click or an event: answer it as soon as its listener acknowledges it.

    Bolt's ack would poll for `ack()` every 10 ms and then build an answer Slack ignores. A
    click must still name its user and button first: one that does not is answered 400
    (`Unreadable`) and never handled.
    """
    if body.get("type") not in _ANSWER_IGNORED:
        return False
    if body["type"] == "block_actions":
        read_click(body)
    return True


class AnswerAck(AsyncAck):
    """Bolt's `ack` that also says when it is called, and by which listener task.

    The click listeners call it once what the click decided is committed, so the 200 Slack
    gets means the decision is kept: a crash right after the answer loses nothing."""

    def __init__(self, handling: set[asyncio.Task[Any]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        #: True once the listener has called it
        self.given = False
        #: done once it is called, or the listener ended without calling it (`settle`)
        self.settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._handling = handling

    async def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        response = await super().__call__(*args, **kwargs)
        if (task := asyncio.current_task()) is not None and task not in self._handling:
            # what the listener does after its answer (notes, App Home) finishes on shutdown
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)
        self.given = True
        self.settle()
        return response

    def settle(self, *_: object) -> None:
        """Called, or the listener's task is done: the request may be answered."""
        if not self.settled.done():
            self.settled.set_result(None)


def make_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: connection errors and 5xx are retried, then the outbox backs off.

    A 429 is not retried inside the call: that would sleep for `Retry-After` while holding the
    caller. It raises instead, so the card poster holds just that channel and moves on.
    """
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url or AsyncWebClient.BASE_URL,
        timeout=10,
    )
    client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=2))
    # slack_sdk formats a debug line with the whole request and answer whenever its logger's
    # own level is unset, logged or not: pin the level in effect, so only real debugging pays.
    client.logger.setLevel(client.logger.getEffectiveLevel())
    return client


@dataclass
class SlackReachability:
    """`auth.test`, remembered for a few seconds so health probes do not hammer Slack."""

    client: AsyncWebClient
    ttl: float = 10.0
    _last: tuple[float, bool, str] = field(default=(0.0, False, ""), init=False)

    async def check(self) -> tuple[str, bool, str]:
        """(`slack`, reachable, detail) for `/healthz`."""
        at, ok, detail = self._last
        if time.monotonic() - at > self.ttl:
            ok, detail = await self.probe()
            self._last = (time.monotonic(), ok, detail)
        return "slack", ok, detail

    async def probe(self) -> tuple[bool, str]:
        """Ask Slack who we are."""
        try:
            response = await self.client.auth_test()
        except SlackApiError as exc:
            status, error = exc.response.status_code, exc.response.get("error")
            if status >= 500 or status == 429:
                return False, f"Slack unavailable: HTTP {status} {error}"
            return False, f"Slack refused the bot token: {error}"
        except Exception as exc:  # network errors of every kind
            return False, f"Slack unreachable: {type(exc).__name__}: {exc}"
        return True, f"ok as {response.get('user')} in {response.get('team')}"


@dataclass
class SlackSurface:
    """The `create_app` extension that adds Slack: listeners and route now, connections at start."""

    settings: Settings
    socket_mode: bool = False
    #: call `auth.test` before serving and refuse to start when it fails; off when the Web API
    #: is served by this same app (`approval-bot dev`), which is not listening yet at start
    verify_on_start: bool = True
    topics: tuple[str, ...] = (SLACK_TOPIC,)
    #: the posting pace per channel, shared by everything that posts cards
    pacer: ChannelPacer = field(default_factory=ChannelPacer)
    #: the workspace's `chat.update` pace, shared by everything that rewrites cards
    updates: ChannelPacer = field(default_factory=update_pacer)
    #: card outbox items queued per channel (kept by the worker; read by cards and App Home)
    backlog: Counter[str] = field(default_factory=Counter)
    #: clicks and events answered and still being handled
    handling: set[asyncio.Task[Any]] = field(default_factory=set, init=False)
    #: buttons whose clicks skip Bolt (`dispatch`): the listener is called as Bolt would,
    #: without Bolt's per-request context, middleware chain and listener matching
    direct: dict[str, DirectListener] = field(default_factory=dict, init=False)
    #: what a direct listener's failure is answered with (Bolt's error hook, `Listeners.refuse`)
    refuse: Callable[[Exception, BoltResponse | None], Awaitable[BoltResponse | None]] = field(
        init=False
    )

    def __post_init__(self) -> None:
        self.client = make_client(self.settings)
        self.bolt = AsyncApp(
            client=self.client,
            signing_secret=self.settings.slack_signing_secret or "",
            # `dispatch` checks the signature before anything is parsed; the socket is
            # authenticated. Bolt checking again would only compute the same HMAC twice.
            request_verification_enabled=False,
            process_before_response=False,
        )
        self.bolt.use(self.answer_deadline)
        self.bolt.use(note_redelivery)

    async def answer_deadline(
        self, body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        """Bolt middleware, over HTTP and Socket Mode alike: the lookups a click, submit or
        command needs (who may decide) stop at `ANSWER_WITHIN` rather than make Slack give
        up on the answer; an event has no answer to wait for."""
        interactive = body.get("type") != "event_callback"
        now = asyncio.get_running_loop().time()
        answer_by.set(now + ANSWER_WITHIN if interactive else None)
        return await next()

    def install(self, app: web.Application, bot: Bot) -> None:
        if isinstance(bot.store, Turns):  # replicas: Slack's limits are the workspace's
            self.pacer.turns = self.updates.turns = bot.store
        groups = SlackGroups(self.client)
        groups.cache.pacer = ChannelPacer(rate=20 / 60, burst=20, turns=self.pacer.turns)
        bot.service.groups = groups
        bot.service.channels = SlackChannels(self.client)
        listeners = register_listeners(self.bolt, bot.service)
        listeners.backlog = self.backlog
        self.refuse = listeners.refuse
        self.direct[APPROVE_ACTION] = listeners.approve
        if not self.socket_mode:
            app.router.add_post("/slack/events", self.dispatch)
            edge = app.get(EDGE)
            if edge is not None:
                edge.whole["POST", "/slack/events"] = answering_whole(self.dispatch_whole)

    async def dispatch(self, request: web.Request) -> web.Response:
        """`POST /slack/events`: check the signature, read the payload, then let Bolt route it.

        Bolt parses the body before it checks the signature, and answers 500 to a body it
        cannot read; so both happen here first: 401 when unsigned, 400 when unreadable. Headers
        without a fresh signature of the right form are refused before the body is read; the
        body is read within the edge's deadline (408 and closed after it).
        """
        if not signed_in_time(request.headers):
            return refuse(request, _unsigned())
        body = await read_body(request)
        return await self._dispatch(body, request.query_string, request.headers)

    async def dispatch_whole(self, request: WholeRequest) -> web.Response:
        """`dispatch`, for a request the edge received whole with a connection's first bytes
        (`bot.edge.read_whole`): the same checks and answers without aiohttp's handling of
        the request. Slack sends each request on whichever connection it likes, often a new
        one; and a connection answered by the edge is a new one again for its next request.
        """
        if not signed_in_time(request.headers):
            return _unsigned()
        return await self._dispatch(request.body, "", request.headers)

    async def _dispatch(self, body: bytes, query: str, headers: Mapping[str, str]) -> web.Response:
        if not signed_by_slack(self.settings.slack_signing_secret or "", body, headers):
            return _unsigned()
        try:
            text, interaction = slack_text(body)
            # only a click may skip Bolt: events and commands are parsed by Bolt alone; a
            # click's JSON (the whole card) by pydantic's parser, in 3/4 of `json`'s time
            payload = from_json(text) if interaction else None
        except (ValueError, RecursionError) as exc:
            log.warning("unreadable Slack request refused: %.200r", exc)
            return web.json_response({"error": "bad_request"}, status=400)
        listener = self.direct.get(direct_action(payload) or "")
        if listener is not None and isinstance(payload, dict) and bolt_can_read(payload):
            return await self._answer_on_ack(*self._handle_direct(listener, payload))
        try:
            bolt_request = bolt_request_of(text, query, headers)
        except (ValueError, LookupError, TypeError, AttributeError, RecursionError) as exc:
            log.warning("unreadable Slack request refused: %.200r", exc)
            return web.json_response({"error": "bad_request"}, status=400)
        if not bolt_can_read(bolt_request.body):
            log.warning("Slack payload Bolt cannot read refused")
            return web.json_response({"error": "bad_request"}, status=400)
        try:
            on_ack = answered_on_ack(bolt_request.body)
        except ValueError as exc:
            log.warning("Slack request refused with 400: %.200r", exc)
            return web.json_response({"error": "bad_request"}, status=400)
        if on_ack:
            ack = bolt_request.context["ack"] = AnswerAck(self.handling)
            return await self._answer_on_ack(ack, self.bolt.async_dispatch(bolt_request))
        token = answer_by.set(None)  # the deadline Bolt's middleware sets ends with the request
        try:
            return await _answer_of(await self.bolt.async_dispatch(bolt_request))
        finally:
            answer_by.reset(token)

    def _handle_direct(
        self, listener: DirectListener, body: dict[str, Any]
    ) -> tuple[AnswerAck, Coroutine[Any, Any, BoltResponse | None]]:
        """A click's listener called as Bolt calls it: with `ack`, `body` and `client`, the
        answer deadline set, and a failure before `ack()` answered by the error hook (a 400
        for an unreadable click) or 500."""
        ack = AnswerAck(self.handling)

        async def handle() -> BoltResponse | None:
            answer_by.set(asyncio.get_running_loop().time() + ANSWER_WITHIN)
            try:
                await listener(ack=ack, body=body, client=self.client)
            except Exception as exc:
                failed = None if ack.given else BoltResponse(status=500, body="")
                return await self.refuse(exc, failed) or failed
            return None

        return ack, handle()

    async def _answer_on_ack(
        self, ack: AnswerAck, handling: Coroutine[Any, Any, BoltResponse | None]
    ) -> web.Response:
        """Handle a click or event and answer 200 once its listener calls `ack()` (after the
        decision's commit, for a click), or with the handler's answer when it fails first."""
        task = asyncio.create_task(handling)
        self.handling.add(task)
        task.add_done_callback(self.handling.discard)
        task.add_done_callback(ack.settle)
        await ack.settled
        if ack.given or task.exception() is not None:
            return web.Response(status=200)
        answer = task.result()
        return web.Response(status=200) if answer is None else await _answer_of(answer)

    async def finish_handling(self) -> None:
        """Shutting down: let the clicks and events answered or in hand finish."""
        if self.handling:
            await asyncio.wait(set(self.handling), timeout=3)

    async def start(self, app: web.Application, bot: Bot) -> None:
        # One connection pool for every Web API call; without it slack_sdk opens (and closes)
        # a new HTTP session for each call: two per click, one per card.
        self.client.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.client.timeout)
        )
        bot.closers.append(self.client.session.close)
        bot.closers.insert(0, self.finish_handling)
        reachability = SlackReachability(self.client)
        if self.verify_on_start:
            ok, detail = await reachability.probe()
            if not ok:
                raise Unavailable(f"{detail} (check SLACK_BOT_TOKEN and SLACK_API_URL)")
            log.info("Slack: %s", detail)
        bot.api.health_checks.append(reachability.check)

        poster = CardPoster(
            bot.service, self.client, pacer=self.pacer, updates=self.updates, backlog=self.backlog
        )
        bot.closers.insert(0, poster.summaries.close)
        worker = OutboxWorker(
            bot.store, SLACK_TOPIC, poster, lane=poster.lane, backlog=self.backlog
        )
        bot.service.observers += [poster, worker]  # the poster learns each submission's lane
        bot.workers.append(worker)
        bot.spawn(worker.run(), "slack-cards")

        if self.socket_mode:
            app_token = self.settings.slack_app_token
            assert app_token
            try:
                # The Socket Mode client retries a refused app token forever; ask once so a
                # wrong token fails the start instead of hanging it.
                opened = await self.client.apps_connections_open(app_token=app_token)
            except SlackApiError as exc:
                error = exc.response.get("error")
                raise Unavailable(
                    f"Slack refused the app token: {error} (check SLACK_APP_TOKEN)"
                ) from exc
            handler = AsyncSocketModeHandler(self.bolt, app_token)
            handler.client.wss_uri = opened["url"]  # connect with this URL, no second call
            await handler.connect_async()  # type: ignore[no-untyped-call]
            bot.closers.append(handler.close_async)


async def _answer_of(answer: BoltResponse) -> web.Response:
    """Bolt's answer as aiohttp's, its body in bytes (the edge writes the answer to a request
    it received whole itself: a body of text would be a payload object to aiohttp)."""
    response = await to_aiohttp_response(answer)
    response.body = answer.body.encode()
    return response


def _unsigned() -> web.Response:
    return web.json_response({"error": "invalid_signature"}, status=401)


async def note_redelivery(
    req: AsyncBoltRequest, body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]
) -> BoltResponse:
    """Bolt middleware: say when Slack sends an event again (`X-Slack-Retry-Num`, with
    `X-Slack-Retry-Reason` such as `http_timeout`): the bot answered too late or not at all.
    Listeners that act on events act once per event id (`Listeners._first_delivery`)."""
    retry = req.headers.get("x-slack-retry-num")
    if retry and body.get("type") == "event_callback":
        reason = req.headers.get("x-slack-retry-reason") or ["unknown"]
        log.info(
            "Slack sent event %.40s again (retry %.3s: %.40s)",
            body.get("event_id"),
            retry[0],
            reason[0],
        )
    return await next()
