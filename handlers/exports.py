"""Exports for the People's Committee: every step record of an area as CSV or XLSX.

One row per step record (area, household code, procedure, step title, outcome, answer, reason,
volunteer, time; handlers/export_columns.py); the XLSX adds a summary sheet per area (the area
and each sub-area) and the questions the FAQ could not answer. No citizen ID goes in but a
citizen ID typed at a step, masked as everywhere. Every export is written to the audit log.
Rows are read page by page on the event loop and written by a worker thread, so a city's
millions of records never sit in memory and the loop is never blocked by the writing.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from functools import cache
from typing import Any, BinaryIO

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.flow_model import FlowRegistry
from conversations.flow_order import flow_order_key
from db.models import Area
from db.repo.audit import audit
from db.repo.exports import ExportRow, export_pages
from db.repo.stats import AreaStats, area_stats, load_scope
from db.repo.support import top_misses
from handlers.buttons import StatsButton
from handlers.context import Context
from handlers.deferred import RenderContext, renderer
from handlers.export_columns import StepColumns
from handlers.file_limits import TOO_BIG_LIMIT, discard, export_dir, megabytes, sweep
from handlers.file_links import share_file
from handlers.i18n import N_, Translator, translator
from handlers.leader_scope import area_for_command
from handlers.options import NUMBERED_CHANNELS
from handlers.router import LEADERS, OUT_OF_DATE, Router
from handlers.stats_text import (
    DEFAULT_PERIOD,
    OUTCOME_LABELS,
    PERIOD_LABELS,
    labelled_with_target,
    number,
    percent,
    since_of,
)
from handlers.types import Attachment, Button, Reply, button_label, sentence_case
from handlers.validation import VIETNAM

FORMATS = ("xlsx", "csv")
HEADER = (N_("Area"), N_("Household"), N_("Procedure"), N_("Step"), N_("Outcome"), N_("Answer"),
          N_("Reason"), N_("Volunteer"), N_("Time"))
MISSES_HEADER = (N_("Question (as first asked)"), N_("Times asked"))
MAX_SUMMARY_SHEETS = 60

router = Router("exports")

ReadSession = Callable[[], AbstractAsyncContextManager[AsyncSession]]


def slug(name: str) -> str:
    """An area's name as a file name part: "Phường Hải Vân" → "phuong-hai-van"."""
    plain = unicodedata.normalize("NFKD", name.replace("Đ", "D").replace("đ", "d"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:60] or "area"


def export_filename(area: Area | None, fmt: str, now: datetime, since: datetime | None = None) -> str:
    """The file's name says the area and the period: `gocua_phuong-hai-van_2026-11-06_2026-12-05.xlsx`
    (a period), `gocua_phuong-hai-van_den-2026-12-05.xlsx` (all time, "đến": up to)."""
    day = now.astimezone(VIETNAM).strftime("%Y-%m-%d")
    period = (f"{since.astimezone(VIETNAM).strftime('%Y-%m-%d')}_{day}" if since is not None
              else f"den-{day}")
    return f"gocua_{slug(area.name) if area else 'all'}_{period}.{fmt}"


def summary_rows(t: Translator, stats: AreaStats, title_of: Callable[[str], str]) -> list[tuple[str, object]]:
    c = stats.counts
    rows: list[tuple[str, object]] = [
        (t("Area code"), stats.area.code or ""),
        (t("Period from"),
         stats.since.astimezone(VIETNAM).strftime("%d/%m/%Y") if stats.since else t("all time")),
        (t("Households"), c.households),
        (t("Households reached"), c.reached),
        (t("Households reached (%)"), percent(c.reached, c.households)),
        (labelled_with_target(t, t("Target: households to reach"), stats.households_target),
         stats.target_households),
        (t("Households with a member who can use e-services"), c.digital_ready),
        (t("Households with a member who can use e-services (%)"), percent(c.digital_ready, c.households)),
        (labelled_with_target(t, t("Target: households with a member who can use e-services"),
                              stats.digital_ready_target), stats.target_digital_ready),
        (t("Residents supported"), stats.residents_supported),
        (t("Volunteers"), stats.volunteers),
        (t("Volunteers active in the last 7 days"), stats.volunteers_active),
        (t("Households assigned to a volunteer"), c.assigned),
        (t("1+20 capacity (volunteers × 20)"), stats.capacity),
    ]
    for flow_id, f in sorted(stats.flows.items(), key=lambda kv: flow_order_key(kv[0])):
        title = title_of(flow_id)
        rows += [
            (t("{flow}: started in the period", flow=title), f.started),
            (t("{flow}: completed", flow=title), f.completed),
            (t("{flow}: blocked now", flow=title), f.blocked),
            (t("{flow}: problems reported", flow=title), f.problems),
        ]
        for reason, n in f.top_reasons:
            shown = t(reason) if reason else "—"
            rows.append((t("{flow}: problem “{reason}”", flow=title, reason=shown), n))
    return rows


def _rows_from_loop(pages: AsyncIterator[list[ExportRow]], loop: asyncio.AbstractEventLoop,
                    convert: Callable[[ExportRow], tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """A plain iterator, for the writer's thread, over pages fetched on the event loop."""

    async def next_page() -> list[ExportRow] | None:
        return await anext(pages, None)

    while True:
        page = asyncio.run_coroutine_threadsafe(next_page(), loop).result()
        if page is None:
            return
        for row in page:
            yield convert(row)


async def write_export(
    read_session: ReadSession, out: BinaryIO, *, fmt: str, area: Area | None, since: datetime | None,
    t: Translator, flows: FlowRegistry | None, now: datetime,
) -> int:
    """Write the export to `out`; returns the number of step-record rows."""
    from reports.export_files import SummarySheet, write_csv, write_xlsx  # openpyxl: slow import

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")

    @cache  # a few procedures and steps, millions of rows
    def title_of(flow_id: str) -> str:
        return t(flows.title(flow_id)) if flows is not None else flow_id

    steps = StepColumns(t, flows)
    outcomes: dict[str, str] = {k: t(v) for k, v in OUTCOME_LABELS.items()}  # StepOutcome is a str

    def convert(row: ExportRow) -> tuple[Any, ...]:
        reason = t(row.reason) if row.reason else None
        where = (row.flow_id, row.flow_version, row.step_id)
        return (row.area, row.household, title_of(row.flow_id), steps.heading(*where),
                outcomes.get(row.outcome, row.outcome), steps.answer(*where, row.value), reason,
                row.volunteer, row.recorded_at)

    header = [t(h) for h in HEADER]
    loop = asyncio.get_running_loop()
    async with read_session() as session:
        pages = export_pages(session, area, since)
        try:
            if fmt == "csv":
                return await asyncio.to_thread(write_csv, out, header, _rows_from_loop(pages, loop, convert))
            summaries = []
            scope = await load_scope(session, area)
            for sheet_area in [area, *scope.children()][:MAX_SUMMARY_SHEETS]:
                stats = await area_stats(session, sheet_area, now=now, since=since, tz=VIETNAM,
                                         all_name=t("All areas"))
                summaries.append(SummarySheet(stats.area.name, summary_rows(t, stats, title_of)))
            misses = await top_misses(session, [area.code] if area else None, limit=1000, since=since)
            return await asyncio.to_thread(
                write_xlsx, out, records_title=t("Step records"), header=header,
                rows=_rows_from_loop(pages, loop, convert), summaries=summaries,
                misses_title=t("Unanswered questions"), misses_header=[t(h) for h in MISSES_HEADER],
                misses=[(example, count) for _normalized, count, example in misses],
            )
        finally:
            await pages.aclose()


def audit_export(session: AsyncSession, *, actor_id: int | None, area: Area | None, fmt: str,
                 rows: int, since: datetime | None, via: str, now: datetime) -> None:
    audit(session, now, actor_id, "export", f"area:{area.code if area else '*'}",
          {"format": fmt, "rows": rows, "since": since.isoformat() if since else None, "via": via})


async def export_reply(ctx: Context, area: Area, period: str, fmt: str) -> Reply:
    """The export as a document in the chat (the caller checked the area is the user's). It is
    made after the update's commit (`render_export`), so building a big file holds no lock.
    It comes with the way back to the area's statistics."""
    back = (Button("📊 " + ctx.t("Statistics"), StatsButton(area.id, period)),)
    return Reply("", buttons=back, deferred={
        "kind": "export", "area_id": area.id, "period": period, "fmt": fmt, "locale": ctx.t.locale,
        "user_id": ctx.user.id, "channel": ctx.incoming.channel, "now": ctx.now.isoformat(),
    })


@renderer("export", file="document")
async def render_export(rctx: RenderContext, spec: dict[str, Any]) -> Reply:
    """The export, streamed to a temporary file (never whole in memory), then checked against
    what the chat takes before anything is uploaded (handlers/file_limits.py)."""
    t, now = translator(spec["locale"]), datetime.fromisoformat(spec["now"])
    async with rctx.reader() as session:
        area = await session.get(Area, int(spec["area_id"]))
    if area is None:  # deleted since the request (redelivered much later)
        return Reply(t(OUT_OF_DATE))
    fmt, period = spec["fmt"], spec["period"]
    since = since_of(period, now)
    await asyncio.to_thread(sweep)
    filename = export_filename(area, fmt, now, since)
    path = await asyncio.to_thread(temp_path, filename)
    try:
        with open(path, "wb") as out:  # noqa: ASYNC230 - opening is instant; writing is threaded
            rows = await write_export(rctx.reader, out, fmt=fmt, area=area, since=since, t=t,
                                      flows=rctx.services.flows, now=now)
        async with rctx.transaction() as session:
            audit_export(session, actor_id=spec["user_id"], area=area, fmt=fmt, rows=rows,
                         since=since, via=spec["channel"], now=now)
        caption = t("{area} · {period}: {rows} step records.", area=area.name,
                    period=t(PERIOD_LABELS[period]), rows=number(t, rows))
        return await deliver(rctx, t, path, filename, caption, area=area, period=period, fmt=fmt,
                             now=now, channel=spec["channel"])
    except BaseException:
        discard(path)
        raise


def temp_path(filename: str) -> str:
    """A new, empty temporary file for `filename` (its name ends like it)."""
    fd, path = tempfile.mkstemp(prefix="export-", suffix="-" + filename, dir=export_dir())
    os.close(fd)
    return path


def zip_file(path: str, filename: str) -> tuple[str, str]:
    """The file at `path` compressed into a new temporary .zip (streamed, chunk by chunk);
    returns (the zip's path, its file name)."""
    zip_name = filename.rpartition(".")[0] + ".zip"
    target = temp_path(zip_name)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        archive.write(path, arcname=filename)
    return target, zip_name


async def deliver(rctx: RenderContext, t: Translator, path: str, filename: str, caption: str, *,
                  area: Area, period: str, fmt: str, now: datetime, channel: str) -> Reply:
    """The reply that brings the file at `path` to the chat, within its platform's limits: the
    file itself; a download link (with a public base URL); a CSV compressed; else a message
    saying it is too big, with what fits (a shorter period, a sub-area, the CSV compressed).
    The temporary file is the channel's to delete once sent; any other is deleted here."""
    delivery = rctx.delivery
    size = await asyncio.to_thread(os.path.getsize, path)
    if delivery.fits("document", size):
        return Reply(caption, attachment=Attachment("document", filename, path=path))
    if delivery.limits.document is None and delivery.can_link(size):  # Zalo: a link to the file
        return await _linked(rctx, t, path, filename, caption, now)
    if fmt == "csv":  # a CSV compresses about tenfold
        zipped, zip_name = await asyncio.to_thread(zip_file, path, filename)
        discard(path)
        path, filename, size = zipped, zip_name, await asyncio.to_thread(os.path.getsize, zipped)
        caption = caption + "\n" + t("The file is compressed (zip): open it to find the CSV.")
        if delivery.fits("document", size):
            return Reply(caption, attachment=Attachment("document", filename, path=path))
    if delivery.can_link(size):
        return await _linked(rctx, t, path, filename, caption, now)
    discard(path)
    return await too_big(rctx, t, area=area, period=period, fmt=fmt, size=size, channel=channel)


async def _linked(rctx: RenderContext, t: Translator, path: str, filename: str, caption: str,
                  now: datetime) -> Reply:
    """The caption and a download link to the file (kept in the database; the file on disk is
    deleted)."""
    assert rctx.delivery.public_base is not None
    try:
        url = await share_file(rctx.transaction, path, filename, rctx.delivery.public_base, now)
    finally:
        discard(path)
    return Reply(caption + "\n\n" + t(DOWNLOAD_LINK, url=url))


DOWNLOAD_LINK = N_("📎 Download the file (the link works for 24 hours; do not share it): {url}")
SHORTER_PERIODS = {"all": ("30d", "7d"), "30d": ("7d",), "7d": ()}
MAX_SUB_AREAS = 6  # sub-area buttons offered instead of a file too big


async def too_big(rctx: RenderContext, t: Translator, *, area: Area, period: str, fmt: str,
                  size: int, channel: str) -> Reply:
    """A file over what the chat takes: said, with what fits offered (buttons on a channel that
    has them, words on a numbered one, whose options were fixed when the file was asked for)."""
    limit = rctx.delivery.limits.document
    if limit is not None:
        heading = t(TOO_BIG_LIMIT, size=megabytes(size), limit=megabytes(limit))
    else:
        heading = t("This file is too big to send here ({size} MB).", size=megabytes(size))
    lines = [heading, t("Ask for less at a time: a shorter period or one sub-area.")]
    if fmt == "xlsx":
        lines.append(t("The CSV file is smaller, and is compressed when it is big."))
    if rctx.delivery.public_base is None:
        lines.append(t("An administrator can also make the whole file for you."))
    if channel in NUMBERED_CHANNELS:
        return Reply("\n".join(lines))
    buttons = [Button("⬇️ " + sentence_case(t(PERIOD_LABELS[p])), StatsButton(area.id, p, "x", fmt))
               for p in SHORTER_PERIODS.get(period, ())]
    async with rctx.reader() as session:
        scope = await load_scope(session, area)
    children = scope.children()
    buttons += [Button("⬇️ " + button_label(child.name), StatsButton(child.id, period, "x", fmt))
                for child in children[:MAX_SUB_AREAS]]
    if len(children) > MAX_SUB_AREAS:
        lines.append(t("Other sub-areas: open Statistics and choose one."))
    if fmt == "xlsx":
        buttons.append(Button("⬇️ " + t("CSV (compressed)"), StatsButton(area.id, period, "x", "csv")))
    return Reply("\n".join(lines), buttons=tuple(buttons))


@router.command("/export", roles=LEADERS, help=N_("spreadsheet of your area: /export [AREA] [csv]"), order=31)
async def export_command(ctx: Context, args: str) -> list[Reply]:
    words = args.split()
    fmt = words.pop().lower() if words and words[-1].lower() in FORMATS else "xlsx"
    area = await area_for_command(ctx, words, lambda area_id: StatsButton(area_id, DEFAULT_PERIOD, "x", fmt))
    if isinstance(area, Reply):
        return [area]
    return [await export_reply(ctx, area, "all", fmt)]
