"""The training loop: runs a config in the calling thread, obeys a Control, emits Snapshots to sinks.

Snapshots are plain Python data (core/run.py), taken every `train.log_every` steps: the step-0 snapshot holds
the gradients at initialisation. A non-finite loss ends the run as `diverged`, an exception as `failed`,
Control.stop() (or Ctrl-C) as `stopped`; in every case the sinks get `on_finish` with the result.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from tui_lab.core import choices, devices
from tui_lab.core.config import LabConfig
from tui_lab.core.data import Dataset, build_dataset
from tui_lab.core.diagnosis import breakdown, diagnose
from tui_lab.core.errors import UserError, one_line
from tui_lab.core.fmt import finite
from tui_lab.core.i18n import _
from tui_lab.core.learned import LearnedClock, probe_for
from tui_lab.core.models import build_model
from tui_lab.core.optim import apply_live, make_optimizer
from tui_lab.core.probes import Probes, Reading
from tui_lab.core.run import STOP_REASONS, Change, Control, RunMeta, RunResult, Sink, Snapshot

EVAL_CHUNK = 2048  # validation samples per forward pass


def resolve_device(spec: str) -> torch.device:
    """'auto' -> cuda, then mps, then cpu. A device that is not there is the user's error (core/devices.py)."""
    why = devices.problem(spec, torch)
    if why is not None:
        raise UserError(f'train.device = "{spec}": {why}')
    if spec == "auto":
        mps = getattr(torch.backends, "mps", None)
        mps_ok = mps is not None and mps.is_available()
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    if spec.startswith("cuda"):
        return torch.device("cuda", int(spec.split(":")[1]) if ":" in spec else 0)
    return torch.device(spec)


# ---------------------------------------------------------------------------------------------------------
# The small pieces the loop is made of.


def batches(data: Dataset, batch: int, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches forever: a fresh seeded order each epoch, sliced (the last partial batch skipped)."""
    n = len(data.x_train)
    while True:
        order = torch.randperm(n, generator=gen).to(data.x_train.device)
        for start in range(0, n - batch + 1, batch):
            idx = order[start : start + batch]
            yield data.x_train[idx], data.y_train[idx]


class Interval:
    """The mean training loss and accuracy since the last snapshot, over the same steps. On the CPU each loss is
    read at once (free there, and a non-finite one ends the run at its step); on a GPU that read is a sync, so
    the losses are summed on the device. Correct answers are always counted on the device. Device sums travel
    with the snapshot's one host copy."""

    def __init__(self, on_host: bool):
        self.on_host = on_host
        self._host, self._steps, self._samples = 0.0, 0, 0
        self._sums: dict[str, list[torch.Tensor]] = {}

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, classify: bool) -> float | None:
        """Count one step; the loss's value when it was read on the host."""
        self._steps += 1
        if classify:
            self._accumulate("correct", (logits.detach().argmax(1) == targets).sum())
            self._samples += len(targets)
        if self.on_host:
            value = loss.item()
            self._host += value
            return value
        self._accumulate("loss", loss.detach())
        return None

    def _accumulate(self, name: str, value: torch.Tensor) -> None:
        self._sums.setdefault(name, []).append(value)  # summed once per snapshot: one op per step fewer

    @property
    def device_sums(self) -> dict[str, torch.Tensor]:
        return {name: torch.stack(values).sum() for name, values in self._sums.items()}

    def take(self, read: dict[str, float]) -> tuple[float, float | None]:
        """(mean loss, accuracy) of the interval, given the device sums as read; a new interval starts."""
        loss = read.get("loss", self._host) / max(self._steps, 1)
        acc = read["correct"] / self._samples if "correct" in read and self._samples else None
        self._host, self._steps, self._samples, self._sums = 0.0, 0, 0, {}
        return loss, acc


class StepClock:
    """Seconds per step between snapshots, with the time spent paused left out."""

    def __init__(self, control: Control, start: int = 0):
        self.control = control
        self._time, self._step, self._waited = time.perf_counter(), start, control.waited_s

    def per_step(self, steps_done: int) -> float:
        now = time.perf_counter()
        paused = self.control.waited_s - self._waited
        per = max(now - self._time - paused, 1e-9) / max(steps_done - self._step, 1)
        self._time, self._step, self._waited = now, steps_done, self.control.waited_s
        return per


def _pick_cpu_threads(cfg: LabConfig) -> None:
    """Small models run fastest on one CPU thread: intra-op threads only add hand-off costs, and they
    collapse when other processes share the cores. $TUI_LAB_THREADS overrides the choice."""
    env = os.environ.get("TUI_LAB_THREADS", "")
    if env.isdigit() and int(env) > 0:
        torch.set_num_threads(int(env))
        return
    spatial = 64 if choices.ARCHS[cfg.model.arch].spatial else 1  # an 8x8 image per unit
    if cfg.train.batch_size * cfg.model.width * cfg.model.width * spatial < 2**22:
        torch.set_num_threads(1)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: Dataset, loss_fn: Callable, classify: bool) -> tuple[float, float | None]:
    """Validation loss (and accuracy): BatchNorm on its running statistics, dropout off."""
    model.eval()
    losses, correct = [], 0
    x, y = data.x_val, data.y_val
    for i in range(0, len(x), EVAL_CHUNK):
        logits, yb = model(x[i : i + EVAL_CHUNK]), y[i : i + EVAL_CHUNK]
        losses.append(loss_fn(logits, yb, reduction="sum"))
        if classify:
            correct += (logits.argmax(1) == yb).sum()
    model.train()
    loss = float(torch.stack(losses).sum()) / len(y)
    return loss, float(correct) / len(y) if classify else None


# ---------------------------------------------------------------------------------------------------------
# The trainer.


class Trainer:
    def __init__(
        self,
        cfg: LabConfig,
        control: Control | None = None,
        sinks: Iterable[Sink] = (),
        preset: str | None = None,
        history: int = 32,
    ):
        self.cfg = cfg
        self.control = control or Control()
        self.sinks = list(sinks)
        self.meta = RunMeta(config=cfg, preset=preset, total_steps=cfg.train.steps)
        self.recent: deque[Snapshot] = deque(maxlen=history)  # for diagnosis (gradient spikes, progress)
        self.initial: Snapshot | None = None  # the step-0 snapshot: the network as initialised
        self.changes: list[Change] = []  # hyperparameters changed while it ran (Control.change)
        self._unsent: list[Change] = []  # ... not yet in a snapshot
        self._parts: tuple | None = None  # device, data, model, optimizer, probes: kept so a run can go on
        self._batches: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._steps_done = 0
        self._t0 = 0.0
        self._last_emit = 0.0
        self._clip: float | None = None  # clip_norm as changed while it ran

    def _call(self, hook: str, arg: Any) -> None:
        """Every sink's `hook`, even when one fails (a full disk must not keep the UI from hearing that the run
        ended); the first failure is raised after."""
        error: BaseException | None = None
        for sink in self.sinks:
            fn = getattr(sink, hook, None)
            if fn is not None:
                try:
                    fn(arg)
                except Exception as exc:  # noqa: BLE001 - raised below, once the others have been told
                    error = error or exc
        if error is not None:
            raise error

    def _emit(self, snap: Snapshot) -> None:
        for sink in self.sinks:
            sink(snap)

    def run(self) -> RunResult:
        """Train from the start to train.steps."""
        self._t0 = time.perf_counter()
        return self._guarded(self._start)

    def extend(self, more: int) -> RunResult:
        """Go on training a run that ended (completed or stopped) for `more` steps, in the same run: the
        same model, optimiser state and batch order, as if it had been asked for that many steps at first
        (config.toml is rewritten with the new train.steps). The sinks get `on_resume(meta)` first."""
        if self._parts is None:
            raise RuntimeError("only a run that trained can be extended")
        total = self._steps_done + more
        self.cfg = self.cfg.model_copy(update={"train": self.cfg.train.model_copy(update={"steps": total})})
        self.meta.config, self.meta.total_steps = self.cfg, total
        self.control.restart()
        self._call("on_resume", self.meta)
        return self._guarded(lambda: self._loop(*self._parts, t0=self._t0, start=self._steps_done))

    def _start(self) -> RunResult:
        self._parts = self._setup()
        self._call("on_start", self.meta)
        return self._loop(*self._parts, t0=self._t0)

    def _guarded(self, body: Callable[[], RunResult]) -> RunResult:
        """Run `body` turning any failure into the run's status; the sinks always get on_start and on_finish."""
        t0 = self._t0
        result = RunResult("failed", self._steps_done)
        try:
            result = body()
        except KeyboardInterrupt:
            result.status, result.reason, result.message = "stopped", "interrupted", _(STOP_REASONS["interrupted"])
        except _StoppedEarly:  # asked to stop while it was being set up: stopped at step 0, never "completed"
            result = self._stopped(RunResult("stopped", self._steps_done))
        except UserError as exc:  # a run directory that cannot be written (a full disk) included: RunDirError
            result.status, result.message, result.steps = "failed", str(exc), self._steps_done
            result.user_error = True
        except Exception as exc:  # noqa: BLE001 - any failure becomes the run's status, never a crash
            result.status, result.message, result.steps = "failed", _describe(exc), self._steps_done
        result.elapsed_s = time.perf_counter() - t0
        result.device = self.meta.device
        result.changes = list(self.changes)
        if result.last is not None and not result.findings:
            result.findings = result.last.findings
        if self._parts is None:  # setup failed: the sinks still get a start, so a run directory is complete
            try:
                self._call("on_start", self.meta)
            except Exception:  # noqa: BLE001
                pass
        self._call("on_finish", result)
        return result

    def _setup(self):
        cfg = self.cfg
        device = resolve_device(cfg.train.device)
        if device.type == "cpu":
            _pick_cpu_threads(cfg)
        torch.manual_seed(cfg.seed)
        # A stop (Ctrl-C, a signal, a key) can come while the data and the model are being made, which may take
        # seconds: it is obeyed between the pieces, not after the first training step.
        self._stop_point()
        data = build_dataset(cfg).to(device)
        self._stop_point()
        model = build_model(cfg, data.input_shape, data.n_outputs).to(device)
        self._stop_point()
        optimizer = make_optimizer(cfg, model.parameters())
        probes = Probes(model, optimizer)
        self.meta.device = str(device)
        self.meta.device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        self.meta.layers = probes.names
        self.meta.chance_loss = data.chance_loss
        return device, data, model, optimizer, probes

    def _loop(self, device, data: Dataset, model, optimizer, probes: Probes, t0: float, start: int = 0) -> RunResult:
        cfg, control = self.cfg, self.control
        total, log_every, eval_every = cfg.train.steps, cfg.train.log_every, cfg.train.eval_every
        classify = data.task == "classify"
        loss_fn = F.cross_entropy if classify else F.mse_loss
        l1 = cfg.optim.l1
        clip = self._clip if self._clip is not None else cfg.optim.clip_norm  # changed while it ran: kept
        l1_weights = [w for p in probes.points for w in p.weights] if l1 > 0 else []
        batch = min(cfg.train.batch_size, len(data.x_train))
        if self._batches is None:  # kept across an extension: the batch order goes on
            self._batches = batches(data, batch, torch.Generator().manual_seed(cfg.seed + 1))
        train_batches = self._batches
        interval = Interval(on_host=device.type == "cpu")  # a host read of the loss is free on the CPU only
        clock = StepClock(control, start)
        result = RunResult("completed", start)
        last_eval = -(10**9)
        learner, learned_due = probe_for(data, cfg.data.name), LearnedClock(control)

        def forward_backward(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            if l1_weights:
                loss = loss + l1 * sum(w.abs().sum() for w in l1_weights)
            loss.backward()
            return logits, loss

        def snapshot(step: int, reading: Reading, **numbers: Any) -> Snapshot:
            per_step = clock.per_step(step + 1)
            eta = per_step * (total - step - 1)
            if control.pace:  # held to a pace: the snapshots still to come, at that pace
                eta = max(eta, (total - step - 1) / log_every / control.pace)
            changes, self._unsent = self._unsent, []
            return Snapshot(
                step=step, total_steps=total, epoch=(step + 1) * batch / len(data.x_train),
                time_s=time.perf_counter() - t0, lr=optimizer.param_groups[0]["lr"],
                samples_per_s=batch / per_step, eta_s=eta, layers=reading.layers,
                time_grad_norm=reading.time_grad_norm, changes=changes,
                mem_mb=torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None, **numbers,
            )  # fmt: skip

        def autopsy(step: int, xb: torch.Tensor, yb: torch.Tensor) -> Snapshot:
            """The step that broke, taken again with every probe on: a complete picture of where it broke."""
            xb = probes.start(xb)
            logits, _ = forward_backward(xb, yb)
            probes.after_backward(logits)
            return snapshot(step, probes.read(), loss=None, nonfinite=True)

        model.train()  # once: evaluate() switches back after each evaluation
        for step in range(start, total):
            mode = control.wait()
            if mode == "stop":
                self._stopped(result)
                break
            changes = control.take_changes()
            if changes:
                clip = self._change(optimizer, changes, step, clip)
            capture = step % log_every == 0 or step == total - 1 or mode == "step"

            xb, yb = next(train_batches)
            logits, loss = forward_backward(probes.start(xb) if capture else xb, yb)
            value = interval.add(loss, logits, yb, classify)
            if value is not None and not math.isfinite(value):  # before the step: the weights are as they broke
                message = _("the loss became {value} at step {step}").format(value=value, step=step)
                return self._diverged(result, autopsy(step, xb, yb), message)

            val_loss = val_acc = learned = None
            if capture:
                probes.after_backward(logits)
                # Evaluated before the step, so a snapshot's numbers all describe the same weights (at step 0:
                # the network at initialisation, like its gradients).
                if step - last_eval >= eval_every or step == total - 1 or step == 0:
                    val_loss, val_acc = evaluate(model, data, loss_fn, classify)
                    last_eval = step
                # What the network learned, on the same weights, when due: the first and the last snapshot, the
                # panel's rate while it is on screen, else every few seconds (a forward pass without gradients
                # over a few thousand inputs; never on the steps between snapshots).
                if learned_due.due(last=step == total - 1):
                    learned = learner(model, step)
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            result.steps = self._steps_done = step + 1
            if not capture:
                continue

            probes.after_step(keep=not interval.on_host)  # the CPU saw any divergence before the step
            reading = probes.read(interval.device_sums)
            train_loss, train_acc = interval.take(reading.scalars)
            snap = snapshot(step, reading, loss=finite(train_loss), acc=finite(train_acc), val_loss=finite(val_loss),
                            val_acc=finite(val_acc))  # fmt: skip
            if snap.loss is None:  # on a GPU the loss is checked here, once per snapshot
                probes.restore_weights()  # as they were before this step's update
                message = _("the loss became non-finite by step {step}").format(step=step)
                return self._diverged(result, autopsy(step, xb, yb), message)
            if control.histogram_layer is not None:
                snap.histogram = probes.histogram(control.histogram_layer)
            snap.learned = learned
            self._diagnose(snap)
            result.last = result.last_finite = snap
            if control.pace:  # watched at a human pace: no sooner than 1/pace seconds after the previous one
                control.hold(self._last_emit)
            self._last_emit = time.perf_counter()
            self._emit(snap)
            self.recent.append(snap)

        result.findings = result.last.findings if result.last else []
        return result

    @property
    def steps_done(self) -> int:
        return self._steps_done

    def _stop_point(self) -> None:
        if self.control.stopped:
            raise _StoppedEarly

    def _stopped(self, result: RunResult) -> RunResult:
        """The run ends `stopped`, with the Control's reason (STOP_REASONS) and its sentence."""
        reason = self.control.reason or "user"
        result.status, result.reason = "stopped", reason
        result.message = _(STOP_REASONS.get(reason, STOP_REASONS["user"]))
        return result

    def _change(self, optimizer, changes: dict[str, float], step: int, clip: float) -> float:
        """Apply hyperparameters asked for while the run goes (Control.change), from this step on; each is
        recorded with the next snapshot and in the summary. Returns the clipping norm now in force."""
        for key, value in changes.items():
            if key == "optim.clip_norm":
                was, applied, clip = clip, True, value
                self._clip = clip
            else:
                was, applied = apply_live(optimizer, self.cfg.optim.name, key, value)
            if was == value:
                continue
            change = Change(step, key, was, value, applied)
            self.changes.append(change)
            self._unsent.append(change)
        return clip

    def _diagnose(self, snap: Snapshot) -> None:
        if self.initial is None:
            self.initial = snap
        snap.findings = diagnose(snap, self.recent, self.cfg, chance_loss=self.meta.chance_loss, initial=self.initial)

    def _diverged(self, result: RunResult, snap: Snapshot, message: str) -> RunResult:
        self._diagnose(snap)
        self._emit(snap)
        where = breakdown(snap.layers)
        result.status, result.last, result.findings = "diverged", snap, snap.findings
        result.message = message + (f": {where.text}" if where else "")
        result.divergence = {"step": snap.step, **(where.to_dict() if where else {})}
        return result


class _StoppedEarly(Exception):
    """The Control was stopped before the first step (Trainer._stop_point)."""


def _describe(exc: BaseException) -> str:
    text = one_line(exc)
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text.lower():
        return _("out of memory on the device ({error}); lower train.batch_size or model.width").format(
            error=text[:160]
        )
    return text[:300]
