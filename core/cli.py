"""The ``gantk`` command line.

    gantk list-plugins [--json]              every installed component, broken plugins included
    gantk show NAME                          a component's options, types, defaults
    gantk check STACK.toml [--set k=v]       validate and print the resolved stack
    gantk train STACK.toml --out RUN_DIR     train (resumes when RUN_DIR has checkpoints)
    gantk sample RUN_DIR --n 64 --out grid.png [--with advlat_z] [--with-set advlat_z.steps=50]
                 [--truncation 0.7] [--class K] [--seeds 0-63 --outdir DIR]
    gantk eval RUN_DIR / gantk plot RUN_DIR  see docs/metrics.md
    gantk interpolate RUN_DIR --out grid.png [--pairs 4 --steps 8]   decode codes between real images
    gantk sweep SWEEP.toml --out DIR [--jobs N]   stacks x options x seeds -> mean +- std (docs/sweeps.md)
    gantk interpolate RUN_DIR --seeds 1,2,3 --steps 8 --out walk.gif  [--mode slerp] [--space w]

Errors are one paragraph naming the place and the fix, exit status 2 (3 for a stopped run);
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import GantkError, SpecError

console = Console()
err_console = Console(stderr=True)


def _manager(args: argparse.Namespace):
    from .plugins import _env_list, get_plugin_manager

    disabled = _env_list("GANTK_DISABLE_PLUGINS")
    for item in _plugin_opts(args):
        if not item.startswith("no:"):
            raise SpecError(f"cannot read -p {item!r}", where="-p",
                            fix="write -p no:NAME to disable the plugin NAME.")
        disabled.append(item[3:])
    return get_plugin_manager(disabled=disabled, strict=getattr(args, "strict", False) or None)


# ---------------------------------------------------------------------------- commands

def cmd_list_plugins(args: argparse.Namespace) -> int:
    rows = _manager(args).describe()
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    columns = ("name", "kind", "plugin", "version", "paper", "summary")
    cells = []
    for r in rows:
        status = r.get("status", "ok")
        summary = r["summary"] if status == "ok" else f"[{status}] {r['summary']}"
        cells.append((status, [str(c) for c in (r["name"], r["kind"], r["plugin"], r["version"],
                                                r.get("paper", ""), summary)]))
    if not console.is_terminal:  # a pipe or a file: one tab-separated line per component
        print("\t".join(columns))
        for _, row in cells:
            print("\t".join(" ".join(c.split()) for c in row))
        return 0
    table = Table(title="gantk plugins", show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for status, row in cells:
        style = {"broken": "red", "not installed": "yellow"}.get(status)
        table.add_row(*(escape(c) for c in row), style=style)
    console.print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    registry = _manager(args).registry
    if args.name in registry.aliases:
        alias = registry.aliases[args.name]
        console.print(f"[bold]{alias.name}[/]: alias for {' + '.join(alias.expands)}")
        return 0
    entry = registry.entries.get(args.name)
    if entry is None:
        registry.get(args.name, tuple(sorted({e.kind for e in registry.entries.values()})),
                     where="show")
    table = Table(title=f"{entry.kind} {entry.name!r} ({entry.distribution} {entry.version})")
    for col in ("option", "type", "bounds", "default", "description"):
        table.add_column(col, overflow="fold")
    for fname, field in entry.params.model_fields.items():
        default = entry.defaults.get(fname, field.default if not field.is_required() else "(required)")
        ann = (str(field.annotation) if typing.get_origin(field.annotation) is typing.Literal
               else getattr(field.annotation, "__name__", str(field.annotation)))
        table.add_row(fname, ann.replace("typing.", ""), _bounds(field), repr(default),
                      field.description or "")
    if entry.title or entry.paper:
        console.print(f"[bold]{entry.title or entry.name}[/] — {entry.paper}")
    console.print(entry.summary)
    if entry.needs:
        console.print(f"needs: {', '.join(sorted(entry.needs))}")
    console.print(table)
    return 0


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("multiple_of", "multiple of"),
           ("min_length", "length >="), ("max_length", "length <="))


def _bounds(field: Any) -> str:
    """A pydantic field's constraints as ``>= 0, <= 1`` (empty when it has none)."""
    return ", ".join(f"{sign} {getattr(m, attr)}" for m in field.metadata
                     for attr, sign in _BOUNDS if getattr(m, attr, None) is not None)


def _load_pipeline_spec(args: argparse.Namespace):
    from . import build
    from .spec import parse_spec

    spec = parse_spec(args.stack, args.set)
    res = build.resolve(spec, _manager(args).registry)
    build.check_static(res)
    return res


def cmd_check(args: argparse.Namespace) -> int:
    from .pipeline import Pipeline
    from .runs import spec_to_toml

    res = _load_pipeline_spec(args)
    pipe = Pipeline(res.spec, manager=_manager(args), device="cpu")  # build = full validation
    if args.json:
        print(json.dumps(res.spec.to_dict(), indent=2, sort_keys=True))
        return 0
    console.print(f"[green]ok[/]: {res.spec.shorthand}")
    n_g = sum(p.numel() for p in pipe.backbone.generator.parameters())
    n_d = sum(p.numel() for p in pipe.backbone.d_parameters())
    console.print(f"G: {n_g:,} parameters, D: {n_d:,} parameters, "
                  f"components: {[c.entry_name + ':' + type(c).__name__ for c in pipe.components]}")
    console.print(spec_to_toml(res.spec.to_dict()), highlight=False, markup=False)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .pipeline import Pipeline

    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.device:
        overrides.append(f'train.device="{args.device}"')
    pipe = Pipeline.from_spec(args.stack, overrides, manager=_manager(args))
    out = Path(args.out)
    if pipe.world.rank != 0:  # under torchrun rank 0 reports
        pipe.train(out=out, progress=False, fork_from=args.fork_from)
        return 0
    ranks = f" x {pipe.world.size} processes" if pipe.world.size > 1 else ""
    err_console.print(f"training {pipe.spec.shorthand} on {pipe.device}{ranks} -> {out}",
                      markup=False)
    logs = pipe.train(out=out, progress=not args.no_progress, fork_from=args.fork_from)
    summary = "  ".join(f"{k}={v:.4g}" for k, v in logs.items() if k != "it_per_s")
    console.print(f"[green]done[/]: step {pipe.step}  {summary}")
    console.print(f"run directory: {out}  (samples/, checkpoints/, metrics.jsonl, spec.toml)",
                  markup=False)
    return 0


def check_count(value: int, flag: str, high: int) -> int:
    """A count flag (``--n``, ``--pairs``...) within 1..high, or a clear refusal."""
    if not 1 <= value <= high:
        raise SpecError(f"{value} is out of range", where=flag, fix=f"give 1 to {high:,}.")
    return value


def parse_named_options(items: list[str] | None, *, flag: str,
                        example: str) -> dict[str, dict[str, Any]]:
    """``["advlat_z.steps=50", ...]`` -> ``{"advlat_z": {"steps": 50}}`` (values read as TOML)."""
    from .spec import _parse_value

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        name, dot, option = key.strip().partition(".")
        if not sep or not dot or not option:
            raise SpecError(f"cannot read {item!r}", where=flag,
                            fix=f"write {flag} NAME.option=value, e.g. {example}.")
        out.setdefault(name, {})[option] = _parse_value(value.strip())
    return out


def _parse_with(args: argparse.Namespace) -> list[dict[str, Any]]:
    options = parse_named_options(args.with_set, flag="--with-set", example="advlat_z.steps=50")
    names = list(args.with_ or [])
    for name in options:
        if name not in names:
            raise SpecError(f"{name!r} is not given with --with", where="--with-set",
                            fix=f"add --with {name}.")
    return [{"name": n, **options.get(n, {})} for n in names]


def cmd_sample(args: argparse.Namespace) -> int:
    from .cli_sample import sample_command
    from .pipeline import Pipeline

    check_count(args.n, "--n", 1_000_000)
    pipe = Pipeline.load(args.run, device=args.device, step=args.step, manager=_manager(args))
    return sample_command(args, pipe, _parse_with(args), console)


def cmd_interpolate(args: argparse.Namespace) -> int:
    """Rows of x_a, decoded interpolants, x_b (ACL Fig. 10) from any stack with a component that
    can encode real images (it exposes ``interpolate(pipeline, x_a, x_b, steps, y=None)``); with
    ``--seeds``, a walk between generated images for any generator (gantk.cli_sample)."""
    import torch

    from .pipeline import Pipeline
    from .viz import save_grid

    check_count(args.pairs, "--pairs", 1000)
    check_count(args.steps, "--steps", 1000)
    pipe = Pipeline.load(args.run, device=args.device, step=args.step, manager=_manager(args))
    if args.seeds:
        from .cli_sample import interpolate_command

        return interpolate_command(args, pipe, console)
    comp = next((c for c in pipe.components if callable(getattr(c, "interpolate", None))), None)
    if comp is None:
        raise SpecError(f"no component of {pipe.spec.shorthand!r} can encode real images",
                        where=str(args.run), fix="train a stack with a method that has an "
                        "encoder, e.g. acl (`gantk list-plugins`).")
    if pipe.data_info.kind != "image":
        raise SpecError("interpolation grids need image data", where=str(args.run),
                        fix="use `gantk sample` for points data.")
    x, y = pipe.real_data()
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(args.seed))[:2 * args.pairs]
    a, b = idx[:args.pairs], idx[args.pairs:]
    ya = y[a] if (y is not None and pipe.backbone.num_classes) else None
    mid = comp.interpolate(pipe, x[a], x[b], args.steps, y=ya)
    rows = torch.cat([x[a].unsqueeze(1), mid, x[b].unsqueeze(1)], dim=1)
    save_grid(rows.reshape(-1, *rows.shape[2:]), args.out, nrow=args.steps + 2)
    console.print(f"wrote {args.pairs} interpolation rows of {args.steps} steps (step {pipe.step}) "
                  f"to {args.out}", markup=False)
    return 0


# ---------------------------------------------------------------------------- parser

def _global_flags(*, top: bool) -> argparse.ArgumentParser:
    """``--debug``, ``--strict`` and ``-p no:NAME``, accepted before and after the subcommand.

    argparse parses a subcommand's flags into a fresh namespace and copies every value over the
    top level's, defaults included. So the subcommands' copies have no defaults (SUPPRESS: a flag
    not given after the subcommand leaves the top level's value alone), and ``-p`` after the
    subcommand collects into its own list, which :func:`_plugin_opts` joins to the top level's.
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


def _plugin_opts(args: argparse.Namespace) -> list[str]:
    """Every ``-p`` value, given before or after the subcommand."""
    return [*(getattr(args, "plugin_opts", None) or []),
            *(getattr(args, "plugin_opts_after", None) or [])]


def _version_text() -> str:
    """``gantk X (torch Y, torchvision Z, Python W)``: what a bug report needs, without
    importing torch."""

    import importlib.metadata as md
    import platform

    from . import __version__

    def dist(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    return (f"gantk {__version__} (torch {dist('torch')}, torchvision {dist('torchvision')}, "
            f"Python {platform.python_version()})")


def build_parser() -> argparse.ArgumentParser:
    from . import cli_sample

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
        from . import cli_eval
    except ImportError:  # pragma: no cover - evaluation module not installed
        cli_eval = None
    if cli_eval is not None:
        cli_eval.add_commands(sub, common)
    from . import cli_sweep

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
        from .distributed import rank, world_size

        if world_size() > 1:  # every rank stops and reports; say which one speaks
            command = f"{command} [rank {rank()}]"
            if isinstance(exc, GantkError):
                exc.message = f"[rank {rank()}] {exc.message}"
        return _report(exc, command)
    finally:
        from .distributed import shutdown

        shutdown()  # leave a torchrun process group cleanly (a no-op for one process)


def _report(exc: BaseException, command: str) -> int:
    """Print ``exc`` as one paragraph (at most ~2000 characters); return the exit status."""
    from rich.text import Text

    from .safeio import os_error, trim
    from .signals import Interrupted

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
