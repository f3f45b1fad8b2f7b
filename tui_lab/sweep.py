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
what ran is printed. A second Ctrl-C interrupts the runs under way mid-step (reason `interrupted`). SIGTERM
and a hang-up (SIGHUP: the terminal or the SSH connection went away) stop it like the first Ctrl-C, each stopped
run's summary.json saying why. The sweep knows which run each worker has: a worker that dies, or that has to be
killed after the grace (STOP_GRACE_S), still leaves its run directory finished (`failed` or `stopped`). Workers
die with the sweep whatever kills it, SIGKILL included (`_Pool`), and finish their runs as `stopped`.

With `devices` (`--devices cuda:0,cuda:1`) the pool has a worker per device, each bound to its device: one run
per device at a time, each run going to the next free one, its config.toml naming the device it trained on. With
`ray` each configuration is a Ray task instead (sweep_ray.py); the table, sweep.csv and run directories are the
same whichever runs them.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
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
from tui_lab.core.config import LabConfig, parse_key_value, value_problem, with_overrides
from tui_lab.core.diagnosis import grad_ratio
from tui_lab.core.errors import UserError, one_line
from tui_lab.core.i18n import _, ngettext
from tui_lab.core.run import ENDED_OK, Control, Snapshot
from tui_lab.core.runlog import atomic_write, default_run_dir, prepare_run_dir

# The sweep directory's files and columns, shared with the reader the TUI uses (core/sweepdir.py).
from tui_lab.core.sweepdir import CSV_NAME, RESULT_COLUMNS, RESULT_HEADER, short_names, write_plan
from tui_lab.signals import (
    SIGHUP,
    detach_from_terminal,
    die_with_parent,
    finish_abandoned_run,
    handlers_installed,
    hangup_signals,
    stop_reason,
    terminal_fds,
    watch_parent,
)

Grid = list[tuple[str, list[str]]]  # (dotted key, the values to try, as typed), first key slowest
MAX_CONFIGS = 10_000  # configurations in one sweep: a day of short runs; 10^6 would take 1.4 GB to plan alone


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
    grid: Grid,
    jobs: int = 1,
    out: Path | None = None,
    devices: list[str] | None = None,
    ray: str | None = None,
) -> int:
    """Run the grid over `cfg`; 0 when every run ended (completed, diverged or stopped), 1 if any failed.
    Every configuration is validated before anything is loaded or written. `devices` (from `parse_devices`):
    one worker per device, each run going to the next free one. `ray`: a Ray address, or `local` for an
    instance on this machine with `jobs` CPUs: each run is a Ray task (tui_lab/sweep_ray.py)."""
    runs = plan(grid)
    configs = [with_overrides(cfg, r.overrides, source="--grid " + " ".join(r.overrides)) for r in runs]
    session = None
    if devices:
        check_device_list(devices, grid)
    elif ray is not None:
        from tui_lab.sweep_ray import RaySession

        session = RaySession.open(ray, jobs, grid, configs)  # bad address, no GPU there: refused before writing
    else:
        check_devices(grid, configs)  # a missing GPU is bad input, before anything is written
    try:
        out_dir = prepare_run_dir(out if out is not None else default_run_dir(f"sweep-{name}"), force=None)
    except BaseException:
        if session is not None:
            session.close()
        raise

    jobs = max(1, min(int(jobs), len(runs)))
    if devices:
        devices = devices[: len(runs)]  # a worker per device, as many as there are runs
        jobs = len(devices)
    keys = [key for key, _ in grid]
    if session is not None:
        how = session.describe()
    elif devices:
        how = _("on {devices}").format(devices=", ".join(devices))
    else:
        how = ngettext("{jobs} job", "{jobs} jobs", jobs).format(jobs=jobs)
    head = _("{count} configurations x {steps} steps, {jobs}").format(count=len(runs), steps=cfg.train.steps, jobs=how)
    print(f"tui-lab sweep {name}: {head} -> {out_dir}", flush=True)

    # The plan lets `tui-lab show` list every configuration (queued ones too) from the sweep's first second.
    planned = [(r.label, r.values, c.train.steps) for r, c in zip(runs, configs, strict=True)]
    write_plan(out_dir, keys, planned)
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
        if session is not None:
            session.run(name, configs, runs, out_dir, state, finished)
        elif jobs == 1 and not devices:
            _run_serial(name, configs, runs, out_dir, state, finished)
        else:
            _run_parallel(name, configs, runs, out_dir, jobs, state, finished, devices)

    ran = [r for r in runs if r.status]
    write_csv(out_dir / CSV_NAME, keys, runs)
    write_plan(out_dir, keys, planned, done=True)  # what never started now reads `not run`, not queued
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
    count = 1
    for item in items:
        key, text = parse_key_value(item, "--grid", "model.activation=sigmoid,relu", shape="KEY=V1,V2,...")
        count *= text.count(",") + 1
        if count > MAX_CONFIGS:  # counted before a single value list or configuration is made
            raise UserError(_too_many(items))
        problem = value_problem(text)
        if problem:
            raise UserError(f"--grid {key}: {problem}")
        values = [v.strip() for v in text.split(",")]
        if any(not v for v in values):
            raise UserError(_("--grid {item}: empty value; separate values with single commas").format(item=repr(item)))
        if len(set(values)) != len(values):
            raise UserError(_("--grid {item}: a value is listed twice").format(item=repr(item)))
        if key in (k for k, _values in grid):
            raise UserError(_("--grid {key}: given more than once; list all its values in one --grid").format(key=key))
        grid.append((key, values))
    return grid


def _too_many(items: list[str]) -> str:
    counts = [item.partition("=")[2].count(",") + 1 for item in items]
    total = 1
    for n in counts:
        total *= n
    message = _("--grid: {total} configurations ({product}); a sweep runs at most {limit}; give fewer values")
    return message.format(total=f"{total:,}", product=" x ".join(map(str, counts)), limit=f"{MAX_CONFIGS:,}")


def plan(grid: Grid) -> list[SweepRun]:
    """The cartesian product, first key slowest, each with a unique filesystem-safe directory label."""
    if math.prod(len(values) for _key, values in grid) > MAX_CONFIGS:
        raise UserError(_too_many([f"{key}={','.join(values)}" for key, values in grid]))
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


def safe_name(text: str) -> str:
    """A directory name: letters, digits and . _ - = , + only; at most 120 characters."""
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", text).strip("._") or "run"
    return safe[:120]


# ---------------------------------------------------------------------------------------------------------
# Running: in this process (jobs = 1) or in worker processes.


class _SweepState:
    """Shared by the signal handlers and the loops that run the sweep."""

    def __init__(self) -> None:
        self.done = 0
        self.stopping = False  # a first Ctrl-C, SIGTERM or SIGHUP: no run starts any more
        self.reason = "user"  # ... and why (core/run.py STOP_REASONS)
        self.abandon = False  # a second Ctrl-C: the runs under way are interrupted, not waited for
        self.control: Control | None = None  # the serial run's Control
        self.training = False  # the serial run is in run_one: a second Ctrl-C may interrupt it
        self.raised = False  # ... and has (once)
        self.flag: Any = None  # the workers' stop flag, shared with them: 0, else 1 + an index into WORKER_REASONS


def _run_serial(name, configs, runs, out_dir, state, finished) -> None:
    import tui_lab.core.trainer  # noqa: F401 - torch, before the first run: a stop while it loads starts none

    for run, cfg in zip(runs, configs):
        if state.stopping:
            break
        control = state.control = Control()
        if state.stopping:  # the signal came between the look above and the Control: it stops this one too
            control.stop(state.reason)
        run_dir = str(out_dir / run.label)
        state.training = True
        try:
            row = run_one(name, cfg, run_dir, control=control)
        except KeyboardInterrupt:  # a second Ctrl-C that landed outside the trainer's own guard
            row = _abandoned_row(run_dir, "interrupted")
        finally:
            state.training = False
            state.control = None
        _apply(run, row)
        finished(run)


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


def parse_devices(text: str) -> list[str]:
    """`--devices cuda:0,cuda:1` -> ['cuda:0', 'cuda:1'] ('cuda' is 'cuda:0'). A GPU or MPS takes one run at a
    time, so it is listed once; `cpu` may be repeated, a worker per entry (J CPU workers, as --jobs J)."""
    items = [item.strip().lower() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        message = _("--devices {value}: empty entry; give devices separated by commas, e.g. cuda:0,cuda:1")
        raise UserError(message.format(value=repr(text)))
    devices: list[str] = []
    for item in items:
        device = "cuda:0" if item == "cuda" else item
        if not (device in ("cpu", "mps") or (device.startswith("cuda:") and device[5:].isdigit())):
            message = _("--devices {device}: not a device; each entry is cpu, cuda:N or mps")
            raise UserError(message.format(device=item))
        if device != "cpu" and device in devices:
            message = _("--devices {devices}: {device} is listed twice; a GPU takes one run at a time (cpu may repeat)")
            raise UserError(message.format(devices=text, device=device))
        devices.append(device)
    return devices


def devices_conflict(where: str) -> str:
    return _("--devices and {where}: --devices picks each run's device; give one of them").format(where=where)


def check_device_list(devices: list[str], grid: Grid) -> None:
    """--devices decides where each run trains: a grid over train.device would contradict it, and every device
    listed must be here (core/devices.problem, as for --device)."""
    from tui_lab.core.devices import problem

    if any(key == "train.device" for key, _values in grid):
        raise UserError(devices_conflict("--grid train.device=..."))
    for device in dict.fromkeys(devices):
        why = problem(device)
        if why is not None:
            raise UserError(f"--devices {device}: {why}")


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


STOP_GRACE_S = 5.0  # after a stop, how long the runs under way get to end at their next step
INTERRUPT_GRACE_S = 2.0  # after an interrupt (a second Ctrl-C, or the grace above spent), before a kill
INTERRUPT_SIGNAL: int | None = getattr(signal, "SIGUSR1", None)  # the sweep tells a worker: interrupt the step


class _Worker:
    """One worker process, as the sweep sees it: its pipe, and the run it was given (an index) if any."""

    def __init__(self, ctx: Any, pool: _Pool, device: str | None = None):
        self.device = device  # --devices: every run this worker takes trains there
        parent_end, child_end = ctx.Pipe()
        self.conn = parent_end
        self.process = ctx.Process(
            target=_worker_main,
            args=(child_end, pool.alive_r, pool.flag, pool.lang, os.getpid()),
            name="tui-lab-sweep-worker",
            daemon=True,
        )
        self.process.start()
        child_end.close()  # the worker's end: its EOF tells us the worker is gone
        self.task: int | None = None
        self.interrupted_at: float | None = None


class _Pool:
    """J long-lived worker processes, each taking run after run over its own pipe. The sweep knows which run
    each one has, so a worker that dies or has to be killed still leaves its run directory finished
    (`finish_abandoned_run`), and a stop ends them all within seconds. Workers die with this process, whatever
    kills it: the fork server and each worker ask the kernel for a signal when their parent ends (Linux
    PR_SET_PDEATHSIG), and each worker also watches a pipe only this process holds open (any platform)."""

    def __init__(self, ctx: Any, jobs: int, state: _SweepState, devices: list[str] | None = None):
        from tui_lab.core.i18n import language

        self.ctx, self.state, self.lang = ctx, state, language()
        # A byte of shared memory, not an Event: a multiprocessing Condition waits for every sleeper to wake, and
        # one killed while it slept would hang the sweep's stop for good.
        self.flag = state.flag = ctx.RawValue("b", 0)
        self.alive_r, self.alive_w = ctx.Pipe(duplex=False)  # alive_w stays here: EOF in a worker = we are gone
        if state.stopping:  # a signal came before there was a flag to set
            self._tell_stop()
        self.workers = [_Worker(ctx, self, device) for device in (devices or [None] * jobs)]

    def _tell_stop(self) -> None:
        reason = self.state.reason
        self.flag.value = 1 + (WORKER_REASONS.index(reason) if reason in WORKER_REASONS else 0)

    def replace(self, worker: _Worker) -> None:
        self.workers[self.workers.index(worker)] = _Worker(self.ctx, self, worker.device)  # on the same device

    def close(self) -> None:
        """No more runs: each worker is told to leave, and any still there after a moment is killed."""
        for w in self.workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + INTERRUPT_GRACE_S
        for w in self.workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(1.0)
            w.conn.close()
        self.alive_w.close()
        self.alive_r.close()


def _run_parallel(name, configs, runs, out_dir, jobs, state, finished, devices=None) -> None:
    from multiprocessing.connection import wait

    if state.stopping:  # stopped before a worker started: none will
        return
    pool = _Pool(worker_context(), jobs, state, devices)
    queue = list(range(len(runs)))[::-1]  # popped from the end: first run first
    stop_seen: float | None = None
    try:
        while True:
            if state.stopping and stop_seen is None:
                stop_seen = time.monotonic()
                pool._tell_stop()
            for w in pool.workers:
                if w.task is None and queue and not state.stopping:
                    index = queue.pop()
                    try:
                        w.conn.send((name, on_device(configs[index], w.device), str(out_dir / runs[index].label)))
                        w.task = index
                    except (OSError, ValueError):  # it died idle: another takes the run
                        queue.append(index)
                        pool.replace(w)
            busy = [w for w in pool.workers if w.task is not None]
            if not busy and (state.stopping or not queue):
                return
            ready = set(wait([x for w in busy for x in (w.conn, w.process.sentinel)], timeout=0.2))
            for w in busy:
                index = w.task
                assert index is not None
                run_dir = str(out_dir / runs[index].label)
                if w.conn not in ready and w.process.sentinel not in ready:
                    continue
                try:
                    row = w.conn.recv() if w.conn in ready else _DEAD
                except (EOFError, OSError):
                    row = _DEAD
                w.task = None
                if row is _DEAD:  # it died under the run: the directory is finished here
                    row = _dead_worker_row(w, run_dir, state)
                    if not state.stopping:
                        pool.replace(w)
                        if row is None:  # it never began that run: another worker takes it
                            queue.append(index)
                if row is not None:  # None: it saw the stop before starting the run
                    _apply(runs[index], row)
                    finished(runs[index])
            if stop_seen is not None:
                _hurry(busy, stop_seen, state)
    finally:
        pool.close()


def on_device(cfg: LabConfig, device: str | None) -> LabConfig:
    """`cfg` trained on `device` (None: where it says): its config.toml then names the device the run used."""
    if device is None or cfg.train.device == device:
        return cfg
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": device})})


def _hurry(busy: list[_Worker], stop_seen: float, state: _SweepState) -> None:
    """Runs still going after a stop: interrupted mid-step after a second Ctrl-C or once the grace is spent,
    killed if even that does not end them (their directories are then finished by the sweep)."""
    now = time.monotonic()
    for w in busy:
        if w.task is None or not w.process.is_alive():
            continue
        if w.interrupted_at is None and (state.abandon or now - stop_seen > STOP_GRACE_S):
            w.interrupted_at = now
            if INTERRUPT_SIGNAL is not None and w.process.pid is not None:
                try:
                    os.kill(w.process.pid, INTERRUPT_SIGNAL)
                except OSError:
                    pass
        elif w.interrupted_at is not None and (now - w.interrupted_at > INTERRUPT_GRACE_S or INTERRUPT_SIGNAL is None):
            w.process.kill()


_DEAD = object()  # what a worker that died sent


def _dead_worker_row(worker: _Worker, run_dir: str, state: _SweepState) -> dict[str, Any] | None:
    """The row of a run whose worker ended under it (None if it never began it); its run directory finished as
    `stopped` (the sweep was stopping) or `failed` (the worker died by itself: killed for memory, say)."""
    worker.process.join(1.0)
    if not Path(run_dir).is_dir():
        return None
    if state.stopping:
        return _abandoned_row(run_dir, "interrupted" if worker.interrupted_at is not None else state.reason)
    code = worker.process.exitcode
    if code is not None and code < 0:
        how = _("its worker process was killed (signal {signal})").format(signal=-code)
    else:
        how = _("its worker process ended (exit status {code})").format(code=code)
    finish_abandoned_run(run_dir, status="failed", message=how)
    return _abandoned_row(run_dir, "user")


def _abandoned_row(run_dir: str, reason: str) -> dict[str, Any]:
    """A run whose trainer was cut short where it could not finish its directory: finished here (`stopped`,
    with `reason`, unless it had ended), and its row read back from what it wrote."""
    from tui_lab.core.runlog import read_summary

    finish_abandoned_run(run_dir, reason=reason)
    summary = read_summary(run_dir)
    summary = summary if isinstance(summary, dict) else {}
    steps, status = summary.get("steps"), summary.get("status")
    return {
        "status": status if isinstance(status, str) and status in (*ENDED_OK, "failed") else "stopped",
        "steps": steps if isinstance(steps, int) else 0,
        "message": summary.get("message") if isinstance(summary.get("message"), str) else "",
        "ratio": None,
        "final_loss": None,
        "final_val_acc": None,
        "time_s": 0.0,
        "run_dir": run_dir,
    }


WORKER_REASONS = ("user", "hangup", "terminated")  # core/run.py STOP_REASONS, as the workers are told them


def _worker_main(conn, alive, flag, lang: str, sweep_pid: int) -> None:
    """A worker: run after run from `conn` until told to leave (None) or the sweep is gone. Ctrl-C and a hang-up
    are the sweep's to handle (it tells the workers through `flag`, with the reason); SIGTERM (from a
    kill, or from the kernel when its parent died) stops the run under way and ends the worker after it; the
    sweep's INTERRUPT_SIGNAL cuts the step under way. Whatever happens, the run directory is finished."""
    for sig in (signal.SIGINT, SIGHUP):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
    die_with_parent(signal.SIGTERM)  # the fork server (or the sweep, spawned): it dies with the sweep
    from tui_lab.core.i18n import set_language

    set_language(lang)
    os.environ["TUI_LAB_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    worker = _WorkerSide(flag)
    signal.signal(signal.SIGTERM, worker.on_term)
    if INTERRUPT_SIGNAL is not None:
        signal.signal(INTERRUPT_SIGNAL, worker.on_interrupt)
    watch_parent(alive, worker.parent_gone, parent_pid=sweep_pid)
    threading.Thread(target=worker.watch_flag, name="tui-lab-stop-watch", daemon=True).start()
    while not worker.leaving:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        row = worker.run(*task)
        try:
            conn.send(row)
        except (OSError, ValueError):
            return


def _bind_gpu(device: str) -> None:
    """A worker training on cuda:N makes it its current GPU: what torch allocates without naming a device (its
    CUDA context first of all) then lands there, not on cuda:0 beside another worker's runs."""
    if device.startswith("cuda:"):
        import torch

        try:
            torch.cuda.set_device(int(device[5:]))
        except (RuntimeError, AssertionError, ValueError):
            pass  # the trainer says what is wrong with the device, in the run's summary


class _WorkerSide:
    """A worker's own state, shared by its signal handlers, its watcher threads and its loop."""

    def __init__(self, flag: Any):
        self.flag = flag
        self.control: Control | None = None
        self.leaving = False  # told to end (SIGTERM, the sweep gone): no run after this one
        self.idle = True
        self.terms = 0
        self._raising = self._raised = False

    def reason(self) -> str:
        code = self.flag.value - 1
        return WORKER_REASONS[code] if 0 <= code < len(WORKER_REASONS) else "user"

    def run(self, name: str, cfg: LabConfig, run_dir: str) -> dict[str, Any] | None:
        self.idle = False
        try:
            if self.leaving or self.flag.value:
                return None  # stopped before it began: not run
            self.control = Control()
            if self.leaving or self.flag.value:  # ... just before: the watchers had no Control to stop
                return None
            _bind_gpu(cfg.train.device)
            self._raising = True
            try:
                return run_one(name, cfg, run_dir, control=self.control)
            except KeyboardInterrupt:
                return _abandoned_row(run_dir, "interrupted")
            finally:
                self._raising = False
        finally:
            self.control = None
            self.idle = True

    def stop(self, reason: str) -> None:
        control = self.control
        if control is not None:
            control.stop(reason)

    def on_term(self, signum, frame) -> None:
        self.terms += 1
        self.leaving = True
        if self.idle:
            raise SystemExit(0)  # nothing under way: leave now
        self.stop("terminated")
        if self.terms > 1:
            self.on_interrupt(signum, frame)

    def on_interrupt(self, signum, frame) -> None:
        if self._raising and not self._raised:
            self._raised = True  # once: the interrupted run still has its directory to finish
            raise KeyboardInterrupt

    def parent_gone(self) -> None:
        self.leaving = True
        self.stop("terminated")

    def watch_flag(self) -> None:
        while True:
            if self.flag.value:
                self.stop(self.reason())
            time.sleep(0.1)


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
    return ended_row("failed", str(exc) if isinstance(exc, UserError) else one_line(exc), run_dir)


def ended_row(status: str, message: str, run_dir: str) -> dict[str, Any]:
    """The row of a run that never trained a step (refused, failed at set-up, stopped before it began)."""
    return {
        "status": status,
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
    """First Ctrl-C, SIGTERM or SIGHUP: stop the runs under way (they end as `stopped`, with the signal's reason
    in their summary.json) and start no more. A second Ctrl-C: interrupt the runs under way mid-step (reason
    `interrupted`). Nothing here raises in the sweep itself, except into a serial run's trainer (once): what ran
    is always written to sweep.csv and tabled. After a hang-up what the sweep still prints goes to /dev/null."""
    terminal = terminal_fds()

    def stop(reason: str) -> None:
        if not state.stopping:
            state.reason, state.stopping = reason, True
        if state.control is not None:
            state.control.stop(state.reason)

    def on_term(signum, frame):
        if signum == SIGHUP:
            detach_from_terminal(terminal)
        stop(stop_reason(signum))

    def on_int(signum, frame):
        if state.stopping:
            state.abandon = True
            if state.training and not state.raised:
                state.raised = True  # once: the interrupted run still has its directory to finish
                raise KeyboardInterrupt
            return
        message = "\n" + _("stopping the sweep (Ctrl-C again to abandon the runs under way)...")
        try:
            os.write(2, message.encode() + b"\n")  # not print(): the sweep may be printing when it comes
        except OSError:
            pass
        stop("user")

    with handlers_installed({signal.SIGINT: on_int, **dict.fromkeys(hangup_signals(), on_term)}):
        yield


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
        fmt.sci(r.ratio, fmt.MISSING),
        fmt.num(r.final_loss),
        fmt.num(r.final_val_acc, 3),
        _(r.status),
        f"{r.time_s:.1f}s",
    ]


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
