"""The one training loop: ``Pipeline.train()`` runs it with or without a run directory.

Each step is the trainer's (:class:`gantk.train.trainer.Trainer`, the one place that orders a
step); around it the loop keeps the log window (per-key sums since the last logged row, so lazy
terms such as ``r1`` that appear every k steps still show as means), averages it over the
processes every ``train.log_every`` steps and at the end, and calls the ``gantk_on_step_end``
hook with those means (an empty dict between log rows) whether or not anything is written.

The loop sets torch's CPU thread count first (:mod:`gantk.facade.threads`; the choice is one
line on stderr). The progress bar shows on a terminal (stderr a tty) with or without a run
directory; elsewhere (a notebook, CI, a pipe) only a run's plain line per logged step shows, and
``progress=False`` silences both. With a run directory (a :class:`gantk.facade.writer.RunWriter`)
the loop also writes the metric rows and hands every step to :meth:`RunWriter.after_step` (pictures,
evaluations, checkpoints); SIGINT/SIGTERM then stop at the next step boundary with a checkpoint.
In memory a Ctrl-C interrupts at once, as in any Python loop: there is nothing to save.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch

from ..train.distributed import is_main
from ..train.signals import deferred_stop
from .progress import TrainProgress
from .threads import apply_threads



class LogWindow:
    """Sums and counts of each logged value since the last row (a run directory's writer keeps
    its own, restored on resume, so the rows after a resume are the uninterrupted run's)."""

    def __init__(self) -> None:
        self.window: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}


def train_steps(pipe: Any, target: int, *, writer: Any = None,
                progress: bool = True) -> dict[str, float]:
    """Train ``pipe`` (a :class:`gantk.Pipeline`; typed Any, as the Pipeline imports this module)
    until ``pipe.step == target``; returns the last row's means (``{}`` when no step ran)."""

    train = pipe.spec.train
    acc: Any = writer if writer is not None else LogWindow()
    pipe.backbone.train()
    floats: dict[str, float] = {}
    logs: dict[str, torch.Tensor] = {}
    threads = apply_threads(train.threads, getattr(writer, "threads", None))
    bar = TrainProgress(start=pipe.step, total=target, log_every=train.log_every,
                        enabled=progress and is_main(), live_only=writer is None)
    if pipe.device.type == "cpu" and target > pipe.step:
        bar.note(threads.line())
    if writer is not None:
        writer.console = bar.console
    stopping = deferred_stop() if writer is not None else contextlib.nullcontext()
    t_last, s_last = time.perf_counter(), pipe.step
    with bar, stopping as stop:
        if pipe.step < target:  # built on first use: not by a call that trains no step
            trainer, stream = pipe.trainer, pipe.stream
        while pipe.step < target:
            logs = trainer.step(pipe.step + 1, stream)
            pipe.step += 1
            step = pipe.step
            last = step == target
            for k, v in logs.items():  # window means: lazy terms (r1, path_length) show too
                acc.window[k] = acc.window[k] + v if k in acc.window else v
                acc.counts[k] = acc.counts.get(k, 0) + 1
            floats = {}
            if step % train.log_every == 0 or last:
                floats = pipe.world.mean_over_ranks(
                    {k: float(v) / acc.counts[k] for k, v in acc.window.items()})
                acc.window, acc.counts = {}, {}
                now = time.perf_counter()
                rate = (step - s_last) / max(now - t_last, 1e-9)
                t_last, s_last = now, step
                if writer is not None:
                    writer.log({"step": step, **floats, "it_per_s": rate, "time": time.time()})
            bar.update(step, {**floats, "it_per_s": rate} if floats else floats)
            pipe.manager.hook.gantk_on_step_end(pipeline=pipe, step=step, logs=floats)
            if writer is not None:
                writer.after_step(step, last, stop)
    return floats or {k: float(v) for k, v in logs.items()}
