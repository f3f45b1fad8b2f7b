"""The configuration schema: documented defaults, errors that teach, aliases, merging, round-trip, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_lab.core.config import (
    LabConfig,
    config_to_dict,
    dumps_config,
    load_config,
    loads_config,
    with_overrides,
)
from tui_lab.core.errors import ConfigError, UserError
from tui_lab.core.presets import bundled_dir

BUNDLED = sorted(bundled_dir().glob("*.toml"))

# The README's configuration sample, key by key.
DOCUMENTED_DEFAULTS = {
    "title": "",
    "lesson": "",
    "seed": 0,
    "model": {
        "arch": "mlp",
        "depth": 10,
        "width": 64,
        "activation": "sigmoid",
        "init": "default",
        "init_scale": 0.01,
        "norm": "none",
        "dropout": 0.0,
    },
    "data": {"name": "spiral", "samples": 2000, "noise": 0.1, "seq_len": 50},
    "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "l1": 0.0, "clip_norm": 0.0},
    "train": {"steps": 2000, "batch_size": 64, "log_every": 10, "eval_every": 100, "device": "auto"},
    "screen": {"view": "auto", "layer": "", "pace": "max"},
}
# Keys the schema has beyond the documented ones; listed here so that adding one is a deliberate act.
EXTRA_DEFAULTS = {"data": {"classes": 3, "val_fraction": 0.2}}


def write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str, name: str = "x.toml") -> str:
    path = write(tmp_path, text, name)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


# ---------------------------------------------------------------------------------------------------------
# Defaults


def test_defaults_are_the_documented_ones():
    data = config_to_dict(LabConfig())
    for key, value in DOCUMENTED_DEFAULTS.items():
        if isinstance(value, dict):
            expected = {**value, **EXTRA_DEFAULTS.get(key, {})}
            assert data[key] == expected, key
        else:
            assert data[key] == value, key
    assert data["translations"] == {}
    assert set(data) == set(DOCUMENTED_DEFAULTS) | {"translations"}


def test_empty_file_is_the_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == LabConfig()


def test_partial_file_merges_over_defaults(tmp_path):
    cfg = load_config(write(tmp_path, 'title = "t"\n[model]\ndepth = 3\n[optim]\nname = "adam"\n'))
    assert cfg.title == "t"
    assert cfg.model.depth == 3
    assert cfg.optim.name == "adam"
    # Everything not named keeps its default, including the rest of a named section.
    expected = config_to_dict(LabConfig())
    expected["title"] = "t"
    expected["model"]["depth"] = 3
    expected["optim"]["name"] = "adam"
    assert config_to_dict(cfg) == expected


# ---------------------------------------------------------------------------------------------------------
# Errors: one line each, naming the file, the key, the bad value and what is allowed.


def assert_one_line(message: str, *fragments: str) -> None:
    assert "\n" not in message, message
    assert "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_misspelt_key_names_file_key_and_suggests(tmp_path):
    msg = load_error(tmp_path, '[model]\nactivaton = "relu"\n', "typo.toml")
    assert_one_line(msg, "typo.toml", "model.activaton", "did you mean activation?", "allowed:", "depth")
    assert msg.startswith(str(tmp_path / "typo.toml") + ": ")


def test_misspelt_top_level_section(tmp_path):
    msg = load_error(tmp_path, "[optimizer]\nlr = 0.1\n")
    assert_one_line(msg, "x.toml", "unknown key optimizer", "at the top level", "allowed:", "optim")


def test_negative_depth(tmp_path):
    msg = load_error(tmp_path, "[model]\ndepth = -3\n")
    assert_one_line(msg, "x.toml", "model.depth = -3", "out of range", "an integer >= 1")


def test_string_learning_rate(tmp_path):
    msg = load_error(tmp_path, '[optim]\nlr = "fast"\n')
    assert_one_line(msg, "x.toml", 'optim.lr = "fast"', "a number > 0")


def test_float_where_integer_is_needed(tmp_path):
    msg = load_error(tmp_path, "[model]\nwidth = 6.5\n")
    assert_one_line(msg, "x.toml", "model.width = 6.5", "an integer")


def test_bad_choice_lists_allowed_and_suggests(tmp_path):
    msg = load_error(tmp_path, '[model]\nactivation = "rleu"\n')
    assert_one_line(
        msg, "x.toml", 'model.activation = "rleu"', "is not one of sigmoid, tanh, relu", "(did you mean relu?)"
    )


def test_bad_device(tmp_path):
    msg = load_error(tmp_path, '[train]\ndevice = "gpu"\n')
    assert_one_line(msg, "x.toml", 'train.device = "gpu"', "auto, cpu, cuda, cuda:N or mps")


def test_section_that_is_not_a_table(tmp_path):
    msg = load_error(tmp_path, "model = 3\n")
    assert_one_line(msg, "x.toml", "model must be a table")


def test_bad_translation(tmp_path):
    msg = load_error(tmp_path, "[translations.pt]\ntitle = 3\n")
    assert_one_line(msg, "x.toml", "translations.pt.title = 3", "a string")


def test_broken_toml_names_file_and_line(tmp_path):
    msg = load_error(tmp_path, '[model]\ndepth = 3\nwidth = \nactivation = "relu"\n')
    assert_one_line(msg, "x.toml", "not valid TOML", "line 3")


def test_keys_that_do_not_fit_together(tmp_path):
    msg = load_error(tmp_path, '[model]\narch = "lstm"\n')
    assert_one_line(msg, "x.toml", 'data.name = "spiral" does not fit model.arch = "lstm"', "adding, copy")


def test_one_line_per_problem(tmp_path):
    msg = load_error(tmp_path, '[model]\ndepth = -3\nactivaton = "relu"\n[optim]\nlr = "fast"\n')
    lines = msg.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(str(tmp_path / "x.toml") + ": ") for line in lines)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        load_config(tmp_path)


def test_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b'title = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


# ---------------------------------------------------------------------------------------------------------
# Aliases


@pytest.mark.parametrize(
    ("key", "typed", "canonical"),
    [
        ("init", "glorot_uniform", "xavier_uniform"),
        ("init", "glorot_normal", "xavier_normal"),
        ("init", "kaiming_normal", "he_normal"),
        ("init", "kaiming_uniform", "he_uniform"),
        ("init", "Kaiming-Normal", "he_normal"),
        ("activation", "LeakyReLU", "leaky_relu"),
        ("norm", "batchnorm", "batch_pre"),
    ],
)
def test_aliases(tmp_path, key, typed, canonical):
    cfg = load_config(write(tmp_path, f'[model]\n{key} = "{typed}"\n'))
    assert getattr(cfg.model, key) == canonical
    # The canonical name is what gets written back.
    assert f'"{canonical}"' in dumps_config(cfg)


# ---------------------------------------------------------------------------------------------------------
# Round-trip


def test_dump_round_trips_defaults():
    text = dumps_config(LabConfig())
    assert loads_config(text) == LabConfig()
    assert dumps_config(loads_config(text)) == text


@pytest.mark.skipif(not BUNDLED, reason="no bundled presets yet")
@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_dump_round_trips_every_bundled_preset(path):
    cfg = load_config(path)
    text = dumps_config(cfg)
    assert loads_config(text) == cfg
    assert dumps_config(loads_config(text)) == text


def test_dump_round_trips_awkward_strings():
    cfg = LabConfig().model_copy(
        update={
            "title": 'quotes " and \\ backslash \t tab, ünïcode ∇',
            "lesson": 'line one\n  "indented"\n\nends with a quote"',
        }
    )
    text = dumps_config(cfg)
    again = loads_config(text)
    assert again.title == cfg.title
    assert again.lesson == cfg.lesson
    assert dumps_config(again) == text


# ---------------------------------------------------------------------------------------------------------
# Overrides


def test_overrides_coerce_types():
    cfg = with_overrides(LabConfig(), ["model.depth=20", "optim.lr=1e-3", "model.activation=relu"])
    assert cfg.model.depth == 20 and type(cfg.model.depth) is int
    assert cfg.optim.lr == 1e-3 and type(cfg.optim.lr) is float
    assert cfg.model.activation == "relu"


def test_override_integer_for_float_key():
    cfg = with_overrides(LabConfig(), ["optim.lr=1"])
    assert cfg.optim.lr == 1.0


def test_override_accepts_quoted_strings_and_device_names():
    cfg = with_overrides(LabConfig(), ['title="my run"', "train.device=cuda:1", "model.init=glorot_uniform"])
    assert cfg.title == "my run"
    assert cfg.train.device == "cuda:1"
    assert cfg.model.init == "xavier_uniform"


def test_overrides_leave_the_original_alone():
    base = LabConfig()
    with_overrides(base, ["model.depth=20"])
    assert base.model.depth == 10


def test_later_override_wins():
    assert with_overrides(LabConfig(), ["model.depth=3", "model.depth=4"]).model.depth == 4


def test_unknown_override_key():
    with pytest.raises(ConfigError) as info:
        with_overrides(LabConfig(), ["model.dept=3"])
    assert_one_line(str(info.value), "--set", "model.dept", "did you mean depth?")


def test_override_value_is_validated():
    with pytest.raises(ConfigError) as info:
        with_overrides(LabConfig(), ["model.depth=x"])
    assert_one_line(str(info.value), "--set", 'model.depth = "x"', "an integer")


def test_override_into_a_plain_value():
    with pytest.raises(ConfigError, match="title is not a table"):
        with_overrides(LabConfig(), ["title.x=1"])


@pytest.mark.parametrize("item", ["foo", "=3", "model.=3", ".depth=3", "model..depth=3"])
def test_malformed_override(item):
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        with_overrides(LabConfig(), [item])


def test_override_source_is_named():
    with pytest.raises(ConfigError) as info:
        with_overrides(LabConfig(), ["train.steps=-5"], source="--steps")
    assert str(info.value).startswith("--steps: train.steps = -5 is out of range")


def test_lab_config_helpers():
    cfg = loads_config('title = "en"\n[translations.pt]\ntitle = "pt"\n')
    assert isinstance(cfg, LabConfig)
    assert cfg.title_for("pt") == "pt"
    assert cfg.title_for("en") == "en"
    assert cfg.lesson_for("pt") == ""
    assert not cfg.recurrent
    assert with_overrides(cfg, ["model.arch=gru", "data.name=adding"]).recurrent


def test_batch_norm_with_a_batch_of_one_is_refused_with_the_reason():
    from tui_lab.core.config import LabConfig, with_overrides
    from tui_lab.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"batch_size >= 2"):
        with_overrides(LabConfig(), ["model.norm=batch_pre", "train.batch_size=1"])
    with_overrides(LabConfig(), ["model.norm=layer", "train.batch_size=1"])  # LayerNorm is fine
