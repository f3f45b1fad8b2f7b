"""Per-layer panels drawn with Rich text (clear and cheap): the gradient flow bars, and the activation
statistics of each layer."""

from __future__ import annotations

import math
from collections.abc import Hashable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.events import MouseScrollDown, MouseScrollUp

from tui_lab.core import choices
from tui_lab.core.diagnosis import DEAD_FRAC, EXPLODE, SAT_FRAC, VANISH, VANISH_ADAPTIVE, breakdown
from tui_lab.core.fmt import LOG_FLOOR, MISSING, finite, sci
from tui_lab.core.i18n import N_, _
from tui_lab.ui import palette
from tui_lab.ui.components.axes import sci as short
from tui_lab.ui.components.layer_rows import Row, flat, has_blocks, joint, layer_rows, shorten, split, worst
from tui_lab.ui.components.panel import Panel, TextBody, wrap
from tui_lab.ui.frame import Frame
from tui_lab.ui.glyphs import G

LEVEL = 10.0  # within this factor of the output layer's ||grad W|| a layer's gradient is level (green)

# Each layer's ||grad W|| against the output layer's at the same snapshot: its colour, and the glyphs that say
# it without colour (`marks`). Past the findings' thresholds (VANISH, EXPLODE in core/diagnosis.py) the bar is an
# alarm.
LEVELS: dict[str, str] = {
    "level": palette.HEALTHY,
    "low": palette.CAUTION,
    "high": palette.CAUTION,
    "vanishing": palette.ALARM,
    "exploding": palette.ALARM,
    "nonfinite": palette.ALARM,
    "": "",  # no judgement: no reference (the output layer's gradient is 0 or not finite), or missing
}


def marks(kind: str) -> str:
    """The two cells after a bar's value that say its level without colour: '↓↓' (ASCII 'vv'), '↓ ', '✖ '."""
    mark = {"low": G.low, "high": G.high, "vanishing": G.vanish, "exploding": G.explode, "nonfinite": G.error}
    return mark.get(kind, "").ljust(2)


def vanish_share(frame: Frame | None) -> float:
    """The share of the output layer's gradient below which the findings call a layer vanishing: 1e-3, or
    1e-6 with an optimiser that rescales each weight's step by its own gradient (Adam, RMSprop...)."""
    name = frame.cfg.optim.name if frame is not None else ""
    return VANISH_ADAPTIVE if name in choices.OPTIMIZERS and choices.OPTIMIZERS[name].adaptive else VANISH


def level(value: float | None, ref: float | None, vanish: float = VANISH) -> str:
    """How `value` (a layer's ||grad W||) compares with `ref` (the output layer's, same snapshot): 'level'
    within LEVEL times, 'low'/'high' beyond it, 'vanishing' below `vanish` of it, 'exploding' above EXPLODE
    times it, 'nonfinite' for NaN/inf, '' when there is nothing to compare (missing value or reference)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nonfinite"
    value, ref = finite(value), finite(ref)
    if value is None or ref is None or ref <= 0:
        return ""
    ratio = value / ref
    if ratio < vanish:
        return "vanishing"
    if ratio > EXPLODE:
        return "exploding"
    if ratio < 1 / LEVEL:
        return "low"
    if ratio > LEVEL:
        return "high"
    return "level"


def bar_style(value: float | None, ref: float | None, vanish: float = VANISH) -> str:
    """The colour of a gradient bar: green level with the output layer, yellow caution, red alarm."""
    return palette.style(LEVELS[level(value, ref, vanish)])


def fold(count: int, room: int, keep: tuple[int, ...] = ()) -> list[int]:
    """Which of `count` rows to draw in `room` lines (room <= 0: not laid out yet, all): all when they fit;
    else, leaving a line for `fold_note`, evenly spaced ones, the first and the last always (input side and
    output layer), and each row of `keep` (where it broke) in place of its nearest neighbour. A deep net keeps
    its whole profile on screen, not only the rows above the fold."""
    if count <= room or room <= 0:
        return list(range(count))
    room = max(room - 1, 3)
    chosen = sorted({round(i * (count - 1) / (room - 1)) for i in range(room)})
    for k in (count - 2, *keep):  # the last hidden layer too: the output side of the profile
        if 0 <= k < count and k not in chosen:
            fixed = (0, count - 2, count - 1, *keep)
            nearest = min((c for c in chosen if c not in fixed), key=lambda c: abs(c - k), default=None)
            if nearest is not None:
                chosen[chosen.index(nearest)] = k
    return sorted(chosen)


def fold_note(shown: int, count: int) -> Text:
    return Text(G.fold + " " + _("{shown} of {count} layers shown").format(shown=shown, count=count), "dim")


NAME_SHARE = 0.4  # of the panel's width at most for the layers' names: a long module path is cut from the left
NAME_MIN = 10


def _label_len(row: Row) -> int:
    """The name column a row needs: a header has its line to itself."""
    if row.kind == "header":
        return 0
    return len(row.text) + (len(_count_suffix(row)) if row.kind == "block" else 0)


def _count_suffix(row: Row) -> str:
    return f" {G.times}{len(row.layers)}"


def _row_label(row: Row, width: int) -> str:
    """A row's name in `width` cells: a block's path and how many layers it holds ('blocks.3 ×6'); a long
    path cut from the left, keeping its end (the layer's own name)."""
    indent = "  " if row.indent else ""
    suffix = _count_suffix(row) if row.kind == "block" else ""
    room = max(width - len(indent) - len(suffix), 1)
    return indent + shorten(row.label, room, G.ellipsis) + suffix


def _value(values: list[float | None], layers: tuple[int, ...]) -> float | None:
    """A row's value: its layer's, or a block's joint norm (None when a layer of it has none)."""
    if any(i >= len(values) for i in layers):
        return None
    return values[layers[0]] if len(layers) == 1 else joint([values[i] for i in layers])


def _worst_cell(
    row: Row, names: list[str], grads: list[float | None], ref: float | None, vanish: float, width: int
) -> Text:
    """After a block's bar: its layer furthest from level (the rest of its path, and its mark), when that one
    is not level itself; blank for a layer's row."""
    cell = Text(" " * width)
    if row.kind != "block" or any(i >= len(grads) for i in row.layers):
        return cell
    values = [grads[i] for i in row.layers]
    kinds = [level(v, ref, vanish) for v in values]
    pick = worst(values, kinds, ref)
    if pick is None or kinds[pick] == "level":
        return cell
    leaf = shorten(split(names[row.layers[pick]])[1], width - 5, G.ellipsis)
    style = palette.style(LEVELS[kinds[pick]])
    cell = Text("  ")
    cell.append(f"{leaf:<{width - 5}} ", style)
    cell.append(marks(kinds[pick]), style)
    return cell


def rows_note(shown: list[int], items: list[Row], layers: int, blocks: bool, can_collapse: bool, width: int) -> Text:
    """The line under rows that scroll or are grouped: which of them are on screen (PgUp/PgDn), and what the
    collapse key does ('z: one row per block', 'z: every layer (299)'); what does not fit the width is left out,
    the collapse key's part first."""
    parts = []
    if len(shown) < len(items):
        first = shown[1] if len(shown) > 1 and shown[1] > shown[0] + 1 else shown[0]  # past a group's header
        where = _("rows {first}-{last} of {count}: PgUp/PgDn").format(
            first=first + 1, last=shown[-1] + 1, count=len(items)
        )
        parts.append(where)
    if blocks:
        parts.append(_("z: every layer ({layers})").format(layers=layers))
    elif can_collapse:
        parts.append(_("z: one row per block"))
    while len(parts) > 1 and len(G.fold + " " + G.sep.join(parts)) > width:
        parts.pop()
    return Text(G.fold + " " + G.sep.join(parts), "dim")


def named(frame: Frame | None, rows: list[str], *more: str | None) -> tuple[int, ...]:
    """The rows a folded panel must keep: the first layer each finding names (a finding about eight dead layers
    must not bunch the fold at one end), and `more` (where it broke)."""
    names = {finding.layers[0] for finding in (frame.findings if frame is not None else []) if finding.layers}
    names |= {name for name in more if name}
    return tuple(i for i, row in enumerate(rows) if row in names)


WHEEL_ROWS = 3  # rows a turn of the mouse wheel moves


class TextPanel(Panel, VerticalScroll):
    """A panel of Rich text made for its width (`text`), scrolling when it is taller than the panel.

    The per-layer panels scroll their rows themselves: a model of hundreds of layers draws only the rows that
    fit, from `top`, under a fixed head (column titles) and above a fixed foot (where the rows are, the axis).
    PgUp/PgDn scroll them from anywhere (the app's keys); focused (Tab), ↑/↓, PgUp/PgDn, Home and End do."""

    top: int | None = None  # the first row drawn while the rows scroll (None: the top; a flat deep net folds)
    _count = 0  # the rows of the last drawing, and the room it had for them (0: not laid out)
    _room = 0
    _flat = True  # the last drawing's rows were a plain list of layers (folded when they do not fit)
    _more = False  # the last drawing had more rows than room
    _first: int | None = None  # the first layer the last drawing showed
    _anchor: int | None = None  # a layer to keep at the top when the rows change (z)

    def compose(self) -> ComposeResult:
        self.body = TextBody(self.text)
        yield self.body

    def on_resize(self) -> None:
        self.body.refresh(layout=True)  # the rows that fit (fold) depend on the height too

    def text(self, width: int) -> Text:
        raise NotImplementedError

    def rows_changed(self) -> None:
        """The rows are about to change (z): the layer at the top of a scrolled panel stays at its top."""
        self._anchor = self._first if self.top is not None and self._more else None

    def keep_anchor(self, items: list[Row]) -> None:
        """Scroll to the row of the layer that was at the top before the rows changed (its header with it)."""
        if self._anchor is None:
            return
        at = next((r for r, row in enumerate(items) if self._anchor in row.layers), 0)
        self.top = at - 1 if at > 0 and items[at].indent and items[at - 1].kind == "header" else at
        self._anchor = None

    @staticmethod
    def with_header(items: list[Row], window: list[int]) -> list[int]:
        """A window that starts inside a group shows that group's header in place of its first row (which the
        row above, or the page before, showed): the rows under it keep saying whose they are."""
        if not items[window[0]].indent:
            return window
        header = next(r for r in range(window[0] - 1, -1, -1) if items[r].kind == "header")
        return [header, *window[1:]]

    def first_shown(self, items: list[Row], shown: list[int]) -> None:
        """Remember the first layer on screen (for `rows_changed`)."""
        self._first = next((items[r].layers[0] for r in shown if items[r].layers), None)

    def window(self, count: int, room: int, flat: bool) -> list[int] | None:
        """The rows to draw in `room` lines (one of them says where the rows are), from `top`: None when they
        are not scrolled (they all fit, the panel is not laid out yet, or a flat list folds because the user
        has not scrolled it). Grouped rows always have that line (it names the collapse key); a flat list that
        fits does not."""
        self._count, self._room, self._flat = count, room - 1, flat
        self._more = room > 1 and count > (room if flat else room - 1)
        if not self._more or (flat and self.top is None):
            return None
        top = min(max(self.top or 0, 0), count - self._room)
        if self.top is not None:
            self.top = top
        return list(range(top, top + self._room))

    @property
    def scrolls(self) -> bool:
        """More rows than room: there is something to scroll."""
        return self._more

    def scroll_rows(self, delta: int) -> bool:
        """Move the rows by `delta`; False when there is nothing to scroll. A flat list that folds unfolds at
        its top on the first move down, and folds again when moved up from there (its overview)."""
        if not self.scrolls:
            return False
        if self._flat and self.top is None:
            if delta < 0:
                return False
            self.top = 0
        elif self._flat and self.top == 0 and delta < 0:
            self.top = None
        else:
            self.top = min(max((self.top or 0) + delta, 0), self._count - self._room)
        self.body.refresh()
        return True

    def page(self, pages: int) -> bool:
        """PgDn / PgUp: a page of rows, one kept from the page before (and a line for a group's header)."""
        return self.scroll_rows(pages * max(1, self._room - (1 if self._flat else 2)))

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        if self.scroll_rows(WHEEL_ROWS):  # the wheel too, where the terminal sends it
            event.stop()

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        if self.scroll_rows(-WHEEL_ROWS):
            event.stop()

    # Focused, the panel's own keys (VerticalScroll's bindings) move its rows when it scrolls them itself.
    def action_scroll_down(self) -> None:
        if not self.scroll_rows(1):
            super().action_scroll_down()

    def action_scroll_up(self) -> None:
        if not self.scroll_rows(-1):
            super().action_scroll_up()

    def action_page_down(self) -> None:
        if not self.page(1):
            super().action_page_down()

    def action_page_up(self) -> None:
        if not self.page(-1):
            super().action_page_up()

    def action_scroll_home(self) -> None:
        if self.scrolls and (not self._flat or self.top is not None):
            self.top = 0
            self.body.refresh()
        else:
            super().action_scroll_home()

    def action_scroll_end(self) -> None:
        if self.scrolls:
            self.top = self._count  # kept in range when drawn: the last rows
            self.body.refresh()
        else:
            super().action_scroll_end()


class GradFlowPanel(TextPanel):
    """log10 ||grad W|| per layer, input side first; the baseline's bar beside each, dimmed."""

    BORDER_TITLE = N_("Gradient flow  log10 ‖∇W‖")
    EMPTY = N_("no gradients yet: press r to run, s to take one step")

    def key(self, frame: Frame) -> Hashable:
        return frame.view, frame.scrubbed, frame.baseline, frame.labels, frame.state == "running", frame.blocks

    legend_below = True  # the colours' legend fits under the bars; else a short one goes on the border

    def subtitle(self, frame: Frame) -> str:
        # The step only while the run is not moving: a changing border repaints the whole panel.
        running = frame.snapshot is None or frame.state == "running"
        step = _("step {step}").format(step=frame.snapshot.step) if not running else ""
        if step and frame.broken is not None:
            step += " · " + _("the last before it broke")
        if self.legend_below or frame.snapshot is None:
            return step
        return " · ".join(part for part in (short_legend(vanish_share(frame)), step) if part)

    def _retitle(self) -> None:
        if self.frame is not None and self.border_subtitle != (subtitle := self.subtitle(self.frame)):
            self.border_subtitle = subtitle

    def draw(self, frame: Frame) -> None:
        base = frame.baseline
        shape = (len(frame.layer_names), len(base.names) if base else None, frame.broken is not None, frame.blocks)
        self.body.redraw(shape)

    def text(self, width: int) -> Text:
        frame = self.frame
        text = Text(no_wrap=True, overflow="crop")
        base = frame.baseline if frame is not None else None
        if frame is None or (frame.snapshot is None and base is None):
            text.append(_(self.EMPTY), "dim")
            return text
        names = frame.layer_names
        base_names = base.names if base is not None else []
        rows = [names[i] if i < len(names) else base_names[i] for i in range(max(len(names), len(base_names)))]
        if not rows:  # a baseline pinned from a run directory with no snapshot, and no bars of this run yet
            text.append(_(self.EMPTY), "dim")
            return text
        grads = [layer.grad_norm for layer in frame.layers]
        bgrads = list(base.grads) if base is not None else []
        items = layer_rows(rows, frame.blocks)
        values = grads + bgrads
        if frame.blocks:  # a block's joint norm may top every layer of it: the axis reaches it
            values += [_value(v, row.layers) for v in (grads, bgrads) for row in items if row.kind == "block"]
        logs = [math.log10(g) for g in map(finite, values) if g is not None and g > 0]
        top = max(0.0, math.ceil(max(logs))) if logs else 0.0
        vanish = vanish_share(frame)
        name_w = min(max(map(_label_len, items)), max(NAME_MIN, int(width * NAME_SHARE))) + 1
        cell_w = VALUE_W + 3  # ' ' + value + two glyphs
        full = width
        if frame.broken is not None:
            width -= 1  # the ✖ column
        ref = grads[-1] if grads else None
        # Collapsed to blocks: a column after the bars names a block's worst layer (its joint norm hides it), when
        # some block has one that is not level.
        leaves = [split(rows[i])[1] for row in items if row.kind == "block" for i in row.layers]
        unlevel = leaves and any(_worst_cell(row, rows, grads, ref, vanish, 8).plain.strip() for row in items)
        worst_w = min(max(map(len, leaves)), max(NAME_MIN, width // 5)) + 5 if unlevel else 0
        if base is not None:
            labels = frame.labels or ("baseline", "current")
            bar_w = max(6, (width - worst_w - name_w - 2 * cell_w - 1) // 2)
            base_label = _("baseline") if labels[0] == "baseline" else labels[0] + " " + _("(baseline)")
            text.append(" " * name_w)
            text.append(_fit(_("current") if labels[1] == "current" else labels[1], bar_w + cell_w), "bold")
            text.append(" ")
            text.append(_fit(base_label, bar_w + cell_w), palette.style(palette.BASELINE))
            text.append("\n")
        else:
            bar_w = max(6, width - worst_w - name_w - cell_w)
        bref = bgrads[-1] if bgrads else None
        seen: set[str] = set()
        broke = breakdown(frame.broken.layers) if frame.broken is not None else None
        if frame.broken is not None:  # a diverged run: where it broke, above the last bars it had
            said = broke.text if broke is not None else _("the loss or the gradients became NaN/Inf")
            head = Text(
                G.error + " " + _("broke at step {step}:").format(step=frame.broken.step),
                palette.style(palette.ALARM, "bold"),
            )
            for line in wrap([head, *map(Text, said.split())], width, gap=" "):
                text.append_text(line)
                text.append("\n")
            if frame.snapshot is not None:
                bars = _("bars: step {step}, the last snapshot before it broke").format(step=frame.snapshot.step)
                text.append(bars + "\n", "dim")
        room = self.size.height - text.plain.count("\n") - 1  # less the lines above and the axis line
        is_flat = flat(items)
        self.keep_anchor(items)
        window = self.window(len(items), room, is_flat)
        if window is not None:
            shown = self.with_header(items, window)
        elif is_flat:  # the lab's nets: a deep one folds to evenly spaced rows, keeping the ones that matter
            keep = named(frame, rows, broke.layer if broke is not None else None)
            shown = fold(len(rows), room if self.size.height > 0 else 0, keep)
        else:
            shown = list(range(len(items)))
        self.first_shown(items, shown)
        for row in (items[i] for i in shown):
            if broke is not None:  # a column of its own: the layer where it broke
                here = any(rows[i] == broke.layer for i in row.layers)
                text.append(G.error if here else " ", palette.style(palette.ALARM, "bold"))
            if row.kind == "header":
                text.append(_row_label(row, width) + "\n", "bold")
                continue
            label = _row_label(row, name_w - 1)
            text.append(f"{label:<{name_w}}")
            value = _value(grads, row.layers)
            kind = level(value, ref, vanish)
            if value is not None or all(i < len(grads) for i in row.layers):
                text.append_text(gradient_cell(value, kind, top, bar_w, G.bar, palette.style(LEVELS[kind])))
                seen |= {kind, _special(value)}
            else:
                text.append(" " * (bar_w + cell_w))
            if base is not None:
                text.append(" ")
                if all(i < len(bgrads) for i in row.layers):
                    bvalue = _value(bgrads, row.layers)
                    kind = level(bvalue, bref, vanish)
                    grey = palette.style(palette.BASELINE)
                    text.append_text(gradient_cell(bvalue, kind, top, bar_w, G.base_bar, grey, grey))
                    seen |= {kind, _special(bvalue)}
                elif worst_w:
                    text.append(" " * (bar_w + cell_w))
            if worst_w:  # last: the baseline's bars stay under their heading
                text.append_text(_worst_cell(row, rows, grads, ref, vanish, worst_w))
            text.append("\n")
        if window is not None or not is_flat:
            text.append_text(rows_note(shown, items, len(rows), frame.blocks, has_blocks(rows), full))
            text.append("\n")
        elif len(shown) < len(rows):
            text.append_text(fold_note(len(shown), len(rows)))
            text.append("\n")
        axis, right = f"1e{int(LOG_FLOOR)}", f"1e{int(top)}"
        pad = max(1, bar_w - len(axis) - len(right))
        text.append(" " * (name_w + (frame.broken is not None)) + axis + G.empty * pad + right, "dim")
        if base is not None:
            text.append(" " * (cell_w + 1) + axis + G.empty * pad + right, "dim")
        legend = wrap(legend_parts(vanish, seen), width)
        room = self.size.height  # a short panel (80x24) keeps its rows for the bars: the legend goes on the border
        below = room <= 0 or len(text.plain.split("\n")) + len(legend) <= room
        if below != self.legend_below:
            self.legend_below = below
            self.call_later(self._retitle)
        for line in legend if below else []:
            text.append("\n")
            text.append_text(line)
        return text


VALUE_W = 7  # '6.3e-15'


def gradient_cell(
    value: float | None, kind: str, top: float, width: int, char: str, style: str, value_style: str = ""
) -> Text:
    """A bar of log10 ||grad W|| from the axis floor (1e-12) to `top`, then the value and the glyphs of its
    level. An exact zero, a value under the floor, NaN/inf and a missing value each look different: none of
    them is an empty bar."""
    glyphs = marks(kind)
    if isinstance(value, float) and math.isnan(value):
        bar, shown = Text(G.error + " nan", palette.style(palette.ALARM, "bold")), "nan"
    elif isinstance(value, float) and math.isinf(value):
        bar, shown = Text(G.error + " inf", palette.style(palette.ALARM, "bold")), "inf" if value > 0 else "-inf"
    elif finite(value) is None:
        bar, shown = Text(MISSING, "dim"), MISSING
    elif value <= 0:  # exactly zero: not the 1e0 a '0' on a log axis would say
        bar, shown = Text(G.zero, style), "=0"
        bar.append(" " + _("exactly 0"), "dim")
    elif math.log10(value) < LOG_FLOOR:  # under the axis: a mark at its left end, and the true value after
        bar, shown = Text(G.under, style), short(value, 1)
        bar.append(f"<1e{int(LOG_FLOOR)}", "dim")
    else:
        cells = (min(math.log10(value), top) - LOG_FLOOR) / (top - LOG_FLOOR) * width
        full = int(cells)
        part = G.bar_tip if (cells - full > 0.5 or full == 0) and full < width and char == G.bar else ""
        if full == 0 and not part:
            part = char
        bar, shown = Text(char * full + part, style), short(value, 1)
    bar.truncate(width, pad=True)
    cell = Text()
    cell.append_text(bar)
    cell.append(f" {shown:>{VALUE_W}}", value_style)  # the number itself stays neutral: the bar has the colour
    cell.append(glyphs, style)
    return cell


def _special(value: float | None) -> str:
    """Which of the distinct looks a value takes, for the legend: zero, under the floor."""
    v = finite(value)
    if v is None:
        return ""
    return "zero" if v <= 0 else "under" if math.log10(v) < LOG_FLOOR else ""


def legend_parts(vanish: float, seen: set[str] = frozenset()) -> list[Text]:  # type: ignore[assignment]
    """What the bars' colours and glyphs mean, built from the findings' thresholds."""
    plain = palette.no_color()
    level_x = f"{_times(LEVEL)}{G.times}"
    parts = [Text(_("vs out:"), "dim")]
    for color, glyph, words in (
        (palette.HEALTHY, _("no arrow") + " " if plain else "", _("within {factor}").format(factor=level_x)),
        (palette.CAUTION, G.low + G.high + " ", _("beyond {factor}").format(factor=level_x)),
        (palette.ALARM, G.vanish + " ", _("<1/{factor} vanishing").format(factor=_times(1 / vanish))),
        (palette.ALARM, G.explode + " ", _(">{factor}× exploding").format(factor=_times(EXPLODE))),
    ):
        part = Text("" if plain else G.bar + " ", palette.style(color))
        part.append(glyph + words)
        parts.append(part)
    if "zero" in seen:
        parts.append(Text(G.zero + " =0 " + _("exactly zero")))
    if "under" in seen:
        parts.append(Text(G.under + " " + _("under {floor}").format(floor=f"1e{int(LOG_FLOOR)}")))
    if "nonfinite" in seen:
        parts.append(Text(G.error + " NaN/inf", palette.style(palette.ALARM)))
    return parts


def short_legend(vanish: float) -> str:
    """The legend in one short line of markup, for the border: 'vs out: █ ≤10× █ ↓↑ █ ↓↓ <1/1000 ↑↑ >1000×'."""
    vs_out = _("vs out:")
    le, x, down_up, vv, up_up = G.le, G.times, G.low + G.high, G.vanish, G.explode
    if palette.no_color():
        no_arrow = _("no arrow")
        return (f"{vs_out} {no_arrow} {le}{_times(LEVEL)}{x}{G.sep}{down_up}{G.sep}{vv} <1/{_times(1 / vanish)} "
                f"{up_up} >{_times(EXPLODE)}{x}")  # fmt: skip
    swatch = lambda color: f"[{palette.style(color)}]{G.bar}[/]"
    return (f"{vs_out} {swatch(palette.HEALTHY)} {le}{_times(LEVEL)}{x} {swatch(palette.CAUTION)} {down_up} "
            f"{swatch(palette.ALARM)} {vv} <1/{_times(1 / vanish)} {up_up} >{_times(EXPLODE)}{x}")  # fmt: skip


def _times(x: float) -> str:
    """10, 1000, 1e6."""
    return f"{round(x)}" if x < 1e4 and abs(x - round(x)) < 1e-9 else short(x)


def _fit(text: str, width: int) -> str:
    dots = G.ellipsis
    return text[: width - len(dots)] + dots if len(text) > width else text.ljust(width)


class LayersPanel(TextPanel):
    """Per layer: activation std, dead and saturated fractions, update/weight ratio."""

    BORDER_TITLE = N_("Activations: dead / saturated")
    EMPTY = N_("no statistics yet")

    def key(self, frame: Frame) -> Hashable:
        return frame.view, frame.scrubbed, frame.blocks

    def draw(self, frame: Frame) -> None:
        self.body.redraw((len(frame.layer_names), frame.blocks))

    def text(self, width: int) -> Text:
        frame = self.frame
        layers = frame.layers if frame is not None else []
        text = Text(no_wrap=True, overflow="crop")
        if not layers:
            text.append(_(self.EMPTY), "dim")
            return text
        names = [layer.name for layer in layers]
        items = layer_rows(names, frame.blocks)
        name_w = min(max(map(_label_len, items)) + 1, max(NAME_MIN, width - STATS_W))  # a row fits the width
        # TRANSLATORS: column heads of at most 8, 11, 11 and 8 characters.
        act, dead, sat, upd = _("act std"), _("dead"), _("saturated"), _("upd/W")
        text.append(f"{'':<{name_w}}{act:>8} {dead:<12}{sat:<12}{upd:>8}\n", "bold")
        room = self.size.height - 1 if self.size.height > 0 else 0
        is_flat = flat(items)
        self.keep_anchor(items)
        window = self.window(len(items), room, is_flat)
        if window is not None:
            shown = self.with_header(items, window)
        elif is_flat:
            shown = fold(len(layers), room, named(frame, names))
        else:
            shown = list(range(len(items)))
        self.first_shown(items, shown)
        for row in (items[i] for i in shown):
            if row.kind == "header":
                text.append(_row_label(row, width) + "\n", "bold")
                continue
            label = _row_label(row, name_w - 1)
            # A block: each column its worst layer's (the smallest signal, the most dead or saturated units,
            # the largest step for its weights).
            stats = [layers[i] for i in row.layers]
            text.append(f"{label:<{name_w}}")
            text.append(f"{sci(_extreme([s.act_std for s in stats], min), MISSING):>8} ")
            text.append_text(frac_bar(_extreme([s.dead_frac for s in stats], max), DEAD_FRAC))
            text.append_text(frac_bar(_extreme([s.sat_frac for s in stats], max), SAT_FRAC))
            text.append(f"{sci(_extreme([s.update_ratio for s in stats], max), MISSING):>8}\n")
        if window is not None or not is_flat:
            text.append_text(rows_note(shown, items, len(layers), frame.blocks, has_blocks(names), width))
        elif len(shown) < len(layers):
            text.append_text(fold_note(len(shown), len(layers)))
        text.rstrip()  # no empty last line: it would make a panel that fits exactly scroll
        return text


STATS_W = 41  # the layers table's columns after the name: 8 + 1 + 12 + 12 + 8


def _extreme(values: list[float | None], pick) -> float | None:
    """One layer's value as it is; a block's `pick` (min, max) of its layers' finite values (None: none)."""
    if len(values) == 1:
        return values[0]
    known = [v for v in map(finite, values) if v is not None]
    return pick(known) if known else None


def frac_bar(x: float | None, warn_at: float) -> Text:
    """A share of units (dead, saturated) as five cells and a percentage: none at all is dim, some is plain,
    from the findings' threshold (`warn_at`: half a layer) on it is a caution, yellow and marked ▲."""
    x = finite(x)
    if x is None:
        return Text(MISSING.ljust(12))
    x = min(max(x, 0.0), 1.0)
    cells = int(round(x * 5))
    pct = f"{x * 100:.0f}%" if x == 0 or x * 100 >= 0.5 else "<1%"
    if x == 0:
        return Text(f"{G.empty * 5}{pct:>5}  ", "dim")
    warn = x >= warn_at
    style = palette.style(palette.CAUTION) if warn else ""
    bar = Text(G.bar * cells, style)
    bar.append(G.empty * (5 - cells), "dim")
    bar.append(f"{pct:>5}", style)
    bar.append(G.warn + " " if warn else "  ", style)
    return bar
