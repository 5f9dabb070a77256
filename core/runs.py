"""Run directories: the resolved spec, metrics as JSON lines, sample pictures, checkpoints.

::

    RUN_DIR/spec.toml, spec.json        the resolved stack, every default filled in
    RUN_DIR/metrics.jsonl               {"step": ..., "loss/d": ..., "loss/g": ..., ...} per log step:
                                        means over the steps since the previous row
    RUN_DIR/samples/step_00000500.png   sample grids (scatter plots for 2-D data)
    RUN_DIR/checkpoints/step_00000500.safetensors   the last ``keep_checkpoints`` of them
    RUN_DIR/checkpoints/best.safetensors            with ``train.best_metric``
    RUN_DIR/eval.jsonl                  evaluations (``eval_every`` and ``gantk eval``)

Training into a directory that already holds checkpoints resumes from the newest intact one.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .checkpoint import Checkpoint
from .distributed import is_main
from .errors import CheckpointError, GantkError, TrainingError
from .safeio import (append_jsonl, atomic_write, ensure_dir, is_dir, is_regular, read_jsonl,
                     read_text, sweep_temp, trim)
from .signals import Interrupted, deferred_stop

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import Pipeline

_CKPT = re.compile(r"step_(\d+)\.safetensors$")


def list_checkpoints(run_dir: Path, odd: list[str] | None = None) -> list[tuple[int, Path]]:
    """``(step, path)`` of every regular ``step_*.safetensors`` file, oldest first (pipes,
    devices, folders and a ``checkpoints/`` symlink loop are passed over, never opened; their
    names go to ``odd``)."""
    folder = run_dir / "checkpoints"
    found = []
    try:
        names = sorted(os.listdir(folder)) if is_dir(folder) else []
    except OSError:
        names = []
    for name in names:
        m = _CKPT.fullmatch(name)
        if m and is_regular(folder / name):
            found.append((int(m.group(1)), folder / name))
        elif m and odd is not None:
            odd.append(f"{name} (not a regular file)")
    return sorted(found)


def same_stack(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two stored specs describe the same networks (train.* settings may differ)."""
    return all(a.get(k) == b.get(k) for k in ("backbone", "loss", "methods", "data"))


def stored_stack(run_dir: Path, warn=None) -> dict[str, Any] | None:
    """The run's spec.json if it is intact (it is rewritten from the checkpoint on every start,
    so a damaged one only costs a warning)."""
    f = run_dir / "spec.json"
    if not f.exists() and not f.is_symlink():
        return None
    try:
        d = json.loads(read_text(f, what="spec.json"))
    except (GantkError, ValueError, RecursionError) as exc:
        d, why = None, getattr(exc, "message", type(exc).__name__)
    else:
        why = "not a JSON object"
    if not isinstance(d, dict):
        if warn is not None:
            warn(f"{f} is damaged ({why}); it is rewritten from the checkpoint")
        return None
    return d


def _train_as_source(path: Path) -> Path | None:
    """The run a sweep's ``train_as`` run directory evaluates (its job file's ``train_run``)."""
    from .errors import GantkError
    from .sweeps import read_job, train_run_dir

    train_run = read_job(path).get("train_run")
    try:
        return train_run_dir(path, train_run) if isinstance(train_run, str) else None
    except GantkError:
        return None


def open_checkpoint(path: Path, *, step: int | None = None, warn=None,
                    accept: Callable[[Checkpoint], None] | None = None) -> Checkpoint:
    """A checkpoint: ``path`` itself, or the newest intact one in run directory ``path``.

    In a run directory a checkpoint that is unreadable, damaged, of another stack than the run's
    spec.json, or refused by ``accept`` (which raises CheckpointError) is skipped with a
    warning, and the next older one is tried."""
    if not is_dir(path):
        if path.exists() or path.is_symlink():
            ckpt = Checkpoint(path)
            if accept is not None:
                accept(ckpt)
            return ckpt
        raise CheckpointError("no such file or run directory", where=str(path),
                              fix="give a run directory written by `gantk train` or a .safetensors file.")
    errors: list[str] = []
    found = list_checkpoints(path, errors)
    if step is not None:
        found = [(s, f) for s, f in found if s == step]
        if not found:
            raise CheckpointError(f"no checkpoint for step {step} (have "
                                  f"{trim([s for s, _ in list_checkpoints(path)], 200)})",
                                  where=str(path), fix="pick one of the steps listed.")
    if not found:
        source = _train_as_source(path)
        raise CheckpointError("the run directory holds no checkpoint", where=str(path / "checkpoints"),
                              fix=f"this run of a sweep's train_as cell trained nothing and holds "
                                  f"only its evaluation: its networks are in {source} (sample them "
                                  f"with the cell's transforms: `gantk eval {source} --with NAME`, "
                                  f"or gantk.sweeps.load_run)." if source else
                              "train first (`gantk train STACK.toml --out RUN_DIR`).")
    reference = stored_stack(path, warn)
    for _, f in reversed(found):  # newest intact one wins
        try:
            ckpt = Checkpoint(f)
            if reference is not None and not same_stack(ckpt.spec, reference):
                raise CheckpointError("it holds a different stack than the run's spec.json",
                                      where=str(f))
            if accept is not None:
                accept(ckpt)
            if errors and warn is not None:
                warn(f"skipped damaged or foreign checkpoint(s): {trim('; '.join(errors), 600)}; "
                     f"using {f.name}")
            return ckpt
        except CheckpointError as exc:
            errors.append(f"{f.name} ({exc.message})")
    raise CheckpointError("no checkpoint in the run directory is usable: "
                          + trim("; ".join(errors), 600), where=str(path / "checkpoints"),
                          fix="restore a checkpoint from a backup or start a new run directory.")


def _strip_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_strip_none(v) for v in obj]
    return obj


def spec_to_toml(spec_dict: dict[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps(_strip_none(spec_dict))


class RunWriter:
    def __init__(self, pipe: Pipeline, run_dir: Path) -> None:
        self.pipe = pipe
        self.dir = Path(run_dir)
        self.console = None
        self._best: float | None = None
        self._noted = False
        self.window: dict[str, torch.Tensor] = {}  # sums since the last logged row
        self.counts: dict[str, int] = {}

    # ------------------------------------------------------------------ files
    def write_spec(self) -> None:
        if not is_main():  # under torchrun rank 0 owns every file of the run
            return
        ensure_dir(self.dir)
        d = self.pipe.spec.to_dict()
        atomic_write(self.dir / "spec.json", json.dumps(d, indent=2, sort_keys=True) + "\n")
        atomic_write(self.dir / "spec.toml", spec_to_toml(d))

    def checkpoint(self, *, name: str | None = None, extra: dict[str, Any] | None = None) -> Path:
        path = self.dir / "checkpoints" / (name or f"step_{self.pipe.step:08d}.safetensors")
        if not is_main():
            return path
        if name is None:  # the log window travels with the step checkpoints (see _restore_window)
            extra = {**(extra or {}), "log_window": {
                k: [float(v), self.counts[k], str(v.dtype).removeprefix("torch.")]
                for k, v in self.window.items()}}
        self.pipe.save_checkpoint(path, extra=extra)
        keep = self.pipe.spec.train.keep_checkpoints
        for _, old in list_checkpoints(self.dir)[:-keep]:
            old.unlink(missing_ok=True)
        return path

    def log(self, row: dict[str, Any], file: str = "metrics.jsonl") -> None:
        if not is_main():
            return
        append_jsonl(self.dir / file, row)

    def samples(self) -> Path | None:
        pipe = self.pipe
        if not is_main():
            return None
        n = pipe.spec.train.num_samples
        if pipe.data_info.kind == "points":
            n = max(n, 2000)
        with torch.random.fork_rng(devices=[pipe.device] if pipe.device.type == "cuda" else []):
            torch.manual_seed(pipe.spec.seed + 12345)  # the same latents every time: comparable
            x = pipe.sample(n)
        return pipe.save_picture(x, self.dir / "samples" / f"step_{pipe.step:08d}.png",
                                 title=f"{pipe.spec.shorthand} step {pipe.step}")

    # ------------------------------------------------------------------ resume
    def prepare(self, *, fork_from: str | Path | None = None) -> None:
        """Resume from the newest usable checkpoint (or fork one), or start the directory.

        The log-replay rule: whatever happened before (kills at any write, restarts before the
        first checkpoint), the logs are cut back to the rows at or before the step training
        goes on from, and the unlogged window of that step is restored from the checkpoint, so
        the rows written from here on are those of the uninterrupted run."""
        pipe = self.pipe
        ensure_dir(self.dir)
        if is_main():  # another rank's sweep could remove rank 0's file being written
            for sub in ("", "samples", "plots"):  # temp files of writes killed earlier
                sweep_temp(self.dir / sub)
            sweep_temp(self.dir / "checkpoints", broad=True)
        found = list_checkpoints(self.dir)
        if fork_from is not None:
            if found:
                raise TrainingError("--fork-from starts a new run, but this directory already "
                                    "holds one", where=str(self.dir),
                                    fix="choose a new --out directory, or leave out --fork-from to "
                                        "resume this run.")
            src = Path(fork_from)
            ckpt = open_checkpoint(src, warn=self._warn, accept=lambda c: pipe.load_checkpoint(
                c, optimizers=True, fork=True))
            self._restore_window(ckpt)
            src_run = ckpt.path.parent.parent if is_dir(src) or ckpt.path.parent.name == \
                "checkpoints" else None
            rows = [r for r in read_jsonl(src_run / "metrics.jsonl", warn=self._warn)
                    if _step_of(r) <= pipe.step] if src_run is not None else []
            if is_main():
                atomic_write(self.dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
            self._say(f"forked {ckpt.path} (step {pipe.step}) into {self.dir}")
        elif found and pipe.step == 0:
            mine = pipe.spec.to_dict()

            def accept(ckpt: Checkpoint) -> None:
                diff = _diff(ckpt.spec, mine, ignore={"train.steps", "train.workers"})
                if diff:
                    raise TrainingError(
                        "the run directory holds a run of a different stack or different "
                        "settings (" + trim("; ".join(diff[:5]), 600) + ")", where=str(self.dir),
                        fix="train into a new --out directory, run the same stack to resume (only "
                            "train.steps may change), or fork the run with new train.* settings: "
                            f"--out NEW_RUN --fork-from {self.dir} (docs/reliability.md).")
                pipe.load_checkpoint(ckpt, optimizers=True)

            ckpt = open_checkpoint(self.dir, warn=self._warn, accept=accept)
            self._restore_window(ckpt)
            self._restore_best()
            self._say(f"resuming {self.dir} from step {pipe.step} ({ckpt.path.name})")
        if not pipe.world.agree(pipe.step):
            raise TrainingError(f"the processes found different checkpoints in {self.dir}",
                                where=str(self.dir), fix="put RUN_DIR on a file system every node "
                                "sees (every rank reads the checkpoint it resumes from).")
        if is_main():
            self._replay_logs(pipe.step)
        self.write_spec()

    def _restore_window(self, ckpt: Checkpoint) -> None:
        self.window, self.counts = {}, {}
        stored = ckpt.extra.get("log_window", {})
        if not isinstance(stored, dict):
            return
        for key, item in stored.items():
            try:
                value, count, dtype = item
                self.window[key] = torch.tensor(float(value), dtype=getattr(torch, str(dtype)),
                                                device=self.pipe.device)
                self.counts[key] = int(count)
            except (TypeError, ValueError, AttributeError, RuntimeError):
                self._warn(f"{ckpt.path.name}: ignored a damaged log-window entry {trim(key, 40)!r}")

    def _restore_best(self) -> None:
        """Carry the best value over a resume, so best.safetensors only ever improves."""
        from .checkpoint import read_extra

        best, key = self.dir / "checkpoints" / "best.safetensors", self.pipe.spec.train.best_metric
        if key is None or not best.exists():
            return
        try:
            stored = read_extra(best).get("best", {})
            if key in stored:
                self._best = float(stored[key])
        except Exception:  # an unreadable best file is simply replaced by the next best
            return

    def _replay_logs(self, step: int) -> None:
        """Keep the complete rows at or before ``step`` (``gantk eval`` results are kept
        whatever their step: they are the user's finished work); rewrite atomically."""
        for name in ("metrics.jsonl", "eval.jsonl"):
            f = self.dir / name
            if not f.exists() and not f.is_symlink():
                continue
            rows = read_jsonl(f, warn=self._warn)
            keep = [r for r in rows if _step_of(r) <= step
                    or (name == "eval.jsonl" and r.get("source") == "gantk eval")]
            text = "".join(json.dumps(r, allow_nan=True) + "\n" for r in keep)
            if text != read_text(f, what=name):
                atomic_write(f, text)

    def _say(self, text: str) -> None:
        from rich.console import Console

        if not is_main():
            return
        (self.console or Console(stderr=True)).print(text, markup=False, highlight=False)

    def _warn(self, text: str) -> None:
        from rich.console import Console
        from rich.text import Text

        (self.console or Console(stderr=True)).print(Text.assemble(("warning: ", "yellow"), text))

    # ------------------------------------------------------------------ loop
    def loop(self, target: int, *, progress: bool = True) -> dict[str, float]:
        """Train to ``target``; SIGINT/SIGTERM stop at the next step boundary with a checkpoint."""
        from .progress import TrainProgress

        pipe, train = self.pipe, self.pipe.spec.train
        pipe.backbone.train()
        floats: dict[str, float] = {}
        logs: dict[str, torch.Tensor] = {}
        bar = TrainProgress(start=pipe.step, total=target, enabled=progress and is_main(),
                            log_every=train.log_every)
        self.console = bar.console
        t_last, s_last = time.perf_counter(), pipe.step
        with bar, deferred_stop() as stop:
            while pipe.step < target:
                logs = pipe.trainer.step(pipe.step + 1, pipe.stream)
                pipe.step += 1
                step = pipe.step
                last = step == target
                for k, v in logs.items():  # window means: lazy terms (r1, path_length) show too
                    self.window[k] = self.window[k] + v if k in self.window else v
                    self.counts[k] = self.counts.get(k, 0) + 1
                floats = {}
                if step % train.log_every == 0 or last:
                    floats = pipe.world.mean_over_ranks(
                        {k: float(v) / self.counts[k] for k, v in self.window.items()})
                    self.window, self.counts = {}, {}
                    now = time.perf_counter()
                    rate = (step - s_last) / max(now - t_last, 1e-9)
                    t_last, s_last = now, step
                    self.log({"step": step, **floats, "it_per_s": rate, "time": time.time()})
                bar.update(step, {**floats, "it_per_s": rate} if floats else floats)
                pipe.manager.hook.gantk_on_step_end(pipeline=pipe, step=step, logs=floats)
                if (train.sample_every and step % train.sample_every == 0) or last:
                    self.samples()
                if train.eval_every and (step % train.eval_every == 0 or last) and train.eval_metrics:
                    self.evaluate()
                saved = (train.ckpt_every and step % train.ckpt_every == 0) or last
                if saved:
                    path = self.checkpoint()
                if pipe.world.any(bool(stop)) and not last:  # every rank stops at one step
                    path = path if saved else self.checkpoint()
                    raise Interrupted(stop.name or "a signal to another process", step, path)
        return floats or {k: float(v) for k, v in logs.items()}

    def evaluate(self) -> None:
        from .evaluate import evaluate, metric_direction, record_eval

        pipe, train = self.pipe, self.pipe.spec.train
        with torch.random.fork_rng(devices=[pipe.device] if pipe.device.type == "cuda" else []):
            torch.manual_seed(pipe.spec.seed + 54321)
            result = evaluate(pipe, metrics=train.eval_metrics, n=train.eval_n)
        row = {k: v for k, v in result.items() if k != "note"}  # the fallback note: once is enough
        if "note" in result and not self._noted:
            self._noted = True
            self._warn(str(result["note"]))
        if is_main():
            record_eval(self.dir, row, step=pipe.step, metrics=train.eval_metrics,
                        source="eval_every", **{"with": pipe.sample_transforms()})
            pipe.manager.hook.gantk_on_evaluate(pipeline=pipe, step=pipe.step, result=row)
        key = train.best_metric
        if key is None:
            return
        if key not in result:
            raise GantkError(f"best_metric {key!r} is not among the evaluated results "
                             f"({sorted(result)})", where="train.best_metric",
                             fix="name one of the result keys, or add its metric to train.eval_metrics.")
        value, sign = float(result[key]), (1 if metric_direction(key) == "min" else -1)
        if not math.isfinite(value):  # e.g. reverse KL before any sample lands on a mode
            return
        if self._best is None or sign * value < sign * self._best:
            self._best = value
            self.checkpoint(name="best.safetensors", extra={"best": {key: value, "step": pipe.step}})


def _step_of(row: dict[str, Any]) -> float:
    step = row.get("step", 0)
    return step if isinstance(step, (int, float)) and not isinstance(step, bool) else math.inf


def _diff(a: Any, b: Any, *, prefix: str = "", ignore: set[str] = frozenset()) -> list[str]:
    if prefix in ignore:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), prefix=f"{prefix}.{k}" if prefix else k, ignore=ignore)
        return out
    return [] if a == b else [f"{prefix}: {a!r} then, {b!r} now"]
