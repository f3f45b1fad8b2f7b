"""The command line: exit codes, one-line messages, start-up cost, and what it hands to the engine and the UI.

Most tests run `python -m tui_lab` in a subprocess, as a user would. The hand-over tests call `main()` in
process with fake `run_headless`, `run_sweep` and `run_app` entry points, so they check the CLI's side of
those contracts without training or opening a screen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_lab import __version__
from tui_lab.cli import main
from tui_lab.core.config import LabConfig
from tui_lab.core.errors import UserError
from tui_lab.core.presets import bundled_dir

from support import ROOT


@pytest.fixture
def user_presets(tmp_path, monkeypatch):
    """An empty user preset directory, for the subprocesses and for in-process calls alike."""
    path = tmp_path / "user-presets"
    path.mkdir()
    monkeypatch.setenv("TUI_LAB_PRESETS", str(path))
    return path


@pytest.fixture
def cli(user_presets, tmp_path):
    """Run `python -m tui_lab ARGS` in tmp_path; returns the CompletedProcess (text mode)."""

    def run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TUI_LAB_PRESETS": str(user_presets)}
        env.pop("TUI_LAB_DEBUG", None)
        return subprocess.run(
            [sys.executable, "-m", "tui_lab", *args],
            cwd=kwargs.pop("cwd", tmp_path),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            **kwargs,
        )

    return run


def assert_user_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, nothing on stdout, exactly one `tui-lab: ` line on stderr holding every fragment."""
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tui-lab: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert proc.stdout == ""
    return lines[0]


# ---------------------------------------------------------------------------------------------------------
# --version: fast, and without the heavy imports.


def test_version(cli):
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"tui-lab {__version__}\n"
    assert proc.stderr == ""


def test_version_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from tui_lab.cli import main\n"
        "rc = main(['--version'])\n"
        "heavy = [m for m in ('torch', 'pydantic', 'textual', 'numpy', 'tui_lab.core.config') if m in sys.modules]\n"
        "print(rc, heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 []"


def test_version_is_fast(cli):
    # Best of three, so a busy machine does not make it flaky; the bar is "well under 0.5 s".
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        proc = cli("--version")
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == 0
    assert best < 0.5, f"tui-lab --version took {best:.3f} s"


def test_help(cli):
    proc = cli("--help")
    assert proc.returncode == 0
    for word in ("run", "presets", "show", "sweep", "--preset", "--set", "--device", "--version"):
        assert word in proc.stdout


# ---------------------------------------------------------------------------------------------------------
# presets


def test_presets_lists_bundled(cli):
    if not (bundled_dir() / "deep-sigmoid.toml").exists():
        pytest.skip("the deep-sigmoid preset is not written yet")
    proc = cli("presets")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == len(list(bundled_dir().glob("*.toml")))
    line = next(line for line in lines if line.split()[0] == "deep-sigmoid")
    assert "sigmoid" in line.lower().split(None, 1)[1]  # the title follows the name
    # Titles start in one column.
    starts = {len(line) - len(line.split(None, 1)[1]) for line in lines}
    assert len(starts) == 1


def test_presets_marks_user_presets(cli, user_presets):
    (user_presets / "mine.toml").write_text('title = "My experiment"\n', encoding="utf-8")
    (user_presets / "deep-sigmoid.toml").write_text('title = "My deep sigmoid"\n', encoding="utf-8")
    proc = cli("presets")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert lines["mine"].endswith("My experiment  [user]")
    overrides = (bundled_dir() / "deep-sigmoid.toml").exists()
    marker = "[user, overrides bundled]" if overrides else "[user]"
    assert lines["deep-sigmoid"].endswith(f"My deep sigmoid  {marker}")


def test_presets_in_portuguese(cli, user_presets):
    (user_presets / "mine.toml").write_text(
        'title = "English"\n[translations.pt]\ntitle = "Português"\n', encoding="utf-8"
    )
    assert "Português" in cli("presets", "--lang", "pt").stdout
    assert "Português" in cli("--lang", "pt_BR.UTF-8", "presets").stdout
    assert "English" in cli("presets", "--lang", "en").stdout


def test_presets_warns_on_unreadable_entry(cli, user_presets):
    (user_presets / "mine.toml").write_text('title = "Mine"\n', encoding="utf-8")
    (user_presets / "broken.toml").mkdir()
    proc = cli("presets")
    assert proc.returncode == 0
    assert "mine" in proc.stdout
    assert "broken" not in proc.stdout
    assert proc.stderr.startswith("tui-lab: warning: ")
    assert "broken.toml" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_presets_into_a_closed_pipe_is_quiet(user_presets):
    (user_presets / "mine.toml").write_text('title = "Mine"\n', encoding="utf-8")
    # A pipe whose reader is already gone: the first write fails with EPIPE, as under `| head -0`.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tui_lab", "presets"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 141


# ---------------------------------------------------------------------------------------------------------
# Bad input: exit 2 and one clear line naming the file, the key and what is allowed.


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[model]\nactivaton = "relu"\n', ["model.activaton", "did you mean activation?"]),
        ("[model]\ndepth = -3\n", ["model.depth = -3", "out of range", ">= 1"]),
        ('[optim]\nlr = "fast"\n', ['optim.lr = "fast"', "a number"]),
        ("[model]\ndepth = \n", ["not valid TOML", "line 2"]),
        ('[model]\nactivation = "rleu"\n', ["did you mean relu?"]),
    ],
    ids=["misspelt-key", "negative-depth", "string-lr", "broken-toml", "bad-choice"],
)
@pytest.mark.parametrize("command", ["run", "sweep", "tui"])
def test_bad_file(cli, tmp_path, text, fragments, command):
    (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
    args = {
        "run": ["run", "bad.toml"],
        "sweep": ["sweep", "bad.toml", "--grid", "model.depth=2,3"],
        "tui": ["--preset", "bad.toml"],
    }[command]
    assert_user_error(cli(*args), "bad.toml: ", *fragments)


def test_missing_file(cli):
    assert_user_error(cli("run", "absent.toml"), "absent.toml: no such file")


def test_unknown_preset_name(cli):
    line = assert_user_error(cli("run", "no-such-lesson"), "no preset named 'no-such-lesson'", "tui-lab presets")
    if (bundled_dir() / "deep-sigmoid.toml").exists():
        assert "deep-sigmoid" in line
        assert "did you mean deep-sigmoid?" in assert_user_error(cli("run", "deep-sigmod"))


@pytest.fixture
def ok_toml(tmp_path) -> str:
    """A valid preset of our own (an empty file is the defaults), so no test depends on the shipped ones."""
    (tmp_path / "ok.toml").write_text('title = "ok"\n', encoding="utf-8")
    return "ok.toml"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--set", "foo"], ["--set 'foo': expected KEY=VALUE"]),
        (["--set", "model.dept=3"], ["--set: unknown key model.dept", "did you mean depth?"]),
        (["--set", "model.depth=x"], ['--set: model.depth = "x"', "an integer"]),
        (["--steps", "-5"], ["--steps: train.steps = -5 is out of range", ">= 1"]),
        (["--steps", "1.5"], ["--steps: train.steps = 1.5", "an integer"]),
        (["--seed", "-1"], ["--seed: seed = -1 is out of range"]),
        (["--device", "gpu"], ['--device: train.device = "gpu"', "cuda:N"]),
        (["--lang", "fr"], ["--lang 'fr' is not supported", "en, pt"]),
    ],
)
def test_bad_run_arguments(cli, ok_toml, args, fragments):
    assert_user_error(cli("run", ok_toml, *args), *fragments)


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["run"],
        ["run", "x.toml", "--bogus"],
        ["frobnicate"],
        ["--preset", "x.toml", "run", "y.toml"],
        ["presets", "--set", "a=1"],
        ["--set", "a=1", "presets"],
        ["sweep", "x.toml", "--jobs", "many"],
    ],
)
def test_bad_arguments_give_usage(cli, args):
    proc = cli(*args)
    assert proc.returncode == 2
    assert "usage: tui-lab" in proc.stderr
    assert "error:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_needs_a_run_directory(cli, tmp_path):
    assert_user_error(cli("show", "nowhere"), "nowhere: no such directory")
    (tmp_path / "file").write_text("", encoding="utf-8")
    assert_user_error(cli("show", "file"), "file: not a directory")
    (tmp_path / "empty").mkdir()
    assert_user_error(cli("show", "empty"), "empty: not a run directory (no config.toml)")


@pytest.mark.parametrize(
    ("grid", "fragments"),
    [
        ([], ["give at least one --grid"]),
        (["--grid", "model.depth"], ["expected KEY=V1,V2"]),
        (["--grid", "model.depth=2,,3"], ["empty value"]),
        (["--grid", "model.depth=2,2"], ["listed twice"]),
        (["--grid", "model.dept=2,3"], ["--grid model.dept=2: unknown key model.dept", "did you mean depth?"]),
        (["--grid", "model.depth=2,-3"], ["--grid model.depth=-3: model.depth = -3 is out of range"]),
        (["--grid", "model.depth=2", "--grid", "model.depth=3"], ["model.depth: given more than once"]),
        (["--grid", "model.arch=mlp,gru"], ['model.arch=gru: data.name = "spiral" does not fit']),
        (["--grid", "model.depth=2", "--jobs", "0"], ["--jobs 0: must be at least 1"]),
    ],
)
def test_bad_sweep_grid(cli, ok_toml, grid, fragments):
    assert_user_error(cli("sweep", ok_toml, *grid), *fragments)


# ---------------------------------------------------------------------------------------------------------
# Hand-over to the engine and the UI (fakes of their entry points, in process).


class FakeEntryPoints:
    """Stands in for run_headless, run_sweep and run_app: records each call and answers `code` or raises."""

    def __init__(self):
        self.record: list[tuple[str, tuple, dict]] = []
        self.code = 0
        self.raises: BaseException | None = None

    def entry(self, name: str):
        def call(*args, **kwargs):
            self.record.append((name, args, kwargs))
            if self.raises is not None:
                raise self.raises
            return self.code

        return call

    def only(self) -> tuple[str, tuple, dict]:
        assert len(self.record) == 1, self.record
        return self.record[0]


@pytest.fixture
def calls(monkeypatch, user_presets) -> FakeEntryPoints:
    """The three entry points replaced in their (real) modules; the sweep's own grid parsing stays real."""
    fakes = FakeEntryPoints()
    for module, func in (
        ("tui_lab.headless", "run_headless"),
        ("tui_lab.sweep", "run_sweep"),
        ("tui_lab.ui.app", "run_app"),
    ):
        monkeypatch.setattr(f"{module}.{func}", fakes.entry(func))
    return fakes


def test_run_hands_over_a_validated_config(calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("[model]\ndepth = 4\n", encoding="utf-8")
    code = main(
        [
            "run",
            "exp.toml",
            "--set",
            "model.activation=relu",
            "--steps",
            "50",
            "--seed",
            "7",
            "--device",
            "cpu",
            "--out",
            "runs/a",
            "--force",
            "--lang",
            "pt",
        ]
    )
    assert code == 0
    func, args, kwargs = calls.only()
    assert func == "run_headless"
    name, cfg = args
    assert name == "exp+seed=7+relu+steps=50"  # the run is named after what the flags changed
    assert isinstance(cfg, LabConfig)
    assert (cfg.model.depth, cfg.model.activation, cfg.train.steps, cfg.seed, cfg.train.device) == (
        4,
        "relu",
        50,
        7,
        "cpu",
    )
    assert kwargs == {"out": Path("runs/a"), "force": True, "lang": "pt"}


def test_run_defaults(calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    assert main(["run", "exp.toml"]) == 0
    _, (name, cfg), kwargs = calls.only()
    assert cfg.train.steps == 2000
    assert kwargs["out"] is None and kwargs["force"] is False


def test_flags_win_over_set(calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    assert main(["--set", "model.depth=3", "run", "exp.toml", "--set", "train.steps=9", "--steps", "11"]) == 0
    _, (_, cfg), _ = calls.only()
    assert (cfg.model.depth, cfg.train.steps) == (3, 11)


def test_run_exit_code_is_the_engines(calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    calls.code = 0  # a diverged run is a lesson outcome, not an error: the engine decides
    assert main(["run", "exp.toml"]) == 0
    calls.code = 1
    assert main(["run", "exp.toml"]) == 1


def test_user_error_from_the_engine(calls, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    calls.raises = UserError("runs/a: already holds a run; use --force to overwrite")
    assert main(["run", "exp.toml", "--out", "runs/a"]) == 2
    assert capsys.readouterr().err == "tui-lab: runs/a: already holds a run; use --force to overwrite\n"


def test_internal_error_is_one_line_and_a_hint(calls, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUI_LAB_DEBUG", raising=False)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    calls.raises = RuntimeError("boom\nsecond line")
    assert main(["run", "exp.toml"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "tui-lab: internal error: RuntimeError: boom",
        "tui-lab: rerun with TUI_LAB_DEBUG=1 to see the traceback",
    ]


def test_internal_error_traceback_with_debug(calls, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUI_LAB_DEBUG", "1")
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    calls.raises = RuntimeError("boom")
    assert main(["run", "exp.toml"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "tui-lab: internal error: RuntimeError: boom" in err


def test_ctrl_c_outside_a_run(calls, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    calls.raises = KeyboardInterrupt()
    assert main(["run", "exp.toml"]) == 130
    assert capsys.readouterr().err == ""


def test_sweep_hands_over_grid(calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    code = main(
        [
            "sweep",
            "exp.toml",
            "--grid",
            "model.activation=sigmoid, tanh,relu",
            "--grid",
            "model.init=default,he_normal",
            "--steps",
            "30",
            "--jobs",
            "3",
            "--out",
            "sw",
        ]
    )
    assert code == 0
    func, (name, cfg), kwargs = calls.only()
    assert func == "run_sweep"
    assert name == "exp+steps=30"  # named after what the flags changed
    assert cfg.train.steps == 30
    assert kwargs == {
        "grid": [("model.activation", ["sigmoid", "tanh", "relu"]), ("model.init", ["default", "he_normal"])],
        "jobs": 3,
        "out": Path("sw"),
    }


def test_sweep_grid_of_values_valid_only_together(calls, tmp_path, monkeypatch):
    # lstm needs a sequence task: arch=lstm alone would not validate, but every combination here does.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    assert main(["sweep", "exp.toml", "--grid", "model.arch=lstm,gru", "--grid", "data.name=adding,copy"]) == 0
    assert calls.only()[0] == "run_sweep"


def test_tui_without_preset_loads_nothing(calls):
    assert main([]) == 0
    func, args, kwargs = calls.only()
    assert func == "run_app" and args == ()
    assert kwargs["preset_name"] is None and kwargs["cfg"] is None
    assert kwargs["lang"] in ("en", "pt")


def test_tui_with_preset_and_overrides(calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    assert main(["--preset", "exp.toml", "--set", "model.depth=20", "--device", "cpu", "--lang", "en"]) == 0
    _, _, kwargs = calls.only()
    assert kwargs["preset_name"] == "exp+depth=20"
    assert kwargs["cfg"].model.depth == 20
    assert kwargs["cfg"].train.device == "cpu"
    assert kwargs["lang"] == "en"


def test_tui_with_overrides_only_starts_from_defaults(calls):
    assert main(["--set", "model.depth=20"]) == 0
    _, _, kwargs = calls.only()
    assert kwargs["preset_name"] is None
    assert kwargs["cfg"].model.depth == 20


def test_show_hands_over_the_directory(calls, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text("", encoding="utf-8")
    assert main(["show", str(run_dir), "--lang", "pt"]) == 0
    assert calls.only() == ("run_app", (), {"show_dir": run_dir, "lang": "pt", "ascii": False})


# ---------------------------------------------------------------------------------------------------------
# A device the machine does not have: one line naming the flag and what is available, exit 2, before anything
# starts (the TUI never opens, no run directory is made).

no_cuda = pytest.mark.skipif(
    __import__("tui_lab.core.devices", fromlist=["problem"]).problem("cuda") is None, reason="this machine has CUDA"
)


@no_cuda
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--device", "cuda"], ["--device cuda: CUDA is not available", "available: cpu"]),
        (["--preset", "ok.toml", "--device", "cuda:7"], ["--device cuda:7: ", "available: cpu"]),
        (["--preset", "ok.toml", "--set", "train.device=cuda"], ["--set train.device=cuda: ", "available: cpu"]),
        (["run", "ok.toml", "--device", "cuda"], ["--device cuda: CUDA is not available", "available: cpu"]),
        (["run", "ok.toml", "--device", "cuda:7"], ["--device cuda:7: ", "available: cpu"]),
        (["sweep", "ok.toml", "--grid", "model.activation=relu,tanh", "--device", "cuda"], ["--device cuda: "]),
        (["sweep", "ok.toml", "--grid", "train.device=cpu,cuda:1"], ["--grid train.device=cuda:1: ", "cpu"]),
    ],
)
def test_missing_cuda_is_refused_before_anything_starts(cli, ok_toml, tmp_path, args, fragments):
    proc = cli(*args)
    assert_user_error(proc, *fragments)
    assert "\x1b[" not in proc.stderr  # no screen was drawn
    made = [p.name for p in tmp_path.iterdir() if p.is_dir() and p.name != "user-presets"]
    assert made == []  # no run directory


@pytest.mark.skipif(sys.platform == "darwin", reason="MPS may be there")
@pytest.mark.parametrize("command", [[], ["run", "ok.toml"], ["sweep", "ok.toml", "--grid", "seed=1,2"]])
def test_mps_off_apple_is_refused(cli, ok_toml, command):
    assert_user_error(cli(*command, "--device", "mps"), "--device mps: Apple MPS exists only on macOS", "available:")


def test_a_preset_file_asking_for_a_missing_device_is_named(cli, tmp_path):
    (tmp_path / "gpu.toml").write_text('[train]\ndevice = "mps"\n', encoding="utf-8")
    if sys.platform == "darwin":
        pytest.skip("MPS may be there")
    assert_user_error(cli("run", "gpu.toml"), 'gpu.toml: train.device = "mps": Apple MPS exists only on macOS')


@pytest.fixture
def two_gpus(monkeypatch):
    """torch as a CUDA build on a machine with cuda:0 and cuda:1 (for the checks; nothing trains)."""
    import torch

    from tui_lab.core import devices

    monkeypatch.setattr(devices, "torch_build", lambda: {"version": "2.13.0+cu126", "cuda": "12.6", "hip": None})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.parametrize(
    "argv",
    [
        ["--preset", "exp.toml", "--device", "cuda:7"],
        ["run", "exp.toml", "--device", "cuda:7"],
        ["sweep", "exp.toml", "--grid", "model.activation=relu,tanh", "--device", "cuda:7"],
    ],
)
def test_a_gpu_index_past_the_last_is_refused(two_gpus, calls, tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    assert main(argv) == 2
    assert calls.record == []  # neither the TUI nor a run started
    err = capsys.readouterr().err.splitlines()
    assert err == ["tui-lab: --device cuda:7: no such GPU; available: cpu, cuda:0, cuda:1"]


def test_a_gpu_that_is_there_is_handed_over(two_gpus, calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.toml").write_text("", encoding="utf-8")
    assert main(["run", "exp.toml", "--device", "cuda:1"]) == 0
    assert calls.only()[1][1].train.device == "cuda:1"


def test_device_checks_need_no_torch_on_a_cpu_build():
    # On a CPU-only torch (or off Apple, for mps) the refusal comes from torch/version.py, read as text.
    code = (
        "import sys\n"
        "from tui_lab.core import devices\n"
        "build = devices.torch_build()\n"
        "print(build is not None and build['cuda'] is None and build['hip'] is None)\n"
        "print(devices.problem('cpu'), devices.problem('auto'))\n"
        "why = devices.problem('cuda:0')\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    cpu_build, no_problem, torch_loaded = proc.stdout.splitlines()
    assert no_problem == "None None"
    if cpu_build == "True":
        assert torch_loaded == "False"
