"""The commands on one stack or run: ``list-plugins``, ``show``, ``check``, ``train``,
``sample`` and ``interpolate`` (``eval``/``plot`` and ``sweep`` have modules of their own)."""

from __future__ import annotations

import argparse
import json
import typing
from pathlib import Path
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from ..base.errors import SpecError
from .common import check_count, console, err_console, parse_with, plugin_manager


def cmd_list_plugins(args: argparse.Namespace) -> int:
    rows = plugin_manager(args).describe()
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
    wide = getattr(args, "wide", False)  # every column, whole summaries (a --wide flag)
    keep = range(len(columns)) if wide else (0, 1, 5)  # name, kind, summary: one line each
    table = Table(title="gantk plugins", show_lines=False, title_justify="left",
                  box=None if not wide else box.HEAVY_HEAD, pad_edge=False)
    for i in keep:
        whole = None if wide or columns[i] == "summary" else max(
            [len(columns[i])] + [len(row[i]) for _, row in cells])
        table.add_column(columns[i], overflow="fold" if wide else "ellipsis", no_wrap=not wide,
                         min_width=whole)
    for status, row in cells:
        style = {"broken": "red", "not installed": "yellow"}.get(status)
        table.add_row(*(escape(" ".join(row[i].split())) for i in keep), style=style)
    console.print(table)
    if not wide:
        console.print(f"{len(cells)} components. Plugin, version, paper and whole summaries: "
                      "`gantk list-plugins --json`, or into a pipe (one tab-separated line each); "
                      "one component: `gantk show NAME`.", highlight=False, markup=False)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    registry = plugin_manager(args).registry
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
    from ..stack import build
    from ..stack.spec import parse_spec

    spec = parse_spec(args.stack, args.set)
    res = build.resolve(spec, plugin_manager(args).registry)
    build.check_static(res)
    return res


def cmd_check(args: argparse.Namespace) -> int:
    from ..facade.pipeline import Pipeline
    from ..store.rundirs import spec_to_toml

    res = _load_pipeline_spec(args)
    _check_data_root(res)  # before the build: a missing folder is the cause of what follows
    pipe = Pipeline(res.spec, manager=plugin_manager(args), device="cpu")  # build = full validation
    if args.json:
        print(json.dumps(res.spec.to_dict(), indent=2, sort_keys=True))
        return 0
    census = data_census_line(res)
    console.print(f"[green]ok[/]: {res.spec.shorthand}")
    console.print(census, highlight=False, markup=False, soft_wrap=True)
    n_g = sum(p.numel() for p in pipe.backbone.generator.parameters())
    n_d = sum(p.numel() for p in pipe.backbone.d_parameters())
    console.print(f"G: {n_g:,} parameters, D: {n_d:,} parameters, "
                  f"components: {[c.entry_name + ':' + type(c).__name__ for c in pipe.components]}")
    console.print(spec_to_toml(res.spec.to_dict()), highlight=False, markup=False)
    return 0


def _check_data_root(res: Any) -> None:
    """A data set read from files (a ``root`` or ``path`` option) whose folder (or archive) is
    not there, unless it may download into it: checked here, as building a stack never reads
    the data."""
    from ..base.errors import DataError
    from ..base.safeio import is_dir, is_regular

    params = res.data.params
    key = next((k for k in ("root", "path") if isinstance(getattr(params, k, None), str)), None)
    if key is None or getattr(params, "download", False):
        return
    path = Path(getattr(params, key)).expanduser()
    archive = key == "root" and res.data.entry.name == "image_folder" and is_regular(path)
    if not is_dir(path) and not archive:
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"the data set {res.data.entry.name!r} reads its files from {str(path)!r}, "
                        f"which {what}", where=f"data.{key}",
                        fix=f"point data.{key} at the folder of your images (--set "
                            f"data.{key}=\"PATH\"{' or a .zip of them' if key == 'root' else ''}); "
                            "a relative path is taken from the current directory.")


def data_census_line(res: Any, stream: Any = None) -> str:
    """``data: NAME: 1,234 images in folder '...'; 10 labels (...)``: what the data set holds,
    from its census (file-backed sets: listed, not decoded), else from the loaded stream (``stream()``
    gives it), else from loading an embedded set; a set read from files without a census: counted at training."""
    from ..datasets.census import Census

    part = res.data
    info = res.data_info
    census = part.entry.extra.get("census")
    if census is not None:
        found = census(part.params)
    else:
        count = stream().num_samples if stream is not None else None
        if count is None and not any(hasattr(part.params, k) for k in ("root", "path")):
            count = len(part.entry.factory(part.params)[0])  # embedded: cheap to load
        found = Census(count, info.num_classes)
    kind = "images" if info.kind == "image" else "points" if info.kind == "points" else "samples"
    return f"data: {part.entry.name}: {found.line(kind)}"


def cmd_train(args: argparse.Namespace) -> int:
    from ..facade.pipeline import Pipeline

    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.device:
        overrides.append(f'train.device="{args.device}"')
    from ..stack import build
    from ..stack.spec import parse_spec
    from ..store.runmark import check_path_given

    check_path_given(args.out, "--out")  # Path("") would be the current folder
    spec = parse_spec(args.stack, overrides)
    _check_data_root(build.resolve(spec, plugin_manager(args).registry))  # before the build
    pipe = Pipeline(spec, manager=plugin_manager(args))
    out = Path(args.out)
    if pipe.world.rank != 0:  # under torchrun rank 0 reports
        pipe.train(out=out, progress=False, fork_from=args.fork_from)
        return 0
    ranks = f" x {pipe.world.size} processes" if pipe.world.size > 1 else ""
    err_console.print(f"training {pipe.spec.shorthand} on {pipe.device}{ranks} -> {out}",
                      markup=False)
    err_console.print(data_census_line(pipe.resolved, lambda: pipe.stream),  # loads the data once
                      markup=False, highlight=False, soft_wrap=True)
    logs = pipe.train(out=out, progress=not args.no_progress, fork_from=args.fork_from)
    summary = "  ".join(f"{k}={v:.4g}" for k, v in logs.items() if k != "it_per_s")
    console.print(f"[green]done[/]: step {pipe.step}  {summary}")
    console.print(f"run directory: {out}  (samples/, checkpoints/, metrics.jsonl, spec.toml)",
                  markup=False)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .sample_cmd import sample_command
    from ..facade.pipeline import Pipeline

    check_count(args.n, "--n", 1_000_000)
    pipe = Pipeline.load(args.run, device=args.device, step=args.step, manager=plugin_manager(args))
    return sample_command(args, pipe, parse_with(args), console)


def cmd_interpolate(args: argparse.Namespace) -> int:
    """Rows of x_a, decoded interpolants, x_b (ACL Fig. 10) from any stack with a component that
    can encode real images (it exposes ``interpolate(pipeline, x_a, x_b, steps, y=None)``); with
    ``--seeds``, a walk between generated images for any generator (gantk.cli_sample)."""
    import torch

    from ..facade.pipeline import Pipeline
    from ..sample.viz import save_grid

    check_count(args.pairs, "--pairs", 1000)
    check_count(args.steps, "--steps", 1000)
    pipe = Pipeline.load(args.run, device=args.device, step=args.step, manager=plugin_manager(args))
    if args.seeds:
        from .sample_cmd import interpolate_command

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
