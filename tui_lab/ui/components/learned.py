"""What the network learned, like TensorFlow Playground's output: for 2-D points the decision regions with the
validation points over them, for sequence tasks prediction against target on a few validation sequences, for
digits the accuracy of each class. Rich text made for the panel's size; redrawn only when a new measurement
comes (the trainer measures at the panel's rate while it is on screen: core/learned.py).

Class colours avoid red, yellow and green, which mean alarm, caution and healthy everywhere else on the screen.
With NO_COLOR the regions are shading characters, one per class, and the points their class's digit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.events import Resize

from tui_lab.core.fmt import num
from tui_lab.core.i18n import N_, _
from tui_lab.core.run import Learned
from tui_lab.ui import palette
from tui_lab.ui.components.gradflow import TextPanel
from tui_lab.ui.frame import Frame
from tui_lab.ui.glyphs import G

# One bright colour per class (points, bars); the regions are the same colours darkened. No red/yellow/green.
CLASS_RGB = [
    (90, 150, 255),  # blue
    (235, 100, 235),  # magenta
    (70, 225, 235),  # cyan
    (235, 235, 235),  # white
    (170, 130, 255),  # violet
    (255, 160, 210),  # pink
    (140, 200, 255),  # sky
    (205, 175, 135),  # tan
    (150, 155, 180),  # slate
    (110, 115, 255),  # indigo
]
SHADES = (0.28, 0.4, 0.55)  # a region's darkness by the net's confidence there: unsure, leaning, sure
LIGHTEN = 0.35  # points: the class colour this much towards white, to stand out on any region
NO_COLOR_FILL = " ░▒▓█:+=#%"  # NO_COLOR: one shading character per class (ASCII mode: G.fills)
POINT = "●"  # a validation point (ASCII mode: G.point)
LEGEND_W = 11


def no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def _rgb(c: int, shade: float = 1.0) -> Color:
    r, g, b = CLASS_RGB[c % len(CLASS_RGB)]
    return Color.from_rgb(r * shade, g * shade, b * shade)


def _point_rgb(c: int) -> Color:
    return Color.from_rgb(*(v + (255 - v) * LIGHTEN for v in CLASS_RGB[c % len(CLASS_RGB)]))


# On 16 colours the darkened RGB regions would all fall on one grey: the regions are then characters (as under
# NO_COLOR) in each class's own ANSI colour. No red, yellow or green; magenta only from the eighth class on.
CLASS_ANSI = ["bright_blue", "bright_cyan", "bright_white", "blue", "cyan", "white", "bright_black",
              "bright_magenta", "magenta", "default"]  # fmt: skip


def _named(c: int, bold: bool = False) -> Style | None:
    """A class's ANSI colour for its characters on a 16-colour terminal; None elsewhere."""
    if not palette.sixteen() or palette.no_color():
        return None
    return Style(color=CLASS_ANSI[c % len(CLASS_ANSI)], bold=bold)


def class_style(c: int) -> Style:
    return Style(color=_point_rgb(c), bold=True)


class LearnedPanel(TextPanel):
    BORDER_TITLE = N_("What the network learned")
    EMPTY = N_("what the network learned: comes with the first snapshot")

    def key(self, frame: Frame) -> Hashable:
        return frame.learned, frame.snapshot is None, frame.read_only

    def draw(self, frame: Frame) -> None:
        learned = frame.learned
        self.body.redraw((learned.kind if learned is not None else None, self.size))

    def on_resize(self, event: Resize) -> None:
        if self.frame is not None:
            self.body.redraw(("resize", event.size))  # the regions fill the panel: a new height is a new map

    def text(self, width: int) -> Text:
        frame = self.frame
        learned = frame.learned if frame is not None else None
        text = Text(no_wrap=True, overflow="crop")
        if learned is None:
            if frame is not None and frame.read_only and frame.snapshot is not None:
                text.append(_("what the network learned: this run directory has no learned.jsonl"), "dim")
            else:
                text.append(_(self.EMPTY), "dim")
            return text
        height = max(self.scrollable_content_region.height, 4)
        if learned.kind == "regions":
            return regions(learned, width, height, plain=no_color() or palette.sixteen())
        if learned.kind == "sequences":
            return sequences(learned, width, plain=no_color())
        return classes(learned, width, plain=no_color())


# ---------------------------------------------------------------------------------------------------------
# Decision regions.


def map_size(learned: Learned, width: int, rows: int, per_row: int) -> tuple[int, int]:
    """(columns, pixel rows) of the map: as large as fits, keeping the plane's shape. A character cell is
    about twice as tall as wide; with `per_row` = 2 (half blocks) each holds two square pixels."""
    x0, x1, y0, y1 = learned.bounds or (0.0, 1.0, 0.0, 1.0)
    aspect = (x1 - x0) / (y1 - y0) if y1 > y0 else 1.0  # width / height of the plane
    pixel_w = 2 / per_row  # a pixel's height in character widths
    pixels = rows * per_row
    cols = max(1, round(pixels * pixel_w * aspect))
    if cols > width:
        cols = width
        pixels = max(1, min(pixels, round(cols / aspect / pixel_w)))
    return cols, pixels


def regions(learned: Learned, width: int, height: int, plain: bool = False) -> Text:
    """The plane: each pixel the predicted class (darker where the net is unsure), validation points on top
    in their true class's colour: a point on another colour is one the net gets wrong."""
    text = Text(no_wrap=True, overflow="crop")
    grid, conf = learned.grid, learned.confidence
    classes = max(learned.classes, 1)
    what = _("digits: validation points") if plain else f"{G.point} " + _("validation points")
    caption = _("decision regions at step {step} · {what}").format(step=learned.step, what=what)
    if len(caption) > width:
        points = _("digits: points") if plain else f"{G.point} " + _("points")
        caption = _("regions · step {step} · {what}").format(step=learned.step, what=points)
    if not grid or not grid[0]:
        text.append(caption + _(": no grid"), "dim")
        return text
    half = not plain and G.half_blocks  # two pixels a cell (▀ in two colours); ASCII mode: one, a coloured space
    per_row = 2 if half else 1
    rows = max(height - 1, 2)  # the caption takes a line
    cols, pixels = map_size(learned, width, rows, per_row)
    side = _legend(classes, plain) if width - cols > LEGEND_W else []  # beside the map
    below = None  # else one line under it, when there is room for it
    if not side and rows > 4:
        below = _legend_line(classes, plain, width)
        cols, pixels = map_size(learned, width, rows - 1, per_row)
    g_rows, g_cols = len(grid), len(grid[0])

    def cell(pr: int, pc: int) -> tuple[int, int]:
        gr = min(g_rows - 1, (2 * pr + 1) * g_rows // (2 * pixels))
        gc = min(g_cols - 1, (2 * pc + 1) * g_cols // (2 * cols))
        row = grid[gr]
        c = int(row[gc]) if gc < len(row) and row[gc].isdigit() else 0
        level = conf[gr][gc] if gr < len(conf) and gc < len(conf[gr]) else "9"
        return c, int(level) if level.isdigit() else 9

    # The points, each in the pixel it falls in, no more than one character cell in four holds (the regions
    # must still show on a small map); where several share a cell, one the net gets wrong wins.
    x0, x1, y0, y1 = learned.bounds or (0.0, 1.0, 0.0, 1.0)
    char_rows = (pixels + per_row - 1) // per_row
    points: dict[tuple[int, int], tuple[int, int]] = {}  # (char row, col) -> (class, pixel row)
    for x, y, c in learned.points[: max(8, cols * char_rows // 4)]:
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            continue
        pc = min(cols - 1, int((x - x0) / (x1 - x0) * cols))
        pr = min(pixels - 1, int((y1 - y) / (y1 - y0) * pixels))
        where = (pr // per_row, pc)
        if where not in points or cell(pr, pc)[0] != c:
            points[where] = (c, pr)

    def shade(c: int, level: int) -> Color:
        return _rgb(c, SHADES[0] if level < 3 else SHADES[1] if level < 7 else SHADES[2])

    text.append(caption, "dim")
    for r in range(char_rows):
        text.append("\n")
        run_text, run_style = "", None
        for pc in range(cols):
            point = points.get((r, pc))
            if plain:
                c = cell(r, pc)[0]
                char = str(point[0]) if point else G.fills[c % len(G.fills)]
                style: Style | None = _named(point[0], bold=True) if point else _named(c)
            elif not half:
                here = cell(r, pc)
                if point is not None:
                    char, style = G.point, Style(color=_point_rgb(point[0]), bgcolor=shade(*here), bold=True)
                else:
                    char, style = " ", Style(bgcolor=shade(*here))
            else:
                top = cell(2 * r, pc)
                bottom = cell(2 * r + 1, pc) if 2 * r + 1 < pixels else None
                if point is not None:
                    c, pr = point
                    under = top if pr == 2 * r or bottom is None else bottom
                    char, style = G.point, Style(color=_point_rgb(c), bgcolor=shade(*under), bold=True)
                elif bottom is None:
                    char, style = "▀", Style(color=shade(*top))
                elif shade(*top) == shade(*bottom):
                    char, style = " ", Style(bgcolor=shade(*top))
                else:
                    char, style = "▀", Style(color=shade(*top), bgcolor=shade(*bottom))
            if style != run_style and run_text:
                text.append(run_text, run_style)
                run_text = ""
            run_text, run_style = run_text + char, style
        if run_text:
            text.append(run_text, run_style)
        if r < len(side):
            text.append(" ")
            text.append_text(side[r])
    if below is not None:
        text.append("\n")
        text.append_text(below)
    return text


def _swatch(c: int, plain: bool) -> Text:
    """A class's key: its region's shading and its point."""
    if plain:
        style = (_named(c) or Style()) + Style(reverse=c == 0)  # class 0's blank fill shows reversed
        return Text(f"{G.fills[c % len(G.fills)]}{c}", style)
    key = Text(G.swatch, Style(color=_rgb(c, SHADES[2])))
    key.append(G.point, class_style(c))
    return key


def _legend(classes: int, plain: bool) -> list[Text]:
    """The key beside the map, a class a line."""
    lines = []
    for c in range(classes):
        line = _swatch(c, plain)
        line.append(" " + _("class {n}").format(n=c))
        lines.append(line)
    if not plain:
        lines += [Text(_("darker:"), "dim"), Text(_("less sure"), "dim")]
    return lines


def _legend_line(classes: int, plain: bool, width: int) -> Text:
    """The key under the map, in one line."""
    line = Text(_("class") + " ", "dim")
    for c in range(classes):
        line.append_text(_swatch(c, plain))
        line.append("  " if plain else f"{c}  ")  # the plain key holds the digit already
    darker = _("darker: less sure")
    if not plain and line.cell_len + len(darker) <= width:
        line.append(darker, "dim")
    return line


# ---------------------------------------------------------------------------------------------------------
# Sequences and classes.


def sequences(learned: Learned, width: int, plain: bool = False) -> Text:
    if learned.classes:
        return _copy(learned, width)
    return _adding(learned, width, plain)


def _adding(learned: Learned, width: int, plain: bool) -> Text:
    """Target against prediction: the prediction a bar, the target a mark on the same scale."""
    text = Text(no_wrap=True, overflow="crop")
    caption = _("the sum of the two marked values: target against predicted, step {step}").format(step=learned.step)
    if len(caption) > width:
        caption = _("adding: target against predicted, step {step}").format(step=learned.step)
    text.append(caption + "\n", "dim")
    known = [v for v in [*learned.targets, *learned.predictions] if isinstance(v, (int, float)) and math.isfinite(v)]
    top = max([2.0, *known])
    marked_w = 13 if width >= 56 else 0  # the two marked values, when there is room for them
    bar_w = max(width - marked_w - 21, 6)
    # TRANSLATORS: column heads of at most 11, 6 and 9 characters.
    marked_head, target_head, predicted_head = _("marked"), _("target"), _("predicted")
    text.append(f"{marked_head:>11}  " if marked_w else "", "bold")
    text.append(f"{target_head:>6}  {predicted_head:>9}", "bold")
    text.append(f"  0{G.empty * max(bar_w - 2 - len(num(top, 2)), 1)}{num(top, 2)}\n", "dim")
    bar_style = "" if plain else Style(color=_rgb(2))
    mark_style = "bold" if plain else Style(color=_point_rgb(3), bold=True)
    for inputs, target, pred in zip(learned.inputs, learned.targets, learned.predictions):
        if marked_w:
            text.append(f"{'+'.join(f'{v:.2f}' for v in inputs[:2]):>11}  ")
        ok = isinstance(pred, (int, float)) and math.isfinite(pred)
        text.append(f"{target:>6.2f}  {f'{pred:.2f}' if ok else 'nan':>9}  ")
        filled = min(bar_w, max(0, round(pred / top * bar_w))) if ok else 0  # type: ignore[operator]
        mark = min(bar_w - 1, max(0, round(target / top * bar_w) - 1))
        text.append(G.bar * min(filled, mark), bar_style)
        text.append(" " * max(mark - filled, 0), "dim")
        text.append(G.mark, mark_style)
        text.append(G.bar * max(filled - mark - 1, 0), bar_style)
        text.append("\n")
    text.append(f"{G.bar} {predicted_head}  {G.mark} {target_head}", "dim")
    return text


def _copy(learned: Learned, width: int) -> Text:
    """The first symbols of each sequence (the first one is the one to name) and what the net named."""
    text = Text(no_wrap=True, overflow="crop")
    text.append(
        _("name the first symbol at the end of the sequence: step {step}").format(step=learned.step) + "\n", "dim"
    )
    right = 0
    for inputs, target, pred in zip(learned.inputs, learned.targets, learned.predictions):
        text.append(f"{int(inputs[0]) if inputs else target}", "bold underline")
        text.append(" " + " ".join(str(int(v)) for v in inputs[1:]) + " " + G.ellipsis, "dim")
        text.append(f"  {G.arrow} " + _("named") + " ")
        if pred == target:
            right += 1
            text.append(f"{pred} {G.ok}\n", "bold")
        else:
            text.append(f"{pred if pred is not None else '?'} {G.wrong}", "bold reverse")
            text.append(" " + _("(was {target})").format(target=target) + "\n")
    text.append(_("named right: {right} of {count}").format(right=right, count=len(learned.targets)), "dim")
    return text


def classes(learned: Learned, width: int, plain: bool = False) -> Text:
    """One bar per class: the share of its validation examples the net names right."""
    text = Text(no_wrap=True, overflow="crop")
    text.append(_("validation accuracy per class at step {step}").format(step=learned.step) + "\n", "dim")
    bar_w = max(width - 18, 6)
    for c, (acc, count) in enumerate(zip(learned.accuracy, learned.counts)):
        text.append(f"{c:>2} ", "bold")
        cells = round((acc or 0.0) * bar_w)
        text.append(G.bar * cells, "" if plain else class_style(c))
        text.append(G.empty * (bar_w - cells), "dim")
        text.append(f" {'  -' if acc is None else f'{acc * 100:3.0f}'}%", "bold")
        text.append(" " + _("of {count}").format(count=count) + "\n", "dim")
    total, right = sum(learned.counts), sum(learned.correct)
    if total:
        text.append(_("all: {share} of {count}").format(share=f"{right / total * 100:.0f}%", count=total), "dim")
    return text
