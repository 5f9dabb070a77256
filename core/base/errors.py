"""Errors a user can act on.

Every error gantk raises on purpose is a :class:`GantkError`: one paragraph that names the place
(a TOML path such as ``methods[1].lambda_latent``, a file, a plugin) and the fix. The CLI prints
the paragraph and exits non-zero; the traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GantkError(Exception):
    """Base class: ``where`` names the place, ``fix`` says what to do about it."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.message = message.strip()
        self.where = where
        self.fix = fix
        super().__init__(self.paragraph())

    def paragraph(self) -> str:
        parts = []
        if self.where:
            parts.append(f"{self.where}: {self.message}")
        else:
            parts.append(self.message)
        if self.fix:
            parts.append(f"Fix: {self.fix}")
        return " ".join(p.rstrip() for p in parts)


class SpecError(GantkError):
    """A stack file or override that does not validate (syntax, unknown names, bad values)."""


class IncompatibleStackError(SpecError):
    """A stack whose parts cannot work together (missing labels, missing D features, conflicts)."""


class PluginError(GantkError):
    """A plugin that failed to load or registered something invalid."""


class CheckpointError(GantkError):
    """A checkpoint that is truncated, foreign, or does not match the stack."""


class DataError(GantkError):
    """A data set that is missing, unreadable, or has the wrong shape."""


class TrainingError(GantkError):
    """Training cannot go on (a NaN or inf loss, a broken run directory)."""

    exit_code = 3


class SweepError(GantkError):
    """A sweep file that cannot be run as written."""


# The fix of every "non-finite" error (the trainer's loss check, a checkpoint that would hold NaN
# weights, the end-of-training check): one text, kept here because all three layers raise it.
NONFINITE_FIX = (
    "the newest checkpoint in RUN_DIR/checkpoints is intact. To go on with a lower learning rate "
    "(or other train.* settings), fork the run into a new directory: `gantk train STACK.toml "
    "--out NEW_RUN --fork-from RUN_DIR --set train.lr_g=... --set train.lr_d=...` (see "
    "docs/reliability.md); running the same command again resumes with the same settings.")


def some(items: list[str], *, n: int = 4, sep: str = "; ", each: int = 300) -> str:
    """The first ``n`` of ``items`` joined, then how many more there are: a message about
    hundreds of problems stays a paragraph."""

    shown = sep.join(str(i) if len(str(i)) <= each else str(i)[:each] + "..." for i in items[:n])
    return shown + (f"{sep}and {len(items) - n} more" if len(items) > n else "")


def suggest(name: str, choices: Iterable[str], *, n: int = 3) -> str:
    """``"did you mean 'x' or 'y'?"`` for the closest choices, or ``""`` when none is close."""

    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.6)
    if not close:
        return ""
    quoted = " or ".join(repr(c) for c in close)
    return f"did you mean {quoted}?"
