"""Diagnosis on synthetic snapshots: each check, its number, its phase (at the start, while training, at
the end) and its remedy; remedies never repeat what the configuration already does, and always name a
lesson preset that exists."""

from __future__ import annotations

import math
import re

import pytest

from tui_lab.core import diagnosis
from tui_lab.core.diagnosis import alarms, breakdown, diagnose
from tui_lab.core.presets import bundled_dir
from tui_lab.core.run import LayerStats, Snapshot

from support import config

LN3 = math.log(3)


def snapshot(grads, *, step=5, loss=0.5, acts=None, agrads=None, dead=0.0, sat=0.0, update=1e-3, tgn=None,
             out_grad=1.0, lr=0.1):  # fmt: skip
    """Hidden layers L1..Ln with these weight-gradient norms, then the output layer."""
    n = len(grads)
    acts = acts or [1.0] * n
    agrads = agrads or [1.0] * n
    layers = [
        LayerStats(f"L{i + 1}", grad_norm=g, weight_norm=1.0, update_ratio=update, act_std=acts[i],
                   act_grad_norm=agrads[i], dead_frac=dead, sat_frac=sat)
        for i, g in enumerate(grads)
    ]  # fmt: skip
    layers.append(LayerStats("out", grad_norm=out_grad, weight_norm=1.0, update_ratio=update, act_grad_norm=1.0))
    return Snapshot(step=step, total_steps=1000, epoch=0, time_s=0, loss=loss, lr=lr, layers=layers,
                    time_grad_norm=tgn)  # fmt: skip


def kinds(snap, cfg=None, history=(), initial=None, chance=LN3):
    return {f.kind: f for f in diagnose(snap, history, cfg, chance_loss=chance, initial=initial)}


def run_of(loss, n=12, **kw):
    """A history of n snapshots at this loss (a run that has settled there)."""
    return [snapshot([1, 1, 1, 1], step=10 * i, loss=loss, **kw) for i in range(1, n + 1)]


# ---------------------------------------------------------------------------------------------------------
# Depth.


def test_vanishing_names_the_ratio_and_a_remedy_the_config_does_not_use():
    f = kinds(snapshot([1e-9, 1e-6, 1e-3, 1.0]), config("model.activation=sigmoid"))["vanishing"]
    assert f.severity == "error" and f.layers[0] == "L1" and f.value == pytest.approx(1e-9)
    assert "L1 gets 1e-9 of" in f.message and "relu-he" in f.remedy and "batchnorm-rescue" in f.remedy
    already = kinds(snapshot([1e-9, 1e-6, 1e-3, 1.0]), config("model.activation=relu", "model.init=he_normal"))
    assert "he_normal" not in already["vanishing"].remedy and "batch_pre" in already["vanishing"].remedy


def test_vanishing_is_seen_against_the_output_layer_and_in_the_back_propagated_signal():
    # Weight gradients level between hidden layers, but L1 gets 1e-4 of the output layer's.
    assert "vanishing" in kinds(snapshot([1e-4, 1e-4, 1e-4, 1e-4], out_grad=1.0))
    # Weight gradients level everywhere; d loss / d h shrinks toward the input (Glorot & Bengio's trap).
    f = kinds(snapshot([1, 1, 1, 1], agrads=[1e-5, 1e-3, 0.1, 1.0]))["vanishing"]
    assert "back-propagated to L1" in f.message


def test_adaptive_optimisers_tolerate_a_moderate_vanishing_gradient():
    snap = snapshot([2e-4, 1e-2, 0.1, 1.0])
    assert "vanishing" in kinds(snap, config("model.activation=relu"))
    assert "vanishing" not in kinds(snap, config("model.activation=relu", "optim.name=adam"))
    assert "vanishing" in kinds(snapshot([1e-9, 1e-6, 1e-3, 1.0]), config("optim.name=adam"))


def test_a_growing_signal_is_exploding_and_clipping_turns_it_into_a_note():
    grows = snapshot([1, 1, 1, 1], step=0, acts=[0.2, 2, 20, 200])
    f = kinds(grows, config("model.activation=relu", "model.init=normal"))["exploding"]
    assert f.severity == "warn" and "spread grows 1e3x" in f.message and "exploding-clipped" in f.remedy
    clipped = kinds(grows, config("model.activation=relu", "optim.clip_norm=1"))["exploding"]
    assert clipped.severity == "info" and not alarms(clipped) and "clipping" in clipped.message
    # The gradient growing toward the input, and a loss far above guessing at the start.
    assert "exploding" in kinds(snapshot([1, 1, 1, 1], step=0, agrads=[1e4, 1e2, 10, 1.0]))
    assert "exploding" in kinds(snapshot([1, 1, 1, 1], step=0, loss=300.0))
    assert "exploding" not in kinds(snapshot([1, 1, 1, 1], step=500, loss=300.0))  # the loss test is for the start


def test_fading_signal_for_non_squashing_activations():
    fades = snapshot([1, 1, 1, 1], acts=[1, 1e-2, 1e-4, 1e-6])
    assert "fading_signal" in kinds(fades, config("model.activation=relu"))
    assert "fading_signal" not in kinds(fades, config("model.activation=sigmoid"))  # depth says it for sigmoid


# ---------------------------------------------------------------------------------------------------------
# Units.


def test_dead_units_at_initialisation_are_not_an_alarm():
    start = snapshot([1, 1, 1, 1], step=0, dead=0.6)
    assert "dead" not in kinds(start, config("model.activation=relu"), initial=start)


def test_dead_units_alarm_when_they_grew_and_the_loss_is_still_high():
    start = snapshot([1, 1, 1, 1], step=0, dead=0.1)
    later = snapshot([1, 1, 1, 1], step=400, dead=0.95, loss=0.9)
    f = kinds(later, config("model.activation=relu"), run_of(0.9), initial=start)["dead"]
    assert f.severity == "error" and "leaky-relu-fix" in f.remedy and "at the start: 10%" in f.message
    # Grown as much, but the net learns on what is left: a note, not an alarm.
    learnt = snapshot([1, 1, 1, 1], step=400, dead=0.95, loss=0.01)
    f = kinds(learnt, config("model.activation=relu"), run_of(0.01), initial=start)["dead"]
    assert not alarms(f)
    # As many dead as at the start: nothing new.
    same = snapshot([1, 1, 1, 1], step=400, dead=0.6, loss=0.9)
    assert "dead" not in kinds(same, config(), run_of(0.9), initial=snapshot([1, 1, 1, 1], step=0, dead=0.55))


def test_saturated_units_are_a_note():
    f = kinds(snapshot([1, 1, 1, 1], sat=0.8), config("model.activation=sigmoid"))["saturated"]
    assert not alarms(f) and "80% of" in f.message


# ---------------------------------------------------------------------------------------------------------
# Step sizes.


def test_huge_sgd_steps_alarm_but_not_with_an_adaptive_optimiser_or_a_norm_layer():
    huge = snapshot([1, 1, 1, 1], step=0, update=0.2)
    assert "update_ratio" in kinds(huge, config("model.activation=tanh"))
    assert "update_ratio" not in kinds(huge, config("optim.name=adam"))
    assert "update_ratio" not in kinds(huge, config("model.norm=batch_pre"))
    assert "update_ratio" in kinds(snapshot([1, 1, 1, 1], step=0, update=3.0), config("optim.name=adam"))


def test_momentum_builds_up_a_step_big_enough_to_kill_relus():
    step = snapshot([1, 1, 1, 1], step=0, update=0.02)
    assert "update_ratio" in kinds(step, config("model.activation=relu", "optim.name=momentum"))
    assert "update_ratio" not in kinds(step, config("model.activation=tanh", "optim.name=momentum"))
    assert "update_ratio" not in kinds(step, config("model.activation=relu", "optim.name=sgd"))


def test_tiny_steps_alarm_at_the_start_or_when_stalled_never_on_a_converged_run():
    tiny = {"update": 1e-6, "lr": 1e-4}  # the lr is to blame: ||g|| / ||W|| = 1e-2 is a normal gradient
    assert "higher optim.lr" in kinds(snapshot([1, 1, 1, 1], step=0, **tiny), config())["update_ratio"].remedy
    stuck = snapshot([1, 1, 1, 1], step=900, loss=1.0, **tiny)
    assert "update_ratio" in kinds(stuck, config(), run_of(1.0))
    done = snapshot([1, 1, 1, 1], step=900, loss=1e-4, **tiny)
    assert "update_ratio" not in kinds(done, config(), run_of(1e-4))
    improving = [snapshot([1, 1, 1, 1], step=10 * i, loss=1.0 - 0.05 * i) for i in range(12)]
    assert "update_ratio" not in kinds(snapshot([1, 1, 1, 1], step=900, loss=0.4, **tiny), config(), improving)


def test_a_tiny_sgd_step_from_a_weak_gradient_does_not_blame_the_lr():
    weak = snapshot([1, 1, 1, 1], step=0, update=1e-6, lr=0.1)  # ||g|| / ||W|| = 1e-5
    assert "update_ratio" not in kinds(weak, config())


def test_clipping_explains_tiny_steps():
    clipped = snapshot([100, 100, 100, 100], step=0, update=1e-6, lr=1e-4)
    assert "update_ratio" not in kinds(clipped, config("optim.clip_norm=1"))


# ---------------------------------------------------------------------------------------------------------
# Time, progress, divergence.


def test_through_time_a_vanilla_rnn_alarms_at_once_a_gated_cell_only_once_stalled():
    rnn, lstm = config("model.arch=rnn", "data.name=adding"), config("model.arch=lstm", "data.name=adding")
    start = snapshot([1], step=0, tgn=[1e-8, 1e-4, 1.0])
    assert "lstm-remembers" in kinds(start, rnn)["vanishing_time"].remedy
    assert "vanishing_time" not in kinds(start, lstm)
    stuck = snapshot([1], step=900, tgn=[1e-8, 1e-4, 1.0], loss=0.17)
    assert "vanishing_time" in kinds(
        stuck, lstm, [snapshot([1], step=10 * i, loss=0.17) for i in range(12)], chance=0.17
    )


def test_a_stalled_run_is_said_not_learning():
    f = kinds(snapshot([1, 1, 1, 1], step=900, loss=1.09), config("model.activation=relu"), run_of(1.09))["stalled"]
    assert "not learning" in f.message and f.severity == "warn"
    assert "stalled" not in kinds(snapshot([1, 1, 1, 1], step=900, loss=0.05), config(), run_of(0.05))


def test_divergence_says_where_it_broke():
    layers = [
        LayerStats("L1", grad_norm=float("nan"), nonfinite={"weights": 0, "grads": 10, "acts": 0}),
        LayerStats("L2", grad_norm=float("nan"), nonfinite={"weights": 0, "grads": 10, "acts": 64}),
        LayerStats("out", grad_norm=float("nan"), nonfinite={"weights": 0, "grads": 3, "acts": 3}),
    ]
    where = breakdown(layers)
    assert (where.layer, where.quantity, where.count) == ("L2", "activations", 64)
    snap = Snapshot(step=7, total_steps=10, epoch=0, time_s=0, loss=None, nonfinite=True, layers=layers)
    (f,) = diagnose(snap, (), config())
    assert f.kind == "nonfinite" and "step 7" in f.message and "L2's output overflowed" in f.message
    weights = [LayerStats("L1", nonfinite={"weights": 5, "grads": 5, "acts": 5}), *layers[1:]]
    assert breakdown(weights).quantity == "weights"
    backward = [LayerStats(n, nonfinite={"weights": 0, "grads": g, "acts": 0}) for n, g in (("L1", 4), ("out", 1))]
    assert breakdown(backward).layer == "out"  # the backward pass starts at the output


def test_healthy_when_nothing_alarms():
    assert list(kinds(snapshot([0.5, 0.7, 0.9, 1.0]), config("model.activation=relu"))) == ["healthy"]


def test_every_check_is_listed_and_every_remedy_names_a_preset_that_exists():
    presets = {p.stem for p in bundled_dir().glob("*.toml")}
    remedies = [r for r in vars(diagnosis).values() if isinstance(r, diagnosis.Remedy)]
    assert len(remedies) >= 10 and {r.preset for r in remedies} <= presets
    for check in diagnosis.CHECKS:
        assert check.__doc__ or check.__name__ in ("dead", "saturated"), check.__name__
    text = diagnosis.Context(snapshot([1]), [], None, None, None).advise(*remedies)
    for name in re.findall(r"\(([a-z-]+)\)", text):
        assert name in presets
