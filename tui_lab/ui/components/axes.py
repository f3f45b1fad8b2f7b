"""Axes a reader can trust: ticks on 1-2-5 steps, whole numbers for steps, short labels for big and small
values (1e20, 2e-5, never 356703456729973653504.0), and log axes labelled with the values they stand for.

Pure functions of numbers: the plots (plots.py) and the gradient bars (gradflow.py) use them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STEPS = (1.0, 2.0, 5.0)


def _step_at_least(raw: float) -> float:
    """The smallest 1-2-5 step (…, 0.5, 1, 2, 5, 10, …) not below `raw`."""
    exp = math.floor(math.log10(raw))
    for base in (*STEPS, 10.0):
        step = base * 10.0**exp
        if step >= raw * (1 - 1e-9):
            return step
    return 10.0 ** (exp + 1)


def _next_step(step: float) -> float:
    exp = math.floor(math.log10(step) + 1e-9)
    mantissa = round(step / 10.0**exp)
    return {1: 2, 2: 5}.get(mantissa, 10) * 10.0**exp


def nice_ticks(lo: float, hi: float, max_ticks: int = 6, integer: bool = False) -> list[float]:
    """Evenly spaced ticks on a 1-2-5 step that cover [lo, hi]: the first at or below lo, the last at or above
    hi, at most `max_ticks` of them (at least 2; 3 for a range around zero, which has a tick at 0 inside).
    `integer`: the step is a whole number (steps, decades)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    lo, hi = min(lo, hi), max(lo, hi)
    max_ticks = max(2, max_ticks)
    if (hi - lo) / (max_ticks - 1) < 1e-300:  # one value: a step of about a tenth of it around it (0: from 0 to 1)
        pad = 1.0 if integer else max(abs(lo) * 0.1, 1e-300)
        if lo == 0:
            lo, hi = 0.0, 1.0
        else:  # the padding does not cross zero
            lo, hi = (max(lo - pad, 0.0), hi + pad) if lo > 0 else (lo - pad, min(hi + pad, 0.0))
    step = _step_at_least((hi - lo) / (max_ticks - 1))
    if integer:
        step = max(step, 1.0)
    while True:
        digits = max(0, -math.floor(math.log10(step)) + 1)
        tick = lambda i: round(i * step, digits) + 0.0  # noqa: B023 - used at once, in this pass
        start, end = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
        start -= tick(start) > lo  # rounding never leaves an end uncovered
        end += tick(end) < hi
        if end - start + 1 <= max_ticks or (lo < 0 < hi and step >= hi - lo):  # around zero: 3 at most
            return [tick(i) for i in range(start, end + 1)]
        step = _next_step(step)


def log_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Ticks for a log axis over [lo, hi] (both > 0), in data units: whole decades (every 1, 2, 5... decades)
    inside the decades that hold the data, or, within less than a decade, 1-2-5 ticks covering it."""
    return [10.0**t for t in log_axis(math.log10(lo), math.log10(hi), max_ticks).ticks] if lo > 0 and hi > 0 else []


@dataclass(frozen=True)
class Axis:
    """Limits and ticks in the plotted units (log10 of the value on a log axis), and the ticks' labels."""

    lo: float
    hi: float
    ticks: list[float]
    labels: list[str]
    log: bool = False

    def span(self) -> float:
        return self.hi - self.lo


def linear_axis(lo: float, hi: float, max_ticks: int = 6) -> Axis:
    """A value axis: ticks cover the data, the limits are the outer ticks."""
    ticks = nice_ticks(lo, hi, max_ticks)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else None
    return Axis(ticks[0], ticks[-1], ticks, [label(t, step) for t in ticks])


def step_axis(lo: float, hi: float, max_ticks: int = 6) -> Axis:
    """Training steps: the limits are the data's (or a tick within 5% of them), ticks whole numbers on a
    1-2-5 step inside them."""
    if hi <= lo:  # one step: a step either side of it, none before 0
        lo, hi = (lo - 1 if lo >= 1 else lo), hi + 1
    ticks = nice_ticks(lo, hi, max_ticks, integer=True)
    near = 0.05 * (hi - lo)  # an end within 5% of a tick goes to it: 0..1000 for a run that ended at 999
    lo, hi = (ticks[0] if lo - ticks[0] <= near else lo), (ticks[-1] if ticks[-1] - hi <= near else hi)
    ticks = [t for t in ticks if lo <= t <= hi]
    return Axis(lo, hi, ticks, [step_label(t) for t in ticks])


def log_axis(lo_exp: float, hi_exp: float, max_ticks: int = 6, decades: bool = False) -> Axis:
    """A log axis given log10 of the data's extremes: the data fill it, ticks fall on whole decades every 1,
    2, 5... decades (the decades around the data when fewer than two lie inside); data within less than a
    decade get 1-2-5 ticks covering it.
    `decades`: label every tick as a power of ten (1e-8, 1e0), as the gradient axes do."""
    lo_exp, hi_exp = min(lo_exp, hi_exp), max(lo_exp, hi_exp)
    if hi_exp - lo_exp < 1 and not decades:
        values = [v for v in nice_ticks(10.0**lo_exp, 10.0**hi_exp, max_ticks) if v > 0]
        if len(values) >= 2 and values[0] <= 10.0**lo_exp:
            step = values[1] - values[0]
            ticks = [math.log10(v) for v in values]
            return Axis(ticks[0], ticks[-1], ticks, [label(v, step) for v in values], log=True)
    pad = 0.03 * (hi_exp - lo_exp)  # the data fill the plot; ticks on whole decades inside
    a, b = lo_exp - pad, hi_exp + pad
    if math.floor(b) - math.ceil(a) < 1:  # fewer than two decades inside: the decades around the data
        a, b = math.floor(lo_exp + 1e-9), math.ceil(hi_exp - 1e-9)
        if b <= a:
            a, b = a - 1 if decades else a, b + 1
    k = 1.0
    while True:
        ticks = [float(e) for e in range(math.ceil(a / k - 1e-9) * int(k), math.floor(b + 1e-9) + 1, int(k))]
        if len(ticks) <= max(2, max_ticks):
            break
        k = _next_step(k)
    if not decades and len(ticks) < 3:  # two decades or less: 1, 2 and 5 of each, when they fit
        subs = [e + math.log10(m) for e in range(math.floor(a), math.ceil(b) + 1) for m in STEPS]
        subs = [t for t in subs if a - 1e-9 <= t <= b + 1e-9]
        if len(subs) <= max_ticks:
            ticks = subs
    labels = [decade_label(t) if decades else label(10.0**t) for t in ticks]
    return Axis(float(a), float(b), ticks, labels, log=True)


def label(value: float, step: float | None = None) -> str:
    """A tick label: '0', '0.25', '12', '1000', then '2e-5', '1.5e4', '1e20' outside [1e-3, 1e4).
    `step` (the distance between ticks) says how many digits tell the ticks apart."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    size = abs(value)
    if 1e-3 <= size < 1e4:
        if step is None:
            text = f"{value:.3g}"
            return text if "e" not in text else sci(value)
        digits = max(0, -math.floor(math.log10(abs(step)) + 1e-9)) if step else 0
        return f"{value:.{digits}f}"
    if step:
        digits = max(0, math.floor(math.log10(size) + 1e-9) - math.floor(math.log10(abs(step)) + 1e-9))
        return sci(value, min(digits, 3))
    return sci(value)


def sci(value: float, digits: int | None = None) -> str:
    """'1e20', '2e-5', '1.5e4': the shortest mantissa (at most `digits` decimals; None: up to 2)."""
    text = f"{value:.{2 if digits is None else digits}e}"
    mantissa, exp = text.split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exp)}"


def decade_label(exp: float) -> str:
    """The label of a tick on a log10 axis: 1e-8, 1e0, 1e3."""
    return f"1e{round(exp)}" if abs(exp - round(exp)) < 1e-9 else sci(10.0**exp, 1)


def step_label(value: float) -> str:
    """A training step: '0', '250', '1000', '12k' from 10 000 up when it is whole thousands."""
    v = round(value)
    if abs(v) >= 10_000 and v % 1000 == 0:
        return f"{v // 1000}k"
    return str(v)
