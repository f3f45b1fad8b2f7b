"""What the network learned, measured on the validation data for the panel of that name (README: Run directory,
learned.jsonl): the decision regions over the plane for 2-D points, prediction against target on a few
validation sequences, the accuracy of each class for digits.

It is measured on snapshot steps only, and only when due (`LearnedClock`): at the first snapshot and the last,
at most every VISIBLE_S while the UI shows the panel, else every BACKGROUND_S (so that a run directory can
replay it). The steps in between never pay anything. A measurement is one batched forward pass without
gradients, with the model in eval mode like `trainer.evaluate`, and one host copy: 3.5 ms for relu-he's plane
(48 x 48 points through ten 64-wide layers, one CPU thread), 10 ms for cnn-digits' 360 validation images,
0.3 ms for 8 sequences; at the panel's rate about 1-2% of a CPU run's time. What never changes (the plane's
points, the validation points shown, the targets) is made once per run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from tui_lab.core import choices
from tui_lab.core.data import Dataset
from tui_lab.core.run import Control, Learned

GRID = 48  # grid cells along the longer side of the plane (a panel samples what it has room for)
MARGIN = 0.1  # the plane: the data's extent and this fraction of it on every side
MAX_POINTS = 200  # validation points shown on the plane
SEQUENCES = 8  # validation sequences shown
COPY_SYMBOLS = 8  # the copy task: how many of each sequence's first symbols are kept
CHUNK = 4096  # inputs per forward pass
VISIBLE_S = 0.5  # the panel redraws at most twice a second (main_screen.PANEL_INTERVAL_S): no use measuring more
BACKGROUND_S = 5.0  # while nobody looks: enough for `tui-lab show` to replay how it changed

KINDS = {"points": "regions", "sequences": "sequences", "images": "classes"}  # data kind -> Learned.kind


class LearnedClock:
    """Says on which snapshot steps to measure: the first, the last, and in between at most every VISIBLE_S
    while `control.learned` (the panel is on screen), else every BACKGROUND_S. Wall time, not steps: a fast
    run and a slow one cost the same few measurements a second, whatever `log_every` is."""

    def __init__(
        self,
        control: Control,
        visible_s: float = VISIBLE_S,
        background_s: float = BACKGROUND_S,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.control, self.visible_s, self.background_s, self.clock = control, visible_s, background_s, clock
        self._last: float | None = None

    def due(self, last: bool = False) -> bool:
        now = self.clock()
        every = self.visible_s if getattr(self.control, "learned", False) else self.background_s
        if last or self._last is None or now - self._last >= every:
            self._last = now
            return True
        return False


class LearnedProbe:
    """Measures what a model has learned on one data set; made once per run (the fixed parts on the device and
    the host), called on the steps `LearnedClock` picks."""

    def __init__(self, data: Dataset, data_kind: str, task: str = ""):
        self.data, self.task = data, task
        self.kind = KINDS.get(data_kind)
        self.classes = data.n_outputs if data.task == "classify" else 0
        device = data.x_val.device
        if self.kind == "regions":
            if data.input_shape != (2,) or not self.classes:
                self.kind = None
                return
            xy = torch.cat([data.x_train, data.x_val]).double()
            (x0, y0), (x1, y1) = xy.min(0).values.tolist(), xy.max(0).values.tolist()
            mx, my = max((x1 - x0) * MARGIN, 0.05), max((y1 - y0) * MARGIN, 0.05)
            x0, x1, y0, y1 = x0 - mx, x1 + mx, y0 - my, y1 + my
            cell = max(x1 - x0, y1 - y0) / GRID  # square cells: the panel keeps the plane's shape
            self.cols = max(1, min(GRID, math.ceil((x1 - x0) / cell - 1e-9)))
            self.rows = max(1, min(GRID, math.ceil((y1 - y0) / cell - 1e-9)))
            self.bounds = (round(x0, 4), round(x1, 4), round(y0, 4), round(y1, 4))
            xs = x0 + (torch.arange(self.cols, dtype=torch.float64) + 0.5) * (x1 - x0) / self.cols
            ys = y1 - (torch.arange(self.rows, dtype=torch.float64) + 0.5) * (y1 - y0) / self.rows  # top row first
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            self.plane = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(data.x_val.dtype).to(device)
            shown = data.x_val[:MAX_POINTS].tolist(), data.y_val[:MAX_POINTS].tolist()  # already shuffled
            self.points = [(round(x, 2), round(y, 2), int(c)) for (x, y), c in zip(*shown)]  # a cell is ~0.04
        elif self.kind == "sequences":
            x, y = data.x_val[:SEQUENCES], data.y_val[:SEQUENCES]
            self.x = x
            if self.classes:  # copy: one-hot symbols; the first is the one to name
                self.targets = [int(v) for v in y.tolist()]
                self.inputs = x[:, :COPY_SYMBOLS].argmax(-1).tolist()
            else:  # adding: (value, marker) per step; the target is the sum of the two marked values
                self.targets = [round(float(v), 4) for v in y.reshape(-1).tolist()]
                self.inputs = [
                    [round(float(v), 4) for v in row[:, 0][row[:, 1] > 0.5].tolist()] for row in x.cpu().unbind(0)
                ]
        elif self.kind == "classes":
            if not self.classes:
                self.kind = None
                return
            self.counts = torch.bincount(data.y_val.cpu(), minlength=self.classes).tolist()

    def __call__(self, model: torch.nn.Module, step: int) -> Learned | None:
        if self.kind is None:
            return None
        was_training = model.training
        capture = getattr(model, "capture", None)
        model.eval()  # BatchNorm on its running statistics, dropout off: as the validation loss is measured
        if capture is not None:
            model.capture = False  # type: ignore[assignment] - record nothing for the probes
        try:
            with torch.no_grad():
                return self._measure(model, step)
        finally:
            model.train(was_training)
            if capture is not None:
                model.capture = capture  # type: ignore[assignment]

    def _forward(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([model(x[i : i + CHUNK]) for i in range(0, len(x), CHUNK)])

    def _measure(self, model: torch.nn.Module, step: int) -> Learned:
        base = {"step": step, "classes": self.classes, "task": self.task}
        if self.kind == "regions":
            probs = torch.softmax(self._forward(model, self.plane).float(), 1)
            top, pred = probs.max(1)
            chance = 1.0 / self.classes
            level = torch.nan_to_num((top - chance) / (1 - chance) * 10, nan=0.0).clamp(0, 9).long()
            both = torch.stack([pred, level]).reshape(2, self.rows, self.cols).cpu().tolist()  # the one copy
            rows = ["".join(map(str, row)) for row in both[0]]
            confidence = ["".join(map(str, row)) for row in both[1]]
            return Learned(kind="regions", bounds=self.bounds, grid=rows, confidence=confidence,
                           points=list(self.points), **base)  # fmt: skip
        if self.kind == "sequences":
            out = model(self.x)
            if self.classes:
                predictions: list[float | None] = [int(v) for v in out.argmax(1).tolist()]
            else:
                predictions = [round(v, 4) if math.isfinite(v) else None for v in out.reshape(-1).float().tolist()]
            return Learned(kind="sequences", targets=list(self.targets), predictions=predictions,
                           inputs=[list(row) for row in self.inputs], **base)  # fmt: skip
        x, y = self.data.x_val, self.data.y_val
        pred = torch.cat([model(x[i : i + CHUNK]).argmax(1) for i in range(0, len(x), CHUNK)])
        correct = torch.bincount(y[pred == y], minlength=self.classes).tolist()
        return Learned(kind="classes", correct=correct, counts=list(self.counts), **base)


def probe_for(data: Dataset, data_name: str) -> LearnedProbe:
    """The probe for a data set of the configuration (its kind from the choice table)."""
    return LearnedProbe(data, choices.DATASETS.get(data_name, ""), data_name)


def measure(model: torch.nn.Module, data: Dataset, step: int, data_name: str) -> Learned | None:
    """What `model` has learned on `data` now (one measurement; a run keeps its `LearnedProbe`)."""
    return probe_for(data, data_name)(model, step)
