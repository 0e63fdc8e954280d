"""A local Slack: workspace state, the Web API over HTTP, and a user's side of the app.

Start the API with ``runner, base_url = await start_slack_api(Workspace())`` and point
``AsyncWebClient(base_url=base_url)`` at it; play users with
``Deliverer(ws, "http://127.0.0.1:3000/slack/events", signing_secret).click(...)``.

By default it refuses what Slack refuses; a test that needs leniency asks for it by name:

* trigger ids: one ``views.open``/``views.push`` each, within 3 s (``ws.trigger_ttl = None``);
* rate limits per method tier, and one post a second per channel with a burst of 3
  (``ws.rate_limits.lift("chat.update")``, ``ws.rate_limits.enabled = False``);
* scopes and event subscriptions from ``manifest.yml`` (``Workspace(scopes=..., bot_events=...)``);
* events not answered 2xx within 3 s are retried 3 times (``deliverer.event_retries = 0``);
* ``msg_blocks_too_long`` past 12,000 characters of block text; a ``response_url`` takes five
  posts within 30 minutes; message events come only from channels the bot is in.
"""

from __future__ import annotations

from bot.devslack.api import WORKSPACE_KEY, create_slack_api
from bot.devslack.errors import ApiFailure, DeliveryFailed, DevSlackError, InteractionError
from bot.devslack.faults import Fault
from bot.devslack.feed import Change, ChangeFeed
from bot.devslack.interactions import Deliverer, Delivery
from bot.devslack.limits import validate_message_blocks, validate_view
from bot.devslack.model import (
    ApiCall,
    Channel,
    Ephemeral,
    Message,
    Trigger,
    User,
    UserGroup,
    View,
)
from bot.devslack.payloads import state_values
from bot.devslack.server import start_slack_api
from bot.devslack.signing import sign, signed_headers
from bot.devslack.workspace import Workspace

__all__ = [
    "WORKSPACE_KEY",
    "ApiCall",
    "ApiFailure",
    "Change",
    "ChangeFeed",
    "Channel",
    "Deliverer",
    "Delivery",
    "DeliveryFailed",
    "DevSlackError",
    "Ephemeral",
    "Fault",
    "InteractionError",
    "Message",
    "Trigger",
    "User",
    "UserGroup",
    "View",
    "Workspace",
    "create_slack_api",
    "sign",
    "signed_headers",
    "start_slack_api",
    "state_values",
    "validate_message_blocks",
    "validate_view",
]
