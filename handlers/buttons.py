"""Button data: one small codec per kind, in the spirit of aiogram's `CallbackData`.

A kind is a frozen dataclass declared with its prefix, `class RunButton(ButtonData, prefix="run")`;
its fields are row ids (`int`) or words (`str`). `pack()` writes `prefix:field:field...` (the
strings on the wire since before the codecs: chats keep them as offered options, in
conversations.offered, so they must not change), leaving out trailing fields that hold their
default; `unpack()` reads it back. The last field takes the rest of the data, colons included
(a step token is `<step>:<attempt>:<action>`); other `str` fields cannot hold a colon.

Packing checks what a channel would otherwise refuse or misread: a colon inside a field, an id
no column can hold, and the 64 bytes Telegram allows for callback data (ButtonDataTooLong).
Unpacking trusts nothing: data that does not fit its kind (another prefix, too few fields, an
id that is not plain ASCII digits within the id columns) raises StaleButton, which dispatch
answers as an out-of-date button. A kind's handler still checks roles and ownership: a
well-formed button may be forged or name a row that has gone.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Self

MAX_BUTTON_DATA = 64  # bytes of UTF-8: Telegram's limit on callback_data
SEPARATOR = ":"
# Row ids are 32-bit integer columns (PostgreSQL's `integer`): a larger number in button data
# would make the database raise instead of finding nothing.
MAX_ROW_ID = 2**31 - 1


class StaleButton(ValueError):
    """Button data that does not fit its kind; `raw` holds the fields that were there, unread,
    by name (a kind that audits refusals names them)."""

    def __init__(self, message: str, raw: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.raw = raw or {}


class ButtonDataTooLong(ValueError):
    """Packed button data longer than the 64 bytes Telegram takes: a programming error."""


def button_id(raw: str) -> int | None:
    """The row id that button data names, or None when it cannot name one (not plain ASCII
    digits, or beyond the id columns)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_ROW_ID)):
        return None
    value = int(raw)
    return value if value <= MAX_ROW_ID else None


@dataclass(frozen=True)
class ButtonData:
    prefix: ClassVar[str]
    _kinds: ClassVar[tuple[tuple[str, type, Any], ...]]  # (name, int | str, default or MISSING)

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not prefix or SEPARATOR in prefix:
            raise ValueError(f"a button prefix is a word without {SEPARATOR!r}: {prefix!r}")
        cls.prefix = prefix

    @classmethod
    def _fields(cls) -> tuple[tuple[str, type, Any], ...]:
        cached = cls.__dict__.get("_kinds")
        if cached is None:
            hints = typing.get_type_hints(cls)
            cached = tuple((f.name, hints[f.name], f.default) for f in dataclasses.fields(cls))
            for name, kind, _ in cached:
                if kind not in (int, str):
                    raise TypeError(f"{cls.__name__}.{name}: a button field is an int (row id) or a str")
            cls._kinds = cached
        return cached

    def pack(self) -> str:
        """The data to put on a button; raises ValueError on a value the format cannot carry and
        ButtonDataTooLong past 64 bytes."""
        fields = self._fields()
        values = [getattr(self, name) for name, _, _ in fields]
        while fields and values[-1] == fields[-1][2]:  # trailing defaults are left out
            fields, values = fields[:-1], values[:-1]
        parts = [self.prefix]
        for i, ((name, kind, _), value) in enumerate(zip(fields, values, strict=True)):
            if kind is int:
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ROW_ID:
                    raise ValueError(f"{type(self).__name__}.{name}: not a row id: {value!r}")
                parts.append(str(value))
            else:
                if not isinstance(value, str) or (SEPARATOR in value and i < len(self._fields()) - 1):
                    raise ValueError(f"{type(self).__name__}.{name}: {value!r} cannot be packed")
                parts.append(value)
        data = SEPARATOR.join(parts)
        if len(data.encode("utf-8")) > MAX_BUTTON_DATA:
            raise ButtonDataTooLong(f"{data!r} is longer than {MAX_BUTTON_DATA} bytes")
        return data

    @classmethod
    def unpack(cls, data: str) -> Self:
        """The button `data` names; StaleButton if it does not fit this kind."""
        fields = cls._fields()
        prefix, colon, rest = data.partition(SEPARATOR)
        if prefix != cls.prefix:
            raise StaleButton(f"not a {cls.prefix} button")
        parts = rest.split(SEPARATOR, len(fields) - 1) if colon else []
        raw = {name: part for (name, _, _), part in zip(fields, parts, strict=False)}
        values: dict[str, Any] = {}
        for i, (name, kind, default) in enumerate(fields):
            if i >= len(parts):
                if default is dataclasses.MISSING:
                    raise StaleButton(f"{cls.prefix}: no {name}", raw)
                continue
            if kind is int:
                value = button_id(parts[i])
                if value is None:
                    raise StaleButton(f"{cls.prefix}: {name} is not a row id", raw)
                values[name] = value
            else:
                values[name] = parts[i]
        return cls(**values)

    @classmethod
    def parse(cls, data: str) -> Self | None:
        """`unpack`, or None for data that does not fit this kind."""
        try:
            return cls.unpack(data)
        except StaleButton:
            return None


# ---------------------------------------------------------------- the kinds, by owner
# The wire formats, one line each; a verb field is read by the handler, which answers an
# unknown verb as out of date.

@dataclass(frozen=True)
class LanguageButton(ButtonData, prefix="lang"):
    """`lang:<code>` (basic.py): choose the language."""

    code: str


@dataclass(frozen=True)
class HouseholdButton(ButtonData, prefix="hh"):
    """`hh:<household>[:<verb>[:<arg>[:<person>]]]` (households.py): open the page (no verb; arg
    `k`: as a new message, keeping the pressed one),
    `start`, `add[:<flow>]` a member, `edit`, `reassign`, `to:<user>`, and
    `flow:<flow>[:<resident>|0]` to start a procedure (0: for the household)."""

    household_id: int
    verb: str = ""
    arg: str = ""
    person: str = ""


@dataclass(frozen=True)
class NewHouseholdButton(ButtonData, prefix="new"):
    """`new:<verb>[:<area>]` (households.py, the /new dialog): `area:<id>`, `skip`, `keep`,
    `retype`, `stop`."""

    verb: str
    arg: str = ""


@dataclass(frozen=True)
class AddMemberButton(ButtonData, prefix="member"):
    """`member:<verb>` (households.py, the add-member dialog): `skip`, `keep`, `cardyear`, `retype`,
    and after a command typed mid-dialog `resume` / `drop`."""

    verb: str


@dataclass(frozen=True)
class EditButton(ButtonData, prefix="ed"):
    """`ed:<household>:<verb>[:<arg>]` (household_edit.py): a field to correct, `nophone`,
    `area`, `to:<area>`, `archive`, `archived`, `restore`, and `keep`/`cardyear`/`retype` of a
    doubtful value."""

    household_id: int
    verb: str = ""
    arg: str = ""


@dataclass(frozen=True)
class MemberButton(ButtonData, prefix="mb"):
    """`mb:<resident>[:<verb>[:<arg>]]` (household_edit.py): the member's menu (no verb), `name`,
    `year`, `cccd`, `ready:0|1`, `remove`, `removed`."""

    resident_id: int
    verb: str = ""
    arg: str = ""


@dataclass(frozen=True)
class RunButton(ButtonData, prefix="run"):
    """`run:<run>:<action>` (flows.py): `resume`, `pause`, `abandon`, `restart`."""

    run_id: int
    action: str = ""


@dataclass(frozen=True)
class StepButton(ButtonData, prefix="f"):
    """`f:<run>:<token>` (flows.py): a step's button; the engine reads the token
    (`<step>:<attempt>:<action>`, at most 48 bytes)."""

    run_id: int
    token: str = ""


@dataclass(frozen=True)
class MoreButton(ButtonData, prefix="more"):
    """`more` (choices.py): the next options of a list cut to 8 on Zalo; they wait in the
    chat's state (`more`), so the button carries nothing."""

    page: int = 0


@dataclass(frozen=True)
class VisitButton(ButtonData, prefix="visit"):
    """`visit:<verb>[:<area>]` (visits.py): `start`, and in the /visit dialog `area:<id>`,
    `skip`, `known`, `phone`."""

    verb: str
    arg: str = ""


@dataclass(frozen=True)
class RequestButton(ButtonData, prefix="req"):
    """`req:<request>:<verb>` (visits.py): `take`, `close`."""

    request_id: int
    verb: str = ""


@dataclass(frozen=True)
class VisitAddButton(ButtonData, prefix="visitadd"):
    """`visitadd:<request>` (visit_limits.py): add to one's own open request."""

    request_id: int


@dataclass(frozen=True)
class StatsButton(ButtonData, prefix="st"):
    """`st:<area>:<period>[:<view>[:<arg>]]` (stats.py): the summary (no view), `c` chart,
    `fl` procedures, `f:<flow>` drop-off, `v` volunteers, `x:csv|xlsx` a file."""

    area_id: int
    period: str
    view: str = ""
    arg: str = ""


@dataclass(frozen=True)
class TargetButton(ButtonData, prefix="tg"):
    """`tg:<area>[:<kind>]` (targets.py): the targets, or set `households` / `digital`."""

    area_id: int
    kind: str = ""


@dataclass(frozen=True)
class FaqButton(ButtonData, prefix="faq"):
    """`faq:<verb>:<entry>` (faq.py): `show`, `ok`, `no`."""

    verb: str
    entry_id: str = ""


@dataclass(frozen=True)
class InviteButton(ButtonData, prefix="inv"):
    """`inv:<verb>[:<arg>]` (invites.py, the /invite dialog): `role:volunteer|leader`,
    `area:<area>`, `n:<count>`."""

    verb: str
    arg: str = ""


@dataclass(frozen=True)
class RosterButton(ButtonData, prefix="vol"):
    """`vol:<area>:<verb>[:<arg>]` (roster.py, /volunteers): `p:<page>`, `u:<user>` a
    volunteer's line, `one:<user>` whom to hand over to, `to:<user>:<receiver>`, `spread:<user>`,
    `end:<user>` (asks), `endok:<user>`."""

    area_id: int
    verb: str = ""
    arg: str = ""


@dataclass(frozen=True)
class ImportButton(ButtonData, prefix="imp"):
    """`imp:<area>:<verb>` (household_upload.py): `pick` the area of /import, `go` import the
    checked file, `no` cancel."""

    area_id: int
    verb: str


@dataclass(frozen=True)
class AssignButton(ButtonData, prefix="asg"):
    """`asg:<request>:<user>` (follow_ups.py): a leader gives an open visit request to a volunteer."""

    request_id: int
    user_id: int


@dataclass(frozen=True)
class ComeBackButton(ButtonData, prefix="cb"):
    """`cb:<run>:<when>` (come_back.py): come back in `1`, `3`, `7` days, `date` (type it),
    `ok:<yyyymmdd>` (confirm a far date)."""

    run_id: int
    when: str = ""


@dataclass(frozen=True)
class AnnounceButton(ButtonData, prefix="ann"):
    """`ann:<verb>[:<arg>]` (announce.py): `area:<id>`, `to:<audience>`, `send`, `cancel`."""

    verb: str
    arg: str = ""
