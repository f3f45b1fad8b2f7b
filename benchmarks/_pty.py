"""Run a command in a pseudo-terminal of a given size and watch what it writes (as a terminal would see it)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# CSI / OSC / other escape sequences: removed to find visible text in the raw stream.
_ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|\x1bP[^\x1b]*\x1b\\")


def visible(data: bytes) -> str:
    return _ANSI.sub(b"", data).decode("utf-8", "replace")


def tui_lab_command() -> list[str]:
    """The installed `tui-lab` console script if there is one, else `python -m tui_lab` from this checkout."""
    import shutil

    exe = shutil.which("tui-lab")
    return [exe] if exe else [sys.executable, "-m", "tui_lab"]


def term_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TERM": "xterm-256color", "COLORTERM": "truecolor", "LANG": "C.UTF-8"})
    env.pop("NO_COLOR", None)
    env.pop("TEXTUAL", None)  # no devtools
    pp = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + pp if pp else "")
    env.update(extra or {})
    return env


class PtyProcess:
    """A child on a fresh pty (stdin, stdout and stderr: Textual draws on stderr) of cols x rows."""

    def __init__(
        self,
        argv: list[str],
        cols: int = 120,
        rows: int = 36,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.t_start = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env or term_env(),
            cwd=cwd or str(ROOT),
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.buffer = bytearray()
        self.total = 0  # bytes read from the terminal so far
        self.log: list[tuple[float, int]] = []  # (time since start, bytes) per read

    def read(self, timeout: float) -> bytes:
        """Whatever arrives within `timeout` seconds (returns early once something came and the pipe is idle)."""
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return b""
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return b""
        self.total += len(chunk)
        self.log.append((time.perf_counter() - self.t_start, len(chunk)))
        self.buffer.extend(chunk)
        if len(self.buffer) > 4_000_000:
            del self.buffer[: len(self.buffer) - 1_000_000]
        self._answer_queries(chunk)
        return chunk

    def _answer_queries(self, chunk: bytes) -> None:
        """Answer a cursor-position query (ESC[6n) the way a terminal would, so no app waits on it."""
        if b"\x1b[6n" in chunk:
            self.write(b"\x1b[1;1R")

    def wait_for(self, pattern: str | re.Pattern, timeout: float, since: int = 0) -> float | None:
        """Seconds from process start until the visible text matches `pattern`; None on timeout."""
        deadline = time.perf_counter() + timeout
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        while time.perf_counter() < deadline:
            self.read(min(0.05, max(0.0, deadline - time.perf_counter())))
            if rx.search(visible(bytes(self.buffer[since:]))):
                return time.perf_counter() - self.t_start
            if self.proc.poll() is not None:
                self.read(0.05)
                return (time.perf_counter() - self.t_start) if rx.search(visible(bytes(self.buffer[since:]))) else None
        return None

    def drain(self, seconds: float) -> int:
        """Read for `seconds`; the bytes read."""
        end = time.perf_counter() + seconds
        n0 = self.total
        while time.perf_counter() < end:
            self.read(max(0.0, min(0.1, end - time.perf_counter())))
        return self.total - n0

    def write(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except OSError:
            pass

    def resize(self, cols: int, rows: int) -> None:
        """What a terminal does when its window changes: a new size on the pty, SIGWINCH to the app."""
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        try:
            os.killpg(self.proc.pid, signal.SIGWINCH)
        except ProcessLookupError:
            pass

    def screen(self, cols: int, rows: int, since: int = 0) -> list[str]:
        """The rows a cols x rows terminal shows after everything written since byte `since` (pyte emulates
        the terminal: the test extras install it)."""
        import pyte

        screen = pyte.Screen(cols, rows)
        pyte.ByteStream(screen).feed(bytes(self.buffer[since:]))
        return [row.rstrip() for row in screen.display]

    def close(self, quit_keys: bytes = b"q", grace: float = 3.0) -> int | None:
        """Ask the app to quit (q), then terminate, then kill; returns the exit code."""
        if self.proc.poll() is None and quit_keys:
            self.write(quit_keys)
            end = time.perf_counter() + grace
            while self.proc.poll() is None and time.perf_counter() < end:
                self.read(0.05)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(2)
        try:
            os.close(self.master)
        except OSError:
            pass
        return self.proc.returncode
