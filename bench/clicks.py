"""People clicking in Slack: signed `block_actions` interactions POSTed to `/slack/events`,
built by `bot.devslack.Deliverer` from the card in the emulated workspace, each timed from the
moment its request is sent to the moment the bot's answer (the ack) is read."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from bench.agents import CardRef
from bench.rig import SIGNING_SECRET, Rig
from bot.devslack import Deliverer, Delivery, DeliveryFailed
from bot.devslack.interactions import HttpTransport, RequestKind
from bot.slack.cards import APPROVE_ACTION

__all__ = ["Clicker", "Exchange"]

#: Slack gives up on an interaction the app has not acknowledged within 3 s
SLACK_ACK_TIMEOUT = 3.0


@dataclass(frozen=True)
class Exchange:
    """One request to `/slack/events`: when it was sent, how long the answer took, its status."""

    sent: float
    seconds: float
    #: the HTTP status, or 0 when no answer came within Slack's 3 s
    status: int


#: the exchanges of the click running in this task (clicks run concurrently)
_exchanges: ContextVar[list[Exchange]] = ContextVar("exchanges")


@dataclass
class TimedTransport:
    """Signed HTTP to the bot, timing each request for the click that sent it."""

    inner: HttpTransport

    async def send(
        self, kind: RequestKind, payload: dict[str, Any], *, retry_num: int | None = None
    ) -> Delivery:
        sent = time.perf_counter()
        status = 0
        try:
            delivery = await self.inner.send(kind, payload, retry_num=retry_num)
            status = delivery.status
            return delivery
        finally:
            _exchanges.get().append(Exchange(sent, time.perf_counter() - sent, status))

    async def close(self) -> None:
        await self.inner.close()


class Clicker:
    """Clicks Approve on cards as a workspace member would, over the rig's HTTP session."""

    def __init__(self, rig: Rig, user: str = "U0ALICE") -> None:
        inner = HttpTransport(
            rig.events_url, SIGNING_SECRET, session=rig.http, timeout=SLACK_ACK_TIMEOUT
        )
        self.transport = TimedTransport(inner)
        self.deliverer = Deliverer(rig.workspace, transport=self.transport)
        self.user = user

    async def approve(self, card: CardRef) -> Exchange:
        """Click Approve on `card`; the timed exchange (status 0 when the bot did not answer)."""
        channel, ts = card
        exchanges: list[Exchange] = []
        token = _exchanges.set(exchanges)
        try:
            await self.deliverer.click(channel, ts, APPROVE_ACTION, user=self.user)
        except DeliveryFailed:
            pass  # recorded as status 0: Slack would call this click failed
        finally:
            _exchanges.reset(token)
        return exchanges[0]
