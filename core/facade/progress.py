"""The training progress display: a rich bar (step, losses, it/s, ETA) on a terminal, one plain
line per logging step elsewhere (CI logs, pipes) when training into a run directory."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

_SHOWN = ("loss/d", "loss/g")


def _fmt(logs: dict[str, float], limit: int = 4) -> str:
    keys = [k for k in _SHOWN if k in logs] + [k for k in logs if k not in _SHOWN
                                                   and not k.startswith("d/") and k != "it_per_s"]
    return "  ".join(f"{k.removeprefix('loss/')}={logs[k]:.4g}" for k in keys[:limit])


class TrainProgress:
    def __init__(self, *, start: int, total: int, enabled: bool = True, log_every: int = 50,
                 live_only: bool = False) -> None:
        """``live_only``: show only the live bar (stderr a terminal), no plain lines elsewhere:
        training in memory stays quiet in a notebook, CI or a pipe."""
        self.console = Console(stderr=True)
        self.enabled = enabled and (self.console.is_terminal or not live_only)
        self.live = self.enabled and self.console.is_terminal
        self.total, self.start, self.log_every = total, start, log_every
        self._progress: Progress | None = None
        self._task = None
        self._text = ""

    def __enter__(self) -> TrainProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(),
                TextColumn("{task.fields[losses]}"),
                TextColumn("[cyan]{task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.console, transient=False)
            self._progress.__enter__()
            self._task = self._progress.add_task("train", total=self.total, completed=self.start,
                                                 losses="", rate="")
        return self

    def note(self, text: str) -> None:
        """One line before the bar (when the display is on)."""
        if self.enabled:
            self.console.print(text, markup=False, highlight=False)

    def update(self, step: int, logs: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            fields = {}
            if logs:
                fields["losses"] = _fmt(logs)
                task = self._progress.tasks[0]
                if task.speed:
                    fields["rate"] = f"{task.speed:.1f} it/s"
            self._progress.update(self._task, completed=step, **fields)
        elif logs:
            rate = logs.get("it_per_s")
            self.console.print(f"step {step}/{self.total}  {_fmt(logs)}"
                               + (f"  {rate:.1f} it/s" if rate else ""), highlight=False)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
