"""Every lesson preset is a well-formed lesson, and the fix each lesson points to is diagnosed healthy.

The files: they validate, have a title and a lesson in English and in Brazilian Portuguese, fit an 80-column
terminal, name a next preset that exists, and the pairs of lessons that are meant to be compared differ only
in the one setting the lesson is about. The numbers each lesson states are proven in test_lessons_depth.py,
test_lessons_steps.py and test_lessons_recurrent.py, on short CPU runs shared through lessons.run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tui_lab.core.config import load_config, with_overrides

from lessons import PRESET_FILES, PRESET_NAMES, alarming, differences, preset, run, slow

# The lessons the curriculum needs, plus the comparison preset the design names.
REQUIRED = [
    "deep-sigmoid", "relu-he", "xavier-tanh", "small-random-init", "he-vs-xavier-deep", "batchnorm-rescue",
    "dead-relu", "leaky-relu-fix", "exploding", "exploding-clipped", "rnn-vanishing", "lstm-remembers", "gru",
    "rnn-vs-lstm", "optimizers", "residual-deep", "cnn-digits",
]  # fmt: skip
LINE_WIDTH = 76  # lesson text must read in an 80-column terminal
# The presets that show a fix: diagnosed healthy at initialisation and at the end of training.
FIXES = ["relu-he", "batchnorm-rescue", "xavier-tanh", "leaky-relu-fix", "exploding-clipped", "residual-deep",
         "cnn-digits", "lstm-remembers", "gru", "optimizers"]  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# The files.


def test_every_required_lesson_exists():
    missing = sorted(set(REQUIRED) - set(PRESET_NAMES))
    assert not missing, f"missing presets: {missing}"


@pytest.mark.parametrize("path", PRESET_FILES, ids=PRESET_NAMES)
def test_preset_validates_and_is_bilingual(path: Path):
    cfg = load_config(path)  # raises ConfigError on any bad key or value
    for lang in ("en", "pt"):
        title, lesson = cfg.title_for(lang), cfg.lesson_for(lang)
        assert title and "\n" not in title and len(title) <= 60, (lang, title)
        assert lesson.count("\n\n") >= 2, f"{lang} lesson should have a few paragraphs"
        for line in lesson.splitlines():
            assert len(line) <= LINE_WIDTH, f"{lang} lesson line too wide ({len(line)}): {line!r}"
    pt = cfg.translations.get("pt")
    assert pt is not None and pt.title and pt.lesson, "needs [translations.pt] with title and lesson"
    assert pt.title != cfg.title and pt.lesson != cfg.lesson, "the Portuguese text must be a translation"


@pytest.mark.parametrize("path", PRESET_FILES, ids=PRESET_NAMES)
def test_lesson_names_keys_and_a_next_preset_that_exists(path: Path):
    cfg = load_config(path)
    for lang in ("en", "pt"):
        lesson = cfg.lesson_for(lang)
        assert re.search(r"\bn\b", lesson) and re.search(r"\b[bl]\b", lesson), f"{lang}: name the n/b/l keys"
        others = [name for name in PRESET_NAMES if name != path.stem and re.search(rf"\b{name}\b", lesson)]
        assert others, f"{lang}: the lesson should name the preset to try next"
        # Every hyphenated word that looks like one of our preset names must be one.
        for word in re.findall(r"\b[a-z]+(?:-[a-z0-9]+)+\b", lesson):
            if any(word.startswith(prefix) for prefix in ("deep-", "relu-", "rnn-", "lstm-", "exploding-")):
                assert word in PRESET_NAMES, f"{lang}: lesson names a preset that does not exist: {word}"
        text = lesson.lower()
        assert "log10" in text or "dloss/dx_t" in text, f"{lang}: say what the gradient panel plots"


def test_portuguese_lessons_use_the_tutorials_terms():
    """The tutorials speak of 'desaparecimento do gradiente'; the vanishing lessons should too."""
    for name in ("deep-sigmoid", "rnn-vanishing", "optimizers", "relu-he", "batchnorm-rescue"):
        assert "desaparecimento do gradiente" in preset(name).lesson_for("pt"), name


@pytest.mark.parametrize("path", PRESET_FILES, ids=PRESET_NAMES)
def test_defaults_are_small_enough_for_a_laptop_cpu(path: Path):
    cfg = load_config(path)
    assert cfg.train.steps <= 1500
    assert cfg.train.batch_size <= 128
    assert cfg.model.width <= 128
    assert cfg.data.samples <= 5000
    if cfg.recurrent:
        assert cfg.data.seq_len <= 50 and cfg.model.depth <= 2


@pytest.mark.parametrize(
    ("a", "b", "allowed"),
    [
        ("deep-sigmoid", "batchnorm-rescue", {"model.norm"}),
        ("deep-sigmoid", "relu-he", {"model.activation", "model.init"}),
        ("small-random-init", "xavier-tanh", {"model.init", "model.init_scale"}),
        ("dead-relu", "leaky-relu-fix", {"model.activation"}),
        ("exploding", "exploding-clipped", {"optim.clip_norm", "train.log_every"}),
        ("rnn-vanishing", "lstm-remembers", {"model.arch"}),
        ("rnn-vanishing", "gru", {"model.arch"}),
        ("rnn-vanishing", "rnn-vs-lstm", set()),
    ],
)
def test_compared_lessons_differ_only_in_what_they_teach(a: str, b: str, allowed: set[str]):
    diff = differences(preset(a), preset(b))
    assert diff <= allowed, f"{a} vs {b} also differ in {sorted(diff - allowed)}"


# ---------------------------------------------------------------------------------------------------------
# The fixes.


def test_rnn_vs_lstm_starts_as_the_rnn_and_switches_to_the_lstm_lesson():
    cfg = preset("rnn-vs-lstm")
    assert cfg.model.arch == "rnn"
    switched = with_overrides(cfg, ["model.arch=lstm"])
    assert not differences(switched, preset("lstm-remembers"))


@slow
@pytest.mark.parametrize("name", FIXES)
def test_every_fix_preset_is_healthy_at_the_start_and_at_the_end(name: str):
    r = run(name)
    assert not alarming(r.first), [f.text for f in alarming(r.first)]
    assert not alarming(r.last), [f.text for f in alarming(r.last)]
