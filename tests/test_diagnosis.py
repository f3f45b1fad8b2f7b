"""Diagnosis on synthetic snapshots: each finding, its number and its remedy."""

from __future__ import annotations

import pytest

from tui_lab.core.diagnosis import diagnose
from tui_lab.core.run import LayerStats, Snapshot

from support import config


def synthetic(grads, dead=0.0, sat=0.0, loss=1.0, tgn=None, step=5, update=1e-3):
    layers = [
        LayerStats(
            f"L{i + 1}", grad_norm=g, weight_norm=1.0, update_ratio=update, act_std=1.0, dead_frac=dead, sat_frac=sat
        )
        for i, g in enumerate(grads)
    ]
    layers.append(LayerStats("out", grad_norm=1.0, weight_norm=1.0, update_ratio=update))
    return Snapshot(step=step, total_steps=10, epoch=0, time_s=0, loss=loss, layers=layers, time_grad_norm=tgn)


def kinds(snap, cfg=None, history=()):
    return {f.kind: f for f in diagnose(snap, history, cfg)}


def test_diagnosis_names_vanishing_with_the_ratio_and_a_remedy():
    found = kinds(synthetic([1e-9, 1e-6, 1e-3, 1.0]), config("model.activation=sigmoid"))
    f = found["vanishing"]
    assert f.severity == "error" and f.layers == ["L1", "L4"] and f.value == pytest.approx(1e-9)
    assert "L1 gets 1e-9 of L4" in f.message and "relu" in f.remedy and "batch" in f.remedy


def test_diagnosis_exploding_dead_saturated_updates_nonfinite_and_time():
    assert "exploding" in kinds(synthetic([1e5, 1e3, 10, 1.0]))
    assert kinds(synthetic([1, 1, 1, 1], dead=0.95))["dead"].severity == "error"
    assert "leaky" in kinds(synthetic([1, 1, 1, 1], dead=0.95))["dead"].remedy
    assert "saturated" in kinds(synthetic([1, 1, 1, 1], sat=0.8), config("model.activation=sigmoid"))
    assert "update_ratio" in kinds(synthetic([1, 1, 1, 1], update=1e-7))
    assert "update_ratio" in kinds(synthetic([1, 1, 1, 1], update=0.5))
    nonfinite = Snapshot(step=3, total_steps=10, epoch=0, time_s=0, loss=None, nonfinite=True)
    assert list(kinds(nonfinite)) == ["nonfinite"]
    time_cfg = config("model.arch=rnn", "data.name=adding")
    assert "lstm" in kinds(synthetic([1, 1], tgn=[1e-8, 1e-4, 1.0]), time_cfg)["vanishing_time"].remedy
    assert list(kinds(synthetic([1, 1, 1, 1]))) == ["healthy"]


def test_diagnosis_sees_a_jump_in_the_total_gradient_norm():
    history = [synthetic([1, 1, 1, 1]) for _ in range(10)]
    assert "exploding" in kinds(synthetic([300, 300, 300, 300]), history=history)
    assert "exploding" not in kinds(synthetic([2, 2, 2, 2]), history=history)
