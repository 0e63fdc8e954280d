"""Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}`.

One formula for both sides: the bot checks it on every request, the local Slack signs with it.
The headers alone are checked first (`signed_in_time`), before the body is read: a request
without a well-formed, fresh signature is refused unread.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping

__all__ = ["MAX_AGE", "sign", "signed_by_slack", "signed_in_time"]

#: Slack's window: a request older (or newer) than this is refused.
MAX_AGE = 300

#: `v0=` and a hex SHA-256
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


def sign(signing_secret: str, body: bytes, timestamp: int) -> str:
    """The `X-Slack-Signature` value Slack sends for `body` at `timestamp`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_in_time(headers: Mapping[str, str]) -> bool:
    """True when the headers carry a signature of the right form and a timestamp within the
    window: what can be told before reading the body."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    # a second of this era has 10 digits; longer ones are refused before `int` (which gives up
    # past 4,300 digits) or any arithmetic sees them
    if not (0 < len(timestamp) <= 12 and timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs(time.time() - int(timestamp)) > MAX_AGE:
        return False
    return _SIGNATURE.fullmatch(headers.get("X-Slack-Signature", "")) is not None


def signed_by_slack(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """True when the headers carry Slack's signature of these raw bytes, within the window."""
    if not signed_in_time(headers):
        return False
    expected = sign(secret, body, int(headers["X-Slack-Request-Timestamp"])).encode()
    return hmac.compare_digest(expected, headers.get("X-Slack-Signature", "").encode())
