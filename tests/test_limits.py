"""Input limits that refuse before they hurt (issue 16): a configuration that needs more memory than the device has
free, preset files that are not small regular files, deep nesting, one `--set` value that smuggles in more keys,
empty names, a sweep grid too big to plan. Each is one line and exit 2, at once, without allocating.

The memory estimate (core/budget.py) is checked against the peak RSS of real runs: the estimate must cover what a
run takes (actual <= 2x estimate) without being absurdly pessimistic (estimate <= 2.5x actual).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_lab.core import budget
from tui_lab.core.config import (
    MAX_DEPTH,
    LabConfig,
    differences,
    load_config,
    loads_config,
    parse_value,
    with_overrides,
)
from tui_lab.core.errors import ConfigError, UserError
from tui_lab.core.presets import load_preset, read_title
from tui_lab.sweep import MAX_CONFIGS, parse_grid, plan

from support import ROOT

HUGE = {  # the cases: each needs far more than a 8 GB machine has
    "depth-width": ("deep-sigmoid", ["model.depth=200", "model.width=4096"], "lower model.width or model.depth"),
    "cnn-batch": ("cnn-digits", ["model.width=4096", "train.batch_size=65536"], "lower train.batch_size"),
    "samples": ("rnn-vs-lstm", ["data.samples=1000000", "data.seq_len=1000"], "lower data.samples or data.seq_len"),
}


def tui_lab(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60):
    """`python -m tui_lab ARGS`: (CompletedProcess, wall seconds); a hang fails the test."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("TUI_LAB_DEBUG", None)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_lab", *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"tui-lab {' '.join(args)[:80]} hung") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.perf_counter() - start


def one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-500:])
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# Runs `python -m tui_lab ARGS` and prints its peak RSS. A child's ru_maxrss counts the memory of the process
# that started it (Linux records the old image's high-water mark at exec, and subprocess uses vfork): started from
# this small wrapper rather than from pytest, which may have grown to hundreds of MB, the peak is the run's own.
_MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen([sys.executable, "-m", "tui_lab", *sys.argv[1:]], stdin=subprocess.DEVNULL)
_pid, status, usage = os.wait4(proc.pid, 0)
print(f"PEAK {usage.ru_maxrss * 1024}", flush=True)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss(args: list[str], env: dict[str, str]) -> tuple[int, subprocess.CompletedProcess[str]]:
    """The peak RSS of `python -m tui_lab ARGS` alone, and its result (stderr merged into stdout)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=300,
    )
    out, _sep, peak = done.stdout.rpartition("PEAK ")
    return int(peak.strip()), subprocess.CompletedProcess(done.args, done.returncode, out, "")


def config(preset: str, sets: list[str]) -> LabConfig:
    return with_overrides(load_preset(preset)[1], sets)


# ---------------------------------------------------------------------------------------------------------
# The memory estimate.


class TestBudget:
    # Medium runs whose largest part differs: weights with Adam's state, activations of a big batch, an LSTM
    # unrolled over time. Two steps, each a capture step (the probes' extra memory included).
    MEASURED = {
        "weights": ("deep-sigmoid", ["model.depth=8", "model.width=1536", "optim.name=adam", "data.samples=500"]),
        "batch": ("relu-he", ["model.width=512", "model.depth=4", "train.batch_size=16384", "data.samples=20000"]),
        "lstm": ("lstm-remembers", ["model.width=128", "train.batch_size=128", "data.seq_len=200", "data.samples=600"]),
    }

    @pytest.mark.parametrize("case", list(MEASURED))
    def test_estimate_is_within_a_factor_of_the_measured_peak(self, case, tmp_path):
        preset, sets = self.MEASURED[case]
        est = budget.estimate(config(preset, sets), "cpu").total
        args = ["run", preset, *[a for s in sets for a in ("--set", s)], "--steps", "2", "--set", "train.log_every=1"]
        peak, proc = peak_rss([*args, "--out", str(tmp_path / "run")], {"TUI_LAB_MEMORY_LIMIT": "1T"})
        assert proc.returncode == 0, proc.stdout[-500:]
        assert peak <= 2 * est, f"{case}: peak {peak / 1e6:.0f} MB > 2x estimate {est / 1e6:.0f} MB"
        assert est <= 2.5 * peak, f"{case}: estimate {est / 1e6:.0f} MB > 2.5x peak {peak / 1e6:.0f} MB"

    def test_every_bundled_lesson_fits_a_small_machine(self, monkeypatch):
        """A normal lesson is never refused: each needs well under 1 GB by the estimate."""
        from tui_lab.core.presets import discover

        monkeypatch.setenv(budget.LIMIT_ENV, "1G")
        for name, ref in discover().items():
            est = budget.estimate(load_config(ref.path))
            assert est.total < 0.7e9, (name, est)
            assert budget.check(load_config(ref.path)) is None, name

    @pytest.mark.parametrize("case", list(HUGE))
    def test_huge_configurations_are_refused_at_once(self, case, monkeypatch):
        preset, sets, lower = HUGE[case]
        cfg = config(preset, sets)
        monkeypatch.setenv(budget.LIMIT_ENV, "8G")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        why = budget.check(cfg)
        assert time.perf_counter() - start < 0.1
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 10_000  # kB: nothing allocated
        assert why is not None and lower in why and "needs ~" in why and "has 8.6 GB free" in why
        assert "\n" not in why

    @pytest.mark.parametrize("case", list(HUGE))
    def test_run_refuses_before_anything_is_written(self, case, tmp_path):
        preset, sets, lower = HUGE[case]
        runs = tmp_path / "runs"
        args = ["run", preset, *[a for s in sets for a in ("--set", s)], "--steps", "2"]
        proc, wall = tui_lab(*args, env={"TUI_LAB_MEMORY_LIMIT": "8G", "TUI_LAB_RUNS": str(runs)})
        line = one_line_error(proc, "needs ~", lower)
        assert "this machine has 8.6 GB free" in line
        assert not runs.exists()
        assert wall < 20  # the start-up of Python and pydantic; the check itself is arithmetic

    def test_refusal_does_not_allocate(self, tmp_path):
        preset, sets, _lower = HUGE["depth-width"]
        args = ["run", preset, *[a for s in sets for a in ("--set", s)]]
        peak, proc = peak_rss(args, {"TUI_LAB_MEMORY_LIMIT": "8G", "TUI_LAB_RUNS": str(tmp_path / "runs")})
        assert proc.returncode == 2, proc.stdout
        assert peak < 200e6, f"peak RSS {peak / 1e6:.0f} MB for a refusal (torch is not even imported)"

    def test_tui_with_a_preset_refuses_before_it_opens(self, tmp_path):
        preset, sets, lower = HUGE["cnn-batch"]
        args = ["--preset", preset, *[a for s in sets for a in ("--set", s)]]
        proc, _wall = tui_lab(*args, env={"TUI_LAB_MEMORY_LIMIT": "8G"}, cwd=tmp_path)
        one_line_error(proc, "needs ~", lower)

    def test_sweep_refuses_the_configuration_that_does_not_fit(self, tmp_path):
        runs = tmp_path / "runs"
        args = ["sweep", "deep-sigmoid", "--set", "model.depth=200", "--grid", "model.width=64,4096", "--steps", "2"]
        proc, _wall = tui_lab(*args, env={"TUI_LAB_MEMORY_LIMIT": "8G", "TUI_LAB_RUNS": str(runs)})
        one_line_error(proc, "model.width=4096", "needs ~", "lower model.width")
        assert not runs.exists()

    def test_bad_limit_variable_is_one_line(self, tmp_path):
        proc, _wall = tui_lab("run", "deep-sigmoid", env={"TUI_LAB_MEMORY_LIMIT": "lots"}, cwd=tmp_path)
        one_line_error(proc, "TUI_LAB_MEMORY_LIMIT='lots'", "2G")

    @pytest.mark.parametrize("text,size", [("2G", 2 * 2**30), ("512M", 512 * 2**20), ("1000", 1000), ("1.5g", 3 << 29)])
    def test_parse_size(self, text, size):
        assert budget.parse_size(text) == size

    def test_free_memory_is_read_from_the_machine(self, monkeypatch):
        monkeypatch.delenv(budget.LIMIT_ENV, raising=False)
        free = budget.host_free()
        if sys.platform.startswith("linux"):
            assert free is not None and 0 < free < 2**50

    @given(
        arch=st.sampled_from(["mlp", "resmlp", "cnn", "rnn", "lstm", "gru"]),
        width=st.integers(1, 4096),
        depth=st.integers(1, 200),
        batch=st.integers(2, 65536),
        samples=st.integers(16, 1_000_000),
        seq_len=st.integers(2, 1000),
    )
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    def test_estimate_grows_with_every_size_key(self, arch, width, depth, batch, samples, seq_len):
        """Doubling any size key never lowers the estimate, and the refusal names a key that lowers it."""
        data = {"mlp": "spiral", "resmlp": "moons", "cnn": "digits"}.get(arch, "copy")
        base = {"model": {"arch": arch, "width": width, "depth": depth}, "train": {"batch_size": batch},
                "data": {"name": data, "samples": samples, "seq_len": seq_len}}  # fmt: skip
        cfg = LabConfig.model_validate(base)
        est = budget.estimate(cfg)
        assert est.total > 0 and all(v >= 0 for v in est.parts.values())
        bounds = {"width": 4096, "depth": 200, "samples": 1_000_000}
        for section, key, value in (("model", "width", width), ("model", "depth", depth), ("data", "samples", samples)):
            if value * 2 <= bounds[key]:
                bigger = LabConfig.model_validate({**base, section: {**base[section], key: value * 2}})
                assert budget.estimate(bigger).total >= est.total
        assert est.lower and all(key.count(".") == 1 for key in est.lower)


class TestTuiRefusesToStart:
    def test_run_does_not_start_and_the_message_says_why(self, monkeypatch, runs_dir):
        from tui_lab.ui.app import LabApp

        from pilot import aio, panel_ready

        monkeypatch.setenv(budget.LIMIT_ENV, "8G")
        preset, sets, _lower = HUGE["depth-width"]
        app = LabApp(preset_name=preset, cfg=config(preset, sets))

        @aio
        async def drive():
            async with app.run_test(size=(100, 30)) as pilot:
                await panel_ready(pilot, app)
                await pilot.press("r")
                await pilot.pause(0.2)
                assert app.lab.run is None
                assert "needs ~" in app.lab.message and "lower model.width" in app.lab.message

        drive()
        assert not runs_dir.exists() or not any(runs_dir.iterdir())

    @pytest.mark.parametrize("args", [["--preset", "deep-sigmoid"], ["show", "RUN"], []])
    def test_without_a_terminal_the_tui_does_not_open(self, args, tmp_path):
        """stdin from /dev/null (cron, `ssh host tui-lab` without -t): no key could ever reach the app, and
        the input thread spun a core on the ended input. One line instead."""
        run_dir = tmp_path / "run"
        if "RUN" in args:
            done, _wall = tui_lab("run", "deep-sigmoid", "--steps", "2", "--out", str(run_dir))
            assert done.returncode == 0, done.stderr
        proc, wall = tui_lab(*[str(run_dir) if a == "RUN" else a for a in args], timeout=30)
        one_line_error(proc, "needs a terminal", "stdin", "tui-lab run")
        assert wall < 20


# ---------------------------------------------------------------------------------------------------------
# Preset files.


class TestPresetFiles:
    def test_fifo_is_refused_without_waiting(self, tmp_path):
        fifo = tmp_path / "fifo.toml"
        os.mkfifo(fifo)
        start = time.perf_counter()
        with pytest.raises(UserError, match="fifo.toml: is a FIFO, not a regular file"):
            load_config(fifo)
        assert time.perf_counter() - start < 1
        assert read_title(fifo).startswith("(unreadable: is a FIFO")

    def test_dev_zero_and_a_symlink_to_it_are_refused(self, tmp_path):
        link = tmp_path / "zero.toml"
        link.symlink_to("/dev/zero")
        for path in (Path("/dev/zero"), link):
            with pytest.raises(UserError, match="is a device or special file, not a regular file"):
                load_config(path)

    def test_directory_is_refused(self, tmp_path):
        (tmp_path / "d.toml").mkdir()
        with pytest.raises(UserError, match="d.toml: is a directory"):
            load_config(tmp_path / "d.toml")

    def test_a_file_over_1_mb_is_refused_by_its_size(self, tmp_path):
        big = tmp_path / "x.toml"
        big.write_bytes(b"# " + b"x" * 52_400_000 + b"\n")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with pytest.raises(UserError) as info:
            load_config(big)
        assert str(info.value) == f"{big}: 52.4 MB; a preset file is at most 1 MB"
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20_000  # kB: never read

    def test_ten_thousand_unknown_keys_are_one_short_line(self, tmp_path):
        path = tmp_path / "keys.toml"
        path.write_text("".join(f"key{i} = {i}\n" for i in range(10_000)), encoding="utf-8")
        start = time.perf_counter()
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert time.perf_counter() - start < 5
        message = str(info.value)
        assert "\n" not in message and len(message) < 300, message
        assert "key0, key1, key2 and 9997 more" in message

    def test_many_problems_are_capped(self):
        text = '[model]\ndepth = "x"\nwidth = "x"\ndropout = "x"\n[optim]\nlr = "x"\nmomentum = "x"\n'
        text += '[train]\nsteps = "x"\n'
        with pytest.raises(ConfigError) as info:
            loads_config(text)
        assert len(info.value.problems) == 5
        assert info.value.problems[-1] == "... and 2 more problems"

    def test_presets_listing_survives_broken_user_presets(self, tmp_path):
        user = tmp_path / "user"
        user.mkdir()
        os.mkfifo(user / "fifo.toml")
        (user / "zero.toml").symlink_to("/dev/zero")
        (user / "huge.toml").write_bytes(b"#" * 2_000_000)
        (user / "badtoml.toml").write_text("title = \n", encoding="utf-8")
        (user / "badutf8.toml").write_bytes(b'title = "\xff"\n')
        (user / "markup.toml").write_text('title = "[/] [bold]evil"\n', encoding="utf-8")
        (user / "deep.toml").write_text("title = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
        proc, wall = tui_lab("presets", env={"TUI_LAB_PRESETS": str(user)}, cwd=tmp_path, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        listed = {line.split()[0]: line for line in proc.stdout.splitlines()}
        assert "fifo" not in listed and "zero" not in listed  # skipped, with a warning each
        assert "fifo.toml" in proc.stderr and "zero.toml" in proc.stderr
        assert "1 MB" in listed["huge"] and "unreadable" in listed["badtoml"] and "unreadable" in listed["badutf8"]
        assert "nested too deeply" in listed["deep"]
        assert "[/] [bold]evil" in listed["markup"]

    def test_preset_picker_survives_broken_user_presets(self, tmp_path, monkeypatch):
        from tui_lab.ui.app import LabApp
        from tui_lab.ui.screens import PresetPicker

        from pilot import aio

        user = tmp_path / "user"
        user.mkdir()
        os.mkfifo(user / "fifo.toml")
        (user / "huge.toml").write_bytes(b"#" * 2_000_000)
        (user / "markup.toml").write_text('title = "[/] evil"\n', encoding="utf-8")
        (user / "deep.toml").write_text("title = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
        monkeypatch.setenv("TUI_LAB_PRESETS", str(user))
        app = LabApp()

        @aio
        async def drive():
            async with app.run_test(size=(120, 36)) as pilot:
                await pilot.pause(0.3)
                if not isinstance(app.screen, PresetPicker):
                    await pilot.press("l")
                    await pilot.pause(0.3)
                picker = app.screen
                assert isinstance(picker, PresetPicker)
                assert {"huge", "markup", "deep"} <= set(picker.refs) and "fifo" not in picker.refs
                for _ in range(len(picker.refs)):  # every preview, the broken ones included
                    await pilot.press("down")
                await pilot.pause(0.2)

        drive()

    def test_run_with_a_fifo_preset_exits_2(self, tmp_path):
        os.mkfifo(tmp_path / "p.toml")
        proc, _wall = tui_lab("run", str(tmp_path / "p.toml"), cwd=tmp_path, timeout=30)
        one_line_error(proc, "p.toml: is a FIFO")


# ---------------------------------------------------------------------------------------------------------
# Nesting, one value per --set, empty names, the grid.


class TestValues:
    def test_deep_nesting_in_set_is_a_config_error(self, tmp_path):
        proc, _wall = tui_lab("run", "deep-sigmoid", "--set", "x=" + "[" * 10_000, cwd=tmp_path)
        one_line_error(proc, "--set: x: nested more than")

    def test_deep_nesting_in_a_file_is_a_config_error(self, tmp_path):
        for text in ("x = " + "[" * 10_000 + "]" * 10_000, "x = " + "{a=" * 3000 + "1" + "}" * 3000):
            (tmp_path / "deep.toml").write_text(text + "\n", encoding="utf-8")
            with pytest.raises(ConfigError, match="nested more than"):
                load_config(tmp_path / "deep.toml")

    def test_nesting_within_the_bound_reads_as_usual(self):
        assert parse_value("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
        with pytest.raises(ConfigError, match="title: nested more than"):
            with_overrides(LabConfig(), ["title=" + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)])
        # brackets inside a string are text, not nesting
        assert with_overrides(LabConfig(), ['title="' + "[" * 50 + '"']).title == "[" * 50

    @pytest.mark.parametrize(
        "args,fragment",
        [
            (["--steps", "3\nseed=5"], "--steps: train.steps: a value is one line"),
            (["--set", "model.depth=5\n[model]\nwidth=3"], "--set: model.depth: a value is one line"),
            (["--seed", "1\rtitle='x'"], "--seed: seed: a value is one line"),
        ],
    )
    def test_a_value_cannot_inject_keys(self, args, fragment, tmp_path):
        proc, _wall = tui_lab("run", "deep-sigmoid", *args, cwd=tmp_path)
        one_line_error(proc, fragment)

    @given(st.text(max_size=40))
    @settings(max_examples=300, deadline=None)
    def test_a_set_value_changes_only_its_own_key(self, text):
        """Whatever the text, `--set title=TEXT` either fails as a ConfigError or changes the title alone."""
        base = LabConfig()
        try:
            cfg = with_overrides(base, [f"title={text}"])
        except ConfigError:
            return
        assert differences(base, cfg) == [] and cfg.model_dump(exclude={"title"}) == base.model_dump(exclude={"title"})

    @given(st.text(alphabet="[]{}\"'=,ab1 \n\\", max_size=3000))
    @settings(max_examples=200, deadline=None)
    def test_parse_value_never_raises(self, text):
        """What the config panel's fields go through: any text, however nested, is a value or a bare word."""
        parse_value(text)

    @given(st.text(alphabet="[]{}\"'=,ab1 \n", max_size=200), st.sampled_from(["title", "model.depth", "x"]))
    @settings(max_examples=300, deadline=None)
    def test_any_override_is_a_config_error_or_a_config(self, text, key):
        try:
            with_overrides(LabConfig(), [f"{key}={text}"])
        except ConfigError as exc:
            assert all("\n" not in p for p in exc.problems)

    @pytest.mark.parametrize(
        "args,fragment",
        [
            (["run", ""], "the preset name is empty"),
            (["--preset", ""], "the preset name is empty"),
            (["show", ""], "show '': an empty path"),
            (["run", "deep-sigmoid", "--device", ""], '--device: train.device = "" is not'),
            (["run", "deep-sigmoid", "--out", ""], "--out '': an empty path"),
            (["sweep", "deep-sigmoid", "--grid", "seed=1,2", "--out", " "], "--out ' ': an empty path"),
            (["run", "~nouser-tui-lab/x.toml"], "no user named nouser-tui-lab"),
            (["run", "deep-sigmoid", "--out", "~nouser-tui-lab/x"], "no user named nouser-tui-lab"),
        ],
    )
    def test_empty_names_are_refused(self, args, fragment, tmp_path):
        proc, _wall = tui_lab(*args, cwd=tmp_path, env={"TUI_LAB_RUNS": str(tmp_path / "runs")})
        one_line_error(proc, fragment)
        assert list(tmp_path.iterdir()) == []  # nothing written, not even in the current directory


class TestGrid:
    def test_a_million_configurations_are_refused_before_planning(self, tmp_path):
        grid = [a for key in ("seed", "train.steps", "model.depth", "model.width", "optim.lr", "data.samples")
                for a in ("--grid", f"{key}=" + ",".join(str(v) for v in range(16, 26)))]  # fmt: skip
        peak, proc = peak_rss(["sweep", "deep-sigmoid", *grid], {"TUI_LAB_RUNS": str(tmp_path / "runs")})
        assert proc.returncode == 2, proc.stdout
        assert proc.stdout.strip() == (
            "tui-lab: --grid: 1,000,000 configurations (10 x 10 x 10 x 10 x 10 x 10); a sweep runs at most 10,000; "
            "give fewer values"
        )
        assert peak < 200e6

    def test_the_bound_is_the_product_of_the_value_counts(self):
        fits = [f"seed={','.join(map(str, range(100)))}", f"train.steps={','.join(map(str, range(1, 101)))}"]
        assert len(plan(parse_grid(fits))) == MAX_CONFIGS
        with pytest.raises(UserError, match="10,100 configurations"):
            parse_grid([*fits[:1], f"train.steps={','.join(map(str, range(1, 102)))}"])

    def test_a_grid_value_is_one_line(self):
        with pytest.raises(UserError, match="--grid seed: a value is one line"):
            parse_grid(["seed=1,2\nmodel.depth=3"])
