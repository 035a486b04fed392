"""The `/stats` progress chart: a portrait PNG, readable on a phone, with Vietnamese labels.

Two panels stacked vertically: completed procedures per week (bars with their values), then the
progress towards each target (horizontal bars with "85% · 170 / 200" written on them).

Pure and thread-safe: every text arrives already translated, and the figure is built with the
object-oriented API (no pyplot, no rcParams changes), so the bot can call it via
`asyncio.to_thread`. Font: DejaVu Sans, bundled with matplotlib, which has every Vietnamese glyph.
The layout is computed here from measured text sizes (long labels are wrapped to the real width)
rather than by a layout engine: one draw, fast, and nothing overlaps.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator

from reports.figures import percent

FONT = "DejaVu Sans"
# Given to every text: the font, and no mathtext (a "$" typed by someone stays a "$").
TEXT_STYLE: dict[str, Any] = {"fontfamily": FONT, "parse_math": False}

WIDTH_IN, HEIGHT_IN = 6.0, 8.0  # 900 x 1200 px at DPI
MAX_HEIGHT_IN = 14.0  # taller only when many target rows would not fit
DPI = 150

SUPTITLE_PT = 16
TITLE_PT = 14
LABEL_PT = 12
TICK_PT = 11
LINE_SPACING = 1.3  # line height / font size, for the space reserved above and below texts

BAR_COLOUR = "#1565c0"  # blue: weekly bars and targets not yet reached
DONE_COLOUR = "#2e7d32"  # green: target reached
TRACK_COLOUR = "#e3e7ed"  # the unfilled rest of a progress bar
GRID_COLOUR = "#d5d9de"
TEXT_COLOUR = "#212121"
MUTED_COLOUR = "#616161"

# Layout, in inches unless the name says points.
MARGIN = 0.22  # left, right, top and bottom of the figure
TITLE_GAP = 0.12  # between a panel title and its panel
PANEL_GAP = 0.3  # between the weekly panel's tick labels and the target title
MIN_WEEK_SLOTS = 4  # one or two weeks: bars as wide as with four, centred
MIN_WEEKLY_HEIGHT = 2.0  # the weekly bars keep at least this much; the figure grows taller instead
MIN_AXES_HEIGHT = 0.3  # absurdly long texts may overlap, but the chart still renders
LABEL_GAP_PT = 3.0  # between a target label and its bar
BAR_PT = 26.0  # thickness of a progress bar
ROW_GAP_PT = 13.0  # between a progress bar and the next label
FILL_INSIDE_FROM = 0.55  # filled at least this much: the text goes inside the fill, in white


@dataclass(frozen=True)
class ChartText:
    """Every text of the chart, already translated."""

    title: str  # e.g. "Phường Thuận Hóa"
    weekly_title: str  # e.g. "Thủ tục hoàn thành mỗi tuần · 12 tuần qua (15/09 – 04/12)": its period
    weekly_axis: str  # e.g. "Số thủ tục"
    target_title: str  # e.g. "Tiến độ so với mục tiêu · 30 ngày qua": the period of the counts
    no_target: str  # e.g. "chưa đặt mục tiêu" (beside a bar without a target)
    no_data: str  # e.g. "Chưa có thủ tục nào hoàn thành" (in an empty weekly panel)


@dataclass(frozen=True)
class WeekCount:
    """Procedures completed in one week; `label` is the week's Monday, formatted by the caller."""

    label: str  # e.g. "03/11"
    completed: int


@dataclass(frozen=True)
class TargetBar:
    """One progress bar: a count against its target (None, or a target <= 0: no target set)."""

    label: str  # e.g. "Hộ đã tiếp cận"
    value: int
    target: int | None


def render_progress_chart(text: ChartText, weeks: Sequence[WeekCount], bars: Sequence[TargetBar]) -> bytes:
    """Draw the two-panel progress chart and return it as PNG bytes.

    900 x 1200 px; taller (up to 900 x 2100) only when many target rows would not fit otherwise.
    """
    fig = build_progress_figure(text, weeks, bars)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, facecolor="white")
    return out.getvalue()


def build_progress_figure(text: ChartText, weeks: Sequence[WeekCount], bars: Sequence[TargetBar]) -> Figure:
    """The chart as a matplotlib Figure on its own Agg canvas (for tests, or another output format)."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    _Chart(fig, canvas.get_renderer()).draw(text, weeks, bars)
    return fig


@dataclass(frozen=True)
class _Weekly:
    """Where the weekly panel's texts go, measured before anything is placed."""

    axis_label: str
    labels: list[str]
    left: float  # inches from the figure's left edge to the axes
    ticks_height: float  # inches below the axes for the tick labels
    rotate: bool
    value_size: float  # points, for the values above the bars


class _Chart:
    """Lays the figure out from the top (titles, weekly panel) and the bottom (target rows)."""

    def __init__(self, fig: Figure, renderer: RendererBase) -> None:
        self.fig = fig
        self.renderer = renderer
        self.widths: dict[tuple[str, float, bool], float] = {}
        self.height = HEIGHT_IN

    def draw(self, text: ChartText, weeks: Sequence[WeekCount], bars: Sequence[TargetBar]) -> None:
        inner_width = WIDTH_IN - 2 * MARGIN
        title = self.wrap(text.title, SUPTITLE_PT, inner_width, bold=True)
        weekly_title = self.wrap(text.weekly_title, TITLE_PT, inner_width, bold=True)
        weekly_title_top = MARGIN + _height(title, SUPTITLE_PT) + 0.2
        top = weekly_title_top + _height(weekly_title, TITLE_PT) + TITLE_GAP

        counts = [max(week.completed, 0) for week in weeks]
        weekly = self.weekly_geometry(text, weeks, counts) if any(counts) else None
        ticks_height = weekly.ticks_height if weekly else 0.0

        target_title = self.wrap(text.target_title, TITLE_PT, inner_width, bold=True)
        labels = [self.wrap(bar.label, LABEL_PT, inner_width) for bar in bars]
        wanted = sum(_row_points(label) for label in labels) / 72
        below_weekly = ticks_height
        if bars:
            below_weekly += PANEL_GAP + _height(target_title, TITLE_PT) + TITLE_GAP
        # Many target rows: the figure grows taller rather than shrinking the text (up to a limit).
        needed = top + MIN_WEEKLY_HEIGHT + below_weekly + wanted + MARGIN
        self.height = min(max(HEIGHT_IN, needed), MAX_HEIGHT_IN)
        if self.height != HEIGHT_IN:
            self.fig.set_size_inches(WIDTH_IN, self.height)

        self.fig_text(WIDTH_IN / 2, MARGIN, title, SUPTITLE_PT, ha="center", bold=True)
        self.fig_text(MARGIN, weekly_title_top, weekly_title, TITLE_PT, bold=True)
        bottom = self.height - MARGIN
        if bars:
            room = bottom - top - MIN_WEEKLY_HEIGHT - below_weekly
            height = min(wanted, max(room, 1.0))
            _draw_targets(
                self.axes(MARGIN, bottom - height, inner_width, height),
                text,
                bars,
                labels,
                scale=height / wanted,
            )
            bottom -= height + TITLE_GAP + _height(target_title, TITLE_PT)
            self.fig_text(MARGIN, bottom, target_title, TITLE_PT, bold=True)
            bottom -= PANEL_GAP

        if weekly is None:
            ax = self.axes(MARGIN, top, inner_width, max(bottom - top, MIN_AXES_HEIGHT))
            ax.set_axis_off()
            message = self.wrap(text.no_data, LABEL_PT + 1, inner_width * 0.8)
            ax.text(
                0.5,
                0.5,
                message,
                transform=ax.transAxes,
                ha="center",
                va="center",
                multialignment="center",
                fontsize=LABEL_PT + 1,
                color=MUTED_COLOUR,
                **TEXT_STYLE,
            )
            return
        bottom -= ticks_height
        width = max(WIDTH_IN - MARGIN - weekly.left, MIN_AXES_HEIGHT)
        ax = self.axes(weekly.left, top, width, max(bottom - top, MIN_AXES_HEIGHT))
        _draw_weekly(ax, counts, weekly)

    def weekly_geometry(self, text: ChartText, weeks: Sequence[WeekCount], counts: list[int]) -> _Weekly:
        """Room for the y axis on the left, tick labels below (rotated when they would not fit)."""
        axis_label = self.wrap(text.weekly_axis, LABEL_PT, MIN_WEEKLY_HEIGHT - 0.2)
        digits = len(str(max(counts) * 6 // 5))
        left = MARGIN + _height(axis_label, LABEL_PT) + 0.1 + self.width("8" * digits, TICK_PT) + 0.12
        slot = (WIDTH_IN - MARGIN - left) / max(len(counts), MIN_WEEK_SLOTS)
        labels = [_clean(week.label) for week in weeks]
        widest = self.width(max(labels, key=len), TICK_PT)
        rotate = widest + 0.1 > slot
        line = TICK_PT * LINE_SPACING / 72
        ticks_height = ((widest + line) * 0.71 if rotate else line) + 0.1
        # Values above the bars: as large as fits the width of a bar's slot.
        value_width = self.width(str(max(counts)), TICK_PT)
        value_size = max(7.0, min(float(TICK_PT), TICK_PT * slot * 0.95 / value_width))
        return _Weekly(axis_label, labels, left, ticks_height, rotate, value_size)

    def axes(self, left: float, top: float, width: float, height: float) -> Axes:
        """A new axes placed in inches from the figure's top-left corner."""
        box = (left / WIDTH_IN, 1 - (top + height) / self.height, width / WIDTH_IN, height / self.height)
        return self.fig.add_axes(box)

    def fig_text(self, x: float, top: float, text: str, size: float, *, ha: str = "left", bold: bool) -> None:
        self.fig.text(
            x / WIDTH_IN,
            1 - top / self.height,
            text,
            ha=ha,
            va="top",
            multialignment=ha,
            fontsize=size,
            fontweight="bold" if bold else "normal",
            color=TEXT_COLOUR,
            **TEXT_STYLE,
        )

    def width(self, text: str, size: float, *, bold: bool = False) -> float:
        """The width of one line of text, in inches (measured once per text: shaping is slow)."""
        key = (text, size, bold)
        if key not in self.widths:
            font = FontProperties(family=FONT, size=size, weight="bold" if bold else "normal")
            pixels, _, _ = self.renderer.get_text_width_height_descent(text, font, ismath=False)
            self.widths[key] = float(pixels) / DPI
        return self.widths[key]

    def wrap(self, value: Any, size: float, max_width: float, *, bold: bool = False) -> str:
        """Word-wrap to the measured width; a word longer than a line is split, never cut.

        A line's width is the sum of its words and spaces, each measured once: close enough
        (kerning across a space is negligible) and much faster than measuring every candidate line.
        """
        space = self.width("x x", size, bold=bold) - self.width("xx", size, bold=bold)
        lines: list[str] = []
        current: list[str] = []
        used = 0.0
        for word in _clean(value).split():
            wide = self.width(word, size, bold=bold)
            if current and used + space + wide <= max_width:
                current.append(word)
                used += space + wide
                continue
            if current:
                lines.append(" ".join(current))
            while wide > max_width and len(word) > 1:
                cut = max(1, min(len(word) - 1, int(len(word) * max_width / wide)))
                while cut > 1 and self.width(word[:cut], size, bold=bold) > max_width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
                wide = self.width(word, size, bold=bold)
            current, used = [word], wide
        if current:
            lines.append(" ".join(current))
        return "\n".join(lines)


def _draw_weekly(ax: Axes, counts: list[int], weekly: _Weekly) -> None:
    positions = list(range(len(counts)))
    container = ax.bar(positions, counts, width=0.7, color=BAR_COLOUR, zorder=2)
    ax.bar_label(
        container,
        labels=[str(count) for count in counts],
        padding=2,
        fontsize=weekly.value_size,
        color=TEXT_COLOUR,
        **TEXT_STYLE,
    )
    ax.set_xticks(
        positions,
        labels=weekly.labels,
        rotation=45 if weekly.rotate else 0,
        ha="right" if weekly.rotate else "center",
        rotation_mode="anchor",
        **TEXT_STYLE,
    )
    spare = max(MIN_WEEK_SLOTS - len(counts), 0) / 2
    ax.set_xlim(-0.6 - spare, len(counts) - 0.4 + spare)
    ax.set_ylim(0, max(counts) * 1.18)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    ax.tick_params(labelsize=TICK_PT, labelfontfamily=FONT, colors=TEXT_COLOUR)
    ax.tick_params(axis="x", length=0, pad=5)
    ax.set_ylabel(weekly.axis_label, fontsize=LABEL_PT, color=TEXT_COLOUR, **TEXT_STYLE)
    ax.grid(axis="y", color=GRID_COLOUR, linewidth=0.8, zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _draw_targets(
    ax: Axes, text: ChartText, bars: Sequence[TargetBar], labels: list[str], *, scale: float
) -> None:
    """One row per bar, top to bottom: the label, then a full-width track with the progress filled in.

    The y axis is in points from the top, so the rows are spaced exactly for their labels.
    """
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(sum(_row_points(label) for label in labels), 0)
    size = LABEL_PT * min(scale, 1.0)
    y = 0.0
    for bar, label in zip(bars, labels, strict=True):
        ax.text(0, y, label, va="top", fontsize=size, color=TEXT_COLOUR, **TEXT_STYLE)
        y += _label_points(label) + LABEL_GAP_PT
        centre = y + BAR_PT / 2
        y += BAR_PT + ROW_GAP_PT
        value = max(bar.value, 0)
        if bar.target is None or bar.target <= 0:
            ax.barh(centre, 1.0, height=BAR_PT, color="white", edgecolor=TRACK_COLOUR, linewidth=1.5)
            message = f"{value} · {_clean(text.no_target)}"
            _bar_text(ax, 0.02, centre, message, size, "left", MUTED_COLOUR, bold=False)
            continue
        share = percent(value, bar.target)  # as in the text: floored, and "<1%" rather than "0%"
        filled = min(value / bar.target, 1.0)
        ax.barh(centre, 1.0, height=BAR_PT, color=TRACK_COLOUR)
        if filled > 0:
            colour = DONE_COLOUR if value >= bar.target else BAR_COLOUR
            ax.barh(centre, filled, height=BAR_PT, color=colour)
        message = f"{share}  ·  {value} / {bar.target}"
        if filled >= FILL_INSIDE_FROM:
            _bar_text(ax, filled - 0.02, centre, message, size, "right", "white", bold=True)
        else:
            _bar_text(ax, filled + 0.02, centre, message, size, "left", TEXT_COLOUR, bold=True)


def _bar_text(
    ax: Axes, x: float, y: float, message: str, size: float, ha: str, colour: str, *, bold: bool
) -> None:
    ax.text(
        x,
        y,
        message,
        ha=ha,
        va="center_baseline",
        fontsize=size,
        fontweight="bold" if bold else "normal",
        fontstyle="normal" if bold else "italic",
        color=colour,
        **TEXT_STYLE,
    )


def _label_points(label: str) -> float:
    return (label.count("\n") + 1) * LABEL_PT * LINE_SPACING


def _row_points(label: str) -> float:
    return _label_points(label) + LABEL_GAP_PT + BAR_PT + ROW_GAP_PT


def _height(text: str, size: float) -> float:
    """Inches taken by a (possibly multi-line) text."""
    return (text.count("\n") + 1) * size * LINE_SPACING / 72


def _clean(value: Any) -> str:
    """NFC (precomposed Vietnamese letters) on one line, control characters turned into spaces."""
    text = unicodedata.normalize("NFC", str(value))
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()
