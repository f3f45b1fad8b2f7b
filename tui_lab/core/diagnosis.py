"""Diagnosis: pure functions from a snapshot (and the recent ones) to findings in plain words.

Every finding says what the lab sees (with the number), why in one sentence, and which remedy to try,
naming the lesson preset that shows it. Thresholds are deliberately round numbers a student can remember.
Each check is one function in CHECKS; a new finding is one more function there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tui_lab.core import choices
from tui_lab.core.fmt import finite, is_finite, sci
from tui_lab.core.run import Finding, LayerStats, Snapshot

VANISH_RATIO = 1e-3  # first/last hidden-layer gradient ratio below this: vanishing
EXPLODE_RATIO = 1e3  # ... above this: gradients grow toward the input
DEAD_FRAC = 0.5
SAT_FRAC = 0.5
UPDATE_LOW, UPDATE_HIGH = 1e-5, 1e-1  # a healthy ||dW||/||W|| per step is around 1e-3
JUMP = 100.0  # total gradient norm this many times its recent median: a jump
FADE = 1e-2  # last/first hidden-layer activation spread below this: the forward signal fades


def grad_ratio(layers: Sequence[LayerStats]) -> float | None:
    """||grad W|| of the first hidden layer over that of the last hidden layer ('out' is left out; one hidden
    layer is its own last: 1). None when it cannot be told (no hidden layer, a missing or non-finite norm,
    both zero); inf when only the last one is zero."""
    hidden = [layer for layer in layers if layer.name != "out"]
    if not hidden:
        return None
    first, last = finite(hidden[0].grad_norm), finite(hidden[-1].grad_norm)
    if first is None or last is None or (first == 0 and last == 0):
        return None
    return first / last if last else math.inf


@dataclass(frozen=True)
class Context:
    """What every check may look at."""

    snap: Snapshot
    history: Sequence[Snapshot]  # earlier snapshots, oldest first
    hidden: list[LayerStats]  # every probe point but the output layer
    activation: str | None
    arch: str | None
    norm: str | None
    clip: float

    @property
    def traits(self) -> choices.Activation:
        return choices.ACTIVATIONS.get(self.activation or "", choices.Activation())


Check = Callable[[Context], "Finding | None"]


def depth(c: Context) -> Finding | None:
    """Vanishing / exploding across depth: the first hidden layer's gradient against the last's."""
    ratio = grad_ratio(c.hidden)
    if ratio is None or not math.isfinite(ratio):
        return None
    first, last = c.hidden[0].name, c.hidden[-1].name
    if ratio < VANISH_RATIO:
        arch = choices.ARCHS.get(c.arch or "")
        if c.traits.saturation is not None:
            remedy = "try relu + he_normal (relu-he), or norm = batch_pre (batchnorm-rescue)"
        elif arch is not None and not arch.recurrent and not arch.residual:
            remedy = "try he_normal init, norm = batch_pre, or residual connections (residual-deep)"
        else:
            remedy = "try he_normal init or norm = batch_pre"
        why = f" ({c.activation}' <= {c.traits.max_slope:g} per layer)" if c.traits.max_slope < 1 else ""
        message = f"vanishing gradients: {first} gets {sci(ratio)} of {last}'s gradient{why}"
        return Finding("vanishing", "error" if ratio < 1e-6 else "warn", [first, last], ratio, message, remedy)
    if ratio > EXPLODE_RATIO:
        message = f"exploding gradients: {first} gets {sci(ratio)}x {last}'s gradient (growing toward the input)"
        remedy = (
            "set optim.clip_norm (exploding-clipped), lower optim.lr, or use xavier/he init instead of large weights"
        )
        return Finding("exploding", "error" if ratio > 1e6 else "warn", [first, last], ratio, message, remedy)
    return None


def spike(c: Context) -> Finding | None:
    """A jump in the total gradient norm against its recent median."""
    total = _total(c.snap.layers)
    past = [p for p in (_total(s.layers) for s in list(c.history)[-20:]) if p is not None and p > 0]
    if total is None or len(past) < 5:
        return None
    jump = total / sorted(past)[len(past) // 2]
    if jump <= JUMP:
        return None
    message = f"gradient spike: total gradient norm is {sci(jump)}x its recent median"
    remedy = "set optim.clip_norm to about the usual norm" + (" (clipping is on; lower optim.lr)" if c.clip else "")
    return Finding("exploding", "warn", [], jump, message, remedy)


def fading(c: Context) -> Finding | None:
    """The forward signal fades (Glorot & Bengio): activations shrink layer by layer even if ||dW|| stays
    level. An activation whose slope is below 1 shrinks the signal by design; `depth` reports that."""
    stds = [layer.act_std for layer in c.hidden]
    if len(stds) < 4 or not all(is_finite(s) for s in stds) or stds[0] <= 0 or c.traits.max_slope < 1:
        return None
    shrink = stds[-1] / stds[0]
    if shrink >= FADE:
        return None
    first, last = c.hidden[0].name, c.hidden[-1].name
    message = f"activations fade with depth: {last}'s spread is {sci(shrink)} of {first}'s"
    remedy = "use an init matched to the activation (he_normal for relu, xavier for tanh) or norm = batch_pre"
    return Finding("fading_signal", "warn", [first, last], shrink, message, remedy)


def dead(c: Context) -> Finding | None:
    worst = _over(c.hidden, "dead_frac", DEAD_FRAC)
    if not worst:
        return None
    name, frac = max(worst, key=lambda t: t[1])
    message = f"dead ReLUs: {frac:.0%} of {name}'s units output 0 for every input, so they get no gradient"
    remedy = "lower optim.lr, or try leaky_relu / elu (leaky-relu-fix)"
    return Finding("dead", "error" if frac >= 0.9 else "warn", [n for n, _ in worst], frac, message, remedy)


def saturated(c: Context) -> Finding | None:
    worst = _over(c.hidden, "sat_frac", SAT_FRAC)
    if not worst:
        return None
    name, frac = max(worst, key=lambda t: t[1])
    message = (
        f"saturated units: {frac:.0%} of {name}'s outputs sit at the flat ends of {c.activation or 'the activation'}"
    )
    remedy = "use xavier init" + (" and norm = batch_pre" if c.norm == "none" else "") + ", or relu + he_normal"
    return Finding("saturated", "warn", [n for n, _ in worst], frac, message, remedy)


def update_size(c: Context) -> Finding | None:
    """||dW||/||W|| of the last step, the median over hidden layers (there is no step before step 0)."""
    ratios = sorted(r for r in (finite(layer.update_ratio) for layer in c.hidden) if r is not None and r > 0)
    if not ratios or c.snap.step <= 0:
        return None
    median = ratios[len(ratios) // 2]
    if median < UPDATE_LOW:
        message = f"tiny updates: a step changes the weights by {sci(median)} of their size (healthy is ~1e-3)"
        return Finding("update_ratio", "info", [], median, message, "raise optim.lr, or fix vanishing gradients first")
    if median > UPDATE_HIGH:
        message = f"huge updates: a step changes the weights by {sci(median)} of their size (healthy is ~1e-3)"
        return Finding("update_ratio", "warn", [], median, message, "lower optim.lr")
    return None


def through_time(c: Context) -> Finding | None:
    """The gradient reaching the first input step against the last."""
    tgn = c.snap.time_grad_norm
    if not tgn or len(tgn) < 2 or not is_finite(tgn[0]) or not is_finite(tgn[-1]) or tgn[-1] <= 0:
        return None
    ratio, steps = tgn[0] / tgn[-1], ["t1", f"t{len(tgn)}"]
    if ratio < VANISH_RATIO:
        message = f"vanishing through time: step 1 gets {sci(ratio)} of step {len(tgn)}'s gradient"
        remedy = "try arch = lstm or gru (lstm-remembers, gru)" if c.arch == "rnn" else "shorten data.seq_len"
        return Finding("vanishing_time", "error" if ratio < 1e-6 else "warn", steps, ratio, message, remedy)
    if ratio > EXPLODE_RATIO:
        message = f"exploding through time: step 1 gets {sci(ratio)}x step {len(tgn)}'s gradient"
        return Finding(
            "exploding_time", "warn", steps, ratio, message, "set optim.clip_norm, or use orthogonal init / lstm"
        )
    return None


CHECKS: list[Check] = [depth, spike, fading, dead, saturated, update_size, through_time]
DIVERGED = (
    "the loss or the gradients became NaN/Inf: training diverged",
    "lower optim.lr, set optim.clip_norm (e.g. 1.0), or use a smaller init (see exploding-clipped)",
)


def diagnose(snapshot: Snapshot, history: Sequence[Snapshot] = (), config=None) -> list[Finding]:
    """Findings for one snapshot. `history` is earlier snapshots (oldest first); `config` (a LabConfig)
    tailors the remedies."""
    if snapshot.nonfinite or any(_nonfinite(layer.grad_norm) for layer in snapshot.layers):
        return [Finding("nonfinite", "error", [], None, *DIVERGED)]
    model = getattr(config, "model", None)
    context = Context(
        snap=snapshot,
        history=history,
        hidden=[layer for layer in snapshot.layers if layer.name != "out"],
        activation=getattr(model, "activation", None),
        arch=getattr(model, "arch", None),
        norm=getattr(model, "norm", None),
        clip=getattr(getattr(config, "optim", None), "clip_norm", 0.0),
    )
    findings = [f for f in (check(context) for check in CHECKS) if f is not None]
    if not findings and is_finite(snapshot.loss):
        findings.append(Finding("healthy", "info", [], None, "gradients look healthy in every layer", ""))
    return findings


def _nonfinite(x: object) -> bool:
    return isinstance(x, float) and not math.isfinite(x)


def _over(layers: list[LayerStats], key: str, threshold: float) -> list[tuple[str, float]]:
    """(name, value) of the layers whose finite `key` is at least `threshold`."""
    values = [(layer.name, finite(getattr(layer, key))) for layer in layers]
    return [(name, v) for name, v in values if v is not None and v >= threshold]


def _total(layers: Sequence[LayerStats]) -> float | None:
    """The joint gradient norm of all layers; None when any is missing or not finite."""
    values = [finite(layer.grad_norm) for layer in layers]
    if not values or any(v is None for v in values):
        return None
    return math.sqrt(sum(v * v for v in values))  # type: ignore[operator]
