"""Restarting `approval-bot dev` changes nothing an agent or a person holds: the agent token and
the local workspace (channels, messages, threads, users) are kept beside the database."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.dev.kept import DevFiles, WorkspaceKeeper, kept_token, load_workspace
from bot.devslack import Workspace
from bot.devslack.saved import dump, restore
from bot.models import Status
from bot.sdk import ApprovalClient
from tests.conftest import until
from tests.dev_process import DevProcess, wait_for_exit
from tests.slack_support import actions_of


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[DevProcess]:
    """`approval-bot dev` in `tmp_path`, not started yet; stopped afterwards."""
    async with aiohttp.ClientSession() as http:
        process = DevProcess(tmp_path, http)
        try:
            yield process
        finally:
            if process.process is not None:
                await wait_for_exit(process)


async def _click(dev: DevProcess, channel: str, ts: str, action: str, user: str) -> Any:
    """`user` presses a button on a message, as the page does: the workspace sends the bot a
    signed interaction payload."""
    body = {"user": user, "channel": channel, "ts": ts, "actionId": action}
    async with dev.http.post(dev.url + "/dev/click", json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_a_restart_keeps_the_token_the_cards_and_a_waiting_agent(
    dev: DevProcess, tmp_path: Path
) -> None:
    await dev.start()
    token = dev.token
    submitted = await dev.submit(toolName="deploy_service", args={"version": "1.4.2"})
    card = (await dev.posted(submitted["id"]))["slack"]
    async with ApprovalClient(dev.url, token=token) as agent:
        waiting = asyncio.create_task(agent.wait(submitted["id"], timeout=60))
        await asyncio.sleep(0.3)  # the agent is parked in /wait

        assert await wait_for_exit(dev) == 0
        files = DevFiles.beside(str(tmp_path / "approvals.db"))
        assert files.token.read_text().strip() == token
        assert stat.S_IMODE(files.token.stat().st_mode) == 0o600
        assert not waiting.done()  # the agent tries again while the bot is away

        await dev.start()

        assert dev.token == token
        assert (await dev.record(submitted["id"], token))["status"] == "pending"
        message = await dev.message(card["channel"], card["ts"])
        assert message is not None and actions_of(message)  # the same card, live buttons

        await _click(dev, card["channel"], card["ts"], "approve", user="U0ALICE")
        decided = await asyncio.wait_for(waiting, 20)

    assert decided.status is Status.APPROVED
    assert decided.decision is not None and decided.decision.decided_by == "U0ALICE"

    async def rewritten() -> dict[str, Any] | None:
        message = await dev.message(card["channel"], card["ts"])
        return message if message and not actions_of(message) and message["replies"] else None

    await until(rewritten, timeout=10)


async def test_a_thread_and_its_links_survive_a_restart(dev: DevProcess) -> None:
    """A reply typed in a card's thread before the restart is still in it after."""
    await dev.start()
    submitted = await dev.submit(toolName="send_email", args={"to": "ceo@example.com"})
    card = (await dev.posted(submitted["id"]))["slack"]
    reply = {"user": "U0BOB", "channel": card["channel"], "threadTs": card["ts"], "text": "hm"}
    async with dev.http.post(dev.url + "/dev/reply", json=reply) as response:
        assert response.status == 200, await response.text()
    before = await dev.message(card["channel"], card["ts"])
    assert before is not None and [r["text"] for r in before["replies"]] == ["hm"]

    assert await wait_for_exit(dev) == 0
    await dev.start()

    after = await dev.message(card["channel"], card["ts"])
    assert after is not None
    assert after["blocks"] == before["blocks"] and after["replies"] == before["replies"]
    link = (await dev.record(submitted["id"]))["slack"]["permalink"]  # App Home links here
    assert f"/archives/{card['channel']}/p{card['ts'].replace('.', '')}" in link


async def test_unreadable_state_files_start_fresh_with_a_warning(
    dev: DevProcess, tmp_path: Path
) -> None:
    files = DevFiles.beside(str(tmp_path / "approvals.db"))
    files.token.write_text("not a token\n")
    files.workspace.write_text('{"version": 1, "users": [')

    await dev.start()

    warnings = [line for line in dev.output().splitlines() if "WARNING" in line]
    assert len(warnings) == 2, dev.output()
    assert files.token.name in warnings[0] and files.workspace.name in warnings[1]
    submitted = await dev.submit(toolName="deploy_service", args={"version": "2.0.0"})
    await dev.posted(submitted["id"])  # a fresh workspace, with its channels, takes the card
    assert files.token.read_text().strip() == dev.token != "not a token"


# -- the files, in process ---------------------------------------------------------------------


def test_the_files_sit_beside_the_database(tmp_path: Path) -> None:
    files = DevFiles.beside(str(tmp_path / "approvals.db"))

    assert files.token == tmp_path / "approvals.dev-token"
    assert files.workspace == tmp_path / "approvals.workspace.json"
    assert DevFiles.beside("postgresql://u@h/db").token == Path("approvals.dev-token")


def test_a_token_is_made_once_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "approvals.dev-token"

    first = kept_token(path)
    path.chmod(0o644)

    assert kept_token(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_workspace_comes_back_as_it_was(tmp_path: Path) -> None:
    ws = Workspace()
    ws.add_user("U0ERIN", "erin", "Erin Eng")
    ws.add_channel("C0NEW", "new", members=["U0ERIN", "U0BOT"])
    card = ws.post_message("C0OPS", text="card", blocks=[{"type": "divider"}], metadata={"a": 1})
    ws.post_message("C0OPS", text="reply", user="U0BOB", thread_ts=card.ts)
    ws.add_reaction("C0OPS", card.ts, "eyes", user="U0CAROL")
    ws.update_message("C0OPS", card.ts, text="card, decided", blocks=[])
    ws.leave("C0DEPLOY", "U0DAVE")
    ws.open_dm("U0ALICE")

    back = restore(json.loads(json.dumps(dump(ws))))

    assert dump(back) == dump(ws)
    assert [m.text for m in back.thread("C0OPS", card.ts)] == ["card, decided", "reply"]
    assert back.channel("D0ALICE").is_im and "U0DAVE" not in back.channel("C0DEPLOY").members
    later = back.post_message("C0OPS", text="after")
    assert later.ts > max(m.edited_ts or m.ts for m in back.messages["C0OPS"][:-1])


def test_a_restored_workspace_gains_seed_entries_it_lacks() -> None:
    saved = dump(Workspace(seed=False))

    back = restore(saved)

    assert {"U0ALICE", "C0OPS", "C0PRIVATE", "S0SRE"} <= {*back.users, *back.channels, "S0SRE"}
    assert "S0SRE" in back.usergroups and back.users["U0BOT"].is_bot


def _saved(**changes: Any) -> str:
    """A saved fresh workspace, with `changes` made to the document."""
    return json.dumps({**dump(Workspace()), **changes})


def _message(channel: str, ts: str) -> dict[str, Any]:
    return {"channel": channel, "ts": ts, "text": "", "blocks": [], "user": "U0BOT"}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("", id="empty"),
        pytest.param("{", id="cut-short"),
        pytest.param("[]", id="not-an-object"),
        pytest.param(_saved(version=2), id="another-version"),
        pytest.param(_saved(users=[{"id": 5}]), id="wrong-type"),
        pytest.param(_saved(extra=True), id="unknown-field"),
        pytest.param(_saved(messages=[_message("C0GONE", "1.000100")]), id="message-nowhere"),
        pytest.param(_saved(messages=[_message("C0OPS", "yesterday")]), id="bad-ts"),
        pytest.param("[" * 100_000, id="too-deep"),
    ],
)
def test_an_unreadable_workspace_file_gives_a_fresh_workspace_and_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    path = tmp_path / "approvals.workspace.json"
    path.write_text(content)

    with caplog.at_level(logging.WARNING):
        ws = load_workspace(path)

    assert dump(ws) == dump(Workspace())
    (record,) = caplog.records
    assert str(path) in record.getMessage() and "\n" not in record.getMessage()


def test_no_file_is_a_fresh_workspace_without_a_word(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        ws = load_workspace(tmp_path / "approvals.workspace.json")

    assert dump(ws) == dump(Workspace()) and not caplog.records


async def test_the_keeper_saves_after_a_change_and_when_told(tmp_path: Path) -> None:
    ws = Workspace()
    path = tmp_path / "approvals.workspace.json"
    keeper = WorkspaceKeeper(ws, path, every=0.01)
    running = asyncio.create_task(keeper.run())
    await asyncio.sleep(0)  # it follows the feed from here
    try:
        ws.post_message("C0OPS", text="one")
        await until(lambda: _saved_texts(path, ["one"]))
        ws.post_ephemeral("C0OPS", "U0ALICE", text="only alice")  # not kept: no save needed
    finally:
        running.cancel()
    ws.post_message("C0OPS", text="two")
    keeper.save()

    assert await _saved_texts(path, ["one", "two"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def _saved_texts(path: Path, texts: list[str]) -> bool:
    if not path.exists():
        return False
    return [m["text"] for m in json.loads(path.read_text())["messages"]] == texts
