"""The figures the bot promises, checked against a results dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["TARGETS", "Target", "check_targets"]


@dataclass(frozen=True)
class Target:
    """`path` into the results must be at most (or at least) `limit`."""

    name: str
    path: tuple[str, ...]
    limit: float
    at_most: bool
    unit: str

    @property
    def text(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.limit:g}{self.unit}"

    def value(self, results: dict[str, Any]) -> float | None:
        """The figure, or None when that measure was not run."""
        node: Any = results
        for key in self.path:
            if not isinstance(node, dict) or node.get(key) is None:
                return None
            node = node[key]
        return float(node)

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit


TARGETS = (
    Target("click → agent woken, p50", ("wake", "click_ms", "p50"), 3, True, " ms"),
    Target("click → agent woken, p99", ("wake", "click_ms", "p99"), 8, True, " ms"),
    Target("idle waiters: bot CPU", ("idle", "cpu_percent"), 1, True, " % of a core"),
    Target("idle waiters: bot RSS", ("idle", "rss_mb"), 150, True, " MB"),
    Target("Slack ack, p99", ("ack", "ms", "p99"), 50, True, " ms"),
    Target("burst of clicks: decisions a second", ("burst", "decisions_per_s"), 800, False, "/s"),
    Target("burst of clicks: click → agent, p99", ("burst", "click_ms", "p99"), 25, True, " ms"),
    Target("burst of clicks: bot CPU a click", ("burst", "cpu_ms_per_click"), 1, True, " ms"),
    Target("answered clicks lost to kill -9", ("kills", "lost"), 0, True, ""),
    Target(
        "chat.update calls in the busiest minute of a burst",
        ("rewrites", "busiest_minute"),
        50,
        True,
        "",
    ),
    Target(
        "routing conditions added per submission, p99",
        ("policy", "added_p99_ms"),
        0.2,
        True,
        " ms",
    ),
    Target("submissions into store + outbox", ("submissions", "per_s"), 500, False, "/s"),
    Target(
        "submissions, 10,000 in flight",
        ("submissions", "all_at_once_per_s"),
        3000,
        False,
        "/s",
    ),
    Target("click on A → agent on C, p99", ("replicas", "ms", "p99"), 50, True, " ms"),
    Target(
        "clicks spread over replicas → agent on C, p99",
        ("replicas_load", "ms", "p99"),
        20,
        True,
        " ms",
    ),
    Target("/healthz under hostile load, p99", ("hostile", "health_ms", "p99"), 50, True, " ms"),
    Target(
        "resume vs awaithumans, p50", ("peers", "speedup", "awaithumans", "p50"), 50, False, "×"
    ),
    Target(
        "resume vs awaithumans, p99", ("peers", "speedup", "awaithumans", "p99"), 50, False, "×"
    ),
)


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with a figure: name, value, target and whether it is met."""
    checked = []
    for target in TARGETS:
        value = target.value(results)
        if value is not None:
            checked.append(
                {
                    "name": target.name,
                    "path": ".".join(target.path),
                    "value": value,
                    "target": target.text,
                    "met": target.met(value),
                }
            )
    return checked
