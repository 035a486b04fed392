"""Heavy replies are made after the update's commit (handlers/deferred.py): an export being
built holds no lock other chats need, the outbox keeps a small description instead of the file,
and a failure to build it is an apology, not an error."""

from __future__ import annotations

import asyncio

import pytest

from db.models import AuditLog, ProcessedUpdate
from handlers import exports
from tests.chat import Talker, all_rows


async def test_other_chats_are_answered_while_an_export_is_built(demo, people, monkeypatch):
    """While a leader's export is being written, a resident's question is answered; then the
    leader gets the spreadsheet."""
    _, lan, _ = people
    building, release = asyncio.Event(), asyncio.Event()
    real = exports.write_export

    async def slow_write_export(*args, **kwargs):
        building.set()
        await release.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(exports, "write_export", slow_write_export)
    export = asyncio.create_task(lan.say("/export"))
    await asyncio.wait_for(building.wait(), 10)
    resident = Talker(demo, "ba-chin", lang="en")
    answered = await asyncio.wait_for(resident.say("/help"), 10)  # would wait on the lock before
    assert answered and not export.done()
    release.set()
    [reply] = await export
    assert reply.attachment is not None and reply.attachment.filename.endswith(".xlsx")
    [audit] = await all_rows(demo, AuditLog, AuditLog.action == "export")
    assert audit.details["via"] == "console"


async def test_the_outbox_keeps_the_request_and_a_redelivery_makes_the_file_again(demo, people, clock):
    """Replies never sent (the worker died) are sent on a redelivery after the lease: the export
    is made again from its description; the outbox never held the file."""
    _, lan, _ = people
    incoming = lan.incoming(text="/export csv", update_id="exp-1")
    [first] = await demo.core.handle(incoming)  # committed; never sent, never marked
    [row] = await all_rows(demo, ProcessedUpdate, ProcessedUpdate.update_id == "exp-1")
    assert row.replies[0]["deferred"]["kind"] == "export" and "attachment" not in row.replies[0]
    clock.advance(seconds=31)
    [again] = await demo.core.handle(incoming)
    assert again.attachment.filename == first.attachment.filename
    assert again.attachment.data.decode("utf-8-sig").splitlines()[0].startswith("Area,")


async def test_a_failed_export_is_an_apology(demo, people, monkeypatch):
    _, lan, _ = people

    async def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports, "write_export", broken)
    await lan.say("/export")
    assert lan.text() == "Sorry, that could not be prepared just now. Please try again in a moment."
    assert await all_rows(demo, AuditLog, AuditLog.action == "export") == []


@pytest.mark.parametrize("kind", ["nonsense", None])
async def test_an_unknown_description_is_an_apology(app, kind):
    from handlers.deferred import RenderContext, render
    from handlers.types import Reply

    [reply] = await render(RenderContext(app.core.services, app.db.transaction),
                           [Reply("", deferred={"kind": kind, "locale": "vi"})])
    assert reply.text.startswith("Xin lỗi")


async def test_a_chart_drawn_after_commit_keeps_its_numbered_back_button(demo, people):
    """On a numbered channel (the console, Zalo) “1” under the chart goes back to the summary:
    the button offered at commit is the one shown with the drawn chart."""
    from tests.test_stats import area_id

    _, lan, _ = people
    await lan.press(f"st:{await area_id(demo, 'danang.hai-van')}:all:c")
    [chart] = lan.last
    assert chart.attachment is not None and chart.attachment.kind == "photo"
    assert [label for label, _ in lan.buttons()] == ["⬅️ Back"]
    await lan.say("1")
    assert "Households" in lan.text() and lan.last[0].attachment is None
