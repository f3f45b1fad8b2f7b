"""The lessons about step sizes, proven with their own numbers on the presets as shipped (CPU): dead-relu,
leaky-relu-fix, exploding and exploding-clipped."""

from __future__ import annotations

import math

import pytest

from tui_lab.core.diagnosis import alarms
from tui_lab.core.fmt import LOG_FLOOR, log10_floored

from lessons import LN3, preset, run, slow


def _hidden(snap) -> list:
    return [layer for layer in snap.layers if layer.name != "out"]


def _per_layer_growth(snap) -> float:
    """act_std of the last hidden layer over the first's, per layer (geometric mean of the factor)."""
    hidden = _hidden(snap)
    return (hidden[-1].act_std / hidden[0].act_std) ** (1 / (len(hidden) - 1))


# -- dead units: dead-relu ---------------------------------------------------------------------------------


@slow
def test_dead_relu_looks_healthy_at_step_0_and_dies_in_its_first_steps():
    dead = run("dead-relu")
    cfg = preset("dead-relu")
    assert (cfg.model.depth, cfg.model.width, cfg.optim.name, cfg.optim.lr) == (6, 128, "adam", 0.05)
    # Step 0: 'gradients look healthy'; a learning rate cannot be seen before it acts.
    assert not any(alarms(f) for f in dead.first.findings)
    assert not any(f.kind == "dead" for f in dead.first.findings)
    # Step 10 (the first snapshot after 0): the loss has jumped from 1.2 to about 10, most of L2-L6 is dead.
    step10 = dead.snaps[1]
    assert step10.step == 10
    assert 1.0 < dead.first.loss < 1.4  # measured 1.24
    assert 5 < step10.loss < 30  # measured 11.7 (7-12 over seeds 0-4)
    l2_to_l6 = [layer.dead_frac for layer in step10.layers[1:6]]
    assert sum(l2_to_l6) / len(l2_to_l6) > 0.5  # measured 0.73 (0.64-0.84 per layer)
    assert any(f.kind == "dead" and alarms(f) for f in step10.findings)  # "warns of dead ReLUs"


@slow
def test_dead_relu_fits_on_its_survivors_then_a_second_wave_of_deaths_undoes_it():
    dead = run("dead-relu")
    # The net fits the spiral on the units it has left, and the warning becomes a note.
    assert max(s.val_acc for s in dead.evals if s.step <= 200) > 0.95  # measured 0.9975 (0.99 at step 100)
    assert any(f.kind == "dead" and not alarms(f) for s in dead.snaps if s.step <= 250 for f in s.findings)
    # Near step 300 more units die: validation accuracy drops and the warning returns.
    assert min(s.val_acc for s in dead.evals if 250 < s.step <= 350) < 0.85  # measured 0.755 at 300
    assert any(f.kind == "dead" and alarms(f) for s in dead.snaps if 250 < s.step <= 350 for f in s.findings)
    assert any(f.kind == "dead" and alarms(f) for f in dead.last.findings)  # measured: error, 99% of L2
    # By the end some layers are 95-100% dead and validation accuracy is near 60%.
    end = [layer.dead_frac for layer in _hidden(dead.last)]
    assert max(end) >= 0.95 and sum(frac >= 0.93 for frac in end) >= 2  # measured L2-L5 0.96-0.99
    assert 0.45 < dead.final_val_acc < 0.72  # measured 0.58
    assert dead.final_val_loss > 0.5  # measured 0.86, where leaky-relu-fix ends at ~0
    assert dead.max_dead() >= 0.9  # measured 0.99


@slow
def test_dead_relu_layers_pass_no_gradient_by_the_end():
    dead = run("dead-relu")
    l1_to_l4 = dead.last.layers[:4]
    assert [layer.name for layer in l1_to_l4] == ["L1", "L2", "L3", "L4"]
    assert all(layer.grad_norm == 0.0 for layer in l1_to_l4)  # the bars read 0 (measured exactly 0)
    assert all(log10_floored(layer.grad_norm) == LOG_FLOOR for layer in l1_to_l4)  # lines at the plot's floor
    assert all(layer.grad_norm > 0 for layer in dead.last.layers[4:])


@slow
def test_dead_relu_another_seed_keeps_its_fit_but_wastes_most_of_the_width():
    other = run("dead-relu", "seed=4")
    assert other.final_val_acc > 0.95  # measured 1.0 (seed 3 too)
    l2_to_l6 = [layer.dead_frac for layer in other.last.layers[1:6]]
    assert sum(l2_to_l6) / len(l2_to_l6) > 0.6  # measured 0.80


@slow
def test_dead_relu_a_tenth_of_the_rate_kills_far_fewer_units():
    dead = run("dead-relu")
    safe = run("dead-relu", "optim.lr=0.005")
    assert safe.max_dead() < 0.5  # measured 0.37 (0.24 of it there at initialisation), dead-relu 0.99
    assert safe.max_dead() < dead.max_dead() / 2
    assert safe.final_val_acc > 0.95  # measured 1.0: lr = 0.005 is a safe rate
    assert not any(f.kind == "dead" for s in safe.snaps for f in s.findings)


# -- dead units: leaky-relu-fix ----------------------------------------------------------------------------


@slow
def test_leaky_relu_keeps_every_unit_and_trains():
    leaky = run("leaky-relu-fix")
    dead = run("dead-relu")
    assert leaky.max_dead() == 0.0
    assert all(layer.grad_norm > 0 for s in leaky.snaps for layer in s.layers)  # measured min 1.3e-6
    assert leaky.last.loss < 0.05  # measured 3e-6
    assert leaky.final_val_loss < 0.05  # measured ~1e-5
    assert leaky.final_val_acc >= 0.97  # measured 1.0
    assert dead.final_val_acc < 0.72  # "where dead-relu ends near 60%" (measured 0.58)
    assert not any(f.kind == "dead" for s in leaky.snaps for f in s.findings)


def test_leaky_relu_slope_is_one_percent():
    from tui_lab.core.models import ACTIVATIONS  # the registry that builds nn.LeakyReLU(0.01)

    act = ACTIVATIONS["leaky_relu"]()
    assert act.negative_slope == 0.01


@slow
def test_leaky_relu_high_rate_jumps_and_can_blow_up_and_a_tenth_of_it_is_smooth():
    leaky = run("leaky-relu-fix")
    assert leaky.snaps[1].step == 10
    assert leaky.snaps[1].loss > 10  # measured 16.4 (12-16 over seeds 0-4), from 1.24 at step 0
    # Another seed blows up mid-run and loses its fit; still no unit dies.
    seed3 = run("leaky-relu-fix", "seed=3")
    assert max(s.loss for s in seed3.snaps if s.loss is not None and s.step >= 100) > 100  # measured 2.9e3
    assert seed3.final_val_acc < 0.8  # measured 0.545
    assert seed3.max_dead() == 0.0
    # lr = 0.005: the loss falls from the first step and never climbs back to its start.
    calm = run("leaky-relu-fix", "optim.lr=0.005")
    later = [s.loss for s in calm.snaps[1:] if s.loss is not None]
    assert max(later) < 0.8 * calm.first.loss  # measured 0.77 vs 1.24 (seed 3: 0.75 vs 1.15)
    assert calm.final_val_acc > 0.95  # measured 1.0


# -- exploding gradients: exploding ------------------------------------------------------------------------


def test_exploding_lesson_arithmetic():
    assert round(math.sqrt(2 / 64), 2) == 0.18  # He init's std for fan-in 64
    assert round(0.5 * math.sqrt(64 / 2), 1) == 2.8  # per-layer factor
    assert 3000 < 2.8**8 < 5000 and 3000 < (0.5 * math.sqrt(32)) ** 8 < 5000  # 3.8e3 / 4.1e3: "~ 4000"
    assert round(LN3, 2) == 1.10
    assert 0.01 * 1e3 == 10 and 0.5 * 64 == 32  # step size, and the norm of a 64x64 N(0, 0.5^2) matrix
    assert 0.25 < 10 / 32 < 0.4  # "about a third of their size"


@slow
def test_exploding_first_snapshot_and_its_findings():
    boom = run("exploding")
    first = boom.first
    assert all(3e2 < layer.grad_norm < 3e3 for layer in first.layers)  # every bar ~1e3 (measured 9e2-1.4e3)
    assert 1e2 < first.loss < 1e3  # "in the hundreds" (measured 787)
    assert 2 < _per_layer_growth(first) < 4  # act_std ~3x per layer (measured 2.8; 2.7-3.0 over seeds 0-3)
    assert _hidden(first)[-1].act_std / _hidden(first)[0].act_std > 300  # measured 1.4e3
    assert first.layers[-1].act_std > 100  # huge logits (measured 849)
    back = _hidden(first)[0].act_grad_norm / _hidden(first)[-1].act_grad_norm
    assert 5e2 < back < 5e3  # measured 1.5e3; the findings panel prints "2e3x"
    # The findings panel warns at once: exploding gradients and huge updates.
    exploding = [f for f in first.findings if f.kind == "exploding"]
    assert exploding and all(alarms(f) for f in exploding)
    assert any("back-propagated" in f.message for f in exploding)
    assert any(f.kind == "update_ratio" and alarms(f) and "huge" in f.message for f in first.findings)
    # One step moves a hidden layer's weights (norm ~32) by about a third of their size.
    hidden = _hidden(first)
    assert all(28 < layer.weight_norm < 36 for layer in hidden[1:])  # measured 31.8-32.6
    ratios = sorted(layer.update_ratio for layer in hidden)
    assert 0.15 < ratios[len(ratios) // 2] < 0.8  # measured 0.37 (0.13-0.82 over seeds 0-3); healthy ~1e-3


@slow
def test_exploding_diverges_by_step_3_and_says_where():
    boom = run("exploding")
    assert boom.status == "diverged" and boom.steps <= 3  # measured 3 (seeds 0-3 too)
    broke = [f for s in boom.snaps for f in s.findings if f.kind == "nonfinite"]
    assert broke and broke[-1].severity == "error"
    assert "overflowed to Inf/NaN in the forward pass" in broke[-1].message  # measured: L5's output


@slow
def test_exploding_what_next_clipping_trains_and_he_init_never_needed_it():
    clipped = run("exploding", "optim.clip_norm=1.0", "train.steps=400")
    assert clipped.status == "completed" and clipped.final_val_acc > 0.9  # measured 0.993
    he = run("exploding", "model.init=he_normal", "train.steps=400")
    assert all(0.05 < layer.grad_norm < 5 for layer in he.first.layers)  # "near 1" (measured 0.13-1.1)
    assert not any(alarms(f) for f in he.first.findings)
    assert he.status == "completed" and he.final_val_acc > 0.9  # measured 0.9925 at 400 steps, 0.995 at 800


# -- exploding gradients: exploding-clipped ----------------------------------------------------------------


@slow
def test_exploding_clipped_starts_as_exploding_and_only_notes_the_growth():
    clipped = run("exploding-clipped")
    boom = run("exploding")
    assert clipped.first.loss == pytest.approx(boom.first.loss, rel=1e-4)
    for a, b in zip(clipped.first.layers, boom.first.layers):
        assert a.grad_norm == pytest.approx(b.grad_norm, rel=1e-4)
    notes = [f for f in clipped.first.findings if f.kind == "exploding"]
    assert notes and all(f.severity == "info" and not f.remedy for f in notes)  # "only as a note"
    assert not any(alarms(f) for f in clipped.first.findings)
    assert 5e2 < notes[0].value < 5e3  # measured 1.5e3 ("2e3x toward the input")


@slow
def test_exploding_clipped_trains_but_stays_oversized():
    clipped = run("exploding-clipped")
    assert clipped.status == "completed"
    below = [s.step for s in clipped.snaps if s.loss is not None and s.loss < 1]
    assert below and below[0] <= 250  # measured step 160 (120-160 over seeds 0-2): "within about 200"
    assert clipped.last.loss < 0.1  # measured ~0
    assert clipped.final_val_acc > 0.95  # measured 0.9925 (0.993-0.995 over seeds 0-2)
    # Large swings in the per-layer gradient-over-time plot, some flagged as gradient spikes.
    l1 = [s.layers[0].grad_norm for s in clipped.snaps if s.step >= 200]
    assert max(l1) / min(l1) > 1e4  # measured ~1e14
    assert any(f.kind == "exploding" and "spike" in f.message for s in clipped.snaps for f in s.findings)
    # act_std still grows ~3x per layer; the weights keep their oversized norm (He's would be ~11).
    assert 2 < _per_layer_growth(clipped.last) < 4  # measured 2.76
    assert all(28 < layer.weight_norm < 36 for layer in _hidden(clipped.last)[1:])  # measured 31.8-32.6


@slow
def test_exploding_clipped_no_step_moves_the_weights_by_more_than_lr_times_c():
    clipped = run("exploding-clipped")
    cfg = preset("exploding-clipped")
    bound = cfg.optim.lr * cfg.optim.clip_norm
    assert bound == pytest.approx(0.01)
    for s in clipped.snaps:
        moved = [layer.update_ratio * layer.weight_norm for layer in s.layers if layer.update_ratio is not None]
        assert math.sqrt(sum(m * m for m in moved)) <= bound * 1.01  # weights only; biases take the rest


@slow
def test_exploding_clipped_what_next_raising_clip_norm():
    for c in ("10", "100"):
        r = run("exploding-clipped", f"optim.clip_norm={c}", "train.steps=400")
        assert r.status == "completed" and r.final_val_acc > 0.9, c  # measured 0.995, 0.998
    many = run("exploding-clipped", "optim.clip_norm=1000", "train.steps=300")
    assert many.max_dead() >= 0.8  # measured 0.92 (0.88-0.97 over seeds 0-2)
    whole = run("exploding-clipped", "optim.clip_norm=10000", "train.steps=200")
    assert whole.max_dead() >= 0.99  # measured 1.0: some layers wholly dead
    assert all(layer.grad_norm == 0 for layer in whole.last.layers)  # measured exactly 0
    assert whole.final_val_loss > LN3 - 0.05  # stuck at ln 3 (measured 1.10)
