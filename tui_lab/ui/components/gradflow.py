"""Per-layer panels drawn with Rich text (clear and cheap): the gradient flow bars, and the activation
statistics of each layer."""

from __future__ import annotations

import math
import os
from collections.abc import Hashable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll

from tui_lab.core.fmt import LOG_FLOOR, MISSING, finite, log10_floored, sci
from tui_lab.ui.components.panel import Panel, TextBody
from tui_lab.ui.frame import Frame


def bar_style(value: float | None, top: float) -> str:
    if os.environ.get("NO_COLOR"):
        return "bold" if value is None else ""  # full-contrast bars; the length tells the story
    if value is None:
        return "bold red"
    gap = top - value
    if value > 2 or gap > 4:
        return "red"
    if gap > 2:
        return "yellow"
    return "green"


class TextPanel(Panel, VerticalScroll):
    """A panel of Rich text made for its width (`text`), scrolling when it is taller than the panel."""

    def compose(self) -> ComposeResult:
        self.body = TextBody(self.text)
        yield self.body

    def text(self, width: int) -> Text:
        raise NotImplementedError


class GradFlowPanel(TextPanel):
    """log10 ||grad W|| per layer, input side first; the baseline's bar beside each, dimmed."""

    BORDER_TITLE = "Gradient flow  log10 ‖∇W‖"
    EMPTY = "no gradients yet: press r to run, s to take one step"

    def key(self, frame: Frame) -> Hashable:
        return frame.view, frame.baseline, frame.labels, frame.state == "running"

    def subtitle(self, frame: Frame) -> str:
        # The step only while the run is not moving: a changing border repaints the whole panel.
        return f"step {frame.snapshot.step}" if frame.snapshot is not None and frame.state != "running" else ""

    def draw(self, frame: Frame) -> None:
        base = frame.baseline
        self.body.redraw((len(frame.layer_names), len(base.names) if base else None))

    def text(self, width: int) -> Text:
        frame = self.frame
        text = Text(no_wrap=True, overflow="crop")
        base = frame.baseline if frame is not None else None
        if frame is None or (frame.snapshot is None and base is None):
            text.append(self.EMPTY, "dim")
            return text
        names = frame.layer_names
        base_names = base.names if base is not None else []
        rows = [names[i] if i < len(names) else base_names[i] for i in range(max(len(names), len(base_names)))]
        logs = [log10_floored(layer.grad_norm) for layer in frame.layers]
        blogs = [log10_floored(g) for g in base.grads] if base else []
        known = [v for v in logs + blogs if v is not None]
        top = max(0.0, math.ceil(max(known))) if known else 0.0
        name_w = max(len(n) for n in rows) + 1
        val_w = 6
        if base is not None:
            labels = frame.labels or ("baseline", "current")
            bar_w = max(4, (width - name_w - 2 * val_w - 1) // 2)
            base_label = labels[0] + ("" if labels[0] == "baseline" else " (baseline)")
            text.append(" " * name_w)
            text.append(_fit(labels[1], bar_w + val_w), "bold")
            text.append(" ")
            text.append(_fit(base_label, bar_w + val_w), "grey50")
            text.append("\n")
        else:
            bar_w = max(4, width - name_w - val_w - 1)
        for i, name in enumerate(rows):
            text.append(f"{name:<{name_w}}")
            if i < len(logs):
                text.append_text(_bar(logs[i], top, bar_w, "█", bar_style(logs[i], top)))
                text.append(f" {_fmt_log(logs[i]):>{val_w - 1}}")
            else:
                text.append(" " * (bar_w + val_w))
            if base is not None:
                text.append(" ")
                if i < len(blogs):
                    text.append_text(_bar(blogs[i], top, bar_w, "▒", "" if os.environ.get("NO_COLOR") else "grey50"))
                    text.append(f" {_fmt_log(blogs[i]):>{val_w - 1}}", "grey50")
            text.append("\n")
        axis, right = f"1e{int(LOG_FLOOR)}", f"1e{int(top)}"
        pad = max(1, bar_w - len(axis) - len(right))
        text.append(" " * name_w + axis + "·" * pad + right, "dim")
        if base is not None:
            text.append(" " * (val_w + 1) + axis + "·" * pad + right, "dim")
        return text


def _bar(v: float | None, top: float, width: int, char: str, style: str) -> Text:
    if v is None:
        return Text("nan".ljust(width), "bold red")
    cells = (min(v, top) - LOG_FLOOR) / (top - LOG_FLOOR) * width
    full = int(cells)
    part = "▏" if cells - full > 0.5 and full < width and char == "█" else ""
    bar = Text(char * full + part, style)
    bar.append(" " * (width - full - len(part)))
    return bar


def _fit(text: str, width: int) -> str:
    return text[: width - 1] + "…" if len(text) > width else text.ljust(width)


def _fmt_log(v: float | None) -> str:
    if v is None:
        return "nan"
    if v <= LOG_FLOOR:
        return "0"
    return f"{v:+.1f}"


class LayersPanel(TextPanel):
    """Per layer: activation std, dead and saturated fractions, update/weight ratio."""

    BORDER_TITLE = "Activations: dead / saturated"
    EMPTY = "no statistics yet"

    def draw(self, frame: Frame) -> None:
        self.body.redraw(len(frame.layer_names))

    def text(self, width: int) -> Text:
        frame = self.frame
        layers = frame.layers if frame is not None else []
        text = Text(no_wrap=True, overflow="crop")
        if not layers:
            text.append(self.EMPTY, "dim")
            return text
        name_w = max(len(layer.name) for layer in layers) + 1
        text.append(f"{'':<{name_w}}{'act std':>8} {'dead':<11}{'saturated':<11}{'upd/W':>8}\n", "bold")
        for layer in layers:
            text.append(f"{layer.name:<{name_w}}")
            text.append(f"{sci(layer.act_std, MISSING):>8} ")
            text.append_text(_frac_bar(layer.dead_frac, "red"))
            text.append_text(_frac_bar(layer.sat_frac, "yellow"))
            text.append(f"{sci(layer.update_ratio, MISSING):>8}\n")
        return text


def _frac_bar(x: float | None, style: str) -> Text:
    x = finite(x)
    if x is None:
        return Text(MISSING.ljust(11))
    cells = int(round(min(max(x, 0.0), 1.0) * 5))
    bar = Text("█" * cells, style)
    bar.append("·" * (5 - cells), "dim")
    bar.append(f"{x * 100:4.0f}% ")
    return bar
