"""Gradient flow bars and per-layer activation statistics, drawn with Rich text (clear and cheap)."""

from __future__ import annotations

import math
import os
from typing import Any

from rich.text import Text
from textual.widget import Widget

FLOOR = -12.0  # bars grow from 1e-12, so a vanishing layer is a short bar


def log10(x: float | None) -> float | None:
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return math.log10(x) if x > 0 else FLOOR


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


class DataWidget(Widget):
    """A widget that repaints only when the data it was given changes."""

    DEFAULT_CSS = "DataWidget { height: 1fr; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._key: Any = object()
        self._shape: Any = None
        self.data: dict[str, Any] = {}

    def set_data(self, key: Any, **data: Any) -> bool:
        if key == self._key:
            return False
        self._key = key
        self.data = data
        # Height is auto: a new number of rows (layers, a baseline) needs a layout pass, new values do not.
        shape = tuple(len(v) if isinstance(v, (list, tuple)) else v is None for v in data.values())
        self.refresh(layout=shape != self._shape)
        self._shape = shape
        return True


class GradFlow(DataWidget):
    """log10 ||grad W|| per layer, input side first; the baseline's bar under each, dimmed."""

    def render(self) -> Text:
        names: list[str] = self.data.get("names") or []
        grads: list[float | None] = self.data.get("grads") or []
        base: list[float | None] | None = self.data.get("base")
        base_names: list[str] = self.data.get("base_names") or []
        labels: tuple[str, str] | None = self.data.get("labels")
        width = max(self.size.width, 20)
        text = Text(no_wrap=True, overflow="crop")
        if not names and not base:
            text.append("no gradients yet: press r to run, s to take one step", "dim")
            return text
        rows = max(len(names), len(base_names) if base is not None else 0)
        row_names = [
            (names[i] if i < len(names) else base_names[i]) for i in range(rows)
        ]
        logs = [log10(g) for g in grads]
        blogs = [log10(g) for g in base] if base else []
        finite = [v for v in logs + blogs if v is not None]
        top = max(0.0, math.ceil(max(finite))) if finite else 0.0
        name_w = max(len(n) for n in row_names) + 1
        val_w = 6
        if base is not None:
            bar_w = max(4, (width - name_w - 2 * val_w - 1) // 2)
            text.append(" " * name_w)
            text.append(_fit(labels[1] if labels else "current", bar_w + val_w), "bold")
            text.append(" ")
            base_label = labels[0] if labels else "baseline"
            base_label += "" if base_label == "baseline" else " (baseline)"
            text.append(_fit(base_label, bar_w + val_w), "grey50")
            text.append("\n")
        else:
            bar_w = max(4, width - name_w - val_w - 1)
        for i, name in enumerate(row_names):
            v = logs[i] if i < len(logs) else None
            text.append(f"{name:<{name_w}}")
            if i < len(logs):
                text.append_text(self._bar(v, top, bar_w, "█", bar_style(v, top)))
                text.append(f" {_fmt_log(v):>{val_w - 1}}")
            else:
                text.append(" " * (bar_w + val_w))
            if base is not None:
                text.append(" ")
                if i < len(blogs):
                    bv = blogs[i]
                    text.append_text(self._bar(bv, top, bar_w, "▒", "" if os.environ.get("NO_COLOR") else "grey50"))
                    text.append(f" {_fmt_log(bv):>{val_w - 1}}", "grey50")
            text.append("\n")
        axis = f"1e{int(FLOOR)}"
        right = f"1e{int(top)}"
        pad = max(1, bar_w - len(axis) - len(right))
        text.append(" " * name_w + axis + "·" * pad + right, "dim")
        if base is not None:
            text.append(" " * (val_w + 1) + axis + "·" * pad + right, "dim")
        return text

    @staticmethod
    def _bar(v: float | None, top: float, width: int, char: str, style: str) -> Text:
        if v is None:
            return Text("nan".ljust(width), "bold red")
        frac = (min(v, top) - FLOOR) / (top - FLOOR)
        cells = frac * width
        full = int(cells)
        part = "▏" if cells - full > 0.5 and full < width and char == "█" else ""
        t = Text(char * full + part, style)
        t.append(" " * (width - full - len(part)))
        return t


def _fit(text: str, width: int) -> str:
    return text[: width - 1] + "…" if len(text) > width else text.ljust(width)


def _fmt_log(v: float | None) -> str:
    if v is None:
        return "nan"
    if v <= FLOOR:
        return "0"
    return f"{v:+.1f}"


class LayerTable(DataWidget):
    """Per layer: activation std, dead and saturated fractions, update/weight ratio."""

    def render(self) -> Text:
        layers: list[Any] = self.data.get("layers") or []
        text = Text(no_wrap=True, overflow="crop")
        if not layers:
            text.append("no statistics yet", "dim")
            return text
        name_w = max(len(layer.name) for layer in layers) + 1
        text.append(f"{'':<{name_w}}{'act std':>8} {'dead':<11}{'saturated':<11}{'upd/W':>8}\n", "bold")
        for layer in layers:
            text.append(f"{layer.name:<{name_w}}")
            text.append(f"{_short(layer.act_std):>8} ")
            text.append_text(_frac_bar(layer.dead_frac, "red"))
            text.append_text(_frac_bar(layer.sat_frac, "yellow"))
            text.append(f"{_short(layer.update_ratio):>8}\n")
        return text


def _short(x: float | None) -> str:
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "–"
    if x == 0:
        return "0"
    if 1e-2 <= abs(x) < 1e3:
        return f"{x:.3g}"
    return f"{x:.0e}"


def _frac_bar(x: float | None, style: str) -> Text:
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return Text("–".ljust(11))
    cells = int(round(min(max(x, 0.0), 1.0) * 5))
    t = Text("█" * cells, style)
    t.append("·" * (5 - cells), "dim")
    t.append(f"{x * 100:4.0f}% ")
    return t
