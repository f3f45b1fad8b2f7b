"""Fixtures for every test (helpers the modules import are in support.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go to a fresh directory and no user presets are seen, so no test touches the user's files."""
    path = tmp_path / "runs"
    monkeypatch.setenv("TUI_LAB_RUNS", str(path))
    monkeypatch.setenv("TUI_LAB_PRESETS", str(tmp_path / "no-user-presets"))
    return path


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts in English, whatever the machine's locale (a pt_BR one would translate every word the
    tests look for: it reads as a UTF-8 locale with no language instead), and leaves no language behind."""
    from tui_lab.core import i18n

    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if i18n.normalise_language(os.environ.get(var, "")) not in (None, i18n.DEFAULT_LANGUAGE):
            monkeypatch.setenv(var, "C.UTF-8")
    i18n.set_language(i18n.DEFAULT_LANGUAGE)
    yield
    i18n.set_language(i18n.DEFAULT_LANGUAGE)
