"""The Textual app driven by the Pilot: run, pause, step, stop, edit and rerun, invalid values, the preset
picker, quit mid-run, pinning a baseline, and `show` on finished and growing run directories.

Runs are tiny CPU runs (a few hundred steps of a 4-layer, 16-wide MLP); the UI polls the bridge at 6 Hz.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_lab.ui.app import LabApp
from tui_lab.ui.components.config_panel import ConfigPanel
from tui_lab.ui.components.gradflow import GradFlowPanel

from pilot import aio, panel_ready, shown_text, snapshots, wait_for
from support import ROOT, small_config


def small(steps: int = 100, *extra: str):
    return small_config(steps, *extra)


def test_ui_modules_do_not_import_torch():
    code = "import sys; import tui_lab.ui.app; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


class TestRunControls:
    @aio
    async def test_run_writes_run_dir_and_completes(self, runs_dir):
        app = LabApp(preset_name="tiny", cfg=small(60))
        async with app.run_test(size=(100, 30)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "completed")
            run = app.lab.run
            assert run.bridge.snapshots >= 12
            assert run.run_dir.parent == runs_dir
            assert (run.run_dir / "metrics.jsonl").read_text().count("\n") == run.bridge.snapshots
            assert json.loads((run.run_dir / "summary.json").read_text())["status"] == "completed"
            await pilot.pause(0.4)
            status = str(app.query_one("#status").content)
            assert "completed" in status and "step 60/60" in status and run.run_dir.name in status
            assert str(run.run_dir) in str(app.query_one("#findings-text").content)

    @aio
    async def test_pause_step_stop(self):
        app = LabApp(preset_name="tiny", cfg=small(100_000))
        async with app.run_test(size=(100, 30)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: snapshots(app) >= 2)
            await pilot.press("p")
            await wait_for(pilot, lambda: app.lab.state == "paused")
            await pilot.pause(0.3)
            before = snapshots(app)
            await pilot.pause(0.5)
            assert snapshots(app) == before  # paused: no more steps
            await pilot.pause(0.2)
            assert "paused" in str(app.query_one("#status").content)

            step_before = app.lab.run.bridge.latest.step
            await pilot.press("s")
            await wait_for(pilot, lambda: snapshots(app) == before + 1)
            await pilot.pause(0.3)
            assert snapshots(app) == before + 1  # exactly one step, one snapshot
            first_step = app.lab.run.bridge.latest.step
            assert first_step > step_before  # the pause took effect between snapshots
            await pilot.press("s")
            await wait_for(pilot, lambda: snapshots(app) == before + 2)
            await pilot.pause(0.2)
            assert app.lab.run.bridge.latest.step == first_step + 1  # one step, exactly
            assert app.lab.state == "paused"
            before += 1

            await pilot.press("r")  # resume
            await wait_for(pilot, lambda: snapshots(app) > before + 3)
            await pilot.press("x")
            await wait_for(pilot, lambda: app.lab.state == "stopped")
            await wait_for(pilot, lambda: app.lab.run.done.is_set(), 5)

    @aio
    async def test_step_from_idle_starts_paused(self):
        app = LabApp(preset_name="tiny", cfg=small(100))
        async with app.run_test(size=(100, 30)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("s")
            await wait_for(pilot, lambda: snapshots(app) == 1)
            await pilot.pause(0.3)
            assert app.lab.state == "paused" and app.lab.run.bridge.latest.step == 0
            await pilot.press("x")
            await wait_for(pilot, lambda: app.lab.state == "stopped")

    @aio
    async def test_quit_mid_run_joins_the_worker(self):
        app = LabApp(preset_name="tiny", cfg=small(1_000_000))
        async with app.run_test(size=(100, 30)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: snapshots(app) >= 2)
            run = app.lab.run
            assert not run.done.is_set()
            t0 = time.monotonic()
            await pilot.press("q")
            await pilot.pause(0.1)
        assert time.monotonic() - t0 < 1.5
        assert run.done.is_set()  # the worker returned: the trainer thread is free
        assert run.bridge.result.status == "stopped"
        assert app.return_code == 0

    @aio
    async def test_failed_run_is_shown_and_a_new_run_can_start(self):
        import torch

        if torch.cuda.is_available():
            pytest.skip("needs a machine without CUDA")
        app = LabApp(preset_name="tiny", cfg=small(20, 'train.device="cuda"'))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "failed")
            await pilot.pause(0.4)
            assert "CUDA is not available" in str(app.query_one("#status").content)
            assert "run failed" in str(app.query_one("#findings-text").content)
            app.query_one("#cfg-train-device").value = "cpu"
            await pilot.pause(0.1)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "completed")

    @aio
    async def test_recurrent_run_shows_time_gradients(self):
        cfg = small(20, "model.arch=lstm", "model.depth=1", "data.name=adding", "data.seq_len=12")
        app = LabApp(preset_name="tiny-lstm", cfg=cfg)
        async with app.run_test(size=(160, 48)) as pilot:
            await panel_ready(pilot, app)
            assert app.query_one("#p-timegrad").display
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state in ("completed", "failed"))
            assert app.lab.state == "completed", app.lab.run.bridge.result.message
            await pilot.pause(0.4)
            tgn = app.query_one("#p-timegrad").frame.snapshot.time_grad_norm
            assert tgn is not None and len(tgn) == 12


class TestConfigPanel:
    @aio
    async def test_edit_and_rerun_with_new_value(self):
        app = LabApp(preset_name="tiny", cfg=small(40))
        async with app.run_test(size=(100, 30)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "completed")
            first = app.lab.run
            assert len(first.bridge.meta.layers) == 5  # L1..L4 + out
            await pilot.press("e")  # into the config panel
            await pilot.pause(0.1)
            depth = app.query_one("#cfg-model-depth")
            depth.focus()
            await pilot.pause(0.05)
            depth.value = ""
            await pilot.press("2")  # digits go into the field, not to the view keys
            assert depth.value == "2"
            await pilot.press("escape")  # leave the field; letters are commands again
            assert app.focused is None
            await pilot.press("n")
            await wait_for(pilot, lambda: app.lab.run is not first and app.lab.state == "completed")
            assert app.lab.run.cfg.model.depth == 2
            assert app.lab.run.bridge.meta.layers == ["L1", "L2", "out"]
            assert app.lab.run.run_dir != first.run_dir

    @aio
    async def test_invalid_value_is_refused_with_reason(self):
        app = LabApp(preset_name="tiny", cfg=small(40))
        async with app.run_test(size=(100, 30)) as pilot:
            await panel_ready(pilot, app)
            app.query_one("#cfg-model-depth").value = "-3"
            await pilot.pause(0.1)
            err = app.query_one("#cfg-model-depth-err")
            assert err.display and "model.depth = -3 is out of range" in str(err.content)
            await pilot.press("r")
            await pilot.pause(0.3)
            assert app.lab.run is None  # no run started
            assert "model.depth = -3" in str(app.query_one("#status").content)
            app.query_one("#cfg-optim-lr").value = "fast"
            app.query_one("#cfg-model-depth").value = "3"
            await pilot.pause(0.1)
            assert not app.query_one("#cfg-model-depth-err").display
            assert "optim.lr" in str(app.query_one("#cfg-optim-lr-err").content)
            await pilot.press("n")
            await pilot.pause(0.2)
            assert app.lab.run is None

    @aio
    async def test_cross_field_problem_marks_the_field(self):
        app = LabApp(preset_name="tiny", cfg=small(40))
        async with app.run_test(size=(100, 30)) as pilot:
            await panel_ready(pilot, app)
            app.query_one("#cfg-model-arch").value = "lstm"
            await pilot.pause(0.1)
            panel = app.query_one(ConfigPanel)
            assert "data.name" in panel.errors and "does not fit" in panel.errors["data.name"]
            app.query_one("#cfg-data-name").value = "adding"
            await pilot.pause(0.1)
            assert panel.errors == {} and panel.current().model.arch == "lstm"


class TestPresets:
    @aio
    async def test_preset_picker_loads_a_preset(self):
        from textual.widgets import OptionList

        from tui_lab.core.presets import discover, load_preset

        names = list(discover())
        target = "relu-he" if "relu-he" in names else names[-1]
        app = LabApp(cfg=small(40))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("l")
            await pilot.pause(0.2)
            picker = app.screen
            ol = picker.query_one(OptionList)
            ol.highlighted = names.index(target)
            await pilot.pause(0.1)
            preview = str(picker.query_one("#preset-preview").content)
            _, cfg = load_preset(target)
            assert cfg.title_for("en")[:20] in preview
            await pilot.press("enter")
            await pilot.pause(0.2)
            assert app.screen is app.screen_stack[0]
            assert app.lab.preset == target
            panel = app.query_one(ConfigPanel)
            assert panel.current() == cfg
            assert app.query_one("#cfg-model-activation").value == cfg.model.activation
            await pilot.press("question_mark")
            await pilot.pause(0.1)
            assert cfg.lesson_for("en").strip()[:30] in str(app.screen.query_one("#lesson-text").content)
            await pilot.press("escape")

    @aio
    async def test_plain_launch_opens_the_preset_picker(self):
        app = LabApp(open_picker=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await panel_ready(pilot, app)
            await pilot.pause(0.3)
            assert app.screen is not app.screen_stack[0]  # the picker is up
            await pilot.press("enter")  # the first preset
            await pilot.pause(0.2)
            assert app.screen is app.screen_stack[0]
            assert app.lab.preset and app.lab.preset != "custom"


class TestBaseline:
    @aio
    async def test_pin_baseline_and_compare(self):
        app = LabApp(preset_name="tiny", cfg=small(40, "model.activation=sigmoid"))
        async with app.run_test(size=(160, 48)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("b")  # nothing to pin yet
            assert app.lab.baseline is None
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "completed")
            await pilot.press("b")
            assert app.lab.baseline is not None and len(app.lab.baseline.grads) == 5
            app.query_one("#cfg-model-activation").value = "relu"
            app.query_one("#cfg-model-init").value = "he_normal"
            await pilot.pause(0.1)
            await pilot.press("n")
            await wait_for(pilot, lambda: app.lab.state == "completed" and app.lab.run.cfg.model.activation == "relu")
            await pilot.pause(0.4)
            flow = app.query_one(GradFlowPanel)
            assert flow.frame.labels == ("sigmoid/default", "relu/he_normal")
            assert flow.frame.baseline.grads == app.lab.baseline.grads
            bars = shown_text(app, "#p-flow")
            assert "relu/he_normal" in bars and "sigmoid/default (basel" in bars
            assert app.query_one("#p-loss").frame.baseline.history is app.lab.baseline.history
            assert "sigmoid/default" in app.query_one("#p-loss").caption.render().plain  # named over the plot
            await pilot.press("B")
            await pilot.pause(0.3)
            assert app.lab.baseline is None and app.query_one(GradFlowPanel).frame.baseline is None
            assert "(baseline)" not in shown_text(app, "#p-flow")

    @aio
    async def test_pin_an_earlier_run_directory(self, tmp_path):
        run = _headless_run(tmp_path / "earlier")
        app = LabApp(preset_name="tiny", cfg=small(40, "model.activation=tanh"))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            app.pin_run_dir(run)
            await pilot.pause(0.3)
            assert app.lab.baseline is not None and app.lab.baseline.names == ["L1", "L2", "L3", "L4", "out"]
            assert app.query_one(GradFlowPanel).frame.labels == ("sigmoid", "tanh")

    @aio
    async def test_baseline_picker_lists_earlier_runs(self, runs_dir):
        from textual.widgets import OptionList

        _headless_run(runs_dir / "20200101-000000-old")
        app = LabApp(preset_name="tiny", cfg=small(20))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.press("o")
            await pilot.pause(0.2)
            ol = app.screen.query_one(OptionList)
            assert ol.option_count == 1
            ol.highlighted = 0
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert app.lab.baseline is not None and app.lab.baseline.source.endswith("20200101-000000-old")


def _headless_run(directory: Path, steps: int = 40) -> Path:
    from tui_lab.core.runlog import RunLog
    from tui_lab.core.trainer import Trainer

    result = Trainer(small(steps), sinks=[RunLog(directory)], preset="tiny").run()
    assert result.status == "completed"
    return directory


class TestShow:
    @aio
    async def test_show_a_finished_run_dir_and_scrub(self, tmp_path):
        run = _headless_run(tmp_path / "done", steps=40)
        app = LabApp(show_dir=run)
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.pause(0.3)
            recorded = app.lab.run
            assert app.lab.state == "completed"
            n = len(recorded.records)
            assert n == 9  # steps 0, 5, ..., 35 and the last step 39
            assert app.query_one(GradFlowPanel).frame.layer_names == ["L1", "L2", "L3", "L4", "out"]
            await pilot.press("left")
            await pilot.press("left")
            await pilot.pause(0.3)
            assert app.lab.state == "replay" and recorded.cursor == n - 3
            # The per-layer panels show the snapshot under the cursor; the curves keep the whole run.
            assert app.query_one(GradFlowPanel).frame.snapshot.step == recorded.records[n - 3].step
            assert len(recorded.bridge.read().history) == n
            assert f"snapshot {n - 2}/{n}" in str(app.query_one("#status").content)
            await pilot.press("r")  # read-only: no run starts
            assert app.lab.run is recorded
            await pilot.press("end")
            await pilot.pause(0.2)
            assert app.lab.state == "completed"
            # The replay diagnoses each snapshot as the trainer did: the last one's findings are the summary's.
            summary = json.loads((run / "summary.json").read_text())
            shown = recorded.findings(recorded.bridge.read())
            assert [f.message for f in shown] == [f["message"] for f in summary["findings"]]

    @aio
    async def test_show_follows_a_growing_run_dir(self, tmp_path):
        run = _headless_run(tmp_path / "src", steps=40)
        lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
        grow = tmp_path / "growing"
        grow.mkdir()
        (grow / "config.toml").write_text((run / "config.toml").read_text())
        (grow / "summary.json").write_text(json.dumps({"status": "running", "steps": 0, "preset": "tiny"}))
        (grow / "metrics.jsonl").write_text("".join(lines[:3]) + lines[3][:10])  # a partly written line
        app = LabApp(show_dir=grow)
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            await pilot.pause(0.2)
            assert app.lab.state == "following" and len(app.lab.run.records) == 3
            with open(grow / "metrics.jsonl", "a") as f:
                f.write(lines[3][10:] + "".join(lines[4:]))
            (grow / "summary.json").write_text((run / "summary.json").read_text())
            await wait_for(pilot, lambda: app.lab.state == "completed", 5)
            assert len(app.lab.run.records) == len(lines)


class TestLayout:
    @aio
    async def test_views_switch_on_a_small_terminal(self):
        app = LabApp(preset_name="tiny", cfg=small(40))
        async with app.run_test(size=(80, 24)) as pilot:
            await panel_ready(pilot, app)
            shown = lambda: [
                p
                for p in ("p-config", "p-flow", "p-findings", "p-loss", "p-gradtime", "p-hist")
                if app.query_one("#" + p).display
            ]
            assert shown() == ["p-config"]
            await pilot.press("2")
            assert shown() == ["p-flow", "p-findings"]
            await pilot.press("v")
            assert shown() == ["p-loss", "p-gradtime"]
            await pilot.press("e")  # back to the config, focus in its first field
            await pilot.pause(0.1)
            assert shown() == ["p-config"] and app.focused is not None and app.focused.id == "cfg-seed"
            await pilot.press("3")  # a digit while in a field: typed, not a view switch
            assert app.focused.value == "03" or app.focused.value.endswith("3")
            assert shown() == ["p-config"]

    @aio
    async def test_every_key_is_bound_and_in_the_palette_from_one_table(self):
        from tui_lab.ui import commands

        app = LabApp(preset_name="tiny", cfg=small(40))
        async with app.run_test(size=(120, 36)) as pilot:
            await panel_ready(pilot, app)
            bound = {binding.action for binding in app.BINDINGS}
            assert bound == {command.action for command in commands.COMMANDS if command.bind}
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Run / resume", "Pin baseline", "Edit config"} <= titles
            assert "r run" in commands.HINT and "? lesson" in commands.HINT
