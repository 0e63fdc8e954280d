"""Waiting for one call's decision inside a framework's own callback, and withdrawing its card.

The Claude Agent SDK and Strands adapters wait inside a callback the framework awaits: a wait
may end by the adapter's `timeout`, or by the framework cancelling the callback (Claude Code
withdrawing a permission request, a run being stopped). Either way nobody is waiting for the
card any more, so it is withdrawn (`cancelled`) and nobody approves a call that will not run;
a decision that won the race to the card still counts. Imports no framework.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from bot.models import Approval, Decision
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import ApprovalError, ApprovalTimeout
from bot.sdk.wire import ToolCall, decision_of

__all__ = ["WITHDRAW_TIMEOUT", "decide_or_withdraw"]

#: seconds spent withdrawing a card nobody waits for any more
WITHDRAW_TIMEOUT = 5.0


async def decide_or_withdraw(
    client: ApprovalClient,
    tool_name: str,
    args: Mapping[str, Any],
    fields: Mapping[str, Any],
    *,
    timeout: float | None,
    cancelled_by: str,
) -> Decision | None:
    """The decision on the call; None when nobody decided within `timeout` (card withdrawn).

    `fields` must hold the call's `tool_call_id`. A wait cancelled from outside withdraws the
    card too, then lets the cancellation through. Other `ApprovalError`s are raised.
    """
    try:
        return await client.request(tool_name, args, timeout=timeout, **fields)
    except ApprovalTimeout as exc:
        waited = timeout if timeout is not None else client.timeout or 0.0
        reason = f"{cancelled_by} stopped waiting after {waited:g}s"
        return await _withdraw(client, exc.approval, reason, cancelled_by)
    except asyncio.CancelledError:
        # its own task, so the framework cancelling this one again (closing its run) cannot
        # cut the withdrawal short
        withdrawal = asyncio.create_task(
            _withdraw_call(client, tool_name, args, fields, cancelled_by)
        )
        _withdrawals.add(withdrawal)
        withdrawal.add_done_callback(_withdrawals.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(withdrawal)
        raise


#: withdrawals under way, kept until done (the event loop holds only weak references to tasks)
_withdrawals: set[asyncio.Task[None]] = set()


async def _withdraw_call(
    client: ApprovalClient,
    tool_name: str,
    args: Mapping[str, Any],
    fields: Mapping[str, Any],
    cancelled_by: str,
) -> None:
    """Withdraw the card of a call nobody waits for any more, if it is still pending."""
    with contextlib.suppress(ApprovalError, TimeoutError):
        async with asyncio.timeout(WITHDRAW_TIMEOUT):
            # the same toolCallId answers with the same record: no second card
            approval = await client.submit(tool_name, args, **fields)
            if approval.is_pending:
                reason = f"{cancelled_by} stopped waiting"
                await client.cancel(approval.id, reason, cancelled_by=cancelled_by)


async def _withdraw(
    client: ApprovalClient, approval: Approval, reason: str, cancelled_by: str
) -> Decision | None:
    """Withdraw the card; a decision that came meanwhile is returned, if of this call."""
    try:
        async with asyncio.timeout(WITHDRAW_TIMEOUT):
            await client.cancel(approval.id, reason, cancelled_by=cancelled_by)
    except ApprovalError as exc:
        if exc.status != 409:
            raise
        decided = ToolCall.of(approval).check(await client.get(approval.id))
        return None if decided.is_pending else decision_of(decided)
    except TimeoutError:
        pass  # still not run: the card stays until it expires
    return None
