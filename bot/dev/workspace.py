"""The local workspace as a `create_app` extension: the emulated Slack Web API at `/slack/api/`,
the page at `/`, and the page's own endpoints under `/dev/` that act as a workspace member.

A click or a modal submit on the page becomes an interaction payload sent to the bot's real
`POST /slack/events`, signed with the signing secret exactly as Slack signs it; the bot answers
through the Web API, and the page follows the workspace's change feed.

A message typed in the page that starts with `/` and names a command of `manifest.yml` is sent
as that slash command, signed like the rest; the page answers other `/words` as Slack does.

The `/dev/` endpoints act as anyone in the workspace, so they answer only requests addressed to
this machine by name (`Host` 127.0.0.1 or localhost) and only JSON posts, which a page of another
site cannot send without being let in by CORS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from bot.app import Bot
from bot.config import Settings
from bot.dev.agents import AgentRuns, RunState, waiting_agents, watch_waiting
from bot.dev.examples import EXAMPLES, example
from bot.dev.snapshot import snapshot
from bot.devslack import (
    Deliverer,
    Delivery,
    DeliveryFailed,
    InteractionError,
    View,
    Workspace,
    create_slack_api,
)
from bot.devslack.scopes import MANIFEST
from bot.errors import BadRequest, Forbidden, NotFound, Unavailable
from bot.sdk import ApprovalClient

__all__ = ["ASSETS", "LOCAL_HOSTS", "SLACK_API_PREFIX", "DevWorkspace"]

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: where the emulated Web API is mounted; `SLACK_API_URL` is the app's origin plus this
SLACK_API_PREFIX = "/slack/api/"
#: the page's files: one HTML page, its script and its stylesheet
ASSETS = Path(__file__).resolve().parent.parent / "devslack" / "web"
#: host names the page may be reached by (anything else may be a DNS rebinding attempt)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
#: the longest a page's state request is held open waiting for a change
MAX_WAIT = 25.0
#: feed changes the page does not redraw for
_QUIET_CHANGES = frozenset({"api.call"})
_CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _is_local(request: web.Request) -> bool:
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return host.lower() in LOCAL_HOSTS


def _guarded(handler: Handler) -> Handler:
    """Refuse other sites: a foreign `Host`, a cross-site fetch, or a post that is not JSON."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not _is_local(request):
            raise Forbidden(f"the workspace answers only on 127.0.0.1, not {request.host!r}")
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise Forbidden("the workspace answers only its own page")
        if request.method == "POST" and request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(reason="send application/json")
        return await handler(request)

    return guarded


async def _json_body(request: web.Request) -> JSON:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object")
    return body


def _text(body: JSON, name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


@cache
def slash_commands(manifest: Path = MANIFEST) -> tuple[str, ...]:
    """The slash commands the app declares in its manifest (`/approvals`)."""
    data = yaml.safe_load(manifest.read_text()) if manifest.is_file() else None
    features = (data or {}).get("features") or {}
    return tuple(str(item["command"]) for item in features.get("slash_commands") or ())


def _answer(delivery: Delivery | None) -> web.Response:
    """What the bot answered Slack, for the page to show when something went wrong."""
    if delivery is None:
        return web.json_response({"ok": True, "status": None, "answer": None, "problems": []})
    try:
        answer = delivery.json()
    except json.JSONDecodeError:
        answer = delivery.body[:500]
    return web.json_response(
        {
            "ok": delivery.ok and not delivery.problems,
            "status": delivery.status,
            "answer": answer,
            "problems": delivery.problems,
        }
    )


@dataclass
class DevWorkspace:
    """The `create_app` extension behind `approval-bot dev`; only the dev app installs it."""

    settings: Settings
    workspace: Workspace = field(default_factory=Workspace)
    topics: Sequence[str] = ()

    def __post_init__(self) -> None:
        api_url = self.settings.slack_api_url
        if not api_url or not api_url.endswith(SLACK_API_PREFIX):
            raise ValueError(f"SLACK_API_URL must be this app's origin + {SLACK_API_PREFIX}")
        if not self.settings.slack_signing_secret:
            raise ValueError("the local workspace signs what it sends: set a signing secret")
        #: this app's own address, e.g. http://127.0.0.1:3000
        self.origin = api_url.removesuffix(SLACK_API_PREFIX)
        self.workspace.api_url = api_url
        self.deliverer = Deliverer(
            self.workspace, self.origin + "/slack/events", self.settings.slack_signing_secret
        )
        self.agents = AgentRuns(self.workspace.feed, self._client)
        self.closing = False
        #: the running bot, once installed: whose waits the agent panel shows
        self.bot: Bot | None = None
        self._watcher: asyncio.Task[None] | None = None

    def _client(self) -> ApprovalClient:
        return ApprovalClient(self.origin, token=self.settings.api_token)

    # -- the extension protocol ----------------------------------------------------------------

    def install(self, app: web.Application, bot: Bot) -> None:
        """Mount the Web API, the page and its endpoints."""
        self.bot = bot
        api = create_slack_api(self.workspace, bot_token=self.settings.slack_bot_token)
        app.add_subapp(SLACK_API_PREFIX.rstrip("/"), api)
        routes = [
            ("GET", "/", self.page),
            ("GET", "/dev/assets/{name}", self.asset),
            ("GET", "/dev/state", self.state),
            ("POST", "/dev/click", self.click),
            ("POST", "/dev/submit", self.submit),
            ("POST", "/dev/close", self.close),
            ("POST", "/dev/reply", self.reply),
            ("POST", "/dev/command", self.command),
            ("POST", "/dev/opened", self.opened),
            ("POST", "/dev/home", self.home),
            ("POST", "/dev/simulate", self.simulate),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, _guarded(handler))
        app.on_shutdown.append(self._shutdown)

    async def start(self, app: web.Application, bot: Bot) -> None:
        """Nothing to connect (the Web API is this app's own); follow who waits for the page."""
        watching = watch_waiting(bot.service, self.workspace.feed)
        self._watcher = asyncio.get_running_loop().create_task(watching, name="dev-waiting")

    async def _shutdown(self, app: web.Application) -> None:
        self.closing = True
        self.workspace.feed.publish("workspace.closing")  # wakes every waiting page
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.agents.stop()
        await self.deliverer.close()

    # -- the page ------------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.StreamResponse:
        """`GET /`: the workspace page."""
        response = web.FileResponse(ASSETS / "index.html")
        response.headers["Content-Security-Policy"] = _PAGE_POLICY
        response.headers["Cache-Control"] = "no-store"
        return response

    async def asset(self, request: web.Request) -> web.StreamResponse:
        """`GET /dev/assets/{name}`: the page's script and stylesheet."""
        name = request.match_info["name"]
        path = ASSETS / name
        kind = _CONTENT_TYPES.get(path.suffix)
        if kind is None or "/" in name or name.startswith(".") or not path.is_file():
            raise NotFound(f"no asset {name!r}")
        response = web.FileResponse(path, headers={"Content-Type": kind})
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def state(self, request: web.Request) -> web.Response:
        """`GET /dev/state?user=U…&since=N&wait=S`: the snapshot, once something changed."""
        user = request.query.get("user") or "U0ALICE"
        if user not in self.workspace.users:
            raise NotFound(f"no user {user!r} in the workspace")
        try:
            since = int(request.query.get("since", "0"))
            wait = min(MAX_WAIT, max(0.0, float(request.query.get("wait", "0"))))
        except ValueError:
            raise BadRequest("since and wait must be numbers") from None
        await self._changed_since(since, wait)
        body = snapshot(self.workspace, user, self.agents.runs, EXAMPLES)
        body["waiting"] = await self._waiting()
        body["commands"] = list(slash_commands())
        for note in body["ephemerals"]:
            note["under"] = self.workspace.ephemeral_anchors.get(note["ts"])
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def _waiting(self) -> list[JSON]:
        """Agents waiting on the bot besides the page's own runs (those show as runs)."""
        if self.bot is None:
            return []
        runs = self.agents.runs
        ours = {r.approval_id for r in runs if r.state is RunState.WAITING and r.approval_id}
        waiting = await waiting_agents(self.bot.service, besides=ours)
        return [agent.to_json() for agent in waiting]

    async def _changed_since(self, since: int, wait: float) -> None:
        """Return once a change the page draws is numbered above `since`, or `wait` passes."""
        feed = self.workspace.feed
        if since > feed.last_seq:
            return  # a page from before a restart: it needs the snapshot now
        deadline = time.monotonic() + wait
        while not self.closing:
            if any(change.kind not in _QUIET_CHANGES for change in feed.since(since)):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await feed.changes_since(feed.last_seq, remaining)

    # -- acting as a member --------------------------------------------------------------------

    def _member(self, body: JSON) -> str:
        user = _text(body, "user")
        assert user is not None
        if user not in self.workspace.users or self.workspace.users[user].is_bot:
            raise NotFound(f"no member {user!r} in the workspace")
        return user

    async def _deliver(self, send: Awaitable[Delivery | None]) -> web.Response:
        try:
            return _answer(await send)
        except InteractionError as exc:
            raise NotFound(str(exc)) from None
        except DeliveryFailed as exc:
            raise Unavailable(f"the bot did not answer: {exc}") from None

    async def click(self, request: web.Request) -> web.Response:
        """`POST /dev/click`: press a button on a message (`channel`, `ts`) or in a view."""
        body = await _json_body(request)
        user = self._member(body)
        action_id = _text(body, "actionId")
        assert action_id is not None
        block_id = _text(body, "blockId", required=False)
        view_id = _text(body, "viewId", required=False)
        if view_id is not None:
            send = self.deliverer.click_in_view(view_id, action_id, user=user, block_id=block_id)
            return await self._deliver(send)
        channel, ts = _text(body, "channel"), _text(body, "ts")
        assert channel is not None and ts is not None
        send = self.deliverer.click(channel, ts, action_id, user=user, block_id=block_id)
        return await self._deliver(send)

    async def submit(self, request: web.Request) -> web.Response:
        """`POST /dev/submit`: press a modal's submit button with `values` by block id."""
        body = await _json_body(request)
        user = self._member(body)
        view_id = _text(body, "viewId")
        assert view_id is not None
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise BadRequest("values must be an object keyed by block_id")
        return await self._deliver(self.deliverer.submit_view(view_id, values, user=user))

    async def close(self, request: web.Request) -> web.Response:
        """`POST /dev/close`: dismiss a modal."""
        body = await _json_body(request)
        user = self._member(body)
        view_id = _text(body, "viewId")
        assert view_id is not None
        return await self._deliver(self.deliverer.close_view(view_id, user=user))

    async def reply(self, request: web.Request) -> web.Response:
        """`POST /dev/reply`: post a message, or a reply in the thread of `threadTs`."""
        body = await _json_body(request)
        user = self._member(body)
        channel, text = _text(body, "channel"), _text(body, "text")
        assert channel is not None and text is not None
        thread_ts = _text(body, "threadTs", required=False)
        send = self.deliverer.post_as_user(channel, text, user=user, thread_ts=thread_ts)
        return await self._deliver(send)

    async def command(self, request: web.Request) -> web.Response:
        """`POST /dev/command`: run a slash command of the app (`command`, `text`) in `channel`;
        its answer shows as Slack shows it. Slack sends no other command to the app."""
        body = await _json_body(request)
        user = self._member(body)
        channel, command = _text(body, "channel"), _text(body, "command")
        assert channel is not None and command is not None
        if command not in slash_commands():
            raise NotFound(f"{command} is not a valid command")
        text = _text(body, "text", required=False) or ""
        return await self._deliver(
            self.deliverer.slash_command(command, text, user=user, channel=channel)
        )

    async def opened(self, request: web.Request) -> web.Response:
        """`POST /dev/opened`: the page was (re)loaded as a member. Slack closes a client's
        modals when it reloads, so this member's open modals are closed (the bot is not sent
        `view_closed`: nobody dismissed them)."""
        user = self._member(await _json_body(request))
        closed = self._close_modals(user)
        return web.json_response({"ok": True, "closed": [view.id for view in closed]})

    def _close_modals(self, user: str) -> list[View]:
        stack = self.workspace.open_modals(user)
        return self.workspace.close_view(stack[0].id, clear=True) if stack else []

    async def home(self, request: web.Request) -> web.Response:
        """`POST /dev/home`: the member opens the bot's App Home tab."""
        user = self._member(await _json_body(request))
        return await self._deliver(self.deliverer.open_home(user))

    async def simulate(self, request: web.Request) -> web.Response:
        """`POST /dev/simulate`: a pretend agent submits an example call and waits."""
        body = await _json_body(request)
        key = _text(body, "example")
        assert key is not None
        try:
            chosen = example(key)
        except KeyError:
            known = ", ".join(item.key for item in EXAMPLES)
            raise NotFound(f"no example {key!r}; examples: {known}") from None
        run = self.agents.start(chosen)
        return web.json_response(run.to_json(), status=201)
