"""Standing approvals, "Approve & allow for…" (issue 16, part 2), through the real HTTP API,
the local Slack and signed payloads: a grant made in its modal approves the later equal calls
of the same agent without a card, says so in the original card's thread, obeys the rule (its
approvers, two people where it needs two, never critical), and stops at once when revoked or
expired — on either engine, and across replicas sharing PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import BOT
from bot.config import ConfigError
from bot.devslack.limits import validate_view
from bot.errors import NotAllowed
from bot.grants import Grant, StandingTerms, parse_duration, revoke, same_json, span_choices
from bot.models import Approval, ApprovalRequest, Policy, Requester, Status, utcnow
from bot.policy import Routing, load_routing
from bot.service import ApprovalService
from bot.slack.cards.grants import parse_allow_submission, render_allow_modal
from bot.store import open_store
from tests.conftest import (
    RigFactory,
    Running,
    SlackRig,
    slack_replicas,
    until,
)
from tests.slack_support import actions_of, text_of

RULES = """
default_channel = "C0OPS"

[[rules]]
name = "deploys"
tools = ["deploy_service"]
approvers = ["U0ALICE", "U0BOB"]
allow_standing = "1h"

[[rules]]
name = "payments"
tools = ["transfer_funds"]
approvers = ["U0ALICE", "U0BOB"]
required_approvals = 2
allow_standing = "4h"

[[rules]]
tools = ["restart_*"]
approvers = ["U0ALICE", "U0BOB"]
"""

ARGS = {"version": "1.4.2", "env": "prod", "note": "first"}
AGENT = {"agent": "release-bot"}


async def ask(rig: SlackRig, **fields: Any) -> dict[str, Any]:
    """Submit a deploy_service call from release-bot (fields override)."""
    body = {"toolName": "deploy_service", "args": ARGS, "requester": AGENT, **fields}
    status, record = await rig.bot.call("POST", "/v1/approvals", json=body)
    assert status == 201, record
    return record  # type: ignore[no-any-return]


async def open_allow_modal(rig: SlackRig, approval_id: str, user: str) -> Any:
    await rig.click(approval_id, "approve_allow", user)
    [modal] = await until(lambda: _modals(rig, user, "allow_modal"))
    return modal


async def _modals(rig: SlackRig, user: str, callback_id: str) -> list[Any]:
    return [
        v
        for v in rig.workspace.open_modals(user)
        if not v.closed and v.spec.get("callback_id") == callback_id
    ]


async def allow(
    rig: SlackRig, approval_id: str, user: str, values: dict[str, Any] | None = None
) -> Any:
    """`user` clicks "Approve & allow…" and submits the modal with `values`."""
    modal = await open_allow_modal(rig, approval_id, user)
    delivery = await rig.slack.submit_view(modal.id, values or {"span": "3600"})
    assert delivery.status == 200
    return modal


async def grants_of(rig: SlackRig | Running, at: datetime | None = None) -> list[Grant]:
    bot = rig.bot if isinstance(rig, SlackRig) else rig
    return await bot.service.store.grants(at or utcnow())


async def granted(
    rig: SlackRig, values: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Grant]:
    """A deploy approved by alice with "Approve & allow…", and the grant it made."""
    origin = await ask(rig, toolCallId="origin")
    await allow(rig, origin["id"], "U0ALICE", values)
    await rig.decided(origin["id"])
    [grant] = await until(lambda: grants_of(rig))
    return origin, grant


def cards_for(rig: SlackRig, approval_id: str) -> list[Any]:
    return [
        call
        for call in rig.workspace.calls_to("chat.postMessage", ok=True)
        if (call.params.get("metadata") or {}).get("event_payload", {}).get("id") == approval_id
    ]


async def thread_line(rig: SlackRig, origin: dict[str, Any], *words: str) -> Any:
    """The reply in the origin card's thread that says all of `words`."""

    async def find() -> Any:
        card = await rig.card(origin["id"])
        for reply in rig.workspace.thread(card.channel, card.ts)[1:]:
            if all(word in text_of(reply) for word in words):
                return reply
        return None

    return await until(find)


async def audit(rig: SlackRig | Running, approval_id: str) -> list[tuple[str, str | None]]:
    bot = rig.bot if isinstance(rig, SlackRig) else rig
    events = await bot.server.app[BOT].store.events_since(0, limit=1000)
    return [(e.kind, e.actor) for e in events if e.approval_id == approval_id]


# -- making a grant ------------------------------------------------------------------------


async def test_approve_and_allow_opens_a_modal_that_approves_and_grants(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(RULES)
    record = await ask(rig)
    card = await rig.card(record["id"])
    assert actions_of(card) == ["approve", "approve_allow", "edit", "reject", "feedback"]

    modal = await open_allow_modal(rig, record["id"], "U0ALICE")
    [span] = [b for b in modal.blocks if b.get("block_id") == "span"]
    assert [o["value"] for o in span["element"]["options"]] == ["900", "3600"]  # up to 1 h
    [keys] = [b for b in modal.blocks if b.get("block_id") == "keys_0"]
    offered = [o["text"]["text"] for o in keys["element"]["options"]]
    assert offered == ["version", "env", "note"]
    assert keys["element"]["initial_options"] == keys["element"]["options"]  # all by default

    delivery = await rig.slack.submit_view(modal.id, {"span": "3600"})
    decided = await rig.decided(record["id"])

    assert delivery.status == 200 and modal.closed
    assert decided["status"] == "approved"
    assert decided["decision"]["decidedBy"] == "U0ALICE"
    [grant] = await grants_of(rig)
    assert (grant.tool_name, grant.agent, grant.approval_id) == (
        "deploy_service",
        "release-bot",
        record["id"],
    )
    assert grant.keys == ("version", "env", "note") and grant.values == ARGS
    assert grant.granted_by == ("U0ALICE",) and grant.seconds == 3600
    assert grant.expires_at is not None
    assert timedelta(minutes=59) < grant.expires_at - utcnow() <= timedelta(hours=1)
    line = await thread_line(rig, record, grant.id, "<@U0ALICE>", "1 h")
    assert "release-bot" in text_of(line)
    assert ("grant_created", "U0ALICE") in await audit(rig, record["id"])


# -- using it -----------------------------------------------------------------------------


async def test_a_later_equal_call_is_approved_by_the_grant_with_no_card(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(RULES)
    origin, grant = await granted(rig)

    status, record = await rig.bot.call(
        "POST",
        "/v1/approvals",
        json={"toolName": "deploy_service", "args": ARGS, "requester": AGENT},
    )

    assert status == 201
    assert record["status"] == "approved"
    decision = record["decision"]
    assert decision["decidedBy"] == f"grant:{grant.id}"
    assert decision["approvers"] == ["U0ALICE"]
    assert "alice (U0ALICE)" in decision["comment"] and origin["id"] in decision["comment"]
    assert decision["approvedArgs"] == ARGS
    _, waited = await rig.bot.call("GET", f"/v1/approvals/{record['id']}/wait?timeout=1")
    assert waited["status"] == "approved"
    await thread_line(rig, origin, grant.id, record["toolCallId"])
    await asyncio.sleep(0.3)  # a card would have been posted by now
    assert cards_for(rig, record["id"]) == []
    assert await audit(rig, record["id"]) == [
        ("submitted", "release-bot"),
        ("approved", f"grant:{grant.id}"),
    ]
    assert ("grant_used", f"grant:{grant.id}") in await audit(rig, origin["id"])
    [counted] = await grants_of(rig)
    assert counted.uses == 1


async def test_a_kept_argument_that_differs_asks_people(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    await granted(rig)

    record = await ask(rig, args={**ARGS, "env": "staging"})

    assert record["status"] == "pending"
    assert "approve" in actions_of(await rig.card(record["id"]))
    assert (await grants_of(rig))[0].uses == 0


async def test_an_argument_left_unchecked_may_differ(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    _, grant = await granted(rig, {"span": "900", "keys_0": ["0"]})  # only version kept
    assert grant.keys == ("version",) and grant.seconds == 900

    other = await ask(rig, args={"version": "1.4.2", "env": "staging", "note": "again"})
    fewer = await ask(rig, args={"version": "1.4.2"})
    newer = await ask(rig, args={**ARGS, "version": "1.4.3"})

    assert other["decision"]["decidedBy"] == f"grant:{grant.id}"
    assert fewer["decision"]["decidedBy"] == f"grant:{grant.id}"
    assert newer["status"] == "pending"


async def test_equality_is_canonical_json(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    origin = await ask(rig, toolCallId="origin", args={"spec": {"a": 1, "b": [1, 2]}, "n": 1})
    await allow(rig, origin["id"], "U0ALICE")
    await until(lambda: grants_of(rig))

    reordered = await ask(rig, args={"n": 1, "spec": {"b": [1, 2], "a": 1}})
    as_float = await ask(rig, args={"spec": {"a": 1, "b": [1, 2]}, "n": 1.0})
    as_bool = await ask(rig, args={"spec": {"a": True, "b": [1, 2]}, "n": 1})

    assert reordered["status"] == "approved"
    assert as_float["status"] == as_bool["status"] == "pending"  # never looser than seen
    assert same_json({"a": [1]}, {"a": [1]}) and not same_json(1, True)


async def test_another_agent_or_no_agent_is_not_covered(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    await granted(rig)

    other = await ask(rig, requester={"agent": "other-bot"})
    anonymous = await ask(rig, requester={})

    assert other["status"] == anonymous["status"] == "pending"
    # nobody can grant for a call that names no agent
    assert "approve_allow" not in actions_of(await rig.card(anonymous["id"]))


async def test_a_call_its_granter_requested_is_not_covered(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    await granted(rig)

    record = await ask(rig, requester={**AGENT, "slackUser": "U0ALICE"})

    assert record["status"] == "pending"


async def test_a_grant_covers_only_its_own_rule(make_rig: RigFactory) -> None:
    """A rule of its own routes restart_* calls; a grant on one is not offered there at all,
    and a grant on deploys does not spill over to another tool."""
    rig = await make_rig(RULES)
    await granted(rig)

    restart = await ask(rig, toolName="restart_service")

    assert restart["status"] == "pending"
    assert "approve_allow" not in actions_of(await rig.card(restart["id"]))


# -- revoking, expiring --------------------------------------------------------------------


async def _home_with(rig: SlackRig, user: str, present: str, *, shown: bool = True) -> Any:
    async def probe() -> Any:
        home = rig.workspace.home(user)
        if home is None:
            return None
        return home if (present in json.dumps(home.blocks)) is shown else None

    return await until(probe)


async def test_revoke_from_app_home_stops_the_grant_at_once(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    origin, grant = await granted(rig)

    await rig.slack.open_home("U0BOB")  # an approver of the rule, not the granter
    home = await _home_with(rig, "U0BOB", grant.id)
    assert "revoke_grant" in json.dumps(home.blocks)
    assert "release-bot" in json.dumps(home.blocks)
    await rig.slack.open_home("U0CAROL")  # may not decide deploys: not shown to her
    carols = await until(lambda: _home_of(rig, "U0CAROL"))
    assert grant.id not in json.dumps(carols.blocks)
    with pytest.raises(NotAllowed):
        await revoke(rig.bot.service, grant.id, "U0CAROL")

    delivery = await rig.slack.click_in_view(home.id, "revoke_grant", user="U0BOB")

    assert delivery.status == 200
    assert await grants_of(rig) == []
    await _home_with(rig, "U0BOB", grant.id, shown=False)  # the Home is drawn again
    record = await ask(rig)
    assert record["status"] == "pending"
    await thread_line(rig, origin, grant.id, "revoked", "<@U0BOB>")
    kinds = await audit(rig, origin["id"])
    assert ("grant_revoked", "U0BOB") in kinds and ("refused", "U0CAROL") in kinds
    assert (await rig.bot.service.store.grant(grant.id)).revoked_by == "U0BOB"


async def _home_of(rig: SlackRig, user: str) -> Any:
    return rig.workspace.home(user)


async def test_an_expired_grant_is_not_used(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    _, grant = await granted(rig, {"span": "900"})
    assert grant.expires_at is not None
    service = rig.bot.service
    still = await ask(rig)
    assert still["status"] == "approved"  # within its 15 minutes

    service.clock = lambda: utcnow() + timedelta(minutes=15, seconds=1)
    record = await ask(rig)

    assert record["status"] == "pending"
    assert await grants_of(rig, service.clock()) == []


# -- the rule decides who grants -------------------------------------------------------------


async def test_two_approvers_make_a_grant_with_the_stricter_terms(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    payment = {"toolName": "transfer_funds", "args": {"amount": 50, "to": "ACME"}}
    origin = await ask(rig, toolCallId="origin", **payment)

    await allow(rig, origin["id"], "U0ALICE", {"span": "14400"})
    note = await until(lambda: _dm(rig, "U0ALICE", "1 of 2"))
    assert "standing approval starts once 2 approvers" in note.text
    assert (await rig.record_if(origin["id"], lambda r: r))["status"] == "pending"
    assert await grants_of(rig) == []  # pending: one person cannot grant for a 2-person rule
    early = await ask(rig, **payment)
    assert early["status"] == "pending"

    await allow(rig, origin["id"], "U0BOB", {"span": "900", "keys_0": ["1"]})
    decided = await rig.decided(origin["id"])
    assert decided["decision"]["approvers"] == ["U0ALICE", "U0BOB"]
    [grant] = await until(lambda: grants_of(rig))

    assert grant.granted_by == ("U0ALICE", "U0BOB")
    assert grant.seconds == 900  # the shorter span
    assert grant.keys == ("amount", "to")  # every argument either of them kept
    later = await ask(rig, **payment)
    assert later["decision"]["decidedBy"] == f"grant:{grant.id}"
    assert later["decision"]["approvers"] == ["U0ALICE", "U0BOB"]
    assert "alice (U0ALICE) and bob (U0BOB)" in later["decision"]["comment"]


async def _dm(rig: SlackRig, user: str, words: str) -> Any:
    for message in rig.workspace.history(rig.workspace.open_dm(user).id):
        if words in message.text:
            return message
    return None


async def test_one_plain_approve_among_the_approvers_makes_no_grant(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(RULES)
    payment = {"toolName": "transfer_funds", "args": {"amount": 50, "to": "ACME"}}
    origin = await ask(rig, toolCallId="origin", **payment)

    await allow(rig, origin["id"], "U0ALICE")
    await rig.click(origin["id"], "approve", "U0BOB")
    decided = await rig.decided(origin["id"])

    assert decided["status"] == "approved"
    assert await grants_of(rig) == []
    assert ("grant_lapsed", None) in await audit(rig, origin["id"])
    assert (await ask(rig, **payment))["status"] == "pending"


async def test_a_vote_on_edited_arguments_makes_no_grant(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    origin = await ask(rig, toolName="transfer_funds", args={"amount": 50, "to": "ACME"})
    modal = await open_allow_modal(rig, origin["id"], "U0ALICE")
    await rig.click(origin["id"], "edit", "U0BOB")
    [edit] = await until(lambda: _modals(rig, "U0BOB", "edit_modal"))
    await rig.slack.submit_view(edit.id, {"arg:amount": "5000"})
    await until(lambda: rig.record_if(origin["id"], lambda r: r["progress"]["args"]))

    delivery = await rig.slack.submit_view(modal.id, {"span": "900"})

    assert delivery.status == 200
    assert "Arguments changed" in modal.title  # the notice replaced the modal
    record = await rig.record_if(origin["id"], lambda r: r)
    assert record["status"] == "pending" and record["progress"]["approvedBy"] == ["U0BOB"]
    assert await grants_of(rig) == []


async def test_a_critical_call_never_gets_or_uses_a_grant(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    await granted(rig)

    record = await ask(rig, priority="critical")

    assert record["status"] == "pending"  # the grant does not apply
    card = await rig.card(record["id"])
    assert actions_of(card) == ["approve", "edit", "reject", "feedback"]  # none offered
    service = rig.bot.service
    with pytest.raises(NotAllowed, match="not offered"):
        await service.approve(
            record["id"], user="U0BOB", allow=StandingTerms(seconds=900, keys=("version",))
        )
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"
    notice = render_allow_modal(await service.get(record["id"]))
    assert notice["callback_id"] == "notice_modal"  # a crafted click gets no form either


def test_a_critical_rule_cannot_allow_standing_approvals(tmp_path: Path) -> None:
    path = tmp_path / "approvals.toml"
    path.write_text(
        '[[rules]]\ntools = ["x"]\npriority = "critical"\nallow_standing = "1h"\n'
        '\n[[rules]]\ntools = ["y"]\nallow_standing = "forever"\n'
    )
    with pytest.raises(ConfigError) as refused:
        load_routing(path)
    assert "critical rule never allows standing approvals" in str(refused.value)
    assert "'forever' is not a span" in str(refused.value)

    path.write_text('[[rules]]\ntools = ["x"]\ndecision = "approve"\nallow_standing = "1h"\n')
    with pytest.raises(ConfigError, match="drop allow_standing"):
        load_routing(path)


async def test_a_person_who_may_not_approve_cannot_grant(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    record = await ask(rig)
    own = await ask(rig, requester={**AGENT, "slackUser": "U0BOB"})

    await rig.click(record["id"], "approve_allow", "U0CAROL")
    await rig.click(own["id"], "approve_allow", "U0BOB")
    carol = await until(lambda: _ephemeral(rig, "U0CAROL"))
    bob = await until(lambda: _ephemeral(rig, "U0BOB"))

    assert "<@U0ALICE>" in carol.text and "Nothing changed" in carol.text
    assert "you requested this" in bob.text
    assert await _modals(rig, "U0CAROL", "allow_modal") == []
    assert await _modals(rig, "U0BOB", "allow_modal") == []
    for approval_id in (record["id"], own["id"]):
        assert (await rig.record_if(approval_id, lambda r: r))["status"] == "pending"
    assert await grants_of(rig) == []


async def _ephemeral(rig: SlackRig, user: str) -> Any:
    notes = rig.workspace.ephemerals_for(user)
    return notes[-1] if notes else None


async def test_a_modal_past_the_rules_limit_is_refused_beside_the_field(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(RULES)
    record = await ask(rig, args={f"arg{i:02d}": i for i in range(25)})
    modal = await open_allow_modal(rig, record["id"], "U0ALICE")
    assert [b["block_id"] for b in modal.blocks if b["type"] == "input"] == [
        "span",
        "keys_0",
        "keys_1",
        "keys_2",
    ]
    # a day, which the rule (1 h) does not offer: only a forged payload can ask for it
    forged = {"span": {"value": {"type": "static_select", "selected_option": {"value": "86400"}}}}

    delivery = await rig.slack.submit_view(modal.id, state=forged)

    assert delivery.status == 200 and not modal.closed
    assert "span" in modal.errors
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"


def test_a_call_with_many_arguments_keeps_those_not_offered_equal() -> None:
    args = {f"arg{i:03d}": i for i in range(95)}
    approval = Approval(
        id="apr_0123456789abcdef0123",
        status=Status.PENDING,
        tool_name="deploy_service",
        tool_call_id="call_1",
        args=args,
        channel="C0OPS",
        requester=Requester(agent="release-bot"),
        created_at=utcnow(),
        policy=Policy(rule_name="deploys", allow_standing=3600),
    )

    modal = render_allow_modal(approval)
    inputs = [b["block_id"] for b in modal["blocks"] if b["type"] == "input"]
    state = {block: {"value": {"type": "checkboxes", "selected_options": []}} for block in inputs}
    state["span"] = {"value": {"type": "static_select", "selected_option": {"value": "3600"}}}
    terms = parse_allow_submission(approval, state)

    assert validate_view(modal) == []
    assert inputs == ["span", *(f"keys_{i}" for i in range(8))]  # 80 offered, 10 a block
    assert "15 more arguments always stay equal" in json.dumps(modal)
    assert terms == StandingTerms(seconds=3600, keys=tuple(list(args)[80:]))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("90s", 90, id="seconds"),
        pytest.param(" 15m ", 900, id="minutes"),
        pytest.param("1h", 3600, id="hour"),
        pytest.param("30d", 30 * 86_400, id="the-longest"),
    ],
)
def test_spans_read_like_the_clis(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert span_choices(seconds)[-1] == seconds  # the rule's own limit is always offered


@pytest.mark.parametrize("text", ["0s", "31d", "5w", "1 hour", "-1h", ""])
def test_spans_out_of_range_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# -- on each engine, and across store instances (replicas) ----------------------------------


async def test_a_grant_made_through_one_store_is_used_and_revoked_through_another(
    store_url: str,
) -> None:
    """Two stores on one database (two replicas on PostgreSQL): revocation and expiry are
    read from the database at each match, so they hold at once for both."""
    routing = Routing.model_validate(
        {
            "rules": [
                {
                    "name": "deploys",
                    "tools": ["deploy_service"],
                    "approvers": ["U0ALICE", "U0BOB"],
                    "allow_standing": "1h",
                }
            ]
        }
    )
    stores = [open_store(store_url), open_store(store_url)]
    for store in stores:
        await store.open()
    try:
        one, two = (ApprovalService(s, default_channel="C0OPS", router=routing) for s in stores)

        def call(i: int, **args: Any) -> ApprovalRequest:
            return ApprovalRequest.model_validate(
                {
                    "toolName": "deploy_service",
                    "toolCallId": f"call_{i}",
                    "args": {"version": "1.4.2", **args},
                    "requester": AGENT,
                }
            )

        origin, _ = await one.submit(call(0))
        terms = StandingTerms(seconds=600, keys=("version",))
        await one.approve(origin.id, user="U0ALICE", name="alice", allow=terms)

        used, _ = await two.submit(call(1, note="x"))
        [grant] = await two.store.grants(utcnow())
        assert used.status is Status.APPROVED
        assert used.decision is not None and used.decision.decided_by == f"grant:{grant.id}"
        assert (await one.submit(call(2, version="2.0")))[0].status is Status.PENDING

        two.clock = lambda: utcnow() + timedelta(minutes=11)  # past its 10 minutes there
        assert (await two.submit(call(3)))[0].status is Status.PENDING
        assert (await one.submit(call(4)))[0].status is Status.APPROVED  # not past here

        two.clock = utcnow
        await revoke(two, grant.id, "U0BOB")
        assert (await one.submit(call(5)))[0].status is Status.PENDING
        events = [e for e in await one.store.events_since(0) if e.approval_id == origin.id]
        assert [e.kind for e in events if e.kind.startswith("grant")] == [
            "grant_created",
            "grant_used",
            "grant_used",
            "grant_revoked",
        ]
    finally:
        for store in stores:
            await store.close()


@pytest.fixture
async def replicas(pg_server: str, workspace: Any, tmp_path: Path) -> AsyncIterator[list[SlackRig]]:
    """Two bots on one PostgreSQL database and one Slack, each with its own Slack hands."""
    config = tmp_path / "approvals.toml"
    config.write_text(RULES)
    async with slack_replicas(pg_server, workspace, config) as rigs:
        yield rigs


async def test_replicas_share_grants_their_use_and_their_revocation(
    replicas: list[SlackRig],
) -> None:
    a, b = replicas
    origin, grant = await granted(a)  # made through replica A's modal

    used = await ask(b)  # used through replica B
    assert used["decision"]["decidedBy"] == f"grant:{grant.id}"
    await thread_line(a, origin, grant.id, used["toolCallId"])

    await b.slack.open_home("U0BOB")
    home = await _home_with(b, "U0BOB", grant.id)
    await b.slack.click_in_view(home.id, "revoke_grant", user="U0BOB")  # revoked through B
    await until(lambda: _none(grants_of(a)))

    after = await ask(a)
    assert after["status"] == "pending"  # A stops at once
    await thread_line(b, origin, grant.id, "revoked")


async def _none(grants: Any) -> bool:
    return await grants == []
