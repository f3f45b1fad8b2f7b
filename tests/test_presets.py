"""Preset discovery: bundled presets, the user's directory (TUI_LAB_PRESETS), explicit paths, precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_lab.core import presets
from tui_lab.core.config import LabConfig
from tui_lab.core.errors import ConfigError, UserError


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """A bundled directory and a user directory of our own, so the tests do not depend on the shipped set."""
    bundled = tmp_path / "bundled"
    user = tmp_path / "user"
    bundled.mkdir()
    user.mkdir()
    monkeypatch.setattr(presets, "bundled_dir", lambda: bundled)
    monkeypatch.setenv(presets.PRESETS_ENV, str(user))
    return bundled, user


def preset(directory: Path, name: str, title: str, extra: str = "") -> Path:
    path = directory / f"{name}.toml"
    path.write_text(f'title = "{title}"\n{extra}', encoding="utf-8")
    return path


def test_shipped_presets_are_found_and_valid():
    found = sorted(presets.bundled_dir().glob("*.toml"))
    if not found:
        pytest.skip("no bundled presets yet")
    for path in found:
        name, cfg = presets.load_preset(str(path))
        assert name == path.stem
        assert cfg.title, f"{path.name} has no title"
        assert "\n" not in cfg.title, f"{path.name}: the title is one line in the picker"


def test_discovers_bundled(dirs):
    bundled, _ = dirs
    preset(bundled, "b-one", "One")
    preset(bundled, "a-two", "Two")
    refs = presets.discover()
    assert list(refs) == ["a-two", "b-one"]  # sorted by name
    assert all(ref.source == "bundled" and not ref.overrides_bundled for ref in refs.values())


def test_user_directory_from_environment(dirs):
    bundled, user = dirs
    preset(bundled, "lesson", "Bundled lesson")
    preset(user, "mine", "My own")
    refs = presets.discover()
    assert refs["mine"].source == "user"
    assert refs["mine"].path == user / "mine.toml"
    assert not refs["mine"].overrides_bundled
    assert refs["lesson"].source == "bundled"


def test_user_preset_wins_over_bundled_and_says_so(dirs):
    bundled, user = dirs
    preset(bundled, "deep-sigmoid", "Bundled")
    preset(user, "deep-sigmoid", "Adapted by the student")
    ref = presets.discover()["deep-sigmoid"]
    assert ref.source == "user"
    assert ref.overrides_bundled
    name, cfg = presets.load_preset("deep-sigmoid")
    assert name == "deep-sigmoid"
    assert cfg.title == "Adapted by the student"


def test_missing_user_directory_is_fine(dirs, tmp_path, monkeypatch):
    bundled, _ = dirs
    preset(bundled, "lesson", "Lesson")
    monkeypatch.setenv(presets.PRESETS_ENV, str(tmp_path / "nowhere"))
    assert list(presets.discover()) == ["lesson"]


def test_user_dir_defaults_to_platform_config_dir(monkeypatch):
    monkeypatch.delenv(presets.PRESETS_ENV, raising=False)
    path = presets.user_dir()
    assert path.name == "presets"
    assert path.parent.name == "tui-lab"


def test_unreadable_entry_is_skipped_with_a_warning(dirs):
    bundled, user = dirs
    preset(bundled, "good", "Good")
    (user / "broken.toml").mkdir()  # a directory with a preset's name: cannot be read as a file
    warnings: list[str] = []
    refs = presets.discover(warn=warnings.append)
    assert list(refs) == ["good"]
    assert len(warnings) == 1
    assert "broken.toml" in warnings[0] and "skipped" in warnings[0]


def test_invalid_utf8_preset_is_listed_but_fails_to_load_clearly(dirs):
    _, user = dirs
    (user / "garbled.toml").write_bytes(b'title = "\xff"\n')
    refs = presets.discover()
    assert "garbled" in refs
    assert presets.read_title(refs["garbled"].path).startswith("(unreadable")
    with pytest.raises(ConfigError, match="garbled.toml: not UTF-8"):
        presets.load_preset("garbled")


def test_explicit_path(tmp_path):
    path = preset(tmp_path, "exp", "Explicit", "[model]\ndepth = 4\n")
    name, cfg = presets.load_preset(str(path))
    assert name == "exp"
    assert isinstance(cfg, LabConfig)
    assert cfg.model.depth == 4


def test_relative_path(tmp_path, monkeypatch):
    preset(tmp_path, "rel", "Relative")
    monkeypatch.chdir(tmp_path)
    name, cfg = presets.load_preset("./rel.toml")
    assert (name, cfg.title) == ("rel", "Relative")
    name, _ = presets.load_preset("rel.toml")
    assert name == "rel"


def test_missing_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        presets.load_preset(str(tmp_path / "absent.toml"))


def test_unknown_name_suggests_and_lists(dirs):
    bundled, _ = dirs
    preset(bundled, "deep-sigmoid", "Deep")
    preset(bundled, "relu-he", "ReLU")
    with pytest.raises(UserError) as info:
        presets.load_preset("deep-sigmod")
    msg = str(info.value)
    assert "no preset named 'deep-sigmod'" in msg
    assert "did you mean deep-sigmoid?" in msg
    assert "relu-he" in msg
    assert "\n" not in msg


def test_invalid_preset_names_its_file(dirs):
    _, user = dirs
    preset(user, "bad", "Bad", "[model]\ndepth = -1\n")
    with pytest.raises(ConfigError) as info:
        presets.load_preset("bad")
    assert str(info.value).startswith(str(user / "bad.toml") + ": model.depth = -1")


def test_read_title_in_a_language(dirs):
    bundled, _ = dirs
    path = preset(bundled, "t", "English title", '[translations.pt]\ntitle = "Título em português"\n')
    assert presets.read_title(path, "en") == "English title"
    assert presets.read_title(path, "pt") == "Título em português"
    assert presets.read_title(path, "xx") == "English title"


@pytest.mark.parametrize(
    ("spec", "is_path"),
    [("deep-sigmoid", False), ("x.toml", True), ("dir/x", True), ("./x", True), ("relu_he", False)],
)
def test_looks_like_path(spec, is_path):
    assert presets.looks_like_path(spec) is is_path
