"""The one-way import rule (DESIGN.md §3): the core never imports the UI or Textual.

Enforced twice: statically by import-linter's contract in pyproject.toml, and at run time by importing every
core module in a fresh interpreter and looking at what got loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
UI_MODULES = ("textual", "textual_plotext", "plotext", "tui_lab.ui")


def test_import_linter_contract_holds():
    code = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout, proc.stdout


def test_core_modules_do_not_load_the_ui_at_run_time():
    # Every module of tui_lab.core, whoever wrote it, found by listing the package.
    code = (
        "import importlib, pkgutil, sys\n"
        "import tui_lab.core as core\n"
        "names = sorted(m.name for m in pkgutil.iter_modules(core.__path__, 'tui_lab.core.'))\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {UI_MODULES!r} or m.startswith('tui_lab.ui'))\n"
        "print(len(names), bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    count, bad = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(count) >= 4  # config, errors, i18n, presets at least
    assert bad == "[]", f"tui_lab.core loaded UI modules: {bad}"


def test_cli_and_package_import_light():
    """`import tui_lab` and `import tui_lab.cli` load neither torch nor pydantic nor Textual."""
    code = (
        "import sys, tui_lab, tui_lab.cli\n"
        "print(sorted(m for m in ('torch', 'pydantic', 'textual', 'numpy') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
