"""Slack's deadlines, held however slow Slack's own lookups are.

* An interaction must be answered within 3 s, or Slack shows the person an error
  (https://api.slack.com/interactivity/handling#acknowledgment_response); so the bot answers a
  click or a modal submit only once what it decided is committed, and never waits on
  `users.info` for that.
* A `trigger_id` opens a modal for 3 s after the click
  (https://api.slack.com/interactivity/handling#modal_responses, https://api.slack.com/methods/views.open:
  `expired_trigger_id`); the modal opens in time even while a user group lookup lags.
* A slash command must be answered within 3 s; more can follow on its `response_url`
  (https://api.slack.com/interactivity/slash-commands#responding_to_commands).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from bot.devslack import Deliverer
from tests.conftest import AGENT_TOKEN, SIGNING_SECRET, RigFactory, SlackRig, until
from tests.processes import ServeProcess

SRE_ONLY = """
[[rules]]
tools = ["deploy_*"]
approvers = ["S0SRE"]
"""

ALICE = {"id": "U0ALICE", "name": "alice", "profile": {"display_name": "Alice Archer"}}


def slow(workspace: Any, method: str, seconds: float, body: dict[str, Any], times: int = 1) -> None:
    """`method` answers `body` (a success), `seconds` late, the next `times` calls."""
    workspace.fail_next(method, status=200, body={"ok": True, **body}, delay=seconds, times=times)


async def record_of(rig: SlackRig, approval_id: str) -> dict[str, Any]:
    _, record = await rig.bot.call("GET", f"/v1/approvals/{approval_id}")
    return record


async def open_modal(rig: SlackRig, user: str) -> Any:
    return next((v for v in rig.workspace.open_modals(user) if not v.closed), None)


# -- commit, then answer -------------------------------------------------------------------


async def test_a_click_answered_200_is_already_decided(make_rig: RigFactory) -> None:
    """The 200 a click gets means its decision is stored: asked right after, it is there, with
    the clicker's name from the payload while `users.info` is still on its way."""
    rig = await make_rig()
    record = await rig.bot.submit(toolName="deploy_service", args={"v": "1"})
    await rig.card(record["id"])
    slow(rig.workspace, "users.info", 1.0, {"user": ALICE})

    delivery = await rig.click(record["id"], "approve", "U0ALICE")

    assert delivery.status == 200
    decided = await record_of(rig, record["id"])
    assert decided["status"] == "approved"
    assert decided["decision"]["decidedBy"] == "U0ALICE"
    assert decided["decision"]["decidedByName"] == "alice"


async def test_a_click_answered_200_survives_kill_9_right_after(
    serve: ServeProcess, workspace: Any
) -> None:
    """kill -9 the moment Slack has its 200: after a restart the approval is decided."""
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        await serve.start(http)
        body = {"toolName": "deploy_service", "args": {"v": "2"}}
        async with http.post(serve.url + "/v1/approvals", json=body, headers=headers) as r:
            record = await r.json()
        url = f"{serve.url}/v1/approvals/{record['id']}"

        async def posted() -> Any:
            async with http.get(url, headers=headers) as response:
                found = await response.json()
            return found if found["slack"]["ts"] else None

        card = await until(posted, timeout=10)
        slow(workspace, "users.info", 2.0, {"user": ALICE})
        async with Deliverer(workspace, serve.url + "/slack/events", SIGNING_SECRET) as hands:
            delivery = await hands.click(
                card["slack"]["channel"], card["slack"]["ts"], "approve", user="U0ALICE"
            )
        serve.kill()
        assert delivery.status == 200

        await serve.start(http)
        async with http.get(url, headers=headers) as response:
            after = await response.json()

    assert after["status"] == "approved"
    assert after["decision"]["decidedBy"] == "U0ALICE"


async def test_a_reject_submitted_while_users_info_lags_is_answered_in_time(
    make_rig: RigFactory,
) -> None:
    """`users.info` taking 3.2 s made Bolt answer 404 at 3 s (the modal showed an error) while
    the rejection was still recorded: the submit now answers at once, decided."""
    rig = await make_rig()
    record = await rig.bot.submit(toolName="deploy_service", args={"v": "3"})
    await rig.click(record["id"], "reject", "U0ALICE")
    modal = await until(lambda: open_modal(rig, "U0ALICE"))
    slow(rig.workspace, "users.info", 3.2, {"user": ALICE})

    delivery = await rig.slack.submit_view(modal.id, {"reason": "not today"})

    assert delivery.status == 200, delivery.problems
    decided = await record_of(rig, record["id"])
    assert decided["status"] == "rejected"
    assert decided["decision"]["comment"] == "not today"
    assert decided["decision"]["decidedByName"] == "alice"


# -- modals open within the trigger's 3 s ----------------------------------------------------


async def test_edit_opens_in_time_while_the_group_lookup_lags(make_rig: RigFactory) -> None:
    """A 3.1 s `usergroups.users.list` pushed `views.open` past the trigger's 3 s."""
    rig = await make_rig(SRE_ONLY)
    record = await rig.bot.submit(toolName="deploy_service", args={"v": "4"})
    await rig.card(record["id"])
    slow(rig.workspace, "usergroups.users.list", 3.1, {"users": ["U0ALICE", "U0BOB"]})

    await rig.click(record["id"], "edit", "U0ALICE")

    modal = await until(lambda: open_modal(rig, "U0ALICE"), timeout=5)
    assert modal.spec["callback_id"] == "edit_modal"
    opened = rig.workspace.calls_to("views.open")
    assert [call.ok for call in opened] == [True]
    await asyncio.sleep(3.3)  # the lookup answers: alice may edit, the modal stays as it is
    assert rig.workspace.ephemerals_for("U0ALICE") == []
    assert not rig.workspace.calls_to("views.update")


async def test_a_modal_opened_before_the_lookup_answered_turns_into_the_refusal(
    make_rig: RigFactory,
) -> None:
    """Carol is not in S0SRE: the modal opened in time becomes the refusal once Slack answers,
    and nothing is decided."""
    rig = await make_rig(SRE_ONLY)
    record = await rig.bot.submit(toolName="deploy_service", args={"v": "5"})
    await rig.card(record["id"])
    slow(rig.workspace, "usergroups.users.list", 2.5, {"users": ["U0ALICE", "U0BOB"]})

    await rig.click(record["id"], "reject", "U0CAROL")
    await until(lambda: open_modal(rig, "U0CAROL"), timeout=5)

    async def refused() -> Any:
        modal = await open_modal(rig, "U0CAROL")
        return modal if "Nothing changed" in json.dumps(modal.spec) else None

    notice = await until(refused, timeout=5)
    assert "approve" in json.dumps(notice.spec).lower()
    assert (await record_of(rig, record["id"]))["status"] == "pending"


# -- /approvals answers within 3 s -----------------------------------------------------------


def group_rules(count: int) -> str:
    return "".join(
        f'[[rules]]\ntools = ["tool_{i}"]\napprovers = ["S0G{i}"]\n\n' for i in range(count)
    )


async def group_routed(rig: SlackRig, count: int) -> None:
    for i in range(count):
        rig.workspace.add_usergroup(f"S0G{i}", f"group{i}", ["U0ALICE"])
        await rig.bot.submit(toolName=f"tool_{i}", args={"n": i})


async def test_approvals_mine_looks_up_groups_at_once(make_rig: RigFactory) -> None:
    """15 group-routed approvals at 0.25 s a lookup, one after another, took 3.75 s: Slack had
    given up. The lookups run together now."""
    rig = await make_rig(group_rules(15))
    await group_routed(rig, 15)
    slow(rig.workspace, "usergroups.users.list", 0.25, {"users": ["U0ALICE"]}, times=15)

    delivery = await rig.slack.slash_command("/approvals", "mine", user="U0ALICE", channel="#ops")

    assert delivery.status == 200
    assert delivery.json()["text"].startswith("Pending approvals for you")
    assert json.dumps(delivery.json()["blocks"]).count("tool_") >= 15


async def test_approvals_answers_at_once_and_lists_later_while_slack_lags(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(group_rules(3))
    await group_routed(rig, 3)
    slow(rig.workspace, "usergroups.users.list", 2.6, {"users": ["U0ALICE"]}, times=3)

    delivery = await rig.slack.slash_command("/approvals", "mine", user="U0ALICE", channel="#ops")

    assert delivery.status == 200
    assert "Looking up" in delivery.json()["text"]

    async def listed() -> Any:
        notes = rig.workspace.ephemerals_for("U0ALICE")
        return next((n for n in notes if "Pending approvals for you" in n.text), None)

    listing = await until(listed, timeout=5)
    assert json.dumps(listing.blocks).count("tool_") >= 3


# -- Tier 2 lookups: a 429 waits its Retry-After, it never means "nobody" --------------------


async def test_a_rate_limited_group_lookup_waits_instead_of_refusing(make_rig: RigFactory) -> None:
    """A 429 on `usergroups.users.list` counted the group as empty for 30 s, so a real member
    was told they may not approve (https://api.slack.com/apis/rate-limits: wait Retry-After)."""
    rig = await make_rig(SRE_ONLY)
    record = await rig.bot.submit(toolName="deploy_service", args={"v": "6"})
    await rig.card(record["id"])
    rig.workspace.fail_next("usergroups.users.list", status=429, retry_after=1)

    await rig.click(record["id"], "approve", "U0ALICE")

    decided = await rig.decided(record["id"])
    assert (decided["status"], decided["decision"]["decidedBy"]) == ("approved", "U0ALICE")
    assert [c.status for c in rig.workspace.calls_to("usergroups.users.list")] == [429, 200]


async def test_app_home_lists_every_group_routed_approval_through_429s(
    make_rig: RigFactory,
) -> None:
    """Opening App Home with 12 group-routed approvals: where Slack's tier answers 429, the
    lookup waits and asks again; no approval goes missing from the list."""
    from bot.devslack.tiers import Tier

    rig = await make_rig(group_rules(12))
    await group_routed(rig, 12)
    rig.workspace.rate_limits.tiers["usergroups.users.list"] = Tier("Tier 2", 600, 5)

    await rig.slack.open_home("U0ALICE")

    async def listed() -> Any:
        home = rig.workspace.home("U0ALICE")
        shown = json.dumps(home.spec) if home is not None else ""
        return home if "and 2 more" in shown else None  # ten shown, the rest counted

    await until(listed, timeout=10)
    statuses = [c.status for c in rig.workspace.calls_to("usergroups.users.list")]
    assert 429 in statuses  # Slack did refuse some: they were asked again
    assert statuses.count(200) == 12
