"""The real app in a pseudo-terminal, as a user's terminal (or a dropped SSH session) drives it."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from tui_lab.core.runlog import read_metrics, read_summary

from support import PtyProcess, term_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

LEAVE_ALTERNATE_SCREEN = b"\x1b[?1049l"  # the user's own terminal is back


def only_run_dir(app: PtyProcess, root: Path, timeout: float = 60.0) -> Path:
    """The run directory the app made under `root`, once it holds a few snapshots (the screen is drained
    meanwhile: an app whose terminal is not read stops drawing, and training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dirs = [d for d in root.glob("*") if (d / "metrics.jsonl").is_file()]
        if dirs and len(read_metrics(dirs[0])[0]) >= 3:
            return dirs[0]
        app.drain(0.1)
    pytest.fail(f"no run directory with metrics appeared under {root}")


def wait_exit(app: PtyProcess, timeout: float = 10.0) -> int | None:
    """Read the terminal until the app exits; its exit code."""
    deadline = time.monotonic() + timeout
    while app.proc.poll() is None and time.monotonic() < deadline:
        app.drain(0.05)
    app.drain(0.2)  # what it wrote on its way out
    return app.proc.poll()


@pytest.fixture
def app_running(tmp_path):
    runs = tmp_path / "runs"
    argv = [
        sys.executable,
        "-m",
        "tui_lab",
        "--preset",
        "deep-sigmoid",
        "--set",
        "train.steps=10000000",
        "--set",
        "train.log_every=5",
    ]
    app = PtyProcess(argv, env=term_env({"TUI_LAB_RUNS": str(runs)}))
    try:
        assert app.wait_for("deep-sigmoid", timeout=30) is not None, "the app never drew its screen"
        app.drain(0.5)
        app.write(b"r")
        yield app, only_run_dir(app, runs)
    finally:
        app.close(quit_keys=b"")


def test_sighup_while_training_leaves_a_complete_run_directory(app_running):
    app, run_dir = app_running
    app.proc.send_signal(signal.SIGHUP)  # what the kernel sends when the SSH connection drops
    wait_exit(app)
    summary = read_summary(run_dir)
    assert summary["status"] == "stopped" and summary["steps"] > 0
    assert summary["reason"] == "hangup"  # recorded as a hang-up, not as the user's stop
    assert "stopped by the user" not in summary["message"]
    text = (run_dir / "metrics.jsonl").read_text()
    assert text.endswith("\n")  # every snapshot line is whole
    assert len(read_metrics(run_dir)[0]) == len(text.splitlines())


def test_quit_mid_run_joins_the_worker_and_restores_the_terminal(app_running):
    app, run_dir = app_running
    start = time.monotonic()
    app.write(b"q")
    assert wait_exit(app) == 0
    elapsed = time.monotonic() - start
    assert elapsed < 3.0, f"quit took {elapsed:.1f}s"
    assert LEAVE_ALTERNATE_SCREEN in bytes(app.buffer[-2000:])
    summary = read_summary(run_dir)
    assert summary["status"] == "stopped" and summary["reason"] == "user"


def test_sigterm_while_training_stops_the_run_and_restores_the_terminal(app_running):
    app, run_dir = app_running
    app.proc.send_signal(signal.SIGTERM)
    wait_exit(app)
    summary = read_summary(run_dir)
    assert summary["status"] == "stopped" and summary["reason"] == "terminated"
    assert LEAVE_ALTERNATE_SCREEN in bytes(app.buffer[-2000:])
