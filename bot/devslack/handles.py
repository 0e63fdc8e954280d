"""The short-lived handles Slack gives an app with each interaction: triggers and response URLs.

* A ``trigger_id`` opens one modal (``views.open``, or ``views.push`` from inside a modal)
  within 3 seconds of the interaction: an id never issued answers ``invalid_trigger_id``,
  a late one ``expired_trigger_id``, a second use ``exchanged_trigger_id``
  (https://api.slack.com/methods/views.open, https://api.slack.com/methods/views.push).
* A ``response_url`` takes "five times within thirty minutes"
  (https://api.slack.com/interactivity/handling#message_responses). Slack documents no
  answer past that; the emulator answers HTTP 404 ``expired_url`` after 30 minutes (or for a
  URL it never issued) and 404 ``used_url`` after the fifth post.
"""

from __future__ import annotations

from bot.devslack.errors import ApiFailure
from bot.devslack.model import ResponseTarget, Trigger

__all__ = [
    "RESPONSE_URL_TTL",
    "RESPONSE_URL_USES",
    "TRIGGER_TTL",
    "exchange_trigger",
    "use_response_target",
]

#: seconds a trigger_id stays good after its interaction was sent
TRIGGER_TTL = 3.0
#: posts one response_url takes, and the seconds it lives
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0


def exchange_trigger(
    triggers: dict[str, Trigger], trigger_id: str, method: str, now: float, ttl: float | None
) -> Trigger:
    """Spend a trigger on ``method``, or refuse it as Slack does; ``ttl=None`` never expires."""
    trigger = triggers.get(trigger_id)
    if trigger is None:
        raise ApiFailure("invalid_trigger_id")
    if trigger.used_by is not None:
        raise ApiFailure("exchanged_trigger_id")
    if ttl is not None and now - trigger.created_at > ttl:
        raise ApiFailure("expired_trigger_id")
    trigger.used_by = method
    return trigger


def use_response_target(
    targets: dict[str, ResponseTarget], target_id: str, now: float
) -> ResponseTarget:
    """Count one post to a response_url, or refuse it: unknown or older than 30 minutes is
    ``expired_url``, a sixth post ``used_url``."""
    target = targets.get(target_id)
    if target is None or now - target.created_at > RESPONSE_URL_TTL:
        raise ApiFailure("expired_url")
    if target.uses >= RESPONSE_URL_USES:
        raise ApiFailure("used_url")
    target.uses += 1
    return target
