"""Submit → decide → resume loops, the same for every system compared in `peers`.

An agent submits and starts waiting in its system's own way; a person decides after a think
time drawn evenly over more than one polling period (so a decision lands at any phase of a
poller's cycle); the resume latency is the time from sending the decision to the agent holding
it. Loops run a few at a time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Loop", "LoopPlan", "run_loops"]

#: one loop: given its index and think time, the seconds from decision sent to agent resumed
Loop = Callable[[int, float], Awaitable[float]]


@dataclass(frozen=True)
class LoopPlan:
    """How many loops, how many at once, and the think times (seconds, drawn evenly)."""

    loops: int
    concurrency: int
    think_min: float
    think_max: float
    seed: int = 7

    def think_times(self) -> list[float]:
        """The same draws for every system, so each faces the same decisions."""
        draw = random.Random(self.seed)
        return [draw.uniform(self.think_min, self.think_max) for _ in range(self.loops)]


async def run_loops(loop: Loop, plan: LoopPlan) -> list[float]:
    """Run `plan.loops` loops, `plan.concurrency` at a time; their resume latencies (s)."""
    gate = asyncio.Semaphore(plan.concurrency)

    async def one(index: int, think: float) -> float:
        async with gate:
            return await loop(index, think)

    return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(plan.think_times()))))
