"""Per-layer gradient and activation statistics, computed on the device.

Probes work only on capture steps (the steps a snapshot is due); on the other steps they do nothing at all,
so training runs at the speed of a plain PyTorch loop. On a capture step the device computes raw reductions
for all layers at once (one foreach norm over every gradient, weight and activation gradient; the hidden
activations stacked so that mean, spread, dead and saturated units are one op each for all layers), the
pieces are concatenated and copied to the host once (`read`, no `.item()` per layer), and the host turns
them into the per-layer statistics with scalar arithmetic. On a CPU, per-op dispatch and passes over memory,
not arithmetic, are what probes cost, so the number of ops per snapshot is kept small and independent of
the depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from tui_lab.core.choices import ACTIVATIONS
from tui_lab.core.models import LabModel
from tui_lab.core.run import Histogram, LayerStats

STACK_LIMIT = 2**22  # activation elements (all hidden layers together) up to which they are stacked


@dataclass
class Reading:
    """One capture step's numbers, read from the device in one copy."""

    layers: list[LayerStats]
    time_grad_norm: list[float] | None = None  # recurrent models: ||d loss / d x_t|| per time step
    acc: float | None = None  # the batch accuracy, when asked for
    loss_sum: float | None = None  # the summed loss of the interval, when it was kept on the device


@dataclass
class _Layout:
    """What the raw pieces of one capture hold, in order (see `Probes._assemble`)."""

    weights: int  # weight tensors, all probe points together
    hidden: int  # hidden probe points (all but the output layer)
    recorded: int = 0  # hidden points whose activation was recorded (the first `recorded` of them)
    counts: list[int] = field(default_factory=list)  # per recorded layer: activation elements
    units: list[int] = field(default_factory=list)  # per recorded layer: units (channels for conv layers)
    agrads_in_norms: bool = False  # the ||d loss / d h|| came with the foreach norm of the weights


class Probes:
    def __init__(self, model: LabModel, optimizer: torch.optim.Optimizer | None = None):
        self.model = model
        self.points = model.probe_points()
        self.names = [p.name for p in self.points]
        self.traits = ACTIVATIONS[model.activation]
        self._weights = [w for p in self.points for w in p.weights]  # every point's weights, in order
        self._sizes = [len(p.weights) for p in self.points]
        self._previous: list[torch.Tensor] = []  # the weights before the step (buffers reused)
        self._scratch: dict[str, torch.Tensor] = {}  # large buffers reused across snapshots (no page faults)
        self._pieces: list[torch.Tensor] = []  # this capture's raw reductions, in `_layout` order
        self._layout = _Layout(len(self._weights), len(self.points) - 1)
        self._delta: torch.Tensor | None = None  # per-weight ||dW|| once the optimiser stepped
        self._delta_scale: list[float] | None = None  # plain SGD: ||dW|| = lr * ||grad W|| (see after_step)
        self.inputs: torch.Tensor | None = None
        self._sgd_groups = _plain_sgd_groups(optimizer, self._weights)

    # -- the capture step, in training order ------------------------------------------------------------

    def start(self, x: torch.Tensor) -> torch.Tensor:
        """Before the forward pass: record activations; recurrent inputs carry a gradient (d loss / d x_t)."""
        self.model.capture = True
        self.model.captured.clear()
        if self.model.recurrent:
            x = x.detach().requires_grad_(True)
        self.inputs = x
        return x

    def after_backward(self, logits: torch.Tensor) -> None:
        """Gradients are in; the optimiser has not stepped. Gradient, weight and activation reductions."""
        self.model.capture = False
        n_hidden = len(self.points) - 1
        hidden = list(self.model.captured)[:n_hidden]
        self.model.captured.clear()
        weights = self._weights
        layout = self._layout = _Layout(len(weights), n_hidden, recorded=len(hidden))
        with torch.no_grad():
            grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in weights]
            agrads = [h.grad for h in hidden]
            layout.agrads_in_norms = bool(hidden) and all(g is not None for g in agrads)
            # One foreach norm: every weight gradient, every weight, and every activation gradient.
            norms = torch._foreach_norm(grads + weights + (agrads if layout.agrads_in_norms else []))  # type: ignore[operator]
            pieces = [torch.stack(norms).float()]

            if self._sgd_groups is None:
                prev = self._previous
                if len(prev) != len(weights) or any(
                    b.shape != w.shape or b.device != w.device or b.dtype != w.dtype for b, w in zip(prev, weights)
                ):
                    prev = self._previous = [torch.empty_like(w, requires_grad=False) for w in weights]
                torch._foreach_copy_(prev, weights)  # the weights before the step, for ||dW||
            self._delta = None
            self._delta_scale = None

            pieces += self._hidden_reductions(hidden, layout)
            out = logits.detach().float()
            if out.numel() > 1:
                o_std, o_mean = torch.std_mean(out)
                pieces.append(torch.stack([o_mean, o_std]))
            else:
                pieces.append(torch.cat([out.reshape(1), torch.zeros(1, device=out.device)]))
        self._pieces = pieces

    def after_step(self) -> None:
        """The optimiser stepped: ||dW|| of this update, per weight (divided by ||W|| on the host).

        For plain SGD (no momentum, no weight decay) the step is dW = -lr * grad exactly, so ||dW|| is lr
        times the norm of the gradient the step used (read now: clipping may have changed it). No copy of
        the weights is needed, and the figure has no rounding noise from subtracting nearly equal weights.
        Any other optimiser: ||W_after - W_before|| from a copy taken in after_backward.
        """
        if not self._pieces or self._delta is not None:
            return
        with torch.no_grad():
            if self._sgd_groups is not None:
                grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in self._weights]
                self._delta = torch.stack(torch._foreach_norm(grads)).float()
                self._delta_scale = [float(group["lr"]) for group in self._sgd_groups]
                return
            if not self._previous:
                return
            torch._foreach_sub_(self._previous, self._weights)  # prev - now = -dW (the buffers are scratch)
            self._delta = torch.stack(torch._foreach_norm(self._previous)).float()

    def read(self, acc: torch.Tensor | None = None, loss_sum: torch.Tensor | None = None) -> Reading:
        """One host copy of everything this capture measured, plus the accuracy and loss asked for."""
        pieces = list(self._pieces)
        device = pieces[0].device
        if self._delta is not None:
            pieces.append(self._delta)
        time_steps = 0
        if self.model.recurrent and self.inputs is not None and self.inputs.grad is not None:
            time_grads = torch.linalg.vector_norm(self.inputs.grad, dim=(0, 2)).float()
            time_steps = time_grads.numel()
            pieces.append(time_grads)
        extras = [t for t in (acc, loss_sum) if t is not None]
        if extras:
            pieces.append(torch.stack([t.detach().float().reshape(()).to(device) for t in extras]))
        flat = torch.cat(pieces).cpu().tolist()
        self.inputs = None
        cursor = _Cursor(flat)
        layers = self._assemble(cursor)
        reading = Reading(layers, cursor.take(time_steps) if time_steps else None)
        if acc is not None:
            reading.acc = cursor.take(1)[0]
        if loss_sum is not None:
            reading.loss_sum = cursor.take(1)[0]
        return reading

    # -- helpers ----------------------------------------------------------------------------------------

    def _hidden_reductions(self, hidden: list[torch.Tensor], layout: _Layout) -> list[torch.Tensor]:
        """Raw reductions of the recorded hidden activations, one value per layer in each piece: mean,
        ||h - mean||, dead units and saturated elements (where the activation can have them), and
        ||d loss / d h|| unless the foreach norm took it. All layers at once when their shapes match."""
        if not hidden:
            return []
        first = hidden[0]
        stackable = (
            all(h.shape == first.shape and h.dtype == first.dtype for h in hidden)
            and len(hidden) * first.numel() <= STACK_LIMIT
        )
        if stackable:
            acts = torch.stack(
                [h.detach() for h in hidden], out=self._buffer("acts", (len(hidden), *first.shape), first)
            )
            pieces = self._reduce(acts.float(), layout)  # the stack is scratch: centred in place
        else:  # different shapes, or too large to stack: layer by layer, the same reductions
            rows = [self._reduce(h.detach().float()[None].clone(), layout) for h in hidden]
            pieces = [torch.cat(column) for column in zip(*rows)]
        if not layout.agrads_in_norms:
            zero = torch.zeros((), device=first.device)
            pieces.append(
                torch.stack([torch.linalg.vector_norm(h.grad) if h.grad is not None else zero for h in hidden]).float()
            )
        return pieces

    def _reduce(self, acts: torch.Tensor, layout: _Layout) -> list[torch.Tensor]:
        """[layers, batch, ...] scratch activations -> mean, spread, then the dead and saturated counts."""
        n = acts.shape[0]
        flat = acts.reshape(n, -1)
        # Conv units are channels ([layers, batch, channels, h, w]); other units are the last dimension.
        units = acts.transpose(2, -1) if acts.dim() == 5 else acts
        units = units.reshape(n, -1, units.shape[-1])
        layout.counts += [flat.shape[1]] * n
        layout.units += [units.shape[-1]] * n
        counts = []
        if self.traits.dies_at_zero:
            # A unit is dead when it is <= 0 for every sample: its largest output is <= 0.
            counts.append((units.amax(1) <= 0).sum(1, dtype=torch.float32))
        if self.traits.saturation is not None:
            low, high = self.traits.saturation
            counts.append(torch.logical_or(flat < low, flat > high).sum(1, dtype=torch.float32))
        # Two-pass spread (as Tensor.std): the norm of the centred values. torch.std_mean along a dim and
        # layer_norm's moments both take slow paths on the CPU; mean, sub and norm are plain vectorised loops.
        # Centred in place, after the counts: the activations are a scratch copy.
        mean = flat.mean(1)
        centred = flat.sub_(mean[:, None])
        return [mean, torch.linalg.vector_norm(centred, dim=1), *counts]

    def _assemble(self, cursor: _Cursor) -> list[LayerStats]:
        """The host side: per-point joint norms, ratios and fractions from the raw reductions."""
        lay = self._layout
        k, m = lay.weights, lay.recorded
        grad_w, weight_w = cursor.take(k), cursor.take(k)
        agrad = cursor.take(m) if lay.agrads_in_norms else None
        mean, spread = cursor.take(m), cursor.take(m)
        dead = [c / u for c, u in zip(cursor.take(m), lay.units)] if self.traits.dies_at_zero else [0.0] * m
        sat = [c / n for c, n in zip(cursor.take(m), lay.counts)] if self.traits.saturation else [0.0] * m
        if agrad is None:
            agrad = cursor.take(m)
        o_mean, o_std = cursor.take(2)
        delta_w = None
        if self._delta is not None:
            delta_w = cursor.take(k)
            if self._delta_scale is not None:
                delta_w = [lr * d for lr, d in zip(self._delta_scale, delta_w)]
        std = [s / math.sqrt(n - 1) if n > 1 else 0.0 for s, n in zip(spread, lay.counts)]

        layers = []
        j = 0
        for p, (name, size) in enumerate(zip(self.names, self._sizes)):
            w = _joint(weight_w[j : j + size])
            stats = LayerStats(
                name,
                grad_norm=_joint(grad_w[j : j + size]),
                weight_norm=w,
                update_ratio=_joint(delta_w[j : j + size]) / max(w, 1e-30) if delta_w is not None else 0.0,
            )
            j += size
            if p < m:
                stats.act_mean, stats.act_std, stats.dead_frac, stats.sat_frac = mean[p], std[p], dead[p], sat[p]
                stats.act_grad_norm = agrad[p]
            elif p == lay.hidden:  # the output layer: its logits' mean and spread; no units to die or saturate
                stats.act_mean, stats.act_std = o_mean, o_std
                stats.dead_frac = stats.sat_frac = stats.act_grad_norm = 0.0
            layers.append(stats)
        return layers

    def _buffer(self, key: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A scratch tensor kept between snapshots: a fresh large one would cost its page faults each time."""
        buf = self._scratch.get(key)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._scratch[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buf

    def histogram(self, index: int, bins: int = 31) -> Histogram | None:
        """The weight-gradient histogram of one probe point (symmetric range around zero)."""
        if not 0 <= index < len(self.points):
            return None
        point = self.points[index]
        grads = [w.grad.detach().flatten() for w in point.weights if w.grad is not None]
        if not grads:
            return None
        g = torch.cat(grads).float()
        top = float(g.abs().max()) or 1e-30
        if not math.isfinite(top):
            return None
        counts = torch.histc(g, bins=bins, min=-top, max=top).long().tolist()
        edges = [-top + 2 * top * i / bins for i in range(bins + 1)]
        return Histogram(point.name, edges, counts)


class _Cursor:
    """Reads a flat list of numbers piece by piece, in the order the device wrote them."""

    def __init__(self, values: list[float]):
        self.values, self.at = values, 0

    def take(self, n: int) -> list[float]:
        out = self.values[self.at : self.at + n]
        self.at += n
        return out


def _joint(norms: list[float]) -> float:
    """The joint L2 norm of several tensors from their norms (one tensor: its norm)."""
    if len(norms) == 1:
        return norms[0]
    return math.sqrt(sum(x * x for x in norms))


def _plain_sgd_groups(optimizer: torch.optim.Optimizer | None, weights: list[torch.Tensor]) -> list[dict] | None:
    """For plain SGD (no momentum, no weight decay, not maximising): each weight's param group, so its
    update is -group["lr"] * grad. None for any other optimiser (or a weight it does not train)."""
    if optimizer is None or type(optimizer) is not torch.optim.SGD:
        return None
    owner: dict[int, dict] = {}
    for group in optimizer.param_groups:
        if group.get("momentum", 0) or group.get("weight_decay", 0) or group.get("maximize", False):
            return None
        if isinstance(group.get("lr"), torch.Tensor):
            return None
        for param in group["params"]:
            owner[id(param)] = group
    groups = [owner.get(id(w)) for w in weights]
    return groups if all(g is not None for g in groups) else None  # type: ignore[return-value]
