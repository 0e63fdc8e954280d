"""Measure: what the routing file's conditions add to a submission.

`Routing.route` is timed in this process on a file of `RULES` rules for one tool, each with a
CEL `when`; the call matches only the last, so every submission evaluates them all. The same
calls are timed against the same rules without `when`; the difference is what conditions add.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.stats import Latency
from bot.models import ApprovalRequest
from bot.policy import Routing

__all__ = ["PolicyCost", "measure_policy"]

#: conditions evaluated for each submission
RULES = 10


@dataclass(frozen=True)
class PolicyCost:
    calls: int
    rules: int
    #: `route()` with every rule's `when` evaluated, and with no `when` at all
    with_conditions_ms: Latency
    without_conditions_ms: Latency
    #: the difference at p99: what conditions add to a submission
    added_p99_ms: float


def _routing(conditions: bool) -> Routing:
    rules = [
        {
            "name": f"band {n}",
            "tools": ["transfer_funds"],
            **(
                {"when": f"args.amount > {1000 * (RULES - n)} && args.currency == 'EUR'"}
                if conditions
                else {"tools": ["no_such_tool"]}
            ),
            "approvers": ["U0FINANCE"],
        }
        for n in range(RULES - 1)
    ]
    rules.append({"tools": ["transfer_funds"], "approvers": ["U0ALICE"]})
    return Routing.model_validate({"default_channel": "C0OPS", "rules": rules})


def _time(routing: Routing, requests: list[ApprovalRequest]) -> Latency:
    seconds = []
    for request in requests:
        started = time.perf_counter()
        routing.route(request)
        seconds.append(time.perf_counter() - started)
    return Latency.of_seconds(seconds)


async def measure_policy(calls: int) -> PolicyCost:
    """Route `calls` submissions that reach the last rule, with and without conditions."""
    requests = [
        ApprovalRequest.model_validate(
            {
                "toolName": "transfer_funds",
                "args": {"amount": n % 1000, "currency": "EUR", "to": f"ACME-{n}"},
                "requester": {"agent": "billing-bot", "runId": f"run-{n}"},
            }
        )
        for n in range(calls)
    ]
    with_conditions, without = _routing(True), _routing(False)
    _time(with_conditions, requests[:100])  # warm up both
    _time(without, requests[:100])
    timed = _time(with_conditions, requests)
    plain = _time(without, requests)
    return PolicyCost(
        calls=calls,
        rules=RULES,
        with_conditions_ms=timed,
        without_conditions_ms=plain,
        added_p99_ms=round(max(0.0, timed.p99 - plain.p99), 4),
    )
