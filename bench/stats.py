"""Latency summaries: nearest-rank percentiles over samples kept in milliseconds."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Latency", "ms", "percentile"]


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile: the smallest sample with `pct` % of samples at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(value: float) -> str:
    """`3.51 ms`, `41.2 ms`, `1,543 ms`: three figures or so, whatever the size."""
    if value >= 100:
        return f"{value:,.0f} ms"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


@dataclass(frozen=True)
class Latency:
    """p50, p99 and max in ms of `n` samples; the samples stay here for the plot, not the JSON."""

    n: int
    p50: float
    p99: float
    max: float
    samples: tuple[float, ...] = field(default=(), repr=False, metadata={"json": False})

    @classmethod
    def of_seconds(cls, seconds: Iterable[float]) -> Latency:
        """Summarise samples given in seconds."""
        return cls.of_ms([s * 1000 for s in seconds])

    @classmethod
    def of_ms(cls, ms: Iterable[float]) -> Latency:
        """Summarise samples given in milliseconds."""
        values = list(ms)
        top = max(values) if values else math.nan
        return cls(
            n=len(values),
            p50=round(percentile(values, 50), 2),
            p99=round(percentile(values, 99), 2),
            max=round(top, 2),
            samples=tuple(values),
        )
