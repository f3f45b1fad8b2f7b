"""What the network learned: the measurement (decision regions, sequences, accuracy per class), when the trainer
takes it (snapshot steps only, at the panel's rate when it is on screen), learned.jsonl written and read back,
and the panel (view 5) in the app."""

from __future__ import annotations

import asyncio
import functools
import json
import time

import pytest
import torch
import torch.nn.functional as F

from tui_lab.core import learned as learned_mod
from tui_lab.core.data import build_dataset
from tui_lab.core.learned import LearnedClock, LearnedProbe, measure
from tui_lab.core.models import build_model
from tui_lab.core.run import Control, Learned, RunMeta, Snapshot
from tui_lab.core.runlog import LearnedLog, RunLog, read_learned, read_metrics
from tui_lab.core.trainer import Trainer
from tui_lab.ui.app import LabApp
from tui_lab.ui.components.learned import LearnedPanel, classes, regions, sequences
from tui_lab.ui.runs import LiveRun, RecordedRun

from support import small_config


def trained(cfg, steps: int, lr: float = 0.01):
    """A model trained on the config's data in a plain loop (no trainer): (model, data)."""
    torch.manual_seed(cfg.seed)
    data = build_dataset(cfg)
    model = build_model(cfg, data.input_shape, data.n_outputs)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = F.cross_entropy if data.task == "classify" else F.mse_loss
    for i in range(steps):
        idx = torch.arange(i * 32, i * 32 + 32) % len(data.x_train)
        opt.zero_grad()
        loss_fn(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
    return model, data


def cell_of(learned: Learned, x: float, y: float) -> int:
    x0, x1, y0, y1 = learned.bounds
    rows, cols = len(learned.grid), len(learned.grid[0])
    col = min(cols - 1, int((x - x0) / (x1 - x0) * cols))
    row = min(rows - 1, int((y1 - y) / (y1 - y0) * rows))
    return int(learned.grid[row][col])


# ---------------------------------------------------------------------------------------------------------
# The measurement.


class TestMeasure:
    def test_regions_of_a_net_fit_to_moons_agree_with_the_labels(self):
        cfg = small_config(100, "data.name=moons", "data.noise=0.05", "model.depth=2", "model.activation=relu")
        model, data = trained(cfg, 200, lr=0.03)
        learned = measure(model, data, 7, "moons")
        assert model.training  # put back in train mode
        assert learned.kind == "regions" and learned.step == 7 and learned.classes == 2
        x0, x1, y0, y1 = learned.bounds
        xy = torch.cat([data.x_train, data.x_val])
        assert x0 < xy[:, 0].min() and xy[:, 0].max() < x1 and y0 < xy[:, 1].min() and xy[:, 1].max() < y1
        assert len(learned.grid) == len(learned.confidence) and {len(r) for r in learned.grid} == {learned_mod.GRID}
        assert 0 < len(learned.points) <= learned_mod.MAX_POINTS
        # The points are the validation points, with their true classes.
        assert learned.points[0] == (
            round(float(data.x_val[0, 0]), 2), round(float(data.x_val[0, 1]), 2), int(data.y_val[0])
        )  # fmt: skip
        agree = sum(cell_of(learned, x, y) == c for x, y, c in learned.points) / len(learned.points)
        assert agree > 0.9
        # Each cell is the model's own prediction at the cell's centre.
        rows, cols = len(learned.grid), len(learned.grid[0])
        centres = torch.tensor(
            [[x0 + (c + 0.5) * (x1 - x0) / cols, y1 - (r + 0.5) * (y1 - y0) / rows] for r in range(rows)
             for c in range(cols)]
        )  # fmt: skip
        model.eval()
        with torch.no_grad():
            pred = model(centres.float()).argmax(1).reshape(rows, cols).tolist()
        assert ["".join(map(str, row)) for row in pred] == learned.grid

    def test_digits_accuracy_per_class_is_the_models(self):
        cfg = small_config(100, "data.name=digits", "model.depth=2", "model.width=32")
        model, data = trained(cfg, 60)
        learned = measure(model, data, 3, "digits")
        assert learned.kind == "classes" and learned.classes == 10
        model.eval()
        with torch.no_grad():
            pred = model(data.x_val).argmax(1)
        for c in range(10):
            mask = data.y_val == c
            assert learned.counts[c] == int(mask.sum())
            assert learned.correct[c] == int((pred[mask] == c).sum())
        assert sum(learned.counts) == len(data.y_val)
        assert learned.accuracy[0] == learned.correct[0] / learned.counts[0]

    def test_adding_sequences_hold_real_targets(self):
        cfg = small_config(100, "model.arch=lstm", "model.depth=1", "data.name=adding", "data.seq_len=12")
        torch.manual_seed(0)
        data = build_dataset(cfg)
        model = build_model(cfg, data.input_shape, data.n_outputs)
        learned = measure(model, data, 0, "adding")
        n = learned_mod.SEQUENCES
        assert learned.kind == "sequences" and learned.classes == 0
        assert learned.targets == [round(float(v), 4) for v in data.y_val[:n, 0]]
        for inputs, target in zip(learned.inputs, learned.targets):
            assert len(inputs) == 2 and abs(sum(inputs) - target) < 1e-3
        with torch.no_grad():
            expected = model.eval()(data.x_val[:n]).reshape(-1).tolist()
        assert learned.predictions == pytest.approx(expected, abs=1e-4)

    def test_copy_sequences_hold_the_symbol_to_name(self):
        cfg = small_config(100, "model.arch=gru", "model.depth=1", "data.name=copy", "data.seq_len=10")
        data = build_dataset(cfg)
        model = build_model(cfg, data.input_shape, data.n_outputs)
        learned = measure(model, data, 0, "copy")
        assert learned.kind == "sequences" and learned.classes == cfg.data.classes
        assert learned.targets == data.y_val[: learned_mod.SEQUENCES].tolist()
        assert [row[0] for row in learned.inputs] == learned.targets  # the first symbol is the one to name
        assert all(len(row) == learned_mod.COPY_SYMBOLS for row in learned.inputs)
        assert all(0 <= p < cfg.data.classes for p in learned.predictions)

    def test_dict_round_trip(self):
        cfg = small_config(100, "data.name=spiral")
        data = build_dataset(cfg)
        model = build_model(cfg, data.input_shape, data.n_outputs)
        learned = LearnedProbe(data, "points", "spiral")(model, 5)
        line = json.loads(json.dumps(learned.to_dict()))
        assert Learned.from_dict(line) == learned
        assert set(line) == {"step", "kind", "classes", "task", "bounds", "grid", "confidence", "points"}


# ---------------------------------------------------------------------------------------------------------
# When the trainer measures.


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_clock_first_last_and_the_panels_rate():
    control, clock = Control(), FakeClock()
    due = LearnedClock(control, visible_s=0.5, background_s=5.0, clock=clock)
    assert due.due()  # the first
    clock.now = 1.0
    assert not due.due()  # nobody looks: every 5 s
    assert due.due(last=True)  # the last, always
    control.learned = True
    clock.now = 1.3
    assert not due.due()
    clock.now = 1.6
    assert due.due()
    control.learned = False
    clock.now = 6.0
    assert not due.due()
    clock.now = 6.7
    assert due.due()


def counting(monkeypatch) -> list[int]:
    """The steps at which the trainer measures what the net learned."""
    steps: list[int] = []
    real = LearnedProbe.__call__

    def call(self, model, step):
        steps.append(step)
        return real(self, model, step)

    monkeypatch.setattr(LearnedProbe, "__call__", call)
    return steps


def test_trainer_measures_only_at_the_first_and_last_snapshot_while_nobody_looks(monkeypatch):
    steps = counting(monkeypatch)
    snaps: list[Snapshot] = []
    Trainer(small_config(60), sinks=[snaps.append]).run()
    assert steps == [0, 59]
    assert [s.step for s in snaps if s.learned is not None] == [0, 59]
    assert snaps[-1].learned.kind == "regions" and snaps[-1].learned.step == 59


def test_trainer_measures_on_snapshot_steps_only_while_the_panel_is_shown(monkeypatch):
    steps = counting(monkeypatch)
    monkeypatch.setattr("tui_lab.core.trainer.LearnedClock", functools.partial(LearnedClock, visible_s=0.0))
    control = Control()
    control.learned = True
    snaps: list[Snapshot] = []
    Trainer(small_config(60), control=control, sinks=[snaps.append]).run()
    assert steps == [s.step for s in snaps]  # every snapshot, and no other step
    assert all(s.learned is not None and s.learned.step == s.step for s in snaps)


# ---------------------------------------------------------------------------------------------------------
# learned.jsonl.


def visible_run(directory, steps: int = 40, *extra: str):
    control = Control()
    control.learned = True
    clock = functools.partial(LearnedClock, visible_s=0.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("tui_lab.core.trainer.LearnedClock", clock)
        result = Trainer(small_config(steps, *extra), control=control, sinks=[RunLog(directory)]).run()
    assert result.status == "completed"
    return directory


def test_learned_jsonl_written_and_read_back(tmp_path):
    run = visible_run(tmp_path / "run", 40)
    records, offset = read_learned(run)
    metrics, _ = read_metrics(run)
    assert [r["step"] for r in records] == [m["step"] for m in metrics]
    assert all("learned" not in m for m in metrics)  # metrics.jsonl keeps its format
    assert offset == (run / "learned.jsonl").stat().st_size
    assert Learned.from_dict(records[-1]).grid and records[-1]["kind"] == "regions"
    # A partly written line is left for the next read.
    with open(run / "learned.jsonl", "a") as f:
        f.write('{"step": 99, "kind": "reg')
    more, offset2 = read_learned(run, offset)
    assert more == [] and offset2 == offset
    log = LearnedLog(run)
    log.refresh()
    assert len(log) == len(records)
    assert log.at(12).step == 10 and log.at(39).step == 39 and log.at(-1) is None
    assert log.at(12) is log.at(14)  # the same line, the same record: a panel redraws only on change


def test_show_a_run_dir_with_what_it_learned_at_the_cursor(tmp_path):
    run = visible_run(tmp_path / "run", 40)
    recorded = RecordedRun(run)
    view = recorded.bridge.read()
    assert view.learned is not None and view.learned.step == 39
    assert recorded.learned(view).step == 39
    recorded.scrub_to(2)
    assert recorded.learned(recorded.bridge.read()).step == recorded.records[2].step


def test_a_live_run_scrubbed_shows_what_it_had_learned_then(monkeypatch):
    monkeypatch.setattr("tui_lab.core.trainer.LearnedClock", functools.partial(LearnedClock, visible_s=0.0))
    run = LiveRun.create(small_config(40), "tiny", histogram_layer=0)
    run.control.learned = True
    run.train()
    view = run.bridge.read()
    assert run.learned(view) is view.learned and view.learned.step == 39
    run.scrub_to(3)
    assert run.learned(run.bridge.read()).step == run.records[3].step == 15


def test_a_run_dir_from_before_learned_jsonl_still_shows(tmp_path):
    run = visible_run(tmp_path / "run", 20)
    (run / "learned.jsonl").unlink()
    recorded = RecordedRun(run)
    assert recorded.learned(recorded.bridge.read()) is None


# ---------------------------------------------------------------------------------------------------------
# The panel.


def fixed_regions(step: int = 30) -> Learned:
    grid = ["0" * 8 + "1" * 8] * 8  # left half class 0, right half class 1
    return Learned(step=step, kind="regions", classes=2, task="moons", bounds=(-1.0, 1.0, -0.5, 0.5), grid=grid,
                   confidence=["9" * 16] * 8, points=[(-0.5, 0.0, 0), (0.5, 0.2, 1), (0.6, -0.2, 0)])  # fmt: skip


def test_regions_text_colour_and_no_color():
    learned = fixed_regions()
    text = regions(learned, 60, 12)
    lines = text.plain.splitlines()
    assert lines[0].startswith("decision regions at step 30 · ● validation points")
    assert text.plain.count("●") >= 3 + 2  # three points, and the legend's two
    assert len(lines) <= 12 and max(len(line) for line in lines[1:]) <= 60
    plain = regions(learned, 60, 12, plain=True).plain.splitlines()
    body = plain[3:]  # below the legend's two lines
    assert any("0" in row for row in body) and any("1" in row for row in body)  # points as their class digit
    assert any(row.startswith(" ") and "░" in row for row in body)  # class 0 blank, class 1 shaded


def test_sequences_and_classes_text():
    adding = Learned(step=4, kind="sequences", task="adding", targets=[0.73, 1.2], predictions=[0.41, None],
                     inputs=[[0.31, 0.42], [0.6, 0.6]])  # fmt: skip
    text = sequences(adding, 70).plain
    assert "0.31+0.42" in text and "0.73" in text and "0.41" in text and "nan" in text
    copy = Learned(step=4, kind="sequences", classes=4, task="copy", targets=[3, 1], predictions=[3, 2],
                   inputs=[[3, 0, 1], [1, 2, 2]])  # fmt: skip
    text = sequences(copy, 70).plain
    assert "named 3 ✓" in text and "named 2 ✗ (was 1)" in text and "named right: 1 of 2" in text
    digits = Learned(step=4, kind="classes", classes=3, correct=[9, 5, 0], counts=[10, 10, 0])
    text = classes(digits, 50).plain
    assert " 90%" in text and " 50%" in text and "  -%" in text and "all: 70% of 20" in text


def aio(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


@aio
async def test_key_5_shows_the_learned_panel_and_tells_the_trainer():
    cfg = small_config(100, "data.name=moons")
    app = LabApp(preset_name="fixture", cfg=cfg)
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(LearnedPanel)
        deadline = time.monotonic() + 10
        while not panel.frame and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert not panel.display
        meta = RunMeta(cfg, "fixture", device="cpu", device_name="cpu", layers=["L1", "out"], total_steps=100)
        snaps = [Snapshot(step=s, total_steps=100, epoch=0.0, time_s=0.0, loss=0.5) for s in (0, 10, 20, 30)]
        snaps[-1].learned = fixed_regions(30)
        run = LiveRun.replay(cfg, "fixture", meta, snaps)
        app.show_run(run)
        await pilot.pause(0.2)
        assert run.control.learned is False
        await pilot.press("5")
        await pilot.pause(0.3)
        assert panel.display and app.query_one("#p-loss").display
        assert run.control.learned is True
        shown = str(panel.body.render())
        assert "decision regions at step 30" in shown and "●" in shown and "■●1" in shown  # the key under it
        await pilot.press("1")
        await pilot.pause(0.3)
        assert not panel.display and run.control.learned is False
