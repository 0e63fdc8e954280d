"""Policies through the real bot and the local Slack: routing, approvers, N-of-M, timeouts,
escalation, App Home and /approvals. The routing file is the README's own example."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError
from bot.errors import Invalid, NotAllowed
from bot.models import ApprovalRequest, DecisionKind
from bot.policy import NotAnApprover, load_routing
from tests.conftest import RigFactory, SlackRig, until
from tests.slack_support import text_of

README = (Path(__file__).parent.parent / "README.md").read_text()
EXAMPLE = re.search(r"## Policies.*?```toml\n(.*?)```", README, re.S)
assert EXAMPLE, "README has no Policies example"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
async def rig(make_rig: RigFactory) -> SlackRig:
    assert EXAMPLE is not None
    return await make_rig(EXAMPLE[1])


async def status_of(rig: SlackRig, approval_id: str) -> dict[str, Any]:
    _, record = await rig.bot.call("GET", f"/v1/approvals/{approval_id}")
    return record


async def note_for(rig: SlackRig, user: str, containing: str) -> Any:
    async def probe() -> Any:
        return next((n for n in rig.workspace.ephemerals_for(user) if containing in n.text), None)

    return await until(probe)


# -- the file --------------------------------------------------------------------------------


def test_the_readme_example_loads(tmp_path: Path) -> None:
    assert EXAMPLE is not None
    routing = load_routing(write(tmp_path / "a.toml", EXAMPLE[1]))
    assert routing.default_channel == "C0OPS"
    assert routing.rules[0].tools == ["deploy_*", "rollback"]

    def matched(tool: str) -> int | None:
        return routing.match(ApprovalRequest(tool_name=tool, args={}))[0]

    assert matched("deploy_api") == matched("rollback") == 0
    assert matched("undeploy") is None


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param(
            '[[rules]]\ntools = ["x"]\npriority = "urgent"', "rules.0.priority", id="enum"
        ),
        pytest.param("[[rules]]\nchannel = 'C1'", "rules.0.tools", id="missing-tools"),
        pytest.param(
            '[[rules]]\ntools = ["x"]\nrequired_approvals = 0', "required_approvals", id="n"
        ),
        pytest.param('[[rules]]\ntools = ["x"]\napprovers = ["alice"]', "approvers", id="ids"),
        pytest.param('[[rules]]\ntools = ["x"]\nchanel = "C1"', "chanel", id="typo"),
        pytest.param("default_channel = ", "not valid TOML", id="toml"),
    ],
)
def test_a_bad_file_names_the_file_field_and_reason(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_routing(path)
    assert str(path) in str(caught.value) and where in str(caught.value)


# -- routing ---------------------------------------------------------------------------------


async def test_a_rule_routes_and_sets_priority_and_mention(rig: SlackRig) -> None:
    record = await rig.bot.submit(toolName="deploy_api", priority="low")
    card = await rig.card(record["id"])

    assert (record["channel"], record["priority"]) == ("C0DEPLOY", "high")
    assert card.channel == "C0DEPLOY"
    assert "<!subteam^S0ONCALL>" in card.text
    assert record["policy"]["requiredApprovals"] == 2
    assert record["onTimeout"] == "escalate" and record["timeoutSeconds"] == 900


async def test_requests_can_only_tighten_a_rule(rig: SlackRig) -> None:
    record = await rig.bot.submit(
        toolName="transfer_funds",
        channel="C0OPS",
        priority="low",
        timeoutSeconds=60,
        onTimeout="escalate",
        allowedDecisions=["reject", "edit"],
    )
    assert record["channel"] == "C0PAYMENTS"  # the rule's channel wins over the request's
    assert record["priority"] == "critical"  # cannot lower the rule's
    assert record["timeoutSeconds"] == 60  # may shorten: the rule rejects at timeout
    assert record["onTimeout"] == "escalate"
    assert record["allowedDecisions"] == ["reject"]  # narrowed, never widened

    for field, value in [("allowedDecisions", ["feedback"]), ("onTimeout", "approve")]:
        status, body = await rig.bot.call(
            "POST", "/v1/approvals", json={"toolName": "transfer_funds", "args": {}, field: value}
        )
        assert (status, body["path"]) == (422, field)


async def test_unmatched_tools_go_to_the_default_channel(rig: SlackRig) -> None:
    record = await rig.bot.submit(toolName="read_file")
    assert record["channel"] == "C0OPS" and record["policy"]["rule"] is None


# -- who may decide --------------------------------------------------------------------------


async def test_a_non_approver_is_refused_told_who_may_and_nothing_changes(rig: SlackRig) -> None:
    """Issue 15: the note said "not an approver for deploy_*, rollback", the rule's globs;
    it names who may approve now."""
    record = await rig.bot.submit(toolName="deploy_api")
    await rig.click(record["id"], "approve", "U0CAROL")

    note = await note_for(rig, "U0CAROL", "can approve")
    pattern = r"only .*U0ALICE.* or members of .*S0SRE.* can approve .*deploy_api"
    assert re.search(pattern, note.text)
    assert "deploy_*" not in note.text and "not an approver" not in note.text
    assert (await status_of(rig, record["id"]))["progress"]["approvedBy"] == []
    refused = [e for e in await rig.bot.service.store.events_since(0) if e.kind == "refused"]
    assert [e.actor for e in refused] == ["U0CAROL"]
    assert refused[0].detail["reason"] == "only U0ALICE or members of S0SRE can approve deploy_api"


async def test_a_non_approver_cannot_open_the_edit_modal(rig: SlackRig) -> None:
    record = await rig.bot.submit(toolName="deploy_api")
    await rig.click(record["id"], "edit", "U0DAVE")
    await note_for(rig, "U0DAVE", "can edit")
    assert rig.workspace.open_modals("U0DAVE") == []


@pytest.mark.parametrize(
    ("kind", "approvers", "channels", "message"),
    [
        pytest.param(
            DecisionKind.APPROVE, ["U0ALICE"], ["C0D"], "only U0ALICE can approve t", id="one"
        ),
        pytest.param(
            DecisionKind.EDIT,
            ["U0ALICE", "U0BOB", "S0SRE"],
            ["C0D"],
            "only U0ALICE, U0BOB or members of S0SRE can edit t",
            id="users-and-group",
        ),
        pytest.param(
            DecisionKind.FEEDBACK,
            [],
            ["C0OPS", "C0ESCALATE"],
            "only members of C0OPS or C0ESCALATE can approve or reject t",
            id="channel-members",
        ),
    ],
)
def test_a_refusal_says_who_may_decide(
    kind: DecisionKind, approvers: list[str], channels: list[str], message: str
) -> None:
    refused = NotAnApprover("t", kind, approvers, channels)
    assert refused.message == message
    assert isinstance(refused, NotAllowed) and refused.status == 403


async def test_group_members_are_approvers(rig: SlackRig) -> None:
    record = await rig.bot.submit(toolName="deploy_api")
    await rig.click(record["id"], "approve", "U0BOB")  # bob is in S0SRE

    counted = await until(lambda: _approved_by(rig, record["id"], ["U0BOB"]))
    assert counted["status"] == "pending"
    assert rig.workspace.calls_to("usergroups.users.list", ok=True)


async def _approved_by(rig: SlackRig, approval_id: str, users: list[str]) -> Any:
    record = await status_of(rig, approval_id)
    return record if record["progress"]["approvedBy"] == users else None


# -- N of M ----------------------------------------------------------------------------------


async def test_two_of_m_needs_two_distinct_approvers(rig: SlackRig) -> None:
    record = await rig.bot.submit(toolName="deploy_api")
    await rig.click(record["id"], "approve", "U0ALICE")
    await until(lambda: _approved_by(rig, record["id"], ["U0ALICE"]))

    card = await until(lambda: _card_says(rig, record, "1 of 2"))
    assert "U0ALICE" in text_of(card)
    await note_for(rig, "U0ALICE", "1 of 2")

    await rig.click(record["id"], "approve", "U0ALICE")  # the same person again
    await note_for(rig, "U0ALICE", "already")  # still pending, counted once
    assert (await status_of(rig, record["id"]))["status"] == "pending"

    await rig.click(record["id"], "approve", "U0BOB")
    decided = await rig.decided(record["id"])
    assert decided["status"] == "approved"
    assert decided["decision"]["approvers"] == ["U0ALICE", "U0BOB"]
    assert decided["decision"]["decidedBy"] == "U0BOB"


async def _card_says(rig: SlackRig, record: dict[str, Any], text: str) -> Any:
    card = await rig.card(record["id"])
    return card if text in text_of(card) else None


async def test_any_reject_rejects_an_n_of_m_approval(rig: SlackRig) -> None:
    record = await rig.bot.submit(toolName="deploy_api")
    await rig.click(record["id"], "approve", "U0ALICE")
    await until(lambda: _approved_by(rig, record["id"], ["U0ALICE"]))

    await rig.slack.reply_in_thread(
        (await rig.card(record["id"])).channel,
        (await rig.card(record["id"])).ts,
        "reject not on a friday",
        user="U0BOB",
    )
    decided = await rig.decided(record["id"])
    assert (decided["status"], decided["decision"]["comment"]) == ("rejected", "not on a friday")


async def test_an_edit_restarts_the_count_with_the_editor_first(rig: SlackRig) -> None:
    record = await rig.bot.submit(toolName="deploy_api", args={"version": "1.4.2"})
    await rig.click(record["id"], "approve", "U0BOB")
    await until(lambda: _approved_by(rig, record["id"], ["U0BOB"]))

    await rig.click(record["id"], "edit", "U0ALICE")
    [modal] = await until(lambda: _open(rig, "U0ALICE"))
    await rig.slack.submit_view(modal.id, {"arg:version": "1.4.3"})
    edited = await until(lambda: _approved_by(rig, record["id"], ["U0ALICE"]))
    assert edited["progress"]["args"] == {"version": "1.4.3"}
    await until(lambda: _card_says(rig, record, "restart"))

    await rig.click(record["id"], "approve", "U0BOB")
    decided = await rig.decided(record["id"])
    decision = decided["decision"]
    assert (decision["action"], decision["approvedArgs"]) == ("edit", {"version": "1.4.3"})
    assert decision["approvers"] == ["U0ALICE", "U0BOB"]


async def _open(rig: SlackRig, user: str) -> list[Any]:
    return [v for v in rig.workspace.open_modals(user) if not v.closed]


# -- timeouts and escalation -----------------------------------------------------------------

QUICK = """
[[rules]]
tools = ["deploy_*"]
timeout_seconds = 1
on_timeout = "{on_timeout}"
escalate_to = "{escalate_to}"
"""


async def test_expiry_rewrites_the_card_and_wakes_the_agent(make_rig: RigFactory) -> None:
    rig = await make_rig(QUICK.format(on_timeout="reject", escalate_to="C0ESCALATE"))
    record = await rig.bot.submit(toolName="deploy_api")
    await rig.card(record["id"])

    _, waited = await rig.bot.call("GET", f"/v1/approvals/{record['id']}/wait?timeout=10")

    assert (waited["status"], waited["decision"]["action"]) == ("expired", "timeout")
    assert waited["decision"]["decidedBy"] == "system:timeout"
    await until(lambda: _card_says(rig, record, "Expired"))


async def test_an_expiry_due_while_the_bot_was_down_is_applied_at_start(
    make_rig: RigFactory,
) -> None:
    config = QUICK.format(on_timeout="approve", escalate_to="C0ESCALATE")
    first = await make_rig(config)
    record = await first.bot.submit(toolName="deploy_api")
    await first.card(record["id"])
    await first.bot.server.close()
    await asyncio.sleep(1.5)  # the expiry passes while nobody runs

    second = await make_rig(config)
    decided = await second.decided(record["id"])
    assert (decided["status"], decided["decision"]["action"]) == ("approved", "timeout")
    assert decided["decision"]["approvedArgs"] == record["args"]
    await until(lambda: _card_says(second, record, "automatically"))


async def test_escalation_reposts_to_the_channel_then_expires(make_rig: RigFactory) -> None:
    rig = await make_rig(QUICK.format(on_timeout="escalate", escalate_to="C0ESCALATE"))
    record = await rig.bot.submit(toolName="deploy_api")
    card = await rig.card(record["id"])

    async def reposted() -> Any:
        copies = [m for m in rig.workspace.history("C0ESCALATE") if record["id"] in text_of(m)]
        return copies[0] if copies else None

    copy = await until(reposted, timeout=5)
    assert (await status_of(rig, record["id"]))["progress"]["escalated"] is True
    assert "Escalated" in text_of(rig.workspace.message(card.channel, card.ts))

    decided = await rig.decided(record["id"], timeout=5)
    assert decided["status"] == "expired"

    async def both_rewritten() -> bool:
        original = rig.workspace.message(card.channel, card.ts)
        repost = rig.workspace.message(copy.channel, copy.ts)
        return "Expired" in text_of(original) and "Expired" in text_of(repost)

    await until(both_rewritten)


async def test_escalation_to_a_group_mentions_it_in_the_thread(make_rig: RigFactory) -> None:
    rig = await make_rig(QUICK.format(on_timeout="escalate", escalate_to="S0ONCALL"))
    record = await rig.bot.submit(toolName="deploy_api")
    card = await rig.card(record["id"])

    async def mentioned() -> bool:
        replies = rig.workspace.thread(card.channel, card.ts)[1:]
        return any("<!subteam^S0ONCALL>" in r.text for r in replies)

    await until(mentioned)
    assert (await status_of(rig, record["id"]))["status"] == "pending"


async def test_a_click_on_an_escalated_copy_decides(make_rig: RigFactory) -> None:
    rig = await make_rig(QUICK.format(on_timeout="escalate", escalate_to="C0ESCALATE"))
    record = await rig.bot.submit(toolName="deploy_api")
    await rig.card(record["id"])

    async def reposted() -> Any:
        copies = [m for m in rig.workspace.history("C0ESCALATE") if record["id"] in text_of(m)]
        return copies[0] if copies else None

    copy = await until(reposted)
    await rig.slack.click(copy.channel, copy.ts, "approve", user="U0CAROL")
    decided = await rig.decided(record["id"])
    assert decided["decision"]["decidedBy"] == "U0CAROL"


# -- App Home and /approvals -----------------------------------------------------------------


async def test_app_home_lists_what_the_viewer_can_act_on(rig: SlackRig) -> None:
    deploy = await rig.bot.submit(toolName="deploy_api", toolCallId="d")
    transfer = await rig.bot.submit(toolName="transfer_funds", toolCallId="t")

    await rig.slack.open_home("U0ALICE")
    home = await until(lambda: _home(rig, "U0ALICE"))

    shown = json.dumps(home.blocks)
    assert deploy["id"] in shown and transfer["id"] not in shown  # carol approves transfers
    buttons = [e["action_id"] for b in home.blocks if b["type"] == "actions" for e in b["elements"]]
    assert "approve" in buttons

    await rig.slack.click_in_view(home.id, "approve", user="U0ALICE")
    await until(lambda: _approved_by(rig, deploy["id"], ["U0ALICE"]))


async def _home(rig: SlackRig, user: str) -> Any:
    try:
        return rig.workspace.home(user)
    except Exception:
        return None


async def test_approvals_command_lists_pending_mine_and_one(rig: SlackRig) -> None:
    deploy = await rig.bot.submit(toolName="deploy_api", toolCallId="d")
    email = await rig.bot.submit(toolName="send_email", toolCallId="e")
    # the card's ts is saved as soon as Slack answers the post, its permalink a call later
    posted = await until(lambda: rig.record_if(deploy["id"], lambda r: r["slack"]["permalink"]))

    every = await rig.slack.slash_command("/approvals", "", user="U0BOB", channel="C0OPS")
    mine = await rig.slack.slash_command("/approvals", "mine", user="U0ALICE", channel="C0OPS")
    one = await rig.slack.slash_command("/approvals", email["id"], user="U0BOB", channel="C0OPS")
    # carol may decide the email (a member of its channel) but not the deploy (not an approver)
    hers = await rig.slack.slash_command("/approvals", "", user="U0CAROL", channel="C0OPS")

    assert deploy["id"] in every.body and email["id"] in every.body
    assert email["id"] in hers.body and deploy["id"] not in hers.body
    assert deploy["id"] in mine.body and email["id"] not in mine.body
    assert email["id"] in one.body and deploy["id"] not in one.body
    assert posted["slack"]["permalink"] in every.body
    assert json.loads(every.body)["response_type"] == "ephemeral"


async def test_sighup_reloads_the_routing_file(rig: SlackRig, tmp_path: Path) -> None:
    write(tmp_path / "approvals.toml", '[[rules]]\ntools = ["deploy_*"]\nchannel = "C0OPS"\n')
    os.kill(os.getpid(), signal.SIGHUP)
    await asyncio.sleep(0.1)
    record = await rig.bot.submit(toolName="deploy_api")
    assert record["channel"] == "C0OPS"

    write(tmp_path / "approvals.toml", "rules = 5")  # broken: the previous file stays
    os.kill(os.getpid(), signal.SIGHUP)
    await asyncio.sleep(0.1)
    again = await rig.bot.submit(toolName="deploy_web", toolCallId="again")
    assert again["channel"] == "C0OPS"


def test_a_request_cannot_choose_what_its_timeout_does(tmp_path: Path) -> None:

    routing = load_routing(write(tmp_path / "r.toml", '[[rules]]\ntools = ["deploy_*"]\n'))
    request = ApprovalRequest.model_validate(
        {"toolName": "deploy_api", "args": {}, "timeoutSeconds": 1, "onTimeout": "approve"}
    )
    with pytest.raises(Invalid) as refused:  # the rule's default is reject, never the agent's
        routing.route(request)
    assert refused.value.path == "onTimeout"


async def test_an_api_decision_runs_the_arguments_being_approved(make_rig: RigFactory) -> None:
    rig = await make_rig('[[rules]]\ntools = ["deploy_*"]\nrequired_approvals = 2\n')
    record = await rig.bot.submit(toolName="deploy_api", args={"version": "1.4.2"})
    await rig.bot.service.approve(record["id"], user="U0ALICE", approved_args={"version": "1.4.3"})

    status, decided = await rig.bot.decide(record["id"])  # an admin override, no approvedArgs

    assert status == 200
    assert decided["decision"]["approvedArgs"] == {"version": "1.4.3"}
