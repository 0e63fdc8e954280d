"""Wiring: one aiohttp application holding the store, the service, the agent API and the
background workers (timers, webhooks), started and stopped with the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from bot.api import MAX_BODY, ApiSettings, add_api_routes, error_middleware
from bot.config import ConfigError, Settings
from bot.edge import EDGE, Edge
from bot.events import WEBHOOK_TOPIC, Broadcast, WebhookSender
from bot.outbox import OutboxWorker
from bot.policy import load_routing
from bot.service import ApprovalService, Router
from bot.slack.poster import SLACK_TOPIC
from bot.store import Store, open_store

__all__ = ["BOT", "Bot", "Extension", "create_app", "queued_topics"]

log = logging.getLogger(__name__)


@dataclass
class Bot:
    """The running parts, reachable from the app as `app[BOT]`."""

    settings: Settings
    store: Store
    service: ApprovalService
    broadcast: Broadcast
    api: ApiSettings
    session: aiohttp.ClientSession | None = None
    workers: list[OutboxWorker] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a background loop for the app's life; a crash is logged, not swallowed."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(_report_crash)
        self.tasks.append(task)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped", task.get_name(), exc_info=task.exception())


BOT: web.AppKey[Bot] = web.AppKey("bot", Bot)


class Extension(Protocol):
    """More of the bot on the same app (the Slack surface, the local workspace)."""

    @property
    def topics(self) -> Sequence[str]:
        """Outbox topics this extension drains; the store queues work for them on every change."""

    def install(self, app: web.Application, bot: Bot) -> None:
        """Add routes and listeners, before the app starts."""

    async def start(self, app: web.Application, bot: Bot) -> None:
        """Connect and spawn workers, once the store is open; raise to refuse to start."""


def create_app(
    settings: Settings,
    *,
    router: Router | None = None,
    extensions: Sequence[Extension] = (),
) -> web.Application:
    """The whole bot as one aiohttp app; the store opens when the app starts."""
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app[EDGE] = Edge()  # the body deadline, the connection cap; served by `bot.edge.BotRunner`
    states, updates = queued_topics(settings)
    extra = [t for extension in extensions for t in extension.topics if t not in updates]
    store = open_store(settings.db, outbox_topics=states, update_topics=updates + extra)
    broadcast = Broadcast()
    service = ApprovalService(store, default_channel=settings.channel)
    if router is not None:
        service.router = router
    elif settings.config:
        service.router = load_routing(settings.config)
    service.observers.append(broadcast)
    api = ApiSettings(
        api_token=settings.api_token, admin_token=settings.admin_token, broadcast=broadcast
    )
    bot = Bot(settings, store, service, broadcast, api)
    app[BOT] = bot
    add_api_routes(app, service, api)
    for extension in extensions:
        extension.install(app, bot)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        await service.start()
        bot.session = aiohttp.ClientSession()
        if settings.webhook_url:
            sender = WebhookSender(
                store, settings.webhook_url, settings.webhook_secret, bot.session
            )
            worker = OutboxWorker(store, WEBHOOK_TOPIC, sender)
            service.observers.append(worker)
            bot.workers.append(worker)
            bot.spawn(worker.run(), "webhooks")
        for extension in extensions:
            await extension.start(app, bot)
        bot.spawn(service.run_timers(), "timers")
        if settings.config and router is None:
            _reload_on_sighup(service, settings.config)
        yield
        for task in bot.tasks:  # workers first, so nothing uses what closes next
            task.cancel()
        for task in bot.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for close in bot.closers:
            await close()
        await bot.session.close()
        await store.close()

    async def release(app: web.Application) -> None:  # before in-flight requests are awaited
        service.release_waiters()
        broadcast.close()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(release)
    return app


def queued_topics(settings: Settings) -> tuple[list[str], list[str]]:
    """The outbox topics any process writing this database queues work for: (state changes,
    state changes and updates of pending approvals). The CLI deciding on the bot's database
    queues the same, so the running bot's card and webhook follow its decisions."""
    states = [WEBHOOK_TOPIC] if settings.webhook_url else []
    updates = [SLACK_TOPIC] if settings.slack_bot_token else []
    return states, updates


def _reload_on_sighup(service: ApprovalService, path: str) -> None:
    """`kill -HUP`: re-read the routing file; a bad one is logged and the old one kept."""

    def reload() -> None:
        try:
            service.router = load_routing(path)
        except ConfigError as exc:
            log.error("routing file not reloaded, keeping the previous one: %s", exc)
            return
        log.info("routing file %s reloaded", path)

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
