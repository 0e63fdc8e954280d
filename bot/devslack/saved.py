"""A workspace's lasting part as JSON, so a local workspace can outlive its process.

Kept: what the bot refers to by id or ``ts`` — users, channels (direct messages included) with
their members, user groups, and every message with its thread, reactions, metadata and edits.
Dropped, as a reload of Slack drops them: ephemeral notes, open modals, trigger ids and
response URLs. App Home is drawn again when opened; the record of Web API calls and the change
feed start empty.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from bot.devslack.model import Channel, Message, User, UserGroup
from bot.devslack.seed import populate
from bot.devslack.workspace import Workspace

__all__ = ["SAVED_VERSION", "dump", "restore"]

JSON = dict[str, Any]

#: the shape of the document; another number is refused rather than half read
SAVED_VERSION = 1


class _Saved(BaseModel):
    """The document, checked field by field when read back."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    users: list[User]
    channels: list[Channel]
    usergroups: list[UserGroup]
    messages: list[Message]


def dump(ws: Workspace) -> JSON:
    """The lasting part of ``ws``, as plain JSON values (a copy: later changes do not show)."""
    return {
        "version": SAVED_VERSION,
        "users": [asdict(user) for user in ws.users.values()],
        "channels": [asdict(channel) for channel in ws.channels.values()],
        "usergroups": [asdict(group) for group in ws.usergroups.values()],
        "messages": [asdict(m) for messages in ws.messages.values() for m in messages],
    }


def restore(data: object) -> Workspace:
    """A workspace holding what ``dump`` wrote, plus any seed member, channel or group it
    lacks. Raises ``ValueError`` (pydantic's ``ValidationError`` among them) when ``data`` is
    not such a document."""
    saved = _Saved.model_validate(data)
    ws = Workspace(seed=False)
    ws.users.update((user.id, user) for user in saved.users)
    ws.channels = {channel.id: channel for channel in saved.channels}
    ws.usergroups = {group.id: group for group in saved.usergroups}
    ws.messages = {channel_id: [] for channel_id in ws.channels}
    for message in saved.messages:
        if message.channel not in ws.messages:
            raise ValueError(f"message {message.ts} is in an unknown channel {message.channel}")
        ws.messages[message.channel].append(message)
        ws.note_ts(message.ts)
        if message.edited_ts is not None:
            ws.note_ts(message.edited_ts)
    populate(ws)
    return ws
