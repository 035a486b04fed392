"""Printable invite sheets: one card per invite with its QR code, as PNG, PDF or CSV.

A sheet is A4 portrait with CARDS_PER_PAGE cards (COLUMNS × ROWS) separated by cut lines; a
card shows the area, the role, a QR code of the Telegram deep link, the code in large letters,
the link, the expiry and short instructions (the Zalo way: send `/start CODE`). The PNG stacks
the pages into one image; the PDF has one page per sheet page.

Pure and thread-safe: every text arrives translated (instructions may hold `{code}`, replaced
by each card's code). Font: DejaVu, bundled with matplotlib, which has every Vietnamese glyph.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import segno
from PIL import Image, ImageDraw, ImageFont

COLUMNS, ROWS = 3, 4
CARDS_PER_PAGE = COLUMNS * ROWS
DPI = 150
PAGE_W, PAGE_H = 1240, 1754  # A4 at DPI
MARGIN = 30
CARD_W = (PAGE_W - 2 * MARGIN) // COLUMNS
CARD_H = (PAGE_H - 2 * MARGIN) // ROWS
QR_ERROR = "m"  # 15 % of a code may be smudged and it still reads
QR_TOP = 120  # from the card's top: below two lines of area, the role and the quiet zone
QR_MAX = 160  # pixels the QR code may take on a card (29 modules: 145 px, 2.5 cm printed)
QUIET = 4  # modules of white a reader needs around a QR code
PDF_MM_PER_PX = 210 / PAGE_W
LINE_MM = 0.42  # PDF line height in mm per point of font size

_FONTS = None


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@dataclass(frozen=True)
class SheetInvite:
    code: str
    link: str | None  # the Telegram deep link; None when the bot's username is not known

    @property
    def qr_data(self) -> str:
        """What the QR code holds: the deep link (a phone's camera opens Telegram at it)."""
        return self.link or f"/start {self.code}"


@dataclass(frozen=True)
class InviteSheet:
    title: str  # e.g. "Join GoCua"
    area: str  # the area's name
    role: str  # the role, translated
    expires: str  # the expiry as people read it ("12/12/2026")
    expires_label: str  # "Valid until"
    instructions: tuple[str, ...]  # short lines; "{code}" becomes the card's code
    invites: tuple[SheetInvite, ...]
    area_code: str = ""
    expires_iso: str = ""  # for the CSV


def qr(data: str) -> segno.QRCode:
    return segno.make(data, error=QR_ERROR, micro=False)


def _fonts() -> dict[str, ImageFont.FreeTypeFont]:
    global _FONTS
    if _FONTS is None:
        d = _font_dir()
        _FONTS = {
            "title": ImageFont.truetype(str(d / "DejaVuSans-Bold.ttf"), 24),
            "text": ImageFont.truetype(str(d / "DejaVuSans.ttf"), 17),
            "small": ImageFont.truetype(str(d / "DejaVuSans.ttf"), 14),
            "link": ImageFont.truetype(str(d / "DejaVuSans.ttf"), 12),
            "code": ImageFont.truetype(str(d / "DejaVuSansMono-Bold.ttf"), 28),
        }
    return _FONTS


def pages(sheet: InviteSheet) -> int:
    return max(1, -(-len(sheet.invites) // CARDS_PER_PAGE))


def _card_origin(index: int) -> tuple[int, int]:
    """Top-left corner, in the stacked PNG, of card `index`."""
    page, slot = divmod(index, CARDS_PER_PAGE)
    row, col = divmod(slot, COLUMNS)
    return MARGIN + col * CARD_W, page * PAGE_H + MARGIN + row * CARD_H


def qr_box(sheet: InviteSheet, index: int) -> tuple[int, int, int]:
    """(x, y, pixels per module) of invite `index`'s QR code in the PNG (for checking it)."""
    size = len(qr(sheet.invites[index].qr_data).matrix)
    scale = max(2, QR_MAX // size)
    x, y = _card_origin(index)
    return x + (CARD_W - size * scale) // 2, y + QR_TOP, scale


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """`text` wrapped to `width` pixels at word boundaries (a word longer than the width is cut)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=font) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


Lines = list[tuple[str, str]]  # (font, text)


def _card_lines(sheet: InviteSheet, invite: SheetInvite) -> tuple[Lines, Lines]:
    """(lines above the QR code, lines below it) as (font, text)."""
    above = [("title", sheet.area), ("text", f"{sheet.title} · {sheet.role}")]
    below = [("code", invite.code)]
    if invite.link:
        below.append(("link", invite.link))
    below.append(("small", f"{sheet.expires_label}: {sheet.expires}"))
    below += [("small", line.replace("{code}", invite.code)) for line in sheet.instructions]
    return above, below


def render_png(sheet: InviteSheet) -> bytes:
    """The sheet as one PNG: its A4 pages stacked, at 150 dpi."""
    fonts = _fonts()
    image = Image.new("L", (PAGE_W, PAGE_H * pages(sheet)), 255)
    draw = ImageDraw.Draw(image)
    inner = CARD_W - 24
    for index, invite in enumerate(sheet.invites):
        x0, y0 = _card_origin(index)
        draw.rectangle((x0, y0, x0 + CARD_W, y0 + CARD_H), outline=170, width=1)
        above, below = _card_lines(sheet, invite)
        y: float = y0 + 12
        for font, text in above:
            for line in _fit(draw, text, fonts[font], inner)[:2 if font == "title" else 1]:
                draw.text((x0 + 12, y), line, font=fonts[font], fill=0)
                y += fonts[font].size + 6
        qx, qy, scale = qr_box(sheet, index)
        matrix = qr(invite.qr_data).matrix
        for r, row in enumerate(matrix):
            for c, dark in enumerate(row):
                if dark:
                    draw.rectangle((qx + c * scale, qy + r * scale,
                                    qx + (c + 1) * scale - 1, qy + (r + 1) * scale - 1), fill=0)
        y = qy + (len(matrix) + QUIET) * scale + 0.0
        for font, text in below:
            for line in _fit(draw, text, fonts[font], inner):
                if y + fonts[font].size > y0 + CARD_H - 4:
                    break
                width = draw.textlength(line, font=fonts[font])
                left = x0 + (CARD_W - width) / 2 if font == "code" else x0 + 12
                draw.text((left, y), line, font=fonts[font], fill=0)
                y += fonts[font].size + 5
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _pdf_lines(pdf: Any, width: float, height: float, text: str) -> list[str]:
    """The lines `text` takes in a cell `width` wide in the current font (nothing drawn)."""
    return list(pdf.multi_cell(width, height, text, dry_run=True, output="LINES"))


def render_pdf(sheet: InviteSheet) -> bytes:
    """The sheet as an A4 PDF, the same cards as the PNG."""
    from fpdf import FPDF

    d = _font_dir()
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(f"{sheet.title} · {sheet.area}")
    pdf.add_font("dejavu", "", str(d / "DejaVuSans.ttf"))
    pdf.add_font("dejavu", "B", str(d / "DejaVuSans-Bold.ttf"))
    pdf.add_font("dejavumono", "B", str(d / "DejaVuSansMono-Bold.ttf"))
    k = PDF_MM_PER_PX
    sizes = {"title": ("dejavu", "B", 11), "text": ("dejavu", "", 9), "small": ("dejavu", "", 7),
             "link": ("dejavu", "", 6), "code": ("dejavumono", "B", 13)}
    for index, invite in enumerate(sheet.invites):
        if index % CARDS_PER_PAGE == 0:
            pdf.add_page()
        x0, y0 = _card_origin(index)
        y0 -= (index // CARDS_PER_PAGE) * PAGE_H
        pdf.set_draw_color(170)
        pdf.set_line_width(0.2)
        pdf.rect(x0 * k, y0 * k, CARD_W * k, CARD_H * k)
        above, below = _card_lines(sheet, invite)
        pdf.set_xy((x0 + 12) * k, (y0 + 10) * k)
        for font, text in above:
            family, style, size = sizes[font]
            pdf.set_font(family, style, size)
            most = 2 if font == "title" else 1  # as many lines as the PNG: the QR code comes next
            lines = _pdf_lines(pdf, (CARD_W - 24) * k, size * LINE_MM, text)
            if len(lines) > most:
                text = "\n".join(lines[:most]).rstrip(" ,.;:(") + "…"
            pdf.set_x((x0 + 12) * k)
            pdf.multi_cell((CARD_W - 24) * k, size * LINE_MM, text, align="L",
                           new_x="LMARGIN", new_y="NEXT", max_line_height=size * LINE_MM)
        qx, qy, scale = qr_box(sheet, index)
        qy -= (index // CARDS_PER_PAGE) * PAGE_H
        code = qr(invite.qr_data)
        png = io.BytesIO()
        code.save(png, kind="png", scale=4, border=0)
        png.seek(0)
        side = len(code.matrix) * scale * k
        pdf.image(png, x=qx * k, y=qy * k, w=side, h=side)
        pdf.set_y((qy + QUIET * scale) * k + side)
        bottom = (y0 + CARD_H - 3) * k
        for font, text in below:
            family, style, size = sizes[font]
            pdf.set_font(family, style, size)
            count = len(_pdf_lines(pdf, (CARD_W - 24) * k, size * LINE_MM, text))
            if pdf.get_y() + count * size * LINE_MM > bottom:  # never over the cut line
                break
            pdf.set_x((x0 + 12) * k)
            pdf.multi_cell((CARD_W - 24) * k, size * LINE_MM, text, align="C" if font == "code" else "L",
                           new_x="LMARGIN", new_y="NEXT")
    if not sheet.invites:
        pdf.add_page()
    return bytes(pdf.output())


CSV_COLUMNS = ("code", "role", "area_code", "area", "expires_at", "telegram_link", "zalo_message")


def render_csv(sheet: InviteSheet, role_key: str = "") -> bytes:
    """One line per invite, UTF-8 with a byte order mark (Excel opens it with its diacritics)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for invite in sheet.invites:
        writer.writerow((invite.code, role_key or sheet.role, sheet.area_code, sheet.area,
                         sheet.expires_iso or sheet.expires, invite.link or "", f"/start {invite.code}"))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def render(sheet: InviteSheet, fmt: str, role_key: str = "") -> bytes:
    """The sheet in `fmt`: png, pdf or csv."""
    if fmt == "png":
        return render_png(sheet)
    if fmt == "pdf":
        return render_pdf(sheet)
    if fmt == "csv":
        return render_csv(sheet, role_key)
    raise ValueError(f"no invite sheet format {fmt!r}")
