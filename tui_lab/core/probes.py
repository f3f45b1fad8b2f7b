"""Per-layer gradient and activation statistics, computed on the device.

Probes work only on capture steps (the steps a snapshot is due). There every statistic is a 0-d tensor on
the model's device; they are stacked into one tensor and copied to the host once (`read`). On the other
steps probes do nothing at all, so training runs at the speed of a plain PyTorch loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tui_lab.core.models import LabModel

# Columns of the stacked statistics, one row per probe point.
STATS = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead_frac", "sat_frac", "act_grad_norm")
RELU_LIKE_DEAD = ("relu",)  # units that output exactly zero on the whole batch pass no gradient


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
        self._previous: list[torch.Tensor] = []
        self._rows: list[list[torch.Tensor]] = []
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
        """Gradients are in; the optimiser has not stepped. Gradient, weight and activation statistics."""
        self.model.capture = False
        acts = list(self.model.captured) + [logits]
        zero = torch.zeros((), device=logits.device)
        self._previous = []
        self._rows = []
        with torch.no_grad():
            for point, act in zip(self.points, acts):
                grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in point.weights]
                g = _norms(grads)
                w = _norms([w.detach() for w in point.weights])
                self._previous.extend(w.detach().clone() for w in point.weights)
                hidden = act is not logits
                a = act.detach().float()
                mean, std = a.mean(), (a.std() if a.numel() > 1 else zero)
                dead = self._dead(a) if hidden else zero
                sat = self._saturated(a) if hidden else zero
                agrad = torch.linalg.vector_norm(act.grad) if (hidden and act.grad is not None) else zero
                self._rows.append([g, w, zero, mean, std, dead, sat, agrad])
        self.model.captured.clear()

    def after_step(self) -> None:
        """The optimiser stepped: ||dW|| / ||W|| of this update, per layer."""
        with torch.no_grad():
            i = 0
            for point, row in zip(self.points, self._rows):
                n = len(point.weights)
                before = self._previous[i : i + n]
                delta = _norms([w.detach() - b for w, b in zip(point.weights, before)])
                row[2] = delta / row[1].clamp_min(1e-30)
                i += n
        self._previous = []

    def read(self, extras: list[torch.Tensor] | None = None) -> tuple[list[dict], list[float] | None, list[float]]:
        """One host copy: (per-layer stats, time_grad_norm or None, the extra scalars)."""
        pieces = [torch.stack([torch.stack(r) for r in self._rows]).flatten()]
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
