"""Web API rate limits, per method tier, on by default.

https://api.slack.com/apis/rate-limits: limits count per method, per workspace, per app, and
a limited call answers HTTP 429 ``{"ok": false, "error": "ratelimited"}`` with ``Retry-After``
in seconds. The tiers, as Slack words them:

* Tier 1, 1+ per minute: "A small amount of burst behavior is tolerated."
* Tier 2, 20+ per minute: "occasional bursts of more requests"
* Tier 3, 50+ per minute: "Sporadic bursts are welcome."
* Tier 4, 100+ per minute: "generous burst behavior"
* Special: ``chat.postMessage`` "generally allows posting one message per second per channel".

Each method (each channel for ``chat.postMessage``) gets a token bucket refilled at its
tier's rate and holding a minute's worth, so a burst of a minute's allowance passes at once.
A test that floods on purpose lifts them by name: ``ws.rate_limits.lift("chat.update")``, or
turns them all off: ``ws.rate_limits.enabled = False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.devslack.faults import RateLimiter

__all__ = ["METHOD_TIERS", "TIER_1", "TIER_2", "TIER_3", "TIER_4", "RateLimits", "Tier"]


@dataclass(frozen=True)
class Tier:
    """``per_minute`` calls a minute on average, up to ``burst`` at once."""

    name: str
    per_minute: float
    burst: int


TIER_1 = Tier("Tier 1", 1, 5)
TIER_2 = Tier("Tier 2", 20, 20)
TIER_3 = Tier("Tier 3", 50, 50)
TIER_4 = Tier("Tier 4", 100, 100)

#: each emulated method's tier, from its page under https://api.slack.com/methods
#: (``chat.postMessage`` is Special: limited per channel, see ``RateLimits``; ``auth.test`` and
#: ``chat.getPermalink`` are Special with no published figure, so they are not limited)
METHOD_TIERS: dict[str, Tier] = {
    "apps.connections.open": TIER_1,
    "chat.delete": TIER_3,
    "chat.postEphemeral": TIER_4,
    "chat.update": TIER_3,
    "conversations.history": TIER_3,
    "conversations.info": TIER_3,
    "conversations.join": TIER_3,
    "conversations.list": TIER_2,
    "conversations.members": TIER_4,
    "conversations.open": TIER_3,
    "conversations.replies": TIER_3,
    "reactions.add": TIER_3,
    "usergroups.users.list": TIER_2,
    "users.info": TIER_4,
    "views.open": TIER_4,
    "views.publish": TIER_4,
    "views.push": TIER_4,
    "views.update": TIER_4,
}

#: the method limited per channel rather than per workspace
PER_CHANNEL_METHOD = "chat.postMessage"


@dataclass
class RateLimits:
    """The workspace's rate limits: a bucket per tiered method, one per channel for posts.

    ``per_channel`` posts a second per channel with a ``burst`` of them at once (``None``
    turns the post limit off); ``enabled = False`` turns every limit off.
    """

    enabled: bool = True
    per_channel: float | None = 1.0
    burst: int = 3
    tiers: dict[str, Tier] = field(default_factory=lambda: dict(METHOD_TIERS))
    _methods: dict[str, RateLimiter] = field(default_factory=dict, init=False, repr=False)
    _posts: RateLimiter | None = field(default=None, init=False, repr=False)

    def lift(self, *methods: str) -> None:
        """No limit for these methods any more (a test that floods them on purpose)."""
        for method in methods:
            if method == PER_CHANNEL_METHOD:
                self.per_channel = None
            self.tiers.pop(method, None)
            self._methods.pop(method, None)

    def acquire(self, method: str, channel: str | None, now: float) -> int | None:
        """Count one call; ``None`` when it may go ahead, else the seconds to wait (≥ 1).

        ``channel`` is the post's channel id (``chat.postMessage`` only; ``None`` when the
        channel is unknown, which the method itself then refuses)."""
        if not self.enabled:
            return None
        if method == PER_CHANNEL_METHOD:
            return self._acquire_post(channel, now)
        tier = self.tiers.get(method)
        if tier is None:
            return None
        limiter = self._methods.get(method)
        if limiter is None or (limiter.rate, limiter.burst) != (tier.per_minute / 60, tier.burst):
            limiter = self._methods[method] = RateLimiter(tier.per_minute / 60, tier.burst)
        return limiter.acquire(method, now)

    def _acquire_post(self, channel: str | None, now: float) -> int | None:
        if self.per_channel is None or channel is None:
            return None
        limiter = self._posts
        if limiter is None or (limiter.rate, limiter.burst) != (self.per_channel, self.burst):
            limiter = self._posts = RateLimiter(self.per_channel, self.burst)
        return limiter.acquire(channel, now)
