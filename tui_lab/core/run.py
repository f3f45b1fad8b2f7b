"""The records of a run, shared by the trainer, the run directory, the UI and the sweep. Plain Python data:
no torch, no Textual, so the UI can import them without loading either.

- `Control`: run, pause, step, stop, shared by whoever drives a run and the trainer thread.
- `RunMeta`: what is known once a run has started (device, probe points, steps).
- `Snapshot` of `LayerStats` (and an optional `Histogram`), one every `train.log_every` steps, with its
  `Finding`s; `Snapshot.to_dict` is a metrics.jsonl line (README: Run directory). Some snapshots carry what
  the network `Learned` (a learned.jsonl line of its own).
- `RunResult`: how the run ended (`Status`) and its summary.json.
"""

from __future__ import annotations

import functools
import math
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tui_lab.core.fmt import num
from tui_lab.core.i18n import N_, _

if TYPE_CHECKING:
    from tui_lab.core.config import LabConfig

Status = Literal["completed", "diverged", "stopped", "failed"]
# A diverged or user-stopped run is an outcome, not an error: only a failure makes the command fail.
EXIT_CODES: dict[str, int] = {"completed": 0, "diverged": 0, "stopped": 0, "failed": 1}
ENDED_OK = tuple(status for status, code in EXIT_CODES.items() if code == 0)
RUN_STATUSES = ("running", *EXIT_CODES)  # what summary.json's status may say (anything else: damage)
# Why a `stopped` run stopped (summary.json "reason"; its "message" is the sentence, in the run's language).
STOP_REASONS: dict[str, str] = {
    "user": N_("stopped by the user"),  # a key in the TUI, Ctrl-C, a sweep's Ctrl-C
    "hangup": N_("the terminal hung up (SIGHUP: the SSH connection dropped?)"),
    "terminated": N_("terminated by a signal (SIGTERM)"),
    "interrupted": N_("interrupted"),  # a second Ctrl-C: stopped mid-step
}
# The words a run's state and pace are shown with (`_(state)`): machine names in files, translated on screen.
STATE_WORDS = (
    *(N_("idle"), N_("loading"), N_("running"), N_("paused"), N_("completed"), N_("diverged"), N_("stopped")),
    *(N_("failed"), N_("following"), N_("replay"), N_("slow"), N_("normal"), N_("max")),
)


# Reading records back from files (the run directory): a value of the wrong type is a missing value, never an
# exception, so a damaged line shows what it still holds.
def _num(value: Any) -> float | None:
    """A finite number as a float, else None (a string, a bool, a list, NaN). Exact types: JSON gives no others,
    and this runs for every number of every line `show` reads."""
    kind = type(value)
    if kind is float:
        return value if -_FLOAT_MAX <= value <= _FLOAT_MAX else None  # NaN fails both comparisons
    if kind is int:
        return float(value) if -_FLOAT_MAX <= value <= _FLOAT_MAX else None  # an int too big for a float
    return None


_FLOAT_MAX = sys.float_info.max


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class Control:
    """Thread-safe run/pause/step/stop, shared by the UI (or a signal handler) and the trainer."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._stopped = False
        self.reason = ""  # why it was stopped: a key of STOP_REASONS (the first stop's)
        self._steps = 0  # single steps granted while paused
        self.waited_s = 0.0  # time the trainer has spent paused (kept out of samples/s and the ETA)
        self.histogram_layer: int | None = None  # which probe point's gradient histogram the UI wants
        # The UI shows what the network learned: the trainer measures it at the panel's rate, not only every
        # few seconds (core/learned.py: LearnedClock).
        self.learned = False
        self.pace: float | None = None  # at most this many snapshots a second (PACES); None: as fast as it goes
        self._changes: dict[str, float] = {}  # hyperparameters to change before the next step

    def change(self, key: str, value: float) -> None:
        """Ask for a hyperparameter to change before the next step (a key of LIVE_KEYS: optim.lr, ...)."""
        with self._cond:
            self._changes[key] = value
            self._cond.notify_all()

    def take_changes(self) -> dict[str, float]:
        """The changes asked for since the last call (the trainer's, once per step: no lock when none)."""
        if not self._changes:
            return {}
        with self._cond:
            changes, self._changes = self._changes, {}
        return changes

    def set_pace(self, pace: float | None) -> None:
        with self._cond:
            self.pace = pace
            self._cond.notify_all()  # a trainer waiting out a slower pace looks again

    def restart(self) -> None:
        """A stopped or finished run may go on (extended): forget the stop."""
        with self._cond:
            self._stopped = False
            self.reason = ""
            self._paused = False
            self._steps = 0

    @property
    def stopped(self) -> bool:
        return self._stopped

    def hold(self, since: float) -> None:
        """Keep the pace: return once 1/pace seconds have passed since `since` (perf_counter), or at once when
        the run is paused, stopped or its pace raised. The time held is kept out of samples/s, like a pause."""
        start = time.perf_counter()
        with self._cond:
            while self.pace and not self._stopped and not self._paused:
                left = since + 1.0 / self.pace - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.25))
            self.waited_s += time.perf_counter() - start

    @property
    def paused(self) -> bool:
        return self._paused

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

    def stop(self, reason: str = "user") -> None:
        """Stop after the current step. The first stop's `reason` (STOP_REASONS) is kept: the clean-up after a
        hang-up stops the run again, and it stays a hang-up."""
        with self._cond:
            if not self._stopped:
                self.reason = reason
            self._stopped = True
            self._cond.notify_all()

    def wait(self) -> Literal["run", "step", "stop"]:
        """Called by the trainer before every step: go on, take one granted step, or stop."""
        if not self._paused and not self._stopped:
            return "run"  # the fast path: no lock per step
        with self._cond:
            start = time.perf_counter()
            while self._paused and not self._stopped and self._steps == 0:
                self._cond.wait(0.25)
            self.waited_s += time.perf_counter() - start
            if self._stopped:
                return "stop"
            if self._paused:
                self._steps -= 1
                return "step"
            return "run"


@dataclass
class LayerStats:
    """One probe point's statistics (README: Run directory)."""

    name: str
    grad_norm: float | None = None
    weight_norm: float | None = None
    update_ratio: float | None = None
    act_mean: float | None = None
    act_std: float | None = None
    dead_frac: float | None = None
    sat_frac: float | None = None
    act_grad_norm: float | None = None  # ||d loss / d h|| at the layer's output: the back-propagated signal
    # Only when something was NaN/Inf: how many of the layer's weights, gradients and activations were.
    nonfinite: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dict(vars(self))  # flat floats: no deep copy (asdict)
        if d["nonfinite"] is None:
            del d["nonfinite"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "") -> LayerStats:
        """A layer of a metrics line: numbers that are not finite numbers are missing (None)."""
        counts = d.get("nonfinite")
        nonfinite = None
        if isinstance(counts, dict):
            nonfinite = {k: v for k, v in counts.items() if isinstance(k, str) and _int(v, -1) >= 0}
        top = _FLOAT_MAX
        numbers = {  # a finite float as it is (nearly all of them), anything else through _num: no call per value
            k: v if type(v) is float and -top <= v <= top else _num(v) for k, v in d.items() if k in _LAYER_NUMBERS
        }
        return cls(name=_str(d.get("name"), name), nonfinite=nonfinite, **numbers)  # type: ignore[arg-type]


_LAYER_NUMBERS = frozenset(f.name for f in fields(LayerStats) if f.name not in ("name", "nonfinite"))


# Hyperparameters a run takes while it goes (the config panel sends them; README: Changing a run as it goes).
LIVE_KEYS = ("optim.lr", "optim.momentum", "optim.weight_decay", "optim.clip_norm")
PACES: dict[str, float | None] = {"slow": 2.0, "normal": 8.0, "max": None}  # snapshots a second at most


@dataclass
class Change:
    """A hyperparameter changed while the run went: from `step` on, `key` was `to` (it had been `was`)."""

    step: int
    key: str
    was: float
    to: float
    applied: bool = True  # False: this optimiser has no such setting (momentum for Adam): recorded, no effect

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Change:
        applied = d.get("applied", True) is not False
        return cls(_int(d.get("step")), _str(d.get("key")), _num(d.get("was")), _num(d.get("to")), applied)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """'lr 0.1→0.01' (for the curves' marks)."""
        name = self.key.rsplit(".", 1)[-1]
        return f"{name} {num(self.was, 3)}→{num(self.to, 3)}" + ("" if self.applied else _(" (unused)"))


@dataclass
class Histogram:
    layer: str
    edges: list[float]  # bins + 1 edges
    counts: list[int]


LearnedKind = Literal["regions", "sequences", "classes"]


@dataclass
class Learned:
    """What the network has learned, measured on the validation data (core/learned.py; README: Run directory,
    learned.jsonl). One of three kinds, each with its own fields (the others stay empty):

    - `regions` (2-D points): the predicted class over a grid of the plane within `bounds` (x0, x1, y0, y1),
      `grid` rows top row first (y1), one digit per cell, column 0 at x0; `confidence` the same shape, the
      winning class's probability from chance (0) to certain (9); `points`: (x, y, class) of a fixed set of
      validation points.
    - `sequences`: a few validation sequences' `targets` and `predictions`; `inputs` what each showed: the
      adding problem's two marked values, the copy task's first symbols (the first one is to be named).
    - `classes` (digits): per class, the validation examples named right (`correct`) of `counts`.
    """

    step: int
    kind: LearnedKind
    classes: int = 0  # the number of classes (0: a regression)
    task: str = ""  # the data set's name
    bounds: tuple[float, float, float, float] | None = None
    grid: list[str] = field(default_factory=list)
    confidence: list[str] = field(default_factory=list)
    points: list[tuple[float, float, int]] = field(default_factory=list)
    targets: list[float] = field(default_factory=list)
    predictions: list[float | None] = field(default_factory=list)
    inputs: list[list[float]] = field(default_factory=list)
    correct: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    @property
    def accuracy(self) -> list[float | None]:
        """Per class: the fraction of its validation examples named right (None: the class has none)."""
        return [c / n if n else None for c, n in zip(self.correct, self.counts)]

    def to_dict(self) -> dict[str, Any]:
        """A learned.jsonl line: the step, the kind and the fields of that kind."""
        d: dict[str, Any] = {"step": self.step, "kind": self.kind, "classes": self.classes, "task": self.task}
        keys = {
            "regions": ("bounds", "grid", "confidence", "points"),
            "sequences": ("targets", "predictions", "inputs"),
            "classes": ("correct", "counts"),
        }.get(self.kind, ())
        for key in keys:
            value = getattr(self, key)
            d[key] = list(value) if isinstance(value, tuple) else value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Learned:
        """A learned.jsonl line; what has the wrong type or shape is left out (a damaged file draws what is left)."""
        bounds = [_num(v) for v in _list(d.get("bounds"))]
        kind = d.get("kind")
        points = [p for p in _list(d.get("points")) if isinstance(p, list) and len(p) == 3]
        numbers = [(_num(p[0]), _num(p[1]), p[2]) for p in points]
        return cls(
            step=max(_int(d.get("step")), 0),
            kind=kind if kind in ("regions", "sequences", "classes") else "regions",
            classes=max(_int(d.get("classes")), 0),
            task=_str(d.get("task")),
            bounds=tuple(bounds) if len(bounds) == 4 and None not in bounds else None,  # type: ignore[arg-type]
            grid=_digit_rows(d.get("grid")),
            confidence=_digit_rows(d.get("confidence")),
            points=[(x, y, c) for x, y, c in numbers if x is not None and y is not None and _int(c, -1) >= 0],  # type: ignore[misc]
            targets=[v for v in map(_num, _list(d.get("targets"))) if v is not None],
            predictions=[_num(v) for v in _list(d.get("predictions"))],
            inputs=[[_num(v) for v in row] for row in _list(d.get("inputs")) if isinstance(row, list)],  # type: ignore[misc]
            correct=[max(_int(v), 0) for v in _list(d.get("correct"))],
            counts=[max(_int(v), 0) for v in _list(d.get("counts"))],
        )


def _digit_rows(value: Any) -> list[str]:
    """A grid of digits, one string per row, all as wide as the first; anything else is no grid."""
    rows = _list(value)
    if not rows or not all(isinstance(r, str) and r.isascii() and r.isdigit() for r in rows):
        return []
    return rows if all(len(r) == len(rows[0]) for r in rows) else []


@dataclass
class Finding:
    kind: str  # vanishing | exploding | dead | saturated | update_ratio | nonfinite | vanishing_time | ...
    severity: str  # info | warn | error
    layers: list[str]
    value: float | None
    message: str
    remedy: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def text(self) -> str:
        return f"{self.message} — {self.remedy}" if self.remedy else self.message


@dataclass
class RunMeta:
    """What the sinks learn when a run starts; `summary()` is the part summary.json keeps."""

    config: LabConfig | None = None
    preset: str | None = None
    device: str = ""
    device_name: str = ""
    layers: list[str] = field(default_factory=list)
    total_steps: int = 0
    chance_loss: float | None = None  # the loss of the best constant guess: where a net that learns nothing sits

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "config"}

    @classmethod
    def from_summary(cls, summary: dict[str, Any], config: LabConfig | None = None) -> RunMeta:
        """From summary.json; a value of the wrong type is a missing one."""
        preset = summary.get("preset")
        return cls(
            config=config,
            preset=preset if isinstance(preset, str) else None,
            device=_str(summary.get("device")),
            device_name=_str(summary.get("device_name")),
            layers=[name for name in _list(summary.get("layers")) if isinstance(name, str)],
            total_steps=max(_int(summary.get("total_steps")), 0),
            chance_loss=_num(summary.get("chance_loss")),
        )


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
    histogram: Histogram | None = None  # of the layer the UI asked for (Control.histogram_layer)
    learned: Learned | None = None  # what the network learned (not in the metrics line: learned.jsonl)
    findings: list[Finding] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)  # hyperparameters changed since the previous snapshot
    scalars: dict[str, float] = field(default_factory=dict)  # a watched loop's own scalars (lab.log), by name

    @functools.cached_property
    def grad_total(self) -> float | None:
        """The joint gradient norm of all layers; None when any is missing or not finite. Cached: the
        diagnosis compares each snapshot with the twenty before it."""
        values = [layer.grad_norm for layer in self.layers]
        if not values or any(v is None or not math.isfinite(v) for v in values):
            return None
        return math.sqrt(sum(v * v for v in values))  # type: ignore[operator]

    def to_dict(self) -> dict[str, Any]:
        """The metrics.jsonl line."""
        d: dict[str, Any] = {
            "step": self.step,
            "epoch": round(self.epoch, 4),
            "time_s": round(self.time_s, 4),
            "loss": self.loss,
            "acc": self.acc,
            "val_loss": self.val_loss,
            "val_acc": self.val_acc,
            "lr": self.lr,
            "samples_per_s": round(self.samples_per_s, 1),
            "layers": [layer.to_dict() for layer in self.layers],
        }
        if self.time_grad_norm is not None:
            d["time_grad_norm"] = self.time_grad_norm
        if self.mem_mb is not None:
            d["mem_mb"] = round(self.mem_mb, 1)
        if self.nonfinite:
            d["nonfinite"] = True
        if self.changes:
            d["changes"] = [c.to_dict() for c in self.changes]
        if self.scalars:
            d["scalars"] = dict(self.scalars)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], total_steps: int = 0) -> Snapshot:
        """A metrics.jsonl line. A value of the wrong type (a string for a number, a list for a layer) is a
        missing value: a damaged line shows what it still holds."""
        layers = []
        for i, layer in enumerate(_list(d.get("layers"))):
            if isinstance(layer, dict):
                layers.append(LayerStats.from_dict(layer, f"L{i + 1}"))
        time_grads = d.get("time_grad_norm")
        return cls(
            step=max(_int(d.get("step")), 0),
            total_steps=total_steps,
            epoch=_num(d.get("epoch")) or 0.0,
            time_s=_num(d.get("time_s")) or 0.0,
            loss=_num(d.get("loss")),
            acc=_num(d.get("acc")),
            val_loss=_num(d.get("val_loss")),
            val_acc=_num(d.get("val_acc")),
            lr=_num(d.get("lr")) or 0.0,
            samples_per_s=_num(d.get("samples_per_s")) or 0.0,
            layers=layers,
            time_grad_norm=[_num(v) for v in time_grads] if isinstance(time_grads, list) else None,  # type: ignore[misc]
            mem_mb=_num(d.get("mem_mb")),
            nonfinite=d.get("nonfinite") is True,
            changes=[Change.from_dict(c) for c in _list(d.get("changes")) if isinstance(c, dict)],
            scalars={
                str(k): x
                for k, v in (d.get("scalars") if isinstance(d.get("scalars"), dict) else {}).items()
                if (x := _num(v)) is not None
            },
        )


@dataclass
class RunResult:
    status: Status
    steps: int  # optimiser steps taken
    message: str = ""
    last: Snapshot | None = None
    last_finite: Snapshot | None = None
    findings: list[Finding] = field(default_factory=list)
    elapsed_s: float = 0.0
    device: str = ""
    divergence: dict[str, Any] | None = None  # where a diverged run broke: step, layer, quantity
    changes: list[Change] = field(default_factory=list)  # every hyperparameter changed during the run
    reason: str = ""  # a stopped run: why (a key of STOP_REASONS)
    user_error: bool = False  # failed for a reason on the user's side (a full disk): the command exits 2

    @property
    def final(self) -> Snapshot | None:
        """The last snapshot with finite numbers (a diverged run's last one has none)."""
        return self.last_finite or self.last

    def to_dict(self) -> dict[str, Any]:
        """summary.json."""
        final = self.final
        summary: dict[str, Any] = {
            "status": self.status,
            "steps": self.steps,
            "message": self.message,
            "elapsed_s": round(self.elapsed_s, 3),
            "device": self.device,
            "final": final.to_dict() if final else None,
            "diverged_at": self.last.step if self.status == "diverged" and self.last else None,
            "divergence": self.divergence,
            "findings": [f.to_dict() for f in self.findings],
            "changes": [c.to_dict() for c in self.changes],
        }
        if self.status == "stopped" and self.reason:
            summary["reason"] = self.reason
        return summary


class Sink(Protocol):
    """Where a trainer sends its snapshots (the run log, the UI's bridge, a progress printer). A sink may
    also have `on_start(meta: RunMeta)` and `on_finish(result: RunResult)`; both are optional."""

    def __call__(self, snapshot: Snapshot) -> Any: ...
