"""plotext plots (through textual-plotext): loss/accuracy, per-layer gradient over time, the gradient
histogram of one layer, and for recurrent models ||d loss / d x_t|| per time step.

A PlotextPlot builds its figure in render(); every series is downsampled to about the plot's width first
(DESIGN.md §9), and a plot is refreshed only when its data changed.
"""

from __future__ import annotations

import math
from typing import Any

from textual_plotext import PlotextPlot

from tui_lab.ui.bridge import History

LOG_FLOOR = -12.0


def _log10(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return math.log10(x) if x > 0 else LOG_FLOOR


def pairs(xs: list[Any], ys: list[float | None], limit: int) -> tuple[list[Any], list[float]]:
    """Drop missing points and keep at most `limit` evenly spaced ones (the last point always kept)."""
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if limit > 0 and len(pts) > limit:
        stride = len(pts) / limit
        picked = [pts[int(i * stride)] for i in range(limit - 1)] + [pts[-1]]
        pts = picked
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


class DataPlot(PlotextPlot):
    """A plot that redraws only when `set_data` brings a new key."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._key: Any = object()
        self.data: dict[str, Any] = {}
        self._drawn_size: tuple[int, int] | None = None
        self._drawn_key: Any = None

    def set_data(self, key: Any, **data: Any) -> bool:
        if key == self._key:
            return False
        self._key = key
        self.data = data
        self.refresh()
        return True

    def render(self):
        size = (self.size.width, self.size.height)
        if self._drawn_key is not self._key or size != self._drawn_size:
            plt = self.plt
            plt.clear_figure()  # a fresh figure: no ticks, frame or labels left from the last drawing
            if self.draw(max(size[0] - 8, 10)) is False:  # nothing to plot yet: a message, no empty frame
                plt.frame(False)
                plt.xticks([])
                plt.yticks([])
            self._drawn_key, self._drawn_size = self._key, size
        return super().render()

    def draw(self, width: int) -> bool | None:  # pragma: no cover - overridden
        """Plot the data; return False when there is nothing to plot."""
        return False


class LossPlot(DataPlot):
    def draw(self, width: int) -> bool | None:
        plt = self.plt
        h: History | None = self.data.get("history")
        base: History | None = self.data.get("base")
        labels = self.data.get("labels")
        if h is None or not len(h):
            plt.title("loss / accuracy: waiting for a run")
            return False
        plt.title("")
        if base is not None and len(base):
            x, y = pairs(base.steps, base.loss, width)
            if x:
                plt.plot(x, y, color="gray", marker="braille", label=f"base {labels[0] if labels else ''}".strip())
        x, y = pairs(h.steps, h.loss, width)
        if x:
            plt.plot(x, y, color="cyan", marker="braille", label="loss")
        x, y = pairs(h.val_steps, h.val_loss, width)
        if x:
            plt.scatter(x, y, color="blue", marker="dot", label="val loss")
        x, y = pairs(h.steps, h.acc, width)
        if x:
            plt.plot(x, y, color="green", marker="braille", yside="right", label="acc")
            xv, yv = pairs(h.val_steps, h.val_acc, width)
            if xv:
                plt.scatter(xv, yv, color="green+", marker="dot", yside="right", label="val acc")
        plt.xlabel("step")


class GradTimePlot(DataPlot):
    """log10 ||grad W|| per layer over time, coloured input (blue) to output (red)."""

    def draw(self, width: int) -> bool | None:
        plt = self.plt
        h: History | None = self.data.get("history")
        names: list[str] = self.data.get("names") or []
        base: History | None = self.data.get("base")
        if h is None or not len(h) or not names:
            plt.title("waiting for gradients")
            return False
        plt.title("")
        n = len(names)
        if base is not None and len(base) and base.grads:
            bn = len(base.grads[-1])
            for j in sorted({0, bn - 1}):
                ys = [_log10(g[j]) if j < len(g) else None for g in base.grads]
                x, y = pairs(base.steps, ys, width)
                if x:
                    plt.plot(x, y, color="gray", marker="dot", label=f"base {'L1' if j == 0 else 'last'}")
        colors = layer_colors(n)
        chosen = pick_layers(n)
        for j in chosen:
            ys = [_log10(g[j]) if j < len(g) else None for g in h.grads]
            x, y = pairs(h.steps, ys, width)
            if x:
                label = names[j] if j in (chosen[0], chosen[-1]) else None
                plt.plot(x, y, color=colors[j], marker="braille", label=label)
        plt.xlabel("step")


class HistogramPlot(DataPlot):
    def draw(self, width: int) -> bool | None:
        plt = self.plt
        hist = self.data.get("histogram")
        if hist is None:
            plt.title(self.data.get("empty") or "histogram: comes with the next snapshot")
            return False
        plt.title("")
        edges, counts = hist.edges, hist.counts
        centers = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
        plt.bar(centers, counts, color="cyan", width=0.9)
        top = edges[-1]
        plt.xticks([edges[0], 0.0, top], [f"{edges[0]:.1e}", "0", f"{top:.1e}"])


class TimeGradPlot(DataPlot):
    """Recurrent models: log10 ||d loss / d x_t|| per time step t."""

    def draw(self, width: int) -> bool | None:
        plt = self.plt
        tgn = self.data.get("tgn")
        base = self.data.get("base")
        if not tgn:
            plt.title(self.data.get("empty") or "||dloss/dx_t||: recurrent models only")
            return False
        plt.title("")
        if base:
            x, y = pairs(list(range(1, len(base) + 1)), [_log10(v) for v in base], width)
            if x:
                plt.plot(x, y, color="gray", marker="dot", label="baseline")
        x, y = pairs(list(range(1, len(tgn) + 1)), [_log10(v) for v in tgn], width)
        if x:
            plt.plot(x, y, color="magenta", marker="braille", label="log10 ||dL/dx_t||")
        plt.xlabel("time step t")
