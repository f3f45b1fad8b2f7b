"""Panels drawn with plotext (through textual-plotext): loss/accuracy, per-layer gradient over time, the
gradient histogram of one layer, and for recurrent models ||d loss / d x_t|| per time step.

Each panel's `draw` hands its Plot a figure function; every series is thinned to about the plot's width
first (plotext is slow on long series: README, Performance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape

from tui_lab.core.fmt import LOG_FLOOR, finite, printable
from tui_lab.core.i18n import N_, _
from tui_lab.ui import glyphs, palette
from tui_lab.ui.bridge import Series
from tui_lab.ui.components.axes import Axis, label, linear_axis, log_axis, nice_ticks, sci, step_axis
from tui_lab.ui.components.panel import Panel, Plot, TextBody, wrap
from tui_lab.ui.frame import Frame
from tui_lab.ui.glyphs import G


def pairs(series: Series, limit: int, transform: Callable[[float], float | None] | None = None) -> tuple[list, list]:
    """The series' known points, at most about `limit` of them: past that, evenly sized buckets each keep their
    lowest and highest point, so a one-snapshot spike is still drawn. `transform` maps each value (log10)."""
    pts = [(x, y if transform is None else transform(y)) for x, y in zip(series.steps, series.values) if y is not None]
    pts = [(x, y) for x, y in pts if y is not None]
    if limit > 1 and len(pts) > limit:
        buckets = limit // 2
        size = len(pts) / buckets
        thinned = []
        for b in range(buckets):
            group = pts[int(b * size) : int((b + 1) * size)] or [pts[-1]]
            low, high = min(group, key=lambda p: p[1]), max(group, key=lambda p: p[1])
            thinned += sorted({low, high})
        pts = thinned
    return [p[0] for p in pts], [p[1] for p in pts]


def pick_layers(n: int, most: int = 10) -> list[int]:
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def layer_colors(n: int) -> list[palette.PlotColor]:
    """Input side cyan -> output side violet: a layer's place, never a judgement (no red, yellow, green)."""
    return palette.layer_colors(n)


def swatch(glyph: str, color: palette.PlotColor, words: str) -> Text:
    """A caption entry: the curve's glyph in its colour, then what it is."""
    part = Text(glyph, palette.rich(color))
    part.append(" " + words)
    return part


def reference(glyph: str, words: str) -> Text:
    return Text(f"{glyph} {words}", palette.style(palette.REFERENCE) or "dim")


def value_label(x: float) -> str:
    """A reference value in a caption: 1.10, 0.17, 3e-5."""
    return f"{x:.2f}" if 0.01 <= abs(x) < 100 else sci(x)


def mark_parts(marks: list[tuple[int, str]], lo: float, hi: float, most: int = 2) -> list[Text]:
    """The latest mid-run changes on the plot's steps, named: '│ 500: lr 0.1→0.01'."""
    shown = [(step, what) for step, what in marks if lo <= step <= hi]
    parts = [reference("│", f"{step}: {what}") for step, what in shown[-most:]]
    if len(shown) > most:
        parts.insert(0, reference("│", _("+{count} earlier").format(count=len(shown) - most)))
    return parts


def visible_marks(frame: Frame) -> list[tuple[int, str]]:
    h = frame.view.history if frame.view is not None else None
    return list(getattr(h, "marks", []) or []) if h is not None else []


def marked(frame: Frame) -> list[int]:
    """The steps of the run's marks: the x axis reaches the last (a divergence is marked after the last
    finite snapshot)."""
    return [step for step, _what in visible_marks(frame)]


def canvas_rows(height: int, xlabel: bool) -> int:
    """Rows inside the frame of a plot this tall: less the frame's bottom line, the ticks' row, the x label
    (the frame has no top line: a row more for the curves)."""
    return max(1, height - 2 - int(xlabel))


def y_ticks_for(rows: int) -> int:
    """A tick a row on a short plot, then at most one every other row; at least two."""
    return max(2, rows if rows <= 5 else min(7, rows // 2 + 1))


def x_ticks_for(columns: int) -> int:
    """Room for a label of up to five characters and a gap."""
    return max(2, min(9, columns // 8))


class PlotPanel(Panel, Vertical):
    """A panel holding a caption (what each curve is, the reference lines, the scale: outside the plot, so
    it never covers data) over one plot; subclasses say what to plot in `figure`, what to name in `caption`."""

    def compose(self) -> ComposeResult:
        self._caption: list[Text] = []
        self.caption = TextBody(self.caption_text, classes="caption")
        self.caption.styles.padding = (0, 1)
        self.caption.display = False
        yield self.caption
        self.plot = Plot()
        yield self.plot

    def on_resize(self) -> None:
        # The caption's height follows its wrapped lines, which follow the width: lay it out again, or a resize
        # leaves it the height it had at the old width (blank rows above the plot).
        self.caption.refresh(layout=True)

    def draw(self, frame: Frame) -> None:
        self._caption = self.caption_parts(frame)
        self.caption.display = bool(self._caption)
        self.caption.redraw(tuple(part.plain for part in self._caption))
        self.plot.draw(lambda plt, width: self.figure(plt, width, frame))

    def caption_text(self, width: int) -> Text:
        return Text("\n").join(wrap(self._caption, width))

    def caption_parts(self, frame: Frame) -> list[Text]:
        return []

    def figure(self, plt: Any, width: int, frame: Frame) -> bool | None:
        """Plot the frame; False when there is nothing to plot (the title then says why)."""
        raise NotImplementedError

    def frame_axes(self, plt: Any, xa: Axis, ya: Axis, xlabel: str) -> None:
        """Fixed limits and ticks: the same scales for every curve drawn (the baseline's too)."""
        plt.xaxes(True, False)  # no top line: on a short plot every row counts
        plt.xlim(xa.lo, xa.hi)
        plt.xticks(xa.ticks, xa.labels)
        plt.ylim(ya.lo, ya.hi)
        plt.yticks(ya.ticks, ya.labels)
        if xlabel and self.plot.size.height >= TALL:
            plt.xlabel(xlabel)

    def rows(self) -> int:
        return canvas_rows(self.plot.size.height, self.plot.size.height >= TALL)


TALL = 14  # a plot at least this tall names its x axis below the ticks


def loss_scale(frame: Frame) -> tuple[str, str]:
    """The loss axis to draw ('log' or 'linear') and why: 'auto' picks log when the losses (the baseline's
    too) span DECADES decades or more, as an exploding run does."""
    if frame.loss_scale in ("log", "linear"):
        return frame.loss_scale, frame.loss_scale
    values = [v for v in _loss_values(frame) if v > 0]
    if values and math.log10(max(values) / min(values)) >= DECADES:
        return "log", "auto"
    return "linear", "auto"


DECADES = 3


def _loss_values(frame: Frame) -> list[float]:
    out: list[float] = []
    for h in (frame.view.history if frame.view is not None else None,
              frame.baseline.history if frame.baseline is not None else None):  # fmt: skip
        if h is not None:
            for series in (h.loss, h.val_loss):
                out += [v for v in series.values if v is not None and math.isfinite(v)]
    return out


def _steps(*series: Series | None) -> list[int]:
    return [s for sr in series if sr is not None for s, v in zip(sr.steps, sr.values) if v is not None]


class LossPanel(PlotPanel):
    """The loss (left axis, linear from 0 or log: g) and the accuracy (right axis, 0..1), the baseline's loss
    in grey on the same axes, the loss of guessing as a dim line, and mid-run changes as dim verticals."""

    BORDER_TITLE = N_("Loss / accuracy")

    def key(self, frame: Frame) -> Hashable:
        return frame.view, frame.scrubbed, frame.baseline, frame.labels, frame.loss_scale

    def caption_parts(self, frame: Frame) -> list[Text]:
        h = frame.view.history if frame.view is not None else None
        if h is None or not len(h):
            return []
        parts = []
        base = frame.baseline.history if frame.baseline is not None else None
        if base is not None and len(base.loss):
            name = frame.labels[0] if frame.labels and frame.labels[0] != "baseline" else ""
            baseline = _("baseline {name}").format(name=name) if name else _("baseline")
            parts.append(swatch(glyphs.caption(G.base_line), palette.BASELINE_CURVE, baseline))
        current = (_("current") if frame.labels[1] == "current" else frame.labels[1]) if frame.labels else ""
        loss = _("loss {name}").format(name=current) if current else _("loss")
        parts.append(swatch(glyphs.caption(G.line), palette.LOSS, loss))
        if any(v is not None for v in h.acc.values):
            parts.append(swatch(glyphs.caption(acc_marker()), palette.ACC, _("acc (right)")))
        if any(v is not None for v in h.val_loss.values + h.val_acc.values):
            parts.append(Text(G.dots + " " + _("validation")))
        chance = finite(frame.view.meta.chance_loss)
        if chance is not None:
            parts.append(reference("──", _("guessing: {value}").format(value=value_label(chance))))
        steps = _steps(h.loss, base.loss if base is not None else None)
        if steps:
            parts += mark_parts(visible_marks(frame), min(steps), max([*steps, *marked(frame)]))
            if frame.scrubbed is not None:
                parts.append(Text("┃ " + _("cursor: step {step}").format(step=frame.scrubbed.step), "bold"))
        return parts

    def subtitle(self, frame: Frame) -> str:
        """The loss axis's scale, on the border (it costs no row): 'loss: log (auto) · g'."""
        if frame.view is None or not len(frame.view.history):
            return ""
        scale, why = loss_scale(frame)
        words = _("log") if scale == "log" else _("linear from 0")
        return (
            _("loss axis: {scale}").format(scale=words)
            + (" " + _("(auto)") if why == "auto" else "")
            + " · "
            + _("g changes")
        )

    def figure(self, plt: Any, width: int, frame: Frame) -> bool | None:
        h = frame.view.history if frame.view is not None else None
        if h is None or not len(h):
            plt.title(_("loss / accuracy: waiting for a run"))
            return False
        base = frame.baseline.history if frame.baseline is not None and len(frame.baseline.history) else None
        steps = _steps(h.loss, h.val_loss, h.acc, base.loss if base is not None else None)
        values = _loss_values(frame)
        if not steps:
            plt.title(_("loss: not finite"))
            return False
        chance = finite(frame.view.meta.chance_loss)
        scale, _why = loss_scale(frame)
        log = scale == "log"
        rows, cols = self.rows(), self.plot.size.width
        xa = step_axis(min(steps), max([*steps, *marked(frame)]), x_ticks_for(cols))
        known = values + ([chance] if chance is not None else [])
        if log:
            positive = [v for v in known if v > 0] or [1.0]
            ya = log_axis(math.log10(min(positive)), math.log10(max(positive)), y_ticks_for(rows))
        else:
            ya = linear_axis(min([0.0, *known]), max([0.0, *known]) or 1.0, y_ticks_for(rows))

        def y(series: Series) -> tuple[list, list]:
            xs, ys = pairs(series, width)
            if not log:
                return xs, ys
            kept = [(a, math.log10(b) if b > 0 else ya.lo) for a, b in zip(xs, ys)]
            return [a for a, _ in kept], [b for _, b in kept]

        self.frame_axes(plt, xa, ya, _("step"))
        if chance is not None and ya.lo <= (math.log10(chance) if log and chance > 0 else chance) <= ya.hi:
            plt.hline(math.log10(chance) if log else chance, color=palette.curve(palette.REFERENCE_LINE))
        for step, _what in visible_marks(frame):
            if xa.lo <= step <= xa.hi:
                plt.vline(step, color=palette.curve(palette.REFERENCE_LINE))
        if frame.scrubbed is not None and xa.lo <= frame.scrubbed.step <= xa.hi:  # where ←/→ is
            plt.vline(frame.scrubbed.step, color=palette.curve(palette.CURSOR))
        if base is not None:
            x, v = y(base.loss)
            if x:
                plt.plot(x, v, color=palette.curve(palette.BASELINE_CURVE), marker=G.base_line)
        x, v = pairs(h.acc, width)
        if x:
            plt.plot(x, v, color=palette.curve(palette.ACC), marker=acc_marker(), yside="right")
            xv, vv = pairs(h.val_acc, width)
            if xv:
                plt.scatter(xv, vv, color=palette.curve(palette.ACC), marker=G.dots, yside="right")
            plt.ylim(0, 1, yside="right")
            right = [0.0, 0.5, 1.0] if rows >= 4 else [0.0, 1.0]
            plt.yticks(right, [label(t, 0.5) if t not in (0, 1) else str(int(t)) for t in right], yside="right")
        x, v = y(h.val_loss)
        if x:
            plt.scatter(x, v, color=palette.curve(palette.LOSS), marker=G.dots)
        x, v = y(h.loss)
        if x:
            plt.plot(x, v, color=palette.curve(palette.LOSS), marker=G.line)
        return True


def by_marker() -> bool:
    """Layers over time are told apart by marker, not only by colour: under NO_COLOR, and in ASCII mode (ten
    lines of one character a cell would be a wall, whatever their colours)."""
    return palette.no_color() or G.ascii


def acc_marker() -> str:
    """The accuracy's curve: told from the loss by its marker without colour (blocks), and in ASCII mode, where
    a curve is one character a cell (+ against the loss's *)."""
    return G.alt if palette.no_color() or G.ascii else G.line


class GradTimePanel(PlotPanel):
    """log10 ||grad W|| per layer over the steps, input side cyan to output side violet; the baseline's first
    and last layer in grey on the same axes; mid-run changes as dim verticals."""

    BORDER_TITLE = N_("‖∇W‖ per layer over time (log10)")

    key = LossPanel.key

    def caption_parts(self, frame: Frame) -> list[Text]:
        h = frame.view.history if frame.view is not None else None
        names = frame.layer_names
        if h is None or not len(h) or not names:
            return []
        parts = []
        base = frame.baseline
        if base is not None and len(base.history) and base.history.grads:
            name = frame.labels[0] if frame.labels and frame.labels[0] != "baseline" else _("baseline")
            parts.append(swatch(glyphs.caption(G.base_line), palette.BASELINE_CURVE,
                                f"{name}: {base.names[0]}, {base.names[-1]}" if base.names else name))  # fmt: skip
        chosen = self.chosen(len(names))
        if by_marker():  # each line its marker, named (and its colour, when there is colour)
            colors = layer_colors(len(names))
            for k, j in enumerate(chosen):
                name = names[j]
                if j == 0:
                    name = _("{layer} (input side)").format(layer=name)
                elif j == len(names) - 1:
                    name = _("{layer} (output)").format(layer=name)
                parts.append(swatch(glyphs.caption(self.marker(k)), colors[j], name))
        else:
            colors = layer_colors(len(names))
            ramp = Text(f"{names[chosen[0]]} ")
            for j in chosen:
                ramp.append("━", palette.rich(colors[j]))
            ramp.append(f" {names[chosen[-1]]}")
            parts.append(ramp)
        steps = _steps(*h.grads)
        if steps:
            parts += mark_parts(visible_marks(frame), min(steps), max([*steps, *marked(frame)]))
            if frame.scrubbed is not None:
                parts.append(Text("┃ " + _("cursor: step {step}").format(step=frame.scrubbed.step), "bold"))
        if any(v is not None and v <= 0 for series in h.grads for v in series.values):
            parts.append(Text(_("exact 0: on the floor"), "dim"))
        return parts

    @staticmethod
    def chosen(n: int) -> list[int]:
        """The layers drawn: up to 10 spread over the depth, told apart by colour; by marker (`by_marker`) as
        many as there are markers (4: the input side, the output layer and two between)."""
        return pick_layers(n, len(G.plain_lines)) if by_marker() else pick_layers(n)

    @staticmethod
    def marker(k: int) -> str:
        """The marker of the k-th layer drawn."""
        return G.plain_lines[k % len(G.plain_lines)] if by_marker() else G.line

    def figure(self, plt: Any, width: int, frame: Frame) -> bool | None:
        h = frame.view.history if frame.view is not None else None
        names = frame.layer_names
        if h is None or not len(h) or not names:
            plt.title(_("waiting for gradients"))
            return False
        base = frame.baseline.history if frame.baseline is not None and len(frame.baseline.history) else None
        picked = self.chosen(len(names))  # its k-th layer takes the k-th marker, as the caption says
        chosen = [j for j in picked if j < len(h.grads)]
        base_rows = sorted({0, len(base.grads) - 1}) if base is not None and base.grads else []
        drawn = [h.grads[j] for j in chosen] + [base.grads[j] for j in base_rows] if base is not None else []
        drawn = drawn or [h.grads[j] for j in chosen]
        logs = [math.log10(v) for s in drawn for v in s.values if v is not None and v > 0]
        steps = _steps(*drawn)
        if not logs or not steps:
            plt.title(glyphs.text(_("‖∇W‖: exactly 0 everywhere")) if steps else _("waiting for gradients"))
            return False
        rows = self.rows()
        xa = step_axis(min(steps), max([*steps, *marked(frame)]), x_ticks_for(self.plot.size.width))
        lo = min(min(logs), LOG_FLOOR) if any(v == 0 for s in drawn for v in s.values) else min(logs)
        ya = log_axis(lo, max(logs), y_ticks_for(rows), decades=True)
        self.frame_axes(plt, xa, ya, _("step"))
        for step, _what in visible_marks(frame):
            if xa.lo <= step <= xa.hi:
                plt.vline(step, color=palette.curve(palette.REFERENCE_LINE))
        if frame.scrubbed is not None and xa.lo <= frame.scrubbed.step <= xa.hi:  # where ←/→ is
            plt.vline(frame.scrubbed.step, color=palette.curve(palette.CURSOR))
        floor = lambda v: math.log10(v) if v > 0 else ya.lo  # an exact zero sits on the floor
        if base is not None:
            for j in base_rows:
                x, v = pairs(base.grads[j], width, floor)
                if x:
                    plt.plot(x, v, color=palette.curve(palette.BASELINE_CURVE), marker=G.base_line)
        colors = layer_colors(len(names))
        for k, j in enumerate(picked):
            if j >= len(h.grads):
                continue
            x, v = pairs(h.grads[j], width, floor)
            if x:
                plt.plot(x, v, color=palette.curve(colors[j]), marker=self.marker(k))
        return True


class HistogramPanel(PlotPanel):
    BORDER_TITLE = N_("∇W histogram")

    def key(self, frame: Frame) -> Hashable:
        return frame.view, frame.scrubbed is not None, frame.hist_layer, frame.histograms

    def subtitle(self, frame: Frame) -> str:
        names = frame.layer_names
        name = (
            names[frame.hist_layer] if frame.hist_layer < len(names) else _("layer {n}").format(n=frame.hist_layer + 1)
        )
        return f"{escape(printable(name))} · [ ] " + _("choose layer")  # borders are markup; a name from a file

    def figure(self, plt: Any, width: int, frame: Frame) -> bool | None:
        hist = frame.view.histogram if frame.view is not None and frame.histograms else None
        if frame.scrubbed is not None:  # histograms are not kept: only the latest one exists
            plt.title(_("histogram: of the latest snapshot only (End)"))
            return False
        if hist is None:
            plt.title(
                _("histogram: comes with the next snapshot")
                if frame.histograms
                else _("histograms are not recorded in the run directory")
            )
            return False
        edges, counts = hist.edges, hist.counts
        centers = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
        plt.bar(centers, counts, color=palette.curve(palette.HIST), width=0.9, marker=G.bars)
        plt.xticks([edges[0], 0.0, edges[-1]], [sci(edges[0], 1), "0", sci(edges[-1], 1)])
        ticks = nice_ticks(0, max(max(counts, default=0), 1), y_ticks_for(self.rows()), integer=True)
        plt.ylim(0, ticks[-1])
        plt.yticks(ticks, [str(round(t)) for t in ticks])
        return True


class TimeGradPanel(PlotPanel):
    """Recurrent models: log10 ||d loss / d x_t|| per time step t, the baseline's in grey on the same axes."""

    BORDER_TITLE = N_("‖dloss/dx_t‖ per time step (log10)")

    def key(self, frame: Frame) -> Hashable:
        return frame.view, frame.scrubbed, frame.baseline, frame.cfg.recurrent

    def caption_parts(self, frame: Frame) -> list[Text]:
        tgn = frame.snapshot.time_grad_norm if frame.snapshot is not None else None
        if not tgn:
            return []
        parts = [swatch(glyphs.caption(G.line), palette.TIME, _("‖dL/dx_t‖ by time step t, input first"))]
        if frame.baseline is not None and frame.baseline.time_grads:
            name = frame.labels[0] if frame.labels and frame.labels[0] != "baseline" else _("baseline")
            parts.insert(0, swatch(glyphs.caption(G.base_line), palette.BASELINE_CURVE, name))
        return parts

    def figure(self, plt: Any, width: int, frame: Frame) -> bool | None:
        tgn = frame.snapshot.time_grad_norm if frame.snapshot is not None else None
        if not tgn:
            plt.title(_("||dloss/dx_t||: waiting for a run") if frame.cfg.recurrent else _("recurrent models only"))
            return False
        base = frame.baseline.time_grads if frame.baseline is not None else None
        curves = [list(tgn)] + ([list(base)] if base else [])
        logs = [math.log10(v) for c in curves for v in c if v is not None and math.isfinite(v) and v > 0]
        if not logs:
            plt.title(_("||dloss/dx_t||: exactly 0 at every step"))
            return False
        xa = step_axis(1, max(len(c) for c in curves), x_ticks_for(self.plot.size.width))
        ya = log_axis(min(logs), max(logs), y_ticks_for(self.rows()), decades=True)
        self.frame_axes(plt, xa, ya, _("time step t"))
        floor = lambda v: math.log10(v) if v > 0 else ya.lo
        if base:
            x, v = pairs(Series(steps=list(range(1, len(base) + 1)), values=base), width, floor)
            if x:
                plt.plot(x, v, color=palette.curve(palette.BASELINE_CURVE), marker=G.base_line)
        x, v = pairs(Series(steps=list(range(1, len(tgn) + 1)), values=list(tgn)), width, floor)
        if x:
            plt.plot(x, v, color=palette.curve(palette.TIME), marker=G.line)
        return True
