"""A numbered feed of workspace changes that a page can long-poll or stream."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Change", "ChangeFeed"]


@dataclass(frozen=True)
class Change:
    """One change: ``seq`` counts from 1; ``kind`` is e.g. ``message.posted``."""

    seq: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "data": self.data}


class ChangeFeed:
    """Append-only list of changes; waiters wake on every publication."""

    def __init__(self) -> None:
        self._changes: list[Change] = []
        # Replaced on every publication, so a waiter only ever sees its own generation set.
        self._published = asyncio.Event()

    @property
    def last_seq(self) -> int:
        return len(self._changes)

    def publish(self, kind: str, **data: Any) -> Change:
        """Append a change and wake every waiter."""
        change = Change(seq=len(self._changes) + 1, kind=kind, data=data)
        self._changes.append(change)
        published, self._published = self._published, asyncio.Event()
        published.set()
        return change

    def since(self, seq: int) -> list[Change]:
        """Changes numbered above ``seq``, without waiting."""
        return self._changes[max(seq, 0) :]

    async def changes_since(self, seq: int, timeout: float) -> list[Change]:
        """Changes numbered above ``seq``; waits up to ``timeout`` seconds for the first one."""
        published = self._published
        pending = self.since(seq)
        if pending or timeout <= 0:
            return pending
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await published.wait()
        return self.since(seq)
