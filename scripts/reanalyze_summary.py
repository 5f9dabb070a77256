"""Re-derive the verdicts of a stored sweep summary with the paired protocol (docs/sweeps.md,
"Verdicts"), from its per-seed values alone: no run directory and no training needed.

The summaries under docs/results were written by earlier versions of `gantk sweep`, whose verdict
was "the difference exceeds both cells' std". Their per-seed values are stored (each cell's
``seeds`` with one value per finished seed), so the paired tests can be computed from them. Writes
``verdicts.json`` and ``verdicts.md`` next to the summary (or ``--out``):

    .venv/bin/python scripts/reanalyze_summary.py docs/results/cpu_sweeps/repro_advlat_mnist5k_ema/summary.json --primary fid

Also reads the tables of examples/advlat/search_steps.py (``summary_N.json`` with ``table`` and
``seeds``; baseline K = 0) and of examples/acl/fitted_gaussian.py-style files with the same shape.
Several such tables of disjoint seeds (seeds run in different sessions with the same settings)
are joined seed by seed: give them all, and ``--out``. Each seed's comparison stays within one
generator, so the pairs are sound whichever session made them; the settings must be equal.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from gantk.sweeping.report import verdict_table
from gantk.sweeping.summary import run_curves
from gantk.sweeping.verdicts import trend_meaning, trends, verdicts

TEST_NAMES = {"t": "paired t", "wilcoxon": "Wilcoxon signed-rank",
              "permutation": "sign-flip permutation"}


def from_sweep_summary(data: dict[str, Any]) -> tuple[dict, list[str], str, dict, list[dict]]:
    """(final scores, cells, baseline, directions, per-run evaluation records) of a summary.json."""
    final: dict[str, dict[str, dict[int, float]]] = {}
    cells = []
    for c in data["cells"]:
        cells.append(c["cell"])
        done = [s for s in c["seeds"] if str(s) not in c.get("failed", {})
                and s not in c.get("pending", [])]
        final[c["cell"]] = {}
        for key, st in c["metrics"].items():
            seeds = st.get("seeds") or done
            if len(seeds) != len(st["values"]):
                raise SystemExit(f"{c['cell']} {key}: {len(st['values'])} values for seeds "
                                 f"{seeds}; cannot pair them by seed")
            final[c["cell"]][key] = dict(zip(seeds, st["values"]))
    evals = []
    for cell, per_key in (data.get("curves") or {}).items():
        seeds = next(c for c in data["cells"] if c["cell"] == cell)["seeds"]
        for key, points in per_key.items():
            for p in points:
                if p["n"] != len(seeds) or len(p.get("values", [])) != len(seeds):
                    continue  # a step not every seed reached cannot be assigned to seeds
                for seed, v in zip(seeds, p["values"]):
                    evals.append({"cell": cell, "seed": seed, "records": [{"step": p["step"],
                                                                          key: v}]})
    return final, cells, data["baseline"], data.get("directions", {}), evals


def from_search_steps(data: dict[str, Any]) -> tuple[dict, list[str], str, dict, list[dict]]:
    """The same for examples/advlat/search_steps.py's summary (one generator per seed, sampled
    with K search steps; K = the first entry is the baseline)."""
    seeds = data["seeds"]
    cells = [f"K={k}" for k in data["table"]]
    final = {f"K={k}": {key: dict(zip(seeds, st["values"])) for key, st in per.items()}
             for k, per in data["table"].items()}
    directions = {key: ("min" if key == "fid" else "max") for key in
                  next(iter(data["table"].values()))}
    evals = [{"cell": cells[0], "seed": seed, "records": [{"step": p["step"], "fid": v}]}
             for p in data.get("fid_curve") or [] if len(p.get("values", [])) == len(seeds)
             for seed, v in zip(seeds, p["values"])]  # the in-training FID: the generator's trend
    return final, cells, cells[0], directions, evals


def join_search_steps(tables: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """One search_steps table from several of disjoint seeds and equal settings (but ``out``,
    ``seeds`` and ``device``)."""
    ignore = {"out", "seeds", "device"}
    first = {k: v for k, v in tables[0]["settings"].items() if k not in ignore}
    seeds: list[int] = []
    for data, name in zip(tables, names, strict=True):
        if "table" not in data:
            raise SystemExit(f"{name}: only search_steps tables can be joined")
        mine = {k: v for k, v in data["settings"].items() if k not in ignore}
        if mine != first:
            raise SystemExit(f"{name}: settings differ from {names[0]}: {mine} vs {first}")
        if set(data["table"]) != set(tables[0]["table"]):
            raise SystemExit(f"{name}: other search steps than {names[0]}")
        if set(seeds) & set(data["seeds"]):
            raise SystemExit(f"{name}: seed(s) {sorted(set(seeds) & set(data['seeds']))} twice")
        seeds += list(data["seeds"])
    table = {k: {key: {"values": [v for d in tables for v in d["table"][k][key]["values"]]}
                 for key in tables[0]["table"][k]} for k in tables[0]["table"]}
    curve = []  # in-training FID at the steps every table evaluated on all its seeds
    for step in sorted({p["step"] for p in tables[0].get("fid_curve") or []}):
        points = [next((p for p in d.get("fid_curve") or [] if p["step"] == step
                        and len(p.get("values", [])) == len(d["seeds"])), None) for d in tables]
        if all(points):
            curve.append({"step": step, "n": len(seeds),
                          "values": [v for p in points for v in p["values"]]})
    return {"settings": {**tables[0]["settings"], "seeds": seeds}, "seeds": seeds,
            "table": table, "fid_curve": curve, "joined_from": names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary", nargs="+",
                    help="a summary.json (gantk sweep) or search_steps summary (several "
                         "search_steps summaries of disjoint seeds are joined)")
    ap.add_argument("--primary", action="append", default=[], help="primary key (repeatable)")
    ap.add_argument("--test", default="t", choices=sorted(TEST_NAMES))
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--cells", help="comma-separated cells to compare (default: all)")
    ap.add_argument("--baseline", help="the cell to compare with (default: the summary's)")
    ap.add_argument("--seeds", help="only these seeds, e.g. 1-4 or 1,2,3 (a sensitivity check, "
                                    "e.g. without a pilot seed)")
    ap.add_argument("--out", help="output stem (default: verdicts next to the summary)")
    args = ap.parse_args()

    path = Path(args.summary[0])
    data = json.loads(path.read_text())
    if len(args.summary) > 1:
        if not args.out:
            raise SystemExit("joining several summaries needs --out")
        data = join_search_steps([json.loads(Path(p).read_text()) for p in args.summary],
                                 args.summary)
        Path(args.out).with_name(Path(args.out).name + "_joined_summary.json").write_text(
            json.dumps(data, indent=1) + "\n")
    reader = from_search_steps if "table" in data else from_sweep_summary
    final, cells, baseline, directions, evals = reader(data)
    baseline = args.baseline or baseline
    if args.seeds:
        a, _, b = args.seeds.partition("-")
        keep_seeds = set(range(int(a), int(b) + 1)) if b else {int(x) for x in args.seeds.split(",")}
        final = {c: {k: {sd: v for sd, v in per.items() if int(sd) in keep_seeds}
                     for k, per in keys.items()} for c, keys in final.items()}
        evals = [e for e in evals if int(e["seed"]) in keep_seeds]
    if args.cells:
        keep = {baseline, *args.cells.split(",")}
        cells = [c for c in cells if c in keep]
        final = {c: v for c, v in final.items() if c in keep}
    found = verdicts(final, cells=cells, baseline=baseline, primary=args.primary,
                     directions=directions, test=args.test, alpha=args.alpha)
    conv = trends(run_curves(evals, list(directions)), baseline, directions, alpha=args.alpha)
    stem = Path(args.out) if args.out else path.with_name(
        "verdicts" + path.stem.removeprefix("summary"))
    out = {"source": " + ".join(args.summary),
           "command": "python scripts/reanalyze_summary.py " + " ".join(
        list(args.summary) + [f"--primary {k}" for k in args.primary] +
        ([f"--cells {args.cells}"] if args.cells else []) +
        ([f"--baseline {args.baseline}"] if args.baseline else []) +
        ([f"--seeds {args.seeds}"] if args.seeds else []) +
        ([f"--test {args.test}"] if args.test != "t" else []) +
        ([f"--out {args.out}"] if args.out else [])),
        "protocol": {"primary": args.primary, "test": TEST_NAMES[args.test],
                     "alpha": args.alpha, "baseline": baseline,
                     "correction": "Holm within primary and within secondary family"},
        "verdicts": found, "convergence": conv}
    stem.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [f"# Verdicts of {out['source']}", "", f"`{out['command']}`", "",
             f"Baseline {baseline}; {TEST_NAMES[args.test]} test on the per-seed paired "
             f"differences, 95% CI (unadjusted), p Holm-corrected within the primary family "
             f"({', '.join(args.primary) or 'none'} x cells) and the secondary family.", "",
             *verdict_table(found)]
    for key, c in conv.items():
        lines += ["", f"Baseline convergence, {key}: {c['sentence']}: "
                      f"{trend_meaning(c['status'])}"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    prim = [v for v in found if v["primary"]]
    for v in prim or found[:3]:
        print(f"{v['cell']} {v['metric']}: {v['sentence']}")
    for key, c in conv.items():
        print(f"baseline convergence {key}: {c['sentence']}")
    print(f"wrote {stem.with_suffix('.json')} and .md")
    if any(not math.isfinite(v["p"] or float("nan")) for v in prim):
        print("note: some primary comparison has no p (fewer than 2 paired seeds)")


if __name__ == "__main__":
    main()
