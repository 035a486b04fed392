"""The webhook secret check, the same for Telegram and Zalo.

The header is compared as the bytes that came over the wire, in constant time: a header that
is missing, repeated, or holds any other bytes (non-ASCII, not UTF-8) is a mismatch, answered
401 by the caller, never an error.
"""

from __future__ import annotations

import hmac

from aiohttp import web


def secret_matches(request: web.Request, header: str, secret: bytes) -> bool:
    """Whether `request` carries exactly `secret` in `header`."""
    name = header.lower().encode("ascii")
    given = [value for key, value in request.raw_headers if key.lower() == name]
    return len(given) == 1 and hmac.compare_digest(given[0], secret)


def secret_given(request: web.Request, header: str) -> bool:
    """Whether `request` has the header at all (for the log line of a refusal)."""
    name = header.lower().encode("ascii")
    return any(key.lower() == name and value for key, value in request.raw_headers)
