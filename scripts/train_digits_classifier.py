"""Train the digits classifier that gantk ships as its offline feature net.

    python scripts/train_digits_classifier.py            # writes core/metrics/weights/...
    python scripts/train_digits_classifier.py --check    # retrain in memory, compare with shipped

Deterministic on CPU (one thread, fixed seeds, deterministic algorithms): the same torch version
reproduces the shipped safetensors file byte for byte; ``--check`` verifies that. Trains on 80% of
scikit-learn's digits (stratified split, seed 0), records the accuracy on the other 20% in the JSON
file beside the weights. Augmentation (one-pixel shifts, Gaussian noise, blur from an up/down
resize round trip) makes the net tolerant of the small defects of generated digits. Under a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gantk.metrics import digits_classifier as dc

SETTINGS = {
    "seed": 0,
    "epochs": 40,
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "max_shift_px": 1,
    "noise_std": 0.15,
    "blur_prob": 0.3,
}


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random one-pixel shifts (zero padded, -1 is background), noise and a resize round trip."""

    n = x.shape[0]
    s = SETTINGS["max_shift_px"]
    padded = F.pad(x, (s, s, s, s), value=-1.0)
    dx = torch.randint(0, 2 * s + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * s + 1, (n,), generator=gen)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8] for i in range(n)])
    blur = torch.rand(n, generator=gen) < SETTINGS["blur_prob"]
    if blur.any():
        up = F.interpolate(out[blur], size=(16, 16), mode="bilinear", align_corners=False)
        out[blur] = F.interpolate(up, size=(8, 8), mode="area")
    out = out + SETTINGS["noise_std"] * torch.randn(out.shape, generator=gen)
    return out.clamp(-1, 1)


def train() -> tuple[dict[str, torch.Tensor], dict]:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SETTINGS["seed"])
    gen = torch.Generator().manual_seed(SETTINGS["seed"])

    x, y = dc.load_digits_arrays()
    train_idx, test_idx = dc.heldout_split(labels=y)
    xt, yt = torch.from_numpy(x[train_idx]), torch.from_numpy(y[train_idx])
    xv, yv = torch.from_numpy(x[test_idx]), torch.from_numpy(y[test_idx])

    net = dc.DigitsNet()
    opt = torch.optim.Adam(net.parameters(), lr=SETTINGS["lr"],
                           weight_decay=SETTINGS["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=SETTINGS["epochs"])
    bs = SETTINGS["batch_size"]
    for _epoch in range(SETTINGS["epochs"]):
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), bs):
            idx = perm[i:i + bs]
            loss = F.cross_entropy(net(augment(xt[idx], gen)), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()

    net.eval()
    with torch.no_grad():
        acc = (net(xv).argmax(1) == yv).float().mean().item()
        train_acc = (net(xt).argmax(1) == yt).float().mean().item()
        # the embedding's unit: per-unit variance about 1 on the clean training images
        net.feature_scale.fill_(net.features(xt).var(0).mean().sqrt().item())
    meta = {
        "name": dc.NAME,
        "heldout_accuracy": round(acc, 6),
        "train_accuracy": round(train_acc, 6),
        "heldout_size": int(len(test_idx)),
        "train_size": int(len(train_idx)),
        "split": {"test_fraction": dc.TEST_FRACTION, "seed": dc.SPLIT_SEED, "stratified": True},
        "data": "sklearn.datasets.load_digits (8x8, values 0..16 scaled to [-1, 1])",
        "input": "[-1, 1], 8x8 (larger images are area-downsampled inside)",
        "feature_dim": dc.FEATURE_DIM,
        "feature_scale": round(float(net.feature_scale), 6),
        "settings": SETTINGS,
        "torch": torch.__version__,
        "script": "scripts/train_digits_classifier.py",
    }
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    return state, meta


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    from safetensors.torch import save_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="retrain and compare with the shipped file instead of overwriting it")
    parser.add_argument("--out", type=Path, default=dc.WEIGHTS_DIR, help="output folder")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    state, meta = train()
    elapsed = time.perf_counter() - t0
    metadata = {"name": dc.NAME, "heldout_accuracy": str(meta["heldout_accuracy"])}

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / dc.WEIGHTS.name
            save_file(state, str(path), metadata=metadata)
            fresh, shipped = sha256(path), sha256(dc.WEIGHTS)
        same = fresh == shipped
        print(f"trained in {elapsed:.1f} s; held-out accuracy {meta['heldout_accuracy']:.4f}; "
              f"sha256 {fresh[:16]}... {'matches' if same else 'DIFFERS FROM'} the shipped file "
              f"({shipped[:16]}...)")
        return 0 if same else 1

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / dc.WEIGHTS.name
    save_file(state, str(path), metadata=metadata)
    meta["sha256"] = sha256(path)
    meta["train_seconds"] = round(elapsed, 1)
    (args.out / dc.META.name).write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {path} (held-out accuracy {meta['heldout_accuracy']:.4f}, "
          f"{elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
