"""Finding the cards Slack already holds for an approval, before posting one again.

A `chat.postMessage` whose answer never arrived (the client's timeout, a 5xx, a crash between
the post and saving its `ts`) may still have made a card. Every card carries message metadata,
`{"event_type": "approval_card", "event_payload": {"id": "apr_…"}}`, so the poster reads the
channel (or the card's thread) from a little before the approval was created and looks for
it. Slack leaves metadata out of `conversations.history` and `conversations.replies` unless
asked with `include_all_metadata` (https://api.slack.com/metadata/using).

Both methods are Tier 3 for internal apps (https://api.slack.com/methods/conversations.history)
and need the bot in the channel: it joins a public one first, as it does after posting.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

__all__ = [
    "CARD_EVENT",
    "DUPLICATE_EVENT",
    "CardFinder",
    "card_id",
    "card_metadata",
]

#: the metadata event type of every card
CARD_EVENT = "approval_card"
#: a card posted twice, rewritten to point at the one kept: no longer a card
DUPLICATE_EVENT = "approval_card_duplicate"
#: how long before the approval's creation the search starts: Slack's clock is not ours
CLOCK_SKEW = timedelta(minutes=2)
#: messages asked per page, and pages read at most (a card is posted soon after its approval)
PAGE_SIZE = 200
MAX_PAGES = 20
#: what a channel id looks like; anything else (`#ops`, `ops`) is a name to look up
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")


def card_metadata(approval_id: str, event_type: str = CARD_EVENT) -> dict[str, Any]:
    """The message metadata a card carries, so it can be found again."""
    return {"event_type": event_type, "event_payload": {"id": approval_id}}


def card_id(message: Mapping[str, Any]) -> str | None:
    """The approval id of a card message, or None for any other message."""
    metadata = message.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("event_type") != CARD_EVENT:
        return None
    payload = metadata.get("event_payload")
    found = payload.get("id") if isinstance(payload, Mapping) else None
    return found if isinstance(found, str) else None


@dataclass
class CardFinder:
    """Looks for an approval's cards in a channel or thread; raises what Slack raises."""

    client: AsyncWebClient
    #: joins a public channel (the poster's `join`), so its history can be read
    join: Callable[[str], Awaitable[None]]
    #: channel names (`#ops`) → ids, from posts and look-ups
    _ids: dict[str, str] = field(default_factory=dict, init=False)

    def learn(self, asked: str, channel: str) -> None:
        """A post to `asked` landed in `channel`: remember the id of the name."""
        if asked != channel:
            self._ids[asked] = channel

    async def channel_id(self, channel: str) -> str | None:
        """The id of `channel` (an id already, or a name); None when no channel has that name.

        History is read by id only; a name is looked up in `conversations.list` (Tier 2),
        once per name and process."""
        if _CHANNEL_ID.fullmatch(channel):
            return channel
        if channel in self._ids:
            return self._ids[channel]
        name = channel.removeprefix("#")
        cursor = None
        for _ in range(MAX_PAGES):
            page = await self.client.conversations_list(
                types="public_channel,private_channel", limit=PAGE_SIZE, cursor=cursor
            )
            for found in page.get("channels") or ():
                if found.get("name") == name:
                    self._ids[channel] = str(found["id"])
                    return self._ids[channel]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None

    async def find(
        self, approval_id: str, channel: str, thread_ts: str | None, since: datetime
    ) -> tuple[str, list[str]] | None:
        """(channel id, the `ts` of each card of `approval_id` there, oldest first), or None
        when the channel does not exist for the bot; cards posted from `since` are seen."""
        channel_id = await self.channel_id(channel)
        if channel_id is None:
            return None
        await self.join(channel_id)
        oldest = f"{(since - CLOCK_SKEW).timestamp():.6f}"
        found: list[str] = []
        cursor = None
        for _ in range(MAX_PAGES):
            page = await self._page(channel_id, thread_ts, oldest, cursor)
            for message in page.get("messages") or ():
                if card_id(message) == approval_id:
                    found.append(str(message["ts"]))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return channel_id, sorted(set(found), key=float)

    async def _page(
        self, channel: str, thread_ts: str | None, oldest: str, cursor: str | None
    ) -> Any:
        if thread_ts is None:
            return await self.client.conversations_history(
                channel=channel,
                oldest=oldest,
                include_all_metadata=True,
                limit=PAGE_SIZE,
                cursor=cursor,
            )
        return await self.client.conversations_replies(
            channel=channel,
            ts=thread_ts,
            oldest=oldest,
            include_all_metadata=True,
            limit=PAGE_SIZE,
            cursor=cursor,
        )
