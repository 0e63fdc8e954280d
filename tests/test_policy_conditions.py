"""Conditions on arguments (the routing file's `when`, in CEL) and rules that decide a call
themselves (`decision`): issue 16, part 1.

Through the real HTTP API and the local Slack: a call a rule decides never shows buttons
anywhere; an expression that fails never approves; a file with a bad expression refuses to
load, naming the rule, the line and the column.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.app import BOT
from bot.config import ConfigError
from bot.models import ApprovalRequest
from bot.policy import PolicyDecision, Routing, load_routing
from bot.service import ApprovalService
from bot.store import Store
from tests.conftest import RigFactory, SlackRig
from tests.slack_support import actions_of

FINANCE = """
default_channel = "C0OPS"

[[rules]]
name = "small EUR transfers"
tools = ["transfer_funds"]
when = "args.amount <= 100 && args.currency == 'EUR'"
decision = "approve"
reason = "pre-approved by finance policy FP-7"

[[rules]]
name = "sanctioned"
tools = ["transfer_funds"]
when = "args.to in ['ACME-SANCTIONED']"
decision = "reject"
reason = "the payee is on the sanctions list"
notify = true

[[rules]]
tools = ["transfer_funds"]
approvers = ["U0ALICE", "U0BOB"]
required_approvals = 2
"""


def transfer(**args: Any) -> dict[str, Any]:
    return {"toolName": "transfer_funds", "args": {"currency": "EUR", "to": "ACME", **args}}


def cards_for(rig: SlackRig, approval_id: str) -> list[Any]:
    """Every chat.postMessage Slack took carrying this approval's card."""
    return [
        call
        for call in rig.workspace.calls_to("chat.postMessage", ok=True)
        if (call.params.get("metadata") or {}).get("event_payload", {}).get("id") == approval_id
    ]


async def audit_of(rig: SlackRig, approval_id: str) -> list[Any]:
    events = await rig.bot.server.app[BOT].store.events_since(0, limit=1000)
    return [e for e in events if e.approval_id == approval_id]


async def test_a_call_a_rule_approves_is_decided_at_once_with_no_card(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(FINANCE)

    status, record = await rig.bot.call("POST", "/v1/approvals", json=transfer(amount=50))

    assert status == 201, record
    assert record["status"] == "approved"
    decision = record["decision"]
    assert decision["decidedBy"] == "policy:small EUR transfers"
    assert decision["comment"] == "pre-approved by finance policy FP-7"
    assert decision["approvedArgs"] == record["args"]
    _, waited = await rig.bot.call("GET", f"/v1/approvals/{record['id']}/wait?timeout=1")
    assert waited["status"] == "approved"  # an agent waiting on it is answered at once
    await asyncio.sleep(0.5)  # a card would have been posted by now
    assert cards_for(rig, record["id"]) == []
    kinds = [(e.kind, e.actor) for e in await audit_of(rig, record["id"])]
    assert kinds == [("submitted", None), ("approved", "policy:small EUR transfers")]


async def test_a_rule_with_notify_posts_a_card_without_buttons(make_rig: RigFactory) -> None:
    rig = await make_rig(FINANCE)

    _, record = await rig.bot.call(
        "POST", "/v1/approvals", json=transfer(amount=5000, to="ACME-SANCTIONED")
    )

    assert record["status"] == "rejected"
    assert record["decision"]["decidedBy"] == "policy:sanctioned"
    card = await rig.card(record["id"])
    assert not actions_of(card)  # an FYI card: nobody can click anything on it
    assert "Rejected" in card.text
    assert len(cards_for(rig, record["id"])) == 1


async def test_a_call_no_condition_covers_gets_the_next_rule_and_its_buttons(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(FINANCE)

    _, record = await rig.bot.call("POST", "/v1/approvals", json=transfer(amount=5000))

    assert record["status"] == "pending"
    assert record["policy"]["approvers"] == ["U0ALICE", "U0BOB"]
    assert record["policy"]["requiredApprovals"] == 2
    assert actions_of(await rig.card(record["id"]))


async def test_an_expression_that_fails_never_approves_and_the_audit_says_why(
    make_rig: RigFactory,
) -> None:
    """`"amount": "50"` (a string) makes `args.amount <= 100` an error in CEL (no overload
    for string and int): the rule does not match, the next one asks people."""
    rig = await make_rig(FINANCE)

    _, record = await rig.bot.call("POST", "/v1/approvals", json=transfer(amount="50"))

    assert record["status"] == "pending"
    assert actions_of(await rig.card(record["id"]))
    [submitted] = [e for e in await audit_of(rig, record["id"]) if e.kind == "submitted"]
    [skipped] = submitted.detail["skipped"]
    assert skipped["rule"] == "small EUR transfers"
    assert "overload" in skipped["error"]


async def test_a_missing_argument_is_a_failure_too(make_rig: RigFactory) -> None:
    rig = await make_rig(FINANCE)
    body = {"toolName": "transfer_funds", "args": {"currency": "EUR"}}

    _, record = await rig.bot.call("POST", "/v1/approvals", json=body)

    assert record["status"] == "pending"


async def test_a_request_cannot_ask_for_a_policy_decision(make_rig: RigFactory) -> None:
    rig = await make_rig(FINANCE)
    body = {**transfer(amount=5000), "decision": "approve", "decidedBy": "policy:1"}

    status, record = await rig.bot.call("POST", "/v1/approvals", json=body)

    assert (status, record["error"]) == (422, "invalid")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "approvals.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("when", "where", "says"),
    [
        pytest.param("args.amount <= ", ":6:24:", "Syntax error", id="syntax"),
        pytest.param("arg.amount > 1", ":6:9:", "unknown name 'arg'", id="typo"),
        pytest.param(
            "args.xs.all(x, args.ys.exists(y, x == y))",
            ":6:32:",
            "at most one list macro",
            id="nested-macros",
        ),
    ],
)
def test_a_bad_expression_refuses_the_file_naming_rule_line_and_column(
    tmp_path: Path, when: str, where: str, says: str
) -> None:
    path = write(
        tmp_path,
        '[[rules]]\ntools = ["x"]\n\n[[rules]]\nname = "big ones"\n'
        f'when = "{when}"\ntools = ["transfer_funds"]\n',
    )

    with pytest.raises(ConfigError) as refused:
        load_routing(path)

    message = str(refused.value)
    assert message.startswith(f"{path}{where}"), message
    assert 'rule 2 ("big ones") `when`' in message
    assert says in message


def test_a_rule_that_decides_cannot_also_ask_people(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[rules]]\ntools = ["x"]\ndecision = "approve"\napprovers = ["U0ALICE"]\n',
    )
    with pytest.raises(ConfigError, match="decides without asking anyone: drop approvers"):
        load_routing(path)


def test_reason_and_notify_need_a_decision(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rules]]\ntools = ["x"]\nnotify = true\n')
    with pytest.raises(ConfigError, match="go with `decision`"):
        load_routing(path)


def test_the_first_rule_whose_tools_and_when_match_wins() -> None:
    routing = Routing.model_validate(
        {
            "rules": [
                {"tools": ["t"], "when": "args.n > 10", "decision": "reject", "name": "big"},
                {"tools": ["t"], "when": "requester.agent == 'ci'", "decision": "approve"},
                {
                    "tools": ["t"],
                    "when": "priority == 'high' && now > timestamp('2020-01-01T00:00:00Z')",
                    "approvers": ["U0ALICE"],
                },
            ]
        }
    )

    def route(**fields: Any) -> Any:
        return routing.route(ApprovalRequest.model_validate({"toolName": "t", **fields}))

    assert route(args={"n": 11}).decision == PolicyDecision(
        False, "policy:big", "decided by the routing file's rule big", False
    )
    assert route(args={"n": 1}, requester={"agent": "ci"}).decision.decided_by == "policy:2"
    high = route(args={"n": 1}, priority="high")
    assert high.decision is None and high.policy.approvers == ["U0ALICE"]
    assert route(args={"n": 1}).policy.rule is None  # no rule matched


async def test_a_policy_decision_is_stored_whole_on_each_engine(store: Store) -> None:
    routing = Routing.model_validate(
        {"rules": [{"tools": ["t"], "when": "args.n < 5", "decision": "approve", "name": "n"}]}
    )
    service = ApprovalService(store, default_channel="C0OPS", router=routing)

    record, created = await service.submit(
        ApprovalRequest.model_validate({"toolName": "t", "args": {"n": 1}})
    )
    again, created_again = await service.submit(
        ApprovalRequest.model_validate(
            {"toolName": "t", "args": {"n": 1}, "toolCallId": record.tool_call_id}
        )
    )

    assert created and not created_again
    assert record.status.value == "approved" and again == record
    assert (await store.get(record.id)).decision == record.decision
    events = [e for e in await store.events_since(0) if e.approval_id == record.id]
    assert [e.kind for e in events] == ["submitted", "approved"]


def test_policy_check_and_test_from_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, FINANCE)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "policy", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    checked = cli("check", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "3 rules, 2 with `when`, 2 deciding without a card" in checked.stdout

    small = cli(
        "test",
        str(path),
        "--tool",
        "transfer_funds",
        "--args",
        '{"amount": 50, "currency": "EUR", "to": "x"}',
    )
    assert small.returncode == 0, small.stderr
    assert "rule small EUR transfers matches" in small.stdout
    assert "approved at once by policy:small EUR transfers" in small.stdout

    big = cli(
        "test",
        str(path),
        "--tool",
        "transfer_funds",
        "--args",
        '{"amount": 5000, "currency": "EUR", "to": "x"}',
    )
    assert "rule 3 matches" in big.stdout and "approvers: U0ALICE, U0BOB" in big.stdout

    broken = cli("test", str(path), "--tool", "transfer_funds", "--args", "{")
    assert broken.returncode == 2 and "--args is not JSON" in broken.stderr
