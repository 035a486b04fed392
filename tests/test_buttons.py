"""Button data codecs (handlers/buttons.py): what is packed unpacks the same, the strings on the
wire are the ones chats keep as offered options, Telegram's 64 bytes are checked when packing,
and data that does not fit its kind raises StaleButton (answered as an out-of-date button)."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers import buttons
from handlers.buttons import (
    MAX_BUTTON_DATA,
    MAX_ROW_ID,
    AddMemberButton,
    ButtonData,
    ButtonDataTooLong,
    EditButton,
    FaqButton,
    HouseholdButton,
    LanguageButton,
    MemberButton,
    NewHouseholdButton,
    RequestButton,
    RunButton,
    StaleButton,
    StatsButton,
    StepButton,
    TargetButton,
    VisitAddButton,
    VisitButton,
)
from handlers.dispatch import ROUTES
from handlers.types import Button, Reply
from tests.chat import Talker, all_rows

KINDS = sorted((k for k in vars(buttons).values()
                if isinstance(k, type) and issubclass(k, ButtonData) and k is not ButtonData),
               key=lambda k: k.prefix)


def instances(kind: type[ButtonData]) -> st.SearchStrategy[ButtonData]:
    """Any value of `kind` the format can carry: ids in the id columns, no colon but in the
    last field (which takes the rest of the data)."""
    hints = typing.get_type_hints(kind)
    fields = dataclasses.fields(kind)
    values = {}
    for i, f in enumerate(fields):
        if hints[f.name] is int:
            values[f.name] = st.integers(0, MAX_ROW_ID)
        elif i == len(fields) - 1:
            values[f.name] = st.text(max_size=30)
        else:
            values[f.name] = st.text(max_size=12).filter(lambda s: ":" not in s)
    return st.builds(kind, **values)


def test_every_kind_is_routed_once():
    assert len({k.prefix for k in KINDS}) == len(KINDS)
    assert {k.prefix for k in KINDS} == set(ROUTES.buttons)
    assert all(ROUTES.buttons[k.prefix].data is k for k in KINDS)


@given(st.one_of(*(instances(k) for k in KINDS)))
def test_what_is_packed_unpacks_the_same(data: ButtonData):
    try:
        packed = data.pack()
    except ButtonDataTooLong:  # checked below
        return
    assert len(packed.encode("utf-8")) <= MAX_BUTTON_DATA
    assert type(data).unpack(packed) == data
    assert type(data).parse(packed) == data
    assert Button("x", data).payload == packed


@pytest.mark.parametrize(("data", "wire"), [
    (LanguageButton("vi"), "lang:vi"),
    (HouseholdButton(7), "hh:7"),
    (HouseholdButton(7, "start"), "hh:7:start"),
    (HouseholdButton(7, "add", "vneid"), "hh:7:add:vneid"),
    (HouseholdButton(7, "to", "12"), "hh:7:to:12"),
    (HouseholdButton(7, "flow", "vneid"), "hh:7:flow:vneid"),
    (HouseholdButton(7, "flow", "vneid", "0"), "hh:7:flow:vneid:0"),
    (NewHouseholdButton("area", "3"), "new:area:3"),
    (NewHouseholdButton("skip"), "new:skip"),
    (AddMemberButton("cardyear"), "member:cardyear"),
    (EditButton(7, "to", "3"), "ed:7:to:3"),
    (EditButton(7, "keep"), "ed:7:keep"),
    (MemberButton(9), "mb:9"),
    (MemberButton(9, "ready", "1"), "mb:9:ready:1"),
    (RunButton(5, "resume"), "run:5:resume"),
    (StepButton(5, "intro:1:d"), "f:5:intro:1:d"),
    (VisitButton("start"), "visit:start"),
    (VisitButton("area", "4"), "visit:area:4"),
    (RequestButton(2, "take"), "req:2:take"),
    (VisitAddButton(2), "visitadd:2"),
    (StatsButton(1, "30d"), "st:1:30d"),
    (StatsButton(1, "all", "x", "csv"), "st:1:all:x:csv"),
    (StatsButton(1, "7d", "f", "vneid"), "st:1:7d:f:vneid"),
    (TargetButton(1), "tg:1"),
    (TargetButton(1, "digital"), "tg:1:digital"),
    (FaqButton("show", "vneid.register_level2"), "faq:show:vneid.register_level2"),
])
def test_the_strings_on_the_wire_are_the_ones_chats_keep(data: ButtonData, wire: str):
    """Offered options (conversations.offered) and sent messages keep these strings: a codec
    must read what was written before it."""
    assert data.pack() == wire
    assert type(data).unpack(wire) == data


def test_more_than_64_bytes_raises_when_packed():
    assert StepButton(1, "x" * (MAX_BUTTON_DATA - len("f:1:"))).pack()  # exactly 64: fine
    with pytest.raises(ButtonDataTooLong):
        StepButton(1, "x" * (MAX_BUTTON_DATA - len("f:1:") + 1)).pack()
    with pytest.raises(ButtonDataTooLong):  # bytes, not characters: 29 characters, 69 bytes
        FaqButton("show", "ệ" * 20).pack()
    with pytest.raises(ButtonDataTooLong):
        Reply("?", buttons=(Button("x", StatsButton(MAX_ROW_ID, "all", "f", "p" * 60)),))


@pytest.mark.parametrize("bad", [
    HouseholdButton(-1), HouseholdButton(MAX_ROW_ID + 1), HouseholdButton(True),  # type: ignore[arg-type]
    HouseholdButton("7"),  # type: ignore[arg-type]
    HouseholdButton(7, "fl:ow", "vneid"), StatsButton(1, "30d:x"),
])
def test_values_the_format_cannot_carry_raise_when_packed(bad: ButtonData):
    with pytest.raises(ValueError):
        bad.pack()


@pytest.mark.parametrize(("kind", "data"), [
    (HouseholdButton, "hh:"), (HouseholdButton, "hh"), (HouseholdButton, "hh:abc"),
    (HouseholdButton, "hh:-1"), (HouseholdButton, "hh:1e3"), (HouseholdButton, "hh: 1"),
    (HouseholdButton, "hh:3000000000"), (HouseholdButton, "hh:99999999999999999999"),
    (HouseholdButton, "hh:٣"), (HouseholdButton, "hh:１"), (HouseholdButton, "ed:1"),
    (HouseholdButton, "hhh:1"), (StatsButton, "st:1"), (StatsButton, "st:x:30d"),
    (StepButton, "f:"), (RunButton, "run::resume"), (VisitAddButton, "visitadd:5:x"),
    (LanguageButton, "lang"), (FaqButton, ""), (TargetButton, "tg:²"),
])
def test_data_that_does_not_fit_its_kind_is_stale(kind: type[ButtonData], data: str):
    with pytest.raises(StaleButton):
        kind.unpack(data)
    assert kind.parse(data) is None


def test_a_stale_button_keeps_what_it_carried_for_the_audit():
    with pytest.raises(StaleButton) as stale:
        StatsButton.unpack("st:99999999999999999999:all:x:csv")
    assert stale.value.raw == {"area_id": "99999999999999999999", "period": "all", "view": "x", "arg": "csv"}


def test_missing_trailing_fields_take_their_defaults():
    assert HouseholdButton.unpack("hh:007") == HouseholdButton(7)
    assert HouseholdButton.unpack("hh:7:") == HouseholdButton(7)
    assert StepButton.unpack("f:7") == StepButton(7, "")
    assert HouseholdButton.unpack("hh:7:flow:vneid:0:x") == HouseholdButton(7, "flow", "vneid", "0:x")


async def test_an_area_id_no_row_can_have_is_refused_and_audited_as_before(demo):
    """The stats and target kinds answer a stale area id themselves: like another's area."""
    from db.models import AuditLog

    lan = Talker(demo, "lan", lang="en")
    await lan.press("st:99999999999999999999:30d:c")
    assert lan.text() == "This area is not among yours."
    await lan.press("tg:1e3")
    assert lan.text() == "This area is not among yours."
    await lan.press("st:1e3:forever")  # no such period: out of date, not audited
    assert lan.text().startswith("This button is out of date.")
    guest = Talker(demo, "guest", lang="en")
    await guest.say("/start")
    await guest.press("st:x:all:v")
    assert guest.text() == "The command /stats is not available to you. Type /help to see yours."
    denied = await all_rows(demo, AuditLog, AuditLog.action == "access.denied")
    assert [(a.target, a.details["attempted"]) for a in denied] == [
        ("area:99999999999999999999", "st:c"), ("area:1e3", "tg"), ("area:x", "st:v")]
