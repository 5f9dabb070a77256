"""A sweep file as data: the pydantic models of its tables, and its cells and runs.

``[eval]`` and ``[stats]`` are :class:`EvalSpec` and :class:`StatsSpec`; the axes expand into
:class:`Cell` objects (one per combination, a ``train_as`` value evaluating another cell's
networks) and each (cell, seed) is a :class:`Run` in ``OUT/CELL/seed_S``. Nothing here runs or
reads a run directory except for the finished mark (docs/sweeps.md gives the file format).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..base.errors import SweepError, suggest
from ..store.jobfiles import RESULT_FILE, worker_command
from .runfiles import read_json_file

MAX_SEEDS = 10_000      # seeds of one sweep (each is a run per cell): more is a typo
MAX_THREADS = 1024      # torch threads per run process, as train.threads
MAX_JOBS = 1024         # runs kept going at once


class EvalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metrics: list[str] = Field(default_factory=list, description="metric names; default: the "
                               "data's defaults (gantk eval's)")
    n: int | None = Field(None, ge=2, description="generated samples; default 10000 (26000 for "
                          "modes on stacked digits)")
    seed: int = Field(0, description="seed of the evaluation draw")
    feature_net: str = Field("auto", description="auto, inception, digits, mnist or raw")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                               description="metric options, {prdc = {nearest_k = 3}}")
    with_: list[Any] = Field(default_factory=list, alias="with",
                             description="post-training transforms at sampling, e.g. [\"advlat_z\"]")


class StatsSpec(BaseModel):
    """How the summary turns per-seed scores into verdicts (docs/sweeps.md, "Verdicts")."""

    model_config = ConfigDict(extra="forbid")
    primary: list[str] = Field(default_factory=list, description="the declared primary score "
                               "key(s), e.g. [\"fid\"]: Holm-corrected over the cells; every "
                               "other key is secondary, corrected over keys and cells")
    test: Literal["t", "wilcoxon", "permutation"] = Field(
        "t", description="paired test per cell and key: t (paired t-test), wilcoxon (signed "
        "rank; needs 6+ seeds to reach p < 0.05), permutation (exact sign flips)")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="family-wise error rate of each family")
    last_k: int = Field(0, ge=0, description="0: score a run by its final evaluation; k >= 3: by "
                        "the mean of its last k in-training evaluations (train.eval_every), "
                        "where both cells of a comparison have them")

    @field_validator("last_k")
    @classmethod
    def _k(cls, v: int) -> int:
        if v in (1, 2):
            raise ValueError("last_k is 0 (the final evaluation) or at least 3 evaluations")
        return v


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field("sweep", description="title of the summary")
    base: str | None = Field(None, description="stack file the cells start from (relative to "
                             "the sweep file)")
    stack: dict[str, Any] | None = Field(None, description="the base stack inline (any stack "
                                         "file keys), instead of base")
    set: list[str] = Field(default_factory=list, description="overrides for every cell")
    axes: dict[str, Any] = Field(default_factory=dict, description="axis name -> list of values "
                                 "(the name is a --set key) or table of named override lists")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    baseline: str | None = Field(None, description="the cell the others are compared with "
                                 "(default: the first)")
    jobs: int | None = Field(None, ge=1, le=MAX_JOBS,
                             description="runs at once (default: --jobs, else 1)")
    threads: int | None = Field(None, ge=1, le=MAX_THREADS, description="torch threads per run process "
                                "(default: CPU cores / jobs)")
    launcher: str | dict[str, Any] = Field(
        "local", description="local, or a launcher a plugin provides: its name, or a [launcher] "
        "table with name = ... and the launcher's own settings (e.g. submitit's SLURM options)")
    eval: EvalSpec = Field(default_factory=EvalSpec)
    stats: StatsSpec = Field(default_factory=StatsSpec)

    @field_validator("launcher")
    @classmethod
    def _launcher(cls, v: str | dict[str, Any]) -> str | dict[str, Any]:
        name = v.get("name") if isinstance(v, dict) else v
        if not isinstance(name, str) or not name.strip():
            raise ValueError('a [launcher] table needs name = "..." (e.g. "submitit")')
        return v

    @property
    def launcher_name(self) -> str:
        return self.launcher["name"] if isinstance(self.launcher, dict) else self.launcher

    @property
    def launcher_options(self) -> dict[str, Any]:
        """The [launcher] table's settings besides its name."""
        if isinstance(self.launcher, dict):
            return {k: v for k, v in self.launcher.items() if k != "name"}
        return {}

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(v) > MAX_SEEDS:
            raise ValueError(f"{len(v)} seeds, more than the {MAX_SEEDS} a sweep runs (each "
                             "seed is one run of every cell)")
        if any(s < 0 or s >= 2 ** 63 for s in v):
            raise ValueError("seeds are integers between 0 and 2**63 - 1")
        if len(set(v)) != len(v):
            raise ValueError(f"seed(s) {sorted({s for s in v if v.count(s) > 1})} appear twice: "
                             "each seed is one run per cell")
        return v


def _label(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else (
        str(value).lower() if isinstance(value, bool) else str(value))


@dataclass
class Cell:
    """A cell, or one value of one axis (a one-axis cell): its name (``axis=value,...``), the
    overrides its networks are trained with, and for a cell that only changes sampling, the cell
    whose runs it evaluates (``trained_in``, from ``train_as``) with extra transforms."""

    name: str
    overrides: list[str]
    trained_in: str | None = None
    with_: list[Any] = field(default_factory=list)

    def describe(self) -> str:
        """What a ``train_as`` cell evaluates, e.g. ``the networks of method=vanilla, sampled
        with advlat_z(steps=300)``."""

        return (f"the networks of {self.trained_in}, sampled with "
                f"{', '.join(_with_name(w) for w in self.with_)}")


def _with_name(item: Any) -> str:
    if isinstance(item, dict):
        opts = ", ".join(f"{k}={v}" for k, v in item.items() if k != "name")
        return f"{item.get('name')}({opts})" if opts else str(item.get("name"))
    return str(item)


def _shared_value(name: str, label: str, value: dict[str, Any]) -> Cell:
    where = f"axes.{name}.{label}"
    unknown = sorted(set(value) - {"train_as", "with"})
    if unknown or not isinstance(value.get("train_as"), str) or not value.get("with"):
        raise SweepError(f"value {label!r} of axis {name!r} is a table, which must hold exactly "
                         "train_as (the value whose trained networks it evaluates) and with "
                         "(post-training transforms at sampling)" +
                         (f"; unknown key(s) {', '.join(unknown)}" if unknown else ""),
                         where=where, fix='write e.g. advlat_z = { train_as = "vanilla", '
                                         'with = ["advlat_z"] }, or give a list of overrides.')
    if not isinstance(value["with"], list):
        raise SweepError(f"with of value {label!r} must be a list", where=f"{where}.with",
                         fix='write e.g. with = ["advlat_z"].')
    return Cell(f"{name}={label}", [], f"{name}={value['train_as']}", list(value["with"]))


def _axis_values(name: str, values: Any) -> list[Cell]:
    """The values of one axis; a ``train_as`` value gets its target's overrides."""

    if isinstance(values, list):
        if not values:
            raise SweepError(f"axis {name!r} has no values", where=f"axes.{name}",
                             fix="give at least one value.")
        return [Cell(f"{name}={_label(v).strip(chr(34))}", [f"{name}={_label(v)}"])
                for v in values]
    if isinstance(values, dict):
        if not values:
            raise SweepError(f"axis {name!r} has no values", where=f"axes.{name}",
                             fix="give at least one named value.")
        out = []
        for label, ov in values.items():
            if isinstance(ov, dict):
                out.append(_shared_value(name, label, ov))
                continue
            ov = [ov] if isinstance(ov, str) else ov
            if not isinstance(ov, list) or not all(isinstance(o, str) for o in ov):
                raise SweepError(f"value {label!r} of axis {name!r} must be a list of overrides "
                                 "or a { train_as, with } table",
                                 where=f"axes.{name}.{label}",
                                 fix='write e.g. msgan = ["stack=\\"backbone=dcgan + msgan\\""].')
            out.append(Cell(f"{name}={label}", list(ov)))
        trained = {v.name: v for v in out if v.trained_in is None}
        for v in out:
            if v.trained_in is not None:
                if v.trained_in not in trained:
                    hint = suggest(v.trained_in.split("=", 1)[1],
                                   [t.split("=", 1)[1] for t in trained])
                    raise SweepError(f"{v.name} is trained as {v.trained_in!r}, which is not a "
                                     f"value of axis {name!r} with overrides of its own" +
                                     (f"; {hint}" if hint else ""),
                                     where=f"axes.{name}.{v.name.split('=', 1)[1]}.train_as",
                                     fix=f"name one of: {', '.join(t.split('=', 1)[1] for t in trained)}.")
                v.overrides = list(trained[v.trained_in].overrides)
        return out
    raise SweepError(f"axis {name!r} must be a list of values or a table of named overrides",
                     where=f"axes.{name}", fix="see docs/sweeps.md.")


#: names whose folder name says them exactly: safe characters, single ``_`` or ``,`` between
#: them (``,`` becomes ``__``, so no other name gives the same folder)
_FAITHFUL = re.compile(r"[A-Za-z0-9.=+-]+(?:[,_][A-Za-z0-9.=+-]+)*")
_MAX_FOLDER = 120  # characters of a folder name (file systems allow 255 bytes)


def slug(cell: str) -> str:
    """A folder name for a cell name, different for every cell name.

    A name of safe characters keeps its folder name (``method=msgan,train.lr_g=0.0002`` ->
    ``method=msgan__train.lr_g=0.0002``). Any other name (a space, a slash, ``α``, an empty value
    that leaves ``v=_`` or a run of ``_``, or a name over 120 characters) would share its folder
    with another name (``"fast lr"`` and ``"fast_lr"``), so its folder name ends in ``~`` and
    10 hex digits of the name's SHA-256 (``~`` never occurs in the first kind)."""

    base = re.sub(r"[^A-Za-z0-9._=+-]+", "_", cell.replace(",", "__")).strip("_") or "cell"
    if _FAITHFUL.fullmatch(cell) and len(base) <= _MAX_FOLDER:
        return base
    return f"{base[:_MAX_FOLDER - 11]}~{hashlib.sha256(cell.encode()).hexdigest()[:10]}"


def check_folders(names: list[str]) -> None:
    """Refuse cells whose folders would still be one (differing only in upper/lower case, one
    folder on macOS and Windows; or a hash collision)."""

    seen: dict[str, str] = {}
    for name in names:
        key = slug(name).casefold()
        if key in seen and seen[key] != name:
            raise SweepError(f"the cells {seen[key]!r} and {name!r} would share the run folder "
                             f"{slug(name)!r} (folder names ignore case on some file systems)",
                             where="axes", fix="rename one of the two values so that they differ "
                                               "in more than upper and lower case.")
        seen[key] = name


@dataclass
class Run:
    """One (cell, seed): an ordinary run directory. A run of a ``train_as`` cell trains nothing:
    it evaluates the networks of ``source`` (the run of the cell it shares training with) with
    its ``with_`` transforms added at sampling, and holds only that evaluation."""

    cell: str
    seed: int
    overrides: list[str]
    dir: Path
    source: Path | None = None
    with_: list[Any] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Whether the run's ``sweep_result.json`` holds a result (a torn or empty one does not
        count: the next sweep evaluates the run again)."""
        return read_json_file(self.dir / RESULT_FILE)[0] is not None

    @property
    def command(self) -> list[str]:
        """The command line that runs this run's job (what a launcher starts or submits)."""
        return worker_command(self.dir)
