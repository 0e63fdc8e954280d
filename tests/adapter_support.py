"""Helpers of the agent integration tests: wait for a card, then answer it as a reviewer would."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from tests.conftest import AGENT_TOKEN, SlackRig, until
from tests.slack_support import actions_of

__all__ = [
    "answer_modal",
    "approve_the_card",
    "decide_incomplete_then_complete",
    "modules_the_core_imports",
    "open_modals",
    "pending",
    "use_the_rig",
]


async def pending(rig: SlackRig, count: int = 1) -> list[dict[str, Any]]:
    """The pending approvals once there are `count` of them, oldest first."""

    async def probe() -> list[dict[str, Any]] | None:
        _, body = await rig.bot.call("GET", "/v1/approvals?status=pending")
        return body["items"] if len(body["items"]) >= count else None

    return list(reversed(await until(probe)))


async def approve_the_card(
    rig: SlackRig, run: asyncio.Task[Any], ran: Sequence[Any]
) -> tuple[dict[str, Any], list[str]]:
    """Wait for the one card, check that nothing ran meanwhile, then approve it as alice.

    Returns the approval record and the card's buttons.
    """
    [record] = await pending(rig)
    buttons = actions_of(await rig.card(record["id"]))
    assert not run.done() and not ran
    await rig.click(record["id"], "approve", "U0ALICE")
    return record, buttons


async def decide_incomplete_then_complete(
    rig: SlackRig, approval_id: str, complete: dict[str, Any]
) -> int:
    """An admin decision whose arguments leave out `region` is refused (422) with nothing
    stored; then `complete` is approved. The HTTP status of that second decision."""
    status, answer = await rig.bot.decide(approval_id, approvedArgs={"version": "1.4.3"})
    assert (status, answer["error"]) == (422, "invalid"), answer
    assert "region" in answer["message"]
    assert (await rig.bot.call("GET", f"/v1/approvals/{approval_id}"))[1]["status"] == "pending"
    status, _ = await rig.bot.decide(approval_id, approvedArgs=complete)
    return status


async def answer_modal(
    rig: SlackRig, approval_id: str, action: str, user: str, values: dict[str, str]
) -> None:
    """Click `action` on the card as `user`, then submit the modal it opens with `values`."""
    await rig.click(approval_id, action, user)
    [modal] = await until(lambda: open_modals(rig, user))
    await rig.slack.submit_view(modal.id, values)


async def open_modals(rig: SlackRig, user: str) -> list[Any]:
    """The modals `user` has open."""
    return [view for view in rig.workspace.open_modals(user) if not view.closed]


def use_the_rig(rig: SlackRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the examples' clients at the rig's bot; their model clients get a key never used."""
    monkeypatch.setenv("APPROVAL_URL", rig.bot.url)
    monkeypatch.setenv("APPROVAL_API_TOKEN", AGENT_TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused")


def modules_the_core_imports() -> list[str]:
    """The modules a fresh interpreter holds once it has imported the bot and `bot.adapters`."""
    probe = "import sys, bot.app, bot.cli, bot.sdk, bot.adapters; print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()
