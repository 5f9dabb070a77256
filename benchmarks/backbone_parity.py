"""Backbone parity: each gantk backbone against a plain hand-written reference trained the same way.

For every row, gantk (``Pipeline.from_spec``) and the reference (benchmarks/references/, no gantk
classes) train on the same data for the same steps, batch, loss, optimiser and seeds; both are
scored by ``gantk.metrics.evaluate`` on the same real subset (digits: the shipped digits classifier's
feature space; ring/grid: raw coordinates). The table shows mean +- std over seeds and the ratio
gantk / reference of the means. A row meets the target when gantk's recall and coverage are at
least the reference's mean - std and its FID at most the reference's mean + std (the autoencoder
row: reconstruction MSE at most mean + std).

    python benchmarks/backbone_parity.py                       # every row, seeds 0 1 2
    python benchmarks/backbone_parity.py --rows dcgan16 mlp_ring --seeds 0 1 --steps 200
    python benchmarks/backbone_parity.py --list
    python benchmarks/backbone_parity.py --report benchmarks/results/backbone_parity.json
    python benchmarks/backbone_parity.py --step-time [--sizes 16 32 64] [--channels 128]
    python benchmarks/backbone_parity.py --sample-time [--sizes 16 32] [--channels 128]

``--step-time`` and ``--sample-time`` time stylegan2's training step and sampling against the
reference nets instead (benchmarks/stylegan2_speed.py says how).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from references import loop, nets, stylegan2_ref  # noqa: E402
from stylegan2_speed import sample_time, step_time  # noqa: E402

from gantk import Pipeline, get_registry, parse_spec  # noqa: E402
from gantk.stack import build  # noqa: E402
from gantk.train import ema  # noqa: E402

ADAM = {"lr": 2e-4, "betas": (0.5, 0.999)}
SG2 = {"lr": 2e-3, "betas": (0.0, 0.99)}
SG2_BB = {"latent_dim": 32, "style_dim": 32, "n_mlp": 2, "channel_base": 1024, "channel_max": 32,
          "d_reg_every": 16}


def _mlp_row(data: str) -> dict[str, Any]:
    return {"data": {"name": data}, "backbone": {"name": "mlp", "latent_dim": 2}, "latent": 2,
            "steps": 2000, "batch": 256, **ADAM, "metrics": ["modes", "prdc"],
            "ref": lambda info: nets.mlp_nets(2)}


def _dcgan_row(size: int) -> dict[str, Any]:
    def ref(info):
        G, D = nets.DCGANG(32, 1, size, 16), nets.DCGAND(1, size, 16)
        G.apply(nets.dcgan_init), D.apply(nets.dcgan_init)
        return G, D
    return {"data": {"name": "digits", "resolution": size},
            "backbone": {"name": "dcgan", "width": 16, "latent_dim": 32}, "latent": 32,
            "steps": 400 if size == 16 else 300, "batch": 64, **ADAM, "ref": ref}


def _sg2_row(size: int, ema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """``ema``: the train.ema_* settings; by default pinned off (these rows were measured without
    an EMA); ``{}`` leaves them unset, i.e. the family default (NVlabs' half-life and ramp-up)."""
    return {"data": {"name": "digits", "resolution": size},
            "backbone": {"name": "stylegan2", **SG2_BB, **extra}, "latent": 32,
            "train": {"ema_decay": 0.0} if ema is None else ema,
            "methods": [{"name": "r1", "gamma": 0.1, "every": 16}], "r1": (0.1, 16),
            "steps": 400 if size == 16 else 300, "batch": 32, **SG2, "ref_key": f"stylegan2_{size}",
            "ref": lambda info: (stylegan2_ref.Generator(size, 1, 32, 32),
                                 stylegan2_ref.Discriminator(size, 1, 32))}


ROWS: dict[str, dict[str, Any]] = {
    "mlp_ring": _mlp_row("ring"),
    "mlp_grid": _mlp_row("grid"),
    "dcgan16": _dcgan_row(16),
    "dcgan32": _dcgan_row(32),
    "resnet32": {"data": {"name": "digits", "resolution": 32},
                 "backbone": {"name": "resnet", "g_channels": 32, "d_channels": 32, "latent_dim": 32},
                 "latent": 32, "loss": "hinge", "steps": 300, "batch": 32, "lr": 2e-4, "betas": (0.0, 0.9),
                 "ref": lambda info: (nets.ResG(32, 1, 32), nets.ResD(1, 32))},
    "stylegan2_16_blur": _sg2_row(16),
    "stylegan2_16_bilinear": _sg2_row(16, resample="bilinear"),
    "stylegan2_16_blur_rescaled": _sg2_row(16, lazy_rescale=True),
    "stylegan2_16_blur_nomix": _sg2_row(16, mixing_prob=0.0),
    "stylegan2_16_blur_ema": _sg2_row(16, ema={}),
    "stylegan2_32_blur": _sg2_row(32),
    "stylegan2_32_bilinear": _sg2_row(32, resample="bilinear"),
    "autoencoder16": {"data": {"name": "digits", "resolution": 16}, "autoencoder": True,
                      "backbone": {"name": "autoencoder", "width": 16, "latent_dim": 10},
                      "steps": 400, "batch": 64, **ADAM},
}
IMAGE_METRICS = ["fid", "prdc", "modes"]
KEYS = ["fid", "precision", "recall", "coverage", "modes_covered", "mse"]


class _Reference:
    """Duck-types what ``Pipeline.evaluate`` reads, around a reference generator."""

    def __init__(self, pipe: Pipeline, G: torch.nn.Module, latent: int) -> None:
        self.pipe, self.G, self.latent = pipe, G, latent
        self.data_info, self.spec, self.device = pipe.data_info, pipe.spec, "cpu"

    def real_data(self):
        return self.pipe.real_data()

    def sample_batches(self, n: int, *, batch_size: int = 500, with_=None):
        self.G.eval()
        with torch.no_grad():
            for i in range(0, n, batch_size):
                yield self.G(torch.randn(min(batch_size, n - i), self.latent)).clamp(-1, 1)


def _spec(row: dict[str, Any], seed: int, steps: int) -> dict[str, Any]:
    return {"seed": seed, "loss": row.get("loss", "ns"), "backbone": dict(row["backbone"]),
            "data": dict(row["data"]), "methods": copy.deepcopy(row.get("methods", [])),
            "train": {"steps": steps, "batch_size": row["batch"], "lr_g": row["lr"], "lr_d": row["lr"],
                      "betas": list(row["betas"]), "n_critic": 1, "log_every": 10**6,
                      "sample_every": 0, "ckpt_every": 0, **row.get("train", {})}}


def _ref_version(name: str) -> int:
    """The version of a row's reference nets (stylegan2_ref.VERSION for the stylegan2 rows; 1 for
    the others): a stored reference run is reused only at the same version."""
    return stylegan2_ref.VERSION if ROWS.get(name, {}).get("ref_key", "").startswith("stylegan2") else 1


def _ema_used(row: dict[str, Any]) -> str:
    """The EMA gantk's side of a row trains with (resolved as the trainer resolves it)."""
    if row.get("autoencoder"):
        return "n/a"
    return ema.describe(build.resolve(parse_spec(_spec(row, 0, 0)), get_registry()).spec.train)


def _scores(evaluator, row: dict[str, Any], n_eval: int) -> dict[str, float]:
    metrics = row.get("metrics", IMAGE_METRICS)
    out = Pipeline.evaluate(evaluator, metrics, n=n_eval, seed=0) if isinstance(evaluator, Pipeline) \
        else _evaluate(evaluator, metrics, n_eval)
    return {k: float(out[k]) for k in KEYS if k in out}


def _evaluate(ref: _Reference, metrics: list[str], n: int) -> dict[str, Any]:
    from gantk.metrics.evaluate import evaluate
    return evaluate(ref, metrics, n=n, seed=0)


def _autoencoder_pair(row: dict[str, Any], seed: int, steps: int) -> tuple[dict, dict, float, float]:
    """gantk's autoencoder nets vs the reference AE, both trained on reconstruction alone."""
    from gantk_plugins.backbones import autoencoder

    pipe = Pipeline.from_spec({"stack": "backbone=dcgan + loss=ns", "data": dict(row["data"]),
                               "backbone": {"width": 4}})  # only for the data set
    x = pipe.real_data()[0]
    torch.manual_seed(seed)
    p = row["backbone"]
    bb = autoencoder.build(autoencoder.AutoencoderParams(width=p["width"], latent_dim=p["latent_dim"]),
                           pipe.data_info)

    class _Net(torch.nn.Module):  # x -> Dec(Enc(x)), so one loop trains both
        def __init__(self) -> None:
            super().__init__()
            self.bb = bb

        def forward(self, v):
            return self.bb.generator(self.bb.encode(v))

    out = []
    for net in (_Net(), nets.AE(x.shape[1], x.shape[2], p["width"], p["latent_dim"])):
        t0 = time.perf_counter()
        loop.train_autoencoder(net, x, steps=steps, batch=row["batch"], lr=row["lr"],
                               betas=row["betas"], seed=seed)
        net.eval()
        with torch.no_grad():
            mse = float(F.mse_loss(net(x), x))
        out += [{"mse": mse}, time.perf_counter() - t0]
    return out[0], out[2], out[1], out[3]


def run_row(name: str, row: dict[str, Any], seed: int, steps: int, n_eval: int,
            cached_reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train and score gantk and the reference on one seed; ``cached_reference`` (the same
    reference, seed and steps from another row or an earlier run) skips the reference's run."""
    if row.get("autoencoder"):
        mine, ref, t_mine, t_ref = _autoencoder_pair(row, seed, steps)
        return {"gantk": mine, "reference": ref, "seconds": {"gantk": t_mine, "reference": t_ref}}
    t0 = time.perf_counter()
    pipe = Pipeline.from_spec(_spec(row, seed, steps))
    pipe.train(progress=False)
    t_mine = time.perf_counter() - t0
    mine = _scores(pipe, row, n_eval)
    if cached_reference is not None:
        return {"gantk": mine, "reference": cached_reference["reference"],
                "seconds": {"gantk": t_mine, "reference": cached_reference["seconds"]["reference"]},
                "reference_reused": True}
    torch.manual_seed(seed)
    G, D = row["ref"](pipe.data_info)
    x = pipe.real_data()[0]
    t0 = time.perf_counter()
    r1_gamma, r1_every = row.get("r1", (0.0, 0))
    loop.train_gan(G, D, x, latent=row["latent"], steps=steps, batch=row["batch"], lr=row["lr"],
                   betas=row["betas"], loss=row.get("loss", "ns"), r1_gamma=r1_gamma,
                   r1_every=r1_every, seed=seed)
    t_ref = time.perf_counter() - t0
    ref = _scores(_Reference(pipe, G, row["latent"]), row, n_eval)
    return {"gantk": mine, "reference": ref, "seconds": {"gantk": t_mine, "reference": t_ref}}


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in KEYS:
        if key not in runs[0]["gantk"]:
            continue
        m = _stats([r["gantk"][key] for r in runs])
        r = _stats([r["reference"][key] for r in runs])
        out[key] = {"gantk": m, "reference": r, "ratio": m[0] / r[0] if r[0] else float("nan")}
    misses = []
    for key in ("recall", "coverage"):
        if key in out and out[key]["gantk"][0] < out[key]["reference"][0] - out[key]["reference"][1]:
            misses.append(key)
    for key in ("fid", "mse"):
        if key in out and out[key]["gantk"][0] > out[key]["reference"][0] + out[key]["reference"][1]:
            misses.append(key)
    out["meets_target"] = not misses
    out["misses"] = misses
    return out


def table(results: dict[str, Any]) -> str:
    """One line per row: each metric as gantk mean ± std / reference mean ± std (ratio)."""
    shown = [k for k in KEYS if any(k in r["summary"] for r in results.values())]
    lines = ["| row | steps | " + " | ".join(shown) + " | target |",
             "| --- | --- | " + " | ".join("---" for _ in shown) + " | --- |"]
    for name, res in results.items():
        s, cells = res["summary"], []
        for key in shown:
            if key not in s:
                cells.append("")
                continue
            (gm, gs), (rm, rs) = s[key]["gantk"], s[key]["reference"]
            cells.append(f"{gm:.2f} ± {gs:.2f} / {rm:.2f} ± {rs:.2f} ({s[key]['ratio']:.2f})")
        verdict = "met" if s["meets_target"] else "missed: " + ", ".join(s["misses"])
        lines.append(f"| {name} | {res['steps']} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", nargs="+", default=list(ROWS), help="rows to run (--list shows them)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None, help="override every row's step count")
    ap.add_argument("--n-eval", type=int, default=1000, help="samples scored per run")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "backbone_parity.json"))
    ap.add_argument("--fresh", action="store_true", help="ignore the rows already in --out (by default "
                    "rows not named in --rows are kept, and reference runs with the same reference, "
                    "seed and steps are reused, if --out has the same seeds and --n-eval)")
    ap.add_argument("--list", action="store_true", help="list the rows and stop")
    ap.add_argument("--report", metavar="JSON", help="print the table of an earlier run's JSON and stop")
    ap.add_argument("--step-time", action="store_true", help="time stylegan2's training step against "
                    "the reference's instead (see the module docstring) and stop")
    ap.add_argument("--sizes", nargs="+", type=int, default=[16, 32, 64], help="with --step-time")
    ap.add_argument("--channels", type=int, default=128, help="with --step-time: width of every layer")
    ap.add_argument("--batch", type=int, default=16, help="with --step-time")
    ap.add_argument("--rounds", type=int, default=5, help="with --step-time: alternating rounds")
    ap.add_argument("--round-steps", type=int, default=2, help="with --step-time: steps per round")
    ap.add_argument("--sample-time", action="store_true", help="time eval-mode sampling with the two "
                    "modulated-conv forms at --sizes / --channels and stop")
    args = ap.parse_args(argv)
    if args.step_time or args.sample_time:
        torch.set_num_threads(1)
        if args.sample_time:
            sample_time(args.sizes, channels=args.channels)
        if args.step_time:
            print("process CPU time per step, median over rounds; ratios: median of per-round ratios")
            step_time(args.sizes, channels=args.channels, batch=args.batch, rounds=args.rounds,
                      steps=args.round_steps)
        return 0
    if args.report:
        print(table(json.loads(Path(args.report).read_text())["rows"]))
        return 0
    if args.list:
        for name, row in ROWS.items():
            print(f"{name}: {row['backbone']} on {row['data']}, {row['steps']} steps, batch {row['batch']}")
        return 0
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        print(f"unknown row(s) {unknown}; choose from {list(ROWS)}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if out.exists() and not args.fresh:  # keep earlier rows; reuse their reference runs
        previous = json.loads(out.read_text())
        if previous.get("seeds") == args.seeds and previous.get("n_eval") == args.n_eval:
            results = {k: v for k, v in previous["rows"].items() if k not in args.rows}
    cache: dict[tuple[str, int, int], dict[str, Any]] = {}
    for name, res in results.items():
        if res.get("ref_version", 1) != _ref_version(name):
            continue  # measured against an earlier reference: its runs are not this one's
        for run in res["runs"]:
            cache[(ROWS.get(name, {}).get("ref_key", name), run["seed"], res["steps"])] = run
    t_all = time.perf_counter()
    for name in args.rows:
        row = ROWS[name]
        steps = args.steps or row["steps"]
        runs = []
        for seed in args.seeds:
            key = (row.get("ref_key", name), seed, steps)
            res = run_row(name, row, seed, steps, args.n_eval, cache.get(key))
            runs.append({"seed": seed, **res})
            cache[key] = runs[-1]
            print(f"{name} seed {seed}: gantk {res['gantk']} | reference {res['reference']} "
                  f"({res['seconds']['gantk']:.0f} s / {res['seconds']['reference']:.0f} s)", flush=True)
        results[name] = {"steps": steps, "batch": row["batch"], "lr": row["lr"], "betas": row["betas"],
                         "loss": row.get("loss", "ns"), "backbone": row["backbone"], "data": row["data"],
                         "ema": _ema_used(row), "ref_version": _ref_version(name),
                         "runs": runs, "summary": summarise(runs)}
        meta = {"seeds": args.seeds, "n_eval": args.n_eval, "torch_threads": 1,
                "wall_seconds_this_invocation": round(time.perf_counter() - t_all, 1),
                "rows": results}
        out.write_text(json.dumps(meta, indent=1))  # after every row: a stopped run keeps its rows
    print(table(results))
    print(f"\nwall time {time.perf_counter() - t_all:.0f} s; results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
