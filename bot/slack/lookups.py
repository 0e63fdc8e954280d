"""Slack lookups the bot repeats on every click — display names and user group members —
cached for a while so a burst of clicks costs Slack one call each."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import Unavailable
from bot.outbox import seconds_after
from bot.slack.pacing import ChannelPacer

__all__ = [
    "SlackChannels",
    "SlackGroups",
    "SlackTooSlow",
    "TtlCache",
    "UserNames",
    "answer_by",
]

log = logging.getLogger(__name__)

V = TypeVar("V")


#: When the Slack request being handled must be answered (loop time), or None: a click, a
#: modal submit or a command has 3 s, so a lookup that cannot finish in time says so instead
#: of making Slack give up on the answer. Set by the Slack edge for the request's task.
answer_by: ContextVar[float | None] = ContextVar("answer_by", default=None)

#: how long a lookup with no answer deadline (App Home, a late answer) waits out 429s
PATIENCE = 120.0


class SlackTooSlow(Unavailable):
    """A lookup the decision needs could not finish before Slack's deadline."""

    def __init__(self, after: float | None = None) -> None:
        wait = f" in about {math.ceil(after)} s" if after else " in a moment"
        super().__init__(
            f"Slack did not say in time who may decide this; nothing changed, try again{wait}"
        )


def _retry_after(exc: SlackApiError) -> float | None:
    """`Retry-After` of a 429, in seconds (at least 1); None for any other failure."""
    if exc.response.status_code != 429:
        return None
    headers = exc.response.headers
    return max(1.0, seconds_after(headers.get("Retry-After") or headers.get("retry-after")) or 1)


@dataclass
class TtlCache(Generic[V]):
    """Values by key, each kept `ttl` seconds; a failed refresh falls back to the last value.

    A failure is remembered too, for `retry_after` seconds: while Slack is down or slow, a
    burst of clicks costs it one call, not one each. Concurrent askers for one key share one
    call. A 429 with nothing cached is not a failure: the call waits its `Retry-After` and asks
    again, so rate limiting never turns into "nobody" (with a value cached, that answers).
    An asker under an `answer_by` deadline stops waiting at it with `SlackTooSlow`, and the
    call goes on, so asking again finds the answer cached.
    """

    ttl: float
    max_size: int = 10_000
    retry_after: float = 30.0
    #: paces the calls (a per-method tier), or None
    pacer: ChannelPacer | None = None
    method: str = ""
    _items: OrderedDict[str, tuple[float, V]] = field(default_factory=OrderedDict, init=False)
    _asking: dict[str, asyncio.Task[V]] = field(default_factory=dict, init=False)
    _ratelimited_until: float = field(default=0.0, init=False)

    async def get(self, key: str, fetch: Callable[[str], Awaitable[V]], fallback: V) -> V:
        """The cached value, or `fetch(key)`; when Slack fails, the stale value or `fallback`."""
        cached = self._items.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.create_task(self._ask(key, fetch, fallback, cached))
            self._asking[key] = asking
            asking.add_done_callback(lambda _: self._asking.pop(key, None))
        deadline = answer_by.get()
        if deadline is None:
            return await asyncio.shield(asking)
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(asyncio.shield(asking), deadline - loop.time())
        except TimeoutError:
            if cached:  # stale beats too late
                return cached[1]
            raise SlackTooSlow(self._ratelimited_until - loop.time()) from None

    def fresh(self, key: str) -> V | None:
        """The cached value while it is fresh, else None: what `get` answers without a call."""
        cached = self._items.get(key)
        return cached[1] if cached and cached[0] > time.monotonic() else None

    async def _ask(
        self,
        key: str,
        fetch: Callable[[str], Awaitable[V]],
        fallback: V,
        cached: tuple[float, V] | None,
    ) -> V:
        answer_by.set(None)  # this call serves every asker: it runs to its end
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + PATIENCE
        while True:
            if self.pacer is not None:
                await self.pacer.wait(self.method)
            try:
                value, ttl = await fetch(key), self.ttl
                break
            except SlackApiError as exc:
                after = _retry_after(exc)
                if after is not None and not cached and loop.time() + after < give_up_at:
                    log.info("Slack lookup of %s rate limited; asking again in %g s", key, after)
                    self._ratelimited_until = loop.time() + after
                    await asyncio.sleep(after)
                    continue
                log.warning("Slack lookup of %s failed: %s", key, exc.response.get("error"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("Slack lookup of %s failed: %r", key, exc)
            value, ttl = (cached[1] if cached else fallback), self.retry_after
            break
        self._items[key] = (time.monotonic() + ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_size:
            self._items.popitem(last=False)
        return value


@dataclass
class UserNames:
    """Display names from `users.info`."""

    client: AsyncWebClient
    cache: TtlCache[str | None] = field(default_factory=lambda: TtlCache(ttl=3600.0))

    async def name(self, user: str) -> str | None:
        """The person's display name, or None when Slack cannot say."""
        return await self.cache.get(user, self._fetch, None)

    def name_now(self, user: str, payload: dict[str, Any]) -> str | None:
        """The person's name without waiting: the cached display name, else the name Slack put
        in the payload (`user.name`). A click's decision is committed before it is answered,
        and Slack's 3 s must not depend on `users.info`; a missing name is fetched meanwhile."""
        cached = self.cache._items.get(user)
        if cached is None:
            task = asyncio.create_task(self.name(user))
            task.add_done_callback(_ignore)
        else:
            return cached[1]
        acting = payload.get("user")
        given = acting.get("name") or acting.get("username") if isinstance(acting, dict) else None
        return given if isinstance(given, str) and given else None

    async def _fetch(self, user: str) -> str | None:
        response = await self.client.users_info(user=user)
        info = response.get("user") or {}
        profile = info.get("profile") or {}
        return str(
            profile.get("display_name") or profile.get("real_name") or info.get("name") or user
        )


def _ignore(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


@dataclass
class SlackGroups:
    """User group members from `usergroups.users.list`."""

    client: AsyncWebClient
    #: `usergroups.users.list` is Tier 2: about 20 a minute, in bursts of about as many
    cache: TtlCache[frozenset[str]] = field(
        default_factory=lambda: TtlCache(
            ttl=300.0,
            pacer=ChannelPacer(rate=20 / 60, burst=20),
            method="usergroups.users.list",
        )
    )

    async def members(self, group: str) -> set[str]:
        """The user ids in `group` (empty when Slack cannot say)."""
        return set(await self.cache.get(group, self._fetch, frozenset()))

    def cached(self, group: str) -> frozenset[str] | None:
        return self.cache.fresh(group)

    async def _fetch(self, group: str) -> frozenset[str]:
        response = await self.client.usergroups_users_list(usergroup=group)
        return frozenset(str(u) for u in response.get("users") or [])


@dataclass
class SlackChannels:
    """Channel members from `conversations.members`: who may decide where no approvers are
    named. A failed lookup counts as nobody (a refusal, never an approval)."""

    client: AsyncWebClient
    cache: TtlCache[frozenset[str]] = field(default_factory=lambda: TtlCache(ttl=300.0))

    async def members(self, channel: str) -> set[str]:
        """The user ids in `channel` (empty when Slack cannot say)."""
        return set(await self.cache.get(channel, self._fetch, frozenset()))

    def cached(self, channel: str) -> frozenset[str] | None:
        return self.cache.fresh(channel)

    async def _fetch(self, channel: str) -> frozenset[str]:
        members: set[str] = set()
        cursor = None
        while True:
            response = await self.client.conversations_members(
                channel=channel, limit=1000, cursor=cursor
            )
            members.update(str(u) for u in response.get("members") or [])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return frozenset(members)
