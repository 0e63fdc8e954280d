"""The edit modal: the arguments as typed inputs plus a comment, and the submission read back
and checked against the tool's JSON Schema.

The check here is the quick one (`ArgsSchema.errors_now`, a few milliseconds on the event loop)
so each error lands on its input; when it cannot finish that fast the service checks in full,
off the loop, and `edit_errors` puts its refusal on the modal the same way. Either way the
message is said in a person's words (`words`): "Must look like 1.2.3.", not the checker's
"'latest' does not match '^\\d+\\.\\d+\\.\\d+$'".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError

from bot.models import Approval
from bot.schemas import check_plain_json, compile_schema
from bot.slack.cards.ids import COMMENT_BLOCK, EDIT_MODAL, private_metadata
from bot.slack.cards.inputs import KEPT_NOTE, input_block, plan_inputs, read_input, read_value
from bot.slack.cards.text import Block, View, clip, plain, text_input
from bot.slack.cards.words import (
    explain_error,
    explain_message,
    full_stop,
    required_name,
    sentence,
)

__all__ = ["EditErrors", "EditResult", "edit_errors", "parse_edit_submission", "render_edit_modal"]

#: Slack shows an input's error on one or two lines under it
ERROR_CHARS = 150
REQUIRED = "This field is required."


class EditErrors(ValueError):
    """Input a modal must refuse: one message per input, keyed by block id.

    Answer Slack with `ack(response_action="errors", errors=exc.errors)`.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class EditResult:
    """What an edit modal submitted: the full arguments to approve, and the comment."""

    args: dict[str, Any]
    comment: str | None = None


def render_edit_modal(approval: Approval) -> View:
    """The edit modal, prefilled with the current arguments, plus an optional comment."""
    shown, overflow = plan_inputs(approval)
    current = approval.current_args
    intro = f"Approve {approval.tool_name} with these arguments. Each change is checked first."
    blocks: list[Block] = [{"type": "section", "text": plain(intro, 3000)}]
    for item in shown:
        if item.kind != "kept":
            blocks.append(input_block(item))
        elif item.name in current:
            note = f"{clip(item.name, 60)}: {KEPT_NOTE}"
            blocks.append({"type": "context", "elements": [plain(note, 2000)]})
    listed = [clip(item.name, 40) for item in overflow if item.name in current]
    if listed:
        note = f"{len(listed)} more arguments kept as is (too many to edit here): "
        blocks.append({"type": "context", "elements": [plain(note + ", ".join(listed), 2000)]})
    blocks.append(text_input(COMMENT_BLOCK, "Comment", "Shown on the card and to the agent."))
    return {
        "type": "modal",
        "callback_id": EDIT_MODAL,
        # the version the editor saw: an edit of arguments changed since counts for nothing
        "private_metadata": private_metadata(approval.id, v=approval.args_version),
        "title": plain("Edit arguments", 24),
        "submit": plain("Approve edits", 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }


def parse_edit_submission(
    approval: Approval, state_values: Mapping[str, Mapping[str, Any]]
) -> EditResult:
    """Typed arguments from an edit modal's `view.state.values`; raises `EditErrors`."""
    shown, overflow = plan_inputs(approval)
    args: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in [*shown, *overflow]:
        present = item.name in approval.current_args
        current = approval.current_args.get(item.name)
        element = read_input(state_values, item.block_id)
        if item.kind == "kept" or element is None:
            if present:
                args[item.name] = current
            continue
        try:
            filled, value = read_value(item, element)
        except ValueError as exc:
            errors[item.block_id] = str(exc)
            continue
        if filled:
            try:  # typed JSON may nest or hold what no store keeps (a lone surrogate)
                check_plain_json({item.name: value})
            except ValueError as exc:
                errors[item.block_id] = clip(sentence(str(exc)), ERROR_CHARS)
                continue
            args[item.name] = value
        elif present and (current is None or current == ""):
            args[item.name] = current
        elif item.required:
            errors[item.block_id] = REQUIRED
    if errors:
        raise EditErrors(errors)
    if approval.args_schema is not None:
        editable = {item.name: item.block_id for item in shown if item.kind != "kept"}
        _validate(approval.args_schema, args, editable)
    comment = read_input(state_values, COMMENT_BLOCK) or {}
    text = (comment.get("value") or "").strip()
    return EditResult(args=args, comment=text or None)


def edit_errors(approval: Approval, path: str, message: str) -> EditErrors:
    """Where the service's refusal of an edit (`InvalidEdit`, `path` "approvedArgs.<name>…")
    shows in the edit modal: on that argument's input, else on the first input; in words."""
    shown, _ = plan_inputs(approval)
    editable = {item.name: item.block_id for item in shown if item.kind != "kept"}
    parts = path.removeprefix("approvedArgs").removeprefix(".").split(".")
    name, below = parts[0], [int(part) if part.isdigit() else part for part in parts[1:]]
    missing = required_name(message) if not name else None
    if missing in editable:
        return EditErrors({editable[missing]: REQUIRED})
    phrase = explain_message(message, _schema_at(approval.args_schema, [name, *below]))
    if name in editable:
        return EditErrors({editable[name]: _placed(phrase, below)})
    where: list[str | int] = [name, *below] if name else []
    return EditErrors({_fallback(editable): _placed(phrase, where, root=not where)})


def _fallback(editable: dict[str, str]) -> str:
    return next(iter(editable.values()), COMMENT_BLOCK)


def _validate(schema: dict[str, Any], args: dict[str, Any], editable: dict[str, str]) -> None:
    try:
        found = compile_schema(schema).errors_now(args, limit=50)
    except ValueError:
        return  # a schema stored before today's rules: the service refuses it, with the reason
    if found is None:
        return  # not quick: the service checks it off the loop, `edit_errors` shows the result
    fallback = _fallback(editable)
    errors: dict[str, str] = {}
    for error in found:
        name = _property_of(error)
        block = editable.get(name, fallback) if name is not None else fallback
        errors.setdefault(
            block, _message(error, on_own_input=block != fallback or name in editable)
        )
    if errors:
        raise EditErrors(errors)


def _message(error: ValidationError, *, on_own_input: bool) -> str:
    """The error as the input showing it says it: the input is labelled with the argument's
    name, so its own errors leave the name out; errors deeper in the value say where."""
    path: list[str | int] = list(error.absolute_path)
    if not path and error.validator == "required" and on_own_input:
        return REQUIRED
    phrase = explain_error(error)
    if not path:
        return _placed(phrase, [], root=True)
    return _placed(phrase, path[1:] if on_own_input else path)


def _placed(phrase: str, where: list[str | int], *, root: bool = False) -> str:
    """`Must be text.`, or `Item 2: must be text.` deeper in the value, or `All arguments: …`
    for a rule about the arguments as a whole."""
    if root and phrase.startswith(("must ", "does ", "fits ", "has ", "is ")):
        return clip(full_stop(f"All arguments: {phrase}"), ERROR_CHARS)
    if not where:
        return clip(sentence(phrase), ERROR_CHARS)
    steps = [f"item {step + 1}" if isinstance(step, int) else clip(step, 40) for step in where]
    located = " › ".join(steps)
    if located.startswith("item "):
        located = "I" + located[1:]
    return clip(full_stop(f"{located}: {phrase}"), ERROR_CHARS)


def _schema_at(schema: Mapping[str, Any] | None, path: list[str | int]) -> dict[str, Any]:
    """The schema of the value at `path`, followed through `properties` and `items` only
    (enough to read a limit the checker's message leaves out); {} when it cannot be told."""
    node: Any = schema or {}
    for step in path:
        if not isinstance(node, dict):
            return {}
        if isinstance(step, int):
            node = node.get("items")
        else:
            properties = node.get("properties")
            node = properties.get(step) if isinstance(properties, dict) else None
    return node if isinstance(node, dict) else {}


def _property_of(error: ValidationError) -> str | None:
    """The top-level argument an error is about, when it can be told."""
    path = list(error.absolute_path)
    if path:
        return path[0] if isinstance(path[0], str) else None
    wanted, instance = error.validator_value, error.instance
    if error.validator == "required" and isinstance(wanted, list) and isinstance(instance, dict):
        missing = [name for name in wanted if name not in instance]
        return missing[0] if missing and isinstance(missing[0], str) else None
    return None
