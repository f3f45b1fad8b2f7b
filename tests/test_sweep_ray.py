"""`tui-lab sweep --ray`: the sweep's runs as tasks of a real local Ray instance, started once for the module
(`ray.init(num_cpus=2)`: its start-up is the slow part). The same table and sweep.csv as the local backend, a run
that fails on its worker or whose worker is killed while the others complete, and Ctrl-C on a driver process
that joined the instance by its address."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tui_lab.core.runlog import LOCK_NAME
from tui_lab.core.sweepdir import RESULT_COLUMNS
from tui_lab.sweep import run_sweep

from support import ROOT, sweep_config

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; POSIX signals")

WORKER_MEMORY = "1G"  # what the workers' machine says it has free (core/budget.py): a wide net does not fit


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance for the whole module; its address, for the drivers started as subprocesses."""
    sigterm = signal.getsignal(signal.SIGTERM)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        object_store_memory=100 * 2**20,
        runtime_env={"env_vars": {"TUI_LAB_MEMORY_LIMIT": WORKER_MEMORY}},
    )
    signal.signal(signal.SIGTERM, sigterm)  # ray.init's own handler would outlive the module
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def table(printed: str, first_words: tuple[str, ...]) -> list[list[str]]:
    """The printed table's rows (by their first cell), without the time column (it is a measurement)."""
    return sorted(line.split()[:-1] for line in printed.splitlines() if line.startswith(first_words))


GRID = [("model.activation", ["sigmoid", "relu"]), ("model.init", ["he_normal"])]


def test_a_ray_sweep_gives_the_local_backends_table_and_csv(cluster, tmp_path, capsys):
    """A 2x1 grid locally and through Ray: the same sweep.csv columns and numbers, the same table rows, run
    directories with the same files, and where each Ray run trained."""
    assert run_sweep("tiny", sweep_config(), GRID, out=tmp_path / "local") == 0
    local_printed = capsys.readouterr().out
    assert run_sweep("tiny", sweep_config("train.device=auto"), GRID, out=tmp_path / "ray", ray=cluster) == 0
    ray_printed = capsys.readouterr().out
    assert "the Ray cluster at" in ray_printed and "2 CPU" in ray_printed

    local_header, local_rows = read_csv(tmp_path / "local" / "sweep.csv")
    ray_header, ray_rows = read_csv(tmp_path / "ray" / "sweep.csv")
    assert ray_header == local_header == ["model.activation", "model.init", *RESULT_COLUMNS]
    same = ["model.activation", "model.init", "grad_ratio_first_last", "final_loss", "final_val_acc", "status", "steps"]
    assert [[r[k] for k in same] for r in ray_rows] == [[r[k] for k in same] for r in local_rows]
    assert [r["status"] for r in ray_rows] == ["completed", "completed"]
    assert table(ray_printed, ("sigmoid ", "relu ")) == table(local_printed, ("sigmoid ", "relu "))
    assert len(table(ray_printed, ("sigmoid ", "relu "))) == 2

    for row in ray_rows:
        run_dir = Path(row["run_dir"])
        assert run_dir.parent == tmp_path / "ray"
        local_dir = tmp_path / "local" / run_dir.name
        files = sorted(p.name for p in run_dir.iterdir())
        assert files == sorted(p.name for p in local_dir.iterdir() if p.name != LOCK_NAME)  # the lock: a writer's
        assert (run_dir / "metrics.jsonl").read_text().count("\n") == (local_dir / "metrics.jsonl").read_text().count(
            "\n"
        )
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["device"] == "cpu"
        assert 'device = "cpu"' in (run_dir / "config.toml").read_text()  # auto, placed: the cluster has no GPU
        assert summary["ray"]["node"]


def test_a_run_that_fails_on_its_worker_is_failed_and_the_others_complete(cluster, tmp_path, capsys):
    """The workers' machine has less memory free than a 4096-wide net needs: that run is `failed` on its worker
    with the budget's line (a run directory says so), the small one completes, and the sweep exits 1."""
    grid = [("model.width", ["16", "4096"])]
    assert run_sweep("tiny", sweep_config(), grid, out=tmp_path / "s", ray=cluster) == 1
    _header, rows = read_csv(tmp_path / "s" / "sweep.csv")
    by_width = {r["model.width"]: r for r in rows}
    assert by_width["16"]["status"] == "completed"
    assert by_width["4096"]["status"] == "failed"
    summary = json.loads((Path(by_width["4096"]["run_dir"]) / "summary.json").read_text())
    assert summary["status"] == "failed" and "free" in summary["message"], summary
    assert (Path(by_width["4096"]["run_dir"]) / "config.toml").is_file()
    printed = capsys.readouterr().out
    assert "width=4096: failed" in printed


def ray_task_processes(prefix: str) -> list[int]:
    """Ray workers running a task whose name starts with `prefix` (Ray titles the process `ray::NAME`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::" + prefix.encode()):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_killed_worker_fails_its_run_and_the_sweep_goes_on(cluster, tmp_path, capsys):
    """SIGKILL to the worker under one run (the out-of-memory killer, say): that run is `failed` with a message
    saying its worker died, and the other completes."""
    cfg = sweep_config("train.log_every=50")
    grid = [("train.steps", ["30", "100000000"])]
    killed: list[int] = []

    def kill_the_long_run() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            pids = ray_task_processes("tui-lab:steps=100000000")
            if pids:
                time.sleep(0.5)  # under way
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_long_run, daemon=True)
    killer.start()
    code = run_sweep("tiny", cfg, grid, out=tmp_path / "s", ray=cluster)
    killer.join(5)
    assert killed
    assert code == 1
    _header, rows = read_csv(tmp_path / "s" / "sweep.csv")
    by_steps = {r["train.steps"]: r for r in rows}
    assert by_steps["30"]["status"] == "completed"
    assert by_steps["100000000"]["status"] == "failed"
    summary = json.loads((Path(by_steps["100000000"]["run_dir"]) / "summary.json").read_text())
    assert summary["status"] == "failed" and "its Ray worker died" in summary["message"], summary


def test_ctrl_c_stops_a_ray_sweep_and_keeps_what_finished(cluster, tmp_path):
    """`tui-lab sweep --ray ADDRESS` in its own process, Ctrl-C once two long runs are under way and one waits:
    it exits 0 within seconds, the finished runs are in sweep.csv beside the stopped ones (their directories
    written, `stopped` by the user), the waiting one never starts, and the table says so."""
    out = tmp_path / "sweep"
    earlier = set(training(""))  # left by workers killed before (their temporary directories stay)
    grid = ["--grid", "train.steps=30,100000000", "--grid", "model.activation=sigmoid,relu,tanh"]
    args = ["sweep", "deep-sigmoid", *grid, "--set", "train.log_every=50", "--ray", cluster, "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_lab", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while len(set(training("steps=100000000,")) - earlier) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the long runs never got going"
            time.sleep(0.1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        text, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert took < 10, f"{took:.1f}s to stop"
    _header, rows = read_csv(out / "sweep.csv")
    statuses = sorted((r["train.steps"], r["status"]) for r in rows)
    assert statuses == [("100000000", "stopped")] * 2 + [("30", "completed")] * 3, statuses
    for r in rows:
        summary = json.loads((Path(r["run_dir"]) / "summary.json").read_text())
        assert summary["status"] == r["status"]
        if r["status"] == "stopped":
            assert summary["reason"] == "user" and summary["steps"] > 0, summary
    assert len([d for d in out.iterdir() if d.is_dir()]) == 5  # the one that waited has no directory
    assert "sweep stopped" in text and "1 not run" in text
    assert not ray_task_processes("tui-lab:steps=100000000") or _gone_soon()


def training(prefix: str) -> list[Path]:
    """The runs under way on the workers (the same machine here): their temporary run directories with two
    snapshots or more."""
    found = []
    for metrics in Path(tempfile.gettempdir()).glob(f"tui-lab-ray-*/{prefix}*/metrics.jsonl"):
        try:
            if metrics.read_bytes().count(b"\n") >= 2:
                found.append(metrics.parent)
        except OSError:
            pass
    return found


def _gone_soon() -> bool:
    deadline = time.monotonic() + 10
    while ray_task_processes("tui-lab:steps=100000000"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
