"""`tui-lab sweep`: train every combination of a grid of config values and tabulate the outcome.

    tui-lab sweep deep-sigmoid --grid model.activation=sigmoid,tanh,relu \\
                               --grid model.init=default,xavier_normal,he_normal --steps 300

reproduces the classic activation x initialisation table. Each configuration gets its own run directory
(named by what differs, e.g. `activation=relu,init=he_normal`) under the sweep's directory, which also
receives `sweep.csv` (rewritten as each run ends, so a killed sweep keeps what finished). Per configuration
the table holds the first/last hidden-layer gradient ratio at initialisation (‖∇W_L1‖ / ‖∇W_Ln‖ of the
step-0 snapshot: ~1 when gradients flow, orders of magnitude below 1 when they vanish), the final loss and
validation accuracy, the status and the time.

With `jobs > 1` the runs go to J long-lived worker processes, each taking run after run on one torch thread:
J small runs on J cores beat one run on J threads. On Linux the workers are forks of a fork server that has
imported torch once (`worker_context`), so J workers cost one import of torch, not J; this process itself never
imports torch for a CPU sweep. Nothing else is inherited from this process. Ctrl-C stops the sweep cleanly: the
runs under way end as `stopped` (their directories complete), the rest are not started, and the table of
what ran is printed. A second Ctrl-C abandons the runs under way. SIGTERM and a hang-up (SIGHUP: the terminal
or the SSH connection went away) stop it like the first Ctrl-C, each stopped run's summary.json saying why.
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
from tui_lab.core.i18n import N_, _, ngettext
from tui_lab.core.run import ENDED_OK, Control, Snapshot
from tui_lab.core.runlog import atomic_write, default_run_dir, prepare_run_dir
from tui_lab.signals import SIGHUP, detach_from_terminal, handlers_installed, hangup_signals, stop_reason, terminal_fds

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
    check_devices(grid, configs)  # a missing GPU is bad input, before anything is written
    out_dir = prepare_run_dir(out if out is not None else default_run_dir(f"sweep-{name}"), force=None)

    jobs = max(1, min(int(jobs), len(runs)))
    keys = [key for key, _ in grid]
    jobs_words = ngettext("{jobs} job", "{jobs} jobs", jobs).format(jobs=jobs)
    head = _("{count} configurations x {steps} steps, {jobs}").format(
        count=len(runs), steps=cfg.train.steps, jobs=jobs_words
    )
    print(f"tui-lab sweep {name}: {head} -> {out_dir}", flush=True)

    state = _SweepState()
    t0 = time.perf_counter()

    def finished(run: SweepRun) -> None:
        state.done += 1
        outcome = _("{status} in {seconds}s").format(status=_(run.status), seconds=f"{run.time_s:.1f}")
        line = f"[{state.done}/{len(runs)}] {run.label}: {outcome}"
        if run.final_val_acc is not None:
            line += _(", val_acc {value}").format(value=f"{run.final_val_acc:.3f}")
        if run.status == "failed" and run.message:
            line += f" ({run.message})"
        print(line, flush=True)
        write_csv(out_dir / CSV_NAME, keys, runs)

    with _stop_on_signals(state):
        if jobs == 1:
            _run_serial(name, configs, runs, out_dir, state, finished)
        else:
            _run_parallel(name, configs, runs, out_dir, jobs, state, finished)

    ran = [r for r in runs if r.status]
    write_csv(out_dir / CSV_NAME, keys, runs)
    print()
    print_table(keys, ran, stream=sys.stdout)
    skipped = len(runs) - len(ran)
    tail = _("{ran} of {count} configurations in {seconds}s").format(
        ran=len(ran), count=len(runs), seconds=f"{time.perf_counter() - t0:.1f}"
    )
    if state.stopping:
        tail = _("sweep stopped: {what}; {skipped} not run").format(what=tail, skipped=skipped)
    print(_("{what}; summary: {path}").format(what=tail, path=out_dir / CSV_NAME), flush=True)
    return 1 if any(r.status not in ENDED_OK for r in ran) else 0


# ---------------------------------------------------------------------------------------------------------
# The grid.


def parse_grid(items: list[str]) -> Grid:
    """['model.activation=sigmoid,relu', ...] -> [('model.activation', ['sigmoid', 'relu']), ...].

    Values stay as typed (each one a valid `--set` value); run_sweep validates every combination: values can
    be fine together and not alone (model.arch=lstm needs data.name=adding or copy), or the reverse.
    """
    if not items:
        raise UserError(_("sweep: give at least one --grid KEY=V1,V2,... (e.g. --grid model.activation=sigmoid,relu)"))
    grid: Grid = []
    for item in items:
        key, text = parse_key_value(item, "--grid", "model.activation=sigmoid,relu", shape="KEY=V1,V2,...")
        values = [v.strip() for v in text.split(",")]
        if any(not v for v in values):
            raise UserError(_("--grid {item}: empty value; separate values with single commas").format(item=repr(item)))
        if len(set(values)) != len(values):
            raise UserError(_("--grid {item}: a value is listed twice").format(item=repr(item)))
        if key in (k for k, _values in grid):
            raise UserError(_("--grid {key}: given more than once; list all its values in one --grid").format(key=key))
        grid.append((key, values))
    return grid


def plan(grid: Grid) -> list[SweepRun]:
    """The cartesian product, first key slowest, each with a unique filesystem-safe directory label."""
    keys = [key for key, _ in grid]
    short = short_names(keys)
    varied = [i for i, (_, values) in enumerate(grid) if len(values) > 1] or list(range(len(grid)))
    runs: list[SweepRun] = []
    seen: set[str] = set()
    for index, combo in enumerate(itertools.product(*(values for _key, values in grid))):
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
# Running: in this process (jobs = 1) or in worker processes.


class _SweepState:
    def __init__(self) -> None:
        self.done = 0
        self.stopping = False
        self.control: Control | None = None  # the serial run's Control
        self.event: Any = None  # the workers' stop event
        self.reason: Any = None  # why the workers stop: an index into WORKER_REASONS, shared with them


def _run_serial(name, configs, runs, out_dir, state, finished) -> None:
    for run, cfg in zip(runs, configs):
        if state.stopping:
            break
        state.control = Control()
        row = run_one(name, cfg, str(out_dir / run.label), control=state.control)
        _apply(run, row)
        finished(run)
        state.control = None


def check_devices(grid: Grid, configs: list[LabConfig]) -> None:
    """Every device the sweep would train on is there. For cpu and auto nothing is imported: with `jobs > 1`
    this process then never loads torch (only its workers do)."""
    from tui_lab.core.devices import problem

    in_grid = any(key == "train.device" for key, _values in grid)
    for device in dict.fromkeys(c.train.device for c in configs):
        why = problem(device)
        if why is not None:
            where = f"--grid train.device={device}" if in_grid else f'train.device = "{device}"'
            raise UserError(f"{where}: {why}")


def worker_context() -> Any:
    """Where the workers come from. On Linux a fork server imports torch and the trainer once, and each worker
    is a fork of it: a worker is ready in milliseconds and J workers share one import of torch instead of
    paying one each (the server has touched no GPU and runs no thread, so CUDA and torch work in its forks).
    Elsewhere spawned workers, each importing torch once for all the runs it takes."""
    import multiprocessing as mp

    if sys.platform.startswith("linux") and "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["tui_lab._forkserver"])
        return ctx
    return mp.get_context("spawn")


def _run_parallel(name, configs, runs, out_dir, jobs, state, finished) -> None:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tui_lab.core.i18n import language

    ctx = worker_context()
    state.event, state.reason = ctx.Event(), ctx.Value("b", 0)
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=_worker_init, initargs=(state.event, language(), state.reason)
    )
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


def _worker_init(event, lang: str = "en", reason: Any = None) -> None:
    """Each worker: one torch thread, Ctrl-C and a hang-up left to the parent (which sets `reason`, then
    `event`), the sweep's language."""
    global _STOP_EVENT, _STOP_REASON
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if SIGHUP is not None:
        signal.signal(SIGHUP, signal.SIG_IGN)
    _STOP_REASON = reason
    from tui_lab.core.i18n import set_language

    set_language(lang)
    os.environ["TUI_LAB_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    _STOP_EVENT = event


_STOP_EVENT: Any = None
_STOP_REASON: Any = None
WORKER_REASONS = ("user", "hangup", "terminated")  # core/run.py STOP_REASONS, as the workers are told them


def _worker_run(name: str, cfg: LabConfig, run_dir: str) -> dict[str, Any] | None:
    event = _STOP_EVENT
    if event is not None and event.is_set():
        return None
    control = Control()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.1):
            if event is not None and event.is_set():
                code = _STOP_REASON.value if _STOP_REASON is not None else 0
                control.stop(WORKER_REASONS[code] if 0 <= code < len(WORKER_REASONS) else "user")
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
def _stop_on_signals(state: _SweepState) -> Iterator[None]:
    """First Ctrl-C: stop the runs under way (they end as `stopped`) and start no more. Second: abandon.
    SIGTERM and a hang-up (SIGHUP) stop the sweep like the first Ctrl-C, with their own reason in each stopped
    run's summary.json; after a hang-up what the sweep still prints goes to /dev/null."""
    terminal = terminal_fds()

    def stop(reason: str = "user") -> None:
        if state.reason is not None and not state.stopping and reason in WORKER_REASONS:
            state.reason.value = WORKER_REASONS.index(reason)  # before the event: the workers read it then
        state.stopping = True
        if state.control is not None:
            state.control.stop(reason)
        if state.event is not None:
            state.event.set()

    def on_term(signum, frame):
        if signum == SIGHUP:
            detach_from_terminal(terminal)
        stop(stop_reason(signum))

    def on_int(signum, frame):
        if state.stopping:
            raise KeyboardInterrupt
        print(
            "\n" + _("stopping the sweep (Ctrl-C again to abandon the runs under way)..."), file=sys.stderr, flush=True
        )
        stop()

    with handlers_installed({signal.SIGINT: on_int, **dict.fromkeys(hangup_signals(), on_term)}):
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
        _(r.status),
        f"{r.time_s:.1f}s",
    ]


RESULT_HEADER = (N_("grad L1/Ln @0"), N_("final loss"), N_("val acc"), N_("status"), N_("time"))


def table_header(keys: list[str]) -> list[str]:
    return [*short_names(keys), *RESULT_HEADER]


def print_table(keys: list[str], runs: list[SweepRun], stream: Any = None) -> None:
    """A rich table on a terminal, plain aligned text otherwise (logs, pipes, CI)."""
    stream = stream or sys.stdout
    header = table_header(keys)
    rows = [_cells(r) for r in runs]
    n_keys = len(keys)
    shown = [*header[:n_keys], *(_(h) for h in header[n_keys:])]  # the keys as typed, the rest translated
    if getattr(stream, "isatty", lambda: False)():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=_("sweep: gradient ratio at init (first/last hidden layer) and outcome"))
        for i, h in enumerate(header):
            table.add_column(shown[i], justify="left" if i < n_keys or h == "status" else "right")
        for r, cells in zip(runs, rows):
            style = {"failed": "red", "diverged": "yellow", "stopped": "dim"}.get(r.status)
            table.add_row(*cells, style=style)
        Console(file=stream).print(table)
        return
    widths = [max(len(h), *(len(c[i]) for c in rows)) if rows else len(h) for i, h in enumerate(shown)]

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if (i < n_keys or header[i] == "status") else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    print(line(shown), file=stream)
    print("  ".join("-" * w for w in widths), file=stream)
    for cells in rows:
        print(line(cells), file=stream)
    stream.flush()
