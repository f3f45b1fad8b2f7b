"""Startup: process start to the first frame of the app, in a pseudo-terminal of 120x36.

The app is started as a user would (`tui-lab`, or `python -m tui_lab` from a checkout that is not
installed) on a fresh pty; the clock runs from just before the process is created until the terminal has
received screen output whose visible text contains the app's title (`tui-lab`), i.e. the first painted
frame, not merely the alternate-screen switch. Then `q` quits it. Median of 5 (alternated with
`tui-lab --version`, which must answer without loading torch, pydantic or Textual).

    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --reps 9

Target: first frame <= 0.6 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, loadavg, median, verdict, write_results
from _pty import PtyProcess, term_env, tui_lab_command

TARGET_S = 0.6
MARKER = r"tui-lab"


def first_frame(cmd: list[str], timeout: float = 20.0) -> tuple[float | None, int]:
    """(seconds to the first frame or None, bytes written by then)."""
    child = PtyProcess(cmd, cols=120, rows=36, env=term_env())
    try:
        t = child.wait_for(MARKER, timeout)
        return t, child.total
    finally:
        child.close()


def version_time(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, env=term_env(), cwd=str(ROOT), timeout=30)
    return time.perf_counter() - t0, (out.stdout or out.stderr).strip()


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
    frames: list[float] = []
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
        shown = f"{t:.3f}s" if t is not None else "no frame"
        print(f"  rep {rep + 1}/{reps}: first frame {shown}  --version {v:.3f}s", flush=True)

    ff = median(frames) if frames else float("nan")
    vv = median(versions)
    fl = median(floors)
    meets = bool(frames) and ff <= TARGET_S
    print(
        f"startup to first frame: {ff:.3f}s = {ff / TARGET_S:.2f}x the {TARGET_S}s target "
        f"({verdict(ff, TARGET_S) if frames else 'NO FRAME'})"
    )
    print(f"  tui-lab --version: {vv:.3f}s ({vv / fl:.1f}x a bare `python -c pass`: {fl:.3f}s)")
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
