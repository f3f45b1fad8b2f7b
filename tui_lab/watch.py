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
import queue
import sys
import threading
import time
import types
import warnings
from collections import deque
from collections.abc import Callable
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
        self.waits: dict[str, bool] = {}  # may its output ("out") or its follower's wait to be measured (_Outputs)?


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
        self._hooks: list[tuple[nn.Module, Any]] = []  # (module, hook) put on for each capture step
        self._armed = False
        self._pending: tuple[int, dict[str, Any]] | None = None  # a capture read at the next step's start
        self._ordered = False  # the layers are in forward order (learned from the first capture)
        self._before: list[torch.Tensor] = []  # the weights before the capture step
        self._space: dict[torch.device, torch.Tensor] = {}  # _Outputs' buffers
        self._host: dict[str, float] = {}  # scalars logged as Python numbers since the last snapshot
        self._device: dict[str, list[torch.Tensor]] = {}  # ... as tensors (summed on the device)
        self._counts: dict[str, int] = {}
        self._recent: deque[Snapshot] = deque(maxlen=HISTORY + 1)  # the last one, and those it is judged against
        self._initial: Snapshot | None = None
        self._last_finite: Snapshot | None = None
        self._t0 = self._last_time = 0.0
        self._last_step = 0
        self._batch = 0
        self._log: _WatchLog | None = None
        self._writer: _Writer | None = None  # diagnoses and writes the snapshots off the training thread
        self._resume: Any = None  # the model's forward pre-hook, on only while a capture waits to be read
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
            self._handles.append(self.optimizer.register_step_post_hook(self._on_step))
        self._writer = _Writer()
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
        self._unhook_resume()
        self._space.clear()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._writer is not None:  # every queued snapshot on disk before the summary is written
            self._writer.close()
            if self._writer.error is not None and not self.failure:  # it failed after the loop's last step
                self.failure = one_line(self._writer.error)[:300]
                warnings.warn(f"tui_lab.watch stopped measuring: {self.failure}", RuntimeWarning, stacklevel=2)
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
            result.findings = self._judge_last_finite()
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
                if value.numel() != 1:
                    raise ValueError(f"lab.log: {key} has {value.numel()} elements; allowed: a single number")
                if value.device.type == "cpu":
                    value = value.item()  # free on the CPU, and a non-finite loss is seen at its step
                else:
                    self._device.setdefault(key, []).append(value.detach().reshape(()).double())
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
        self._unhook_resume()
        if self._pending is not None:
            self._guard(lambda: self._finish_pending(hold=True))

    def _on_output(self, _module: nn.Module, _args: Any, output: Any) -> None:
        """The forward pass after a capture has ended: its backward pass releases the capture's line to the
        writer (_Writer.hold)."""
        try:
            self._unhook_resume()
            t = _first_tensor(output)
            if t is not None and t.requires_grad and self._writer is not None:
                t.register_hook(self._on_backward)
            elif self._writer is not None:
                self._writer.release()
        except Exception as exc:  # noqa: BLE001 - as _guard
            self._fail(exc)

    def _on_backward(self, _grad: torch.Tensor) -> None:
        if self._writer is not None:
            self._writer.release()

    def _unhook_resume(self) -> None:
        if self._resume is not None:
            self._resume.remove()
            self._resume = None

    def _on_step(self, *_args: Any) -> None:
        try:  # as _guard, inline: this runs on every step
            self._count_step()
        except Exception as exc:  # noqa: BLE001 - as _guard
            self._fail(exc)

    def _guard(self, fn: Any) -> None:
        """The hooks run inside the user's loop: a failure of the watch must not become the loop's failure. It
        stops measuring, says why once (a warning), and the summary keeps the reason."""
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - see above
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self._disarm()
        self._unhook_resume()
        self._pending = None
        self.failure = one_line(exc)[:300]
        self.result = self.result or RunResult("completed", self.steps)  # nothing more is measured
        warnings.warn(f"tui_lab.watch stopped measuring: {self.failure}", RuntimeWarning, stacklevel=4)

    def _safe(self, hook: Any) -> Any:
        def guarded(module: nn.Module, args: Any, output: Any) -> None:
            try:
                hook(module, args, output)
            except Exception as exc:  # noqa: BLE001 - as _guard
                self._fail(exc)

        return guarded

    def _count_step(self) -> None:
        step = self.steps
        self.steps += 1
        if self._writer is not None:
            self._writer.release()  # held for a backward pass that did not come
            if self._writer.error is not None and not self.failure:
                raise self._writer.error  # a write failed on the writer's thread: said here, once, as any failure
        if self._pending is not None:  # no forward of the model came between (it was called another way)
            self._unhook_resume()
            self._finish_pending()
        if self._armed:
            self._disarm()
            if self.result is None:
                self._pending = (step, self._measure())
                # Read when the next forward begins (after this step's loss is logged); the steps between
                # captures run with no hook at all.
                self._unhook_resume()  # one hook at a time (a forward that raised left its own on)
                self._resume = self.model.register_forward_pre_hook(self._on_forward)
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
            torch._foreach_copy_(self._before, weights)
        self._outs = _Outputs(self._space)  # the layers' output numbers
        self._seen: set[int] = set()  # layers whose output has been measured
        self._after: set[int] = set()  # layers whose follower's output has been measured
        self._order: list[int] = []
        self._agrads: dict[int, torch.Tensor] = {}
        # torch.compile: a hook added or removed would recompile the graph, so compiled models get the weights'
        # numbers only (what does not apply is left out).
        if not self.compiled:
            if not self._hooks:
                self._hooks = self._make_hooks()
            for module, hook in self._hooks:
                self._capture_handles.append(module.register_forward_hook(hook))
            # The outputs that wait are measured when the model's forward ends: still in the cache, and not held
            # through the backward pass (_Outputs).
            self._capture_handles.append(self.model.register_forward_hook(self._safe(self._on_capture_output)))
            if not self._ordered:  # the first capture: which activation module takes each layer's output
                self._leaves: list[tuple[nn.Module, Any]] = []
                for module in self.inner.modules():
                    if type(module) in ACTIVATIONS:
                        self._capture_handles.append(module.register_forward_hook(self._safe(self._discover_hook)))
        self._armed = True

    def _make_hooks(self) -> list[tuple[nn.Module, Any]]:
        """The capture's forward hooks, made once (and again when the first capture has learned the order): one
        per layer, and one on the activation after it only where the numbers need its output (saturation; dead
        ReLU units are read from the layer's own output, as ReLU(x) <= 0 exactly where x <= 0)."""
        hooks = []
        for i, layer in enumerate(self.layers):
            hooks.append((layer.module, self._safe(self._output_hook(i))))
            if layer.follower is not None and layer.activation in SATURATION:
                hooks.append((layer.follower, self._safe(self._follower_hook(i))))
        return hooks

    def _disarm(self) -> None:
        for handle in self._capture_handles:
            handle.remove()
        self._capture_handles = []
        self._armed = False

    def _output_hook(self, i: int):
        layer = self.layers[i]

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            t = _first_tensor(output)
            if i in self._seen or t is None or not torch.is_grad_enabled() or not t.is_floating_point():
                return  # a second call (weight sharing, a loop), or an evaluation without gradients
            self._seen.add(i)
            self._order.append(i)
            if not self._batch and args and isinstance(args[0], torch.Tensor) and args[0].dim() > 0:
                self._batch = args[0].shape[0]
            # Detached: no graph is recorded. Dead units are known from the first capture on (the follower's
            # hook found the activation).
            self._outs.add(i, layer, ("out", layer.activation in DEAD_AT_ZERO), t.detach())
            if t.requires_grad:
                t.register_hook(lambda g: self._agrads.__setitem__(i, g))
            if not self._ordered:
                self._last_output = (i, t)

        return hook

    def _on_capture_output(self, _module: nn.Module, _args: Any, _output: Any) -> None:
        self._outs.flush()

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
            layer = self.layers[i]
            if i not in self._seen or i in self._after or not isinstance(output, torch.Tensor):
                return
            self._after.add(i)
            if layer.activation in DEAD_AT_ZERO:
                self._outs.add(i, layer, ("dead",), output.detach())
            if layer.activation in SATURATION:
                self._outs.add(i, layer, ("sat", *SATURATION[layer.activation]), output.detach())

        return hook

    def _measure(self) -> dict[str, Any]:
        """The capture step has stepped: every per-layer number, on the device (nothing read yet)."""
        self._outs.flush()
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
            torch._foreach_sub_(self._before, weights)  # before - after = -dW
            parts["delta"] = torch.stack(torch._foreach_norm(self._before)).double()
            parts["agrad"] = (agrad, order)
            parts["acts"], parts["bad"] = self._outs, self._outs.bad
            parts["grads"] = grads
        parts["batch"] = self._batch
        self._agrads, self._outs, self._seen = {}, _Outputs(self._space), set()
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
        self._outs.renumber(where)
        self._agrads = {where[i]: g for i, g in self._agrads.items()}
        self._before_order(order)
        self._ordered = True
        self._hooks = []  # made again: the layers' indices changed, and their followers are known
        self._last_output = None
        self.meta.layers = [layer.name for layer in self.layers]
        self.cfg = stand_in_config(self.description())
        if self._log is not None:
            self._post(self._log.describe, self.meta, self.description())

    def _before_order(self, order: list[int]) -> None:
        """Reorder the saved weights with their layers."""
        sizes = [len(layer.weights) for layer in self.layers]  # already reordered
        old_sizes = [0] * len(order)
        for new, old in enumerate(order):
            old_sizes[old] = sizes[new]
        starts = [sum(old_sizes[:k]) for k in range(len(order))]
        self._before = [self._before[starts[old] + j] for old in order for j in range(old_sizes[old])]

    # -- reading and writing -------------------------------------------------------------------------------

    def _finish_pending(self, hold: bool = False) -> None:
        """The pending capture's one host copy. Its snapshot, findings and line are made and written on the
        writer's thread; here only when something is non-finite (the run stops being measured at once).
        `hold`: a forward pass begins; the writer starts on the line when its backward pass does."""
        if self._pending is None:
            return
        step, parts = self._pending
        self._pending = None
        device = parts["grad"].device
        k = len(parts["grad"])
        acts, (agrad, order) = parts["acts"], parts["agrad"]
        # (index in keys, divisor) of the numbers divided on the host: one op less per number on the device
        keys, divide = acts.keys + [(i, "act_grad_norm") for i in order], acts.divide
        values: list[torch.Tensor] = [parts["grad"], parts["weight"], parts["delta"]]
        # The per-layer numbers a vector per group of layers (_Outputs), all in the one copy below.
        values += [v.to(device) for v in acts.vectors]
        if order:
            values.append(agrad.to(device))
        scalars = list(self._device)
        if scalars:
            values.append(torch.stack([torch.stack(self._device[name]).sum().to(device) for name in scalars]))
        flat = torch.cat(values).cpu().tolist()  # the one host copy of this snapshot
        sums = dict(zip(scalars, flat[3 * k + len(keys) :]))
        sums.update({name: self._host.get(name, 0.0) + sums.get(name, 0.0) for name in self._host})
        means = {name: sums[name] / self._counts[name] for name in sums if self._counts.get(name)}
        self._host, self._device, self._counts = {}, {}, {}
        now = time.perf_counter()
        per_step = (now - self._last_time) / max(self.steps - self._last_step, 1)
        self._last_time, self._last_step = now, self.steps
        clock = (
            now - self._t0,
            self._lr(),
            parts["batch"] / per_step if parts["batch"] and per_step > 0 else 0.0,
            torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        )
        loss = means.get("loss")
        if (loss is None or math.isfinite(loss)) and all(map(math.isfinite, flat)):
            if hold and self._writer is not None:
                self._writer.hold(lambda: self._record(step, flat, k, keys, divide, means, clock))
                self._resume = self.model.register_forward_hook(self._on_output)
            else:
                self._post(self._record, step, flat, k, keys, divide, means, clock)
            return
        if self._writer is not None:
            self._writer.drain()  # the snapshots before it are diagnosed and written: the history it is judged on
        snap, extra = self._snapshot(step, flat, k, keys, divide, means, clock)
        snap.nonfinite = True
        self._count_nonfinite(snap.layers, parts["grads"], parts["bad"], self._before)
        self._emit(snap, extra)
        self._diverged(snap, _("the loss or a gradient became non-finite by step {step}").format(step=step))

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        """Run `fn(*args)` on the writer's thread, in order with the snapshots (here, without one)."""
        if self._writer is None:
            fn(*args)
        else:
            self._writer.put(lambda: fn(*args))

    def _snapshot(
        self,
        step: int,
        flat: list[float],
        k: int,
        keys: list[tuple[int, str]],
        divide: list[tuple[int, float]],
        means: dict[str, float],
        clock: tuple[float, float, float, float | None],
    ) -> tuple[Snapshot, dict[str, float]]:
        """The snapshot of a capture from its host copy (`flat`: per weight ||grad||, ||W||, ||dW||, then the
        per-layer numbers named by `keys`, those in `divide` still to be divided), and the logged means that
        are not the lab's own columns."""
        grad_w, weight_w, delta_w = flat[:k], flat[k : 2 * k], flat[2 * k : 3 * k]
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
        per = flat[3 * k : 3 * k + len(keys)]
        for j, by in divide:
            per[j] /= by
        for (i, stat), value in zip(keys, per):
            setattr(layers[i], stat, value)
        extra = dict(means)
        time_s, lr, samples_per_s, mem_mb = clock
        snap = Snapshot(
            step=step, total_steps=0, epoch=0.0, time_s=time_s, loss=finite(extra.pop("loss", None)),
            acc=finite(extra.pop("acc", None)), val_loss=finite(extra.pop("val_loss", None)),
            val_acc=finite(extra.pop("val_acc", None)), lr=lr, samples_per_s=samples_per_s, layers=layers,
            mem_mb=mem_mb,
        )  # fmt: skip
        return snap, extra

    def _record(self, *args: Any) -> None:
        """On the writer's thread: a finite capture's snapshot, written."""
        self._emit(*self._snapshot(*args))

    def _emit(self, snap: Snapshot, extra: dict[str, float]) -> None:
        """Record a snapshot. Only the summary keeps findings (metrics lines have none: `tui-lab show` judges each
        snapshot itself), so a finite one is judged once, at the end (_judge_last_finite); a non-finite one now,
        as the run ends diverged with it."""
        if self._initial is None:
            self._initial = snap
        if snap.nonfinite:
            snap.findings = diagnose(snap, list(self._recent)[-HISTORY:], self.cfg, initial=self._initial)
        else:
            self._last_finite = snap
        self._recent.append(snap)
        self.snapshots += 1
        if self._log is not None:
            snap.scalars = extra
            self._log(snap)

    def _judge_last_finite(self) -> list[Any]:
        """The findings of the last finite snapshot, against the snapshots before it (as if judged when it came)."""
        snap = self._last_finite
        if snap is None:
            return []
        history = list(self._recent)
        before = next((history[:n] for n, s in enumerate(history) if s is snap), [])
        snap.findings = diagnose(snap, before[-HISTORY:], self.cfg, initial=self._initial)
        return snap.findings

    def _count_nonfinite(
        self,
        layers: list[LayerStats],
        grads: list[torch.Tensor],
        bad_acts: dict[int, tuple[torch.Tensor, int]],
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
                counts.append(bad_acts[i][0][bad_acts[i][1]].to(zero.device) if i in bad_acts else zero)
                j += n
            flat = torch.stack(counts).cpu().tolist()
        for p, stats in enumerate(layers):
            weights, grads, acts = flat[3 * p : 3 * p + 3]
            stats.nonfinite = {"weights": weights, "grads": grads, "acts": acts}

    def _diverge(self, step: int, template: str, value: float) -> None:
        """A non-finite loss seen between snapshots: the gradients as they are now (the forward pass is gone, and
        the weights may already hold the step that broke them), and the run is diverged."""
        if self._writer is not None:
            self._writer.drain()  # the snapshots before it are written and diagnosed
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


SMALL = 1 << 20  # bytes: an output up to this size waits to be measured with others (below it, ops' fixed cost rules)
WAITING = 8 << 20  # bytes of outputs waiting at once: what they hold past their layer's forward, at most


class _Outputs:
    """One capture's per-layer output numbers, computed a group at a time: outputs of the same kind, shape, dtype
    and device are stacked and reduced with one op per number for the whole group, so that the op count (whose
    fixed cost is most of a small layer's) stops growing with depth. A small output waits until WAITING bytes
    wait, or the step ends; a large one is measured at once, alone (its cost is its bandwidth, not its op count).

    An output changed in place after its layer ran (`ReLU(inplace=True)`, `out += identity`) must be measured
    at once: its version counter says so. The first capture measures every output at once and learns which stay
    unchanged until they would have been measured; later ones let only those wait. One that changes anyway is
    left out of that snapshot (its numbers would be those of another tensor) and is measured at once after."""

    def __init__(self, space: dict[torch.device, torch.Tensor] | None = None) -> None:
        # Per device: where the waiting outputs are stacked, kept from one capture to the next (on a CPU a fresh
        # buffer's page faults cost more than the numbers).
        self.space = {} if space is None else space
        self.waiting: dict[tuple[Any, ...], list[tuple[int, _Layer, torch.Tensor, int]]] = {}
        self.learning: list[tuple[_Layer, tuple[Any, ...], torch.Tensor, int]] = []  # measured at once: do they change?
        self.bytes = 0
        self.keys: list[tuple[int, str]] = []  # (layer index, LayerStats field) of each number, in `vectors` order
        self.vectors: list[torch.Tensor] = []  # 1-D, one number per layer of a group
        self.divide: list[tuple[int, float]] = []  # (index in keys, divisor) of the numbers divided on the host
        self.bad: dict[int, tuple[torch.Tensor, int]] = {}  # layer: (counts, index) of its NaN/Inf outputs

    def add(self, i: int, layer: _Layer, kind: tuple[Any, ...], t: torch.Tensor) -> None:
        """Layer `i`'s output `t` (detached), for the numbers `kind` names: ("out", dead units?): mean, spread
        (and dead units); ("dead",): dead units; ("sat", low, high): the fraction outside (low, high)."""
        size = t.numel() * t.element_size()
        if size > SMALL:
            self._measure(kind, [i], t.unsqueeze(0))
            return
        version = t._version
        waits = layer.waits.get(kind[0])
        if waits:
            self.waiting.setdefault((kind, t.shape, t.dtype, t.device), []).append((i, layer, t, version))
        else:
            self._measure(kind, [i], t.unsqueeze(0))
            if waits is None:  # not known yet
                self.learning.append((layer, kind, t, version))
        self.bytes += size
        if self.bytes > WAITING:
            self.flush()

    def flush(self) -> None:
        """Measure every waiting output (at the latest when the step has stepped)."""
        for layer, kind, t, version in self.learning:
            layer.waits[kind[0]] = t._version == version
        groups = []
        for (kind, *_rest), group in self.waiting.items():
            kept = []
            for i, layer, t, version in group:
                if t._version == version:
                    kept.append((i, t))
                else:
                    layer.waits[kind[0]] = False  # measured at once from now on
            if kept:
                groups.append((kind, kept))
        need: dict[torch.device, int] = {}
        for _kind, kept in groups:
            t = kept[0][1]
            need[t.device] = need.get(t.device, 0) + len(kept) * t.numel()
        for device, numel in need.items():  # grown when a capture needs more; kept for the next one
            if device not in self.space or self.space[device].numel() < numel:
                self.space[device] = torch.empty(numel, dtype=torch.float32, device=device)
        used = dict.fromkeys(need, 0)
        for kind, kept in groups:
            t = kept[0][1]
            x = self.space[t.device][used[t.device] : used[t.device] + len(kept) * t.numel()].view(len(kept), *t.shape)
            used[t.device] += x.numel()
            torch.stack([t for _i, t in kept], out=x)  # in float32, whatever the outputs' dtype
            self._measure(kind, [i for i, _t in kept], x, own=True)
        self.waiting, self.learning, self.bytes = {}, [], 0

    def _measure(self, kind: tuple[Any, ...], index: list[int], x: torch.Tensor, own: bool = False) -> None:
        """The numbers of a stack of outputs `x` (layer first); `own`: `x` is a copy, free to be changed."""
        if x.dtype != torch.float32:  # the numbers in float32, whatever the outputs' dtype
            x, own = x.float(), True
        has_units = x.dim() > 1  # outputs with a last dimension (dead units apply)
        if not has_units:
            x = x.unsqueeze(1)
        # Reduced over every dimension but the layer's, where the values lie (no copy of a strided output).
        dims, n = tuple(range(1, x.dim())), x[0].numel()
        if kind in (("out", True), ("dead",)) and has_units:
            dead, units = _dead(x)
            self._add(index, "dead_frac", dead, units)
        if kind[0] == "sat" and n:
            low, high = kind[1:]
            self._add(index, "sat_frac", torch.logical_or(x < low, x > high).sum(dims), n)
        if kind[0] != "out":
            return
        mean = x.mean(dims)
        self._add(index, "act_mean", mean)
        # How many outputs are NaN/Inf: read only if something broke (where it did). The mean is finite only if
        # every output is, and on a CPU reading it is free, so the count (a costly pass) is made only then; a GPU
        # counts on the device, as reading would wait for it.
        if x.device.type != "cpu":
            counts = (~torch.isfinite(x)).sum(dims)
            self.bad.update({i: (counts, j) for j, i in enumerate(index)})
        else:
            for j, value in enumerate(mean.tolist()):
                if not math.isfinite(value):
                    self.bad[index[j]] = ((~torch.isfinite(x[j])).sum().reshape(1), 0)
        if n > 1:  # the norm of the centred values (in place in a copy): std_mean's CPU path is ~8x slower
            shaped = mean.reshape(-1, *[1] * len(dims))
            centred = x.sub_(shaped) if own else x - shaped
            self._add(index, "act_std", torch.linalg.vector_norm(centred, dim=dims), math.sqrt(n - 1))
        else:
            self._add(index, "act_std", torch.zeros_like(mean))

    def _add(self, index: list[int], stat: str, values: torch.Tensor, divisor: float | None = None) -> None:
        if divisor is not None:
            self.divide += [(len(self.keys) + j, divisor) for j in range(len(index))]
        self.keys += [(i, stat) for i in index]
        self.vectors.append(values)

    def renumber(self, where: dict[int, int]) -> None:
        """The layers' indices after the first capture has put them in forward order."""
        self.keys = [(where[i], stat) for i, stat in self.keys]
        self.bad = {where[i]: b for i, b in self.bad.items()}


def _dead(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Per output of a stack of outputs `x` (layer first): (how many, of how many) units (a channel of a conv map,
    else the last dimension) are <= 0 on every input: of a ReLU's output, or of its input (the same units:
    ReLU(x) <= 0 exactly where x <= 0). A conv map's channels are reduced where they lie (a transposed copy costs
    ~30x more on a CPU)."""
    top = x.amax((1, 3, 4)) if x.dim() == 5 else x.reshape(len(x), -1, x.shape[-1]).amax(1)
    return (top <= 0).sum(1), top.shape[1]


def _joint(norms: list[float]) -> float:
    if len(norms) == 1:
        return norms[0]
    return math.sqrt(sum(x * x for x in norms))


class _Writer:
    """A daemon thread that diagnoses the snapshots and writes the run directory, so that the training thread
    only queues them (the findings, the JSON line and the file writes cost the loop a put). Jobs run in the
    order they were queued; `drain()` waits until every one has run. After a failure the rest are dropped and
    `error` says why (the training thread reports it at its next step, as any failure of the watch).

    A job can be held back until `release()`: the training thread releases it when it will not need the
    interpreter lock for a while (a backward pass), as the writer's Python would otherwise run in turns with the
    loop's, and the loop would wait for all of it."""

    def __init__(self) -> None:
        self.error: Exception | None = None
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._held: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="tui_lab.watch writer", daemon=True)
        self._thread.start()

    def put(self, job: Callable[[], None]) -> None:
        self.release()
        self._jobs.put(job)

    def hold(self, job: Callable[[], None]) -> None:
        """Queue `job` at the next `release()`, or before any job queued after it."""
        self.release()
        self._held = job

    def release(self) -> None:
        if self._held is not None:
            job, self._held = self._held, None
            self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self.error is None:
                    job()
            except Exception as exc:  # noqa: BLE001 - reported on the training thread
                self.error = exc
            finally:
                self._jobs.task_done()

    def drain(self) -> None:
        self.release()
        self._jobs.join()

    def close(self) -> None:
        """Every job run, then the thread ends (a second call does nothing)."""
        if self._thread.is_alive():
            self.release()
            self._jobs.put(None)
            self._thread.join()


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
