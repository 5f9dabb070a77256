"""Number formatting and JSON conversion shared by the statistics and the trends."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_DIRECTIONS = {"lower": "lower", "min": "lower", "higher": "higher", "max": "higher", "": ""}


def norm_direction(better: str | None, *, allow_unknown: bool = True) -> str:
    key = (better or "").strip().lower()
    if key not in _DIRECTIONS or (not allow_unknown and not _DIRECTIONS[key]):
        raise ValueError("better must be 'lower' or 'higher' ('min'/'max' accepted), "
                         f"got {better!r}")
    return _DIRECTIONS[key]


def to_json(x: Any) -> Any:
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, tuple | list):
        return [to_json(v) for v in x]
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    return x


def fmt(x: float, signed: bool = False) -> str:
    if not math.isfinite(x):
        return "n/a"
    s = np.format_float_positional(float(x), precision=3, unique=False, fractional=False, trim="-")
    return ("+" + s if signed and x >= 0 else s)


def fmt_ci(lo: float, hi: float) -> str:
    return f" [{fmt(lo, True)}, {fmt(hi, True)}]" if math.isfinite(lo) else ""


def near_alpha(p: float, alpha: float) -> bool:
    """Whether p is close enough to alpha that two significant digits could round it onto alpha
    (0.0497 -> "0.05"): printed with three then."""
    return 0.9 * alpha <= p < 1.1 * alpha


def fmt_p(p: float, alpha: float = 0.05) -> str:
    if not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    return f"= {p:.3g}" if near_alpha(p, alpha) else f"= {p:.2g}"


def all_equal(d: np.ndarray) -> bool:
    return bool(np.ptp(d) <= 8 * np.finfo(float).eps * np.max(np.abs(d)))
