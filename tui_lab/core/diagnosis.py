"""Diagnosis: pure functions from a snapshot (and the run so far) to findings in plain words.

Every finding says what the lab sees (with the number), why, and which remedy to try, naming the lesson
preset that shows it; a remedy the configuration already uses is not offered. A finding *alarms* when it is
a warning or an error, or when it advises changing something; the calibration suite
(benchmarks/calibrate.py) measures how often an alarm means a network that will not train, and how often a
network that will not train raises one. Thresholds are round numbers a student can remember; the README
(Diagnosis) lists each with its reason. Each check is one function in CHECKS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tui_lab.core import choices
from tui_lab.core.fmt import finite, sci
from tui_lab.core.i18n import N_, _
from tui_lab.core.run import Finding, LayerStats, Snapshot

VANISH = 1e-3  # the first hidden layer gets less than this share of a later layer's weight gradient: vanishing
SIGNAL = 1e-4  # ... of the back-propagated signal d loss / d h (or of the activations' spread: fading)
VANISH_ADAPTIVE = 1e-6  # ... with Adam-like optimisers, which rescale each weight's step by its own gradient
EXPLODE = 1e3  # ... more than this many times: the gradient grows toward the input
GROW = 1e2  # the activations' spread grows this much from the first hidden layer to the last
DEAD_FRAC, DEAD_GROWTH = 0.5, 0.25  # half a layer dead, a quarter more than at initialisation
SAT_FRAC = 0.5
UPDATE_LOW, UPDATE_HIGH = 1e-4, 3e-2  # a step changes the weights by ||dW||/||W||; healthy is around 1e-3
SETTLED_HIGH = 1e-1  # ... the step momentum builds up to, for ReLU (an overshoot kills units for good)
WEAK_GRADIENT = 1e-3  # ||grad W|| / ||W|| below this: a tiny SGD step is the gradient's doing, not the lr's
JUMP = 100.0  # total gradient norm this many times its recent median: a spike
STUCK = 0.5  # the training loss stopped falling while still this share of the loss of guessing
CONVERGED = 0.1  # ... or already below this share of it
PROGRESS = 0.05  # the loss fell by this share over the recent snapshots: still improving
SETTLED = 10  # snapshots seen before a run can be called stalled


# ---------------------------------------------------------------------------------------------------------
# Remedies: each a change to the configuration and the lesson preset that shows it.


@dataclass(frozen=True)
class Remedy:
    text: str  # "activation = relu, init = he_normal" (words in it are marked N_ and translated by `advise`)
    preset: str  # the lesson that shows it working
    in_use: Callable[[Any], bool] = lambda cfg: False  # the configuration already does this
    applies: Callable[[Any], bool] = lambda cfg: True  # the configuration can do this at all


def _he(cfg: Any) -> bool:
    return cfg.model.init.startswith("he_")


def _activation(cfg: Any) -> str:
    return choices.hidden_activation(cfg.model.arch, cfg.model.activation)


def _saturating(cfg: Any) -> bool:
    return choices.ACTIVATIONS[_activation(cfg)].saturation is not None


def _feedforward(cfg: Any) -> bool:
    return not cfg.recurrent


RELU_HE = Remedy("activation = relu, init = he_normal", "relu-he",
                 lambda c: c.model.activation == "relu" and _he(c), _feedforward)  # fmt: skip
HE_INIT = Remedy("init = he_normal", "he-vs-xavier-deep", _he, lambda c: _feedforward(c) and not _saturating(c))
XAVIER = Remedy(
    "init = xavier_normal",
    "xavier-tanh",
    lambda c: c.model.init.startswith("xavier_"),
    lambda c: _feedforward(c) and _saturating(c),
)
BATCH_PRE = Remedy("norm = batch_pre", "batchnorm-rescue", lambda c: c.model.norm != "none", lambda c: not c.recurrent)
RESIDUAL = Remedy("arch = resmlp", "residual-deep",
                  lambda c: choices.ARCHS[c.model.arch].residual, lambda c: c.model.arch == "mlp")  # fmt: skip
LEAKY = Remedy("activation = leaky_relu", "leaky-relu-fix",
               applies=lambda c: _feedforward(c) and _activation(c) == "relu")  # fmt: skip
LOWER_LR = Remedy(N_("a lower optim.lr"), "optimizers")
RAISE_LR = Remedy(N_("a higher optim.lr"), "optimizers")
CLIP = Remedy("optim.clip_norm = 1", "exploding-clipped", lambda c: c.optim.clip_norm > 0)
GATED = Remedy(N_("arch = lstm or gru"), "lstm-remembers", lambda c: choices.ARCHS[c.model.arch].gated,
               lambda c: c.recurrent)  # fmt: skip
SHORTER = Remedy(N_("a shorter data.seq_len"), "rnn-vanishing", applies=lambda c: c.recurrent)


# ---------------------------------------------------------------------------------------------------------
# What every check may look at.


@dataclass
class Context:
    snap: Snapshot
    history: Sequence[Snapshot]  # earlier snapshots, oldest first
    config: Any  # the LabConfig, or None
    chance_loss: float | None  # the loss of the best constant guess
    initial: Snapshot | None  # the step-0 snapshot
    found: list[Finding] = field(default_factory=list)  # what the checks before this one found

    @property
    def hidden(self) -> list[LayerStats]:
        return [layer for layer in self.snap.layers if layer.name != "out"]

    @property
    def out(self) -> LayerStats | None:
        return next((layer for layer in self.snap.layers if layer.name == "out"), None)

    @property
    def at_start(self) -> bool:
        return self.snap.step == 0 or self.initial is self.snap

    @property
    def traits(self) -> choices.Activation:
        return choices.ACTIVATIONS[_activation(self.config)] if self.config else choices.Activation()

    @property
    def optimizer(self) -> choices.Optimizer:
        return choices.OPTIMIZERS[self.config.optim.name] if self.config else choices.Optimizer()

    @property
    def clipped(self) -> bool:
        return bool(self.config and self.config.optim.clip_norm > 0)

    def weak_gradient(self, step_ratio: float) -> bool:
        """SGD's step is lr * ||g||: a tiny step with a normal lr means a weak gradient (the lr is not to blame)."""
        lr = self.snap.lr or (self.config.optim.lr if self.config else 0.0)
        return not self.optimizer.adaptive and lr > 0 and step_ratio / lr < WEAK_GRADIENT

    @property
    def clipping(self) -> bool:
        """Clipping is on and this step's gradient was over the limit: the step was cut down to size."""
        total = self.snap.grad_total
        return self.clipped and total is not None and total > self.config.optim.clip_norm

    def advise(self, *remedies: Remedy) -> str:
        """'try X (preset), or Y (preset)', leaving out what the configuration already does or cannot do."""
        cfg = self.config
        usable = [r for r in remedies if cfg is None or (r.applies(cfg) and not r.in_use(cfg))]
        if not usable:
            return ""
        # TRANSLATORS: between two remedies: "try activation = relu (relu-he), or norm = batch_pre (...)".
        changes = _(", or ").join(f"{_(r.text)} ({r.preset})" for r in usable)
        return _("try {changes}").format(changes=changes)

    def alarmed(self, *kinds: str) -> bool:
        return any(f.kind in kinds and alarms(f) for f in self.found)

    # -- how the run is going -----------------------------------------------------------------------------

    def losses(self) -> list[float]:
        return [x for x in (finite(s.loss) for s in [*self.history[-2 * SETTLED :], self.snap]) if x is not None]

    @property
    def converged(self) -> bool:
        loss = finite(self.snap.loss)
        return loss is not None and self.chance_loss is not None and loss <= CONVERGED * self.chance_loss

    @property
    def struggling(self) -> bool:
        """The loss is still at least half of what guessing gives (a healthy run ends far below)."""
        loss = finite(self.snap.loss)
        if loss is None or self.chance_loss is None:
            return not self.converged
        return loss >= STUCK * self.chance_loss

    @property
    def improving(self) -> bool:
        """The loss of the latest snapshots is clearly below that of the ones before them."""
        losses = self.losses()
        if len(losses) < 4:
            return True  # too early to tell
        third = len(losses) // 3
        earlier, latest = _median(losses[:third]), _median(losses[-third:])
        return latest < (1 - PROGRESS) * earlier

    @property
    def stalled(self) -> bool:
        """Past the start, not converged, and the loss no longer falls."""
        return len(self.history) >= SETTLED and not self.converged and not self.improving


def alarms(finding: Finding) -> bool:
    """A warning or an error, or advice to change something."""
    return finding.severity in ("warn", "error") or bool(finding.remedy)


# ---------------------------------------------------------------------------------------------------------
# The checks, in the order they run (later ones may look at what earlier ones found).


def depth(c: Context) -> Finding | None:
    """Vanishing or exploding across depth, judged on the weight gradient and on the back-propagated signal
    (d loss / d h), first hidden layer against the last hidden layer and against the output layer."""
    hidden, out = c.hidden, c.out
    if not hidden or c.alarmed("dead"):
        return None  # a dead layer passes no gradient: `dead` says why
    first, others = hidden[0], [layer for layer in (hidden[-1] if len(hidden) > 1 else None, out) if layer]
    # (words, ratio, threshold): the weight gradient moves the layer; the back-propagated signal is what
    # reaches it, and a net tolerates more loss there (the weight gradient also grows with the layer's input).
    ratios = [
        (partial(_("{layer} gets {r} of {other}'s gradient").format, layer=first.name, other=other.name), ratio, VANISH)
        for other in others
        for ratio in (_ratio(first.grad_norm, other.grad_norm),)
        if ratio is not None
    ] + [
        (
            partial(
                _("the signal back-propagated to {layer} is {r} of that at {other}").format,
                layer=first.name,
                other=other.name,
            ),
            ratio,
            SIGNAL,
        )
        for other in others
        for ratio in (_ratio(first.act_grad_norm, other.act_grad_norm),)
        if ratio is not None
    ]
    if c.optimizer.adaptive:
        ratios = [(words, ratio, VANISH_ADAPTIVE) for words, ratio, _ in ratios]
    if not ratios:
        return None
    words, low, bar = min(ratios, key=lambda t: t[1] / t[2])
    if low < bar:
        slope = c.traits.max_slope
        why = (
            " " + _("({activation}' <= {slope} per layer)").format(activation=_activation(c.config), slope=f"{slope:g}")
            if c.config and slope < 1
            else ""
        )
        if c.config is not None and _saturating(c.config):
            remedy = c.advise(RELU_HE, BATCH_PRE)
        else:
            remedy = c.advise(HE_INIT, XAVIER, BATCH_PRE, RESIDUAL)
        message = _("vanishing gradients: {what}").format(what=words(r=sci(low))) + why
        return Finding(
            "vanishing", "error" if low < 1e-6 else "warn", [first.name, others[0].name], low, message, remedy
        )
    return None


def growth(c: Context) -> Finding | None:
    """The signal grows through the layers: the back-propagated gradient toward the input, the forward
    activations toward the output, or, at the start, a loss far above what guessing gives (outputs far too
    large). With clipping on, each step is bounded: said, not alarmed."""
    hidden = c.hidden
    signs = []
    if len(hidden) >= 2 and (c.at_start or c.struggling):  # a net that learns may grow its weights
        first, last = hidden[0], hidden[-1]
        grad = _ratio(first.grad_norm, last.grad_norm)
        if grad is not None and grad > EXPLODE:
            words = _("{layer} gets {ratio}x {other}'s gradient")
            signs.append((words.format(layer=first.name, ratio=sci(grad), other=last.name), grad))
        back = _ratio(first.act_grad_norm, last.act_grad_norm)
        if back is not None and back > EXPLODE:
            words = _("the back-propagated signal grows {ratio}x from {last} down to {first}")
            signs.append((words.format(ratio=sci(back), last=last.name, first=first.name), back))
        forward = _ratio(last.act_std, first.act_std)
        if forward is not None and forward > GROW:
            words = _("the activations' spread grows {ratio}x from {first} to {last}")
            signs.append((words.format(ratio=sci(forward), first=first.name, last=last.name), forward))
    loss = _ratio(c.snap.loss, c.chance_loss)
    if c.at_start and loss is not None and loss > GROW:
        words = _("the loss at initialisation is {ratio}x what guessing gives: the outputs are far too large")
        signs.append((words.format(ratio=sci(loss)), loss))
    if not signs:
        return None
    words, size = max(signs, key=lambda t: t[1])
    layers = [hidden[0].name, hidden[-1].name] if hidden else []
    if c.clipped:
        message = _("a growing signal: {what}; clipping (optim.clip_norm = {clip}) bounds each step").format(
            what=words, clip=f"{c.config.optim.clip_norm:g}"
        )
        return Finding("exploding", "info", layers, size, message, "")
    remedy = c.advise(CLIP, RELU_HE if c.config is None or not _saturating(c.config) else XAVIER, LOWER_LR)
    message = _("exploding gradients: {what}").format(what=words)
    return Finding("exploding", "error" if size > 1e6 else "warn", layers, size, message, remedy)


def fading(c: Context) -> Finding | None:
    """The forward signal fades (Glorot & Bengio): activations shrink layer by layer even if ||dW|| stays level.
    An activation whose slope is below 1 shrinks the signal by design; `depth` reports that."""
    hidden = c.hidden
    if len(hidden) < 4 or c.traits.max_slope < 1:
        return None
    shrink = _ratio(hidden[-1].act_std, hidden[0].act_std)
    if shrink is None or shrink >= SIGNAL:
        return None
    first, last = hidden[0].name, hidden[-1].name
    message = _("activations fade with depth: {last}'s spread is {ratio} of {first}'s").format(
        last=last, ratio=sci(shrink), first=first
    )
    return Finding("fading_signal", "warn", [first, last], shrink, message, c.advise(HE_INIT, XAVIER, BATCH_PRE))


def spike(c: Context) -> Finding | None:
    """A jump in the total gradient norm against its recent median."""
    total = c.snap.grad_total
    past = [p for p in (s.grad_total for s in list(c.history)[-20:]) if p is not None and p > 0]
    if total is None or len(past) < 5:
        return None
    jump = total / _median(past)
    if jump <= JUMP:
        return None
    message = _("gradient spike: total gradient norm is {ratio}x its recent median").format(ratio=sci(jump))
    return Finding("exploding", "warn", [], jump, message, c.advise(CLIP, LOWER_LR))


def dead(c: Context) -> Finding | None:
    """Dead ReLUs beyond what the initialisation gives: deep ReLU nets start with dead units by design, and
    many nets learn well on the units they keep, so only a layer that is mostly dead and has lost a quarter
    more of its units while training alarms, and only while the loss is still high."""
    if c.at_start:
        return None
    start = {layer.name: finite(layer.dead_frac) or 0.0 for layer in (c.initial.layers if c.initial else [])}
    worst = [
        (layer.name, frac)
        for layer in c.hidden
        if (frac := finite(layer.dead_frac)) is not None
        and frac >= DEAD_FRAC
        and frac - start.get(layer.name, 0.0) >= DEAD_GROWTH
    ]
    if not worst:
        return None
    name, frac = max(worst, key=lambda t: t[1])
    message = _(
        "dead ReLUs: {share} of {layer}'s units output 0 for every input (at the start: {start}), "
        "so they get no gradient"
    ).format(share=f"{frac:.0%}", layer=name, start=f"{start.get(name, 0.0):.0%}")
    layers = [name] + [n for n, _ in worst if n != name]  # the one the message names first
    if not c.struggling:  # the net learns on the units it has left: wasted width, not a failure
        return Finding("dead", "info", layers, frac, message + _("; the rest still learn the task"), "")
    return Finding("dead", "error" if frac >= 0.9 else "warn", layers, frac, message, c.advise(LOWER_LR, LEAKY))


def saturated(c: Context) -> Finding | None:
    """Saturated units are a fact worth knowing, not a sickness by themselves: a net can train with most of
    its sigmoid units at the flat ends. When the gradient vanishes as a result, `depth` says so."""
    worst = _over(c.hidden, "sat_frac", SAT_FRAC)
    if not worst:
        return None
    name, frac = max(worst, key=lambda t: t[1])
    act = _activation(c.config) if c.config else _("the activation")
    message = _("saturated units: {share} of {layer}'s outputs sit at the flat ends of {activation}").format(
        share=f"{frac:.0%}", layer=name, activation=act
    )
    return Finding("saturated", "info", [n for n, _ in worst], frac, message, "")


def update_size(c: Context) -> Finding | None:
    """||W_after - W_before|| / ||W|| of the last step, the median over hidden layers (at step 0: the first
    step). A step larger than the weights themselves always alarms. With SGD, whose steps grow with the
    gradient, a first step above 3% of the weights heads for divergence, and for ReLU so does the step that
    momentum builds up to (1/(1 - momentum) times the first) above 10%; a norm layer keeps the signal's scale
    in check whatever the weights do. An adaptive optimiser's first steps are about lr per weight whatever
    the gradient, and say little more. Tiny steps (learning crawls) alarm at the start, or once the run has
    stalled, unless a vanishing gradient or active clipping explains them."""
    ratios = sorted(r for r in (finite(layer.update_ratio) for layer in c.hidden) if r is not None)
    if not ratios:
        return None
    median = ratios[len(ratios) // 2]
    size = _("a step changes the weights by {ratio} of their size (healthy is ~1e-3)").format(ratio=sci(median))
    cfg = c.config
    normalised = bool(cfg and cfg.model.norm != "none")
    # Momentum's steps build up to 1/(1 - momentum) times the first one along a steady direction.
    settled = median / (1 - cfg.optim.momentum) if cfg and cfg.optim.name in ("momentum", "nesterov") else median
    huge = median > 1 or (
        not c.optimizer.adaptive
        and not normalised
        and (median > UPDATE_HIGH or (c.traits.dies_at_zero and settled > SETTLED_HIGH))
    )
    if huge:
        if settled > median and median <= UPDATE_HIGH:
            size += _("; with momentum it builds up to about {ratio}").format(ratio=sci(settled))
        message = _("huge updates: {what}").format(what=size)
        return Finding("update_ratio", "warn", [], median, message, c.advise(LOWER_LR, CLIP))
    explained = c.alarmed("vanishing", "fading_signal") or c.clipping or c.weak_gradient(median)
    if settled < UPDATE_LOW and not explained and (c.at_start or c.stalled):
        message = _("tiny updates: {what}").format(what=size)
        return Finding("update_ratio", "info", [], median, message, c.advise(RAISE_LR))
    return None


def through_time(c: Context) -> Finding | None:
    """The gradient reaching the first input step against the last. A gated cell starts with it vanishing
    and learns to carry it (its gates open), so for LSTM and GRU only a run that has stalled alarms."""
    tgn = c.snap.time_grad_norm
    if not tgn or len(tgn) < 2:
        return None
    ratio, steps = _ratio(tgn[0], tgn[-1]), ["t1", f"t{len(tgn)}"]
    if ratio is None:
        return None
    gated = bool(c.config and choices.ARCHS[c.config.model.arch].gated)
    if ratio < VANISH and (not gated or (c.stalled and not c.at_start)):
        message = _("vanishing through time: step 1 gets {ratio} of step {last}'s gradient").format(
            ratio=sci(ratio), last=len(tgn)
        )
        return Finding("vanishing_time", "error" if ratio < 1e-6 else "warn", steps, ratio, message,
                       c.advise(GATED, SHORTER))  # fmt: skip
    if ratio > EXPLODE and not c.clipped:
        message = _("exploding through time: step 1 gets {ratio}x step {last}'s gradient").format(
            ratio=sci(ratio), last=len(tgn)
        )
        return Finding("exploding_time", "warn", steps, ratio, message, c.advise(CLIP))
    return None


def stalled(c: Context) -> Finding | None:
    """Stuck: past the start the loss no longer falls while still at least half of what guessing gives (a
    healthy run ends far below). Said only when no other alarm explains it."""
    loss = finite(c.snap.loss)
    if c.chance_loss is None or loss is None or loss < STUCK * c.chance_loss or not c.stalled:
        return None
    if any(alarms(f) for f in c.found):
        return None  # an alarm already says why
    if c.config is not None and c.config.recurrent:
        remedy = c.advise(GATED, SHORTER)
    elif c.config is not None and _saturating(c.config):
        remedy = c.advise(RELU_HE, BATCH_PRE)
    else:
        remedy = c.advise(HE_INIT, BATCH_PRE)
    share = loss / c.chance_loss
    message = _("not learning: the loss stopped falling at {loss}, {share} of what guessing gives ({chance})").format(
        loss=sci(loss), share=f"{share:.0%}", chance=sci(c.chance_loss)
    )
    return Finding("stalled", "warn", [], loss, message, remedy)


CHECKS: list[Callable[[Context], Finding | None]] = [
    dead, depth, growth, fading, spike, saturated, update_size, through_time, stalled
]  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Divergence: where it broke.


@dataclass(frozen=True)
class Breakdown:
    """Where a run first went non-finite."""

    layer: str
    quantity: str  # weights | activations | gradients | loss
    count: int  # how many values of it were NaN/Inf

    @property
    def text(self) -> str:
        if self.quantity == "weights":
            return _("the weights of {layer} were already NaN/Inf (an earlier update broke them)").format(
                layer=self.layer
            )
        if self.quantity == "activations":
            if self.layer == "out":
                return _("the network's output overflowed to Inf/NaN in the forward pass ({count} values)").format(
                    count=self.count
                )
            return _("{layer}'s output overflowed to Inf/NaN in the forward pass ({count} values)").format(
                layer=self.layer, count=self.count
            )
        if self.quantity == "gradients":
            return _("the gradient overflowed to Inf/NaN at {layer} on its way back ({count} values)").format(
                layer=self.layer, count=self.count
            )
        return _("the loss itself overflowed while every layer stayed finite")

    def to_dict(self) -> dict[str, object]:
        return {"layer": self.layer, "quantity": self.quantity, "count": self.count}


def breakdown(layers: Sequence[LayerStats]) -> Breakdown | None:
    """The first thing that went non-finite, in the order it happens: weights (from an earlier step), then the
    forward pass (input side first), then the backward pass (output side first). None without counts."""
    counted = [layer for layer in layers if layer.nonfinite is not None]
    if not counted:
        return None
    for quantity, key, order in (("weights", "weights", counted), ("activations", "acts", counted),
                                 ("gradients", "grads", counted[::-1])):  # fmt: skip
        for layer in order:
            if layer.nonfinite and layer.nonfinite.get(key, 0) > 0:
                return Breakdown(layer.name, quantity, int(layer.nonfinite[key]))
    return Breakdown("out", "loss", 0)


def diverged(c: Context) -> Finding:
    where = breakdown(c.snap.layers)
    said = _("training diverged at step {step}: {where}").format(
        step=c.snap.step, where=where.text if where else _("the loss or the gradients became NaN/Inf")
    )
    return Finding("nonfinite", "error", [where.layer] if where else [], None, said, c.advise(LOWER_LR, CLIP, RELU_HE))


# ---------------------------------------------------------------------------------------------------------


def diagnose(
    snapshot: Snapshot,
    history: Sequence[Snapshot] = (),
    config: Any = None,
    *,
    chance_loss: float | None = None,
    initial: Snapshot | None = None,
) -> list[Finding]:
    """Findings for one snapshot. `history` is earlier snapshots (oldest first); `config` (a LabConfig)
    tailors the remedies; `chance_loss` (the loss of the best constant guess) and `initial` (the step-0
    snapshot) say where the run started from."""
    c = Context(snapshot, list(history), config, chance_loss, initial)
    if snapshot.nonfinite or any(_nonfinite(layer.grad_norm) for layer in snapshot.layers):
        return [diverged(c)]
    for check in CHECKS:
        finding = check(c)
        if finding is not None:
            c.found.append(finding)
    if not any(alarms(f) for f in c.found) and finite(snapshot.loss) is not None:
        c.found.insert(0, Finding("healthy", "info", [], None, _("gradients look healthy in every layer"), ""))
    return c.found


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


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b when both are finite and b > 0 (a zero a gives 0: a layer that gets nothing)."""
    a, b = finite(a), finite(b)
    return a / b if a is not None and b is not None and b > 0 else None


def _median(xs: Sequence[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def _nonfinite(x: object) -> bool:
    return isinstance(x, float) and not math.isfinite(x)


def _over(layers: list[LayerStats], key: str, threshold: float) -> list[tuple[str, float]]:
    """(name, value) of the layers whose finite `key` is at least `threshold`."""
    values = [(layer.name, finite(getattr(layer, key))) for layer in layers]
    return [(name, v) for name, v in values if v is not None and v >= threshold]
