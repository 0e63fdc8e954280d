"""The card and the edit modal in a person's words: errors say what a value must be, a
multi-line text reads as text, and fields with nothing to say are left out."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from bot.dev.examples import example
from bot.models import Action, Requester
from bot.slack.cards import (
    EditErrors,
    edit_errors,
    parse_edit_submission,
    render_approval_list,
    render_card,
    render_decided_card,
    render_edit_modal,
    render_home,
    render_thread_confirmation,
    summary_line,
)
from bot.slack.cards.examples import pattern_example
from bot.slack.cards.words import explain_error, number
from tests.conftest import SlackRig, until
from tests.test_cards import (
    SLOW,
    agent_text,
    all_text,
    assert_no_agent_markup,
    block,
    buttons,
    check_home,
    check_message,
    decide,
    inputs,
    make_approval,
    submit,
    unescape,
)

# --- edit-modal errors --------------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
        "tag": {"type": "string", "pattern": r"^v(\d+)(-rc)?$"},
        "name": {"type": "string", "minLength": 3, "maxLength": 5},
        "regions": {"type": "array", "maxItems": 2, "uniqueItems": True},
        "amount": {"type": "number", "minimum": 1, "maximum": 10000},
        "step": {"type": "integer", "multipleOf": 5, "exclusiveMinimum": 0},
        "ratio": {"type": "number", "exclusiveMaximum": 1},
        "targets": {"type": "array", "minItems": 1, "items": {"enum": ["api", "web", "worker"]}},
        "flags": {"type": "array", "items": {"type": "boolean"}},
        "counts": {"type": "array", "items": {"type": "integer"}},
        "mode": {"const": "safe"},
        "limits": {
            "type": "object",
            "properties": {"cpu": {"type": "integer", "maximum": 10000}},
            "required": ["cpu"],
            "additionalProperties": False,
        },
    },
    "required": ["version"],
}
ARGS: dict[str, Any] = {
    "version": "1.4.2",
    "tag": "v1",
    "name": "api",
    "regions": ["eu-west-1"],
    "amount": 2500,
    "step": 5,
    "ratio": 0.5,
    "targets": ["api"],
    "flags": [True],
    "counts": [1],
    "mode": "safe",
    "limits": {"cpu": 2},
}


def refused(changes: dict[str, Any], args: dict[str, Any] | None = None) -> dict[str, str]:
    """What the edit modal says when `changes` (block id → element state) are submitted."""
    approval = make_approval(args=args or ARGS, args_schema=SCHEMA)
    view = render_edit_modal(approval)
    with pytest.raises(EditErrors) as caught:
        parse_edit_submission(approval, submit(view, **changes))
    return caught.value.errors


def typed(block_id: str, value: str) -> dict[str, Any]:
    return {block_id: {"value": value}}


@pytest.mark.parametrize(
    ("changes", "block_id", "says"),
    [
        pytest.param(
            typed("arg:version", "latest"),
            "arg:version",
            "Must look like 1.2.3.",
            id="pattern-example",
        ),
        pytest.param(
            typed("arg:tag", "1"),
            "arg:tag",
            r"Must match the pattern `^v(\d+)(-rc)?$`.",
            id="pattern-shown",
        ),
        pytest.param(
            typed("arg:name", "ab"), "arg:name", "Must be at least 3 characters.", id="minLength"
        ),
        pytest.param(
            typed("arg:name", "abcdef"), "arg:name", "Must be at most 5 characters.", id="maxLength"
        ),
        pytest.param(
            typed("arg:regions", '["eu-west-1", "us-east-1", "ap-south-1"]'),
            "arg:regions",
            "Must have at most 2 items.",
            id="maxItems",
        ),
        pytest.param(
            typed("arg:regions", '["a", "a"]'),
            "arg:regions",
            "Must not list the same item twice.",
            id="uniqueItems",
        ),
        pytest.param(
            typed("arg:targets", "[]"), "arg:targets", "Must have at least 1 item.", id="minItems"
        ),
        pytest.param(
            typed("arg:targets", '["db"]'),
            "arg:targets",
            "Item 1: must be one of: api, web, worker.",
            id="enum",
        ),
        pytest.param(
            typed("arg:amount", "50000"), "arg:amount", "Must be at most 10,000.", id="maximum"
        ),
        pytest.param(typed("arg:amount", "0"), "arg:amount", "Must be at least 1.", id="minimum"),
        pytest.param(
            typed("arg:step", "7"), "arg:step", "Must be a multiple of 5.", id="multipleOf"
        ),
        pytest.param(
            typed("arg:step", "0"), "arg:step", "Must be more than 0.", id="exclusiveMinimum"
        ),
        pytest.param(
            typed("arg:ratio", "1"), "arg:ratio", "Must be less than 1.", id="exclusiveMaximum"
        ),
        pytest.param(
            typed("arg:step", "2.5"), "arg:step", "Must be a whole number.", id="integer-input"
        ),
        pytest.param(
            typed("arg:counts", "[1.5]"),
            "arg:counts",
            "Item 1: must be a whole number.",
            id="integer-type",
        ),
        pytest.param(
            typed("arg:flags", '["yes"]'),
            "arg:flags",
            "Item 1: must be true or false.",
            id="boolean-type",
        ),
        pytest.param(
            typed("arg:regions", '"eu-west-1"'), "arg:regions", "Must be a list.", id="array-type"
        ),
        pytest.param(typed("arg:mode", '"risky"'), "arg:mode", "Must be exactly safe.", id="const"),
        pytest.param(
            typed("arg:limits", "{}"), "arg:limits", '"cpu" is required.', id="required-inside"
        ),
        pytest.param(
            typed("arg:limits", '{"cpu": 1, "gpu": 1}'),
            "arg:limits",
            '"gpu" is not allowed here (allowed: cpu).',
            id="additionalProperties",
        ),
        pytest.param(
            typed("arg:limits", '{"cpu": 20000}'),
            "arg:limits",
            "cpu: must be at most 10,000.",
            id="nested-maximum",
        ),
        pytest.param(
            typed("arg:version", ""), "arg:version", "This field is required.", id="required"
        ),
    ],
)
def test_edit_errors_say_what_the_value_must_be(
    changes: dict[str, Any], block_id: str, says: str
) -> None:
    assert refused(changes) == {block_id: says}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("{team: ops", "a key needs double quotes (line 1, column 2)", id="key-quotes"),
        pytest.param(
            '{"cpu": 1,}',
            "there is a comma too many before } (line 1, column 11)",
            id="object-comma",
        ),
        pytest.param(
            "[1,]", "there is a comma too many before ] (line 1, column 4)", id="array-comma"
        ),
        pytest.param(
            "['a']",
            "text needs double quotes, not single quotes (line 1, column 2)",
            id="single-quotes",
        ),
        pytest.param("[eu-west-1]", "text needs double quotes (line 1, column 2)", id="bare-word"),
        pytest.param(
            "[True]",
            "true, false and null are written in lower case (line 1, column 2)",
            id="python-true",
        ),
        pytest.param(
            '{"cpu" 1}', "a key needs a colon (:) after it (line 1, column 8)", id="colon"
        ),
        pytest.param("[1 2]", "a comma is missing (line 1, column 4)", id="comma"),
        pytest.param(
            '["abc',
            "a text value has no closing double quote (line 1, column 2)",
            id="unterminated",
        ),
        pytest.param(
            '{"cpu":\n  ',
            "it ends too early: a value is missing (line 2, column 3)",
            id="too-early",
        ),
        pytest.param(
            "[1] [2]",
            "there is more after the value (several values go in a list: [ … ]) (line 1, column 5)",
            id="extra",
        ),
        pytest.param("[NaN]", "NaN is not a JSON number (write a number, or null)", id="nan"),
    ],
)
def test_json_that_does_not_parse_says_why_and_where(text: str, says: str) -> None:
    errors = refused(typed("arg:counts", text))
    assert errors == {"arg:counts": f"Not valid JSON: {says}."}


def test_the_number_hint_and_its_error_use_the_same_words() -> None:
    """The hint reads "at most 10,000"; the error under it says the same, not "10000"."""
    transfer = example("transfer")
    approval = make_approval(
        args=dict(transfer.args), args_schema=transfer.fields.get("args_schema")
    )
    view = render_edit_modal(approval)
    hint = inputs(view)["arg:amount"]["hint"]["text"]

    with pytest.raises(EditErrors) as caught:
        parse_edit_submission(approval, submit(view, **typed("arg:amount", "50000")))

    assert "at most 10,000" in hint
    assert caught.value.errors == {"arg:amount": "Must be at most 10,000."}


@pytest.mark.parametrize(
    ("path", "message", "expected"),
    [
        pytest.param(
            "approvedArgs.version",
            r"'latest' does not match '^\\d+\\.\\d+\\.\\d+$'",
            {"arg:version": "Must look like 1.2.3."},
            id="pattern",
        ),
        pytest.param(
            "approvedArgs.regions",
            "['eu-west-1', 'us-east-1', 'ap-south-1'] is too long",
            {"arg:regions": "Must have at most 2 items."},
            id="maxItems",
        ),
        pytest.param(
            "approvedArgs.amount",
            "50000 is greater than the maximum of 10000",
            {"arg:amount": "Must be at most 10,000."},
            id="maximum",
        ),
        pytest.param(
            "approvedArgs.targets.0",
            "'db' is not one of ['api', 'web', 'worker']",
            {"arg:targets": "Item 1: must be one of: api, web, worker."},
            id="nested-enum",
        ),
        pytest.param(
            "approvedArgs",
            "'version' is a required property",
            {"arg:version": "This field is required."},
            id="required",
        ),
        pytest.param(
            "approvedArgs.limits",
            "Additional properties are not allowed ('gpu', 'tpu' were unexpected)",
            {"arg:limits": '"gpu", "tpu" are not allowed here.'},
            id="additionalProperties",
        ),
    ],
)
def test_a_refusal_from_the_full_check_is_said_the_same_way(
    path: str, message: str, expected: dict[str, str]
) -> None:
    """A check too slow for the event loop comes back from the service as text only."""
    approval = make_approval(args=ARGS, args_schema=SCHEMA)
    assert edit_errors(approval, path, message).errors == expected


@pytest.mark.parametrize(
    ("fmt", "value", "says"),
    [
        pytest.param("email", "nobody", "must be an email address", id="email"),
        pytest.param("date", "tomorrow", "must be a date like 2026-01-31", id="date"),
        pytest.param("ipv4", "1.2.3", "must be an IPv4 address like 192.0.2.1", id="ipv4"),
    ],
)
def test_a_format_is_named_with_an_example(fmt: str, value: str, says: str) -> None:
    """Format checks are off in the bot's checker; a schema tool that has them says it too."""
    checker = Draft202012Validator(
        {"format": fmt}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    [error] = checker.iter_errors(value)
    assert explain_error(error) == says


@pytest.mark.parametrize(
    ("pattern", "example"),
    [
        pytest.param(r"^\d+\.\d+\.\d+$", "1.2.3", id="semver"),
        pytest.param(r"^\d{4}-\d{2}-\d{2}$", "1234-56-78", id="date-shape"),
        pytest.param(r"^[a-z][a-z0-9-]{2,62}$", "abc", id="slug"),
        pytest.param(r"^[A-Z]{3}$", "ABC", id="currency"),
        pytest.param(r"^PROJ-\d+$", "PROJ-1", id="ticket"),
        pytest.param(r"^(a+)+$", None, id="group"),
        pytest.param(r"^(prod|staging)$", None, id="alternatives"),
        pytest.param(r"^.+$", None, id="any-character"),
        pytest.param(r"^[^x]+$", None, id="negated-class"),
    ],
)
def test_simple_patterns_get_an_example_and_others_are_shown(
    pattern: str, example: str | None
) -> None:
    assert pattern_example(pattern) == example


@pytest.mark.parametrize(
    ("value", "written"),
    [
        pytest.param(10000, "10,000", id="int"),
        pytest.param(10000.0, "10,000", id="whole-float"),
        pytest.param(1234.75, "1,234.75", id="float"),
        pytest.param(-0.5, "-0.5", id="negative"),
        pytest.param(1e-7, "1e-07", id="tiny"),
    ],
)
def test_numbers_are_written_as_people_write_them(value: float, written: str) -> None:
    assert number(value) == written


async def _edit_modal(rig: SlackRig, approval_id: str) -> Any:
    await rig.click(approval_id, "edit", "U0ALICE")
    [modal] = await until(lambda: _open_modals(rig))
    return modal


async def _open_modals(rig: SlackRig) -> list[Any]:
    return [view for view in rig.workspace.open_modals("U0ALICE") if not view.closed]


async def test_the_edit_modal_in_slack_says_the_rule_in_words(rig: SlackRig) -> None:
    record = await rig.bot.submit(
        args={"version": "1.4.2", "regions": ["eu-west-1"]}, argsSchema=SCHEMA
    )
    modal = await _edit_modal(rig, record["id"])

    answers = {}
    for block_id, value in [
        ("arg:version", "latest"),
        ("arg:regions", '["eu-west-1", "us-east-1", "ap-south-1"]'),
        ("arg:regions", "{'eu-west-1'}"),
    ]:
        delivery = await rig.slack.submit_view(modal.id, {block_id: value})
        assert delivery.json()["response_action"] == "errors"
        answers[value] = modal.errors[block_id]

    assert answers == {
        "latest": "Must look like 1.2.3.",
        '["eu-west-1", "us-east-1", "ap-south-1"]': "Must have at most 2 items.",
        "{'eu-west-1'}": "Not valid JSON: a key needs double quotes, not single quotes "
        "(line 1, column 2).",
    }
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"


# --- multi-line text on the card ----------------------------------------------------------------

EMAIL = dict(example("email").args)


def code_of(message: Any, kind: str = "args") -> str:
    """The arguments' code block, unescaped."""
    text: str = block(message, kind)["text"]["text"]
    fenced = text.split("```")[1]
    return unescape(fenced.removeprefix("\n").removesuffix("\n").replace("`\u200b", "`"))


def test_a_multi_line_text_argument_reads_as_text() -> None:
    message = render_card(make_approval(tool_name="send_email", args=EMAIL))
    check_message(message)
    code = code_of(message)

    assert "\\n" not in code
    assert code == (
        '"to": "all-customers@example.com"\n'
        '"subject": "Scheduled maintenance on Saturday"\n'
        '"body":\n'
        "  │ Hello,\n"
        "  │ \n"
        "  │ Our service will be read-only on Saturday from 06:00 to 07:00 UTC while we upgrade "
        "the database.\n"
        "  │ \n"
        "  │ The Example team"
    )
    assert "args_note" not in [b.get("block_id", "").split(":")[0] for b in message["blocks"]]


def test_a_text_argument_stays_escaped_inside_its_block() -> None:
    body = "Hi <!here> & <@U0ALICE>,\n```\n*done*\n```\n<http://evil|click>"
    message = render_card(make_approval(args={"body": body}))
    check_message(message)
    assert_no_agent_markup(message)
    raw = block(message, "args")["text"]["text"]
    assert raw.count("```") == 2
    assert code_of(message) == '"body":\n' + "\n".join(f"  │ {line}" for line in body.split("\n"))


def test_no_line_of_a_text_passes_for_an_argument_of_its_own() -> None:
    args = {"body": 'Ship it.\n"dry_run": true\n"target": "staging"', "dry_run": False}
    code = code_of(render_card(make_approval(args=args)))
    assert code.split("\n") == [
        '"body":',
        "  │ Ship it.",
        '  │ "dry_run": true',
        '  │ "target": "staging"',
        '"dry_run": false',
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a\rb\nc", id="carriage-return"),
        pytest.param("a\u2028b\nc", id="line-separator"),
        pytest.param("a\x1b[31mb\nc", id="escape-code"),
        pytest.param("\n\n", id="only-line-breaks"),
    ],
)
def test_text_with_invisible_characters_stays_json(text: str) -> None:
    code = code_of(render_card(make_approval(args={"body": text})))
    assert json.dumps(text, ensure_ascii=False) in code


def test_a_long_text_argument_is_cut_and_says_what_is_not_shown() -> None:
    body = "\n".join(f"Paragraph {i}: the service is read-only from 06:00." for i in range(400))
    args = {"to": "all@example.com", "body": body, "send": True}
    approval = make_approval(args=args)
    message = render_card(approval)

    check_message(message)
    code = code_of(message)
    assert code.startswith('"to": "all@example.com"\n"body":\n  │ Paragraph 0: the service')
    assert code.endswith('…\n"send": true')
    assert len(code.split("\n")) <= 40
    note = block(message, "args_note")["elements"][0]["text"]
    found = re.search(r'"body" shows ([\d,]+) of ([\d,]+) characters', note)
    assert found is not None and int(found[2].replace(",", "")) == len(body)
    shown = int(found[1].replace(",", ""))
    text = "\n".join(line.removeprefix("  │ ") for line in code.split("\n")[2:-1])
    assert text == body[:shown] + "…"
    assert "view_args" in buttons(message)


def test_the_decided_card_and_app_home_show_the_text_the_same_way() -> None:
    approval = make_approval(args=EMAIL)
    decided = render_decided_card(decide(approval, Action.APPROVE))
    check_message(decided)
    assert "  │ The Example team" in code_of(decided)
    home = render_home([approval], [])
    check_home(home)
    assert "  │ The Example team" in code_of(home)
    confirmation = render_thread_confirmation(approval)
    assert "  │ The Example team" in code_of(confirmation)


multi_line = st.lists(agent_text, min_size=2, max_size=30).map("\n".join)


names = st.text(alphabet="abcxyz_- é字", max_size=12)  # short enough to be shown whole


@SLOW
@given(st.dictionaries(names, multi_line | agent_text, min_size=1, max_size=8))
def test_any_text_arguments_stay_within_limits_and_every_argument_is_named(
    args: dict[str, Any],
) -> None:
    message = render_card(make_approval(args=args))
    check_message(message)
    assert_no_agent_markup(message)
    code = code_of(message)
    assert len(code.split("\n")) <= 40
    for name in args:  # eight arguments always fit: each is named on its own line
        label = json.dumps(name, ensure_ascii=False)
        assert re.search(f"^ *{re.escape(label)}:", code, re.MULTILINE), label


# --- fields with nothing to say are left out ----------------------------------------------------


def fields_text(message: Any) -> str:
    return "\n".join(field["text"] for field in block(message, "fields")["fields"])


def test_the_tool_call_id_is_on_a_context_line_not_a_field() -> None:
    approval = make_approval(tool_call_id="call_9f8e7d6c5b4a")
    for message in (render_card(approval), render_decided_card(decide(approval, Action.REJECT))):
        assert "Tool call" not in fields_text(message)
        assert block(message, "call")["elements"] == [
            {"type": "plain_text", "text": "Tool call call_9f8e7d6c5b4a", "emoji": False}
        ]


def test_a_call_without_a_requester_or_expiry_leaves_those_out() -> None:
    approval = make_approval(requester=Requester(), expires_at=None)
    rendered = [
        render_card(approval),
        render_decided_card(decide(approval, Action.APPROVE)),
        render_home([approval], [decide(approval, Action.REJECT)]),
        render_approval_list("Pending approvals", [approval], empty=""),
    ]
    for message in rendered:
        text = all_text(message)
        assert "unknown" not in text and "never" not in text.lower()
        assert "Requested by" not in text and "Expires" not in text
    assert fields_text(rendered[0]) == "*Priority*\n:large_blue_circle: Normal"
    assert " by " not in summary_line(approval)  # App Home and /approvals say nothing either


def test_a_requester_with_only_a_run_reads_as_that_run() -> None:
    approval = make_approval(requester=Requester(run_id="run-42"))
    assert fields_text(render_card(approval)).startswith("*Requested by*\nrun `run-42`\n")
