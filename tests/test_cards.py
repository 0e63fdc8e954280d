"""Block Kit rendering: content, escaping, Slack's limits, and the edit modal round trip."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import (
    Action,
    Approval,
    Decision,
    DecisionKind,
    OnTimeout,
    Policy,
    Preview,
    PreviewKind,
    Priority,
    Requester,
    Status,
    args_version,
)
from bot.models import Progress as ModelProgress
from bot.policy import NotAnApprover
from bot.slack.cards import (
    ACTION_IDS,
    CALLBACK_IDS,
    COMMENT_BLOCK,
    FEEDBACK_BLOCK,
    REASON_BLOCK,
    EditErrors,
    Progress,
    Unreadable,
    arg_block_id,
    escape_mrkdwn,
    parse_edit_submission,
    parse_feedback_submission,
    parse_reject_submission,
    read_approval_id,
    read_args_page,
    read_modal_vote,
    read_vote,
    refusal_note,
    render_approval_list,
    render_args_modal,
    render_card,
    render_decided_card,
    render_decided_notice,
    render_decision_reply,
    render_edit_modal,
    render_feedback_modal,
    render_home,
    render_notice_modal,
    render_reject_modal,
    render_thread_confirmation,
    summary_line,
    truncate,
    vote_value,
)

NOW = datetime(2026, 11, 21, 5, 30, tzinfo=UTC)
APPROVAL_ID = "apr_0123456789abcdef0123"
ATTACKS = ["<!here>", "<!channel>", "<@U123>", "<http://evil|click>", "&", "&amp;", "```"]
SLOW = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def make_approval(**changes: Any) -> Approval:
    fields: dict[str, Any] = {
        "id": APPROVAL_ID,
        "status": Status.PENDING,
        "tool_name": "deploy_service",
        "tool_call_id": "call_abc",
        "args": {"version": "1.4.2", "region": "eu-west-1"},
        "prompt": "Send build 1.4.2 to prod?",
        "channel": "C0123",
        "priority": Priority.NORMAL,
        "requester": Requester(agent="release-bot", slack_user="U0DAVE"),
        "created_at": NOW,
        "expires_at": NOW + timedelta(minutes=15),
    }
    fields.update(changes)
    return Approval(**fields)


def decide(approval: Approval, action: Action, **changes: Any) -> Approval:
    approved = action in (Action.APPROVE, Action.EDIT) or changes.pop("approved", False)
    status = {
        Action.REJECT: Status.REJECTED,
        Action.FEEDBACK: Status.REJECTED,
        Action.CANCEL: Status.CANCELLED,
        Action.TIMEOUT: Status.APPROVED if approved else Status.EXPIRED,
    }.get(action, Status.APPROVED)
    fields: dict[str, Any] = {
        "approved": approved,
        "action": action,
        "approved_args": approval.args if approved else None,
        "decided_by": "system:timeout" if action is Action.TIMEOUT else "U0ALICE",
        "approvers": ["U0ALICE"] if approved and action is not Action.TIMEOUT else [],
        "decided_at": NOW + timedelta(minutes=1),
    }
    fields.update(changes)
    return approval.model_copy(update={"status": status, "decision": Decision(**fields)})


# --- an independent checker of Slack's limits ---------------------------------------------------


def units(text: str) -> int:
    """UTF-16 code units: at least as strict as counting characters."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def check_text(obj: dict[str, Any], limit: int, kind: str | None = None) -> None:
    assert obj["type"] in ("plain_text", "mrkdwn")
    if kind is not None:
        assert obj["type"] == kind
    assert obj["text"].strip(), "Slack refuses blank text"
    assert units(obj["text"]) <= limit, (units(obj["text"]), limit)


def check_button(button: dict[str, Any]) -> None:
    assert button["type"] == "button"
    check_text(button["text"], 75, "plain_text")
    assert 0 < len(button["action_id"]) <= 255
    assert len(button.get("value", "")) <= 2000
    assert button.get("style", "primary") in ("primary", "danger")
    if "confirm" in button:
        confirm = button["confirm"]
        check_text(confirm["title"], 100, "plain_text")
        check_text(confirm["text"], 300)
        check_text(confirm["confirm"], 30, "plain_text")
        check_text(confirm["deny"], 30, "plain_text")


def check_option(option: dict[str, Any]) -> None:
    check_text(option["text"], 75, "plain_text")
    assert 0 < len(option["value"]) <= 150


def check_element(element: dict[str, Any]) -> None:
    assert 0 < len(element["action_id"]) <= 255
    kind = element["type"]
    if kind == "plain_text_input":
        limit = element.get("max_length", 3000)
        assert 0 < limit <= 3000
        assert units(element.get("initial_value", "")) <= limit
    elif kind == "number_input":
        if "initial_value" in element:
            value = float(element["initial_value"])
            if not element["is_decimal_allowed"]:
                assert re.fullmatch(r"-?\d+", element["initial_value"])
            assert float(element.get("min_value", value)) <= value
            assert value <= float(element.get("max_value", value))
    elif kind == "static_select":
        options = element["options"]
        assert 0 < len(options) <= 100
        for option in options:
            check_option(option)
        assert len({option["value"] for option in options}) == len(options)
        assert element.get("initial_option", options[0]) in options
    elif kind == "checkboxes":
        assert 0 < len(element["options"]) <= 10
        for option in element["options"]:
            check_option(option)
        assert all(option in element["options"] for option in element.get("initial_options", []))
    else:
        raise AssertionError(f"unexpected element {kind}")


def check_blocks(blocks: list[dict[str, Any]], *, max_blocks: int) -> None:
    assert 0 < len(blocks) <= max_blocks
    block_ids = [block["block_id"] for block in blocks if "block_id" in block]
    assert len(block_ids) == len(set(block_ids)), "block_id must be unique"
    for block in blocks:
        assert 0 < len(block.get("block_id", "x")) <= 255
        kind = block["type"]
        if kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                check_text(block["text"], 3000)
            assert len(block.get("fields", [])) <= 10
            for field in block.get("fields", []):
                check_text(field, 2000)
        elif kind == "header":
            check_text(block["text"], 150, "plain_text")
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
            for element in block["elements"]:
                check_text(element, 3000)
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= 25
            action_ids = [element["action_id"] for element in block["elements"]]
            assert len(action_ids) == len(set(action_ids)), "action_id unique within a block"
            for element in block["elements"]:
                check_button(element)
        elif kind == "input":
            check_text(block["label"], 2000, "plain_text")
            if "hint" in block:
                check_text(block["hint"], 2000, "plain_text")
            check_element(block["element"])
        else:
            raise AssertionError(f"unexpected block {kind}")


def check_message(message: Mapping[str, Any]) -> None:
    assert set(message) == {"text", "blocks"}
    assert message["text"].strip()
    assert units(message["text"]) <= 3000
    check_blocks(message["blocks"], max_blocks=50)
    # Slack answers msg_blocks_too_long past roughly 12,000 characters of text in all
    assert sum(units(text) for text in texts_of(message["blocks"])) <= 10_000


def texts_of(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return own + [text for value in node.values() for text in texts_of(value)]
    if isinstance(node, list):
        return [text for value in node for text in texts_of(value)]
    return []


def check_view(view: dict[str, Any]) -> None:
    assert view["type"] == "modal"
    assert 0 < len(view["callback_id"]) <= 255
    for key in ("title", "close", "submit"):
        if key in view:
            check_text(view[key], 24, "plain_text")
    assert len(view["private_metadata"]) <= 3000
    check_blocks(view["blocks"], max_blocks=100)
    assert len(json.dumps(view)) < 250_000
    if any(block["type"] == "input" for block in view["blocks"]):
        assert "submit" in view


def mrkdwn_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "mrkdwn" else []
        return found + [text for value in node.values() for text in mrkdwn_texts(value)]
    if isinstance(node, list):
        return [text for value in node for text in mrkdwn_texts(value)]
    return []


DATE_TOKEN = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[0-9: -]+ UTC>")


def assert_no_agent_markup(rendered: Mapping[str, Any], allowed: tuple[str, ...] = ()) -> None:
    """Every `<`, `>` and `&` in mrkdwn is escaped, except the tokens we put there on purpose."""
    texts = mrkdwn_texts(rendered.get("blocks", []))
    if "text" in rendered and isinstance(rendered["text"], str):
        texts.append(rendered["text"])
    for text in texts:
        # a line starting "> " is a preview's quote bar: agent text never brings a bare ">"
        stripped = re.sub(r"(?m)^> ", "", DATE_TOKEN.sub("", text))
        for token in allowed:
            stripped = stripped.replace(token, "")
        assert "<" not in stripped and ">" not in stripped, text
        assert not re.search(r"&(?!amp;|lt;|gt;)", stripped), text


def block(message: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The block whose id is `kind:<approval id>`."""
    wanted = f"{kind}:{APPROVAL_ID}"
    return next(block for block in message["blocks"] if block.get("block_id") == wanted)


def block_ids(message: Mapping[str, Any]) -> list[str]:
    return [block.get("block_id", block["type"]).split(":")[0] for block in message["blocks"]]


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def blocks_of(message: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [block for block in message["blocks"] if block["type"] == kind]


def buttons(message: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        element["action_id"]: element
        for block in blocks_of(message, "actions")
        for element in block["elements"]
    }


def all_text(message: Mapping[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


# --- the pending card ---------------------------------------------------------------------------


def test_typical_card_shows_tool_prompt_fields_arguments_and_buttons() -> None:
    approval = make_approval(context="Ticket OPS-12")
    message = render_card(approval)

    check_message(message)
    header = blocks_of(message, "header")[0]
    assert header["text"]["text"] == "deploy_service"
    assert block(message, "prompt")["text"]["text"] == "Send build 1.4.2 to prod?"
    fields = next(block["fields"] for block in message["blocks"] if "fields" in block)
    field_text = "\n".join(field["text"] for field in fields)
    assert "release-bot" in field_text and "U0DAVE" in field_text
    assert "Normal" in field_text
    assert block(message, "call")["elements"][0]["text"] == "Tool call call_abc"
    assert "<!date^1795239900^" in field_text
    assert '"version": "1.4.2"' in "\n".join(mrkdwn_texts(message["blocks"]))
    assert list(buttons(message)) == ["approve", "edit", "reject", "feedback"]
    assert buttons(message)["approve"]["style"] == "primary"
    assert buttons(message)["reject"]["style"] == "danger"
    assert all(
        read_vote(button["value"]) == (APPROVAL_ID, approval.args_version)
        for button in buttons(message).values()
    )
    assert block(message, "context")["elements"][0]["text"] == "Ticket OPS-12"
    assert "deploy_service" in message["text"]
    assert any(block["block_id"] == f"actions:{APPROVAL_ID}" for block in message["blocks"])


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        pytest.param([DecisionKind.APPROVE], ["approve"], id="approve-only"),
        pytest.param(
            [DecisionKind.FEEDBACK, DecisionKind.REJECT], ["reject", "feedback"], id="no-approve"
        ),
        pytest.param(list(DecisionKind), ["approve", "edit", "reject", "feedback"], id="all"),
    ],
)
def test_buttons_follow_allowed_decisions(allowed: list[DecisionKind], expected: list[str]) -> None:
    message = render_card(make_approval(allowed_decisions=allowed))
    assert list(buttons(message)) == expected


@pytest.mark.parametrize(
    ("priority", "confirmed"),
    [
        pytest.param(Priority.CRITICAL, True, id="critical"),
        pytest.param(Priority.HIGH, False, id="high"),
        pytest.param(Priority.LOW, False, id="low"),
    ],
)
def test_only_critical_approvals_ask_for_confirmation(priority: Priority, confirmed: bool) -> None:
    message = render_card(make_approval(priority=priority))
    assert ("confirm" in buttons(message)["approve"]) is confirmed
    assert all(
        "confirm" not in button for name, button in buttons(message).items() if name != "approve"
    )


@pytest.mark.parametrize(
    ("mention", "markup"),
    [
        pytest.param("here", "<!here>", id="here"),
        pytest.param("S0ONCALL", "<!subteam^S0ONCALL>", id="user-group"),
        pytest.param("U0BOB", "<@U0BOB>", id="user"),
    ],
)
def test_mention_leads_the_notification_and_the_card(mention: str, markup: str) -> None:
    message = render_card(make_approval(priority=Priority.HIGH), mention=mention)

    assert message["text"].startswith(markup + " ")
    top = message["blocks"][0]["text"]["text"]
    assert top.startswith(markup) and "High priority" in top


def test_high_priority_without_mention_still_flags_the_card_but_pings_nobody() -> None:
    message = render_card(make_approval(priority=Priority.HIGH))
    assert "High priority" in message["blocks"][0]["text"]["text"]
    assert "<!" not in message["blocks"][0]["text"]["text"]
    assert not message["text"].startswith("<")


def test_normal_card_has_no_attention_section() -> None:
    message = render_card(make_approval())
    assert message["blocks"][0]["type"] == "header"


@pytest.mark.parametrize(
    ("slack_user", "shown"),
    [
        pytest.param("U0DAVE", "U0DAVE", id="user-id"),
        pytest.param("W0ENTERPRISE", "W0ENTERPRISE", id="enterprise-id"),
        pytest.param("dave", "dave", id="name"),
        pytest.param("<@U123>", "&lt;@U123&gt;", id="markup"),
        pytest.param("u0dave", "u0dave", id="lowercase"),
    ],
)
def test_the_requester_the_agent_names_is_shown_never_mentioned(
    slack_user: str, shown: str
) -> None:
    message = render_card(make_approval(requester=Requester(agent="bot", slack_user=slack_user)))
    requester = next(block["fields"][0]["text"] for block in message["blocks"] if "fields" in block)
    assert requester == f"*Requested by*\n`bot` for `{shown}`"


def test_progress_shows_count_and_approvers() -> None:
    progress = Progress(required=2, approvers=["U0ALICE"])
    message = render_card(make_approval(), progress=progress)
    assert "1 of 2 — approved by <@U0ALICE>" in all_text(message)
    assert "approvals restart" not in all_text(message)

    edited = render_card(make_approval(), progress=Progress(required=2, approvers=[], edited=True))
    assert "0 of 2" in all_text(edited)
    assert "arguments were edited; approvals restart" in all_text(edited)


def test_the_card_says_who_may_approve_when_the_rule_names_approvers() -> None:
    """Issue 15: a card never said who may approve it; people learnt it by being refused."""
    policy = Policy(rule=["deploy_*"], approvers=["U0ALICE", "U0BOB", "S0SRE"])
    message = render_card(make_approval(policy=policy))
    *_, line, actions = message["blocks"]  # right above the buttons
    assert (line["block_id"], actions["type"]) == (f"approvers:{APPROVAL_ID}", "actions")
    assert line["elements"][0]["text"] == (
        ":lock: Only <@U0ALICE>, <@U0BOB> or members of <!subteam^S0SRE> can approve this"
    )
    check_message(message)

    assert "approvers:" not in json.dumps(render_card(make_approval()))  # the channel decides
    decided = decide(make_approval(policy=policy), Action.APPROVE)
    assert "can approve" not in json.dumps(render_decided_card(decided))


def test_a_long_list_of_approvers_is_counted_past_ten() -> None:
    approvers = [f"U0{n:03d}" for n in range(25)]
    message = render_card(make_approval(policy=Policy(approvers=approvers)))
    line = message["blocks"][-2]["elements"][0]["text"]
    assert line.count("<@") == 9 and line.endswith(" or 16 more can approve this")
    check_message(message)


@pytest.mark.parametrize(
    ("kind", "approvers", "channels", "note"),
    [
        pytest.param(
            DecisionKind.APPROVE,
            ["U0ALICE", "U0BOB"],
            ["C0DEPLOY"],
            "Nothing changed: only <@U0ALICE> or <@U0BOB> can approve `deploy_prod`.",
            id="users",
        ),
        pytest.param(
            DecisionKind.EDIT,
            ["U0ALICE", "S0SRE"],
            ["C0DEPLOY"],
            "Nothing changed: only <@U0ALICE> or members of <!subteam^S0SRE> can edit "
            "`deploy_prod`.",
            id="group",
        ),
        pytest.param(
            DecisionKind.REJECT,
            [],
            ["C0OPS", "#escalate"],
            "Nothing changed: only members of <#C0OPS> or #escalate can approve or reject "
            "`deploy_prod`.",
            id="channel-members",
        ),
    ],
)
def test_a_refusal_names_who_may_decide(
    kind: DecisionKind, approvers: list[str], channels: list[str], note: str
) -> None:
    """Issue 15: "You are not an approver for deploy_*, rollback" named the rule's globs."""
    refused = NotAnApprover("deploy_prod", kind, approvers, channels)
    assert refusal_note(refused) == note
    assert "deploy_*" not in refused.message and "<" not in refused.message


def test_notes_are_context_lines_and_escaped() -> None:
    message = render_card(make_approval(), notes=["Escalated to <!channel>", "second"])
    notes = blocks_of(message, "context")[-1]["elements"]
    assert [note["text"] for note in notes] == ["Escalated to &lt;!channel&gt;", "second"]


def test_small_arguments_fit_and_offer_no_view_button() -> None:
    assert "view_args" not in buttons(render_card(make_approval()))


@pytest.mark.parametrize(
    "args",
    [
        pytest.param({"script": "x" * 10_000}, id="long-string"),
        pytest.param({f"k{i}": i for i in range(60)}, id="many-lines"),
    ],
)
def test_large_arguments_are_cut_and_offer_the_full_view(args: dict[str, Any]) -> None:
    approval = make_approval(args=args)
    message = render_card(approval)
    check_message(message)
    assert read_vote(buttons(message)["view_args"]["value"]) == (APPROVAL_ID, approval.args_version)
    assert block(message, "args_note")["elements"][0]["text"].startswith("Not all shown.")


def test_arguments_cannot_close_the_code_block() -> None:
    args = {"cmd": "```\n<!here> *bold* ``` <http://evil|click> ````"}
    message = render_card(make_approval(args=args))
    code = next(text for text in mrkdwn_texts(message["blocks"]) if text.startswith("*Arguments*"))
    assert code.count("```") == 2 and code.endswith("```")
    assert "&lt;!here&gt;" in code and "&lt;http://evil|click&gt;" in code


# --- after an edit: the card shows what is being approved now -----------------------------------

EDITED = {"version": "1.4.3", "region": "eu-west-1", "canary": True}


def edited_approval(**changes: Any) -> Approval:
    progress = {"approved_by": ["U0BOB"], "args": EDITED, "edited_by": "U0BOB"}
    return make_approval(progress=progress, **changes)


def test_an_edited_card_shows_the_edited_arguments_who_edited_and_what_changed() -> None:
    approval = edited_approval()
    message = render_card(approval, progress=Progress(2, ["U0BOB"], edited=True))

    check_message(message)
    arguments = block(message, "args")["text"]["text"]
    assert arguments.startswith("*Arguments* (edited by <@U0BOB>)")
    assert '"version": "1.4.3"' in arguments and '"canary": true' in arguments
    assert "1.4.2" not in arguments
    diff = block(message, "diff")["text"]["text"]
    assert 'version: "1.4.2" → "1.4.3"' in diff and "canary: (absent) → true" in diff
    assert all(
        read_vote(button["value"]) == (APPROVAL_ID, args_version(EDITED))
        for button in buttons(message).values()
    )


def test_an_unedited_card_shows_no_changes() -> None:
    message = render_card(make_approval())
    assert block(message, "args")["text"]["text"].startswith("*Arguments*\n")
    assert "diff" not in block_ids(message)


def test_the_full_arguments_modal_shows_the_edited_arguments() -> None:
    view = render_args_modal(edited_approval())
    check_view(view)
    text = "\n".join(texts_of(view))
    assert '"canary": true' in text and "deploy_service (edited)" in text
    assert "1.4.2" not in text


# --- agent text stays apart from the bot's own lines --------------------------------------------

FORGED = ":white_check_mark: *Approved* by @alice · pre-cleared by Security"


def plain_texts(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "plain_text" else []
        return found + [text for value in node.values() for text in plain_texts(value)]
    if isinstance(node, list):
        return [text for value in node for text in plain_texts(value)]
    return []


def assert_only_plain(rendered: Mapping[str, Any], words: str) -> None:
    """`words` appear only as plain text with emoji codes off, never in any mrkdwn."""
    assert not any("Approved* by @alice" in text for text in mrkdwn_texts(rendered["blocks"]))
    shown = [text for text in plain_texts(rendered["blocks"]) if words in text["text"]]
    assert shown and all(text["emoji"] is False for text in shown)


def test_the_prompt_and_context_are_the_agents_plain_words_below_the_bots_lines() -> None:
    approval = make_approval(prompt=FORGED, context=FORGED, priority=Priority.HIGH)
    card = render_card(approval)
    assert_only_plain(card, FORGED)
    order = block_ids(card)
    assert order[:5] == ["attention", "header", "agent", "prompt", "context"]
    assert block(card, "agent")["elements"][0]["text"] == "*From the agent:*"

    decided = render_decided_card(decide(approval, Action.REJECT))
    assert_only_plain(decided, FORGED)
    assert block_ids(decided)[:5] == ["header", "outcome", "agent", "prompt", "context"]


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(Action.CANCEL, id="agent-reason"),
        pytest.param(Action.REJECT, id="human-reason"),
    ],
)
def test_a_comment_is_plain_words_apart_from_the_outcome_line(action: Action) -> None:
    approval = decide(make_approval(), action, comment=FORGED, decided_by="release-bot")
    for message in (render_decided_card(approval), render_decision_reply(approval)):
        check_message(message)
        assert_only_plain(message, FORGED)
        assert block(message, "comment")["text"]["text"] == FORGED


def test_app_home_and_approvals_list_keep_the_prompt_out_of_the_bots_line() -> None:
    approval = make_approval(prompt=FORGED)
    assert "alice" not in summary_line(approval)
    for rendered in (
        render_home([approval], [decide(approval, Action.REJECT)]),
        render_approval_list("Pending approvals", [approval], empty=""),
    ):
        assert_only_plain(rendered, FORGED)
        prompt = next(b for b in rendered["blocks"] if b.get("block_id") == f"prompt:{APPROVAL_ID}")
        assert prompt["elements"][0]["text"] == "*From the agent:*"


def test_an_agent_given_id_is_never_a_mention() -> None:
    approval = make_approval(requester=Requester(agent="U0AGENT", slack_user="U0DAVE"))
    cancelled = decide(approval, Action.CANCEL, decided_by="U0AGENT")
    rendered = [
        render_card(approval),
        render_decided_card(cancelled),
        render_decision_reply(cancelled),
        render_home([approval], [cancelled]),
        render_approval_list("Approvals", [approval, cancelled], empty=""),
    ]
    for message in rendered:
        assert "<@" not in all_text(message)
    assert "(`U0AGENT`)" in render_decision_reply(cancelled)["text"]
    assert "by `U0AGENT`" in summary_line(approval)
    # people who decide are still mentioned
    assert "by <@U0ALICE>" in render_decision_reply(decide(approval, Action.REJECT))["text"]


# --- large arguments: every argument named, every cut said --------------------------------------


def args_note(message: Mapping[str, Any]) -> str:
    note: str = block(message, "args_note")["elements"][0]["text"]
    return note


def test_a_short_last_argument_after_a_huge_one_is_on_the_card() -> None:
    query = "UPDATE customers SET plan='free' WHERE 1=1"
    args = {"rows": "x" * 105_000, "table": "customers", "query": query}
    assert len(json.dumps(args)) > 105_000
    approval = make_approval(args=args)
    message = render_card(approval)

    check_message(message)
    arguments = unescape(block(message, "args")["text"]["text"])
    assert f'"query": "{query}"' in arguments
    assert '"table": "customers"' in arguments
    note = args_note(message)
    shown = int(re.search(r'"rows" shows ([\d,]+) of 105,002 characters', note)[1].replace(",", ""))  # type: ignore[index]
    assert f'"rows": "{"x" * (shown - 1)}…' in arguments
    assert "1 value cut" in note and "by name only" not in note
    assert "view_args" in buttons(message)


def test_arguments_beyond_the_room_are_named_then_counted() -> None:
    args = {f"field_{i}": "v" * 300 for i in range(200)}
    message = render_card(make_approval(args=args))

    check_message(message)
    arguments = block(message, "args")["text"]["text"]
    with_values = re.findall(r'^"(field_\d+)": "v+…$', arguments, re.MULTILINE)
    assert with_values == [f"field_{i}" for i in range(len(with_values))]
    note = args_note(message)
    unlisted = 200 - len(with_values)
    assert f"{len(with_values)} values cut" in note
    assert f"{unlisted} arguments shown by name only" in note
    named = re.findall(r'"(field_\d+)"', note.split("by name only")[1])
    more = int(re.search(r"and (\d+) more\.$", note)[1])  # type: ignore[index]
    assert named == [f"field_{i}" for i in range(len(with_values), len(with_values) + len(named))]
    assert len(named) + more == unlisted


def test_arguments_that_fit_are_shown_whole_without_a_note() -> None:
    message = render_card(make_approval(args={f"k{i}": i for i in range(30)}))
    assert "args_note" not in block_ids(message)
    assert "view_args" not in buttons(message)


# --- critical approvals: the confirmation shows the arguments itself ----------------------------


def confirm_text(message: Mapping[str, Any]) -> str:
    text: str = buttons(message)["approve"]["confirm"]["text"]["text"]
    return text


def test_the_critical_confirmation_names_the_tool_and_shows_the_arguments() -> None:
    message = render_card(make_approval(priority=Priority.CRITICAL))
    text = confirm_text(message)
    assert text.startswith("Run deploy_service with these arguments?")
    assert '"version": "1.4.2"' in text and '"region": "eu-west-1"' in text
    assert "card" not in text and "cut" not in text


def test_a_cut_critical_confirmation_says_so() -> None:
    args = {"rows": "x" * 105_000, **{f"k{i}": i for i in range(10)}}
    message = render_card(make_approval(priority=Priority.CRITICAL, args=args))
    check_message(message)
    text = confirm_text(message)
    assert '"rows": "xxx' in text
    assert re.search(r"\(cut to fit: 1 value shortened, \d+ more arguments not shown\)$", text)


def test_long_argument_names_still_fit_the_critical_confirmation() -> None:
    args = {name * 400: value * 1000 for name, value in [("<", "x"), ("&", "y"), ("字", "z")]}
    message = render_card(make_approval(priority=Priority.CRITICAL, args=args))
    check_message(message)
    assert confirm_text(message).count("…") >= 2


def test_typing_approve_under_a_critical_card_answers_with_the_confirmation() -> None:
    approval = edited_approval(priority=Priority.CRITICAL)
    message = render_thread_confirmation(approval)

    check_message(message)
    assert "critical call needs the confirmation" in message["text"]
    assert "needs the confirmation" in block(message, "confirm")["text"]["text"]
    assert '"canary": true' in block(message, "args")["text"]["text"]
    approve = buttons(message)["approve"]
    assert list(buttons(message)) == ["approve"]
    assert approve["confirm"] == buttons(render_card(approval))["approve"]["confirm"]
    assert read_vote(approve["value"]) == (APPROVAL_ID, args_version(EDITED))

    huge = render_thread_confirmation(
        make_approval(priority=Priority.CRITICAL, args={"x": "y" * 9000})
    )
    assert list(buttons(huge)) == ["approve", "view_args"]


# --- escaping everywhere ------------------------------------------------------------------------


@pytest.mark.parametrize("attack", [pytest.param(attack, id=attack) for attack in ATTACKS])
def test_agent_markup_never_reaches_mrkdwn_unescaped(attack: str) -> None:
    approval = make_approval(
        tool_name=f"tool {attack}",
        tool_call_id=f"call {attack}",
        prompt=f"please {attack} now",
        context=f"see {attack}",
        args={attack: attack, "nested": [{"x": attack}]},
        requester=Requester(agent=attack, slack_user=attack, run_id=attack),
        priority=Priority.CRITICAL,
    )
    messages = [render_card(approval, notes=[attack], progress=Progress(2, [attack, "U0ALICE"]))]
    for action in Action:
        decided = decide(
            approval,
            action,
            comment=attack,
            decided_by=attack,
            decided_by_name=attack,
            approved_args={attack: "changed " + attack} if action is Action.EDIT else None,
        )
        messages += [render_decided_card(decided, notes=[attack]), render_decision_reply(decided)]
    for message in messages:
        check_message(message)
        assert_no_agent_markup(message, allowed=("<@U0ALICE>",))
    views = [
        render_decided_notice(decide(approval, Action.REJECT, comment=attack)),
        render_notice_modal("Already decided", f"by {attack}"),
        render_reject_modal(approval),
        render_feedback_modal(approval),
        render_edit_modal(approval),
        render_args_modal(approval, 1),
    ]
    for view in views:
        check_view(view)
        assert_no_agent_markup(view, allowed=("<@U0ALICE>",))


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        pytest.param("a & b", "a &amp; b", id="amp"),
        pytest.param("<!here>", "&lt;!here&gt;", id="here"),
        pytest.param("&lt;", "&amp;lt;", id="entity-text"),
        pytest.param("*_~`", "*_~`", id="formatting-untouched"),
    ],
)
def test_escape_mrkdwn(text: str, escaped: str) -> None:
    assert escape_mrkdwn(text) == escaped


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param("short", 10, "short", id="fits"),
        pytest.param("abcdefghij", 5, "abcd…", id="cut"),
        pytest.param("abc&def", 6, "abc…", id="no-half-entity"),
        pytest.param("ab<", 7, "ab&lt;", id="escaped-fits"),
        pytest.param("ab<<", 7, "ab&lt;…", id="escaped-cut"),
    ],
)
def test_truncate_escapes_then_cuts(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


@given(st.text(alphabet=st.sampled_from("ab&<>😀"), max_size=60), st.integers(2, 40))
def test_truncate_is_an_escaped_prefix_within_the_limit(text: str, limit: int) -> None:
    result = truncate(text, limit)
    escaped = escape_mrkdwn(text)
    assert units(result) <= limit
    if result == escaped:
        return
    assert result.endswith("…")
    assert escaped.startswith(result[:-1])
    assert not re.search(r"&[a-z]*$", result[:-1]), "cut inside an entity"


# --- decided cards and replies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "changes", "headline", "who"),
    [
        pytest.param(Action.APPROVE, {}, "Approved", "by <@U0ALICE>", id="approve"),
        pytest.param(
            Action.EDIT,
            {"approved_args": {"version": "1.4.3", "region": "eu-west-1"}},
            "Approved with edits",
            "by <@U0ALICE>",
            id="edit",
        ),
        pytest.param(
            Action.REJECT, {"comment": "not now"}, "Rejected", "by <@U0ALICE>", id="reject"
        ),
        pytest.param(
            Action.FEEDBACK,
            {"comment": "use 1.4.3"},
            "Feedback sent to the agent",
            "by <@U0ALICE>",
            id="feedback",
        ),
        pytest.param(Action.TIMEOUT, {}, "Expired — rejected automatically", None, id="expired"),
        pytest.param(
            Action.TIMEOUT, {"approved": True}, "Approved automatically at timeout", None, id="auto"
        ),
        pytest.param(
            Action.CANCEL,
            {"decided_by": "release-bot"},
            "Cancelled by the agent",
            "(`release-bot`)",
            id="cancel",
        ),
        pytest.param(
            Action.APPROVE,
            {"decided_by": "ops-api", "decided_by_name": "Ops <script>"},
            "Approved",
            "by Ops &lt;script&gt;",
            id="api-caller",
        ),
    ],
)
def test_decided_card_shows_outcome_and_has_no_buttons(
    action: Action, changes: dict[str, Any], headline: str, who: str | None
) -> None:
    approval = decide(make_approval(priority=Priority.CRITICAL), action, **changes)
    message = render_decided_card(approval)

    check_message(message)
    assert not blocks_of(message, "actions")
    outcome = message["blocks"][1]["text"]["text"]
    assert f"*{headline}*" in outcome
    assert "<!date^1795239060^" in outcome
    if who is None:
        assert " by " not in outcome
    else:
        assert who in outcome
    assert headline in message["text"]
    comment = changes.get("comment")
    if comment:
        assert comment in all_text(message)
    reply = render_decision_reply(approval)
    assert f"*{headline}*" in reply["text"]
    if comment:
        assert comment in reply["text"]


def test_approvers_of_an_n_of_m_approval_are_all_named() -> None:
    approval = decide(make_approval(), Action.APPROVE, approvers=["U0ALICE", "U0BOB"])
    assert "by <@U0ALICE>, <@U0BOB>" in render_decision_reply(approval)["text"]


def test_edit_diff_lists_changed_added_and_removed_arguments() -> None:
    original = make_approval(args={"version": "1.4.2", "region": "eu", "force": 1, "same": [1]})
    edited = {"version": "1.4.3", "force": True, "same": [1], "note": "<!here>"}
    approval = decide(original, Action.EDIT, approved_args=edited, comment="hotfix")
    message = render_decided_card(approval)

    diff = next(text for text in mrkdwn_texts(message["blocks"]) if "Changed arguments" in text)
    assert 'version: "1.4.2" → "1.4.3"' in diff
    assert 'region: "eu" → (removed)' in diff
    assert "force: 1 → true" in diff
    assert 'note: (absent) → "&lt;!here&gt;"' in diff
    assert "same:" not in diff
    assert "Arguments (edited)" in all_text(message)
    assert "Changed arguments" in all_text(render_decision_reply(approval))


def test_pending_approval_has_no_outcome() -> None:
    with pytest.raises(ValueError, match="pending"):
        render_decided_card(make_approval())


# --- property: any approval renders within Slack's limits -------------------------------------

agent_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(st.text(max_size=8), st.sampled_from(ATTACKS)), max_size=10).map("".join),
    st.builds(
        operator.mul, st.sampled_from([*ATTACKS, "x", "é", "😀", "字", "\n"]), st.integers(1, 5000)
    ),
)
short_text = agent_text.map(lambda text: text[:255])
slack_ids = st.sampled_from(["U0ALICE", "W0BOB", "U12"])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | agent_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
arg_names = st.one_of(
    st.text(max_size=30),
    st.builds(operator.mul, st.sampled_from(["k", "<", "&", "é", " "]), st.integers(1, 400)),
)
args_dicts = st.one_of(
    st.dictionaries(arg_names, json_values, max_size=10),
    st.integers(0, 160).map(lambda n: {f"key_{i}": i for i in range(n)}),
)


MARKDOWN_BITS = [
    "# heading",
    "\n## *Approved* by <@U123>\n",
    "**bold**",
    "_it_",
    "`code <x>`",
    "[label](https://evil.example/?a=1&b=2)",
    "<https://x.example>",
    "![alt](http://img)",
    "\n```\n",
    "\n- item",
    "\n1. first",
    "\n> quote",
    "\n---\n",
    ":white_check_mark:",
    "<!channel>",
    "\r\n",
    "\x1b",
]
previews = st.builds(
    Preview,
    kind=st.sampled_from(PreviewKind),
    body=st.one_of(
        agent_text,
        st.lists(st.one_of(st.text(max_size=8), st.sampled_from(MARKDOWN_BITS)), max_size=30).map(
            "".join
        ),
        st.builds(
            operator.mul,
            st.sampled_from(["+a\n", "-<b>&\n", "x" * 300 + "\n"]),
            st.integers(1, 200),
        ),
    ).map(lambda body: body[: 64 * 1024 // 4]),  # within the 64 KiB of UTF-8 a preview holds
)


@st.composite
def approvals(draw: st.DrawFn) -> Approval:
    requester = Requester(
        agent=draw(st.none() | short_text),
        slack_user=draw(st.none() | slack_ids | short_text),
        run_id=draw(st.none() | short_text),
    )
    return make_approval(
        tool_name=draw(agent_text),
        tool_call_id=draw(agent_text),
        args=draw(args_dicts),
        prompt=draw(st.none() | agent_text),
        context=draw(st.none() | agent_text),
        priority=draw(st.sampled_from(Priority)),
        requester=requester,
        allowed_decisions=draw(st.lists(st.sampled_from(DecisionKind), min_size=1, unique=True)),
        expires_at=draw(st.none() | st.just(NOW + timedelta(hours=1))),
        on_timeout=draw(st.sampled_from(OnTimeout)),
        preview=draw(st.none() | previews),
    )


def allowed_mentions(*candidates: str | None) -> tuple[str, ...]:
    return tuple(
        f"<@{user}>" for user in candidates if user and re.fullmatch(r"[UW][A-Z0-9]{2,}", user)
    )


@SLOW
@given(
    approvals(),
    st.lists(agent_text, max_size=14),
    st.none()
    | st.builds(Progress, st.integers(1, 5), st.lists(slack_ids | short_text, max_size=30)),
)
def test_any_card_stays_within_limits_and_escaped(
    approval: Approval, notes: list[str], progress: Progress | None
) -> None:
    message = render_card(approval, notes=notes, progress=progress)

    check_message(message)
    # people who clicked Approve are mentioned; the agent-given requester never is
    assert_no_agent_markup(message, allowed_mentions(*(progress.approvers if progress else [])))
    assert approval.allowed_decisions  # the model is never modified
    assert set(buttons(message)) - {"view_args", "view_preview"} == {
        kind.value for kind in approval.allowed_decisions
    }


@SLOW
@given(
    approvals(),
    st.sampled_from(Action),
    agent_text,
    slack_ids | short_text,
    args_dicts,
    st.lists(slack_ids | short_text, max_size=30),
)
def test_any_decided_card_stays_within_limits_and_escaped(
    approval: Approval,
    action: Action,
    comment: str,
    decided_by: str,
    edited: dict[str, Any],
    approvers: list[str],
) -> None:
    decided = decide(
        approval,
        action,
        comment=comment,
        decided_by=decided_by,
        decided_by_name=comment[:50],
        approvers=approvers,
        approved_args=edited if action is Action.EDIT else None,
    )
    # a cancellation's `decided_by` is the agent's word: never a mention
    people = [] if action is Action.CANCEL else [decided_by, *approvers]
    allowed = allowed_mentions(*people)
    for message in (render_decided_card(decided), render_decision_reply(decided)):
        check_message(message)
        assert_no_agent_markup(message, allowed)
        assert not blocks_of(message, "actions")


def test_a_card_where_everything_is_huge_stays_within_limits() -> None:
    huge = "字&<" * 40_000
    approval = make_approval(
        tool_name=huge,
        tool_call_id=huge,
        prompt=huge,
        context=huge,
        args={huge: huge, **{f"k{i}": huge for i in range(30)}},
        requester=Requester(agent=huge[:255], slack_user=huge[:255], run_id=huge[:255]),
        priority=Priority.CRITICAL,
        preview=Preview(kind=PreviewKind.MARKDOWN, body=huge[:20_000]),
        progress=ModelProgress(args={f"k{i}": huge for i in range(40)}, edited_by="U0ALICE"),
        policy=Policy(approvers=[f"U0A{i}" for i in range(40)]),
    )
    edited = {f"k{i}": i for i in range(40)}
    # the people who edited and may approve are mentioned; the longest ids first
    people = ("<@U0ALICE>", *(f"<@U0A{i}>" for i in range(39, -1, -1)))
    messages = [
        render_card(approval, mention="here", notes=[huge] * 12, progress=Progress(3, [huge] * 30))
    ]
    for action in Action:
        decided = decide(
            approval,
            action,
            comment=huge,
            decided_by=huge,
            decided_by_name=huge,
            approvers=[huge] * 30,
            approved_args=edited if action is Action.EDIT else None,
        )
        messages += [
            render_decided_card(decided, notes=[huge] * 12),
            render_decision_reply(decided),
        ]
    messages.append(render_thread_confirmation(approval))
    for message in messages:
        check_message(message)
        assert_no_agent_markup(message, allowed=("<!here>", *people))
    huge_ones = [approval.model_copy(update={"id": f"apr_{i}"}) for i in range(20)]
    decided = [
        decide(a.model_copy(update={"id": f"{a.id}_done"}), Action.CANCEL) for a in huge_ones
    ]
    view = render_home(huge_ones, decided)
    check_home(view)
    assert_no_agent_markup(view, people)


# --- the full-arguments modal -------------------------------------------------------------------


def unfence(section: str) -> str:
    assert section.startswith("```\n") and section.endswith("\n```")
    code = re.sub("`\u200b", "`", section[4:-4])
    return code.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def all_pages(approval: Approval) -> list[dict[str, Any]]:
    first = render_args_modal(approval, 1)
    count = int(re.search(r"page 1 of (\d+)", all_text(first)).group(1))  # type: ignore[union-attr]
    return [first] + [render_args_modal(approval, page) for page in range(2, count + 1)]


@SLOW
@given(args_dicts.filter(lambda args: "\u200b" not in json.dumps(args, ensure_ascii=False)))
def test_args_modal_pages_cover_the_whole_pretty_json(args: dict[str, Any]) -> None:
    approval = make_approval(args=args)
    code = []
    for view in all_pages(approval):
        check_view(view)
        assert read_approval_id(view["private_metadata"]) == APPROVAL_ID
        code += [unfence(block["text"]["text"]) for block in blocks_of(view, "section")]
    assert "".join(code) == json.dumps(args, indent=2, ensure_ascii=False)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("x" * 400_000, id="ascii"),
        pytest.param("字" * 200_000, id="cjk"),
        pytest.param("&<>`" * 50_000, id="escapes"),
        pytest.param("😀\n" * 100_000, id="emoji-lines"),
    ],
)
def test_huge_arguments_are_paged_within_limits(value: str) -> None:
    approval = make_approval(args={"blob": value, "n": 1})
    pages = all_pages(approval)

    assert len(pages) > 1
    code = []
    for number, view in enumerate(pages, start=1):
        check_view(view)
        assert f"page {number} of {len(pages)}" in all_text(view)
        code += [unfence(block["text"]["text"]) for block in blocks_of(view, "section")]
    assert "".join(code) == json.dumps(approval.args, indent=2, ensure_ascii=False)


def test_args_modal_buttons_page_back_and_forth() -> None:
    approval = make_approval(args={"blob": "x" * 200_000})
    first, second = render_args_modal(approval, 1), render_args_modal(approval, 2)

    assert [block["block_id"] for block in blocks_of(first, "actions")] == ["args_next"]
    next_button = buttons(first)["args_page"]
    assert read_args_page(next_button["value"]) == (APPROVAL_ID, 2)
    assert {
        read_args_page(block["elements"][0]["value"])[1] for block in blocks_of(second, "actions")
    } == {1, 3}
    assert render_args_modal(approval, 999) == render_args_modal(approval, len(all_pages(approval)))
    assert render_args_modal(approval, -3) == first


def test_small_arguments_fit_one_page_without_buttons() -> None:
    view = render_args_modal(make_approval(), 1)
    check_view(view)
    assert view["callback_id"] == "args_modal"
    assert "page 1 of 1" in all_text(view)
    assert not blocks_of(view, "actions")


# --- the edit modal -----------------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "version": {"type": "string", "maxLength": 20, "pattern": r"^\d+\.\d+\.\d+$"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "description": "pods"},
        "ratio": {"type": "number"},
        "env": {"enum": ["prod", "staging", 3]},
        "dry_run": {"type": "boolean"},
        "labels": {"type": "object"},
        "hosts": {"type": "array", "items": {"type": "string"}},
        "note": {"type": ["string", "null"]},
        "verbose": {"type": "boolean"},
    },
    "required": ["version", "replicas", "env"],
    "additionalProperties": False,
}
ARGS: dict[str, Any] = {
    "version": "1.4.2",
    "replicas": 3,
    "ratio": 0.5,
    "env": "prod",
    "dry_run": False,
    "labels": {"team": "ops"},
    "hosts": ["a", "b"],
}


def edit_approval(**changes: Any) -> Approval:
    return make_approval(**{"args": ARGS, "args_schema": SCHEMA, **changes})


def inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {block["block_id"]: block for block in view["blocks"] if block["type"] == "input"}


def submit(view: dict[str, Any], **changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What Slack sends back for the view as rendered, with some elements changed."""
    values: dict[str, dict[str, Any]] = {}
    for block_id, block in inputs(view).items():
        element = block["element"]
        state: dict[str, Any] = {"type": element["type"]}
        if element["type"] in ("plain_text_input", "number_input"):
            state["value"] = element.get("initial_value") or None
        elif element["type"] == "static_select":
            state["selected_option"] = element.get("initial_option")
        else:
            state["selected_options"] = element.get("initial_options", [])
        state.update(changes.get(block_id, {}))
        values[block_id] = {element["action_id"]: state}
    return values


def test_edit_modal_inputs_are_typed_from_the_schema() -> None:
    view = render_edit_modal(edit_approval())
    check_view(view)
    fields = inputs(view)

    assert view["callback_id"] == "edit_modal"
    assert read_approval_id(view["private_metadata"]) == APPROVAL_ID
    replicas = fields["arg:replicas"]
    assert replicas["element"]["type"] == "number_input"
    assert replicas["element"]["is_decimal_allowed"] is False
    assert (replicas["element"]["min_value"], replicas["element"]["max_value"]) == ("1", "10")
    assert replicas["element"]["initial_value"] == "3"
    assert replicas["hint"]["text"] == "pods"
    assert fields["arg:ratio"]["element"]["is_decimal_allowed"] is True
    env = fields["arg:env"]["element"]
    assert env["type"] == "static_select"
    assert [json.loads(option["value"]) for option in env["options"]] == ["prod", "staging", 3]
    assert env["initial_option"]["value"] == '"prod"'
    assert fields["arg:dry_run"]["element"]["type"] == "checkboxes"
    assert "initial_options" not in fields["arg:dry_run"]["element"]
    labels = fields["arg:labels"]["element"]
    assert labels["type"] == "plain_text_input" and labels["multiline"] is True
    assert json.loads(labels["initial_value"]) == {"team": "ops"}
    version = fields["arg:version"]
    assert version["element"]["max_length"] == 20 and version["optional"] is False
    assert fields["arg:version"]["label"]["text"] == "version"
    # optional schema properties absent from the arguments still get an optional input
    assert (
        fields["arg:note"]["optional"] is True
        and "initial_value" not in fields["arg:note"]["element"]
    )
    assert fields["arg:verbose"]["element"]["type"] == "static_select"
    assert fields[COMMENT_BLOCK]["optional"] is True


def test_edit_modal_without_schema_infers_inputs_from_values() -> None:
    args = {"count": 2, "ratio": 1.5, "flag": True, "name": "x", "tags": ["a"], "none": None}
    # numbers a number_input would round or cannot show are edited as JSON text
    args |= {"huge": 2**60, "tiny": 1e-7}
    fields = inputs(render_edit_modal(make_approval(args=args)))
    kinds = {block_id: block["element"]["type"] for block_id, block in fields.items()}
    assert kinds == {
        "arg:count": "number_input",
        "arg:ratio": "number_input",
        "arg:flag": "checkboxes",
        "arg:name": "plain_text_input",
        "arg:tags": "plain_text_input",
        "arg:none": "plain_text_input",
        "arg:huge": "plain_text_input",
        "arg:tiny": "plain_text_input",
        COMMENT_BLOCK: "plain_text_input",
    }
    assert json.loads(fields["arg:huge"]["element"]["initial_value"]) == 2**60
    assert (
        fields["arg:flag"]["element"]["initial_options"] == fields["arg:flag"]["element"]["options"]
    )


@pytest.mark.parametrize(
    "approval",
    [
        pytest.param(edit_approval(), id="schema"),
        pytest.param(make_approval(args=ARGS), id="no-schema"),
        pytest.param(
            make_approval(args={"empty": "", "none": None, "zero": 0, "f": False}), id="empties"
        ),
        pytest.param(make_approval(args={}), id="no-args"),
    ],
)
def test_unchanged_edit_modal_gives_back_the_same_arguments(approval: Approval) -> None:
    view = render_edit_modal(approval)
    result = parse_edit_submission(approval, submit(view))
    assert result.args == approval.args
    assert result.comment is None


def test_the_edit_modal_starts_from_an_edit_in_progress() -> None:
    """N-of-M: after someone edited, the next approver edits those arguments, not the first."""
    edited = {"version": "1.4.3", "region": "us-east-1", "canary": True}
    approval = make_approval(progress={"approved_by": ["U0BOB"], "args": edited})
    view = render_edit_modal(approval)
    assert "canary" in json.dumps(inputs(view))
    result = parse_edit_submission(approval, submit(view))
    assert result.args == edited != approval.args


def test_edits_come_back_typed_with_the_comment() -> None:
    approval = edit_approval()
    view = render_edit_modal(approval)
    staging = next(
        option
        for option in inputs(view)["arg:env"]["element"]["options"]
        if option["text"]["text"] == "3"
    )
    values = submit(
        view,
        **{
            "arg:replicas": {"value": "5"},
            "arg:ratio": {"value": "2.25"},
            "arg:env": {"selected_option": staging},
            "arg:dry_run": {"selected_options": inputs(view)["arg:dry_run"]["element"]["options"]},
            "arg:labels": {"value": '{"team": "sre"}'},
            "arg:note": {"value": "careful"},
            "arg:hosts": {"value": None},
            COMMENT_BLOCK: {"value": "  fewer pods  "},
        },
    )
    result = parse_edit_submission(approval, values)
    assert result.args == {
        "version": "1.4.2",
        "replicas": 5,
        "ratio": 2.25,
        "env": 3,
        "dry_run": True,
        "labels": {"team": "sre"},
        "note": "careful",
    }
    assert result.comment == "fewer pods"


@pytest.mark.parametrize(
    ("changes", "block_id", "message"),
    [
        pytest.param(
            {"arg:labels": {"value": "{team: ops"}}, "arg:labels", "Not valid JSON", id="json"
        ),
        pytest.param({"arg:labels": {"value": "NaN"}}, "arg:labels", "NaN", id="nan"),
        pytest.param({"arg:replicas": {"value": "11"}}, "arg:replicas", "at most 10", id="too-big"),
        pytest.param(
            {"arg:replicas": {"value": "0"}}, "arg:replicas", "at least 1", id="too-small"
        ),
        pytest.param(
            {"arg:replicas": {"value": "2.5"}}, "arg:replicas", "whole number", id="decimal"
        ),
        pytest.param(
            {"arg:replicas": {"value": "many"}}, "arg:replicas", "number", id="not-number"
        ),
        pytest.param({"arg:version": {"value": None}}, "arg:version", "required", id="emptied"),
        pytest.param(
            {"arg:version": {"value": "v2"}}, "arg:version", "Must look like 1.2.3.", id="pattern"
        ),
        pytest.param(
            {"arg:labels": {"value": "[1]"}}, "arg:labels", "Must be an object.", id="type"
        ),
        pytest.param(
            {"arg:hosts": {"value": '["a", 2]'}}, "arg:hosts", "Item 2: must be text.", id="nested"
        ),
        pytest.param(
            {"arg:env": {"selected_option": None}}, "arg:env", "required", id="enum-emptied"
        ),
    ],
)
def test_invalid_edits_are_reported_on_their_input(
    changes: dict[str, Any], block_id: str, message: str
) -> None:
    approval = edit_approval()
    view = render_edit_modal(approval)
    with pytest.raises(EditErrors) as caught:
        parse_edit_submission(approval, submit(view, **changes))
    assert list(caught.value.errors) == [block_id]
    assert message in caught.value.errors[block_id]
    assert block_id in inputs(view)


def test_schema_errors_without_a_property_go_to_the_first_input() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "minProperties": 2}
    approval = make_approval(args={"a": 1}, args_schema=schema)
    view = render_edit_modal(approval)
    with pytest.raises(EditErrors) as caught:
        parse_edit_submission(approval, submit(view))
    assert list(caught.value.errors) == ["arg:a"]


def test_a_missing_required_property_is_reported_on_its_input() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
        "required": ["a", "b"],
    }
    approval = make_approval(args={"a": 1}, args_schema=schema)
    view = render_edit_modal(approval)
    assert inputs(view)["arg:b"]["optional"] is True  # empty now, so Slack must let it through
    with pytest.raises(EditErrors) as caught:
        parse_edit_submission(approval, submit(view))
    assert caught.value.errors == {"arg:b": "This field is required."}


def test_too_large_argument_is_read_only_and_kept_unchanged() -> None:
    big = {"rows": [{"id": i, "name": f"row {i}"} for i in range(400)]}
    approval = make_approval(args={"data": big, "script": "y" * 5000, "n": 1})
    view = render_edit_modal(approval)
    check_view(view)

    assert set(inputs(view)) == {"arg:n", COMMENT_BLOCK}
    notes = [all_text(block) for block in blocks_of(view, "context")]
    assert sum("too large to edit here; kept as is" in note for note in notes) == 2
    values = submit(view, **{"arg:n": {"value": "2"}})
    values["arg:data"] = {"value": {"type": "plain_text_input", "value": "{}"}}
    assert parse_edit_submission(approval, values).args == {
        "data": big,
        "script": "y" * 5000,
        "n": 2,
    }


def test_edit_modal_stays_well_under_the_view_size_limit() -> None:
    args = {f"text_{i}": "字" * 2900 for i in range(90)}
    approval = make_approval(args=args)
    view = render_edit_modal(approval)

    check_view(view)
    assert len(json.dumps(view)) < 200_000
    assert 0 < len(inputs(view)) - 1 < 90
    assert "too large to edit here; kept as is" in all_text(view)
    assert parse_edit_submission(approval, submit(view)).args == args


def test_many_arguments_fit_in_one_modal_and_the_rest_are_kept() -> None:
    args = {f"arg_{i}": i for i in range(150)}
    approval = make_approval(args=args)
    view = render_edit_modal(approval)
    check_view(view)

    assert len(view["blocks"]) == 100
    assert "53 more arguments kept as is" in all_text(view)
    result = parse_edit_submission(approval, submit(view, **{"arg:arg_0": {"value": "-1"}}))
    assert result.args == {**args, "arg_0": -1}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param(" ", id="blank"),
        pytest.param("x" * 1000, id="long"),
        pytest.param("with space/and:colon", id="odd"),
        pytest.param("comment", id="clashes-with-comment"),
        pytest.param("<!here>", id="markup"),
    ],
)
def test_odd_argument_names_get_safe_unique_block_ids(name: str) -> None:
    approval = make_approval(args={name: "v", "x" * 1001: "w"})
    view = render_edit_modal(approval)
    check_view(view)
    assert arg_block_id(name) in inputs(view)
    assert len(inputs(view)) == 3
    result = parse_edit_submission(approval, submit(view, **{arg_block_id(name): {"value": "new"}}))
    assert result.args == {name: "new", "x" * 1001: "w"}


def schema_for(args: dict[str, Any]) -> dict[str, Any]:
    def describe(value: Any) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"type": "boolean"}
        if isinstance(value, int):
            return {"type": "integer"}
        if isinstance(value, float):
            return {"type": "number"}
        if isinstance(value, str):
            return {"type": "string"}
        if value is None:
            return {"type": "null"}
        return {"type": "array" if isinstance(value, list) else "object"}

    properties = {name: describe(value) for name, value in args.items()}
    return {"type": "object", "properties": properties, "required": list(args)}


@SLOW
@given(args_dicts, st.booleans())
def test_any_arguments_survive_the_edit_modal_round_trip(args: dict[str, Any], typed: bool) -> None:
    approval = make_approval(args=args, args_schema=schema_for(args) if typed else None)
    view = render_edit_modal(approval)

    check_view(view)
    assert parse_edit_submission(approval, submit(view)).args == args


# --- reject, feedback and notices ---------------------------------------------------------------


def test_reject_modal_asks_for_an_optional_reason() -> None:
    view = render_reject_modal(make_approval())
    check_view(view)
    assert view["callback_id"] == "reject_modal"
    assert read_approval_id(view["private_metadata"]) == APPROVAL_ID
    assert inputs(view)[REASON_BLOCK]["optional"] is True
    assert parse_reject_submission(submit(view)) is None
    assert parse_reject_submission(submit(view, reason={"value": " too risky "})) == "too risky"


def test_feedback_modal_requires_text_for_the_model() -> None:
    view = render_feedback_modal(make_approval())
    check_view(view)
    assert view["callback_id"] == "feedback_modal"
    assert read_approval_id(view["private_metadata"]) == APPROVAL_ID
    assert inputs(view)[FEEDBACK_BLOCK]["optional"] is False
    assert parse_feedback_submission(submit(view, feedback={"value": "use 1.4.3"})) == "use 1.4.3"
    with pytest.raises(EditErrors) as caught:
        parse_feedback_submission(submit(view, feedback={"value": "   "}))
    assert list(caught.value.errors) == [FEEDBACK_BLOCK]


def test_notices_say_who_decided() -> None:
    approval = decide(make_approval(), Action.APPROVE)
    view = render_decided_notice(approval)
    check_view(view)
    assert "submit" not in view
    assert "already decided" in all_text(view) and "<@U0ALICE>" in all_text(view)

    plain = render_notice_modal("A very long title that does not fit", "done & dusted")
    check_view(plain)
    assert "done &amp; dusted" in all_text(plain)


def test_identifiers_are_the_ones_slack_listens_for() -> None:
    assert ACTION_IDS == (
        "approve",
        "edit",
        "reject",
        "feedback",
        "view_args",
        "args_page",
        "view_preview",
        "preview_page",
        "approve_allow",
        "revoke_grant",
        "batch_approve",
        "batch_reject",
    )
    assert CALLBACK_IDS == (
        "edit_modal",
        "reject_modal",
        "feedback_modal",
        "args_modal",
        "allow_modal",
        "batch_reject_modal",
    )


# --- votes name the arguments version their person saw -----------------------------------------


def test_a_vote_value_reads_back_with_its_version() -> None:
    value = vote_value(APPROVAL_ID, "0123456789abcdef")
    assert value == '{"id":"apr_0123456789abcdef0123","v":"0123456789abcdef"}'
    assert read_vote(value) == (APPROVAL_ID, "0123456789abcdef")
    # cards posted before votes named a version carry the bare id
    assert read_vote(APPROVAL_ID) == (APPROVAL_ID, None)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("approve", id="word"),
        pytest.param("apr_x y", id="spaced-id"),
        pytest.param('{"id": "apr_1"}', id="no-version"),
        pytest.param('{"id": "apr_1", "v": 3}', id="number-version"),
        pytest.param('{"v": "abc"}', id="no-id"),
        pytest.param('{"id": "apr_1", "page": 2}', id="page-button"),
        pytest.param("[" * 5000, id="deep"),
    ],
)
def test_anything_else_is_not_a_vote(value: object) -> None:
    with pytest.raises(Unreadable):
        read_vote(value)


@pytest.mark.parametrize(
    "render",
    [
        pytest.param(render_edit_modal, id="edit"),
        pytest.param(render_reject_modal, id="reject"),
        pytest.param(render_feedback_modal, id="feedback"),
    ],
)
def test_decision_modals_carry_the_version_of_the_arguments_shown(render: Any) -> None:
    for approval in (make_approval(), edited_approval()):
        view = render(approval)
        assert read_modal_vote(view["private_metadata"]) == (APPROVAL_ID, approval.args_version)
    assert args_version(EDITED) != make_approval().args_version


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param('{"id": "apr_1"}', ("apr_1", None), id="before-versions"),
        pytest.param('{"id": "apr_1", "fingerprint": "ab"}', ("apr_1", "ab"), id="old-edit-modal"),
    ],
)
def test_modals_opened_before_versions_still_read(metadata: str, expected: tuple[str, Any]) -> None:
    assert read_modal_vote(metadata) == expected


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param("", id="empty"),
        pytest.param("apr_1", id="bare-id"),
        pytest.param('{"id": "apr_1", "v": ["x"]}', id="odd-version"),
        pytest.param(None, id="none"),
    ],
)
def test_unreadable_modal_metadata_is_refused(metadata: object) -> None:
    with pytest.raises(Unreadable):
        read_modal_vote(metadata)


# --- App Home and /approvals --------------------------------------------------------------------


def check_home(view: dict[str, Any]) -> None:
    assert view["type"] == "home"
    check_blocks([b for b in view["blocks"] if b["type"] != "divider"], max_blocks=100)
    assert len(view["blocks"]) <= 100
    assert len(json.dumps(view)) < 250_000


def test_waiting_entries_show_the_arguments_beside_their_buttons() -> None:
    approval = make_approval()
    view = render_home([approval], [])

    check_home(view)
    arguments = block(view, "args")["text"]["text"]
    assert '"version": "1.4.2"' in arguments
    ids = block_ids(view)
    assert ids.index("args") == ids.index("actions") - 1
    assert list(buttons(view)) == ["approve", "edit", "reject", "feedback"]
    assert all(
        read_vote(button["value"]) == (APPROVAL_ID, approval.args_version)
        for button in buttons(view).values()
    )


def test_large_waiting_arguments_are_cut_by_the_same_rules_with_the_full_view() -> None:
    query = "UPDATE customers SET plan='free' WHERE 1=1"
    approval = make_approval(args={"rows": "x" * 105_000, "query": query})
    view = render_home([approval], [])

    check_home(view)
    assert f'"query": "{query}"' in unescape(block(view, "args")["text"]["text"])
    assert '"rows" shows' in args_note(view)
    assert "view_args" in buttons(view)


def test_an_edited_waiting_entry_shows_the_edited_arguments() -> None:
    view = render_home([edited_approval()], [])
    assert "(edited by <@U0BOB>)" in block(view, "args")["text"]["text"]
    assert '"canary": true' in block(view, "args")["text"]["text"]


def test_the_critical_confirmation_in_app_home_shows_the_arguments() -> None:
    view = render_home([make_approval(priority=Priority.CRITICAL)], [])
    text = confirm_text(view)
    assert "deploy_service" in text and '"version": "1.4.2"' in text


def test_lists_without_buttons_show_no_arguments() -> None:
    message = render_approval_list("Pending approvals", [make_approval()], empty="")
    check_message(message)
    assert not buttons(message) and "args" not in block_ids(message)


@SLOW
@given(st.lists(approvals(), max_size=20), st.lists(approvals(), max_size=12))
def test_any_home_and_list_stay_within_limits_and_escaped(
    pending: list[Approval], recent: list[Approval]
) -> None:
    pending = [a.model_copy(update={"id": f"apr_p{i}"}) for i, a in enumerate(pending)]
    decided = [
        decide(a.model_copy(update={"id": f"apr_d{i}"}), Action.CANCEL, decided_by="U0AGENT")
        for i, a in enumerate(recent)
    ]
    view = render_home(pending, decided)
    check_home(view)
    assert_no_agent_markup(view)
    for listed in (pending, decided):
        message = render_approval_list("Approvals", listed, empty="none")
        check_message(message)
        assert_no_agent_markup(message)
