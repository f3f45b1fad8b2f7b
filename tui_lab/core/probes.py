"""Per-layer gradient and activation statistics, computed on the device.

Probes work only on capture steps (the steps a snapshot is due). There every statistic is a 0-d tensor on
the model's device; they are stacked into one tensor and copied to the host once (`read`). On the other
steps probes do nothing at all, so training runs at the speed of a plain PyTorch loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tui_lab.core.models import LabModel

# Columns of the stacked statistics, one row per probe point.
STATS = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead_frac", "sat_frac", "act_grad_norm")
RELU_LIKE_DEAD = ("relu",)
STACK_LIMIT = 2**22  # activation elements (all hidden layers) up to which statistics are computed stacked  # units that output exactly zero on the whole batch pass no gradient


@dataclass
class Histogram:
    layer: str
    edges: list[float]  # bins + 1 edges
    counts: list[int]


def _norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The joint L2 norm of several tensors, as a 0-d tensor (no host sync)."""
    parts = torch._foreach_norm(tensors) if len(tensors) > 1 else [torch.linalg.vector_norm(tensors[0])]
    return torch.linalg.vector_norm(torch.stack(parts)) if len(parts) > 1 else parts[0]


class Probes:
    def __init__(self, model: LabModel):
        self.model = model
        self.points = model.probe_points()
        self.names = [p.name for p in self.points]
        self._weights = [w for p in self.points for w in p.weights]  # every point's weights, in order
        self._single = all(len(p.weights) == 1 for p in self.points)
        self._previous_bufs: list[torch.Tensor] = []  # the weights before the step (reused buffers)
        self._stepped = False
        self._table: torch.Tensor | None = None  # [STATS, points], filled on a capture step
        self._scratch: dict[str, torch.Tensor] = {}  # buffers reused across snapshots (no page faults)
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
        """Gradients are in; the optimiser has not stepped. Gradient, weight and activation statistics.

        Batched: one foreach norm over every layer's gradients, one over the weights, and the hidden
        activations (the same shape in every layer of a model) stacked so that each statistic is one op for
        all layers. On a CPU the per-op dispatch, not the arithmetic, is most of what probes cost.
        """
        self.model.capture = False
        hidden = list(self.model.captured)
        self.model.captured.clear()
        n_hidden = len(self.points) - 1
        weights = self._weights
        with torch.no_grad():
            grads = [w.grad for w in weights]
            if any(gr is None for gr in grads):
                grads = [gr if gr is not None else torch.zeros_like(w) for gr, w in zip(grads, weights)]
            g = self._per_point(torch._foreach_norm(grads))
            wn = self._per_point(torch._foreach_norm(weights))
            prev = self._previous_bufs
            if len(prev) != len(weights) or any(b.shape != w.shape or b.device != w.device for b, w in zip(prev, weights)):
                prev = self._previous_bufs = [torch.empty_like(w, requires_grad=False) for w in weights]
            torch._foreach_copy_(prev, weights)  # the weights before the step, for ||dW||
            self._stepped = False
            if (
                0 < n_hidden == len(hidden)
                and all(a.shape == hidden[0].shape and a.dtype == hidden[0].dtype for a in hidden)
                and n_hidden * hidden[0].numel() <= STACK_LIMIT
            ):
                h_stats = self._hidden_stats_stacked(hidden)
            else:
                h_stats = self._hidden_stats_each(hidden[:n_hidden], n_hidden, logits)
            out = logits.detach().float()
            if out.numel() > 1:
                o_std, o_mean = torch.std_mean(out)
            else:
                o_std, o_mean = torch.zeros((), device=out.device), out.mean()
            zero = torch.zeros((), device=out.device)
            out_col = torch.stack([o_mean, o_std, zero, zero, zero])
            # [8, points]: grad_norm, weight_norm, update_ratio (after_step), then the activation statistics.
            self._table = torch.cat([g[None], wn[None], torch.zeros_like(wn)[None],
                                     torch.cat([h_stats, out_col[:, None]], dim=1)])  # fmt: skip

    def after_step(self) -> None:
        """The optimiser stepped: ||dW|| / ||W|| of this update, per layer."""
        if self._table is None or self._stepped:
            return
        with torch.no_grad():
            prev = self._previous_bufs
            torch._foreach_sub_(prev, self._weights)  # prev - now = -dW
            delta = self._per_point(torch._foreach_norm(prev))
            self._table[2] = delta / self._table[1].clamp_min(1e-30)
        self._stepped = True

    def read(self, extras: list[torch.Tensor] | None = None) -> tuple[list[dict], list[float] | None, list[float]]:
        """One host copy: (per-layer stats, time_grad_norm or None, the extra scalars)."""
        pieces = [self._table.t().flatten()]  # [points, STATS], row-major
        tgn_len = 0
        if self.model.recurrent and self.inputs is not None and self.inputs.grad is not None:
            tgn = torch.linalg.vector_norm(self.inputs.grad, dim=(0, 2))
            tgn_len = tgn.numel()
            pieces.append(tgn)
        extras = extras or []
        if extras:
            pieces.append(torch.stack([e.detach().float().reshape(()) for e in extras]).to(pieces[0].device))
        flat = torch.cat([p.float() for p in pieces]).cpu().tolist()
        self.inputs = None
        k = len(STATS)
        layers = []
        for j, name in enumerate(self.names):
            row = flat[j * k : (j + 1) * k]
            layers.append({"name": name, **dict(zip(STATS, row))})
        rest = flat[len(self.names) * k :]
        tgn_values = rest[:tgn_len] if tgn_len else None
        return layers, tgn_values, rest[tgn_len:]

    # -- helpers ----------------------------------------------------------------------------------------

    def _buffer(self, key: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A scratch tensor kept between snapshots: a fresh large one would cost its page faults each time."""
        buf = self._scratch.get(key)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._scratch[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buf

    def _per_point(self, norms: list[torch.Tensor]) -> torch.Tensor:
        """Per-weight norms -> one joint norm per probe point, as a [points] tensor."""
        if self._single:
            return torch.stack(norms)
        out, i = [], 0
        for point in self.points:
            n = len(point.weights)
            part = norms[i : i + n]
            out.append(torch.linalg.vector_norm(torch.stack(part)) if n > 1 else part[0])
            i += n
        return torch.stack(out)

    def _hidden_stats_stacked(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        """mean, std, dead, saturated and ||d loss / d h|| of every hidden layer at once: [5, layers]."""
        n = len(hidden)
        first = hidden[0]
        a = torch.stack([h.detach() for h in hidden], out=self._buffer("acts", (n, *first.shape), first))
        a = a.float()  # [layers, *shape]
        flat = a.reshape(n, -1)
        count = flat.shape[1]
        mean = flat.mean(1)
        zeros = torch.zeros(n, device=a.device)
        # Two-pass std (as Tensor.std): torch.std_mean along a dim takes a slow path on the CPU.
        if count > 1:
            centred = torch.sub(flat, mean[:, None], out=self._buffer("centred", flat.shape, flat))
            std = torch.linalg.vector_norm(centred, dim=1) / math.sqrt(count - 1)
        else:
            std = zeros
        act = self.model.activation
        if act in RELU_LIKE_DEAD:
            units = a.transpose(2, -1) if a.dim() == 5 else a  # conv units are channels
            # A unit is dead when it is <= 0 for every sample: its largest output is <= 0.
            dead = (units.reshape(n, -1, units.shape[-1]).amax(1) <= 0).float().mean(1)
        else:
            dead = zeros
        if act == "sigmoid":
            sat = ((flat < 0.01) | (flat > 0.99)).float().mean(1)
        elif act == "tanh":
            sat = (flat.abs() > 0.99).float().mean(1)
        else:
            sat = zeros
        agrads = [h.grad for h in hidden]
        if all(gr is not None for gr in agrads):
            agrad = torch.stack(torch._foreach_norm(agrads))
        else:
            agrad = torch.stack([torch.linalg.vector_norm(gr) if gr is not None else zeros[0] for gr in agrads])
        return torch.stack([mean, std, dead, sat, agrad])

    def _hidden_stats_each(self, hidden: list[torch.Tensor], n_hidden: int, like: torch.Tensor):
        """The same statistics layer by layer, for activations of different shapes (or missing ones)."""
        zero = torch.zeros((), device=like.device)
        cols: list[list[torch.Tensor]] = [[], [], [], [], []]
        for i in range(n_hidden):
            if i >= len(hidden):
                for c in cols:
                    c.append(zero)
                continue
            h = hidden[i]
            a = h.detach().float()
            cols[0].append(a.mean())
            cols[1].append(a.std() if a.numel() > 1 else zero)
            cols[2].append(self._dead(a))
            cols[3].append(self._saturated(a))
            cols[4].append(torch.linalg.vector_norm(h.grad) if h.grad is not None else zero)
        if n_hidden == 0:
            return torch.zeros((len(cols), 0), device=like.device)
        return torch.stack([torch.stack(c) for c in cols])

    def _units(self, a: torch.Tensor) -> torch.Tensor:
        """[samples, units]: conv units are channels, others the last dimension."""
        if a.dim() == 4:
            return a.transpose(1, -1).reshape(-1, a.shape[1])
        return a.reshape(-1, a.shape[-1])

    def _dead(self, a: torch.Tensor) -> torch.Tensor:
        if self.model.activation not in RELU_LIKE_DEAD:
            return torch.zeros((), device=a.device)
        return (self._units(a) <= 0).all(0).float().mean()

    def _saturated(self, a: torch.Tensor) -> torch.Tensor:
        act = self.model.activation
        if act == "sigmoid":
            return ((a < 0.01) | (a > 0.99)).float().mean()
        if act == "tanh":
            return (a.abs() > 0.99).float().mean()
        return torch.zeros((), device=a.device)

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
        if top != top or top == float("inf"):
            return None
        counts = torch.histc(g, bins=bins, min=-top, max=top).long().tolist()
        edges = [-top + 2 * top * i / bins for i in range(bins + 1)]
        return Histogram(point.name, edges, counts)
