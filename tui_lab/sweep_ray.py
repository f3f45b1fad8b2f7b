"""`tui-lab sweep ... --ray [ADDRESS]`: each configuration of a sweep as a Ray task (the optional `ray` extra).

Without ADDRESS (`local`) a Ray instance is started on this machine with `--jobs` CPUs; with one (`HOST:PORT` of a
cluster's head, or `auto`) the driver joins that cluster and the cluster's resources decide how many runs go at
once. A run asks Ray for one GPU when it trains on CUDA (Ray picks which, and hides the others from it), one CPU
otherwise. The task trains with the local backend's own `run_one`, into a temporary directory on the worker, and
returns the run directory's files to the driver, which writes them under --out: no storage needs to be shared,
and the sweep's directory, sweep.csv and table are the local backend's (sweep.py does all three). A run's
directory therefore appears when the run ends, not while it trains.

A task that raises, or whose worker dies (the out-of-memory killer, a node lost), is that run `failed`, with a
run directory that says why; the others go on (a task is never retried: a run is not silently done twice). The
worker checks the memory a run needs against its own machine (core/budget.py), since on a cluster the driver
cannot know it. Ctrl-C, SIGTERM or a hang-up cancel the tasks not started and ask the ones under way to stop at
their next step (Ray's cancel is a SIGINT in the worker, taken here as a stop): they return `stopped` and are
written like the others. Runs still going after STOP_GRACE_S are interrupted mid-step, and killed after
INTERRUPT_GRACE_S more (`stopped`, `interrupted`). A Ray instance the sweep started is shut down at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from tui_lab.core.config import LabConfig
from tui_lab.core.errors import UserError, one_line
from tui_lab.core.i18n import N_, _
from tui_lab.sweep import (
    INTERRUPT_GRACE_S,
    STOP_GRACE_S,
    Grid,
    SweepRun,
    _abandoned_row,
    _apply,
    _failed_row,
    _SweepState,
    check_devices,
    ended_row,
    on_device,
    run_one,
)

LOCAL = "local"  # --ray without an address: a new Ray instance on this machine (as ray.init(address="local"))
MISSING = N_("--ray needs Ray: pip install 'tui-lab[ray]'")
_ADDRESS = re.compile(r"^(auto|local|[A-Za-z0-9][A-Za-z0-9.-]*:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5})$")


def require_ray() -> Any:
    """The ray module, or the one line that says how to get it."""
    try:
        import ray
    except ImportError:
        raise UserError(_(MISSING)) from None
    return ray


def check_address(address: str) -> None:
    """A Ray address is HOST:PORT (the head node's GCS port, 6379 by default), `auto` or `local`: a preset name
    after --ray (`--ray deep-sigmoid`) is caught here, not after a connection times out."""
    if not _ADDRESS.match(address):
        message = _("--ray {address}: not a Ray address; give HOST:PORT (the head node, e.g. 10.0.0.1:6379) or auto")
        raise UserError(message.format(address=address))


CONNECT_TIMEOUT_S = 5.0


def _check_reachable(address: str) -> None:
    """Something answers at HOST:PORT: ray.init would otherwise retry an address where nothing listens for ever."""
    host, _sep, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
        message = _("--ray {address}: no Ray cluster answers there ({error}); start one with `ray start --head`")
        raise UserError(message.format(address=address, error=why)) from None


def _wants_gpu(cfg: LabConfig) -> bool:
    return cfg.train.device.startswith("cuda")


class RaySession:
    """The driver's side: Ray started or joined, the tasks submitted, waited for and cancelled, and the run
    directories written from what the tasks return."""

    def __init__(self, ray: Any, address: str, started: bool):
        self.ray, self.address, self.started = ray, address, started
        self.gpus = 0.0  # in the cluster, when it was joined

    @classmethod
    def open(cls, address: str, jobs: int, grid: Grid, configs: list[LabConfig]) -> RaySession:
        """Ray started (`local`) or joined; every configuration checked against what the cluster has. Refused
        with a UserError, before anything is written, when it cannot be used."""
        ray = require_ray()
        check_address(address)
        for device in dict.fromkeys(c.train.device for c in configs):
            if device.startswith("cuda:"):  # Ray hides every GPU but the one it gives a task: it is always cuda:0
                message = _('--ray: train.device = "{device}": Ray gives each run a GPU of its choosing; use "cuda"')
                raise UserError(message.format(device=device))
        if address == LOCAL:
            check_devices(grid, configs)  # this machine trains: a GPU it lacks is refused as without Ray
        elif jobs > 1:
            message = _("--jobs with --ray {address}: the cluster's resources decide how many runs go at once")
            raise UserError(message.format(address=address))
        started = not ray.is_initialized()
        if started and address not in (LOCAL, "auto"):
            _check_reachable(address)
        if started:
            options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
            if address == LOCAL:
                options.update(address=LOCAL, num_cpus=max(1, jobs), include_dashboard=False)
            else:
                options.update(address=address)
            sigterm = signal.getsignal(signal.SIGTERM)
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                ray.shutdown()
                message = _("--ray {address}: could not start or reach Ray there ({error})")
                raise UserError(message.format(address=address, error=one_line(exc))) from None
            finally:
                with contextlib.suppress(ValueError, TypeError):  # ray.init put in a SIGTERM handler of its own
                    signal.signal(signal.SIGTERM, sigterm)
        session = cls(ray, address, started)
        try:
            gpus = session.gpus = session.resources().get("GPU", 0)
            needs = next((c.train.device for c in configs if _wants_gpu(c)), None)
            if needs is not None and gpus < 1:
                message = _('--ray {address}: train.device = "{device}" needs a GPU; the Ray cluster has {resources}')
                raise UserError(message.format(address=address, device=needs, resources=session.resource_words()))
        except BaseException:
            session.close()
            raise
        return session

    def placed(self, cfg: LabConfig) -> LabConfig:
        """`auto` made explicit: CUDA when the cluster has a GPU (as `auto` picks CUDA on one machine), else the
        CPU. Ray hides no GPU from a task that asked for none, so `auto` must not be left to the worker."""
        if cfg.train.device != "auto":
            return cfg
        return on_device(cfg, "cuda" if self.gpus >= 1 else "cpu")

    def resources(self) -> dict[str, float]:
        return dict(self.ray.cluster_resources())

    def resource_words(self) -> str:
        have = self.resources()
        return ", ".join(f"{int(have.get(kind, 0))} {kind}" for kind in ("CPU", "GPU"))

    def describe(self) -> str:
        if self.address == LOCAL:
            return _("a local Ray instance ({resources})").format(resources=self.resource_words())
        return _("the Ray cluster at {address} ({resources})").format(
            address=self.address, resources=self.resource_words()
        )

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()

    # -----------------------------------------------------------------------------------------------------

    def run(self, name, configs: list[LabConfig], runs: list[SweepRun], out_dir: Path, state: _SweepState, finished):
        """Every run as a task, in grid order; each row lands as its task ends (sweep.py's `finished`)."""
        from tui_lab.core.i18n import language

        ray = self.ray
        try:
            if state.stopping:
                return
            task = ray.remote(_task)
            lang = language()
            configs = [self.placed(cfg) for cfg in configs]
            pending: dict[Any, int] = {}
            for index, (run, cfg) in enumerate(zip(runs, configs)):
                resources = {"num_gpus": 1} if _wants_gpu(cfg) else {"num_cpus": 1}
                options = task.options(name=f"tui-lab:{run.label}", max_retries=0, **resources)
                pending[options.remote(name, cfg, run.label, lang)] = index
            self._wait(pending, configs, runs, out_dir, state, finished, name)
        finally:
            self.close()

    def _wait(self, pending, configs, runs, out_dir, state, finished, name) -> None:
        ray = self.ray
        stop_seen: float | None = None
        interrupted: float | None = None
        killed: set[Any] = set()
        while pending:
            now = time.monotonic()
            if state.stopping and stop_seen is None:
                stop_seen = now
                self._cancel(pending)  # the ones not started are dropped; the others stop at their next step
            if stop_seen is not None and interrupted is None and (state.abandon or now - stop_seen > STOP_GRACE_S):
                interrupted = now
                self._cancel(pending)  # a second SIGINT in the worker: the step under way is cut
            elif interrupted is not None and not killed and now - interrupted > INTERRUPT_GRACE_S:
                killed = set(pending)
                self._cancel(pending, force=True)
            ready, _waiting = ray.wait(list(pending), num_returns=1, timeout=0.2)
            for ref in ready:
                index = pending.pop(ref)
                row = self._outcome(ref, ref in killed, name, configs[index], out_dir / runs[index].label, state)
                if row is not None:  # None: never began
                    _apply(runs[index], row)
                    finished(runs[index])

    def _cancel(self, pending: dict[Any, int], force: bool = False) -> None:
        for ref in list(pending):
            try:
                self.ray.cancel(ref, force=force)
            except Exception:  # noqa: BLE001 - already ended: its outcome is read like any other
                pass

    def _outcome(self, ref, killed: bool, name: str, cfg: LabConfig, run_dir: Path, state: _SweepState):
        """The row of one ended task, its run directory written under --out."""
        ray = self.ray
        from ray import exceptions as rex

        try:
            records = ray.get(ref)
        except rex.TaskCancelledError:
            if not killed:
                return None  # cancelled before it began
            return write_ended_run(run_dir, name, cfg, "stopped", reason="interrupted")
        except rex.RayTaskError as exc:  # the task raised: the error it raised, in one line
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
            return write_ended_run(run_dir, name, cfg, "failed", message=one_line(cause))
        except rex.RayError as exc:  # its worker (or node) died under it
            if killed or state.stopping:
                return write_ended_run(run_dir, name, cfg, "stopped", reason="interrupted" if killed else state.reason)
            message = _("its Ray worker died: {error}").format(error=one_line(exc))
            return write_ended_run(run_dir, name, cfg, "failed", message=message)
        if records is None:
            return None
        try:
            return land(run_dir, records, state)
        except (OSError, UserError, ValueError, zlib.error) as exc:
            return _failed_row(exc if isinstance(exc, UserError) else UserError(one_line(exc)), str(run_dir))


# ---------------------------------------------------------------------------------------------------------
# The worker's side.


def _task(name: str, cfg: LabConfig, label: str, lang: str) -> dict[str, Any] | None:
    """One run on a Ray worker: trained by run_one into a temporary directory; the row and the directory's files
    (compressed) go back to the driver. None when it was cancelled before it began. Ray cancels a running task
    with a SIGINT: the first stops the run at its next step (`stopped`), a second cuts the step under way."""
    from tui_lab.core.budget import check
    from tui_lab.core.i18n import set_language
    from tui_lab.core.run import Control

    control = Control()
    hits = 0
    cuttable = False

    def on_sigint(signum, frame) -> None:
        nonlocal hits
        hits += 1
        control.stop("user")
        if hits == 2 and cuttable:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        set_language(lang)
        os.environ["TUI_LAB_THREADS"] = "1"  # one CPU per task, as Ray reserved it
        _remove_orphans()
        with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
            run_dir = os.path.join(tmp, label)
            why = check(cfg)  # this machine's memory, which the driver could not see
            if control.stopped:
                return None
            if why is not None:
                row = write_ended_run(Path(run_dir), name, cfg, "failed", message=why)
            else:
                cuttable = True
                try:
                    row = run_one(name, cfg, run_dir, control=control)
                except KeyboardInterrupt:
                    row = _abandoned_row(run_dir, "interrupted")
                finally:
                    cuttable = False
            return {"row": row, "files": _collect(Path(run_dir)), "node": socket.gethostname(), "gpus": _gpu_ids()}
    finally:
        signal.signal(signal.SIGINT, previous)


TEMP_PREFIX = "tui-lab-ray-"  # + the worker's pid: a directory whose process is gone was left by a killed worker


def _remove_orphans() -> None:
    """The temporary run directories of workers killed under a run (nothing else removes them)."""
    for path in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid = path.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass  # alive, someone else's


def _gpu_ids() -> list[Any]:
    try:
        import ray

        return list(ray.get_gpu_ids())
    except Exception:  # noqa: BLE001 - only a note in summary.json
        return []


def _collect(run_dir: Path) -> list[tuple[str, bytes]]:
    """The run directory's files (not its lock), each compressed: metrics lines shrink about tenfold."""
    from tui_lab.core.runlog import LOCK_NAME

    files = []
    if run_dir.is_dir():
        for path in sorted(run_dir.iterdir()):
            if path.name != LOCK_NAME and path.is_file() and not path.is_symlink():
                files.append((path.name, zlib.compress(path.read_bytes(), 1)))
    return files


# ---------------------------------------------------------------------------------------------------------
# The driver writes the run directories.


def land(run_dir: Path, records: dict[str, Any], state: _SweepState) -> dict[str, Any]:
    """A finished task's run directory written under the sweep's --out, summary.json last (a reader that sees it
    sees the whole run), with where it ran (`ray`: the node and Ray's GPU ids). A run stopped by the sweep's
    SIGTERM or hang-up says so (the worker only saw Ray's SIGINT)."""
    from tui_lab.core.run import STOP_REASONS
    from tui_lab.core.runlog import atomic_write, strict

    row = dict(records["row"])
    files = {name: zlib.decompress(data) for name, data in records["files"]}
    os.mkdir(run_dir)  # the sweep's own fresh directory: nothing there to follow or replace
    for name, data in files.items():
        if name != "summary.json" and "/" not in name and name not in (".", ".."):
            with open(run_dir / name, "xb") as f:
                f.write(data)
    summary = json.loads(files["summary.json"]) if "summary.json" in files else None
    if isinstance(summary, dict):
        summary["ray"] = {"node": records.get("node"), "gpu_ids": records.get("gpus") or []}
        if summary.get("status") == "stopped" and summary.get("reason") == "user" and state.reason != "user":
            summary.update(reason=state.reason, message=_(STOP_REASONS[state.reason]))
        atomic_write(run_dir / "summary.json", json.dumps(strict(summary), allow_nan=False, indent=2) + "\n")
    row["run_dir"] = str(run_dir)
    return row


def write_ended_run(
    run_dir: Path, name: str, cfg: LabConfig, status: str, message: str = "", reason: str = ""
) -> dict[str, Any]:
    """A run that never trained (refused on its worker, its task lost): a run directory all the same, with its
    config.toml and a summary.json that says why, as the trainer writes one for a run that failed at set-up."""
    from tui_lab.core.run import STOP_REASONS, RunMeta, RunResult
    from tui_lab.core.runlog import RunLog

    if status == "stopped" and not message:
        message = _(STOP_REASONS.get(reason, STOP_REASONS["user"]))
    try:
        log = RunLog(run_dir)
    except UserError as exc:
        return _failed_row(exc, str(run_dir))
    try:
        log.on_start(RunMeta(config=cfg, preset=name, total_steps=cfg.train.steps))
        log.on_finish(RunResult(status, 0, message=message, reason=reason))  # type: ignore[arg-type]
    except UserError as exc:
        return _failed_row(exc, str(run_dir))
    finally:
        log.close()
    return ended_row(status, message, str(run_dir))
