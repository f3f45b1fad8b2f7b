"""Sweep workers: `tui-lab sweep --jobs 2` against `--jobs 1` on the same small grid, as whole commands.

Each arm is the real command (`tui-lab sweep deep-sigmoid --grid model.activation=sigmoid,relu
--grid model.init=default,he_normal --steps 300 --jobs J --out DIR`), timed from process start to exit, so
the figure includes everything a user waits for: importing torch (once in this process for jobs 1; once in
the workers' fork server for jobs 2), the runs, the table. The arms alternate (1 2, then 2 1, ...) and the
headline is the median of the per-pair ratios, jobs 2 / jobs 1. Both arms must produce the same sweep.csv
(every column but the times and directories): the workers change where the runs go, never their results.

    python benchmarks/bench_sweep.py
    python benchmarks/bench_sweep.py --reps 5 --steps 1000

Target: jobs 2 / jobs 1 < 1.0 on a 2-core machine (the second job must pay for itself).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, loadavg, median, verdict, write_results
from _pty import term_env, tui_lab_command

TARGET = 1.0
GRID = ["--grid", "model.activation=sigmoid,relu", "--grid", "model.init=default,he_normal"]
SAME = ("grad_ratio_first_last", "final_loss", "final_val_acc", "status", "steps")  # must match across arms


def sweep(cmd: list[str], jobs: int, steps: int, out: Path) -> tuple[float, list[tuple[str, ...]]]:
    """(wall seconds of the whole command, the sweep.csv rows that must not depend on the number of jobs)."""
    argv = [*cmd, "sweep", "deep-sigmoid", *GRID, "--steps", str(steps), "--jobs", str(jobs), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=str(ROOT), env=term_env(), timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sweep --jobs {jobs} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    with open(out / "sweep.csv", newline="", encoding="utf-8") as f:
        rows = [tuple(row[k] for k in ("model.activation", "model.init", *SAME)) for row in csv.DictReader(f)]
    return wall, rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3, help="pairs of runs (default 3)")
    p.add_argument("--steps", type=int, default=300, help="training steps per configuration (default 300)")
    p.add_argument("--smoke", action="store_true", help="one pair of tiny runs: keeps the benchmark runnable")
    p.add_argument("--results-dir", type=Path, default=None)
    args = p.parse_args(argv)
    reps, steps = (1, 20) if args.smoke else (args.reps, args.steps)
    load_before = loadavg()
    cmd = tui_lab_command()
    times: dict[int, list[float]] = {1: [], 2: []}
    ratios: list[float] = []
    same = True
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        sweep(cmd, 1, steps, Path(tmp) / "warm")  # the file cache, not timed
        for rep in range(reps):
            order = (1, 2) if rep % 2 == 0 else (2, 1)
            rows = {}
            for jobs in order:
                wall, rows[jobs] = sweep(cmd, jobs, steps, Path(tmp) / f"r{rep}-j{jobs}")
                times[jobs].append(wall)
            same = same and rows[1] == rows[2]
            ratios.append(times[2][-1] / times[1][-1])
            print(
                f"  pair {rep + 1}/{reps}: jobs 1 {times[1][-1]:.2f}s  jobs 2 {times[2][-1]:.2f}s  "
                f"ratio {ratios[-1]:.2f}",
                flush=True,
            )
    ratio = median(ratios)
    meets = ratio < TARGET and same
    print(
        f"sweep --jobs 2 / --jobs 1: {ratio:.2f}x (median of {reps} alternated pairs; target < {TARGET:.1f}x: "
        f"{verdict(ratio, TARGET)}); {median(times[1]):.2f}s vs {median(times[2]):.2f}s"
    )
    print(
        f"  grid 2x2 (activation x init) of deep-sigmoid, {steps} steps each; results identical across arms: "
        f"{'yes' if same else 'NO'}; command: {' '.join(cmd)}; load {load_before} -> {loadavg()}"
    )
    path = write_results(
        "bench_sweep",
        {
            "_load_before": load_before,
            "ratio": round(ratio, 4),
            "target": TARGET,
            "meets_target": meets,
            "ratios": [round(r, 4) for r in ratios],
            "jobs1_s": [round(t, 4) for t in times[1]],
            "jobs2_s": [round(t, 4) for t in times[2]],
            "jobs1_s_median": round(median(times[1]), 4),
            "jobs2_s_median": round(median(times[2]), 4),
            "same_results": same,
            "configurations": 4,
            "steps": steps,
            "reps": reps,
            "command": cmd,
            "smoke": args.smoke,
        },
        args.results_dir,
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
