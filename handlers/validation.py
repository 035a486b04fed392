"""The handlers' door to the pure validators: Vietnam's local date, keyed citizen-ID hashing."""

from __future__ import annotations

from datetime import datetime

from conversations.local_time import VIETNAM, local_date
from conversations.validators import ErrorMessage, Value, hash_cccd, mask_cccd, validate

# "Not in the future" means by the calendar at the door: Vietnam's date (conversations/local_time.py).
__all__ = ["VIETNAM", "check", "hash_citizen_id", "local_date", "mask_citizen_id"]


def check(kind: str, text: str, now: datetime) -> tuple[Value, None] | tuple[None, ErrorMessage]:
    return validate(kind, text, local_date(now))


def mask_citizen_id(number: str) -> str:
    return mask_cccd(number)


def hash_citizen_id(number: str, secret_key: str) -> str:
    return hash_cccd(number, secret_key.encode("utf-8"))
