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
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .checkpoint import Checkpoint
from .errors import CheckpointError, GantkError, TrainingError

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import Pipeline

_CKPT = re.compile(r"step_(\d+)\.safetensors$")


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    folder = run_dir / "checkpoints"
    found = []
    for f in folder.glob("step_*.safetensors") if folder.is_dir() else []:
        m = _CKPT.search(f.name)
        if m:
            found.append((int(m.group(1)), f))
    return sorted(found)


def find_checkpoint(path: Path, *, step: int | None = None, warn=None) -> Path:
    """A checkpoint file: ``path`` itself, or the newest intact one in run directory ``path``."""
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError("no such file or run directory", where=str(path),
                              fix="give a run directory written by `gantk train` or a .safetensors file.")
    found = list_checkpoints(path)
    if step is not None:
        for s, f in found:
            if s == step:
                return f
        raise CheckpointError(f"no checkpoint for step {step} (have {[s for s, _ in found]})",
                              where=str(path), fix="pick one of the steps listed.")
    if not found:
        raise CheckpointError("the run directory holds no checkpoint", where=str(path / "checkpoints"),
                              fix="train first (`gantk train STACK.toml --out RUN_DIR`).")
    errors = []
    for s, f in reversed(found):  # newest intact one wins
        try:
            Checkpoint(f)
            if errors and warn is not None:
                warn(f"skipped damaged checkpoint(s): {'; '.join(errors)}; using {f.name}")
            return f
        except CheckpointError as exc:
            errors.append(f"{f.name} ({exc.message})")
    raise CheckpointError("every checkpoint in the run directory is damaged: " + "; ".join(errors),
                          where=str(path / "checkpoints"),
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

    # ------------------------------------------------------------------ files
    def write_spec(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        d = self.pipe.spec.to_dict()
        (self.dir / "spec.json").write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
        (self.dir / "spec.toml").write_text(spec_to_toml(d))

    def checkpoint(self, *, name: str | None = None, extra: dict[str, Any] | None = None) -> Path:
        path = self.dir / "checkpoints" / (name or f"step_{self.pipe.step:08d}.safetensors")
        self.pipe.save_checkpoint(path, extra=extra)
        keep = self.pipe.spec.train.keep_checkpoints
        for _, old in list_checkpoints(self.dir)[:-keep]:
            old.unlink(missing_ok=True)
        return path

    def log(self, row: dict[str, Any], file: str = "metrics.jsonl") -> None:
        with open(self.dir / file, "a") as fh:
            fh.write(json.dumps(row) + "\n")

    def samples(self) -> Path:
        pipe = self.pipe
        n = pipe.spec.train.num_samples
        if pipe.data_info.kind == "points":
            n = max(n, 2000)
        with torch.random.fork_rng(devices=[pipe.device] if pipe.device.type == "cuda" else []):
            torch.manual_seed(pipe.spec.seed + 12345)  # the same latents every time: comparable
            x = pipe.sample(n)
        return pipe.save_picture(x, self.dir / "samples" / f"step_{pipe.step:08d}.png",
                                 title=f"{pipe.spec.shorthand} step {pipe.step}")

    # ------------------------------------------------------------------ resume
    def prepare(self) -> None:
        """Resume from the newest intact checkpoint, or start the directory."""
        pipe = self.pipe
        found = list_checkpoints(self.dir)
        if found and pipe.step == 0:
            stored = json.loads((self.dir / "spec.json").read_text()) if (self.dir / "spec.json").exists() else None
            mine = pipe.spec.to_dict()
            if stored is not None:
                diff = _diff(stored, mine, ignore={"train.steps"})
                if diff:
                    raise TrainingError(
                        "the run directory holds a run of a different stack (" + "; ".join(diff[:5])
                        + ")", where=str(self.dir),
                        fix="train into a new --out directory, or run the same stack to resume "
                            "(only train.steps may change between runs).")
            path = find_checkpoint(self.dir, warn=self._warn)
            pipe.load_checkpoint(Checkpoint(path), optimizers=True)
            self._truncate_logs(pipe.step)
            self._restore_best()
            self._say(f"resuming {self.dir} from step {pipe.step} ({path.name})")
        self.write_spec()

    def _restore_best(self) -> None:
        """Carry the best value over a resume, so best.safetensors only ever improves."""
        from .checkpoint import read_extra

        best, key = self.dir / "checkpoints" / "best.safetensors", self.pipe.spec.train.best_metric
        if key is None or not best.exists():
            return
        try:
            stored = read_extra(best).get("best", {})
        except Exception:  # an unreadable best file is simply replaced by the next best
            return
        if key in stored:
            self._best = float(stored[key])

    def _truncate_logs(self, step: int) -> None:
        for name in ("metrics.jsonl", "eval.jsonl"):
            f = self.dir / name
            if f.exists():
                rows = [ln for ln in f.read_text().splitlines() if ln.strip()]
                keep = [ln for ln in rows if json.loads(ln).get("step", 0) <= step]
                f.write_text("".join(ln + "\n" for ln in keep))

    def _say(self, text: str) -> None:
        from rich.console import Console

        (self.console or Console(stderr=True)).print(text, markup=False, highlight=False)

    def _warn(self, text: str) -> None:
        from rich.console import Console
        from rich.text import Text

        (self.console or Console(stderr=True)).print(Text.assemble(("warning: ", "yellow"), text))

    # ------------------------------------------------------------------ loop
    def loop(self, target: int, *, progress: bool = True) -> dict[str, float]:
        from .progress import TrainProgress

        pipe, train = self.pipe, self.pipe.spec.train
        pipe.backbone.train()
        floats: dict[str, float] = {}
        logs: dict[str, torch.Tensor] = {}
        window: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        bar = TrainProgress(start=pipe.step, total=target, enabled=progress,
                            log_every=train.log_every)
        self.console = bar.console
        t_last, s_last = time.perf_counter(), pipe.step
        with bar:
            while pipe.step < target:
                logs = pipe.trainer.step(pipe.step + 1, pipe.stream)
                pipe.step += 1
                step = pipe.step
                last = step == target
                for k, v in logs.items():  # window means: lazy terms (r1, path_length) show too
                    window[k] = window[k] + v if k in window else v
                    counts[k] = counts.get(k, 0) + 1
                floats = {}
                if step % train.log_every == 0 or last:
                    floats = {k: float(v) / counts[k] for k, v in window.items()}
                    window, counts = {}, {}
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
                if (train.ckpt_every and step % train.ckpt_every == 0) or last:
                    self.checkpoint()
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
        record_eval(self.dir, row, step=pipe.step, metrics=train.eval_metrics, source="eval_every")
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


def _diff(a: Any, b: Any, *, prefix: str = "", ignore: set[str] = frozenset()) -> list[str]:
    if prefix in ignore:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), prefix=f"{prefix}.{k}" if prefix else k, ignore=ignore)
        return out
    return [] if a == b else [f"{prefix}: {a!r} then, {b!r} now"]
