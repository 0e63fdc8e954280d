"""Slack's request signing: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["sign", "signed_headers"]


def sign(signing_secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Slack-Signature`` value Slack would send for ``body`` at ``timestamp``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


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
