"""/import: a leader sends the household spreadsheet to the bot.

`/import [AREA]` asks for the file (and sends the template); the file is checked and imported
as a dry run inside a savepoint that is rolled back, the report comes back with "Import N
households" / "Cancel". The button fetches the same file again (the platform's reference is
kept in the conversation, never the file) and imports its good rows. The area must be one of
the leader's; the button re-checks it, and the state it was offered in.
"""

from __future__ import annotations

from conversations.household_sheet import Sheet, parse_households
from conversations.sheet_file import MAX_BYTES, SheetError, read_table
from db.models import Area
from db.repo.household_import import ImportReport, import_households
from handlers.access import covers, refuse
from handlers.buttons import ImportButton
from handlers.context import Context
from handlers.household_report import report_text, template_bytes
from handlers.i18n import N_
from handlers.leader_scope import area_for_command
from handlers.router import LEADERS, Router, out_of_date
from handlers.types import Attachment, Button, IncomingFile, Reply
from handlers.validation import hash_citizen_id, local_date

router = Router("household_upload")
DIALOG = "import"
LISTED_IN_CHAT = 30  # rejected rows listed in the chat's report (a message holds 4,096 characters)

SEND_FILE = N_("Send the household list of {area} as a file (XLSX or CSV, made from this template). "
               "I check it first and import nothing until you confirm. /cancel to stop.")
NOT_NOW = N_("To import a household list, a leader types /import first, then sends the file.")
CANNOT_FETCH = N_("I could not get the file. Please send it again.")
NO_FILES_HERE = N_("Files cannot be received on this channel; ask the administrator to import it.")
IMPORT_ELSEWHERE = N_("Household lists cannot be sent as a file here. Type /import in GoCua on Telegram "
                      "and send the file there, or give the file to the administrator to import for "
                      "{area}. /help shows what you can do here.")


async def _area(ctx: Context, area_id: int) -> Area | None:
    area = await ctx.session.get(Area, area_id)
    return area if area is not None and covers(ctx, area.code, LEADERS) else None


async def _ask_for_file(ctx: Context, area: Area) -> list[Reply]:
    ctx.set_state({"dialog": DIALOG, "area": area.id})
    return [Reply(ctx.t(SEND_FILE, area=area.name),
                  attachment=Attachment("document", "mau-ho-gia-dinh.xlsx", template_bytes(ctx.t)))]


@router.command("/import", roles=LEADERS, help=N_("import your area's household list from a spreadsheet"),
                order=34)
async def import_command(ctx: Context, args: str) -> list[Reply]:
    area = await area_for_command(ctx, args.split(), lambda area_id: ImportButton(area_id, "pick"))
    if isinstance(area, Reply):
        return [area]
    if ctx.incoming.channel not in ctx.services.fetch_file:  # Zalo, the console: no files come in
        return [Reply(ctx.t(IMPORT_ELSEWHERE, area=area.name))]
    return await _ask_for_file(ctx, area)


@router.dialog(DIALOG, buttons=(ImportButton,))
async def import_text(ctx: Context, text: str) -> list[Reply]:
    return [Reply(ctx.t("Send the spreadsheet as a file (a document), or /cancel."))]


@router.cancel
async def cancel_import(ctx: Context, text: str) -> list[Reply]:
    if ctx.state.get("dialog") != DIALOG:
        return []
    ctx.set_state(None)
    return [Reply(ctx.t("Import cancelled: nothing was written. Type /import to start again, or /help."))]


async def _read(ctx: Context, file: IncomingFile) -> Sheet | Reply:
    """The file fetched, read and checked; or the reply saying why it cannot be."""
    if file.size > MAX_BYTES:
        return Reply(ctx.t("The file is too large ({size} MB; at most {max} MB).",
                           size=f"{file.size / 1024 / 1024:.0f}", max=MAX_BYTES // 1024 // 1024))
    fetch = ctx.services.fetch_file.get(ctx.incoming.channel)
    if fetch is None:
        return Reply(ctx.t(NO_FILES_HERE))
    try:
        data = await fetch(file.ref)
    except Exception:  # the platform's network or refusal: the user can send it again
        return Reply(ctx.t(CANNOT_FETCH))
    key = ctx.services.settings.secret_key
    try:
        return parse_households(read_table(data, file.name), local_date(ctx.now),
                                lambda digits: hash_citizen_id(digits, key))
    except SheetError as exc:
        return Reply(ctx.t(exc.message.msgid, **exc.message.values))


async def on_file(ctx: Context) -> list[Reply]:
    """A document arrived: in the /import dialog, check it (a dry run) and offer to import."""
    file = ctx.incoming.file
    assert file is not None
    state = ctx.state
    if state.get("dialog") != DIALOG:
        return [Reply(ctx.t(NOT_NOW))]
    area = await _area(ctx, int(state.get("area") or 0))
    if area is None:
        ctx.set_state(None)
        return [out_of_date(ctx)]
    sheet = await _read(ctx, file)
    if isinstance(sheet, Reply):
        return [sheet]
    async with ctx.session.begin_nested() as savepoint:  # the dry run: written, then undone
        report = await import_households(ctx.session, area, sheet, now=ctx.now, actor_id=ctx.user.id)
        await savepoint.rollback()
    text = report_text(ctx.t, report, area.name, dry_run=False, written=False, refused=False,
                       listed=LISTED_IN_CHAT, more_hint=False)
    count = report.imported + report.updated
    if count == 0:
        ctx.set_state({"dialog": DIALOG, "area": area.id})
        again = ctx.t("Nothing to import. Correct the file and send it again, or /cancel.")
        return [Reply(text + "\n" + again)]
    ctx.set_state({"dialog": DIALOG, "area": area.id, "file": file.ref, "name": file.name[:200]})
    note = ctx.t("Nothing is written yet.")
    if report.rejected:
        note += " " + ctx.t("The rejected rows are left out; correct them and send the file again later.")
    shown = f"{count:,}".replace(",", ".")
    buttons = (
        Button(ctx.t.plural("Import {count} household", "Import {count} households", count, count=shown),
               ImportButton(area.id, "go")),
        Button(ctx.t("Cancel"), ImportButton(area.id, "no")),
    )
    return [Reply(text + "\n" + note, buttons=buttons)]


@router.button(ImportButton)
async def import_button(ctx: Context, data: ImportButton) -> list[Reply]:
    area = await _area(ctx, data.area_id)
    if area is None:
        refuse(ctx, f"import:{data.verb}", f"area:{data.area_id}")
        return [out_of_date(ctx)]
    if data.verb == "pick":
        return await _ask_for_file(ctx, area)
    state = ctx.state
    if state.get("dialog") != DIALOG or state.get("area") != area.id or not state.get("file"):
        return [out_of_date(ctx)]
    if data.verb == "no":
        ctx.set_state(None)
        return [Reply(ctx.t("Import cancelled: nothing was written. Type /import to start again, or /help."))]
    if data.verb != "go":
        return [out_of_date(ctx)]
    sheet = await _read(ctx, IncomingFile(str(state["file"]), str(state.get("name") or ""), 0))
    if isinstance(sheet, Reply):
        return [sheet]
    report: ImportReport = await import_households(ctx.session, area, sheet, now=ctx.now,
                                                   actor_id=ctx.user.id)
    ctx.set_state(None)
    return [Reply(ctx.t("Imported into {area}. New households: {imported}. Updated: {updated}. "
                        "Rejected rows left out: {rejected}.", area=area.name, imported=report.imported,
                        updated=report.updated, rejected=len(report.rejected)))]
