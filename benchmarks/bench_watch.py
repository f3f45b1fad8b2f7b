"""`tui_lab.watch` overhead: the same training loop plain, under `watch`, with TensorBoard histograms and with
`wandb.watch`, side by side in one run.

Every arm builds the same model from the same seed and trains it on the same batches (a fixed tensor of inputs,
batches sliced in a seeded order), SGD, on one torch thread, for the same number of steps; the only difference
is the instrument. A snapshot every 10 steps in each: `watch(every=10)`, `SummaryWriter.add_histogram` of every
weight gradient every 10 steps (plus the loss as a scalar), `wandb.watch(log="gradients", log_freq=10)` offline.
The arms are alternated (A B C D A B C D ...) so that a change in the machine's load hits them alike; the
figures are each arm's median wall time over the plain loop's, the median of each rep's ratio (paired: robust
to a load that drifts during the run), and the same from per-step medians (a step's time by its position after
a snapshot, averaged over a snapshot period: robust to stray spikes of load).
TensorBoard and wandb are optional: an arm whose package is not importable is skipped, with the reason.

    python benchmarks/bench_watch.py                           # 8x128 ReLU MLP, batch 128, 2000 steps, 5 reps
    python benchmarks/bench_watch.py --models mlp,cnn,lm --repeats 7 --device cuda

Steps per model unless --steps: mlp 2000, cnn 300, lm 400 (each ~5-10 s plain on one CPU thread). Every arm
runs once, short, before the timed ones (imports, first-use costs), and the watched arm's wall time includes
leaving the block (the last snapshots written, summary.json).

Target: watch <= 1.05x plain.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, loadavg, median, verdict, write_results

TARGET = 1.05
EVERY = 10


# -- the work: (model, optimizer, a batch function) ---------------------------------------------------------


def mlp_work(device: str):
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(2, 128), nn.ReLU()]
    for _ in range(7):
        layers += [nn.Linear(128, 128), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(128, 3)).to(device)
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8192, 2, generator=g).to(device)
    y = ((x[:, 0] > 0).long() + (x[:, 1] > 0).long()).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=0.05), _slicer(x, y, 128), nn.functional.cross_entropy


def cnn_work(device: str):
    import torch
    from torch import nn

    sys.path.insert(0, str(ROOT / "examples"))
    from watch_resnet_cnn import make_model, shapes

    torch.manual_seed(0)
    model = make_model(4, 8, residual=True).to(device)
    x, y = shapes(2048)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return model, opt, _slicer(x.to(device), y.to(device), 64), nn.functional.cross_entropy


def lm_work(device: str):
    import torch
    from torch import nn

    sys.path.insert(0, str(ROOT / "examples"))
    from watch_transformer_lm import TinyLM, make_text

    torch.manual_seed(0)
    text = make_text(2000)
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text])
    context = 32
    starts = torch.randint(0, len(data) - context - 1, (4096,), generator=torch.Generator().manual_seed(1))
    x = torch.stack([data[s : s + context] for s in starts]).to(device)
    y = torch.stack([data[s + 1 : s + context + 1] for s in starts]).to(device)
    model = TinyLM(len(chars), context).to(device)
    vocab = len(chars)

    def loss_fn(logits, targets):
        return nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))

    return model, torch.optim.AdamW(model.parameters(), lr=3e-3), _slicer(x, y, 16), loss_fn


WORKS: dict[str, Callable] = {"mlp": mlp_work, "cnn": cnn_work, "lm": lm_work}
STEPS = {"mlp": 2000, "cnn": 300, "lm": 400}


def _slicer(x, y, batch: int):
    import torch

    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(2)).to(x.device)

    def batch_at(step: int):
        start = (step * batch) % (len(x) - batch)
        idx = order[start : start + batch]
        return x[idx], y[idx]

    return batch_at


# -- the arms -------------------------------------------------------------------------------------------------


def train(work: str, device: str, steps: int, arm: str, workdir: Path) -> tuple[float, list[float]]:
    """(wall seconds from building the model to the last step, the start time of every step)."""
    import torch

    t0 = time.perf_counter()
    model, opt, batch_at, loss_fn = WORKS[work](device)
    stamps: list[float] = []
    before_step: Callable[[int, Any], None] = lambda step, loss: None
    context: Any = None
    if arm == "watch":
        import tui_lab

        context = tui_lab.watch(model, opt, out=workdir / f"watch-{work}", every=EVERY)
    elif arm == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(workdir / f"tb-{work}"))
        named = [(n, p) for n, p in model.named_parameters() if n.endswith("weight")]

        def before_step(step: int, loss) -> None:
            if step % EVERY == 0:
                writer.add_scalar("loss", loss.item(), step)
                for n, p in named:
                    writer.add_histogram(f"grad/{n}", p.grad, step)

    elif arm == "wandb":
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        run = wandb.init(mode="offline", dir=str(workdir), project="bench-watch", reinit=True)
        wandb.watch(model, log="gradients", log_freq=EVERY)

        def before_step(step: int, loss) -> None:
            if step % EVERY == 0:
                run.log({"loss": loss.item()}, step=step)

    lab = context.__enter__() if context is not None else None
    try:
        for step in range(steps):
            stamps.append(time.perf_counter())
            xb, yb = batch_at(step)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            before_step(step, loss)
            opt.step()
            if lab is not None:
                lab.log(loss=loss)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    finally:
        if context is not None:
            context.__exit__(None, None, None)
        if arm == "tensorboard":
            writer.close()
        if arm == "wandb":
            run.finish()
    elapsed = time.perf_counter() - t0
    if arm == "wandb":  # its service process ends here (as when a script exits), not in the next arm's time
        getattr(wandb, "teardown", lambda: None)()
    return elapsed, stamps


def available(arm: str) -> str | None:
    """None when the arm can run, else why not."""
    try:
        if arm == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        elif arm == "wandb":
            import wandb  # noqa: F401
    except ModuleNotFoundError as exc:
        return f"not installed ({exc.name})"
    except Exception as exc:  # noqa: BLE001 - any import failure skips the arm
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def per_step(stamps: list[float]) -> float:
    """Seconds a step, from per-position medians over a snapshot period (the first 5% of steps left out)."""
    d = [b - a for a, b in zip(stamps, stamps[1:])]
    skip = len(d) // 20
    d = d[skip:]
    by_pos = [median([x for i, x in enumerate(d) if (i + skip) % EVERY == k]) for k in range(EVERY)]
    return sum(by_pos) / EVERY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp", help="comma-separated: " + ", ".join(WORKS))
    parser.add_argument("--steps", type=int, default=None, help="per model: " + str(STEPS))
    parser.add_argument("--reps", "--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arms", default="plain,watch,tensorboard,wandb")
    parser.add_argument("--smoke", action="store_true", help="a few steps, one rep: that it runs")
    parser.add_argument("--results-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.reps = 40, 1

    import torch

    torch.set_num_threads(1)
    load_before = loadavg()
    arms, skipped = [], {}
    for arm in args.arms.split(","):
        why = available(arm)
        if why is None:
            arms.append(arm)
        else:
            skipped[arm] = why
            print(f"{arm}: skipped ({why})")
    results: dict[str, Any] = {"_load_before": load_before, "smoke": args.smoke, "steps": {},
                               "reps": args.reps, "device": args.device, "every": EVERY, "target": TARGET,
                               "skipped": skipped, "models": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        for work in args.models.split(","):
            n_steps = args.steps or STEPS[work]
            for arm in arms:  # warm-up: imports, first-use costs, the allocator
                train(work, args.device, min(n_steps, 30), arm, Path(tmp) / "warm")
            walls: dict[str, list[float]] = {arm: [] for arm in arms}
            steps: dict[str, list[float]] = {arm: [] for arm in arms}
            for rep in range(args.reps):
                for arm in arms if rep % 2 == 0 else arms[::-1]:  # alternated, and the order flipped each rep
                    wall, stamps = train(work, args.device, n_steps, arm, Path(tmp) / f"{rep}")
                    walls[arm].append(wall)
                    steps[arm].append(per_step(stamps))
            plain_wall, plain_step = median(walls["plain"]), median(steps["plain"])
            figures = {
                arm: {
                    "wall_s": round(median(walls[arm]), 4),
                    "ratio": round(median(walls[arm]) / plain_wall, 3),
                    # each rep's wall over the plain loop's in the same rep: robust to a load that drifts
                    "ratio_paired": round(median([w / p for w, p in zip(walls[arm], walls["plain"])]), 3),
                    "ms_per_step": round(median(steps[arm]) * 1e3, 4),
                    "ratio_per_step": round(median(steps[arm]) / plain_step, 3),
                    "walls": [round(w, 4) for w in walls[arm]],
                }
                for arm in arms
            }
            results["models"][work] = figures
            results["steps"][work] = n_steps
            print(f"{work} ({n_steps} steps, {args.reps} reps, {args.device}, one thread):")
            for arm, f in figures.items():
                print(f"  {arm:<12} {f['wall_s']:8.3f} s  {f['ratio']:5.2f}x (paired {f['ratio_paired']:4.2f}x)   "
                      f"per-step medians {f['ms_per_step']:7.3f} ms  {f['ratio_per_step']:5.2f}x")  # fmt: skip
            if "watch" in figures:
                print(f"  watch: {verdict(figures['watch']['ratio'], TARGET)} ({TARGET}x)")
    path = write_results("bench_watch", results, args.results_dir)
    print(f"load {load_before} -> {loadavg()}; results: {path}")


if __name__ == "__main__":
    main()
