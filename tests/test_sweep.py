"""`tui-lab sweep`: a small grid, serial and in worker processes; the run directories, CSV and table."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest

from tui_lab.core.config import with_overrides
from tui_lab.core.diagnosis import grad_ratio
from tui_lab.core.errors import UserError
from tui_lab.core.run import LayerStats
from tui_lab.core.sweepdir import RATIO_COLUMN, RESULT_COLUMNS
from tui_lab.sweep import plan, run_sweep, safe_name

from support import sweep_config

GRID = [("model.activation", ["sigmoid", "relu"]), ("model.init", ["default", "he_normal"])]
LABELS = {
    "activation=sigmoid,init=default",
    "activation=sigmoid,init=he_normal",
    "activation=relu,init=default",
    "activation=relu,init=he_normal",
}


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("jobs", [1, 2])
def test_two_by_two_sweep(tmp_path, capsys, jobs):
    out = tmp_path / "sweep"
    code = run_sweep("tiny", sweep_config(), GRID, jobs=jobs, out=out)
    assert code == 0

    dirs = {p.name for p in out.iterdir() if p.is_dir()}
    assert dirs == LABELS
    for name in dirs:
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert summary["steps"] == 6
        assert (out / name / "config.toml").is_file()
        assert (out / name / "metrics.jsonl").read_text().count("\n") >= 3

    with open(out / "sweep.csv", newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == ["model.activation", "model.init", *RESULT_COLUMNS]
    rows = read_csv(out / "sweep.csv")
    # Grid order, first key slowest.
    assert [(r["model.activation"], r["model.init"]) for r in rows] == [
        ("sigmoid", "default"),
        ("sigmoid", "he_normal"),
        ("relu", "default"),
        ("relu", "he_normal"),
    ]
    for r in rows:
        assert r["status"] == "completed"
        assert int(r["steps"]) == 6
        assert math.isfinite(float(r[RATIO_COLUMN]))
        assert math.isfinite(float(r["final_loss"]))
        assert 0.0 <= float(r["final_val_acc"]) <= 1.0
        assert float(r["time_s"]) > 0

    by = {(r["model.activation"], r["model.init"]): float(r[RATIO_COLUMN]) for r in rows}
    # Eight sigmoid layers at PyTorch's default init: the first layer gets orders of magnitude less gradient
    # than the last; ReLU + He keeps them within an order of magnitude.
    assert by[("sigmoid", "default")] < 1e-3
    assert by[("relu", "he_normal")] > 1e-1
    assert by[("sigmoid", "default")] < by[("relu", "he_normal")] / 100

    printed = capsys.readouterr().out
    assert "activation" in printed and "grad L1/Ln @0" in printed and "val acc" in printed
    table_lines = [line for line in printed.splitlines() if line.startswith(("sigmoid ", "relu "))]
    assert len(table_lines) == 4
    assert all("completed" in line for line in table_lines)


def test_sweep_refuses_a_non_empty_out(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "something").write_text("x")
    with pytest.raises(UserError, match="not an empty directory"):
        run_sweep("tiny", sweep_config(), GRID, out=out)


def test_a_one_value_grid_runs_the_configured_steps(tmp_path):
    out = tmp_path / "s"
    cfg = with_overrides(sweep_config(), ["train.steps=3"])  # as `--steps 3` gives it
    assert run_sweep("tiny", cfg, [("model.activation", ["relu"])], out=out) == 0
    (row,) = read_csv(out / "sweep.csv")
    assert int(row["steps"]) == 3
    assert (out / "activation=relu").is_dir()


def test_plan_labels_are_unique_and_filesystem_safe():
    runs = plan([("model.activation", ["relu", "tanh"]), ("train.device", ["cpu"]), ("optim.lr", ["0.1", "1e-3"])])
    labels = [r.label for r in runs]
    assert labels == [
        "activation=relu,lr=0.1",
        "activation=relu,lr=1e-3",
        "activation=tanh,lr=0.1",
        "activation=tanh,lr=1e-3",
    ]
    assert runs[0].overrides == ["model.activation=relu", "train.device=cpu", "optim.lr=0.1"]
    assert safe_name("device=cuda:0/x y") == "device=cuda_0_x_y"
    # Two keys with the same last part keep their full names.
    (run,) = plan([("a.x", ["1"]), ("b.x", ["2"])])
    assert run.label == "a.x=1,b.x=2"


def test_grad_ratio():
    def layers(*grads):  # hidden layers, then the output layer
        return [LayerStats(f"L{i + 1}", grad_norm=g) for i, g in enumerate(grads[:-1])] + [
            LayerStats("out", grad_norm=grads[-1])
        ]

    assert grad_ratio(layers(1e-6, 0.5, 1.0, 3.0)) == pytest.approx(1e-6)
    assert grad_ratio(layers(2.0, 9.0)) == 1.0  # one hidden layer: itself
    assert grad_ratio(layers(1.0)) is None
    assert grad_ratio(layers(float("nan"), 1.0, 1.0)) is None


def test_ctrl_c_stops_the_sweep_and_keeps_what_ran(tmp_path, capsys):
    import os
    import signal
    import threading

    cfg = with_overrides(sweep_config(), ["train.steps=10000000", "train.log_every=50"])
    out = tmp_path / "stopped"
    timer = threading.Timer(2.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        code = run_sweep("tiny", cfg, GRID, jobs=1, out=out)
    finally:
        timer.cancel()
    assert code == 0
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 1
    assert rows[0]["status"] == "stopped"
    summary = json.loads((out / "activation=sigmoid,init=default" / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert [p.name for p in out.iterdir() if p.is_dir()] == ["activation=sigmoid,init=default"]
    printed = capsys.readouterr().out
    assert "sweep stopped" in printed and "3 not run" in printed


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX terminal")
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_hang_up_stops_the_sweep_as_a_hang_up(tmp_path, jobs):
    """The terminal of a sweep goes away (a dropped SSH session): the runs under way stop as hang-ups with
    complete run directories, the rest are not started, sweep.csv holds what ran, and the sweep exits 0."""
    from tui_lab.core.runlog import read_metrics

    from support import OwnTerminal

    out = tmp_path / "sweep"
    args = ["sweep", "deep-sigmoid", "--grid", "model.activation=sigmoid,relu,tanh", "--steps", "10000000"]
    term = OwnTerminal([*args, "--set", "train.log_every=20", "--jobs", str(jobs), "--out", str(out)])

    def under_way() -> bool:
        dirs = [d for d in out.glob("*") if (d / "metrics.jsonl").is_file()] if out.is_dir() else []
        return len(dirs) == jobs and all(len(read_metrics(d)[0]) >= 2 for d in dirs)

    term.drain_until(under_way)
    assert term.hang_up() == 0
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == jobs and all(r["status"] == "stopped" for r in rows)
    for r in rows:
        summary = json.loads((Path(r["run_dir"]) / "summary.json").read_text())
        assert summary["status"] == "stopped" and summary["reason"] == "hangup", summary


def test_devices_give_each_worker_a_device_and_the_same_table(tmp_path, capsys):
    """`--devices cpu,cpu`: two workers, each bound to a device, the runs going to the next free one. The table
    and sweep.csv are the local backend's (the same numbers), and each run directory names the device it ran
    on, in config.toml and summary.json."""
    from tui_lab.core.config import load_config

    cfg = with_overrides(sweep_config(), ["train.device=auto"])  # --devices decides, not the preset
    assert run_sweep("tiny", sweep_config(), GRID, out=tmp_path / "local") == 0
    local = capsys.readouterr().out
    assert run_sweep("tiny", cfg, GRID, out=tmp_path / "dev", devices=["cpu", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "on cpu, cpu" in printed.splitlines()[0]

    def no_time(rows):
        return [{k: v for k, v in r.items() if k not in ("time_s", "run_dir")} for r in rows]

    assert no_time(read_csv(tmp_path / "dev" / "sweep.csv")) == no_time(read_csv(tmp_path / "local" / "sweep.csv"))

    def table(text):
        return [line.rsplit(None, 1)[0] for line in text.splitlines() if line.startswith(("sigmoid ", "relu "))]

    assert table(printed) == table(local) and len(table(printed)) == 4
    for label in LABELS:
        run_dir = tmp_path / "dev" / label
        assert load_config(run_dir / "config.toml").train.device == "cpu"  # the preset said auto
        assert json.loads((run_dir / "summary.json").read_text())["device"] == "cpu"


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (["--devices", "cpu,,cpu"], "tui-lab: --devices 'cpu,,cpu': empty entry; give devices separated by commas"),
        (["--devices", "gpu"], "tui-lab: --devices gpu: not a device; each entry is cpu, cuda:N or mps"),
        (["--devices", "auto"], "tui-lab: --devices auto: not a device; each entry is cpu, cuda:N or mps"),
        (["--devices", "cuda,cuda:0"], "tui-lab: --devices cuda,cuda:0: cuda:0 is listed twice"),
        (["--devices", "cpu,cpu", "--jobs", "2"], "tui-lab: --jobs and --devices: --devices runs one run per device"),
        (["--devices", "cpu", "--grid", "train.device=cpu"], "tui-lab: --devices and --grid train.device=...: "),
        (["--devices", "cpu", "--device", "cpu"], "tui-lab: --devices and --device cpu: "),
        (["--devices", "cpu", "--set", "train.device=cpu"], "tui-lab: --devices and --set train.device=cpu: "),
        (["--devices", "cpu", "--ray"], "tui-lab: --devices and --ray: --devices picks each run's device"),
        (["--ray", "deep-sigmoid"], "tui-lab: --ray deep-sigmoid: not a Ray address; give HOST:PORT"),
        (["--ray", "127.0.0.1:1"], "tui-lab: --ray 127.0.0.1:1: no Ray cluster answers there ("),
    ],
)
def test_bad_devices_and_ray_options_are_one_line(tmp_path, monkeypatch, capsys, extra, line):
    from tui_lab.cli import main

    if "--ray" in extra and "--devices" not in extra:
        pytest.importorskip("ray")  # without it, --ray says how to get it first (the test below)
    out = tmp_path / "never"
    argv = ["sweep", "deep-sigmoid", "--grid", "model.activation=relu,tanh", "--steps", "5", *extra, "--out", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (err,) = captured.err.splitlines()
    assert err.startswith(line), err
    assert not out.exists()  # refused before anything was written


def test_a_missing_gpu_in_devices_is_named(tmp_path, monkeypatch, capsys):
    """A GPU --devices names that the machine lacks: refused like --device, naming what is there."""
    from tui_lab.cli import main
    from tui_lab.core import devices

    monkeypatch.setattr(devices, "torch_build", lambda: {"version": "2.13.0+cpu", "cuda": None, "hip": None})
    argv = ["sweep", "deep-sigmoid", "--grid", "seed=1,2", "--devices", "cpu,cuda:1", "--out", str(tmp_path / "x")]
    assert main(argv) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err == (
        "tui-lab: --devices cuda:1: CUDA is not available here (PyTorch 2.13.0+cpu is built without it); available: cpu"
    )


def test_ray_missing_is_one_line(tmp_path, monkeypatch, capsys):
    """Without Ray installed, --ray says how to get it (exit 2) before anything is loaded."""
    from tui_lab.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when it is not installed
    assert main(["sweep", "deep-sigmoid", "--grid", "seed=1,2", "--ray", "--out", str(tmp_path / "x")]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err == "tui-lab: --ray needs Ray: pip install 'tui-lab[ray]'"
    assert not (tmp_path / "x").exists()
