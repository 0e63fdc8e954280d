"""Scripted failures for tests: queued per-method faults and a per-channel rate limit."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "FaultQueue", "RateLimiter"]

#: Slack's error code for each HTTP status a fault may carry
DEFAULT_ERRORS = {
    200: "internal_error",
    429: "ratelimited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "request_timeout",
}


@dataclass(frozen=True)
class Fault:
    """One scripted answer that replaces the method's own."""

    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    #: seconds to wait before answering (to exercise client timeouts)
    delay: float = 0.0
    #: a whole JSON body to answer instead of ``{"ok": false, "error": …}``
    body: dict[str, Any] | None = None
    #: no failure: the method does its work at once, and its own answer leaves after ``delay``
    #: (Slack posted the message, the client gave up waiting for the answer)
    late: bool = False

    def response(self) -> dict[str, Any]:
        if self.body is not None:
            return dict(self.body)
        return {"ok": False, "error": self.error or DEFAULT_ERRORS.get(self.status, "fatal_error")}

    def headers(self) -> dict[str, str]:
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        if self.status == 429:
            return {"Retry-After": "1"}
        return {}


@dataclass
class FaultQueue:
    """Faults waiting per method, served first in, first out."""

    _queued: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))

    def add(self, method: str, fault: Fault, times: int = 1) -> None:
        self._queued[method].extend([fault] * times)

    def take(self, method: str) -> Fault | None:
        queued = self._queued.get(method)
        return queued.popleft() if queued else None

    def pending(self, method: str | None = None) -> int:
        """How many faults are still queued (for one method, or for all)."""
        if method is not None:
            return len(self._queued.get(method, ()))
        return sum(len(q) for q in self._queued.values())

    def clear(self) -> None:
        self._queued.clear()


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token bucket per key: ``rate`` tokens a second, holding at most ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str, now: float) -> int | None:
        """Take a token; ``None`` when granted, else the whole seconds to wait (≥ 1)."""
        bucket = self._buckets.setdefault(key, _Bucket(tokens=float(self.burst), updated=now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))
