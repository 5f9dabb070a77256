"""The ``gantk`` command line.

    gantk list-plugins [--json] [--wide]     every installed component, broken plugins included
    gantk show NAME                          a component's options, types, defaults
    gantk check STACK.toml [--set k=v]       validate and print the resolved stack
    gantk train STACK.toml --out RUN_DIR     train (resumes when RUN_DIR has checkpoints)
    gantk sample RUN_DIR --n 64 --out grid.png [--with advlat_z] [--with-set advlat_z.steps=50]
                 [--truncation 0.7] [--class K] [--seeds 0-63 --outdir DIR]
    gantk eval RUN_DIR / gantk plot RUN_DIR  see docs/metrics.md
    gantk fid A B / gantk fid-stats SRC OUT.npz   FID of folders, archives, runs, data sets, .npz
    gantk interpolate RUN_DIR --out grid.png [--pairs 4 --steps 8]   decode codes between real images
    gantk sweep SWEEP.toml --out DIR [--jobs N]   stacks x options x seeds -> mean +- std (docs/sweeps.md)
    gantk interpolate RUN_DIR --seeds 1,2,3 --steps 8 --out walk.gif  [--mode slerp] [--space w]

Errors are one paragraph naming the place and the fix, exit status 2 (3 for a stopped run);
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..base.errors import GantkError
from .commands import (cmd_check, cmd_interpolate, cmd_list_plugins, cmd_sample, cmd_show,
                       cmd_train)
from .common import err_console
from .version import version_text


# ---------------------------------------------------------------------------- parser

def _global_flags(*, top: bool) -> argparse.ArgumentParser:
    """``--debug``, ``--strict`` and ``-p no:NAME``, accepted before and after the subcommand.

    argparse parses a subcommand's flags into a fresh namespace and copies every value over the
    top level's, defaults included. So the subcommands' copies have no defaults (SUPPRESS: a flag
    not given after the subcommand leaves the top level's value alone), and ``-p`` after the
    subcommand collects into its own list, which :func:`gantk.cli.common.plugin_opts` joins to the top level's.
    """
    parser = argparse.ArgumentParser(add_help=False)
    default = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("--debug", action="store_true", help="show tracebacks", **default)
    parser.add_argument("--strict", action="store_true",
                        help="fail on a broken plugin (also GANTK_STRICT=1)", **default)
    parser.add_argument("-p", dest="plugin_opts" if top else "plugin_opts_after", action="append",
                        metavar="no:NAME", **default,
                        help="disable a plugin by entry-point name (also GANTK_DISABLE_PLUGINS)")
    return parser


def _version_text() -> str:
    return version_text()


def build_parser() -> argparse.ArgumentParser:
    from . import sample_cmd as cli_sample

    common = _global_flags(top=False)
    stack = argparse.ArgumentParser(add_help=False)
    stack.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a spec value, e.g. --set train.steps=500 (repeatable)")

    parser = argparse.ArgumentParser(prog="gantk", parents=[_global_flags(top=True)],
                                     description="Stack latent-space GAN methods onto any backbone.")
    parser.add_argument("--version", action="version", version=_version_text(),
                        help="print gantk's, torch's and Python's versions and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list-plugins", parents=[common], help="list installed components")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--wide", action="store_true",
                   help="every column (plugin, version, paper) and whole summaries")
    p.set_defaults(func=cmd_list_plugins)

    p = sub.add_parser("show", parents=[common], help="show a component's options")
    p.add_argument("name")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("check", parents=[common, stack], help="validate a stack file")
    p.add_argument("stack", help="STACK.toml")
    p.add_argument("--json", action="store_true", help="print the resolved stack as JSON")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("train", parents=[common, stack], help="train a stack (resumes RUN_DIR)")
    p.add_argument("stack", help="STACK.toml")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--steps", type=int, help="same as --set train.steps=N")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: the spec's train.device)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.add_argument("--fork-from", metavar="RUN[/ckpt]",
                   help="start --out (a new directory) from this run's newest checkpoint (or a "
                        "checkpoint file) with the stack's train.* settings, e.g. a lower lr")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", parents=[common], help="sample from a trained run")
    p.add_argument("run", help="RUN_DIR or a checkpoint file")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", help="grid.png, samples.npz or samples.pt")
    p.add_argument("--with", dest="with_", action="append", metavar="NAME",
                   help="add a post-training transform, e.g. --with advlat_z (repeatable)")
    p.add_argument("--with-set", action="append", metavar="NAME.KEY=VALUE",
                   help="an option of a --with transform, e.g. advlat_z.steps=50")
    p.add_argument("--step", type=int, help="use the checkpoint of this step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, ...")
    cli_sample.add_sample_arguments(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", parents=[common],
                       help="decode codes interpolated between pairs of real images")
    p.add_argument("run", help="RUN_DIR or a checkpoint file")
    p.add_argument("--out", required=True, help="grid.png: one row per pair, real images (or seeds) "
                   "at both ends; with --seeds also walk.gif or walk.mp4")
    p.add_argument("--pairs", type=int, default=4, help="rows (pairs of real images)")
    p.add_argument("--steps", type=int, default=8, help="decoded images per row, t = 0 .. 1")
    p.add_argument("--step", type=int, help="use the checkpoint of this step")
    p.add_argument("--seed", type=int, default=0, help="which real images are paired")
    p.add_argument("--device", help="cpu, cuda, ...")
    cli_sample.add_interpolate_arguments(p)
    p.set_defaults(func=cmd_interpolate)

    try:
        from . import eval_cmd as cli_eval
    except ImportError:  # pragma: no cover - evaluation module not installed
        cli_eval = None
    if cli_eval is not None:
        cli_eval.add_commands(sub, common)
        from . import plot_cmd as cli_plot

        cli_plot.add_command(sub, common)
        from . import fid_cmd as cli_fid

        cli_fid.add_commands(sub, common)
    from . import sweep_cmd as cli_sweep

    cli_sweep.add_command(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. The last line of defence: whatever goes wrong ends as one paragraph
    (the command, the error, ``--debug`` for the traceback), never a traceback or a
    multi-megabyte message."""
    raw = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in raw
    command = "gantk"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"gantk {args.command}"
        debug = debug or args.debug
        return int(args.func(args) or 0)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - turned into one paragraph below
        if debug:
            raise
        distributed = _distributed()
        if distributed is not None and distributed.world_size() > 1:  # every rank reports
            rank = distributed.rank()
            command = f"{command} [rank {rank}]"
            if isinstance(exc, GantkError):
                exc.message = f"[rank {rank}] {exc.message}"
        return _report(exc, command)
    finally:
        distributed = _distributed()
        if distributed is not None:
            distributed.shutdown()  # leave a torchrun process group cleanly (no-op for one)


def _distributed():
    """gantk's process-group module if this process imported it, else None. Only that module
    starts a process group, so when it was never imported there is none to report on or leave,
    and importing it (and torch) here would cost --help, errors in the arguments and a Ctrl-C
    during start-up 2 s, or a traceback from a half-imported torch."""
    return sys.modules.get("gantk.train.distributed")


def _report(exc: BaseException, command: str) -> int:
    """Print ``exc`` as one paragraph (at most ~2000 characters); return the exit status."""
    from rich.text import Text

    from ..base.safeio import os_error, trim
    from ..train.signals import Interrupted

    def say(head: str, style: str, text: str) -> None:
        err_console.print(Text.assemble((head, style), " " + trim(text, 2000)),
                          highlight=False, soft_wrap=True)

    if isinstance(exc, Interrupted):
        say("stopped:", "yellow", exc.paragraph())
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        say("interrupted:", "yellow", f"`{command}` stopped by Ctrl-C or SIGTERM. Files gantk "
            "writes are replaced atomically, so nothing is half-written and the newest checkpoint "
            "of a run directory is intact; run the same command again to go on.")
        return 130
    if isinstance(exc, BrokenPipeError):  # `gantk list-plugins | head`: the reader has had enough
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        return 0
    if isinstance(exc, GantkError):
        say("error", "bold red", f"({type(exc).__name__}): {exc.paragraph()}")
        return exc.exit_code
    if isinstance(exc, OSError):
        err = os_error(exc, exc.filename or "(unnamed file)", f"complete `{command}`")
        say("error", "bold red", f"({type(err).__name__}): {err.paragraph()}")
        return err.exit_code
    if not isinstance(exc, Exception):  # GeneratorExit and the like: not ours to swallow
        raise exc
    say("error", "bold red", f"`{command}` failed with an unexpected {type(exc).__name__}: "
        f"{trim(exc, 500)}. This is a case gantk's checks do not cover yet; checkpoints already "
        "written are untouched. Run the same command with --debug to see the traceback.")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
