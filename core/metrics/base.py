"""The metric object protocol, and the arrays a metric receives.

A metric is what ``register.metric(name, factory, params=Params)`` produces: ``factory(params)``
returns an object with

* ``name`` - the registered name;
* ``directions`` - ``{output_key: "min" | "max"}``, one entry per score it returns (which way is
  better; ``gantk.evaluate.metric_direction`` and best-checkpoint selection read it);
* ``extras`` - output keys that describe the computation rather than score it (a split's
  standard deviation, the number of bins used), reported but never used to pick checkpoints;
* ``requires(info) -> set[str]`` - which inputs it reads from a :class:`FeatureSet`
  (``"embedding"``, ``"probs"``, ``"digit_probs"``, ``"raw"``), so that ``evaluate`` runs each
  feature net once for all metrics and only when some metric needs it;
* ``uses_real`` - False for scores of the generated set alone (IS, mode counts), so the real
  data is not run through the feature nets for them; ``real`` is then an empty FeatureSet;
* ``__call__(real, fake, info) -> dict[str, float]`` - the scores, keyed as in ``directions``.

Subclass :class:`Metric` to get the bookkeeping. Metrics are pure over arrays: they never see the
generator, so every metric scores exactly the same samples in one evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..base.errors import GantkError

INPUTS = ("embedding", "probs", "digit_probs", "raw")


class MetricError(GantkError):
    """A metric that cannot be computed here (missing weights, wrong data kind, bad options)."""


@dataclass
class FeatureSet:
    """What the feature nets made of one sample set (real or generated).

    ``embedding`` (N, d): the feature space of FID/KID/PRDC/JSD, named by ``space``;
    ``probs`` (N, K) or (N, channels, K): class probabilities of the score net (Inception or the
    digits classifier; per-channel rows are independent factors of a joint label), named by
    ``probs_space``; ``digit_probs`` (N, channels, 10): the digits classifier's probabilities,
    for mode counts; ``raw`` (N, 2): 2-D points as generated.
    """

    embedding: np.ndarray | None = None
    probs: np.ndarray | None = None
    digit_probs: np.ndarray | None = None
    raw: np.ndarray | None = None
    space: str = ""
    probs_space: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        for arr in (self.embedding, self.probs, self.digit_probs, self.raw):
            if arr is not None:
                return len(arr)
        return 0

    def need(self, key: str, metric: str) -> np.ndarray:
        arr = getattr(self, key)
        if arr is None:
            raise MetricError(f"metric {metric!r} needs {key!r} features, which were not computed",
                              where=f"metric {metric}",
                              fix="declare the input in the metric's requires(info).")
        return arr


class Metric:
    """Base class for metric objects (see the module docstring for the protocol)."""

    name: ClassVar[str] = "metric"
    directions: ClassVar[dict[str, str]] = {}
    extras: ClassVar[tuple[str, ...]] = ()
    inputs: ClassVar[frozenset[str]] = frozenset({"embedding"})
    uses_real: ClassVar[bool] = True

    def __init__(self, params: Any = None) -> None:
        self.params = params

    def requires(self, info: Any) -> set[str]:
        return set(self.inputs)

    def __call__(self, real: FeatureSet, fake: FeatureSet, info: Any) -> dict[str, float]:
        raise NotImplementedError  # pragma: no cover - abstract


def as_float64(x: Any) -> np.ndarray:
    """Arrays for the statistics: float64 numpy, 2-D."""

    arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    return arr.reshape(len(arr), -1)
