"""Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}`.

One formula for both sides: the bot checks it on every request, the local Slack signs with it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

__all__ = ["MAX_AGE", "sign", "signed_by_slack"]

#: Slack's window: a request older (or newer) than this is refused.
MAX_AGE = 300


def sign(signing_secret: str, body: bytes, timestamp: int) -> str:
    """The `X-Slack-Signature` value Slack sends for `body` at `timestamp`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_by_slack(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """True when the headers carry Slack's signature of these raw bytes, within the window."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > MAX_AGE:
        return False
    expected = sign(secret, body, int(timestamp)).encode()
    return hmac.compare_digest(expected, headers.get("X-Slack-Signature", "").encode())
