"""The `tui-lab` command line (README: Usage): open the TUI, run headless, list presets, show a run, sweep.

Start-up cost matters here: `tui-lab --version` must answer without loading torch, pydantic or Textual, so
this module imports only the standard library at the top. Everything heavier (even tui_lab.core.config, which
brings pydantic) is imported inside the function that needs it.

Exit codes: 0 when the work ended (a diverged or user-stopped run included), 2 for bad input (a config, an
argument, a path), 1 for an internal failure, 130 for Ctrl-C outside a run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_lab import __version__
from tui_lab.core.fmt import printable  # re and math only
from tui_lab.core.i18n import N_, _  # the standard library's gettext only

if TYPE_CHECKING:
    from tui_lab.core.config import LabConfig

PROG = "tui-lab"
DEBUG_ENV = "TUI_LAB_DEBUG"
# What a shell reports for a process killed by SIGPIPE (e.g. `tui-lab presets | head -1`), like `cat` would.
EXIT_BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tui-lab` console script; returns the exit code. Every word it prints, --help and
    argparse's own included, is in the language of --lang (or the locale), set before the parser is built."""
    from tui_lab.core import i18n

    args = list(sys.argv[1:] if argv is None else argv)
    previous = i18n.language()
    i18n.set_language(_early_language(args))
    try:
        with _argparse_translated():
            return _main(args)
    finally:
        i18n.set_language(previous)  # as it was: main() called in-process (tests) leaves nothing behind
        if argv is None:  # the console script, about to exit: its work is written
            _quiet_exit()


def _quiet_exit() -> None:
    """A Ctrl-C while the interpreter winds down (torch's clean-up takes a moment) ends it as it is, without a
    KeyboardInterrupt traceback from some finaliser: every run directory is already finished by then."""
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    except (ValueError, OSError):  # not the main thread
        pass


def _main(argv: list[str]) -> int:
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
    except OSError as exc:  # a full disk, a permission, a name too long: the user's to fix, one line naming the path
        from tui_lab.core.errors import one_line, os_error_line, user_side

        if _debug():
            import traceback

            traceback.print_exc()
        if user_side(exc):
            _error(os_error_line(exc))
            return 2
        _error(_("internal error: {error}").format(error=one_line(exc)))
        if not _debug():
            _error(_("rerun with {variable}=1 to see the traceback").format(variable=DEBUG_ENV))
        return 1
    except Exception as exc:  # noqa: BLE001 - the last resort: one line (or the traceback with TUI_LAB_DEBUG)
        from tui_lab.core.errors import UserError, one_line

        if _debug():
            import traceback

            traceback.print_exc()
        if isinstance(exc, UserError):
            _error(str(exc))
            return 2
        _error(_("internal error: {error}").format(error=one_line(exc)))
        if not _debug():
            _error(_("rerun with {variable}=1 to see the traceback").format(variable=DEBUG_ENV))
        return 1


def _early_language(argv: list[str]) -> str:
    """The language --lang asks for (anywhere on the line), else the locale's: known before the parser is built,
    so that its help is in that language. A bad --lang is left to the parser's own check (`_dispatch`)."""
    from tui_lab.core.errors import UserError
    from tui_lab.core.i18n import pick_language

    requested = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(argv):
            requested = argv[i + 1]
        elif arg.startswith("--lang="):
            requested = arg.partition("=")[2]
    try:
        return pick_language(requested)
    except UserError:
        return pick_language(None)


# argparse's own words (usage:, options, its error messages), in the catalogue so they are translated too.
ARGPARSE_WORDS = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("not allowed with argument %s"),
    N_("ignored explicit argument %r"),
)


@contextmanager
def _argparse_translated() -> Iterator[None]:
    """argparse looks its words up with the gettext functions it imported (`argparse._`): in another language
    than English they are ours for the time of the command, then put back."""
    from tui_lab.core import i18n

    if i18n.language() == i18n.DEFAULT_LANGUAGE:
        yield
        return
    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    argparse._, argparse.ngettext = i18n._, i18n.ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------------
# The parser.


def build_parser() -> argparse.ArgumentParser:
    # Options several subcommands share, declared once. Their values are kept as strings: they go through the
    # config's own validation, so `--steps -5` is explained like a bad value in a file, not by argparse.
    overrides = argparse.ArgumentParser(add_help=False)
    overrides.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=_("override a config key, e.g. --set model.depth=20 (repeatable)"),
    )
    overrides.add_argument("--steps", metavar="N", help=_("training steps (train.steps)"))
    overrides.add_argument("--seed", metavar="S", help=_("random seed (seed)"))
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("--device", metavar="D", help=_("auto, cpu, cuda, cuda:N or mps"))
    # SUPPRESS: `tui-lab --lang pt presets` and `tui-lab presets --lang pt` both work.
    lang = argparse.ArgumentParser(add_help=False)
    lang.add_argument("--lang", default=argparse.SUPPRESS, metavar="L", help=_("language of every word shown: en, pt"))

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_(
            "A terminal laboratory for vanishing and exploding gradients. Without a subcommand, opens the TUI."
        ),
        epilog=_("Exit codes: 0 run ended (completed, diverged or stopped), 2 bad input, 1 internal error."),
    )
    parser.add_argument(
        "--version", action="version", version=f"{PROG} {__version__}", help=_("show program's version number and exit")
    )
    # Top-level options get their own names: a subcommand's namespace (its NAME|PATH, --set, --device) would
    # otherwise overwrite them.
    parser.add_argument("--preset", dest="top_preset", metavar="NAME|PATH", help=_("open the TUI with this preset"))
    parser.add_argument(
        "--set",
        dest="top_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=_("override a config key, e.g. --set model.depth=20 (repeatable)"),
    )
    parser.add_argument("--device", dest="top_device", metavar="D", help=_("auto, cpu, cuda, cuda:N or mps"))
    parser.add_argument("--lang", default=None, metavar="L", help=_("language of every word shown: en, pt"))
    ascii_help = _("draw with 7-bit ASCII only (also TUI_LAB_ASCII=1; automatic on a terminal that is not UTF-8)")
    parser.add_argument("--ascii", action="store_true", help=ascii_help)

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    preset = _("a preset name (see `tui-lab presets`) or a TOML file")

    run = sub.add_parser(
        "run", parents=[overrides, device, lang], help=_("train a preset headless, printing progress lines")
    )
    run.add_argument("preset", metavar="NAME|PATH", help=preset)
    run.add_argument("--out", type=_path_arg("--out"), metavar="DIR", help=_("write the run directory here"))
    run.add_argument("--force", action="store_true", help=_("overwrite DIR if it already holds a run"))

    sub.add_parser("presets", parents=[lang], help=_("list the presets with their titles"))

    show = sub.add_parser("show", parents=[lang], help=_("open a finished or running run directory in the TUI"))
    show.add_argument(
        "run_dir", type=_path_arg("show"), metavar="DIR", help=_("a run directory (holds config.toml), or a sweep's")
    )
    show.add_argument("--ascii", action="store_true", default=argparse.SUPPRESS, help=ascii_help)

    export = sub.add_parser("export", parents=[lang], help=_("a run directory as CSV or TensorBoard event files"))
    export.add_argument("run_dir", type=_path_arg("export"), metavar="DIR", help=_("a run directory"))
    export.add_argument("--format", required=True, choices=("csv", "tensorboard"), help=_("csv or tensorboard"))
    out_help = _("where to write (default: inside DIR)")
    export.add_argument("--out", type=_path_arg("--out"), metavar="PATH", help=out_help)

    sweep = sub.add_parser(
        "sweep", parents=[overrides, device, lang], help=_("train every combination of a grid of config values")
    )
    sweep.add_argument("preset", metavar="NAME|PATH", help=preset)
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help=_("a config key and the values to try, e.g. --grid model.activation=sigmoid,relu (repeatable)"),
    )
    sweep.add_argument("--jobs", type=int, default=1, metavar="J", help=_("runs in parallel (default 1)"))
    sweep.add_argument(
        "--out", type=_path_arg("--out"), metavar="DIR", help=_("write the run directories and summary here")
    )
    sweep.add_argument(
        "--devices",
        metavar="D1,D2,...",
        help=_("train on these devices, one run on each at a time: cuda:0,cuda:1 (cpu may repeat); not with --jobs"),
    )
    sweep.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help=_(
            "each run a Ray task: on a new Ray instance here with --jobs CPUs, or on the cluster at ADDRESS "
            "(HOST:PORT, auto); needs pip install 'tui-lab[ray]'"
        ),
    )

    serve = sub.add_parser(
        "serve", parents=[lang], help=_("the lab in a web browser (textual-serve): each tab is its own lab")
    )
    serve.add_argument("preset", nargs="?", metavar="NAME|PATH", help=_("open every tab with this preset loaded"))
    serve.add_argument(
        "--host", default="127.0.0.1", metavar="H", help=_("address to listen on (default 127.0.0.1: this machine)")
    )
    serve.add_argument(
        "--port", type=int, default=8000, metavar="P", help=_("port to listen on (default 8000; 0 picks a free one)")
    )
    serve.add_argument(
        "--token",
        metavar="T",
        help=_("the token the URL must carry (also TUI_LAB_SERVE_TOKEN); generated when --host is not local"),
    )
    return parser


# ---------------------------------------------------------------------------------------------------------
# The commands.


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from tui_lab.core.i18n import pick_language

    command = args.command
    if command and args.top_preset:
        parser.error(
            _("--preset opens the TUI; with `{command}`, name the preset after the subcommand").format(command=command)
        )
    if command in ("presets", "show", "export", "serve") and (args.top_overrides or args.top_device):
        parser.error(_("--set and --device do not apply to `{command}`").format(command=command))
    lang = pick_language(args.lang)

    if command == "run":
        return _cmd_run(args, lang)
    if command == "presets":
        return _cmd_presets(lang)
    if command == "show":
        return _cmd_show(args.run_dir, lang, args.ascii)
    if command == "sweep":
        return _cmd_sweep(args)
    if command == "serve":
        return _cmd_serve(args, lang)
    if command == "export":
        from tui_lab.export import export

        print(export(args.run_dir, args.format, args.out))
        return 0
    return _cmd_tui(args, lang)


def _cmd_tui(args: argparse.Namespace, lang: str) -> int:
    name: str | None = None
    cfg: LabConfig | None = None
    if args.top_preset is not None or args.top_overrides or args.top_device is not None:  # '' is refused, not ignored
        name, cfg = _build_config(args.top_preset, args.top_overrides, device=args.top_device)
        _refuse_missing_device(cfg, args.top_device, args.top_overrides, args.top_preset)  # before the TUI opens
        _refuse_over_budget(cfg)
    from tui_lab.ui.app import run_app

    return run_app(preset_name=name, cfg=cfg, lang=lang, ascii=args.ascii)


def _cmd_run(args: argparse.Namespace, lang: str) -> int:
    name, cfg = _config_for_subcommand(args)
    _refuse_missing_device(cfg, _device_flag(args), [*args.top_overrides, *args.overrides], args.preset)
    _refuse_over_budget(cfg)
    from tui_lab.headless import run_headless

    return run_headless(name, cfg, out=args.out, force=args.force, lang=lang)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from tui_lab.core.errors import UserError
    from tui_lab.sweep import on_device, parse_grid, run_sweep

    name, cfg = _config_for_subcommand(args)
    grid = parse_grid(args.grid)
    if args.jobs < 1:
        raise UserError(_("--jobs {jobs}: must be at least 1").format(jobs=args.jobs))
    devices = _sweep_devices(args, grid)
    if args.ray is not None:  # before any device or memory check: whether Ray is there, and the address's shape
        from tui_lab.sweep_ray import check_address, require_ray

        require_ray()
        check_address(args.ray)
    remote = args.ray not in (None, "local")  # the cluster's machines train: this one's devices and memory do not count
    if devices:
        for device in dict.fromkeys(devices):  # every configuration fits on every device it may land on
            _refuse_over_budget_grid(on_device(cfg, device), grid)
    elif not remote:
        if not any(key == "train.device" for key, _values in grid):  # else run_sweep checks each --grid device
            _refuse_missing_device(cfg, _device_flag(args), [*args.top_overrides, *args.overrides], args.preset)
        _refuse_over_budget_grid(cfg, grid)
    backend = {"devices": devices} if devices else {"ray": args.ray} if args.ray is not None else {}
    return run_sweep(name, cfg, grid=grid, jobs=args.jobs, out=args.out, **backend)


def _sweep_devices(args: argparse.Namespace, grid: list[tuple[str, list[str]]]) -> list[str] | None:
    """--devices, parsed and checked against what it cannot be combined with (--jobs, --ray, another device)."""
    from tui_lab.core.errors import UserError
    from tui_lab.sweep import check_device_list, devices_conflict, parse_devices

    if args.devices is None:
        return None
    devices = parse_devices(args.devices)
    if args.jobs > 1:
        raise UserError(_("--jobs and --devices: --devices runs one run per device at a time; give one of them"))
    if args.ray is not None:
        raise UserError(devices_conflict("--ray"))
    flag = _device_flag(args)
    if flag is not None:
        raise UserError(devices_conflict(f"--device {flag}"))
    for item in [*args.top_overrides, *args.overrides]:
        if item.partition("=")[0].strip() == "train.device":
            raise UserError(devices_conflict(f"--set {item}"))
    check_device_list(devices, grid)
    return devices


def _cmd_serve(args: argparse.Namespace, lang: str) -> int:
    from tui_lab.serve import check_port, pick_token, serve

    check_port(args.port)
    if args.preset is not None:  # a bad preset is one line here, not an app failing in every tab
        _build_config(args.preset, [])
    token = pick_token(args.host, args.token)
    return serve(args.host, args.port, lang=lang, preset=args.preset, token=token, warn=_warn)


def _cmd_presets(lang: str) -> int:
    from tui_lab.core import presets

    refs = presets.discover(warn=_warn)
    if not refs:
        _warn(
            _("no presets found in {bundled} or {user}").format(bundled=presets.bundled_dir(), user=presets.user_dir())
        )
        return 0
    width = max(len(name) for name in refs)
    for name, ref in refs.items():
        title = printable(presets.read_title(ref.path, lang))  # a file's title: no escape reaches the terminal
        marker = ""
        if ref.source == "user":
            marker = "  " + (_("[user, overrides bundled]") if ref.overrides_bundled else _("[user]"))
        print(f"{printable(name):<{width}}  {title}{marker}".rstrip())
    return 0


def _cmd_show(run_dir: Path, lang: str, ascii: bool = False) -> int:
    from tui_lab.core.errors import UserError, os_error_line

    try:
        run_dir.stat()
    except FileNotFoundError:
        raise UserError(_("{path}: no such directory").format(path=run_dir)) from None
    except OSError as exc:  # a parent without search permission, a name too long
        raise UserError(os_error_line(exc, run_dir)) from None
    if not run_dir.is_dir():
        raise UserError(_("{path}: not a directory; `tui-lab show` takes a run directory").format(path=run_dir))
    from tui_lab.core.sweepdir import is_sweep_dir

    if is_sweep_dir(run_dir):  # a sweep's directory: its table, live (ui/sweep_screen.py)
        from tui_lab.ui.app import run_app

        return run_app(sweep_dir=run_dir, lang=lang, ascii=ascii)
    from tui_lab.core.runlog import check_run_dir

    check_run_dir(run_dir)  # unreadable, or a file that is a FIFO or a device: one line, before the TUI opens
    if not os.path.lexists(run_dir / "config.toml") and not os.path.lexists(run_dir / "model.toml"):  # watch: model
        message = _("{path}: not a run directory (no config.toml); make one with `tui-lab run ... --out DIR`")
        raise UserError(message.format(path=run_dir))
    from tui_lab.ui.app import run_app

    return run_app(show_dir=run_dir, lang=lang, ascii=ascii)


# ---------------------------------------------------------------------------------------------------------
# Building a validated configuration from a preset and the command line.


def _config_for_subcommand(args: argparse.Namespace) -> tuple[str, LabConfig]:
    # Top-level --set come first, so the subcommand's own options win where both name a key.
    return _build_config(
        args.preset,
        [*args.top_overrides, *args.overrides],
        steps=args.steps,
        seed=args.seed,
        device=_device_flag(args),
    )


def _device_flag(args: argparse.Namespace) -> str | None:
    """The subcommand's --device, else the top-level one; '' counts as given (and is refused), not as absent."""
    return args.device if args.device is not None else args.top_device


def _path_arg(flag: str):
    """An argparse type for a path: '' is refused (Path('') would mean the current directory) and `~user` is
    expanded here, so that an unknown user is one line, not pathlib's RuntimeError."""

    def convert(text: str) -> Path:
        from tui_lab.core.errors import UserError

        if not text.strip():
            raise UserError(_("{flag} {path}: an empty path; name a directory").format(flag=flag, path=repr(text)))
        try:
            return Path(text).expanduser()
        except RuntimeError:
            user = text[1:].split("/", 1)[0]
            raise UserError(_("{path}: no user named {user} for ~{user}").format(path=text, user=user)) from None

    return convert


def _build_config(
    spec: str | None,
    overrides: list[str],
    *,
    steps: str | None = None,
    seed: str | None = None,
    device: str | None = None,
) -> tuple[str | None, LabConfig]:
    """Load the preset (or the defaults), then apply --set, then the named flags, each validated."""
    from tui_lab.core.config import LabConfig, run_name, with_overrides
    from tui_lab.core.presets import load_preset

    name: str | None = None
    if spec is not None:  # '' is refused by load_preset, not taken for "no preset"
        name, cfg = load_preset(spec, warn=_warn)
    else:
        cfg = LabConfig()
    preset_cfg = cfg
    cfg = with_overrides(cfg, overrides, source="--set")
    # Each flag is its own source so an error names the flag the user typed (`--steps: train.steps = -5 ...`).
    for flag, key, value in (
        ("--steps", "train.steps", steps),
        ("--seed", "seed", seed),
        ("--device", "train.device", device),
    ):
        if value is not None:
            cfg = with_overrides(cfg, [f"{key}={value}"], source=flag)
    if name is not None:  # named after what was changed: deep-sigmoid+relu+steps=200
        name = run_name(name, preset_cfg, cfg)
    return name, cfg


def _refuse_over_budget(cfg: LabConfig, where: str = "", **options: Any) -> None:
    """A configuration that needs more memory than its device has free is refused before anything is allocated
    or written (core/budget.py): one line with the estimate, what is free and which keys to lower."""
    from tui_lab.core.budget import check
    from tui_lab.core.errors import UserError

    why = check(cfg, **options)
    if why is not None:
        raise UserError(f"{where}: {why}" if where else why)


def _refuse_over_budget_grid(cfg: LabConfig, grid: list[tuple[str, list[str]]]) -> None:
    """Every configuration of a sweep fits, checked before the sweep writes anything; the line names the
    first one that does not by its --grid values. Free memory is read once per device, and a GPU is asked from
    a child process: this process only hands runs to its workers and must not hold a CUDA context."""
    from tui_lab.core.budget import matters
    from tui_lab.core.config import with_overrides
    from tui_lab.sweep import plan

    free: dict[str, int | None] = {}
    sizes = [(key, values if matters(key) else values[:1]) for key, values in grid]  # lr, seed...: one value will do
    for run in plan(sizes):
        overrides = run.overrides
        where = " ".join(overrides)
        _refuse_over_budget(
            with_overrides(cfg, overrides, source="--grid " + where), where, free_cache=free, apart=True
        )


def _refuse_missing_device(cfg: LabConfig, flag: str | None, overrides: list[str], spec: str | None) -> None:
    """A device this machine does not have is bad input, refused before anything starts (the TUI never opens,
    no run directory is made): one line naming where it was asked for (--device, a --set, the preset file)
    and what is available. torch is imported only when that is the only way to know (core/devices.py)."""
    from tui_lab.core.devices import problem
    from tui_lab.core.errors import UserError

    device = cfg.train.device
    why = problem(device)
    if why is None:
        return
    if flag is not None:
        where = f"--device {flag}"
    elif any(item.partition("=")[0].strip() == "train.device" for item in overrides):
        where = f"--set train.device={device}"
    elif spec:
        where = f'{spec}: train.device = "{device}"'
    else:
        where = f'train.device = "{device}"'
    raise UserError(f"{where}: {why}")


# ---------------------------------------------------------------------------------------------------------
# Output helpers.


def _error(message: str) -> None:
    for line in message.splitlines() or [""]:  # errors quote files and values: no escape reaches the terminal
        print(f"{PROG}: {printable(line)}", file=sys.stderr)


def _warn(message: str) -> None:
    _error(_("warning: {message}").format(message=message))


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)  # sys.exit("message") convention
    return 1
