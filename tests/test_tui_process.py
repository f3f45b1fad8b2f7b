"""The real app in a pseudo-terminal, as a user's terminal (or a dropped SSH session) drives it."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from tui_lab.core.runlog import read_metrics, read_summary

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")


class PtyApp:
    """`python -m tui_lab ARGS` on a pty of the given size; output is drained continuously."""

    def __init__(self, args: list[str], env: dict[str, str], cols: int = 120, rows: int = 36):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {**os.environ, **env, "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
        full_env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui_lab", *args], stdin=slave, stdout=slave, stderr=slave,
            env=full_env, start_new_session=True, close_fds=True,
        )  # fmt: skip
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def wait_for_output(self, text: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            time.sleep(0.05)
        pytest.fail(f"{text!r} never appeared on screen")

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        try:
            os.close(self.master)
        except OSError:
            pass


def only_run_dir(root: Path, timeout: float = 60.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dirs = [d for d in root.glob("*") if (d / "metrics.jsonl").is_file()]
        if dirs and len(read_metrics(dirs[0])[0]) >= 3:
            return dirs[0]
        time.sleep(0.1)
    pytest.fail(f"no run directory with metrics appeared under {root}")


@pytest.fixture
def app_running(tmp_path):
    runs = tmp_path / "runs"
    app = PtyApp(["--preset", "deep-sigmoid", "--set", "train.steps=10000000", "--set", "train.log_every=5"],
                 env={"TUI_LAB_RUNS": str(runs)})  # fmt: skip
    try:
        app.wait_for_output(b"deep-sigmoid")
        time.sleep(0.5)
        app.send("r")
        yield app, only_run_dir(runs)
    finally:
        app.close()


def test_sighup_while_training_leaves_a_complete_run_directory(app_running):
    app, run_dir = app_running
    app.proc.send_signal(signal.SIGHUP)  # what the kernel sends when the SSH connection drops
    app.proc.wait(timeout=10)
    summary = read_summary(run_dir)
    assert summary["status"] == "stopped" and summary["steps"] > 0
    text = (run_dir / "metrics.jsonl").read_text()
    assert text.endswith("\n")  # every snapshot line is whole
    assert len(read_metrics(run_dir)[0]) == len(text.splitlines())


def test_quit_mid_run_joins_the_worker_and_restores_the_terminal(app_running):
    app, run_dir = app_running
    start = time.monotonic()
    app.send("q")
    assert app.proc.wait(timeout=10) == 0
    elapsed = time.monotonic() - start
    assert elapsed < 3.0, f"quit took {elapsed:.1f}s"
    time.sleep(0.2)
    tail = bytes(app.output[-2000:])
    assert b"\x1b[?1049l" in tail  # left the alternate screen: the user's terminal is back
    assert read_summary(run_dir)["status"] == "stopped"


def test_sigterm_while_training_stops_the_run_and_restores_the_terminal(app_running):
    app, run_dir = app_running
    app.proc.send_signal(signal.SIGTERM)
    app.proc.wait(timeout=10)
    assert read_summary(run_dir)["status"] == "stopped"
    time.sleep(0.2)
    assert b"\x1b[?1049l" in bytes(app.output[-2000:])
