"""Fuzz the real `tui-lab` in a pseudo-terminal: random keys, escape sequences, bytes and resizes while it trains.

The app runs in a pty (stdin, stdout and stderr), as in a user's terminal, with its runs in a temporary directory
and a small, fast configuration. A seeded random stream of events goes to it in bursts: the app's keys, letters,
digits and Ctrl keys (not the ones that quit or open the command palette on purpose), CSI sequences with random and
huge parameters, SS3, OSC and DCS strings, SGR and X10 mouse reports, focus in/out, invalid UTF-8, bracketed pastes
holding markup, escape sequences and long text, key storms in one read (r x n, double Enter), and window resizes
(TIOCSWINSZ + SIGWINCH, 20x5 .. 250x80). A terminal emulator (pyte) reads what the app draws.

What it watches:
* crashes: the process exits (a traceback on screen, a non-zero status, or an exit nobody asked for);
* hangs: every few seconds a probe (Esc x3 to close whatever is open, then `h`) must bring up the help screen
  within `--hang-s` seconds, and a write to the terminal must not stay blocked that long;
* threads (/proc/PID/task) and RSS (VmRSS), sampled every second; after a warm-up run is stopped the idle level is
  taken, and at the end (run stopped) threads must be back to it; RSS must not grow by more than `--leak-mb` from
  the second quarter of the run to the last (a trend, not the step a bigger run on screen makes);
* the quit: `q` must end it (else Ctrl+Q, else SIGTERM: recorded), exit status 0, and the terminal restored: the
  alternate screen left, the cursor shown, mouse, focus and paste modes off (read from every mode switch the app
  wrote), and the pty's termios settings back to what they were.

After a crash or a hang it records the seed, the exit status, the error line and traceback, the screen's text and
the last 50 events; for a hang also every thread's Python stack (faulthandler, on SIGUSR2), and whether the app
answered late (slow) or not within 45 s more (stuck: killed). Then it starts a fresh app and goes on. It prints
and saves a JSON summary (benchmarks/results/fuzz_tui.json, and --json OUT). The stream is seeded; the timing
is not, so a seed replays the same events, not always the same failure.

    python benchmarks/fuzz_tui.py                       # 10 minutes
    python benchmarks/fuzz_tui.py --seconds 60 --seed 7 --size 80x24 --json /tmp/fuzz.json
"""

from __future__ import annotations

import argparse
import collections
import fcntl
import json
import os
import pty
import random
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import loadavg, median, percentile, write_results
from _pty import PtyProcess, term_env, tui_lab_command, visible

ESC = b"\x1b"

# A small, fast configuration: a run takes a few seconds, so runs start, finish and restart all the time.
APP_ARGS = [
    "--preset",
    "deep-sigmoid",
    "--set",
    "model.depth=6",
    "--set",
    "model.width=16",
    "--set",
    "data.samples=256",
    "--set",
    "train.batch_size=32",
    "--set",
    "train.steps=4000",
    "--set",
    "train.log_every=5",
    "--set",
    "train.eval_every=100",
    "--set",
    "train.device=cpu",
]

# The app's keys (tui_lab/ui/commands.py) and the form's and pickers' keys, as a terminal sends them. Not here on
# purpose: q and Ctrl+Q (quit), Ctrl+P (the command palette can run "quit"), Ctrl+C, Ctrl+Z and Ctrl+\ (an
# interrupt, a suspend, a quit signal where the terminal makes signals of them).
APP_KEYS: dict[str, bytes] = {
    "r": b"r",
    "x": b"x",
    "n": b"n",
    "p": b"p",
    "P": b"P",
    "s": b"s",
    "c": b"c",
    "b": b"b",
    "B": b"B",
    "o": b"o",
    "l": b"l",
    "f": b"f",
    "h": b"h",
    "v": b"v",
    "g": b"g",
    "e": b"e",
    "?": b"?",
    "space": b" ",
    ".": b".",
    ",": b",",
    "+": b"+",
    "=": b"=",
    "-": b"-",
    "[": b"[",
    "]": b"]",
    "1": b"1",
    "2": b"2",
    "3": b"3",
    "4": b"4",
    "5": b"5",
    "home": b"\x1b[H",
    "end": b"\x1b[F",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "right": b"\x1b[C",
    "left": b"\x1b[D",
    "pgup": b"\x1b[5~",
    "pgdn": b"\x1b[6~",
    "escape": ESC,
    "enter": b"\r",
    "tab": b"\t",
    "shift+tab": b"\x1b[Z",
    "backspace": b"\x7f",
    "f1": b"\x1bOP",
    "ctrl+r": b"\x12",
    "ctrl+n": b"\x0e",
    "ctrl+t": b"\x14",
    "ctrl+x": b"\x18",
}
# Keys that start, stop and restart runs come more often, so the app trains most of the time.
KEY_WEIGHTS = {"r": 6, "x": 2, "n": 3, "space": 2, "enter": 3, "escape": 3}
NO_CTRL = {0x03, 0x10, 0x11, 0x1A, 0x1B, 0x1C}  # Ctrl+C, Ctrl+P, Ctrl+Q, Ctrl+Z, Esc, Ctrl+\
LETTERS = "abcdefghijklmnoprstuvwxyzABCDEFGHIJKLMNOPRSTUVWXYZ"  # no q: it quits
TEXT = LETTERS + "0123456789 .,;:-_/\\=+*#@!%&()<>{}'\"|~^`"
CSI_FINALS = "ABCDEFGHIJKLMPSTXZ@`abcdfghilmnprstuxyz~"  # no q: a sequence Textual gives up on is replayed as keys
MARKUP = [
    "[/]",
    "[@click=app.quit]click me[/]",
    "[@click=app.exit(1)]x",
    "[b]bold",
    "[link=file:///etc/passwd]l[/link]",
    "[red on blue]",
    "[/b][/i][/]",
    "[[/]]",
    "[on #ff0000]x[/]",
    "\\[escaped]",
    "[reverse",
    "[@click=screen.dismiss]",
    "[dim][/dim][/dim]",
]
SIZES = (20, 250, 5, 80)  # cols min, max, rows min, max

# DEC private modes the app turns on that must be off again after it quits; the cursor (25) must be shown.
MODES_OFF = {1049: "alternate screen", 1000: "mouse", 1002: "mouse drag", 1003: "mouse motion", 1006: "SGR mouse"}
MODES_OFF |= {1015: "urxvt mouse", 1004: "focus events", 2004: "bracketed paste"}
STOP_S = 10.0  # after the last stop, how long the threads may take to get back to the idle count
QUIT_S = 5.0  # q must end the app within this (then Ctrl+Q gets as long)
CRASH_GRACE_S = 45.0  # after a failed probe, how long a frozen app may take to end by itself (a crash) first
_MODE_RX = re.compile(rb"\x1b\[\?([\d;]+)([hl])")
HELP_MARK = re.compile(r"Keys · .*scroll")  # the help screen's title (h): the probe's visible effect


@dataclass
class Event:
    kind: str
    data: bytes = b""
    size: tuple[int, int] | None = None  # a resize: (cols, rows)

    def describe(self) -> str:
        return f"resize {self.size[0]}x{self.size[1]}" if self.size else repr(self.data)


class Events:
    """The seeded random stream of events (the same seed gives the same stream)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.recent_rows: collections.deque[int] = collections.deque(maxlen=10)  # of the sizes sent
        keys = list(APP_KEYS)
        self.keys = keys
        self.key_weights = [KEY_WEIGHTS.get(k, 1) for k in keys]
        self.kinds = {
            "key": 30,
            "letter": 6,
            "digit": 3,
            "ctrl": 4,
            "storm": 3,
            "csi": 6,
            "csi_huge": 3,
            "ss3": 2,
            "osc": 2,
            "dcs": 1,
            "mouse_sgr": 5,
            "mouse_x10": 2,
            "focus": 1,
            "invalid_utf8": 3,
            "paste": 3,
            "resize": 2,
        }

    def text(self, n: int, alphabet: str = TEXT) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def next(self, cols: int, rows: int) -> Event:
        rng = self.rng
        kind = rng.choices(list(self.kinds), weights=list(self.kinds.values()))[0]
        return Event(kind, *getattr(self, "_" + kind)(cols, rows))

    def _key(self, cols, rows):
        return (APP_KEYS[self.rng.choices(self.keys, weights=self.key_weights)[0]],)

    def _letter(self, cols, rows):
        return (self.rng.choice(LETTERS).encode(),)

    def _digit(self, cols, rows):
        return (self.rng.choice("0123456789").encode(),)

    def _ctrl(self, cols, rows):
        return (bytes([self.rng.choice([c for c in range(1, 32) if c not in NO_CTRL])]),)

    def _storm(self, cols, rows):
        """Keys arriving in one read: a fast double tap, key repeat, a laggy link."""
        rng = self.rng
        pick = rng.randrange(5)
        if pick == 0:
            return (bytes(rng.choice(b"rxn") for _ in range(rng.randint(3, 30))),)
        if pick == 1:
            return (b"\r" * rng.randint(2, 6),)
        if pick == 2:
            return (rng.choice([b"l", b"o", b"?", b"h", b"e"]) + b"\r" * rng.randint(1, 4),)
        if pick == 3:
            return (rng.choice([b"\x1b[B", b"\x1b[A", b"\t", b"]", b"."]) * rng.randint(5, 60),)
        return (b"".join(APP_KEYS[k] for k in rng.choices(self.keys, k=rng.randint(3, 20)) if k != "escape"),)

    def _params(self, huge: bool) -> str:
        rng = self.rng
        parts = []
        for _ in range(rng.randint(0, 5)):
            if huge and rng.random() < 0.6:
                parts.append(str(rng.randint(10**9, 10 ** rng.randint(10, 40))))
            else:
                parts.append(str(rng.randint(0, 300)) if rng.random() < 0.9 else "")
        return rng.choice(";;;:").join(parts)

    def _csi(self, cols, rows, huge=False):
        rng = self.rng
        prefix = rng.choice(["", "", "", "?", "<", ">", "="])
        return (f"\x1b[{prefix}{self._params(huge)}{rng.choice(CSI_FINALS)}".encode(),)

    def _csi_huge(self, cols, rows):
        if self.rng.random() < 0.3:  # the one the issue names
            return (b"\x1b[9999999999999999999" + self.rng.choice(b"ABCD~").to_bytes(1, "big"),)
        return self._csi(cols, rows, huge=True)

    def _ss3(self, cols, rows):
        return (b"\x1bO" + self.rng.choice(b"ABCDHFPQRSjklmnoptuvwxy").to_bytes(1, "big"),)

    def _osc(self, cols, rows):
        rng = self.rng
        end = rng.choice([b"\x07", b"\x1b\\"])
        body = f"{rng.choice([0, 2, 4, 8, 10, 11, 52, 777])};{self.text(rng.randint(0, 40))}"
        return (b"\x1b]" + body.encode() + end,)

    def _dcs(self, cols, rows):
        return (b"\x1bP" + self.text(self.rng.randint(0, 40)).encode() + b"\x1b\\",)

    def _mouse_sgr(self, cols, rows):
        rng = self.rng
        button = rng.choice([0, 1, 2, 0, 32, 35, 64, 65, 66, 67, 4, 8, 16])
        # A click on the footer's `q quit` is a quit on purpose: clicks stay above the bottom row of every
        # recent size (an app behind on its input still has an older size).
        top = min(self.recent_rows) if button in (0, 1, 2, 4, 8, 16) else rows
        x, y = rng.randint(1, max(1, cols)), rng.randint(1, max(1, top - 1))
        if rng.random() < 0.1:  # coordinates no terminal sends
            x, y = rng.choice([0, -1, 99999, 10**12]), rng.choice([0, -5, 99999])
        return (f"\x1b[<{button};{x};{y}{rng.choice('Mm')}".encode(),)

    def _mouse_x10(self, cols, rows):
        rng = self.rng

        def coord(limit: int) -> int:
            # X10 adds 32 to each value (one byte: 255 at most, bytes past 127 are not UTF-8); never a q (113).
            v = rng.randint(1, max(1, min(limit, 223)))
            return v + 1 if v + 32 == ord("q") else v

        button = rng.choice([0, 1, 2, 3, 64, 65])
        return (b"\x1b[M" + bytes([32 + button, 32 + coord(cols), 32 + coord(min(self.recent_rows) - 1)]),)

    def _focus(self, cols, rows):
        return (self.rng.choice([b"\x1b[I", b"\x1b[O"]),)

    def _invalid_utf8(self, cols, rows):
        rng = self.rng
        bad = rng.choice(
            [b"\xb8", b"\xff", b"\xfe", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80"]
        )
        return (bad + (bytes([rng.choice(b"rx.1")]) if rng.random() < 0.5 else b""),)

    def _paste(self, cols, rows):
        rng = self.rng
        parts = []
        for _ in range(rng.randint(1, 6)):
            pick = rng.randrange(6)
            if pick == 0:
                parts.append(rng.choice(MARKUP))
            elif pick == 1:  # escape sequences (no q in them: Textual replays a paste's escapes as keys, see README)
                parts.append(rng.choice(["\x1b[2J", "\x1b]0;pwned\x07", "\x1b[31m", "\x1b[?1049l", "\x1bc"]))
            elif pick == 2:
                parts.append(self.text(rng.choice([10, 200, 3000, 20000]), TEXT + "q\n\t"))
            elif pick == 3:
                parts.append(rng.choice(["1e-3", "-5", "nan", "inf", "1e308", "0", "999999999999", "relu"]))
            elif pick == 4:
                parts.append("é中文😀\u200b\u202e\r\n")
            else:
                parts.append("\x00\x07\x08\x7f")
        text = "".join(parts)
        if "\x1b" in text:
            text = text.replace("q", "")
        return (b"\x1b[200~" + text.encode() + b"\x1b[201~",)

    def _resize(self, cols, rows):
        rng = self.rng
        size = (rng.randint(SIZES[0], SIZES[1]), rng.randint(SIZES[2], SIZES[3]))
        self.recent_rows.append(size[1])
        return (b"", size)


class FuzzPty(PtyProcess):
    """PtyProcess that also keeps the pty's termios settings from before the app started and the last state of
    every DEC private mode the app switched, finds text in what the app wrote since a given byte (cheaply: the
    fuzzer shares two cores with the app), and shows the screen through a terminal emulator (pyte) on demand."""

    KEEP = 2_000_000  # bytes of output kept (positions stay absolute: `base` is the position of buffer[0])

    def __init__(self, argv: list[str], cols: int, rows: int, env: dict[str, str], cwd: str):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct_winsize(cols, rows))
        self.termios_before = termios.tcgetattr(slave)
        self.t_start = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True, close_fds=True
        )
        os.close(slave)
        # Writes never block the fuzzer: an app that stops reading shows up as a hang, not as a stuck harness.
        fcntl.fcntl(self.master, fcntl.F_SETFL, fcntl.fcntl(self.master, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.buffer = bytearray()
        self.base = 0
        self.total = 0
        self.log = []
        self.cols, self.rows = cols, rows
        self.modes: dict[int, bool] = {}
        self._carry = b""
        self._scanned: dict[str, int] = {}  # pattern -> position searched up to

    def read(self, timeout: float) -> bytes:
        try:
            r, _, _ = select.select([self.master], [], [], timeout)
            if not r:
                return b""
            chunk = os.read(self.master, 65536)
        except (OSError, ValueError):  # nothing after all, the child closed the terminal, or we did
            return b""
        self.total += len(chunk)
        self.buffer.extend(chunk)
        if len(self.buffer) > 2 * self.KEEP:
            cut = len(self.buffer) - self.KEEP
            del self.buffer[:cut]
            self.base += cut
        if b"\x1b[6n" in chunk:  # a cursor-position query: answer as a terminal would
            self.write(b"\x1b[1;1R")
        data = self._carry + chunk
        for m in _MODE_RX.finditer(data):
            for p in m.group(1).split(b";"):
                if p.isdigit():
                    self.modes[int(p)] = m.group(2) == b"h"
        self._carry = data[-24:]
        return chunk

    def end(self) -> int:
        """The position after the last byte read."""
        return self.base + len(self.buffer)

    def since(self, pos: int) -> bytes:
        return bytes(self.buffer[max(0, pos - self.base) :])

    def seen(self, rx: re.Pattern, since: int) -> bool:
        """Whether the visible text the app wrote after position `since` matches `rx` (each byte looked at
        about once: the search resumes where the last one stopped, with an overlap for a split match)."""
        start = max(since, self._scanned.get(rx.pattern, 0) - 400)
        self._scanned[rx.pattern] = self.end()
        return bool(rx.search(visible(self.since(start))))

    def send(self, data: bytes, timeout: float) -> bool:
        """Write all of `data`, reading the app's output meanwhile; False if it stays unread for `timeout` s."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                self.read(0.01)
            except OSError:  # the app is gone
                return False
        return True

    def write(self, data: bytes) -> None:  # PtyProcess answers cursor queries with it
        self.send(data, 1.0)

    def resize(self, cols: int, rows: int) -> None:
        self.read(0)
        self.cols, self.rows = cols, rows
        super().resize(cols, rows)

    def text(self) -> str:
        """The screen as a terminal of the current size shows it after the last 400 KB of output (enough for a
        full repaint)."""
        import pyte

        screen = pyte.Screen(self.cols, self.rows)
        pyte.ByteStream(screen).feed(bytes(self.buffer[-400_000:]))
        return "\n".join(row.rstrip() for row in screen.display)

    def termios_now(self) -> list | None:
        try:
            return termios.tcgetattr(self.master)  # on Linux the master reports the slave's settings
        except termios.error:
            return None


def struct_winsize(cols: int, rows: int) -> bytes:
    import struct

    return struct.pack("HHHH", rows, cols, 0, 0)


_ERROR_RX = re.compile(r"^[\s│|]*(\w+(?:Error|Exception|Interrupt)\b.*?|tui-lab: (?!rerun).*?)[\s│|]*$", re.M)


def error_line(text: str) -> str:
    """The app's one-line error (`tui-lab: internal error: ...`), else the last line of a traceback
    (`ValueError: ...`); "" if there is none."""
    found = re.findall(r"tui-lab: internal error: [^\n]*", text) or _ERROR_RX.findall(text)
    return found[-1].strip()[:400] if found else ""


def cpu_seconds(pid: int) -> float | None:
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def thread_names(pid: int) -> list[str]:
    """The names of a process's threads (what a thread leak is made of), sorted."""
    names = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                names.append(Path(f"/proc/{pid}/task/{task}/comm").read_text().strip())
            except OSError:
                pass
    except OSError:
        pass
    return sorted(names)


def proc_stats(pid: int) -> tuple[int, float, int] | None:
    """(threads, RSS in MB, child processes) of a live process; None once it is gone."""
    try:
        threads = len(os.listdir(f"/proc/{pid}/task"))
        rss = 0.0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
        children = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                children += len(Path(f"/proc/{pid}/task/{task}/children").read_text().split())
            except OSError:
                pass
        return threads, rss, children
    except (OSError, ValueError):
        return None


@dataclass
class Life:
    """One start of the app, until it quits, crashes or hangs."""

    term: FuzzPty
    started: float
    samples: list[tuple[float, int, float, int]] = field(default_factory=list)  # (t, threads, RSS MB, children)
    idle: tuple[int, float] | None = None  # threads, RSS after the warm-up run stopped
    idle_threads: list[str] = field(default_factory=list)  # their names, at the last idle measurement
    start_threads: list[str] = field(default_factory=list)  # their names after the warm-up


class Fuzzer:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.events = Events(args.seed)
        self.workdir = workdir
        self.env = term_env(
            {
                "TUI_LAB_RUNS": str(workdir / "runs"),
                "TUI_LAB_PRESETS": str(workdir / "presets"),
                "LC_ALL": "C.UTF-8",
                "PYTHONFAULTHANDLER": "1",  # a hang's stacks: SIGABRT dumps every thread's
                "TUI_LAB_DEBUG": "1",  # a crash's whole traceback, for the record
            }
        )
        self.argv = tui_lab_command() + APP_ARGS
        # SIGUSR2 makes the app write every thread's Python stack to the terminal and go on: what a hang was
        # doing, even one that ends by itself later (a sitecustomize on its path registers it).
        hooks = workdir / "hooks"
        hooks.mkdir(exist_ok=True)
        (hooks / "sitecustomize.py").write_text(
            "import faulthandler, signal\nfaulthandler.register(signal.SIGUSR2, all_threads=True)\n"
        )
        self.env["PYTHONPATH"] = os.pathsep.join([str(hooks), self.env["PYTHONPATH"]])
        self.counts: collections.Counter[str] = collections.Counter()
        self.last: collections.deque[tuple[float, str, str]] = collections.deque(maxlen=50)
        self.crashes: list[dict[str, Any]] = []
        self.hangs: list[dict[str, Any]] = []
        self.probe_s: list[float] = []
        self.lives: list[Life] = []
        self.t0 = time.monotonic()
        self.bursts = 0
        self.probe_mark = 0  # where the output after the probe's h begins
        self.start_failures = 0  # in a row: the app does not start at all (a broken checkout), give up at 5

    # -- the app -------------------------------------------------------------------------------------------

    def start(self) -> Life | None:
        cols, rows = self.args.cols, self.args.rows
        term = FuzzPty(self.argv, cols, rows, self.env, str(self.workdir))
        self.events.recent_rows.append(rows)
        life = Life(term, time.monotonic())
        self.lives.append(life)
        if term.wait_for("deep-sigmoid", timeout=60) is None:
            term.drain(0.3)
            lines = [ln for ln in visible(bytes(term.buffer)).splitlines() if ln.strip()]
            self.failed(life, "start", "the app drew no screen within 60 s: " + " | ".join(lines[-2:])[:300])
            term.close(quit_keys=b"")
            self.start_failures += 1
            time.sleep(2.0)
            return None
        self.start_failures = 0
        # Warm-up: one short run, stopped; then the idle level of threads and memory (torch's pools exist now).
        term.send(b"r", 5)
        term.drain(2.0)
        term.send(b"\x18", 5)  # Ctrl+X: stop, wherever the focus is
        term.drain(2.0)
        self.sample(life)
        life.idle = self.idle_level(life)
        life.start_threads = life.idle_threads
        return life

    def idle_level(self, life: Life) -> tuple[int, float] | None:
        """Threads and RSS of the idle app, once a stopped run's thread has gone (the lowest over 2 s)."""
        seen = []
        for _ in range(4):
            life.term.drain(0.5)
            s = proc_stats(life.term.proc.pid)
            if s:
                seen.append(s)
        life.idle_threads = thread_names(life.term.proc.pid)
        return (min(s[0] for s in seen), min(s[1] for s in seen)) if seen else None

    def sample(self, life: Life) -> None:
        s = proc_stats(life.term.proc.pid)
        if s:
            life.samples.append((round(time.monotonic() - self.t0, 2), *s))

    def note(self, event: Event) -> None:
        self.counts[event.kind] += 1
        self.last.append((round(time.monotonic() - self.t0, 3), event.kind, event.describe()[:300]))

    def failed(self, life: Life, kind: str, why: str) -> dict[str, Any]:
        term = life.term
        term.drain(0.3)
        tail = visible(bytes(term.buffer[-300000:]))
        at = tail.rfind("Traceback (most recent call last)")  # keep a crash's whole traceback
        tail = tail[max(0, at - 200) :][:20000] if at >= 0 else tail[-12000:]
        record = {
            "kind": kind,
            "why": why,
            "t_s": round(time.monotonic() - self.t0, 2),
            "life": len(self.lives),
            "seed": self.args.seed,
            "exit_code": term.proc.poll(),
            "screen": term.text()[-4000:],
            "output_tail": tail,
            "last_events": list(self.last),
        }
        (self.hangs if kind == "hang" else self.crashes).append(record)
        print(f"  {kind} at {record['t_s']} s (life {record['life']}): {why}", flush=True)
        return record

    def crashed(self, life: Life) -> None:
        term = life.term
        code = term.proc.poll()
        term.drain(0.3)
        error = error_line(visible(bytes(term.buffer[-200000:])))
        if error:
            why = f"exit {code}: {error}"
        else:
            why = f"exit {code}" + (" (nobody asked it to quit)" if code == 0 else "")
        self.failed(life, "crash", why)

    def hung(
        self, life: Life, why: str, answer: re.Pattern | None = None, quitting: bool = False, waited: float = 0.0
    ) -> bool:
        """Record a hang with what the app was doing: CPU and output over a second, then, if it neither ends
        (a crash whose traceback takes long to render) nor shows `answer` late within CRASH_GRACE_S, every
        thread's Python stack (SIGABRT makes faulthandler, on through PYTHONFAULTHANDLER, write them to the
        terminal). True if the app is gone or killed; False if it answered late and goes on."""
        term, pid = life.term, life.term.proc.pid
        t_in = time.monotonic() - (waited or self.args.hang_s)  # when it was asked
        cpu0, out0 = cpu_seconds(pid), term.total
        term.drain(1.0)
        cpu1 = cpu_seconds(pid)
        stacks = self.stacks(life, signal.SIGUSR2)
        busy = f"{cpu1 - cpu0:.2f} CPU s and {term.total - out0} bytes out in the next second"
        busy = busy if cpu0 is not None and cpu1 is not None else busy.replace("0.00 CPU s", "CPU ?")
        t = time.monotonic()
        while term.proc.poll() is None and time.monotonic() - t < CRASH_GRACE_S:
            term.read(0.1)
            if answer is not None and term.seen(answer, self.probe_mark):
                late = time.monotonic() - t_in
                self.failed(life, "hang", f"{why}; it answered after {late:.1f} s ({busy})")["stacks"] = stacks
                term.send(ESC, 2)
                term.drain(0.3)
                return False
        if term.proc.poll() is not None:
            late = time.monotonic() - t_in
            if quitting and term.proc.poll() == 0 and not error_line(visible(bytes(term.buffer[-200000:]))):
                self.failed(life, "hang", f"{why}; it quit {late:.1f} s after ({busy})")["stacks"] = stacks
                return True
            self.crashed(life)
            self.crashes[-1]["why"] += f" (frozen {late:.0f} s before it ended)"
            self.crashes[-1]["stacks_when_frozen"] = stacks
            return True
        record = self.failed(life, "hang", f"{why}, nor within {CRASH_GRACE_S:.0f} s more ({busy})")
        record["stacks"] = stacks
        record["stacks_at_kill"] = self.stacks(life, signal.SIGABRT)
        return True

    def stacks(self, life: Life, sig: signal.Signals) -> str:
        """Every thread's Python stack, as faulthandler writes it to the terminal on `sig`."""
        term = life.term
        mark = term.end()
        try:
            os.kill(term.proc.pid, sig)
        except ProcessLookupError:
            return ""
        term.drain(1.5)
        text = visible(term.since(mark))
        first = re.search(r"(Current thread|Thread) 0x", text)
        return text[first.start() if first else 0 :][:30000]

    # -- probes ----------------------------------------------------------------------------------------------

    def close_everything(self, term: FuzzPty) -> None:
        """Esc three times, each alone (an Esc followed by more bytes within the escape delay reads as Alt+key):
        closes a picker, a drop-down, the help, and leaves a field."""
        for _ in range(3):
            term.send(ESC, 2)
            term.drain(0.25)

    def probe(self, life: Life) -> float | None:
        """Seconds until `h` shows the help screen (after Esc x3); None if it does not within --hang-s."""
        term = life.term
        if term.cols < 80 or term.rows < 24:  # the help's title must fit
            term.resize(max(term.cols, 80), max(term.rows, 24))
            self.events.recent_rows.append(term.rows)
            self.note(Event("resize", size=(term.cols, term.rows)))
        self.close_everything(term)
        term.drain(0.5)
        self.probe_mark = term.end()
        t = time.monotonic()
        if not term.send(b"h", self.args.hang_s):
            return None
        again = True
        while time.monotonic() - t < self.args.hang_s:
            term.read(0.05)
            if again and time.monotonic() - t > self.args.hang_s / 2:
                # An input thread starved of CPU can read the last Esc and the h together: Alt+h. Once more.
                again = False
                term.send(ESC, 2)
                term.drain(0.6)
                term.send(b"h", 2)
            if term.seen(HELP_MARK, self.probe_mark):
                latency = time.monotonic() - t
                term.send(ESC, 2)
                term.drain(0.25)
                return latency
            if term.proc.poll() is not None:
                return None
        return None

    # -- the run ---------------------------------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        life = self.start()
        self.t_fuzz = time.monotonic()  # the clock starts once the app is up and warm
        deadline = self.t_fuzz + args.seconds
        next_probe = time.monotonic() + args.probe_every
        next_sample = time.monotonic()
        while time.monotonic() < deadline:
            if self.start_failures >= 5:
                print("  the app does not start: giving up", flush=True)
                return
            if life is None or life.term.proc.poll() is not None:
                if life is not None:
                    self.crashed(life)
                    life.term.close(quit_keys=b"")
                if args.stop_on_first:
                    return
                life = self.start()
                continue
            term = life.term
            self.bursts += 1
            rng = self.events.rng
            blocked = False
            for _ in range(rng.randint(1, 25)):
                event = self.events.next(term.cols, term.rows)
                self.note(event)
                if event.size:
                    term.resize(*event.size)
                elif not term.send(event.data, args.hang_s):
                    blocked = term.proc.poll() is None
                    break
                if rng.random() < 0.5:
                    term.read(rng.uniform(0, 0.03))
            term.drain(rng.uniform(0.05, 0.4))
            if time.monotonic() >= next_sample:
                self.sample(life)
                next_sample = time.monotonic() + 1.0
            if term.proc.poll() is not None:
                continue
            if blocked or time.monotonic() >= next_probe:
                latency = None if blocked else self.probe(life)
                if latency is None:
                    if term.proc.poll() is not None:
                        continue  # a crash: the loop records it
                    why = f"the help screen did not show within {args.hang_s} s of `h`"
                    if blocked:
                        why = f"the app read none of its input for {args.hang_s} s (a write to the terminal blocked)"
                    gone = self.hung(life, why, None if blocked else HELP_MARK)
                    if args.stop_on_first:
                        return
                    if gone:
                        life.term.close(quit_keys=b"")
                        life = self.start()
                else:
                    self.probe_s.append(latency)
                    if rng.random() < 0.7:
                        term.send(b"r", 2)  # keep it training
                next_probe = time.monotonic() + args.probe_every
        if life is not None and life.term.proc.poll() is None:
            self.finish(life)
        elif life is not None:
            self.crashed(life)
            life.term.close(quit_keys=b"")

    def finish(self, life: Life) -> None:
        """Let the app catch up with its input (a last probe), stop the run, take the idle level again, quit, and
        check the terminal was given back as it was."""
        term = life.term
        self.quit_by, self.modes_left_on, self.termios_restored = None, ["?"], None
        latency = self.probe(life)
        if latency is not None:
            self.probe_s.append(latency)
        elif term.proc.poll() is None and self.hung(life, f"at the end, no help screen {self.args.hang_s} s after h"):
            self.exit_code = term.close(quit_keys=b"")
            return
        if term.proc.poll() is not None:
            self.crashed(life)
            self.exit_code = term.close(quit_keys=b"")
            return
        self.close_everything(term)
        term.send(b"\x18", 2)  # Ctrl+X: stop
        # The stopped run's thread is joined: give it up to STOP_S to get back to the idle thread count.
        t = time.monotonic()
        while time.monotonic() - t < STOP_S and life.idle:
            term.drain(0.2)
            now = proc_stats(term.proc.pid)
            if now is None or now[0] <= life.idle[0]:
                break
        self.stop_s = round(time.monotonic() - t, 2)
        self.sample(life)
        self.end_idle = self.idle_level(life)
        t, crashes = time.monotonic(), len(self.crashes)
        for name, keys, grace in (("q", b"q", QUIT_S), ("ctrl+q", b"\x11", QUIT_S)):
            term.send(keys, 2)
            end = time.monotonic() + grace
            while term.proc.poll() is None and time.monotonic() < end:
                term.read(0.05)
            if term.proc.poll() is not None:
                self.quit_by = name
                break
            self.quit_screen = term.text()  # what was on screen when q did nothing (a field? a screen?)
        if self.quit_by is None:
            # Behind on its input, or stuck: a hang either way; it may still end by itself.
            why = f"neither q nor Ctrl+Q ended the app within {QUIT_S:g} s each"
            self.hung(life, why, quitting=True, waited=time.monotonic() - t)
            if term.proc.poll() is None:
                self.quit_by = "SIGTERM"
                self.exit_code = term.close(quit_keys=b"")
                return
            self.quit_by = f"q, after {time.monotonic() - t:.0f} s"
        term.drain(0.3)
        self.modes_left_on = sorted(MODES_OFF[m] for m, on in term.modes.items() if m in MODES_OFF and on) + (
            ["hidden cursor"] if term.modes.get(25) is False else []
        )
        after = term.termios_now()
        self.termios_restored = after == term.termios_before if after is not None else None
        self.exit_code = term.close(quit_keys=b"")
        error = error_line(visible(bytes(term.buffer[-200000:])))
        if (error or self.exit_code != 0) and len(self.crashes) == crashes:  # not recorded while it was slow
            self.failed(life, "crash", f"on quit: exit {self.exit_code}" + (f": {error}" if error else ""))

    def summary(self) -> dict[str, Any]:
        samples = [s for life in self.lives for s in life.samples]
        threads = [s[1] for s in samples]
        rss = [s[2] for s in samples]
        last = self.lives[-1] if self.lives else None
        idle = last.idle if last else None
        end_idle = getattr(self, "end_idle", None)
        leak = {
            "threads_idle_start": idle[0] if idle else None,
            "threads_idle_end": end_idle[0] if end_idle else None,
            "rss_idle_start_mb": round(idle[1], 1) if idle else None,
            "rss_idle_end_mb": round(end_idle[1], 1) if end_idle else None,
            "bound_mb": self.args.leak_mb,
        }
        thread_leak = bool(idle and end_idle and end_idle[0] > idle[0])
        # A leak grows: the median RSS of the last quarter of the app's life against that of its second quarter
        # (a bigger run on screen, or the allocator's pools, make a step and a plateau instead). Judged only
        # over 40 samples (seconds) or more.
        life_rss = [x[2] for x in last.samples] if last else []
        quarter = len(life_rss) // 4
        trend = median(life_rss[-quarter:]) - median(life_rss[quarter : 2 * quarter]) if quarter >= 10 else None
        rss_leak = trend is not None and trend > self.args.leak_mb
        restored = (
            getattr(self, "exit_code", None) is not None
            and not getattr(self, "modes_left_on", ["?"])
            and getattr(self, "termios_restored", False) is True
        )
        failures = []
        if self.crashes:
            failures.append(f"{len(self.crashes)} crash(es)")
        if self.hangs:
            failures.append(f"{len(self.hangs)} hang(s)")
        if thread_leak:
            failures.append(f"threads {idle[0]} -> {end_idle[0]} at idle")
        if rss_leak:
            failures.append(f"RSS grew {trend:.0f} MB from the second quarter to the last")
        if not restored:
            failures.append("terminal not restored")
        return {
            "seed": self.args.seed,
            "seconds": self.args.seconds,
            "fuzzed_s": round(time.monotonic() - getattr(self, "t_fuzz", self.t0), 1),
            "size": f"{self.args.cols}x{self.args.rows}",
            "command": self.argv,
            "events": sum(self.counts.values()),
            "events_by_kind": dict(sorted(self.counts.items())),
            "bursts": self.bursts,
            "probes": len(self.probe_s),
            "probe_ms": {
                "median": round(median(self.probe_s) * 1000, 1) if self.probe_s else None,
                "p95": round(percentile(self.probe_s, 95) * 1000, 1) if self.probe_s else None,
                "max": round(max(self.probe_s) * 1000, 1) if self.probe_s else None,
            },
            "lives": len(self.lives),
            "crashes": self.crashes,
            "hangs": self.hangs,
            # slow, not stuck: it answered the probe, or quit, within CRASH_GRACE_S more
            "hangs_answered_late": sum("answered after" in h["why"] or "; it quit" in h["why"] for h in self.hangs),
            "threads": {"min": min(threads, default=None), "max": max(threads, default=None), **leak},
            "thread_names_idle_start": last.start_threads if last else None,
            "thread_names_idle_end": last.idle_threads if last else None,
            "children_max": max((s[3] for s in samples), default=None),
            "rss_mb": {
                "start": round(rss[0], 1) if rss else None,
                "max": round(max(rss), 1) if rss else None,
                "end": round(rss[-1], 1) if rss else None,
                "median": round(statistics.median(rss), 1) if rss else None,
            },
            # one sample in ten, to tell a trend (a leak) from a plateau (a bigger run on screen)
            "rss_series_mb": [[s[0], round(s[2], 1), s[1]] for s in samples[::10]],
            "stop_to_idle_s": getattr(self, "stop_s", None),
            "thread_leak": thread_leak,
            "rss_trend_mb": round(trend, 1) if trend is not None else None,
            "rss_leak": rss_leak,
            "quit_by": getattr(self, "quit_by", None),
            "quit_screen": getattr(self, "quit_screen", None),
            "exit_code": getattr(self, "exit_code", None),
            "modes_left_on": getattr(self, "modes_left_on", None),
            "termios_restored": getattr(self, "termios_restored", None),
            "terminal_restored": restored,
            "failures": failures,
            "passed": not failures,
            "last_events": list(self.last) if failures else [],
        }


def fuzz(
    seconds: float = 600,
    seed: int = 1,
    size: str = "120x36",
    probe_every: float = 5.0,
    hang_s: float = 15.0,
    leak_mb: float = 64.0,
    stop_on_first: bool = False,
) -> dict[str, Any]:
    """Run the fuzz; the summary (what `--json` writes)."""
    cols, rows = parse_size(size)
    args = argparse.Namespace(
        seconds=seconds,
        seed=seed,
        cols=cols,
        rows=rows,
        probe_every=probe_every,
        hang_s=hang_s,
        leak_mb=leak_mb,
        stop_on_first=stop_on_first,
    )
    with tempfile.TemporaryDirectory(prefix="tui-lab-fuzz-") as tmp:
        fuzzer = Fuzzer(args, Path(tmp))
        try:
            fuzzer.run()
        finally:
            for life in fuzzer.lives:
                if life.term.proc.poll() is None:
                    life.term.close(quit_keys=b"")
        return fuzzer.summary()


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not m or not (SIZES[0] <= int(m[1]) <= SIZES[1] and SIZES[2] <= int(m[2]) <= SIZES[3]):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected COLSxROWS, {SIZES[0]}..{SIZES[1]} x {SIZES[2]}..{SIZES[3]}, e.g. 120x36"
        )
    return int(m[1]), int(m[2])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=600.0, help="how long to fuzz (default 600)")
    p.add_argument("--seed", type=int, default=None, help="the random stream's seed (default: a new one, printed)")
    p.add_argument("--size", type=str, default="120x36", help="the terminal's first size, COLSxROWS")
    p.add_argument("--json", type=Path, default=None, help="also write the summary here")
    p.add_argument("--probe-every", type=float, default=5.0, help="seconds between responsiveness probes")
    p.add_argument("--hang-s", type=float, default=15.0, help="a probe slower than this is a hang")
    p.add_argument("--leak-mb", type=float, default=64.0, help="RSS growth (last quarter vs second) that is a leak")
    p.add_argument("--stop-on-first", action="store_true", help="stop at the first crash or hang")
    p.add_argument("--smoke", action="store_true", help="a few seconds: keeps the script runnable")
    p.add_argument("--results-dir", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        parse_size(args.size)
    except argparse.ArgumentTypeError as exc:
        p.error(f"--size {exc}")
    if not args.seconds > 0:
        p.error(f"--seconds {args.seconds}: must be > 0")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    seconds = min(args.seconds, 6.0) if args.smoke else args.seconds
    load_before = loadavg()
    print(f"fuzzing tui-lab for {seconds:g} s, seed {seed}, {args.size}", flush=True)
    result = fuzz(
        seconds,
        seed,
        args.size,
        min(args.probe_every, 3.0) if args.smoke else args.probe_every,
        args.hang_s,
        args.leak_mb,
        args.stop_on_first,
    )
    result["smoke"] = args.smoke
    path = write_results("fuzz_tui", {"_load_before": load_before, **result}, args.results_dir)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(json.loads(path.read_text()), indent=2) + "\n")
    kinds = ", ".join(f"{k} {v}" for k, v in result["events_by_kind"].items())
    th, rss = result["threads"], result["rss_mb"]
    print(
        f"{result['events']} events in {result['fuzzed_s']} s ({kinds}); {result['probes']} probes, "
        f"p95 {result['probe_ms']['p95']} ms"
    )
    print(
        f"crashes {len(result['crashes'])}, hangs {len(result['hangs'])}; threads {th['min']}..{th['max']} "
        f"(idle {th['threads_idle_start']} -> {th['threads_idle_end']}); RSS start {rss['start']} max {rss['max']} "
        f"end {rss['end']} MB (idle {th['rss_idle_start_mb']} -> {th['rss_idle_end_mb']}); "
        f"quit by {result['quit_by']}, exit {result['exit_code']}, terminal restored {result['terminal_restored']}"
    )
    print("PASSED" if result["passed"] else f"FAILED (seed {seed}): " + "; ".join(result["failures"]))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
