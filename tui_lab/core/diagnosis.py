"""Diagnosis: pure functions from a snapshot (and the recent ones) to findings in plain words.

Every finding says what the lab sees (with the number), why in one sentence, and which remedy to try,
naming the lesson preset that shows it. Thresholds are deliberately round numbers a student can remember.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "warn", "error")

VANISH_RATIO = 1e-3  # first/last hidden-layer gradient ratio below this: vanishing
EXPLODE_RATIO = 1e3  # ... above this: gradients grow toward the input
DEAD_FRAC = 0.5
SAT_FRAC = 0.5
UPDATE_LOW, UPDATE_HIGH = 1e-5, 1e-1  # a healthy ||dW||/||W|| per step is around 1e-3
JUMP = 100.0  # total gradient norm this many times its recent median: a jump


@dataclass
class Finding:
    kind: str  # vanishing | exploding | dead | saturated | update_ratio | nonfinite | vanishing_time | ...
    severity: str  # info | warn | error
    layers: list[str]
    value: float | None
    message: str
    remedy: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return d

    @property
    def text(self) -> str:
        return f"{self.message} — {self.remedy}" if self.remedy else self.message


def sci(x: float | None) -> str:
    """1.2e-08 -> '1e-8'-style short scientific notation for messages."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if 1e-2 <= abs(x) < 1e3:
        return f"{x:.3g}"
    mant, exp = f"{x:.0e}".split("e")
    return f"{mant}e{int(exp)}"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def diagnose(snapshot: Any, history: Sequence[Any] = (), config: Any = None) -> list[Finding]:
    """Findings for one snapshot. `snapshot` has .loss, .layers (dicts or objects), .time_grad_norm;
    `history` is earlier snapshots (oldest first); `config` (a LabConfig) tailors the remedies."""
    activation = getattr(getattr(config, "model", None), "activation", None)
    init = getattr(getattr(config, "model", None), "init", None)
    norm = getattr(getattr(config, "model", None), "norm", None)
    arch = getattr(getattr(config, "model", None), "arch", None)
    clip = getattr(getattr(config, "optim", None), "clip_norm", 0.0)
    findings: list[Finding] = []

    loss = getattr(snapshot, "loss", None)
    layers = [_as_dict(layer) for layer in getattr(snapshot, "layers", [])]
    nonfinite_grads = any(
        isinstance(layer.get("grad_norm"), float) and not math.isfinite(layer["grad_norm"]) for layer in layers
    )
    if getattr(snapshot, "nonfinite", False) or nonfinite_grads:
        findings.append(Finding(
            "nonfinite", "error", [], None,
            "the loss or the gradients became NaN/Inf: training diverged",
            "lower optim.lr, set optim.clip_norm (e.g. 1.0), or use a smaller init (see exploding-clipped)",
        ))  # fmt: skip
        return findings

    hidden = [layer for layer in layers if layer.get("name") != "out"]
    grads = [layer.get("grad_norm") for layer in hidden]

    # Vanishing / exploding across depth: the first hidden layer against the last.
    if len(hidden) >= 2 and _finite(grads[0]) and _finite(grads[-1]) and grads[-1] > 0:
        ratio = grads[0] / grads[-1]
        first, last = hidden[0]["name"], hidden[-1]["name"]
        if ratio < VANISH_RATIO:
            if activation in ("sigmoid", "tanh"):
                remedy = "try relu + he_normal (relu-he), or norm = batch_pre (batchnorm-rescue)"
            elif arch in ("mlp", "cnn"):
                remedy = "try he_normal init, norm = batch_pre, or residual connections (residual-deep)"
            else:
                remedy = "try he_normal init or norm = batch_pre"
            why = " (sigmoid' <= 0.25 per layer)" if activation == "sigmoid" else ""
            findings.append(Finding(
                "vanishing", "error" if ratio < 1e-6 else "warn", [first, last], ratio,
                f"vanishing gradients: {first} gets {sci(ratio)} of {last}'s gradient{why}", remedy,
            ))  # fmt: skip
        elif ratio > EXPLODE_RATIO:
            findings.append(Finding(
                "exploding", "error" if ratio > 1e6 else "warn", [first, last], ratio,
                f"exploding gradients: {first} gets {sci(ratio)}x {last}'s gradient (growing toward the input)",
                "set optim.clip_norm (exploding-clipped), lower optim.lr, or use xavier/he init instead of large weights",
            ))  # fmt: skip

    # A jump in the total gradient norm against its recent median.
    total = _total(layers)
    past = [_total([_as_dict(layer) for layer in getattr(s, "layers", [])]) for s in list(history)[-20:]]
    past = [p for p in past if _finite(p) and p > 0]
    if _finite(total) and len(past) >= 5:
        median = sorted(past)[len(past) // 2]
        if total > JUMP * median:
            findings.append(Finding(
                "exploding", "warn", [], total / median,
                f"gradient spike: total gradient norm is {sci(total / median)}x its recent median",
                "set optim.clip_norm to about the usual norm" + ("" if not clip else " (clipping is on; lower optim.lr)"),
            ))  # fmt: skip

    # Forward signal fading (Glorot & Bengio): activations shrink layer by layer even if ||dW|| stays level.
    stds = [layer.get("act_std") for layer in hidden]
    if len(hidden) >= 4 and all(_finite(s) for s in stds) and stds[0] > 0:
        shrink = stds[-1] / stds[0]
        if shrink < 1e-2 and activation not in ("sigmoid",):
            findings.append(Finding(
                "fading_signal", "warn", [hidden[0]["name"], hidden[-1]["name"]], shrink,
                f"activations fade with depth: {hidden[-1]['name']}'s spread is {sci(shrink)} of {hidden[0]['name']}'s",
                "use an init matched to the activation (he_normal for relu, xavier for tanh) or norm = batch_pre",
            ))  # fmt: skip

    worst_dead = _over(hidden, "dead_frac", DEAD_FRAC)
    if worst_dead:
        name, frac = max(worst_dead, key=lambda t: t[1])
        findings.append(Finding(
            "dead", "error" if frac >= 0.9 else "warn", [n for n, _ in worst_dead], frac,
            f"dead ReLUs: {frac:.0%} of {name}'s units output 0 for every input, so they get no gradient",
            "lower optim.lr, or try leaky_relu / elu (leaky-relu-fix)",
        ))  # fmt: skip

    worst_sat = _over(hidden, "sat_frac", SAT_FRAC)
    if worst_sat:
        name, frac = max(worst_sat, key=lambda t: t[1])
        findings.append(Finding(
            "saturated", "warn", [n for n, _ in worst_sat], frac,
            f"saturated units: {frac:.0%} of {name}'s outputs sit at the flat ends of {activation or 'the activation'}",
            "use xavier init" + (" and norm = batch_pre" if norm == "none" else "") + ", or relu + he_normal",
        ))  # fmt: skip

    ratios = [layer.get("update_ratio") for layer in hidden if _finite(layer.get("update_ratio"))]
    ratios = [r for r in ratios if r > 0]
    if ratios and getattr(snapshot, "step", 0) > 0:
        median = sorted(ratios)[len(ratios) // 2]
        if median < UPDATE_LOW:
            findings.append(Finding(
                "update_ratio", "info", [], median,
                f"tiny updates: a step changes the weights by {sci(median)} of their size (healthy is ~1e-3)",
                "raise optim.lr, or fix vanishing gradients first",
            ))  # fmt: skip
        elif median > UPDATE_HIGH:
            findings.append(Finding(
                "update_ratio", "warn", [], median,
                f"huge updates: a step changes the weights by {sci(median)} of their size (healthy is ~1e-3)",
                "lower optim.lr",
            ))  # fmt: skip

    # Through time: the gradient reaching the first input step against the last.
    tgn = getattr(snapshot, "time_grad_norm", None)
    if tgn and len(tgn) >= 2 and _finite(tgn[0]) and _finite(tgn[-1]) and tgn[-1] > 0:
        ratio = tgn[0] / tgn[-1]
        if ratio < VANISH_RATIO:
            remedy = "try arch = lstm or gru (lstm-remembers, gru)" if arch == "rnn" else "shorten data.seq_len"
            findings.append(Finding(
                "vanishing_time", "error" if ratio < 1e-6 else "warn", ["t1", f"t{len(tgn)}"], ratio,
                f"vanishing through time: step 1 gets {sci(ratio)} of step {len(tgn)}'s gradient", remedy,
            ))  # fmt: skip
        elif ratio > EXPLODE_RATIO:
            findings.append(Finding(
                "exploding_time", "warn", ["t1", f"t{len(tgn)}"], ratio,
                f"exploding through time: step 1 gets {sci(ratio)}x step {len(tgn)}'s gradient",
                "set optim.clip_norm, or use orthogonal init / lstm",
            ))  # fmt: skip

    if not findings and _finite(loss):
        findings.append(Finding("healthy", "info", [], None, "gradients look healthy in every layer", ""))
    return findings


def _over(layers: list[dict[str, Any]], key: str, threshold: float) -> list[tuple[str, float]]:
    """(name, value) of the layers whose finite `key` is at least `threshold`."""
    return [(layer["name"], layer[key]) for layer in layers if _finite(layer.get(key)) and layer[key] >= threshold]


def _as_dict(layer: Any) -> dict[str, Any]:
    return layer if isinstance(layer, dict) else vars(layer)


def _total(layers: list[dict[str, Any]]) -> float:
    values = [layer.get("grad_norm") for layer in layers]
    if not values or not all(_finite(v) for v in values):
        return float("nan")
    return math.sqrt(sum(v * v for v in values))
