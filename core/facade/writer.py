"""Writing a run directory while training: the resolved spec, metrics as JSON lines, sample
pictures, evaluations and checkpoints, and the resume rules when the directory already holds a run.

::

    RUN_DIR/spec.toml, spec.json        the resolved stack, every default filled in
    RUN_DIR/metrics.jsonl               {"step": ..., "loss/d": ..., "loss/g": ..., ...} per log step:
                                        means over the steps since the previous row
    RUN_DIR/samples/step_00000500.png   sample grids (scatter plots for 2-D data)
    RUN_DIR/checkpoints/step_00000500.safetensors   the last ``keep_checkpoints`` of them
    RUN_DIR/checkpoints/best.safetensors            with ``train.best_metric``
    RUN_DIR/eval.jsonl                  evaluations (``eval_every`` and ``gantk eval``)

The loop itself is :func:`gantk.facade.loop.train_steps`, the same with or without a run
directory; this class is what a run directory adds to it (:meth:`RunWriter.after_step`). Reading
run directories is :mod:`gantk.store.rundirs`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from ..base.errors import GantkError, TrainingError
from ..base.safeio import (append_jsonl, atomic_write, ensure_dir, is_dir, no_link, read_jsonl,
                           read_text, sweep_temp, trim)
from ..store.checkpoint import Checkpoint, read_extra
from ..store.rundirs import list_checkpoints, open_checkpoint, spec_to_toml, step_of
from ..store.stackkeys import BOOKKEEPING, set_flags, shell, spec_diff
from ..train.distributed import is_main
from ..train.signals import Interrupted
from .setup import current_form


# what a run directory's writer writes or cleans (each refused when it is a symbolic link)
WRITTEN = ("spec.json", "spec.toml", "metrics.jsonl", "eval.jsonl", "checkpoints", "samples",
           "plots")


class RunWriter:
    """Writes one run directory: the spec, metric rows, pictures, evaluations and checkpoints,
    and on start resumes (or forks) the run it finds there."""

    def __init__(self, pipe: Any, run_dir: Path) -> None:
        self.pipe = pipe
        self.dir = Path(run_dir)
        self.console = None
        self._best: float | None = None
        self._noted = False
        self.threads: int | None = None  # the CPU threads a resumed run started with
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
            window = {k: [float(v), self.counts[k], str(v.dtype).removeprefix("torch.")]
                      for k, v in self.window.items()}
            extra = {**(extra or {}), "threads": torch.get_num_threads(), "log_window": window}
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
        for name in WRITTEN:  # a planted link would send writes (or the temp clean-up) elsewhere
            no_link(self.dir / name, what="folder" if "." not in name else "file")
        if is_main():  # another rank's sweep could remove rank 0's file being written
            for sub in ("", "samples", "plots"):  # temp files of writes killed earlier
                sweep_temp(self.dir / sub)
            sweep_temp(self.dir / "checkpoints", broad=True)
        train = pipe.spec.train
        if train.eval_every and train.eval_metrics:  # fetch/verify Inception now, not at step N
            from ..metrics.evaluate import prepare_evaluation

            prepare_evaluation(pipe.data_info, pipe.spec.data.name, list(train.eval_metrics))
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
                    if step_of(r) <= pipe.step] if src_run is not None else []
            if is_main():
                atomic_write(self.dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
            self._say(f"forked {ckpt.path} (step {pipe.step}) into {self.dir}")
        elif found and pipe.step == 0:
            mine = pipe.spec.to_dict()

            def accept(ckpt: Checkpoint) -> None:
                diff = spec_diff(current_form(ckpt.spec, pipe.registry), mine, ignore=BOOKKEEPING)
                if diff:
                    back = set_flags(ckpt.spec, mine)
                    listed = "; ".join(diff[:5]) + (f" and {len(diff) - 5} more"
                                                    if len(diff) > 5 else "")
                    raise TrainingError(
                        "the run directory holds a run of a different stack or different "
                        f"settings ({trim(listed, 600)}; 'then' is what its checkpoint "
                        f"{ckpt.path.name} holds)", where=str(self.dir),
                        fix=(f"to resume it as trained, add {back}; otherwise " if back else "")
                        + "train into a new --out directory, run the same stack to resume (only "
                        "train.steps and the bookkeeping keys such as train.log_every may "
                        "change: docs/stacks.md), or fork the run with new train.* settings: "
                        f"{shell('--out', 'NEW_RUN', '--fork-from', self.dir)} "
                        "(docs/reliability.md).")
                pipe.load_checkpoint(ckpt, optimizers=True)

            ckpt = open_checkpoint(self.dir, warn=self._warn, accept=accept)
            self._restore_window(ckpt)
            self.threads = ckpt.extra.get("threads")  # checked by gantk.facade.threads
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
            keep = [r for r in rows if step_of(r) <= step
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

    # ------------------------------------------------------------------ after each step
    def after_step(self, step: int, last: bool, stop: Any) -> None:
        """What a run directory adds to a step (called by :func:`gantk.facade.loop.train_steps`):
        sample pictures, evaluations and checkpoints when due; a SIGINT/SIGTERM (``stop``) ends
        the run here, at a step boundary, with a checkpoint."""
        train = self.pipe.spec.train
        if (train.sample_every and step % train.sample_every == 0) or last:
            self.samples()
        if train.eval_every and (step % train.eval_every == 0 or last) and train.eval_metrics:
            self.evaluate()
        saved = (train.ckpt_every and step % train.ckpt_every == 0) or last
        if saved:
            path = self.checkpoint()
        if self.pipe.world.any(bool(stop)) and not last:  # every rank stops at one step
            path = path if saved else self.checkpoint()
            raise Interrupted(stop.name or "a signal to another process", step, path)

    def evaluate(self) -> None:
        from ..metrics.evaluate import evaluate, metric_direction, record_eval  # on first use

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
