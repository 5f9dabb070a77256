"""Workers for the multi-process tests: run under torch.multiprocessing (spawn) on gloo, one
process per rank, with the environment torchrun would give them."""

from __future__ import annotations

import json
import os
import socket
import traceback
from pathlib import Path
from typing import Any

import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(fn, world: int, *args: Any) -> None:
    """Run ``fn(rank, world, port, *args)`` in ``world`` processes; re-raise a worker's failure."""
    mp.spawn(_entry, args=(fn, world, free_port(), args), nprocs=world, join=True)


def _entry(rank: int, fn, world: int, port: int, args: tuple) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"})
    import torch

    torch.set_num_threads(1)
    try:
        fn(rank, world, port, *args)
    finally:
        from gantk.train import distributed

        distributed.shutdown()


def params_of(pipe) -> dict[str, Any]:
    return {f"{m}.{k}": v.detach().clone() for m, mod in pipe.modules().items()
            for k, v in mod.state_dict().items()}


def train_and_save(rank: int, world: int, port: int, spec: dict, out: str, dump: str) -> None:
    """Train ``spec`` into ``out``; every rank saves its final parameters to ``dump``/rank{r}."""
    import torch

    from gantk import Pipeline

    pipe = Pipeline.from_spec(spec, device="cpu")
    pipe.train(out=out, progress=False)
    torch.save(params_of(pipe), Path(dump) / f"rank{rank}.pt")


def nan_on_one_rank(rank: int, world: int, port: int, spec: dict, out: str, dump: str) -> None:
    """Rank 1's D loss turns NaN at step 3; every rank must stop with a TrainingError there."""
    from gantk import Pipeline
    from gantk.base.errors import TrainingError

    pipe = Pipeline.from_spec(spec, device="cpu")
    d_loss = pipe.loss.d_loss

    def poisoned(real, fake):
        value = d_loss(real, fake)
        return value * float("nan") if rank == 1 and pipe.step >= 2 else value

    pipe.loss.d_loss = poisoned
    try:
        pipe.train(out=out, progress=False)
        outcome = {"stopped": False, "step": pipe.step}
    except TrainingError as exc:
        outcome = {"stopped": True, "step": pipe.step, "message": exc.paragraph()}
    (Path(dump) / f"rank{rank}.json").write_text(json.dumps(outcome))


def train_each(rank: int, world: int, port: int, specs: dict[str, dict], dump: str) -> None:
    """Train every spec 2 steps; record per spec whether it trained (or the error)."""
    from gantk import Pipeline

    done = {}
    for name, spec in specs.items():
        try:
            pipe = Pipeline.from_spec(spec, device="cpu")
            pipe.train(progress=False)
            done[name] = {"step": pipe.step,
                          "checksum": float(sum(p.detach().double().sum()
                                                for p in pipe.backbone.parameters()))}
        except Exception:  # reported back to the test
            done[name] = {"error": traceback.format_exc()}
    (Path(dump) / f"rank{rank}.json").write_text(json.dumps(done))


def evaluate_split(rank: int, world: int, port: int, run: str, metrics: list[str], n: int,
                   dump: str) -> None:
    from gantk import Pipeline

    pipe = Pipeline.load(run, device="cpu")
    result = pipe.evaluate(metrics, n=n, batch_size=7, seed=3)
    (Path(dump) / f"rank{rank}.json").write_text(json.dumps(
        {k: v for k, v in result.items() if k != "seconds"}))
