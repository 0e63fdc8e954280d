"""The people, channels and groups a fresh ``Workspace`` starts with (``seed=False`` skips them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.devslack.workspace import Workspace

__all__ = ["populate"]

_SEED_USERS = [
    ("U0ALICE", "alice", "Alice Archer"),
    ("U0BOB", "bob", "Bob Baker"),
    ("U0CAROL", "carol", "Carol Chen"),
    ("U0DAVE", "dave", "Dave Dorsey"),
]
#: public channels everyone is in
_SEED_CHANNELS = [
    ("C0OPS", "ops"),
    ("C0DEPLOY", "deploy"),
    ("C0PAYMENTS", "payments"),
    ("C0ESCALATE", "escalate"),
]
#: private channels: only these members (the bot was invited) see them
_SEED_PRIVATE_CHANNELS = [("C0PRIVATE", "security", ["U0ALICE", "U0CAROL", "U0BOT"])]
_SEED_GROUPS = [("S0SRE", "sre", ["U0ALICE", "U0BOB"]), ("S0ONCALL", "oncall", ["U0CAROL"])]


def populate(ws: Workspace) -> None:
    """Add the seed users, then the channels (public ones hold everyone, the bot included,
    as if it had been invited), then the user groups. Ids the workspace has already (one
    restored from a file) are left as they are: only what the seed gained since is added."""
    for user_id, name, real_name in _SEED_USERS:
        if user_id not in ws.users:
            ws.add_user(user_id, name, real_name)
    for channel_id, name in _SEED_CHANNELS:
        if channel_id not in ws.channels:
            ws.add_channel(channel_id, name)
    for channel_id, name, members in _SEED_PRIVATE_CHANNELS:
        if channel_id not in ws.channels:
            ws.add_channel(channel_id, name, private=True, members=members)
    for group_id, handle, members in _SEED_GROUPS:
        if group_id not in ws.usergroups:
            ws.add_usergroup(group_id, handle, members)
