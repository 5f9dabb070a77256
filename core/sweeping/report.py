"""A sweep summary's files: ``summary.md``, ``.json``, ``.csv``, ``.png`` (the paired differences
with their confidence intervals) and ``summary_curves.png`` (the training curves).

The numbers come from :class:`gantk.sweep_summary.Summary`; this module only lays them out. The
row texts are shared with the terminal table of ``gantk sweep``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..base.safeio import atomic_write
from .summary import Summary
from .numbers import near_alpha
from .verdicts import fmt_num, trend_meaning

ARROWS = {"min": "lower is better", "max": "higher is better"}
SHORT = {"no difference detected": "n.d.", "too few seeds": "too few seeds"}


def mean_sd(st: dict[str, Any] | None) -> str:
    """``mean ± sd`` at the precision the spread justifies."""
    if st is None:
        return "n/a"
    sd = st["std"]
    scale = sd if isinstance(sd, float) and math.isfinite(sd) and sd > 0 else None
    if sd == 0:  # every seed gave the same value: no spread, but not unknown
        return f"{fmt_num(st['mean'])} ± 0"
    return f"{fmt_num(st['mean'], scale)} ± {fmt_num(sd, scale) if scale else 'n/a'}"


def effect(v: dict[str, Any]) -> str:
    """``+0.12 [0.03, 0.21]``: the mean paired difference and its CI."""
    lo, hi = v.get("ci_low"), v.get("ci_high")
    half = (hi - lo) / 2 if lo is not None and hi is not None else None
    scale = half if half else (abs(v["mean"]) / 10 if v.get("mean") else None)
    text = fmt_num(v["mean"], scale)
    if v.get("mean") is not None and v["mean"] >= 0:
        text = "+" + text
    if lo is not None and hi is not None:
        text += f" [{fmt_num(lo, scale)}, {fmt_num(hi, scale)}]"
    return text


def p_text(p: float | None, alpha: float = 0.05) -> str:
    """Two significant digits, three near ``alpha`` (:func:`gantk.sweeping.numbers.near_alpha`),
    so that a p just under it never reads as alpha itself."""
    if p is None:
        return "n/a"
    if p < 0.001:
        return "<0.001"
    if near_alpha(p, alpha):
        return f"{p:.3g}"
    return f"{p:.2g}" if p < 0.095 else f"{p:.2f}"


def verdict_text(v: dict[str, Any], short: bool = False) -> str:
    word = SHORT.get(v["verdict"], v["verdict"]) if short else v["verdict"]
    if v["verdict"] == "no difference detected":
        mde = v.get("mde")
        word += (f" (MDE {fmt_num(mde, mde / 10)})" if mde else
                 " (MDE n/a)" if short else "")
    return word


def verdict_table(verdicts: list[dict[str, Any]]) -> list[str]:
    """The markdown table of verdicts (primary keys in bold), as summary.md shows it."""
    lines = ["| cell | key | n | Δ [CI] | p | p (Holm) | k/n | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        key = f"**{v['metric']}**" if v["primary"] else v["metric"]
        lines.append(f"| {v['cell']} | {key} | {v['n']} | {effect(v)} | {p_text(v['p'])} | "
                     f"{p_text(v['p_adj'])} | {v['k_better']}/{v['n']} | {verdict_text(v)} |")
    return lines


def legend(s: Summary) -> list[str]:
    """What the verdict columns mean, in sentences."""
    proto = s.protocol
    primary = ", ".join(proto.get("primary") or []) or "none declared (every key is secondary)"
    cells = len([c for c in s.cells if c.cell != s.baseline])
    return [f"Primary: {primary}. Δ: mean of the per-seed paired differences (cell - baseline, "
            f"runs of one seed paired) with its {100 * (1 - proto.get('alpha', 0.05)):.0f}% "
            f"confidence interval; p: {proto.get('test_name', 'paired t')} test, Holm-corrected "
            f"over the {cells} cell(s) x the primary key(s), and separately over the secondary "
            f"keys x cells; score: {proto.get('score', 'final evaluation')}.",
            "Verdict: better/worse when the corrected p < alpha; n.d. = no difference detected, "
            "with MDE = the smallest |Δ| this sweep could detect with 80% power at its n "
            "(not evidence of no effect); k/n = seeds on which the cell scored better."]


def write_markdown(s: Summary, path: Path) -> Path:
    lines = [f"# Sweep {s.name}", "", f"Baseline cell: **{s.baseline}**. Mean ± sample std over "
             "the seeds that finished (n).", ""]
    for k, v in s.spaces.items():
        lines.append(f"- {k}: {v}")
    for k in s.keys:
        lines.append(f"- {k}: {ARROWS.get(s.directions.get(k, ''), 'no direction')}"
                     + (" (**primary**)" if k in s.protocol.get("primary", []) else ""))
    for c in s.cells:
        if c.shared:
            lines.append(f"- {c.cell}: {c.shared}")
    lines += [f"- **Warning:** {note}" for note in s.notes]
    lines += ["", "## Verdicts", ""] + legend(s) + [""]
    lines += verdict_table(s.verdicts)
    lines += ["", "## Means over seeds", "", "| cell | n | " + " | ".join(s.keys) + " |",
              "|---|---|" + "---|" * len(s.keys)]
    for c in s.cells:
        ns = sorted({st["n"] for st in c.stats.values()}) or [0]
        name = f"**{c.cell}** (baseline)" if c.cell == s.baseline else c.cell
        lines.append(f"| {name} | {'/'.join(map(str, ns))} | "
                     + " | ".join(mean_sd(c.stats.get(k)) for k in s.keys) + " |")
    lines += ["", "## Per-seed values", "", "| cell | key | " + " | ".join(
        f"seed {sd}" for sd in _seeds(s)) + " |", "|---|---|" + "---|" * len(_seeds(s))]
    for c in s.cells:
        for k in s.keys:
            st = c.stats.get(k)
            if st is None:
                continue
            by = dict(zip(st["seeds"], st["values"]))
            lines.append(f"| {c.cell} | {k} | " + " | ".join(
                f"{by[sd]:.4g}" if sd in by else "" for sd in _seeds(s)) + " |")
    problems = [(c.cell, seed, err) for c in s.cells for seed, err in sorted(c.failed.items())]
    if problems:
        lines += ["", "## Failed runs", ""]
        lines += [f"- {cell} seed {seed}: {err}" for cell, seed, err in problems]
    pending = [(c.cell, seed) for c in s.cells for seed in c.pending]
    if pending:
        lines += ["", "Not finished: " + ", ".join(f"{c} seed {sd}" for c, sd in pending)]
    if s.stopped:
        lines += ["", "Stopped by a signal to their own process, not failed (the same command "
                  "resumes them): " + ", ".join(s.stopped)]
    lines += _curve_lines(s)
    return atomic_write(path, "\n".join(lines) + "\n")


def _seeds(s: Summary) -> list[int]:
    return sorted({sd for c in s.cells for st in c.stats.values() for sd in st["seeds"]})


def convergence_lines(s: Summary) -> list[str]:
    return [f"{k}: {c['sentence']}: {trend_meaning(c['status'])}"
            for k, c in s.convergence.items()]


def _curve_lines(s: Summary) -> list[str]:
    if not s.curves:
        return []
    lines = ["", "## Training curves", "",
             "From the in-training evaluations (`train.eval_every`; their own sample count): "
             "mean ± std over the seeds that reached each step (n). Convergence of the baseline: "
             "the change over the last quarter of training from a straight-line fit to every "
             "evaluation in it, per seed, with a t interval over seeds.", ""]
    lines += [f"- {line}" for line in convergence_lines(s)]
    for key, c in s.convergence.items():
        per = c.get("per_seed") or {}
        if per:
            lines.append(f"- {key}, per seed (change over the last quarter): " + ", ".join(
                f"seed {sd} {fmt_num(v['change'])}" for sd, v in per.items()))
    names = [c.cell for c in s.cells if c.cell in s.curves]
    for key in sorted({k for per in s.curves.values() for k in per}):
        steps = sorted({p["step"] for cell in names for p in s.curves[cell].get(key, [])})
        at = {cell: {p["step"]: p for p in s.curves[cell].get(key, [])} for cell in names}
        lines += ["", f"| {key}: step | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for step in steps:
            row = []
            for cell in names:
                p = at[cell].get(step)
                row.append("" if p is None else f"{mean_sd(p)} ({p['n']})")
            lines.append(f"| {step} | " + " | ".join(row) + " |")
    return lines


def write_csv(s: Summary, path: Path) -> Path:
    """One row per (cell, key): the cell's mean ± std and raw values, and its verdict."""
    fh = io.StringIO(newline="")  # the rows, then one atomic write
    w = csv.writer(fh)
    w.writerow(["cell", "metric", "baseline", "mean", "std", "n", "seeds", "values",
                "primary", "score", "diff", "ci_low", "ci_high", "p", "p_holm", "test",
                "k_better", "mde", "verdict"])
    for c in s.cells:
        for k in s.keys:
            st = c.stats.get(k)
            if st is None:
                continue
            v = s.verdict(c.cell, k) or {}
            w.writerow([c.cell, k, c.cell == s.baseline, repr(st["mean"]), repr(st["std"]),
                        st["n"], " ".join(map(str, st["seeds"])),
                        " ".join(repr(x) for x in st["values"]),
                        k in s.protocol.get("primary", []), v.get("score", ""),
                        *(("" if v.get(f) is None else repr(v[f])) for f in
                          ("mean", "ci_low", "ci_high", "p", "p_adj")),
                        v.get("test", ""), v.get("k_better", ""),
                        "" if v.get("mde") is None else repr(v["mde"]), v.get("verdict", "")])
    return atomic_write(path, fh.getvalue())


def write_json(s: Summary, path: Path) -> Path:
    return atomic_write(path, json.dumps(s.as_dict(), indent=2, allow_nan=True) + "\n")


COLOURS = {"better": "tab:green", "worse": "tab:red", "differs": "tab:orange"}


def write_figure(s: Summary, path: Path) -> Path | None:
    """One panel per key (primary first): each cell's mean paired difference to the baseline with
    its confidence interval, the per-seed differences as dots, and the zero line."""

    if not s.verdicts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..sample.viz import save_figure

    keys = list(dict.fromkeys(v["metric"] for v in s.verdicts))
    cells = list(dict.fromkeys(v["cell"] for v in s.verdicts))
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, (0.9 + 0.5 * len(cells)) * rows + 0.9),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for i, cell in enumerate(cells):
            v = s.verdict(cell, key)
            if v is None or v["mean"] is None:
                continue
            colour = COLOURS.get(v["verdict"], "grey")
            lo, hi = v["ci_low"], v["ci_high"]
            if lo is not None and hi is not None:
                ax.errorbar(v["mean"], i, xerr=[[v["mean"] - lo], [hi - v["mean"]]], fmt="o",
                            color=colour, capsize=4, lw=2)
            else:
                ax.plot(v["mean"], i, "o", color=colour)
            ax.plot(v["diffs"], [i + 0.18] * len(v["diffs"]), ".", color="black", alpha=0.5, ms=5)
            ax.annotate(f"{verdict_text(v, short=True)}, p {p_text(v['p_adj'])}", (0, i - 0.3),
                        xycoords=("axes fraction", "data"), fontsize=7, color=colour)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(cells)), cells, fontsize=8)
        ax.set_ylim(len(cells) - 0.4, -0.7)
        d = s.directions.get(key, "")
        role = "primary" if key in s.protocol.get("primary", []) else "secondary"
        ax.set_title(f"{key} ({role}; {ARROWS.get(d, 'no direction')})", fontsize=9)
        ax.set_xlabel(f"Δ {key} vs {s.baseline}", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    return save_figure(fig, path, f"{s.name}: paired difference to the baseline per seed (dots), "
                                  f"mean with {100 * (1 - s.protocol.get('alpha', 0.05)):.0f}% CI "
                                  "(green better, red worse, grey no difference detected; "
                                  "p Holm-corrected)")


def write_curves_figure(s: Summary, path: Path) -> Path | None:
    """One panel per evaluated key: each training cell's mean over steps, +- std as a band."""

    keys = sorted({k for per in s.curves.values() for k in per})
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..sample.viz import save_figure

    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for cell, per in s.curves.items():
            pts = per.get(key, [])
            if not pts:
                continue
            x = np.array([p["step"] for p in pts])
            m = np.array([p["mean"] for p in pts])
            sd = np.nan_to_num(np.array([p["std"] for p in pts]))
            width = 2.2 if cell == s.baseline else 1.2
            line, = ax.plot(x, m, lw=width, label=cell + (" (baseline)" if cell == s.baseline
                                                          else ""))
            ax.fill_between(x, m - sd, m + sd, color=line.get_color(), alpha=0.15)
        ax.set_title(f"{key} ({ARROWS.get(s.directions.get(key, ''), 'no direction')})", fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path, f"{s.name}: in-training evaluations, mean ± std over seeds "
                                  "(band)")


def write_all(s: Summary, out: Path, stem: str = "summary") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [write_markdown(s, out / f"{stem}.md"), write_json(s, out / f"{stem}.json"),
             write_csv(s, out / f"{stem}.csv"), write_figure(s, out / f"{stem}.png"),
             write_curves_figure(s, out / f"{stem}_curves.png")]
    return [f for f in files if f is not None]
