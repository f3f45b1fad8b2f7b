"""A run that changes as it goes: hyperparameters changed mid-run (applied, recorded, replayed), a human
pace, a finished run that goes on, and reading a live run's snapshots back for scrubbing."""

from __future__ import annotations

import json
import time

import pytest
import torch

from tui_lab.core.config import load_config
from tui_lab.core.run import Control, Snapshot
from tui_lab.core.runlog import RunLog, read_metrics, read_summary
from tui_lab.core.trainer import Trainer
from tui_lab.ui.bridge import Bridge
from tui_lab.ui.runs import RecordedRun, Timeline

from support import small_config


class ChangeAt:
    """A sink that asks for hyperparameter changes once the run reaches a step (as the UI would)."""

    def __init__(self, control: Control, step: int, **changes: float):
        self.control, self.step, self.changes = control, step, changes
        self.snaps: list[Snapshot] = []

    def __call__(self, snap: Snapshot) -> None:
        self.snaps.append(snap)
        if snap.step == self.step:
            for key, value in self.changes.items():
                self.control.change(key.replace("__", "."), value)


class TestChangesMidRun:
    def test_lr_change_applies_at_the_next_step_and_is_recorded(self, tmp_path):
        control = Control()
        sink = ChangeAt(control, 20, optim__lr=0.01)
        log = RunLog(tmp_path / "run")
        result = Trainer(small_config(60), control=control, sinks=[sink, log]).run()
        assert result.status == "completed"
        lrs = {s.step: s.lr for s in sink.snaps}
        assert lrs[20] == pytest.approx(0.1) and all(lr == pytest.approx(0.01) for s, lr in lrs.items() if s > 20)
        marked = [s for s in sink.snaps if s.changes]
        assert [s.step for s in marked] == [25]  # the first snapshot after the change carries it
        change = marked[0].changes[0]
        assert (change.step, change.key, change.was, change.to, change.applied) == (21, "optim.lr", 0.1, 0.01, True)
        # The run directory: the metrics line that carries it, and the summary's list.
        records, _ = read_metrics(log.dir)
        carried = [r for r in records if "changes" in r]
        assert len(carried) == 1 and carried[0]["changes"][0]["to"] == 0.01
        assert read_summary(log.dir)["changes"] == [change.to_dict()]
        # A replay (tui-lab show) gets it back as a mark on the curves.
        shown = RecordedRun(log.dir)
        assert shown.bridge.read().history.marks == [(21, "lr 0.1→0.01")]

    def test_clipping_switched_on_mid_run_bounds_the_steps(self):
        control = Control()
        sink = ChangeAt(control, 30, optim__clip_norm=1e-6)
        Trainer(small_config(60, "optim.lr=0.5"), control=control, sinks=[sink]).run()
        before = max(layer.update_ratio for s in sink.snaps if 5 <= s.step <= 30 for layer in s.layers)
        after = max(layer.update_ratio for s in sink.snaps if s.step > 30 for layer in s.layers)
        assert after < before * 1e-3  # a 1e-6 gradient norm: the steps all but stop

    def test_momentum_for_adam_is_recorded_as_unused(self):
        control = Control()
        sink = ChangeAt(control, 10, optim__momentum=0.5)
        result = Trainer(small_config(30, "optim.name=adam", "optim.lr=0.01"), control=control, sinks=[sink]).run()
        assert [(c.key, c.applied) for c in result.changes] == [("optim.momentum", False)]
        assert "unused" in result.changes[0].label

    def test_an_unchanged_value_records_nothing(self):
        control = Control()
        sink = ChangeAt(control, 10, optim__lr=0.1)  # what it already has
        result = Trainer(small_config(30), control=control, sinks=[sink]).run()
        assert result.changes == [] and not any(s.changes for s in sink.snaps)


class TestPace:
    def test_slow_pace_spaces_snapshots_without_slowing_the_reported_speed(self):
        fast = Trainer(small_config(50)).run()
        control = Control()
        control.pace = 20.0  # snapshots a second: 11 snapshots take at least 0.5 s
        times: list[float] = []
        start = time.perf_counter()
        paced = Trainer(small_config(50), control=control, sinks=[lambda s: times.append(time.perf_counter())]).run()
        assert time.perf_counter() - start >= 0.45
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) >= 0.04
        # Time held for the pace is not training time: samples/s stays of the same order.
        assert paced.final.samples_per_s > fast.final.samples_per_s / 5

    def test_stop_while_held_returns_at_once(self):
        control = Control()
        control.pace = 0.2  # one snapshot every 5 s
        sink = lambda snap: control.stop() if snap.step == 0 else None
        start = time.perf_counter()
        result = Trainer(small_config(50), control=control, sinks=[sink]).run()
        assert result.status == "stopped" and time.perf_counter() - start < 2.0

    def test_a_faster_pace_wakes_a_held_trainer(self):
        control = Control()
        control.pace = 0.2

        def sink(snap):
            if snap.step == 0:
                control.set_pace(None)  # max: the trainer must not sit out the 5 s

        start = time.perf_counter()
        assert Trainer(small_config(50), control=control, sinks=[sink]).run().status == "completed"
        assert time.perf_counter() - start < 3.0


class TestExtend:
    def test_going_on_equals_asking_for_more_steps_at_first(self, tmp_path):
        log = RunLog(tmp_path / "run")
        trainer = Trainer(small_config(40), sinks=[log])
        assert trainer.run().status == "completed"
        result = trainer.extend(40)
        assert result.status == "completed" and result.steps == 80
        straight = Trainer(small_config(80)).run()
        got = [layer.weight_norm for layer in result.last.layers]
        want = [layer.weight_norm for layer in straight.last.layers]
        assert got == pytest.approx(want, rel=1e-5)
        # One run directory: metrics go on from step 40, config.toml asks for 80 steps, the summary says 80.
        steps = [r["step"] for r in read_metrics(log.dir)[0]]
        assert steps == sorted(steps) and steps[-1] == 79 and 40 in steps
        assert load_config(log.dir / "config.toml").train.steps == 80
        summary = read_summary(log.dir)
        assert summary["status"] == "completed" and summary["steps"] == 80 and summary["total_steps"] == 80

    def test_a_bridge_follows_the_extension(self):
        bridge = Bridge()
        trainer = Trainer(small_config(20), sinks=[bridge])
        trainer.run()
        assert bridge.read().result.status == "completed"
        states = []
        trainer.sinks.append(lambda snap: states.append(bridge.read().result))
        trainer.extend(20)
        assert states and all(r is None for r in states)  # running again while it goes on
        assert bridge.read().result.steps == 40 and bridge.read().meta.total_steps == 40

    def test_a_stopped_run_goes_on(self):
        control = Control()
        trainer = Trainer(small_config(200), control=control, sinks=[lambda s: s.step == 20 and control.stop()])
        first = trainer.run()
        assert first.status == "stopped" and first.steps == 21
        trainer.sinks.clear()
        assert trainer.extend(19).steps == 40

    def test_a_run_that_never_trained_cannot_go_on(self):
        with pytest.raises(RuntimeError):
            Trainer(small_config(20)).extend(10)


class TestTimeline:
    def test_reads_a_live_run_back_by_index_and_waits_for_partial_lines(self, tmp_path):
        log = RunLog(tmp_path / "run")
        Trainer(small_config(40), sinks=[log]).run()
        path = log.dir / "metrics.jsonl"
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:3]) + lines[3][:20])
        timeline = Timeline(log.dir, 40)
        timeline.refresh()
        assert len(timeline) == 3 and timeline[2].step == json.loads(lines[2])["step"]
        with open(path, "a") as f:
            f.write(lines[3][20:] + "".join(lines[4:]))
        timeline.refresh()
        assert len(timeline) == len(lines)
        assert [timeline[i].step for i in range(len(lines))] == [json.loads(line)["step"] for line in lines]
        assert timeline[-1].layers and timeline[-1].layers[0].grad_norm > 0
        assert [s.step for s in timeline.before(4, 2)] == [timeline[2].step, timeline[3].step]
        with pytest.raises(IndexError):
            timeline[len(lines)]


class TestDivergenceOnTheBridge:
    def test_the_last_finite_snapshot_stays_what_the_panels_draw(self):
        bridge = Bridge()
        cfg = small_config(50, "optim.lr=50", "model.init=normal", "model.init_scale=1.0", "model.activation=relu")
        result = Trainer(cfg, sinks=[bridge]).run()
        assert result.status == "diverged"
        view = bridge.read()
        assert view.latest.nonfinite and view.latest.layers  # the autopsy: where it broke
        assert view.latest_finite is not None and not view.latest_finite.nonfinite
        assert all(torch.isfinite(torch.tensor(layer.grad_norm)) for layer in view.latest_finite.layers)
        assert view.history.marks[-1] == (view.latest.step, "diverged")
