"""The `tui-lab` command line (DESIGN.md §4): open the TUI, run headless, list presets, show a run, sweep.

Start-up cost matters here: `tui-lab --version` must answer without loading torch, pydantic or Textual, so
this module imports only the standard library at the top. Everything heavier (even tui_lab.core.config, which
brings pydantic) is imported inside the function that needs it.

Exit codes: 0 when the work ended (a diverged or user-stopped run included), 2 for bad input (a config, an
argument, a path), 1 for an internal failure, 130 for Ctrl-C outside a run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_lab import __version__

if TYPE_CHECKING:
    from tui_lab.core.config import LabConfig

PROG = "tui-lab"
DEBUG_ENV = "TUI_LAB_DEBUG"
# What a shell reports for a process killed by SIGPIPE (e.g. `tui-lab presets | head -1`), like `cat` would.
EXIT_BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tui-lab` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        code = _dispatch(parser, args)
        sys.stdout.flush()  # surface a broken pipe here, not in the interpreter's shutdown
        return code
    except SystemExit as exc:  # --help, --version and usage errors (argparse exits by itself)
        return _exit_code(exc)
    except BrokenPipeError:
        # The reader went away. Point stdout at /dev/null so the final flush at exit stays silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from tui_lab.core.errors import UserError

        if _debug():
            import traceback

            traceback.print_exc()
        if isinstance(exc, UserError):
            _error(str(exc))
            return 2
        first_line = (str(exc).strip().splitlines() or [""])[0]
        detail = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
        _error(f"internal error: {detail}")
        if not _debug():
            _error(f"rerun with {DEBUG_ENV}=1 to see the traceback")
        return 1


# ---------------------------------------------------------------------------------------------------------
# The parser.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A terminal laboratory for vanishing and exploding gradients. "
        "Without a subcommand, opens the TUI.",
        epilog="Exit codes: 0 run ended (completed, diverged or stopped), 2 bad input, 1 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    # Top-level options get their own names: a subcommand's namespace (its NAME|PATH, --set, --device) would
    # otherwise overwrite them.
    parser.add_argument("--preset", dest="top_preset", metavar="NAME|PATH", help="open the TUI with this preset")
    parser.add_argument(
        "--set", dest="top_overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key, e.g. --set model.depth=20 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--device", dest="top_device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
    _add_lang(parser, default=None)

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="train a preset headless, printing progress lines")
    run.add_argument("preset", metavar="NAME|PATH", help="a preset name (see `tui-lab presets`) or a TOML file")
    _add_config_options(run)
    run.add_argument("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument("--out", type=Path, metavar="DIR", help="write the run directory here")
    run.add_argument("--force", action="store_true", help="overwrite DIR if it already holds a run")
    _add_lang(run)

    presets = sub.add_parser("presets", help="list the presets with their titles")
    _add_lang(presets)

    show = sub.add_parser("show", help="open a finished or running run directory in the TUI")
    show.add_argument("run_dir", type=Path, metavar="DIR", help="a run directory (holds config.toml)")
    _add_lang(show)

    sweep = sub.add_parser("sweep", help="train every combination of a grid of config values")
    sweep.add_argument("preset", metavar="NAME|PATH", help="the base preset name or TOML file")
    sweep.add_argument(
        "--grid", action="append", default=[], metavar="KEY=V1,V2,...",
        help="a config key and the values to try, e.g. --grid model.activation=sigmoid,relu (repeatable)",
    )  # fmt: skip
    _add_config_options(sweep)
    sweep.add_argument("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
    sweep.add_argument("--jobs", type=int, default=1, metavar="J", help="runs in parallel (default 1)")
    sweep.add_argument("--out", type=Path, metavar="DIR", help="write the run directories and summary here")
    _add_lang(sweep)
    return parser


def _add_lang(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    # SUPPRESS on subcommands: `tui-lab --lang pt presets` and `tui-lab presets --lang pt` both work.
    parser.add_argument("--lang", default=default, metavar="L", help="language of titles and lessons: en, pt")


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key, e.g. --set model.depth=20 (repeatable)",
    )  # fmt: skip
    # Kept as strings: they go through the config's own validation, so `--steps -5` is explained like a
    # bad value in a file rather than rejected by argparse.
    parser.add_argument("--steps", metavar="N", help="training steps (train.steps)")
    parser.add_argument("--seed", metavar="S", help="random seed (seed)")


# ---------------------------------------------------------------------------------------------------------
# The commands.


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from tui_lab.core.i18n import pick_language

    command = args.command
    if command and args.top_preset:
        parser.error(f"--preset opens the TUI; with `{command}`, name the preset after the subcommand")
    if command in ("presets", "show") and (args.top_overrides or args.top_device):
        parser.error(f"--set and --device do not apply to `{command}`")
    lang = pick_language(args.lang)

    if command == "run":
        return _cmd_run(args, lang)
    if command == "presets":
        return _cmd_presets(lang)
    if command == "show":
        return _cmd_show(args.run_dir, lang)
    if command == "sweep":
        return _cmd_sweep(args)
    return _cmd_tui(args, lang)


def _cmd_tui(args: argparse.Namespace, lang: str) -> int:
    name: str | None = None
    cfg: LabConfig | None = None
    if args.top_preset or args.top_overrides or args.top_device:
        name, cfg = _build_config(args.top_preset, args.top_overrides, device=args.top_device)
    from tui_lab.ui.app import run_app

    with _finish_runs_on_hangup():
        return run_app(preset_name=name, cfg=cfg, lang=lang)


def _cmd_run(args: argparse.Namespace, lang: str) -> int:
    name, cfg = _config_for_subcommand(args)
    from tui_lab.headless import run_headless

    return run_headless(name, cfg, out=args.out, force=args.force, lang=lang)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from tui_lab.core.errors import UserError

    name, cfg = _config_for_subcommand(args)
    if not args.grid:
        raise UserError("sweep: give at least one --grid KEY=V1,V2,... (e.g. --grid model.activation=sigmoid,relu)")
    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be at least 1")
    grid = [parse_grid(item) for item in args.grid]
    keys = [key for key, _ in grid]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise UserError(f"--grid {repeated[0]}: given more than once; list all its values in one --grid")
    check_grid(cfg, grid)
    from tui_lab.sweep import run_sweep

    return run_sweep(name, cfg, grid=grid, jobs=args.jobs, out=args.out)


def _cmd_presets(lang: str) -> int:
    from tui_lab.core import presets

    refs = presets.discover(warn=_warn)
    if not refs:
        _warn(f"no presets found in {presets.bundled_dir()} or {presets.user_dir()}")
        return 0
    width = max(len(name) for name in refs)
    for name, ref in refs.items():
        title = presets.read_title(ref.path, lang)
        marker = ""
        if ref.source == "user":
            marker = "  [user, overrides bundled]" if ref.overrides_bundled else "  [user]"
        print(f"{name:<{width}}  {title}{marker}".rstrip())
    return 0


def _cmd_show(run_dir: Path, lang: str) -> int:
    from tui_lab.core.errors import UserError

    if not run_dir.exists():
        raise UserError(f"{run_dir}: no such directory")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory; `tui-lab show` takes a run directory")
    if not (run_dir / "config.toml").is_file():
        raise UserError(f"{run_dir}: not a run directory (no config.toml); make one with `tui-lab run ... --out DIR`")
    from tui_lab.ui.app import run_app

    with _finish_runs_on_hangup():
        return run_app(show_dir=run_dir, lang=lang)


# ---------------------------------------------------------------------------------------------------------
# Building a validated configuration from a preset and the command line.


def _config_for_subcommand(args: argparse.Namespace) -> tuple[str, LabConfig]:
    # Top-level --set come first, so the subcommand's own options win where both name a key.
    return _build_config(
        args.preset,
        [*args.top_overrides, *args.overrides],
        steps=args.steps,
        seed=args.seed,
        device=args.device or args.top_device,
    )


def _build_config(
    spec: str | None,
    overrides: list[str],
    *,
    steps: str | None = None,
    seed: str | None = None,
    device: str | None = None,
) -> tuple[str | None, LabConfig]:
    """Load the preset (or the defaults), then apply --set, then the named flags, each validated."""
    from tui_lab.core.config import default_config, with_overrides
    from tui_lab.core.presets import load_preset

    name: str | None = None
    if spec:
        name, cfg = load_preset(spec, warn=_warn)
    else:
        cfg = default_config()
    cfg = with_overrides(cfg, overrides, source="--set")
    # Each flag is its own source so an error names the flag the user typed (`--steps: train.steps = -5 ...`).
    for flag, key, value in (("--steps", "train.steps", steps), ("--seed", "seed", seed),
                             ("--device", "train.device", device)):  # fmt: skip
        if value is not None:
            cfg = with_overrides(cfg, [f"{key}={value}"], source=flag)
    return name, cfg


def parse_grid(item: str) -> tuple[str, list[str]]:
    """'model.activation=sigmoid,relu' -> ('model.activation', ['sigmoid', 'relu']).

    Values stay as typed (each one a valid `--set` value); `check_grid` validates them against the schema.
    """
    from tui_lab.core.errors import UserError

    key, sep, text = item.partition("=")
    key = key.strip()
    values = [v.strip() for v in text.split(",")]
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"--grid {item!r}: expected KEY=V1,V2,..., e.g. --grid model.activation=sigmoid,relu")
    if any(not v for v in values):
        raise UserError(f"--grid {item!r}: empty value; separate values with single commas")
    if len(set(values)) != len(values):
        raise UserError(f"--grid {item!r}: a value is listed twice")
    return key, values


def check_grid(cfg: LabConfig, grid: list[tuple[str, list[str]]]) -> None:
    """Build every configuration of the grid over `cfg` and raise the first one's problem.

    Combinations, not single values: values can be fine together and not alone (model.arch=lstm needs
    data.name=adding or copy), or the reverse. Validation costs microseconds; a grid large enough for it to
    matter could never be trained anyway.
    """
    import itertools

    from tui_lab.core.config import with_overrides

    for combo in itertools.product(*(values for _, values in grid)):
        sets = [f"{key}={value}" for (key, _), value in zip(grid, combo)]
        with_overrides(cfg, sets, source="--grid " + " ".join(sets))


# ---------------------------------------------------------------------------------------------------------
# Output helpers.


@contextlib.contextmanager
def _finish_runs_on_hangup():
    """While the TUI is up, SIGHUP (the SSH connection dropped) or SIGTERM stops any training run, waits
    for its run directory to be complete (summary: stopped), then leaves. The terminal may be gone, so
    nothing is drawn: the process exits at once with the conventional 128 + signal number."""

    saved_tty = None
    try:
        import termios

        saved_tty = termios.tcgetattr(sys.stdin.fileno()) if sys.stdin.isatty() else None
    except (ImportError, OSError, ValueError):
        pass

    def on_signal(signum, frame):  # noqa: ARG001
        from tui_lab.core.trainer import stop_all

        stop_all(timeout=5.0)
        if signum == signal.SIGTERM:
            # The terminal is still there: leave the alternate screen, show the cursor, stop mouse reports,
            # and put back the terminal modes it had before the app started.
            try:
                os.write(sys.__stderr__.fileno(), b"\x1b[?1000l\x1b[?1003l\x1b[?1006l\x1b[?25h\x1b[?1049l")
                if saved_tty is not None:
                    import termios

                    termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved_tty)
            except (OSError, ValueError):
                pass
        os._exit(128 + signum)

    from tui_lab.signals import HANGUP_SIGNALS, handlers_installed

    with handlers_installed(dict.fromkeys(HANGUP_SIGNALS, on_signal)):
        yield


def _error(message: str) -> None:
    for line in message.splitlines() or [""]:
        print(f"{PROG}: {line}", file=sys.stderr)


def _warn(message: str) -> None:
    _error(f"warning: {message}")


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)  # sys.exit("message") convention
    return 1
