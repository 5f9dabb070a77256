"""What the two classifier scripts share: the deterministic training loop, and writing (or checking)
the safetensors weights and the JSON record beside them.

Imported by ``train_digits_classifier.py`` and ``train_mnist_classifier.py`` (same folder)."""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


def deterministic(seed: int) -> torch.Generator:
    """One CPU thread, deterministic kernels, seeded global RNG; the data-order generator."""

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def fit(net: torch.nn.Module, xt: torch.Tensor, yt: torch.Tensor, settings: dict[str, Any],
        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
        gen: torch.Generator) -> None:
    """Adam with weight decay and a cosine schedule over ``settings["epochs"]`` epochs of
    augmented mini-batches (one permutation per epoch from ``gen``)."""

    opt = torch.optim.Adam(net.parameters(), lr=settings["lr"],
                           weight_decay=settings["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings["epochs"])
    bs = settings["batch_size"]
    for _epoch in range(settings["epochs"]):
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), bs):
            idx = perm[i:i + bs]
            loss = F.cross_entropy(net(augment(xt[idx], gen)), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()


def train(mod: Any, make_net: Callable[[], torch.nn.Module], arrays: Callable[[], tuple],
          split: Callable[[Any], tuple], settings: dict[str, Any],
          augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor], script: str,
          **about: Any) -> tuple[dict[str, torch.Tensor], dict]:
    """Seed, split ``arrays()`` with ``split(labels)``, build the net, :func:`fit`, :func:`finish`."""

    gen = deterministic(settings["seed"])
    x, y = arrays()
    train_idx, test_idx = split(y)
    xt, yt = torch.from_numpy(x[train_idx]), torch.from_numpy(y[train_idx])
    xv, yv = torch.from_numpy(x[test_idx]), torch.from_numpy(y[test_idx])
    net = make_net()  # after the seeding: the initialisation is part of the reproduced run
    fit(net, xt, yt, settings, augment, gen)
    return finish(net, mod, (xt, yt), (xv, yv), settings, script, **about)


def finish(net: torch.nn.Module, mod: Any, train: tuple[torch.Tensor, torch.Tensor],
           heldout: tuple[torch.Tensor, torch.Tensor], settings: dict[str, Any],
           script: str, **about: Any) -> tuple[dict[str, torch.Tensor], dict]:
    """Accuracies, the embedding's ``feature_scale`` and the JSON record; ``mod`` is the
    classifier's module (NAME, FEATURE_DIM, TEST_FRACTION, SPLIT_SEED), ``about`` the record's
    ``data`` and ``input`` descriptions."""

    (xt, yt), (xv, yv) = train, heldout
    net.eval()
    with torch.no_grad():
        acc = (net(xv).argmax(1) == yv).float().mean().item()
        train_acc = (net(xt).argmax(1) == yt).float().mean().item()
        # the embedding's unit: per-unit variance about 1 on the clean training images
        net.feature_scale.fill_(net.features(xt).var(0).mean().sqrt().item())
    meta = {
        "name": mod.NAME,
        "heldout_accuracy": round(acc, 6),
        "train_accuracy": round(train_acc, 6),
        "heldout_size": int(len(yv)),
        "train_size": int(len(yt)),
        "split": {"test_fraction": mod.TEST_FRACTION, "seed": mod.SPLIT_SEED, "stratified": True},
        **about,
        "feature_dim": mod.FEATURE_DIM,
        "feature_scale": round(float(net.feature_scale), 6),
        "settings": settings,
        "torch": torch.__version__,
        "script": script,
    }
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    return state, meta


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(doc: str, train: Callable[[], tuple[dict[str, torch.Tensor], dict]], weights: Path,
         meta_path: Path, argv: list[str] | None = None) -> int:
    """``--check``: retrain and compare with the shipped file; else write weights and record."""

    from safetensors.torch import save_file

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="retrain and compare with the shipped file instead of overwriting it")
    parser.add_argument("--out", type=Path, default=weights.parent, help="output folder")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    state, meta = train()
    elapsed = time.perf_counter() - t0
    metadata = {"name": meta["name"], "heldout_accuracy": str(meta["heldout_accuracy"])}

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / weights.name
            save_file(state, str(path), metadata=metadata)
            fresh, shipped = sha256(path), sha256(weights)
        same = fresh == shipped
        print(f"trained in {elapsed:.1f} s; held-out accuracy {meta['heldout_accuracy']:.4f}; "
              f"sha256 {fresh[:16]}... {'matches' if same else 'DIFFERS FROM'} the shipped file "
              f"({shipped[:16]}...)")
        return 0 if same else 1

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / weights.name
    save_file(state, str(path), metadata=metadata)
    meta["sha256"] = sha256(path)
    meta["train_seconds"] = round(elapsed, 1)
    (args.out / meta_path.name).write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {path} (held-out accuracy {meta['heldout_accuracy']:.4f}, {elapsed:.1f} s)")
    return 0
