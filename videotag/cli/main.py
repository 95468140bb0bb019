"""The `videotag` command: `videotag <command> [flags]`, or `python -m videotag <command>`.

Each command is a module of this package whose docstring's first line says what it
does, with a `define_flags()` that defines its absl flags and a `main(argv)` that
returns the exit status (and optionally a `parse_flags(argv)`, absl's flags parser,
for commands that take other arguments too: the batch commands' Beam options). Only
the chosen command's flags are defined, so commands share flag names (`--model_dir`)
and `videotag <command> --help` lists that command's flags alone. `tools/<name>.py`
call `run_command` with the same command.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from absl import app, flags

from videotag.cli import run

# command -> module of videotag.cli, in the order of the usage text
COMMANDS = {
    "train": "train",
    "eval": "eval",
    "export": "export",
    "predict": "predict",
    "timeline": "timeline",
    "extract": "extract",
    "embed": "embed",
    "similar": "similar",
    "build-index": "build_index",
    "make-demo-videos": "make_demo_videos",
    "make-text-preset": "make_text_preset",
    "validate-data": "validate_data",
    "batch-extract": "batch_extract",
    "batch-predict": "batch_predict",
    "batch-embed": "batch_embed",
}
# absl's short-help flags, answered here with the command's own docstring and flags
_HELP = {"-h", "-?", "--help", "-help", "--helpshort", "-helpshort"}
_defined: set[str] = set()


def command_module(name: str) -> ModuleType:
    """The module of command `name` (a key of `COMMANDS`); its flags are not defined."""
    return importlib.import_module(f"videotag.cli.{COMMANDS[name]}")


def summary(name: str) -> str:
    """The one-line description of command `name`: its module docstring's first line."""
    return (command_module(name).__doc__ or "").strip().splitlines()[0]


def usage(prog: str = "videotag") -> str:
    """The text of `videotag --help`: the commands, one line each."""
    width = max(map(len, COMMANDS))
    lines = [f"usage: {prog} <command> [flags]",
             "",
             "Video classification on YouTube-8M-style features.",
             "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary(name)}" for name in COMMANDS]
    lines += ["", f"`{prog} <command> --help` lists the flags of a command."]
    return "\n".join(lines)


def command_help(name: str) -> str:
    """The text of `videotag <name> --help`: the command's docstring and its flags."""
    module = command_module(name)
    return (f"{module.__doc__.strip()}\n\nflags:\n\n"
            f"{flags.FLAGS.module_help(module.__name__).strip()}\n\n"
            "Try --helpfull to get a list of all flags.")


def run_command(name: str, argv: list[str] | None = None) -> None:
    """Runs command `name` with its flags parsed from `argv` and exits with its status.

    Args:
        name: a key of `COMMANDS`.
        argv: the program name, then the command's flags and arguments; default
            `sys.argv` (as for `python tools/train.py ...`).
    """
    module = command_module(name)
    if name not in _defined:
        module.define_flags()
        _defined.add(name)
    argv = list(sys.argv if argv is None else argv)
    args = argv[1:]
    if "--" in args:
        args = args[:args.index("--")]
    if _HELP.intersection(args):
        print(command_help(name))
        sys.exit(0)
    app.run(run(module.main), argv=argv,
            flags_parser=getattr(module, "parse_flags", app.parse_flags_with_usage))


def main(argv: list[str] | None = None) -> None:
    """The `videotag` console script and `python -m videotag`: dispatches to a command.

    `videotag --help` (or `videotag help`) prints the commands; `videotag help
    <command>` the flags of one. A missing or unknown command prints `error: ...` and
    exits with status 1.
    """
    argv = list(sys.argv if argv is None else argv)
    prog = os.path.basename(argv[0]) if argv else "videotag"
    if prog in ("__main__.py", ""):
        prog = "python -m videotag"
    if len(argv) < 2:
        print(usage(prog), file=sys.stderr)
        print(f"\nerror: give a command: {', '.join(COMMANDS)}", file=sys.stderr)
        sys.exit(1)
    name, rest = argv[1], argv[2:]
    if name in _HELP or name == "help":
        if name == "help" and rest:
            name, rest = rest[0], ["--help"]
        else:
            print(usage(prog))
            sys.exit(0)
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; the commands: {', '.join(COMMANDS)} "
              f"(see {prog} --help)", file=sys.stderr)
        sys.exit(1)
    run_command(name, [f"{prog} {name}", *rest])
