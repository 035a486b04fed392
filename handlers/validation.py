"""The handlers' door to the pure validators: Vietnam's local date, keyed citizen-ID hashing."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from conversations.validators import ErrorMessage, Value, hash_cccd, mask_cccd, validate

# Vietnam keeps UTC+7 all year; "not in the future" means by the calendar at the door.
VIETNAM = timezone(timedelta(hours=7), "ICT")


def local_date(now: datetime) -> date:
    return now.astimezone(VIETNAM).date()


def check(kind: str, text: str, now: datetime) -> tuple[Value, None] | tuple[None, ErrorMessage]:
    return validate(kind, text, local_date(now))


def mask_citizen_id(number: str) -> str:
    return mask_cccd(number)


def hash_citizen_id(number: str, secret_key: str) -> str:
    return hash_cccd(number, secret_key.encode("utf-8"))
