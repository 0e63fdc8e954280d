"""The identifiers Slack sends back: action ids, modal callback ids, block ids and the small
JSON strings carried in button values and `private_metadata`.

The Slack listeners and the app manifest test use these exact strings.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeGuard

__all__ = [
    "ACTION_IDS",
    "ALLOW_ACTION",
    "ALLOW_MODAL",
    "APPROVE_ACTION",
    "ARGS_MODAL",
    "ARGS_PAGE_ACTION",
    "BATCH_APPROVE_ACTION",
    "BATCH_REJECT_ACTION",
    "BATCH_REJECT_MODAL",
    "CALLBACK_IDS",
    "COMMENT_BLOCK",
    "EDIT_ACTION",
    "EDIT_MODAL",
    "FEEDBACK_ACTION",
    "FEEDBACK_BLOCK",
    "FEEDBACK_MODAL",
    "INPUT_ACTION",
    "NOTICE_MODAL",
    "PREVIEW_MODAL",
    "PREVIEW_PAGE_ACTION",
    "REASON_BLOCK",
    "REJECT_ACTION",
    "REJECT_MODAL",
    "REVOKE_GRANT_ACTION",
    "VIEW_ARGS_ACTION",
    "VIEW_PREVIEW_ACTION",
    "Unreadable",
    "args_page_value",
    "block_id",
    "is_user_id",
    "private_metadata",
    "read_approval_id",
    "read_args_page",
    "read_click",
    "read_modal_vote",
    "read_private_metadata",
    "read_text",
    "read_user",
    "read_vote",
    "vote_value",
]

#: button on the card: approve the arguments shown (the version its value names)
APPROVE_ACTION = "approve"
#: button on the card: open the edit modal
EDIT_ACTION = "edit"
#: button on the card: open the reject modal
REJECT_ACTION = "reject"
#: button on the card: open the feedback modal
FEEDBACK_ACTION = "feedback"
#: button on the card: open the full-arguments modal (only when the card cut them)
VIEW_ARGS_ACTION = "view_args"
#: previous/next buttons inside the full-arguments modal
ARGS_PAGE_ACTION = "args_page"
#: button beside the decisions: open the paged modal of the request's preview (only when the
#: card cut it)
VIEW_PREVIEW_ACTION = "view_preview"
#: previous/next buttons inside the preview modal (values as `args_page_value`)
PREVIEW_PAGE_ACTION = "preview_page"
#: button beside Approve where the rule allows standing approvals: open the allow modal
ALLOW_ACTION = "approve_allow"
#: button in App Home beside an active standing approval (value: the grant id)
REVOKE_GRANT_ACTION = "revoke_grant"
#: buttons of a batch summary (thread or App Home): "Approve all N", and "Reject all N…"
#: which opens `BATCH_REJECT_MODAL` (value: the id of the drawing, `batch_value`)
BATCH_APPROVE_ACTION = "batch_approve"
BATCH_REJECT_ACTION = "batch_reject"
ACTION_IDS = (
    APPROVE_ACTION,
    EDIT_ACTION,
    REJECT_ACTION,
    FEEDBACK_ACTION,
    VIEW_ARGS_ACTION,
    ARGS_PAGE_ACTION,
    VIEW_PREVIEW_ACTION,
    PREVIEW_PAGE_ACTION,
    ALLOW_ACTION,
    REVOKE_GRANT_ACTION,
    BATCH_APPROVE_ACTION,
    BATCH_REJECT_ACTION,
)

EDIT_MODAL = "edit_modal"
REJECT_MODAL = "reject_modal"
FEEDBACK_MODAL = "feedback_modal"
ARGS_MODAL = "args_modal"
#: "Approve & allow…": how long, and which arguments must stay equal
ALLOW_MODAL = "allow_modal"
#: "Reject all N…": the reason, then every approval of the drawing is rejected
BATCH_REJECT_MODAL = "batch_reject_modal"
#: an informational modal with no submit button; nothing to listen for
NOTICE_MODAL = "notice_modal"
#: the paged preview; like a notice it has no submit button, so nothing to listen for
PREVIEW_MODAL = "preview_modal"
CALLBACK_IDS = (
    EDIT_MODAL,
    REJECT_MODAL,
    FEEDBACK_MODAL,
    ARGS_MODAL,
    ALLOW_MODAL,
    BATCH_REJECT_MODAL,
)

#: input blocks of the reject, feedback and edit modals
REASON_BLOCK = "reason"
FEEDBACK_BLOCK = "feedback"
COMMENT_BLOCK = "comment"
#: the action_id of every input element in our modals
INPUT_ACTION = "value"


def block_id(kind: str, approval_id: str) -> str:
    """`kind:approval_id`, within Slack's 255 characters."""
    return f"{kind}:{approval_id}"[:255]


def private_metadata(approval_id: str, **extra: Any) -> str:
    """The JSON a modal carries back to us: `{"id": approval_id, ...}`."""
    return json.dumps({"id": approval_id, **extra}, separators=(",", ":"))


def read_private_metadata(text: object) -> dict[str, Any]:
    """Decode `private_metadata`; raises ValueError when it is not ours."""
    if not isinstance(text, str):
        raise ValueError("private_metadata is not a string")
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("private_metadata is nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ValueError("private_metadata carries no approval id")
    return data


def read_approval_id(text: object) -> str:
    """The approval id inside a modal's `private_metadata`."""
    approval_id: str = read_private_metadata(text)["id"]
    return approval_id


def args_page_value(approval_id: str, page: int) -> str:
    """The value of an `args_page` (or `preview_page`) button."""
    return private_metadata(approval_id, page=page)


def read_args_page(value: object) -> tuple[str, int]:
    """`(approval_id, page)` from an `args_page` (or `preview_page`) button value."""
    data = read_private_metadata(value)
    page = data.get("page")
    if not isinstance(page, int) or isinstance(page, bool):
        raise ValueError("args_page value carries no page")
    return data["id"], page


# -- what a payload must carry before anything acts on it -----------------------------------

#: a Slack user id (`W…` on Enterprise Grid); nobody else can decide
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,254}")


class Unreadable(ValueError):
    """A payload without what its listener needs: answered 400, never acted on."""


def is_user_id(value: object) -> TypeGuard[str]:
    """True for a Slack user id (`U0ALICE`), false for anything else a payload may carry."""
    return isinstance(value, str) and _USER_ID.fullmatch(value) is not None


def read_user(body: dict[str, Any]) -> str:
    """The id of the person who acted (`user.id`), or `Unreadable`."""
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not is_user_id(user_id):
        raise Unreadable("the payload names no Slack user")
    return user_id


def read_text(body: dict[str, Any], key: str) -> str:
    """A non-empty string field (`trigger_id`…), or `Unreadable`."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise Unreadable(f"the payload has no {key}")
    return value


def read_click(body: dict[str, Any]) -> tuple[str, str]:
    """(user, button value) of a `block_actions` click, or `Unreadable`."""
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    value = action.get("value") if isinstance(action, dict) else None
    if not isinstance(value, str):
        raise Unreadable("the click carries no button value")
    return read_user(body), value


# -- votes: every decision names the version of the arguments its voter saw ----------------

#: the value of a button on cards posted before votes named a version: the bare approval id
_LEGACY_VALUE = re.compile(r"apr_[A-Za-z0-9_-]{1,251}")


def vote_value(approval_id: str, version: str) -> str:
    """The value of a decision button: `{"id":"apr_…","v":"<args version>"}`.

    The version (`Approval.args_version`) comes back with the click, so a click on a card
    showing arguments that were edited since counts for nothing.
    """
    return private_metadata(approval_id, v=version)


def read_vote(value: object) -> tuple[str, str | None]:
    """`(approval_id, version)` from a button value; a bare `apr_…` id (a card posted before
    votes named a version) gives version None. Anything else is `Unreadable`."""
    if isinstance(value, str) and _LEGACY_VALUE.fullmatch(value):
        return value, None
    try:
        data = read_private_metadata(value)
    except ValueError as exc:
        raise Unreadable(f"not a vote: {exc}") from None
    version = data.get("v")
    if not isinstance(version, str):
        raise Unreadable("the vote names no arguments version")
    return data["id"], version


def read_modal_vote(text: object) -> tuple[str, str | None]:
    """`(approval_id, version)` from the `private_metadata` of an edit, reject or feedback
    modal. Modals opened before votes named a version give None (edit modals then carried
    the same value as `fingerprint`)."""
    try:
        data = read_private_metadata(text)
    except ValueError as exc:
        raise Unreadable(str(exc)) from None
    version = data.get("v", data.get("fingerprint"))
    if version is not None and not isinstance(version, str):
        raise Unreadable("private_metadata names no arguments version")
    return data["id"], version
