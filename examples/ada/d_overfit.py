"""D's overfitting and FID on unseen digits, for the finished runs of an mnist5k size-500 sweep
(examples/sweeps/ada_mnist5k500.toml; docs/methods/ada.md, "Result").

For each run's final checkpoint (D in eval mode, images not augmented):

* ``sign_train`` / ``sign_held``: mean sign(D(x)) on the 500 training digits and on the 4,500
  mnist5k digits the run never saw (a D that learned its training set calls the first real and the
  second fake: the gap is the overfitting);
* ``fid_train``: the sweep's own score again (1,000 samples, seed 0, vs the 500 training digits);
* ``fid_held``: the same samples against the 4,500 unseen digits;
* ``rt_mean_after_250`` / ``p_final``: the ADA controller's r_t (mean of the logged windows after
  step 250) and final p, from metrics.jsonl.

    OMP_NUM_THREADS=1 python examples/ada/d_overfit.py runs/ada_mnist5k500 > ada_overfit.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from gantk import Pipeline
from gantk.datasets.mnist5k import Mnist5kParams, balanced_subset, load_mnist5k, mnist5k_arrays


def main(sweep_dir: Path) -> None:
    torch.set_num_threads(1)
    full, _ = load_mnist5k(Mnist5kParams(resolution=16))
    keep = np.zeros(len(full), bool)
    keep[balanced_subset(mnist5k_arrays()[1], 500)] = True
    train, held = full[torch.from_numpy(keep)], full[torch.from_numpy(~keep)]
    for run in sorted(sweep_dir.glob("*/seed_*")):
        if not (run / "sweep_result.json").exists():
            continue
        pipe = Pipeline.load(run)
        D = pipe.backbone.discriminator
        with torch.no_grad(), pipe.eval_mode():
            tr = torch.cat([D(b, None).flatten() for b in train.split(500)])
            he = torch.cat([D(b, None).flatten() for b in held.split(500)])
            torch.manual_seed(0)
            fake = torch.cat([D(b, None).flatten() for b in pipe.sample(1000).split(500)])
        fid_train = pipe.evaluate(["fid"], n=1000, seed=0, cache=False)["fid"]
        pipe.real_data = lambda: (held, None)  # score against the digits the run never saw
        fid_held = pipe.evaluate(["fid"], n=1000, seed=0, n_real=len(held), cache=False)["fid"]
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        rt = [r["ada/rt"] for r in rows if "ada/rt" in r and r["step"] > 250]
        print(json.dumps(dict(
            run=str(run.relative_to(sweep_dir)), fid_train=fid_train, fid_held=fid_held,
            sign_train=float(tr.sign().mean()), sign_held=float(he.sign().mean()),
            sign_fake=float(fake.sign().mean()),
            rt_mean_after_250=float(np.mean(rt)) if rt else None,
            p_final=rows[-1].get("ada/p"))), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
