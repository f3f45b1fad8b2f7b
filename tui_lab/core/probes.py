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
from dataclasses import dataclass

import torch

from tui_lab.core.models import LabModel

# Columns of the statistics, one row per probe point.
STATS = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead_frac", "sat_frac", "act_grad_norm")
RELU_LIKE_DEAD = ("relu",)  # units that output exactly zero on the whole batch pass no gradient
STACK_LIMIT = 2**22  # activation elements (all hidden layers together) up to which they are stacked


@dataclass
class Histogram:
    layer: str
    edges: list[float]  # bins + 1 edges
    counts: list[int]


class Probes:
    def __init__(self, model: LabModel, optimizer: torch.optim.Optimizer | None = None):
        self.model = model
        self.points = model.probe_points()
        self.names = [p.name for p in self.points]
        self._weights = [w for p in self.points for w in p.weights]  # every point's weights, in order
        self._sizes = [len(p.weights) for p in self.points]
        self._previous: list[torch.Tensor] = []  # the weights before the step (buffers reused)
        self._scratch: dict[str, torch.Tensor] = {}  # large buffers reused across snapshots (no page faults)
        self._pieces: list[torch.Tensor] = []  # this capture's raw reductions, in `_layout` order
        self._layout: dict[str, object] = {}
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
        hidden = list(self.model.captured)
        self.model.captured.clear()
        n_hidden = len(self.points) - 1
        weights = self._weights
        layout: dict[str, object] = {"weights": len(weights), "hidden": n_hidden}
        with torch.no_grad():
            grads = [w.grad for w in weights]
            if any(gr is None for gr in grads):
                grads = [gr if gr is not None else torch.zeros_like(w) for gr, w in zip(grads, weights)]
            stacked = (
                0 < n_hidden == len(hidden)
                and all(a.shape == hidden[0].shape and a.dtype == hidden[0].dtype for a in hidden)
                and n_hidden * hidden[0].numel() <= STACK_LIMIT
            )
            agrads = [h.grad for h in hidden] if stacked else []
            with_agrads = stacked and all(gr is not None for gr in agrads)
            # One foreach norm: every weight gradient, every weight, and (stacked) every activation gradient.
            norms = torch.stack(torch._foreach_norm(grads + weights + (agrads if with_agrads else [])))
            pieces = [norms.float()]
            layout["agrads"] = with_agrads

            if self._sgd_groups is None:
                prev = self._previous
                if len(prev) != len(weights) or any(b.shape != w.shape or b.device != w.device
                                                    or b.dtype != w.dtype for b, w in zip(prev, weights)):  # fmt: skip
                    prev = self._previous = [torch.empty_like(w, requires_grad=False) for w in weights]
                torch._foreach_copy_(prev, weights)  # the weights before the step, for ||dW||
            self._delta = None
            self._delta_scale = None

            if stacked:
                pieces += self._hidden_stacked(hidden, with_agrads, layout)
            else:
                pieces.append(self._hidden_each(hidden[:n_hidden], n_hidden, logits).flatten())
                layout["each"] = True
            out = logits.detach().float()
            if out.numel() > 1:
                o_std, o_mean = torch.std_mean(out)
                pieces.append(torch.stack([o_mean, o_std]))
            else:
                pieces.append(torch.cat([out.reshape(1), torch.zeros(1, device=out.device)]))
        self._pieces = pieces
        self._layout = layout

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

    def read(self, extras: list[torch.Tensor] | None = None) -> tuple[list[dict], list[float] | None, list[float]]:
        """One host copy: (per-layer stats, time_grad_norm or None, the extra scalars)."""
        pieces = list(self._pieces)
        device = pieces[0].device
        if self._delta is not None:
            pieces.append(self._delta)
        tgn_len = 0
        if self.model.recurrent and self.inputs is not None and self.inputs.grad is not None:
            tgn = torch.linalg.vector_norm(self.inputs.grad, dim=(0, 2)).float()
            tgn_len = tgn.numel()
            pieces.append(tgn)
        extras = extras or []
        if extras:
            pieces.append(torch.stack([e.detach().float().reshape(()).to(device) for e in extras]))
        flat = torch.cat(pieces).cpu().tolist()
        self.inputs = None
        layers = self._assemble(flat)
        rest = flat[self._consumed :]
        tgn_values = rest[:tgn_len] if tgn_len else None
        return layers, tgn_values, rest[tgn_len:]

    # -- helpers ----------------------------------------------------------------------------------------

    def _hidden_stacked(self, hidden: list[torch.Tensor], with_agrads: bool, layout: dict) -> list[torch.Tensor]:
        """Raw reductions of all hidden activations at once: [layers] each (see `_assemble`)."""
        n = len(hidden)
        first = hidden[0]
        a = torch.stack([h.detach() for h in hidden], out=self._buffer("acts", (n, *first.shape), first)).float()
        flat = a.reshape(n, -1)
        count = flat.shape[1]
        layout["count"] = count
        act = self.model.activation
        counts = []
        if act in RELU_LIKE_DEAD:
            units = a.transpose(2, -1) if a.dim() == 5 else a  # conv units are channels
            units = units.reshape(n, -1, units.shape[-1])
            layout["units"] = units.shape[-1]
            # A unit is dead when it is <= 0 for every sample: its largest output is <= 0. Counted here.
            counts.append((units.amax(1) <= 0).sum(1, dtype=torch.float32))
        if act == "sigmoid":
            counts.append(torch.logical_or(flat < 0.01, flat > 0.99).sum(1, dtype=torch.float32))
        elif act == "tanh":
            counts.append((flat.abs() > 0.99).sum(1, dtype=torch.float32))
        # Two-pass spread (as Tensor.std): the norm of the centred values. torch.std_mean along a dim and
        # layer_norm's moments both take slow paths on the CPU; mean, sub and norm are plain vectorised loops.
        mean = flat.mean(1)
        # Centred in place: the stacked copy is scratch (the counts above are taken first).
        centred = flat.sub_(mean[:, None])
        pieces = [mean, torch.linalg.vector_norm(centred, dim=1), *counts]
        if not with_agrads:
            pieces.append(torch.stack([
                torch.linalg.vector_norm(h.grad) if h.grad is not None else torch.zeros((), device=a.device)
                for h in hidden
            ]).float())  # fmt: skip
        return pieces

    def _hidden_each(self, hidden: list[torch.Tensor], n_hidden: int, like: torch.Tensor) -> torch.Tensor:
        """mean, std, dead, saturated and ||d loss / d h|| layer by layer ([5, layers]), for activations of
        different shapes (or missing ones)."""
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
        return torch.stack([torch.stack(c) for c in cols]).float()

    def _assemble(self, flat: list[float]) -> list[dict]:
        """The host side: per-point joint norms, ratios and fractions from the raw reductions."""
        lay = self._layout
        k = int(lay["weights"])  # type: ignore[arg-type]
        n = int(lay["hidden"])  # type: ignore[arg-type]
        i = 0
        grad_w, weight_w = flat[i : i + k], flat[i + k : i + 2 * k]
        i += 2 * k
        agrad = flat[i : i + n] if lay.get("agrads") else None
        i += n if agrad is not None else 0
        act = self.model.activation
        if lay.get("each"):
            mean, std, dead, sat, agrad = (flat[i + j * n : i + (j + 1) * n] for j in range(5))
            i += 5 * n
        else:
            count = int(lay["count"])  # type: ignore[arg-type]
            mean = flat[i : i + n]
            spread = flat[i + n : i + 2 * n]  # ||h - mean(h)||
            i += 2 * n
            std = [x / math.sqrt(count - 1) for x in spread] if count > 1 else [0.0] * n
            if act in RELU_LIKE_DEAD:
                units = int(lay["units"])  # type: ignore[arg-type]
                dead = [c / units for c in flat[i : i + n]]
                i += n
            else:
                dead = [0.0] * n
            if act in ("sigmoid", "tanh"):
                sat = [c / count for c in flat[i : i + n]]
                i += n
            else:
                sat = [0.0] * n
            if agrad is None:
                agrad = flat[i : i + n]
                i += n
        o_mean, o_std = flat[i], flat[i + 1]
        i += 2
        delta_w = None
        if self._delta is not None:
            delta_w = flat[i : i + k]
            if self._delta_scale is not None:
                delta_w = [lr * d for lr, d in zip(self._delta_scale, delta_w)]
            i += k
        self._consumed = i

        layers = []
        j = 0
        for p, (name, size) in enumerate(zip(self.names, self._sizes)):
            g = _joint(grad_w[j : j + size])
            w = _joint(weight_w[j : j + size])
            update = _joint(delta_w[j : j + size]) / max(w, 1e-30) if delta_w is not None else 0.0
            j += size
            if p < n:
                row = (g, w, update, mean[p], std[p], dead[p], sat[p], agrad[p])
            else:  # the output layer: its logits' mean and spread; no units to die or saturate
                row = (g, w, update, o_mean, o_std, 0.0, 0.0, 0.0)
            layers.append({"name": name, **dict(zip(STATS, row))})
        return layers

    def _buffer(self, key: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A scratch tensor kept between snapshots: a fresh large one would cost its page faults each time."""
        buf = self._scratch.get(key)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._scratch[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buf

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


def _joint(norms: list[float]) -> float:
    """The joint L2 norm of several tensors from their norms (one tensor: its norm)."""
    if len(norms) == 1:
        return norms[0]
    return math.sqrt(sum(x * x for x in norms))



def _plain_sgd_groups(optimizer, weights: list[torch.Tensor]) -> list[dict] | None:
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
