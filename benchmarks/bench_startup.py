"""Startup: process start to the first frame of the app, in a pseudo-terminal of 120x36.

The app is started as a user would (`tui-lab`, or `python -m tui_lab` from a checkout that is not
installed) on a fresh pty; the clock runs from just before the process is created until the terminal has
received screen output whose visible text contains the app's title (`tui-lab`), i.e. the first painted
frame, not merely the alternate-screen switch. Then `q` quits it. Median of 5 (alternated with
`tui-lab --version`, which must answer without loading torch, pydantic or Textual).

Headless: `tui-lab run deep-sigmoid` (the real command line, through `tui_lab.cli.main` in a fresh interpreter)
with an import hook that stamps the moment `import torch` has finished, wherever the program imports it; the
figures run from that moment to the first line on stdout (the header) and to the first progress line (step 1:
the model built, the first step taken, its snapshot printed). Target: first progress line <= 0.5 s after torch.

    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --reps 9

Target: first frame <= 0.6 s.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, loadavg, median, verdict, write_results
from _pty import PtyProcess, term_env, tui_lab_command

TARGET_S = 0.6
MARKER = r"tui-lab"
HEADLESS_TARGET_S = 0.5
BARS_TARGET_S = 0.5
READ_S = 3.0  # a user reads the first screen for a few seconds before pressing r


def _s(x: float | None) -> str:
    return f"{x:.3f}s" if x is not None else "none"


# Runs the CLI's main() with a hook that writes, to stderr, the wall-clock time at which `import torch` finished.
HEADLESS_PROBE = r"""
import importlib.abc, importlib.util, sys, time

class TorchImported(importlib.abc.MetaPathFinder):
    # Stays in place until torch is really loaded: a find_spec("torch") that only asks whether torch is there
    # (core/devices.py) must not use it up.
    busy = False

    def find_spec(self, name, path=None, target=None):
        if name != "torch" or self.busy:
            return None
        self.busy = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.busy = False
        load = spec.loader.exec_module
        def exec_module(module):
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            load(module)
            sys.stderr.write(f"TORCH_IMPORTED {time.time()}\n")
            sys.stderr.flush()
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, TorchImported())
from tui_lab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def first_frame(cmd: list[str], timeout: float = 20.0) -> tuple[float | None, int]:
    """(seconds to the first frame or None, bytes written by then)."""
    child = PtyProcess(cmd, cols=120, rows=36, env=term_env())
    try:
        t = child.wait_for(MARKER, timeout)
        return t, child.total
    finally:
        child.close()


BARS = r"L1 +[█▉▊▋▌▍▎▏#=]"  # the first gradient bar on screen (Unicode or ASCII)


def r_to_bars(cmd: list[str], read_s: float, timeout: float = 30.0) -> float | None:
    """`tui-lab --preset deep-sigmoid` (it opens on the gradient bars): the first frame, `read_s` seconds of
    reading the screen (torch loads in the background meanwhile), then r: seconds until the bars are drawn."""
    child = PtyProcess([*cmd, "--preset", "deep-sigmoid"], cols=120, rows=36, env=term_env())
    try:
        if child.wait_for(MARKER, timeout) is None:
            return None
        child.drain(read_s)
        since = len(child.buffer)
        t0 = time.perf_counter()
        child.write(b"r")
        t = child.wait_for(BARS, timeout, since=since)
        return None if t is None else time.perf_counter() - t0
    finally:
        child.close(quit_keys=b"xq")


def version_time(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, env=term_env(), cwd=str(ROOT), timeout=30)
    return time.perf_counter() - t0, (out.stdout or out.stderr).strip()


def headless_first_lines(out_dir: Path) -> tuple[float, float]:
    """(torch imported -> the header line, torch imported -> the first progress line), in seconds."""
    argv = [sys.executable, "-c", HEADLESS_PROBE, "run", "deep-sigmoid", "--steps", "50", "--out", str(out_dir)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=term_env(), cwd=str(ROOT)
    )
    stamps: list[float] = []
    assert proc.stdout is not None and proc.stderr is not None
    for _ in range(2):
        line = proc.stdout.readline()
        if not line:
            break
        stamps.append(time.time())
    out, err = proc.communicate(timeout=120)
    torch_at = [float(x.split()[1]) for x in err.splitlines() if x.startswith("TORCH_IMPORTED ")]
    if proc.returncode != 0 or len(stamps) < 2 or not torch_at:
        raise SystemExit(f"headless run failed ({proc.returncode}):\n{out[-2000:]}{err[-2000:]}")
    return stamps[0] - torch_at[0], stamps[1] - torch_at[0]


def python_floor() -> float:
    """A bare interpreter start, for scale."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--smoke", action="store_true", help="one rep each: keeps the benchmark runnable")
    p.add_argument("--results-dir", type=Path, default=None)
    args = p.parse_args(argv)
    reps = 1 if args.smoke else args.reps
    load_before = loadavg()
    cmd = tui_lab_command()

    first_frame(cmd)  # warm the file cache (imports), not timed
    scratch = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    headless_first_lines(scratch / "warm")
    headers: list[float] = []
    first_lines: list[float] = []
    frames: list[float] = []
    bars: list[float | None] = []
    versions: list[float] = []
    floors: list[float] = []
    failures = 0
    version_text = ""
    frame_bytes = 0
    for rep in range(reps):
        t, frame_bytes = first_frame(cmd)
        if t is None:
            failures += 1
        else:
            frames.append(t)
        v, version_text = version_time(cmd)
        versions.append(v)
        floors.append(python_floor())
        bars.append(r_to_bars(cmd, READ_S))
        header, first_line = headless_first_lines(scratch / f"run{rep}")
        headers.append(header)
        first_lines.append(first_line)
        shown = f"{t:.3f}s" if t is not None else "no frame"
        print(
            f"  rep {rep + 1}/{reps}: first frame {shown}  r -> bars {_s(bars[-1])}  --version {v:.3f}s  "
            f"headless: torch -> header {header:.3f}s, -> first progress line {first_line:.3f}s",
            flush=True,
        )
    shutil.rmtree(scratch, ignore_errors=True)

    ff = median(frames) if frames else float("nan")
    vv = median(versions)
    fl = median(floors)
    meets = bool(frames) and ff <= TARGET_S
    print(
        f"startup to first frame: {ff:.3f}s = {ff / TARGET_S:.2f}x the {TARGET_S}s target "
        f"({verdict(ff, TARGET_S) if frames else 'NO FRAME'})"
    )
    got = [b for b in bars if b is not None]
    rb = median(got) if got else float("nan")
    print(
        f"r -> first gradient bars ({READ_S:.0f} s after the first frame): {rb:.3f}s = {rb / BARS_TARGET_S:.2f}x the "
        f"{BARS_TARGET_S}s target ({verdict(rb, BARS_TARGET_S) if got else 'NO BARS'}); median of {len(got)}"
    )
    print(f"  tui-lab --version: {vv:.3f}s ({vv / fl:.1f}x a bare `python -c pass`: {fl:.3f}s)")
    hl, hh = median(first_lines), median(headers)
    print(
        f"headless: torch imported -> first progress line {hl:.3f}s = {hl / HEADLESS_TARGET_S:.2f}x the "
        f"{HEADLESS_TARGET_S}s target ({verdict(hl, HEADLESS_TARGET_S)}); -> header line {hh:.3f}s; median of "
        f"{len(first_lines)} (`tui-lab run deep-sigmoid --steps 50`)"
    )
    print(
        f"  command: {' '.join(cmd)}; median of {len(frames)} (failed {failures}); 120x36 pty; "
        f"{frame_bytes} bytes by the first frame; load {load_before} -> {loadavg()}"
    )
    path = write_results(
        "bench_startup",
        {
            "_load_before": load_before,
            "first_frame_s_median": round(ff, 4) if frames else None,
            "target_s": TARGET_S,
            "meets_target": meets,
            "ratio_to_target": round(ff / TARGET_S, 3) if frames else None,
            "first_frame_s": [round(x, 4) for x in frames],
            "failures": failures,
            "version_s_median": round(vv, 4),
            "version_s": [round(x, 4) for x in versions],
            "version": version_text,
            "python_floor_s": round(fl, 4),
            "r_to_bars_s_median": round(rb, 4) if got else None,
            "r_to_bars_s": [round(b, 4) if b is not None else None for b in bars],
            "r_to_bars_read_s": READ_S,
            "r_to_bars_target_s": BARS_TARGET_S,
            "r_to_bars_meets_target": bool(got) and rb <= BARS_TARGET_S,
            "headless_first_line_s_median": round(hl, 4),
            "headless_first_line_s": [round(x, 4) for x in first_lines],
            "headless_header_s_median": round(hh, 4),
            "headless_header_s": [round(x, 4) for x in headers],
            "headless_target_s": HEADLESS_TARGET_S,
            "headless_meets_target": hl <= HEADLESS_TARGET_S,
            "command": cmd,
            "reps": reps,
            "terminal": "120x36",
            "smoke": args.smoke,
        },
        args.results_dir,
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
