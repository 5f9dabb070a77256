"""Which keys of a stored stack make it a different stack, and how two stacks differ.

A run directory resumes, samples and evaluates with any *bookkeeping* key changed: the
``train.*`` keys that say how a run is watched and run (steps, intervals, workers, threads, the
process-group timeout), ``data.download`` (whether a data set may be fetched: the same data
either way), ``data.in_memory`` (the same pixels in the same order, read once or per epoch) and
``data.max_pixels`` (a safety limit checked before decoding). Everything under ``backbone``, ``loss``, ``methods`` and ``data`` otherwise makes
another stack. One list, read by the resume rule, the checkpoint loader and the run-directory
reader (:mod:`gantk.store.rundirs`, :mod:`gantk.facade`), and by docs/stacks.md.

Also :func:`shell`, the one way a suggested command quotes what it echoes (``shlex.quote``), so a
path or a package name taken from a file cannot inject a command into a copied suggestion.
"""

from __future__ import annotations

import shlex
from typing import Any

BOOKKEEPING = frozenset({*(f"train.{k}" for k in (
    "steps", "log_every", "sample_every", "ckpt_every", "keep_checkpoints", "eval_every",
    "eval_n", "eval_metrics", "num_samples", "loggers", "workers", "threads", "dist_timeout")),
    "data.download", "data.in_memory", "data.max_pixels"})
NETWORK_KEYS = ("backbone", "loss", "methods", "data")


def shell(*words: Any, quote: tuple[int, ...] = ()) -> str:
    """``words`` as one shell command line, each quoted where it needs it (shlex.quote); the
    words at the positions in ``quote`` always (``pip install 'pkg==1.0'``)."""

    def one(i: int, w: Any) -> str:
        q = shlex.quote(str(w))
        if i in quote and q == str(w):
            return "'" + q + "'"  # nothing in it needed quoting, so no quote is inside either
        return q

    return " ".join(one(i, w) for i, w in enumerate(words))


def spec_diff(a: Any, b: Any, *, prefix: str = "", ignore: frozenset[str] | set[str] = frozenset(),
              labels: tuple[str, str] = ("then", "now")) -> list[str]:
    """``"KEY: A then, B now"`` for each leaf where ``a`` and ``b`` differ (``ignore``: dotted
    keys left out)."""
    if prefix in ignore:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += spec_diff(a.get(k), b.get(k), prefix=f"{prefix}.{k}" if prefix else k,
                             ignore=ignore, labels=labels)
        return out
    return [] if a == b else [f"{prefix}: {a!r} {labels[0]}, {b!r} {labels[1]}"]


def stack_diff(a: dict[str, Any], b: dict[str, Any], *,
               labels: tuple[str, str] = ("then", "now")) -> list[str]:
    """How two stored specs' networks differ (bookkeeping keys never count)."""
    return [d for k in NETWORK_KEYS
            for d in spec_diff(a.get(k), b.get(k), prefix=k, ignore=BOOKKEEPING, labels=labels)]


def same_stack(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two stored specs describe the same networks (train.* settings may differ)."""
    return not stack_diff(a, b)


def leaf_diffs(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, value in a)`` for each leaf of ``a`` that differs in ``b`` (for ``--set``
    suggestions; a list such as ``methods`` is one leaf)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [x for k in sorted(set(a) | set(b))
                for x in leaf_diffs(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)]
    return [] if a == b else [(prefix, a)]


def set_flags(a: dict[str, Any], b: dict[str, Any], *, limit: int = 4) -> str:
    """``--set KEY=VALUE`` flags that turn ``b``'s settings back into ``a``'s (quoted), or ``""``
    when a difference cannot be written as a flag (a list of methods, a removed key)."""
    import json

    flags = []
    for key, value in leaf_diffs({k: a.get(k) for k in (*NETWORK_KEYS, "train")},
                                 {k: b.get(k) for k in (*NETWORK_KEYS, "train")}):
        if key in BOOKKEEPING or key.startswith("methods") or value is None:
            continue
        if not isinstance(value, (str, int, float, bool, list)):
            return ""
        flags.append(shell("--set", f"{key}={json.dumps(value)}"))
    return " ".join(flags[:limit]) if len(flags) <= limit else ""
