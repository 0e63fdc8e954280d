"""Slack lookups the bot repeats on every click — display names and user group members —
cached for a while so a burst of clicks costs Slack one call each."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["SlackChannels", "SlackGroups", "TtlCache", "UserNames"]

log = logging.getLogger(__name__)

V = TypeVar("V")


@dataclass
class TtlCache(Generic[V]):
    """Values by key, each kept `ttl` seconds; a failed refresh falls back to the last value.

    A failure is remembered too, for `retry_after` seconds: while Slack is down or slow, a
    burst of clicks costs it one call, not one each.
    """

    ttl: float
    max_size: int = 10_000
    retry_after: float = 30.0
    _items: OrderedDict[str, tuple[float, V]] = field(default_factory=OrderedDict, init=False)

    async def get(self, key: str, fetch: Callable[[str], Awaitable[V]], fallback: V) -> V:
        """The cached value, or `fetch(key)`; when Slack fails, the stale value or `fallback`."""
        cached = self._items.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            value, ttl = await fetch(key), self.ttl
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            reason = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
            log.warning("Slack lookup of %s failed: %s", key, reason)
            value, ttl = (cached[1] if cached else fallback), self.retry_after
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

    async def _fetch(self, user: str) -> str | None:
        response = await self.client.users_info(user=user)
        info = response.get("user") or {}
        profile = info.get("profile") or {}
        return str(
            profile.get("display_name") or profile.get("real_name") or info.get("name") or user
        )


@dataclass
class SlackGroups:
    """User group members from `usergroups.users.list`."""

    client: AsyncWebClient
    cache: TtlCache[frozenset[str]] = field(default_factory=lambda: TtlCache(ttl=300.0))

    async def members(self, group: str) -> set[str]:
        """The user ids in `group` (empty when Slack cannot say)."""
        return set(await self.cache.get(group, self._fetch, frozenset()))

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
