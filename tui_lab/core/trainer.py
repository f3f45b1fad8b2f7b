"""The training loop: runs a config in the calling thread, obeys a Control, emits Snapshots to sinks.

Snapshots are plain Python data (no tensors), taken every `train.log_every` steps: the step-0 snapshot holds
the gradients at initialisation. A non-finite loss ends the run as `diverged`, an exception as `failed`,
Control.stop() (or Ctrl-C) as `stopped`; in every case the sinks get `on_finish` with the result.

Sinks are callables taking a Snapshot; they may also have `on_start(meta)` and `on_finish(result)`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tui_lab.core.config import LabConfig
from tui_lab.core.diagnosis import Finding, diagnose
from tui_lab.core.errors import UserError

FINAL_STATUSES = ("completed", "diverged", "stopped", "failed")

# Trainers running in this process, so a hang-up (SIGHUP: the SSH connection dropped) can stop them all and
# wait until each has written its summary before the process goes.
_running: set[Trainer] = set()
_running_lock = threading.Lock()


def stop_all(timeout: float = 5.0) -> bool:
    """Stop every running trainer and wait (up to `timeout` s in all) for each to finish its run directory.
    True when all finished in time."""
    with _running_lock:
        trainers = list(_running)
    for trainer in trainers:
        trainer.control.stop()
    deadline = time.monotonic() + timeout
    return all(t.finished.wait(max(0.0, deadline - time.monotonic())) for t in trainers)


class Control:
    """Thread-safe run/pause/step/stop, shared by the UI (or a signal handler) and the trainer."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._stopped = False
        self._steps = 0  # single steps granted while paused
        self.waited_s = 0.0  # time the trainer has spent paused (kept out of samples/s and the ETA)
        self.histogram_layer: int | None = None  # which probe point's gradient histogram the UI wants

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stopped

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def step_once(self) -> None:
        """Pause (if running) and let exactly one more step run."""
        with self._cond:
            self._paused = True
            self._steps += 1
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def wait(self) -> str | None:
        """Called by the trainer before every step: 'run', 'step' (one granted step), or None (stop)."""
        if not self._paused and not self._stopped:
            return "run"  # the fast path: no lock per step
        with self._cond:
            start = time.perf_counter()
            while self._paused and not self._stopped and self._steps == 0:
                self._cond.wait(0.25)
            self.waited_s += time.perf_counter() - start
            if self._stopped:
                return None
            if self._paused:
                self._steps -= 1
                return "step"
            return "run"


@dataclass
class LayerStats:
    name: str
    grad_norm: float | None = None
    weight_norm: float | None = None
    update_ratio: float | None = None
    act_mean: float | None = None
    act_std: float | None = None
    dead_frac: float | None = None
    sat_frac: float | None = None
    act_grad_norm: float | None = None  # ||d loss / d h|| at the layer's output: the back-propagated signal


@dataclass
class Snapshot:
    step: int
    total_steps: int
    epoch: float
    time_s: float
    loss: float | None
    acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    lr: float = 0.0
    samples_per_s: float = 0.0
    eta_s: float | None = None
    layers: list[LayerStats] = field(default_factory=list)
    time_grad_norm: list[float] | None = None
    mem_mb: float | None = None
    nonfinite: bool = False
    histogram: Any = None  # probes.Histogram of the layer the UI asked for
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The metrics.jsonl line (DESIGN.md §4)."""
        d: dict[str, Any] = {
            "step": self.step, "epoch": round(self.epoch, 4), "time_s": round(self.time_s, 4),
            "loss": self.loss, "acc": self.acc, "val_loss": self.val_loss, "val_acc": self.val_acc,
            "lr": self.lr, "samples_per_s": round(self.samples_per_s, 1),
            "layers": [dict(vars(layer)) for layer in self.layers],  # flat floats: no deep copy (asdict)
        }  # fmt: skip
        if self.time_grad_norm is not None:
            d["time_grad_norm"] = self.time_grad_norm
        if self.mem_mb is not None:
            d["mem_mb"] = round(self.mem_mb, 1)
        if self.nonfinite:
            d["nonfinite"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], total_steps: int = 0) -> Snapshot:
        fields = LayerStats.__dataclass_fields__
        layers = [LayerStats(**{k: v for k, v in layer.items() if k in fields}) for layer in d.get("layers", [])]
        return cls(
            step=int(d.get("step", 0)), total_steps=total_steps, epoch=float(d.get("epoch") or 0.0),
            time_s=float(d.get("time_s") or 0.0), loss=d.get("loss"), acc=d.get("acc"),
            val_loss=d.get("val_loss"), val_acc=d.get("val_acc"), lr=float(d.get("lr") or 0.0),
            samples_per_s=float(d.get("samples_per_s") or 0.0), layers=layers,
            time_grad_norm=d.get("time_grad_norm"), mem_mb=d.get("mem_mb"), nonfinite=bool(d.get("nonfinite")),
        )  # fmt: skip


@dataclass
class RunResult:
    status: str  # completed | diverged | stopped | failed
    steps: int  # optimiser steps taken
    message: str = ""
    last: Snapshot | None = None
    last_finite: Snapshot | None = None
    findings: list[Finding] = field(default_factory=list)
    elapsed_s: float = 0.0
    device: str = ""

    def to_dict(self) -> dict[str, Any]:
        """summary.json."""
        final = self.last_finite or self.last
        return {
            "status": self.status, "steps": self.steps, "message": self.message,
            "elapsed_s": round(self.elapsed_s, 3), "device": self.device,
            "final": final.to_dict() if final else None,
            "diverged_at": self.last.step if self.status == "diverged" and self.last else None,
            "findings": [f.to_dict() for f in self.findings],
        }  # fmt: skip


def resolve_device(spec: str):
    """'auto' -> cuda, then mps, then cpu. A device that is not there is the user's error."""
    import torch

    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f'train.device = "{spec}": CUDA is not available on this machine; use cpu or auto')
        index = int(spec.split(":")[1]) if ":" in spec else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise UserError(f'train.device = "{spec}": no such GPU; this machine has cuda:0 .. cuda:{count - 1}')
        return torch.device("cuda", index)
    if spec == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise UserError('train.device = "mps": Apple MPS is not available on this machine; use cpu or auto')
        return torch.device("mps")
    return torch.device("cpu")


def make_optimizer(cfg: LabConfig, params: Iterable[Any]):
    import torch

    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name in ("momentum", "nesterov"):
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.name == "nesterov",
                               weight_decay=o.weight_decay)  # fmt: skip
    if o.name == "adagrad":
        return torch.optim.Adagrad(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)


class Trainer:
    def __init__(
        self,
        cfg: LabConfig,
        control: Control | None = None,
        sinks: Iterable[Callable[[Snapshot], Any]] = (),
        preset: str | None = None,
        history: int = 32,
    ):
        self.cfg = cfg
        self.control = control or Control()
        self.sinks = list(sinks)
        self.preset = preset
        self.recent: deque[Snapshot] = deque(maxlen=history)  # for diagnosis (gradient spikes)
        self.meta: dict[str, Any] = {}
        self.finished = threading.Event()  # set once on_finish has been called (the summary is written)

    # -- sinks ------------------------------------------------------------------------------------------

    def _call(self, hook: str, arg: Any) -> None:
        for sink in self.sinks:
            fn = getattr(sink, hook, None)
            if fn is not None:
                fn(arg)

    def _emit(self, snap: Snapshot) -> None:
        for sink in self.sinks:
            sink(snap)

    # -- the run ----------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        with _running_lock:
            _running.add(self)
        try:
            return self._run()
        finally:
            with _running_lock:
                _running.discard(self)
            self.finished.set()

    def _run(self) -> RunResult:
        t0 = time.perf_counter()
        result = RunResult("failed", 0)
        started = False
        try:
            setup = self._setup()
            self._call("on_start", self.meta)
            started = True
            result = self._loop(*setup, t0=t0)
        except KeyboardInterrupt:
            result.status, result.message = "stopped", "interrupted"
        except UserError as exc:
            result.status, result.message = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure becomes the run's status, never a crash
            result.status, result.message = "failed", _describe(exc)
        result.elapsed_s = time.perf_counter() - t0
        result.device = str(self.meta.get("device", ""))
        if result.last is not None and not result.findings:
            result.findings = result.last.findings
        if not started:
            # Setup failed: still give the sinks a start so a run directory is complete.
            try:
                self._call("on_start", {**self.meta, "config": self.cfg, "preset": self.preset})
            except Exception:  # noqa: BLE001
                pass
        self._call("on_finish", result)
        return result

    def _setup(self):
        import torch

        from tui_lab.core.data import build_dataset
        from tui_lab.core.models import build_model
        from tui_lab.core.probes import Probes

        cfg = self.cfg
        device = resolve_device(cfg.train.device)
        if device.type == "cpu":
            _pick_cpu_threads(cfg)
        torch.manual_seed(cfg.seed)
        data = build_dataset(cfg).to(device)
        model = build_model(cfg, data.input_shape, data.n_outputs).to(device)
        optimizer = make_optimizer(cfg, model.parameters())
        probes = Probes(model, optimizer)
        device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        self.meta = {
            "config": cfg, "preset": self.preset, "device": str(device), "device_name": device_name,
            "layers": probes.names, "total_steps": cfg.train.steps, "task": data.task, "chance": data.chance,
            "parameters": sum(p.numel() for p in model.parameters()),
        }  # fmt: skip
        return device, data, model, optimizer, probes

    def _loop(self, device, data, model, optimizer, probes, t0: float) -> RunResult:
        import torch
        import torch.nn.functional as F

        cfg, control = self.cfg, self.control
        total, log_every, eval_every = cfg.train.steps, cfg.train.log_every, cfg.train.eval_every
        classify = data.task == "classify"
        loss_fn = F.cross_entropy if classify else F.mse_loss
        l1 = cfg.optim.l1
        clip = cfg.optim.clip_norm
        l1_weights = [w for p in probes.points for w in p.weights] if l1 > 0 else []
        on_cpu = device.type == "cpu"  # a host read of the loss is free on the CPU, a sync on a GPU

        n = len(data.x_train)
        batch = min(cfg.train.batch_size, n)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        order = torch.randperm(n, generator=gen).to(device)
        cursor = 0

        result = RunResult("completed", 0)
        loss_sum_host, loss_sum_dev, loss_count = 0.0, None, 0
        last_snap_time, last_snap_step, last_waited = time.perf_counter(), 0, control.waited_s
        last_eval = -(10**9)
        step = 0
        model.train()  # once: _evaluate switches back after each evaluation
        for step in range(total):
            mode = control.wait()
            if mode is None:
                result.status, result.message = "stopped", "stopped by the user"
                break
            capture = step % log_every == 0 or step == total - 1 or mode == "step"

            if cursor + batch > n:  # a new epoch: a fresh seeded order
                order = torch.randperm(n, generator=gen).to(device)
                cursor = 0
            idx = order[cursor : cursor + batch]
            cursor += batch
            xb, yb = data.x_train[idx], data.y_train[idx]

            if capture:
                xb = probes.start(xb)
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            if l1_weights:
                loss = loss + l1 * sum(w.abs().sum() for w in l1_weights)
            loss.backward()

            if on_cpu:
                value = loss.item()
                if not math.isfinite(value):
                    return self._diverged(result, step, value, t0)
                loss_sum_host += value
            else:
                d = loss.detach()
                loss_sum_dev = d if loss_sum_dev is None else loss_sum_dev + d
            loss_count += 1

            val_loss = val_acc = None
            if capture:
                probes.after_backward(logits)
                # Evaluated before the step, so a snapshot's numbers all describe the same weights (at step 0:
                # the network at initialisation, like its gradients).
                if step - last_eval >= eval_every or step == total - 1 or step == 0:
                    val_loss, val_acc = self._evaluate(model, data, loss_fn, classify)
                    last_eval = step
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            result.steps = step + 1
            if not capture:
                continue

            # -- a snapshot ----------------------------------------------------------------------------
            probes.after_step()
            extras = []
            if classify:
                extras.append((logits.detach().argmax(1) == yb).float().mean())
            if loss_sum_dev is not None:
                extras.append(loss_sum_dev)
            layers, tgn, values = probes.read(extras)
            acc = values[0] if classify else None
            interval_loss = (values[-1] if loss_sum_dev is not None else loss_sum_host) / max(loss_count, 1)
            loss_sum_host, loss_sum_dev, loss_count = 0.0, None, 0

            now = time.perf_counter()
            steps_done = max(step + 1 - last_snap_step, 1)
            paused = control.waited_s - last_waited  # paused time is not training time
            per_step = max(now - last_snap_time - paused, 1e-9) / steps_done
            last_snap_time, last_snap_step, last_waited = now, step + 1, control.waited_s
            snap = Snapshot(
                step=step, total_steps=total, epoch=(step + 1) * batch / n, time_s=now - t0,
                loss=_clean(interval_loss), acc=_clean(acc), val_loss=_clean(val_loss), val_acc=_clean(val_acc),
                lr=optimizer.param_groups[0]["lr"], samples_per_s=batch / per_step if per_step > 0 else 0.0,
                eta_s=per_step * (total - step - 1),
                layers=[_layer_stats(layer) for layer in layers], time_grad_norm=tgn,
                mem_mb=torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None,
            )  # fmt: skip
            if control.histogram_layer is not None:
                snap.histogram = probes.histogram(control.histogram_layer)
            if snap.loss is None:
                snap.nonfinite = True
            snap.findings = diagnose(snap, self.recent, cfg)
            result.last = snap
            self._emit(snap)
            if snap.nonfinite:  # on a GPU the loss is checked here, once per snapshot
                result.status, result.message = "diverged", f"the loss became non-finite by step {step}"
                result.findings = snap.findings
                return result
            result.last_finite = snap
            self.recent.append(snap)

        result.findings = result.last.findings if result.last else []
        return result

    def _diverged(self, result: RunResult, step: int, value: float, t0: float) -> RunResult:
        snap = Snapshot(step=step, total_steps=self.cfg.train.steps, epoch=0.0, time_s=time.perf_counter() - t0,
                        loss=None, nonfinite=True)  # fmt: skip
        snap.findings = diagnose(snap, self.recent, self.cfg)
        self._emit(snap)
        result.status = "diverged"
        result.message = f"the loss became {value} at step {step}"
        result.last = snap
        result.findings = snap.findings
        return result

    @staticmethod
    def _evaluate(model, data, loss_fn, classify: bool) -> tuple[float, float | None]:
        import torch

        model.eval()  # BatchNorm uses its running statistics, dropout is off
        with torch.no_grad():
            losses, correct, count = [], 0, 0
            x, y = data.x_val, data.y_val
            for i in range(0, len(x), 2048):
                logits = model(x[i : i + 2048])
                yb = y[i : i + 2048]
                losses.append(loss_fn(logits, yb, reduction="sum"))
                if classify:
                    correct += (logits.argmax(1) == yb).sum()
                count += len(yb)
            loss = float(torch.stack(losses).sum()) / count
            acc = float(correct) / count if classify else None
        model.train()
        return loss, acc


def _pick_cpu_threads(cfg: LabConfig) -> None:
    """Small models run fastest on one CPU thread: intra-op threads only add hand-off costs, and they
    collapse when other processes share the cores. $TUI_LAB_THREADS overrides the choice."""
    import os

    import torch

    env = os.environ.get("TUI_LAB_THREADS", "")
    if env.isdigit() and int(env) > 0:
        torch.set_num_threads(int(env))
        return
    work = cfg.train.batch_size * cfg.model.width * cfg.model.width * (64 if cfg.model.arch == "cnn" else 1)
    if work < 2**22:
        torch.set_num_threads(1)


def _clean(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _layer_stats(d: dict[str, float]) -> LayerStats:
    name = d.pop("name")
    # Non-finite statistics stay as floats here (diagnosis looks at them); the run log writes them as null.
    return LayerStats(name=name, **d)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text.lower():
        return f"out of memory on the device ({text[:160]}); lower train.batch_size or model.width"
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
