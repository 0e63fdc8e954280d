"""In-memory state of one emulated Slack workspace.

Every mutation is published on ``feed`` so a page can follow along; lookups raise
``ApiFailure`` with the error code Slack would answer, so the Web API layer stays thin.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from bot.devslack.errors import ApiFailure
from bot.devslack.faults import Fault, FaultQueue
from bot.devslack.feed import Change, ChangeFeed
from bot.devslack.handles import TRIGGER_TTL, exchange_trigger, use_response_target
from bot.devslack.model import (
    ApiCall,
    Channel,
    Ephemeral,
    Message,
    ResponseTarget,
    Trigger,
    User,
    UserGroup,
    View,
)
from bot.devslack.scopes import load_manifest, message_event_type
from bot.devslack.seed import populate
from bot.devslack.tiers import RateLimits

__all__ = ["CLICK_NOTE_WINDOW", "MAX_VIEW_STACK", "Workspace"]

JSON = dict[str, Any]

#: views.push refuses a fourth modal
MAX_VIEW_STACK = 3
#: an ephemeral note posted this soon after a member's click in the same channel answers that
#: click, and is shown under the message clicked (``Workspace.ephemeral_anchors``)
CLICK_NOTE_WINDOW = 10.0


class Workspace:
    """Users, channels, messages, views and the record of every Web API call."""

    def __init__(
        self,
        *,
        team_id: str = "T0DEV",
        team_name: str = "devslack",
        clock: Callable[[], float] = time.time,
        seed: bool = True,
        scopes: Iterable[str] | None = None,
        bot_events: Iterable[str] | None = None,
    ) -> None:
        """``scopes`` and ``bot_events`` default to those of the repository's ``manifest.yml``."""
        self.team_id = team_id
        self.team_name = team_name
        self.app_id = "A0APPROVAL"
        self.bot_user_id = "U0BOT"
        self.bot_id = "B0BOT"
        #: the legacy ``token`` field Slack puts in every payload (a placeholder, not a secret)
        self.verification_token = "devslack-verification-token"  # noqa: S105
        self.clock = clock
        #: where the Web API is served (ends with ``/``); response_url links point below it
        self.api_url = "http://127.0.0.1/api/"
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, UserGroup] = {}
        self.messages: dict[str, list[Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        #: ephemeral ts → ts of the message it answers (a click on it): shown under it
        self.ephemeral_anchors: dict[str, str] = {}
        self.views: dict[str, View] = {}
        self.modal_stacks: dict[str, list[str]] = {}
        self.homes: dict[str, str] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_targets: dict[str, ResponseTarget] = {}
        self.calls: list[ApiCall] = []
        self.faults = FaultQueue()
        manifest = load_manifest()
        #: the bot token's scopes; a method needing another answers ``missing_scope``
        self.scopes = frozenset(manifest.scopes if scopes is None else scopes)
        #: the events the app subscribes to; others are never sent to it
        self.bot_events = frozenset(manifest.bot_events if bot_events is None else bot_events)
        #: per-tier and per-channel limits (``rate_limits.enabled = False`` turns them off)
        self.rate_limits = RateLimits()
        #: the error every bot-token call answers while the token is refused (``refuse_token``)
        self.token_refused: str | None = None
        #: seconds a trigger_id stays good; ``None`` lets late ones through
        self.trigger_ttl: float | None = TRIGGER_TTL
        self.feed = ChangeFeed()
        self._last_micros = 0
        self._ids = itertools.count(1)
        self.add_user(self.bot_user_id, "approval-bot", "Approval Bot", is_bot=True)
        if seed:
            populate(self)

    @property
    def rate_limit_per_channel(self) -> float | None:
        """chat.postMessage messages per second per channel; ``None`` turns that limit off."""
        return self.rate_limits.per_channel

    @rate_limit_per_channel.setter
    def rate_limit_per_channel(self, rate: float | None) -> None:
        self.rate_limits.per_channel = rate

    @property
    def rate_limit_burst(self) -> int:
        return self.rate_limits.burst

    @rate_limit_burst.setter
    def rate_limit_burst(self, burst: int) -> None:
        self.rate_limits.burst = burst

    # -- directory ---------------------------------------------------------------------------

    def add_user(self, user_id: str, name: str, real_name: str, *, is_bot: bool = False) -> User:
        """A member; people join the ``auto_join`` channels at once, bots wait for an invite."""
        user = User(user_id, name, real_name, is_bot=is_bot, team_id=self.team_id)
        self.users[user_id] = user
        if not is_bot:
            for channel in self.channels.values():
                if channel.auto_join and user_id not in channel.members:
                    channel.members.append(user_id)
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        private: bool = False,
        members: Iterable[str] | None = None,
    ) -> Channel:
        """A channel. A public one holds every user unless ``members`` names them; a private
        one holds only ``members``, the bot included only when listed, as Slack's bots see a
        private channel only once invited."""
        auto_join = members is None and not private
        chosen = list(self.users) if auto_join else list(dict.fromkeys(members or ()))
        for member in chosen:
            self.user(member)
        channel = Channel(
            channel_id,
            name,
            chosen,
            private=private,
            auto_join=auto_join,
            bot_user=self.bot_user_id,
        )
        self.channels[channel_id] = channel
        self.messages.setdefault(channel_id, [])
        return channel

    def join(self, channel: str, user: str) -> Channel:
        """``user`` joins the channel, or is invited to it; joining twice changes nothing."""
        room = self._room(channel)
        member = self.user(user).id
        if member not in room.members:
            room.members.append(member)
            self.feed.publish("channel.joined", channel=room.id, user=member)
        return room

    def leave(self, channel: str, user: str) -> Channel:
        """``user`` leaves the channel, or is removed; a bot that leaves a private channel
        no longer sees it."""
        room = self._room(channel)
        member = self.user(user).id
        if member in room.members:
            room.members.remove(member)
            self.feed.publish("channel.left", channel=room.id, user=member)
        return room

    def _room(self, ref: str) -> Channel:
        """A channel people can join or leave: not a direct message."""
        room = self.channel(ref)
        if room.is_im:
            raise ApiFailure("method_not_supported_for_channel_type")
        return room

    def archive(self, channel: str) -> Channel:
        """Archive a channel: it keeps its history, and takes no new message."""
        room = self._room(channel)
        room.archived = True
        self.feed.publish("channel.archived", channel=room.id)
        return room

    def is_member(self, channel: str, user: str) -> bool:
        return user in self.channel(channel).members

    def hears_messages_in(self, channel: str) -> bool:
        """Whether the bot gets message events from a channel: Slack sends them only from
        conversations the bot is a member of, and only the kinds it subscribed to."""
        room = self.channel(channel)
        return self.bot_user_id in room.members and message_event_type(room) in self.bot_events

    def add_usergroup(self, group_id: str, handle: str, users: list[str]) -> UserGroup:
        group = UserGroup(group_id, handle, list(users))
        self.usergroups[group_id] = group
        return group

    def user(self, user_id: str) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise ApiFailure("user_not_found") from None

    def channel(self, ref: str) -> Channel:
        """A channel by id (``C0OPS``) or name (``ops``, ``#ops``); a user id means the DM."""
        if ref in self.channels:
            return self.channels[ref]
        if ref in self.users:
            return self.open_dm(ref)
        name = ref.removeprefix("#")
        for channel in self.channels.values():
            if channel.name == name and not channel.is_im:
                return channel
        raise ApiFailure("channel_not_found")

    def visible_channel(self, ref: str) -> Channel:
        """A channel as the bot's token sees it: a private channel the bot is not in answers
        ``channel_not_found``, exactly like one that does not exist."""
        channel = self.channel(ref)
        if channel.is_private and self.bot_user_id not in channel.members:
            raise ApiFailure("channel_not_found")
        return channel

    def open_dm(self, user: str) -> Channel:
        """The bot's direct message with ``user``, created on first use."""
        member = self.user(user)
        for channel in self.channels.values():
            if channel.user == member.id:
                return channel
        members = [self.bot_user_id, member.id]
        dm = Channel(f"D{member.id[1:]}", member.id, members, member.id, bot_user=self.bot_user_id)
        self.channels[dm.id] = dm
        self.messages[dm.id] = []
        return dm

    def usergroup(self, group_id: str) -> UserGroup:
        try:
            return self.usergroups[group_id]
        except KeyError:
            raise ApiFailure("no_such_subteam") from None

    # -- messages ----------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A fresh message timestamp, strictly increasing (``1700000000.000100``)."""
        micros = max(int(self.clock() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def note_ts(self, ts: str) -> None:
        """A timestamp given out before (a restored message): later ones come after it.
        Raises ``ValueError`` for anything but ``seconds.micros``."""
        seconds, dot, micros = ts.partition(".")
        if not (seconds.isdigit() and dot and micros.isdigit() and len(micros) == 6):
            raise ValueError(f"{ts!r} is not a message timestamp")
        self._last_micros = max(self._last_micros, int(seconds) * 1_000_000 + int(micros))

    def post_message(
        self,
        channel: str,
        *,
        text: str = "",
        blocks: list[JSON] | None = None,
        user: str | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: JSON | None = None,
    ) -> Message:
        """Store a message; ``user=None`` posts as the bot."""
        channel_id = self.channel(channel).id
        author = self.user(user or self.bot_user_id)
        root = self._thread_root(channel_id, thread_ts) if thread_ts is not None else None
        message = Message(
            channel=channel_id,
            ts=self.next_ts(),
            text=text,
            blocks=list(blocks or []),
            user=author.id,
            bot_id=self.bot_id if author.is_bot else None,
            app_id=self.app_id if author.is_bot else None,
            team=self.team_id,
            thread_ts=root.ts if root is not None else None,
            reply_broadcast=reply_broadcast and root is not None,
            metadata=metadata,
        )
        self.messages[channel_id].append(message)
        if root is not None:
            root.replies.append(message.ts)
            if author.id not in root.reply_users:
                root.reply_users.append(author.id)
        self.feed.publish("message.posted", channel=channel_id, message=message.to_slack())
        return message

    def message(self, channel: str, ts: str) -> Message:
        return self._find(self.channel(channel).id, ts, "message_not_found")

    def _find(self, channel_id: str, ts: str, error: str) -> Message:
        for message in self.messages.get(channel_id, []):
            if message.ts == ts:
                return message
        raise ApiFailure(error)

    def _thread_root(self, channel_id: str, ts: str) -> Message:
        """The parent of the thread ``ts`` belongs to (a reply's ts names its thread too)."""
        message = self._find(channel_id, ts, "thread_not_found")
        if message.is_reply and message.thread_ts is not None:
            return self._find(channel_id, message.thread_ts, "thread_not_found")
        return message

    def update_message(
        self, channel: str, ts: str, *, text: str | None = None, blocks: list[JSON] | None = None
    ) -> Message:
        """Rewrite a message as ``chat.update`` does: new ``blocks`` replace the old; ``text``
        without ``blocks`` removes them (the text then renders); neither keeps both."""
        message = self.message(channel, ts)
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = list(blocks)
        elif text is not None:
            message.blocks = []
        message.edited_ts = self.next_ts()
        self.feed.publish("message.updated", channel=message.channel, message=message.to_slack())
        return message

    def delete_message(self, channel: str, ts: str) -> Message:
        message = self.message(channel, ts)
        self.messages[message.channel].remove(message)
        if message.is_reply and message.thread_ts is not None:
            root = self._find(message.channel, message.thread_ts, "thread_not_found")
            root.replies.remove(message.ts)
        self.feed.publish("message.deleted", channel=message.channel, ts=message.ts)
        return message

    def history(self, channel: str) -> list[Message]:
        """Top-level messages (and broadcast replies), newest first."""
        messages = self.messages[self.channel(channel).id]
        return [m for m in reversed(messages) if not m.is_reply or m.reply_broadcast]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """A thread's parent then its replies, oldest first."""
        channel_id = self.channel(channel).id
        parent = self._thread_root(channel_id, ts)
        replies = [m for m in self.messages[channel_id] if m.is_reply and m.thread_ts == parent.ts]
        return [parent, *replies]

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        *,
        text: str = "",
        blocks: list[JSON] | None = None,
        thread_ts: str | None = None,
        under: str | None = None,
    ) -> Ephemeral:
        """A note only ``user`` sees, who must be in the channel (else ``user_not_in_channel``).

        A note answering a click is shown under the message clicked, as Slack shows a click's
        ephemeral response: ``under`` names that message, else it is the one ``user`` clicked
        in this channel within ``CLICK_NOTE_WINDOW`` seconds, if any."""
        where, member = self.channel(channel), self.user(user)
        if member.id not in where.members:
            raise ApiFailure("user_not_in_channel")
        if under is None and thread_ts is None:
            under = self.clicked_message(where.id, member.id)
        ephemeral = Ephemeral(
            channel=where.id,
            user=member.id,
            ts=self.next_ts(),
            text=text,
            blocks=list(blocks or []),
            thread_ts=thread_ts,
        )
        if under is not None:
            self.ephemeral_anchors[ephemeral.ts] = under
        self.ephemerals.append(ephemeral)
        self.feed.publish("ephemeral.posted", ephemeral=ephemeral.to_slack())
        return ephemeral

    def clicked_message(self, channel: str, user: str) -> str | None:
        """The ts of the message ``user`` clicked in ``channel``, when that was the last thing
        they did there (not a slash command since) and within ``CLICK_NOTE_WINDOW`` seconds:
        each click or command hands out a response_url, which remembers its message."""
        since = self.clock() - CLICK_NOTE_WINDOW
        for target in reversed(self.response_targets.values()):
            if target.created_at < since:
                return None
            if (target.user, target.channel) == (user, channel):
                return target.message_ts
        return None

    def ephemerals_for(self, user: str) -> list[Ephemeral]:
        return [e for e in self.ephemerals if e.user == user]

    def add_reaction(self, channel: str, ts: str, name: str, *, user: str | None = None) -> None:
        message = self.message(channel, ts)
        reactor = user or self.bot_user_id
        users = message.reactions.setdefault(name, [])
        if reactor in users:
            raise ApiFailure("already_reacted")
        users.append(reactor)
        self.feed.publish("reaction.added", channel=message.channel, ts=ts, name=name, user=reactor)

    # -- interactions ------------------------------------------------------------------------

    def new_trigger(self, user: str) -> Trigger:
        trigger_id = f"{int(self.clock())}.{next(self._ids)}.{secrets.token_hex(16)}"
        trigger = Trigger(trigger_id, user, created_at=self.clock())
        self.triggers[trigger_id] = trigger
        return trigger

    def use_trigger(self, trigger_id: str, method: str) -> Trigger:
        """Spend a trigger on ``method``: unknown, late (``trigger_ttl``) or spent ones are
        refused with ``invalid_trigger_id``, ``expired_trigger_id``, ``exchanged_trigger_id``."""
        return exchange_trigger(self.triggers, trigger_id, method, self.clock(), self.trigger_ttl)

    def new_response_target(
        self,
        user: str,
        channel: str | None,
        message_ts: str | None,
        thread_ts: str | None = None,
    ) -> ResponseTarget:
        target = ResponseTarget(
            secrets.token_hex(12), user, channel, message_ts, thread_ts, created_at=self.clock()
        )
        self.response_targets[target.id] = target
        return target

    def use_response_target(self, target_id: str) -> ResponseTarget:
        """Count a post to a response_url: five within 30 minutes, then ``used_url`` or
        ``expired_url``."""
        return use_response_target(self.response_targets, target_id, self.clock())

    def response_url(self, target: ResponseTarget) -> str:
        return f"{self.api_url}response/{target.id}"

    # -- views -------------------------------------------------------------------------------

    def _new_view(self, spec: JSON, user: str | None) -> View:
        view = View(
            id=f"V{next(self._ids):010d}",
            user=user,
            spec=dict(spec),
            hash=self._new_hash(),
            team_id=self.team_id,
            app_id=self.app_id,
            bot_id=self.bot_id,
        )
        self.views[view.id] = view
        return view

    def _new_hash(self) -> str:
        return f"{int(self.clock())}.{secrets.token_hex(4)}"

    def view(self, view_id: str) -> View:
        try:
            return self.views[view_id]
        except KeyError:
            raise ApiFailure("not_found") from None

    def view_by_external_id(self, external_id: str) -> View:
        for view in self.views.values():
            if external_id and view.external_id == external_id and not view.closed:
                return view
        raise ApiFailure("not_found")

    def open_view(self, spec: JSON, *, user: str | None) -> View:
        """Open a modal as the root of a fresh stack (any open stack is closed first)."""
        key = user or ""
        for old in self.modal_stacks.pop(key, []):
            self.views[old].closed = True
        view = self._new_view(spec, user)
        view.root_view_id = view.id
        self.modal_stacks[key] = [view.id]
        self.feed.publish("view.opened", user=user, view=view.to_slack())
        return view

    def push_view(self, spec: JSON, *, user: str | None) -> View:
        stack = self.modal_stacks.get(user or "")
        if not stack:
            raise ApiFailure("not_found")
        if len(stack) >= MAX_VIEW_STACK:
            raise ApiFailure("push_limit_reached")
        view = self._new_view(spec, user)
        view.root_view_id = stack[0]
        view.previous_view_id = stack[-1]
        stack.append(view.id)
        self.feed.publish("view.pushed", user=user, view=view.to_slack())
        return view

    def update_view(self, view: View, spec: JSON, *, hash: str | None = None) -> View:
        """Replace a view's content in place; a stale ``hash`` is a ``hash_conflict``."""
        if hash is not None and hash != view.hash:
            raise ApiFailure("hash_conflict")
        view.spec = dict(spec)
        view.hash = self._new_hash()
        view.errors = {}
        self.feed.publish("view.updated", user=view.user, view=view.to_slack())
        return view

    def publish_home(self, user: str, spec: JSON, *, hash: str | None = None) -> View:
        self.user(user)
        current = self.homes.get(user)
        if current is not None:
            return self.update_view(self.views[current], spec, hash=hash)
        view = self._new_view(spec, user)
        self.homes[user] = view.id
        self.feed.publish("home.published", user=user, view=view.to_slack())
        return view

    def close_view(self, view_id: str, *, clear: bool = False) -> list[View]:
        """Close a modal (``clear`` closes its whole stack); returns the views closed."""
        view = self.view(view_id)
        stack = self.modal_stacks.get(view.user or "", [])
        if view_id not in stack:
            return []
        cut = 0 if clear else stack.index(view_id)
        closed = [self.views[v] for v in stack[cut:]]
        del stack[cut:]
        for gone in closed:
            gone.closed = True
            self.feed.publish("view.closed", user=gone.user, view_id=gone.id)
        return closed

    def open_modals(self, user: str) -> list[View]:
        """The user's modal stack, root first."""
        return [self.views[v] for v in self.modal_stacks.get(user, [])]

    def home(self, user: str) -> View | None:
        view_id = self.homes.get(user)
        return self.views[view_id] if view_id is not None else None

    def set_view_errors(self, view: View, errors: dict[str, str]) -> None:
        view.errors = dict(errors)
        self.feed.publish("view.errors", user=view.user, view_id=view.id, errors=view.errors)

    # -- calls, faults and the change feed ---------------------------------------------------

    def record_call(self, call: ApiCall) -> None:
        self.calls.append(call)
        self.feed.publish(
            "api.call", method=call.method, ok=call.ok, error=call.error, status=call.status
        )

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[ApiCall]:
        """Recorded calls of one method, oldest first; ``ok`` filters on success."""
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        delay: float = 0.0,
        body: JSON | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with this failure instead."""
        fault = Fault(status=status, error=error, retry_after=retry_after, delay=delay, body=body)
        self.faults.add(method, fault, times)

    def answer_late(self, method: str, delay: float, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` do their work at once and answer after
        ``delay`` seconds: what a client that gave up waiting never hears of."""
        self.faults.add(method, Fault(delay=delay, late=True), times)

    def refuse_token(self, error: str | None = "invalid_auth") -> None:
        """Every call with the bot token answers ``error`` from now on (``token_revoked``,
        ``account_inactive``…), ``auth.test`` included; ``None`` accepts it again."""
        self.token_refused = error

    async def changes_since(self, seq: int, timeout: float = 25.0) -> list[Change]:
        """Changes numbered above ``seq``, waiting up to ``timeout`` seconds for one."""
        return await self.feed.changes_since(seq, timeout)
