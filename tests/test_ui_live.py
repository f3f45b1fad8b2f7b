"""The app while a run goes and after: scrubbing a live run, the pace keys, going on with a finished run,
changing the learning rate mid-run from the config panel, honest names, and a lesson's [screen] section."""

from __future__ import annotations

import json

from tui_lab.core.config import with_overrides
from tui_lab.core.diagnosis import breakdown
from tui_lab.core.runlog import read_metrics, read_summary
from tui_lab.ui.app import LabApp
from tui_lab.ui.components.gradflow import GradFlowPanel

from pilot import aio, panel_ready, status_text, wait_for
from support import small_config


def gradflow_step(app: LabApp) -> int | None:
    frame = app.query_one(GradFlowPanel).frame
    return frame.snapshot.step if frame is not None and frame.snapshot is not None else None


class TestScrubLiveRun:
    @aio
    async def test_left_right_home_end_move_through_a_finished_live_run(self):
        app = LabApp(preset_name="tiny", cfg=small_config(60))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "completed")
            run = app.lab.run
            await wait_for(pilot, lambda: gradflow_step(app) == 59)
            await pilot.press("left", "left")
            await wait_for(pilot, lambda: gradflow_step(app) == 50)
            assert "snapshot 11/13" in status_text(app)
            assert app.lab.state == "completed" and len(run.bridge.read().history) == 13  # curves stay whole
            await pilot.press("home")
            await wait_for(pilot, lambda: gradflow_step(app) == 0)
            assert app.lab.run.findings(app.lab.view())  # the first snapshot judged as the trainer judged it
            await pilot.press("end")
            await wait_for(pilot, lambda: gradflow_step(app) == 59)
            assert "snapshot" not in status_text(app)

    @aio
    async def test_scrubbing_back_while_it_runs_stays_put_as_snapshots_arrive(self):
        app = LabApp(preset_name="tiny", cfg=small_config(400))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("minus", "minus")  # slow: two snapshots a second
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.run.bridge.snapshots >= 3)
            await pilot.press("home")
            await wait_for(pilot, lambda: gradflow_step(app) == 0)
            before = app.lab.run.bridge.snapshots
            await wait_for(pilot, lambda: app.lab.run.bridge.snapshots > before, 5)
            await pilot.pause(0.6)
            assert gradflow_step(app) == 0 and app.lab.state == "running"
            await pilot.press("x")


class TestPace:
    @aio
    async def test_pace_keys_show_in_the_status_and_reach_the_run(self):
        app = LabApp(preset_name="tiny", cfg=small_config(2000))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            assert "pace max" in status_text(app)
            await pilot.press("minus")
            await wait_for(pilot, lambda: "pace normal" in status_text(app))
            await pilot.press("minus", "minus")  # slow is the slowest
            await wait_for(pilot, lambda: "pace slow" in status_text(app))
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.run.bridge.snapshots >= 2)
            run = app.lab.active
            assert run.control.pace == 2.0
            await pilot.pause(1.0)
            assert run.bridge.snapshots <= 5  # two a second, not hundreds
            await pilot.press("plus", "plus")
            assert run.control.pace is None
            await wait_for(pilot, lambda: app.lab.state == "completed")


class TestGoOn:
    @aio
    async def test_c_trains_a_finished_run_as_many_steps_again(self):
        app = LabApp(preset_name="tiny", cfg=small_config(40))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "completed")
            run = app.lab.run
            await pilot.press("c")
            await wait_for(pilot, lambda: app.lab.state == "completed" and run.bridge.read().result.steps == 80)
            assert app.lab.run is run
            await wait_for(pilot, lambda: "step 80/80" in status_text(app), 2)
            steps = [r["step"] for r in read_metrics(run.run_dir)[0]]
            assert steps[-1] == 79 and read_summary(run.run_dir)["steps"] == 80


class TestChangeMidRun:
    @aio
    async def test_enter_in_the_lr_field_changes_the_running_run(self):
        app = LabApp(preset_name="tiny", cfg=small_config(3000))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("minus")  # normal pace: it is still running when the change comes
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.run.bridge.snapshots >= 2)
            lr = app.query_one("#cfg-optim-lr")
            lr.focus()
            await pilot.pause(0.05)
            lr.value = ""
            await pilot.press(*"0.01", "enter")
            run = app.lab.run
            await wait_for(pilot, lambda: run.bridge.read().history.marks, 10)
            step, label = run.bridge.read().history.marks[0]
            assert label == "lr 0.1→0.01"
            await pilot.press("escape", "plus")
            await wait_for(pilot, lambda: app.lab.state == "completed")
            assert run.bridge.read().latest.lr == 0.01
            summary = read_summary(run.run_dir)
            assert summary["changes"][0]["key"] == "optim.lr" and summary["changes"][0]["step"] == step
            carried = [json.dumps(r) for r in read_metrics(run.run_dir)[0] if "changes" in r]
            assert len(carried) == 1


class TestHonestNames:
    @aio
    async def test_an_edited_run_is_named_after_its_difference_and_fields_are_marked(self):
        app = LabApp(preset_name="tiny", cfg=small_config(40))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "completed")
            app.query_one("#cfg-model-activation").value = "relu"
            app.query_one("#cfg-model-init").value = "he_normal"
            await pilot.pause(0.2)
            assert str(app.query_one("#cfg-model-activation-key").content).strip() == "activation*"
            assert str(app.query_one("#cfg-model-depth-key").content).strip() == "depth"
            status = status_text(app)
            assert " tiny " in status and "loaded: tiny+relu+he_normal (n runs it)" in status
            await pilot.press("n")
            await wait_for(pilot, lambda: app.lab.run.name == "tiny+relu+he_normal" and app.lab.state == "completed")
            assert app.lab.run.run_dir.name.endswith("tiny+relu+he_normal")
            await wait_for(pilot, lambda: "loaded:" not in status_text(app), 2)

    @aio
    async def test_loading_a_preset_takes_the_finished_run_off_the_screen(self):
        app = LabApp(preset_name="tiny", cfg=small_config(40))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "completed")
            await wait_for(pilot, lambda: "loss" in status_text(app), 2)
            app.load_config(small_config(40, "model.activation=tanh"), "other")
            await wait_for(pilot, lambda: " other " in status_text(app), 2)
            status = status_text(app)
            assert app.lab.run is None and "loss" not in status and "idle" in status


class TestLessonScreen:
    @aio
    async def test_a_preset_opens_its_view_at_its_pace_with_its_layer(self):
        cfg = with_overrides(small_config(30), ["screen.view=layers", "screen.pace=normal", "screen.layer=out"])
        app = LabApp(preset_name="lesson", cfg=cfg)
        async with app.run_test(size=(80, 24)) as pilot:
            await panel_ready(pilot, app)
            assert app.main.view_index == 3 and app.query_one("#p-hist").display
            assert "pace normal" in status_text(app)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.run.bridge.read().meta.layers)
            await wait_for(pilot, lambda: app.lab.hist_layer == 4)  # L1..L4, out
            assert app.lab.active is None or app.lab.active.control.histogram_layer == 4
            await pilot.press("plus")
            await wait_for(pilot, lambda: app.lab.state == "completed")


class TestDivergenceOnScreen:
    @aio
    async def test_a_diverged_run_shows_its_last_finite_bars_and_where_it_broke(self):
        cfg = small_config(50, "optim.lr=50", "model.init=normal", "model.init_scale=1.0", "model.activation=relu")
        app = LabApp(preset_name="boom", cfg=cfg)
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "diverged")
            panel = app.query_one(GradFlowPanel)
            broken = app.lab.run.bridge.read().latest
            await wait_for(pilot, lambda: panel.frame is not None and panel.frame.broken is broken)
            text = str(panel.body.render())
            assert f"✖ broke at step {broken.step}:" in text
            assert "nan" not in text and "inf" not in text  # the bars are the last finite snapshot's
            last = app.lab.run.bridge.read().latest_finite
            assert panel.frame.snapshot is last and f"bars: step {last.step}" in text
            rows = {line[1:].split(" ")[0]: line[0] for line in text.splitlines() if line[:1] in (" ", "✖")}
            for layer in last.layers:
                assert layer.name in rows  # every layer keeps its bar
            # the layer the autopsy blames is marked in the bar chart's margin
            blamed = breakdown(broken.layers)
            assert [name for name, mark in rows.items() if mark == "✖"] == [blamed.layer]
            assert "the last before it broke" in panel.border_subtitle
