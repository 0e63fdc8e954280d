"""Records the emulated workspace holds, each able to render itself as Slack's JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiCall",
    "Channel",
    "Ephemeral",
    "Message",
    "ResponseTarget",
    "Trigger",
    "User",
    "UserGroup",
    "View",
]

JSON = dict[str, Any]


@dataclass
class User:
    """A workspace member (or the bot user)."""

    id: str
    name: str
    real_name: str
    is_bot: bool = False
    team_id: str = "T0DEV"

    def to_slack(self) -> JSON:
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "is_bot": self.is_bot,
            "profile": {"display_name": self.name, "real_name": self.real_name},
        }


@dataclass
class Channel:
    """A public or private channel, or the bot's direct message with one ``user``.

    ``members`` decides who sees it: on the workspace page, in ``conversations.members``, and
    for the bot itself, since a private channel the bot is not in does not exist for its token.
    """

    id: str
    name: str
    members: list[str] = field(default_factory=list)
    #: set for a direct message (``is_im``)
    user: str | None = None
    private: bool = False
    #: users added to the workspace later join it too, as new members join Slack's default
    #: channels; true for public channels created without a member list
    auto_join: bool = False
    #: the bot user, whose membership ``is_member`` reports (conversations.* answer the bot)
    bot_user: str = "U0BOT"
    #: archived: readable, but ``chat.postMessage`` answers ``is_archived``
    archived: bool = False

    @property
    def is_im(self) -> bool:
        return self.user is not None

    @property
    def is_private(self) -> bool:
        return self.private or self.is_im

    def to_slack(self) -> JSON:
        out: JSON = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_im,
            "is_im": self.is_im,
            "is_private": self.is_private,
            "is_archived": self.archived,
            "is_member": self.bot_user in self.members,
            "num_members": len(self.members),
        }
        if self.user is not None:
            out["user"] = self.user
        return out


@dataclass
class UserGroup:
    """A user group (``@sre``), mentioned as ``<!subteam^S…>``."""

    id: str
    handle: str
    users: list[str]


@dataclass
class Message:
    """A channel message or thread reply, posted by the bot (``bot_id``) or by a user."""

    channel: str
    ts: str
    text: str
    blocks: list[JSON]
    user: str
    bot_id: str | None = None
    app_id: str | None = None
    team: str = "T0DEV"
    thread_ts: str | None = None
    reply_broadcast: bool = False
    metadata: JSON | None = None
    edited_ts: str | None = None
    replies: list[str] = field(default_factory=list)
    reply_users: list[str] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def reply_count(self) -> int:
        return len(self.replies)

    def to_slack(self, *, metadata: bool = True) -> JSON:
        """The message as Slack shows it; ``metadata=False`` leaves out its metadata, as
        ``conversations.history`` and ``.replies`` do unless asked ``include_all_metadata``."""
        out: JSON = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        if self.bot_id is not None:
            out["bot_id"] = self.bot_id
            out["app_id"] = self.app_id
        out["team"] = self.team
        if self.blocks:
            out["blocks"] = self.blocks
        if self.is_reply:
            out["thread_ts"] = self.thread_ts
            if self.reply_broadcast:
                out["subtype"] = "thread_broadcast"
        elif self.replies:
            out["thread_ts"] = self.ts
            out["reply_count"] = self.reply_count
            out["reply_users"] = list(self.reply_users)
            out["reply_users_count"] = len(self.reply_users)
            out["latest_reply"] = self.replies[-1]
        if metadata and self.metadata is not None:
            out["metadata"] = self.metadata
        if self.edited_ts is not None:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        return out


@dataclass
class Ephemeral:
    """A message only one user sees (``chat.postEphemeral`` or an ephemeral response_url)."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[JSON]
    thread_ts: str | None = None

    def to_slack(self) -> JSON:
        out: JSON = {"type": "message", "subtype": "ephemeral", "ts": self.ts, "text": self.text}
        out.update({"channel": self.channel, "user": self.user, "blocks": self.blocks})
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        return out


@dataclass
class View:
    """A modal or App Home view: what the app sent (``spec``) plus what Slack adds."""

    id: str
    user: str | None
    spec: JSON
    hash: str
    team_id: str = "T0DEV"
    app_id: str = "A0DEV"
    bot_id: str = "B0BOT"
    root_view_id: str | None = None
    previous_view_id: str | None = None
    #: ``response_action: errors`` from the last submission, shown inline until resubmitted
    errors: dict[str, str] = field(default_factory=dict)
    state: JSON = field(default_factory=dict)
    closed: bool = False

    @property
    def type(self) -> str:
        return str(self.spec.get("type", ""))

    @property
    def blocks(self) -> list[JSON]:
        blocks = self.spec.get("blocks")
        return blocks if isinstance(blocks, list) else []

    @property
    def title(self) -> str:
        title = self.spec.get("title")
        return str(title.get("text", "")) if isinstance(title, dict) else ""

    @property
    def callback_id(self) -> str:
        return str(self.spec.get("callback_id") or "")

    @property
    def private_metadata(self) -> str:
        return str(self.spec.get("private_metadata") or "")

    @property
    def external_id(self) -> str:
        return str(self.spec.get("external_id") or "")

    def to_slack(self) -> JSON:
        out: JSON = {
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
            "blocks": self.blocks,
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": {"values": self.state},
            "hash": self.hash,
            "clear_on_close": bool(self.spec.get("clear_on_close", False)),
            "notify_on_close": bool(self.spec.get("notify_on_close", False)),
            "root_view_id": self.root_view_id or self.id,
            "previous_view_id": self.previous_view_id,
            "app_id": self.app_id,
            "external_id": self.external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        for key in ("title", "submit", "close"):
            out[key] = self.spec.get(key)
        return out


@dataclass
class Trigger:
    """A ``trigger_id`` handed to the bot with an interaction; ``views.open`` may use it."""

    id: str
    user: str
    created_at: float
    used_by: str | None = None


@dataclass
class ResponseTarget:
    """Where a ``response_url`` points: the message (or view) an interaction came from."""

    id: str
    user: str
    channel: str | None
    message_ts: str | None
    thread_ts: str | None = None
    #: when it was handed out (workspace clock), and how many posts it took since
    created_at: float = 0.0
    uses: int = 0


@dataclass
class ApiCall:
    """One Web API call as served: parsed parameters, answer and whether it was scripted."""

    method: str
    params: JSON
    response: JSON
    status: int
    at: float
    token: str | None = None
    #: answered by ``Workspace.fail_next`` or the per-channel rate limit, not by the method
    faulted: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.response.get("ok") is True

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return error if isinstance(error, str) else None
