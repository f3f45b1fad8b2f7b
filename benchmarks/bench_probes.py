"""Probe overhead: the headless Trainer (every probe on, a RunLog writing a run directory, a snapshot every
10 steps) against a plain PyTorch loop (forward, loss, backward, step, nothing else) on the same work.

Both arms build the same model with tui_lab.core.models.build_model from the same seed, train on the same
data set with the same batch order (a seeded permutation per epoch, sliced in batches), on the same number
of torch threads, for the same number of steps. The runs are alternated (A B A B ...) so that a change in
the machine's load hits both arms alike; each arm's time is wall time from building the model to the last
step; the figure is the ratio of the medians. Evaluation on the validation set is not a probe and the plain
loop does none, so the trainer evaluates only where it must (step 0 and the last step).

    python benchmarks/bench_probes.py                  # 8x128 ReLU MLP, batch 128, 2000 steps, 7 reps each
    python benchmarks/bench_probes.py --steps 1000 --reps 3 --device cuda

Target: <= 1.05x.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import loadavg, median, verdict, write_results

TARGET = 1.05


def make_config(steps: int, device: str, depth: int = 8, width: int = 128, batch: int = 128):
    from tui_lab.core.config import LabConfig, with_overrides

    return with_overrides(
        LabConfig(),
        [
            "model.arch=mlp",
            f"model.depth={depth}",
            f"model.width={width}",
            "model.activation=relu",
            "model.init=he_normal",
            "data.name=spiral",
            "data.samples=8000",
            "optim.name=sgd",
            "optim.lr=0.05",
            f"train.steps={steps}",
            f"train.batch_size={batch}",
            "train.log_every=10",
            f"train.eval_every={steps}",
            f"train.device={device}",
        ],
    )


def run_trainer(cfg, workdir: Path, rep: int) -> tuple[float, float, int, list[float]]:
    """(wall seconds, CPU seconds of this process, snapshots written, start time of every step)."""
    from tui_lab.core.run import Control
    from tui_lab.core.runlog import RunLog
    from tui_lab.core.trainer import Trainer

    class StampingControl(Control):
        """Notes the time the trainer asks for each step (its only per-step call out)."""

        def __init__(self) -> None:
            super().__init__()
            self.stamps: list[float] = []

        def wait(self):
            self.stamps.append(time.perf_counter())
            return super().wait()

    log = RunLog(workdir / f"trainer-{rep}")
    control = StampingControl()
    c0, t0 = time.process_time(), time.perf_counter()
    result = Trainer(cfg, control=control, sinks=[log], preset="bench").run()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if result.status != "completed":
        raise SystemExit(f"trainer run ended {result.status}: {result.message}")
    return elapsed, cpu, log.lines, control.stamps


def run_plain(cfg) -> tuple[float, float, list[float]]:
    """The baseline: what a person would write without any instrument.
    (wall seconds, CPU seconds, start time of every step)."""
    import torch
    import torch.nn.functional as F

    from tui_lab.core.data import build_dataset
    from tui_lab.core.models import build_model
    from tui_lab.core.optim import make_optimizer
    from tui_lab.core.trainer import _pick_cpu_threads, resolve_device

    c0, t0 = time.process_time(), time.perf_counter()
    device = resolve_device(cfg.train.device)
    if device.type == "cpu":
        _pick_cpu_threads(cfg)  # the trainer's thread choice, so both arms run on the same threads
    torch.manual_seed(cfg.seed)
    data = build_dataset(cfg).to(device)
    model = build_model(cfg, data.input_shape, data.n_outputs).to(device)
    optimizer = make_optimizer(cfg, model.parameters())
    n = len(data.x_train)
    batch = min(cfg.train.batch_size, n)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    order = torch.randperm(n, generator=gen).to(device)
    cursor = 0
    model.train()
    stamps: list[float] = []
    for _ in range(cfg.train.steps):
        stamps.append(time.perf_counter())
        if cursor + batch > n:
            order = torch.randperm(n, generator=gen).to(device)
            cursor = 0
        idx = order[cursor : cursor + batch]
        cursor += batch
        xb, yb = data.x_train[idx], data.y_train[idx]
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, time.process_time() - c0, stamps


def step_profile(trainer_stamps: list[float], plain_stamps: list[float], log_every: int) -> tuple[float, float, float]:
    """Robust to stray spikes: (trainer/plain from per-step medians, plain ms/step, extra ms per snapshot).

    The trainer's steps are grouped by their position after a snapshot (0 = the snapshot step itself,
    1 = the step after it, ...); the median of each position, averaged over a snapshot period, against the
    median plain step. Wall-clock figures of one pair of runs; the first 5% of steps (warm-up) left out."""

    def durations(stamps: list[float]) -> list[float]:
        d = [b - a for a, b in zip(stamps, stamps[1:])]
        return d[len(d) // 20 :]

    t, pl = durations(trainer_stamps), durations(plain_stamps)
    skip = len(trainer_stamps) - 1 - len(t)  # keep positions aligned with the step numbers
    by_pos = [median([x for i, x in enumerate(t) if (i + skip) % log_every == k]) for k in range(log_every)]
    plain_step = median(pl)
    period = sum(by_pos)
    return period / (log_every * plain_step), plain_step * 1000, (period - log_every * plain_step) * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--reps", type=int, default=7, help="runs of each arm (alternated)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--smoke", action="store_true", help="a few seconds: keeps the benchmark runnable")
    p.add_argument("--results-dir", type=Path, default=None, help="where to write bench_probes.json")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.reps = 40, 1

    load_before = loadavg()
    cfg = make_config(args.steps, args.device)
    import torch

    # Warm-up (first-call costs in torch: allocator, kernels) for both arms, not timed.
    warm = make_config(min(50, args.steps), args.device)
    trainer_s: list[float] = []
    plain_s: list[float] = []
    trainer_cpu: list[float] = []
    plain_cpu: list[float] = []
    trainer_stamps: list[float] = []
    profiles: list[tuple[float, float, float]] = []
    lines = 0
    with tempfile.TemporaryDirectory(prefix="bench-probes-") as tmp:
        run_plain(warm)
        run_trainer(warm, Path(tmp), -1)
        for rep in range(args.reps):
            # A B, then B A: neither arm always runs first.
            for arm in ("trainer", "plain") if rep % 2 == 0 else ("plain", "trainer"):
                if arm == "trainer":
                    wall, cpu, lines, trainer_stamps = run_trainer(cfg, Path(tmp), rep)
                    trainer_s.append(wall)
                    trainer_cpu.append(cpu)
                else:
                    wall, cpu, plain_stamps = run_plain(cfg)
                    plain_s.append(wall)
                    plain_cpu.append(cpu)
            if args.steps >= 40:
                profiles.append(step_profile(trainer_stamps, plain_stamps, cfg.train.log_every))
            print(
                f"  rep {rep + 1}/{args.reps}: trainer {trainer_s[-1]:.3f}s  plain {plain_s[-1]:.3f}s  "
                f"ratio {trainer_s[-1] / plain_s[-1]:.3f} (CPU time {trainer_cpu[-1] / plain_cpu[-1]:.3f})",
                flush=True,
            )

    t_med, p_med = median(trainer_s), median(plain_s)
    ratio = t_med / p_med
    cpu_ratio = median(trainer_cpu) / median(plain_cpu)
    paired = median([t / p for t, p in zip(trainer_s, plain_s)])
    step_ratio = median([pr[0] for pr in profiles]) if profiles else float("nan")
    plain_step_ms = median([pr[1] for pr in profiles]) if profiles else float("nan")
    snapshot_ms = median([pr[2] for pr in profiles]) if profiles else float("nan")
    sps_t, sps_p = args.steps / t_med, args.steps / p_med
    print(
        f"probe overhead: {paired:.3f}x (median of the per-repetition ratios; target <= {TARGET}x: "
        f"{verdict(paired, TARGET)})"
    )
    print(
        f"  {ratio:.3f}x ratio of the medians (wall), {cpu_ratio:.3f}x of the CPU-time medians, "
        f"{step_ratio:.3f}x from per-step medians"
    )
    print(
        f"  a snapshot costs {snapshot_ms:.2f} ms over its 10 steps (the snapshot step and the cache misses "
        f"after it), against {plain_step_ms:.2f} ms per plain step"
    )
    print(f"  trainer (all probes, run log, snapshot every 10 steps): median {t_med:.3f}s = {sps_t:.0f} steps/s")
    print(f"  plain PyTorch loop:                                    median {p_med:.3f}s = {sps_p:.0f} steps/s")
    print(
        f"  8x128 ReLU MLP, batch 128, {args.steps} steps, {args.reps} reps each (alternated), "
        f"device {args.device}, torch threads {torch.get_num_threads()}, {lines} snapshots per run, "
        f"load {load_before} -> {loadavg()}"
    )
    path = write_results(
        "bench_probes",
        {
            "_load_before": load_before,
            "ratio": round(paired, 4),
            "target": TARGET,
            "meets_target": paired <= TARGET,
            "ratio_of_medians": round(ratio, 4),
            "cpu_ratio": round(cpu_ratio, 4),
            "paired_ratio_median": round(paired, 4),
            "step_median_ratio": round(step_ratio, 4),
            "snapshot_extra_ms": round(snapshot_ms, 3),
            "plain_step_ms": round(plain_step_ms, 4),
            "trainer_s_median": round(t_med, 4),
            "plain_s_median": round(p_med, 4),
            "trainer_s": [round(x, 4) for x in trainer_s],
            "plain_s": [round(x, 4) for x in plain_s],
            "trainer_cpu_s": [round(x, 4) for x in trainer_cpu],
            "plain_cpu_s": [round(x, 4) for x in plain_cpu],
            "trainer_steps_per_s": round(sps_t, 1),
            "plain_steps_per_s": round(sps_p, 1),
            "steps": args.steps,
            "reps": args.reps,
            "device": args.device,
            "torch_threads": torch.get_num_threads(),
            "snapshots_per_run": lines,
            "model": "mlp depth 8 width 128 relu he_normal",
            "batch_size": 128,
            "log_every": 10,
            "smoke": args.smoke,
        },
        args.results_dir,
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
