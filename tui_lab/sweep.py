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
import io
import itertools
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_lab.core import fmt
from tui_lab.core.config import LabConfig, parse_key_value, with_overrides
from tui_lab.core.diagnosis import grad_ratio
from tui_lab.core.errors import UserError, one_line
from tui_lab.core.run import ENDED_OK, Control, Snapshot
from tui_lab.core.runlog import atomic_write, default_run_dir, prepare_run_dir
from tui_lab.signals import handlers_installed

CSV_NAME = "sweep.csv"
RATIO_COLUMN = "grad_ratio_first_last"
RESULT_COLUMNS = (RATIO_COLUMN, "final_loss", "final_val_acc", "status", "steps", "time_s", "run_dir")

Grid = list[tuple[str, list[str]]]  # (dotted key, the values to try, as typed), first key slowest


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


def run_sweep(name: str, cfg: LabConfig, grid: Grid, jobs: int = 1, out: Path | None = None) -> int:
    """Run the grid over `cfg`; 0 when every run ended (completed, diverged or stopped), 1 if any failed.
    Every configuration is validated before anything is loaded or written."""
    runs = plan(grid)
    configs = [with_overrides(cfg, r.overrides, source="--grid " + " ".join(r.overrides)) for r in runs]
    from tui_lab.core.trainer import resolve_device  # torch: only once the grid is good

    resolve_device(cfg.train.device)  # a missing GPU is bad input, before anything is written
    out_dir = prepare_run_dir(out if out is not None else default_run_dir(f"sweep-{name}"), force=None)

    jobs = max(1, min(int(jobs), len(runs)))
    keys = [key for key, _ in grid]
    print(
        f"tui-lab sweep {name}: {len(runs)} configurations x {cfg.train.steps} steps, "
        f"{jobs} job{'s' if jobs > 1 else ''} -> {out_dir}",
        flush=True,
    )

    state = _SweepState()
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
    return 1 if any(r.status not in ENDED_OK for r in ran) else 0


# ---------------------------------------------------------------------------------------------------------
# The grid.


def parse_grid(items: list[str]) -> Grid:
    """['model.activation=sigmoid,relu', ...] -> [('model.activation', ['sigmoid', 'relu']), ...].

    Values stay as typed (each one a valid `--set` value); run_sweep validates every combination: values can
    be fine together and not alone (model.arch=lstm needs data.name=adding or copy), or the reverse.
    """
    if not items:
        raise UserError("sweep: give at least one --grid KEY=V1,V2,... (e.g. --grid model.activation=sigmoid,relu)")
    grid: Grid = []
    for item in items:
        key, text = parse_key_value(item, "--grid", "model.activation=sigmoid,relu", shape="KEY=V1,V2,...")
        values = [v.strip() for v in text.split(",")]
        if any(not v for v in values):
            raise UserError(f"--grid {item!r}: empty value; separate values with single commas")
        if len(set(values)) != len(values):
            raise UserError(f"--grid {item!r}: a value is listed twice")
        if key in (k for k, _ in grid):
            raise UserError(f"--grid {key}: given more than once; list all its values in one --grid")
        grid.append((key, values))
    return grid


def plan(grid: Grid) -> list[SweepRun]:
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
    def __init__(self) -> None:
        self.done = 0
        self.stopping = False
        self.control: Control | None = None  # the serial run's Control
        self.event: Any = None  # the workers' stop event


def _run_serial(name, configs, runs, out_dir, state, finished) -> None:
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
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init, initargs=(state.event,))
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
        # The executor has no public way to end busy workers; its process table is the only handle on them.
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        return
    pool.shutdown(wait=True, cancel_futures=True)


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

    threading.Thread(target=watch, daemon=True).start()
    try:
        return run_one(name, cfg, run_dir, control=control)
    finally:
        done.set()


def run_one(name: str, cfg: LabConfig, run_dir: str, control: Control | None = None) -> dict[str, Any]:
    """Train one configuration into `run_dir`; the sweep's row for it (plain data, picklable)."""
    from tui_lab.core.runlog import RunLog
    from tui_lab.core.trainer import Trainer

    try:
        log = RunLog(run_dir)
    except UserError as exc:
        return _failed_row(exc, run_dir)
    first = _FirstSnapshot()
    result = Trainer(cfg, control=control, sinks=[log, first], preset=name).run()
    final = result.final
    return {
        "status": result.status,
        "steps": result.steps,
        "message": result.message,
        "ratio": first.ratio,
        "final_loss": final.loss if final else None,
        "final_val_acc": final.val_acc if final else None,
        "time_s": result.elapsed_s,
        "run_dir": run_dir,
    }


def _failed_row(exc: BaseException, run_dir: str) -> dict[str, Any]:
    message = str(exc) if isinstance(exc, UserError) else one_line(exc)
    return {
        "status": "failed",
        "steps": 0,
        "message": message,
        "ratio": None,
        "final_loss": None,
        "final_val_acc": None,
        "time_s": 0.0,
        "run_dir": run_dir,
    }


class _FirstSnapshot:
    """A sink keeping the gradient ratio of the step-0 snapshot (gradients at initialisation)."""

    def __init__(self) -> None:
        self.ratio: float | None = None

    def __call__(self, snap: Snapshot) -> None:
        if snap.step == 0 and self.ratio is None and not snap.nonfinite:
            self.ratio = grad_ratio(snap.layers)


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
def _stop_on_sigint(state: _SweepState) -> Iterator[None]:
    """First Ctrl-C: stop the runs under way (they end as `stopped`) and start no more. Second: abandon."""

    def stop() -> None:
        state.stopping = True
        if state.control is not None:
            state.control.stop()
        if state.event is not None:
            state.event.set()

    def on_int(signum, frame):
        if state.stopping:
            raise KeyboardInterrupt
        print("\nstopping the sweep (Ctrl-C again to abandon the runs under way)...", file=sys.stderr, flush=True)
        stop()

    with handlers_installed({signal.SIGINT: on_int}):
        try:
            yield
        except KeyboardInterrupt:
            stop()


# ---------------------------------------------------------------------------------------------------------
# Output: the CSV and the table.


def write_csv(path: Path, keys: list[str], runs: list[SweepRun]) -> None:
    """sweep.csv with a row per finished run, replaced atomically (a killed sweep keeps a whole file)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*keys, *RESULT_COLUMNS])
    for r in runs:
        if r.status:
            writer.writerow(
                [
                    *r.values,
                    _csv_num(r.ratio),
                    _csv_num(r.final_loss),
                    _csv_num(r.final_val_acc),
                    r.status,
                    r.steps,
                    f"{r.time_s:.3f}",
                    r.run_dir,
                ]
            )
    atomic_write(path, buffer.getvalue())


def _csv_num(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def _cells(r: SweepRun) -> list[str]:
    return [
        *r.values,
        fmt.sci(r.ratio, "-"),
        fmt.num(r.final_loss),
        fmt.num(r.final_val_acc, 3),
        r.status,
        f"{r.time_s:.1f}s",
    ]


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
