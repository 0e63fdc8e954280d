"""Measure 6 (`python -m bench peers`): resume latency against other ways of waiting.

The same submit → decide → resume loop, the same number of times with the same think times,
against: our bot (`/wait`, woken on commit); awaithumans 0.1.12 (its SDK long-polls a server
that re-reads its database every second); and a HumanLayer-style client reading our
`GET /v1/approvals/{id}` every 3 s. Every decision is an HTTP call to the system's own API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.awaithumans import Unavailable, find_server, open_awaithumans
from bench.loops import LoopPlan, run_loops
from bench.polling import polling_loop, waiting_loop
from bench.rig import open_rig
from bench.stats import Latency

__all__ = ["Peers", "measure_peers"]


@dataclass(frozen=True)
class Speedup:
    """How many times later the other system's agent resumed than ours."""

    p50: float
    p99: float


@dataclass(frozen=True)
class Peers:
    loops: int
    concurrency: int
    think_seconds: tuple[float, float]
    poll_interval: float
    ours_ms: Latency
    polling_ms: Latency
    awaithumans_ms: Latency | None
    #: why awaithumans was not measured, when it was not
    awaithumans_skipped: str | None
    speedup: dict[str, Speedup] = field(default_factory=dict)


def _speedup(theirs: Latency, ours: Latency) -> Speedup:
    return Speedup(p50=round(theirs.p50 / ours.p50, 1), p99=round(theirs.p99 / ours.p99, 1))


async def measure_peers(
    loops: int, concurrency: int, poll_interval: float, awaithumans: str | None
) -> Peers:
    """Run `loops` loops per system; `awaithumans` names its `awaithumans` script, if not found
    beside this Python or on PATH."""
    # think times span more than a polling period, so decisions land at every phase of it
    plan = LoopPlan(loops, concurrency, think_min=0.5, think_max=0.5 + max(poll_interval, 1.0))
    async with open_rig() as rig:
        ours = Latency.of_seconds(await run_loops(waiting_loop(rig), plan))
        polling = Latency.of_seconds(await run_loops(polling_loop(rig, poll_interval), plan))
    theirs: Latency | None = None
    skipped: str | None = None
    try:
        async with open_awaithumans(find_server(awaithumans)) as server:
            theirs = Latency.of_seconds(await run_loops(server.loop(), plan))
    except Unavailable as exc:
        skipped = str(exc)
    speedup = {"polling": _speedup(polling, ours)}
    if theirs is not None:
        speedup["awaithumans"] = _speedup(theirs, ours)
    return Peers(
        loops=loops,
        concurrency=concurrency,
        think_seconds=(plan.think_min, plan.think_max),
        poll_interval=poll_interval,
        ours_ms=ours,
        polling_ms=polling,
        awaithumans_ms=theirs,
        awaithumans_skipped=skipped,
        speedup=speedup,
    )
