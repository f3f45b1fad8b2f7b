"""Honest colours and scales, and curves that compare: what the gradient bars, the layer table and the plots
show a user, read off the rendered text and its colours.

No training: fixed snapshots replayed into the app (`LiveRun.replay`), paused, as the snapshot tests do.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text

from tui_lab.core.config import LabConfig, with_overrides
from tui_lab.core.diagnosis import EXPLODE, VANISH
from tui_lab.core.run import LayerStats, RunMeta, Snapshot
from tui_lab.ui.app import LabApp
from tui_lab.ui.components.axes import log_ticks, nice_ticks
from tui_lab.ui.components.config_panel import ConfigPanel
from tui_lab.ui.components.gradflow import GradFlowPanel, LayersPanel, gradient_cell, level
from tui_lab.ui.components.plots import GradTimePanel, LossPanel
from tui_lab.ui.runs import LiveRun

NAMES = ["L1", "L2", "L3", "L4", "out"]
CHANCE = math.log(3)


# -- helpers ----------------------------------------------------------------------------------------------


def aio(fn):
    """Run an async test with asyncio.run (as tests/test_ui.py does)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def panel_ready(pilot, app: LabApp) -> None:
    while not app.query_one(ConfigPanel).ready:
        await pilot.pause(0.05)


def snap(step: int, loss: float | None, grads: list[float | None], acc: float | None = None, **layer) -> Snapshot:
    layers = [LayerStats(name, grad_norm=g, act_std=0.5, update_ratio=1e-3, dead_frac=0.0, sat_frac=0.0)
              for name, g in zip(NAMES, grads)]  # fmt: skip
    for key, values in layer.items():
        for stats, value in zip(layers, values):
            setattr(stats, key, value)
    return Snapshot(step=step, total_steps=1000, epoch=0.0, time_s=0.0, loss=loss, acc=acc, lr=0.1, layers=layers)


def config() -> LabConfig:
    return with_overrides(LabConfig(), ["model.depth=4", "model.width=16", "train.steps=1000", "train.device=cpu"])


async def show(pilot, app: LabApp, snaps: list[Snapshot], marks: list[tuple[int, str]] = ()) -> LiveRun:
    """Replay `snaps` as a paused run (its History's marks filled by hand) and wait for the panels."""
    await panel_ready(pilot, app)
    cfg = config()
    meta = RunMeta(cfg, "fixture", device="cpu", layers=NAMES, total_steps=1000, chance_loss=CHANCE)
    run = LiveRun.replay(cfg, "fixture", meta, snaps)
    run.bridge.history.marks.extend(marks)
    app.show_run(run)
    app.clear_notifications()
    await pilot.pause(0.4)
    return run


def rows(text: Text) -> list[Text]:
    return list(text.split("\n"))


def row(text: Text, name: str) -> Text:
    return next(line for line in rows(text) if line.plain.startswith(name + " "))


def colours_of(line: Text, chars: str = "█") -> set[str]:
    """The colours the characters `chars` are drawn in, on this line."""
    found = set()
    for i, ch in enumerate(line.plain):
        if ch in chars:
            styles = [str(span.style) for span in line.spans if span.start <= i < span.end]
            found |= {w for s in styles for w in s.split() if w in ("red", "yellow", "green")} or {"none"}
    return found


def bars(app: LabApp) -> Text:
    return app.query_one(GradFlowPanel).body.render()


def plot_lines(app: LabApp, panel: type) -> list[str]:
    return app.query_one(panel).plot.render().plain.split("\n")


def left_labels(lines: list[str]) -> list[str]:
    """The left y axis's tick labels, top to bottom."""
    out = []
    for line in lines:
        m = re.match(r"^\s*([^\s┤├│]+)[┤├]", line)  # ├: a reference line leaves the axis there
        if m:
            out.append(m.group(1))
    return out


def label_value(label: str) -> float:
    return float(label)


# -- ticks ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lo, hi, most, integer",
    [(0, 999, 6, True), (0, 1.173, 5, False), (1.092, 1.173, 5, False), (0, 3.5e20, 5, False), (-0.3, 0.7, 3, False),
     (20, 20, 5, True), (-12, -3.3, 5, True), (3e-5, 7e-5, 6, False), (0, 7, 8, True)],
)  # fmt: skip
def test_nice_ticks_cover_the_range_on_1_2_5_steps(lo, hi, most, integer):
    ticks = nice_ticks(lo, hi, most, integer=integer)
    assert 2 <= len(ticks) <= most
    assert ticks[0] <= lo and ticks[-1] >= hi  # covers
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:])}
    assert len({f"{s:.6g}" for s in steps}) == 1  # evenly spaced
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert round(mantissa, 6) in (1, 2, 5)
    if integer:
        assert all(t == int(t) for t in ticks) and step >= 1


@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(0, 1e6, allow_nan=False), st.integers(2, 9), st.booleans())
def test_nice_ticks_property(lo, width, most, integer):
    hi = lo + width
    ticks = nice_ticks(lo, hi, most, integer=integer)
    assert 2 <= len(ticks) <= max(most, 3 if lo < 0 < hi else 2) and ticks[0] <= lo and ticks[-1] >= hi
    if integer:
        assert all(float(t).is_integer() for t in ticks)


def test_log_ticks_are_decades_or_a_covering_1_2_5_within_one():
    assert log_ticks(1e-4, 1.1, 6) == [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0][: len(log_ticks(1e-4, 1.1, 6))]
    assert log_ticks(1, 3.5e20, 6) == [1.0, 1e5, 1e10, 1e15, 1e20]  # every 5 decades: at most 6 ticks
    flat = log_ticks(1.092, 1.173, 5)
    assert flat[0] <= 1.092 and flat[-1] >= 1.173


# -- gradient bars: colours against the output layer ------------------------------------------------------


def test_level_uses_the_findings_thresholds():
    assert level(1.0, 1.0) == level(0.1, 1.0) == level(10.0, 1.0) == "level"
    assert level(0.05, 1.0) == "low" and level(50.0, 1.0) == "high"
    assert level(VANISH * 0.99, 1.0) == "vanishing" and level(VANISH, 1.0) == "low"
    assert level(EXPLODE * 1.01, 1.0) == "exploding" and level(EXPLODE, 1.0) == "high"
    assert level(1e-5, 1.0, vanish=1e-6) == "low"  # Adam-like optimisers: the findings' wider margin
    assert level(float("nan"), 1.0) == "nonfinite" and level(1.0, 0.0) == ""


@aio
async def test_a_converged_relu_he_profile_is_all_green_whatever_came_before():
    # Earlier snapshots had 100x larger gradients; the last one is level: within 10x of out everywhere.
    early = [snap(s, 1.0, [3e-2, 2e-2, 2e-2, 3e-2, 3e-2]) for s in range(0, 500, 50)]
    last = snap(999, 1e-4, [6e-5, 3e-4, 4e-4, 5e-4, 3e-4])
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(120, 36)) as pilot:
        await show(pilot, app, [*early, last], [])
        await pilot.press("2")
        await pilot.pause(0.2)
        text = bars(app)
        for name in NAMES:
            assert colours_of(row(text, name)) == {"green"}, name
            assert "↓" not in row(text, name).plain and "↑" not in row(text, name).plain
        assert "6e-5" in row(text, "L1").plain  # the value itself, not a log10 that reads as a count
        legend = text.plain[text.plain.index("vs out") :]
        assert "within 10×" in legend and "<1/1000 vanishing" in legend and ">1000× exploding" in legend


@aio
async def test_a_vanishing_profile_has_red_input_side_rows():
    grads = [1e-9, 1e-7, 3e-5, 3e-3, 1e-2]  # L1, L2 below 1e-3 of out; L3 between; L4 within 10x
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(120, 36)) as pilot:
        await show(pilot, app, [snap(0, 1.1, grads), snap(10, 1.1, grads)])
        await pilot.press("2")
        await pilot.pause(0.2)
        text = bars(app)
        assert colours_of(row(text, "L1")) == colours_of(row(text, "L2")) == {"red"}
        assert "↓↓" in row(text, "L1").plain
        assert colours_of(row(text, "L3")) == {"yellow"} and "↓ " in row(text, "L3").plain
        assert colours_of(row(text, "L4")) == colours_of(row(text, "out")) == {"green"}


@aio
async def test_exact_zero_tiny_and_nan_look_different():
    grads = [0.0, 1e-30, float("nan"), float("inf"), 1e-2]
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(120, 36)) as pilot:
        await show(pilot, app, [snap(0, 1.1, grads)])
        await pilot.press("2")
        await pilot.pause(0.2)
        text = bars(app)
        zero, tiny, nan, inf = (row(text, n).plain for n in ("L1", "L2", "L3", "L4"))
        assert "○ exactly 0" in zero and "=0" in zero and not re.search(r"\s0\b", zero.replace("exactly 0", ""))
        assert "◂<1e-12" in tiny and "1e-30" in tiny  # under the axis: a mark and the true value
        assert "✖ nan" in nan and "✖ inf" in inf
        assert len({zero[4:20], tiny[4:20], nan[4:20], inf[4:20]}) == 4
        assert colours_of(row(text, "L1"), "○") == {"red"}  # 0 of a non-zero output gradient: vanishing
        assert "=0 exactly zero" in text.plain and "under 1e-12" in text.plain


def test_a_value_just_above_the_floor_still_has_a_bar():
    cell = gradient_cell(2e-12, "vanishing", 0.0, 20, "█", "red").plain
    assert cell.startswith("▏") and "2e-12" in cell


# -- the layer table --------------------------------------------------------------------------------------


@aio
async def test_zero_dead_and_saturated_are_neutral_and_only_a_finding_threshold_warns():
    grads = [1e-2] * 5
    s = snap(0, 1.1, grads, dead_frac=[0.0, 0.2, 0.6, 0.0, 0.0], sat_frac=[0.0, 0.0, 0.0, 0.004, 0.0])
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(120, 36)) as pilot:
        await show(pilot, app, [s])
        await pilot.press("4")
        await pilot.pause(0.2)
        text = app.query_one(LayersPanel).body.render()
        l1, l2, l3, l4 = (row(text, n) for n in ("L1", "L2", "L3", "L4"))
        assert colours_of(l1, "·█%") == {"none"}  # 0%: nothing to see, nothing coloured
        assert all("dim" in str(span.style) for span in l1.spans if "0%" in l1.plain[span.start : span.end])
        assert colours_of(l2, "█") == {"none"} and "▲" not in l2.plain  # some dead: plain
        assert colours_of(l3, "█") == {"yellow"} and "▲" in l3.plain  # half or more: the findings' warning
        assert "<1%" in l4.plain  # a sliver is not 0%


# -- the loss plot ----------------------------------------------------------------------------------------


def flat_run() -> list[Snapshot]:
    grads = [1e-3] * 5
    return [snap(s, 1.092 + 0.081 * (0.5 + 0.5 * math.sin(s / 37)), grads) for s in range(0, 1000, 10)]


def falling_run() -> list[Snapshot]:
    grads = [1e-3] * 5
    # 1.1 down to 1.5e-3: under 3 decades, so `auto` keeps a linear axis
    return [snap(s, 1.1 * math.exp(-s / 150), grads, acc=min(1.0, 0.33 + s / 800)) for s in range(0, 1000, 10)]


def exploding_run() -> list[Snapshot]:
    grads = [1e3] * 5
    return [snap(s, 1.1 * 10 ** (s / 10), grads) for s in range(0, 201, 10)]  # up to 1.1e20


@aio
async def test_a_flat_loss_looks_flat_on_a_linear_axis_from_0():
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(120, 36)) as pilot:
        await show(pilot, app, flat_run())
        await pilot.press("3")
        await pilot.pause(0.3)
        assert app.query_one(LossPanel).frame.loss_scale == "auto"
        lines = plot_lines(app, LossPanel)
        labels = left_labels(lines)
        assert labels[-1] == "0" and 1.173 <= label_value(labels[0]) < 2.5
        curve_rows = [i for i, line in enumerate(lines) if re.search("[\u2801-\u28ff]", line)]
        assert len(curve_rows) <= len(lines) // 4  # a band, not full-height zig-zags
        assert "linear from 0 (auto)" in app.query_one(LossPanel).border_subtitle


@aio
async def test_g_cycles_the_loss_scale_and_the_ticks_follow():
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(120, 36)) as pilot:
        await show(pilot, app, falling_run())
        await pilot.press("3")
        await pilot.pause(0.3)
        panel = app.query_one(LossPanel)
        assert panel.frame.loss_scale == "auto" and left_labels(plot_lines(app, LossPanel))[-1] == "0"
        await pilot.press("g")
        await pilot.pause(0.3)
        assert app.lab.loss_scale == panel.frame.loss_scale == "log"
        values = [label_value(x) for x in left_labels(plot_lines(app, LossPanel))]
        ratios = {round(a / b, 6) for a, b in zip(values, values[1:])}
        assert len(values) >= 3 and len(ratios) == 1 and ratios.pop() >= 10  # log-spaced: a decade apart or more
        assert "loss axis: log" in panel.border_subtitle and "(auto)" not in panel.border_subtitle
        await pilot.press("g")
        await pilot.pause(0.3)
        assert panel.frame.loss_scale == "linear" and left_labels(plot_lines(app, LossPanel))[-1] == "0"
        await pilot.press("g")
        await pilot.pause(0.3)
        assert panel.frame.loss_scale == "auto"


@aio
async def test_exploding_losses_get_a_log_axis_and_compact_labels():
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(120, 36)) as pilot:
        await show(pilot, app, exploding_run())
        await pilot.press("3")
        await pilot.pause(0.3)
        for expected in ("log (auto)", "linear from 0"):
            assert expected in app.query_one(LossPanel).border_subtitle
            labels = left_labels(plot_lines(app, LossPanel))
            assert len(labels) >= 2 and all(re.fullmatch(r"\d+(\.\d+)?|\d(\.\d)?e-?\d+", x) for x in labels), labels
            assert all(len(x) <= 6 for x in labels) and any("e20" in x or "e21" in x for x in labels)
            await pilot.press("g", "g")  # log (chosen) -> linear
            await pilot.pause(0.3)


@aio
async def test_the_legend_is_outside_the_plot_and_names_guessing_and_marks():
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(120, 36)) as pilot:
        await show(pilot, app, falling_run(), marks=[(300, "lr 0.1→0.05"), (600, "lr 0.05→0.01")])
        await pilot.press("3")
        await pilot.pause(0.3)
        loss = app.query_one(LossPanel)
        caption = loss.caption.render().plain
        assert "loss" in caption and "acc (right)" in caption and "guessing: 1.10" in caption
        assert "600: lr 0.05→0.01" in caption and "300: lr 0.1→0.05" in caption
        plot = "\n".join(plot_lines(app, LossPanel))
        assert not re.search(r"loss|acc|guessing|lr ", plot)  # no legend box over the curves
        assert loss.caption.region.bottom <= loss.plot.region.y
        bottom = next(line for line in plot.split("\n") if "└" in line)
        assert bottom.count("┴") == 2  # the two marks, as vertical lines down to the axis
        grad = app.query_one(GradTimePanel)
        assert "600: lr 0.05→0.01" in grad.caption.render().plain
        assert next(line for line in plot_lines(app, GradTimePanel) if "└" in line).count("┴") == 2
        ylabels = left_labels(plot_lines(app, GradTimePanel))
        assert ylabels and all(re.fullmatch(r"1e-?\d+", x) for x in ylabels)  # a log10 axis says 1e-3


@aio
async def test_baseline_and_current_share_the_axes():
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(120, 36)) as pilot:
        await show(pilot, app, [snap(s, 5.0 - s / 250, [1e-3] * 5) for s in range(0, 1000, 10)])
        app.action_pin()
        await show(pilot, app, flat_run())
        await pilot.press("3")
        await pilot.pause(0.3)
        labels = left_labels(plot_lines(app, LossPanel))
        assert label_value(labels[0]) >= 5.0 and labels[-1] == "0"  # the baseline's 5.0 is on the same axis
        assert "baseline" in app.query_one(LossPanel).caption.render().plain


@aio
async def test_the_80x24_curves_view_keeps_its_caption_and_ticks():
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(80, 24)) as pilot:
        await show(pilot, app, falling_run(), marks=[(500, "lr 0.1→0.01")])
        await pilot.press("3")
        await pilot.pause(0.3)
        loss = app.query_one(LossPanel)
        caption = loss.caption.render().plain
        assert "guessing: 1.10" in caption and "500: lr 0.1→0.01" in caption and "…" not in caption
        assert len(left_labels(plot_lines(app, LossPanel))) >= 2
        assert len(left_labels(plot_lines(app, GradTimePanel))) >= 2
        assert "g changes" in loss.border_subtitle


# -- NO_COLOR ---------------------------------------------------------------------------------------------


@aio
async def test_no_color_carries_the_meaning_in_glyphs(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    grads = [1e-9, 1e-7, 3e-5, 3e-3, 1e-2]
    app = LabApp(preset_name="fixture", cfg=config())
    async with app.run_test(size=(120, 36)) as pilot:
        await show(pilot, app, [snap(0, 1.1, grads, dead_frac=[0.6, 0, 0, 0, 0])])
        await pilot.press("2")
        await pilot.pause(0.2)
        text = bars(app)
        assert all(colours_of(line) <= {"none"} for line in rows(text))
        assert "↓↓" in row(text, "L1").plain and "↓ " in row(text, "L3").plain
        assert "no arrow within 10×" in text.plain
        await pilot.press("4")
        await pilot.pause(0.2)
        assert "▲" in row(app.query_one(LayersPanel).body.render(), "L1").plain
