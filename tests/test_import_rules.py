"""The import rules: the core never imports the UI or Textual; the UI never imports torch itself and is built
in layers without cycles (app over screens, panels over the state they are given, runs below).

Enforced twice: statically by import-linter's contracts in pyproject.toml, and at run time by importing the
modules in a fresh interpreter and looking at what got loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

from support import ROOT

UI_MODULES = ("textual", "textual_plotext", "plotext", "tui_lab.ui")


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_import_linter_contracts_hold():
    code = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert f"{len(contracts)} kept, 0 broken" in proc.stdout, proc.stdout


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
    proc = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    count, bad = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(count) >= 4  # config, errors, i18n, presets at least
    assert bad == "[]", f"tui_lab.core loaded UI modules: {bad}"


def test_the_run_records_load_neither_torch_nor_textual():
    code = (
        "import sys\n"
        "import tui_lab.core.run, tui_lab.core.fmt, tui_lab.core.diagnosis, tui_lab.core.choices\n"
        "print(sorted(m for m in ('torch', 'textual', 'pydantic') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_cli_and_package_import_light():
    """`import tui_lab` and `import tui_lab.cli` load neither torch nor pydantic nor Textual."""
    code = (
        "import sys, tui_lab, tui_lab.cli\n"
        "print(sorted(m for m in ('torch', 'pydantic', 'textual', 'numpy') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
