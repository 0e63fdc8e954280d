"""The edit modal: the arguments as typed inputs plus a comment, and the submission read back
and checked against the tool's JSON Schema.

The check here is the quick one (`ArgsSchema.errors_now`, a few milliseconds on the event loop)
so each error lands on its input; when it cannot finish that fast the service checks in full,
off the loop, and `edit_errors` puts its refusal on the modal the same way.
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

__all__ = ["EditErrors", "EditResult", "edit_errors", "parse_edit_submission", "render_edit_modal"]


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
                errors[item.block_id] = clip(str(exc), 150)
                continue
            args[item.name] = value
        elif present and (current is None or current == ""):
            args[item.name] = current
        elif item.required:
            errors[item.block_id] = "This field is required."
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
    shows in the edit modal: on that argument's input, else on the first input."""
    shown, _ = plan_inputs(approval)
    editable = {item.name: item.block_id for item in shown if item.kind != "kept"}
    name = path.removeprefix("approvedArgs").removeprefix(".").split(".")[0]
    return EditErrors({editable.get(name, _fallback(editable)): clip(message, 150)})


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
        where = "/".join(str(part) for part in list(error.absolute_path)[1:])
        errors.setdefault(block, clip(f"{where}: {error.message}" if where else error.message, 150))
    if errors:
        raise EditErrors(errors)


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
