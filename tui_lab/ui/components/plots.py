"""Panels drawn with plotext (through textual-plotext): loss/accuracy, per-layer gradient over time, the
gradient histogram of one layer, and for recurrent models ||d loss / d x_t|| per time step.

Each panel's `draw` hands its Plot a figure function; every series is thinned to about the plot's width
first (plotext is slow on long series: README, Performance).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical

from tui_lab.core.fmt import log10_floored
from tui_lab.ui.bridge import Series
from tui_lab.ui.components.panel import Panel, Plot
from tui_lab.ui.frame import Frame


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


def layer_colors(n: int) -> list[tuple[int, int, int]]:
    """Input side blue -> output side red."""
    out = []
    for i in range(n):
        t = i / (n - 1) if n > 1 else 1.0
        out.append((int(60 + 195 * t), int(140 - 60 * abs(t - 0.5) * 2 + 40), int(255 - 205 * t)))
    return out


def pick_layers(n: int, most: int = 10) -> list[int]:
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


class PlotPanel(Panel, Vertical):
    """A panel holding one plot; subclasses say what to plot in `figure`."""

    def compose(self) -> ComposeResult:
        self.plot = Plot()
        yield self.plot

    def draw(self, frame: Frame) -> None:
        self.plot.draw(lambda plt, width: self.figure(plt, width, frame))

    def figure(self, plt: Any, width: int, frame: Frame) -> bool | None:
        """Plot the frame; False when there is nothing to plot (the title then says why)."""
        raise NotImplementedError


def legend(frame: Frame) -> str:
    """Which curve is the baseline's, when one is pinned."""
    return f"grey: baseline {frame.labels[0]} · colour: {frame.labels[1]}" if frame.labels else ""


class LossPanel(PlotPanel):
    BORDER_TITLE = "Loss / accuracy"

    def key(self, frame: Frame) -> Hashable:
        return frame.view, frame.baseline, frame.labels

    def subtitle(self, frame: Frame) -> str:
        return legend(frame)

    def figure(self, plt: Any, width: int, frame: Frame) -> bool | None:
        h = frame.view.history if frame.view is not None else None
        if h is None or not len(h):
            plt.title("loss / accuracy: waiting for a run")
            return False
        base = frame.baseline.history if frame.baseline is not None else None
        if base is not None and len(base):
            x, y = pairs(base.loss, width)
            if x:
                label = f"base {frame.labels[0] if frame.labels else ''}".strip()
                plt.plot(x, y, color="gray", marker="braille", label=label)
        x, y = pairs(h.loss, width)
        if x:
            plt.plot(x, y, color="cyan", marker="braille", label="loss")
        x, y = pairs(h.val_loss, width)
        if x:
            plt.scatter(x, y, color="blue", marker="dot", label="val loss")
        x, y = pairs(h.acc, width)
        if x:
            plt.plot(x, y, color="green", marker="braille", yside="right", label="acc")
            xv, yv = pairs(h.val_acc, width)
            if xv:
                plt.scatter(xv, yv, color="green+", marker="dot", yside="right", label="val acc")
        plt.xlabel("step")
        return True


class GradTimePanel(PlotPanel):
    """log10 ||grad W|| per layer over time, coloured input (blue) to output (red)."""

    BORDER_TITLE = "‖∇W‖ per layer over time (log10)"

    key = LossPanel.key

    def subtitle(self, frame: Frame) -> str:
        return " · ".join(part for part in ("blue = input side … red = output", legend(frame)) if part)

    def figure(self, plt: Any, width: int, frame: Frame) -> bool | None:
        h = frame.view.history if frame.view is not None else None
        names = frame.layer_names
        if h is None or not len(h) or not names:
            plt.title("waiting for gradients")
            return False
        base = frame.baseline.history if frame.baseline is not None else None
        if base is not None and len(base) and base.grads:
            for j in sorted({0, len(base.grads) - 1}):
                x, y = pairs(base.grads[j], width, log10_floored)
                if x:
                    plt.plot(x, y, color="gray", marker="dot", label=f"base {'L1' if j == 0 else 'last'}")
        colors = layer_colors(len(names))
        chosen = pick_layers(len(names))
        for j in chosen:
            if j >= len(h.grads):
                continue
            x, y = pairs(h.grads[j], width, log10_floored)
            if x:
                label = names[j] if j in (chosen[0], chosen[-1]) else None
                plt.plot(x, y, color=colors[j], marker="braille", label=label)
        plt.xlabel("step")
        return True


class HistogramPanel(PlotPanel):
    BORDER_TITLE = "∇W histogram"

    def key(self, frame: Frame) -> Hashable:
        return frame.view, frame.hist_layer, frame.histograms

    def subtitle(self, frame: Frame) -> str:
        names = frame.layer_names
        name = names[frame.hist_layer] if frame.hist_layer < len(names) else f"layer {frame.hist_layer + 1}"
        return f"{name} · [ ] choose layer"

    def figure(self, plt: Any, width: int, frame: Frame) -> bool | None:
        hist = frame.view.histogram if frame.view is not None and frame.histograms else None
        if hist is None:
            plt.title(
                "histogram: comes with the next snapshot"
                if frame.histograms
                else "histograms are not recorded in the run directory"
            )
            return False
        edges, counts = hist.edges, hist.counts
        centers = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
        plt.bar(centers, counts, color="cyan", width=0.9)
        plt.xticks([edges[0], 0.0, edges[-1]], [f"{edges[0]:.1e}", "0", f"{edges[-1]:.1e}"])
        return True


class TimeGradPanel(PlotPanel):
    """Recurrent models: log10 ||d loss / d x_t|| per time step t."""

    BORDER_TITLE = "‖dloss/dx_t‖ per time step (log10)"

    def key(self, frame: Frame) -> Hashable:
        return frame.view, frame.baseline, frame.cfg.recurrent

    def figure(self, plt: Any, width: int, frame: Frame) -> bool | None:
        tgn = frame.snapshot.time_grad_norm if frame.snapshot is not None else None
        if not tgn:
            plt.title("||dloss/dx_t||: waiting for a run" if frame.cfg.recurrent else "recurrent models only")
            return False
        base = frame.baseline.time_grads if frame.baseline is not None else None
        if base:
            x, y = pairs(Series(steps=list(range(1, len(base) + 1)), values=base), width, log10_floored)
            if x:
                plt.plot(x, y, color="gray", marker="dot", label="baseline")
        x, y = pairs(Series(steps=list(range(1, len(tgn) + 1)), values=list(tgn)), width, log10_floored)
        if x:
            plt.plot(x, y, color="magenta", marker="braille", label="log10 ||dL/dx_t||")
        plt.xlabel("time step t")
        return True
