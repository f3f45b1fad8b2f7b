"""Signals at any moment, on real processes driven as a user would (README: Usage, `run` and `sweep`): a signal
during start-up ends a headless run at once, and once its run directory exists the run is always finished
(`stopped`, never `running` nor a false `completed`); a sweep under SIGINT/SIGTERM/SIGHUP stops its workers,
keeps what finished in sweep.csv and exits; its workers die with it, whatever kills it.

Every test polls for the moment it wants with generous timeouts: the machine may be busy."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import ROOT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

SIGNALS = [(signal.SIGINT, "user"), (signal.SIGTERM, "terminated"), (signal.SIGHUP, "hangup")]
FINAL = ("completed", "diverged", "stopped", "failed")


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def start(*args: str) -> subprocess.Popen:
    """`tui-lab ARGS` in its own session (its pid is the session's and the process group's id)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tui_lab", *args],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def poll(condition, timeout: float = 60.0, every: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not reached in {timeout}s"
        time.sleep(every)


def ended_within(proc: subprocess.Popen, timeout: float) -> tuple[int, str, str, float]:
    """Wait for the process; (exit code, stdout, stderr, seconds it took)."""
    t0 = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"still running {timeout}s after the signal")
    return proc.returncode, out, err, time.monotonic() - t0


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def lines(run_dir: Path) -> int:
    try:
        return (run_dir / "metrics.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def session_processes(sid: int) -> list[int]:
    """Live (not zombie) processes of a session, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after the command name, which may hold spaces
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry.name))
    return found


# ---------------------------------------------------------------------------------------------------------
# A headless run.

LONG = ("--steps", "10000000", "--set", "train.log_every=5")


@pytest.mark.parametrize(("sig", "reason"), SIGNALS, ids=["INT", "TERM", "HUP"])
@pytest.mark.parametrize("moment", [0.3, 0.8])  # after Python's own start-up (~0.1 s): ours is what is tested
def test_a_signal_while_it_loads_ends_the_run_at_once(tmp_path, sig, reason, moment):
    """Before the run directory exists (torch loading), a signal ends the process at once and leaves nothing;
    if the directory already exists, it is finished as a stopped run."""
    run_dir = tmp_path / "run"
    proc = start("run", "deep-sigmoid", *LONG, "--out", str(run_dir))
    time.sleep(moment)
    proc.send_signal(sig)
    code, out, err, took = ended_within(proc, 20)
    assert "Traceback" not in err
    if run_dir.exists():
        assert code == 0, err
        assert summary(run_dir)["status"] == "stopped" and summary(run_dir)["reason"] == reason
    else:
        assert code in (-sig, 128 + sig, 130), err
        assert took < 2.0, f"{took:.1f}s to end"


@pytest.mark.parametrize(("sig", "reason"), SIGNALS, ids=["INT", "TERM", "HUP"])
def test_a_signal_as_the_run_directory_appears_finishes_it_as_stopped(tmp_path, sig, reason):
    """The worst moment: the directory is being made, the data and the model built. The run still ends
    `stopped` with the signal's reason and a complete directory, and the process exits 0 promptly."""
    run_dir = tmp_path / "run"
    proc = start("run", "deep-sigmoid", *LONG, "--out", str(run_dir))
    poll(run_dir.exists)
    proc.send_signal(sig)
    code, out, err, took = ended_within(proc, 20)
    assert code == 0, err
    assert "Traceback" not in err
    result = summary(run_dir)
    assert result["status"] == "stopped" and result["reason"] == reason, result
    assert (run_dir / "config.toml").is_file()
    assert took < 10.0, f"{took:.1f}s to end"


@pytest.mark.parametrize("when", ["appears", "trains"])
def test_a_double_ctrl_c_never_leaves_a_false_completed(tmp_path, when):
    """Two Ctrl-C in a row, as the run directory appears or while it trains: `stopped` (the second one cuts
    the step under way: reason interrupted, unless the first had already ended the run), exit 0, at once."""
    run_dir = tmp_path / "run"
    proc = start("run", "deep-sigmoid", "--steps", "2000", "--set", "train.log_every=5", "--out", str(run_dir))
    poll(run_dir.exists if when == "appears" else lambda: lines(run_dir) >= 3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    code, out, err, took = ended_within(proc, 20)
    assert "Traceback" not in err
    result = summary(run_dir)
    assert result["status"] == "stopped", result
    assert result["reason"] in ("user", "interrupted")
    assert result["steps"] < 2000
    assert code in (0, -signal.SIGINT, 130), err  # -2/130: the second came as the process was already leaving


def test_a_forced_run_stopped_at_once_does_not_keep_the_old_completed_summary(tmp_path):
    """`--force` over a finished run, stopped as soon as it starts: the directory says `stopped`, not the old
    run's `completed` (or it is the old run, untouched, when the signal came before the new one began)."""
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "tui_lab", "run", "deep-sigmoid", "--steps", "3", "--out", str(run_dir)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    old = (run_dir / "summary.json").stat().st_mtime_ns
    proc = start("run", "deep-sigmoid", *LONG, "--out", str(run_dir), "--force")
    poll(lambda: not (run_dir / ".write-test").exists() and _changed(run_dir, old), timeout=60, every=0.005)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    ended_within(proc, 20)
    assert summary(run_dir)["status"] == "stopped"


def _changed(run_dir: Path, mtime_ns: int) -> bool:
    """The new run has touched the directory (its config.toml or summary.json is newer than the old run's)."""
    for name in ("config.toml", "summary.json"):
        try:
            if (run_dir / name).stat().st_mtime_ns > mtime_ns:
                return True
        except OSError:
            return True  # replaced at this very moment
    return False


# ---------------------------------------------------------------------------------------------------------
# A sweep.

GRID = ("--grid", "model.activation=sigmoid,relu,tanh,gelu", "--grid", "seed=1,2")


def sweep(out: Path, jobs: int, steps: int) -> subprocess.Popen:
    return start(
        "sweep", "deep-sigmoid", *GRID, "--steps", str(steps), "--set", "train.log_every=10",
        "--jobs", str(jobs), "--out", str(out),
    )  # fmt: skip


def run_dirs(out: Path) -> list[Path]:
    return sorted(d for d in out.iterdir() if d.is_dir()) if out.is_dir() else []


def csv_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "sweep.csv", newline="") as f:
        return list(csv.DictReader(f))


def under_way(out: Path, jobs: int):
    return lambda: len([d for d in run_dirs(out) if lines(d) >= 2]) >= jobs


def check_every_run_finished_and_tabled(out: Path, reason: str) -> list[dict[str, str]]:
    """Every run directory has a final summary; sweep.csv has a row for each, with the same status; the ones
    stopped say why."""
    rows = csv_rows(out)
    by_dir = {Path(r["run_dir"]).name: r for r in rows}
    dirs = run_dirs(out)
    assert dirs, "no run started"
    for d in dirs:
        result = summary(d)
        assert result["status"] in FINAL, (d.name, result)
        assert d.name in by_dir, f"{d.name} finished but is not in sweep.csv"
        assert by_dir[d.name]["status"] == result["status"]
        if result["status"] == "stopped":
            assert result["reason"] in (reason, "interrupted"), result
    assert len(rows) == len(dirs)
    return rows


@pytest.mark.parametrize(
    ("jobs", "sig", "reason"),
    [(1, signal.SIGTERM, "terminated"), (2, signal.SIGTERM, "terminated"), (2, signal.SIGHUP, "hangup")],
    ids=["jobs1-TERM", "jobs2-TERM", "jobs2-HUP"],
)
def test_a_signal_to_the_sweeps_process_group_stops_it_cleanly(tmp_path, jobs, sig, reason):
    """As `kill -TERM -PGID` or a shell passing on a hang-up: the sweep and its workers all get it. The runs
    under way end `stopped` with the reason, every finished run is in sweep.csv, the table is printed, and
    the sweep exits 0 within seconds, leaving no process behind."""
    out = tmp_path / "sweep"
    proc = sweep(out, jobs, 10_000_000)
    poll(under_way(out, jobs))
    os.killpg(proc.pid, sig)
    code, text, err, took = ended_within(proc, 30)
    assert code == 0, err
    assert "Traceback" not in err
    assert took < 15.0, f"{took:.1f}s to end"
    rows = check_every_run_finished_and_tabled(out, reason)
    assert len(rows) == jobs and all(r["status"] == "stopped" for r in rows)
    assert "sweep stopped" in text and "not run" in text
    poll(lambda: not session_processes(proc.pid), timeout=10, every=0.1)


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_twice_after_runs_finished_keeps_them_all(tmp_path, jobs):
    """Short runs, some finished: a Ctrl-C from the terminal (the whole group), then another. Every finished
    run stays in sweep.csv; the rest are stopped (or never begun) and nothing is left `running`."""
    out = tmp_path / "sweep"
    proc = sweep(out, jobs, 300)
    poll(lambda: (out / "sweep.csv").is_file() and len(csv_rows(out)) >= 1)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    code, text, err, took = ended_within(proc, 30)
    assert code in (0, -signal.SIGINT), err  # -2: the second Ctrl-C came as the sweep was leaving
    assert "Traceback" not in err
    rows = check_every_run_finished_and_tabled(out, "user")
    assert any(r["status"] == "completed" for r in rows)
    poll(lambda: not session_processes(proc.pid), timeout=10, every=0.1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sweep_workers_die_with_their_parent_even_under_sigkill(tmp_path):
    """SIGKILL to the sweep (nothing of it can run): within seconds no worker (nor the fork server) is left,
    and the runs they had are finished as `stopped`, none left `running`."""
    out = tmp_path / "sweep"
    proc = sweep(out, 2, 10_000_000)
    poll(under_way(out, 2))
    assert len(session_processes(proc.pid)) >= 3  # the sweep, its fork server, its workers
    proc.kill()
    proc.communicate()
    poll(lambda: not session_processes(proc.pid), timeout=10, every=0.1)
    dirs = run_dirs(out)
    assert len(dirs) == 2
    for d in dirs:
        result = summary(d)
        assert result["status"] == "stopped" and result["reason"] == "terminated", (d.name, result)
    assert not (out / "sweep.csv").exists() or not csv_rows(out)  # the sweep itself could write nothing more


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_under_a_run_fails_that_run_and_the_sweep_goes_on(tmp_path):
    """A worker killed by something else (the kernel's out-of-memory killer, say): its run is `failed` with a
    message saying so, another worker takes over, and the sweep finishes the rest."""
    out = tmp_path / "sweep"
    proc = start(
        "sweep", "deep-sigmoid", "--grid", "model.activation=sigmoid,relu,tanh", "--steps", "600",
        "--set", "train.log_every=10", "--jobs", "2", "--out", str(out),
    )  # fmt: skip
    poll(under_way(out, 2))
    workers = [p for p in session_processes(proc.pid) if p != proc.pid and _is_worker(p)]
    assert workers
    os.kill(max(workers), signal.SIGKILL)  # the newest: a worker, not the fork server
    code, text, err, took = ended_within(proc, 120)
    assert code == 1, err  # a run failed
    rows = check_every_run_finished_and_tabled(out, "user")
    assert len(rows) == 3
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and "killed (signal 9)" in summary(Path(failed[0]["run_dir"]))["message"]
    assert sum(r["status"] == "completed" for r in rows) == 2


def _is_worker(pid: int) -> bool:
    """A forked worker: the fork server's child (the server's parent is the sweep)."""
    try:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        return "forkserver" in Path(f"/proc/{ppid}/cmdline").read_text()
    except (OSError, ValueError, IndexError):
        return False


# ---------------------------------------------------------------------------------------------------------
# The TUI: Ctrl-Z and `fg`, and a stop it never heard of.

LEAVE_ALTERNATE_SCREEN = b"\x1b[?1049l"


def process_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


@pytest.fixture
def tui(tmp_path):
    from support import PtyProcess, term_env

    argv = [sys.executable, "-m", "tui_lab", "--preset", "deep-sigmoid", "--set", "train.steps=10000000"]
    app = PtyProcess(argv, env=term_env({"TUI_LAB_RUNS": str(tmp_path / "runs")}))
    try:
        assert app.wait_for("deep-sigmoid", timeout=60) is not None, "the app never drew its screen"
        app.drain(1.0)
        yield app
    finally:
        app.close(quit_keys=b"")


def stopped_then_continued(app, stop) -> int:
    """Stop the app with `stop()`, wait until it is stopped, continue it; the byte offset before it repaints."""
    stop()
    poll(lambda: process_state(app.proc.pid) == "T", timeout=10, every=0.05)
    app.drain(0.3)
    since = len(app.buffer)
    app.proc.send_signal(signal.SIGCONT)
    return since


def quits(app) -> None:
    app.write(b"q")
    deadline = time.monotonic() + 20
    while app.proc.poll() is None and time.monotonic() < deadline:
        app.read(0.05)
    app.drain(0.3)
    assert app.proc.poll() == 0, "q did not end the app"
    assert LEAVE_ALTERNATE_SCREEN in bytes(app.buffer[-3000:])  # the user's terminal is back


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_z_gives_the_terminal_back_and_fg_brings_the_lab_back(tui):
    app = tui
    since = stopped_then_continued(app, lambda: app.write(b"\x1a"))  # Ctrl-Z as the terminal sends it
    assert LEAVE_ALTERNATE_SCREEN in bytes(app.buffer[since - 3000 : since])  # suspended: the terminal restored
    assert app.wait_for("deep-sigmoid", timeout=20, since=since) is not None, "not drawn again after fg"
    quits(app)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_stop_it_never_saw_then_sigcont_keeps_it_working(tui):
    """SIGSTOP (uncatchable) then SIGCONT: the app repaints on the threads it had, and q still quits."""
    app = tui
    before = threads(app.proc.pid)
    since = stopped_then_continued(app, lambda: app.proc.send_signal(signal.SIGSTOP))
    assert app.wait_for("deep-sigmoid", timeout=20, since=since) is not None, "not drawn again after SIGCONT"
    app.drain(0.5)
    assert threads(app.proc.pid) <= before  # no second input or writer thread
    quits(app)


# ---------------------------------------------------------------------------------------------------------
# The trainer: a stop that comes before the first step.


def test_a_stop_before_the_first_step_ends_the_run_stopped_with_its_reason(tmp_path):
    from tui_lab.core.run import Control
    from tui_lab.core.runlog import RunLog, read_summary
    from tui_lab.core.trainer import Trainer

    from support import small_config

    control = Control()
    control.stop("terminated")
    result = Trainer(small_config(50), control=control, sinks=[RunLog(tmp_path / "run")]).run()
    assert (result.status, result.reason, result.steps) == ("stopped", "terminated", 0)
    saved = read_summary(tmp_path / "run")
    assert saved["status"] == "stopped" and saved["reason"] == "terminated"
    assert (tmp_path / "run" / "config.toml").is_file()


def test_a_stop_while_the_data_is_made_is_obeyed_before_the_model_is_built(tmp_path, monkeypatch):
    """Making the data (or the model) can take seconds: a stop then is not left for after the first step."""
    import tui_lab.core.trainer as trainer
    from tui_lab.core.run import Control

    from support import small_config

    control = Control()
    real = trainer.build_dataset

    def data_then_a_signal(cfg):
        data = real(cfg)
        control.stop("hangup")
        return data

    def no_model(*args, **kwargs):
        raise AssertionError("the model was built after the stop")

    monkeypatch.setattr(trainer, "build_dataset", data_then_a_signal)
    monkeypatch.setattr(trainer, "build_model", no_model)
    result = trainer.Trainer(small_config(50), control=control).run()
    assert (result.status, result.reason, result.steps) == ("stopped", "hangup", 0)
