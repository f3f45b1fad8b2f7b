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
    scalars: dict[str, float] = field(default_factory=dict)  # what the trainer asked to read along (by name)


@dataclass
class _Layout:
    """What the raw pieces of one capture hold, in order (see `Probes._assemble`)."""

    weights: int  # weight tensors, all probe points together
    hidden: int  # hidden probe points (all but the output layer)
    recorded: int = 0  # hidden points whose activation was recorded (the first `recorded` of them)
    counts: list[int] = field(default_factory=list)  # per recorded layer: activation elements
    units: list[int] = field(default_factory=list)  # per recorded layer: units (channels for conv layers)
    agrads_in_norms: bool = False  # the ||d loss / d h|| came with the foreach norm of the gradients
    output_grad: bool = False  # ||d loss / d logits|| came with them too
    delta: bool = False  # ||W_after - W_before|| per weight follows the output's mean and spread


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
        self._kept: list[torch.Tensor] = []  # this capture's activations, for counting non-finite values
        self._restorable = True  # self._previous still holds the weights before the step
        self.inputs: torch.Tensor | None = None

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
        """Gradients are in; the optimiser has not stepped. Gradient, weight and activation reductions, and a
        copy of the weights (for the size of the step about to be taken)."""
        self.model.capture = False
        n_hidden = len(self.points) - 1
        captured = list(self.model.captured)
        self.model.captured.clear()
        hidden = captured[:n_hidden]
        output = captured[n_hidden] if len(captured) > n_hidden else logits  # models record their logits last
        self._kept = [*hidden, output]
        weights = self._weights
        layout = self._layout = _Layout(len(weights), n_hidden, recorded=len(hidden))
        with torch.no_grad():
            grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in weights]
            agrads = [h.grad for h in hidden]
            layout.agrads_in_norms = bool(hidden) and all(g is not None for g in agrads)
            layout.output_grad = output.grad is not None
            backward = (
                grads + (agrads if layout.agrads_in_norms else []) + ([output.grad] if layout.output_grad else [])
            )
            pieces = [_gradient_norms(backward + weights)]  # then ||W||: one foreach call for every norm
            prev = self._previous
            if len(prev) != len(weights) or any(
                b.shape != w.shape or b.device != w.device or b.dtype != w.dtype for b, w in zip(prev, weights)
            ):
                prev = self._previous = [torch.empty_like(w, requires_grad=False) for w in weights]
            torch._foreach_copy_(prev, weights)  # the weights before the step: ||dW||, and a divergence's autopsy
            self._restorable = True
            pieces += [p.double() for p in self._hidden_reductions(hidden, layout)]
            out = output.detach().float()
            if out.numel() > 1:
                o_std, o_mean = torch.std_mean(out)
                pieces.append(torch.stack([o_mean, o_std]).double())
            else:
                pieces.append(torch.cat([out.reshape(1), torch.zeros(1, device=out.device)]).double())
        self._pieces = pieces

    def after_step(self, keep: bool = True) -> None:
        """The optimiser stepped: ||W_after - W_before||, per weight (divided by ||W|| on the host). One definition
        for every optimiser: the change the step made to the float32 weights (0 where it changed nothing).
        `keep`: keep the weights from before the step, for a caller that learns only afterwards that it
        diverged (a GPU, which checks the loss once per snapshot); else the copy doubles as the difference."""
        if not self._pieces or self._layout.delta:
            return
        with torch.no_grad():
            if not keep:  # prev - now = -dW, in place (the weights before the step are not needed again)
                delta = self._previous
                self._restorable = False
            else:  # kept, to put back if this step turns out to have diverged (see restore_weights)
                delta = [self._buffer(f"delta{i}", tuple(w.shape), w) for i, w in enumerate(self._weights)]
                torch._foreach_copy_(delta, self._previous)
            torch._foreach_sub_(delta, self._weights)
            self._pieces.append(torch.stack(torch._foreach_norm(delta)).double())
            self._layout.delta = True

    def restore_weights(self) -> None:
        """Put back the weights this capture saw (before the step): to look again at the step that broke."""
        if not self._restorable:
            raise RuntimeError("the weights before the step were not kept (after_step(keep=False))")
        with torch.no_grad():
            torch._foreach_copy_(self._weights, self._previous)

    def read(self, scalars: dict[str, torch.Tensor] | None = None) -> Reading:
        """One host copy of everything this capture measured, plus the scalars asked for (by name)."""
        pieces = list(self._pieces)
        device = pieces[0].device
        time_steps = 0
        if self.model.recurrent and self.inputs is not None and self.inputs.grad is not None:
            time_grads = torch.linalg.vector_norm(self.inputs.grad, dim=(0, 2), dtype=torch.float64)
            time_steps = time_grads.numel()
            pieces.append(time_grads)
        scalars = scalars or {}
        if scalars:
            pieces.append(torch.stack([t.detach().double().reshape(()).to(device) for t in scalars.values()]))
        flat = torch.cat(pieces).cpu().tolist()
        self.inputs = None
        cursor = _Cursor(flat)
        layers = self._assemble(cursor)
        reading = Reading(layers, cursor.take(time_steps) if time_steps else None)
        reading.scalars = dict(zip(scalars, cursor.take(len(scalars))))
        if not all(math.isfinite(x) for x in flat):
            self._count_nonfinite(layers)
        self._kept = []
        return reading

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
            zero = torch.zeros((), device=first.device, dtype=torch.float64)
            norms = [
                torch.linalg.vector_norm(h.grad, dtype=torch.float64) if h.grad is not None else zero for h in hidden
            ]
            pieces.append(torch.stack(norms))
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
        grad_w = cursor.take(k)
        agrad = cursor.take(m) if lay.agrads_in_norms else None
        out_grad = cursor.take(1)[0] if lay.output_grad else None
        weight_w = cursor.take(k)
        mean, spread = cursor.take(m), cursor.take(m)
        dead = [c / u for c, u in zip(cursor.take(m), lay.units)] if self.traits.dies_at_zero else [0.0] * m
        sat = [c / n for c, n in zip(cursor.take(m), lay.counts)] if self.traits.saturation else [0.0] * m
        if agrad is None:
            agrad = cursor.take(m)
        o_mean, o_std = cursor.take(2)
        delta_w = cursor.take(k) if lay.delta else None
        std = [s / math.sqrt(n - 1) if n > 1 else 0.0 for s, n in zip(spread, lay.counts)]

        layers = []
        j = 0
        for p, (name, size) in enumerate(zip(self.names, self._sizes)):
            w = _joint(weight_w[j : j + size])
            stats = LayerStats(
                name,
                grad_norm=_joint(grad_w[j : j + size]),
                weight_norm=w,
                update_ratio=_joint(delta_w[j : j + size]) / w if delta_w is not None and w > 0 else None,
            )
            j += size
            if p < m:
                stats.act_mean, stats.act_std, stats.dead_frac, stats.sat_frac = mean[p], std[p], dead[p], sat[p]
                stats.act_grad_norm = agrad[p]
            elif p == lay.hidden:  # the output layer: its logits' mean, spread and gradient; no units to die
                stats.act_mean, stats.act_std, stats.act_grad_norm = o_mean, o_std, out_grad
                stats.dead_frac = stats.sat_frac = 0.0
            layers.append(stats)
        return layers

    def _count_nonfinite(self, layers: list[LayerStats]) -> None:
        """Something was NaN or Inf: count, per layer, the non-finite weights (before the step), gradients
        and activations, so a reader can see where it broke. Rare, so its own host copy."""
        with torch.no_grad():

            def bad(tensors: list[torch.Tensor]) -> torch.Tensor:
                zero = torch.zeros((), dtype=torch.long, device=self._previous[0].device)
                return sum(((~torch.isfinite(t)).sum() for t in tensors), zero)

            counts, j = [], 0
            lay = self._layout
            weights_now = self._previous if self._restorable else self._weights
            for p, (size, layer) in enumerate(zip(self._sizes, layers)):
                grads = [w.grad for w in self._weights[j : j + size] if w.grad is not None]
                acts = self._kept[p] if p < lay.recorded else self._kept[-1] if p == lay.hidden else None
                # Weights: those the step started from were broken only where their norm was not finite.
                broken = layer.weight_norm is None or not math.isfinite(layer.weight_norm)
                counts += [bad(weights_now[j : j + size]) if broken else bad([]), bad(grads)]
                counts.append(bad([acts] if acts is not None else []))
                j += size
            flat = torch.stack(counts).cpu().tolist()
        for p, layer in enumerate(layers):
            weights, grads, acts = flat[3 * p : 3 * p + 3]
            layer.nonfinite = {"weights": weights, "grads": grads, "acts": acts}

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


def _gradient_norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """L2 norms that neither underflow nor overflow: in float32 the squares of a vanishing gradient (elements
    below ~1e-19) sum to an exact 0, and those of an exploding one (above ~1e19) to inf. A GPU sums them in
    float64 at once; a CPU, where the float64 pass costs more and a host read is free, sums in float32 and
    sums again in float64 only the few that came out 0, tiny or infinite."""
    if not tensors:
        return torch.zeros(0, dtype=torch.float64)
    if tensors[0].device.type != "cpu":
        return torch.stack(torch._foreach_norm(tensors, 2, dtype=torch.float64))  # type: ignore[call-arg]
    norms = torch.stack(torch._foreach_norm(tensors)).double()
    for i, value in enumerate(norms.tolist()):
        if value < 1e-15 or math.isinf(value):
            norms[i] = torch.linalg.vector_norm(tensors[i], dtype=torch.float64)
    return norms


def _joint(norms: list[float]) -> float:
    """The joint L2 norm of several tensors from their norms (one tensor: its norm)."""
    if len(norms) == 1:
        return norms[0]
    return math.sqrt(sum(x * x for x in norms))
