"""`approval-bot dev`: the bot, the emulated Slack and the workspace page on one real port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.config import ConfigError, Settings
from bot.dev import DEV, EXAMPLES, create_dev_app, dev_settings
from bot.devslack import Workspace, signed_headers
from tests.conftest import SlackRig, until
from tests.processes import free_port
from tests.slack_support import actions_of, decided_by

ARGS = {example.key: dict(example.args) for example in EXAMPLES}


@dataclass
class Dev:
    """The dev app listening on 127.0.0.1, and an HTTP client for it."""

    url: str
    app: web.Application
    settings: Settings
    http: aiohttp.ClientSession

    @property
    def ws(self) -> Workspace:
        return self.app[DEV].workspace

    async def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> tuple[int, Any]:
        async with self.http.post(self.url + path, json=body, **kwargs) as response:
            return response.status, await response.json(content_type=None)

    async def state(self, user: str = "U0ALICE", **query: str) -> dict[str, Any]:
        params = {"user": user, **query}
        async with self.http.get(self.url + "/dev/state", params=params) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def agent(self, path: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.settings.api_token}"}
        async with self.http.get(self.url + path, headers=headers) as response:
            return response.status, await response.json()

    async def simulate(self, key: str) -> dict[str, Any]:
        """Start a pretend agent; its run once it waits, holding the approval id."""
        status, run = await self.post("/dev/simulate", {"example": key})
        assert status == 201, run
        return await until(lambda: self.run_if(run["id"], lambda r: r["state"] != "submitting"))

    async def run_if(self, run_id: str, test: Any) -> dict[str, Any] | None:
        runs = {run["id"]: run for run in (await self.state())["agents"]}
        return runs[run_id] if test(runs[run_id]) else None

    async def decided(self, run_id: str) -> dict[str, Any]:
        return await until(lambda: self.run_if(run_id, lambda r: r["state"] == "decided"))

    async def card(self, approval_id: str) -> dict[str, Any]:
        """The card message as the page gets it, once posted."""

        async def posted() -> dict[str, Any] | None:
            state = await self.state()
            for messages in state["messages"].values():
                for message in messages:
                    ids = [block.get("block_id", "") for block in message.get("blocks", [])]
                    if any(i.endswith(":" + approval_id) for i in ids):
                        return dict(message)
            return None

        return await until(posted)

    async def click(self, card: dict[str, Any], action: str, user: str) -> tuple[int, Any]:
        """`user` clicks `action` on `card` through the page, as the dev page does."""
        body = {"user": user, "channel": card["channel"], "ts": card["ts"], "actionId": action}
        return await self.post("/dev/click", body)

    async def modal(self, user: str) -> dict[str, Any]:
        state = await until(lambda: self._with_modal(user))
        return dict(state["modals"][-1])

    async def _with_modal(self, user: str) -> dict[str, Any] | None:
        state = await self.state(user)
        return state if state["modals"] else None


@contextlib.asynccontextmanager
async def running_dev(tmp_path: Path) -> AsyncIterator[Dev]:
    """`create_dev_app` served on a free port, as `approval-bot dev` serves it."""
    port = free_port()
    settings = dev_settings(Settings(db=str(tmp_path / "approvals.db")), port=port)
    app = create_dev_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Dev(f"http://127.0.0.1:{port}", app, settings, http)
    finally:
        await runner.cleanup()


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[Dev]:
    async with running_dev(tmp_path) as running:
        yield running


# -- settings ----------------------------------------------------------------------------------


def test_dev_settings_make_fresh_slack_secrets_and_keep_the_agent_token() -> None:
    base = Settings(api_token="agent-secret", db="/tmp/x.db")
    first, second = dev_settings(base, port=4100), dev_settings(base, port=4100)

    assert first.slack_api_url == "http://127.0.0.1:4100/slack/api/"
    assert first.url == "http://127.0.0.1:4100" and first.host == "127.0.0.1"
    assert first.api_token == "agent-secret" and first.db == "/tmp/x.db"
    assert first.channel == "C0OPS"
    assert first.slack_bot_token and first.slack_bot_token.startswith("xoxb-")
    assert first.slack_signing_secret != second.slack_signing_secret
    assert first.admin_token and first.admin_token != second.admin_token
    assert dev_settings(Settings(), port=4100).api_token  # generated when unset
    with pytest.raises(ConfigError, match="fixed port"):
        dev_settings(base, port=0)


# -- the page ----------------------------------------------------------------------------------


async def test_the_page_and_its_assets_are_served(dev: Dev) -> None:
    async with dev.http.get(dev.url + "/") as response:
        page = await response.text()
        policy = response.headers["Content-Security-Policy"]
        assert response.status == 200 and response.content_type == "text/html"
    assert '<script src="/dev/assets/app.js"' in page
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy

    for name, kind in [
        ("app.js", "text/javascript"),
        ("blockkit.js", "text/javascript"),
        ("style.css", "text/css"),
    ]:
        async with dev.http.get(dev.url + "/dev/assets/" + name) as response:
            assert (response.status, response.content_type) == (200, kind), name
    async with dev.http.get(dev.url + "/dev/assets/workspace.py") as response:
        assert response.status == 404


async def test_the_page_endpoints_refuse_other_sites(dev: Dev) -> None:
    async with dev.http.get(dev.url + "/", headers={"Host": "rebound.example"}) as response:
        assert response.status == 403
    async with dev.http.post(
        dev.url + "/dev/simulate", data={"example": "deploy"}
    ) as response:  # a plain HTML form from any site
        assert response.status == 415
    status, _ = await dev.post(
        "/dev/simulate", {"example": "deploy"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403
    assert (await dev.state())["agents"] == []


async def test_the_emulated_web_api_and_health_answer(dev: Dev) -> None:
    token = {"Authorization": f"Bearer {dev.settings.slack_bot_token}"}
    async with dev.http.post(dev.url + "/slack/api/auth.test", headers=token) as response:
        me = await response.json()
    async with dev.http.post(
        dev.url + "/slack/api/auth.test", headers={"Authorization": "Bearer xoxb-wrong"}
    ) as response:
        refused = await response.json()
    async with dev.http.get(dev.url + "/healthz") as response:
        health = await response.json()

    assert me["ok"] is True and me["user_id"] == "U0BOT"
    assert refused == {"ok": False, "error": "invalid_auth"}
    assert health["ok"] is True and health["checks"]["slack"].startswith("ok as approval-bot")


async def test_the_state_request_waits_for_a_change(dev: Dev) -> None:
    seq = (await dev.state())["seq"]
    waiting = asyncio.create_task(dev.state(since=str(seq), wait="10"))
    await asyncio.sleep(0.3)
    assert not waiting.done()

    await dev.simulate("email")
    state = await asyncio.wait_for(waiting, 3)

    assert state["seq"] > seq and state["agents"]


# -- agents, clicks and modals -----------------------------------------------------------------


async def test_simulated_agents_post_their_cards_where_they_asked(dev: Dev) -> None:
    runs = {key: await dev.simulate(key) for key in ("deploy", "email", "transfer")}
    cards = {key: await dev.card(run["approvalId"]) for key, run in runs.items()}

    assert {key: run["state"] for key, run in runs.items()} == dict.fromkeys(runs, "waiting")
    assert {key: card["channel"] for key, card in cards.items()} == {
        "deploy": "C0OPS",
        "email": "C0OPS",  # no channel: the default one
        "transfer": "C0PAYMENTS",
    }
    assert all(
        actions_of(card) == ["approve", "edit", "reject", "feedback"] for card in cards.values()
    )
    approve = next(
        element
        for block in cards["transfer"]["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "approve"
    )
    assert approve["confirm"]["confirm"]["text"] == "Approve"  # critical: the page asks first
    status, body = await dev.post("/dev/simulate", {"example": "nope"})
    assert status == 404 and "deploy" in body["message"]


async def test_a_click_decides_through_the_signed_slack_route(dev: Dev) -> None:
    run = await dev.simulate("deploy")
    card = await dev.card(run["approvalId"])

    status, answer = await dev.click(card, "approve", "U0BOB")
    decided = await dev.decided(run["id"])

    assert status == 200 and answer["ok"] is True and answer["status"] == 200
    assert decided_by(decided) == ("approve", "U0BOB", "bob")
    assert decided["decision"]["approvedArgs"] == ARGS["deploy"]
    rewritten = await until(lambda: _without_buttons(dev, run["approvalId"]))
    assert "Approved" in json.dumps(rewritten["blocks"])
    # The route the click went through refuses anything not signed with the secret.
    body = b"payload=%7B%7D"
    async with dev.http.post(
        dev.url + "/slack/events",
        data=body,
        headers=signed_headers("not-the-secret", body),
    ) as response:
        assert response.status == 401


async def _without_buttons(dev: Dev, approval_id: str) -> dict[str, Any] | None:
    card = await dev.card(approval_id)
    return card if not actions_of(card) else None


async def test_an_edit_modal_shows_errors_then_decides_with_the_edits(dev: Dev) -> None:
    run = await dev.simulate("transfer")
    card = await dev.card(run["approvalId"])
    await dev.click(card, "edit", "U0ALICE")
    modal = await dev.modal("U0ALICE")
    assert modal["callback_id"] == "edit_modal"
    assert (await dev.state("U0BOB"))["modals"] == []  # only the person who clicked sees it

    status, refused = await dev.post(
        "/dev/submit", {"user": "U0ALICE", "viewId": modal["id"], "values": {"arg:amount": "50000"}}
    )
    assert status == 200 and refused["answer"]["response_action"] == "errors"
    assert "at most 10,000" in refused["answer"]["errors"]["arg:amount"]
    shown = await dev.modal("U0ALICE")
    assert shown["id"] == modal["id"] and "arg:amount" in shown["errors"]

    values = {"arg:amount": "1200", "arg:currency": '"USD"', "comment": "split in two"}
    status, accepted = await dev.post(
        "/dev/submit", {"user": "U0ALICE", "viewId": modal["id"], "values": values}
    )
    decided = await dev.decided(run["id"])

    assert status == 200 and accepted["ok"] is True
    assert (await dev.state())["modals"] == []
    decision = decided["decision"]
    assert decision["action"] == "edit" and decision["decidedBy"] == "U0ALICE"
    assert decision["approvedArgs"] == {**ARGS["transfer"], "amount": 1200, "currency": "USD"}
    assert decision["comment"] == "split in two"


async def test_the_requester_is_told_privately_that_it_cannot_approve(dev: Dev) -> None:
    run = await dev.simulate("transfer")  # asked for U0DAVE
    card = await dev.card(run["approvalId"])

    await dev.click(card, "approve", "U0DAVE")
    notes = await until(lambda: _ephemerals(dev, "U0DAVE"))

    assert notes[0]["text"].startswith("Nothing changed")
    assert (await dev.state("U0ALICE"))["ephemerals"] == []
    assert (await dev.run_if(run["id"], lambda r: r))["state"] == "waiting"


async def _ephemerals(dev: Dev, user: str) -> list[dict[str, Any]]:
    return list((await dev.state(user))["ephemerals"])


async def test_closing_a_modal_changes_nothing(dev: Dev) -> None:
    run = await dev.simulate("email")
    card = await dev.card(run["approvalId"])
    await dev.click(card, "reject", "U0CAROL")
    modal = await dev.modal("U0CAROL")

    status, _ = await dev.post("/dev/close", {"user": "U0CAROL", "viewId": modal["id"]})

    assert status == 200 and (await dev.state("U0CAROL"))["modals"] == []
    assert (await dev.run_if(run["id"], lambda r: r))["state"] == "waiting"
    status, body = await dev.post("/dev/close", {"user": "U0CAROL", "viewId": modal["id"]})
    assert status == 404 and "no open view" in body["message"]


async def test_a_reply_in_the_cards_thread_approves_it(dev: Dev) -> None:
    run = await dev.simulate("deploy")
    card = await dev.card(run["approvalId"])

    status, _ = await dev.post(
        "/dev/reply",
        {"user": "U0CAROL", "channel": card["channel"], "threadTs": card["ts"], "text": "approve"},
    )
    decided = await dev.decided(run["id"])
    replies = await until(lambda: _reacted_replies(dev, card))

    assert status == 200
    assert decided["decision"]["decidedBy"] == "U0CAROL"
    assert replies[0]["user"] == "U0CAROL" and replies[0]["text"] == "approve"
    assert replies[0]["reactions"][0]["name"] == "white_check_mark"


async def _reacted_replies(dev: Dev, card: dict[str, Any]) -> list[dict[str, Any]] | None:
    replies = (await dev.state())["threads"][card["channel"]].get(card["ts"], [])
    return replies if replies and replies[0].get("reactions") else None


async def test_a_published_home_tab_is_shown_to_its_user(dev: Dev) -> None:
    view = {
        "type": "home",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Hi"}}],
    }
    token = {"Authorization": f"Bearer {dev.settings.slack_bot_token}"}
    async with dev.http.post(
        dev.url + "/slack/api/views.publish", json={"user_id": "U0BOB", "view": view}, headers=token
    ) as response:
        assert (await response.json())["ok"] is True

    status, opened = await dev.post("/dev/home", {"user": "U0BOB"})

    assert status == 200 and opened["status"] is not None  # delivered to the bot
    assert (await dev.state("U0BOB"))["home"]["blocks"] == view["blocks"]
    assert (await dev.state("U0ALICE"))["home"] is None


async def test_each_member_sees_only_the_channels_they_are_in(dev: Dev) -> None:
    """As in Slack's sidebar, a private channel (marked private) shows only to its members, and
    only they can post in it.

    https://docs.slack.dev/reference/objects/conversation-object ("is_private: the
    conversation is privileged between two or more members")
    """
    dev.ws.post_message("C0PRIVATE", text="for members only")
    alice, bob = await dev.state("U0ALICE"), await dev.state("U0BOB")

    security = {"id": "C0PRIVATE", "name": "security", "isIm": False, "isPrivate": True}
    assert {**security, "user": None} in alice["channels"]
    assert [m["text"] for m in alice["messages"]["C0PRIVATE"]] == ["for members only"]
    assert {c["id"] for c in bob["channels"]} == {"C0OPS", "C0DEPLOY", "C0PAYMENTS", "C0ESCALATE"}
    assert "C0PRIVATE" not in bob["messages"]
    body = {"user": "U0BOB", "channel": "C0PRIVATE", "text": "let me in"}
    status, refused = await dev.post("/dev/reply", body)
    assert status == 404 and "not a member of #security" in refused["message"]

    dev.ws.join("C0PRIVATE", "U0BOB")
    assert "C0PRIVATE" in {c["id"] for c in (await dev.state("U0BOB"))["channels"]}


async def test_the_page_endpoints_name_what_is_wrong(dev: Dev) -> None:
    status, unknown_user = await dev.post("/dev/home", {"user": "U0NOBODY"})
    assert status == 404 and "U0NOBODY" in unknown_user["message"]
    status, no_button = await dev.post(
        "/dev/click", {"user": "U0ALICE", "channel": "C0OPS", "ts": "1.000001", "actionId": "x"}
    )
    assert status == 404 and "no message" in no_button["message"]
    status, missing = await dev.post("/dev/reply", {"user": "U0ALICE", "channel": "C0OPS"})
    assert status == 400 and "text" in missing["message"]


async def test_serve_has_no_workspace_routes(rig: SlackRig) -> None:
    for method, path in [("GET", "/"), ("GET", "/dev/state"), ("POST", "/dev/click")]:
        status, _ = await rig.bot.call(method, path)
        assert status == 404, path
    async with rig.bot.http.post(rig.bot.url + "/slack/api/auth.test") as response:
        assert response.status == 404


# -- the commands, as real processes -----------------------------------------------------------


async def _line_with(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> str:
    while True:
        line = (await asyncio.wait_for(stream.readline(), 15)).decode()
        if not line:
            raise AssertionError(f"output ended before {needle!r}: {''.join(seen)}")
        seen.append(line)
        if needle in line:
            return line


async def test_the_dev_and_demo_commands(tmp_path: Path) -> None:
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "dev", "--port", str(port),
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    printed: list[str] = []
    url = f"http://127.0.0.1:{port}"
    demos: list[asyncio.subprocess.Process] = []
    try:
        assert server.stdout is not None
        token = (await _line_with(server.stdout, "agent token", printed)).split()[-1]
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/healthz") as response:
                assert response.status == 200 and (await response.json())["ok"] is True
            async with http.get(url + "/") as response:
                assert response.status == 200

            demo_env = {**env, "APPROVAL_URL": url, "APPROVAL_API_TOKEN": token}
            refused = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "demo", "--token", "wrong",
                env=demo_env, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            refused_out, _ = await asyncio.wait_for(refused.communicate(), 15)
            assert refused.returncode == 1 and b"unauthorized" in refused_out

            demo = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "demo",
                env=demo_env, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            demos.append(demo)
            assert demo.stdout is not None
            said: list[str] = []
            await _line_with(demo.stdout, "waiting for decisions", said)
            ids = [line.split()[0] for line in said if line.strip().startswith("apr_")]
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get(url + "/v1/approvals?status=pending", headers=headers) as response:
                pending = (await response.json())["items"]
            assert sorted(a["id"] for a in pending) == sorted(ids) and len(ids) == 3
            assert {a["toolName"] for a in pending} == {e.tool_name for e in EXAMPLES}

            async def three_cards() -> list[dict[str, Any]] | None:
                async with http.get(url + "/dev/state", params={"user": "U0ALICE"}) as response:
                    state = await response.json()
                cards = [m for ms in state["messages"].values() for m in ms if actions_of(m)]
                return cards if len(cards) == 3 else None

            for card in await until(three_cards):
                click = {"user": "U0ALICE", "channel": card["channel"], "ts": card["ts"]}
                async with http.post(
                    url + "/dev/click", json={**click, "actionId": "approve"}
                ) as response:
                    assert response.status == 200
            out, _ = await asyncio.wait_for(demo.communicate(), 15)
            assert demo.returncode == 0
            decided = [line for line in out.decode().splitlines() if " approved (approve) " in line]
            assert sorted(line.split()[0] for line in decided) == sorted(ids)
    finally:
        for process in demos:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        rest, errors = await asyncio.wait_for(server.communicate(), 15)
    assert server.returncode == 0
    output = "".join(printed) + rest.decode() + errors.decode()
    assert url in output and "xoxb-" not in output  # the Slack secrets stay inside
    assert (tmp_path / "approvals.db").exists()
