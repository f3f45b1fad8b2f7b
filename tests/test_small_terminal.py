"""80x24 is a first-class size: a run is watched in its gradients and findings, every finding can be read,
errors are never cut, and the panels keep the terminal under its byte budget."""

from __future__ import annotations

from test_ui_snapshots import NAMES, fixture_config, fixture_snapshots

from tui_lab.core.run import RunMeta, RunResult
from tui_lab.ui.app import LabApp
from tui_lab.ui.bandwidth import TerminalMeter
from tui_lab.ui.components.findings import FindingsPanel
from tui_lab.ui.runs import LiveRun

from pilot import aio, on_screen, panel_ready, status_text, wait_for
from support import small_config


def replayed(cfg, snaps, result=None) -> LiveRun:
    meta = RunMeta(config=cfg, preset="fixture", layers=NAMES, total_steps=200, chance_loss=1.0986)
    return LiveRun.replay(cfg, "fixture", meta, snaps, result=result)


@aio
async def test_a_run_at_80x24_opens_on_the_gradients_and_findings():
    app = LabApp(preset_name="tiny", cfg=small_config(30))  # no [screen] section: the config view first
    async with app.run_test(size=(80, 24)) as pilot:
        await panel_ready(pilot, app)
        assert on_screen(app, "#p-config") and not on_screen(app, "#p-findings")
        await pilot.press("r")
        await wait_for(pilot, lambda: app.lab.state in ("completed", "running") and app.main.view_index == 1)
        await pilot.pause(0.2)
        assert "Gradient flow" in on_screen(app, "#p-flow") and "Findings" in on_screen(app, "#p-findings")


@aio
async def test_a_chosen_view_stays_when_a_run_starts():
    app = LabApp(preset_name="tiny", cfg=small_config(30))
    async with app.run_test(size=(80, 24)) as pilot:
        await panel_ready(pilot, app)
        await pilot.press("3", "r")
        await wait_for(pilot, lambda: app.lab.run is not None)
        assert app.main.view_index == 2


@aio
async def test_findings_that_do_not_fit_say_so_and_scroll_with_f():
    cfg = fixture_config()
    snaps = fixture_snapshots(cfg)
    app = LabApp(preset_name="fixture", cfg=cfg)
    async with app.run_test(size=(80, 18)) as pilot:  # a short tmux pane: the findings cannot all fit
        await panel_ready(pilot, app)
        app.show_run(replayed(cfg, snaps))
        await pilot.press("2")
        panel = app.query_one(FindingsPanel)
        await wait_for(pilot, lambda: panel.max_scroll_y > 0)
        await wait_for(pilot, lambda: "more line" in on_screen(app, "#p-findings"))
        first = on_screen(app, "#p-findings")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.focused is panel)
        await pilot.press("end")
        # the rest is on screen, and the border says so
        await wait_for(pilot, lambda: panel.scroll_y == panel.max_scroll_y)
        await wait_for(pilot, lambda: "more line" not in on_screen(app, "#p-findings"))
        assert on_screen(app, "#p-findings") != first


@aio
async def test_f_brings_the_findings_from_any_view():
    app = LabApp(preset_name="tiny", cfg=small_config(30))
    async with app.run_test(size=(80, 24)) as pilot:
        await panel_ready(pilot, app)
        await pilot.press("3", "f")
        await wait_for(pilot, lambda: isinstance(app.focused, FindingsPanel))
        assert app.main.view_index == 1


@aio
async def test_a_failed_run_says_why_in_full():
    cfg = fixture_config()
    snaps = fixture_snapshots(cfg, steps=3)
    why = "train.device = 'cuda:3' is not available here: this machine has cpu only, " * 2
    result = RunResult(status="failed", steps=20, elapsed_s=1.0, message=why.strip())
    app = LabApp(preset_name="fixture", cfg=cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await panel_ready(pilot, app)
        app.show_run(replayed(cfg, snaps, result))
        await wait_for(pilot, lambda: any(n.message == why.strip() for n in app._notifications))
        status = status_text(app)
        assert "failed: train.device" in status and "loss" not in status.split("\n")[1]  # the line is the error's


def test_the_panels_repaint_within_the_byte_budget(monkeypatch):
    monkeypatch.setenv("TUI_LAB_BANDWIDTH", "10")  # KB/s
    meter = TerminalMeter()
    meter.repainted()
    meter.written += 30 * 1024  # a repaint of two colour plots
    assert meter.interval(0.5) == 3.0  # 30 KB at 10 KB/s
    meter.repainted()
    meter.written += 1024  # a quiet view keeps the panels' own rate
    assert meter.interval(0.5) == 0.5
    monkeypatch.setenv("TUI_LAB_BANDWIDTH", "0")
    assert TerminalMeter().interval(0.5) == 0.5  # no limit
