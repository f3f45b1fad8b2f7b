"""The diagnosis against the calibration suite (benchmarks/calibrate.py), the fast part: every labelled
network's judgment at initialisation, from its step-0 snapshot. Sick networks whose sickness the step-0
snapshot can show raise an alarm; healthy ones raise none. (The full script also trains every network to the
end, checks each label against the run's own outcome, and measures precision and recall.)"""

from __future__ import annotations

from collections import Counter

import pytest

from tui_lab.core import choices

from support import calibrate


def test_the_suite_covers_every_family_healthy_and_sick():
    cases = calibrate.CASES
    assert len(cases) >= 40
    labels = Counter(c.label for c in cases)
    assert labels["healthy"] >= 40 and sum(n for k, n in labels.items() if k != "healthy") >= 40
    assert {"vanishing", "exploding", "fading", "dead", "lr-too-high", "lr-too-low", "time-vanishing"} <= set(labels)
    configs = [calibrate.configure(c) for c in cases]
    for kind, attribute in (("arch", "model.arch"), ("activation", "model.activation"), ("optim", "optim.name")):
        section, key = attribute.split(".")
        used = {getattr(getattr(cfg, section), key) for cfg in configs}
        assert used == set(choices.CHOICES[kind]), (kind, set(choices.CHOICES[kind]) - used)
    assert {cfg.model.norm for cfg in configs} == set(choices.NORMS)
    inits = {cfg.model.init.split("_")[0] for cfg in configs}
    assert {"default", "normal", "uniform", "xavier", "he", "orthogonal", "lecun"} <= inits


@pytest.mark.parametrize("case", calibrate.CASES, ids=[c.name for c in calibrate.CASES])
def test_judgment_at_initialisation(case):
    alarms = calibrate.judge_at_start(case)
    if case.label == "healthy":
        assert not alarms, f"a false alarm on a network that trains: {alarms}"
    elif case.visible_at_start:
        assert alarms, f"{case.label} not seen at initialisation"
