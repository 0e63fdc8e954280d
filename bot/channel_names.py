"""How the command line names a channel: `#name` when its name is known, else its id.

A request names its channel either way (`#ops`, or `C0OPS` from `APPROVAL_CHANNEL` or the
routing file), and Slack answers a post with the channel's id, so the store holds both kinds:
printed as they are, `approval-bot demo` and `list` showed `C0OPS` for some requests and `#ops`
for others. A record that named `#ops` and whose card Slack posted in `C0OPS` says that `C0OPS`
is `#ops`; `known_names` gathers those pairs, and `channel_label` prints every channel one way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.models import Approval

__all__ = ["channel_label", "known_names"]


def known_names(approvals: Iterable[Approval]) -> dict[str, str]:
    """Channel id → `#name`, learnt from approvals whose request named the channel and whose
    card Slack posted there (a card moved to a fallback channel teaches nothing)."""
    names: dict[str, str] = {}
    for approval in approvals:
        posted_in, asked = approval.slack.channel, approval.channel
        if posted_in and asked.startswith("#") and approval.slack.error is None:
            names.setdefault(posted_in, asked)
    return names


def channel_label(approval: Approval, names: Mapping[str, str] | None = None) -> str:
    """Where the approval's card is, or is going: `#name` when the name is known (asked for by
    name, learnt from this record, or in `names`), else the channel id."""
    where = approval.slack.channel or approval.channel
    if where.startswith("#"):
        return where
    known = {**known_names([approval]), **(names or {})}
    return known.get(where, where)
