"""`tui_lab.lightning`: `tui_lab.watch` as a PyTorch Lightning callback (README: Watch your own model).

    from tui_lab.lightning import TuiLabCallback
    trainer = L.Trainer(max_epochs=5, callbacks=[TuiLabCallback(out="runs/mine", every=10)])
    trainer.fit(module, loader)

Each `fit` opens a watch on the LightningModule with the trainer's first optimiser (its steps are the steps) and,
under 16-bit mixed precision, its GradScaler; the training loss comes from what `training_step` returns, and the
metrics logged with `self.log` join the snapshot they were logged at. The fit's end closes the run: completed,
failed with the exception's message, or stopped (Ctrl-C; SIGTERM, which Lightning turns into an exception). Only
global rank 0 writes. Works with the `lightning` package (`lightning.pytorch`) and the older `pytorch_lightning`.
"""

from __future__ import annotations

import importlib
import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tui_lab.core.i18n import _
from tui_lab.core.run import STOP_REASONS
from tui_lab.core.runlog import atomic_write, read_summary
from tui_lab.watch import Watch


def _callback_bases() -> tuple[type, ...]:
    """The Callback class of every Lightning package installed: a Trainer accepts only its own package's
    callbacks, and both `lightning.pytorch` and `pytorch_lightning` may be installed side by side (the
    `lightning` package brings the other along), so the callback is an instance of each."""
    bases = []
    for package in ("lightning.pytorch", "pytorch_lightning"):
        try:
            bases.append(importlib.import_module(package).Callback)
        except ImportError:
            continue
    if not bases:
        raise ImportError(
            _('tui_lab.lightning needs PyTorch Lightning: pip install "tui-lab[lightning]" (or pytorch-lightning)')
        )
    return tuple(bases)


# Names people log their metrics under (`train_loss`, `val/acc`, `loss/val`, `valid_accuracy`...), mapped onto the
# lab's columns; Lightning adds `_step` / `_epoch` to a metric logged both per step and per epoch.
_SPLITS = {"": "", "train": "", "training": "", "val": "val_", "valid": "val_", "validation": "val_"}
_METRICS = {"loss": "loss", "acc": "acc", "accuracy": "acc"}
_SUFFIX = re.compile(r"[_/.](step|epoch)$")


def column(key: str) -> str:
    """The lab's column a logged metric fills (`loss`, `acc`, `val_loss`, `val_acc`), else the key itself."""
    parts = [p for p in re.split(r"[/_.\- ]+", _SUFFIX.sub("", key.lower())) if p]
    if len(parts) == 1:
        parts = ["", parts[0]]
    if len(parts) == 2:
        for split, metric in (parts, parts[::-1]):
            if split in _SPLITS and metric in _METRICS:
                return _SPLITS[split] + _METRICS[metric]
    return key


def _number(value: Any) -> Any:
    """A single number (a one-element tensor or a Python number), else None: what `lab.log` takes."""
    if isinstance(value, torch.Tensor):
        return value if value.numel() == 1 and not value.is_complex() else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


class _Hooks:
    """The callback's hooks; `TuiLabCallback` puts them on the installed Lightning packages' Callback classes."""

    def __init__(
        self,
        out: str | Path | None = None,
        every: int = 10,
        name: str | None = None,
        layers: str | list[str] | None = None,
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"TuiLabCallback: every = {every!r}: allowed: an integer >= 1")
        self.out, self.every, self.name, self.layers = out, every, name, layers
        self.lab: Watch | None = None  # the watch of the fit under way (dropped after: it holds a weights' copy)
        self.run_dir: Path | None = None  # the run directory of the fit under way, else of the last one
        self.result: Any = None  # the last fit's RunResult (status, message, findings), once it has ended
        self._loss_from_outputs = False  # training_step returns the loss: callback_metrics' is not counted again
        self._metrics_at = -1  # the step whose logged metrics went into its snapshot

    # -- opening and closing -------------------------------------------------------------------------------

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer, pl_module)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer, pl_module)  # already open from on_fit_start, unless a subclass skipped it

    def _start(self, trainer: Any, pl_module: Any) -> None:
        if self.lab is not None or not trainer.is_global_zero:
            return
        optimizers = list(getattr(trainer, "optimizers", None) or [])
        plugin = getattr(trainer, "precision_plugin", None)
        # 16-mixed: the GradScaler (bf16-mixed has none); the signal is read unscaled with it.
        scaler = getattr(plugin, "scaler", None)
        lab = Watch(pl_module, optimizers[0] if optimizers else None, out=self.out, every=self.every,
                    name=self.name, layers=self.layers, scaler=scaler)  # fmt: skip
        lab.__enter__()
        self.lab, self.run_dir, self.result = lab, lab.run_dir, None
        self._loss_from_outputs, self._metrics_at = False, -1

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._close(None)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close(None)  # a fit with nothing to train (max_steps=0) has no on_train_end

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        try:
            self._close(exception)
        except Exception as exc:  # noqa: BLE001 - the training's own exception is the one that must go on
            warnings.warn(f"tui_lab: the run directory could not be closed: {exc}", RuntimeWarning, stacklevel=2)

    def _close(self, exception: BaseException | None) -> None:
        lab, self.lab = self.lab, None
        if lab is None:
            return
        if exception is None:
            lab.__exit__(None, None, None)
        else:
            lab.__exit__(type(exception), exception, exception.__traceback__)
        self.result = lab.result
        if type(exception).__name__ == "SIGTERMException" and lab.run_dir is not None:
            self._terminated(lab.run_dir)

    def _terminated(self, run_dir: Path) -> None:
        """Lightning turns SIGTERM into SIGTERMException (a SystemExit): the summary says terminated, as a lab run
        stopped by SIGTERM does, not the interruption any other SystemExit is."""
        summary = read_summary(run_dir)
        if summary is None or summary.get("status") != "stopped":
            return
        reason = STOP_REASONS["terminated"]
        summary.update(reason="terminated", message=_(reason))
        if self.result is not None:
            self.result.reason, self.result.message = "terminated", _(reason)
        atomic_write(run_dir / "summary.json", json.dumps(summary, allow_nan=False, indent=2) + "\n")

    # -- each batch ----------------------------------------------------------------------------------------

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        lab = self.lab
        if lab is None:
            return
        if lab.optimizer is None:
            lab.step()  # no optimiser to count the steps (configure_optimizers returned none): a batch is one
        scalars: dict[str, Any] = {}
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        loss = _number(loss)
        if loss is not None:
            if getattr(pl_module, "automatic_optimization", False):
                # Lightning divides the returned loss by accumulate_grad_batches before handing it here.
                loss = loss * getattr(trainer, "accumulate_grad_batches", 1)
            scalars["loss"] = loss
            self._loss_from_outputs = True
        if lab.steps and (lab.steps - 1) % lab.every == 0 and self._metrics_at != lab.steps:
            # The step just taken is a snapshot's: what `self.log` holds now joins it, once.
            self._metrics_at = lab.steps
            scalars.update(self._logged(trainer, scalars))
        if scalars:
            lab.log(**scalars)

    def _logged(self, trainer: Any, taken: dict[str, Any]) -> dict[str, Any]:
        """trainer.callback_metrics' single numbers, on the lab's columns where their names say which; per step
        (`x_step`) before per epoch (`x_epoch`) when both are there."""
        metrics = dict(getattr(trainer, "callback_metrics", None) or {})
        found: dict[str, Any] = {}
        for key in sorted(metrics, key=lambda k: k.endswith("epoch")):
            name = column(key)
            value = _number(metrics[key])
            if value is None or name in found or name in taken:
                continue
            if name == "loss" and self._loss_from_outputs:
                continue  # the loss training_step returns, every step, is the curve; its logged copy is not
            found[name] = value
        return found


class TuiLabCallback(_Hooks, *_callback_bases()):  # type: ignore[misc]
    """Watch a LightningModule while a Trainer fits it: `TuiLabCallback(out=None, every=10, name=None,
    layers=None)`, the arguments of `tui_lab.watch` (README: Watch your own model). `.run_dir` is the run
    directory, `.result` the last fit's ending (status, message, findings)."""
