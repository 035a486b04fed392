"""Invites for a training session: /invite makes many codes at once, each with its deep link and
its QR code on a sheet to print (PNG and PDF; CSV from the command line), within the leader's
areas only."""

from __future__ import annotations

import csv
import io
import json

import pytest
from PIL import Image

from db.models import AuditLog, Invite, Membership
from handlers.buttons import InviteButton
from reports.invite_sheet import CARDS_PER_PAGE, PAGE_H, InviteSheet, SheetInvite, qr, qr_box, render
from tests.chat import Talker, all_rows, count_rows, payload_of
from tests.test_cli import gocua

BOT = "GoCuaTestBot"


def _sheet(n: int) -> InviteSheet:
    codes = [f"ABCD-EFGH-JK{i % 10}{chr(65 + i // 10)}" for i in range(n)]
    return InviteSheet(
        title="Tham gia GoCua", area="Thôn Tà Lang", role="Tình nguyện viên", expires="12/12/2026",
        expires_label="Hạn dùng", instructions=("Zalo: gửi /start {code} cho GoCua.",),
        invites=tuple(SheetInvite(c, f"https://t.me/{BOT}?start={c.replace('-', '')}") for c in codes),
        area_code="danang.hai-van.ta-lang", expires_iso="2026-12-12T08:00:00+00:00")


def read_qr(image: Image.Image, sheet: InviteSheet, index: int) -> list[list[bool]]:
    """The modules of invite `index`'s QR code, read from the PNG at the place the sheet puts it
    (no QR decoder is installed: the matrix read back is compared with segno's)."""
    x, y, scale = qr_box(sheet, index)
    size = len(qr(sheet.invites[index].qr_data).matrix)
    return [[image.getpixel((x + c * scale + scale // 2, y + r * scale + scale // 2)) < 128
             for c in range(size)] for r in range(size)]


def test_png_sheet_carries_each_deep_link_as_a_qr_code():
    """Every card's QR code, read from the image, is the code of that invite's deep link, and a
    sheet of 14 invites is two A4 pages."""
    sheet = _sheet(14)
    image = Image.open(io.BytesIO(render(sheet, "png")))
    assert image.format == "PNG" and image.height == 2 * PAGE_H
    for index in (0, 11, 13):
        expected = [[bool(v) for v in row] for row in qr(sheet.invites[index].link or "").matrix]
        assert read_qr(image.convert("L"), sheet, index) == expected
    assert read_qr(image.convert("L"), sheet, 0) != read_qr(image.convert("L"), sheet, 1)


def test_pdf_sheet_has_a_page_per_twelve_invites():
    data = render(_sheet(CARDS_PER_PAGE + 1), "pdf")
    assert data.startswith(b"%PDF")
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") == 2


def test_csv_sheet_lists_code_link_and_zalo_message():
    data = render(_sheet(3), "csv", role_key="volunteer").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(data)))
    assert len(rows) == 3
    assert rows[0]["telegram_link"] == f"https://t.me/{BOT}?start={rows[0]['code'].replace('-', '')}"
    assert rows[0]["zalo_message"] == f"/start {rows[0]['code']}"
    assert rows[0]["area"] == "Thôn Tà Lang" and rows[0]["role"] == "volunteer"


async def _leader(demo) -> Talker:
    demo.core.services.bot_username = BOT
    lan = Talker(demo, "lan", lang="en")
    await lan.say("/lang en")
    return lan


async def test_invite_dialog_makes_codes_and_sheets_that_a_new_volunteer_can_use(demo, clock):
    """Leader: /invite → volunteers → Tà Lang → 3. Three codes, links, a PNG photo and a PDF;
    a newcomer who opens the link (/start with the plain code) becomes a volunteer of Tà Lang."""
    lan = await _leader(demo)
    await lan.say("/invite")
    await lan.press(payload_of(lan, "Volunteers"))
    assert "Thôn Tà Lang" in [label for label, _ in lan.buttons()]
    await lan.say("ta lang")  # a distinctive part of a button's label
    assert "How many invites" in lan.text()
    replies = await lan.say("3")
    invites = await all_rows(demo, Invite, Invite.created_by.is_not(None))
    assert len(invites) == 3 and {i.role for i in invites} == {"volunteer"}
    text = replies[0].text
    for invite in invites:
        assert invite.code in text and f"https://t.me/{BOT}?start={invite.code.replace('-', '')}" in text
    assert "/start CODE" in text
    photo, pdf = replies[1].attachment, replies[2].attachment
    assert photo is not None and photo.kind == "photo" and photo.data.startswith(b"\x89PNG")
    assert pdf is not None and pdf.kind == "document" and pdf.data.startswith(b"%PDF")
    assert pdf.filename.endswith(".pdf")
    newcomer = Talker(demo, "newcomer", lang="en")
    await newcomer.say(f"/start {invites[0].code.replace('-', '')}")
    memberships = await all_rows(demo, Membership, Membership.invite_code == invites[0].code)
    assert len(memberships) == 1 and memberships[0].role == "volunteer"
    assert await count_rows(demo, AuditLog, AuditLog.action == "invite.create") >= 3


async def test_count_must_be_between_1_and_100(demo):
    lan = await _leader(demo)
    await lan.say("/invite")
    await lan.press(payload_of(lan, "Volunteers"))
    await lan.press(payload_of(lan, "Tà Lang"))
    for wrong in ("0", "101", "many"):
        await lan.say(wrong)
        assert "number from 1 to 100" in lan.text()
    assert await count_rows(demo, Invite, Invite.created_by.is_not(None)) == 0
    await lan.say("100")
    assert await count_rows(demo, Invite, Invite.created_by.is_not(None)) == 100
    assert lan.last[1].attachment is not None and lan.last[1].attachment.kind == "document"  # 9 pages


async def test_leaders_invite_only_within_their_areas_and_leaders_only_below_them(demo, clock):
    """A ward leader may invite volunteers in the ward and its villages, leaders only for a
    village; another ward, or a leader of their own ward, is refused and audited, whatever the
    button says. Volunteers have no /invite."""
    from db.repo.areas import area_by_code

    async with demo.db.transaction() as session:
        ids = {code: (await area_by_code(session, code)).id  # type: ignore[union-attr]
               for code in ("danang.hoa-xuan", "danang.hai-van", "danang.hai-van.ta-lang")}
    lan = await _leader(demo)
    await lan.say("/invite")
    await lan.press(payload_of(lan, "Leaders"))
    labels = [label for label, _ in lan.buttons()]
    assert "Thôn Tà Lang" in labels and not any("Hải Vân" in label for label in labels)
    await lan.press(InviteButton("area", str(ids["danang.hai-van"])).pack())
    assert "cannot invite" in lan.text()
    await lan.say("/invite")
    await lan.press(payload_of(lan, "Volunteers"))
    await lan.press(InviteButton("area", str(ids["danang.hoa-xuan"])).pack())
    assert "cannot invite" in lan.text()
    await lan.press(InviteButton("n", "5").pack())  # the dialog was left: nothing to make
    assert await count_rows(demo, Invite, Invite.created_by.is_not(None)) == 0
    assert await count_rows(demo, AuditLog, AuditLog.action == "access.denied") == 2
    an = Talker(demo, "an", lang="en")
    await an.say("/invite")
    assert "not available to you" in an.text()


@pytest.fixture
def cli_db(demo_cli):
    return demo_cli


def test_cli_invite_create_writes_sheets_and_keeps_the_single_code(cli_db, tmp_path):
    env = {"TELEGRAM_BOT_USERNAME": BOT}
    single = gocua(cli_db, "invite", "create", "--role", "volunteer", "--area", "danang.hai-van", "--json",
                   env=env)
    assert single.returncode == 0, single.stderr
    assert set(json.loads(single.stdout)) >= {"code", "role", "area", "expires_at"}
    for ext in ("csv", "png", "pdf"):
        out = tmp_path / f"sheet.{ext}"
        made = gocua(cli_db, "invite", "create", "--role", "volunteer", "--area", "danang.hai-van.ta-lang",
                     "--count", "4", "--out", str(out), "--json", env=env)
        assert made.returncode == 0, made.stderr
        invites = json.loads(made.stdout)["invites"]
        assert len(invites) == 4 and invites[0]["link"].startswith(f"https://t.me/{BOT}?start=")
        data = out.read_bytes()
        assert data.startswith({"csv": b"\xef\xbb\xbfcode,", "png": b"\x89PNG", "pdf": b"%PDF"}[ext])
    bad = gocua(cli_db, "invite", "create", "--role", "volunteer", "--area", "danang", "--count", "101")
    assert bad.returncode == 2 and "--count" in bad.stderr
    wrong_ext = gocua(cli_db, "invite", "create", "--role", "volunteer", "--area", "danang", "--out", "x.doc")
    assert wrong_ext.returncode == 2 and ".pdf" in wrong_ext.stderr


def test_readme_figures_match_the_code():
    """The README says 31 symbols, 12 long, ≈ 7.9 × 10¹⁷ codes, 100 per sheet."""
    from pathlib import Path

    from db.repo.invites import CODE_ALPHABET, CODE_LENGTH, MAX_BATCH

    assert len(CODE_ALPHABET) == 31 and CODE_LENGTH == 12 and MAX_BATCH == 100
    assert len(CODE_ALPHABET) ** CODE_LENGTH == 787_662_783_788_549_761
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "7.9 × 10¹⁷" in readme and "--count" in readme


async def test_the_bot_username_comes_from_getme_when_not_configured(demo, settings):
    """Without TELEGRAM_BOT_USERNAME, `gocua run telegram` asks getMe, and /invite's links use it."""
    from tests.fakes.telegram_api import FakeTelegramAPI
    from tests.test_telegram import running

    assert demo.core.services.bot_username is None
    async with FakeTelegramAPI() as api, running(
            settings.with_overrides(telegram_bot_token=api.token, telegram_api_base=api.base_url), demo,
            api.wait_for("getUpdates")):
        assert demo.core.services.bot_username == "gocua_test_bot"
        lan = Talker(demo, "lan", lang="en")
        await lan.say("/invite")
        await lan.press(payload_of(lan, "Volunteers"))
        await lan.press(payload_of(lan, "Tà Lang"))
        await lan.say("1")
        assert "https://t.me/gocua_test_bot?start=" in lan.text()
