"""Memory over a long headless run: process RSS after 2k steps against after 50k steps, and the metrics file.

One headless Trainer run (a tiny MLP, a snapshot every 10 steps, a RunLog writing its run directory to a
temporary folder) with a sink that reads this process's resident set size (VmRSS in /proc/self/status)
every 1000 steps and the size of metrics.jsonl. Memory must stay flat: growth from step 2k to step 50k
<= 20 MB. The metrics file must grow linearly with the steps (a constant number of bytes per snapshot).

    python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --steps 100000

Target: RSS growth 2k -> 50k <= 20 MB.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import loadavg, verdict, write_results

TARGET_MB = 20.0


def rss_mb() -> float:
    """Resident set size now (VmRSS), in MiB; ru_maxrss (the peak) where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def tiny_config(steps: int):
    from tui_lab.core.config import LabConfig, with_overrides

    return with_overrides(
        LabConfig(),
        [
            "model.depth=4",
            "model.width=32",
            "model.activation=relu",
            "model.init=he_normal",
            "data.name=spiral",
            "data.samples=1000",
            "optim.name=sgd",
            "optim.lr=0.05",
            f"train.steps={steps}",
            "train.batch_size=32",
            "train.log_every=10",
            "train.eval_every=100",
            "train.device=cpu",
        ],
    )


class MemorySink:
    """Records (step, RSS MiB, metrics.jsonl bytes) every `every` steps and at the marks."""

    def __init__(self, metrics: Path, every: int, marks: tuple[int, ...]):
        self.metrics, self.every, self.marks = metrics, every, set(marks)
        self.samples: list[tuple[int, float, int]] = []
        self.times: dict[int, float] = {}

    def __call__(self, snap) -> None:
        # Snapshots are taken at steps 0, 10, 20, ... and at the last step (total - 1).
        done = snap.total_steps if snap.step == snap.total_steps - 1 else snap.step
        if done % self.every == 0 or done in self.marks or done == snap.total_steps:
            size = self.metrics.stat().st_size if self.metrics.exists() else 0
            self.samples.append((done, rss_mb(), size))
            self.times[done] = time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--early", type=int, default=2_000, help="the step RSS is compared from")
    p.add_argument("--smoke", action="store_true", help="a few seconds: keeps the benchmark runnable")
    p.add_argument("--results-dir", type=Path, default=None)
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.early = 1_000, 200
    load_before = loadavg()

    from tui_lab.core.runlog import RunLog
    from tui_lab.core.trainer import Trainer

    cfg = tiny_config(args.steps)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        log = RunLog(Path(tmp) / "run")
        every = max(args.steps // 50, 10)
        every -= every % 10
        sink = MemorySink(log.metrics_path, every, (args.early,))
        rss_start = rss_mb()
        t0 = time.perf_counter()
        result = Trainer(cfg, sinks=[log, sink], preset="bench-memory").run()
        elapsed = time.perf_counter() - t0
        final_size = log.metrics_path.stat().st_size
    if result.status != "completed":
        raise SystemExit(f"run ended {result.status}: {result.message}")

    by_step = {s: (r, b) for s, r, b in sink.samples}
    early_rss, early_bytes = by_step[args.early]
    late_rss, late_bytes = by_step[args.steps]
    growth = late_rss - early_rss
    # Linearity: bytes per step over the second half against over the whole run after the early mark.
    half = [s for s, _, _ in sink.samples if s >= args.steps // 2]
    mid_step = half[0]
    mid_bytes = by_step[mid_step][1]
    rate_all = (late_bytes - early_bytes) / (args.steps - args.early)
    rate_late = (late_bytes - mid_bytes) / max(args.steps - mid_step, 1)
    linearity = rate_late / rate_all if rate_all else float("nan")
    bytes_per_snapshot = late_bytes / max(result.steps // cfg.train.log_every + 1, 1)

    print(
        f"headless RSS growth {args.early} -> {args.steps} steps: {growth:+.1f} MB = "
        f"{growth / TARGET_MB:.2f}x the {TARGET_MB:.0f} MB budget ({verdict(growth, TARGET_MB)})"
    )
    print(
        f"  RSS {early_rss:.1f} MB at step {args.early}, {late_rss:.1f} MB at step {args.steps} "
        f"(before the run: {rss_start:.1f} MB, torch not yet loaded)"
    )
    print(
        f"  metrics.jsonl: {late_bytes / 1e6:.2f} MB after {args.steps} steps; bytes/step in the last half "
        f"vs overall: {linearity:.3f}x (1.00 = linear); {bytes_per_snapshot:.0f} bytes per snapshot"
    )
    rate = (args.steps - args.early) / (sink.times[args.steps] - sink.times[args.early])
    print(
        f"  {elapsed:.1f}s in all (torch import included), {rate:.0f} steps/s after step {args.early}; "
        f"load {load_before} -> {loadavg()}"
    )
    path = write_results(
        "bench_memory",
        {
            "_load_before": load_before,
            "rss_growth_mb": round(growth, 2),
            "target_mb": TARGET_MB,
            "meets_target": growth <= TARGET_MB,
            "rss_early_mb": round(early_rss, 2),
            "rss_late_mb": round(late_rss, 2),
            "rss_start_mb": round(rss_start, 2),
            "early_step": args.early,
            "steps": args.steps,
            "metrics_bytes": late_bytes,
            "metrics_bytes_final": final_size,
            "metrics_linearity": round(linearity, 4),
            "bytes_per_snapshot": round(bytes_per_snapshot, 1),
            "samples": [{"step": s, "rss_mb": round(r, 2), "metrics_bytes": b} for s, r, b in sink.samples],
            "elapsed_s": round(elapsed, 2),
            "steps_per_s": round(rate, 1),
            "model": "mlp depth 4 width 32 relu, batch 32",
            "log_every": 10,
            "smoke": args.smoke,
        },
        args.results_dir,
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
