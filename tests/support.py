"""Helpers the test modules share (fixtures are in conftest.py): the repository's path, configurations to
train, and the pseudo-terminal driver the benchmarks use too (benchmarks/_pty.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from tui_lab.core.config import LabConfig, with_overrides

ROOT = Path(__file__).resolve().parent.parent

sys.path.insert(0, str(ROOT / "benchmarks"))
import calibrate  # noqa: E402 - the diagnosis's calibration suite
from _pty import PtyProcess, term_env, visible  # noqa: E402

# A 4-layer, 16-wide MLP on 256 points: a few hundred steps train in about a second on one core.
SMALL = [
    "model.depth=4",
    "model.width=16",
    "data.samples=256",
    "train.batch_size=32",
    "train.log_every=5",
    "train.eval_every=50",
    "train.device=cpu",
]


def config(*overrides: str) -> LabConfig:
    """The defaults with these `--set` overrides."""
    return with_overrides(LabConfig(), list(overrides))


def small_config(steps: int = 100, *extra: str) -> LabConfig:
    """The small configuration for `steps` steps, with more overrides."""
    return config(*SMALL, f"train.steps={steps}", *extra)


# A sweep's runs: deep enough for a gradient ratio, a handful of steps with a snapshot and an evaluation.
SWEEP = ["model.depth=8", "model.width=16", "data.samples=200", "train.steps=6", "train.batch_size=32",
         "train.log_every=2", "train.eval_every=3", "train.device=cpu"]  # fmt: skip


def sweep_config(*extra: str) -> LabConfig:
    """The configuration the sweep tests (local and Ray) run their grids over, with more overrides."""
    return config(*SWEEP, *extra)


class OwnTerminal:
    """`python -m tui_lab ARGS` in its own session, on a fresh pty that is its controlling terminal, as a login
    shell over SSH runs a command: `hang_up()` closes the terminal's other side, so the kernel sends the process
    SIGHUP and every later write to the terminal fails, as when the SSH connection drops (POSIX only)."""

    def __init__(self, args: list[str], cwd: Path | None = None):
        import fcntl
        import os
        import pty
        import subprocess
        import termios

        self.master, slave = pty.openpty()
        env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui_lab", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=str(cwd or ROOT),
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)

    def drain_until(self, done, timeout: float = 60.0) -> None:
        """Read the terminal (a terminal that is not read blocks its writer) until `done()` is true."""
        import os
        import select
        import time

        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline and self.proc.poll() is None, "it never got that far"
            if select.select([self.master], [], [], 0.1)[0]:
                os.read(self.master, 65536)

    def hang_up(self, timeout: float = 30.0) -> int:
        """Close the terminal; the exit code once the process has ended."""
        import os

        os.close(self.master)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.proc.kill()


__all__ = ["ROOT", "SMALL", "OwnTerminal", "PtyProcess", "calibrate", "config", "small_config", "term_env", "visible"]
