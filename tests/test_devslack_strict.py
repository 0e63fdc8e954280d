"""The emulator refuses what real Slack refuses, by default; leniency is asked for by name.

Each test names the Slack documentation it checks the emulator against.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.devslack import Deliverer, DeliveryFailed, Workspace, create_slack_api, start_slack_api
from bot.devslack.limits import MAX_BLOCKS_TEXT
from bot.devslack.scopes import MANIFEST, load_manifest
from bot.devslack.socket_mode import SOCKET_MODE_KEY
from bot.devslack.tiers import TIER_2, TIER_3, TIER_4
from tests.test_devslack import SECRET, RecordingBot

TOKEN = "xoxb-strict"
START = 1_700_000_000.0

# -- fixtures ----------------------------------------------------------------------------------


class Clock:
    """A workspace clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ws(clock: Clock) -> Workspace:
    return Workspace(clock=clock)


@pytest.fixture
async def base_url(ws: Workspace) -> AsyncIterator[str]:
    runner, url = await start_slack_api(ws)
    yield url
    await runner.cleanup()


@pytest.fixture
def client(base_url: str) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=base_url)


@pytest.fixture
async def bot() -> AsyncIterator[tuple[RecordingBot, str]]:
    recorder = RecordingBot()
    app = web.Application()
    app.router.add_post("/slack/events", recorder.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield recorder, str(server.make_url("/slack/events"))
    await server.close()


@pytest.fixture
async def hands(
    ws: Workspace, base_url: str, bot: tuple[RecordingBot, str]
) -> AsyncIterator[Deliverer]:
    async with Deliverer(ws, bot[1], SECRET, timeout=0.3) as deliverer:
        yield deliverer


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def card() -> list[dict[str, Any]]:
    button = {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}
    return [section("*deploy*"), {"type": "actions", "elements": [button]}]


def modal(text: str = "x") -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "T"},
        "blocks": [section(text)],
    }


async def refused(call: Awaitable[Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# -- 13. trigger ids ---------------------------------------------------------------------------


async def test_a_trigger_never_issued_is_invalid(ws: Workspace, client: AsyncWebClient) -> None:
    """https://api.slack.com/methods/views.open: ``invalid_trigger_id``, "The trigger_id is
    invalid. Expected format: "132456.7890123.abcdef"."""
    for method in (client.views_open, client.views_push):
        error = await refused(method(trigger_id="12345.98765.abcd2358fdea", view=modal()))
        assert error.response["error"] == "invalid_trigger_id"
    assert ws.open_modals("U0ALICE") == []


async def test_a_trigger_is_good_for_three_seconds(
    ws: Workspace, client: AsyncWebClient, clock: Clock
) -> None:
    """https://api.slack.com/methods/views.open: ``expired_trigger_id``, "The trigger_id is
    expired"; triggers expire 3 s after the interaction (SLACK_FACTS.md)."""
    on_time, late = ws.new_trigger("U0ALICE"), ws.new_trigger("U0BOB")
    clock.advance(3.0)
    await client.views_open(trigger_id=on_time.id, view=modal())
    clock.advance(0.001)

    error = await refused(client.views_open(trigger_id=late.id, view=modal()))

    assert error.response["error"] == "expired_trigger_id"
    assert ws.open_modals("U0BOB") == []


async def test_a_trigger_opens_one_view(ws: Workspace, client: AsyncWebClient) -> None:
    """https://api.slack.com/methods/views.push: ``exchanged_trigger_id``, "The trigger_id was
    already exchanged in a previous call": one trigger, one views.open or views.push."""
    trigger = ws.new_trigger("U0CAROL").id
    await client.views_open(trigger_id=trigger, view=modal("first"))

    again = await refused(client.views_open(trigger_id=trigger, view=modal("second")))
    push = await refused(client.views_push(trigger_id=trigger, view=modal("pushed")))

    assert again.response["error"] == push.response["error"] == "exchanged_trigger_id"
    assert [v.blocks for v in ws.open_modals("U0CAROL")] == [[section("first")]]


async def test_late_triggers_pass_when_a_test_asks(
    ws: Workspace, client: AsyncWebClient, clock: Clock
) -> None:
    """Leniency by name: ``trigger_ttl = None``."""
    ws.trigger_ttl = None
    trigger = ws.new_trigger("U0ALICE").id
    clock.advance(60)
    assert (await client.views_open(trigger_id=trigger, view=modal()))["ok"]


# -- 14. message events only from channels the bot is in ----------------------------------------


async def test_no_message_event_from_a_channel_the_bot_is_not_in(
    ws: Workspace, hands: Deliverer, bot: tuple[RecordingBot, str]
) -> None:
    """https://api.slack.com/events/message.channels: delivered for "channels the app is
    added to"; Slack sends nothing for the others, though the message exists."""
    ws.add_channel("C0QUIET", "quiet", members=["U0ALICE", "U0BOB"])

    delivery = await hands.post_as_user("quiet", "hello?", user="U0ALICE")
    posted = ws.history("quiet")[0]
    reply = await hands.reply_in_thread("quiet", posted.ts, "anyone?", user="U0BOB")

    assert delivery is None and reply is None
    assert [m.text for m in ws.thread("quiet", posted.ts)] == ["hello?", "anyone?"]
    assert bot[0].received == []
    ws.join("quiet", ws.bot_user_id)
    assert await hands.post_as_user("quiet", "now?", user="U0ALICE") is not None
    assert [r["event"]["text"] for r in bot[0].received] == ["now?"]


async def test_message_events_follow_the_subscriptions(
    ws: Workspace, hands: Deliverer, bot: tuple[RecordingBot, str]
) -> None:
    """https://api.slack.com/events/message.im: a DM's messages arrive only to an app that
    subscribed to ``message.im``; manifest.yml subscribes to message.channels/.groups."""
    assert await hands.post_as_user("U0ALICE", "psst", user="U0ALICE") is None
    assert await hands.post_as_user("security", "private", user="U0ALICE") is not None
    assert [r["event"]["channel_type"] for r in bot[0].received] == ["group"]


async def test_ephemeral_to_someone_outside_the_channel(
    client: AsyncWebClient, ws: Workspace
) -> None:
    """https://api.slack.com/methods/chat.postEphemeral: ``user_not_in_channel``."""
    ws.add_channel("C0SMALL", "small", members=["U0ALICE", "U0BOT"])
    error = await refused(client.chat_postEphemeral(channel="small", user="U0BOB", text="hi"))
    assert error.response["error"] == "user_not_in_channel"


# -- 15. Events API retries ---------------------------------------------------------------------


async def test_a_late_event_is_retried_three_times(
    hands: Deliverer, bot: tuple[RecordingBot, str]
) -> None:
    """https://api.slack.com/apis/events-api#retries: no answer within 3 s (here the
    deliverer's 0.3 s) and Slack sends the event again, up to 3 times, with
    ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason: http_timeout``."""

    async def slow(data: dict[str, Any]) -> web.Response:
        await asyncio.sleep(1)
        return web.Response()

    bot[0].answer = slow

    with pytest.raises(DeliveryFailed) as caught:
        await hands.open_home("U0ALICE")

    received = bot[0].received
    assert caught.value.reason == "http_timeout"
    assert len(received) == 4
    assert len({r["event_id"] for r in received}) == 1
    headers = [r["_headers"] for r in received]
    assert [h.get("X-Slack-Retry-Num") for h in headers] == [None, "1", "2", "3"]
    assert {h.get("X-Slack-Retry-Reason") for h in headers[1:]} == {"http_timeout"}


async def test_an_event_answered_with_an_error_is_retried(
    hands: Deliverer, bot: tuple[RecordingBot, str]
) -> None:
    """https://api.slack.com/apis/events-api#retries: any answer but a 2xx is a failure
    (``http_error``); the retry that is answered 200 ends it."""

    async def fail_twice(data: dict[str, Any]) -> web.Response:
        return web.Response(status=500 if len(bot[0].received) <= 2 else 200)

    bot[0].answer = fail_twice

    delivery = await hands.open_home("U0ALICE")

    assert delivery is not None and delivery.status == 200
    assert delivery.retries == ["http_error", "http_error"]
    retries = [r["_headers"] for r in bot[0].received[1:]]
    assert [(h["X-Slack-Retry-Num"], h["X-Slack-Retry-Reason"]) for h in retries] == [
        ("1", "http_error"),
        ("2", "http_error"),
    ]


async def test_no_retry_when_the_app_says_so(
    hands: Deliverer, bot: tuple[RecordingBot, str]
) -> None:
    """https://api.slack.com/apis/events-api#retries: an answer with ``X-Slack-No-Retry: 1``
    is not retried."""

    async def refuse(data: dict[str, Any]) -> web.Response:
        return web.Response(status=503, headers={"X-Slack-No-Retry": "1"})

    bot[0].answer = refuse

    delivery = await hands.open_home("U0ALICE")

    assert delivery is not None and delivery.status == 503
    assert len(bot[0].received) == 1


async def test_retries_off_by_name(hands: Deliverer, bot: tuple[RecordingBot, str]) -> None:
    """Leniency by name: ``event_retries = 0`` sends each event once."""
    hands.event_retries = 0

    async def error(data: dict[str, Any]) -> web.Response:
        return web.Response(status=500)

    bot[0].answer = error
    delivery = await hands.open_home("U0ALICE")
    assert delivery is not None and delivery.status == 500
    assert len(bot[0].received) == 1


async def test_interactions_are_never_retried(
    ws: Workspace, hands: Deliverer, bot: tuple[RecordingBot, str]
) -> None:
    """https://api.slack.com/interactivity/handling#acknowledgment_response: a late answer to
    an interaction is an error shown to the user; Slack does not send it again."""

    async def slow(data: dict[str, Any]) -> web.Response:
        await asyncio.sleep(1)
        return web.Response()

    bot[0].answer = slow
    message = ws.post_message("ops", text="card", blocks=card())

    with pytest.raises(DeliveryFailed):
        await hands.click("ops", message.ts, "go", user="U0ALICE")

    assert len(bot[0].received) == 1


async def test_an_unacked_socket_mode_event_comes_again() -> None:
    """https://api.slack.com/apis/socket-mode: an envelope not acknowledged is sent again
    with ``retry_attempt`` and ``retry_reason``."""
    ws = Workspace()
    app = create_slack_api(ws, app_token="xapp-1-strict")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    gateway = app[SOCKET_MODE_KEY]
    try:
        opened = await AsyncWebClient(base_url=str(server.make_url("/api/"))).apps_connections_open(
            app_token="xapp-1-strict"
        )
        async with aiohttp.ClientSession() as http, http.ws_connect(opened["url"]) as socket:
            await socket.receive_json(timeout=2)
            sending = asyncio.create_task(gateway.deliverer(timeout=0.2).open_home("U0ALICE"))
            first = await socket.receive_json(timeout=2)
            second = await socket.receive_json(timeout=2)
            await socket.send_json({"envelope_id": second["envelope_id"]})
            delivery = await sending
    finally:
        await server.close()

    assert (first["retry_attempt"], first["retry_reason"]) == (0, "")
    assert (second["retry_attempt"], second["retry_reason"]) == (1, "timeout")
    assert second["payload"]["event_id"] == first["payload"]["event_id"]
    assert delivery is not None and delivery.retries == ["timeout"]


# -- 16. chat.update ---------------------------------------------------------------------------


async def test_update_with_text_alone_removes_the_blocks(
    ws: Workspace, client: AsyncWebClient
) -> None:
    """https://api.slack.com/methods/chat.update: "If you don't include blocks, the message's
    previous blocks will only be retained if the text argument is not provided. If the text
    argument is provided and blocks are not provided, the blocks will be removed, and the
    provided text will be used for message rendering." """
    posted = await client.chat_postMessage(channel="ops", text="pending", blocks=card())

    answer = await client.chat_update(channel="C0OPS", ts=posted["ts"], text="approved")

    message = ws.message("ops", posted["ts"])
    assert (message.text, message.blocks) == ("approved", [])
    assert "blocks" not in answer["message"]


async def test_update_with_blocks_keeps_the_text_and_empty_blocks_remove_them(
    ws: Workspace, client: AsyncWebClient
) -> None:
    """https://api.slack.com/methods/chat.update: new blocks replace the old ones; "To remove
    previous blocks, include an empty array for the blocks field." """
    posted = await client.chat_postMessage(channel="ops", text="pending", blocks=card())

    new_blocks = {"channel": "C0OPS", "ts": posted["ts"], "blocks": [section("done")]}
    await client.api_call("chat.update", json=new_blocks)  # no text: slack_sdk would warn
    replaced = ws.message("ops", posted["ts"])
    assert (replaced.text, replaced.blocks) == ("pending", [section("done")])
    await client.chat_update(channel="C0OPS", ts=posted["ts"], text="plain", blocks=[])
    assert ws.message("ops", posted["ts"]).blocks == []


async def test_replace_original_replaces_the_whole_message(ws: Workspace, base_url: str) -> None:
    """https://api.slack.com/interactivity/handling#message_responses: a response with
    ``replace_original`` replaces the message in its entirety."""
    message = ws.post_message("ops", text="card", blocks=card())
    target = ws.new_response_target("U0ALICE", "C0OPS", message.ts)

    async with aiohttp.ClientSession() as http:
        change = {"replace_original": True, "text": "done"}
        async with http.post(ws.response_url(target), json=change) as response:
            assert response.status == 200

    assert (message.text, message.blocks) == ("done", [])


# -- 17. msg_blocks_too_long --------------------------------------------------------------------


async def test_too_much_text_in_blocks_is_refused(ws: Workspace, client: AsyncWebClient) -> None:
    """https://api.slack.com/methods/chat.postMessage: ``msg_blocks_too_long``. Slack gives no
    figure; it refuses around 12-13k characters of block text, well below the per-block
    limits (SLACK_FACTS.md; the bot's cards budget for 12,000)."""
    fits = [section("a" * 3000) for _ in range(MAX_BLOCKS_TEXT // 3000)]
    too_long = [*fits, section("b")]
    posted = await client.chat_postMessage(channel="ops", text="fits", blocks=fits)

    errors = [
        await refused(client.chat_postMessage(channel="ops", text="t", blocks=too_long)),
        await refused(
            client.chat_update(channel="ops", ts=posted["ts"], text="t", blocks=too_long)
        ),
        await refused(
            client.chat_postEphemeral(channel="ops", user="U0ALICE", text="t", blocks=too_long)
        ),
    ]

    assert {e.response["error"] for e in errors} == {"msg_blocks_too_long"}
    assert [m.text for m in ws.history("ops")] == ["fits"]


# -- 18. rate limits ---------------------------------------------------------------------------


async def test_posts_are_limited_per_channel_by_default(
    ws: Workspace, client: AsyncWebClient, clock: Clock
) -> None:
    """https://api.slack.com/methods/chat.postMessage#rate_limiting: "one message per second
    per channel", short bursts allowed; other channels are not held."""
    for _ in range(3):
        await client.chat_postMessage(channel="ops", text="burst")
    error = await refused(client.chat_postMessage(channel="ops", text="too fast"))
    await client.chat_postMessage(channel="deploy", text="elsewhere")
    clock.advance(1)
    await client.chat_postMessage(channel="ops", text="a second later")

    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "1"
    assert error.response["error"] == "ratelimited"


@pytest.mark.parametrize(
    ("method", "tier", "params"),
    [
        pytest.param("usergroups.users.list", TIER_2, {"usergroup": "S0SRE"}, id="tier2"),
        pytest.param("conversations.info", TIER_3, {"channel": "C0OPS"}, id="tier3"),
        pytest.param("conversations.members", TIER_4, {"channel": "C0OPS"}, id="tier4"),
        pytest.param("users.info", TIER_4, {"user": "U0ALICE"}, id="users-tier4"),
    ],
)
async def test_methods_are_limited_per_tier(
    ws: Workspace,
    client: AsyncWebClient,
    clock: Clock,
    method: str,
    tier: Any,
    params: dict[str, Any],
) -> None:
    """https://api.slack.com/apis/rate-limits: Tier 2 "20+ per minute", Tier 3 "50+",
    Tier 4 "100+", bursts tolerated; beyond, HTTP 429 with ``Retry-After`` seconds."""
    for _ in range(tier.burst):
        await client.api_call(method, params=params)
    error = await refused(client.api_call(method, params=params))
    clock.advance(60 / tier.per_minute + 0.001)  # one call's worth refilled
    await client.api_call(method, params=params)

    assert error.response.status_code == 429
    assert int(error.response.headers["Retry-After"]) == math.ceil(60 / tier.per_minute)


async def test_chat_update_is_tier_3(ws: Workspace, client: AsyncWebClient, clock: Clock) -> None:
    """https://api.slack.com/methods/chat.update: Tier 3, 50+ per minute."""
    posted = await client.chat_postMessage(channel="ops", text="0")
    for i in range(50):
        await client.chat_update(channel="C0OPS", ts=posted["ts"], text=str(i))
    error = await refused(client.chat_update(channel="C0OPS", ts=posted["ts"], text="51"))
    assert (error.response.status_code, error.response["error"]) == (429, "ratelimited")
    assert ws.calls_to("chat.update")[-1].faulted


async def test_limits_off_by_name(ws: Workspace, client: AsyncWebClient) -> None:
    """Leniency by name: ``rate_limits.enabled = False``."""
    ws.rate_limits.enabled = False
    for i in range(30):
        await client.chat_postMessage(channel="ops", text=str(i))
        await client.usergroups_users_list(usergroup="S0SRE")
    assert len(ws.history("ops")) == 30


# -- 19. scopes --------------------------------------------------------------------------------


def test_scopes_come_from_the_manifest(ws: Workspace) -> None:
    """manifest.yml ``oauth_config.scopes.bot`` is what the workspace grants by default."""
    assert ws.scopes == load_manifest(MANIFEST).scopes
    assert {"chat:write", "users:read", "usergroups:read"} <= ws.scopes


@pytest.mark.parametrize(
    ("method", "params", "needed"),
    [
        pytest.param("chat.postMessage", {"channel": "ops", "text": "t"}, "chat:write", id="post"),
        pytest.param("users.info", {"user": "U0ALICE"}, "users:read", id="users-info"),
        pytest.param(
            "usergroups.users.list", {"usergroup": "S0SRE"}, "usergroups:read", id="usergroups"
        ),
        pytest.param(
            "conversations.members", {"channel": "C0OPS"}, "channels:read", id="members-public"
        ),
        pytest.param(
            "conversations.members", {"channel": "C0PRIVATE"}, "groups:read", id="members-private"
        ),
        pytest.param(
            "reactions.add",
            {"channel": "C0OPS", "timestamp": "1.0", "name": "eyes"},
            "reactions:write",
            id="reactions",
        ),
        pytest.param("conversations.join", {"channel": "C0OPS"}, "channels:join", id="join"),
    ],
)
async def test_a_method_without_its_scope_is_refused(
    base_url: str, ws: Workspace, method: str, params: dict[str, Any], needed: str
) -> None:
    """https://api.slack.com/methods (each method's "Required scopes"): ``missing_scope``
    with ``needed`` and ``provided``."""
    ws.scopes = frozenset({"commands", "chat:write.public"})
    client = AsyncWebClient(token=TOKEN, base_url=base_url)

    error = await refused(client.api_call(method, json=params))

    assert error.response.data == {
        "ok": False,
        "error": "missing_scope",
        "needed": needed,
        "provided": "chat:write.public,commands",
    }
    assert error.response.headers["X-OAuth-Scopes"] == "chat:write.public,commands"


async def test_conversations_join_needs_channels_join(
    ws: Workspace, client: AsyncWebClient
) -> None:
    """https://api.slack.com/methods/conversations.join: requires ``channels:join``."""
    ws.scopes -= {"channels:join"}
    error = await refused(client.conversations_join(channel="C0OPS"))
    assert (error.response["error"], error.response["needed"]) == ("missing_scope", "channels:join")


async def test_conversations_join(ws: Workspace, client: AsyncWebClient) -> None:
    """https://api.slack.com/methods/conversations.join: the bot joins a public channel;
    already in: ``already_in_channel`` as a warning; a private channel:
    ``method_not_supported_for_channel_type``; one it cannot see: ``channel_not_found``."""
    ws.scopes |= {"channels:join"}
    ws.add_channel("C0NEW", "new", members=["U0ALICE"])
    ws.add_channel("C0HIDDEN", "hidden", private=True, members=["U0ALICE"])

    joined = await client.conversations_join(channel="C0NEW")
    again = await client.conversations_join(channel="C0NEW")
    private = await refused(client.conversations_join(channel="C0PRIVATE"))
    hidden = await refused(client.conversations_join(channel="C0HIDDEN"))

    assert joined["channel"]["is_member"] is True and "warning" not in joined
    assert ws.is_member("C0NEW", ws.bot_user_id)
    assert again["warning"] == "already_in_channel"
    assert private.response["error"] == "method_not_supported_for_channel_type"
    assert hidden.response["error"] == "channel_not_found"


async def test_posting_where_the_bot_is_not_needs_chat_write_public(
    ws: Workspace, client: AsyncWebClient
) -> None:
    """https://api.slack.com/scopes/chat:write.public: without it, posting in a public channel
    the bot is not a member of answers ``not_in_channel``."""
    ws.add_channel("C0NEW", "new", members=["U0ALICE"])
    assert (await client.chat_postMessage(channel="new", text="with the scope"))["ok"]
    ws.scopes -= {"chat:write.public"}
    error = await refused(client.chat_postMessage(channel="new", text="without"))
    assert error.response["error"] == "not_in_channel"


async def test_history_needs_membership(ws: Workspace, client: AsyncWebClient) -> None:
    """https://api.slack.com/methods/conversations.history: ``not_in_channel``, "Only user
    tokens can access public channels they are not in"."""
    ws.add_channel("C0NEW", "new", members=["U0ALICE"])
    ws.post_message("new", text="hi", user="U0ALICE")
    error = await refused(client.conversations_history(channel="C0NEW"))
    assert error.response["error"] == "not_in_channel"
    ws.join("C0NEW", ws.bot_user_id)
    assert [
        m["text"] for m in (await client.conversations_history(channel="C0NEW"))["messages"]
    ] == ["hi"]


# -- 20. response_url --------------------------------------------------------------------------


async def post_to(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        return response.status, await response.json()


async def test_a_response_url_takes_five_posts(ws: Workspace, base_url: str) -> None:
    """https://api.slack.com/interactivity/handling#message_responses: "You'll be able to use a
    response_url five times within 30 minutes." Slack documents no answer for a sixth; the
    emulator answers 404 ``used_url``."""
    target = ws.new_response_target("U0ALICE", "C0OPS", None)
    url = ws.response_url(target)

    answers = [await post_to(url, {"text": f"note {i}"}) for i in range(6)]

    assert [status for status, _ in answers] == [200] * 5 + [404]
    assert answers[-1][1] == {"ok": False, "error": "used_url"}
    assert len(ws.ephemerals_for("U0ALICE")) == 5


async def test_a_response_url_lasts_thirty_minutes(
    ws: Workspace, base_url: str, clock: Clock
) -> None:
    """https://api.slack.com/interactivity/handling#message_responses: "five times within
    30 minutes"; afterwards the emulator answers 404 ``expired_url``."""
    target = ws.new_response_target("U0ALICE", "C0OPS", None)
    clock.advance(30 * 60)
    assert (await post_to(ws.response_url(target), {"text": "just in time"}))[0] == 200
    clock.advance(1)

    status, body = await post_to(ws.response_url(target), {"text": "too late"})

    assert (status, body) == (404, {"ok": False, "error": "expired_url"})
