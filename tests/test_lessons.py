"""Every lesson preset shows what its lesson says, proven with numbers on short CPU runs.

The first part checks the files themselves (they validate, have a title and a lesson in English and in
Brazilian Portuguese, fit an 80-column terminal, name a next preset that exists, and the pairs of lessons
that are meant to be compared differ only in the one setting the lesson is about). The second part trains
each preset (often with fewer steps than its default, where the claim already holds) and checks the claim
its lesson makes: gradient ratios at initialisation, stalls and recoveries, dead units, divergence.

Runs are forced onto the CPU so the numbers are the ones measured when the presets were tuned; a run is
shared between the tests that need it (`run` is cached). The whole file takes about a minute on two cores.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tui_lab.core.config import LabConfig, load_config, with_overrides
from tui_lab.core.presets import bundled_dir

PRESETS_DIR: Path = bundled_dir()
PRESET_FILES = sorted(PRESETS_DIR.glob("*.toml"))
PRESET_NAMES = [p.stem for p in PRESET_FILES]

# The lessons the curriculum needs (issue 5), plus the comparison preset the design names.
REQUIRED = [
    "deep-sigmoid",
    "relu-he",
    "xavier-tanh",
    "small-random-init",
    "he-vs-xavier-deep",
    "batchnorm-rescue",
    "dead-relu",
    "leaky-relu-fix",
    "exploding",
    "exploding-clipped",
    "rnn-vanishing",
    "lstm-remembers",
    "gru",
    "rnn-vs-lstm",
    "optimizers",
    "residual-deep",
    "cnn-digits",
]

LN3 = math.log(3)  # cross-entropy of a uniform guess over the spiral's three classes
ADDING_FLOOR = 1 / 6  # MSE of always predicting the mean sum on the adding problem
LINE_WIDTH = 76  # lesson text must read in an 80-column terminal


def preset(name: str) -> LabConfig:
    return load_config(PRESETS_DIR / f"{name}.toml")


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


def _differences(a: LabConfig, b: LabConfig) -> set[str]:
    da, db = a.model_dump(), b.model_dump()
    out = set()
    for section in ("model", "data", "optim", "train"):
        out |= {f"{section}.{k}" for k in da[section] if da[section][k] != db[section][k]}
    if da["seed"] != db["seed"]:
        out.add("seed")
    return out


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
    diff = _differences(preset(a), preset(b))
    assert diff <= allowed, f"{a} vs {b} also differ in {sorted(diff - allowed)}"


# ---------------------------------------------------------------------------------------------------------
# The runs.


@dataclass
class Run:
    status: str
    steps: int
    snaps: list

    @property
    def first(self):
        return self.snaps[0]

    @property
    def last(self):
        return [s for s in self.snaps if s.loss is not None][-1]

    @property
    def evals(self):
        return [s for s in self.snaps if s.val_loss is not None]

    @property
    def final_val_loss(self) -> float:
        return self.evals[-1].val_loss

    @property
    def final_val_acc(self) -> float:
        return self.evals[-1].val_acc

    @property
    def best_val_acc(self) -> float:
        return max(s.val_acc for s in self.evals)

    def max_dead(self) -> float:
        return max(max(layer.dead_frac or 0.0 for layer in s.layers[:-1]) for s in self.snaps if s.layers)


@functools.cache
def run(name: str, *overrides: str) -> Run:
    from tui_lab.core.trainer import Trainer  # imports torch

    cfg = with_overrides(preset(name), ["train.device=cpu", *overrides])
    snaps: list = []
    result = Trainer(cfg, sinks=[snaps.append]).run()
    assert result.status in ("completed", "diverged"), f"{name}: {result.status}: {result.message}"
    return Run(result.status, result.steps, snaps)


def depth_ratio(snap) -> float:
    """First hidden layer's weight-gradient norm over the last hidden layer's ('out' is the last entry)."""
    return snap.layers[0].grad_norm / snap.layers[-2].grad_norm


def time_ratio(snap) -> float:
    """||dloss/dx_1|| over ||dloss/dx_T||: how much of the gradient reaches the first time step."""
    tgn = snap.time_grad_norm
    return tgn[0] / tgn[-1]


slow = pytest.mark.slow


# -- activations, initialisation, normalisation --------------------------------------------------------


@slow
def test_deep_sigmoid_vanishes_and_stays_at_chance():
    r = run("deep-sigmoid", "train.steps=300")
    assert depth_ratio(r.first) < 1e-5  # measured ~7e-9
    assert any(f.kind == "vanishing" for f in r.first.findings)
    assert r.final_val_acc < 0.45  # chance is 1/3
    assert r.final_val_loss > LN3 - 0.05


@slow
def test_batchnorm_rescues_the_deep_sigmoid_net():
    bn = run("batchnorm-rescue", "train.steps=600")
    plain = run("deep-sigmoid", "train.steps=600")
    assert depth_ratio(bn.first) > 1e-2  # level, where deep-sigmoid's is ~1e-8
    assert bn.best_val_acc >= 0.9  # measured 0.99 (validation is jumpy with BatchNorm's running stats)
    assert plain.best_val_acc < 0.45
    assert max(layer.sat_frac for s in bn.snaps for layer in s.layers[:-1]) < 0.1


@slow
@pytest.mark.parametrize("name", ["relu-he", "xavier-tanh"])
def test_matched_init_keeps_the_gradient_level(name: str):
    r = run(name, "train.steps=300")
    for snap in (r.first, r.last):
        assert 0.05 < depth_ratio(snap) < 20  # within about a decade (relu-he ~0.12, xavier-tanh ~0.7)
        hidden = [layer.grad_norm for layer in snap.layers[1:-1]]
        assert max(hidden) / min(hidden) < 10
    assert r.final_val_acc > 0.95


@slow
def test_small_random_init_kills_the_signal_both_ways():
    small = run("small-random-init", "train.steps=300")
    first = small.first.layers
    assert first[-2].act_std / first[0].act_std < 1e-6  # ~10x smaller per layer (measured ~1e-10 overall)
    assert max(layer.grad_norm for layer in first) < 1e-8  # every bar tiny (~1e-12) although level
    assert small.final_val_loss > LN3 - 0.05
    fixed = run("xavier-tanh", "train.steps=300")
    assert fixed.final_val_loss < 0.3


@slow
def test_thirty_relu_layers_stall_with_xavier_and_train_with_he():
    xavier = run("he-vs-xavier-deep", "train.steps=400")
    he = run("he-vs-xavier-deep", "train.steps=400", "model.init=he_normal")
    assert preset("he-vs-xavier-deep").model.init == "xavier_normal"
    layers = xavier.first.layers
    assert layers[-2].act_std / layers[0].act_std < 1e-3  # the forward signal fades (measured ~1e-5)
    assert xavier.final_val_loss > LN3 - 0.05  # stalls at ln 3
    assert he.final_val_loss < 0.5  # measured ~0.13
    assert he.final_val_acc > 0.9


# -- dead units ------------------------------------------------------------------------------------------


@slow
def test_high_learning_rate_kills_relus_and_leaky_relu_keeps_them():
    dead = run("dead-relu")
    leaky = run("leaky-relu-fix")
    assert dead.max_dead() >= 0.9  # measured 0.99 (>= 0.93 for every seed tried)
    assert any(f.kind == "dead" for s in dead.snaps for f in s.findings)
    assert leaky.max_dead() == 0.0
    assert all(layer.grad_norm > 0 for s in leaky.snaps for layer in s.layers)
    assert leaky.final_val_acc >= 0.9  # measured 1.0, where dead-relu ends at ~0.58
    assert leaky.final_val_acc > dead.final_val_acc


# -- exploding gradients and clipping ----------------------------------------------------------------------


@slow
def test_exploding_diverges_and_clipping_tames_it():
    boom = run("exploding")
    assert boom.status == "diverged" and boom.steps <= 10  # NaN at step 3
    assert min(layer.grad_norm for layer in boom.first.layers) > 1e2  # every bar ~1e3 at init
    assert boom.first.loss > 10 * LN3
    clipped = run("exploding-clipped", "train.steps=400")
    assert clipped.status == "completed"
    assert clipped.last.loss < 1.0
    assert clipped.final_val_acc > 0.9


# -- recurrent networks ----------------------------------------------------------------------------------


@slow
def test_vanilla_rnn_loses_the_gradient_through_time():
    rnn = run("rnn-vanishing", "train.steps=400")
    assert time_ratio(rnn.first) < 1e-4  # measured ~1e-6
    assert len(rnn.first.time_grad_norm) == preset("rnn-vanishing").data.seq_len
    assert min(s.val_loss for s in rnn.evals) > 0.7 * ADDING_FLOOR  # never beats guessing the mean


@slow
def test_lstm_beats_the_rnn_by_a_wide_margin():
    rnn = run("rnn-vanishing", "train.steps=400")
    lstm = run("lstm-remembers", "train.steps=600")
    assert lstm.final_val_loss < 0.01  # measured ~6e-4
    assert lstm.final_val_loss < min(s.val_loss for s in rnn.evals) / 20
    assert time_ratio(lstm.last) > 1e-2  # the time profile has flattened (measured ~1)


@slow
def test_gru_beats_the_rnn_too():
    rnn = run("rnn-vanishing", "train.steps=400")
    gru = run("gru", "train.steps=400")
    assert gru.final_val_loss < 0.01  # measured ~4e-4
    assert gru.final_val_loss < min(s.val_loss for s in rnn.evals) / 20


def test_rnn_vs_lstm_starts_as_the_rnn_and_switches_to_the_lstm_lesson():
    cfg = preset("rnn-vs-lstm")
    assert cfg.model.arch == "rnn"
    switched = with_overrides(cfg, ["model.arch=lstm"])
    assert not _differences(switched, preset("lstm-remembers"))


# -- optimisers, residual connections, convolutions ------------------------------------------------------


@slow
def test_momentum_and_adam_beat_plain_sgd_on_the_same_net():
    steps = "train.steps=300"
    assert preset("optimizers").optim.name == "sgd"
    losses = {
        name: run("optimizers", steps, f"optim.name={name}").final_val_loss
        for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
    }
    assert all(math.isfinite(v) for v in losses.values()), losses
    assert losses["momentum"] < losses["sgd"] / 3, losses  # measured 0.48 vs 0.02
    assert losses["nesterov"] < losses["sgd"] / 3, losses
    assert losses["adam"] < losses["sgd"] / 10, losses  # measured 4e-4
    assert losses["rmsprop"] < losses["sgd"] / 10, losses
    assert losses["adagrad"] < losses["sgd"], losses


@slow
def test_residual_connections_train_where_the_plain_net_of_the_same_depth_does_not():
    res = run("residual-deep", "train.steps=500")
    plain = run("residual-deep", "train.steps=500", "model.arch=mlp")
    assert depth_ratio(res.first) > 1e-2  # measured ~1.6
    assert depth_ratio(plain.first) < 1e-5  # measured ~2e-7
    assert res.final_val_acc > 0.9
    assert plain.final_val_acc < 0.45
    assert plain.final_val_loss > LN3 - 0.05
    # The lesson's aside: a ReLU residual net with He init trains too (its branches are scaled).
    relu = run("residual-deep", "train.steps=500", "model.activation=relu", "model.init=he_normal", "optim.lr=0.05")
    assert relu.status == "completed" and relu.final_val_acc > 0.9  # measured ~0.997


@slow
def test_cnn_learns_the_digits():
    r = run("cnn-digits", "train.steps=300")
    assert 0.1 < depth_ratio(r.first) < 10
    assert r.final_val_acc > 0.9  # chance is 0.1; measured ~0.97
