"""Signing requests as Slack does (the formula lives in `bot.slack.signature`)."""

from __future__ import annotations

import time

from bot.slack.signature import sign

__all__ = ["sign", "signed_headers"]


def signed_headers(
    signing_secret: str,
    body: bytes,
    timestamp: int | None = None,
    *,
    content_type: str | None = None,
) -> dict[str, str]:
    """Headers for a signed request; the content type is guessed from the body when not given."""
    ts = int(time.time()) if timestamp is None else timestamp
    if content_type is None:
        is_json = body.lstrip()[:1] in (b"{", b"[")
        content_type = "application/json" if is_json else "application/x-www-form-urlencoded"
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign(signing_secret, body, ts),
    }
