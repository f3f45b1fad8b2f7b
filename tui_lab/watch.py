"""`tui_lab.watch`: the lab's instruments on any PyTorch training loop (README: Watch your own model).

    with tui_lab.watch(model, optimizer, out="runs/mine", every=10) as lab:
        for x, y in loader:
            ...; optimizer.step()
            lab.log(loss=loss)

Steps are counted by the optimiser (a step post-hook) or, without one, by `lab.step()`. Every `every` steps one
step is a capture step: forward hooks on the watched modules are put on for that step only (the steps between
run the plain loop: a step count and nothing else), the weights are copied just before it, and when it has
stepped the device computes every per-layer number at once; they reach the host in one copy, when the next step
begins (so that a loss logged after `optimizer.step()` counts for its own step). The records are the lab's own
(core/run.py Snapshot, core/runlog.py RunLog, core/diagnosis.py findings), so `tui-lab show` follows the run.
"""

from __future__ import annotations

import fnmatch
import math
import sys
import time
import types
import warnings
from collections import deque
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tui_lab.core.diagnosis import breakdown, diagnose
from tui_lab.core.errors import UserError, one_line
from tui_lab.core.fmt import finite
from tui_lab.core.i18n import _
from tui_lab.core.probes import _gradient_norms
from tui_lab.core.run import STOP_REASONS, LayerStats, RunMeta, RunResult, Snapshot
from tui_lab.core.runlog import RunLog, atomic_write, default_run_dir
from tui_lab.core.watched import KIND, MODEL_FILE, dumps_description, is_watched, stand_in_config

# Activation modules whose output says which units are dead or saturated (choices.ACTIVATIONS traits); an
# activation applied as a function (F.relu) is invisible to hooks, and its layer gets no such numbers.
ACTIVATIONS: dict[type, str] = {
    nn.ReLU: "relu",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.LeakyReLU: "leaky_relu",
    nn.ELU: "elu",
    nn.GELU: "gelu",
    nn.SELU: "selu",
}
DEAD_AT_ZERO = {"relu"}
SATURATION = {"sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99)}
NORMS = tuple(
    t
    for t in (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, getattr(nn, "RMSNorm", None))
    if t is not None
)
HISTORY = 32  # snapshots the diagnosis compares with (as the trainer)


def watch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    out: str | Path | None = None,
    every: int = 10,
    name: str | None = None,
    layers: str | list[str] | None = None,
    scaler: Any = None,
) -> Watch:
    """Watch `model` while it trains: a context manager whose value has `.log(**scalars)` and `.step()`.

    `optimizer`: its steps are the steps (no call needed); without one, call `lab.step()` once per step.
    `out`: the run directory (default: a fresh one under $TUI_LAB_RUNS); one that holds an earlier watched run
    is overwritten, any other non-empty one refused. `every`: a snapshot every this many steps. `layers`: glob
    patterns of module names (`"encoder.*"`, `["fc1", "blocks.*.attn*"]`; a pattern naming a container takes
    the modules in it); default every module with weights of its own. `scaler`: a `torch.amp.GradScaler`,
    so that the back-propagated signal is read unscaled (weight gradients are unscaled by `scaler.step`)."""
    return Watch(model, optimizer, out=out, every=every, name=name, layers=layers, scaler=scaler)


def _rank() -> int:
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0


def _unwrap(model: nn.Module) -> tuple[nn.Module, bool]:
    """The module that holds the layers: under torch.compile (`_orig_mod`), DDP and DataParallel (`module`)."""
    compiled = False
    while True:
        if isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model, compiled = model._orig_mod, True
        elif isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        else:
            return model, compiled


def _optim_kind(optimizer: torch.optim.Optimizer | None) -> str | None:
    """The lab's name for the optimiser's kind (the diagnosis judges Adam-like ones on their own thresholds)."""
    if optimizer is None:
        return None
    kind = type(optimizer).__name__.lower()
    group = optimizer.param_groups[0] if optimizer.param_groups else {}
    if kind == "sgd":
        return "nesterov" if group.get("nesterov") else "momentum" if group.get("momentum", 0) > 0 else "sgd"
    if kind in ("adam", "adamw", "rmsprop", "adagrad"):
        return kind
    return "adam" if "betas" in optimizer.defaults else "sgd"  # Lion, Adafactor...: per-weight steps


def _first_tensor(value: Any) -> torch.Tensor | None:
    """A module's output: the tensor itself, or the first tensor of a tuple (RNNs, attention)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, torch.Tensor):
                return item
    return None


class _Layer:
    """One watched module: its name, weights (biases left out, unless it has nothing else) and, once the first
    capture has seen it, the activation module that takes its output."""

    def __init__(self, name: str, module: nn.Module):
        self.name, self.module = name, module
        own = [(n, p) for n, p in module.named_parameters(recurse=False) if p.requires_grad]
        weights = [p for n, p in own if not n.endswith("bias")]
        self.weights = weights or [p for _n, p in own]
        self.activation: str | None = None  # the lab's name of the activation module that follows, if any
        self.follower: nn.Module | None = None


class Watch:
    """The handle `watch()` returns; see `watch`."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        out: str | Path | None = None,
        every: int = 10,
        name: str | None = None,
        layers: str | list[str] | None = None,
        scaler: Any = None,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"watch: model must be a torch.nn.Module, not {type(model).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"watch: every = {every!r}: allowed: an integer >= 1")
        if optimizer is not None and not hasattr(optimizer, "register_step_post_hook"):
            raise TypeError(f"watch: optimizer must be a torch.optim.Optimizer, not {type(optimizer).__name__}")
        self.model, self.optimizer, self.every, self.scaler = model, optimizer, every, scaler
        self.inner, self.compiled = _unwrap(model)
        self.name = name or type(self.inner).__name__
        self.enabled = _rank() == 0  # under torch.distributed only rank 0 measures and writes
        self.layers = self._select(layers)
        self.out = out
        self.run_dir: Path | None = None
        self.steps = 0  # optimiser steps taken in the block
        self.result: RunResult | None = None
        self.snapshots = 0
        self._handles: list[Any] = []  # hooks for the whole block
        self._capture_handles: list[Any] = []  # hooks for one capture step
        self._armed = False
        self._pending: tuple[int, dict[str, Any]] | None = None  # a capture read at the next step's start
        self._ordered = False  # the layers are in forward order (learned from the first capture)
        self._before: list[torch.Tensor] = []  # the weights before the capture step
        self._host: dict[str, float] = {}  # scalars logged as Python numbers since the last snapshot
        self._device: dict[str, list[torch.Tensor]] = {}  # ... as tensors (summed on the device)
        self._counts: dict[str, int] = {}
        self._recent: deque[Snapshot] = deque(maxlen=HISTORY)
        self._initial: Snapshot | None = None
        self._last_finite: Snapshot | None = None
        self._t0 = self._last_time = 0.0
        self._last_step = 0
        self._batch = 0
        self._log: _WatchLog | None = None
        self.meta = RunMeta(preset=self.name)
        self.cfg = None
        self.failure = ""  # why the watch stopped measuring, if it did (the loop went on)

    # -- which modules -------------------------------------------------------------------------------------

    def _select(self, patterns: str | list[str] | None) -> list[_Layer]:
        candidates = [
            _Layer(name or "model", module)
            for name, module in self.inner.named_modules()
            if any(p.requires_grad for p in module.parameters(recurse=False))
        ]
        if patterns is None:
            chosen = candidates
        else:
            patterns = [patterns] if isinstance(patterns, str) else list(patterns)
            chosen = [
                layer
                for layer in candidates
                if any(
                    fnmatch.fnmatchcase(layer.name, p) or fnmatch.fnmatchcase(layer.name, p + ".*") for p in patterns
                )
            ]
            if not chosen:
                some = ", ".join(layer.name for layer in candidates[:8]) + (", ..." if len(candidates) > 8 else "")
                raise ValueError(
                    f"watch: layers = {patterns!r} matches no module with weights; the modules are: {some or 'none'}"
                )
        chosen = [layer for layer in chosen if layer.weights]
        if not chosen:
            raise ValueError(f"watch: {type(self.inner).__name__} has no weights that require a gradient")
        return chosen

    # -- the block -----------------------------------------------------------------------------------------

    def __enter__(self) -> Watch:
        if not self.enabled:
            return self
        self._log = _WatchLog(Path(self.out) if self.out is not None else default_run_dir(self.name))
        self.run_dir = self._log.dir
        device = self.layers[0].weights[0].device
        self.meta.device = str(device)
        self.meta.device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        self.meta.layers = [layer.name for layer in self.layers]
        self.cfg = stand_in_config(self.description())
        self._log.start(self.meta, self.description())
        self._t0 = self._last_time = time.perf_counter()
        if self.optimizer is not None:
            self._handles.append(self.optimizer.register_step_post_hook(lambda *_args: self._on_step()))
        self._handles.append(self.model.register_forward_pre_hook(self._on_forward))
        self._arm()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if not self.enabled or self._log is None:
            return False
        try:
            self._finish_pending()
        except Exception:  # noqa: BLE001 - the block's own ending is what the summary must say
            pass
        self._disarm()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        result = self.result or RunResult("completed", self.steps)
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            if result.status != "diverged":
                result.status, result.reason, result.message = "stopped", "user", _(STOP_REASONS["user"])
        elif exc is not None and isinstance(exc, Exception):
            result.status, result.message = "failed", one_line(exc)[:300]
        elif exc is not None and result.status != "diverged":  # SystemExit and the like: not its own end
            result.status, result.reason = "stopped", "interrupted"
            result.message = _(STOP_REASONS["interrupted"])
        result.steps = self.steps
        result.elapsed_s = time.perf_counter() - self._t0
        result.device = self.meta.device
        if result.last is None:
            result.last = result.last_finite = self._last_finite
        if result.status != "diverged":
            result.findings = self._last_finite.findings if self._last_finite else []
        if self.failure and result.status == "completed":
            result.message = _("the watch stopped measuring: {error}").format(error=self.failure)
        self.result = result
        self._log.finish(result)
        return False  # the exception goes on: watching never hides an error

    # -- what the loop calls -------------------------------------------------------------------------------

    def log(self, **scalars: Any) -> None:
        """Scalars of this step (a loss, an accuracy...), tensors or numbers: averaged over the steps between
        snapshots. `loss`, `acc`, `val_loss`, `val_acc` fill the lab's own columns; others go into `scalars`.
        A tensor on a GPU is summed on the device (no host sync per step)."""
        if not self.enabled or self._log is None or self.result is not None:
            return  # diverged: nothing more is measured (and nothing piles up on a GPU)
        for key, value in scalars.items():
            if isinstance(value, torch.Tensor):
                value = value.detach()
                if value.numel() != 1:
                    raise ValueError(f"lab.log: {key} has {value.numel()} elements; allowed: a single number")
                if value.device.type == "cpu":
                    value = value.item()  # free on the CPU, and a non-finite loss is seen at its step
                else:
                    self._device.setdefault(key, []).append(value.reshape(()).double())
                    self._counts[key] = self._counts.get(key, 0) + 1
                    continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"lab.log: {key} = {value!r}: allowed: a number or a one-element tensor") from None
            self._host[key] = self._host.get(key, 0.0) + value
            self._counts[key] = self._counts.get(key, 0) + 1
            if key == "loss" and not math.isfinite(value) and self.result is None:
                self._finish_pending()  # a capture of this very step holds the whole picture
                if self.result is None:
                    self._diverge(max(self.steps - 1, 0), _("the loss became {value} at step {step}"), value)

    def step(self) -> None:
        """Mark the end of a training step (only without an optimiser: with one, its own steps count)."""
        if self.optimizer is None and self.enabled and self._log is not None:
            self._on_step()

    # -- capture steps -------------------------------------------------------------------------------------

    def _on_forward(self, _module: nn.Module, _args: Any) -> None:
        """A forward pass begins: the previous capture's numbers are complete (its loss was logged)."""
        if self._pending is not None:
            self._guard(self._finish_pending)

    def _on_step(self) -> None:
        self._guard(self._count_step)

    def _guard(self, fn: Any) -> None:
        """The hooks run inside the user's loop: a failure of the watch must not become the loop's failure. It
        stops measuring, says why once (a warning), and the summary keeps the reason."""
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - see above
            self._disarm()
            self._pending = None
            self.failure = one_line(exc)[:300]
            self.result = self.result or RunResult("completed", self.steps)  # nothing more is measured
            warnings.warn(f"tui_lab.watch stopped measuring: {self.failure}", RuntimeWarning, stacklevel=3)

    def _safe(self, hook: Any) -> Any:
        def guarded(module: nn.Module, args: Any, output: Any) -> None:
            self._guard(lambda: hook(module, args, output))

        return guarded

    def _count_step(self) -> None:
        if self._pending is not None:  # no forward of the model came between (it was called another way)
            self._finish_pending()
        step = self.steps
        self.steps += 1
        if self._armed:
            self._disarm()
            if self.result is None:
                self._pending = (step, self._measure())
        if self.steps % self.every == 0 and self.result is None:
            self._arm()

    def _arm(self) -> None:
        """The next step is a capture step: copy the weights it starts from; hook the modules for its forward."""
        weights = [w for layer in self.layers for w in layer.weights]
        with torch.no_grad():
            if len(self._before) != len(weights) or any(
                b.shape != w.shape or b.dtype != w.dtype or b.device != w.device for b, w in zip(self._before, weights)
            ):
                self._before = [torch.empty_like(w, requires_grad=False) for w in weights]
            torch._foreach_copy_(self._before, [w.detach() for w in weights])
        self._outs: dict[int, dict[str, torch.Tensor]] = {}
        self._order: list[int] = []
        self._agrads: dict[int, torch.Tensor] = {}
        # torch.compile: a hook added or removed would recompile the graph, so compiled models get the weights'
        # numbers only (what does not apply is left out).
        if not self.compiled:
            for i, layer in enumerate(self.layers):
                self._capture_handles.append(layer.module.register_forward_hook(self._safe(self._output_hook(i))))
                if layer.follower is not None:
                    hook = self._safe(self._follower_hook(i))
                    self._capture_handles.append(layer.follower.register_forward_hook(hook))
            if not self._ordered:  # the first capture: which activation module takes each layer's output
                self._leaves: list[tuple[nn.Module, Any]] = []
                for module in self.inner.modules():
                    if type(module) in ACTIVATIONS:
                        self._capture_handles.append(module.register_forward_hook(self._safe(self._discover_hook)))
        self._armed = True

    def _disarm(self) -> None:
        for handle in self._capture_handles:
            handle.remove()
        self._capture_handles = []
        self._armed = False

    def _output_hook(self, i: int):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            t = _first_tensor(output)
            if i in self._outs or t is None or not torch.is_grad_enabled() or not t.is_floating_point():
                return  # a second call (weight sharing, a loop), or an evaluation without gradients
            self._order.append(i)
            if not self._batch and args and isinstance(args[0], torch.Tensor) and args[0].dim() > 0:
                self._batch = args[0].shape[0]
            with torch.no_grad():
                v = t.detach().float()
                # mean, then the norm of the centred values: std_mean's CPU path is ~8x slower
                n = v.numel()
                mean = v.mean()
                std = torch.linalg.vector_norm(v - mean) / math.sqrt(n - 1) if n > 1 else torch.zeros_like(mean)
                bad = (~torch.isfinite(v)).sum()  # read only if something broke: where it did
            # Numbers only: the activations themselves are not kept past the step (a large model's memory).
            self._outs[i] = {"act_mean": mean, "act_std": std, "bad": bad}
            if t.requires_grad:
                t.register_hook(lambda g: self._agrads.__setitem__(i, g))
            if not self._ordered:
                self._last_output = (i, t)

        return hook

    def _discover_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        """First capture: an activation module whose input is a watched layer's output follows that layer."""
        last = getattr(self, "_last_output", None)
        if last is None or not args or args[0] is not last[1]:
            return
        layer = self.layers[last[0]]
        if layer.follower is None:
            layer.follower, layer.activation = module, ACTIVATIONS[type(module)]
            self._follower_hook(last[0])(module, args, output)

    def _follower_hook(self, i: int):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            record = self._outs.get(i)
            layer = self.layers[i]
            if record is None or record.get("after") or not isinstance(output, torch.Tensor):
                return
            record["after"] = True
            with torch.no_grad():
                a = output.detach()
                if layer.activation in DEAD_AT_ZERO:
                    # A unit (a channel of a conv map, else the last dimension) is dead when <= 0 on every input.
                    units = a.transpose(1, -1) if a.dim() == 4 else a
                    units = units.reshape(-1, units.shape[-1])
                    record["dead_frac"] = (units.amax(0) <= 0).float().mean()
                if layer.activation in SATURATION:
                    low, high = SATURATION[layer.activation]
                    record["sat_frac"] = torch.logical_or(a < low, a > high).float().mean()

        return hook

    def _measure(self) -> dict[str, Any]:
        """The capture step has stepped: every per-layer number, on the device (nothing read yet)."""
        if not self._ordered:
            self._learn_order()
        weights = [w for layer in self.layers for w in layer.weights]
        with torch.no_grad():
            grads = [w.grad.detach() if w.grad is not None else torch.zeros_like(w) for w in weights]
            if any(g.is_sparse for g in grads):
                grads = [g.to_dense() if g.is_sparse else g for g in grads]
            # Every norm in one foreach call: weight gradients, back-propagated signals, the weights the step
            # started from (as the trainer: ||W|| before the step).
            order = sorted(self._agrads)
            k, m = len(grads), len(order)
            norms = _gradient_norms(grads + [self._agrads[i] for i in order] + self._before)
            agrad = norms[k : k + m]
            scale = getattr(self.scaler, "_scale", None) if self.scaler is not None else None
            if isinstance(scale, torch.Tensor) and m:  # backward ran on the scaled loss: the signal unscaled
                agrad = agrad / scale.to(agrad.device, torch.float64).reshape(())
            parts: dict[str, Any] = {"grad": norms[:k], "weight": norms[k + m :]}
            torch._foreach_sub_(self._before, [w.detach() for w in weights])  # before - after = -dW
            parts["delta"] = torch.stack(torch._foreach_norm(self._before)).double()
            parts["agrad"] = {i: agrad[j] for j, i in enumerate(order)}
            parts["acts"] = {
                i: {k: v for k, v in r.items() if k not in ("bad", "after")} for i, r in self._outs.items()
            }
            parts["bad"] = {i: r["bad"] for i, r in self._outs.items()}
            parts["grads"] = grads
        parts["batch"] = self._batch
        self._agrads, self._outs = {}, {}
        return parts

    def _learn_order(self) -> None:
        """Forward order, from the first capture: layers whose forward ran, in the order they ran; a layer whose
        forward never runs as a module (an attention's out_proj) goes right after the one that holds it."""
        ran = {i: n for n, i in enumerate(self._order)}
        names = [layer.name for layer in self.layers]

        def key(i: int) -> tuple[float, int]:
            if i in ran:
                return (ran[i], 0)
            parents = [j for j in ran if names[i].startswith(names[j] + ".")]
            return (max((ran[j] for j in parents), default=len(ran)) + 0.5, i)

        order = sorted(range(len(self.layers)), key=key)
        self.layers = [self.layers[i] for i in order]
        where = {old: new for new, old in enumerate(order)}
        self._outs = {where[i]: r for i, r in self._outs.items()}
        self._agrads = {where[i]: g for i, g in self._agrads.items()}
        self._before_order(order)
        self._ordered = True
        self._last_output = None
        self.meta.layers = [layer.name for layer in self.layers]
        self.cfg = stand_in_config(self.description())
        if self._log is not None:
            self._log.describe(self.meta, self.description())

    def _before_order(self, order: list[int]) -> None:
        """Reorder the saved weights with their layers."""
        sizes = [len(layer.weights) for layer in self.layers]  # already reordered
        old_sizes = [0] * len(order)
        for new, old in enumerate(order):
            old_sizes[old] = sizes[new]
        starts = [sum(old_sizes[:k]) for k in range(len(order))]
        self._before = [self._before[starts[old] + j] for old in order for j in range(old_sizes[old])]

    # -- reading and writing -------------------------------------------------------------------------------

    def _finish_pending(self) -> None:
        """The pending capture's one host copy, its snapshot and findings, written to the run directory."""
        if self._pending is None:
            return
        step, parts = self._pending
        self._pending = None
        device = parts["grad"].device
        k = len(parts["grad"])
        acts, agrads = parts["acts"], parts["agrad"]
        keys: list[tuple[int, str]] = []
        values: list[torch.Tensor] = [parts["grad"], parts["weight"], parts["delta"]]
        for i in sorted(acts):
            for stat, v in acts[i].items():
                keys.append((i, stat))
                values.append(v.double().reshape(1).to(device))
        for i in sorted(agrads):
            keys.append((i, "act_grad_norm"))
            values.append(agrads[i].reshape(1).to(device))
        scalars = list(self._device)
        values += [torch.stack(self._device[name]).sum().reshape(1).to(device) for name in scalars]
        flat = torch.cat(values).cpu().tolist()  # the one host copy of this snapshot
        grad_w, weight_w, delta_w = flat[:k], flat[k : 2 * k], flat[2 * k : 3 * k]
        per = flat[3 * k : 3 * k + len(keys)]
        sums = dict(zip(scalars, flat[3 * k + len(keys) :]))
        sums.update({name: self._host.get(name, 0.0) + sums.get(name, 0.0) for name in self._host})
        means = {name: sums[name] / self._counts[name] for name in sums if self._counts.get(name)}
        self._host, self._device, self._counts = {}, {}, {}

        layers, j = [], 0
        for layer in self.layers:
            n = len(layer.weights)
            w = _joint(weight_w[j : j + n])
            delta = _joint(delta_w[j : j + n])
            layers.append(
                LayerStats(layer.name, grad_norm=_joint(grad_w[j : j + n]), weight_norm=w,
                           update_ratio=delta / w if w > 0 and math.isfinite(w) else None)
            )  # fmt: skip
            j += n
        for (i, stat), value in zip(keys, per):
            setattr(layers[i], stat, value)
        now = time.perf_counter()
        per_step = (now - self._last_time) / max(self.steps - self._last_step, 1)
        self._last_time, self._last_step = now, self.steps
        loss = means.pop("loss", None)
        snap = Snapshot(
            step=step, total_steps=0, epoch=0.0, time_s=now - self._t0, loss=finite(loss),
            acc=finite(means.pop("acc", None)), val_loss=finite(means.pop("val_loss", None)),
            val_acc=finite(means.pop("val_acc", None)), lr=self._lr(),
            samples_per_s=parts["batch"] / per_step if parts["batch"] and per_step > 0 else 0.0, layers=layers,
            mem_mb=torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        )  # fmt: skip
        if (loss is not None and not math.isfinite(loss)) or not all(math.isfinite(x) for x in flat):
            snap.nonfinite = True
            self._count_nonfinite(layers, parts["grads"], parts["bad"], self._before)
            self._emit(snap, {k: v for k, v in means.items()})
            self._diverged(snap, _("the loss or a gradient became non-finite by step {step}").format(step=step))
            return
        self._emit(snap, means)

    def _emit(self, snap: Snapshot, extra: dict[str, float]) -> None:
        if self._initial is None:
            self._initial = snap
        snap.findings = diagnose(snap, self._recent, self.cfg, initial=self._initial)
        if not snap.nonfinite:
            self._last_finite = snap
        self._recent.append(snap)
        self.snapshots += 1
        if self._log is not None:
            snap.scalars = extra
            self._log(snap)

    def _count_nonfinite(
        self,
        layers: list[LayerStats],
        grads: list[torch.Tensor],
        bad_acts: dict[int, torch.Tensor],
        before: list[torch.Tensor] | None,
    ) -> None:
        """Something was NaN/Inf: per layer, how many weights (those the step started from, when broken;
        `before` None: not known), gradients and outputs were; a second host copy, on this rare path only."""
        with torch.no_grad():
            zero = torch.zeros((), dtype=torch.long, device=grads[0].device)

            def bad(tensors: list[torch.Tensor]) -> torch.Tensor:
                return sum(((~torch.isfinite(t)).sum().to(zero.device) for t in tensors), zero)

            counts, j = [], 0
            for i, (layer, stats) in enumerate(zip(self.layers, layers)):
                n = len(layer.weights)
                broken = before is not None and (stats.weight_norm is None or not math.isfinite(stats.weight_norm))
                counts += [bad(before[j : j + n]) if broken else zero, bad(grads[j : j + n])]
                counts.append(bad_acts[i].to(zero.device) if i in bad_acts else zero)
                j += n
            flat = torch.stack(counts).cpu().tolist()
        for p, stats in enumerate(layers):
            weights, grads, acts = flat[3 * p : 3 * p + 3]
            stats.nonfinite = {"weights": weights, "grads": grads, "acts": acts}

    def _diverge(self, step: int, template: str, value: float) -> None:
        """A non-finite loss seen between snapshots: the gradients as they are now (the forward pass is gone, and
        the weights may already hold the step that broke them), and the run is diverged."""
        weights = [w for layer in self.layers for w in layer.weights]
        with torch.no_grad():
            grads = [w.grad.detach() if w.grad is not None else torch.zeros_like(w) for w in weights]
            flat = torch.cat([_gradient_norms(grads), _gradient_norms([w.detach() for w in weights])]).cpu().tolist()
        k = len(weights)
        layers, j = [], 0
        for layer in self.layers:
            n = len(layer.weights)
            layers.append(LayerStats(layer.name, grad_norm=_joint(flat[j : j + n]),
                                     weight_norm=_joint(flat[k + j : k + j + n])))  # fmt: skip
            j += n
        snap = Snapshot(step=step, total_steps=0, epoch=0.0, time_s=time.perf_counter() - self._t0, loss=None,
                        lr=self._lr(), layers=layers, nonfinite=True)  # fmt: skip
        self._count_nonfinite(layers, grads, {}, None)
        self._emit(snap, {})
        self._diverged(snap, template.format(value=value, step=step))

    def _diverged(self, snap: Snapshot, message: str) -> None:
        """The run is diverged from here on: no more captures; summary.json says where it broke."""
        self._disarm()
        where = breakdown(snap.layers)
        result = RunResult("diverged", self.steps, last=snap, last_finite=self._last_finite, findings=snap.findings)
        result.message = message + (f": {where.text}" if where else "")
        result.divergence = {"step": snap.step, **(where.to_dict() if where else {})}
        self.result = result
        if self._log is not None:
            self._log.progress(self.meta, result)

    def _lr(self) -> float:
        if self.optimizer is None or not self.optimizer.param_groups:
            return 0.0
        lr = self.optimizer.param_groups[0].get("lr", 0.0)
        return float(lr) if not isinstance(lr, torch.Tensor) else float(lr.detach().cpu())

    def description(self) -> dict[str, Any]:
        """model.toml: what was watched (core/watched.py)."""
        group = self.optimizer.param_groups[0] if self.optimizer is not None and self.optimizer.param_groups else {}
        known = [layer.activation for layer in self.layers if layer.activation]
        activation = max(set(known), key=known.count) if known else None
        momentum = group.get("momentum")
        return {
            "kind": KIND,
            "name": self.name,
            "model": type(self.inner).__qualname__,
            "parameters": sum(p.numel() for p in self.inner.parameters()),
            "compiled": self.compiled,
            "every": self.every,
            "optimizer": type(self.optimizer).__name__ if self.optimizer is not None else None,
            "optim": _optim_kind(self.optimizer),
            "lr": self._lr() or None,
            "momentum": float(momentum) if isinstance(momentum, (int, float)) else None,
            "activation": activation,
            "normalised": any(isinstance(layer.module, NORMS) for layer in self.layers),
            "torch": torch.__version__,
            "layers": [
                {
                    "name": layer.name,
                    "type": type(layer.module).__name__,
                    "shape": ", ".join("x".join(map(str, w.shape)) for w in layer.weights),
                    **({"activation": layer.activation} if layer.activation else {}),
                }
                for layer in self.layers
            ],
        }


def _joint(norms: list[float]) -> float:
    if len(norms) == 1:
        return norms[0]
    return math.sqrt(sum(x * x for x in norms))


class _WatchLog(RunLog):
    """The run directory of a watched run: model.toml where a lab run has config.toml; the rest the same."""

    def __init__(self, directory: Path):
        self.desc: dict[str, Any] = {}
        try:
            super().__init__(directory, force=is_watched(directory))  # re-running a script overwrites its run
        except UserError as exc:
            raise ValueError(f"watch: {exc}") from None

    def description(self, meta: RunMeta) -> tuple[str, str]:
        return MODEL_FILE, dumps_description(self.desc)

    def start(self, meta: RunMeta, desc: dict[str, Any]) -> None:
        self.desc = desc
        self.on_start(meta)

    def describe(self, meta: RunMeta, desc: dict[str, Any]) -> None:
        """The layers in forward order, once the first capture has seen them."""
        self.desc = desc
        self._meta = meta.summary()  # what on_finish writes into summary.json too
        atomic_write(self.dir / MODEL_FILE, dumps_description(desc))
        self.write_summary({"status": "running", "steps": 0, **self._meta})

    def progress(self, meta: RunMeta, result: RunResult) -> None:
        """Diverged while the loop goes on: say so now, for `tui-lab show` following it."""
        self.write_summary({**meta.summary(), **result.to_dict()})

    def finish(self, result: RunResult) -> None:
        self.on_finish(result)
        self.close()


class _CallableModule(types.ModuleType):
    """`import tui_lab.watch` binds this module where `tui_lab.watch` the function is expected: calling the
    module calls the function, so both spellings work."""

    def __call__(self, *args: Any, **kwargs: Any) -> Watch:
        return watch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
