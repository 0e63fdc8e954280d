"""Events out: the in-process broadcast behind `GET /v1/events`, and signed webhooks.

Both read the audit table, so a reconnecting SSE client (`Last-Event-ID`) and a webhook
receiver that was down get every state change, in order, at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from bot.models import Approval
from bot.outbox import Retry, seconds_after
from bot.store import Event, OutboxItem, Store

__all__ = ["WEBHOOK_TOPIC", "Broadcast", "WebhookSender", "event_body", "sign_body"]

WEBHOOK_TOPIC = "webhook"


@dataclass
class Broadcast:
    """Wakes every listener at once when something changed; listeners re-read the store."""

    _event: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def close(self) -> None:
        """Shutting down: wake every listener for the last time."""
        self.closed = True
        self.notify()

    def approval_changed(self, approval: Approval, kind: str) -> None:
        """Observer hook."""
        self.notify()

    def notify(self) -> None:
        """Wake all current listeners."""
        self._event.set()
        self._event = asyncio.Event()

    def armed(self) -> asyncio.Event:
        """What `wait` waits for, taken *before* reading the store: a change committed while
        the read runs has then already set it, and is never slept through."""
        return self._event

    async def wait(self, timeout: float, armed: asyncio.Event | None = None) -> bool:
        """True when notified within `timeout` seconds (or since `armed` was taken)."""
        event = armed or self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        return False


def event_body(event: Event) -> bytes:
    """`{"event": status, "approval": record}`: the SSE `data:` and the webhook body."""
    status = event.name
    return json.dumps(
        {"event": status, "approval": event.record}, separators=(",", ":"), ensure_ascii=False
    ).encode()


def sign_body(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>`, sent as `X-Approval-Signature`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class WebhookSender:
    """Posts one outbox item's event to `APPROVAL_WEBHOOK_URL`; anything but 2xx retries."""

    store: Store
    url: str
    secret: str | None
    session: aiohttp.ClientSession
    timeout: float = 10.0

    async def __call__(self, item: OutboxItem) -> None:
        event = await self.store.event(item.event_id)
        body = event_body(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "approval-bot",
            "X-Approval-Event-Id": str(event.id),
            "X-Approval-Event": event.name,
        }
        if self.secret:
            headers["X-Approval-Signature"] = sign_body(self.secret, body)
        try:
            async with self.session.post(
                self.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                if response.status >= 300:
                    after = seconds_after(response.headers.get("Retry-After"))
                    raise Retry(f"HTTP {response.status}", after=after)
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            password = urlsplit(self.url).password
            # the reason is logged and stored: never the password a webhook URL may carry
            raise Retry(reason.replace(password, "***") if password else reason) from exc
