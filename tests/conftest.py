"""Fixtures for every test (helpers the modules import are in support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go to a fresh directory and no user presets are seen, so no test touches the user's files."""
    path = tmp_path / "runs"
    monkeypatch.setenv("TUI_LAB_RUNS", str(path))
    monkeypatch.setenv("TUI_LAB_PRESETS", str(tmp_path / "no-user-presets"))
    return path
