"""One progress line to stderr every few seconds while a long stage of an evaluation runs.

``evaluate`` shows a bar over the batches it generates and extracts; the metrics that follow (KID's
subsets, PRDC's neighbour search, the JSD's k-means) run without one and can take minutes at large
``n``. :class:`Heartbeat` fills that gap without touching the metric interface: a daemon thread
writes ``evaluate: scoring kid (2/6), 12 s`` every ``every`` seconds while a stage lasts, only on a
terminal (logs and pipes stay clean), and nothing at all for a stage that ends sooner.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

#: seconds between two lines
EVERY = 5.0


class Heartbeat:
    def __init__(self, enabled: bool = True, *, every: float | None = None, label: str = "evaluate",
                 stream: IO[str] | None = None, tty_only: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled and (is_tty or not tty_only)
        self.every, self.label = EVERY if every is None else every, label
        self._text = ""
        self._since = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def stage(self, text: str) -> None:
        """The stage now running; its clock starts now."""
        self._text, self._since = text, time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if self._text:
                elapsed = time.perf_counter() - self._since
                try:
                    self.stream.write(f"{self.label}: {self._text}, {elapsed:.0f} s\n")
                    self.stream.flush()
                except (OSError, ValueError):  # a closed stream: stop quietly
                    return

    def __enter__(self) -> Heartbeat:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="gantk-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
