"""Socket Mode end to end: the devslack gateway, the real bot connected to it, a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import create_app
from bot.devslack import DeliveryFailed, Workspace, create_slack_api
from bot.devslack.socket_mode import SOCKET_MODE_KEY, SocketModeGateway
from bot.slack.surface import SlackSurface
from tests.conftest import BOT_TOKEN, Running, SlackRig, bot_settings, until
from tests.processes import free_port
from tests.slack_support import actions_of
from tests.test_slack_app import SCHEMA

APP_TOKEN = "xapp-1-A0APPROVAL-1-socket-test"


@dataclass
class Emulator:
    """The devslack Web API and Socket Mode gateway on 127.0.0.1."""

    workspace: Workspace
    gateway: SocketModeGateway
    api_url: str


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    ws = Workspace()
    app = create_slack_api(ws, bot_token=BOT_TOKEN, app_token=APP_TOKEN)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    ws.api_url = str(server.make_url("/api/"))
    yield Emulator(ws, app[SOCKET_MODE_KEY], ws.api_url)
    await server.close()


@pytest.fixture
async def rig(db_path: Path, emulator: Emulator) -> AsyncIterator[SlackRig]:
    settings = bot_settings(
        db_path,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=emulator.api_url,
    )
    app = create_app(settings, extensions=[SlackSurface(settings, socket_mode=True)])
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http, emulator.gateway.deliverer() as hands:
        yield SlackRig(Running(server, http, settings), emulator.workspace, hands)
    await server.close()


async def open_modal(rig: SlackRig, user: str) -> Any:
    async def modal() -> Any:
        views = [v for v in rig.workspace.open_modals(user) if not v.closed]
        return views[0] if views else None

    return await until(modal)


def envelope(gateway: SocketModeGateway, envelope_id: str | None) -> dict[str, Any]:
    [sent] = [e for e in gateway.envelopes if e["envelope_id"] == envelope_id]
    return sent


# -- the bot over Socket Mode ------------------------------------------------------------------


async def test_the_bot_connects_with_its_app_token_and_serves_no_request_url(
    rig: SlackRig, emulator: Emulator
) -> None:
    [connection] = emulator.gateway.connections
    [opened] = emulator.workspace.calls_to("apps.connections.open")

    async with rig.bot.http.post(rig.bot.url + "/slack/events", data=b"payload=%7B%7D") as r:
        status = r.status

    assert connection.is_open and connection.unexpected == []
    assert opened.ok and opened.token == APP_TOKEN
    assert opened.response["url"].startswith(emulator.api_url.replace("http", "ws", 1) + "link/")
    assert status == 404


async def test_a_click_over_the_socket_approves(rig: SlackRig, emulator: Emulator) -> None:
    record = await rig.bot.submit()
    card = await rig.card(record["id"])
    assert actions_of(card) == ["approve", "edit", "reject", "feedback"]

    delivery = await rig.click(record["id"], "approve", "U0ALICE")
    decided = await rig.decided(record["id"])

    sent = envelope(emulator.gateway, delivery.envelope_id)
    assert (sent["type"], sent["accepts_response_payload"]) == ("interactive", False)
    assert sent["payload"]["actions"][0]["action_id"] == "approve"
    assert delivery.status == 200 and delivery.body == ""
    assert decided["status"] == "approved"
    assert decided["decision"]["decidedBy"] == "U0ALICE"
    assert decided["decision"]["decidedByName"] == "alice"


async def test_a_reject_modal_submitted_over_the_socket(rig: SlackRig) -> None:
    record = await rig.bot.submit()
    await rig.click(record["id"], "reject", "U0BOB")
    modal = await open_modal(rig, "U0BOB")

    delivery = await rig.slack.submit_view(modal.id, {"reason": "not during the freeze"})
    decided = await rig.decided(record["id"])

    assert delivery.status == 200 and delivery.problems == [] and modal.closed
    assert (decided["status"], decided["decision"]["action"]) == ("rejected", "reject")
    assert decided["decision"]["comment"] == "not during the freeze"
    assert decided["decision"]["decidedBy"] == "U0BOB"


async def test_an_invalid_edit_is_answered_in_the_ack(rig: SlackRig, emulator: Emulator) -> None:
    record = await rig.bot.submit(args={"service": "api", "replicas": 3}, argsSchema=SCHEMA)
    await rig.click(record["id"], "edit", "U0ALICE")
    modal = await open_modal(rig, "U0ALICE")

    delivery = await rig.slack.submit_view(modal.id, {"arg:replicas": "50"})

    assert envelope(emulator.gateway, delivery.envelope_id)["accepts_response_payload"] is True
    assert delivery.json()["response_action"] == "errors"
    assert "arg:replicas" in modal.errors and not modal.closed
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"


async def test_a_thread_reply_arrives_as_an_events_api_envelope(
    rig: SlackRig, emulator: Emulator
) -> None:
    record = await rig.bot.submit()
    card = await rig.card(record["id"])

    delivery = await rig.slack.reply_in_thread(card.channel, card.ts, "approve", user="U0CAROL")
    decided = await rig.decided(record["id"])

    sent = envelope(emulator.gateway, delivery.envelope_id)
    assert (sent["type"], sent["retry_attempt"]) == ("events_api", 0)
    assert sent["payload"]["event"]["thread_ts"] == card.ts
    assert (decided["status"], decided["decision"]["decidedBy"]) == ("approved", "U0CAROL")


async def test_a_disconnect_message_makes_the_bot_reconnect(
    rig: SlackRig, emulator: Emulator
) -> None:
    first = await emulator.gateway.wait_for_connection()

    await emulator.gateway.disconnect()
    second = await emulator.gateway.wait_for_connection(5, newer_than=first)
    await until(lambda: _closed(first))
    record = await rig.bot.submit()
    delivery = await rig.click(record["id"], "approve", "U0BOB")

    assert second is not first
    assert len(emulator.workspace.calls_to("apps.connections.open", ok=True)) == 2
    assert envelope(emulator.gateway, delivery.envelope_id) in emulator.gateway.envelopes[-1:]
    assert (await rig.decided(record["id"]))["decision"]["decidedBy"] == "U0BOB"


async def _closed(connection: Any) -> bool:
    return not connection.is_open


# -- the gateway on its own --------------------------------------------------------------------


async def open_url(emulator: Emulator, token: str = APP_TOKEN) -> str:
    response = await AsyncWebClient(base_url=emulator.api_url).apps_connections_open(
        app_token=token
    )
    return str(response["url"])


@pytest.mark.parametrize(
    ("token", "error"),
    [
        pytest.param("xapp-1-A0OTHER-1-nope", "invalid_auth", id="another-app"),
        pytest.param(BOT_TOKEN, "not_allowed_token_type", id="bot-token"),
    ],
)
async def test_connections_open_wants_the_app_token(
    emulator: Emulator, token: str, error: str
) -> None:
    with pytest.raises(SlackApiError) as caught:
        await open_url(emulator, token)
    assert caught.value.response["error"] == error
    assert emulator.workspace.calls_to("apps.connections.open", ok=False)


async def test_the_app_token_is_refused_for_bot_methods(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {APP_TOKEN}"}
        async with http.post(emulator.api_url + "auth.test", headers=headers) as response:
            body = await response.json()
    assert body == {"ok": False, "error": "invalid_auth"}


async def test_hello_then_envelopes_then_acks(emulator: Emulator) -> None:
    url = await open_url(emulator)
    async with aiohttp.ClientSession() as http, http.ws_connect(url, autoping=False) as app:
        hello = await app.receive_json(timeout=2)
        sending = asyncio.create_task(
            emulator.gateway.send("slash_commands", {"command": "/approvals", "text": "list"})
        )
        envelope = await app.receive_json(timeout=2)
        await app.send_json({"envelope_id": "not-pending"})
        await app.send_json(
            {"envelope_id": envelope["envelope_id"], "payload": {"text": "nothing pending"}}
        )
        delivery = await sending

    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": emulator.workspace.app_id}
    assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"] is True
    assert envelope["payload"] == {"command": "/approvals", "text": "list"}
    assert (delivery.status, delivery.json()) == (200, {"text": "nothing pending"})
    assert emulator.gateway.connections[0].unexpected == [{"envelope_id": "not-pending"}]


async def test_pings_are_answered(emulator: Emulator) -> None:
    url = await open_url(emulator)
    async with aiohttp.ClientSession() as http, http.ws_connect(url, autoping=False) as app:
        await app.receive_json(timeout=2)
        await app.ping(b"sdk-ping-pong:1")
        pong = await app.receive(timeout=2)
    assert (pong.type, pong.data) == (WSMsgType.PONG, b"sdk-ping-pong:1")


async def test_a_ticket_opens_one_connection(emulator: Emulator) -> None:
    url = await open_url(emulator)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as first:
            await first.receive_json(timeout=2)
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(url)
        forged = url.split("?")[0] + "?ticket=forged"
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(forged)
    assert caught.value.status == 401


@pytest.mark.parametrize("drop", [False, True], ids=["no-ack", "dropped"])
async def test_an_unacked_envelope_fails_the_delivery(emulator: Emulator, drop: bool) -> None:
    url = await open_url(emulator)
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as app:
        await app.receive_json(timeout=2)
        sending = asyncio.create_task(
            emulator.gateway.send("interactive", {"type": "block_actions"}, timeout=0.5)
        )
        await app.receive_json(timeout=2)
        if drop:
            await app.close()
        with pytest.raises(DeliveryFailed, match="closed before" if drop else "no ack"):
            await sending


async def test_nobody_connected_fails_the_delivery(emulator: Emulator) -> None:
    slack = emulator.gateway.deliverer(timeout=0.2)
    with pytest.raises(DeliveryFailed, match="no app connected"):
        await slack.open_home("U0ALICE")


async def test_a_mounted_api_links_below_its_mount_point() -> None:
    ws = Workspace()
    outer = web.Application()
    outer.add_subapp("/slack/api", create_slack_api(ws))
    server = TestServer(outer, host="127.0.0.1")
    await server.start_server()
    link = str(server.make_url("/slack/api/link/")).replace("http", "ws", 1)
    client = AsyncWebClient(base_url=str(server.make_url("/slack/api/")))
    try:
        url = (await client.apps_connections_open(app_token="xapp-any-app"))["url"]
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as app:
            hello = await app.receive_json(timeout=2)
        with pytest.raises(SlackApiError) as caught:
            await client.auth_test(token="xapp-any-app")
    finally:
        await server.close()
    assert url.startswith(link + "?ticket=")
    assert hello["type"] == "hello"
    assert caught.value.response["error"] == "not_allowed_token_type"


# -- `approval-bot serve --socket-mode` as a real process --------------------------------------


async def test_serve_socket_mode_connects_and_answers_healthz(
    emulator: Emulator, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": emulator.api_url,
        "APPROVAL_DB": str(tmp_path / "approvals.db"),
        "APPROVAL_API_TOKEN": "agent-token",
        "APPROVAL_CHANNEL": "C0OPS",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--socket-mode",
        "--port",
        str(port),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        connection = await emulator.gateway.wait_for_connection(15)
        health = await until(lambda: _healthz(port), timeout=10)
    finally:
        process.terminate()
        output, _ = await asyncio.wait_for(process.communicate(), 10)
    assert health["ok"] is True and health["checks"]["slack"].startswith("ok")
    assert emulator.workspace.calls_to("apps.connections.open", ok=True), output.decode()
    await until(lambda: _closed(connection))
    assert process.returncode == 0, output.decode()


async def _healthz(port: int) -> Any:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            return json.loads(await response.text()) if response.status == 200 else None
    except aiohttp.ClientConnectionError:
        return None
