"""The sweep screen (`tui-lab show SWEEP_DIR`, issue 18): a sweep directory read back as the printed sweep table,
live while the sweep runs; Enter opens a run, Esc comes back, b pins a baseline, s sorts; the run picker lists
sweeps. Sweeps are written here with the run directory's own writer (RunLog), no training, except one small real
sweep at the end."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from tui_lab.core import sweepdir
from tui_lab.core.config import with_overrides
from tui_lab.core.run import LayerStats, RunMeta, RunResult, Snapshot
from tui_lab.core.runlog import RunLog
from tui_lab.core.sweepdir import SweepDir, write_plan
from tui_lab.ui.app import LabApp
from tui_lab.ui.main_screen import LabScreen
from tui_lab.ui.screens import RunPicker
from tui_lab.ui.sweep_screen import SweepScreen

from pilot import aio, screen_lines, status_text, wait_for
from support import small_config

KEYS = ["model.activation", "model.init"]
GRID = [("sigmoid", "default"), ("sigmoid", "he_normal"), ("relu", "default"), ("relu", "he_normal")]
STEPS = 10


def label(values: tuple[str, str]) -> str:
    return f"activation={values[0]},init={values[1]}"


def snap(step: int, first: float = 1e-6, val_acc: float | None = None) -> Snapshot:
    """A metrics line: the first hidden layer gets `first` of the last one's gradient."""
    layers = [LayerStats("L1", grad_norm=first), LayerStats("L2", grad_norm=1.0), LayerStats("out", grad_norm=2.0)]
    return Snapshot(step, STEPS, 0.0, 0.1 * step, loss=1.0 / (step + 1), val_acc=val_acc, layers=layers)


def start_run(sweep: Path, values: tuple[str, str], steps: list[int], first: float = 1e-6) -> RunLog:
    """A run directory of the sweep that has begun: config.toml, summary.json `running`, metrics lines."""
    cfg = with_overrides(small_config(STEPS), [f"{k}={v}" for k, v in zip(KEYS, values)])
    log = RunLog(sweep / label(values))
    log.on_start(RunMeta(cfg, "deep-sigmoid", "cpu", "", ["L1", "L2", "out"], STEPS))
    for step in steps:
        log(snap(step, first))
    return log


def finish(log: RunLog, status: str = "completed", steps: int = STEPS, val_acc: float = 0.5) -> None:
    last = snap(steps, val_acc=val_acc)
    log(last)
    log.on_finish(RunResult(status, steps, last=last, elapsed_s=1.25))  # type: ignore[arg-type]


def write_csv(sweep: Path, done: list[tuple[tuple[str, str], str, float]]) -> None:
    """sweep.csv as tui_lab/sweep.py writes it, for the runs that ended: (values, status, val_acc)."""
    with open(sweep / "sweep.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*KEYS, *sweepdir.RESULT_COLUMNS])
        for values, status, acc in done:
            writer.writerow([*values, "1e-06", "0.0909", repr(acc), status, STEPS, "1.250", str(sweep / label(values))])


def make_sweep(tmp_path: Path, plan: bool = True) -> tuple[Path, RunLog]:
    """Two runs ended (in sweep.csv), one running at step 5 of 10, one queued (in the plan only)."""
    sweep = tmp_path / "sw"
    sweep.mkdir()
    if plan:
        write_plan(sweep, KEYS, [(label(v), list(v), STEPS) for v in GRID])
    for values, acc in ((GRID[0], 0.25), (GRID[1], 0.5)):
        finish(start_run(sweep, values, [0, 5]), val_acc=acc)
    write_csv(sweep, [(GRID[0], "completed", 0.25), (GRID[1], "completed", 0.5)])
    running = start_run(sweep, GRID[2], [0, 5], first=1e-3)
    return sweep, running


def table_text(app: LabApp) -> str:
    return "\n".join(screen_lines(app))


class TestSweepDir:
    def test_rows_have_the_printed_tables_columns_and_each_runs_state(self, tmp_path):
        sweep, running = make_sweep(tmp_path)
        table = SweepDir(sweep)
        assert table.header() == ["activation", "init", *sweepdir.RESULT_HEADER[:4], "steps", "time"]
        rows = {r.name: r for r in table.rows()}
        assert [r.name for r in table.rows()] == [label(v) for v in GRID]  # the plan's order
        done = rows[label(GRID[1])].cells()
        assert done == ["sigmoid", "he_normal", "1e-6", "0.0909", "0.5", "completed", "10/10", "1.2s"]
        live = rows[label(GRID[2])]  # from its directory: the last metrics line, the step-0 ratio
        assert live.cells() == ["relu", "default", "1e-3", "0.1667", "–", "running", "5/10", "0.5s"]
        assert rows[label(GRID[3])].status == "queued" and not rows[label(GRID[3])].has_run
        write_plan(sweep, KEYS, [(label(v), list(v), STEPS) for v in GRID], done=True)  # the sweep ended
        table.refresh()
        assert [r.status for r in table.rows()][3] == "not run"
        running.close()

    def test_without_plan_or_csv_the_varied_keys_come_from_the_configs(self, tmp_path):
        sweep = tmp_path / "sw"
        sweep.mkdir()
        logs = [start_run(sweep, v, [0]) for v in GRID[:3]]
        table = SweepDir(sweep)
        assert table.keys == KEYS
        assert {tuple(r.values) for r in table.rows()} == set(GRID[:3])
        assert all(r.status == "running" for r in table.rows())
        for log in logs:
            log.close()

    def test_short_names_keep_a_key_whole_where_its_last_part_is_shared(self):
        assert sweepdir.short_names(["model.init", "optim.lr", "model.lr"]) == ["init", "optim.lr", "model.lr"]

    def test_damaged_subdirectories_are_skipped(self, tmp_path):
        sweep, running = make_sweep(tmp_path, plan=False)
        bad = sweep / "bad-config"
        bad.mkdir()
        (bad / "config.toml").write_text("[model\nthis is not toml")
        fifo = sweep / "fifo-metrics"
        fifo.mkdir()
        (fifo / "config.toml").write_text("")
        os.mkfifo(fifo / "metrics.jsonl")
        (sweep / "empty").mkdir()
        (sweep / "a-file").write_text("x")
        os.symlink(sweep / label(GRID[0]), sweep / "link")
        garbage = start_run(sweep, GRID[3], [0])
        garbage.close()
        (sweep / label(GRID[3]) / "summary.json").write_text("{not json")
        with open(sweep / label(GRID[3]) / "metrics.jsonl", "ab") as f:
            f.write(b"\x00\xff garbage\n[1, 2]\n")
        table = SweepDir(sweep)
        names = [r.name for r in table.rows()]
        assert sorted(names) == sorted(label(v) for v in GRID)  # the four runs; nothing of the rest
        damaged = next(r for r in table.rows() if r.name == label(GRID[3]))
        assert damaged.status == "?" and damaged.steps == 0  # what is left of it
        running.close()

    def test_not_a_sweep_is_one_line(self, tmp_path):
        from tui_lab.core.errors import UserError

        (tmp_path / "nothing").mkdir()
        with pytest.raises(UserError, match="not a sweep directory"):
            SweepDir(tmp_path / "nothing")


class TestSweepScreen:
    @aio
    async def test_the_table_follows_a_run_live_enter_opens_it_esc_comes_back(self, tmp_path):
        sweep, running = make_sweep(tmp_path)
        app = LabApp(sweep_dir=sweep)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 10)
            screen = app.screen
            await pilot.pause(0.2)
            text = table_text(app)
            assert "sweep sw: 4 configurations (1 running, 1 queued, 2 completed)" in text
            for title in ("activation", "init", "grad L1/Ln @0", "final loss", "val acc", "status", "steps", "time"):
                assert title in text
            row = next(line for line in text.splitlines() if line.strip().startswith("relu        default"))
            assert "running" in row and "5/10" in row
            for step in (6, 7, 8, 9):  # the run goes on, then ends: the row follows without a key
                running(snap(step))
            finish(running, val_acc=0.75)
            await wait_for(pilot, lambda: "10/10" in table_text(app).split("relu        default")[1][:120], 10)
            row = next(line for line in table_text(app).splitlines() if line.strip().startswith("relu        default"))
            assert "completed" in row and "0.75" in row

            await pilot.press("down", "down")  # the third row: relu, default
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), 5)
            await pilot.pause(0.3)
            assert label(GRID[2]) in status_text(app)  # the run's name on screen, its numbers
            assert app.lab.run is not None and app.lab.run.run_dir == sweep / label(GRID[2])
            assert app.lab.read_only
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 5)
            assert app.screen is not screen and app.screen.current().name == label(GRID[2])  # the cursor stayed

            await pilot.press("up", "enter")  # another run; Esc twice: the table, then that run again
            await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), 5)
            assert app.lab.run.run_dir == sweep / label(GRID[1])
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 5)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), 5)
            assert app.lab.run.run_dir == sweep / label(GRID[1])

    @aio
    async def test_b_pins_the_row_as_the_baseline_and_a_queued_row_says_why_not(self, tmp_path):
        sweep, running = make_sweep(tmp_path)
        app = LabApp(sweep_dir=sweep)
        async with app.run_test(size=(120, 36), notifications=True) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 10)
            await pilot.press("down", "b")
            await wait_for(pilot, lambda: app.lab.baseline is not None, 5)
            assert app.lab.baseline.source == str(sweep / label(GRID[1]))
            assert any(label(GRID[1]) in n.message for n in app._notifications)  # it says which
            app.clear_notifications()
            await pilot.press("end", "down", "down", "down", "enter", "b")  # the queued row: not started
            await pilot.pause(0.2)
            assert isinstance(app.screen, SweepScreen)
            assert app.lab.baseline.source == str(sweep / label(GRID[1]))
            assert any("not started yet" in n.message for n in app._notifications)
        running.close()

    @aio
    async def test_s_sorts_by_the_next_column(self, tmp_path):
        sweep, running = make_sweep(tmp_path)
        app = LabApp(sweep_dir=sweep)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 10)
            screen = app.screen
            assert [r.values[0] for r in screen.rows] == ["sigmoid", "sigmoid", "relu", "relu"]
            await pilot.press("s")  # by activation: relu first
            await pilot.pause(0.1)
            assert [r.values[0] for r in screen.rows] == ["relu", "relu", "sigmoid", "sigmoid"]
            assert "sorted by activation" in table_text(app)
            await pilot.press("s", "s", "s", "s")  # grad ratio, loss, val acc: the queued row (none) last
            await pilot.pause(0.1)
            assert "sorted by val acc" in table_text(app)
            assert [r.final_val_acc for r in screen.rows] == [0.25, 0.5, None, None]
        running.close()

    @pytest.mark.parametrize("env", [{}, {"NO_COLOR": "1", "TERM": "vt100"}])
    @aio
    async def test_80x24_scrolls_sideways_and_down(self, tmp_path, monkeypatch, env):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        sweep = tmp_path / "big"
        sweep.mkdir()
        keys = ["model.activation", "model.init", "optim.lr"]
        grid = [(a, i, lr) for a in ("sigmoid", "tanh", "relu") for i in ("default", "he_normal") for lr in "123"]
        with open(sweep / "sweep.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([*keys, *sweepdir.RESULT_COLUMNS])
            for n, values in enumerate(grid):
                name = f"activation={values[0]},init={values[1]},lr={values[2]}"
                (sweep / name).mkdir()
                writer.writerow([*values, "0.5", "1.0", "0.5", "completed", 10, f"{n}.000", str(sweep / name)])
        app = LabApp(sweep_dir=sweep)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 10)
            await wait_for(pilot, lambda: "sort" in screen_lines(app)[-1], 5)  # the footer names the keys
            lines = screen_lines(app)
            assert len(lines) == 24 and all(len(line) == 80 for line in lines)
            assert "18 configurations" in lines[0] and "activation" in lines[1]
            assert "open" in lines[-1] and "pin" in lines[-1] and "esc back" in lines[-1]
            assert "time" not in lines[1] and "17.0s" not in table_text(app)  # to the right, and below
            for _ in range(17):
                await pilot.press("down")
            await pilot.press("right")
            await pilot.pause(0.2)
            lines = screen_lines(app)
            assert "time" in lines[1] and "activation" in lines[1] and "lr" in lines[1]  # the keys stay
            last = next(line for line in lines if "17.0s" in line)  # the last row's time, scrolled to
            assert last.split()[:3] == ["relu", "he_normal", "3"]
            await pilot.press("left")
            await pilot.pause(0.1)
            assert "time" not in screen_lines(app)[1]

    @aio
    async def test_portuguese_and_hostile_values(self, tmp_path):
        """--lang pt: the run states in Portuguese; a value of the csv is shown as text (no markup, no escapes)."""
        sweep, running = make_sweep(tmp_path, plan=False)
        running.close()
        rows = list(csv.reader((sweep / "sweep.csv").read_text().splitlines()))
        rows[1][0] = "[/red]\x1b]0;pwned\x07sig"
        with open(sweep / "sweep.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)
        app = LabApp(sweep_dir=sweep, lang="pt")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 10)
            await pilot.pause(0.2)
            text = table_text(app)
            assert "concluído" in text and "completed" not in text
            assert "[/red]sig" in text and "pwned" not in text


class TestPickerAndCommandLine:
    @aio
    async def test_the_run_picker_lists_a_sweep_and_opens_its_table(self, tmp_path, runs_dir):
        runs_dir.mkdir(parents=True, exist_ok=True)
        sweep, running = make_sweep(runs_dir)
        running.close()
        app = LabApp(preset_name="tiny", cfg=small_config(40))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("o")
            await wait_for(pilot, lambda: isinstance(app.screen, RunPicker), 5)
            await pilot.pause(0.1)
            assert "sweep: sw (4 runs)" in table_text(app)
            await pilot.press(*"sweep", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 5)
            await pilot.press("enter")  # opens the first run, read-only; Esc, Esc: the session as it was
            await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), 5)
            assert app.lab.read_only
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 5)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, LabScreen), 5)
            assert app.lab.run is None and not app.lab.read_only and app.lab.preset == "tiny"
            await pilot.press("escape")  # the sweep is closed: Esc stays here
            await pilot.pause(0.1)
            assert isinstance(app.screen, LabScreen)

    def test_show_opens_a_sweep_directory(self, tmp_path, monkeypatch):
        import tui_lab.ui.app as app_module
        from tui_lab.cli import main

        sweep, running = make_sweep(tmp_path)
        running.close()
        seen = {}
        monkeypatch.setattr(app_module, "run_app", lambda **kwargs: seen.update(kwargs) or 0)
        assert main(["show", str(sweep)]) == 0
        assert seen["sweep_dir"] == sweep and "show_dir" not in seen
        assert main(["show", str(sweep / label(GRID[0]))]) == 0  # a run of it: the run
        assert seen["show_dir"] == sweep / label(GRID[0])

    def test_a_directory_that_is_neither_is_refused_in_one_line(self, tmp_path, capsys):
        from tui_lab.cli import main

        (tmp_path / "empty").mkdir()
        assert main(["show", str(tmp_path / "empty")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not a run directory" in err[0]


@pytest.mark.slow
@aio
async def test_a_real_sweep_reads_as_its_printed_table(tmp_path, capsys):
    """Two real runs through tui_lab.sweep: the screen shows the numbers of the table it printed."""
    from tui_lab.sweep import parse_grid, run_sweep

    out = tmp_path / "real"
    assert run_sweep("tiny", small_config(20), parse_grid(["model.activation=sigmoid,relu"]), out=out) == 0
    printed = capsys.readouterr().out
    rows = SweepDir(out).rows()
    assert [r.values for r in rows] == [["sigmoid"], ["relu"]]
    for row in rows:
        cells = row.cells()
        line = next(line for line in printed.splitlines() if line.startswith(row.values[0] + " "))
        assert line.split() == [cells[0], *cells[1:5], cells[6]]  # the printed columns; steps is the screen's
        assert cells[5] == "20/20"
    app = LabApp(sweep_dir=out)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 10)
        await pilot.pause(0.2)
        assert "2 configurations (2 completed)" in table_text(app)
