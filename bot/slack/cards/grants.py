"""Standing approvals in Block Kit (`bot.grants`): the "Approve & allow…" modal, the lines
in the thread of the card a grant was made on, and App Home's list of active grants.

Agent text (the agent's name, argument names and values, a toolCallId) is shown as plain
text, apart from the bot's own words, as on the card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bot.grants import Grant, StandingTerms, describe_span, may_stand, span_choices
from bot.models import Approval
from bot.slack.cards.edit import EditErrors
from bot.slack.cards.ids import ALLOW_MODAL, REVOKE_GRANT_ACTION, block_id, private_metadata
from bot.slack.cards.inputs import read_input
from bot.slack.cards.modals import render_notice_modal
from bot.slack.cards.text import (
    Block,
    Message,
    View,
    clip,
    context,
    date_markup,
    mrkdwn,
    plain,
    section,
    user_markup,
    verbatim,
)

__all__ = [
    "KEYS_BLOCK",
    "MAX_KEYS_SHOWN",
    "SPAN_BLOCK",
    "parse_allow_submission",
    "render_allow_modal",
    "render_grant_note",
    "render_grants_section",
]

#: the input block of the span ("Allow for")
SPAN_BLOCK = "span"
#: input blocks of argument checkboxes: `keys_0`, `keys_1`…, ten arguments each (Slack's limit)
KEYS_BLOCK = "keys"
KEYS_PER_BLOCK = 10
#: arguments offered as checkboxes; any beyond always stay equal
MAX_KEYS_SHOWN = 80
#: active grants listed in App Home (one block each)
MAX_GRANTS_LISTED = 10
_NOTE_CHARS = 2000


def _keys_block_id(index: int) -> str:
    return f"{KEYS_BLOCK}_{index}"


def _value_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def render_allow_modal(approval: Approval) -> View:
    """ "Approve & allow…": how long (up to the rule's limit), and a checkbox per top-level
    argument, all checked, for those that must stay equal. Submitting approves the call."""
    if not may_stand(approval):
        return render_notice_modal(
            "Not offered",
            f"Standing approvals are not offered for this {approval.tool_name} call.",
            approval_id=approval.id,
        )
    limit = approval.policy.allow_standing
    assert limit is not None
    agent = approval.requester.agent or ""
    blocks: list[Block] = [
        section(
            f"Approve *{approval.tool_name}* now, and approve its later calls from this agent "
            "without asking, for as long as you choose, while the checked arguments stay equal."
        ),
        {"type": "context", "elements": [verbatim(f"Agent: {agent}", _NOTE_CHARS)]},
    ]
    required = approval.policy.required_approvals
    if required > 1:
        blocks.append(
            context(
                [
                    f"This rule needs {required} people: the standing approval starts once "
                    f"{required} approvers chose Approve & allow on these arguments. Your "
                    "choice counts as your approval meanwhile."
                ]
            )
        )
    options = [_option(describe_span(s), str(s)) for s in span_choices(limit)]
    blocks.append(
        {
            "type": "input",
            "block_id": SPAN_BLOCK,
            "label": plain("Allow for", 100),
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": options,
                "initial_option": options[0],
            },
        }
    )
    keys = list(approval.current_args)
    shown = keys[:MAX_KEYS_SHOWN]
    for start in range(0, len(shown), KEYS_PER_BLOCK):
        chunk = [
            _option(clip(key, 75), str(start + i), _value_text(approval.current_args[key]))
            for i, key in enumerate(shown[start : start + KEYS_PER_BLOCK])
        ]
        label = "Arguments that must stay equal" if start == 0 else "… and these"
        blocks.append(
            {
                "type": "input",
                "block_id": _keys_block_id(start // KEYS_PER_BLOCK),
                "optional": True,
                "label": plain(label, 100),
                "element": {
                    "type": "checkboxes",
                    "action_id": "value",
                    "options": chunk,
                    "initial_options": chunk,
                },
            }
        )
    notes = ["Unchecked arguments may differ. Revoke it any time in the bot's App Home."]
    if not keys:
        notes.insert(0, "The call has no arguments: later calls with none are approved.")
    if len(keys) > len(shown):
        notes.insert(0, f"{len(keys) - len(shown)} more arguments always stay equal.")
    blocks.append(context(notes))
    return {
        "type": "modal",
        "callback_id": ALLOW_MODAL,
        "private_metadata": private_metadata(approval.id, v=approval.args_version),
        "title": plain("Approve & allow", 24),
        "submit": plain("Approve & allow", 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }


def _option(text: str, value: str, description: str | None = None) -> dict[str, Any]:
    option: dict[str, Any] = {"text": plain(text, 75, emoji=False), "value": value}
    if description is not None:
        option["description"] = plain(description, 75, emoji=False)
    return option


def parse_allow_submission(
    approval: Approval, state_values: Mapping[str, Mapping[str, Any]]
) -> StandingTerms:
    """The span and the arguments kept equal, from the allow modal; `EditErrors` for a span
    the rule does not offer. The modal was drawn for the arguments version its metadata names
    (checked by the vote), so the checkbox values index `approval.current_args`."""
    limit = approval.policy.allow_standing or 0
    selected = (read_input(state_values, SPAN_BLOCK) or {}).get("selected_option")
    raw = selected.get("value") if isinstance(selected, dict) else None
    seconds = int(raw) if isinstance(raw, str) and raw.isdigit() and len(raw) < 10 else 0
    if not limit or seconds not in span_choices(limit):
        raise EditErrors({SPAN_BLOCK: "Pick how long to allow these calls."})
    keys = list(approval.current_args)
    kept = set(keys[MAX_KEYS_SHOWN:])  # not offered: they always stay equal
    for index in range(0, min(len(keys), MAX_KEYS_SHOWN), KEYS_PER_BLOCK):
        block = _keys_block_id(index // KEYS_PER_BLOCK)
        element = read_input(state_values, block) or {}
        for option in element.get("selected_options") or []:
            value = option.get("value") if isinstance(option, dict) else None
            if not (isinstance(value, str) and value.isdigit() and int(value) < len(keys)):
                raise EditErrors({block: "Those arguments are not the call's."})
            kept.add(keys[int(value)])
    return StandingTerms(seconds=seconds, keys=tuple(key for key in keys if key in kept))


def _kept_text(grant: Grant) -> str:
    if not grant.keys:
        return "Any arguments"
    return "Kept equal: " + ", ".join(
        f"{key}={_value_text(grant.values[key])}" if key in grant.values else f"{key} (absent)"
        for key in grant.keys
    )


def _terms_context(grant: Grant, *extra: str) -> Block:
    """What the agent and the arguments are, as plain text apart from the bot's words."""
    lines = [f"Agent: {grant.agent}", _kept_text(grant), *extra]
    return {
        "type": "context",
        "elements": [verbatim(line, _NOTE_CHARS) for line in lines],
    }


def render_grant_note(
    kind: str, grant: Grant, *, actor: str | None = None, used_on: Approval | None = None
) -> Message:
    """The line in the thread of the card a grant was made on: made, used, or revoked."""
    if kind == "grant_created":
        who = " and ".join(user_markup(user) for user in grant.granted_by)
        until = date_markup(grant.expires_at) if grant.expires_at else "revoked"
        text = (
            f":repeat: {who} allowed later *{grant.tool_name}* calls from this agent for "
            f"{describe_span(grant.seconds)}, until {until}: standing approval `{grant.id}`. "
            "Revoke it in the bot's App Home."
        )
        extra: tuple[str, ...] = ()
    elif kind == "grant_used":
        text = f":repeat: Approved by standing approval `{grant.id}`: a *{grant.tool_name}* call."
        extra = ()
        if used_on is not None:
            extra = (f"Call: {used_on.tool_call_id} ({used_on.id})",)
    else:
        by = f" by {user_markup(actor)}" if actor else ""
        text = f":no_entry_sign: Standing approval `{grant.id}` revoked{by}."
        extra = ()
    return {"text": text, "blocks": [section(text), _terms_context(grant, *extra)]}


def render_grants_section(grants: Sequence[Grant]) -> list[Block]:
    """App Home's "Standing approvals": each active grant with a Revoke button (the grants
    the viewer may revoke); nothing when there are none."""
    if not grants:
        return []
    blocks: list[Block] = [{"type": "header", "text": plain("Standing approvals", 150)}]
    for grant in grants[:MAX_GRANTS_LISTED]:
        who = ", ".join(user_markup(user) for user in grant.granted_by)
        expires = date_markup(grant.expires_at) if grant.expires_at else "—"
        uses = f" · used {grant.uses}×" if grant.uses else ""
        text = f"*{grant.tool_name}* · granted by {who} · expires {expires}{uses} · `{grant.id}`"
        blocks.append(
            {
                "type": "section",
                "block_id": block_id("grant", grant.id),
                "text": mrkdwn(text),
                "accessory": {
                    "type": "button",
                    "action_id": REVOKE_GRANT_ACTION,
                    "text": plain("Revoke", 75),
                    "value": grant.id,
                    "style": "danger",
                    "confirm": {
                        "title": plain("Revoke it?", 100),
                        "text": plain(f"Later {grant.tool_name} calls will ask people again.", 300),
                        "confirm": plain("Revoke", 30),
                        "deny": plain("Keep", 30),
                        "style": "danger",
                    },
                },
            }
        )
        blocks.append(_terms_context(grant))
    if len(grants) > MAX_GRANTS_LISTED:
        blocks.append(context([f"… and {len(grants) - MAX_GRANTS_LISTED} more"]))
    return blocks
