"""`tui-lab sweep`: train every combination of a grid of config values and tabulate the outcome.

    tui-lab sweep deep-sigmoid --grid model.activation=sigmoid,tanh,relu \\
                               --grid model.init=default,xavier_normal,he_normal --steps 300

reproduces the classic activation x initialisation table. Each configuration gets its own run directory
(named by what differs, e.g. `activation=relu,init=he_normal`) under the sweep's directory, which also
receives `sweep.csv` (rewritten as each run ends, so a killed sweep keeps what finished). Per configuration
the table holds the first/last hidden-layer gradient ratio at initialisation (‖∇W_L1‖ / ‖∇W_Ln‖ of the
step-0 snapshot: ~1 when gradients flow, orders of magnitude below 1 when they vanish), the final loss and
validation accuracy, the status and the time.

With `jobs > 1` the runs go to worker processes (spawned, so no state is inherited from this process), each
on one torch thread: J small runs on J cores beat one run on J threads. Ctrl-C stops the sweep cleanly: the
runs under way end as `stopped` (their directories complete), the rest are not started, and the table of
what ran is printed. A second Ctrl-C abandons the runs under way.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_lab.core.config import LabConfig, with_overrides
from tui_lab.core.errors import UserError

CSV_NAME = "sweep.csv"
RATIO_COLUMN = "grad_ratio_first_last"
RESULT_COLUMNS = (RATIO_COLUMN, "final_loss", "final_val_acc", "status", "steps", "time_s", "run_dir")
OK_STATUSES = ("completed", "diverged", "stopped")


@dataclass
class SweepRun:
    """One configuration of the grid and, once it ran, its outcome."""

    index: int
    values: list[str]  # one per grid key, as typed
    label: str  # directory name: what differs, e.g. activation=relu,init=he_normal
    overrides: list[str]  # key=value, for with_overrides
    status: str = ""  # "" = not run
    steps: int = 0
    ratio: float | None = None
    final_loss: float | None = None
    final_val_acc: float | None = None
    time_s: float = 0.0
    message: str = ""
    run_dir: str = ""


def run_sweep(
    name: str,
    cfg: LabConfig,
    grid: list[tuple[str, list[str]]],
    jobs: int = 1,
    out: Path | None = None,
    steps: int | None = None,
) -> int:
    """Run the grid over `cfg`; 0 when every run ended (completed, diverged or stopped), 1 if any failed."""
    from tui_lab.core.runlog import default_run_dir
    from tui_lab.core.trainer import resolve_device

    if steps is not None:
        cfg = with_overrides(cfg, [f"train.steps={int(steps)}"], source="--steps")
    if not grid:
        raise UserError("sweep: give at least one --grid KEY=V1,V2,...")
    resolve_device(cfg.train.device)  # a missing GPU is bad input, before anything is written
    runs = plan(grid)
    configs = [with_overrides(cfg, r.overrides, source="--grid " + " ".join(r.overrides)) for r in runs]

    out_dir = Path(out).expanduser() if out is not None else default_run_dir(f"sweep-{name}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"--out {out_dir}: exists and is not an empty directory; choose another")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot create it ({exc.strerror or exc})") from None

    jobs = max(1, min(int(jobs), len(runs)))
    keys = [key for key, _ in grid]
    print(f"tui-lab sweep {name}: {len(runs)} configurations x {cfg.train.steps} steps, "
          f"{jobs} job{'s' if jobs > 1 else ''} -> {out_dir}", flush=True)  # fmt: skip

    state = _SweepState(total=len(runs))
    t0 = time.perf_counter()

    def finished(run: SweepRun) -> None:
        state.done += 1
        line = f"[{state.done}/{len(runs)}] {run.label}: {run.status} in {run.time_s:.1f}s"
        if run.final_val_acc is not None:
            line += f", val_acc {run.final_val_acc:.3f}"
        if run.status == "failed" and run.message:
            line += f" ({run.message})"
        print(line, flush=True)
        write_csv(out_dir / CSV_NAME, keys, runs)

    with _stop_on_sigint(state):
        if jobs == 1:
            _run_serial(name, configs, runs, out_dir, state, finished)
        else:
            _run_parallel(name, configs, runs, out_dir, jobs, state, finished)

    ran = [r for r in runs if r.status]
    write_csv(out_dir / CSV_NAME, keys, runs)
    print()
    print_table(keys, ran, stream=sys.stdout)
    skipped = len(runs) - len(ran)
    tail = f"{len(ran)} of {len(runs)} configurations in {time.perf_counter() - t0:.1f}s"
    if state.stopping:
        tail = f"sweep stopped: {tail}; {skipped} not run"
    print(f"{tail}; summary: {out_dir / CSV_NAME}", flush=True)
    return 1 if any(r.status not in OK_STATUSES for r in ran) else 0


# ---------------------------------------------------------------------------------------------------------
# The grid.


def plan(grid: list[tuple[str, list[str]]]) -> list[SweepRun]:
    """The cartesian product, first key slowest, each with a unique filesystem-safe directory label."""
    keys = [key for key, _ in grid]
    short = short_names(keys)
    varied = [i for i, (_, values) in enumerate(grid) if len(values) > 1] or list(range(len(grid)))
    runs: list[SweepRun] = []
    seen: set[str] = set()
    for index, combo in enumerate(itertools.product(*(values for _, values in grid))):
        label = safe_name(",".join(f"{short[i]}={combo[i]}" for i in varied))
        unique, n = label, 2
        while unique.lower() in seen:  # case-insensitive filesystems
            unique, n = f"{label}-{n}", n + 1
        seen.add(unique.lower())
        runs.append(SweepRun(index, list(combo), unique, [f"{k}={v}" for k, v in zip(keys, combo)]))
    return runs


def short_names(keys: list[str]) -> list[str]:
    """'model.activation' -> 'activation', unless two keys share their last part."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return [s if last.count(s) == 1 else k for s, k in zip(last, keys)]


def safe_name(text: str) -> str:
    """A directory name: letters, digits and . _ - = , + only; at most 120 characters."""
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", text).strip("._") or "run"
    return safe[:120]


# ---------------------------------------------------------------------------------------------------------
# Running: in this process (jobs = 1) or in spawned worker processes.


class _SweepState:
    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.stopping = False
        self.control = None  # the serial run's Control
        self.event = None  # the workers' stop event


def _run_serial(name, configs, runs, out_dir, state, finished) -> None:
    from tui_lab.core.trainer import Control

    for run, cfg in zip(runs, configs):
        if state.stopping:
            break
        state.control = Control()
        row = run_one(name, cfg, str(out_dir / run.label), control=state.control)
        _apply(run, row)
        finished(run)
        state.control = None


def _run_parallel(name, configs, runs, out_dir, jobs, state, finished) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    state.event = ctx.Event()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                               initargs=(state.event,))  # fmt: skip
    futures = {}
    try:
        for run, cfg in zip(runs, configs):
            futures[pool.submit(_worker_run, name, cfg, str(out_dir / run.label))] = run
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                run = futures[fut]
                if fut.cancelled():
                    continue
                exc = fut.exception()
                row = _failed_row(exc, str(out_dir / run.label)) if exc is not None else fut.result()
                if row is None:  # the worker saw the stop before starting this one
                    continue
                _apply(run, row)
                finished(run)
            if state.stopping:
                for fut in pending:
                    fut.cancel()
    except KeyboardInterrupt:  # the second Ctrl-C: leave the runs under way
        state.stopping = True
        for fut in futures:
            fut.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        _terminate_workers(pool)
        return
    pool.shutdown(wait=True, cancel_futures=True)


def _terminate_workers(pool) -> None:
    for proc in list(getattr(pool, "_processes", {}).values()):
        try:
            proc.terminate()
        except Exception:  # noqa: BLE001 - already gone
            pass


def _worker_init(event) -> None:
    """Each worker: one torch thread, Ctrl-C left to the parent (which sets `event`)."""
    global _STOP_EVENT
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["TUI_LAB_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    _STOP_EVENT = event


_STOP_EVENT: Any = None


def _worker_run(name: str, cfg: LabConfig, run_dir: str) -> dict[str, Any] | None:
    from tui_lab.core.trainer import Control

    event = _STOP_EVENT
    if event is not None and event.is_set():
        return None
    control = Control()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.1):
            if event is not None and event.is_set():
                control.stop()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        return run_one(name, cfg, run_dir, control=control)
    finally:
        done.set()


def run_one(name: str, cfg: LabConfig, run_dir: str, control: Any = None) -> dict[str, Any]:
    """Train one configuration into `run_dir`; the sweep's row for it (plain data, picklable)."""
    from tui_lab.core.runlog import RunLog
    from tui_lab.core.trainer import Trainer

    try:
        log = RunLog(run_dir)
    except UserError as exc:
        return _failed_row(exc, run_dir)
    first = _FirstSnapshot()
    result = Trainer(cfg, control=control, sinks=[log, first], preset=name).run()
    final = result.last_finite or result.last
    return {
        "status": result.status, "steps": result.steps, "message": result.message,
        "ratio": first.ratio, "final_loss": final.loss if final else None,
        "final_val_acc": final.val_acc if final else None, "time_s": result.elapsed_s, "run_dir": run_dir,
    }  # fmt: skip


def _failed_row(exc: BaseException, run_dir: str) -> dict[str, Any]:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return {"status": "failed", "steps": 0, "message": message, "ratio": None, "final_loss": None,
            "final_val_acc": None, "time_s": 0.0, "run_dir": run_dir}  # fmt: skip


class _FirstSnapshot:
    """A sink keeping the gradient ratio of the step-0 snapshot (gradients at initialisation)."""

    def __init__(self) -> None:
        self.ratio: float | None = None

    def __call__(self, snap: Any) -> None:
        if snap.step == 0 and self.ratio is None and not snap.nonfinite:
            self.ratio = grad_ratio(snap.layers)


def grad_ratio(layers: list[Any]) -> float | None:
    """‖∇W‖ of the first hidden layer over that of the last hidden layer (layers[-1] is the output)."""
    if len(layers) < 2:
        return None
    first, last = layers[0].grad_norm, layers[-2].grad_norm
    if first is None or last is None or not math.isfinite(first) or not math.isfinite(last):
        return None
    if last == 0:
        return None if first == 0 else math.inf
    return first / last


def _apply(run: SweepRun, row: dict[str, Any]) -> None:
    run.status = row["status"]
    run.steps = row["steps"]
    run.message = row.get("message", "")
    run.ratio = row["ratio"]
    run.final_loss = row["final_loss"]
    run.final_val_acc = row["final_val_acc"]
    run.time_s = row["time_s"]
    run.run_dir = row["run_dir"]


@contextmanager
def _stop_on_sigint(state: _SweepState):
    """First Ctrl-C: stop the runs under way (they end as `stopped`) and start no more. Second: abandon."""

    def on_int(signum, frame):  # noqa: ARG001
        if state.stopping:
            raise KeyboardInterrupt
        state.stopping = True
        print("\nstopping the sweep (Ctrl-C again to abandon the runs under way)...", file=sys.stderr, flush=True)
        if state.control is not None:
            state.control.stop()
        if state.event is not None:
            state.event.set()

    try:
        previous = signal.signal(signal.SIGINT, on_int)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    except KeyboardInterrupt:
        state.stopping = True
        if state.control is not None:
            state.control.stop()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------------------------------------
# Output: the CSV and the table.


def write_csv(path: Path, keys: list[str], runs: list[SweepRun]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*keys, *RESULT_COLUMNS])
        for r in runs:
            if not r.status:
                continue
            writer.writerow([
                *r.values, _csv_num(r.ratio), _csv_num(r.final_loss), _csv_num(r.final_val_acc),
                r.status, r.steps, f"{r.time_s:.3f}", r.run_dir,
            ])  # fmt: skip
    os.replace(tmp, path)


def _csv_num(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return "inf"
    return f"{x:.1e}" if x < 0.01 or x >= 1000 else f"{x:.3f}"


def _cells(r: SweepRun) -> list[str]:
    return [
        *r.values, fmt_ratio(r.ratio), "-" if r.final_loss is None else f"{r.final_loss:.4f}",
        "-" if r.final_val_acc is None else f"{r.final_val_acc:.3f}", r.status, f"{r.time_s:.1f}s",
    ]  # fmt: skip


def table_header(keys: list[str]) -> list[str]:
    return [*short_names(keys), "grad L1/Ln @0", "final loss", "val acc", "status", "time"]


def print_table(keys: list[str], runs: list[SweepRun], stream: Any = None) -> None:
    """A rich table on a terminal, plain aligned text otherwise (logs, pipes, CI)."""
    stream = stream or sys.stdout
    header = table_header(keys)
    rows = [_cells(r) for r in runs]
    n_keys = len(keys)
    if getattr(stream, "isatty", lambda: False)():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="sweep: gradient ratio at init (first/last hidden layer) and outcome")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i < n_keys or h == "status" else "right")
        for r, cells in zip(runs, rows):
            style = {"failed": "red", "diverged": "yellow", "stopped": "dim"}.get(r.status)
            table.add_row(*cells, style=style)
        Console(file=stream).print(table)
        return
    widths = [max(len(h), *(len(c[i]) for c in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if (i < n_keys or header[i] == "status") else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    print(line(header), file=stream)
    print("  ".join("-" * w for w in widths), file=stream)
    for cells in rows:
        print(line(cells), file=stream)
    stream.flush()
